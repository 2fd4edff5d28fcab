"""The study engine on a toy study kind: registering a kind is all it takes, and the engine's own
promises (dispatch, fingerprints, atomic outputs, failures and retries, legacy registries) hold
for any kind. No training: the toy kind's units square numbers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from pydantic import Field

from entrolab.report.document import Section, Table
from entrolab.study import Kind, StudyConfigError, StudyError, get_kind, parse_config, register_kind, run_study
from entrolab.study.config import CONFIG_FILE, StudyConfigBase
from entrolab.study.kinds import KINDS, UnknownKindError, unregister_kind
from entrolab.study.registry import Registry, Unit
from entrolab.study.runner import REGISTRY_FILE
from entrolab.study.tables import load_tables, write_table
from entrolab.study.units import fingerprint, write_parquet

CALLS: list[str] = []  # unit ids, in the order the toy kind executed them
FAIL: set[str] = set()  # unit ids that raise when executed


class ToyConfig(StudyConfigBase):
    kind: str = "toy"
    numbers: list[int] = Field(min_length=1)
    offset: int = 0


def _plan(config: ToyConfig) -> list[Unit]:
    units = [Unit(f"square/{n}", "square", {"n": n}, (), fingerprint(n, config.offset)) for n in config.numbers]
    units.append(Unit("sum", "sum", {}, tuple(u.id for u in units), fingerprint([u.fingerprint for u in units])))
    return units


def _execute(config: ToyConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    CALLS.append(unit.id)
    if unit.kind == "square":
        n = unit.payload["n"]
        write_parquet(pd.DataFrame({"n": [n], "square": [n * n + config.offset]}), out / "square.parquet")
        if unit.id in FAIL:
            raise RuntimeError(f"toy failure in {unit.id}")
    else:
        total = sum(int(pd.read_parquet(study_dir / "units" / f"square/{n}" / "square.parquet")["square"].iloc[0])
                    for n in config.numbers)
        write_parquet(pd.DataFrame({"total": [total]}), out / "sum.parquet")


def _build_tables(study_dir: Path, config: ToyConfig, num_resamples=None) -> dict:
    squares = pd.concat([pd.read_parquet(study_dir / "units" / f"square/{n}" / "square.parquet")
                         for n in config.numbers], ignore_index=True)
    total = pd.read_parquet(study_dir / "units" / "sum" / "sum.parquet")
    for name, df in (("squares", squares), ("total", total)):
        write_table(df, study_dir / "tables" / f"{name}.parquet")
    return {"squares": squares, "total": total}


def _report(config: ToyConfig, tables: dict, fig_dir: Path):
    rows = tuple((str(r.n), str(r.square)) for r in tables["squares"].itertuples())
    return f"Toy study {config.name}", [Section("Squares", [Table(("n", "n^2 + offset"), rows)])]


TOY = Kind(name="toy", config_model=ToyConfig, tables=("squares", "total"), plan=_plan, execute=_execute,
           output_path=lambda unit: f"units/{unit.id}", build_tables=_build_tables, report=_report)


@pytest.fixture(autouse=True)
def toy_kind():
    register_kind("toy", TOY)
    CALLS.clear()
    FAIL.clear()
    yield
    unregister_kind("toy")


def _config(**kw) -> ToyConfig:
    return parse_config({"kind": "toy", "name": "toy-study", "numbers": [1, 2, 3], **kw})


def test_a_registered_kind_runs_end_to_end(tmp_path):
    config = _config()
    assert isinstance(config, ToyConfig) and get_kind("toy") is TOY
    out = run_study(config, tmp_path / "s")
    assert CALLS == ["square/1", "square/2", "square/3", "sum"]
    tables = load_tables(out)
    assert tables["squares"]["square"].tolist() == [1, 4, 9] and int(tables["total"]["total"].iloc[0]) == 14
    assert json.loads((out / CONFIG_FILE).read_text())["kind"] == "toy"
    html = (out / "report" / "index.html").read_text()
    assert "Toy study toy-study" in html and "<td>9</td>" in html
    assert "| 3 | 9 |" in (out / "report" / "report.md").read_text()
    # nothing left behind but the published outputs
    assert not any((out / ".scratch").glob("*"))


def test_a_changed_config_redoes_only_the_units_it_changes(tmp_path):
    run_study(_config(), tmp_path / "s")
    CALLS.clear()
    run_study(_config(numbers=[1, 2, 4]), tmp_path / "s")
    assert CALLS == ["square/4", "sum"]  # 1 and 2 kept, 3 dropped, the sum redone
    assert not (tmp_path / "s" / "units" / "square" / "3").exists()
    assert load_tables(tmp_path / "s")["total"]["total"].iloc[0] == 21
    CALLS.clear()
    run_study(_config(numbers=[1, 2, 4], offset=1), tmp_path / "s")
    assert sorted(CALLS) == ["square/1", "square/2", "square/4", "sum"]


def test_a_failing_unit_is_marked_failed_and_retried_on_rerun(tmp_path):
    FAIL.add("square/2")
    with pytest.raises(StudyError, match=r"unit square/2 failed: RuntimeError\('toy failure in square/2'\)"):
        run_study(_config(), tmp_path / "s")
    registry = Registry(tmp_path / "s" / REGISTRY_FILE)
    table = registry.table().set_index("id")
    assert table.loc["square/1", "state"] == "done" and table.loc["square/2", "state"] == "failed"
    assert "toy failure in square/2" in table.loc["square/2", "error"]
    assert table.loc["sum", "state"] == "pending"
    # its output was never published, and no table was built
    assert not (tmp_path / "s" / "units" / "square" / "2").exists()
    assert not (tmp_path / "s" / "tables").exists()
    FAIL.clear()
    CALLS.clear()
    run_study(_config(), tmp_path / "s")
    assert CALLS == ["square/2", "square/3", "sum"]
    table = Registry(tmp_path / "s" / REGISTRY_FILE).table().set_index("id")
    assert set(table["state"]) == {"done"} and table.loc["square/2", "attempts"] == 2
    assert table.loc["square/2", "error"] is None


def test_a_registry_from_before_fingerprints_keeps_its_done_units(tmp_path):
    """A study directory written before fingerprints existed (legacy registry: no fingerprint column;
    config.json as written then) is migrated on open; its done units are adopted when the config is
    unchanged, and redone when it is not."""
    out = run_study(_config(), tmp_path / "s")
    db = sqlite3.connect(out / REGISTRY_FILE)
    db.execute("ALTER TABLE units DROP COLUMN fingerprint")
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()
    CALLS.clear()
    run_study(_config(), out)
    assert CALLS == []
    assert {u.fingerprint for u in Registry(out / REGISTRY_FILE).units()} == {u.fingerprint for u in _plan(_config())}
    # the same legacy file with an edited config: nothing can be trusted, everything is redone
    db = sqlite3.connect(out / REGISTRY_FILE)
    db.execute("ALTER TABLE units DROP COLUMN fingerprint")
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()
    run_study(_config(offset=0, numbers=[1, 2, 3, 5]), out)
    assert sorted(CALLS) == ["square/1", "square/2", "square/3", "square/5", "sum"]


def test_kind_errors_are_clear(tmp_path):
    with pytest.raises(StudyConfigError, match=r"kind: unknown study kind 'nope'; known: .*'robustness'"):
        parse_config({"kind": "nope", "name": "x"})
    with pytest.raises(UnknownKindError):
        get_kind("nope")
    with pytest.raises(StudyConfigError, match=r"numbers: List should have at least 1 item"):
        _config(numbers=[])
    with pytest.raises(TypeError, match=r"missing: .*report"):
        register_kind("broken", object())
    with pytest.raises(TypeError, match="calls itself 'toy'"):
        register_kind("other", TOY)
    # another kind's study in the same directory is refused
    run_study(_config(), tmp_path / "s")
    with pytest.raises(StudyConfigError, match="holds a different study"):
        run_study(parse_config({"kind": "toy", "name": "another", "numbers": [1]}), tmp_path / "s")


def test_builtin_kinds_are_one_entry_each():
    assert {"robustness", "comparison"} <= set(KINDS)
    for name in ("robustness", "comparison"):
        kind = get_kind(name)
        assert kind.name == name and kind.tables and issubclass(kind.config_model, StudyConfigBase)


def test_a_robustness_config_json_of_the_first_release_reads_as_today():
    """config.json as the first release wrote it (no kind; [train] options under their old names,
    newer options absent) resolves to today's config, so its study directory counts as unchanged."""
    from entrolab.study.config import config_json, load_config
    from entrolab.study.runner import _normalised

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny-test.toml")
    old = json.loads(config_json(config))
    del old["kind"]
    train = old["train"]
    for new, legacy in (("num_epochs", "epochs"), ("num_minibatches", "minibatches"),
                        ("normalize_observations", "normalize_obs")):
        train[legacy] = train.pop(new)
    del train["normalize_advantages"], train["critic_hidden_sizes"]
    assert _normalised({**old, "kind": "robustness"}) == config_json(config)
    train["learning_rate"] = 1e-3
    assert _normalised({**old, "kind": "robustness"}) != config_json(config)


def test_fingerprint_view_drops_neutral_options_with_their_companions():
    from entrolab.study.units import fingerprint_view

    values = {"a": 1, "new": 0, "new_detail": 5, "mem": 64}
    neutral, companions = {"new": 0}, {"new": ("new_detail",)}
    assert fingerprint_view(values, neutral, companions, drop=("mem",)) == {"a": 1}
    used = {**values, "new": 3}
    assert fingerprint_view(used, neutral, companions, drop=("mem",)) == {"a": 1, "new": 3, "new_detail": 5}

"""Run a study to completion, resumably.

    run_study("configs/lorenz-quick.toml", "runs/lorenz-quick")

The driver (this module) owns the study directory and its registry; units of
work go to an executor. Interrupting a study at any moment and running the
same command again finishes it: done units are skipped, units that were
running are run again from scratch (their partial outputs are never
published, see `entrolab.study.units`), and the result tables are rebuilt
from the published unit outputs, so they have neither duplicated nor missing
rows.

Study directory:

    config.json        the resolved config (defaults filled in); a rerun must match it
    registry.sqlite    units of work and their state (`entrolab.study.registry`)
    train/VARIANT/     checkpoints/, runs.parquet, metrics.parquet of each training variant
    units/...          published outputs of the evaluation and measurement units
    tables/*.parquet   tidy result tables (`entrolab.study.analysis`)
    report/            index.html, report.md, figures (`entrolab.study.report`)
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from entrolab.study.config import StudyConfig, StudyConfigError, load_config
from entrolab.study.registry import Registry, Unit
from entrolab.study.units import CONFIG_FILE, config_json, execute, plan_units

REGISTRY_FILE = "registry.sqlite"


class Executor(Protocol):
    """Runs units; yields (unit, wall seconds, error or None) as each finishes.

    `on_start(unit)` is called before a unit starts (the driver marks it
    running). The in-process executor runs units one by one in this process;
    a distributed one (Ray: `ray.remote(execute)`) would submit them all and
    yield in completion order.
    """

    def run(self, study_dir: Path, units: Iterable[Unit], on_start: Callable[[Unit], None],
            progress: Any = None) -> Iterator[tuple[Unit, float, BaseException | None]]: ...


class InProcessExecutor:
    def run(self, study_dir, units, on_start, progress=None):
        for unit in units:
            on_start(unit)
            t0 = time.perf_counter()
            try:
                execute(study_dir, unit, progress)
            except Exception as err:  # KeyboardInterrupt and SystemExit propagate
                yield unit, time.perf_counter() - t0, err
            else:
                yield unit, time.perf_counter() - t0, None


class StudyError(RuntimeError):
    """A study that cannot proceed (a unit failed, or the directory holds another study)."""


def prepare(config: StudyConfig, out: Path, log=None) -> Registry:
    """Create or reopen a study directory for `config`.

    A directory of another study (another name or env) is refused. The same
    study with an edited config is replanned: units whose inputs changed are
    run again, the others are kept (see `entrolab.study.registry`).
    """
    out.mkdir(parents=True, exist_ok=True)
    resolved = config_json(config)
    path = out / CONFIG_FILE
    if path.exists():
        old = json.loads(path.read_text())
        env = getattr(config, "env", None)
        if (old.get("name"), old.get("env"), old.get("kind")) != (config.name, env, getattr(config, "kind", None)):
            what = f"{config.name!r} on {env!r}" if env else f"the comparison {config.name!r}"
            theirs = f"{old.get('name')!r} on {old.get('env')!r}" if old.get("env") else \
                f"the {old.get('kind')} study {old.get('name')!r}"
            raise StudyConfigError(
                f"{out} holds a different study ({theirs}, not {what}); use another --out, "
                "or delete the directory to start over")
    registry = Registry(out / REGISTRY_FILE)
    changes = registry.plan(plan_units(config))
    if log is not None and path.exists() and (changes["reset"] or changes["removed"]):
        log(f"the config changed: {len(changes['reset'])} units to redo, {len(changes['added'])} new, "
            f"{len(changes['removed'])} dropped")
    if not path.exists() or path.read_text() != resolved:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(resolved)
        tmp.replace(path)
    shutil.rmtree(out / ".scratch", ignore_errors=True)  # partial outputs of units that died
    for unit_id in changes["removed"]:  # outputs of units no longer planned
        for stale in (out / unit_id, out / "units" / unit_id):
            shutil.rmtree(stale, ignore_errors=True)
    return registry


def run_study(
    config: StudyConfig | str | Path,
    out: str | Path,
    executor: Executor | None = None,
    progress: Any = None,
    report: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Run every pending unit of the study, then build the tables and the report.

    `stop_after`: stop after that many units (for tests and partial runs).
    """
    from entrolab.study import analysis

    config = load_config(config) if isinstance(config, (str, Path)) else config
    out = Path(out)
    registry = prepare(config, out, log=None if progress is None else progress.console.log)
    registry.recover()
    executor = executor or InProcessExecutor()
    total = len(registry.units())
    task = None
    if progress is not None:
        done = sum(s == "done" for s in registry.states().values())
        task = progress.add_task(f"study {config.name}", total=total, completed=done)
    finished = 0
    while True:
        ready = registry.ready()
        if not ready or (stop_after is not None and finished >= stop_after):
            break
        batch = ready if stop_after is None else ready[: stop_after - finished]
        for unit, wall, err in executor.run(out, batch, lambda u: registry.claim(u.id), progress):
            if err is not None:
                registry.fail(unit.id, "".join(traceback.format_exception(err)))
                raise StudyError(f"unit {unit.id} failed: {err!r} (see {out / REGISTRY_FILE})") from err
            registry.finish(unit.id, wall)
            finished += 1
            if task is not None:
                progress.update(task, advance=1)
                progress.console.log(f"done: {unit.id} ({wall:.0f} s)")
    states = registry.states()
    if stop_after is None and any(s != "done" for s in states.values()):
        stuck = [k for k, s in states.items() if s != "done"]
        raise StudyError(f"units not done: {stuck}")
    if all(s == "done" for s in states.values()):
        analysis.build_tables(out, config)
        if report:
            from entrolab.study.report import write_report

            write_report(out)
    return out

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
    tables/*.parquet   tidy result tables (`entrolab.study.tables`, built by the study's kind)
    report/            index.html, report.md, figures (`entrolab.study.report`)
    .jax_cache/        JAX's persistent compilation cache (`compilation_cache`)

The kind-specific layout (what ``train/`` and ``units/`` hold) is documented by each
kind in `entrolab.studies`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import jax

from entrolab.study.config import CONFIG_FILE, StudyConfigBase, StudyConfigError, config_json, load_config
from entrolab.study.kinds import DEFAULT_KIND, get_kind
from entrolab.study.registry import Registry, Unit
from entrolab.study.report import write_report
from entrolab.study.tables import build_tables
from entrolab.study.units import SCRATCH_DIR, execute, output_dir

REGISTRY_FILE = "registry.sqlite"


class Executor(Protocol):
    """Runs units; yields (unit, wall seconds, error or None) as each finishes.

    `units` are ready to run (their dependencies are done); each is run with
    `entrolab.study.units.execute(study_dir, unit, progress)`. `on_start(unit)`
    is called before a unit starts (the driver marks it running); the driver
    alone touches the registry, so an executor never does. An exception in a
    unit is yielded, not raised (the driver then stops the study); a
    KeyboardInterrupt propagates, and closing the generator early must stop
    the units still running (their outputs are never published half-way).

    `InProcessExecutor` runs units one by one in this process;
    `entrolab.study.ray_executor.RayExecutor` submits them all to a Ray cluster
    at once and yields them in completion order.
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


def _normalised(old: dict) -> str | None:
    """An old config.json as the current code resolves it (older key names and missing
    defaults filled in), or None if it no longer validates."""
    try:
        return config_json(get_kind(old["kind"]).config_model.model_validate_json(json.dumps(old)))
    except (ValueError, KeyError):
        return None


def _describe(identity: dict) -> str:
    return ", ".join(f"{k} {v!r}" for k, v in identity.items())


def prepare(config: StudyConfigBase, out: Path, log=None) -> Registry:
    """Create or reopen a study directory for `config`.

    A directory of another study (another kind, name, or what the kind's `identity`
    names, e.g. the env) is refused. The same study with an edited config is
    replanned: units whose inputs changed are run again, the others are kept (see
    `entrolab.study.registry`).
    """
    out.mkdir(parents=True, exist_ok=True)
    resolved = config_json(config)
    path = out / CONFIG_FILE
    unchanged = False
    if path.exists():
        old = json.loads(path.read_text())
        old.setdefault("kind", DEFAULT_KIND)  # written before study kinds existed
        ours = config.identity()
        theirs = {k: old.get(k) for k in ours}
        if theirs != ours:
            raise StudyConfigError(
                f"{out} holds a different study ({_describe(theirs)}, not {_describe(ours)}); use another --out, "
                "or delete the directory to start over")
        unchanged = _normalised(old) == resolved
    registry = Registry(out / REGISTRY_FILE)
    kind = get_kind(config.kind)
    previous = {u.id: u for u in registry.units()}
    # a registry from before fingerprints knows no fingerprint: its done units are adopted when
    # the config is the one they were run with
    changes = registry.plan(kind.plan(config), adopt_unknown=unchanged)
    if log is not None and path.exists() and (changes["reset"] or changes["removed"]):
        log(f"the config changed: {len(changes['reset'])} units to redo, {len(changes['added'])} new, "
            f"{len(changes['removed'])} dropped")
    if not path.exists() or path.read_text() != resolved:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(resolved)
        tmp.replace(path)
    shutil.rmtree(out / SCRATCH_DIR, ignore_errors=True)  # partial outputs of units that died
    for unit_id in changes["removed"]:  # outputs of units no longer planned
        shutil.rmtree(output_dir(out, previous[unit_id], config), ignore_errors=True)
    return registry


def compilation_cache_dir(out: Path) -> str | None:
    """Where `compilation_cache(out)` keeps compiled programs: OUT/.jax_cache, or
    $ENTROLAB_JAX_CACHE; None when $ENTROLAB_JAX_CACHE is empty (the cache is off)."""
    return os.environ.get("ENTROLAB_JAX_CACHE", str(Path(out) / ".jax_cache")) or None


def enable_compilation_cache(path: str | None) -> None:
    """Turn on JAX's persistent compilation cache at `path` in this process (None: leave it off)."""
    if path:
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def compilation_cache(out: Path) -> None:
    """Turn on JAX's persistent compilation cache, so that a resumed study does not compile
    again: OUT/.jax_cache, or $ENTROLAB_JAX_CACHE (an empty value turns it off)."""
    enable_compilation_cache(compilation_cache_dir(out))


def run_study(
    config: StudyConfigBase | str | Path,
    out: str | Path,
    executor: Executor | None = None,
    progress: Any = None,
    report: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Run every pending unit of the study, then build the tables and the report.

    `stop_after`: stop after that many units (for tests and partial runs).
    """
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
        build_tables(out, config)
        if report:
            write_report(out)
    return out

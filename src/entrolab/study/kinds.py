"""Study kinds: the engine's one extension point.

A study kind (the robustness study, the algorithm comparison, ...) is an object
that satisfies `StudyKind` (usually a `Kind` record of its functions): its config model, how it plans units of work, how
it executes each unit, how it builds its tables from the units' outputs, and
the sections of its report. The engine (`entrolab.study`) knows no kind by name
and never imports one statically: `KINDS` maps each name to the module that
implements it (as gymnasium's registry maps an id to an entry point), loaded
on first use. Registering a built-in kind is one entry in `KINDS`; a kind
defined elsewhere (a plugin, a test) calls `register_kind(name, obj_or_module_path)`.

    kind = get_kind("robustness")
    config = kind.config_model.model_validate(data)
    units = kind.plan(config)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # types only: the engine's runtime graph never reaches a kind
    import pandas as pd

    from entrolab.report.document import Section
    from entrolab.study.config import StudyConfigBase
    from entrolab.study.registry import Unit

DEFAULT_KIND = "robustness"  # a config without ``kind = ...`` (every study before kinds existed)

# name -> "module:attribute" of an object implementing `StudyKind`: the one place built-in kinds are listed
KINDS: dict[str, str] = {
    "robustness": "entrolab.studies.robustness:KIND",
    "comparison": "entrolab.studies.comparison:KIND",
    "landscape": "entrolab.studies.landscape:KIND",
    "state-entropy": "entrolab.studies.state_entropy:KIND",
}
_loaded: dict[str, Any] = {}


@runtime_checkable
class StudyKind(Protocol):
    """What a study kind provides to the engine.

    - `name`: the value of ``kind = ...`` in a config;
    - `config_model`: its pydantic model (a `StudyConfigBase`): the whole TOML file,
      validated before any work starts;
    - `tables`: the names of the tables `build_tables` writes (``tables/NAME.parquet``);
    - `plan(config)`: every unit of work, each with a fingerprint of the config parts it
      depends on (`entrolab.study.units.fingerprint`);
    - `execute(config, study_dir, unit, out, progress)`: run one unit, writing its outputs
      under `out` (a scratch directory the engine publishes atomically afterwards);
    - `output_path(unit)`: where a unit's outputs are published, relative to the study
      directory;
    - `build_tables(study_dir, config, num_resamples)`: the tidy tables from the published
      outputs of the planned units (pure: the same outputs give the same tables);
    - `report(config, tables, fig_dir)`: the report's title and sections, from the tables
      only (figures written into `fig_dir`).
    """

    name: str
    config_model: type[StudyConfigBase]
    tables: tuple[str, ...]

    def plan(self, config: Any) -> list[Unit]: ...

    def execute(self, config: Any, study_dir: Path, unit: Unit, out: Path, progress: Any) -> None: ...

    def output_path(self, unit: Unit) -> str: ...

    def build_tables(self, study_dir: Path, config: Any, num_resamples: int | None = None
                     ) -> Mapping[str, pd.DataFrame]: ...

    def report(self, config: Any, tables: Mapping[str, pd.DataFrame], fig_dir: Path
               ) -> tuple[str, list[Section]]: ...


@dataclass(frozen=True)
class Kind:
    """A study kind assembled from its functions (satisfies `StudyKind`)."""

    name: str
    config_model: type
    tables: tuple[str, ...]
    plan: Callable[[Any], list]
    execute: Callable[..., None]
    output_path: Callable[[Any], str]
    build_tables: Callable[..., Mapping]
    report: Callable[..., tuple]


class UnknownKindError(ValueError):
    """A ``kind = ...`` that no registered study kind has."""


def register_kind(name: str, kind: Any) -> None:
    """Register a study kind: an object satisfying `StudyKind`, or the import path of one
    ("package.module" or "package.module:attribute"), loaded on first use."""
    _loaded.pop(name, None)
    if isinstance(kind, str):
        KINDS[name] = kind
    else:
        _check(name, kind)
        KINDS[name] = f"<object {kind!r}>"
        _loaded[name] = kind


def unregister_kind(name: str) -> None:
    KINDS.pop(name, None)
    _loaded.pop(name, None)


def registration(name: str) -> Any:
    """What `register_kind(name, ...)` was given for a registered kind: its import path, or the
    object itself. Another process (a Ray worker) that repeats the registration
    (`register_kind(name, registration(name))`) gets the same kind; an object is shipped by
    pickling, so its functions must be importable there."""
    if name in _loaded and KINDS.get(name, "").startswith("<object "):
        return _loaded[name]
    if name not in KINDS:
        get_kind(name)  # raises UnknownKindError with the known names
    return KINDS[name]


def known_kinds() -> list[str]:
    return sorted(KINDS)


def get_kind(name: str) -> StudyKind:
    """The study kind registered as `name` (imported on first use)."""
    if name in _loaded:
        return _loaded[name]
    if name not in KINDS:
        known = ", ".join(repr(k) for k in known_kinds())
        raise UnknownKindError(f"unknown study kind {name!r}; known: {known} ({DEFAULT_KIND!r} is the default)")
    module, _, attr = KINDS[name].partition(":")
    obj = importlib.import_module(module)
    if attr:
        obj = getattr(obj, attr)
    _check(name, obj)
    _loaded[name] = obj
    return obj


def _check(name: str, kind: Any) -> None:
    if not isinstance(kind, StudyKind):
        missing = [m for m in ("name", "config_model", "tables", "plan", "execute", "output_path", "build_tables",
                               "report") if not hasattr(kind, m)]
        raise TypeError(f"study kind {name!r} does not implement StudyKind (missing: {', '.join(missing)})")
    if kind.name != name:
        raise TypeError(f"study kind registered as {name!r} calls itself {kind.name!r}")

"""The study engine: what every study needs, whatever its kind.

    from entrolab.study import run_study
    run_study("configs/lorenz-quick.toml", "runs/lorenz-quick")   # resumable

- `config`: load a TOML file, dispatch on its ``kind``, validate (pydantic);
- `kinds`: the `StudyKind` protocol and the registry of kinds (`KINDS`);
- `registry`: the SQLite registry of units (states, fingerprints, schema versions);
- `units`: executing one unit (scratch directory, atomic publication, keys);
- `runner`: planning, recovery, executors, the JAX compilation cache;
- `ray_executor`: `RayExecutor`, the units as tasks on a Ray cluster (the `ray` extra);
- `tables` / `report`: the study's tables and report, built by its kind.

The kinds themselves live in `entrolab.studies`; the engine never imports them
by name.
"""

from entrolab.study.config import StudyConfigBase, StudyConfigError, load_config, parse_config, read_config
from entrolab.study.kinds import Kind, StudyKind, get_kind, register_kind
from entrolab.study.registry import Unit
from entrolab.study.runner import Executor, InProcessExecutor, StudyError, run_study

__all__ = ["Executor", "InProcessExecutor", "Kind", "StudyConfigBase", "StudyConfigError", "StudyError", "StudyKind",
           "Unit", "get_kind", "load_config", "parse_config", "read_config", "register_kind", "run_study"]

"""Executing one unit of work, whatever its kind, so that a crash never leaves half an output.

A unit is a plain description (`entrolab.study.registry.Unit`: id, kind, JSON
payload, dependencies, fingerprint), so any executor can run it:
`execute(study_dir, unit)` reads the resolved config from the study directory,
asks the study kind to run the unit into a scratch directory, fsyncs it and
publishes it with one `os.replace` at the kind's `output_path(unit)`.

Randomness is derived from the config's `seed` and a name (`unit_key`), never
from the order in which units run, so a resumed study gives the same results.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from entrolab.study.config import read_config
from entrolab.study.kinds import get_kind
from entrolab.study.registry import Unit

SCRATCH_DIR = ".scratch"


def unit_key(seed: int, name: str) -> jax.Array:
    """A PRNG key that depends only on the study seed and a name (a unit id, or a name shared
    by several units for common random numbers)."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    return jax.random.fold_in(jax.random.key(seed), digest)


def fingerprint(*parts: Any) -> str:
    """A short hash of JSON-able parts: what a unit depends on (config parts, the fingerprints
    of the units it reads). Planning again with other parts redoes the unit."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprint_view(values: Mapping[str, Any], neutral: Mapping[str, Any] = {},
                     companions: Mapping[str, tuple[str, ...]] = {}, drop: tuple[str, ...] = ()) -> dict:
    """`values` as a fingerprint should see them: without the keys in `drop` (memory or speed
    only), and without each option added after a release while it is at its `neutral` value (the
    one that computes what entrolab computed before the option existed), together with its
    `companions` (options that only matter when it is on). Adding an option then redoes no unit
    of an existing study; using it redoes exactly the units it changes."""
    gone = set(drop)
    for key, value in neutral.items():
        if key in values and values[key] == value:
            gone |= {key, *companions.get(key, ())}
    return {k: v for k, v in values.items() if k not in gone}


def write_parquet(df, path: Path) -> None:
    """A unit output table (inside the unit's scratch directory, so no atomic rename is needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)


def _scratch(study_dir: Path) -> Path:
    path = study_dir / SCRATCH_DIR / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def _publish(scratch: Path, final: Path) -> None:
    """Move a finished output directory into place (replacing a stale one)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(scratch, final)


def _fsync_tree(path: Path) -> None:
    for p in sorted(path.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def output_dir(study_dir: str | Path, unit: Unit, config=None) -> Path:
    """Where `unit`'s outputs are published."""
    config = config or read_config(study_dir)
    return Path(study_dir) / get_kind(config.kind).output_path(unit)


def execute(study_dir: str | Path, unit: Unit, progress: Any = None) -> None:
    """Run one unit to completion (raises on failure; partial output is discarded)."""
    study_dir = Path(study_dir)
    config = read_config(study_dir)
    kind = get_kind(config.kind)
    scratch = _scratch(study_dir)
    try:
        kind.execute(config, study_dir, unit, scratch, progress)
        _fsync_tree(scratch)
        _publish(scratch, study_dir / kind.output_path(unit))
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)

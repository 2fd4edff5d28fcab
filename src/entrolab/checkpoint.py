"""Checkpoints of trained policies: msgpack parameters plus a JSON manifest.

A checkpoint is a directory:

    policy.msgpack   flax.serialization msgpack of {"policy": ..., "init_policy": ..., "critic": ...}
    manifest.json    format version, algorithm, policy structure, config, hparams,
                     env name and overrides, package versions, sha256 and size of policy.msgpack

msgpack (flax.serialization) rather than Orbax: a policy is a few kB of
arrays, and one self-describing file with a checksum is simpler to verify
and to read anywhere (no pickle, no tensorstore). `load_policy` checks the
manifest, the format version and the checksum before it touches the arrays,
so a missing, truncated or incompatible checkpoint is a clear error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flax
import jax
import numpy as np
from flax import serialization

from entrolab._version import __version__
from entrolab.agents.policy import CategoricalPolicy, GaussianPolicy
from entrolab.agents.sac.networks import SquashedGaussianPolicy

FORMAT_VERSION = 1
PARAMS_FILE = "policy.msgpack"
MANIFEST_FILE = "manifest.json"


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, corrupt or incompatible."""


def _versions() -> dict[str, str]:
    return {"entrolab": __version__, "jax": jax.__version__, "flax": flax.__version__,
            "numpy": np.__version__}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(
    path: str | Path,
    policy: Any,
    arrays: dict[str, Any],
    *,
    algorithm: str,
    config: dict[str, Any],
    hparams: dict[str, float],
    env: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `arrays` (must contain "policy": the params `policy.apply` takes) and the manifest.

    The manifest is written last, so a directory without one is an incomplete
    checkpoint, never a silently partial one.
    """
    if "policy" not in arrays:
        raise ValueError("arrays must contain the 'policy' parameters")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    data = serialization.msgpack_serialize(jax.tree.map(np.asarray, arrays))
    _atomic_write(path / PARAMS_FILE, data)
    manifest = {
        "format_version": FORMAT_VERSION,
        "algorithm": algorithm,
        "policy": policy_spec(policy),
        "config": config,
        "hparams": hparams,
        "env": env,
        "versions": _versions(),
        "params_sha256": hashlib.sha256(data).hexdigest(),
        "params_bytes": len(data),
        **({"extra": extra} if extra else {}),
    }
    _atomic_write(path / MANIFEST_FILE, json.dumps(manifest, indent=2, default=float).encode())
    return path


@dataclass(frozen=True)
class LoadedPolicy:
    """A trained policy: `apply(params, obs) -> (mean, log_std)` is pure (the Gaussian before
    bounding: clipped or tanh-squashed for PPO's `GaussianPolicy`, tanh for SAC's
    `SquashedGaussianPolicy`)."""

    policy: Any
    params: dict
    arrays: dict  # everything saved: "policy", and e.g. "init_policy", "critic"
    manifest: dict

    def apply(self, params: dict, obs: jax.Array):
        return self.policy.apply(params, obs)

    def act(self, key: jax.Array, obs: jax.Array, deterministic: bool = True) -> jax.Array:
        """An action in [-1, 1]^m (the bounded mean, or a sample)."""
        if deterministic:
            return self.policy.deterministic_action(self.params, obs)
        return self.policy.stochastic_action(key, self.params, obs)


def _policy_classes() -> dict[str, type]:
    return {"GaussianPolicy": GaussianPolicy, "SquashedGaussianPolicy": SquashedGaussianPolicy,
            "CategoricalPolicy": CategoricalPolicy}


def policy_spec(policy) -> dict[str, Any]:
    """The policy's class name and constructor fields (JSON-able), for the manifest."""
    name = type(policy).__name__
    if name not in _policy_classes():
        raise ValueError(f"cannot checkpoint a policy of class {name}; known: {sorted(_policy_classes())}")
    fields = {f.name: getattr(policy, f.name) for f in dataclasses.fields(policy)}
    return {"class": name, **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}}


def policy_from_spec(spec: dict[str, Any], path: Path | str = "checkpoint"):
    """Rebuild the policy a manifest describes (a clear CheckpointError if it cannot)."""
    classes = _policy_classes()
    cls = classes.get(spec.get("class"))
    if cls is None:
        raise CheckpointError(f"{path}: unknown policy class {spec.get('class')!r}; known: {sorted(classes)}")
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in spec.items() if k != "class"}
    unknown, missing = sorted(set(kwargs) - names), sorted(n for n in ("obs_dim", "action_dim") if n not in kwargs)
    if unknown or missing:
        raise CheckpointError(f"{path}: the manifest's {cls.__name__} has unknown fields {unknown} "
                              f"or lacks {missing}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot rebuild {cls.__name__} from its manifest: {err}") from err


def read_manifest(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint: {MANIFEST_FILE} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{manifest_path} is not valid JSON (truncated or corrupt): {err}") from err
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is not supported by this entrolab "
            f"(expects {FORMAT_VERSION}; written by entrolab {manifest.get('versions', {}).get('entrolab', '?')})"
        )
    return manifest


def load_policy(path: str | Path) -> LoadedPolicy:
    """Load and verify a checkpoint written by `save_checkpoint`."""
    path = Path(path)
    manifest = read_manifest(path)
    params_path = path / PARAMS_FILE
    if not params_path.is_file():
        raise CheckpointError(f"{path}: {PARAMS_FILE} is missing")
    data = params_path.read_bytes()
    if len(data) != manifest.get("params_bytes"):
        raise CheckpointError(
            f"{params_path} does not match its manifest (size {len(data)} vs {manifest.get('params_bytes')} bytes): "
            "truncated or corrupt"
        )
    if hashlib.sha256(data).hexdigest() != manifest.get("params_sha256"):
        raise CheckpointError(f"{params_path} does not match its manifest (sha256 differs at the same size): corrupt")
    policy = policy_from_spec(manifest.get("policy", {}), path)
    arrays = jax.tree.map(jax.numpy.asarray, serialization.msgpack_restore(data))
    return LoadedPolicy(policy=policy, params=arrays["policy"], arrays=arrays, manifest=manifest)

"""Stable-Baselines3 policies as entrolab policies, read without running code from the file.

`from_sb3(path)` reads the `.zip` that `model.save(path)` writes for PPO (or A2C: the same
`ActorCriticPolicy`) and SAC with Box actions and flat Box observations, and returns an
`ImportedPolicy`: the pure JAX policy (`entrolab.agents.imported.ImportedGaussianPolicy`) with
its params, so that every entrolab measure, and `entrolab measure`, takes it.

What is read, and how (SB3's zip holds pickles; none is unpickled):

    policy.pth   the state dict: `torch.load(weights_only=True)`, torch's restricted unpickler,
                 which builds tensors and plain containers only. The architecture (hidden sizes,
                 observation and action dims) comes from the shapes of these tensors.
    data         JSON. Plain fields are read as JSON (use_sde, policy_kwargs' JSON-able items);
                 objects that JSON cannot hold (spaces, classes, schedules) are stored as a
                 base64 cloudpickle under ":serialized:", *beside* the str() of their first-level
                 attributes. Only those strings are read: the spaces' "_shape", "low" and "high"
                 (numpy's printout, parsed as numbers), the activation class's name
                 ("<class 'torch.nn.modules.activation.ReLU'>") and the policy class's
                 "__module__". The ":serialized:" entries are never decoded.

The action bounds come from the action space's printout; when that cannot be parsed (numpy
abbreviates arrays of more than 1000 numbers with "...") pass `env=` (an entrolab env name, or
`(env, params)`) and its action space gives them. Given both, they must agree, and the env's
observation and action dims must match the policy's: a clear `SB3FormatError` otherwise.

The deterministic action, as SB3's `model.predict(obs, deterministic=True)`:

    PPO / A2C (Box actions, no gSDE):  a = clip(nu(s), low, high),  nu the mean (action_net);
    SAC (no gSDE):                     a = low + (tanh(nu(s)) + 1) (high - low) / 2,  nu = mu(latent).

`ImportedPolicy.predict(params, obs)` is that action; `apply(params, obs) -> (mean, log_std)` is
entrolab's, in entrolab's action frame [-1, 1]^m (see `agents/imported.py`), as
`LoadedPolicy.apply`.

Observation normalisation. SB3 normalises outside the model (`VecNormalize`), so the zip has
no statistics. `obs_stats=FILE.npz` (arrays "mean" and "var", optional scalars "clip_obs" and
"epsilon": VecNormalize's defaults 10 and 1e-8) is plain numbers; `save_obs_stats` writes one
from a live `VecNormalize`. `vecnormalize=FILE.pkl` is what `VecNormalize.save` writes: a pickle,
so reading it runs code from the file, and it is read only with `allow_pickle=True`. Without
either, the policy sees raw observations (right for a policy trained without VecNormalize).
The normalisation is x = clip((s - mean) / sqrt(var + epsilon), -clip_obs, clip_obs), as
VecNormalize's.

torch is needed only to read `policy.pth` (the optional `sb3` extra); it is imported when
`from_sb3` runs, never when entrolab is imported.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from entrolab.agents.imported import ImportedGaussianPolicy
from entrolab.agents.spaces import to_env_action

INSTALL_HINT = "pip install 'entrolab[sb3]'"
# torch.nn activation classes -> ImportedGaussianPolicy's names (the same functions)
TORCH_ACTIVATIONS = {
    "Tanh": "tanh", "ReLU": "relu", "ELU": "elu", "SELU": "selu", "LeakyReLU": "leaky_relu",
    "GELU": "gelu", "SiLU": "silu", "Sigmoid": "sigmoid", "Softplus": "softplus",
}
# SB3's defaults when policy_kwargs does not name an activation
DEFAULT_ACTIVATION = {"actor-critic": "tanh", "sac": "relu"}
SAC_LOG_STD_BOUNDS = (-20.0, 2.0)  # SB3's LOG_STD_MIN, LOG_STD_MAX (sac/policies.py)
_CLASS_REPR = re.compile(r"^<class '([\w.]+)'>$")


class SB3FormatError(ValueError):
    """A Stable-Baselines3 file entrolab cannot read (missing, not SB3, or an unsupported policy)."""


class PickleRefused(SB3FormatError):
    """Reading this file would unpickle it, and `allow_pickle` was not given."""


@dataclass(frozen=True)
class ObsStats:
    """VecNormalize's observation statistics: x = clip((s - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)."""

    mean: np.ndarray
    var: np.ndarray
    clip_obs: float = 10.0
    epsilon: float = 1e-8
    source: str = ""

    def __post_init__(self):
        mean, var = np.asarray(self.mean, np.float64), np.asarray(self.var, np.float64)
        if mean.ndim != 1 or var.shape != mean.shape:
            raise SB3FormatError(f"observation stats {self.source}: mean and var must be vectors of one shape, "
                                 f"got {mean.shape} and {var.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.all(var >= 0)):
            raise SB3FormatError(f"observation stats {self.source}: mean and var must be finite, var >= 0")
        if not (math.isfinite(self.clip_obs) and self.clip_obs > 0 and math.isfinite(self.epsilon)
                and self.epsilon >= 0):
            raise SB3FormatError(f"observation stats {self.source}: need clip_obs > 0 and epsilon >= 0, "
                                 f"got {self.clip_obs}, {self.epsilon}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "var", var)


@dataclass(frozen=True)
class ImportedPolicy:
    """A policy read from another library: the pure `policy` with its `params`, the action box
    [action_low, action_high] of its env, and where it came from (`source`: algorithm, path,
    sha256, versions, activation, observation normalisation)."""

    policy: ImportedGaussianPolicy
    params: dict
    action_low: np.ndarray
    action_high: np.ndarray
    source: dict = field(default_factory=dict)

    @property
    def arrays(self) -> dict:
        """As `LoadedPolicy.arrays` (no initial parameters: SB3 does not keep them)."""
        return {"policy": self.params}

    def apply(self, params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) of the pre-bounding Gaussian in entrolab's frame, as `LoadedPolicy.apply`."""
        return self.policy.apply(params, obs)

    def predict(self, params: dict, obs: jax.Array) -> jax.Array:
        """The action in the env's units that SB3's `predict(obs, deterministic=True)` returns."""
        a = self.policy.deterministic_action(params, obs)
        return to_env_action(a, jnp.asarray(self.action_low), jnp.asarray(self.action_high))

    def act(self, key: jax.Array, obs: jax.Array, deterministic: bool = True) -> jax.Array:
        """An action in [-1, 1]^m (the bounded mean, or a sample), as `LoadedPolicy.act`."""
        if deterministic:
            return self.policy.deterministic_action(self.params, obs)
        return self.policy.stochastic_action(key, self.params, obs)


# ---- observation statistics ---------------------------------------------------------
def load_obs_stats(path: str | Path) -> ObsStats:
    """Observation statistics from a `.npz` ("mean", "var"; optional "clip_obs", "epsilon"), no pickle."""
    path = Path(path)
    if not path.is_file():
        raise SB3FormatError(f"observation stats {path} do not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise SB3FormatError(f"{path} is not a .npz of plain arrays: {err}") from err
    missing = sorted({"mean", "var"} - set(arrays))
    if missing:
        raise SB3FormatError(f"{path} lacks {missing} (has {sorted(arrays)})")
    scalars = {}
    for name, default in (("clip_obs", 10.0), ("epsilon", 1e-8)):
        value = arrays.get(name, default)
        if np.size(value) != 1:
            raise SB3FormatError(f"{path}: {name} must be a scalar, got shape {np.shape(value)}")
        scalars[name] = float(np.asarray(value).reshape(()))
    return ObsStats(arrays["mean"], arrays["var"], source=str(path), **scalars)


def _stats_of_vecnormalize(vec_normalize: Any, source: str) -> ObsStats | None:
    if not getattr(vec_normalize, "norm_obs", True):
        return None
    rms = getattr(vec_normalize, "obs_rms", None)
    if isinstance(rms, dict):
        raise SB3FormatError(f"{source}: normalises a Dict observation space; entrolab reads flat Box observations")
    if rms is None or not hasattr(rms, "mean") or not hasattr(rms, "var"):
        raise SB3FormatError(f"{source}: has no observation statistics (obs_rms)")
    return ObsStats(np.asarray(rms.mean), np.asarray(rms.var), float(vec_normalize.clip_obs),
                    float(vec_normalize.epsilon), source=source)


def save_obs_stats(path: str | Path, vec_normalize: Any) -> Path:
    """Write the observation statistics of a live SB3 `VecNormalize` to a `.npz` that
    `from_sb3(obs_stats=...)` reads without unpickling (convert once, where the pickle is trusted)."""
    stats = _stats_of_vecnormalize(vec_normalize, "VecNormalize")
    if stats is None:
        raise ValueError("this VecNormalize does not normalise observations (norm_obs=False): nothing to save")
    path = Path(path)
    np.savez(path, mean=stats.mean, var=stats.var, clip_obs=np.float64(stats.clip_obs),
             epsilon=np.float64(stats.epsilon))
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def read_vecnormalize(path: str | Path, allow_pickle: bool = False) -> ObsStats | None:
    """The observation statistics of a `VecNormalize.save` file (None if it does not normalise
    observations). The file is a pickle: loading it runs code from it, so only with `allow_pickle`."""
    path = Path(path)
    if not path.is_file():
        raise SB3FormatError(f"VecNormalize file {path} does not exist")
    if not allow_pickle:
        raise PickleRefused(
            f"{path} is a pickle (VecNormalize.save writes one), and loading a pickle runs code from the file. "
            "Pass allow_pickle=True (--allow-pickle) only for a file you trust, or convert it once with "
            "entrolab.interop.save_obs_stats and pass the .npz as obs_stats (--obs-stats)"
        )
    import pickle

    try:
        with open(path, "rb") as f:
            vec_normalize = pickle.load(f)  # the caller opted in (allow_pickle)
    except ModuleNotFoundError as err:
        raise SB3FormatError(f"{path}: unpickling it needs {err.name} ({INSTALL_HINT})") from err
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError) as err:
        raise SB3FormatError(f"{path} is not a VecNormalize pickle: {err}") from err
    return _stats_of_vecnormalize(vec_normalize, str(path))


# ---- the zip ---------------------------------------------------------------------------
def _torch():
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"reading a Stable-Baselines3 .zip needs torch (for torch.load(weights_only=True)): "
                          f"{INSTALL_HINT}") from err
    return torch


def _state_dict(raw: bytes, path: Path) -> dict[str, np.ndarray]:
    torch = _torch()
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... for foreign content
        raise SB3FormatError(f"{path}: policy.pth is not a plain state dict of tensors "
                             f"(torch.load(weights_only=True) refused it): {err}") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SB3FormatError(f"{path}: policy.pth is not a state dict of tensors")
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def _read_zip(path: Path) -> tuple[dict, dict[str, np.ndarray], str, str]:
    """(data JSON, state dict as numpy, SB3 version, sha256 of the file)."""
    if not path.exists():
        raise SB3FormatError(f"{path} does not exist")
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise SB3FormatError(f"{path} is not a Stable-Baselines3 .zip (not a zip file)")
    raw = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        names = set(z.namelist())
        missing = sorted({"data", "policy.pth"} - names)
        if missing:
            raise SB3FormatError(f"{path} is not a Stable-Baselines3 save: it lacks {missing} (has {sorted(names)})")
        try:
            data = json.loads(z.read("data"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SB3FormatError(f"{path}: its data entry is not JSON: {err}") from err
        state = _state_dict(z.read("policy.pth"), path)
        version_file = "_stable_baselines3_version"
        version = z.read(version_file).decode().strip() if version_file in names else "?"
    if not isinstance(data, dict):
        raise SB3FormatError(f"{path}: its data entry is not a JSON object")
    return data, state, version, hashlib.sha256(raw).hexdigest()


def _parse_numbers(text: Any) -> np.ndarray | None:
    """numpy's printout of a float array ("[-2. 0.5]", "-1.0") as numbers, or None if abbreviated or odd."""
    if isinstance(text, (int, float)):
        return np.asarray([float(text)])
    if not isinstance(text, str) or "..." in text:
        return None
    tokens = text.replace("[", " ").replace("]", " ").replace(",", " ").split()
    try:
        return np.asarray([float(t) for t in tokens], np.float64)
    except ValueError:
        return None


def _space(data: dict, name: str, path: Path) -> dict:
    """The readable part of a stored space: {"type", "shape", "low", "high"} (low/high may be None)."""
    entry = data.get(name)
    if not isinstance(entry, dict):
        raise SB3FormatError(f"{path}: its data has no readable {name}")
    kind = str(entry.get(":type:", ""))
    shape = entry.get("_shape")
    if "Box" not in kind:
        raise SB3FormatError(f"{path}: the {name} is {kind or 'of unknown type'}; entrolab reads Box spaces only")
    if not isinstance(shape, list) or len(shape) != 1:
        raise SB3FormatError(f"{path}: the {name} has shape {shape}; entrolab reads flat (1-d) Box spaces only")
    out = {"type": kind, "shape": tuple(shape), "low": None, "high": None}
    for bound in ("low", "high"):
        values = _parse_numbers(entry.get(bound))
        if values is not None and values.size == 1:
            values = np.full(shape, values[0])
        if values is not None and values.shape == tuple(shape):
            out[bound] = values
    return out


def _class_name(text: Any) -> tuple[str, str] | None:
    """("torch.nn.modules.activation", "ReLU") from "<class 'torch.nn.modules.activation.ReLU'>"."""
    match = _CLASS_REPR.match(text) if isinstance(text, str) else None
    if not match:
        return None
    module, _, name = match.group(1).rpartition(".")
    return module, name


def _activation(kwargs: dict, family: str, path: Path) -> str:
    text = kwargs.get("activation_fn")
    if text is None:
        return DEFAULT_ACTIVATION[family]
    parsed = _class_name(text)
    if parsed is None or not parsed[0].startswith("torch.nn") or parsed[1] not in TORCH_ACTIVATIONS:
        raise SB3FormatError(f"{path}: activation {text!r} is not one entrolab reproduces; "
                             f"known: torch.nn.{', torch.nn.'.join(TORCH_ACTIVATIONS)}")
    return TORCH_ACTIVATIONS[parsed[1]]


def _mlp(state: dict[str, np.ndarray], prefix: str, path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The Linear layers of an SB3 `create_mlp` Sequential (Linear at 0, 2, 4, ..., activations between)
    as (kernel (in, out), bias (out,)), in order."""
    indices = set()
    for key in state:
        if key.startswith(prefix):
            rest = key[len(prefix):].split(".")
            if len(rest) != 2 or not rest[0].isdigit() or rest[1] not in ("weight", "bias"):
                raise SB3FormatError(f"{path}: unexpected parameter {key!r} in the MLP {prefix[:-1]!r}")
            indices.add(int(rest[0]))
    ordered = sorted(indices)
    if ordered != list(range(0, 2 * len(ordered), 2)):
        raise SB3FormatError(f"{path}: the MLP {prefix[:-1]!r} has parameters at modules {ordered}; entrolab reads "
                             "Linear layers separated by activations only (no LayerNorm, dropout, ...)")
    return [_linear(state, f"{prefix}{i}", path) for i in ordered]


def _linear(state: dict[str, np.ndarray], name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    weight, bias = state.get(f"{name}.weight"), state.get(f"{name}.bias")
    if weight is None or bias is None or weight.ndim != 2 or bias.shape != weight.shape[:1]:
        raise SB3FormatError(f"{path}: {name} is not a Linear layer with a bias "
                             f"(weight {None if weight is None else weight.shape}, "
                             f"bias {None if bias is None else bias.shape})")
    return weight.T.astype(np.float32), bias.astype(np.float32)  # torch's (out, in) -> (in, out)


def _check_chain(layers, what: str, path: Path) -> None:
    for l in range(1, len(layers)):
        if layers[l][0].shape[0] != layers[l - 1][0].shape[1]:
            raise SB3FormatError(f"{path}: layer {l} of {what} takes {layers[l][0].shape[0]} inputs, "
                                 f"the layer before gives {layers[l - 1][0].shape[1]}")


def _only(state: dict, allowed: tuple[str, ...], path: Path, what: str) -> None:
    extra = sorted(k for k in state if not k.startswith(allowed))
    if extra:
        raise SB3FormatError(f"{path}: parameters {extra[:6]}{' ...' if len(extra) > 6 else ''} are not those of "
                             f"{what} with a flat MLP (a custom features extractor or extra modules?)")


def _net_arch_hint(kwargs: dict, key: str) -> list[int] | None:
    arch = kwargs.get("net_arch")
    if isinstance(arch, dict):
        arch = arch.get(key)
    return [int(x) for x in arch] if isinstance(arch, list) and all(isinstance(x, int) for x in arch) else None


def _actor(data: dict, state: dict[str, np.ndarray], path: Path) -> dict:
    """The actor's layers, family and options from the state dict and the readable data."""
    policy_class = data.get("policy_class")
    module = str(policy_class.get("__module__", "")) if isinstance(policy_class, dict) else ""
    kwargs = data.get("policy_kwargs") if isinstance(data.get("policy_kwargs"), dict) else {}
    if data.get("use_sde") or kwargs.get("use_sde"):
        raise SB3FormatError(f"{path}: the policy uses generalised state-dependent exploration (gSDE); "
                             "entrolab reads Gaussian policies without it")
    if kwargs.get("squash_output"):
        raise SB3FormatError(f"{path}: squash_output without gSDE is not an SB3 configuration entrolab reads")
    extractor = _class_name(kwargs.get("features_extractor_class"))
    if extractor is not None and extractor[1] != "FlattenExtractor":
        raise SB3FormatError(f"{path}: features extractor {extractor[1]}; entrolab reads flat MLP policies "
                             "(FlattenExtractor) only")
    if "action_net.weight" in state:
        family, algorithm = "actor-critic", ("PPO" if "clip_range" in data else "A2C" if "rms_prop_eps" in data
                                              else "actor-critic")
        _only(state, ("log_std", "action_net.", "mlp_extractor.policy_net.", "mlp_extractor.value_net.",
                      "value_net."), path, "an SB3 ActorCriticPolicy")
        hidden = _mlp(state, "mlp_extractor.policy_net.", path)
        head = _linear(state, "action_net", path)
        log_std = state.get("log_std")
        if log_std is None or log_std.ndim != 1 or log_std.shape[0] != head[0].shape[1]:
            raise SB3FormatError(f"{path}: the policy has no log_std vector for its {head[0].shape[1]} actions "
                                 f"(got {None if log_std is None else log_std.shape}): not a Gaussian policy "
                                 "over Box actions")
        extra = {"log_std": log_std.astype(np.float32)}
    elif "actor.mu.weight" in state:
        family, algorithm = "sac", "SAC"
        _only(state, ("actor.latent_pi.", "actor.mu.", "actor.log_std.", "critic.", "critic_target."), path,
              "an SB3 SACPolicy")
        hidden = _mlp(state, "actor.latent_pi.", path)
        head = _linear(state, "actor.mu", path)
        log_std_head = _linear(state, "actor.log_std", path)
        if log_std_head[0].shape != head[0].shape:
            raise SB3FormatError(f"{path}: the log-std head {log_std_head[0].shape} does not match the mean head "
                                 f"{head[0].shape}")
        extra = {"log_std_net": {"kernel": log_std_head[0], "bias": log_std_head[1]}}
    else:
        kind = "TD3/DDPG (a deterministic policy)" if module.endswith(("td3.policies", "ddpg.policies")) else \
            (module or "an unknown policy")
        raise SB3FormatError(f"{path}: {kind} is not a policy entrolab reads; from_sb3 reads PPO, A2C and SAC "
                             f"Gaussian policies over Box actions (state dict keys: {sorted(state)[:6]} ...)")
    layers = [*hidden, head]
    _check_chain(layers, "the actor", path)
    hidden_sizes = [k.shape[1] for k, _ in hidden]
    hint = _net_arch_hint(kwargs, "pi")  # a list, or dict(pi=..., vf=... / qf=...)
    if hint is not None and hint != hidden_sizes:
        raise SB3FormatError(f"{path}: policy_kwargs' net_arch {hint} does not match the stored layers {hidden_sizes}")
    return {"family": family, "algorithm": algorithm, "layers": layers, "hidden_sizes": tuple(hidden_sizes),
            "activation": _activation(kwargs, family, path), "extra": extra, "policy_module": module}


def _env_spaces(env: Any) -> tuple[str, int, int, np.ndarray, np.ndarray]:
    """(name, obs_dim, action_dim, low, high) of an entrolab env name or (env, params)."""
    from entrolab.envs import make

    if isinstance(env, str):
        name, (env_obj, params) = env, make(env)
    else:
        env_obj, params = env
        name = getattr(env_obj, "name", type(env_obj).__name__)
    obs_shape = tuple(env_obj.observation_space(params).shape)
    space = env_obj.action_space(params)
    shape = tuple(space.shape)
    if len(obs_shape) != 1 or len(shape) != 1:
        raise SB3FormatError(f"env {name}: observations {obs_shape} and actions {shape} must be flat")
    low = np.broadcast_to(np.asarray(space.low, np.float64), shape).copy()
    high = np.broadcast_to(np.asarray(space.high, np.float64), shape).copy()
    return name, obs_shape[0], shape[0], low, high


def from_sb3(
    zip_path: str | Path,
    *,
    env: Any = None,
    vecnormalize: str | Path | None = None,
    allow_pickle: bool = False,
    obs_stats: str | Path | ObsStats | None = None,
) -> ImportedPolicy:
    """Read an SB3 PPO, A2C or SAC `.zip` (Box actions, flat Box observations, an MLP policy
    without gSDE) as an `ImportedPolicy`, without unpickling anything unless `allow_pickle`.

    Args:
        zip_path: what `model.save(path)` wrote.
        env: optional entrolab env name (or `(env, params)`): its action space gives the bounds
            when the zip's cannot be read, and its dims are checked against the policy's.
        vecnormalize: a `VecNormalize.save` file (a pickle; needs `allow_pickle=True`).
        allow_pickle: permit unpickling `vecnormalize` (runs code from that file).
        obs_stats: a `.npz` of observation statistics (see `load_obs_stats`), or an `ObsStats`.
    Raises:
        SB3FormatError: a missing or foreign file, an unsupported policy, dims or bounds that do
            not match `env`; `PickleRefused` for `vecnormalize` without `allow_pickle`.
        ImportError: torch is not installed.
    """
    path = Path(zip_path)
    if vecnormalize is not None and obs_stats is not None:
        raise SB3FormatError("give vecnormalize or obs_stats, not both")
    stats = None
    if vecnormalize is not None:
        stats = read_vecnormalize(vecnormalize, allow_pickle)  # refuses before the zip is read
    elif obs_stats is not None:
        stats = obs_stats if isinstance(obs_stats, ObsStats) else load_obs_stats(obs_stats)

    data, state, version, sha256 = _read_zip(path)
    actor = _actor(data, state, path)
    layers = actor["layers"]
    obs_dim, action_dim = layers[0][0].shape[0], layers[-1][0].shape[1]
    obs_space, action_space = _space(data, "observation_space", path), _space(data, "action_space", path)
    if obs_space["shape"] != (obs_dim,) or action_space["shape"] != (action_dim,):
        raise SB3FormatError(f"{path}: the stored spaces {obs_space['shape']} / {action_space['shape']} do not "
                             f"match the network's input {obs_dim} and output {action_dim}")
    low, high = action_space["low"], action_space["high"]
    env_name = None
    if env is not None:
        env_name, env_obs, env_act, env_low, env_high = _env_spaces(env)
        if (env_obs, env_act) != (obs_dim, action_dim):
            raise SB3FormatError(f"env {env_name} has {env_obs} observations and {env_act} actions; the policy in "
                                 f"{path} takes {obs_dim} observations and gives {action_dim} actions")
        if low is not None and high is not None and not (
                np.allclose(low, env_low, rtol=1e-6, atol=1e-6) and np.allclose(high, env_high, rtol=1e-6, atol=1e-6)):
            raise SB3FormatError(f"env {env_name}'s action box [{env_low}, {env_high}] is not the one the policy in "
                                 f"{path} was trained on [{low}, {high}]")
        low, high = env_low, env_high
    if low is None or high is None:
        raise SB3FormatError(f"{path}: the action bounds cannot be read from the zip (printout "
                             f"{data['action_space'].get('low')!r}); pass env= (an entrolab env name) to give them")
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        raise SB3FormatError(f"{path}: the action box [{low}, {high}] must be bounded with high > low")
    if stats is not None and stats.mean.shape != (obs_dim,):
        raise SB3FormatError(f"observation stats {stats.source} are for {stats.mean.shape[0]} observations, "
                             f"the policy takes {obs_dim}")

    clip_frame = actor["family"] == "actor-critic"
    center, half = (high + low) / 2.0, (high - low) / 2.0
    identity_frame = not clip_frame or (np.all(center == 0.0) and np.all(half == 1.0))
    policy = ImportedGaussianPolicy(
        obs_dim=obs_dim, action_dim=action_dim, hidden_sizes=actor["hidden_sizes"], activation=actor["activation"],
        action_bounding="clip" if clip_frame else "tanh", state_dependent_std=not clip_frame,
        normalize_observations=stats is not None,
        obs_clip=stats.clip_obs if stats is not None else 10.0,
        obs_epsilon=stats.epsilon if stats is not None else 1e-8,
        log_std_min=SAC_LOG_STD_BOUNDS[0], log_std_max=SAC_LOG_STD_BOUNDS[1],
        mean_offset=None if identity_frame else tuple(center.tolist()),
        mean_scale=None if identity_frame else tuple(half.tolist()),
    )
    params: dict[str, Any] = {"mean_net": {f"Dense_{l}": {"kernel": jnp.asarray(k), "bias": jnp.asarray(b)}
                                           for l, (k, b) in enumerate(layers)}}
    extra = actor["extra"]
    if "log_std" in extra:
        # the Gaussian in entrolab's frame: std / half-range (see agents/imported.py)
        params["log_std"] = jnp.asarray(extra["log_std"] - np.log(half), jnp.float32)
    else:
        params["log_std_net"] = jax.tree.map(jnp.asarray, extra["log_std_net"])
    if stats is not None:
        params["obs_norm"] = {"mean": jnp.asarray(stats.mean, jnp.float32), "var": jnp.asarray(stats.var, jnp.float32)}
    source = {
        "format": "stable-baselines3", "algorithm": actor["algorithm"], "path": str(path), "sha256": sha256,
        "sb3_version": version, "policy_module": actor["policy_module"], "activation": actor["activation"],
        "hidden_sizes": list(actor["hidden_sizes"]), "obs_normalization": stats.source if stats is not None else None,
        "env_checked": env_name,
    }
    return ImportedPolicy(policy=policy, params=params, action_low=low.astype(np.float32),
                          action_high=high.astype(np.float32), source=source)

"""`entrolab measure`: the measures of one trained policy, from any source, as tables.

A policy is an entrolab checkpoint directory (PPO's `GaussianPolicy`; a SAC actor enters as
an `ImportedGaussianPolicy` with the same function, `agents/imported.py`) or a
Stable-Baselines3 `.zip` (`entrolab.interop.from_sb3`, nothing unpickled without opt-in).
`measure_policy` runs, in the evaluation env (the policy's actions in [-1, 1]^m mapped to the
env's box, as in training):

- robustness: returns of `episodes` episodes at each observation-noise std (0 included),
  deterministic and/or sampled (`modes`; `evaluate_grid`, common random numbers; each mode is
  one compiled program of several seconds), and the excess risk
  R(sigma) = J(0) - J(sigma) and its rate R / |J(0)| with paired bootstrap intervals
  (`excess_risk`). Needs an env whose params have `obs_noise_std` (entrolab's); for others
  (gymnax) this part is left out and said so;
- complexity: norms of the mean network (`norm_measures`; the distance from initialisation
  when the checkpoint kept its initial parameters) and the empirical Lipschitz constant
  (`empirical_lipschitz`) on `states` observations the deterministic policy visits;
- the Fisher trace per visited state (`fisher_trace`) and its summary;
- PAC-Bayes sharpness (`sharpness`): the drop in the deterministic return when the mean
  network's parameters move by sigma' z, z ~ N(0, I), per sigma' of a grid; the largest grid
  sigma' whose drop stays within `sharpness_tolerance` x |J| is the summary.

Tables (pandas): "returns" (per noise std and mode), "excess_risk", "complexity" (one row),
"fisher_states" (per visited state), "sharpness" (per sigma'). Randomness comes from `seed`:
one key per part (`jax.random.fold_in`), so adding a part changes no other's numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from entrolab.agents.evaluate import episode_returns
from entrolab.agents.imported import from_squashed_gaussian
from entrolab.agents.spaces import to_env_action
from entrolab.measures.complexity import empirical_lipschitz, norm_measures, sharpness
from entrolab.measures.fisher import fisher_trace, summarize
from entrolab.measures.robustness import MODES, condition_grid, evaluate_grid, excess_risk, stack_pytrees

PARTS = ("robustness", "visited", "complexity", "fisher", "sharpness")


@dataclass(frozen=True)
class MeasureSettings:
    """What `measure_policy` computes, and how much of it."""

    obs_noise: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5)  # the reference 0 is added
    episodes: int = 32  # per noise std and mode
    modes: tuple[str, ...] = MODES  # "deterministic" (the bounded mean) and/or "stochastic" (sampled actions)
    states: int = 256  # visited observations for the Lipschitz constant and the Fisher trace
    sharpness_sigmas: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
    sharpness_samples: int = 8  # perturbations per sigma'
    sharpness_episodes: int = 8  # episodes per return estimate
    sharpness_tolerance: float = 0.1  # allowed drop, relative to |J|
    num_resamples: int = 1000  # bootstrap resamples of the excess risk
    seed: int = 0

    def __post_init__(self):
        for name in ("episodes", "states", "sharpness_episodes", "num_resamples"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.sharpness_samples) < 2:
            raise ValueError(f"sharpness_samples must be >= 2 (for a standard error), got {self.sharpness_samples}")
        if int(self.episodes) < 2:
            raise ValueError(f"episodes must be >= 2 (for the paired bootstrap), got {self.episodes}")
        if not self.modes or any(m not in MODES for m in self.modes) or len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes must be distinct values among {list(MODES)}, got {list(self.modes)}")
        if any(not np.isfinite(v) or v < 0 for v in self.obs_noise):
            raise ValueError(f"observation-noise stds must be finite and >= 0, got {list(self.obs_noise)}")
        if not self.sharpness_sigmas or any(not np.isfinite(s) or s <= 0 for s in self.sharpness_sigmas):
            raise ValueError(f"sharpness sigmas must be positive, got {list(self.sharpness_sigmas)}")
        if not (np.isfinite(self.sharpness_tolerance) and self.sharpness_tolerance > 0):
            raise ValueError(f"sharpness_tolerance must be > 0, got {self.sharpness_tolerance}")


@dataclass(frozen=True)
class Subject:
    """A policy to measure: its structure and params, its initial params (or None), where it came
    from, and the env it was trained in when its file says so (entrolab checkpoints)."""

    policy: Any
    params: dict
    init_params: dict | None
    source: dict
    env_name: str | None = None
    env_overrides: dict = field(default_factory=dict)


def load_subject(path: str | Path, *, env: Any = None, vecnormalize: str | Path | None = None,
                 allow_pickle: bool = False, obs_stats: str | Path | None = None) -> Subject:
    """An entrolab checkpoint (a directory) or a Stable-Baselines3 `.zip` (a file).

    `env` (an entrolab env name or `(env, params)`) is passed to `from_sb3` for its checks;
    `vecnormalize`, `allow_pickle` and `obs_stats` are SB3's observation statistics (an entrolab
    checkpoint carries its own, so they are refused there).
    """
    from entrolab.checkpoint import load_policy

    path = Path(path)
    if not path.exists():
        raise ValueError(f"policy {path} does not exist (an entrolab checkpoint directory or an SB3 .zip)")
    if path.is_dir():
        if vecnormalize is not None or obs_stats is not None:
            raise ValueError(f"{path} is an entrolab checkpoint, which keeps its own observation statistics: "
                             "--vecnormalize and --obs-stats are for Stable-Baselines3 policies")
        loaded = load_policy(path)
        policy, params = loaded.policy, loaded.params
        init = loaded.arrays.get("init_policy")
        if type(policy).__name__ == "SquashedGaussianPolicy":
            converted, params = from_squashed_gaussian(policy, params)
            init = from_squashed_gaussian(policy, init)[1] if init is not None else None
            policy = converted
        elif init is not None and "obs_norm" in params:
            init = {**init, "obs_norm": params["obs_norm"]}
        env_spec = loaded.manifest.get("env", {})
        source = {"format": "entrolab", "algorithm": loaded.manifest.get("algorithm", "?"), "path": str(path),
                  "sha256": loaded.manifest.get("params_sha256", "?"),
                  "hidden_sizes": list(policy.hidden_sizes), "activation": policy.activation}
        return Subject(policy, params, init, source, env_spec.get("name"), dict(env_spec.get("overrides") or {}))
    from entrolab.interop import from_sb3

    imported = from_sb3(path, env=env, vecnormalize=vecnormalize, allow_pickle=allow_pickle, obs_stats=obs_stats)
    return Subject(imported.policy, imported.params, None, imported.source)


def check_compatible(policy: Any, env: Any, env_params: Any, env_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The env's action box (low, high); a ValueError naming both sides if the dims do not match."""
    obs_shape = tuple(env.observation_space(env_params).shape)
    space = env.action_space(env_params)
    act_shape = tuple(space.shape)
    if obs_shape != (policy.obs_dim,) or act_shape != (policy.action_dim,):
        raise ValueError(f"env {env_name} has observations of shape {obs_shape} and actions of shape {act_shape}; "
                         f"the policy takes {policy.obs_dim} observations and gives {policy.action_dim} actions")
    low = np.broadcast_to(np.asarray(space.low, np.float32), act_shape).copy()
    high = np.broadcast_to(np.asarray(space.high, np.float32), act_shape).copy()
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"env {env_name}: the action space must be bounded, got [{space.low}, {space.high}]")
    return low, high


def visited_observations(policy, params, env, env_params, key, num_states: int, low, high) -> jax.Array:
    """(N, obs_dim): observations the deterministic policy visits in noise-free episodes of the env
    (ceil(num_states / steps) episodes, auto-reset inside), evenly subsampled to `num_states`."""
    steps = int(env_params.max_steps_in_episode)
    episodes = max(1, -(-int(num_states) // steps))

    def episode(key):
        # a scan of its own rather than `rollout`, whose Trajectory wants entrolab's info["final_x"]
        # (gymnax envs have no such key); observations only, auto-reset inside
        k_reset, k_run = jax.random.split(key)
        obs, state = env.reset(k_reset, env_params)

        def body(carry, k):
            obs, state = carry
            action = to_env_action(policy.deterministic_action(params, obs), low, high)
            next_obs, next_state, *_ = env.step(k, state, action, env_params)
            return (next_obs, next_state), obs

        return jax.lax.scan(body, (obs, state), jax.random.split(k_run, steps))[1]

    obs = jax.jit(jax.vmap(episode))(jax.random.split(key, episodes))
    obs = np.asarray(obs).reshape(episodes * steps, -1)
    return obs[np.linspace(0, len(obs) - 1, min(int(num_states), len(obs))).round().astype(int)]


def largest_sigma_within(sigmas: np.ndarray, drops: np.ndarray, tolerance: float) -> tuple[float, bool]:
    """The largest grid sigma' below the first whose drop exceeds `tolerance` (0 if the first
    does), and whether some did (if none, the largest grid value is only a lower bound)."""
    over = np.flatnonzero(drops > tolerance)
    if over.size == 0:
        return float(sigmas[-1]), False
    return (float(sigmas[over[0] - 1]) if over[0] > 0 else 0.0), True


def has_obs_noise(env_params: Any) -> bool:
    return hasattr(env_params, "obs_noise_std")


def measure_policy(policy: Any, params: dict, env: Any, env_params: Any, settings: MeasureSettings,
                   init_params: dict | None = None, env_name: str = "env", progress: Any = None
                   ) -> dict[str, pd.DataFrame]:
    """Every measure of one policy (module docstring); `progress` (rich) gets one task of
    `len(PARTS)` steps. Raises ValueError if the env does not fit the policy."""
    low, high = check_compatible(policy, env, env_params, env_name)
    key = jax.random.key(settings.seed)
    keys = {part: jax.random.fold_in(key, i) for i, part in enumerate(PARTS)}
    steps = int(env_params.max_steps_in_episode)
    task = progress.add_task("measuring", total=len(PARTS)) if progress is not None else None

    def step(description: str) -> None:
        if task is not None:
            progress.update(task, description=description)

    def done() -> None:
        if task is not None:
            progress.advance(task)

    tables: dict[str, pd.DataFrame] = {}
    step("robustness grid (jit + run)")
    if has_obs_noise(env_params):
        conditions = condition_grid(env_params, obs_noise=settings.obs_noise)
        grid = evaluate_grid(policy, stack_pytrees([params]), env, env_params, conditions, keys["robustness"],
                             settings.episodes, tuple(settings.modes), num_steps=steps)
        cols = ["value", "mode", "mean_return", "std_return", "num_episodes"]
        tables["returns"] = grid.summary[cols].rename(columns={"value": "obs_noise_std"})
        risk = excess_risk(grid, num_resamples=settings.num_resamples, rng=settings.seed)
        keep = ["value", "mode", "num_episodes", "return_reference", "return", "excess_risk", "excess_risk_low",
                "excess_risk_high", "excess_risk_rate", "excess_risk_rate_low", "excess_risk_rate_high"]
        tables["excess_risk"] = risk[keep].rename(columns={"value": "obs_noise_std"})
    done()

    step("visited states")
    obs = visited_observations(policy, params, env, env_params, keys["visited"], settings.states, low, high)
    done()

    step("norms and Lipschitz constant")
    row: dict[str, Any] = {k: float(v) for k, v in jax.jit(norm_measures)(params, init_params).items()}
    row.update({k: float(v) for k, v in jax.jit(lambda p, o: empirical_lipschitz(policy, p, o))(params, obs).items()})
    row["num_states"] = int(obs.shape[0])
    done()

    step("Fisher trace")
    fisher = jax.jit(lambda p, o: fisher_trace(policy, p, o))(params, obs)
    for part in ("total", "mean", "log_std", "sensitivity"):
        row.update({f"fisher_{part}_{k}": float(v) for k, v in summarize(fisher[part]).items()})
    row["fisher_precision_mean"] = float(np.mean(np.asarray(fisher["precision"])))
    tables["fisher_states"] = pd.DataFrame({"state": np.arange(obs.shape[0]),
                                            **{f"fisher_{k}": np.asarray(fisher[k], np.float64)
                                               for k in ("total", "mean", "log_std", "sensitivity", "precision")}})
    done()

    step("sharpness (jit + run)")

    def return_fn(p, k):
        return episode_returns(policy, p, env, env_params, k, settings.sharpness_episodes, steps, True,
                               low, high).mean()

    # tolerance 1 here: the relative tolerance is applied to the drops below (one compilation)
    sharp = jax.jit(lambda p, k: sharpness(policy, p, return_fn, k, settings.sharpness_sigmas,
                                           settings.sharpness_samples, 1.0))(params, keys["sharpness"])
    sigmas, drops = np.asarray(sharp["sigmas"], np.float64), np.asarray(sharp["drop"], np.float64)
    base_return = float(sharp["base_return"])
    tolerance = settings.sharpness_tolerance * abs(base_return)
    sigma, bracketed = largest_sigma_within(sigmas, drops, tolerance)
    row.update(sharpness_sigma=sigma, sharpness_bracketed=bool(bracketed), sharpness_base_return=base_return,
               sharpness_tolerance=tolerance)
    tables["sharpness"] = pd.DataFrame({
        "sigma": sigmas, "perturbed_return": np.asarray(sharp["perturbed_return"], np.float64), "drop": drops,
        "drop_stderr": np.asarray(sharp["drop_stderr"], np.float64)})
    done()
    if task is not None:
        progress.remove_task(task)
    tables["complexity"] = pd.DataFrame([row])
    return tables


def settings_dict(settings: MeasureSettings) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}

"""The units of work of a study and how each is executed.

A unit is a plain description (`Unit`: id, kind, JSON payload, dependencies)
so that any executor can run it: `execute(study_dir, unit)` reads the
resolved config from the study directory and writes the unit's outputs
atomically (into a scratch directory, then one `os.replace`). Kinds:

- ``train/VARIANT``: one compiled sweep (alphas x seeds) of one training
  variant (schedule, horizon, network, bounding, training noise):
  `entrolab.training.train_sweep` -> ``train/VARIANT/`` (checkpoints,
  runs.parquet, metrics.parquet).
- ``evaluate/VARIANT/FAMILY``: every policy of the variant under every
  condition of one perturbation family (obs_noise, action_noise, dynamics)
  and every initial distribution, both modes -> ``units/evaluate/...``
  (per-episode returns and their summary).
- ``measures/VARIANT``: complexity measures and per-state Fisher traces of
  every policy of the variant -> ``units/measures/...``.

Randomness is derived from the config's `seed` and the unit's id, never from
the order in which units run, so a resumed study gives the same results.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from entrolab.study.config import StudyConfig
from entrolab.study.registry import Unit

CONFIG_FILE = "config.json"


def unit_key(seed: int, unit_id: str) -> jax.Array:
    """A key that depends only on the study seed and the unit's id."""
    digest = int.from_bytes(hashlib.sha256(unit_id.encode()).digest()[:4], "little")
    return jax.random.fold_in(jax.random.key(seed), digest)


def read_config(study_dir: Path):
    """The resolved config of a study directory: a `StudyConfig`, or a `ComparisonConfig`."""
    from entrolab.study.comparison import ComparisonConfig

    text = (Path(study_dir) / CONFIG_FILE).read_text()
    if json.loads(text).get("kind") == "comparison":
        return ComparisonConfig.model_validate_json(text)
    return StudyConfig.model_validate_json(text)


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def families(config: StudyConfig) -> list[str]:
    return ["obs_noise"] + (["action_noise"] if config.evaluate.action_noise else []) + \
        (["dynamics"] if config.evaluate.dynamics is not None else [])


def plan_units(config) -> list[Unit]:
    """Every unit of the study, with fingerprints of the config parts each depends on."""
    if not isinstance(config, StudyConfig):
        from entrolab.study import comparison

        return comparison.plan_units(config)
    c = json.loads(config.model_dump_json())
    train_common = {k: c[k] for k in ("env", "env_options", "alphas", "seeds", "seed_offset")}
    train_section = {k: v for k, v in c["train"].items()
                     if k not in ("schedule", "ent_horizon", "hidden", "bounding", "train_obs_noise")}
    ev = c["evaluate"]
    ev_common = {k: ev[k] for k in ("episodes", "init_std", "modes")}
    units = []
    for v in config.variants():
        train_id = f"train/{v['variant']}"
        train_fp = _fingerprint(train_common, train_section, v)
        units.append(Unit(train_id, "train", v, (), train_fp))
        for family in families(config):
            units.append(Unit(f"evaluate/{v['variant']}/{family}", "evaluate",
                              {"variant": v["variant"], "family": family}, (train_id,),
                              _fingerprint(train_fp, ev_common, ev[family], config.inits, c["seed"], family)))
        units.append(Unit(f"measures/{v['variant']}", "measures", {"variant": v["variant"]}, (train_id,),
                          _fingerprint(train_fp, c["measures"], config.inits, ev["init_std"], c["seed"])))
    return units


def _scratch(study_dir: Path) -> Path:
    path = study_dir / ".scratch" / uuid.uuid4().hex
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


def execute(study_dir: str | Path, unit: Unit, progress: Any = None) -> None:
    """Run one unit to completion (raises on failure; partial output is discarded)."""
    study_dir = Path(study_dir)
    config = read_config(study_dir)
    if isinstance(config, StudyConfig):
        fn = {"train": _train, "evaluate": _evaluate, "measures": _measures}[unit.kind]
    else:
        from entrolab.study.comparison import UNIT_FUNCTIONS

        fn = UNIT_FUNCTIONS[unit.kind]
    scratch = _scratch(study_dir)
    try:
        fn(config, study_dir, unit, scratch, progress)
        _fsync_tree(scratch)
        _publish(scratch, study_dir / unit.id if unit.kind == "train" else study_dir / "units" / unit.id)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


# ---- train ------------------------------------------------------------------
def _train(config: StudyConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    from entrolab.agents.ppo import PPOConfig, PPOHParams
    from entrolab.training import train_sweep

    v, t = unit.payload, config.train
    ppo = PPOConfig(
        num_envs=t.num_envs, num_steps=t.num_steps, total_timesteps=t.steps, num_epochs=t.epochs,
        num_minibatches=t.minibatches, hidden_sizes=tuple(v["hidden"]), activation=t.activation,
        action_bounding=v["bounding"], normalize_observations=t.normalize_obs, entropy_schedule=v["schedule"],
    )
    hp = PPOHParams(learning_rate=t.learning_rate, gamma=t.gamma, gae_lambda=t.gae_lambda, clip_eps=t.clip_eps,
                    vf_coef=t.vf_coef, ent_horizon=v["ent_horizon"], max_grad_norm=t.max_grad_norm,
                    init_log_std=t.init_log_std)
    overrides = dict(config.env_options)
    if v["train_obs_noise"] > 0 or "obs_noise_std" not in overrides:
        overrides["obs_noise_std"] = v["train_obs_noise"]
    train_sweep(config.env, config.alphas, config.seeds, out, ppo, hp, overrides,
                eval_episodes=t.eval_episodes, num_chunks=t.chunks, seed_offset=config.seed_offset,
                progress=progress)


# ---- shared: the policies of a variant --------------------------------------
def load_variant(config: StudyConfig, study_dir: Path, variant: str):
    """(policy, stacked params, list of LoadedPolicy, runs table) of a trained variant."""
    import pandas as pd

    from entrolab.checkpoint import load_policy
    from entrolab.robustness import stack_pytrees

    vdir = study_dir / "train" / variant
    runs = pd.read_parquet(vdir / "runs.parquet")
    loaded = [load_policy(vdir / c) for c in runs["checkpoint"]]
    stacked = stack_pytrees([p.params for p in loaded])
    return loaded[0].policy, stacked, loaded, runs


def _eval_env(config: StudyConfig):
    """The evaluation environment: the study's env options, no noise."""
    from entrolab.envs import make

    overrides = {**config.env_options, "obs_noise_std": 0.0, "action_noise_std": 0.0}
    return make(config.env, **overrides)


def _write_parquet(df, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)


# ---- evaluate ---------------------------------------------------------------
def _evaluate(config: StudyConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    from entrolab.robustness import condition_grid, evaluate_grid

    variant, family = unit.payload["variant"], unit.payload["family"]
    policy, stacked, _, runs = load_variant(config, study_dir, variant)
    env, base = _eval_env(config)
    ev = config.evaluate
    kwargs: dict[str, Any] = {}
    if family == "obs_noise":
        kwargs["obs_noise"] = ev.obs_noise
    elif family == "action_noise":
        kwargs["action_noise"] = ev.action_noise
    else:
        kwargs["dynamics"] = {ev.dynamics.param: ev.dynamics.values}
    conditions = condition_grid(base, config.inits, init_std=ev.init_std, **kwargs)
    task = progress.add_task(f"  evaluate {variant} / {family}", total=None) if progress is not None else None
    # the same key for every variant and family: common random numbers across the study
    key = unit_key(config.seed, "evaluate")
    result = evaluate_grid(policy, stacked, env, base, conditions, key, ev.episodes, tuple(ev.modes))
    if task is not None:
        progress.remove_task(task)
    ids = runs["run_id"].to_numpy()
    for name, df in (("summary", result.summary), ("episodes", result.episodes)):
        df = df.copy()
        df.insert(0, "run_id", ids[df["policy_index"].to_numpy()])
        df.insert(0, "variant", variant)
        _write_parquet(df, out / f"{name}.parquet")


# ---- measures ---------------------------------------------------------------
def visited_observations(policy, env, base, inits, init_std, episodes: int, num_states: int):
    """A jitted `(params, key) -> observations`: the raw observations visited by the
    deterministic policy in `episodes` noise-free episodes from each initial
    distribution, evenly subsampled to `num_states` (all of them if fewer)."""
    from entrolab.robustness import Condition, condition_params, stack_pytrees
    from entrolab.rollout import rollout

    steps = int(base.max_steps_in_episode)
    init_params = stack_pytrees([condition_params(env, base, Condition.obs_noise(0.0, i, init_std)) for i in inits])
    total = len(inits) * episodes * steps
    pick = np.linspace(0, total - 1, min(num_states, total)).round().astype(int)

    @jax.jit
    def collect(params, key):
        def act(k, o, s):
            return policy.deterministic_action(params, o)

        def one_init(p):
            return jax.vmap(lambda k: rollout(env, p, act, k, steps).obs)(jax.random.split(key, episodes))

        obs = jax.vmap(one_init)(init_params)  # (inits, episodes, steps, obs_dim)
        return obs.reshape(total, -1)[pick]

    return collect


def largest_sigma_within(sigmas: np.ndarray, drops: np.ndarray, tolerance: float) -> tuple[float, bool]:
    """The largest sigma' of the grid below the first one whose drop exceeds `tolerance`
    (0 if the smallest already does; the largest grid value, unbracketed, if none does)."""
    over = np.flatnonzero(drops > tolerance)
    if over.size == 0:
        return float(sigmas[-1]), False
    return (float(sigmas[over[0] - 1]) if over[0] > 0 else 0.0), True


def _measures(config: StudyConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    import pandas as pd

    from entrolab.agents.evaluate import episode_returns
    from entrolab.measures.complexity import empirical_lipschitz, norm_measures, sharpness
    from entrolab.measures.fisher import fisher_trace, summarize

    variant = unit.payload["variant"]
    policy, _, loaded, runs = load_variant(config, study_dir, variant)
    env, base = _eval_env(config)
    m = config.measures
    steps = int(base.max_steps_in_episode)
    states_per_init = max(1, -(-m.fisher_states // (len(config.inits) * steps)))
    key = unit_key(config.seed, "measures")
    k_states, k_sharp = jax.random.split(key)

    def return_fn(p, k):
        return episode_returns(policy, p, env, base, k, m.sharpness_episodes, steps, True).mean()

    norms_fn = jax.jit(norm_measures)
    lip_fn = jax.jit(lambda p, o: empirical_lipschitz(policy, p, o))
    fisher_fn = jax.jit(lambda p, o: fisher_trace(policy, p, o))
    # the tolerance is relative to each policy's |J|, applied below to the drops (one compilation)
    sharp_fn = jax.jit(lambda p, k: sharpness(policy, p, return_fn, k, m.sharpness_sigmas,
                                              m.sharpness_samples, 1.0))
    collect = visited_observations(policy, env, base, config.inits, config.evaluate.init_std,
                                   states_per_init, m.fisher_states)
    rows, state_rows, sharp_rows = [], [], []
    task = progress.add_task(f"  measures {variant}", total=len(loaded)) if progress is not None else None
    for i, lp in enumerate(loaded):
        params = lp.params
        init = {**lp.arrays["init_policy"], "obs_norm": params["obs_norm"]} if "init_policy" in lp.arrays else None
        row = {"variant": variant, "run_id": runs["run_id"].iloc[i]}
        row.update({k: float(v) for k, v in norms_fn(params, init).items()})
        row["log_std"] = float(np.mean(np.asarray(params["log_std"])))
        obs = collect(params, k_states)
        row.update({k: float(v) for k, v in lip_fn(params, obs).items()})
        fisher = fisher_fn(params, obs)
        for part in ("total", "mean"):
            row.update({f"fisher_{part}_{k}": float(v) for k, v in summarize(fisher[part]).items()})
        row["fisher_log_std_part"] = float(np.asarray(fisher["log_std"]).ravel()[0])
        sharp = sharp_fn(params, k_sharp)
        base_return = float(sharp["base_return"])
        tolerance = m.sharpness_tolerance * abs(base_return)
        sigma, bracketed = largest_sigma_within(np.asarray(sharp["sigmas"]), np.asarray(sharp["drop"]), tolerance)
        row.update(sharpness_sigma=sigma, sharpness_bracketed=bracketed, sharpness_base_return=base_return,
                   sharpness_tolerance=tolerance)
        for s, d, e in zip(np.asarray(sharp["sigmas"]), np.asarray(sharp["drop"]), np.asarray(sharp["drop_stderr"])):
            sharp_rows.append({"variant": variant, "run_id": row["run_id"], "sigma": float(s),
                               "drop": float(d), "drop_stderr": float(e)})
        rows.append(row)
        state_rows.append(pd.DataFrame({
            "variant": variant, "run_id": row["run_id"], "state": np.arange(obs.shape[0]),
            "fisher_total": np.asarray(fisher["total"]), "fisher_mean": np.asarray(fisher["mean"]),
        }))
        if task is not None:
            progress.update(task, advance=1)
    if task is not None:
        progress.remove_task(task)
    _write_parquet(pd.DataFrame(rows), out / "complexity.parquet")
    _write_parquet(pd.concat(state_rows, ignore_index=True), out / "fisher_states.parquet")
    _write_parquet(pd.DataFrame(sharp_rows), out / "sharpness.parquet")


def config_json(config: StudyConfig) -> str:
    return json.dumps(json.loads(config.model_dump_json()), indent=2, sort_keys=True)


def wall_clock() -> float:
    return time.perf_counter()

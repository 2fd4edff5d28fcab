"""The units of work of a robustness study and how each is executed.

The engine (`entrolab.study.units.execute`) hands each unit a scratch
directory and publishes it atomically; the unit kinds:

- ``train/VARIANT``: one compiled sweep (alphas x seeds) of one training
  variant (schedule, horizon, network, bounding, training noise, observation normalisation):
  `entrolab.training.train_sweep` -> ``train/VARIANT/`` (checkpoints,
  runs.parquet, metrics.parquet).
- ``evaluate/VARIANT/FAMILY``: every policy of the variant under every
  condition of one perturbation family (obs_noise, action_noise, dynamics)
  and every initial distribution, both modes -> ``units/evaluate/...``
  (per-episode returns and their summary).
- ``measures/VARIANT``: complexity measures and per-state Fisher traces of
  every policy of the variant -> ``units/measures/...``.

Randomness is derived from the config's `seed` and a name
(`entrolab.study.units.unit_key`), never from the order in which units run,
so a resumed study gives the same results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from entrolab.agents.evaluate import episode_returns
from entrolab.agents.options import build as build_options
from entrolab.checkpoint import load_policy
from entrolab.envs import make
from entrolab.measures.adversarial import (
    attacked_episode_returns, random_action_deviation, simulator_attack, worst_case_action_deviation,
)
from entrolab.measures.complexity import empirical_lipschitz, norm_measures, sharpness, sharpness_bisection
from entrolab.measures.fisher import fisher_trace, summarize
from entrolab.measures.robustness import (
    Condition, condition_grid, condition_params, evaluate_grid, stack_pytrees,
)
from entrolab.rollout import rollout
from entrolab.study.registry import Unit
from entrolab.study.units import fingerprint, fingerprint_view, unit_key, write_parquet
from entrolab.studies.robustness.config import MeasuresConfig, RobustnessConfig
from entrolab.training import train_sweep


def families(config: RobustnessConfig) -> list[str]:
    return ["obs_noise"] + (["action_noise"] if config.evaluate.action_noise else []) + \
        (["dynamics"] if config.evaluate.dynamics is not None else [])


def plan(config: RobustnessConfig) -> list[Unit]:
    """Every unit of the study, with fingerprints of the config parts each depends on."""
    c = json.loads(config.model_dump_json())
    train_common = {k: c[k] for k in ("env", "env_options", "alphas", "seeds", "seed_offset")}
    train_section = config.train.fingerprint_section()
    ev = c["evaluate"]
    ev_common = {k: ev[k] for k in ("episodes", "init_std", "modes")}
    # options added after the first release hash only when used, so earlier studies keep their fingerprints
    measures = fingerprint_view(c["measures"], MeasuresConfig.NEUTRAL, MeasuresConfig.COMPANIONS)
    units = []
    for v in config.variants():
        train_id = f"train/{v['variant']}"
        train_fp = fingerprint(train_common, train_section, v)
        units.append(Unit(train_id, "train", v, (), train_fp))
        for family in families(config):
            units.append(Unit(f"evaluate/{v['variant']}/{family}", "evaluate",
                              {"variant": v["variant"], "family": family}, (train_id,),
                              fingerprint(train_fp, ev_common, ev[family], config.inits, c["seed"], family)))
        units.append(Unit(f"measures/{v['variant']}", "measures", {"variant": v["variant"]}, (train_id,),
                          fingerprint(train_fp, measures, config.inits, ev["init_std"], c["seed"])))
    return units


def output_path(unit: Unit) -> str:
    """A training sweep at ``train/VARIANT`` (checkpoints, runs, metrics); the others under ``units/``."""
    return unit.id if unit.kind == "train" else f"units/{unit.id}"


def execute(config: RobustnessConfig, study_dir: Path, unit: Unit, out: Path, progress: Any = None) -> None:
    {"train": _train, "evaluate": _evaluate, "measures": _measures}[unit.kind](config, study_dir, unit, out, progress)


# ---- train ------------------------------------------------------------------
def _train(config: RobustnessConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    v, t = unit.payload, config.train
    ppo, hp = build_options("ppo", config.variant_ppo_options(v), total_timesteps=t.steps)
    overrides = dict(config.env_options)
    if v["train_obs_noise"] > 0 or "obs_noise_std" not in overrides:
        overrides["obs_noise_std"] = v["train_obs_noise"]
    train_sweep(config.env, config.alphas, config.seeds, out, ppo, hp, overrides,
                eval_episodes=t.eval_episodes, num_chunks=t.chunks, seed_offset=config.seed_offset,
                progress=progress)


# ---- shared: the policies of a variant --------------------------------------
def load_variant(config: RobustnessConfig, study_dir: Path, variant: str):
    """(policy, stacked params, list of LoadedPolicy, runs table) of a trained variant."""
    vdir = study_dir / "train" / variant
    runs = pd.read_parquet(vdir / "runs.parquet")
    loaded = [load_policy(vdir / c) for c in runs["checkpoint"]]
    stacked = stack_pytrees([p.params for p in loaded])
    return loaded[0].policy, stacked, loaded, runs


def _eval_env(config: RobustnessConfig):
    """The evaluation environment: the study's env options, no noise."""
    overrides = {**config.env_options, "obs_noise_std": 0.0, "action_noise_std": 0.0}
    return make(config.env, **overrides)


# ---- evaluate ---------------------------------------------------------------
def _evaluate(config: RobustnessConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
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
        write_parquet(df, out / f"{name}.parquet")


# ---- measures ---------------------------------------------------------------
def visited_observations(policy, env, base, inits, init_std, episodes: int, num_states: int, what: str = "obs"):
    """A jitted `(params, key) -> observations`: the raw observations visited by the
    deterministic policy in `episodes` noise-free episodes from each initial
    distribution, evenly subsampled to `num_states` (all of them if fewer);
    `what="x"`: the physical states reached instead."""
    steps = int(base.max_steps_in_episode)
    init_params = stack_pytrees([condition_params(env, base, Condition.obs_noise(0.0, i, init_std)) for i in inits])
    total = len(inits) * episodes * steps
    pick = np.linspace(0, total - 1, min(num_states, total)).round().astype(int)

    @jax.jit
    def collect(params, key):
        def act(k, o, s):
            return policy.deterministic_action(params, o)

        def one_init(p):
            return jax.vmap(lambda k: getattr(rollout(env, p, act, k, steps), what))(jax.random.split(key, episodes))

        obs = jax.vmap(one_init)(init_params)  # (inits, episodes, steps, *shape)
        return obs.reshape(total, *obs.shape[3:])[pick]

    return collect


def largest_sigma_within(sigmas: np.ndarray, drops: np.ndarray, tolerance: float) -> tuple[float, bool]:
    """The largest sigma' of the grid below the first one whose drop exceeds `tolerance`
    (0 if the smallest already does; the largest grid value, unbracketed, if none does)."""
    over = np.flatnonzero(drops > tolerance)
    if over.size == 0:
        return float(sigmas[-1]), False
    return (float(sigmas[over[0] - 1]) if over[0] > 0 else 0.0), True


def _refined_sharpness(refine_fn, params, key, m, sigma_max: float, tolerance: float, bracketed: bool) -> dict:
    """The crossing sigma' by bisection on [0, sigma_max], once per independent noise draw: the mean
    over draws, the 2.5 and 97.5 % quantiles over draws (the interval), and the bracket width left
    relative to the mean (the precision). NaN where the grid never exceeded the tolerance."""
    nan = float("nan")
    out = dict(sharpness_sigma_refined=nan, sharpness_sigma_refined_low=nan, sharpness_sigma_refined_high=nan,
               sharpness_refined_precision=nan, sharpness_refined_valid=0)
    if not bracketed:
        return out
    found, widths = [], []
    for k in jax.random.split(key, m.sharpness_repeats):
        r = refine_fn(params, k, sigma_max, tolerance)
        if bool(r["valid_bracket"]):
            found.append(float(r["sigma"]))
            widths.append(float(r["sigma_high"] - r["sigma"]))
    if found:
        mean = float(np.mean(found))
        low, high = np.quantile(found, [0.025, 0.975])
        out.update(sharpness_sigma_refined=mean, sharpness_sigma_refined_low=float(low),
                   sharpness_sigma_refined_high=float(high),
                   sharpness_refined_precision=float(max(widths) / mean) if mean > 0 else nan)
    out["sharpness_refined_valid"] = len(found)
    return out


def _attacked_measures(config: RobustnessConfig, policy, env, base, key):
    """`(params, eps, tag) -> columns` of what perturbations of norm eps cost (None when not asked):
    with `adversarial_episodes`, the excess risk (clean minus attacked mean return over that many
    episodes per initial distribution, paired) under the per-state worst case and under random
    directions; with `adversarial_horizon`, the excess cost over that many steps from
    `adversarial_starts` visited states under the simulator attack, the greedy per-state attack and
    random directions (`entrolab.measures.adversarial`)."""
    m = config.measures
    if not (m.adversarial_episodes or m.adversarial_horizon):
        return None
    steps = int(base.max_steps_in_episode)
    std = config.evaluate.init_std
    init_params = stack_pytrees([condition_params(env, base, Condition.obs_noise(0.0, i, std)) for i in config.inits])
    k_ep, k_states, k_sim = jax.random.split(key, 3)
    episodes_fn = jax.jit(lambda p, eps, attack: jax.vmap(lambda ip: attacked_episode_returns(
        policy, p, env, ip, k_ep, m.adversarial_episodes, steps, eps, attack, m.adversarial_steps))(init_params),
        static_argnums=2)
    per_init = max(1, -(-m.adversarial_starts // (len(config.inits) * steps)))
    starts = visited_observations(policy, env, base, config.inits, std, per_init, m.adversarial_starts, what="x")
    _, template = env.reset(k_states, base)
    sim_fn = jax.jit(lambda p, xs, eps: simulator_attack(
        policy, p, env, base, jax.vmap(lambda x: template.replace(x=x))(xs), eps, m.adversarial_horizon, k_sim,
        num_steps=m.adversarial_steps, attack_steps=m.adversarial_steps))

    def columns(params, eps, tag):
        out = {}
        if m.adversarial_episodes:
            clean = float(np.mean(episodes_fn(params, eps, "none")))
            out[f"attack_excess_eps{tag}"] = clean - float(np.mean(episodes_fn(params, eps, "worst")))
            out[f"random_excess_eps{tag}"] = clean - float(np.mean(episodes_fn(params, eps, "random")))
        if m.adversarial_horizon:
            sim = sim_fn(params, starts(params, k_states), eps)
            clean = np.asarray(sim["clean"])
            for name in ("worst", "greedy", "random"):
                out[f"simulator_{name}_excess_eps{tag}"] = float(np.mean(np.asarray(sim[name]) - clean))
        return out

    return columns


def _measures(config: RobustnessConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
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
    k_adv = jax.random.fold_in(key, 1)
    attack_fn = jax.jit(lambda p, o, eps, k: worst_case_action_deviation(policy, p, o, eps, k,
                                                                         num_steps=m.adversarial_steps))
    random_fn = jax.jit(lambda p, o, eps, k: random_action_deviation(policy, p, o, eps, k))
    refine = m.sharpness_bisection
    if refine:
        k_sharp, k_refine = jax.random.split(k_sharp)
        refine_fn = jax.jit(lambda p, k, hi, tol: sharpness_bisection(
            policy, p, return_fn, k, 0.0, hi, m.sharpness_samples, tol, num_iterations=refine))
    collect = visited_observations(policy, env, base, config.inits, config.evaluate.init_std,
                                   states_per_init, m.fisher_states)
    attacked = _attacked_measures(config, policy, env, base, jax.random.fold_in(key, 2))
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
        for part in ("total", "mean", "sensitivity"):
            row.update({f"fisher_{part}_{k}": float(v) for k, v in summarize(fisher[part]).items()})
        row["fisher_log_std_part"] = float(np.asarray(fisher["log_std"]).ravel()[0])
        row["fisher_precision"] = float(np.asarray(fisher["precision"]).ravel()[0])
        for eps in m.adversarial_epsilons:
            worst = attack_fn(params, obs, eps, k_adv)["deviation"]
            rand = random_fn(params, obs, eps, k_adv)
            tag = f"{eps:g}"
            row[f"adversarial_deviation_mean_eps{tag}"] = float(np.mean(worst))
            row[f"adversarial_deviation_max_eps{tag}"] = float(np.max(worst))
            row[f"random_deviation_mean_eps{tag}"] = float(np.mean(rand))
            if attacked is not None:
                row.update(attacked(params, eps, tag))
        sharp = sharp_fn(params, k_sharp)
        base_return = float(sharp["base_return"])
        tolerance = m.sharpness_tolerance * abs(base_return)
        sigma, bracketed = largest_sigma_within(np.asarray(sharp["sigmas"]), np.asarray(sharp["drop"]), tolerance)
        row.update(sharpness_sigma=sigma, sharpness_bracketed=bracketed, sharpness_base_return=base_return,
                   sharpness_tolerance=tolerance)
        if refine:
            row.update(_refined_sharpness(refine_fn, params, k_refine, m, max(m.sharpness_sigmas), tolerance,
                                          bracketed))
        for s, d, e in zip(np.asarray(sharp["sigmas"]), np.asarray(sharp["drop"]), np.asarray(sharp["drop_stderr"])):
            sharp_rows.append({"variant": variant, "run_id": row["run_id"], "sigma": float(s),
                               "drop": float(d), "drop_stderr": float(e)})
        rows.append(row)
        state_rows.append(pd.DataFrame({
            "variant": variant, "run_id": row["run_id"], "state": np.arange(obs.shape[0]),
            "fisher_total": np.asarray(fisher["total"]), "fisher_mean": np.asarray(fisher["mean"]),
            "fisher_sensitivity": np.asarray(fisher["sensitivity"]),
        }))
        if task is not None:
            progress.update(task, advance=1)
    if task is not None:
        progress.remove_task(task)
    write_parquet(pd.DataFrame(rows), out / "complexity.parquet")
    write_parquet(pd.concat(state_rows, ignore_index=True), out / "fisher_states.parquet")
    write_parquet(pd.DataFrame(sharp_rows), out / "sharpness.parquet")

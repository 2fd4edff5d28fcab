"""The units of a state-entropy study and how each is executed.

- ``select/none``: PPO without regularisation, `[select] seeds` seeds: the reference nominal
  return (the sampled policy's mean evaluation return in the nominal room).
- ``select/policy``, ``select/state``: PPO with each candidate alpha (policy entropy) or beta
  (the k-NN state-entropy bonus) x the same seeds; `choice.json`: the largest candidate whose
  nominal return is at least (1 - max_cost) x the reference (the smallest candidate if none is).
- ``train/<method>``: PPO with the chosen coefficients (none: 0, 0; policy: alpha*, 0;
  state: 0, beta*; both: alpha*, beta*) x `seeds` fresh seeds (offset 1000: the seeds that chose
  a coefficient do not also measure it).
- ``train/state_r<n>`` (`rollout_counts`): the state method with each estimate of the bonus
  fed by the trajectories of n environments.
- ``evaluate/<run>``: every trained policy in every layout, `[evaluate] episodes` episodes each
  (the same layouts and keys for every policy: common random numbers), deterministic and sampled:
  success rates per seed, and state-visitation counts per layout.

Randomness comes from the config's `seed` and the unit's name (`entrolab.study.units.unit_key`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from entrolab.study.registry import Unit
from entrolab.study.units import fingerprint, unit_key, write_parquet
from entrolab.studies.state_entropy.config import StateEntropyConfig, room_layout

FINAL_SEED_OFFSET = 1000


def _runs(config: StateEntropyConfig) -> list[str]:
    """The trained runs: one per method, then the state method per rollout count."""
    return [*config.methods, *(f"state_r{n}" for n in config.rollout_counts)]


def _needs(run: str) -> tuple[str, ...]:
    method = "state" if run.startswith("state_r") else run
    return {"none": (), "policy": ("select/policy",), "state": ("select/state",),
            "both": ("select/policy", "select/state")}[method]


def plan(config: StateEntropyConfig) -> list[Unit]:
    c = json.loads(config.model_dump_json())
    base = fingerprint(c["env"], c["env_options"], c["steps"], c["ppo"], c["seed"])
    fps = {"select/none": fingerprint(base, c["select"]["seeds"])}
    units = [Unit("select/none", "select", {"method": "none"}, (), fps["select/none"])]
    needed = {d for run in _runs(config) for d in _needs(run)}
    for method in ("policy", "state"):
        uid = f"select/{method}"
        if uid in needed:
            bonus = c["bonus"] if method == "state" else None
            fps[uid] = fingerprint(base, fps["select/none"], c["select"], bonus)
            units.append(Unit(uid, "select", {"method": method}, ("select/none",), fps[uid]))
    for run in _runs(config):
        deps = _needs(run)
        bonus = c["bonus"] if run != "none" and run != "policy" else None
        fps[f"train/{run}"] = fingerprint(base, [fps[d] for d in deps], bonus, c["seeds"], run)
        units.append(Unit(f"train/{run}", "train", {"run": run}, deps, fps[f"train/{run}"]))
        units.append(Unit(f"evaluate/{run}", "evaluate", {"run": run}, (f"train/{run}",),
                          fingerprint(fps[f"train/{run}"], c["evaluate"], c["seed"])))
    return units


def output_path(unit: Unit) -> str:
    return f"units/{unit.id}"


def execute(config: StateEntropyConfig, study_dir: Path, unit: Unit, out: Path, progress: Any = None) -> None:
    {"select": _select, "train": _train, "evaluate": _evaluate}[unit.kind](config, study_dir, unit, out, progress)


def _sweep(config: StateEntropyConfig, out: Path, progress, values, seeds: int, *, state: bool,
           alpha: float = 0.0, beta: float = 0.0, sweep: str | None = None, rollouts: int | None = None,
           seed_offset: int = 0) -> pd.DataFrame:
    """One train_sweep of PPO in the nominal room: `values` set `sweep` (alpha by default)."""
    from entrolab.agents.options import build
    from entrolab.training import train_sweep

    ppo_config, hp = build("ppo", config.ppo_options(state, rollouts), total_timesteps=config.steps)
    hp = hp.replace(ent_coef=alpha, state_ent_coef=beta)
    return train_sweep(config.env, values, seeds, out, ppo_config, hp, dict(config.env_options),
                       eval_episodes=config.evaluate.episodes, num_chunks=10, seed_offset=seed_offset,
                       progress=progress, sweep_field=sweep)


def _select(config: StateEntropyConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    s = config.select
    method = unit.payload["method"]
    if method == "none":
        runs = _sweep(config, out, progress, [0.0], s.seeds, state=False)
        choice = {"method": "none", "coefficient": 0.0,
                  "reference_return": float(runs["eval_return_sto_mean"].mean())}
    else:
        state = method == "state"
        candidates = s.state if state else s.policy
        runs = _sweep(config, out, progress, candidates, s.seeds, state=state,
                      sweep="state_ent_coef" if state else None)
        reference = json.loads((study_dir / "units" / "select" / "none" / "choice.json").read_text())
        choice = choose(runs, reference["reference_return"], s.max_cost, method)
    (out / "choice.json").write_text(json.dumps(choice, indent=2))


def choose(runs: pd.DataFrame, reference: float, max_cost: float, method: str) -> dict:
    """The largest coefficient whose mean nominal return (over seeds) is at least
    reference - max_cost |reference| (the smallest candidate when none is)."""
    means = runs.groupby("alpha")["eval_return_sto_mean"].mean().sort_index()
    floor = reference - max_cost * abs(reference)
    ok = means[means >= floor]
    coef = float(ok.index.max()) if len(ok) else float(means.index.min())
    return {"method": method, "coefficient": coef, "reference_return": reference, "floor": floor,
            "within_budget": bool(len(ok)), "largest_candidate": coef == float(means.index.max()),
            "candidates": {str(k): float(v) for k, v in means.items()}}


def _choice(study_dir: Path, method: str) -> float:
    return json.loads((study_dir / "units" / "select" / method / "choice.json").read_text())["coefficient"]


def _train(config: StateEntropyConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    run = unit.payload["run"]
    method = "state" if run.startswith("state_r") else run
    alpha = _choice(study_dir, "policy") if method in ("policy", "both") else 0.0
    beta = _choice(study_dir, "state") if method in ("state", "both") else 0.0
    rollouts = int(run.removeprefix("state_r")) if run.startswith("state_r") else None
    _sweep(config, out, progress, [alpha], config.seeds, state=method in ("state", "both"), beta=beta,
           rollouts=rollouts, seed_offset=FINAL_SEED_OFFSET)
    (out / "coefficients.json").write_text(json.dumps({"run": run, "method": method, "alpha": alpha, "beta": beta,
                                                       "rollouts": rollouts}))


# ---- evaluation ----------------------------------------------------------------------------------
def layout_batch(config: StateEntropyConfig, name: str, key: jax.Array):
    """`episodes` params of the named layout (random layouts drawn from `key`), stacked."""
    from entrolab.envs import make

    env, params = make(config.env, **config.env_options)
    layout = room_layout(env)
    keys = jax.random.split(key, config.evaluate.episodes)
    if name in ("nominal", "wall"):
        one = layout(name, params)
        return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (len(keys), *jnp.shape(x))), one)
    return jax.vmap(lambda k: layout(name, params, k))(keys)


def layout_episodes(policy, policy_params, env, layouts, key: jax.Array, num_steps: int, deterministic: bool):
    """One episode per layout in `layouts` (params stacked on a leading axis), for each policy of
    `policy_params` (stacked): success (P, E) (the goal reached before the time limit) and the
    positions of the episodes' steps (P, E, T, 2) with their mask (P, E, T)."""
    num = jax.tree.leaves(layouts)[0].shape[0]
    return _layout_program(policy, env, int(num_steps), bool(deterministic))(
        policy_params, layouts, jax.random.split(key, num))


@functools.lru_cache(maxsize=16)
def _layout_program(policy, env, num_steps: int, deterministic: bool):
    """The jitted evaluation of `layout_episodes`, one per (policy structure, env, length, mode):
    every layout and run of a unit reuses it instead of compiling again."""
    from entrolab.agents.spaces import to_env_action
    from entrolab.envs.minigrid_room import MiniGridRoom
    from entrolab.envs.spaces import Discrete
    from entrolab.rollout import rollout

    def one(pp, lp, k):
        def act(k_act, obs, state):
            a = policy.deterministic_action(pp, obs) if deterministic else policy.stochastic_action(k_act, pp, obs)
            return a if isinstance(env.action_space(lp), Discrete) else to_env_action(a, -1.0, 1.0)

        traj = rollout(env, lp, act, k, num_steps)
        done = traj.terminated | traj.truncated
        alive = jnp.concatenate([jnp.ones((1,), bool), jnp.cumsum(done)[:-1] == 0])
        # a grid cell (i, j) is the unit square [i, i + 1]^2 of the continuous room: its centre
        pos = traj.x[:, :2] + 0.5 if isinstance(env, MiniGridRoom) else traj.x
        return jnp.any(alive & (traj.reward > 0)), pos, alive

    per_policy = jax.vmap(one, in_axes=(None, 0, 0))
    return jax.jit(jax.vmap(per_policy, in_axes=(0, None, None)))


def _evaluate(config: StateEntropyConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    from entrolab.checkpoint import load_policy
    from entrolab.envs import make
    from entrolab.measures.robustness import stack_pytrees

    run = unit.payload["run"]
    train_dir = study_dir / "units" / "train" / run
    runs = pd.read_parquet(train_dir / "runs.parquet").sort_values("seed")
    loaded = [load_policy(train_dir / c) for c in runs["checkpoint"]]
    params = stack_pytrees([lp.params for lp in loaded])
    env, base = make(config.env, **config.env_options)
    steps = int(base.max_steps_in_episode)
    e = config.evaluate
    # the free room: [1, size - 1]^2 (the continuous room's size is a param, the grid's a static option)
    lo, hi = 1.0, float(base.size if hasattr(base, "size") else env.size) - 1.0
    edges = np.linspace(lo, hi, e.heatmap_bins + 1)
    rows, heat = [], []
    task = progress.add_task(f"  evaluate {run}", total=len(e.layouts) * 2) if progress is not None else None
    for name in e.layouts:
        # the same layouts and episode keys for every run of the study
        layouts = layout_batch(config, name, unit_key(config.seed, f"layouts/{name}"))
        for mode in ("deterministic", "sampled"):
            success, x, alive = layout_episodes(loaded[0].policy, params, env, layouts,
                                                unit_key(config.seed, f"episodes/{name}"), steps,
                                                mode == "deterministic")
            success, x, alive = np.asarray(success), np.asarray(x), np.asarray(alive)
            for i, seed in enumerate(runs["seed"]):
                rows.append({"run": run, "seed": int(seed), "layout": name, "mode": mode,
                             "success": float(success[i].mean()), "episodes": int(success.shape[1]),
                             "mean_steps": float(alive[i].sum(axis=1).mean())})
            pos = x[alive]
            counts, _, _ = np.histogram2d(pos[:, 0], pos[:, 1], bins=[edges, edges])
            centres = 0.5 * (edges[:-1] + edges[1:])
            ix, iy = np.meshgrid(np.arange(e.heatmap_bins), np.arange(e.heatmap_bins), indexing="ij")
            heat.append(pd.DataFrame({"run": run, "layout": name, "mode": mode, "ix": ix.ravel(), "iy": iy.ravel(),
                                      "x": centres[ix.ravel()], "y": centres[iy.ravel()],
                                      "visits": counts.ravel(), "frequency": counts.ravel() / max(1, counts.sum())}))
            if task is not None:
                progress.update(task, advance=1)
    if task is not None:
        progress.remove_task(task)
    write_parquet(pd.DataFrame(rows), out / "success.parquet")
    write_parquet(pd.concat(heat, ignore_index=True), out / "visits.parquet")

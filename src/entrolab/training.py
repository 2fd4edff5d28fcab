"""Train a sweep of agents (entropy coefficients x seeds) as one compiled program.

`train_sweep` is the side-effecting edge around the pure `make_train`: it
vmaps the training function over every (alpha, seed) pair, runs it in chunks
of updates (one compiled program, called repeatedly) so that a progress bar
with an ETA can be shown, evaluates every agent, and writes

    DIR/runs.parquet        one row per (alpha, seed): hyperparameters, wall time,
                            env steps, evaluation returns (deterministic and sampled)
    DIR/metrics.parquet     learning curves: one row per (run, update)
    DIR/checkpoints/RUN/    the policy of each run (entrolab.checkpoint)
    DIR/sweep.json          the resolved command: env, overrides, config, hparams
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from entrolab.agents.evaluate import episode_returns
from entrolab.agents.ppo import PPOConfig, PPOHParams, make_train
from entrolab.agents.reinforce import ReinforceConfig
from entrolab.agents.reinforce import make_train as make_reinforce
from entrolab.agents.sac import SACConfig
from entrolab.agents.sac import make_train as make_sac
from entrolab.agents.sac.train import summarize
from entrolab.checkpoint import save_checkpoint
from entrolab.envs import make


def check_alphas(alphas: Sequence[float]) -> list[float]:
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise ValueError("the list of entropy coefficients (--alpha) is empty")
    bad = [a for a in alphas if not math.isfinite(a) or a < 0]
    if bad:
        raise ValueError(f"entropy coefficients must be finite and >= 0, got {bad}")
    return alphas


def run_id(alpha: float, seed: int) -> str:
    return f"alpha={alpha:g}_seed={seed}"


def _atomic_parquet(df, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)


class _Learner:
    """What `train_sweep` needs from an algorithm: its trainer, the hyperparameter that the
    sweep's alphas set, and the unit of progress (a PPO update, or a logged chunk of SAC
    iterations) that one compiled call runs `n` of, with one metrics row per unit.

    `calls(total, per_call)` splits the run into compiled calls `(n, phase)`: PPO's units are
    all alike (phase None); SAC's warm-up chunks run without computing gradient steps, so its
    calls follow `SAC.chunk_plan` (phase = the warm-up iterations the call starts with)."""

    def __init__(self, config, env, env_params):
        if isinstance(config, PPOConfig):
            self.name, self.alpha_field = "ppo", "ent_coef"
            self.trainer = make_train(config, env, env_params)
            self.num_units, self.steps_per_unit = config.num_updates, config.batch_size
            self.run_units = lambda state, hp, env_params, n, phase: self.trainer.run(state, hp, env_params, n)
            self.plan = lambda total: [(None, total)]
            return
        if isinstance(config, ReinforceConfig):
            self.name, self.alpha_field = "reinforce", "std"  # the sweep's "alphas" are the fixed stds
            self.trainer = make_reinforce(config, env, env_params)
            self.num_units = self.trainer.num_updates
            self.steps_per_unit = config.num_trajectories * self.trainer.num_steps
            self.run_units = lambda state, hp, env_params, n, phase: self.trainer.run(state, hp, env_params, n)
            self.plan = lambda total: [(None, total)]
            return
        if not isinstance(config, SACConfig):
            raise ValueError(f"config must be a PPOConfig, a SACConfig or a ReinforceConfig, got {type(config).__name__}")
        self.name = "sac-adaent" if config.adaent else "sac"
        self.alpha_field = "alpha"
        self.trainer = trainer = make_sac(config, env, env_params)
        self.num_units, self.steps_per_unit = config.num_chunks, config.num_envs * config.log_interval
        self.run_units = trainer.run_chunks  # (state, hp, env_params, n, warmup)
        self.plan = trainer.chunk_plan

    def calls(self, total: int, per_call: int) -> list[tuple[int, Any]]:
        """[(units, phase), ...] covering `total` units, at most `per_call` units per call. A run of
        whole warm-up chunks is split into calls that each start with all their iterations in
        warm-up; the others keep their phase (None, 0, or the one chunk in which learning starts)."""
        out = []
        for phase, count in self.plan(total):
            length = self.trainer.config.log_interval if phase else 0
            idle = bool(phase) and phase == count * length
            for start in range(0, count, per_call):
                n = min(per_call, count - start)
                out.append((n, n * length if idle else phase))
        return out


def train_sweep(
    env_name: str,
    alphas: Sequence[float],
    num_seeds: int,
    out: str | Path,
    config: Any = PPOConfig(),
    hparams: Any = PPOHParams(),
    env_overrides: dict[str, Any] | None = None,
    eval_episodes: int = 16,
    num_chunks: int = 20,
    seed_offset: int = 0,
    progress: Any = None,
    donate_state: bool = True,
    snapshots: Sequence[float] = (),
    sweep_field: str | None = None,
):
    """Train len(alphas) x num_seeds agents in one program; returns the runs table.

    The algorithm follows the config: `PPOConfig` (alphas = initial entropy coefficients) or
    `entrolab.agents.sac.SACConfig` with `SACHParams` (alphas = SAC's temperature, fixed or
    initial). `progress`: an optional `rich.progress.Progress` (a task is added to it).
    Seeds are shared across alphas (run (alpha, s) uses key s): paired comparisons.
    `donate_state`: each compiled call takes over the agents' state buffers (a SAC sweep's replay
    buffers above all) instead of keeping the old state beside the new one
    (benchmarks/sac_memory.py measures the difference); False only to measure it.
    `snapshots`: fractions of training in (0, 1); at the end of the first chunk that reaches each
    fraction every agent's policy is kept and saved in its checkpoint as ``policy_at_<env steps>``
    (e.g. probes of mid-training policies; chunk boundaries decide the exact step, so use a
    `num_chunks` that divides the fractions).
    `sweep_field`: the traced hyperparameter the alphas set instead of the algorithm's own (e.g.
    PPO's "state_ent_coef"); the runs table then names it in a column `sweep_field`.
    """
    import pandas as pd

    alphas = check_alphas(alphas)
    if int(num_seeds) < 1:
        raise ValueError(f"the number of seeds must be >= 1, got {num_seeds}")
    if int(eval_episodes) < 1:
        raise ValueError(f"eval_episodes must be >= 1, got {eval_episodes}")
    env_overrides = dict(env_overrides or {})
    env, env_params = make(env_name, **env_overrides)
    hparams.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    snapshots = sorted(float(f) for f in snapshots)
    if any(not 0.0 < f < 1.0 for f in snapshots):
        raise ValueError(f"snapshots are fractions of training in (0, 1), got {snapshots}")
    pairs = [(a, s) for a in alphas for s in range(seed_offset, seed_offset + int(num_seeds))]
    num_agents = len(pairs)
    learner = _Learner(config, env, env_params)
    if learner.name == "reinforce":
        if min(alphas) <= 0:
            raise ValueError("for REINFORCE the alphas are the policy's fixed stds and must be > 0")
    elif learner.name != "ppo":
        hparams.check(config)
        if config.auto_alpha and min(alphas) <= 0:
            raise ValueError("with automatic alpha the alphas are initial temperatures and must be > 0")
    hp_batch = jax.tree.map(lambda v: jnp.full((num_agents,), v, jnp.float32), hparams)
    field_name = sweep_field or learner.alpha_field
    if field_name not in {f.name for f in dataclasses.fields(hparams)}:
        raise ValueError(f"sweep_field {field_name!r} is not a hyperparameter of {learner.name}; "
                         f"known: {sorted(f.name for f in dataclasses.fields(hparams))}")
    hp_batch = hp_batch.replace(**{field_name: jnp.asarray([a for a, _ in pairs], jnp.float32)})
    keys = jnp.stack([jax.random.key(s) for _, s in pairs])

    trainer = learner.trainer
    total_updates = learner.num_units
    chunk = max(1, math.ceil(total_updates / max(1, num_chunks)))
    run_chunk = jax.jit(jax.vmap(learner.run_units, in_axes=(0, 0, None, None, None)), static_argnums=(3, 4),
                        donate_argnums=(0,) if donate_state else ())

    t0 = time.perf_counter()
    state = trainer.init_batch(keys, hp_batch, env_params)  # not vmapped: see its docstring
    calls = learner.calls(total_updates, chunk)
    compiled = {}
    compile_time = 0.0
    for n, phase in dict.fromkeys(calls):
        tc = time.perf_counter()
        compiled[n, phase] = run_chunk.lower(state, hp_batch, env_params, n, phase).compile()
        compile_time += time.perf_counter() - tc

    task = None
    if progress is not None:
        task = progress.add_task(f"{env_name}: {num_agents} agents", total=total_updates * learner.steps_per_unit)
    metrics_chunks = []
    done_updates = 0
    kept: dict[str, Any] = {}  # "policy_at_<env steps>" -> host params of every agent
    pending = list(snapshots)
    full_policy = jax.jit(jax.vmap(trainer.full_policy_params))
    t_train = time.perf_counter()
    for n, phase in calls:
        state, metrics = compiled[n, phase](state, hp_batch, env_params)
        metrics = jax.device_get(metrics)
        metrics_chunks.append(metrics)
        done_updates += n
        if pending and done_updates >= pending[0] * total_updates and done_updates < total_updates:
            while pending and done_updates >= pending[0] * total_updates:
                pending.pop(0)
            kept[f"policy_at_{done_updates * learner.steps_per_unit}"] = jax.device_get(full_policy(state))
        if task is not None:
            progress.update(task, completed=done_updates * learner.steps_per_unit)
    train_time = time.perf_counter() - t_train

    # ---- agents whose training diverged (frozen at their last finite state by the learner) -------
    diverged_at = np.asarray(jax.device_get(state.diverged_at)) if hasattr(state, "diverged_at") \
        else np.full(num_agents, -1)
    bad = [run_id(*pairs[i]) for i in np.flatnonzero(diverged_at >= 0)]
    if bad:
        import sys

        message = (f"{env_name}: {len(bad)} of {num_agents} agents diverged (non-finite parameters or losses) and "
                   f"were frozen at their last finite state: {', '.join(bad)} (runs.parquet: diverged_at_step)")
        print(f"warning: {message}", file=sys.stderr)

    # ---- evaluation: every agent, deterministic and sampled ------------------------
    steps = int(getattr(env_params, "max_steps_in_episode", 1000))
    policy_params = full_policy(state)

    def evaluate(params, key, deterministic):
        return episode_returns(trainer.policy, params, env, env_params, key, eval_episodes, steps,
                               deterministic, trainer.action_low, trainer.action_high)

    eval_keys = jnp.stack([jax.random.fold_in(jax.random.key(s), 10_000) for _, s in pairs])
    det = np.asarray(jax.jit(jax.vmap(lambda p, k: evaluate(p, k, True)))(policy_params, eval_keys))
    sto = np.asarray(jax.jit(jax.vmap(lambda p, k: evaluate(p, k, False)))(policy_params, eval_keys))
    wall_time = time.perf_counter() - t0

    # ---- tables and checkpoints ------------------------------------------------------
    metrics = {k: np.concatenate([m[k] for m in metrics_chunks], axis=1) for k in metrics_chunks[0]}
    config_dict = dataclasses.asdict(config)
    rows, curve_rows = [], []
    for i, (alpha, seed) in enumerate(pairs):
        rid = run_id(alpha, seed)
        hp_i = {k: float(np.asarray(v)[i]) for k, v in dataclasses.asdict(hp_batch).items()}
        ckpt = save_checkpoint(
            out / "checkpoints" / rid, trainer.policy,
            {
                "policy": jax.tree.map(lambda x: np.asarray(x[i]), policy_params),
                "init_policy": jax.tree.map(lambda x: np.asarray(x[i]), state.init_policy),
                **{name: jax.tree.map(lambda x: np.asarray(x[i]), state.params[name])
                   for name in ("critic", "plain_critic") if name in state.params},
                **{name: jax.tree.map(lambda x: np.asarray(x[i]), snap) for name, snap in kept.items()},
            },
            algorithm=learner.name, config=config_dict, hparams=hp_i,
            env={"name": env_name, "overrides": _jsonable(env_overrides)},
            extra={"seed": seed, "alpha": alpha},
        )
        final_returns = metrics["episode_return"][i]
        finite = final_returns[np.isfinite(final_returns)]
        rows.append({
            "run_id": rid, "env": env_name, "algo": learner.name, "alpha": alpha, "seed": seed,
            **{f"hp_{k}": v for k, v in hp_i.items()},
            **{f"cfg_{k}": (json.dumps(v) if isinstance(v, (list, tuple)) or v is None else v)
               for k, v in config_dict.items()},
            "env_steps": int(total_updates * learner.steps_per_unit),
            "wall_time_s": wall_time, "train_time_s": train_time, "compile_time_s": compile_time,
            "num_agents_in_program": num_agents,
            "train_return_last": float(finite[-5:].mean()) if finite.size else float("nan"),
            "eval_return_det_mean": float(det[i].mean()), "eval_return_det_std": float(det[i].std()),
            "eval_return_sto_mean": float(sto[i].mean()), "eval_return_sto_std": float(sto[i].std()),
            "eval_episodes": int(eval_episodes),
            "diverged_at_step": float(diverged_at[i]) if diverged_at[i] >= 0 else float("nan"),
            **({"sweep_field": field_name} if sweep_field else {}),
            **({"snapshot_steps": json.dumps([int(k.rsplit("_", 1)[1]) for k in kept])} if kept else {}),
            "checkpoint": str(ckpt.relative_to(out)),
        })
        for u in range(metrics["env_steps"].shape[1]):
            curve_rows.append({"run_id": rid, "alpha": alpha, "seed": seed, "update": u,
                               **{k: float(v[i, u]) for k, v in metrics.items()}})
    runs = pd.DataFrame(rows)
    _atomic_parquet(pd.DataFrame(curve_rows), out / "metrics.parquet")
    _atomic_parquet(runs, out / "runs.parquet")
    (out / "sweep.json").write_text(json.dumps({
        "env": env_name, "env_overrides": _jsonable(env_overrides), "alphas": alphas,
        "num_seeds": int(num_seeds), "seed_offset": int(seed_offset), "config": config_dict,
        "hparams": dataclasses.asdict(hparams), "eval_episodes": int(eval_episodes),
        "compile_time_s": compile_time, "train_time_s": train_time, "wall_time_s": wall_time,
        "env_steps_per_s": num_agents * total_updates * learner.steps_per_unit / train_time,
    }, indent=2, default=float))
    return runs


def _jsonable(d: dict) -> dict:
    return {k: (np.asarray(v).tolist() if hasattr(v, "shape") else v) for k, v in d.items()}

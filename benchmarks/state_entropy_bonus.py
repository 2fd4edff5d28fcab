"""What PPO's k-NN state-entropy bonus costs: env steps/s of training with and without it (issue 13).

    .venv/bin/python benchmarks/state_entropy_bonus.py     # about 3-4 minutes on 2 cores

Env: Obstacle2D. Its observation is the point's 2-D position, the whole state, so the bonus
measures distances in the state space itself (the default `state_entropy_features`, all
coordinates), and the task has a local optimum (stopping in front of the wall) that a
state-covering bonus is meant to get the agent past. Lorenz would also work,
but its 3-D observation is a noisy sensor of a chaotic state, and the bonus's cost barely
depends on the dimension (2 or 3) anyway: it is the n x n distance matrix and its per-row k
smallest entries.

Agents: 16 in one program, as `entrolab.training.train_sweep` and benchmarks/ppo.py run them:
agents initialised one at a time (`PPO.init_batch`, not timed), then
`jax.jit(jax.vmap(trainer.run, in_axes=(0, 0, None, None)))` for `--updates` updates, compiled
apart (`lower().compile()`, the compile column). The 16 agents are 4 bonus coefficients
(`state_ent_coef` 0.01, 0.03, 0.1, 0.3, traced) x 4 seeds; the run without the bonus has the same
hyperparameters and `state_entropy_k = 0` (the bonus is not in its program at all).

Rollouts. `state_entropy_rollouts = g` makes each k-NN estimate run over the states of g
environments' trajectories: num_envs / g groups of g x num_steps states per update and agent, and
num_envs must be a multiple of g. So num_envs = 32 for every configuration (32 rollouts is then
one estimate over the whole batch), num_steps 64 (the bonus's cost grows as g x num_steps per
state, and 64 keeps the run within minutes on 2 cores; PPO's default is 256),
num_minibatches 8 (minibatches of 256, as PPO's defaults), 10 epochs, (64, 64) tanh, k = 5.

Timing: every configuration is compiled first, then `--repeats` rounds each call every
configuration once in turn (interleaved, so machine noise hits all alike), each call from the
same initial state, `block_until_ready` at the end; the best call counts. env steps/s = 16 agents
x updates x 32 envs x 64 steps / best time; relative cost = 1 - steps/s with / steps/s without.
The machine is shared, so the script also gives the cost round by round (1 - time without / time
with, both calls of the same round) and its median over the rounds ("paired").

Where the time goes: in the same rounds, the bonus step alone (`PPO._state_entropy_bonus`,
vmapped over the 16 agents, on a (64, 32, 2) batch of observations per agent drawn uniformly from
[-1, 1]^2, about the range Obstacle2D's scaled positions cover) and, for the split, the same
distance matrix reduced by a plain `min` instead of the k-th smallest entry per row
(`measures.state_entropy._kth_distances`): the rest of the bonus's time is that k-selection.

Writes `benchmarks/results/state_entropy_bonus.json` (or `--out`). Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# benchmarks/_workers.py
from _workers import make_record, peak_rss_self_mb, write_record

ENV = "obstacle2d"
NUM_ENVS = 32
COEFS = (0.01, 0.03, 0.1, 0.3)  # state_ent_coef; x SEEDS = 16 agents
SEEDS = 4
GOAL_ROLLOUTS = 32
GOAL_COST = 0.30


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--num-steps", type=int, default=64, help="rollout length per env (default 64)")
    parser.add_argument("--updates", type=int, default=2, help="PPO updates per timed call (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--k", type=int, default=5, help="k of the k-NN bonus (default 5)")
    parser.add_argument("--rollouts", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--env", default=ENV, help=f"environment (default {ENV}; minigrid_room: the bonus on its "
                        "state features x, y, one-hot direction)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default benchmarks/results/state_entropy_bonus.json (state_entropy_bonus_ENV.json "
                             "for another env)")
    args = parser.parse_args(argv)
    if args.out is None:
        suffix = "" if args.env == ENV else f"_{args.env}"
        args.out = HERE / "results" / f"state_entropy_bonus{suffix}.json"

    import jax
    import jax.numpy as jnp
    from envs import machine_info  # benchmarks/envs.py

    from entrolab.agents.ppo import PPOConfig, PPOHParams, make_train, stack_hparams
    from entrolab.envs import make

    started = time.perf_counter()
    info = machine_info()
    env, params = make(args.env)
    agents = len(COEFS) * SEEDS
    hp = stack_hparams([PPOHParams(state_ent_coef=c) for c in COEFS for _ in range(SEEDS)])
    keys = jax.random.split(jax.random.key(0), agents)
    steps_per_call = agents * args.updates * NUM_ENVS * args.num_steps
    base = {"num_envs": NUM_ENVS, "num_steps": args.num_steps, "num_minibatches": 8, "num_epochs": 10,
            "hidden_sizes": (64, 64), "total_timesteps": args.updates * NUM_ENVS * args.num_steps}
    print(f"PPO with and without the k-NN state-entropy bonus on {args.env}: {agents} agents, {NUM_ENVS} envs x "
          f"{args.num_steps} steps, {args.updates} updates per call, {args.repeats} rounds; "
          f"{info['cpu_model']}, {info['cpus_usable']} usable cores, jax {info['jax']}", flush=True)

    # observations for the bonus step alone: uniform in [-1, 1]^d, per agent (T, E, d)
    if hasattr(env, "state_features"):  # the bonus's points are the env's state features
        obs_dim = int(env.state_features(env.reset(jax.random.key(0), params)[1], params).shape[0])
    else:
        obs_dim = int(env.observation_space(params).shape[0])
    obs = jax.random.uniform(jax.random.key(1), (agents, args.num_steps, NUM_ENVS, obs_dim), minval=-1.0, maxval=1.0)

    def distances_min(o, g):  # the bonus's distance matrix, reduced by min instead of the k-th smallest
        t, e = o.shape[:2]
        x = o.swapaxes(0, 1).reshape(e // g, g * t, -1)

        def one(x):
            d2 = jnp.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
            d2 = d2 + jnp.diag(jnp.full(x.shape[0], jnp.inf, d2.dtype))
            return jnp.sqrt(d2.min(-1))

        return jax.vmap(one)(x)

    configs = [("without bonus", None)] + [(f"bonus, {g} rollouts", g) for g in args.rollouts]
    rows = []
    for label, g in configs:
        extra = {} if g is None else {"state_entropy_k": args.k, "state_entropy_rollouts": g}
        config = PPOConfig(**base, **extra)
        trainer = make_train(config, env, params)
        state0 = jax.block_until_ready(trainer.init_batch(keys, hp, params))
        run = jax.jit(jax.vmap(trainer.run, in_axes=(0, 0, None, None)), static_argnums=3)
        t0 = time.perf_counter()
        compiled = run.lower(state0, hp, params, args.updates).compile()
        compile_s = time.perf_counter() - t0
        row = {"label": label, "state_entropy_rollouts": g, "config": {**base, **extra}, "compile_s": compile_s,
               "run_s": [], "_call": lambda c=compiled, s=state0: c(s, hp, params)}
        if g is not None:
            stats = state0.intrinsic_stats  # stacked, one per agent
            bonus = jax.jit(jax.vmap(trainer._state_entropy_bonus)).lower(obs, stats).compile()
            dist = jax.jit(jax.vmap(lambda o, g=g: distances_min(o, g))).lower(obs).compile()
            row.update(states_per_estimate=g * args.num_steps, estimates_per_agent=NUM_ENVS // g,
                       bonus_alone_s=[], distances_alone_s=[],
                       _bonus=lambda b=bonus, s=stats: b(obs, s), _dist=lambda d=dist: d(obs))
        rows.append(row)
        print(f"{label}: compiled in {compile_s:.1f} s", flush=True)

    def timed(fn) -> float:
        t = time.perf_counter()
        jax.block_until_ready(fn())
        return time.perf_counter() - t

    for rep in range(args.repeats):
        for row in rows:
            row["run_s"].append(timed(row["_call"]))
            if row["state_entropy_rollouts"] is not None:
                row["bonus_alone_s"].append(timed(row["_bonus"]))
                row["distances_alone_s"].append(timed(row["_dist"]))
            print(f"round {rep + 1}: {row['label']}: {row['run_s'][-1]:.2f} s", flush=True)

    for row in rows:
        for key in ("_call", "_bonus", "_dist"):
            row.pop(key, None)
        best = min(row["run_s"])
        row["env_steps_per_call"] = steps_per_call
        row["steps_per_s"] = steps_per_call / best
    without = rows[0]["steps_per_s"]
    for row in rows:
        row["relative_cost"] = 1.0 - row["steps_per_s"] / without
        # the same cost round by round (each call against the call without the bonus of its round), the
        # median over rounds: steadier than the ratio of two bests when the load changes during the run
        paired = [1.0 - t0 / t for t0, t in zip(rows[0]["run_s"], row["run_s"], strict=True)]
        row["relative_cost_per_round"] = paired
        row["relative_cost_paired_median"] = statistics.median(paired)
        if row["state_entropy_rollouts"] is not None:
            bonus_per_call = args.updates * min(row["bonus_alone_s"])
            row["bonus_alone_share_of_call"] = bonus_per_call / min(row["run_s"])
            row["k_selection_share_of_bonus_alone"] = 1.0 - min(row["distances_alone_s"]) / min(row["bonus_alone_s"])

    print(f"\n{'configuration':<22} {'compile (s)':>11} {'best call (s)':>13} {'env steps/s':>12} {'cost':>7} "
          f"{'paired':>7} "
          f"{'bonus alone / call':>18} {'k-select / bonus':>17}")
    for row in rows:
        g = row["state_entropy_rollouts"]
        print(f"{row['label']:<22} {row['compile_s']:>11.1f} {min(row['run_s']):>13.2f} {row['steps_per_s']:>12,.0f} "
              f"{row['relative_cost']:>7.1%} {row['relative_cost_paired_median']:>7.1%} "
              f"{'-' if g is None else format(row['bonus_alone_share_of_call'], '.1%'):>18} "
              f"{'-' if g is None else format(row['k_selection_share_of_bonus_alone'], '.1%'):>17}")
    goal_row = next((r for r in rows if r["state_entropy_rollouts"] == GOAL_ROLLOUTS), None)
    goal = {"rollouts": GOAL_ROLLOUTS, "max_relative_cost": GOAL_COST}
    if goal_row is not None:
        goal.update(relative_cost=goal_row["relative_cost"], met=goal_row["relative_cost"] < GOAL_COST,
                    relative_cost_paired_median=goal_row["relative_cost_paired_median"])
        print(f"\ncost at {GOAL_ROLLOUTS} rollouts: {goal_row['relative_cost']:.1%}, paired median "
              f"{goal_row['relative_cost_paired_median']:.1%} (goal < {GOAL_COST:.0%}: "
              f"{'met' if goal['met'] else 'NOT met'})")

    record = make_record(
        "benchmarks/state_entropy_bonus.py", argv, info, started,
        settings={"env": args.env, "agents": agents, "state_ent_coefs": COEFS, "seeds": SEEDS, "num_envs": NUM_ENVS,
                  "num_steps": args.num_steps, "updates_per_call": args.updates, "repeats": args.repeats,
                  "k": args.k, "epochs": 10, "minibatches": 8, "hidden_sizes": [64, 64],
                  "timing": "best of the interleaved rounds; every call from the same initial state"},
        goal=goal, results=rows, peak_rss_mb=peak_rss_self_mb(),
    )
    write_record(args.out, record)
    print(f"wrote {args.out} ({record['total_wall_s']:.0f} s)")
    return record


if __name__ == "__main__":
    main()

"""PPO training throughput: entrolab's compiled PPO against Stable-Baselines3 PPO.

Env steps per second of *training* (rollouts, GAE and 10 epochs of 8
minibatches of 256 per update of 8 envs x 256 steps) on Lorenz and on KS:

- entrolab, 1 agent: `jax.jit(make_train(config, env, params))`;
- entrolab, 48 agents (6 entropy coefficients x 8 seeds) in one program:
  `jax.jit(jax.vmap(make_train(...), in_axes=(0, 0, None)))` on stacked
  `PPOHParams`;
- Stable-Baselines3 PPO with the same network (pi and vf [64, 64] tanh,
  separate, orthogonal init, log_std_init 0), rollout, epochs, minibatches
  and hyperparameters (lr 3e-4, gamma 0.99, lambda 0.95, clip 0.2, vf 0.5,
  max grad norm 0.5, ent 0), on the gymnasium registration of the same system
  (`make_vec_env`, 8 envs, `VecNormalize(norm_obs=True, norm_reward=False)`),
  one process; and two such processes side by side (the machine's best
  aggregate for independent SB3 runs on 2 cores). torch runs on 1 thread
  (`--sb3-threads`): one process is as fast as with torch's default of 2
  threads here (the networks are tiny), and two processes do not
  oversubscribe the 2 cores (with 2 threads each they ran at less than half
  the speed of one).

JAX rows: the agents are initialised apart (`jax.jit(trainer.init)` agent by
agent, stacked; not timed) and trained by one compiled program
(`trainer.run` for `--updates-*` updates, vmapped over the 48 agents, as in
`entrolab.training.train_sweep`); compile time (trace, lower, compile of the training program) is
measured apart; the run time is the median of `--repeats` calls of the
compiled training program, each from a fresh init with different keys,
`block_until_ready` at the end. (Vmapped initialisation, alone or inside
`jax.jit(jax.vmap(trainer))`, deadlocked on the 2-core machine: see
docs/benchmarks.md.) SB3 rows: one
`learn` of 2048 steps as a warm-up (JAX compiles the env's step there), then
a timed `learn` of `--sb3-steps` more steps.

Every configuration runs in its own subprocess; its peak resident memory is
the child's `ru_maxrss` from `os.wait4` (also cross-checked against the
child's own `VmHWM`). The speed-up is entrolab's steps/s over SB3's
(one process) measured in the same run of this script, so that both see the
same machine load (the machine is shared: compare ratios, not absolute rates).

    .venv/bin/python benchmarks/ppo.py            # full run (about 6-10 minutes on 2 cores)
    .venv/bin/python benchmarks/ppo.py --quick    # a short run

Writes `benchmarks/results/ppo.json` (or `--out`). Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _workers import (  # noqa: E402  (benchmarks/_workers.py)
    Workers, add_worker_command, make_record, peak_rss_self_mb, write_record,
)

SYSTEMS = {"lorenz": "entrolab/Lorenz-v0", "ks": "entrolab/KuramotoSivashinsky-v0"}
ALPHAS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1)  # 6 entropy coefficients x 8 seeds = 48 agents
SEEDS = 8
GOAL_SPEEDUP = 30.0
GOAL_AGENTS = 48
GOAL_MEMORY_GB = 4.0
BATCH = 8 * 256  # env steps per update per agent


# ---------------------------------------------------------------------- workers (run in a subprocess)
def worker_jax(system: str, agents: int, updates: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from entrolab.agents.ppo import PPOConfig, PPOHParams, make_train, stack_hparams
    from entrolab.envs import make

    env, params = make(system)
    config = PPOConfig(total_timesteps=updates * BATCH)  # 8 x 256, 10 epochs, 8 minibatches, [64, 64] tanh
    trainer = make_train(config, env, params)
    # Initialisation is apart from training, and agent by agent: on this 2-core CPU (jaxlib
    # 0.10.2) both `jax.jit(jax.vmap(trainer))` (init and training in one program) and
    # `jax.jit(jax.vmap(trainer.init))` deadlocked, every XLA intra-op thread waiting inside
    # a batched LAPACK QR (the orthogonal initialiser) for work queued on the same pool (see
    # docs/benchmarks.md). Unbatched inits never hung. The init is not timed; the timed program
    # is `num_updates` updates of every agent from a fresh init (the vmapped `trainer.run`).
    if agents == 1:
        hp = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), PPOHParams())
        init = jax.jit(trainer.init)
        run = jax.jit(trainer.run, static_argnums=3)
        keys_for = lambda rep: jax.random.key(rep)  # noqa: E731
    else:
        if agents != len(ALPHAS) * SEEDS:
            raise ValueError(f"agents must be 1 or {len(ALPHAS) * SEEDS}")
        hp = stack_hparams([PPOHParams(ent_coef=a) for a in ALPHAS for _ in range(SEEDS)])
        init = trainer.init_batch  # agent by agent, stacked: the same values as the vmapped init
        run = jax.jit(jax.vmap(trainer.run, in_axes=(0, 0, None, None)), static_argnums=3)
        keys_for = lambda rep: jax.random.split(jax.random.key(rep), agents)  # noqa: E731

    state0 = jax.block_until_ready(init(keys_for(0), hp, params))
    t0 = time.perf_counter()
    lowered = run.lower(state0, hp, params, updates)
    trace_lower_s = time.perf_counter() - t0
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    run_s, final_returns = [], []
    for rep in range(repeats):
        state = jax.block_until_ready(init(keys_for(100 + rep), hp, params))
        t = time.perf_counter()
        state, metrics = jax.block_until_ready(compiled(state, hp, params))
        run_s.append(time.perf_counter() - t)
        ret = np.asarray(metrics["episode_return"])[..., -1]
        final_returns.append(float(np.nanmean(ret)))
    steps = agents * updates * BATCH
    return {
        "implementation": "entrolab", "system": system, "agents": agents, "updates_per_agent": updates,
        "env_steps_per_run": steps, "compile_s": compile_s, "trace_lower_s": trace_lower_s,
        "run_s": run_s, "steps_per_s": steps / statistics.median(run_s), "steps_per_s_best": steps / min(run_s),
        "mean_last_training_return": final_returns, "device": str(jax.devices()[0]),
        "vmhwm_mb": peak_rss_self_mb(),
    }


def worker_sb3(system: str, steps: int, threads: int) -> dict:
    import gymnasium
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    import entrolab  # noqa: F401  (registers the gymnasium ids)

    if threads > 0:
        torch.set_num_threads(threads)
    # make_vec_env("entrolab/Lorenz-v0") would pass render_mode="rgb_array", which entrolab's
    # adapter refuses with a ValueError (SB3 only retries on TypeError): use gymnasium.make as
    # the env callable, the same registration.
    venv = make_vec_env(gymnasium.make, n_envs=8, seed=0, env_kwargs={"id": SYSTEMS[system]})
    venv = VecNormalize(venv, norm_obs=True, norm_reward=False, clip_obs=10.0, gamma=0.99)
    model = PPO(
        "MlpPolicy", venv, n_steps=256, batch_size=256, n_epochs=10, learning_rate=3e-4, gamma=0.99,
        gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
        policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh,
                           ortho_init=True, log_std_init=0.0),
        seed=0, device="cpu", verbose=0,
    )
    t = time.perf_counter()
    model.learn(BATCH)  # warm-up: JAX compiles the env step, torch allocates
    warmup_s = time.perf_counter() - t
    t = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    run_s = time.perf_counter() - t
    done = model.num_timesteps - BATCH
    return {
        "implementation": "sb3", "system": system, "agents": 1, "env_steps_per_run": done,
        "warmup_s": warmup_s, "run_s": [run_s], "steps_per_s": done / run_s, "steps_per_s_best": done / run_s,
        "torch_threads": torch.get_num_threads(), "vmhwm_mb": peak_rss_self_mb(),
    }


# ---------------------------------------------------------------------- parent
WORKER_TIMEOUT_S = 480  # a hung worker (see worker_jax) is killed and the row marked, never waited on forever


def _failure_row(args: list[str], why: str, peak_rss_mb: float) -> dict:
    """The row of a worker killed past WORKER_TIMEOUT_S (a non-zero exit code raises instead)."""
    agents = int(args[args.index("--agents") + 1]) if "--agents" in args else 1
    return {"failed": f"{why} (hung)", "args": args, "agents": agents, "peak_rss_mb": peak_rss_mb,
            "steps_per_s": float("nan"), "steps_per_s_best": float("nan")}


WORKERS = Workers(__file__, WORKER_TIMEOUT_S, rate_keys=("steps_per_s", "steps_per_s_best"),
                  failure_row=_failure_row, raise_on_error=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    w = add_worker_command(parser)
    w.add_argument("--impl", choices=["entrolab", "sb3"], required=True)
    w.add_argument("--system", choices=list(SYSTEMS), required=True)
    w.add_argument("--agents", type=int, default=1)
    w.add_argument("--updates", type=int, default=10)
    w.add_argument("--repeats", type=int, default=3)
    w.add_argument("--steps", type=int, default=49_152)
    w.add_argument("--threads", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="short run")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--updates-1", type=int, default=None, help="updates per timed run, 1 agent (default 48, quick 8)")
    parser.add_argument("--updates-48", type=int, default=None, help="updates per timed run, 48 agents (default 8, quick 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per JAX row (default 3, quick 2)")
    parser.add_argument("--sb3-steps", type=int, default=None, help="timed SB3 env steps (default 49152 = 24 updates, quick 8192)")
    parser.add_argument("--sb3-threads", type=int, default=1,
                        help="torch threads in SB3 workers (default 1; 0: torch's default, here 2)")
    parser.add_argument("--no-sb3-parallel", action="store_true", help="skip the 2-process SB3 row")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ppo.json")
    args = parser.parse_args(argv)

    if args.cmd == "worker":
        if args.impl == "entrolab":
            row = worker_jax(args.system, args.agents, args.updates, args.repeats)
        else:
            row = worker_sb3(args.system, args.steps, args.threads)
        args.result.write_text(json.dumps(row))
        return row

    from rich.console import Console
    from rich.table import Table

    from envs import machine_info  # noqa: E402  (benchmarks/envs.py)

    u1 = args.updates_1 or (8 if args.quick else 48)
    u48 = args.updates_48 or (2 if args.quick else 8)
    repeats = args.repeats or (2 if args.quick else 3)
    sb3_steps = args.sb3_steps or (8192 if args.quick else 49_152)
    console = Console(width=max(Console().width, 120))
    info = machine_info()
    from importlib.metadata import version

    info.update({"stable_baselines3": version("stable-baselines3"), "torch": version("torch")})
    console.print(f"[bold]PPO training throughput[/] on {info['device']} ({info['cpu_model']}, "
                  f"{info['cpus_usable']} usable cores), jax {info['jax']}, SB3 {info['stable_baselines3']}, "
                  f"torch {info['torch']}; JAX {u1} updates (1 agent) / {u48} updates (48 agents) x {repeats} "
                  f"repeats; SB3 {sb3_steps} steps")
    started = time.perf_counter()
    results: dict[str, list[dict]] = {}
    for system in args.systems:
        rows = []
        plan = [
            ("SB3, 1 process", ["--impl", "sb3", "--system", system, "--steps", str(sb3_steps),
                                "--threads", str(args.sb3_threads)], 1),
            ("entrolab, 1 agent", ["--impl", "entrolab", "--system", system, "--agents", "1",
                                   "--updates", str(u1), "--repeats", str(repeats)], 1),
            ("entrolab, 48 agents", ["--impl", "entrolab", "--system", system, "--agents", str(GOAL_AGENTS),
                                     "--updates", str(u48), "--repeats", str(repeats)], 1),
        ]
        if not args.no_sb3_parallel:
            plan.append(("SB3, 2 processes", plan[0][1], 2))
        for label, wargs, parallel in plan:
            console.print(f"[dim]{system}: {label} ...[/]")
            row = WORKERS.run(wargs, parallel)
            row["label"] = label
            rows.append(row)
            console.print(f"[dim]{system}: {label}: {row['steps_per_s']:,.0f} steps/s, "
                          f"peak RSS {row['peak_rss_mb']:,.0f} MB[/]")
        base = rows[0]["steps_per_s"]
        par = next((r["steps_per_s"] for r in rows if r["label"] == "SB3, 2 processes"), None)
        for row in rows:
            row["speedup_vs_sb3"] = row["steps_per_s"] / base
            row["speedup_vs_sb3_2proc"] = row["steps_per_s"] / par if par else None
        results[system] = rows

    table = Table(title="PPO training: env steps per second (JAX: median of repeats), peak resident memory")
    for col, justify in [("system", "left"), ("implementation", "left"), ("agents", "right"),
                         ("compile (s)", "right"), ("env steps/s", "right"), ("vs SB3", "right"),
                         ("vs SB3 x2 proc.", "right"), ("peak RSS (MB)", "right")]:
        table.add_column(col, justify=justify)
    for system, rows in results.items():
        for r in rows:
            table.add_row(system, r["label"], str(r["agents"] * r.get("parallel_processes", 1)),
                          f"{r['compile_s']:.1f}" if "compile_s" in r else "-",
                          f"{r['steps_per_s']:,.0f}", f"{r['speedup_vs_sb3']:.1f}x",
                          f"{r['speedup_vs_sb3_2proc']:.1f}x" if r["speedup_vs_sb3_2proc"] else "-",
                          f"{r['peak_rss_mb']:,.0f}")
    console.print(table)

    goal = {}
    for system, rows in results.items():
        r48 = next(r for r in rows if r["label"] == "entrolab, 48 agents")
        met_speed = r48["speedup_vs_sb3"] >= GOAL_SPEEDUP
        met_mem = r48["peak_rss_mb"] < GOAL_MEMORY_GB * 1024
        goal[system] = {"speedup": r48["speedup_vs_sb3"], "speedup_vs_sb3_2proc": r48["speedup_vs_sb3_2proc"],
                        "peak_rss_mb": r48["peak_rss_mb"], "speed_met": met_speed, "memory_met": met_mem}
        console.print(f"{system}: 48 agents at {r48['speedup_vs_sb3']:.1f}x SB3 (goal {GOAL_SPEEDUP:.0f}x: "
                      f"{'[green]met[/]' if met_speed else '[red]not met[/]'}), peak RSS "
                      f"{r48['peak_rss_mb'] / 1024:.2f} GB (goal < {GOAL_MEMORY_GB:.0f} GB: "
                      f"{'[green]met[/]' if met_mem else '[red]not met[/]'})")

    record = make_record(
        "benchmarks/ppo.py", argv, info, started,
        settings={"updates_1_agent": u1, "updates_48_agents": u48, "repeats": repeats,
                  "sb3_steps": sb3_steps, "sb3_threads": args.sb3_threads, "alphas": ALPHAS, "seeds": SEEDS,
                  "rollout": "8 envs x 256 steps", "epochs": 10, "minibatches": 8, "quick": args.quick},
        goal={"speedup": GOAL_SPEEDUP, "agents": GOAL_AGENTS, "memory_gb": GOAL_MEMORY_GB, "result": goal},
        results=results,
    )
    write_record(args.out, record)
    console.print(f"wrote {args.out} ({record['total_wall_s']:.0f} s)")
    return record


if __name__ == "__main__":
    main()

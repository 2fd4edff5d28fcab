"""SAC training throughput: entrolab's compiled SAC against Stable-Baselines3 SAC.

Gradient steps (updates) and env steps per second of *training* on Pendulum-v1,
one gradient step per env step, for

- entrolab SAC, 1 agent: `jax.jit(sac.run, static_argnums=3)`;
- entrolab SAC, 20 agents (20 seeds) in one program, as
  `entrolab.training.train_sweep` runs them: `sac.init_batch`, then
  `jax.jit(jax.vmap(sac.run, in_axes=(0, 0, None, None)), static_argnums=3)`;
- Stable-Baselines3 SAC, one process (20 SB3 agents are 20 such runs one
  after the other: the same rate per agent), and two processes side by side
  (the most independent SB3 runs get from 2 cores);
- entrolab SAC-AdaEnt (`SACConfig(adaent=True)`, K = 100), 1 and 20 agents, for
  the record (no SB3 counterpart), on fewer iterations per call (`--adaent-chunk-*`:
  one AdaEnt gradient step costs about 27 times a SAC one);
- entrolab SAC, 20 agents again, with `XLA_FLAGS=--xla_cpu_use_onednn=true`
  (XLA:CPU's dots through oneDNN instead of Eigen): an environment setting, not
  a package change, measured to show what the CPU GEMMs cost (`--no-onednn`
  skips it).

The task: entrolab trains on `gymnax:Pendulum-v1` (`entrolab.envs.make`), SB3 on
gymnasium's own `Pendulum-v1`: the same dynamics, reward, torque box [-2, 2],
initial-state distribution and 200-step time limit (a truncation, not a
termination, on both sides). gymnax's is used because it is the JAX env that
entrolab's SAC trains on inside its compiled program; SB3 gets the native
NumPy env, its usual setting. (Training SB3 on an entrolab env through the
gymnasium adapter would add one JAX call per env step to SB3's cost and make
the comparison less fair to SB3, not more.)

The same network and settings on both sides: actor and twin critics MLP
(256, 256) ReLU (SB3 `net_arch=[256, 256]`), batch 256, one gradient step per
env step, Adam lr 1e-3 for actor and critics (SB3's default is 3e-4: set),
gamma 0.99, tau 0.005, fixed alpha 0.2 (SB3 `ent_coef=0.2`), a replay buffer of
1e6 transitions (both libraries' default), `learning_starts` 1000 env steps.

Steady state only. The first `learning_starts` steps (uniformly random actions,
no updates) are a warm-up and are not timed:

- entrolab: every agent is initialised (`jax.jit(sac.init)`) and run through its
  random phase alone, `jax.jit(sac.run, static_argnums=3)` for `learning_starts`
  iterations, then the agents are stacked. (In the vmapped program the
  per-agent `lax.cond` that skips the update before `learning_starts` becomes a
  select, so 20 vmapped agents would compute, and throw away, the updates of
  the random phase too.) The training program is then compiled
  (trace, lower, compile: the compile time of the table) and called for
  `--chunks` + 1 chunks of `--chunk-*` iterations, each ended by
  `block_until_ready`; the first call is a warm-up, the rate is over the other
  calls (all iterations include a gradient step), and each call's time is kept.
- SB3: `learn(learning_starts + 250)` (the random phase, then 250 updates to
  warm torch up), then a timed `learn` of `--sb3-steps` more env steps
  (`reset_num_timesteps=False`), every one with a gradient step. torch runs on
  1 thread (`--sb3-threads`), as in benchmarks/ppo.py: with torch's default of
  2 threads, one SB3 SAC process was several times slower on the shared
  2-core machine, and two processes would oversubscribe the cores.

updates/s = gradient steps of all agents per second; env steps/s = env steps of
all agents per second (equal here: one gradient step per env step, 1 env per
agent). Every configuration runs in its own subprocess; peak resident memory is
the child's `ru_maxrss` from `os.wait4` (also its own `VmHWM`). Speed-ups are
ratios to SB3 (one process) measured in the same run of this script, so that
both see the same machine load (the machine is shared: compare ratios, not
absolute rates).

Two references explain the numbers: XLA's cost analysis of one entrolab
`update` (FLOPs of one env step plus one gradient step, from the 1-agent rows),
and a `gemm` row, the rate of a bare 256 x 256 x 256 matrix product on this
machine (XLA, alone and batched over 20 as under vmap; torch on 1 thread).

    .venv/bin/python benchmarks/sac.py            # full run (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/sac.py --quick    # a short run (a few minutes)

Writes `benchmarks/results/sac.json` (or `--out`). Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _workers import (  # noqa: E402  (benchmarks/_workers.py)
    Workers, add_worker_command, make_record, peak_rss_self_mb, write_record,
)

ENV_ENTROLAB = "gymnax:Pendulum-v1"
ENV_SB3 = "Pendulum-v1"
GOAL_SPEEDUP = 20.0
GOAL_AGENTS = 20
HIDDEN = (256, 256)
BATCH_SIZE = 256
LR = 1e-3
GAMMA = 0.99
TAU = 0.005
ALPHA = 0.2
BUFFER_SIZE = 1_000_000
SB3_WARMUP_UPDATES = 250
ONEDNN_FLAGS = "--xla_cpu_use_onednn=true"  # XLA:CPU dots through oneDNN instead of Eigen (extra row)


def _finite_mean(x) -> float | None:
    import numpy as np

    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


# ---------------------------------------------------------------------- workers (run in a subprocess)
def worker_jax(agents: int, adaent: bool, chunk: int, chunks: int, learning_starts: int, buffer_size: int) -> dict:
    import jax
    import numpy as np

    from entrolab.agents.sac import SACConfig, SACHParams, make_train, stack_hparams
    from entrolab.envs import make

    env, params = make(ENV_ENTROLAB)
    config = SACConfig(
        total_timesteps=learning_starts + chunk * (chunks + 1), buffer_size=buffer_size, batch_size=BATCH_SIZE,
        learning_starts=learning_starts, updates_per_step=1, hidden_sizes=HIDDEN, activation="relu",
        adaent=adaent, log_interval=chunk,
    )
    sac = make_train(config, env, params)
    hp = SACHParams(actor_lr=LR, critic_lr=LR, gamma=GAMMA, tau=TAU, alpha=ALPHA).check(config)
    hp_batch = stack_hparams([hp] * agents)
    hp_one = lambda i: jax.tree.map(lambda v: v[i], hp_batch)  # noqa: E731
    keys = jax.random.split(jax.random.key(0), agents)

    # the random phase, agent by agent (not timed as training; see the module docstring)
    t = time.perf_counter()
    init_one = jax.jit(sac.init)
    run_one = jax.jit(sac.run, static_argnums=3)
    states = []
    for i in range(agents):
        s = init_one(keys[i], hp_one(i), params)
        if learning_starts > 0:
            s, _ = run_one(s, hp_one(i), params, learning_starts)
        states.append(jax.block_until_ready(s))
    if agents == 1:
        state, hp_run = states[0], hp_one(0)
        program = run_one  # unbatched, as benchmarks/ppo.py's 1-agent row
    else:
        state = jax.tree.map(lambda *xs: jax.numpy.stack(xs), *states)
        hp_run = hp_batch
        program = jax.jit(jax.vmap(sac.run, in_axes=(0, 0, None, None)), static_argnums=3)
    del states
    state = jax.block_until_ready(state)
    random_phase_s = time.perf_counter() - t
    env_steps_done = int(np.asarray(state.iteration).reshape(-1)[0]) * config.num_envs

    t0 = time.perf_counter()
    lowered = program.lower(state, hp_run, params, chunk)
    trace_lower_s = time.perf_counter() - t0
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0

    run_s, returns, updates_ok = [], [], []
    for _ in range(chunks + 1):
        t = time.perf_counter()
        state, metrics = jax.block_until_ready(compiled(state, hp_run, params))
        run_s.append(time.perf_counter() - t)
        returns.append(_finite_mean(metrics["episode_return"]))
        updates_ok.append(bool(np.all(np.isfinite(np.asarray(metrics["critic_loss"])))))
    timed = run_s[1:]
    per_call = agents * chunk  # gradient steps (= env steps) of all agents per call
    row = {
        "implementation": "entrolab", "algorithm": "sac-adaent" if adaent else "sac", "env": ENV_ENTROLAB,
        "agents": agents, "chunk_iterations": chunk, "timed_chunks": chunks,
        "learning_starts": learning_starts, "env_steps_before_timing_per_agent": env_steps_done + chunk,
        "updates_per_call": per_call, "random_phase_s": random_phase_s, "trace_lower_s": trace_lower_s,
        "compile_s": compile_s, "first_call_s": run_s[0], "run_s": timed,
        "updates_per_s": per_call * len(timed) / sum(timed),
        "updates_per_s_median_call": per_call / statistics.median(timed),
        "updates_per_s_best_call": per_call / min(timed),
        "every_timed_iteration_updated": all(updates_ok),
        "mean_training_return_per_call": returns,
        "device": str(jax.devices()[0]), "xla_flags": os.environ.get("XLA_FLAGS"),
        "vmhwm_mb": peak_rss_self_mb(),
    }
    row["env_steps_per_s"] = row["updates_per_s"]  # one gradient step per env step, 1 env per agent
    if agents == 1:  # XLA's FLOP count of one iteration (env step + one gradient step), compiled apart
        cost = jax.jit(sac.update).lower(state, hp_run, params).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        row["xla_flops_per_update"] = float(cost.get("flops", float("nan")))
        row["achieved_gflop_per_s"] = row["xla_flops_per_update"] * row["updates_per_s"] / 1e9
    return row


def worker_sb3(steps: int, threads: int, learning_starts: int, buffer_size: int) -> dict:
    import gymnasium
    import torch
    from stable_baselines3 import SAC

    if threads > 0:
        torch.set_num_threads(threads)
    env = gymnasium.make(ENV_SB3)
    model = SAC(
        "MlpPolicy", env, learning_rate=LR, buffer_size=buffer_size, learning_starts=learning_starts,
        batch_size=BATCH_SIZE, tau=TAU, gamma=GAMMA, train_freq=1, gradient_steps=1, ent_coef=ALPHA,
        policy_kwargs=dict(net_arch=list(HIDDEN), activation_fn=torch.nn.ReLU),
        seed=0, device="cpu", verbose=0,
    )
    t = time.perf_counter()
    model.learn(learning_starts + SB3_WARMUP_UPDATES)  # random phase, then a few updates: torch warms up
    warmup_s = time.perf_counter() - t
    updates0, steps0 = model._n_updates, model.num_timesteps
    t = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    run_s = time.perf_counter() - t
    updates, done = model._n_updates - updates0, model.num_timesteps - steps0
    return {
        "implementation": "sb3", "algorithm": "sac", "env": ENV_SB3, "agents": 1,
        "learning_starts": learning_starts, "env_steps_before_timing": steps0, "warmup_s": warmup_s,
        "run_s": [run_s], "updates": updates, "env_steps": done,
        "updates_per_s": updates / run_s, "env_steps_per_s": done / run_s,
        "mean_training_return_last_100_episodes": _finite_mean([e["r"] for e in model.ep_info_buffer]),
        "torch_threads": torch.get_num_threads(), "vmhwm_mb": peak_rss_self_mb(),
    }


def worker_gemm(repeats: int = 200) -> dict:
    """GFLOP/s of a bare 256 x 256 x 256 float32 product: XLA (alone, and 20 batched as under
    vmap) and torch on 1 thread. The MLP layers of a batch of 256 are products of this size."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    torch.set_num_threads(1)
    out = {"implementation": "gemm", "agents": 1, "shape": [256, 256, 256], "repeats": repeats}
    for batch in (None, 20):
        shape = (256, 256) if batch is None else (batch, 256, 256)
        a = jnp.asarray(np.random.default_rng(0).standard_normal(shape), jnp.float32)
        eye = jnp.broadcast_to(jnp.eye(256, dtype=jnp.float32), shape)
        f = jax.jit(lambda x, b: jax.lax.fori_loop(0, repeats, lambda _, y: y @ b, x))
        f(a, eye).block_until_ready()
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            f(a, eye).block_until_ready()
            best = min(best, time.perf_counter() - t)
        flops = 2 * 256**3 * repeats * (batch or 1)
        out["xla_gflop_per_s" if batch is None else "xla_batched20_gflop_per_s"] = flops / best / 1e9
    a, b = torch.randn(256, 256), torch.eye(256)
    for _ in range(10):
        a @ b
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            a = a @ b
        best = min(best, time.perf_counter() - t)
    out["torch_1thread_gflop_per_s"] = 2 * 256**3 * repeats / best / 1e9
    out["vmhwm_mb"] = peak_rss_self_mb()
    return out


# ---------------------------------------------------------------------- parent
WORKER_TIMEOUT_S = 600  # a hung worker is killed and the row marked, never waited on forever


def _failure_row(args: list[str], why: str, peak_rss_mb: float) -> dict:
    """The row of a worker that was killed past WORKER_TIMEOUT_S or exited with an error."""
    return {"failed": why, "args": args, "peak_rss_mb": peak_rss_mb,
            "updates_per_s": float("nan"), "env_steps_per_s": float("nan")}


# 2 SB3 processes side by side: one row of 2 agents, updates/s and env steps/s summed
WORKERS = Workers(__file__, WORKER_TIMEOUT_S, rate_keys=("updates_per_s", "env_steps_per_s"),
                  failure_row=_failure_row, agents_are_processes=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    w = add_worker_command(parser)
    w.add_argument("--impl", choices=["entrolab", "sb3", "gemm"], required=True)
    w.add_argument("--agents", type=int, default=1)
    w.add_argument("--adaent", action="store_true")
    w.add_argument("--chunk", type=int, default=1000)
    w.add_argument("--chunks", type=int, default=4)
    w.add_argument("--steps", type=int, default=4000)
    w.add_argument("--threads", type=int, default=1)
    w.add_argument("--learning-starts", type=int, default=1000)
    w.add_argument("--buffer-size", type=int, default=BUFFER_SIZE)
    w.add_argument("--xla-flags", default=None, help="XLA_FLAGS for this worker (set before jax is imported)")
    parser.add_argument("--quick", action="store_true", help="short run")
    parser.add_argument("--chunk-1", type=int, default=None, help="SAC iterations per timed call, 1 agent (default 1000, quick 250)")
    parser.add_argument("--chunk-20", type=int, default=None, help="SAC iterations per timed call, 20 agents (default 100, quick 25)")
    parser.add_argument("--adaent-chunk-1", type=int, default=None, help="AdaEnt iterations per timed call, 1 agent (default 20, quick 5)")
    parser.add_argument("--adaent-chunk-20", type=int, default=None, help="AdaEnt iterations per timed call, 20 agents (default 1)")
    parser.add_argument("--chunks", type=int, default=None, help="timed calls per entrolab row, after one warm-up call (default 3, quick 2)")
    parser.add_argument("--sb3-steps", type=int, default=None, help="timed SB3 env steps (default 4000, quick 1000)")
    parser.add_argument("--sb3-threads", type=int, default=1, help="torch threads in SB3 workers (default 1; 0: torch's default)")
    parser.add_argument("--learning-starts", type=int, default=1000, help="random env steps before the first update (both)")
    parser.add_argument("--buffer-size", type=int, default=BUFFER_SIZE, help="replay capacity (both)")
    parser.add_argument("--no-sb3-parallel", action="store_true", help="skip the 2-process SB3 row")
    parser.add_argument("--no-adaent", action="store_true", help="skip the SAC-AdaEnt rows")
    parser.add_argument("--no-onednn", action="store_true",
                        help=f"skip the extra 20-agent row with XLA_FLAGS={ONEDNN_FLAGS}")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sac.json")
    args = parser.parse_args(argv)

    if args.cmd == "worker":
        if args.xla_flags is not None:
            os.environ["XLA_FLAGS"] = args.xla_flags
        if args.impl == "entrolab":
            row = worker_jax(args.agents, args.adaent, args.chunk, args.chunks, args.learning_starts, args.buffer_size)
        elif args.impl == "sb3":
            row = worker_sb3(args.steps, args.threads, args.learning_starts, args.buffer_size)
        else:
            row = worker_gemm()
        args.result.write_text(json.dumps(row))
        return row

    from rich.console import Console
    from rich.table import Table

    from envs import machine_info  # noqa: E402  (benchmarks/envs.py)

    c1 = args.chunk_1 or (250 if args.quick else 1000)
    c20 = args.chunk_20 or (25 if args.quick else 100)
    a1 = args.adaent_chunk_1 or (5 if args.quick else 20)
    a20 = args.adaent_chunk_20 or 1
    chunks = args.chunks or (2 if args.quick else 3)
    sb3_steps = args.sb3_steps or (1000 if args.quick else 4000)
    ls, buf = args.learning_starts, args.buffer_size
    common = ["--learning-starts", str(ls), "--buffer-size", str(buf)]
    console = Console(width=max(Console().width, 120))
    info = machine_info()
    from importlib.metadata import version

    info.update({"stable_baselines3": version("stable-baselines3"), "torch": version("torch")})
    console.print(f"[bold]SAC training throughput[/] on {info['device']} ({info['cpu_model']}, "
                  f"{info['cpus_usable']} usable cores), jax {info['jax']}, SB3 {info['stable_baselines3']}, "
                  f"torch {info['torch']}; entrolab {chunks} x {c1} iterations (1 agent) / {chunks} x {c20} "
                  f"(20 agents); SB3 {sb3_steps} steps; learning_starts {ls}, buffer {buf}")
    started = time.perf_counter()

    def jax_args(agents, chunk, adaent=False):
        return ["--impl", "entrolab", "--agents", str(agents), "--chunk", str(chunk), "--chunks", str(chunks),
                *(["--adaent"] if adaent else []), *common]

    sb3_args = ["--impl", "sb3", "--steps", str(sb3_steps), "--threads", str(args.sb3_threads), *common]
    plan = [
        ("SB3 SAC, 1 process", sb3_args, 1),
        ("entrolab SAC, 1 agent", jax_args(1, c1), 1),
        ("entrolab SAC, 20 agents", jax_args(GOAL_AGENTS, c20), 1),
    ]
    if not args.no_sb3_parallel:
        plan.append(("SB3 SAC, 2 processes", sb3_args, 2))
    if not args.no_onednn:
        plan.append(("entrolab SAC, 20 agents, XLA oneDNN", [*jax_args(GOAL_AGENTS, c20), f"--xla-flags={ONEDNN_FLAGS}"], 1))
    if not args.no_adaent:
        plan += [("entrolab SAC-AdaEnt, 1 agent", jax_args(1, a1, True), 1),
                 ("entrolab SAC-AdaEnt, 20 agents", jax_args(GOAL_AGENTS, a20, True), 1)]
    plan.append(("GEMM 256x256x256 reference", ["--impl", "gemm"], 1))

    rows = []
    for label, wargs, parallel in plan:
        console.print(f"[dim]{label} ...[/]")
        row = WORKERS.run(wargs, parallel)
        row["label"] = label
        rows.append(row)
        if "failed" in row:
            console.print(f"[red]{label}: failed ({row['failed']})[/]")
        elif row["implementation"] == "gemm":
            console.print(f"[dim]{label}: XLA {row['xla_gflop_per_s']:.0f} GFLOP/s (x20 batched "
                          f"{row['xla_batched20_gflop_per_s']:.0f}), torch 1 thread "
                          f"{row['torch_1thread_gflop_per_s']:.0f}[/]")
        else:
            console.print(f"[dim]{label}: {row['updates_per_s']:,.1f} updates/s, "
                          f"peak RSS {row['peak_rss_mb']:,.0f} MB[/]")
    train_rows = [r for r in rows if r.get("implementation") != "gemm"]
    base = next(r["updates_per_s"] for r in rows if r["label"] == "SB3 SAC, 1 process")
    par = next((r["updates_per_s"] for r in rows if r["label"] == "SB3 SAC, 2 processes"), None)
    for row in train_rows:
        row["speedup_vs_sb3"] = row["updates_per_s"] / base
        row["speedup_vs_sb3_2proc"] = row["updates_per_s"] / par if par else None

    table = Table(title="SAC training on Pendulum-v1: updates and env steps per second, peak resident memory")
    for col, justify in [("implementation", "left"), ("agents", "right"), ("compile (s)", "right"),
                         ("updates/s", "right"), ("env steps/s", "right"), ("vs SB3", "right"),
                         ("vs SB3 x2 proc.", "right"), ("peak RSS (MB)", "right")]:
        table.add_column(col, justify=justify)
    for r in train_rows:
        table.add_row(r["label"], str(r.get("agents", "-")),
                      f"{r['compile_s']:.1f}" if "compile_s" in r else "-",
                      f"{r['updates_per_s']:,.1f}", f"{r['env_steps_per_s']:,.1f}", f"{r['speedup_vs_sb3']:.2f}x",
                      f"{r['speedup_vs_sb3_2proc']:.2f}x" if r["speedup_vs_sb3_2proc"] else "-",
                      f"{r['peak_rss_mb']:,.0f}")
    console.print(table)

    r20 = next(r for r in rows if r["label"] == "entrolab SAC, 20 agents")
    met = bool(r20["speedup_vs_sb3"] >= GOAL_SPEEDUP)
    goal = {"speedup": r20["speedup_vs_sb3"], "speedup_vs_sb3_2proc": r20["speedup_vs_sb3_2proc"],
            "peak_rss_mb": r20["peak_rss_mb"], "met": met}
    console.print(f"20 agents at {r20['speedup_vs_sb3']:.2f}x SB3 (goal {GOAL_SPEEDUP:.0f}x: "
                  f"{'[green]met[/]' if met else '[red]not met[/]'})")

    record = make_record(
        "benchmarks/sac.py", argv, info, started,
        settings={"env_entrolab": ENV_ENTROLAB, "env_sb3": ENV_SB3, "hidden_sizes": HIDDEN,
                  "activation": "relu", "batch_size": BATCH_SIZE, "learning_rate": LR, "gamma": GAMMA,
                  "tau": TAU, "alpha": ALPHA, "buffer_size": buf, "learning_starts": ls,
                  "updates_per_env_step": 1, "chunk_1_agent": c1, "chunk_20_agents": c20,
                  "adaent_chunk_1_agent": a1, "adaent_chunk_20_agents": a20, "adaent_num_actions": 100,
                  "timed_chunks": chunks, "sb3_steps": sb3_steps, "sb3_warmup_updates": SB3_WARMUP_UPDATES,
                  "sb3_threads": args.sb3_threads, "quick": args.quick},
        goal={"speedup": GOAL_SPEEDUP, "agents": GOAL_AGENTS, "result": goal},
        results=rows,
    )
    write_record(args.out, record)
    console.print(f"wrote {args.out} ({record['total_wall_s']:.0f} s)")
    return record


if __name__ == "__main__":
    main()

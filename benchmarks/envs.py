"""Environment throughput: entrolab's compiled JAX envs against a NumPy env loop.

For each system (Lorenz, KS) this measures env steps per second of

- the JAX env, `vmap`-ed over a batch of 1, 64 and 1024 environments, with
  `--steps` control steps inside one `jax.lax.scan` in one `jit`-compiled
  program: random actions are drawn inside the program, auto-reset is
  included (the episodes of 200 steps end and restart inside the scan), and
  the result is waited for with `block_until_ready`. Compile time (trace,
  lower, compile) is reported apart from run time;
- the NumPy reference env of `benchmarks/numpy_envs.py` in a plain Python
  loop, gymnasium style: one env, `env.action_space.sample()`,
  `env.step(action)`, `env.reset()` at the end of each episode.

Each measurement is repeated (`--repeats`) after one warm-up run, the
repetitions of the rows of one system interleaved; the table gives the
median (and the best) over the repetitions. The speed-up is the JAX median
over the NumPy-loop median of the same run, so that the ratio is measured
under the same machine load.

    .venv/bin/python benchmarks/envs.py            # full run (a few minutes)
    .venv/bin/python benchmarks/envs.py --quick    # a short run

Writes `benchmarks/results/envs.json` (or `--out`). This is a measurement
script, not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _workers import make_record, write_record  # noqa: E402
from numpy_envs import KSNumpyEnv, LorenzNumpyEnv  # noqa: E402

from entrolab.envs import make  # noqa: E402

SYSTEMS = {"lorenz": LorenzNumpyEnv, "ks": KSNumpyEnv}
GOAL_SPEEDUP = 100.0
GOAL_BATCH = 1024


def jax_runner(env, params, batch: int, num_steps: int):
    """(reset, run): jitted; `run(key, obs, state, params)` does `num_steps` batched steps."""
    act_space = env.action_space(params)
    act_dim = act_space.shape[0]
    v_reset = jax.vmap(env.reset, in_axes=(0, None))
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def reset(key, params):
        return v_reset(jax.random.split(key, batch), params)

    def run(key, obs, state, params):
        def body(carry, key):
            obs, state, total = carry
            key_act, key_step = jax.random.split(key)
            action = jax.random.uniform(
                key_act, (batch, act_dim), obs.dtype, act_space.low, act_space.high
            )
            obs, state, reward, _, _, _ = v_step(jax.random.split(key_step, batch), state, action, params)
            return (obs, state, total + reward), None

        carry = (obs, state, jnp.zeros((batch,), obs.dtype))
        (obs, state, total), _ = jax.lax.scan(body, carry, jax.random.split(key, num_steps))
        return obs, state, total

    return jax.jit(reset), jax.jit(run)


def prepare_jax(name: str, batch: int, num_steps: int):
    """Compile the batched rollout; returns (row, timed_run) with the compile time in row."""
    env, params = make(name)
    reset, run = jax_runner(env, params, batch, num_steps)
    key = jax.random.key(0)
    obs, state = jax.block_until_ready(reset(key, params))
    t0 = time.perf_counter()
    compiled = run.lower(key, obs, state, params).compile()
    compile_s = time.perf_counter() - t0
    out = jax.block_until_ready(compiled(jax.random.key(1), obs, state, params))  # warm-up
    row = {"implementation": "jax", "batch": batch, "steps_per_env": num_steps,
           "compile_s": compile_s, "run_s": [], "total_reward": []}

    def timed_run(rep: int) -> None:
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(jax.random.key(2 + rep), obs, state, params))
        row["run_s"].append(time.perf_counter() - t0)
        total = np.asarray(out[2])
        if not np.all(np.isfinite(total)):
            raise RuntimeError(f"{name}: non-finite rewards in the JAX run")
        row["total_reward"].append(float(total.sum()))

    del out
    return row, timed_run


def prepare_numpy(name: str, num_steps: int):
    """A gymnasium-style loop over one NumPy env; returns (row, timed_run)."""
    env = SYSTEMS[name]()
    env.reset(seed=0)
    env.action_space.seed(0)

    def loop(n):
        total = 0.0
        for _ in range(n):
            action = env.action_space.sample()
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            if terminated or truncated:
                obs, info = env.reset()
        return total

    loop(min(num_steps, 200))  # warm-up
    row = {"implementation": "numpy loop", "batch": 1, "steps_per_env": num_steps,
           "compile_s": None, "run_s": [], "total_reward": []}

    def timed_run(rep: int) -> None:
        t0 = time.perf_counter()
        total = loop(num_steps)
        row["run_s"].append(time.perf_counter() - t0)
        row["total_reward"].append(total)

    return row, timed_run


def bench_system(name: str, batches: list[int], steps: int, numpy_steps: int, repeats: int,
                 console: Console) -> list[dict]:
    """All measurements of one system, repetitions interleaved (NumPy, then each batch),
    so that a change of machine load affects every row alike."""
    console.print(f"[dim]{name}: compiling ...[/]")
    prepared = [prepare_numpy(name, numpy_steps)]
    for batch in batches:
        prepared.append(prepare_jax(name, batch, steps))
        console.print(f"[dim]{name}: batch {batch} compiled in {prepared[-1][0]['compile_s']:.2f} s[/]")
    for rep in range(repeats):
        for _, timed_run in prepared:
            timed_run(rep)
        console.print(f"[dim]{name}: repetition {rep + 1}/{repeats} done[/]")
    rows = [row for row, _ in prepared]
    for row in rows:
        steps_done = row["batch"] * row["steps_per_env"]
        row["steps_per_s_median"] = steps_done / statistics.median(row["run_s"])
        row["steps_per_s_best"] = steps_done / min(row["run_s"])
        row["mean_reward_per_step"] = sum(row.pop("total_reward")) / (steps_done * len(row["run_s"]))
    base = rows[0]["steps_per_s_median"]
    for row in rows:
        row["speedup_vs_numpy_loop"] = row["steps_per_s_median"] / base
    return rows


def machine_info() -> dict:
    cpu_model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    import jaxlib

    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "device": str(jax.devices()[0]),
        "backend": jax.default_backend(),
        "x64": bool(jax.config.jax_enable_x64),
        "load_average_at_start": load,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run: fewer steps and repeats")
    parser.add_argument("--steps", type=int, default=None, help="JAX control steps per env (scan length); default 1000, quick 200")
    parser.add_argument("--numpy-steps", type=int, default=None, help="NumPy loop steps per repetition; default 5000, quick 500")
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions; default 5, quick 2")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "envs.json")
    args = parser.parse_args(argv)
    steps = args.steps or (200 if args.quick else 1000)
    numpy_steps = args.numpy_steps or (500 if args.quick else 5000)
    repeats = args.repeats or (2 if args.quick else 5)

    console = Console(width=max(Console().width, 110))
    info = machine_info()
    console.print(
        f"[bold]entrolab env throughput[/] on {info['device']} ({info['cpu_model']}, "
        f"{info['cpus_usable']} usable cores), jax {info['jax']}, float64={info['x64']}; "
        f"{steps} JAX steps/env, {numpy_steps} NumPy steps, {repeats} repeats"
    )
    started = time.perf_counter()
    results = {}
    for name in args.systems:
        results[name] = bench_system(name, args.batches, steps, numpy_steps, repeats, console)

    table = Table(title="Env steps per second (median of repeats; best in brackets)")
    for col, justify in [("system", "left"), ("implementation", "left"), ("envs", "right"),
                         ("compile (s)", "right"), ("steps/s", "right"), ("best", "right"),
                         ("vs NumPy loop", "right")]:
        table.add_column(col, justify=justify)
    for name, rows in results.items():
        for row in rows:
            table.add_row(
                name,
                row["implementation"],
                str(row["batch"]),
                "-" if row["compile_s"] is None else f"{row['compile_s']:.2f}",
                f"{row['steps_per_s_median']:,.0f}",
                f"{row['steps_per_s_best']:,.0f}",
                f"{row['speedup_vs_numpy_loop']:,.1f}x",
            )
    console.print(table)

    goal = {}
    for name, rows in results.items():
        at_goal = [r for r in rows if r["implementation"] == "jax" and r["batch"] == GOAL_BATCH]
        if at_goal:
            s = at_goal[0]["speedup_vs_numpy_loop"]
            goal[name] = {"speedup": s, "met": s >= GOAL_SPEEDUP}
            verdict = "[green]met[/]" if s >= GOAL_SPEEDUP else "[red]not met[/]"
            console.print(f"{name}: {s:,.1f}x the NumPy loop at {GOAL_BATCH} envs; goal {GOAL_SPEEDUP:.0f}x {verdict}")

    record = make_record(
        "benchmarks/envs.py", argv, info, started,
        settings={"jax_steps_per_env": steps, "numpy_steps": numpy_steps, "repeats": repeats,
                  "batches": args.batches, "quick": args.quick},
        goal={"speedup": GOAL_SPEEDUP, "batch": GOAL_BATCH, "result": goal},
        results=results,
    )
    write_record(args.out, record)
    console.print(f"wrote {args.out} ({record['total_wall_s']:.0f} s)")
    return record


if __name__ == "__main__":
    main()

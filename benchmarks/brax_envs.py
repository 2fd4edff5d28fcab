"""Throughput of brax's Hopper behind entrolab's protocol against brax's own step (the `brax` extra).

    .venv/bin/python benchmarks/brax_envs.py [--backends positional generalized] [--envs 64] [--steps 1000]

For each backend: `num_envs` Hoppers stepped `steps` times with uniform random actions in one jitted
`lax.scan` of a `vmap`, (a) through `make("brax:<task>")` (entrolab's step: action checks, noise
params, divergence check, time limit, auto-reset on brax's own termination with a fresh key) and
(b) raw brax (`env.step`, which never resets: fallen Hoppers keep stepping). Best of `repeats` after
a compile; env steps/s = envs x steps / wall time. Writes benchmarks/results/brax_envs.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

from entrolab.envs import make

RESULTS = Path(__file__).resolve().parent / "results" / "brax_envs.json"


def timed(fn, repeats: int) -> tuple[float, float]:
    t = time.perf_counter()
    jax.block_until_ready(fn())
    compile_s = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return compile_s, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="hopper")
    ap.add_argument("--backends", nargs="+", default=["positional", "generalized"])
    ap.add_argument("--envs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for backend in args.backends:
        env, params = make(f"brax:{args.task}", backend=backend)
        raw = env.brax_env
        m = env.action_space(params).shape[0]
        keys = jax.random.split(jax.random.key(0), args.envs)

        @jax.jit
        def ours(keys):
            def one(key):
                _, state = env.reset(key, params)

                def step(carry, _):
                    state, k = carry
                    k, ka, ks = jax.random.split(k, 3)
                    a = jax.random.uniform(ka, (m,), minval=-1.0, maxval=1.0)
                    _, state, r, *_ = env.step(ks, state, a, params)
                    return (state, k), r

                return jax.lax.scan(step, (state, key), None, length=args.steps)[1].sum()

            return jax.vmap(one)(keys)

        @jax.jit
        def theirs(keys):
            def one(key):
                s = raw.reset(key)

                def step(carry, _):
                    s, k = carry
                    k, ka = jax.random.split(k)
                    s = raw.step(s, jax.random.uniform(ka, (m,), minval=-1.0, maxval=1.0))
                    return (s, k), s.reward

                return jax.lax.scan(step, (s, key), None, length=args.steps)[1].sum()

            return jax.vmap(one)(keys)

        for name, fn in (("entrolab", ours), ("brax", theirs)):
            compile_s, best = timed(lambda fn=fn: fn(keys), args.repeats)
            rows.append({"task": args.task, "backend": backend, "step": name, "envs": args.envs, "steps": args.steps,
                         "compile_s": round(compile_s, 1), "env_steps_per_s": round(args.envs * args.steps / best)})
            print(rows[-1], flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"device": jax.devices()[0].device_kind, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

"""SAC's random warm-up under `vmap`: deciding per iteration (a `cond`, so every agent computes the
gradient steps and discards them) against the driver's plan (warm-up chunks with no gradient step).

    .venv/bin/python benchmarks/sac_warmup.py [--agents 20] [--iterations 200]

Times `SAC.run_chunks` over the warm-up only (`learning_starts` = the iterations timed + 1, so that
no update is kept either way), jit(vmap) over the agents, after a compile and a warm-up call;
the median of 3 calls. Writes benchmarks/results/sac_warmup.json. Networks (256, 256), batch 256,
1 env per agent, gymnax Pendulum-v1, AdaEnt off (it would make the decided version slower still).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from entrolab.agents.sac import SACConfig, SACHParams, make_train
from entrolab.envs import make

RESULTS = Path(__file__).resolve().parent / "results" / "sac_warmup.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    env, params = make("gymnax:Pendulum-v1")
    log_interval = args.iterations // 2
    config = SACConfig(num_envs=1, total_timesteps=args.iterations * 10, learning_starts=args.iterations + 1,
                       log_interval=log_interval, buffer_size=100_000, batch_size=256, hidden_sizes=(256, 256))
    sac = make_train(config, env, params)
    assert sac.warmup_iterations() == args.iterations
    hp = jax.tree.map(lambda v: jnp.full((args.agents,), v, jnp.float32), SACHParams())
    state = sac.init_batch(jax.random.split(jax.random.key(0), args.agents), hp, params)
    run = jax.jit(jax.vmap(sac.run_chunks, in_axes=(0, 0, None, None, None, None)), static_argnums=(3, 4, 5))
    out = {"agents": args.agents, "iterations": args.iterations, "jax": jax.__version__,
           "device": str(jax.devices()[0]), "machine": platform.processor() or platform.machine()}
    for label, known in (("decided per iteration (cond)", False), ("planned warm-up (no updates)", True)):
        t0 = time.perf_counter()
        compiled = run.lower(state, hp, params, 2, args.iterations, known).compile()
        compile_s = time.perf_counter() - t0
        jax.block_until_ready(compiled(state, hp, params))
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(state, hp, params))
            times.append(time.perf_counter() - t0)
        seconds = statistics.median(times)
        out[label] = {"compile_s": compile_s, "seconds": seconds,
                      "agent_env_steps_per_s": args.agents * args.iterations / seconds}
        print(f"{label}: compile {compile_s:.1f} s, {seconds:.2f} s for {args.iterations} warm-up iterations "
              f"x {args.agents} agents ({args.agents * args.iterations / seconds:,.0f} agent env steps/s)")
    ratio = out["decided per iteration (cond)"]["seconds"] / out["planned warm-up (no updates)"]["seconds"]
    out["speedup"] = ratio
    print(f"speed-up of the warm-up: {ratio:.1f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

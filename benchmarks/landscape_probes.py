"""Throughput of random-perturbation probes of a trained-size policy's sampled return on Lorenz,
against the robustness evaluator's on the same machine and in the same run (issue 12).

    .venv/bin/python benchmarks/landscape_probes.py [--directions 100] [--episodes 64] [--repeats 3]

Probe: `entrolab.measures.landscape.perturbation_probe` of `checkpoint_objective` (a (64, 64)
GaussianPolicy, deterministic, Lorenz with 200-step episodes): directions x 2 signs points, each
the mean return of `episodes` episodes (plus 8 evaluations at the centre for the noise band).
Evaluator: `entrolab.measures.robustness.evaluate_grid` on as many policies (directions x 2 copies
of the policy) under one noise-free condition, deterministic mode, the same episodes. Both time
the second call (the first compiles); env steps/s = episodes x 200 steps / wall time; the best of
`repeats`. Writes benchmarks/results/landscape_probes.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from entrolab.agents.policy import GaussianPolicy
from entrolab.checkpoint import LoadedPolicy
from entrolab.envs import make
from entrolab.measures.landscape import checkpoint_objective, perturbation_probe
from entrolab.measures.robustness import Condition, evaluate_grid, stack_pytrees

RESULTS = Path(__file__).resolve().parent / "results" / "landscape_probes.json"


def best_time(fn, repeats: int) -> float:
    fn()  # compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directions", type=int, default=100)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env, env_params = make("lorenz", max_steps_in_episode=200)
    steps = int(env_params.max_steps_in_episode)
    policy = GaussianPolicy(obs_dim=3, action_dim=3, hidden_sizes=(64, 64))
    params = policy.init(jax.random.key(0))
    loaded = LoadedPolicy(policy=policy, params=params, arrays={"policy": params}, manifest={})
    f, point = checkpoint_objective(loaded, env, env_params, args.episodes)
    centre = 8

    def probe():
        perturbation_probe(f, point, jax.random.key(1), args.directions, 0.1, num_repeats=centre, sampled=True)

    policies = 2 * args.directions
    stacked = stack_pytrees([params] * policies)
    cond = [Condition.obs_noise(0.0, "C+", 0.1)]

    def grid():
        evaluate_grid(policy, stacked, env, env_params, cond, jax.random.key(2), args.episodes,
                      modes=("deterministic",))

    probe_s = best_time(probe, args.repeats)
    grid_s = best_time(grid, args.repeats)
    probe_steps = (policies + centre) * args.episodes * steps
    grid_steps = policies * args.episodes * steps
    out = {
        "machine": {"devices": [str(d) for d in jax.devices()], "cpu_count": __import__("os").cpu_count()},
        "directions": args.directions, "episodes": args.episodes, "steps_per_episode": steps,
        "probe": {"seconds": probe_s, "env_steps": probe_steps, "env_steps_per_s": probe_steps / probe_s},
        "evaluate_grid": {"seconds": grid_s, "env_steps": grid_steps, "env_steps_per_s": grid_steps / grid_s},
    }
    out["probe_over_grid"] = out["probe"]["env_steps_per_s"] / out["evaluate_grid"]["env_steps_per_s"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Wall time and peak memory of the robustness study's two heavy parts.

    .venv/bin/python benchmarks/study.py [--skip-quick] [--out benchmarks/results/study.json]

1. `entrolab study configs/lorenz-quick.toml` end to end (train 12 agents,
   evaluate, measure, tables, report), in a fresh directory, with JAX's
   persistent compilation cache off, so compile time is included.
2. The evaluation of 48 policies x 5 observation-noise levels x 100 episodes
   (x 2 initial distributions x 2 modes: deterministic and sampled) on Lorenz
   and on KS with `entrolab.measures.robustness.evaluate_grid`: 48 freshly initialised
   policies (the cost does not depend on the weights), timed cold (compile
   included) and warm (the same call again).

Every measurement runs in its own subprocess; peak memory is that child's
`ru_maxrss` from `os.wait4` (interpreter, JAX and the program included).
Numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(args: list[str], env: dict | None = None) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, **(env or {})})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{args} failed:\n{out}")
    result = {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result.update(json.loads(line[len("RESULT "):]))
    return result


def evaluation_worker(system: str) -> None:
    import jax

    from entrolab.agents.policy import GaussianPolicy
    from entrolab.envs import make
    from entrolab.measures.robustness import condition_grid, evaluate_grid, stack_pytrees

    env, params = make(system)
    obs_dim = env.observation_space(params).shape[0]
    act_dim = env.action_space(params).shape[0]
    policy = GaussianPolicy(obs_dim, act_dim)
    init = jax.jit(policy.init)
    stacked = stack_pytrees([init(jax.random.key(i)) for i in range(48)])
    inits = ["C+", "C-"] if system == "lorenz" else ["E1", "E2"]
    conditions = condition_grid(params, inits, obs_noise=[0.0, 0.05, 0.1, 0.2, 0.5], init_std=0.1)
    timings = []
    for _ in range(2):
        t0 = time.perf_counter()
        result = evaluate_grid(policy, stacked, env, params, conditions, jax.random.key(0), 100)
        jax.block_until_ready(result.returns)
        timings.append(time.perf_counter() - t0)
    episodes = result.returns.size
    steps = episodes * int(params.max_steps_in_episode)
    print("RESULT " + json.dumps({"cold_s": timings[0], "warm_s": timings[1], "episodes": int(episodes),
                                  "env_steps": steps, "warm_env_steps_per_s": steps / timings[1]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "study.json")
    parser.add_argument("--worker", choices=["lorenz", "ks"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        evaluation_worker(args.worker)
        return
    import jax

    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or
               platform.machine(), "cpus": os.cpu_count(), "jax": jax.__version__,
               "load_average_before": os.getloadavg()}
    for system in ["lorenz", "ks"]:
        r = _child([sys.executable, __file__, "--worker", system])
        results[f"evaluate_48x5x100_{system}"] = r
        print(system, r, flush=True)
    if not args.skip_quick:
        with tempfile.TemporaryDirectory() as tmp:
            r = _child([sys.executable, "-m", "entrolab.cli", "study", "configs/lorenz-quick.toml", "--out",
                        str(Path(tmp) / "lorenz-quick")], env={"ENTROLAB_JAX_CACHE": ""})
            registry = __import__("sqlite3").connect(Path(tmp) / "lorenz-quick" / "registry.sqlite")
            r["units"] = {i: w for i, w in registry.execute("SELECT id, wall_s FROM units ORDER BY seq")}
        results["lorenz_quick"] = r
        print("lorenz-quick", r, flush=True)
    results["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

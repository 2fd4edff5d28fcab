"""Peak memory of a SAC-AdaEnt sweep at the authors' K = 100, with its K evaluations in one pass
and in chunks (`SACConfig.adaent_chunk`).

    .venv/bin/python benchmarks/adaent_memory.py [--agents 20] [--chunks none,25,10]

Each case runs `train_sweep` in its own subprocess: SAC-AdaEnt, gymnax Pendulum-v1, the authors'
(256, 256) networks, batch 256, K = 100, a small replay buffer (10,000, so that the critics'
activations, not the buffers, dominate), 256 warm-up steps and 64 gradient steps per agent. It
reports the child's peak RSS (`ru_maxrss`) and its wall time. Per agent and gradient step the
K x batch = 25,600 state-action pairs go through four critics (soft and plain twins) at 256
wide: about 26 MB per layer's activations. Writes benchmarks/results/adaent_memory.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "adaent_memory.json"

CHILD = """
import sys
from entrolab.agents.sac import SACConfig, SACHParams
from entrolab.training import train_sweep
agents, chunk, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
config = SACConfig(num_envs=1, total_timesteps=320, learning_starts=256, log_interval=16, buffer_size=10_000,
                   hidden_sizes=(256, 256), activation="relu", batch_size=256, adaent=True, adaent_num_actions=100,
                   adaent_chunk=None if chunk == "none" else int(chunk))
train_sweep("gymnax:Pendulum-v1", [0.2], agents, out, config, SACHParams(actor_lr=1e-3, critic_lr=1e-3),
            eval_episodes=1, num_chunks=4)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--chunks", default="none,25,10",
                        help="adaent_chunk values, comma-separated ('none': one pass)")
    args = parser.parse_args()
    out = {"agents": args.agents, "adaent_num_actions": 100, "hidden_sizes": [256, 256], "batch_size": 256,
           "gradient_steps_per_agent": 64, "cases": {}}
    for chunk in args.chunks.split(","):
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [sys.executable, "-c", CHILD + "\nimport resource, json\n"
                 "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))",
                 str(args.agents), chunk, tmp],
                capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        peak_mb = json.loads(proc.stdout.strip().splitlines()[-1]) / 1024
        out["cases"][chunk] = {"peak_rss_mb": peak_mb, "wall_s": wall}
        print(f"adaent_chunk = {chunk}: peak RSS {peak_mb:,.0f} MB, {wall:.0f} s (compile included)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

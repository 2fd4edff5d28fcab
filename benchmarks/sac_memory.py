"""Peak memory of a SAC sweep with and without donating the agents' state to each compiled call.

    .venv/bin/python benchmarks/sac_memory.py [--agents 20] [--buffer 1000000]

Each case runs `train_sweep` in its own subprocess (SAC, gymnax Pendulum-v1, (64, 64) networks,
`learning_starts` = the whole run, so that the buffers dominate and no update is computed), and
reports the child's peak RSS (`ru_maxrss`). The replay buffers alone take
agents x buffer x (2 obs_dim + action_dim + 2) x 4 bytes. Writes benchmarks/results/sac_memory.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "sac_memory.json"

CHILD = """
import sys
from entrolab.agents.sac import SACConfig, SACHParams
from entrolab.training import train_sweep
agents, buffer, donate, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
config = SACConfig(num_envs=1, total_timesteps=4000, learning_starts=5000, log_interval=1000, buffer_size=buffer,
                   hidden_sizes=(64, 64))
train_sweep("gymnax:Pendulum-v1", [0.2], agents, out, config, SACHParams(), eval_episodes=1, num_chunks=4,
            donate_state=donate)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--buffer", type=int, default=1_000_000)
    args = parser.parse_args()
    buffers_mb = args.agents * args.buffer * (2 * 3 + 1 + 2) * 4 / 2**20
    out = {"agents": args.agents, "buffer_size": args.buffer, "replay_buffers_mb": buffers_mb}
    for label, donate in (("without donation", "0"), ("with donation", "1")):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [sys.executable, "-c", CHILD + "\nimport resource, json\n"
                 "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))",
                 str(args.agents), str(args.buffer), donate, tmp],
                capture_output=True, text=True, check=True)
        peak_mb = json.loads(proc.stdout.strip().splitlines()[-1]) / 1024
        out[label] = {"peak_rss_mb": peak_mb}
        print(f"{label}: peak RSS {peak_mb:,.0f} MB (replay buffers {buffers_mb:,.0f} MB)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

"""PPO at any reward scale (issue 10): Pendulum-v1 at the CLI defaults, against the first release.

    .venv/bin/entrolab train --env gymnax:Pendulum-v1 --alpha 0 --seeds 3 --steps 1000000 --out RUN_DIR
    .venv/bin/python docs/scripts/results_ppo_scale.py --import RUN_DIR    # once: writes the record
    .venv/bin/python docs/scripts/results_ppo_scale.py                     # the figure and the table

Reads benchmarks/results/ppo_pendulum.json (the first release's PPO: no reward normalisation, one
gradient clip; written by results_ppo.py) and benchmarks/results/ppo_pendulum_defaults.json (today's
defaults: rewards divided by the running std of the discounted return, separate clipping), and writes
docs/figures/ppo_pendulum_scale.png: training return and, for today's run, the critic's explained
variance, against env steps. The goal: at least -250 on every seed at 1M steps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GOAL = -250.0
COMMAND = ".venv/bin/entrolab train --env gymnax:Pendulum-v1 --alpha 0 --seeds 3 --steps 1000000 --out RUN_DIR"


def import_run(run_dir: Path, dest: Path) -> None:
    runs = pd.read_parquet(run_dir / "runs.parquet")
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    sweep = json.loads((run_dir / "sweep.json").read_text())
    per_seed = runs["eval_return_det_mean"].to_numpy(float)
    record = {
        "command": COMMAND, "env": sweep["env"], "config": sweep["config"], "hparams": sweep["hparams"],
        "runs": runs[["seed", "eval_return_det_mean", "eval_return_det_std", "eval_return_sto_mean",
                      "eval_return_sto_std", "env_steps", "train_time_s", "compile_time_s"]].to_dict(orient="records"),
        "goal": {"every_seed_at_least": GOAL, "met": bool(np.all(per_seed >= GOAL))},
        "curves": {str(s): {k: g[k].tolist() for k in ("env_steps", "episode_return", "explained_variance",
                                                       "reward_scale")}
                   for s, g in metrics.groupby("seed")},
    }
    dest.write_text(json.dumps(record, indent=1, default=float) + "\n")
    print(f"wrote {dest}")


def _band(ax, curves: dict, key: str, color: str, label: str) -> None:
    ys = []
    for c in curves.values():
        x, y = np.asarray(c["env_steps"]), np.asarray(c[key], float)
        ax.plot(x, y, color=color, lw=0.6, alpha=0.35)
        ys.append(y)
    ax.plot(x, np.nanmean(np.stack(ys), axis=0), color=color, lw=2.0, label=label)


def figure(first: dict, today: dict, path: Path) -> None:
    fig, (ax, ax_ev) = plt.subplots(1, 2, figsize=(10.5, 3.8), constrained_layout=True)
    _band(ax, first["curves"], "episode_return", "tab:gray", "first release (no reward normalisation, joint clip)")
    _band(ax, today["curves"], "episode_return", "tab:blue", "today's defaults")
    ax.axhline(GOAL, color="tab:red", ls="--", lw=1, label=f"goal: every seed >= {GOAL:g}")
    ax.set_xlabel("env steps per agent")
    ax.set_ylabel("training episode return (3 seeds, thin; mean, thick)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    _band(ax_ev, today["curves"], "explained_variance", "tab:blue", "today's defaults")
    ax_ev.set_xlabel("env steps per agent")
    ax_ev.set_ylabel("critic's explained variance")
    ax_ev.set_ylim(-0.1, 1.05)
    ax_ev.grid(alpha=0.3)
    fig.suptitle("gymnax Pendulum-v1, `entrolab train --alpha 0 --seeds 3 --steps 1000000`", fontsize=9)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--import", dest="run_dir", type=Path, default=None, metavar="RUN_DIR")
    args = parser.parse_args(argv)
    today_path = args.results / "ppo_pendulum_defaults.json"
    if args.run_dir is not None:
        import_run(args.run_dir, today_path)
    first = json.loads((args.results / "ppo_pendulum.json").read_text())
    today = json.loads(today_path.read_text())
    figure(first, today, args.out / "ppo_pendulum_scale.png")
    print("| seed | first release: deterministic return | today's defaults: deterministic | sampled |")
    print("|---:|---:|---:|---:|")
    for a, b in zip(first["runs"], today["runs"]):
        print(f"| {b['seed']} | {a['eval_return_det_mean']:.1f} | {b['eval_return_det_mean']:.1f} | "
              f"{b['eval_return_sto_mean']:.1f} |")
    print(f"goal (every seed >= {GOAL:g}) met: {today['goal']['met']}")


if __name__ == "__main__":
    main()

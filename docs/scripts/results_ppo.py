"""Figures and tables of docs/results.md (PPO learns, issue 3) from saved results.

    .venv/bin/python docs/scripts/results_ppo.py [--results benchmarks/results] [--out docs/figures]
    .venv/bin/python docs/scripts/results_ppo.py --import-pendulum RUN_DIR   # first, once

Reads (nothing is trained here):

- benchmarks/results/sb3_compare/: learning curves (`entrolab_{system}.parquet`,
  `sb3_{system}_seed{s}.parquet`), final evaluations (`*.json`) and the zero-action
  and LQR baselines (`baselines_{system}.json`), written by benchmarks/sb3_compare.py;
- benchmarks/results/ppo_pendulum.json: the Pendulum run of `entrolab train`
  (`--import-pendulum RUN_DIR` converts that command's runs.parquet and
  metrics.parquet into this file).

Writes into OUT (PNG, matplotlib Agg):

- ppo_learning_curves.png: training episode return vs env steps, entrolab PPO
  and SB3 PPO, every seed (thin) and the mean over seeds (thick; both smoothed
  by a centred moving average over 5 updates), on Lorenz and KS, with the
  zero-action and saturated-LQR returns as horizontal lines;
- ppo_final_returns.png: final deterministic evaluation return of every run,
  with the baselines;
- ppo_pendulum.png: Pendulum-v1 training return vs env steps, with the -300 line;

and prints the Markdown tables quoted in docs/results.md.
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
TITLES = {"lorenz": "Lorenz-63 (target: origin)", "ks": "Kuramoto-Sivashinsky, L = 22 (target: E1)"}
COLORS = {"entrolab": "tab:blue", "sb3": "tab:orange"}
LABELS = {"entrolab": "entrolab PPO", "sb3": "SB3 PPO"}
SMOOTH = 5  # updates in the centred moving average of the plotted curves
PENDULUM_GOAL = -300.0


def smooth(y: np.ndarray, k: int = SMOOTH) -> np.ndarray:
    s = pd.Series(y).rolling(k, center=True, min_periods=1).mean()
    return s.to_numpy()


def import_pendulum(run_dir: Path, dest: Path, command: str) -> None:
    runs = pd.read_parquet(run_dir / "runs.parquet")
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    sweep = json.loads((run_dir / "sweep.json").read_text())
    keep = ["seed", "eval_return_det_mean", "eval_return_det_std", "eval_return_sto_mean",
            "eval_return_sto_std", "train_return_last", "env_steps", "train_time_s", "compile_time_s",
            "wall_time_s", "eval_episodes"]
    record = {
        "command": command, "env": sweep["env"], "config": sweep["config"], "hparams": sweep["hparams"],
        "runs": runs[keep].to_dict(orient="records"),
        "eval_return_det_mean_over_seeds": float(runs["eval_return_det_mean"].mean()),
        "eval_return_det_std_over_seeds": float(runs["eval_return_det_mean"].std(ddof=1)),
        "eval_return_sto_mean_over_seeds": float(runs["eval_return_sto_mean"].mean()),
        "goal": {"mean_return_at_least": PENDULUM_GOAL,
                 "met": bool(runs["eval_return_det_mean"].mean() >= PENDULUM_GOAL)},
        "curves": {str(s): {"env_steps": g["env_steps"].tolist(), "episode_return": g["episode_return"].tolist()}
                   for s, g in metrics.groupby("seed")},
    }
    dest.write_text(json.dumps(record, indent=1, default=float) + "\n")
    print(f"wrote {dest}")


def load_curves(cmp_dir: Path, system: str) -> dict[str, pd.DataFrame]:
    """{'entrolab': df, 'sb3': df}, each with columns seed, env_steps, episode_return."""
    out = {}
    ent = cmp_dir / f"entrolab_{system}.parquet"
    if ent.exists():
        out["entrolab"] = pd.read_parquet(ent)
    sb3 = sorted(cmp_dir.glob(f"sb3_{system}_seed*.parquet"))
    if sb3:
        out["sb3"] = pd.concat([pd.read_parquet(p) for p in sb3], ignore_index=True)
    return out


def plot_curves(ax, df: pd.DataFrame, algo: str) -> None:
    piv = df.pivot_table(index="env_steps", columns="seed", values="episode_return")
    x = piv.index.to_numpy()
    for seed in piv.columns:
        ax.plot(x, smooth(piv[seed].to_numpy()), color=COLORS[algo], lw=0.7, alpha=0.35)
    ax.plot(x, smooth(piv.mean(axis=1).to_numpy()), color=COLORS[algo], lw=2.2,
            label=f"{LABELS[algo]} (mean of {piv.shape[1]} seeds)")


def learning_figure(cmp_dir: Path, summary: dict, systems: list[str], path: Path) -> None:
    fig, axes = plt.subplots(1, len(systems), figsize=(6.2 * len(systems), 4.4), squeeze=False)
    for ax, system in zip(axes[0], systems):
        curves = load_curves(cmp_dir, system)
        for algo in ("sb3", "entrolab"):
            if algo in curves:
                plot_curves(ax, curves[algo], algo)
        base = summary["systems"].get(system, {})
        for key, style, label in (("zero", ":", "zero action"), ("lqr", "--", "saturated LQR")):
            if key in base:
                ax.axhline(base[key]["return_mean"], color="k", ls=style, lw=1.2,
                           label=f"{label} ({base[key]['return_mean']:.1f})")
        ax.set_title(TITLES[system])
        ax.set_xlabel("env steps per agent")
        ax.set_ylabel("training episode return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="center right")
    fig.suptitle("PPO learning curves, same network, hyperparameters and budget "
                 f"(thin: seeds; thick: mean; {SMOOTH}-update moving average)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    print(f"wrote {path}")


def final_figure(summary: dict, systems: list[str], path: Path) -> None:
    fig, axes = plt.subplots(1, len(systems), figsize=(4.6 * len(systems), 3.8), squeeze=False)
    for ax, system in zip(axes[0], systems):
        res = summary["systems"][system]
        for i, (name, algo) in enumerate((("entrolab PPO", "entrolab"), ("SB3 PPO", "sb3"))):
            if name in res:
                y = res[name]["per_seed_return"]
                ax.scatter(np.full(len(y), i) + np.linspace(-0.08, 0.08, len(y)), y, color=COLORS[algo], zorder=3)
                ax.errorbar(i + 0.25, res[name]["return_mean"], yerr=res[name]["return_std"], fmt="s",
                            color=COLORS[algo], capsize=4)
        ax.axhline(res["zero"]["return_mean"], color="k", ls=":", label="zero action")
        ax.axhline(res["lqr"]["return_mean"], color="k", ls="--", label="saturated LQR")
        ax.set_xticks([0, 1], ["entrolab", "SB3"])
        ax.set_xlim(-0.5, 1.6)
        ax.set_ylabel("deterministic evaluation return")
        ax.set_title(TITLES[system], fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    print(f"wrote {path}")


def pendulum_figure(pend: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    ys = []
    for seed, c in pend["curves"].items():
        x, y = np.asarray(c["env_steps"]), np.asarray(c["episode_return"], float)
        ys.append(y)
        ax.plot(x, smooth(y), color="tab:blue", lw=0.7, alpha=0.35)
    ax.plot(x, smooth(np.nanmean(np.stack(ys), axis=0)), color="tab:blue", lw=2.2,
            label=f"entrolab PPO (mean of {len(ys)} seeds)")
    ax.axhline(PENDULUM_GOAL, color="tab:red", ls="--", label="goal: -300")
    ax.set_xlabel("env steps per agent")
    ax.set_ylabel("training episode return")
    ax.set_title("gymnax Pendulum-v1, `entrolab train --alpha 0 --seeds 3 --steps 1000000`", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    print(f"wrote {path}")


def tables(summary: dict, systems: list[str], pend: dict | None) -> None:
    print("\n| system | policy | runs | env steps per run | deterministic return (mean ± std over seeds) "
          "| cost reduction 1 − J/J_zero (mean ± std) | per seed |")
    print("|---|---|---:|---:|---:|---:|---|")
    for system in systems:
        res = summary["systems"][system]
        for name in ("entrolab PPO", "SB3 PPO"):
            if name in res:
                r = res[name]
                print(f"| {system} | {name} | {r['runs']} | {r['env_steps']:,} | {r['return_mean']:.2f} ± "
                      f"{r['return_std']:.2f} | {r['cost_reduction_mean']:.3f} ± {r['cost_reduction_std']:.3f} | "
                      + ", ".join(f"{v:.2f}" for v in r["per_seed_return"]) + " |")
        for key, label in (("lqr", "saturated LQR"), ("zero", "zero action")):
            b = res[key]
            print(f"| {system} | {label} | {b['episodes']} episodes | - | {b['return_mean']:.2f} ± "
                  f"{b['return_std']:.2f} (over episodes) | {b['cost_reduction']:.3f} | - |")
    for system in systems:
        res = summary["systems"][system]
        if "entrolab PPO" in res and "SB3 PPO" in res:
            e, s = res["entrolab PPO"], res["SB3 PPO"]
            diff = e["cost_reduction_mean"] - s["cost_reduction_mean"]
            print(f"{system}: entrolab {e['cost_reduction_mean']:.3f} vs SB3 {s['cost_reduction_mean']:.3f} "
                  f"(difference {diff:+.3f}); entrolab at least as good: {diff >= 0}")
    if pend:
        print("\n| seed | deterministic return (16 episodes) | std over episodes | sampled return | "
              "last training return (mean of last 5 updates) |")
        print("|---:|---:|---:|---:|---:|")
        for r in pend["runs"]:
            print(f"| {r['seed']} | {r['eval_return_det_mean']:.1f} | {r['eval_return_det_std']:.1f} | "
                  f"{r['eval_return_sto_mean']:.1f} | {r['train_return_last']:.1f} |")
        print(f"mean over seeds: deterministic {pend['eval_return_det_mean_over_seeds']:.1f} ± "
              f"{pend['eval_return_det_std_over_seeds']:.1f}, sampled {pend['eval_return_sto_mean_over_seeds']:.1f}; "
              f"goal >= -300 met: {pend['goal']['met']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--systems", nargs="+", default=["lorenz", "ks"])
    parser.add_argument("--import-pendulum", type=Path, default=None, metavar="RUN_DIR",
                        help="convert an `entrolab train --env gymnax:Pendulum-v1` output dir to ppo_pendulum.json")
    parser.add_argument("--pendulum-command", default=".venv/bin/entrolab train --env gymnax:Pendulum-v1 "
                        "--alpha 0 --seeds 3 --steps 1000000 --out RUN_DIR")
    args = parser.parse_args(argv)
    pend_path = args.results / "ppo_pendulum.json"
    if args.import_pendulum is not None:
        import_pendulum(args.import_pendulum, pend_path, args.pendulum_command)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = json.loads((args.results / "sb3_compare.json").read_text())
    systems = [s for s in args.systems if s in summary["systems"]]
    learning_figure(args.results / "sb3_compare", summary, systems, args.out / "ppo_learning_curves.png")
    final_figure(summary, systems, args.out / "ppo_final_returns.png")
    pend = json.loads(pend_path.read_text()) if pend_path.exists() else None
    if pend:
        pendulum_figure(pend, args.out / "ppo_pendulum.png")
    tables(summary, systems, pend)


if __name__ == "__main__":
    main()

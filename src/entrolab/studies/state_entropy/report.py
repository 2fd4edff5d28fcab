"""The report of a state-entropy study: the answer first (success under each perturbation, each
method against none), then how the coefficients were chosen, the rollout-count sensitivity and
where each method's policies go (state-visitation heat maps). From the tables only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from entrolab.report.document import Figure, Section, Table, fmt, fmt_ci  # noqa: E402
from entrolab.report.figures import panels, save  # noqa: E402

if TYPE_CHECKING:
    from entrolab.studies.state_entropy.config import StateEntropyConfig

LABELS = {"none": "none", "policy": "policy entropy", "state": "state entropy", "both": "both"}


def _label(run: str) -> str:
    return f"state entropy, {run.removeprefix('state_r')} rollouts" if run.startswith("state_r") else LABELS[run]


def _answer(config, summary: pd.DataFrame, diffs: pd.DataFrame, mode: str, fig_dir: Path) -> Section:
    s = Section(f"Does state entropy buy robustness to structured perturbations here? ({mode} policies)")
    methods = [m for m in config.methods if m in set(summary["run"])]
    layouts = [x for x in config.evaluate.layouts if x in set(summary["layout"])]
    lines = []
    d = diffs[diffs["mode"] == mode] if not diffs.empty else diffs
    if "reference" in d.columns:
        versus_policy, d = d[d["reference"] == "policy"], d[d["reference"] == "none"]
    else:
        versus_policy = d.iloc[0:0]
    for run in [m for m in methods if m != "none"]:
        for layout in layouts:
            row = d[(d["run"] == run) & (d["layout"] == layout)]
            if row.empty:
                continue
            r = row.iloc[0]
            verdict = "higher" if r["low"] > 0 else "lower" if r["high"] < 0 else "not distinguishable"
            lines.append((LABELS[run], layout, fmt_ci(r["difference"], r["low"], r["high"]), verdict))
    s.blocks.append(
        f"Success rate ({mode} policies) of each method minus that of the unregularised one, per layout, with a 95% "
        f"bootstrap interval over seeds ({config.seeds} per method, {config.evaluate.episodes} episodes per seed "
        "and layout, the same layouts for every policy). 'higher' / 'lower' only where the interval excludes 0.")
    if lines:
        s.blocks.append(Table(("method", "layout", "success - none [95% CI]", "verdict"), tuple(lines)))
    rows = []
    for run in ("state", "both"):
        for layout in layouts:
            row = versus_policy[(versus_policy["run"] == run) & (versus_policy["layout"] == layout)]
            if len(row):
                r = row.iloc[0]
                verdict = "higher" if r["low"] > 0 else "lower" if r["high"] < 0 else "not distinguishable"
                rows.append((LABELS[run], layout, fmt_ci(r["difference"], r["low"], r["high"]), verdict))
    if rows:
        s.blocks.append("The paper's comparison: the state-entropy methods against policy entropy alone.")
        s.blocks.append(Table(("method", "layout", "success - policy entropy [95% CI]", "verdict"), tuple(rows)))
    sub = summary[summary["mode"] == mode]
    rows = []
    for run in [*methods, *(f"state_r{n}" for n in config.rollout_counts)]:
        cells = []
        for layout in layouts:
            r = sub[(sub["run"] == run) & (sub["layout"] == layout)]
            cells.append(fmt_ci(r["mean"].iloc[0], r["low"].iloc[0], r["high"].iloc[0]) if len(r) else "")
        rows.append((_label(run), *cells))
    s.blocks.append(Table(("method", *layouts), tuple(rows), caption=f"Success rate ({mode}), mean over seeds [95% CI]."))
    fig, axes = panels(len(layouts), ncols=5, panel=(2.2, 2.2))
    for ax, layout in zip(axes, layouts):
        for j, run in enumerate(methods):
            r = sub[(sub["run"] == run) & (sub["layout"] == layout)]
            if r.empty:
                continue
            m, lo, hi = (float(r[c].iloc[0]) for c in ("mean", "low", "high"))
            ax.errorbar([j], [m], yerr=[[m - lo], [hi - m]], fmt="o", ms=4, capsize=2)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels([m for m in methods], fontsize=7, rotation=30)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(layout, fontsize=8)
        ax.set_ylabel("success rate")
    name = save(fig, fig_dir / f"success_{mode}.png")
    s.blocks.append(Figure(name, f"Success rate per layout and method ({mode} policies): mean over seeds, 95% "
                                 "bootstrap interval."))
    return s


def _selection(config, choices: pd.DataFrame, selection: pd.DataFrame) -> Section:
    sel = config.select
    s = Section("How the coefficients were chosen")
    s.blocks.append(
        f"Each coefficient is the largest candidate whose mean nominal return (sampled policy, {sel.seeds} seeds, "
        f"{config.evaluate.episodes} episodes) is at least the unregularised return minus {fmt(100 * sel.max_cost)}% "
        "of it. The chosen coefficient is then trained on fresh seeds.")
    rows = tuple((LABELS[r["method"]], fmt(r["coefficient"]), fmt(r["reference_return"]), fmt(r["floor"]),
                  "yes" if r["within_budget"] else "no: the smallest candidate")
                 for _, r in choices.iterrows())
    s.blocks.append(Table(("method", "chosen", "reference return", "floor", "within budget"), rows))
    if not selection.empty:
        rows = tuple((LABELS[m], fmt(c), fmt(g["eval_return_sto_mean"].mean()), str(len(g)))
                     for (m, c), g in selection.groupby(["method", "coefficient"], sort=True))
        s.blocks.append(Table(("method", "coefficient", "nominal return (mean over seeds)", "seeds"), rows))
    return s


def _rollouts(config, summary: pd.DataFrame, mode: str, fig_dir: Path) -> Section:
    s = Section("Does the bonus depend on how many rollouts feed its estimate?")
    counts = sorted(config.rollout_counts)
    s.blocks.append(
        "The state method retrained with each k-NN estimate over the trajectories of n environments "
        f"(the paper: 4 / 8 / 16 / 32 rollouts gave 4.7 / 15.5 / 18.2 / 36.3 % success with a wall on Pusher); "
        f"success rate ({mode}) per layout, mean over seeds with a 95% bootstrap interval.")
    sub = summary[summary["mode"] == mode]
    layouts = [x for x in config.evaluate.layouts if x in set(sub["layout"])]
    rows = []
    for n in counts:
        cells = []
        for layout in layouts:
            r = sub[(sub["run"] == f"state_r{n}") & (sub["layout"] == layout)]
            cells.append(fmt_ci(r["mean"].iloc[0], r["low"].iloc[0], r["high"].iloc[0]) if len(r) else "")
        rows.append((str(n), *cells))
    s.blocks.append(Table(("rollouts", *layouts), tuple(rows)))
    fig, ax = plt.subplots(figsize=(4.0, 2.8))
    for layout in layouts:
        r = sub[sub["layout"] == layout].set_index("run")
        pts = [(n, r.loc[f"state_r{n}"]) for n in counts if f"state_r{n}" in r.index]
        if not pts:
            continue
        xs = [n for n, _ in pts]
        m = np.array([p["mean"] for _, p in pts])
        ax.errorbar(xs, m, yerr=[m - np.array([p["low"] for _, p in pts]), np.array([p["high"] for _, p in pts]) - m],
                    marker="o", ms=3, capsize=2, label=layout)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("rollouts per k-NN estimate")
    ax.set_ylabel("success rate")
    ax.legend(fontsize=6)
    name = save(fig, fig_dir / "rollouts.png")
    s.blocks.append(Figure(name, "Success rate against the rollout count of the bonus's estimate."))
    return s


def _visits(config, visits: pd.DataFrame, mode: str, fig_dir: Path) -> Section:
    s = Section("Where the policies go: state-visitation heat maps")
    s.blocks.append(f"Visits of the evaluation episodes ({mode} policies, all seeds) per cell of the free room; "
                    "nominal layout on the top row, the wall on the bottom row when evaluated.")
    v = visits[visits["mode"] == mode]
    methods = [m for m in config.methods if m in set(v["run"])]
    layouts = [x for x in ("nominal", "wall") if x in set(v["layout"])]
    bins = config.evaluate.heatmap_bins
    fig, axes = panels(len(methods) * len(layouts), ncols=len(methods), panel=(2.2, 2.2))
    for i, layout in enumerate(layouts):
        for j, run in enumerate(methods):
            ax = axes[i * len(methods) + j]
            g = v[(v["run"] == run) & (v["layout"] == layout)]
            grid = np.zeros((bins, bins))
            grid[g["ix"].to_numpy(), g["iy"].to_numpy()] = g["frequency"].to_numpy()
            ax.imshow(np.log10(grid.T + 1e-5), origin="lower", extent=(1, 9, 1, 9), cmap="magma", vmin=-5, vmax=-0.5)
            ax.set_title(f"{LABELS[run]}, {layout}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    name = save(fig, fig_dir / f"visits_{mode}.png")
    s.blocks.append(Figure(name, "log10 visit frequency per cell (dark: never visited)."))
    return s


def report(config: StateEntropyConfig, tables: dict[str, pd.DataFrame], fig_dir: Path) -> tuple[str, list[Section]]:
    def table(name):
        df = tables.get(name)
        return df if df is not None and not df.empty else None

    sections = []
    summary, diffs = table("success_summary"), table("differences")
    if summary is not None:
        for mode in ("sampled", "deterministic"):
            sections.append(_answer(config, summary, diffs if diffs is not None else pd.DataFrame(), mode, fig_dir))
    if table("choices") is not None:
        sections.append(_selection(config, tables["choices"], tables.get("selection", pd.DataFrame())))
    if summary is not None and config.rollout_counts:
        sections.append(_rollouts(config, summary, "sampled", fig_dir))
    if table("visits") is not None:
        sections.append(_visits(config, tables["visits"], "sampled", fig_dir))
    setting = Section("Study")
    setting.blocks.append(
        f"PPO on `{config.env}` ({config.steps} env steps per agent, options {config.ppo}); methods "
        f"{', '.join(config.methods)}; k-NN bonus k = {config.bonus.k} on coordinates {config.bonus.features} of "
        + ("the room's state features (x, y, one-hot direction)" if config.env == "minigrid_room" else
           "the observation") + f", added to the {config.bonus.target}; evaluation layouts "
        f"{', '.join(config.evaluate.layouts)} (Ashlag et al.'s MiniGrid perturbations"
        + (", `entrolab.envs.minigrid_room`)." if config.env == "minigrid_room" else
           " in continuous form, `entrolab.envs.room`)."))
    sections.append(setting)
    return f"State-entropy study {config.name}", sections

"""The report of a comparison study: its sections, from the stored tables only.

Rendered by `entrolab.study.report.write_report` (`entrolab.report.document`);
the sections are: the design, final performance
(interquartile mean over seeds with 95% percentile bootstrap intervals, per
task), probabilities of improvement, learning curves, AdaEnt's switching, and
the soft versus plain Q landscapes. Everything is read from the tables.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from entrolab.report.document import Figure, Section, Table, fmt, fmt_ci  # noqa: E402
from entrolab.report.figures import save  # noqa: E402
from entrolab.report.qlandscape import heatmap_figure, maps_from_table, slices_figure  # noqa: E402
from entrolab.stats import bootstrap_indices, percentile_interval  # noqa: E402
from entrolab.studies.comparison.schema import BUDGET_WINDOW  # noqa: E402

if TYPE_CHECKING:  # the report reads tables only; the config is passed in
    from entrolab.studies.comparison.config import ComparisonConfig

COLORS = plt.get_cmap("tab10").colors


def _colors(methods) -> dict[str, tuple]:
    return {m: COLORS[i % len(COLORS)] for i, m in enumerate(methods)}


def _panels(n: int, ncols: int = 3, size=(4.2, 3.0)):
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             constrained_layout=True)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def _design(config) -> Section:
    s = Section("Design")
    s.blocks.append(f"{len(config.methods)} methods x {len(config.tasks)} tasks x {config.seeds} seeds "
                    f"(seeds {config.seed_offset}..{config.seed_offset + config.seeds - 1}); each run is evaluated "
                    f"on {config.eval_episodes} episodes with the deterministic action (tanh of the mean, or the "
                    "bounded mean) and with sampled actions.")
    s.blocks.append(Table(("task", "env", "env options", "steps per agent", "note"), tuple(
        (t, spec.env, ", ".join(f"{k}={v}" for k, v in spec.env_options.items()) or "-",
         ", ".join(f"{m}: {spec.steps_for(m):,}" for m in config.methods), spec.note or "-")
        for t, spec in config.tasks.items())))
    s.blocks.append(Table(("method", "algorithm", "alpha", "options"), tuple(
        (m, spec.algo, fmt(spec.alpha), ", ".join(f"{k}={v}" for k, v in spec.options.items()) or "defaults")
        for m, spec in config.methods.items())))
    return s


def _final_section(summary: pd.DataFrame, runs: pd.DataFrame, config, fig_dir: Path) -> Section:
    s = Section("Final performance")
    s.blocks.append("Interquartile mean (IQM: the mean of the middle 50% of the seeds, rliable's convention) of the "
                    "per-seed evaluation returns, with 95% percentile bootstrap intervals over seeds "
                    f"({config.bootstrap} resamples). With {config.seeds} seeds an IQM interval is wide: read it with the "
                    "per-seed dots of the figure.")
    rows = []
    for (task, method), sub in summary.groupby(["task", "method"], sort=False):
        det = sub[sub["mode"] == "deterministic"].iloc[0]
        sto = sub[sub["mode"] == "stochastic"].iloc[0]
        rows.append((task, method, fmt_ci(det["iqm"], det["iqm_low"], det["iqm_high"]),
                     fmt_ci(sto["iqm"], sto["iqm_low"], sto["iqm_high"]), fmt(det["mean"]),
                     f"{fmt(det['min'])} .. {fmt(det['max'])}", f"{int(det['env_steps']):,}"))
    s.blocks.append(Table(("task", "method", "IQM deterministic [95% CI]", "IQM sampled [95% CI]", "mean det.",
                           "min .. max det.", "env steps"), tuple(rows)))
    tasks, methods = list(config.tasks), list(config.methods)
    colors = _colors(methods)
    fig, axes = _panels(len(tasks))
    rng = np.random.default_rng(0)
    for ax, task in zip(axes, tasks):
        for i, m in enumerate(methods):
            row = summary[(summary["task"] == task) & (summary["method"] == m) & (summary["mode"] == "deterministic")]
            if row.empty:
                continue
            row = row.iloc[0]
            ax.errorbar([i], [row["iqm"]], yerr=[[row["iqm"] - row["iqm_low"]], [row["iqm_high"] - row["iqm"]]],
                        fmt="o", color=colors[m], capsize=4, ms=7)
            x = runs[(runs["task"] == task) & (runs["method"] == m)]["eval_return_det_mean"].to_numpy()
            ax.scatter(i + 0.18 + rng.uniform(-0.05, 0.05, len(x)), x, s=10, color=colors[m], alpha=0.6)
        ax.set_xticks(range(len(methods)), methods, rotation=20)
        ax.set_title(task, fontsize=10)
        ax.set_ylabel("evaluation return")
    fig.suptitle("IQM over seeds with 95% bootstrap CI (deterministic policy); dots: seeds", fontsize=10)
    s.blocks.append(Figure(save(fig, fig_dir / "final_returns.png"),
                           "Final evaluation return per task: IQM with 95% bootstrap CI, and each seed."))
    return s


def _answer_section(summary: pd.DataFrame, improvement: pd.DataFrame, config) -> Section:
    """First: per task, the method with the highest deterministic IQM and its probability of improvement
    over each other method, quoted from the summary and improvement tables; the final-returns figure."""
    s = Section("Answer")
    methods = list(config.methods)
    s.blocks.append(f"**Question.** Which of {', '.join(methods)} ends with the higher evaluation return on each task, "
                    "and is the difference larger than the spread between seeds?")
    lines = []
    for task in config.tasks:
        det = summary[(summary["task"] == task) & (summary["mode"] == "deterministic")]
        if det.empty:
            continue
        top = det.loc[det["iqm"].idxmax()]
        parts = [f"**{task}**: {top['method']} has the highest IQM, {fmt_ci(top['iqm'], top['iqm_low'], top['iqm_high'])}"]
        for other in methods:
            if other == top["method"]:
                continue
            r = improvement[(improvement["task"] == task) & (improvement["mode"] == "deterministic") &
                            (((improvement["method"] == top["method"]) & (improvement["versus"] == other)) |
                             ((improvement["method"] == other) & (improvement["versus"] == top["method"])))]
            if r.empty:
                continue
            r = r.iloc[0]
            p, lo, hi = (r["p_improvement"], r["low"], r["high"]) if r["method"] == top["method"] else \
                (1 - r["p_improvement"], 1 - r["high"], 1 - r["low"])
            shown = "a difference" if lo > 0.5 else "not a difference at the 95% level"
            parts.append(f"P({top['method']} > {other}) = {fmt_ci(p, lo, hi)}, {shown}")
        lines.append("; ".join(parts) + ".")
    s.blocks.append("**Answer.** " + " ".join(lines) if lines else "**Answer.** No evaluation returns in the tables.")
    s.blocks.append(f"IQM over {config.seeds} seeds with 95% bootstrap intervals; P(X > Y) as in the section "
                    "Probability of improvement.")
    s.blocks.append(Figure("final_returns.png", "Final evaluation return per task: IQM with 95% bootstrap CI, and "
                           "each seed (the figure of the section Final performance)."))
    return s


def _budget_section(budget: pd.DataFrame, config) -> Section:
    s = Section("At an equal budget")
    s.blocks.append("Where the methods trained for different numbers of env steps, the final returns above mix "
                    "two questions: how fast a method learns, and what it converges to. Here every method is "
                    "read at the same budget B (the smallest of the task): the mean training episode return "
                    f"logged in the last {BUDGET_WINDOW:.0%} of B (the exploring policy; the last logged value "
                    "before B where a method logs more coarsely), IQM over seeds with a 95% bootstrap interval.")
    rows = tuple((r["task"], r["method"], f"{int(r['budget']):,}",
                  fmt_ci(r["iqm"], r["iqm_low"], r["iqm_high"]) if r["n"] else "no finished episode",
                  str(int(r["n"]))) for _, r in budget.iterrows())
    s.blocks.append(Table(("task", "method", "budget B (env steps)", "IQM training return [95% CI]", "seeds"), rows))
    return s


def _improvement_section(improvement: pd.DataFrame, config) -> Section:
    s = Section("Probability of improvement")
    s.blocks.append("P(X > Y): the probability that a run of method X ends with a higher deterministic evaluation "
                    "return than a run of method Y on the same task (ties count half; rliable's probability of "
                    "improvement on one task), with a 95% bootstrap interval (seeds of each method resampled "
                    "independently). 0.5 is a tie; an interval excluding 0.5 is a difference at that level.")
    methods = list(config.methods)
    pairs = [(a, b) for i, a in enumerate(methods) for b in methods[i + 1:]]
    rows = []
    for task in config.tasks:
        cells = []
        for a, b in pairs:
            r = improvement[(improvement["task"] == task) & (improvement["method"] == a) &
                            (improvement["versus"] == b) & (improvement["mode"] == "deterministic")]
            cells.append(fmt_ci(r["p_improvement"].iloc[0], r["low"].iloc[0], r["high"].iloc[0]) if len(r) else "-")
        rows.append((task, *cells))
    s.blocks.append(Table(("task", *[f"P({a} > {b})" for a, b in pairs]), tuple(rows)))
    return s


def _band(values: np.ndarray, num_resamples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and its 95% bootstrap band, per column (NaN ignored)."""
    idx = bootstrap_indices(values.shape[0], num_resamples, 0)
    with warnings.catch_warnings():  # columns where every seed is NaN (no finished episode yet)
        warnings.simplefilter("ignore", RuntimeWarning)
        reps = np.nanmean(values[idx], axis=1)
        low, high = percentile_interval(reps)
        return np.nanmean(values, axis=0), low, high


def _curve_figure(curves: pd.DataFrame, config, metric: str, ylabel: str, path: Path, methods=None) -> str | None:
    tasks = list(config.tasks)
    methods = methods or list(config.methods)
    colors = _colors(list(config.methods))
    if metric not in curves.columns or curves[metric].notna().sum() == 0:
        return None
    fig, axes = _panels(len(tasks))
    for ax, task in zip(axes, tasks):
        for m in methods:
            sub = curves[(curves["task"] == task) & (curves["method"] == m)]
            if sub.empty or sub[metric].notna().sum() == 0:
                continue
            wide = sub.pivot_table(index="seed", columns="update", values=metric, dropna=False)
            steps = sub.groupby("update")["env_steps"].max().reindex(wide.columns).to_numpy()
            mean, low, high = _band(wide.to_numpy(float), 500)
            ok = np.isfinite(mean)
            ax.plot(steps[ok], mean[ok], color=colors[m], label=m)
            ax.fill_between(steps[ok], low[ok], high[ok], color=colors[m], alpha=0.2, lw=0)
        ends = curves.loc[curves["task"] == task].groupby("method")["env_steps"].max()
        if len(ends) and ends.max() > 5 * ends.min():  # budgets far apart: a log axis shows both
            ax.set_xscale("log")
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("env steps per agent")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    return save(fig, path)


def _curves_section(curves: pd.DataFrame, config, fig_dir: Path) -> Section:
    s = Section("Learning curves")
    s.blocks.append("Mean over seeds of the training episode return (episodes of the exploring policy that "
                    "finished in each logged chunk) with a 95% bootstrap band over seeds. SAC explores with its "
                    "sampled actions, PPO with its Gaussian: training returns are below the deterministic "
                    "evaluation returns of the previous section.")
    name = _curve_figure(curves, config, "episode_return", "training episode return", fig_dir / "curves.png")
    if name:
        s.blocks.append(Figure(name, "Training episode return per task (mean over seeds, 95% bootstrap band)."))
    ada = [m for m, spec in config.methods.items() if spec.algo == "sac-adaent"]
    if ada:
        name = _curve_figure(curves, config, "adaent_switch_fraction", "fraction of states switched",
                             fig_dir / "adaent_switch.png", ada)
        if name:
            s.blocks.append(Figure(name, "SAC-AdaEnt: fraction of the actor's batch states that used the plain Q "
                                         "(soft and plain Q ranking the policy's sampled actions differently)."))
    sac = [m for m, spec in config.methods.items() if spec.algo != "ppo"]
    if sac:
        name = _curve_figure(curves, config, "entropy", "policy entropy estimate", fig_dir / "entropy.png",
                             sac)
        if name:
            s.blocks.append(Figure(name, "SAC methods: entropy estimate -mean log pi of the squashed policy on "
                                         "the training batches."))
    return s


def _landscape_section(slices: pd.DataFrame, maps: pd.DataFrame, config, fig_dir: Path) -> Section:
    s = Section("Soft versus plain Q landscapes")
    s.blocks.append("For each SAC agent (which learned a plain Q beside its soft Q; `entrolab.qlandscape`), the "
                    "soft and the plain Q along one action coordinate at a time, through the deterministic action, "
                    "at states of the agent's own greedy episode (time 0 = the reset state), each minus its "
                    "maximum; the shaded curve is the policy's marginal density. cos is AdaEnt's statistic: the "
                    "cosine of the two min-shifted Q vectors over the slice (1 = same shape).")
    per_slice = slices.groupby(["task", "method", "seed", "state", "dim"], as_index=False)[["similarity", "time"]].first()
    agg = per_slice.groupby(["task", "method", "state"], as_index=False).agg(
        mean=("similarity", "mean"), min=("similarity", "min"), max=("similarity", "max"),
        count=("similarity", "size"), t0=("time", "min"), t1=("time", "max"))
    agg_rows = tuple((r["task"], r["method"], str(int(r["state"])),
                      str(int(r["t0"])) if r["t0"] == r["t1"] else f"{int(r['t0'])}-{int(r['t1'])}",
                      fmt(r["mean"], 3), fmt(r["min"], 3), fmt(r["max"], 3), str(int(r["count"])))
                     for _, r in agg.iterrows())
    s.blocks.append(Table(("task", "method", "state", "time", "mean cos", "min", "max", "slices"), agg_rows,
                          "Similarity of the soft and plain Q along slices, over seeds and action coordinates "
                          "(state k: the k-th of the evenly spaced times of each seed's own episode)."))
    for (task, method), sub in slices.groupby(["task", "method"], sort=False):
        first = sub[sub["seed"] == sub["seed"].min()]
        labels = {st: f"t={int(t)}" for st, t in first.groupby("state")["time"].first().items()}
        name = f"landscape_{task}_{method}.png"
        slices_figure(first, fig_dir / name, labels, title=f"{task} / {method} (seed {int(first['seed'].iloc[0])})")
        s.blocks.append(Figure(name, f"{task}, {method}: soft (blue) and plain (orange) Q along each action "
                                     "coordinate, policy density shaded, dotted: the deterministic action."))
        if not maps.empty:
            m = maps[(maps["task"] == task) & (maps["method"] == method)]
            if not m.empty:
                name = f"landscape_map_{task}_{method}.png"
                _map_figure(m, fig_dir / name, f"{task} / {method}")
                s.blocks.append(Figure(name, f"{task}, {method}: soft Q, plain Q and policy density over action "
                                             "coordinates 0 and 1 (others at the deterministic action); + the "
                                             "deterministic action."))
    return s


def _map_figure(m: pd.DataFrame, path: Path, title: str) -> None:
    maps, labels = maps_from_table(m)
    heatmap_figure(maps, path, labels, title)


def report(config: ComparisonConfig, tables: dict[str, pd.DataFrame], fig_dir: Path) -> tuple[str, list[Section]]:
    """The report's title and sections (`entrolab.study.kinds.StudyKind.report`)."""
    final = _final_section(tables["summary"], tables["runs"], config, fig_dir)
    sections = [_answer_section(tables["summary"], tables["improvement"], config), _design(config), final,
                _improvement_section(tables["improvement"], config)]
    budget = tables.get("equal_budget")
    if budget is not None and not budget.empty and \
            len({config.tasks[t].steps_for(m) for t in config.tasks for m in config.methods}) > 1:
        sections.append(_budget_section(budget, config))
    sections.append(_curves_section(tables["curves"], config, fig_dir))
    slices = tables.get("landscape_slices")
    if slices is not None and not slices.empty:
        sections.append(_landscape_section(slices, tables.get("landscape_maps", pd.DataFrame()), config, fig_dir))
    return f"Comparison study {config.name}", sections

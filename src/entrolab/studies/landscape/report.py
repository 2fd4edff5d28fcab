"""The landscape study's report: sections and figures from its tables only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from entrolab.report.document import Figure, Section, Table, fmt, fmt_ci, mean_ci  # noqa: E402
from entrolab.report.figures import jitter, panels, save  # noqa: E402
from entrolab.stats import kendall_trend  # noqa: E402

if TYPE_CHECKING:
    from entrolab.studies.landscape.config import LandscapeConfig

CLASS_ORDER = ("local_optimum", "saddle", "linear", "flat", "local_minimum")


def _tau_colors(taus):
    cmap = plt.get_cmap("viridis")
    return {t: cmap(0.1 + 0.8 * i / max(len(taus) - 1, 1)) for i, t in enumerate(sorted(taus))}


def _header(config: LandscapeConfig) -> Section:
    g, p = config.gridworld, config.probes
    s = Section("Study")
    s.blocks.append(
        f"Two-goal gridworld ({g.size} x {g.size} + absorbing state, gamma {fmt(g.gamma)}; better goal "
        f"{fmt(g.best_reward)}, other goal {fmt(g.second_reward)}), linear-softmax policy, exact gradient ascent on "
        f"J_tau = J + tau H for {g.updates} updates from {g.inits} random initialisations (N(0, {fmt(g.init_scale)}^2) "
        f"logits), tau in {', '.join(fmt(t) for t in g.taus)}, step sizes {', '.join(fmt(x) for x in g.step_sizes)}"
        + (f"; decayed variant tau_0 = {fmt(g.decay.tau)} x {fmt(g.decay.factor)} per update" if g.decay else "")
        + f". Probes: {p.directions} random directions at epsilon in {', '.join(fmt(e) for e in p.epsilons)}, at "
        f"the final policies of step size {fmt(g.step_sizes[0])} of the first {p.inits} initialisations and at "
        "their initial points.")
    return s


def _answer_section(summary: pd.DataFrame | None, step: float) -> Section:
    """First: at the first step size (the learning curves'), how often exact gradient ascent reaches the
    better goal without entropy (the smallest tau) and at the tau where it does most often, quoted from
    the gridworld summary; the success figure."""
    s = Section("Answer")
    s.blocks.append("**Question.** Does entropy regularisation (tau) help exact policy-gradient ascent reach the "
                    "better of the gridworld's two goals?")
    if summary is None:
        s.blocks.append("**Answer.** Not measured here (no gridworld table); see the sections below.")
        return s
    const = summary[(summary["schedule"] == "constant") & np.isclose(summary["step_size"], step)].sort_values("tau")
    if const.empty:
        s.blocks.append(f"**Answer.** No constant-tau runs at step size {fmt(step)}.")
        return s
    low, best = const.iloc[0], const.loc[const["frac_best"].idxmax()]

    def frac(r):
        return fmt_ci(r["frac_best"], r["frac_best_low"], r["frac_best_high"])

    text = (f"**Answer** (step size {fmt(step)}, {int(low['n'])} initialisations per tau). At tau = {fmt(low['tau'])} "
            f"a fraction {frac(low)} of the initialisations reaches the better goal")
    if best["tau"] != low["tau"] and best["frac_best"] > low["frac_best"]:
        apart = best["frac_best_low"] > low["frac_best_high"]
        text += (f"; at tau = {fmt(best['tau'])}, the most, {frac(best)}: "
                 + ("entropy helps here (the intervals do not overlap)." if apart else
                    "more, but the intervals overlap."))
    else:
        text += "; no larger tau does better."
    s.blocks.append(text)
    s.blocks.append("Fractions with 95% bootstrap intervals over initialisations; every tau and step size in the "
                    "next section.")
    s.blocks.append(Figure("gridworld_success.png", "Success and final return against step size, per tau (the "
                           "figure of the next section)."))
    return s


def _success_section(summary: pd.DataFrame, fig_dir: Path) -> Section:
    s = Section("Does entropy help gradient ascent find the better goal?")
    s.blocks.append(
        "Per tau and step size: the fraction of initialisations whose final policy reaches the better goal "
        "first (probability > 0.5), and the mean final unregularised return, each with a 95% bootstrap interval "
        "over initialisations. Stable: the regularised objective never fell (by more than 1e-4 relative) in the "
        "second half of training; converged: it changed by less than 1e-4 relative over the last tenth.")
    rows = tuple((r["schedule"], fmt(r["tau"]), fmt(r["step_size"]), str(int(r["n"])),
                  fmt_ci(r["frac_best"], r["frac_best_low"], r["frac_best_high"]),
                  fmt_ci(r["mean_return"], r["mean_return_low"], r["mean_return_high"]),
                  fmt(r["frac_stable"], 3), fmt(r["frac_converged"], 3)) for _, r in summary.iterrows())
    s.blocks.append(Table(("schedule", "tau", "step", "n", "better goal [95% CI]", "final return [95% CI]",
                           "stable", "converged"), rows))
    const = summary[summary["schedule"] == "constant"]
    colors = _tau_colors(const["tau"].unique())
    fig, axes = panels(2, ncols=2, panel=(3.4, 2.4))
    for tau, sub in const.groupby("tau"):
        sub = sub.sort_values("step_size")
        for ax, col in zip(axes, ("frac_best", "mean_return")):
            y = sub[col].to_numpy()
            err = [y - sub[f"{col}_low"].to_numpy(), sub[f"{col}_high"].to_numpy() - y]
            ax.errorbar(sub["step_size"], y, yerr=err, color=colors[tau], marker="o", ms=3, capsize=2,
                        label=f"tau={fmt(tau)}")
    for ax, label in zip(axes, ("fraction reaching the better goal", "final return")):
        ax.set_xscale("log")
        ax.set_xlabel("step size")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=6)
    name = save(fig, fig_dir / "gridworld_success.png")
    s.blocks.append(Figure(name, "Success and final return against step size, per tau (95% bootstrap intervals "
                                 "over initialisations)."))
    return s


def _curves_section(curves: pd.DataFrame, step: float, fig_dir: Path) -> Section:
    s = Section("Learning curves")
    sub = curves[np.isclose(curves["step_size"], step)]
    groups = list(sub.groupby(["schedule", "tau"], sort=True))
    colors = _tau_colors({t for (_, t), _ in groups})
    fig, axes = panels(2, ncols=2, panel=(3.4, 2.4))
    for (schedule, tau), g in groups:
        mean = g.groupby("update")[["return", "objective"]].mean()
        style = "-" if schedule == "constant" else "--"
        for ax, col in zip(axes, ("return", "objective")):
            ax.plot(mean.index, mean[col], style, color=colors[tau], lw=1,
                    label=f"{schedule} tau={fmt(tau)}")
    axes[0].set_ylabel("return J (mean over inits)")
    axes[1].set_ylabel("regularised J_tau")
    for ax in axes:
        ax.set_xlabel("update")
    axes[0].legend(fontsize=6)
    name = save(fig, fig_dir / "gridworld_curves.png")
    s.blocks.append(Figure(name, f"Mean over initialisations at step size {fmt(step)}; dashed: decayed tau."))
    return s


def _probe_scatter(ax, sub: pd.DataFrame, colour, title: str) -> None:
    """Delta- against Delta+ of one set of probes, with the noise band (+-2 std, grey) when sampled."""
    ax.scatter(sub["delta_plus"], sub["delta_minus"], s=4, alpha=0.5, c=colour, cmap="tab10")
    lim = max(1e-12, float(np.nanmax(np.abs(np.r_[sub["delta_plus"], sub["delta_minus"]]))) * 1.05)
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    band = 2 * float(sub["noise_std"].max())
    if band > 0:
        ax.axhspan(-band, band, color="0.85", zorder=0)
        ax.axvspan(-band, band, color="0.85", zorder=0)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("Delta+")
    ax.set_ylabel("Delta-")


def _probe_section(probes: pd.DataFrame, classes: pd.DataFrame, fig_dir: Path) -> Section:
    s = Section("What kind of point? Random-perturbation probes")
    s.blocks.append(
        "Each probe moves the policy's parameters by +-epsilon along a random unit direction; Delta+ and Delta- "
        "are the changes of the objective. Both negative: the objective falls on both sides (concave along "
        "that direction); both positive: it rises; opposite signs: a slope. A point is a local optimum when "
        "every direction falls on both sides or within the noise (here none: gradients are exact), a saddle "
        "when some directions rise on both sides and others fall, linear when slopes remain "
        "(`entrolab.measures.landscape.classify`).")
    counts = (classes.groupby(["point", "objective", "epsilon", "tau"])["class"].value_counts(normalize=True)
              .unstack(fill_value=0.0))
    cols = [c for c in CLASS_ORDER if c in counts.columns]
    rows = tuple((pt, obj, fmt(eps), fmt(tau)) + tuple(fmt(r[c], 3) for c in cols)
                 for (pt, obj, eps, tau), r in counts.iterrows())
    s.blocks.append(Table(("point", "objective", "epsilon", "tau") + tuple(cols), rows,
                          caption="Fraction of the probed policies in each class."))
    final = probes[(probes["point"] == "final") & (probes["objective"] == "regularised")]
    eps = float(final["epsilon"].min())
    final = final[np.isclose(final["epsilon"], eps)]
    taus = sorted(final["tau"].unique())
    fig, axes = panels(len(taus), ncols=3, panel=(2.4, 2.4))
    for ax, tau in zip(axes, taus):
        sub = final[final["tau"] == tau]
        _probe_scatter(ax, sub, sub["init"], f"tau={fmt(tau)}")
    name = save(fig, fig_dir / "probe_scatter.png")
    s.blocks.append(Figure(name, f"Probes of J_tau at the final policies, epsilon = {fmt(eps)}; colour: "
                                 "initialisation. Third quadrant only: a local optimum."))
    fig, axes = panels(2, ncols=2, panel=(3.4, 2.4))
    colors = _tau_colors(taus)
    for tau in taus:
        sub = final[final["tau"] == tau]
        for ax, col in zip(axes, ("gradient_proj", "curvature_proj")):
            ax.hist(sub[col], bins=40, histtype="step", color=colors[tau], label=f"tau={fmt(tau)}")
    axes[0].set_xlabel("gradient projection (Delta+ - Delta-)/2")
    axes[1].set_xlabel("curvature projection (Delta+ + Delta-)/2")
    axes[0].legend(fontsize=6)
    name = save(fig, fig_dir / "probe_projections.png")
    s.blocks.append(Figure(name, f"Projections of the probes at the final policies, epsilon = {fmt(eps)}."))
    return s


def _curvature_section(curv: pd.DataFrame) -> Section:
    s = Section("Curvature of the regularised objective at the solutions")
    s.blocks.append(
        "The Hessian of J_tau at the final policies (step size as probed): its largest and smallest "
        "eigenvalues and trace, exact (dense Hessian), beside Lanczos' extreme eigenvalues and Hutchinson's "
        "trace estimate (`entrolab.measures.landscape`, matfree). Mean over the probed policies [min, max].")
    rows = []
    for tau, sub in curv.groupby("tau", sort=True):
        def cell(col):
            return f"{fmt(sub[col].mean())} [{fmt(sub[col].min())}, {fmt(sub[col].max())}]"
        rows.append((fmt(tau), str(len(sub)), cell("largest"), cell("lanczos_largest"), cell("smallest"),
                     cell("lanczos_smallest"), cell("trace"), cell("hutchinson_trace"),
                     f"{sub['num_positive'].mean():.1f}"))
    s.blocks.append(Table(("tau", "n", "largest", "Lanczos", "smallest", "Lanczos", "trace", "Hutchinson",
                           "positive eigenvalues"), tuple(rows)))
    return s


def _interpolation_section(interp: pd.DataFrame, fig_dir: Path) -> Section:
    s = Section("Interpolation between solutions that reached different goals")
    s.blocks.append(
        "J along theta(t) = (1 - t) theta_a + t theta_b, theta_a a solution that reached the better goal and "
        "theta_b one that reached the other. tau0_solutions: the same two tau = 0 solutions, seen through "
        "each tau's regularised objective; own_solutions: each tau's own pair, where its runs reached both "
        "goals. A dip between t = 0 and t = 1 means the two optima are separated by a valley.")
    pairs = [p for p in ("tau0_solutions", "own_solutions") if (interp["pair"] == p).any()]
    colors = _tau_colors(interp["tau"].unique())
    fig, axes = panels(2 * len(pairs), ncols=2, panel=(3.4, 2.4))
    for k, pair in enumerate(pairs):
        sub = interp[interp["pair"] == pair]
        for tau, g in sub.groupby("tau"):
            axes[2 * k].plot(g["t"], g["regularised"], color=colors[tau], lw=1, label=f"tau={fmt(tau)}")
            axes[2 * k + 1].plot(g["t"], g["return"], color=colors[tau], lw=1)
        axes[2 * k].set_title(f"{pair}: J_tau", fontsize=8)
        axes[2 * k + 1].set_title(f"{pair}: J", fontsize=8)
        for ax in axes[2 * k: 2 * k + 2]:
            ax.axvline(0, color="0.6", lw=0.5)
            ax.axvline(1, color="0.6", lw=0.5)
            ax.set_xlabel("t")
        axes[2 * k].legend(fontsize=6)
    name = save(fig, fig_dir / "interpolation.png")
    s.blocks.append(Figure(name, "The regularised objective and the return along the segments."))
    rows = []
    for (pair, tau), g in interp.groupby(["pair", "tau"], sort=True):
        inside = g[(g["t"] >= 0) & (g["t"] <= 1)]
        ends = min(g.loc[np.isclose(g["t"], 0), "regularised"].iloc[0], g.loc[np.isclose(g["t"], 1), "regularised"].iloc[0]) \
            if np.isclose(g["t"], 0).any() and np.isclose(g["t"], 1).any() else np.nan
        rows.append((pair, fmt(tau), fmt(ends - inside["regularised"].min())))
    s.blocks.append(Table(("pair", "tau", "depth of the dip in J_tau (lower end minus minimum on [0, 1])"),
                          tuple(rows)))
    return s


def _policies_section(classes: pd.DataFrame, num_resamples: int, fig_dir: Path) -> Section:
    s = Section("Trained policies: are entropy-trained policies at flatter points?")
    s.blocks.append(
        "Probes of the sampled return of each trained checkpoint of the study named in [policies] (noise-free "
        "env, the same directions and episodes for every policy). Curvature: the mean curvature projection "
        "(Delta+ + Delta-)/2 over directions, relative to |J| (more negative: the return falls faster on both "
        "sides, a sharper point). Flat: the fraction of directions whose pair stays within 2 std of the "
        "return's noise. Trend: Kendall's tau between alpha and the per-policy value, interval from "
        "resampling whole seeds.")
    df = classes.assign(rel_curvature=classes["mean_curvature_proj"] / classes["j_center"].abs())
    if "variant" not in df.columns:
        df["variant"] = ""
    df["env"] = np.where(df["variant"] != "", df["env"] + " " + df["variant"], df["env"])
    rows, trend_rows = [], []
    for (env, eps), sub in df.groupby(["env", "epsilon"], sort=True):
        for alpha, g in sub.groupby("alpha", sort=True):
            rows.append((env, fmt(eps), fmt(alpha), str(len(g)), fmt(g["j_center"].mean()),
                         fmt(g["rel_curvature"].mean()), fmt(g["frac_flat"].mean(), 3), fmt(g["frac_down"].mean(), 3),
                         ", ".join(f"{k} {v}" for k, v in g["class"].value_counts().items())))
        for col in ("rel_curvature", "frac_flat"):
            if sub["alpha"].nunique() > 1 and len(sub) >= 3:
                t = kendall_trend(sub, "alpha", col, "seed", num_resamples=num_resamples, rng=0)
                trend_rows.append((env, fmt(eps), col, str(t["n"]),
                                   fmt_ci(t["kendall_tau"], t["kendall_tau_low"], t["kendall_tau_high"])))
    s.blocks.append(Table(("env", "epsilon", "alpha", "n", "J", "curvature / |J|", "flat", "down", "classes"),
                          tuple(rows), caption="Means over the policies of each alpha."))
    if trend_rows:
        s.blocks.append(Table(("env", "epsilon", "value", "n", "Kendall tau(alpha, value) [95% CI over seeds]"),
                              tuple(trend_rows)))
    related = [c for c in ("fisher_total_mean", "fisher_sensitivity_mean", "log_std", "sharpness_sigma")
               if c in df.columns and np.isfinite(df[c].to_numpy(float)).sum() >= 3]
    rel_rows = []
    for (env, eps), sub in df.groupby(["env", "epsilon"], sort=True):
        for col in related:
            t = kendall_trend(sub, col, "rel_curvature", "seed", num_resamples=num_resamples, rng=0)
            rel_rows.append((env, fmt(eps), col, str(t["n"]),
                             fmt_ci(t["kendall_tau"], t["kendall_tau_low"], t["kendall_tau_high"])))
    if rel_rows:
        s.blocks.append("The probed study's own measures of the same policies against the probes' curvature "
                        "(Kendall's tau, interval from resampling seeds): does a larger Fisher trace go with a "
                        "sharper point of the return?")
        s.blocks.append(Table(("env", "epsilon", "measure", "n", "Kendall tau(measure, curvature / |J|) [95% CI]"),
                              tuple(rel_rows)))
    keys = list(df.groupby(["env", "epsilon"], sort=True).groups)
    fig, axes = panels(len(keys), ncols=3, panel=(2.6, 2.2))
    rng = np.random.default_rng(0)
    for ax, (env, eps) in zip(axes, keys):
        sub = df[(df["env"] == env) & np.isclose(df["epsilon"], eps)]
        alphas = sorted(sub["alpha"].unique())
        for i, alpha in enumerate(alphas):
            y = sub[sub["alpha"] == alpha]["rel_curvature"].to_numpy()
            ax.scatter(i + jitter(y.size, rng, 0.12), y, s=10)
        ax.set_xticks(range(len(alphas)), [fmt(a) for a in alphas])
        ax.set_xlabel("alpha")
        ax.set_ylabel("curvature / |J|")
        ax.set_title(f"{env}, epsilon={fmt(eps)}", fontsize=8)
    name = save(fig, fig_dir / "policy_curvature.png")
    s.blocks.append(Figure(name, "Per policy: the mean curvature projection relative to |J|, by alpha."))
    return s


def _continuous_section(config, runs: pd.DataFrame, curves: pd.DataFrame | None, classes: pd.DataFrame,
                        interp: pd.DataFrame | None, num_resamples: int, fig_dir: Path,
                        probes: pd.DataFrame | None = None) -> Section:
    c = config.continuous
    s = Section(f"REINFORCE with a fixed std on {c.env}: the std sweep")
    s.blocks.append(
        f"REINFORCE (a linear mean unless options say otherwise, whitened reward-to-go) with the policy's std "
        f"fixed at {', '.join(fmt(x) for x in c.stds)}, {c.seeds} seeds, {c.steps} env steps each. Probes of the "
        f"{'deterministic policy' if c.objective == 'deterministic' else 'stochastic policy (its std fixed)'}'s sampled return ({c.episodes} episodes per point, noise band from {c.repeats} "
        f"repeats) at the initial parameters, at the snapshots kept during training ({', '.join(fmt(f) for f in c.snapshots) or 'none'} "
        f"of training) and at the final ones, {c.directions} directions. Flat: the fraction of directions "
        "within the noise band on both sides; down: falling on both sides (a local maximum along that "
        "direction); up: rising on both sides; slope: rising on one side and falling on the other; half: "
        "outside the band on one side only.")
    rows = [(fmt(std), str(len(g)), mean_ci(g["eval_return_det_mean"], num_resamples),
             mean_ci(g["eval_return_sto_mean"], num_resamples)) for std, g in runs.groupby("alpha", sort=True)]
    s.blocks.append(Table(("std", "seeds", "final return, deterministic [95% CI over seeds]",
                           "final return, sampled at the std"), tuple(rows)))
    if "env_steps" not in classes:  # tables written before mid-training snapshots existed
        classes = classes.assign(env_steps=np.where(classes["point"] == "init", 0, c.steps))
    order = classes.groupby("point")["env_steps"].min().sort_values().index.tolist()
    rows = []
    for (std, eps), cl in classes.groupby(["std", "epsilon"], sort=True):
        for point in order:
            sub = cl[cl["point"] == point]
            if sub.empty:
                continue
            counts = sub["class"].value_counts()
            rows.append((fmt(std), fmt(eps), point, mean_ci(sub["j_center"], num_resamples),
                         *(fmt(sub[f"frac_{lab}"].mean(), 2) for lab in ("flat", "down", "up", "slope", "half")),
                         ", ".join(f"{k} {v}" for k, v in counts.items())))
    s.blocks.append(Table(("std", "epsilon", "point", "J at the point [95% CI over seeds]", "flat", "down", "up",
                           "slope", "half", "classes (seeds)"), tuple(rows)))
    colors = _tau_colors(runs["alpha"].unique())
    n = 1 + (interp is not None)
    fig, axes = panels(n, ncols=2, panel=(3.4, 2.4))
    if curves is not None:
        for std, g in curves.groupby("alpha"):
            m = g.groupby("update")["episode_return"].mean()
            axes[0].plot(m.index, m.to_numpy(), color=colors[std], lw=1, label=f"std={fmt(std)}")
        axes[0].set_xlabel("update")
        axes[0].set_ylabel("training return (mean over seeds)")
        axes[0].legend(fontsize=6)
    if interp is not None:
        for (std, a, b), g in interp.groupby(["std", "seed_a", "seed_b"]):
            axes[1].plot(g["t"], g["return"], color=colors[std], lw=1, alpha=0.8)
        axes[1].set_xlabel("t (seed a at 0, seed b at 1)")
        axes[1].set_ylabel("return along the segment")
    name = save(fig, fig_dir / "continuous.png")
    s.blocks.append(Figure(name, "Left: learning curves per std. Right: the return along segments between the final "
                                 "policies of consecutive seeds (colour: std)."))
    if probes is not None:
        eps = float(probes["epsilon"].max())
        final = probes[(probes["point"] == "final") & np.isclose(probes["epsilon"], eps)]
        stds = sorted(final["std"].unique())
        fig, axes = panels(len(stds), ncols=4, panel=(2.4, 2.4))
        for ax, std in zip(axes, stds):
            sub = final[np.isclose(final["std"], std)]
            _probe_scatter(ax, sub, sub["seed"], f"std={fmt(std)}")
        name = save(fig, fig_dir / "continuous_probe_scatter.png")
        s.blocks.append(Figure(name, f"Probes of the final policies, epsilon = {fmt(eps)}; colour: seed; grey: the "
                                     "noise band (2 std of the return at the point). Third quadrant only: a local "
                                     "optimum."))
    return s


def report(config: LandscapeConfig, tables: dict[str, pd.DataFrame], fig_dir: Path) -> tuple[str, list[Section]]:
    def table(name):
        df = tables.get(name)
        return df if df is not None and not df.empty else None

    sections = [_header(config)]
    if table("gridworld_summary") is not None:
        sections.append(_success_section(tables["gridworld_summary"], fig_dir))
    if table("gridworld_curves") is not None:
        sections.append(_curves_section(tables["gridworld_curves"], config.gridworld.step_sizes[0], fig_dir))
    if table("probes") is not None and table("probe_classes") is not None:
        sections.append(_probe_section(tables["probes"], tables["probe_classes"], fig_dir))
    if table("curvature") is not None:
        sections.append(_curvature_section(tables["curvature"]))
    if table("interpolation") is not None:
        sections.append(_interpolation_section(tables["interpolation"], fig_dir))
    if table("continuous_runs") is not None and table("continuous_classes") is not None:
        sections.append(_continuous_section(config, tables["continuous_runs"], table("continuous_curves"),
                                            tables["continuous_classes"], table("continuous_interpolation"),
                                            config.bootstrap, fig_dir, table("continuous_probes")))
    if table("policy_classes") is not None:
        sections.append(_policies_section(tables["policy_classes"], config.bootstrap, fig_dir))
    answer = _answer_section(table("gridworld_summary"), config.gridworld.step_sizes[0])
    if not (fig_dir / "gridworld_success.png").is_file():
        answer.blocks = [b for b in answer.blocks if not isinstance(b, Figure)]
    return f"Landscape study {config.name}", [answer, *sections]

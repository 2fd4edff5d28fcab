"""The report of a robustness study: its sections, from the stored tables only.

`entrolab.study.report.write_report` renders them (`entrolab.report.document`)
to ``report/index.html`` and ``report/report.md``, figures under ``report/figures/``.
Nothing is recomputed from checkpoints, agents or environments.

Definitions used in the tables:

- evaluation return of a policy: the mean return of the ``evaluate.episodes``
  episodes at the nominal condition (obs_noise = 0), averaged over the initial
  distributions;
- excess-risk rate of a policy under a condition: R / |J0| per initial
  distribution (table excess_risk); the summary tables average it over the
  initial distributions (`entrolab.studies.robustness.schema.policy_rates`), the
  distribution figures show each initial distribution on its own row;
- intervals: 95% percentile bootstrap over policies (`entrolab.stats.bootstrap_ci`,
  ``evaluate.bootstrap`` resamples, seed 0) for means; the correlation
  intervals are those of the correlations table.

Missing optional tables or families leave their sections out with a note;
NaN values are left out of figures and statistics, and the note says how many.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from entrolab.report.document import Details, Figure, Section, Table, fmt, fmt_ci, mean_ci  # noqa: E402
from entrolab.report.figures import grid, jitter, panels, save  # noqa: E402
from entrolab.studies.robustness.schema import MEASURES, policy_rates  # noqa: E402

if TYPE_CHECKING:  # the report reads tables only; the config is passed in
    from entrolab.studies.robustness.config import RobustnessConfig

FAMILIES = ("obs_noise", "action_noise", "dynamics")
CURVE_METRICS = ("episode_return", "ent_coef", "entropy")
LOG_SPAN = 100.0  # a positive quantity whose max / min reaches this is drawn on a log axis


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------
def _group_label(value) -> str:
    """A group of the correlations table: an alpha, or (variant, alpha) as text."""
    try:
        return fmt(value)
    except (TypeError, ValueError):
        return str(value)


def _values(values: Sequence[float]) -> str:
    return ", ".join(fmt(v) for v in values) if len(values) else "none"


def _finite(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[np.isfinite(x)]


def _use_log(values) -> bool:
    x = _finite(values)
    return x.size > 1 and bool(np.all(x > 0)) and x.max() / x.min() >= LOG_SPAN


def _is_ref(df: pd.DataFrame) -> np.ndarray:
    return np.isclose(df["value"].to_numpy(float), df["reference_value"].to_numpy(float), rtol=1e-6, atol=1e-12)


# ---------------------------------------------------------------------------
# Figure helpers
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Palette:
    """Colours by alpha, colours and markers by training variant."""

    alphas: tuple[float, ...]
    variants: tuple[str, ...]

    def alpha_color(self, alpha: float):
        i = int(np.argmin(np.abs(np.asarray(self.alphas) - alpha)))
        return plt.get_cmap("viridis")(0.1 + 0.8 * i / max(len(self.alphas) - 1, 1))

    def variant_color(self, variant: str):
        return plt.get_cmap("tab10")(self.variants.index(variant) % 10)

    def marker(self, variant: str) -> str:
        return "osD^vP*X"[self.variants.index(variant) % 8]

    def linestyle(self, variant: str):
        return ["-", "--", ":", "-."][self.variants.index(variant) % 4]

    @property
    def multi(self) -> bool:
        return len(self.variants) > 1

    def offsets(self, width: float = 0.6) -> dict[str, float]:
        """x offsets of the variants around each alpha's position."""
        n = len(self.variants)
        step = width / n
        return {v: (i - (n - 1) / 2) * step for i, v in enumerate(self.variants)}

    def alpha_ticks(self, ax) -> None:
        ax.set_xticks(range(len(self.alphas)))
        ax.set_xticklabels([fmt(a) for a in self.alphas])
        ax.set_xlim(-0.6, len(self.alphas) - 0.4)
        ax.set_xlabel("alpha")

    def alpha_legend(self, fig, **kw) -> None:
        handles = [plt.Line2D([], [], color=self.alpha_color(a), marker="o", ls="-", label=f"alpha = {fmt(a)}")
                   for a in self.alphas]
        fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 6), fontsize=8, frameon=False, **kw)

    def variant_legend(self, fig, kind: str = "color") -> None:
        if not self.multi:
            return
        handles = []
        for v in self.variants:
            if kind == "color":
                handles.append(plt.Line2D([], [], color=self.variant_color(v), marker="s", ls="", label=v))
            elif kind == "marker":
                handles.append(plt.Line2D([], [], color="0.3", marker=self.marker(v), ls="", label=v))
            else:
                handles.append(plt.Line2D([], [], color="0.3", ls=self.linestyle(v), label=v))
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3), fontsize=7, frameon=False)


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------
def _header(config: RobustnessConfig, tables: dict) -> Section:
    runs = tables.get("runs", pd.DataFrame())
    ev = config.evaluate
    seeds = sorted(runs["seed"].unique().tolist()) if "seed" in runs else \
        list(range(config.seed_offset, config.seed_offset + config.seeds))
    variants = sorted(runs["variant"].unique().tolist()) if "variant" in runs else \
        [v["variant"] for v in config.variants()]
    rows = [
        ("study", config.name),
        ("environment", config.env + (f" ({', '.join(f'{k}={v}' for k, v in config.env_options.items())})"
                                      if config.env_options else "")),
        ("alphas", _values(config.alphas)),
        ("seeds per alpha and variant", f"{config.seeds} ({', '.join(map(str, seeds))})"),
        ("training variants", f"{len(variants)}: {', '.join(variants)}"),
        ("policies", str(len(runs)) if len(runs) else "n/a (no runs table)"),
        ("training steps per policy", f"{config.train.steps:,}"),
        ("initial distributions", f"{', '.join(config.inits)} (init_std = {fmt(ev.init_std)})"),
        ("modes", ", ".join(ev.modes)),
        ("obs_noise grid", _values(ev.obs_noise)),
        ("action_noise grid", _values(ev.action_noise)),
        ("dynamics grid", f"{ev.dynamics.param}: {_values(ev.dynamics.values)}" if ev.dynamics else "none"),
        ("episodes per condition", str(ev.episodes)),
        ("bootstrap resamples", str(ev.bootstrap)),
        ("Fisher states per policy", str(config.measures.fisher_states)),
    ]
    section = Section("Study")
    section.blocks.append(Table(("setting", "value"), tuple(rows)))
    if "diverged_at_step" in runs.columns and runs["diverged_at_step"].notna().any():
        bad = runs[runs["diverged_at_step"].notna()]
        section.note(f"{len(bad)} of {len(runs)} policies diverged in training (non-finite parameters or losses) and "
                     f"were frozen at their last finite state: {', '.join(bad['variant'] + '/' + bad['run_id'])}. "
                     "They are left out of the correlations, the granulated coefficients and the alpha trends.")
    missing = [t for t in ("runs", "curves", "returns", "excess_risk", "complexity", "fisher_states", "correlations")
               if t not in tables or tables[t].empty]
    if missing:
        section.note(f"tables missing or empty: {', '.join(missing)}; their sections are left out.")
    return section


def _return_section(returns: pd.DataFrame, palette: Palette, num_resamples: int, inits) -> Section:
    section = Section("Evaluation return at the nominal condition")
    section.blocks.append(
        "Mean return per policy at obs_noise = 0 (the reference of the excess risk), averaged over the "
        f"initial distributions ({', '.join(inits)}); mean over the policies of each alpha with its 95% "
        "bootstrap interval over policies.")
    nominal = returns[(returns["family"] == "obs_noise") & np.isclose(returns["value"].to_numpy(float), 0.0)]
    per_policy = (nominal.groupby(["variant", "run_id", "alpha", "mode"], as_index=False)["mean_return"].mean())
    modes = [m for m in ("deterministic", "stochastic") if m in set(per_policy["mode"])]
    nan = int((~np.isfinite(per_policy["mean_return"].to_numpy(float))).sum())
    if nan:
        section.note(f"{nan} policy x mode returns are NaN and left out.")
    columns = (("variant",) if palette.multi else ()) + ("alpha", "policies") + tuple(f"{m} return" for m in modes)
    rows = []
    for variant in palette.variants:
        for alpha in palette.alphas:
            sub = per_policy[(per_policy["variant"] == variant) & np.isclose(per_policy["alpha"], alpha)]
            if sub.empty:
                continue
            cells = [mean_ci(sub.loc[sub["mode"] == m, "mean_return"], num_resamples) for m in modes]
            rows.append(((variant,) if palette.multi else ()) + (fmt(alpha), str(sub["run_id"].nunique()))
                        + tuple(cells))
    section.blocks.append(Table(columns, tuple(rows)))
    return section


def _risk_summary_section(risk: pd.DataFrame, palette: Palette, num_resamples: int, families) -> Section:
    section = Section("Excess-risk rate per alpha and perturbation")
    section.blocks.append(
        "Mean over policies of the excess-risk rate R / |J0| (each policy's rate averaged over the initial "
        "distributions), with its 95% bootstrap interval over policies. Positive: the perturbation lowers the return.")
    rates = policy_rates(risk)
    for family in families:
        sub = rates[rates["family"] == family]
        if sub.empty:
            section.note(f"family {family}: no perturbed conditions.")
            continue
        param = str(sub["param"].iloc[0])
        values = sorted(sub["value"].unique().tolist())
        nan = int((~np.isfinite(sub["excess_risk_rate"].to_numpy(float))).sum())
        columns = (("variant",) if palette.multi else ()) + ("mode", "alpha") + tuple(
            f"{param} = {fmt(v)}" for v in values)
        rows = []
        for variant in palette.variants:
            for mode in sorted(sub["mode"].unique()):
                for alpha in palette.alphas:
                    cell = sub[(sub["variant"] == variant) & (sub["mode"] == mode) & np.isclose(sub["alpha"], alpha)]
                    if cell.empty:
                        continue
                    cells = tuple(mean_ci(cell.loc[np.isclose(cell["value"], v), "excess_risk_rate"], num_resamples)
                                  for v in values)
                    rows.append(((variant,) if palette.multi else ()) + (mode, fmt(alpha)) + cells)
        section.blocks.append(Table(columns, tuple(rows), caption=f"{family}"))
        if nan:
            section.note(f"family {family}: {nan} policy rates are NaN and left out.")
    return section


def _risk_distribution_figure(risk: pd.DataFrame, family: str, palette: Palette, path: Path) -> str | None:
    """Box + strip plots of the per-policy rate against alpha: rows init x mode, columns the values."""
    sub = risk[(risk["family"] == family) & ~_is_ref(risk)]
    if sub.empty:
        return None
    values = sorted(sub["value"].unique().tolist())
    rows = [(i, m) for i in sorted(sub["init"].unique()) for m in sorted(sub["mode"].unique())]
    param = str(sub["param"].iloc[0])
    fig, axes = grid(len(rows), len(values), panel=(3.0, 1.9), left=1.0, hgap=0.45,
                      bottom=0.95 if palette.multi else 0.55, sharex=True)
    rng = np.random.default_rng(0)
    offsets = palette.offsets()
    width = 0.6 / len(palette.variants)
    for r, (init, mode) in enumerate(rows):
        for c, value in enumerate(values):
            ax = axes[r, c]
            panel = sub[(sub["init"] == init) & (sub["mode"] == mode) & np.isclose(sub["value"], value)]
            for a, alpha in enumerate(palette.alphas):
                for variant in palette.variants:
                    y = _finite(panel.loc[(panel["variant"] == variant) & np.isclose(panel["alpha"], alpha),
                                          "excess_risk_rate"])
                    if y.size == 0:
                        continue
                    color = palette.variant_color(variant) if palette.multi else palette.alpha_color(alpha)
                    x = a + offsets[variant]
                    ax.boxplot([y], positions=[x], widths=width * 0.8, showfliers=False, manage_ticks=False,
                               patch_artist=True, boxprops=dict(facecolor=color, alpha=0.3, lw=0.8),
                               medianprops=dict(color="k", lw=1.0), whiskerprops=dict(lw=0.8),
                               capprops=dict(lw=0.8))
                    ax.scatter(x + jitter(y.size, rng, width * 0.25), y, s=12, color=color, edgecolor="k",
                               linewidth=0.3, zorder=3)
            ax.axhline(0.0, color="0.5", lw=0.7, ls="--")
            palette.alpha_ticks(ax)
            if r < len(rows) - 1:
                ax.set_xlabel("")
            if r == 0:
                ax.set_title(f"{param} = {fmt(value)}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{init}, {mode}\nexcess-risk rate", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(f"Excess-risk rate R / |J0| per policy, {family}", fontsize=10)
    palette.variant_legend(fig)
    save(fig, path)
    return path.name


def _risk_figures_section(risk: pd.DataFrame, palette: Palette, families, fig_dir: Path) -> Section:
    section = Section("Excess-risk rate against alpha: distributions")
    section.blocks.append(
        "Each point is one policy (one seed) under one initial distribution and mode; boxes span the quartiles, "
        "whiskers 1.5 IQR. One column per perturbation strength, the reference condition left out.")
    for family in families:
        nan = int((~np.isfinite(risk.loc[(risk["family"] == family) & ~_is_ref(risk), "excess_risk_rate"]
                               .to_numpy(float))).sum())
        name = _risk_distribution_figure(risk, family, palette, fig_dir / f"excess_risk_{family}.png")
        if name is None:
            section.note(f"family {family}: no perturbed conditions, no figure.")
            continue
        section.blocks.append(Figure(name, f"Excess-risk rate against alpha, {family} family."))
        if nan:
            section.note(f"family {family}: {nan} NaN rates left out of the figure.")
    return section


def _measures(complexity: pd.DataFrame, section: Section) -> list[str]:
    """The measures of MEASURES present with at least one finite value (notes on the others)."""
    present = [m for m in MEASURES if m in complexity.columns]
    out = []
    for m in present:
        x = complexity[m].to_numpy(float)
        bad = int((~np.isfinite(x)).sum())
        if bad == x.size:
            section.note(f"{m}: NaN for every policy, left out.")
            continue
        if bad:
            section.note(f"{m}: NaN for {bad} of {x.size} policies, left out.")
        out.append(m)
    return out


def _complexity_section(complexity: pd.DataFrame, palette: Palette, fig_dir: Path) -> Section:
    section = Section("Complexity measures against alpha")
    measures = _measures(complexity, section)
    if not measures:
        section.note("no complexity measure has a finite value.")
        return section
    fig, axes = panels(len(measures), bottom=0.95 if palette.multi else 0.55)
    rng = np.random.default_rng(0)
    offsets = palette.offsets(0.4)
    for ax, m in zip(axes, measures):
        for variant in palette.variants:
            med_x, med_y = [], []
            for a, alpha in enumerate(palette.alphas):
                y = _finite(complexity.loc[(complexity["variant"] == variant) & np.isclose(complexity["alpha"], alpha),
                                           m])
                if y.size == 0:
                    continue
                x = a + offsets[variant]
                color = palette.variant_color(variant) if palette.multi else palette.alpha_color(alpha)
                ax.scatter(x + jitter(y.size, rng, 0.06), y, s=14, color=color, edgecolor="k", linewidth=0.3,
                           zorder=3)
                med_x.append(x)
                med_y.append(float(np.median(y)))
            line_color = palette.variant_color(variant) if palette.multi else "k"
            ax.plot(med_x, med_y, color=line_color, lw=1.2, ls=palette.linestyle(variant), marker="_", ms=10,
                    zorder=2)
        if _use_log(complexity[m]):
            ax.set_yscale("log")
        palette.alpha_ticks(ax)
        ax.set_title(m, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.label.set_size(8)
    fig.suptitle("Complexity measures: one point per policy, line: median over seeds", fontsize=10)
    palette.variant_legend(fig)
    name = "complexity_vs_alpha.png"
    save(fig, fig_dir / name)
    section.blocks.append(
        f"Each measure against alpha; a log axis where a positive measure spans a factor of {LOG_SPAN:g} or more.")
    section.blocks.append(Figure(name, "Complexity measures against alpha (points: policies, line: median)."))
    return section


def _fisher_section(fisher: pd.DataFrame, complexity: pd.DataFrame | None, palette: Palette,
                    fig_dir: Path) -> Section:
    section = Section("Fisher-trace distributions")
    x_all = fisher["fisher_total"].to_numpy(float)
    keep = np.isfinite(x_all)
    if (~keep).any():
        section.note(f"{int((~keep).sum())} NaN Fisher traces left out.")
    fisher = fisher[keep]
    log = _use_log(fisher["fisher_total"])
    if log:
        nonpos = int((fisher["fisher_total"] <= 0).sum())
        fisher = fisher[fisher["fisher_total"] > 0]
        if nonpos:
            section.note(f"{nonpos} non-positive Fisher traces left out of the log-scale figure.")
    if fisher.empty:
        section.note("no finite Fisher trace.")
        return section
    kurt = {}
    if complexity is not None and "fisher_total_kurtosis" in complexity.columns:
        for (variant, alpha), sub in complexity.groupby(["variant", "alpha"]):
            k = _finite(sub["fisher_total_kurtosis"])
            kurt[(variant, float(alpha))] = (float(np.median(k)) if k.size else float("nan"), k.size)
    variants = [v for v in palette.variants if (fisher["variant"] == v).any()]
    fig, axes = grid(len(variants), 2, panel=(4.2, 2.8), top=0.75, hgap=0.9)
    for row, variant in zip(axes, variants):
        ax_ecdf, ax_violin = row
        fv = fisher[fisher["variant"] == variant]
        positions, data, labels = [], [], []
        for a, alpha in enumerate(palette.alphas):
            fa = fv[np.isclose(fv["alpha"], alpha)]
            if fa.empty:
                continue
            color = palette.alpha_color(alpha)
            for _, pol in fa.groupby("run_id"):
                x = np.sort(pol["fisher_total"].to_numpy(float))
                ax_ecdf.step(x, np.arange(1, x.size + 1) / x.size, where="post", color=color, lw=0.9, alpha=0.8)
            k, n = kurt.get((variant, float(alpha)), (float("nan"), 0))
            labels.append(f"alpha = {fmt(alpha)}: excess kurtosis {fmt(k, 3)}" + (f" (median of {n})" if n > 1 else ""))
            ax_ecdf.plot([], [], color=color, label=labels[-1])
            values = fa["fisher_total"].to_numpy(float)
            positions.append(a)
            data.append(np.log10(values) if log else values)
            ax_violin.text(a, 1.0, f"kurt {fmt(k, 3)}", transform=ax_violin.get_xaxis_transform(), ha="center",
                           va="bottom", fontsize=7)
        if log:
            ax_ecdf.set_xscale("log")
        ax_ecdf.set(xlabel="Fisher trace per state", ylabel="ECDF (one line per policy)")
        ax_ecdf.legend(fontsize=7, frameon=False, loc="lower right")
        spread = [d for d in data if np.ptp(d) > 0]
        if spread and len(spread) == len(data):
            parts = ax_violin.violinplot(data, positions=positions, showmedians=True, widths=0.8)
            for body, pos in zip(parts["bodies"], positions):
                body.set_facecolor(palette.alpha_color(palette.alphas[pos]))
                body.set_alpha(0.5)
        else:  # a constant sample has no density: show the points
            for pos, d in zip(positions, data):
                ax_violin.scatter(np.full(d.size, pos), d, s=8, color=palette.alpha_color(palette.alphas[pos]))
        palette.alpha_ticks(ax_violin)
        ax_violin.set_ylabel("log10 Fisher trace" if log else "Fisher trace")
        if palette.multi:
            ax_ecdf.set_title(variant, fontsize=8)
            ax_violin.set_title(variant, fontsize=8, pad=12)
    fig.suptitle("Per-state Fisher trace of the policy, pooled over seeds in the violins", fontsize=10)
    name = "fisher_trace.png"
    save(fig, fig_dir / name)
    section.blocks.append(
        "Distribution of the Fisher-information trace over the visited states: empirical CDF per policy (left) "
        "and violins per alpha pooled over seeds (right). Excess kurtosis: median over seeds of "
        "fisher_total_kurtosis (table complexity).")
    section.blocks.append(Figure(name, "Fisher-trace distributions per alpha."))
    return section


@dataclass(frozen=True)
class Target:
    """The (family, param, value, mode) whose excess-risk rate is correlated with the measures."""

    family: str
    param: str
    value: float
    mode: str

    def label(self) -> str:
        return f"{self.family}, {self.param} = {fmt(self.value)}, {self.mode}"


def headline_target(risk: pd.DataFrame) -> Target | None:
    """obs_noise (else action_noise, else dynamics), deterministic mode if present, and the strongest
    perturbation (the value farthest from the reference)."""
    sub = risk[~_is_ref(risk)]
    for family in FAMILIES:
        f = sub[sub["family"] == family]
        if f.empty:
            continue
        modes = set(f["mode"])
        mode = "deterministic" if "deterministic" in modes else sorted(modes)[0]
        f = f[f["mode"] == mode]
        far = (f["value"] - f["reference_value"]).abs()
        row = f.loc[far.idxmax()]
        return Target(family, str(row["param"]), float(row["value"]), mode)
    return None


def _target_correlations(corr: pd.DataFrame, target: Target) -> pd.DataFrame:
    if corr.empty:
        return corr
    return corr[(corr["family"] == target.family) & (corr["mode"] == target.mode)
                & np.isclose(corr["value"].to_numpy(float), target.value)]


def _scatter_section(complexity: pd.DataFrame, risk: pd.DataFrame, corr: pd.DataFrame, target: Target,
                     palette: Palette, fig_dir: Path) -> Section:
    section = Section("Complexity against excess-risk rate")
    measures = _measures(complexity, section)
    rates = policy_rates(risk)
    rates = rates[(rates["family"] == target.family) & (rates["mode"] == target.mode)
                  & np.isclose(rates["value"], target.value)]
    df = rates.merge(complexity[["variant", "run_id"] + measures], on=["variant", "run_id"])
    nan = int((~np.isfinite(df["excess_risk_rate"].to_numpy(float))).sum())
    if nan:
        section.note(f"{nan} NaN excess-risk rates left out.")
    df = df[np.isfinite(df["excess_risk_rate"].to_numpy(float))]
    if df.empty or not measures:
        section.note("no policy has both a finite rate and a finite measure.")
        return section
    overall = _target_correlations(corr, target)
    overall = overall[overall["scope"] == "overall"] if not overall.empty else overall
    fig, axes = panels(len(measures), top=0.9, hgap=1.05, bottom=0.95 if palette.multi else 0.6)
    for ax, m in zip(axes, measures):
        ok = np.isfinite(df[m].to_numpy(float))
        for variant in palette.variants:
            sub = df[ok & (df["variant"] == variant).to_numpy()]
            ax.scatter(sub[m], sub["excess_risk_rate"], c=[palette.alpha_color(a) for a in sub["alpha"]],
                       marker=palette.marker(variant), s=18, edgecolor="k", linewidth=0.3)
        if _use_log(df[m]):
            ax.set_xscale("log")
        row = overall[overall["measure"] == m] if not overall.empty else overall
        if len(row):
            r = row.iloc[0]
            title = f"{m}\ntau = {fmt_ci(r['kendall_tau'], r['kendall_tau_low'], r['kendall_tau_high'])}"
        else:
            title = f"{m}\ntau: n/a"
        ax.set_title(title, fontsize=8, pad=10)
        ax.axhline(0.0, color="0.5", lw=0.6, ls="--")
        ax.set_xlabel(m, fontsize=7)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("excess-risk rate", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(4))
    palette.alpha_legend(fig, bbox_to_anchor=(0.5, 1.0))
    palette.variant_legend(fig, kind="marker")
    name = "complexity_vs_risk.png"
    save(fig, fig_dir / name)
    section.blocks.append(
        f"Target: {target.label()}; one point per policy (rate averaged over the initial distributions), "
        "coloured by alpha. Panel titles: Kendall's tau over all policies with its 95% bootstrap interval "
        "(table correlations, scope overall).")
    section.blocks.append(Figure(name, f"Complexity against excess-risk rate ({target.label()})."))
    return section


def _curves_section(curves: pd.DataFrame, palette: Palette, fig_dir: Path) -> Section:
    section = Section("Learning curves")
    metrics = [m for m in CURVE_METRICS if m in curves.columns and np.isfinite(curves[m].to_numpy(float)).any()]
    x_col = "env_steps" if "env_steps" in curves.columns else "update"
    if not metrics:
        section.note("the curves table has none of " + ", ".join(CURVE_METRICS) + ".")
        return section
    fig, axes = panels(len(metrics), ncols=3, panel=(3.6, 2.5), top=0.85, bottom=0.95 if palette.multi else 0.6)
    for ax, metric in zip(axes, metrics):
        for (variant, run_id), run in curves.groupby(["variant", "run_id"], sort=True):
            run = run.sort_values(x_col)
            ok = np.isfinite(run[metric].to_numpy(float))
            ax.plot(run[x_col][ok], run[metric][ok], color=palette.alpha_color(float(run["alpha"].iloc[0])),
                    ls=palette.linestyle(variant), lw=1.0, alpha=0.85)
        ax.set(xlabel=x_col, title=metric)
        ax.title.set_size(9)
        ax.tick_params(labelsize=7)
    palette.alpha_legend(fig, bbox_to_anchor=(0.5, 1.0))
    palette.variant_legend(fig, kind="linestyle")
    name = "learning_curves.png"
    save(fig, fig_dir / name)
    section.blocks.append("One line per policy (training run), coloured by alpha"
                          + (", line style by training variant." if palette.multi else "."))
    section.blocks.append(Figure(name, "Learning curves."))
    return section


def _trend_section(alpha_rates: pd.DataFrame, trends: pd.DataFrame | None, risk: pd.DataFrame, target: Target,
                   palette: Palette, fig_dir: Path) -> Section:
    """The alpha trend of the headline target with seed-level uncertainty (issue 11)."""
    section = Section("Does alpha change robustness? The trend over seeds")
    sub = _target_correlations(alpha_rates, target)
    if sub.empty:
        section.note(f"no per-alpha rates for {target.label()}.")
        return section
    seeds = _target_correlations(policy_rates(risk), target)
    section.blocks.append(
        f"Target: {target.label()}. Rate: the excess-risk rate averaged over seeds (and initial distributions), "
        "with a 95% hierarchical bootstrap interval (seeds with replacement, then episodes within each seed), "
        "so the interval carries the spread between seeds, not only episode noise. Trend: Kendall's tau "
        "between alpha and the policies' rates, its interval from resampling whole seeds; an interval that "
        "covers 0 means no trend is shown.")
    rows = []
    for variant in palette.variants:
        for _, r in sub[sub["variant"] == variant].sort_values("alpha").iterrows():
            rows.append(((variant,) if palette.multi else ()) + (
                fmt(r["alpha"]), str(int(r["num_seeds"])), fmt_ci(r["rate"], r["rate_low"], r["rate_high"]),
                f"{fmt(r['seed_min'])} / {fmt(r['seed_median'])} / {fmt(r['seed_max'])}"))
    section.blocks.append(Table((("variant",) if palette.multi else ()) + (
        "alpha", "seeds", "rate [95% CI, hierarchical]", "seeds: min / median / max"), tuple(rows)))
    tr = _target_correlations(trends, target) if trends is not None else pd.DataFrame()
    if not tr.empty:
        section.blocks.append(Table(("variant", "n", "Kendall tau(alpha, rate) [95% CI over seeds]", "p"), tuple(
            (str(r["variant"]), str(int(r["n"])), fmt_ci(r["kendall_tau"], r["kendall_tau_low"], r["kendall_tau_high"]),
             fmt(r["kendall_p"], 3)) for _, r in tr.iterrows())))
    fig, axes = panels(len(palette.variants), ncols=3)
    rng = np.random.default_rng(0)
    for ax, variant in zip(axes, palette.variants):
        v = sub[sub["variant"] == variant].sort_values("alpha")
        for i, alpha in enumerate(palette.alphas):
            row = v[np.isclose(v["alpha"], alpha)]
            pts = seeds[(seeds["variant"] == variant) & np.isclose(seeds["alpha"], alpha)]["excess_risk_rate"]
            pts = _finite(pts)
            ax.scatter(i + jitter(pts.size, rng, 0.12), pts, s=10, color=palette.alpha_color(alpha), alpha=0.6,
                       zorder=2)
            if len(row):
                r = row.iloc[0]
                ax.errorbar([i + 0.25], [r["rate"]], yerr=[[r["rate"] - r["rate_low"]], [r["rate_high"] - r["rate"]]],
                            fmt="o", color="k", ms=4, capsize=3, zorder=3)
        palette.alpha_ticks(ax)
        ax.set_ylabel("excess-risk rate")
        ax.set_title(variant if palette.multi else target.label(), fontsize=8)
    fig.suptitle("Dots: seeds; black: mean over seeds with 95% hierarchical bootstrap interval", fontsize=9)
    name = save(fig, fig_dir / "alpha_trend.png")
    section.blocks.append(Figure(name, "Excess-risk rate per alpha: every seed, and the mean with its interval."))
    return section


def answer_section(config: RobustnessConfig, alpha_rates: pd.DataFrame | None, trends: pd.DataFrame | None,
                   target: Target | None, trend_figure: bool) -> Section:
    """What the study exists to answer, first: does a larger alpha lower the excess-risk rate under the
    headline perturbation, with the seed-level trend and the rates at alpha = 0 and at the best
    alpha, all quoted from the alpha_rates and trends tables, and the trend figure."""
    section = Section("Answer")
    family = target.family.replace("_", " ") if target is not None else "the perturbations"
    section.blocks.append(f"**Question.** Does a larger entropy coefficient alpha make the trained policies more "
                          f"robust (a lower excess-risk rate) to {family} on {config.env}?")
    sub = _target_correlations(alpha_rates, target) if target is not None and alpha_rates is not None else None
    tr = _target_correlations(trends, target) if target is not None and trends is not None else pd.DataFrame()
    if sub is None or sub.empty:
        section.blocks.append("**Answer.** Not measured: the study has no excess-risk trend tables "
                              "(it needs two alphas and three policies).")
        return section
    lines = []
    for variant in sorted(sub["variant"].unique()):
        v = sub[sub["variant"] == variant].sort_values("alpha")
        t = tr[tr["variant"] == variant] if not tr.empty else tr
        head = f"{variant}: " if sub["variant"].nunique() > 1 else ""
        if len(t):
            r = t.iloc[0]
            tau = fmt_ci(r["kendall_tau"], r["kendall_tau_low"], r["kendall_tau_high"])
            if r["kendall_tau_high"] < 0:
                verdict = "Yes, here: the excess-risk rate falls as alpha grows"
            elif r["kendall_tau_low"] > 0:
                verdict = "No, the opposite here: the excess-risk rate grows with alpha"
            else:
                verdict = "Not shown: the interval of the trend covers 0"
            trend = f"{verdict} (Kendall tau between alpha and the policies' rates {tau}, 95% interval over seeds, " \
                    f"{int(r['n'])} policies)"
        else:
            trend = "No trend measured (fewer than two alphas or three policies)"
        low, best = v.iloc[0], v.loc[v["rate"].idxmin()]
        rates = f"rate at alpha = {fmt(low['alpha'])}: {fmt_ci(low['rate'], low['rate_low'], low['rate_high'])}"
        if best["alpha"] != low["alpha"]:
            rates += f"; lowest, at alpha = {fmt(best['alpha'])}: {fmt_ci(best['rate'], best['rate_low'], best['rate_high'])}"
        lines.append(f"{head}{trend}; {rates}.")
    section.blocks.append(f"**Answer** ({target.label()}). " + " ".join(lines))
    section.blocks.append("The rates are excess-risk rates R / |J0| averaged over seeds with 95% hierarchical "
                          "bootstrap intervals (seeds, then episodes); details in the sections below.")
    if trend_figure:
        section.blocks.append(Figure("alpha_trend.png", "Excess-risk rate per alpha: every seed, and the mean with "
                                     "its interval (the figure of the trend section)."))
    return section


ATTACK_COLUMNS = (("attack_excess", "episodes: per-state attack"), ("random_excess", "episodes: random"),
                  ("simulator_worst_excess", "horizon: simulator attack"),
                  ("simulator_greedy_excess", "horizon: per-state attack"),
                  ("simulator_random_excess", "horizon: random"))


def _attack_section(complexity: pd.DataFrame, palette: Palette, num_resamples: int) -> Section | None:
    """What observation perturbations of a given L2 norm cost: the worst case found against random
    directions (issue 11, item 6), per alpha, mean over seeds with a bootstrap interval over seeds."""
    tags = sorted({c.rsplit("_eps", 1)[1] for c in complexity.columns
                   if any(c.startswith(f"{name}_eps") for name, _ in ATTACK_COLUMNS)}, key=float)
    if not tags:
        return None
    section = Section("Worst-case observation perturbations")
    section.blocks.append(
        "Excess cost (clean return minus perturbed return; > 0 hurts) of observation perturbations of L2 norm "
        "epsilon in raw observation units. Episodes: whole deterministic episodes in which every observation "
        "is moved by the per-state worst case of the action deviation (projected gradient ascent), or by a "
        "random direction of the same norm. Horizon: the cost of a few steps from visited states under the "
        "perturbation sequence that maximises that cost through the differentiable simulator, the per-state "
        "attack and random directions. Mean over seeds [95% bootstrap CI over seeds]. The attacks are lower "
        "bounds on the true worst case; the per-state attack maximises the action's change, not the cost, "
        "and can even help a poor policy.")
    names = [(n, label) for n, label in ATTACK_COLUMNS if any(f"{n}_eps{t}" in complexity.columns for t in tags)]
    rows = []
    for variant in palette.variants:
        sub = complexity[complexity["variant"] == variant] if palette.multi else complexity
        for tag in tags:
            for alpha, g in sub.groupby("alpha", sort=True):
                cells = [mean_ci(g[f"{n}_eps{tag}"], num_resamples) if f"{n}_eps{tag}" in g else "n/a"
                         for n, _ in names]
                rows.append(((variant,) if palette.multi else ()) + (tag, fmt(alpha)) + tuple(cells))
    section.blocks.append(Table((("variant",) if palette.multi else ()) + ("epsilon", "alpha") +
                                tuple(label for _, label in names), tuple(rows)))
    return section


def _corr_cell(row, stat: str) -> str:
    return fmt_ci(row[stat], row[f"{stat}_low"], row[f"{stat}_high"])


def _correlation_section(corr: pd.DataFrame, target: Target | None, granulated: pd.DataFrame | None = None) -> Section:
    section = Section("Rank correlations of complexity with the excess-risk rate")
    if corr.empty:
        section.note("no correlations: the table is missing or empty (it needs 3 policies per target).")
        return section
    if target is not None:
        sub = _target_correlations(corr, target)
        gran = _target_correlations(granulated, target) if granulated is not None else pd.DataFrame()
        rows = []
        for measure in [m for m in MEASURES if m in set(sub["measure"])] + \
                sorted(set(sub["measure"]) - set(MEASURES)):
            ms = sub[sub["measure"] == measure]
            ov = ms[ms["scope"] == "overall"]
            st = ms[ms["scope"] == "stratified"]
            psi = {}
            if not gran.empty:
                for _, r in gran[gran["measure"] == measure].iterrows():
                    psi[r["scope"]] = fmt_ci(r["psi"], r["psi_low"], r["psi_high"])
            rows.append((
                measure,
                str(int(ov["n"].iloc[0])) if len(ov) else "n/a",
                _corr_cell(ov.iloc[0], "kendall_tau") if len(ov) else "n/a",
                _corr_cell(st.iloc[0], "kendall_tau") if len(st) else "n/a",
                psi.get("alpha", "n/a"),
                psi.get("Psi", "n/a"),
                _corr_cell(ov.iloc[0], "spearman_rho") if len(ov) else "n/a",
            ))
        section.blocks.append(
            f"Headline target: {target.label()}. Overall: all policies. Within alpha: the mean of the "
            "correlations among the seeds of one alpha (and variant): does the measure rank policies at a "
            "fixed alpha? psi_alpha (Jiang et al. 2020): the mean correlation across alpha with the seed "
            "(and variant) fixed; Psi: the mean of psi over the varied axes (variant, alpha, seed). "
            "Intervals: 95% bootstrap over policies (overall, within alpha) or over seeds (psi, Psi).")
        section.blocks.append(Table(("measure", "n", "Kendall tau overall [95% CI]",
                                     "Kendall tau within alpha [95% CI]", "psi_alpha [95% CI]", "Psi [95% CI]",
                                     "Spearman rho overall [95% CI]"),
                                    tuple(rows)))
    full_rows = tuple(
        (str(r["family"]), fmt(r["value"]), str(r["mode"]), str(r["measure"]), str(r["scope"]),
         _group_label(r["group_value"]) if r["scope"] == "group" else "", str(int(r["n"])),
         _corr_cell(r, "kendall_tau"), fmt(r["kendall_p"], 3), _corr_cell(r, "spearman_rho"))
        for _, r in corr.iterrows())
    full = Table(("family", "value", "mode", "measure", "scope", "group", "n", "Kendall tau [95% CI]", "p",
                  "Spearman rho [95% CI]"), full_rows)
    section.blocks.append(Details(
        f"All correlations ({len(full_rows)} rows: every target, scopes overall, within alpha (stratified) "
        "and per alpha)", full,
        "The correlations of every target and scope are in `tables/correlations.parquet` "
        "(and in the collapsible table of index.html)."))
    return section


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------
def build_sections(config: RobustnessConfig, tables: dict[str, pd.DataFrame], fig_dir: Path) -> list[Section]:
    """The report's sections; writes the figures into `fig_dir` as a side effect."""
    num_resamples = config.evaluate.bootstrap

    def table(name: str) -> pd.DataFrame | None:
        df = tables.get(name)
        return df if df is not None and not df.empty else None

    alphas, variants = set(), set()
    for df in tables.values():
        if "alpha" in df.columns:
            alphas |= set(df["alpha"].astype(float).unique().tolist())
        if "variant" in df.columns:
            variants |= set(df["variant"].unique().tolist())
    palette = Palette(tuple(sorted(alphas or config.alphas)), tuple(sorted(variants)) or ("",))

    sections = [_header(config, tables)]
    returns, risk = table("returns"), table("excess_risk")
    complexity, corr = table("complexity"), table("correlations")
    if returns is not None:
        sections.append(_return_section(returns, palette, num_resamples, config.inits))
    target = None
    if risk is not None:
        families = [f for f in FAMILIES if (risk["family"] == f).any()] + \
            sorted(set(risk["family"]) - set(FAMILIES))
        sections.append(_risk_summary_section(risk, palette, num_resamples, families))
        sections.append(_risk_figures_section(risk, palette, families, fig_dir))
        target = headline_target(risk)
    if risk is not None and target is not None and table("alpha_rates") is not None:
        sections.append(_trend_section(tables["alpha_rates"], table("trends"), risk, target, palette, fig_dir))
    trend_figure = (fig_dir / "alpha_trend.png").is_file()
    sections.insert(0, answer_section(config, table("alpha_rates"), table("trends"), target, trend_figure))
    if complexity is not None:
        sections.append(_complexity_section(complexity, palette, fig_dir))
        attacks = _attack_section(complexity, palette, num_resamples)
        if attacks is not None:
            sections.append(attacks)
    if table("fisher_states") is not None:
        sections.append(_fisher_section(tables["fisher_states"], complexity, palette, fig_dir))
    if complexity is not None and risk is not None and target is not None:
        sections.append(_scatter_section(complexity, risk, corr if corr is not None else pd.DataFrame(), target,
                                         palette, fig_dir))
    sections.append(_correlation_section(corr if corr is not None else pd.DataFrame(), target, table("granulated")))
    if table("curves") is not None:
        sections.append(_curves_section(tables["curves"], palette, fig_dir))
    return sections


def report(config: RobustnessConfig, tables: dict[str, pd.DataFrame], fig_dir: Path) -> tuple[str, list[Section]]:
    """The report's title and sections (`entrolab.study.kinds.StudyKind.report`)."""
    return f"Robustness study {config.name} ({config.env})", build_sections(config, tables, fig_dir)

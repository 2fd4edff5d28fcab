"""Statistics for the robustness study: bootstrap intervals, rank correlations.

Everything here is NumPy (the inputs are tables of a few hundred to a few
hundred thousand numbers, produced once by the JAX side) and vectorised over
bootstrap resamples: one `(num_resamples, n)` index matrix per call, never a
Python loop over resamples.

Bootstrap intervals are percentile intervals (Efron & Tibshirani 1993, ch. 13):
for resamples b = 1..B drawn with replacement, the statistic's replicates
theta*_b, and the interval [q_{(1-c)/2}, q_{(1+c)/2}] of their empirical
quantiles. Replicates that are NaN (e.g. a rank correlation of a resample whose
x values are all tied) are left out of the quantiles.

Why not `scipy.stats.bootstrap`: it would fit `bootstrap_ci` alone (with
`method="percentile"`; its default, BCa, is another interval), and the tests
use it as the independent reference. But the callers need what it does not
give: the same resample indices shared by several statistics (Kendall's tau
and Spearman's rho of one resample of pairs; the reference and perturbed
returns of the excess risk, paired by episode, for every condition of a
group at once) and the replicates themselves (a ratio of two resampled
means). `bootstrap_indices` and `percentile_interval` are those two pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import scipy.stats

RngLike = int | np.random.Generator | None


class ConfidenceInterval(NamedTuple):
    """A point estimate (the statistic of the whole sample) and a percentile interval."""

    estimate: float
    low: float
    high: float


def as_generator(rng: RngLike) -> np.random.Generator:
    """A NumPy generator from a seed, a generator (used as is) or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_resampling(num_resamples: int, confidence: float) -> None:
    if int(num_resamples) < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def bootstrap_indices(n: int, num_resamples: int, rng: RngLike = 0) -> np.ndarray:
    """Indices of `num_resamples` resamples of n items with replacement, shape (B, n)."""
    if int(n) < 1:
        raise ValueError(f"cannot resample an empty sample (n = {n})")
    return as_generator(rng).integers(0, int(n), size=(int(num_resamples), int(n)))


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95, axis: int = 0):
    """(low, high): the (1-c)/2 and (1+c)/2 quantiles of the replicates along `axis`.

    NaN replicates are ignored; where all of them are NaN the bounds are NaN.
    """
    replicates = np.asarray(replicates, dtype=float)
    alpha = (1.0 - float(confidence)) / 2.0
    all_nan = np.all(np.isnan(replicates), axis=axis)
    # nanquantile warns on all-NaN slices: fill those with 0 and mask afterwards
    filled = np.where(np.expand_dims(all_nan, axis), 0.0, replicates)
    low, high = np.nanquantile(filled, [alpha, 1.0 - alpha], axis=axis)
    return np.where(all_nan, np.nan, low), np.where(all_nan, np.nan, high)


def bootstrap_ci(
    samples: Sequence[float] | np.ndarray,
    statistic: Callable[..., np.ndarray] = np.mean,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    rng: RngLike = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of `statistic` of a 1-D sample.

    Args:
        samples: shape (n,), n >= 1.
        statistic: `statistic(x, axis=-1)` reduces the last axis (as np.mean,
            np.median, `iqm`), so all B resamples go through one call.
        rng: seed or generator of the resampling (default 0: reproducible).
    Returns:
        ConfidenceInterval(estimate=statistic(samples), low, high).
    """
    _check_resampling(num_resamples, confidence)
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"samples must be 1-D, got shape {x.shape}")
    idx = bootstrap_indices(x.size, num_resamples, rng)
    replicates = np.asarray(statistic(x[idx], axis=-1), dtype=float)
    low, high = percentile_interval(replicates, confidence)
    return ConfidenceInterval(float(statistic(x, axis=-1)), float(low), float(high))


def iqm(x, axis: int | None = None):
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end).

    As rliable (Agarwal et al. 2021): `scipy.stats.trim_mean(x, 0.25)`, over
    all values when axis is None.
    """
    return scipy.stats.trim_mean(np.asarray(x, dtype=float), 0.25, axis=axis)


# ---------------------------------------------------------------------------
# Rank correlations
# ---------------------------------------------------------------------------
def kendall_tau_b(x: np.ndarray, y: np.ndarray, max_elements: int = 2**24) -> np.ndarray:
    """Kendall's tau-b along the last axis, vectorised over leading axes.

        tau_b = sum_{i<j} s_ij t_ij / sqrt(sum_{i<j} |s_ij| * sum_{i<j} |t_ij|),
        s_ij = sign(x_i - x_j), t_ij = sign(y_i - y_j),

    i.e. (concordant - discordant) / sqrt((n0 - ties_x)(n0 - ties_y)), which
    is scipy's tau-b. NaN where either variable is constant. O(n^2) memory per
    row: rows are processed in blocks of at most `max_elements` pair entries.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    n = x.shape[-1]
    lead = x.shape[:-1]
    x2, y2 = x.reshape(-1, n), y.reshape(-1, n)
    out = np.empty(x2.shape[0])
    iu, ju = np.triu_indices(n, k=1)
    block = max(1, int(max_elements) // max(1, iu.size))
    for start in range(0, x2.shape[0], block):
        xs, ys = x2[start:start + block], y2[start:start + block]
        s = np.sign(xs[:, iu] - xs[:, ju])
        t = np.sign(ys[:, iu] - ys[:, ju])
        denom = np.sqrt(np.abs(s).sum(-1) * np.abs(t).sum(-1))
        num = (s * t).sum(-1)
        out[start:start + block] = np.divide(num, denom, out=np.full(num.shape, np.nan), where=denom > 0)
    return out.reshape(lead)


def spearman_rho(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho along the last axis (Pearson of average ranks); NaN if a variable is constant."""
    rx = scipy.stats.rankdata(np.asarray(x, dtype=float), axis=-1)
    ry = scipy.stats.rankdata(np.asarray(y, dtype=float), axis=-1)
    rx = rx - rx.mean(-1, keepdims=True)
    ry = ry - ry.mean(-1, keepdims=True)
    num = (rx * ry).sum(-1)
    denom = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    return np.divide(num, denom, out=np.full(np.shape(num), np.nan), where=denom > 0)


def _finite_pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _scipy_correlations(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Point estimates and p-values from scipy; NaN (no warning) for a constant variable."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"kendall_tau": np.nan, "kendall_p": np.nan, "spearman_rho": np.nan, "spearman_p": np.nan}
    kt = scipy.stats.kendalltau(x, y, variant="b")
    sr = scipy.stats.spearmanr(x, y)
    return {"kendall_tau": float(kt.statistic), "kendall_p": float(kt.pvalue),
            "spearman_rho": float(sr.statistic), "spearman_p": float(sr.pvalue)}


def rank_correlations(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    rng: RngLike = 0,
) -> dict[str, float]:
    """Kendall's tau-b and Spearman's rho of (x, y) with bootstrap intervals.

    Pairs where x or y is not finite are dropped (`n` counts the pairs kept);
    at least 3 must remain. Point estimates and p-values (two-sided, against
    no association) are scipy's `kendalltau(variant="b")` and `spearmanr`;
    the intervals are percentile intervals over resamples of the pairs (the
    same resamples for both coefficients).

    Returns:
        {"n", "kendall_tau", "kendall_tau_low", "kendall_tau_high", "kendall_p",
         "spearman_rho", "spearman_rho_low", "spearman_rho_high", "spearman_p"}.
    """
    _check_resampling(num_resamples, confidence)
    x, y = _finite_pairs(x, y)
    if x.size < 3:
        raise ValueError(f"rank correlations need at least 3 finite pairs, got {x.size}")
    out = {"n": int(x.size), **_scipy_correlations(x, y)}
    idx = bootstrap_indices(x.size, num_resamples, rng)
    for name, fn in (("kendall_tau", kendall_tau_b), ("spearman_rho", spearman_rho)):
        low, high = percentile_interval(fn(x[idx], y[idx]), confidence)
        out[f"{name}_low"], out[f"{name}_high"] = float(low), float(high)
    order = ["n", "kendall_tau", "kendall_tau_low", "kendall_tau_high", "kendall_p",
             "spearman_rho", "spearman_rho_low", "spearman_rho_high", "spearman_p"]
    return {k: out[k] for k in order}


WEIGHTINGS = ("uniform", "pairs")


def stratified_correlations(
    df,
    measure_col: str | Sequence[str],
    target_col: str,
    group_col: str | Sequence[str] = "alpha",
    weighting: str = "uniform",
    num_resamples: int = 2000,
    confidence: float = 0.95,
    rng: RngLike = 0,
):
    """Rank correlations of measure(s) with a target, overall and within groups (stratified).

    A group is a set of rows with equal `group_col` value(s) (e.g. one alpha: its seeds). The
    coefficient within a group measures whether the measure ranks runs correctly when the group
    variable cannot do the work. A measure can correlate with the target overall only through
    the group variable (both move with alpha) and not at all, or negatively, within groups: the
    overall and the stratified coefficients differ then (Simpson's paradox).

    This is *not* Jiang et al.'s (2020) granulated coefficient, whose cells hold every
    hyperparameter but one fixed and let that one vary: with groups = alpha, the cells here let
    only the seed vary, so the result is Jiang's psi for the seed axis alone.
    `granulated_kendall` computes theirs.

    Stratified coefficient: psi = sum_g w_g tau_g / sum_g w_g over the groups g
    whose tau_g is defined (>= 2 finite pairs, neither variable constant), with
    w_g = 1 ("uniform", Jiang et al.'s plain mean over cells) or
    w_g = n_g (n_g - 1) / 2, the number of pairs ("pairs": every pair of runs
    in the same cell counts once, so larger cells weigh more). The same for
    Spearman's rho. Its interval resamples rows within each group
    (stratified bootstrap) and averages the groups' replicates.

    Returns:
        A DataFrame with one row per measure x scope: scope "overall" (all rows),
        "stratified" (the weighted mean over groups) and "group" (one row per
        group, its value in `group_value`). Columns: measure, target, scope,
        group_col, group_value, n (pairs used), num_groups (groups averaged; for
        a group row 1, or 0 where its coefficient is undefined),
        kendall_tau(_low, _high), kendall_p, spearman_rho(_low, _high), spearman_p
        (p-values only for "overall" and "group").
    """
    import pandas as pd

    _check_resampling(num_resamples, confidence)
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    measures = [measure_col] if isinstance(measure_col, str) else list(measure_col)
    groups_by = [group_col] if isinstance(group_col, str) else list(group_col)
    if not measures:
        raise ValueError("no measure column given")
    missing = sorted(set(measures + [target_col] + groups_by) - set(df.columns))
    if missing:
        raise ValueError(f"columns {missing} are not in the table; columns: {list(df.columns)}")
    if len(df) == 0:
        raise ValueError("the table is empty")
    gen = as_generator(rng)
    group_label = ",".join(groups_by)

    rows = []
    for measure in measures:
        base = {"measure": measure, "target": target_col, "group_col": group_label}
        x_all, y_all = _finite_pairs(df[measure].to_numpy(), df[target_col].to_numpy())
        if x_all.size >= 3:
            rows.append({**base, "scope": "overall", "group_value": None, "num_groups": np.nan,
                         **rank_correlations(x_all, y_all, num_resamples, confidence, gen)})
        else:
            rows.append({**base, "scope": "overall", "group_value": None, "n": int(x_all.size),
                         "num_groups": np.nan})

        reps = {"kendall_tau": [], "spearman_rho": []}
        points = {"kendall_tau": [], "spearman_rho": []}
        weights, n_used = [], 0
        for value, sub in df.groupby(groups_by, sort=True, dropna=False):
            x, y = _finite_pairs(sub[measure].to_numpy(), sub[target_col].to_numpy())
            group_value = value[0] if len(groups_by) == 1 else tuple(value)
            row = {**base, "scope": "group", "group_value": group_value, "n": int(x.size), "num_groups": 1}
            if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
                rows.append({**row, "num_groups": 0})  # undefined here; left out of the average
                continue
            row.update(_scipy_correlations(x, y))
            idx = bootstrap_indices(x.size, num_resamples, gen)
            for name, fn in (("kendall_tau", kendall_tau_b), ("spearman_rho", spearman_rho)):
                r = fn(x[idx], y[idx])
                row[f"{name}_low"], row[f"{name}_high"] = map(float, percentile_interval(r, confidence))
                reps[name].append(r)
                points[name].append(row[name])
            weights.append(1.0 if weighting == "uniform" else x.size * (x.size - 1) / 2.0)
            n_used += x.size
            rows.append(row)

        gran = {**base, "scope": "stratified", "group_value": None, "n": n_used, "num_groups": len(weights)}
        if weights:
            w = np.asarray(weights)
            for name in ("kendall_tau", "spearman_rho"):
                gran[name] = float(np.dot(w, points[name]) / w.sum())
                r = np.stack(reps[name])  # (groups, B); a NaN replicate leaves that group out
                ok = ~np.isnan(r)
                wsum = (w[:, None] * ok).sum(0)
                mean = np.divide((w[:, None] * np.where(ok, r, 0.0)).sum(0), wsum,
                                 out=np.full(wsum.shape, np.nan), where=wsum > 0)
                gran[f"{name}_low"], gran[f"{name}_high"] = map(float, percentile_interval(mean, confidence))
        rows.append(gran)

    columns = ["measure", "target", "scope", "group_col", "group_value", "n", "num_groups",
               "kendall_tau", "kendall_tau_low", "kendall_tau_high", "kendall_p",
               "spearman_rho", "spearman_rho_low", "spearman_rho_high", "spearman_p"]
    out = pd.DataFrame(rows).reindex(columns=columns)
    scope_order = {"overall": 0, "stratified": 1, "group": 2}
    out = out.assign(_s=out["scope"].map(scope_order), _m=out["measure"].map(measures.index))
    return out.sort_values(["_m", "_s"], kind="stable").drop(columns=["_s", "_m"]).reset_index(drop=True)


# ---------------------------------------------------------------------------
# Jiang et al.'s granulated coefficient
# ---------------------------------------------------------------------------
def _kendall_tau_b_nan(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b along the last axis, vectorised over leading axes, pairs with a non-finite
    x or y left out (a missing run); NaN where fewer than 2 pairs remain or a variable is constant."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = np.where(ok, x, 0.0), np.where(ok, y, 0.0)
    n = x.shape[-1]
    iu, ju = np.triu_indices(n, k=1)
    both = ok[..., iu] & ok[..., ju]
    s = np.sign(x[..., iu] - x[..., ju]) * both
    t = np.sign(y[..., iu] - y[..., ju]) * both
    denom = np.sqrt(np.abs(s).sum(-1) * np.abs(t).sum(-1))
    num = (s * t).sum(-1)
    return np.divide(num, denom, out=np.full(num.shape, np.nan), where=denom > 0)


def _nanmean_last(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the non-NaN entries; NaN where there is none (no warning)."""
    defined = ~np.isnan(x)
    count = defined.sum(-1)
    total = np.where(defined, x, 0.0).sum(-1)
    return np.divide(total, count, out=np.full(np.shape(total), np.nan), where=count > 0)


def _psi(grid_x: np.ndarray, grid_y: np.ndarray, axis: int, lead: int = 0) -> np.ndarray:
    """psi along one grid axis: the mean tau over the cells (every other axis fixed) where it is
    defined. The first `lead` axes of the grids are kept (bootstrap replicates)."""
    taus = _kendall_tau_b_nan(np.moveaxis(grid_x, axis, -1), np.moveaxis(grid_y, axis, -1))
    return _nanmean_last(taus.reshape(*taus.shape[:lead], -1))


def granulated_kendall(
    table,
    measure: str,
    target: str,
    axes: Sequence[str],
    cluster: str | None = None,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    rng: RngLike = 0,
):
    """Jiang et al.'s (2020) granulated Kendall coefficient of `measure` with `target`.

    The runs of `table` form a grid over `axes` (one row per combination; combinations that are
    missing, or whose measure or target is not finite, are left out of the cells they belong
    to). For axis i, a *cell* holds every other axis fixed and lets axis i vary; ψ_i is the mean of
    Kendall's tau-b over the cells where it is defined (at least 2 runs, neither variable
    constant), and Ψ is the mean of the ψ_i ("Fantastic generalization measures and where to find
    them", eq. 4-5). With axes (alpha, seed), ψ_alpha asks whether the measure ranks the runs of
    one seed across alpha, and ψ_seed whether it ranks the runs of one alpha across seeds (the
    within-alpha, stratified coefficient).

    Intervals: percentile bootstrap over the levels of `cluster` (default: "seed" when it is an
    axis, else the last axis), drawn with replacement and relabelled, so that a level drawn twice
    forms two cells; every ψ and Ψ of one resample comes from the same draw.

    Returns:
        A DataFrame with one row per axis (`scope` = the axis) and a row `scope` = "Psi": measure,
        target, scope, num_cells (cells with a defined tau), psi, psi_low, psi_high.
    """
    import pandas as pd

    _check_resampling(num_resamples, confidence)
    axes = list(axes)
    if not axes:
        raise ValueError("granulated_kendall needs at least one axis")
    missing = sorted(set(axes + [measure, target]) - set(table.columns))
    if missing:
        raise ValueError(f"columns {missing} are not in the table; columns: {list(table.columns)}")
    if table.duplicated(axes).any():
        raise ValueError(f"rows are not unique over the axes {axes}: one run per combination is expected")
    cluster = cluster or ("seed" if "seed" in axes else axes[-1])
    if cluster not in axes:
        raise ValueError(f"cluster {cluster!r} must be one of the axes {axes}")
    levels = [np.sort(table[a].unique()) for a in axes]
    shape = tuple(len(v) for v in levels)
    index = tuple(np.searchsorted(v, table[a].to_numpy()) for v, a in zip(levels, axes))
    grid_x, grid_y = np.full(shape, np.nan), np.full(shape, np.nan)
    grid_x[index] = table[measure].to_numpy(dtype=float)
    grid_y[index] = table[target].to_numpy(dtype=float)

    def cells(a: int) -> int:
        taus = _kendall_tau_b_nan(np.moveaxis(grid_x, a, -1), np.moveaxis(grid_y, a, -1))
        return int(np.sum(~np.isnan(taus)))

    point = np.array([_psi(grid_x, grid_y, a) for a in range(len(axes))])
    c = axes.index(cluster)
    draw = bootstrap_indices(shape[c], num_resamples, rng)  # (B, levels of the cluster axis)
    rep_x = np.moveaxis(np.take(grid_x, draw, axis=c), c, 0)  # (B, ...grid with the cluster resampled)
    rep_y = np.moveaxis(np.take(grid_y, draw, axis=c), c, 0)
    reps = np.stack([_psi(rep_x, rep_y, a + 1, lead=1) for a in range(len(axes))])  # (axes, B)
    rows = []
    for a, name in enumerate(axes):
        low, high = percentile_interval(reps[a], confidence)
        rows.append({"measure": measure, "target": target, "scope": name, "num_cells": cells(a),
                     "psi": float(point[a]), "psi_low": float(low), "psi_high": float(high)})
    low, high = percentile_interval(_nanmean_last(reps.T), confidence)
    rows.append({"measure": measure, "target": target, "scope": "Psi", "num_cells": sum(r["num_cells"] for r in rows),
                 "psi": float(_nanmean_last(point)),
                 "psi_low": float(low), "psi_high": float(high)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Seed-level uncertainty: the hierarchical bootstrap and a trend test
# ---------------------------------------------------------------------------
def hierarchical_bootstrap(
    data: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    num_resamples: int = 2000,
    confidence: float = 0.95,
    rng: RngLike = 0,
) -> ConfidenceInterval:
    """Two-level percentile bootstrap: clusters (seeds) with replacement, then items (episodes)
    with replacement within each drawn cluster.

    Args:
        data: shape (clusters, items, ...): e.g. (seeds, episodes, 2) for paired reference and
            perturbed returns; every cluster has the same number of items (NaN-free).
        statistic: maps an array of shape (..., clusters, items, ...) to shape (...): it reduces
            the cluster and item axes (and any trailing ones), so all B resamples go through one
            call, and the estimate is `statistic(data)`.
    Returns:
        ConfidenceInterval(estimate, low, high). Resampling the clusters carries the
        between-seed spread into the interval, which a bootstrap over pooled items misses
        (tests/test_stats.py checks the coverage on a simulated two-level model).
    """
    _check_resampling(num_resamples, confidence)
    data = np.asarray(data, dtype=float)
    if data.ndim < 2 or data.shape[0] < 1 or data.shape[1] < 1:
        raise ValueError(f"data must have shape (clusters, items, ...), got {data.shape}")
    gen = as_generator(rng)
    s, n = data.shape[:2]
    clusters = gen.integers(0, s, size=(int(num_resamples), s))
    items = gen.integers(0, n, size=(int(num_resamples), s, n))
    replicates = np.asarray(statistic(data[clusters[..., None], items]), dtype=float)
    low, high = percentile_interval(replicates, confidence)
    return ConfidenceInterval(float(statistic(data)), float(low), float(high))


def kendall_trend(
    table,
    x: str,
    y: str,
    cluster: str = "seed",
    num_resamples: int = 2000,
    confidence: float = 0.95,
    rng: RngLike = 0,
) -> dict[str, float]:
    """Kendall's tau-b between a varied factor `x` (e.g. alpha) and a per-run value `y` (e.g. a
    seed's excess-risk rate), with a percentile interval from resampling whole clusters (every
    run of a drawn seed comes along: seeds are shared across alpha, so their runs are not
    independent). Rows with a non-finite x or y are left out.

    Returns:
        {"n", "num_clusters", "kendall_tau", "kendall_tau_low", "kendall_tau_high", "kendall_p"}
        (p: scipy's, which assumes independent pairs; the interval does not).
    """
    _check_resampling(num_resamples, confidence)
    missing = sorted({x, y, cluster} - set(table.columns))
    if missing:
        raise ValueError(f"columns {missing} are not in the table; columns: {list(table.columns)}")
    df = table[np.isfinite(table[x].to_numpy(float)) & np.isfinite(table[y].to_numpy(float))]
    if len(df) < 3:
        raise ValueError(f"a trend needs at least 3 finite rows, got {len(df)}")
    labels, codes = np.unique(df[cluster].to_numpy(), return_inverse=True)
    xs, ys = df[x].to_numpy(float), df[y].to_numpy(float)
    members = [np.flatnonzero(codes == c) for c in range(labels.size)]
    sizes = {m.size for m in members}
    point = _scipy_correlations(xs, ys)
    draw = bootstrap_indices(labels.size, num_resamples, rng)
    if len(sizes) == 1:  # every cluster has the same runs: one vectorised call
        rows = np.stack(members)[draw].reshape(int(num_resamples), -1)
        reps = kendall_tau_b(xs[rows], ys[rows])
    else:
        reps = np.array([kendall_tau_b(xs[np.concatenate([members[c] for c in d])],
                                       ys[np.concatenate([members[c] for c in d])]) for d in draw])
    low, high = percentile_interval(reps, confidence)
    return {"n": int(len(df)), "num_clusters": int(labels.size), "kendall_tau": point["kendall_tau"],
            "kendall_tau_low": float(low), "kendall_tau_high": float(high), "kendall_p": point["kendall_p"]}

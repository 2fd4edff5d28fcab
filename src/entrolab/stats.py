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


def granulated_correlations(
    df,
    measure_col: str | Sequence[str],
    target_col: str,
    group_col: str | Sequence[str] = "alpha",
    weighting: str = "uniform",
    num_resamples: int = 2000,
    confidence: float = 0.95,
    rng: RngLike = 0,
):
    """Rank correlations of measure(s) with a target, overall and within groups.

    After Jiang et al. (2020), "Fantastic generalization measures and where to
    find them", whose granulated coefficient averages Kendall's tau over the
    cells in which all hyperparameters but one are held fixed: here a cell is
    a group of rows with equal `group_col` value(s), and the coefficient within
    the cell measures whether the measure ranks runs correctly when the group
    variable cannot do the work. A measure can correlate with the target
    overall only through the group variable (both move with alpha) and
    not at all, or negatively, within groups: the overall and the granulated
    coefficients differ then (Simpson's paradox).

    Granulated coefficient: psi = sum_g w_g tau_g / sum_g w_g over the groups g
    whose tau_g is defined (>= 2 finite pairs, neither variable constant), with
    w_g = 1 ("uniform", Jiang et al.'s plain mean over cells) or
    w_g = n_g (n_g - 1) / 2, the number of pairs ("pairs": every pair of runs
    in the same cell counts once, so larger cells weigh more). The same for
    Spearman's rho. Its interval resamples rows within each group
    (stratified bootstrap) and averages the groups' replicates.

    Returns:
        A DataFrame with one row per measure x scope: scope "overall" (all rows),
        "granulated" (the weighted mean over groups) and "group" (one row per
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

        gran = {**base, "scope": "granulated", "group_value": None, "n": n_used, "num_groups": len(weights)}
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
    scope_order = {"overall": 0, "granulated": 1, "group": 2}
    out = out.assign(_s=out["scope"].map(scope_order), _m=out["measure"].map(measures.index))
    return out.sort_values(["_m", "_s"], kind="stable").drop(columns=["_s", "_m"]).reset_index(drop=True)

"""entrolab.stats against scipy and against answers known by construction."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from entrolab.stats import (
    bootstrap_ci,
    stratified_correlations,
    iqm,
    kendall_tau_b,
    percentile_interval,
    rank_correlations,
    spearman_rho,
)


def test_vectorised_tau_b_and_rho_match_scipy_with_ties():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, size=(30, 12)).astype(float)  # many ties
    y = rng.integers(0, 4, size=(30, 12)).astype(float) + 0.5 * x
    tau = kendall_tau_b(x, y, max_elements=200)  # forces several row blocks
    rho = spearman_rho(x, y)
    for i in range(x.shape[0]):
        assert tau[i] == pytest.approx(scipy.stats.kendalltau(x[i], y[i], variant="b").statistic, abs=1e-12)
        assert rho[i] == pytest.approx(scipy.stats.spearmanr(x[i], y[i]).statistic, abs=1e-12)
    assert np.isnan(kendall_tau_b(np.ones(5), np.arange(5.0)))
    assert np.isnan(spearman_rho(np.arange(5.0), np.ones(5)))


def test_rank_correlations_match_scipy_and_bracket_the_estimate():
    rng = np.random.default_rng(2)
    x = rng.normal(size=60)
    y = x + rng.normal(size=60)
    y[:5] = np.round(y[:5])  # a few ties
    out = rank_correlations(x, y, num_resamples=1000, rng=3)
    kt = scipy.stats.kendalltau(x, y, variant="b")
    sr = scipy.stats.spearmanr(x, y)
    assert out["n"] == 60
    assert out["kendall_tau"] == pytest.approx(kt.statistic) and out["kendall_p"] == pytest.approx(kt.pvalue)
    assert out["spearman_rho"] == pytest.approx(sr.statistic) and out["spearman_p"] == pytest.approx(sr.pvalue)
    for name in ("kendall_tau", "spearman_rho"):
        assert out[f"{name}_low"] < out[name] < out[f"{name}_high"]
    assert out["kendall_tau_low"] > 0  # a clear positive association
    # non-finite pairs are dropped, and n says so
    x2, y2 = np.append(x, np.nan), np.append(y, 1.0)
    assert rank_correlations(x2, y2, num_resamples=10)["n"] == 60
    # reproducible with a seed
    assert rank_correlations(x, y, num_resamples=200, rng=7) == rank_correlations(x, y, num_resamples=200, rng=7)


def test_rank_correlations_bad_input():
    with pytest.raises(ValueError, match="same length"):
        rank_correlations([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 3"):
        rank_correlations([1, 2, np.nan], [1, 2, 3])
    with pytest.raises(ValueError, match="num_resamples"):
        rank_correlations([1, 2, 3], [1, 2, 3], num_resamples=0)


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap():
    x = np.random.default_rng(4).exponential(size=80)
    ours = bootstrap_ci(x, np.mean, num_resamples=20000, rng=5)
    ref = scipy.stats.bootstrap((x,), np.mean, n_resamples=20000, method="percentile",
                                rng=np.random.default_rng(6)).confidence_interval
    assert ours.estimate == pytest.approx(x.mean())
    # Monte Carlo error of a 2.5% quantile over 20000 resamples: well under 2% of the width
    width = ref.high - ref.low
    assert ours.low == pytest.approx(ref.low, abs=0.03 * width)
    assert ours.high == pytest.approx(ref.high, abs=0.03 * width)
    med = bootstrap_ci(x, np.median, num_resamples=500, rng=0)
    assert med.low <= np.median(x) <= med.high


def test_bootstrap_ci_coverage_and_width_shrink_with_n():
    rng = np.random.default_rng(8)
    covered = 0
    num_trials = 300
    for t in range(num_trials):
        ci = bootstrap_ci(rng.normal(1.0, 2.0, size=40), num_resamples=500, rng=t)
        covered += ci.low <= 1.0 <= ci.high
    # nominal 0.95; the percentile interval of a mean undercovers a little at n = 40
    assert 0.88 <= covered / num_trials <= 0.99
    widths = {}
    for n in (100, 1600):
        ci = bootstrap_ci(rng.normal(size=n), num_resamples=2000, rng=n)
        assert ci.low <= 0.0 <= ci.high or abs(ci.estimate) < 4 / np.sqrt(n)
        widths[n] = ci.high - ci.low
    # width ~ 2 * 1.96 / sqrt(n): a factor 4 between n = 100 and 1600
    assert widths[1600] == pytest.approx(widths[100] / 4, rel=0.2)
    assert widths[100] == pytest.approx(2 * 1.96 / 10, rel=0.15)


def test_percentile_interval_ignores_nan_replicates():
    reps = np.array([[np.nan, np.nan, np.nan], [1.0, np.nan, 3.0]]).T
    low, high = percentile_interval(reps, 0.5, axis=0)
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert low[1] == pytest.approx(1.5) and high[1] == pytest.approx(2.5)


def test_bootstrap_ci_bad_input():
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_ci(np.ones((3, 3)))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=1.5)


def test_iqm_is_the_mean_of_the_middle_half():
    x = np.array([-100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1000.0])
    assert iqm(x) == pytest.approx(np.mean(np.sort(x)[2:6]))
    assert iqm(np.arange(100)) == pytest.approx(49.5)
    np.testing.assert_allclose(iqm(np.stack([x, 2 * x]), axis=1), [iqm(x), 2 * iqm(x)])


def simpson_table():
    """Three alpha groups: within each, the target rises with the measure (tau = +1);
    across groups the measure rises and the target falls, so overall tau < 0."""
    rows = []
    for g, n in zip(range(3), (5, 5, 8)):
        for i in range(n):
            rows.append({"alpha": 0.1 * g, "measure": i + 3.0 * g, "robust": i - 20.0 * g,
                         "noise": float((7 * i + 3 * g) % 5)})
    return pd.DataFrame(rows)


def test_stratified_correlation_separates_within_group_from_overall():
    df = simpson_table()
    out = stratified_correlations(df, ["measure", "noise"], "robust", "alpha", num_resamples=300)
    m = out[out["measure"] == "measure"].set_index("scope", drop=False)
    overall = m.loc["overall"]
    gran = m.loc["stratified"]
    assert overall["kendall_tau"] == pytest.approx(
        scipy.stats.kendalltau(df["measure"], df["robust"]).statistic)
    assert overall["kendall_tau"] < -0.3 and overall["spearman_rho"] < -0.3
    assert gran["kendall_tau"] == pytest.approx(1.0) and gran["spearman_rho"] == pytest.approx(1.0)
    assert gran["num_groups"] == 3 and gran["n"] == len(df)
    assert gran["kendall_tau_low"] == pytest.approx(1.0)  # every within-group resample is concordant
    groups = out[(out["measure"] == "measure") & (out["scope"] == "group")]
    assert len(groups) == 3 and np.allclose(groups["kendall_tau"], 1.0)
    assert sorted(groups["group_value"]) == pytest.approx([0.0, 0.1, 0.2])
    # one row per measure x scope (and one per group)
    assert out["scope"].value_counts().to_dict() == {"overall": 2, "stratified": 2, "group": 6}


def test_stratified_weighting():
    df = simpson_table()
    df.loc[df["alpha"] == 0.2, "robust"] *= -1  # the 8-row group now has tau = -1
    uni = stratified_correlations(df, "measure", "robust", num_resamples=50)
    pairs = stratified_correlations(df, "measure", "robust", weighting="pairs", num_resamples=50)
    tau_u = uni.loc[uni["scope"] == "stratified", "kendall_tau"].item()
    tau_p = pairs.loc[pairs["scope"] == "stratified", "kendall_tau"].item()
    assert tau_u == pytest.approx((1 + 1 - 1) / 3)
    assert tau_p == pytest.approx((10 + 10 - 28) / (10 + 10 + 28))  # weights n(n-1)/2


def test_stratified_constant_group_is_left_out_and_bad_input():
    df = simpson_table()
    df.loc[df["alpha"] == 0.0, "measure"] = 1.0  # constant: tau undefined there
    out = stratified_correlations(df, "measure", "robust", num_resamples=50)
    gran = out[out["scope"] == "stratified"].iloc[0]
    assert gran["num_groups"] == 2 and gran["kendall_tau"] == pytest.approx(1.0)
    assert np.isnan(out[(out["scope"] == "group") & (out["group_value"] == 0.0)]["kendall_tau"].item())
    with pytest.raises(ValueError, match="not in the table"):
        stratified_correlations(df, "nope", "robust")
    with pytest.raises(ValueError, match="weighting"):
        stratified_correlations(df, "measure", "robust", weighting="size")
    with pytest.raises(ValueError, match="empty"):
        stratified_correlations(df.iloc[:0], "measure", "robust")


# ---------------------------------------------------------------------------
# Jiang et al.'s granulated coefficient
# ---------------------------------------------------------------------------
def _hand_table():
    """2 seeds x 3 alphas; target = alpha index + 10 seed. Measure, by seed: (0, 1, 2) and (0, 2, 1).
    Across alpha: seed 0 tau = 1, seed 1 tau = 1/3 (one discordant pair of 3) -> psi_alpha = 2/3.
    Across seed: alpha 0 measure constant (undefined), alpha 1 up (+1), alpha 2 down (-1) -> psi_seed = 0.
    Psi = 1/3."""
    import pandas as pd

    rows = []
    for seed, ms in ((0, (0, 1, 2)), (1, (0, 2, 1))):
        for i, (alpha, m) in enumerate(zip((0.0, 0.01, 0.1), ms)):
            rows.append({"alpha": alpha, "seed": seed, "m": float(m), "t": float(i + 10 * seed)})
    return pd.DataFrame(rows)


def test_granulated_kendall_matches_a_hand_computation():
    from entrolab.stats import granulated_kendall

    out = granulated_kendall(_hand_table(), "m", "t", ["alpha", "seed"], num_resamples=200).set_index("scope")
    assert out.loc["alpha", "psi"] == pytest.approx(2 / 3)
    assert out.loc["seed", "psi"] == pytest.approx(0.0)
    assert out.loc["Psi", "psi"] == pytest.approx(1 / 3)
    assert out.loc["alpha", "num_cells"] == 2 and out.loc["seed", "num_cells"] == 2  # alpha 0's cell is undefined


def test_granulated_kendall_against_scipy_cell_by_cell_on_a_random_grid_with_gaps():
    import pandas as pd

    from entrolab.stats import granulated_kendall

    rng = np.random.default_rng(1)
    rows = [{"variant": v, "alpha": a, "seed": s, "m": rng.normal(), "t": rng.normal() + 0.5 * a}
            for v in ("clip", "tanh") for a in (0.0, 0.01, 0.1, 1.0) for s in range(5)]
    df = pd.DataFrame(rows)
    df.loc[[3, 17], "m"] = np.nan  # a failed measure leaves its run out of its cells
    df = df.drop(index=[25]).reset_index(drop=True)  # and a missing run
    axes = ["variant", "alpha", "seed"]
    out = granulated_kendall(df, "m", "t", axes, num_resamples=100).set_index("scope")
    psis = []
    for axis in axes:
        taus = []
        for _, cell in df.groupby([a for a in axes if a != axis]):
            cell = cell[np.isfinite(cell["m"]) & np.isfinite(cell["t"])]
            if len(cell) >= 2 and cell["m"].nunique() > 1 and cell["t"].nunique() > 1:
                taus.append(scipy.stats.kendalltau(cell["m"], cell["t"], variant="b").statistic)
        assert out.loc[axis, "psi"] == pytest.approx(np.mean(taus), abs=1e-12), axis
        assert out.loc[axis, "num_cells"] == len(taus)
        psis.append(np.mean(taus))
    assert out.loc["Psi", "psi"] == pytest.approx(np.mean(psis), abs=1e-12)
    for scope in (*axes, "Psi"):
        assert out.loc[scope, "psi_low"] < out.loc[scope, "psi"] < out.loc[scope, "psi_high"]


def test_granulated_kendall_bootstraps_over_seeds_and_refuses_repeated_runs():
    from entrolab.stats import granulated_kendall

    df = _hand_table()
    # resampling seeds: psi_alpha's replicates are means of the two seeds' taus (1 and 1/3) drawn with
    # replacement, so they take only the values 1, 2/3 and 1/3
    out = granulated_kendall(df, "m", "t", ["alpha", "seed"], num_resamples=400).set_index("scope")
    assert out.loc["alpha", "psi_low"] == pytest.approx(1 / 3) and out.loc["alpha", "psi_high"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not unique over the axes"):
        granulated_kendall(df, "m", "t", ["alpha"])
    with pytest.raises(ValueError, match="not in the table"):
        granulated_kendall(df, "m", "t", ["alpha", "width"])


# ---------------------------------------------------------------------------
# Seed-level uncertainty
# ---------------------------------------------------------------------------
def test_hierarchical_bootstrap_covers_a_two_level_model_where_pooling_does_not():
    """Seeds with their own means (sd 1) and episodes around them (sd 1), 12 seeds x 20 episodes:
    the hierarchical interval of the grand mean covers the true mean close to 95% of the time (90%
    here: a percentile bootstrap over 12 clusters is a little narrow); a bootstrap over the pooled
    episodes ignores the between-seed spread and covers less than half the time (42%)."""
    from entrolab.stats import hierarchical_bootstrap

    rng = np.random.default_rng(0)
    hits_h, hits_pooled, sims = 0, 0, 300
    for _ in range(sims):
        data = rng.normal(0.0, 1.0, size=(12, 1)) + rng.normal(0.0, 1.0, size=(12, 20))
        ci = hierarchical_bootstrap(data, lambda a: a.mean(axis=(-2, -1)), num_resamples=400, rng=rng)
        hits_h += ci.low <= 0.0 <= ci.high
        pooled = bootstrap_ci(data.ravel(), num_resamples=400, rng=rng)
        hits_pooled += pooled.low <= 0.0 <= pooled.high
    assert 0.85 <= hits_h / sims <= 0.99
    assert hits_pooled / sims < 0.6


def test_hierarchical_bootstrap_keeps_pairs_together_and_checks_its_input():
    from entrolab.stats import hierarchical_bootstrap

    # paired (reference, perturbed) returns whose difference is exactly 1 in every episode: every
    # resample keeps the pairs, so the interval of the mean difference is the point
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(5, 10))
    data = np.stack([ref, ref - 1.0], axis=-1)
    ci = hierarchical_bootstrap(data, lambda a: (a[..., 0] - a[..., 1]).mean(axis=(-2, -1)), num_resamples=200)
    assert ci.estimate == pytest.approx(1.0) and ci.low == pytest.approx(1.0) and ci.high == pytest.approx(1.0)
    with pytest.raises(ValueError, match="clusters, items"):
        hierarchical_bootstrap(np.ones(4), np.mean)


def test_kendall_trend_against_scipy_and_a_loop_over_seed_resamples():
    from entrolab.stats import bootstrap_indices, kendall_tau_b, kendall_trend, percentile_interval

    rng = np.random.default_rng(3)
    alphas = [0.0, 0.01, 0.1, 1.0]
    df = pd.DataFrame([{"alpha": a, "seed": s, "rate": 0.3 * i + rng.normal() + 2.0 * (s % 2)}
                       for i, a in enumerate(alphas) for s in range(6)])
    out = kendall_trend(df, "alpha", "rate", num_resamples=300, rng=7)
    ref = scipy.stats.kendalltau(df["alpha"], df["rate"], variant="b")
    assert out["kendall_tau"] == pytest.approx(ref.statistic) and out["kendall_p"] == pytest.approx(ref.pvalue)
    assert out["n"] == 24 and out["num_clusters"] == 6
    reps = []
    for draw in bootstrap_indices(6, 300, 7):
        sub = pd.concat([df[df["seed"] == s] for s in draw])
        reps.append(kendall_tau_b(sub["alpha"].to_numpy(), sub["rate"].to_numpy()))
    low, high = percentile_interval(np.array(reps))
    assert out["kendall_tau_low"] == pytest.approx(low) and out["kendall_tau_high"] == pytest.approx(high)
    # a seed with a missing run takes the loop path: same definition
    uneven = kendall_trend(df.drop(index=[0]), "alpha", "rate", num_resamples=50)
    assert uneven["n"] == 23 and uneven["kendall_tau_low"] <= uneven["kendall_tau"] <= uneven["kendall_tau_high"]

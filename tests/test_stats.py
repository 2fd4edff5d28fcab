"""entrolab.stats against scipy and against answers known by construction."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from entrolab.stats import (
    bootstrap_ci,
    granulated_correlations,
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


def test_granulated_correlation_separates_within_group_from_overall():
    df = simpson_table()
    out = granulated_correlations(df, ["measure", "noise"], "robust", "alpha", num_resamples=300)
    m = out[out["measure"] == "measure"].set_index("scope", drop=False)
    overall = m.loc["overall"]
    gran = m.loc["granulated"]
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
    assert list(out["scope"].value_counts().sort_index()) == [2, 6, 2]


def test_granulated_weighting():
    df = simpson_table()
    df.loc[df["alpha"] == 0.2, "robust"] *= -1  # the 8-row group now has tau = -1
    uni = granulated_correlations(df, "measure", "robust", num_resamples=50)
    pairs = granulated_correlations(df, "measure", "robust", weighting="pairs", num_resamples=50)
    tau_u = uni.loc[uni["scope"] == "granulated", "kendall_tau"].item()
    tau_p = pairs.loc[pairs["scope"] == "granulated", "kendall_tau"].item()
    assert tau_u == pytest.approx((1 + 1 - 1) / 3)
    assert tau_p == pytest.approx((10 + 10 - 28) / (10 + 10 + 28))  # weights n(n-1)/2


def test_granulated_constant_group_is_left_out_and_bad_input():
    df = simpson_table()
    df.loc[df["alpha"] == 0.0, "measure"] = 1.0  # constant: tau undefined there
    out = granulated_correlations(df, "measure", "robust", num_resamples=50)
    gran = out[out["scope"] == "granulated"].iloc[0]
    assert gran["num_groups"] == 2 and gran["kendall_tau"] == pytest.approx(1.0)
    assert np.isnan(out[(out["scope"] == "group") & (out["group_value"] == 0.0)]["kendall_tau"].item())
    with pytest.raises(ValueError, match="not in the table"):
        granulated_correlations(df, "nope", "robust")
    with pytest.raises(ValueError, match="weighting"):
        granulated_correlations(df, "measure", "robust", weighting="size")
    with pytest.raises(ValueError, match="empty"):
        granulated_correlations(df.iloc[:0], "measure", "robust")

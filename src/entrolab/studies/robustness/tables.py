"""The tidy result tables of a robustness study, rebuilt from the published unit outputs.

`build_tables(study_dir)` writes ``tables/*.parquet`` (pandas, DuckDB and
pyarrow read them directly):

    runs.parquet          one row per policy: variant and its factors, alpha, seed,
                          training hyperparameters, final evaluation returns, checkpoint
    curves.parquet        learning curves: one row per policy x update
    returns.parquet       one row per policy x condition x mode: mean and std of the return
    episodes.parquet      one row per policy x condition x mode x episode
    excess_risk.parquet   one row per policy x condition x mode: R, R / |J0|, bootstrap CIs;
                          for observation noise also the noise in the network's input units
    complexity.parquet    one row per policy: norm-based measures, Lipschitz, sharpness,
                          Fisher-trace summaries (joined with the runs' factors)
    fisher_states.parquet one row per policy x visited state: the Fisher trace
    sharpness.parquet     one row per policy x sigma': the drop in return
    correlations.parquet  one row per measure x target x scope: Kendall's tau and
                          Spearman's rho with bootstrap CIs (overall, stratified by alpha
                          (and variant): the within-alpha mean, per alpha)
    granulated.parquet    one row per measure x target x axis: Jiang et al.'s granulated
                          Kendall psi per varied axis (variant, alpha, seed) and their mean Psi,
                          with intervals from a bootstrap over seeds
    alpha_rates.parquet   one row per variant x condition x mode x alpha: the excess-risk rate
                          averaged over seeds, with a hierarchical bootstrap interval (seeds,
                          then episodes), and the seeds' spread
    trends.parquet        one row per variant x condition x mode: Kendall's tau between alpha and
                          the policies' rates, with an interval from resampling whole seeds

Everything here is a pure function of the unit outputs (and a fixed
bootstrap seed), so rebuilding gives the same tables: an interrupted study
that is resumed ends with the same rows as one that was not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from entrolab.measures.robustness import excess_risk
from entrolab.stats import granulated_kendall, hierarchical_bootstrap, kendall_trend, stratified_correlations
from entrolab.study.tables import TABLES_DIR, concat_parquet, write_table
from entrolab.studies.robustness.config import RobustnessConfig
from entrolab.studies.robustness.schema import FACTORS, MEASURES, TABLES, policy_rates  # noqa: F401  (re-exported)
from entrolab.studies.robustness.units import plan


def _factors(config: RobustnessConfig) -> pd.DataFrame:
    norm = config.train.ppo_options().get("normalize_observations")
    rows = [{"normalize_observations": norm, **v, "hidden": "x".join(map(str, v["hidden"]))} for v in config.variants()]
    return pd.DataFrame(rows, columns=FACTORS)


def build_tables(study_dir: str | Path, config: RobustnessConfig, num_resamples: int | None = None) -> dict:
    study_dir = Path(study_dir)
    num_resamples = num_resamples or config.evaluate.bootstrap
    tables_dir = study_dir / TABLES_DIR
    tables_dir.mkdir(exist_ok=True)
    factors = _factors(config)
    variants = list(factors["variant"])

    runs, curves = [], []
    for v in variants:
        r = pd.read_parquet(study_dir / "train" / v / "runs.parquet")
        r["checkpoint"] = [str(Path("train") / v / c) for c in r["checkpoint"]]
        r.insert(0, "variant", v)
        runs.append(r)
        c = pd.read_parquet(study_dir / "train" / v / "metrics.parquet")
        c.insert(0, "variant", v)
        curves.append(c)
    runs = pd.concat(runs, ignore_index=True).merge(factors, on="variant", how="left")
    keys = runs[["variant", "run_id", "alpha", "seed"]]
    curves = pd.concat(curves, ignore_index=True)

    # the outputs of the units the config plans (never a stale output of an earlier config)
    planned = plan(config)
    ev = [study_dir / "units" / u.id for u in planned if u.kind == "evaluate"]
    ms = [study_dir / "units" / u.id for u in planned if u.kind == "measures"]
    returns = concat_parquet([d / "summary.parquet" for d in ev]).merge(keys, on=["variant", "run_id"])
    episodes = concat_parquet([d / "episodes.parquet" for d in ev]).merge(keys, on=["variant", "run_id"])
    order = ["variant", "family", "init", "mode", "alpha", "seed", "value"]
    returns = returns.sort_values(order, kind="stable").reset_index(drop=True)
    episodes = episodes.sort_values(order + ["episode"], kind="stable").reset_index(drop=True)

    risks = []
    for (variant, family), sub in episodes.groupby(["variant", "family"], sort=True):
        r = excess_risk(sub.drop(columns=["variant", "run_id", "alpha", "seed"]), num_resamples=num_resamples,
                        rng=0)
        r = r.merge(sub[["policy_index", "run_id"]].drop_duplicates(), on="policy_index")
        r.insert(0, "variant", variant)
        risks.append(r)
    risk = pd.concat(risks, ignore_index=True).merge(keys, on=["variant", "run_id"])
    risk = risk.sort_values(order, kind="stable").reset_index(drop=True)

    complexity = concat_parquet([d / "complexity.parquet" for d in ms])
    complexity = complexity.merge(runs[["variant", "run_id", "alpha", "seed"] + FACTORS[1:]], on=["variant", "run_id"])
    fisher_states = concat_parquet([d / "fisher_states.parquet" for d in ms]).merge(keys, on=["variant", "run_id"])
    sharp = concat_parquet([d / "sharpness.parquet" for d in ms]).merge(keys, on=["variant", "run_id"])
    complexity = complexity.sort_values(["variant", "alpha", "seed"], kind="stable").reset_index(drop=True)
    risk = with_network_units(risk, complexity)

    # runs whose training diverged (frozen at their last finite state): kept in runs/excess_risk/
    # complexity, left out of every statistic across policies (the report says how many)
    bad = set()
    if "diverged_at_step" in runs.columns:
        bad = set(zip(*runs.loc[runs["diverged_at_step"].notna(), ["variant", "run_id"]].to_numpy().T))

    def healthy(df):
        return df[[(v, r) not in bad for v, r in zip(df["variant"], df["run_id"])]] if bad else df

    correlations = correlation_table(healthy(complexity), healthy(risk), num_resamples)
    granulated = granulated_table(healthy(complexity), healthy(risk), num_resamples)
    alpha_rates, trends = trend_tables(healthy(episodes), healthy(risk), num_resamples)
    out = dict(runs=runs, curves=curves, returns=returns, episodes=episodes, excess_risk=risk,
               complexity=complexity, fisher_states=fisher_states, sharpness=sharp, correlations=correlations,
               granulated=granulated, alpha_rates=alpha_rates, trends=trends)
    for name, df in out.items():
        write_table(df, tables_dir / f"{name}.parquet")
    return out


def _conditions(complexity: pd.DataFrame, risk: pd.DataFrame):
    """(condition, measures, table) per (family, param, value, mode) with at least 3 policies:
    each policy's rate there joined with its measures."""
    rates = policy_rates(risk)
    measures = measure_columns(complexity)
    for key, sub in rates.groupby(["family", "param", "value", "mode"], sort=True):
        df = sub.merge(complexity[["variant", "run_id"] + measures], on=["variant", "run_id"])
        if len(df) >= 3:
            yield dict(zip(("family", "param", "value", "mode"), key)), measures, df


def _with_condition(df: pd.DataFrame, condition: dict) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({k: [v] * len(df) for k, v in condition.items()}, index=df.index), df], axis=1)


def correlation_table(complexity: pd.DataFrame, risk: pd.DataFrame, num_resamples: int) -> pd.DataFrame:
    frames = []
    for condition, measures, df in _conditions(complexity, risk):
        # stratified: alpha held fixed (and the training variant, when a study has several)
        group_col = ["variant", "alpha"] if df["variant"].nunique() > 1 else "alpha"
        c = stratified_correlations(df, measures, "excess_risk_rate", group_col=group_col,
                                    num_resamples=num_resamples, rng=0)
        c["group_value"] = [None if v is None else str(v) for v in c["group_value"]]
        frames.append(_with_condition(c, condition))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def granulated_table(complexity: pd.DataFrame, risk: pd.DataFrame, num_resamples: int) -> pd.DataFrame:
    """Jiang et al.'s psi per axis (variant when a study has several, alpha, seed) and Psi, for
    every measure and target; intervals from a bootstrap over seeds (`stats.granulated_kendall`)."""
    frames = []
    for condition, measures, df in _conditions(complexity, risk):
        axes = (["variant"] if df["variant"].nunique() > 1 else []) + ["alpha", "seed"]
        for measure in measures:
            g = granulated_kendall(df, measure, "excess_risk_rate", axes, num_resamples=num_resamples, rng=0)
            frames.append(_with_condition(g, condition))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


CONDITION = ["variant", "family", "param", "value", "mode"]


def _mean_rate(a: np.ndarray) -> np.ndarray:
    """(..., seeds, episodes, inits, 2) paired (reference, condition) returns -> the rate
    (J0 - J) / |J0| per seed and initial distribution, averaged over both (as `policy_rates`)."""
    ref, cond = a[..., 0], a[..., 1]  # (..., seeds, episodes, inits)
    r = (ref - cond).mean(axis=-2)  # R = the mean of the paired differences, (..., seeds, inits)
    return (r / np.abs(ref.mean(axis=-2))).mean(axis=(-2, -1))


def trend_tables(episodes: pd.DataFrame, risk: pd.DataFrame, num_resamples: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed-level uncertainty of the alpha trend (issue 11).

    alpha_rates: per condition and alpha, the rate averaged over seeds (and initial
    distributions) with a hierarchical bootstrap interval: seeds with replacement, then episodes
    with replacement within each seed, paired across reference and condition.
    trends: per condition, Kendall's tau between alpha and the per-policy rate with an interval
    from resampling whole seeds (`stats.kendall_trend`)."""
    rates = policy_rates(risk)
    ref = risk[np.isclose(risk["value"], risk["reference_value"])][
        ["variant", "run_id", "family", "param", "init", "mode", "value"]].rename(columns={"value": "reference_value"})
    ref = ref.drop_duplicates()
    ep = episodes.merge(ref, on=["variant", "run_id", "family", "param", "init", "mode"])
    is_ref = np.isclose(ep["value"], ep["reference_value"])
    base = ep[is_ref].drop(columns=["value"])
    paired = ep[~is_ref].merge(base[["variant", "run_id", "family", "param", "init", "mode", "episode", "return"]],
                               on=["variant", "run_id", "family", "param", "init", "mode", "episode"],
                               suffixes=("", "_reference"))
    rows = []
    for key, sub in paired.groupby(CONDITION + ["alpha"], sort=True):
        seeds, eps, inits = (np.unique(sub[c]) for c in ("seed", "episode", "init"))
        grid = np.full((seeds.size, eps.size, inits.size, 2), np.nan)
        idx = (np.searchsorted(seeds, sub["seed"]), np.searchsorted(eps, sub["episode"]),
               np.searchsorted(inits, sub["init"]))
        grid[idx + (0,)] = sub["return_reference"].to_numpy(float)
        grid[idx + (1,)] = sub["return"].to_numpy(float)
        row = dict(zip(CONDITION + ["alpha"], key))
        if np.isnan(grid).any():  # an unequal design: no hierarchical interval (never in a planned study)
            ci = (np.nan, np.nan, np.nan)
        else:
            ci = hierarchical_bootstrap(grid, _mean_rate, num_resamples=num_resamples, rng=0)
        per_seed = rates.merge(pd.DataFrame([row]), on=CONDITION + ["alpha"])["excess_risk_rate"]
        rows.append({**row, "num_seeds": int(seeds.size), "num_episodes": int(eps.size),
                     "rate": ci[0], "rate_low": ci[1], "rate_high": ci[2],
                     "seed_min": float(per_seed.min()), "seed_median": float(per_seed.median()),
                     "seed_max": float(per_seed.max())})
    alpha_rates = pd.DataFrame(rows)
    trends = []
    for key, sub in rates.groupby(CONDITION, sort=True):
        if sub["alpha"].nunique() < 2 or len(sub) < 3:
            continue
        trends.append({**dict(zip(CONDITION, key)),
                       **kendall_trend(sub, "alpha", "excess_risk_rate", "seed", num_resamples=num_resamples, rng=0)})
    return alpha_rates, pd.DataFrame(trends)


def measure_columns(complexity: pd.DataFrame) -> list[str]:
    """The measures correlated with robustness: `MEASURES` present in the table, then the
    worst-case action deviations of each configured budget."""
    return [m for m in MEASURES if m in complexity.columns] + sorted(
        c for c in complexity.columns if c.startswith("adversarial_deviation_mean_eps"))


def with_network_units(risk: pd.DataFrame, complexity: pd.DataFrame) -> pd.DataFrame:
    """`obs_noise_network_units`: an observation-noise std as the policy's network sees it after
    its observation normalisation, value x max_j 1 / std_j (`observation_scale`, the largest factor
    over the observation's coordinates); NaN for the other families and where it is not measured."""
    if "observation_scale" not in complexity.columns:
        return risk.assign(obs_noise_network_units=np.nan)
    scale = complexity[["variant", "run_id", "observation_scale"]]
    out = risk.merge(scale, on=["variant", "run_id"], how="left")
    units = np.where(out["family"] == "obs_noise", out["value"] * out["observation_scale"], np.nan)
    return out.drop(columns=["observation_scale"]).assign(obs_noise_network_units=units)

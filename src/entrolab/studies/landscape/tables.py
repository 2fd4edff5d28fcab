"""The tables of a landscape study, from its units' outputs (pure: the same outputs, the same tables).

    gridworld_runs      one row per schedule x tau x step size x initialisation: the final return,
                        the final regularised objective, the probability of reaching the better
                        goal first (p_best; reached_best = p_best > 0.5), converged, stable
    gridworld_summary   one row per schedule x tau x step size: the fraction of initialisations
                        reaching the better goal and the mean final return, each with a percentile
                        bootstrap interval over initialisations; the fractions stable and converged
    gridworld_curves    one row per run and recorded update: return, objective, grad_norm, tau_t
    probes              one row per probe direction x epsilon x (tau, init, point, objective)
    probe_classes       one row per (tau, init, point, objective, epsilon): the class of the point
                        and the fraction of directions with each label
    curvature           one row per (tau, init): the Hessian of the regularised objective at the
                        final policy: exact extreme eigenvalues and trace, Lanczos' and Hutchinson's
    interpolation       one row per (pair, tau, t): J_tau ("regularised") and J_0 ("return") along
                        the segment between two solutions that reached different goals
    policy_probes       ([policies]) one row per checkpoint x direction x epsilon: probes of the
                        sampled return of another study's trained policies
    policy_classes      one row per checkpoint x epsilon: the class, the label fractions, the mean
                        curvature projection and the noise; for a robustness study, its complexity
                        measures of the same policy (`RELATED`: Fisher trace, log std, sharpness)
    continuous_*        ([continuous]) REINFORCE's runs and learning curves (train_sweep's tables,
                        alpha = the fixed std), probes and classes at the init and final policies,
                        and J along segments between consecutive seeds' final policies, per std
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from entrolab.stats import bootstrap_ci
from entrolab.study.tables import TABLES_DIR, concat_parquet, write_table
from entrolab.studies.landscape.config import LandscapeConfig
from entrolab.studies.landscape.units import plan


def summarize_runs(runs: pd.DataFrame, num_resamples: int) -> pd.DataFrame:
    rows = []
    for (schedule, tau, step), sub in runs.groupby(["schedule", "tau", "step_size"], sort=True):
        best = sub["reached_best"].to_numpy(float)
        ret = sub["final_return"].to_numpy(float)
        b, b_lo, b_hi = bootstrap_ci(best, np.mean, num_resamples=num_resamples, rng=0)
        r, r_lo, r_hi = bootstrap_ci(ret, np.mean, num_resamples=num_resamples, rng=0)
        rows.append({"schedule": schedule, "tau": tau, "step_size": step, "n": len(sub),
                     "frac_best": b, "frac_best_low": b_lo, "frac_best_high": b_hi,
                     "mean_return": r, "mean_return_low": r_lo, "mean_return_high": r_hi,
                     "frac_stable": float(sub["stable"].mean()), "frac_converged": float(sub["converged"].mean())})
    return pd.DataFrame(rows)


RELATED = ("fisher_total_mean", "fisher_sensitivity_mean", "log_std", "sharpness_sigma", "spectral_product")


def with_complexity(classes: pd.DataFrame, other: Path) -> pd.DataFrame:
    """The probed study's complexity measures beside each checkpoint's probe summary (a robustness
    study's tables/complexity.parquet, matched by variant and run id read from the checkpoint path
    train/VARIANT/checkpoints/RUN), so that curvature can be related to the Fisher trace. Unchanged
    when the other study has no such table."""
    path = other / "tables" / "complexity.parquet"
    if not path.exists():
        return classes
    complexity = pd.read_parquet(path)
    cols = [c for c in RELATED if c in complexity.columns]
    keyed = classes.assign(variant=classes["checkpoint"].str.split("/").str[1],
                           run_id=classes["checkpoint"].str.split("/").str[-1])
    return keyed.merge(complexity[["variant", "run_id", *cols]], on=["variant", "run_id"], how="left")


def build_tables(study_dir: str | Path, config: LandscapeConfig, num_resamples: int | None = None) -> dict:
    study_dir = Path(study_dir)
    num_resamples = num_resamples or config.bootstrap
    units = {u.id for u in plan(config)}
    sweeps = [study_dir / "units" / u for u in ("gridworld/constant", "gridworld/decay") if u in units]
    runs = concat_parquet([d / "runs.parquet" for d in sweeps])
    tables = {
        "gridworld_runs": runs,
        "gridworld_summary": summarize_runs(runs, num_resamples) if not runs.empty else pd.DataFrame(),
        "gridworld_curves": concat_parquet([d / "curves.parquet" for d in sweeps]),
    }
    probes = study_dir / "units" / "probes"
    for name, file in [("probes", "probes"), ("probe_classes", "classes"), ("curvature", "curvature"),
                       ("interpolation", "interpolation")]:
        tables[name] = concat_parquet([probes / f"{file}.parquet"]) if (probes / f"{file}.parquet").exists() \
            else pd.DataFrame()
    pol = study_dir / "units" / "policies"
    for name, file in [("policy_probes", "probes"), ("policy_classes", "classes")]:
        tables[name] = pd.read_parquet(pol / f"{file}.parquet") if "policies" in units and \
            (pol / f"{file}.parquet").exists() else pd.DataFrame()
    if config.policies is not None and not tables["policy_classes"].empty:
        tables["policy_classes"] = with_complexity(tables["policy_classes"], Path(config.policies.study))
    cont = study_dir / "units" / "continuous"
    for name, path in [("continuous_runs", cont / "train" / "runs.parquet"),
                       ("continuous_curves", cont / "train" / "metrics.parquet"),
                       ("continuous_probes", cont / "probes" / "probes.parquet"),
                       ("continuous_classes", cont / "probes" / "classes.parquet"),
                       ("continuous_interpolation", cont / "probes" / "interpolation.parquet")]:
        tables[name] = pd.read_parquet(path) if "continuous/train" in units and path.exists() else pd.DataFrame()
    out = study_dir / TABLES_DIR
    out.mkdir(exist_ok=True)
    for name, df in tables.items():
        write_table(df, out / f"{name}.parquet")
    return tables

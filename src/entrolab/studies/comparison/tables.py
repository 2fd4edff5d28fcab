"""The tables of a comparison study (rliable's conventions), rebuilt from the unit outputs.

``tables/*.parquet``: runs, curves (learning curves), summary (per task x
method x evaluation mode: mean, median and interquartile mean of the per-seed
evaluation returns with percentile bootstrap intervals over seeds),
improvement (per task and pair of methods: the probability that a run of one
beats a run of the other, with a bootstrap interval), equal_budget (methods
compared at the same number of env steps) and landscape_slices / landscape_maps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from entrolab.stats import bootstrap_ci, bootstrap_indices, iqm, percentile_interval
from entrolab.study.tables import TABLES_DIR, write_table
from entrolab.studies.comparison.config import ComparisonConfig
from entrolab.studies.comparison.schema import BUDGET_WINDOW, TABLES  # noqa: F401  (re-exported)
from entrolab.studies.comparison.units import plan


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 for one run of each (the Mann-Whitney U statistic / (n m)):
    rliable's probability of improvement on one task."""
    x, y = np.asarray(x, float)[:, None], np.asarray(y, float)[None, :]
    return float(np.mean((x > y) + 0.5 * (x == y)))


def equal_budget(runs, curves, config: ComparisonConfig, num_resamples: int):
    """Methods compared at the same number of env steps: per task, B = the smallest budget of
    any method; per run, the mean training episode return logged at env steps in
    [(1 - BUDGET_WINDOW) B, B] (the exploring policy's episodes; the last row before B if none is
    in that window); per task x method, the IQM over
    seeds with a bootstrap interval. When budgets differ (PPO on-policy, SAC off-policy), this
    separates "learns slower" from "learns something worse"."""
    rows = []
    for tname in config.tasks:
        b = int(runs.loc[runs["task"] == tname, "env_steps"].min())
        for mname in config.methods:
            sub = curves[(curves["task"] == tname) & (curves["method"] == mname) & (curves["env_steps"] <= b)
                         & curves["episode_return"].notna()]
            # the rows logged in the window, or the last one before it when a method logs coarsely
            start = min((1 - BUDGET_WINDOW) * b, sub["env_steps"].max()) if len(sub) else b
            per_seed = sub[sub["env_steps"] >= start].groupby("seed")["episode_return"].mean()
            row = {"task": tname, "method": mname, "budget": b, "n": len(per_seed)}
            if len(per_seed):
                ci = bootstrap_ci(per_seed.to_numpy(float), iqm, num_resamples, rng=0)
                row.update(iqm=ci.estimate, iqm_low=ci.low, iqm_high=ci.high, mean=float(per_seed.mean()))
            rows.append(row)
    return pd.DataFrame(rows)


def build_tables(study_dir: str | Path, config: ComparisonConfig, num_resamples: int | None = None) -> dict:
    study_dir = Path(study_dir)
    num_resamples = num_resamples or config.bootstrap
    tables_dir = study_dir / TABLES_DIR
    tables_dir.mkdir(exist_ok=True)
    runs, curves = [], []
    for tname in config.tasks:
        for mname, spec in config.methods.items():
            d = study_dir / "train" / tname / mname
            r = pd.read_parquet(d / "runs.parquet")
            r["checkpoint"] = [str(Path("train") / tname / mname / c) for c in r["checkpoint"]]
            r.insert(0, "method", mname)
            r.insert(0, "task", tname)
            runs.append(r)
            c = pd.read_parquet(d / "metrics.parquet")
            c.insert(0, "algo", spec.algo)
            c.insert(0, "method", mname)
            c.insert(0, "task", tname)
            curves.append(c)
    runs = pd.concat(runs, ignore_index=True)
    curves = pd.concat(curves, ignore_index=True)

    rows = []
    for (tname, mname), sub in runs.groupby(["task", "method"], sort=False):
        for mode, col in (("deterministic", "eval_return_det_mean"), ("stochastic", "eval_return_sto_mean")):
            x = sub[col].to_numpy(float)
            row = {"task": tname, "method": mname, "algo": config.methods[mname].algo, "mode": mode,
                   "n": len(x), "env_steps": int(sub["env_steps"].iloc[0])}
            for stat, fn in (("mean", np.mean), ("median", np.median), ("iqm", iqm)):
                ci = bootstrap_ci(x, fn, num_resamples, rng=0)
                row.update({stat: ci.estimate, f"{stat}_low": ci.low, f"{stat}_high": ci.high})
            row.update(min=float(x.min()), max=float(x.max()))
            rows.append(row)
    summary = pd.DataFrame(rows)

    rows = []
    methods = list(config.methods)
    for tname, sub in runs.groupby("task", sort=False):
        for a in methods:
            for b in methods:
                if a == b:
                    continue
                for mode, col in (("deterministic", "eval_return_det_mean"), ("stochastic", "eval_return_sto_mean")):
                    x = sub.loc[sub["method"] == a, col].to_numpy(float)
                    y = sub.loc[sub["method"] == b, col].to_numpy(float)
                    ix, iy = bootstrap_indices(len(x), num_resamples, 0), bootstrap_indices(len(y), num_resamples, 1)
                    reps = np.mean((x[ix][:, :, None] > y[iy][:, None, :]) + 0.5 * (x[ix][:, :, None] == y[iy][:, None, :]),
                                   axis=(1, 2))
                    low, high = percentile_interval(reps)
                    rows.append({"task": tname, "method": a, "versus": b, "mode": mode,
                                 "p_improvement": probability_of_improvement(x, y), "low": float(low),
                                 "high": float(high)})
    improvement = pd.DataFrame(rows)

    budget = equal_budget(runs, curves, config, num_resamples)

    units = plan(config)
    land_dirs = [study_dir / "units" / u.id for u in units if u.kind == "landscape"]

    def land_table(name):
        frames = []
        for d in land_dirs:
            if (d / name).exists():
                df = pd.read_parquet(d / name)
                _, tname, mname = d.relative_to(study_dir / "units").parts
                df.insert(0, "method", mname)
                df.insert(0, "task", tname)
                frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    out = dict(runs=runs, curves=curves, summary=summary, improvement=improvement, equal_budget=budget,
               landscape_slices=land_table("slices.parquet"), landscape_maps=land_table("maps.parquet"))
    for name, df in out.items():
        write_table(df, tables_dir / f"{name}.parquet")
    return out

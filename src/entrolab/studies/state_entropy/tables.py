"""The tables of a state-entropy study, from its units' outputs (pure: the same outputs, the same tables).

    selection        one row per select run (method x candidate coefficient x seed): train_sweep's
                     runs table with `method`, `coefficient` (the swept alpha or beta)
    choices          one row per regularised method: the chosen coefficient, the reference nominal
                     return, the floor (1 - max_cost) x reference, whether any candidate met it,
                     each candidate's mean nominal return (JSON)
    runs             one row per trained agent (run x seed): train_sweep's runs table with `run`,
                     `method`, `alpha`, `beta`, `rollouts` (None: all the environments of an update)
    success          one row per run x seed x layout x mode: the success rate over the episodes
    success_summary  one row per run x layout x mode: the mean success rate over seeds with a
                     percentile bootstrap interval over seeds, the IQM over seeds, the seed count
    differences      one row per regularised run x layout x mode: its mean success minus the
                     unregularised method's, with a bootstrap interval (seeds resampled in each)
    visits           one row per run x layout x mode x cell: state-visitation counts of the
                     evaluation episodes (all seeds), and their frequency
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from entrolab.stats import as_generator, bootstrap_ci, iqm, percentile_interval
from entrolab.study.tables import TABLES_DIR, concat_parquet, write_table
from entrolab.studies.state_entropy.config import StateEntropyConfig
from entrolab.studies.state_entropy.units import plan


def summarize(success: pd.DataFrame, num_resamples: int) -> pd.DataFrame:
    rows = []
    for (run, layout, mode), sub in success.groupby(["run", "layout", "mode"], sort=False):
        x = sub["success"].to_numpy(float)
        m, lo, hi = bootstrap_ci(x, np.mean, num_resamples=num_resamples, rng=0)
        rows.append({"run": run, "layout": layout, "mode": mode, "seeds": len(x), "mean": m, "low": lo, "high": hi,
                     "iqm": float(iqm(x))})
    return pd.DataFrame(rows)


def differences(success: pd.DataFrame, num_resamples: int, reference: str = "none") -> pd.DataFrame:
    """Mean success of each run minus the reference's, per layout and mode, with a percentile
    bootstrap interval (the seeds of each run resampled independently)."""
    rows = []
    rng = as_generator(0)
    for (layout, mode), sub in success.groupby(["layout", "mode"], sort=False):
        ref = sub[sub["run"] == reference]["success"].to_numpy(float)
        if ref.size == 0:
            continue
        for run, g in sub[sub["run"] != reference].groupby("run", sort=False):
            x = g["success"].to_numpy(float)
            reps = (x[rng.integers(0, x.size, (num_resamples, x.size))].mean(1)
                    - ref[rng.integers(0, ref.size, (num_resamples, ref.size))].mean(1))
            lo, hi = percentile_interval(reps)
            rows.append({"run": run, "reference": reference, "layout": layout, "mode": mode,
                         "difference": float(x.mean() - ref.mean()), "low": float(lo), "high": float(hi)})
    return pd.DataFrame(rows)


def _all_differences(success: pd.DataFrame, num_resamples: int) -> pd.DataFrame:
    """Every run against the unregularised one (reference "none"), and the state-entropy runs against
    policy entropy (reference "policy": the paper's comparison), when those runs exist."""
    if success.empty:
        return pd.DataFrame()
    frames = [differences(success, num_resamples)]
    versus_policy = success[success["run"].isin(["policy", "state", "both"])]
    if {"policy", "state"} <= set(versus_policy["run"]) or {"policy", "both"} <= set(versus_policy["run"]):
        frames.append(differences(versus_policy, num_resamples, reference="policy"))
    return pd.concat(frames, ignore_index=True)


def _concat_runs(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Runs tables of several sweeps in one: a config column that is null (JSON) in one sweep and a
    number in another (e.g. state_entropy_rollouts) becomes text, which parquet can store."""
    if not frames:
        return pd.DataFrame()
    runs = pd.concat(frames, ignore_index=True)
    for col in runs.columns:
        if col.startswith("cfg_") and runs[col].dtype == object:
            runs[col] = runs[col].map(lambda v: v if isinstance(v, str) else json.dumps(v))
    return runs


def build_tables(study_dir: str | Path, config: StateEntropyConfig, num_resamples: int | None = None) -> dict:
    study_dir = Path(study_dir)
    num_resamples = num_resamples or config.bootstrap
    units = {u.id for u in plan(config)}
    root = study_dir / "units"
    selection, choices = [], []
    for method in ("none", "policy", "state"):
        d = root / "select" / method
        if f"select/{method}" not in units or not (d / "runs.parquet").exists():
            continue
        runs = pd.read_parquet(d / "runs.parquet")
        selection.append(runs.assign(method=method, coefficient=runs["alpha"]))
        choice = json.loads((d / "choice.json").read_text())
        if method != "none":
            choices.append({**{k: v for k, v in choice.items() if k != "candidates"},
                            "candidates": json.dumps(choice["candidates"])})
    trained = []
    for uid in sorted(u for u in units if u.startswith("train/")):
        d = study_dir / "units" / uid
        if (d / "runs.parquet").exists():
            coef = json.loads((d / "coefficients.json").read_text())
            trained.append(pd.read_parquet(d / "runs.parquet").assign(
                run=coef["run"], method=coef["method"], alpha=coef["alpha"], beta=coef["beta"],
                rollouts=coef["rollouts"] if coef["rollouts"] is not None else np.nan))
    evaluated = [root / u for u in sorted(units) if u.startswith("evaluate/")]
    success = concat_parquet([d / "success.parquet" for d in evaluated])
    tables = {
        "selection": _concat_runs(selection),
        "choices": pd.DataFrame(choices),
        "runs": _concat_runs(trained),
        "success": success,
        "success_summary": summarize(success, num_resamples) if not success.empty else pd.DataFrame(),
        "differences": _all_differences(success, num_resamples),
        "visits": concat_parquet([d / "visits.parquet" for d in evaluated]),
    }
    out = study_dir / TABLES_DIR
    out.mkdir(exist_ok=True)
    for name, df in tables.items():
        write_table(df, out / f"{name}.parquet")
    return tables

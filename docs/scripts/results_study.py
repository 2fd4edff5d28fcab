"""Numbers and figures of docs/results.md (issue 4) from finished study directories.

    .venv/bin/python docs/scripts/results_study.py STUDY_DIR [STUDY_DIR ...]

For each study: copies its report figures to docs/figures/study_NAME_*.png, its
small tables (everything but the per-update curves and the per-episode returns)
and report.md to benchmarks/results/studies/NAME/, and prints the summary
tables quoted in docs/results.md.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
KEEP = ["runs", "returns", "excess_risk", "complexity", "correlations", "sharpness", "fisher_states"]
SHOW = ["spectral_product", "path_norm", "dist_from_init", "lipschitz_max", "fisher_total_mean",
        "fisher_total_kurtosis", "log_std"]


def archive(d: Path, tables: list[str], figure_prefix: str, figures: list[str] | None = None) -> str:
    """Copy a finished study's small tables, config and report.md to benchmarks/results/studies/NAME/
    and its report figures (all, or those named) to docs/figures/PREFIX_NAME_*.png; returns the name."""
    name = json.loads((d / "config.json").read_text())["name"]
    dest = ROOT / "benchmarks" / "results" / "studies" / name
    (dest / "tables").mkdir(parents=True, exist_ok=True)
    for t in tables:
        shutil.copy(d / "tables" / f"{t}.parquet", dest / "tables" / f"{t}.parquet")
    shutil.copy(d / "config.json", dest / "config.json")
    shutil.copy(d / "report" / "report.md", dest / "report.md")
    for fig in sorted((d / "report" / "figures").glob("*.png")):
        if figures is not None and fig.stem not in figures:
            continue
        shutil.copy(fig, ROOT / "docs" / "figures" / f"{figure_prefix}{name}_{fig.name}")
    return name


def main(dirs: list[str]) -> None:
    pd.set_option("display.width", 200)
    for d in map(Path, dirs):
        name = archive(d, KEEP, "study_")
        runs = pd.read_parquet(d / "tables" / "runs.parquet")
        risk = pd.read_parquet(d / "tables" / "excess_risk.parquet")
        comp = pd.read_parquet(d / "tables" / "complexity.parquet")
        corr = pd.read_parquet(d / "tables" / "correlations.parquet")
        print(f"\n## {name}")
        by = ["bounding", "alpha"] if runs["bounding"].nunique() > 1 else ["alpha"]
        print(runs.groupby(by)["eval_return_det_mean"].agg(["mean", "std"]).round(2).T.to_string())
        r = risk[(risk["family"] == "obs_noise") & (risk["mode"] == "deterministic")]
        r = r.merge(runs[["variant", "run_id", "bounding"]], on=["variant", "run_id"])
        j0 = r[r["value"] == 0].groupby(["bounding", "init", "alpha"])["return"].median().unstack("alpha")
        print("\nJ(pi; 0), median over seeds\n" + j0.round(2).to_string())
        r = r[~np.isclose(r["value"], r["reference_value"])]
        rate = r.groupby(["bounding", "init", "value", "alpha"])["excess_risk_rate"].median().unstack("alpha")
        print("\nexcess-risk rate (obs noise, deterministic), median over seeds\n" + rate.round(3).to_string())
        c = comp.groupby(["bounding", "alpha"])[SHOW].median()
        print("\ncomplexity, median over seeds\n" + c.round(3).to_string())
        top = float(r["value"].max())
        h = corr[(corr["family"] == "obs_noise") & (corr["mode"] == "deterministic") & (corr["value"] == top)
                 & corr["scope"].isin(["overall", "stratified"])]
        h = h.pivot_table(index="measure", columns="scope", values=["kendall_tau", "kendall_tau_low",
                                                                    "kendall_tau_high"])
        print(f"\nKendall tau with the excess-risk rate at sigma = {top:g}\n" + h.round(2).to_string())


if __name__ == "__main__":
    main(sys.argv[1:])

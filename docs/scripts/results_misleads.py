"""Numbers and figures of docs/results.md (issue 5) from a finished comparison study.

    .venv/bin/python docs/scripts/results_misleads.py runs/misleads

Copies the report's figures to docs/figures/misleads_*.png, the small tables (all but the
2-D landscape maps) and report.md to benchmarks/results/studies/NAME/, and prints the
tables quoted in docs/results.md.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
KEEP = ["runs", "curves", "summary", "improvement", "landscape_slices"]


def main(study_dir: str) -> None:
    d = Path(study_dir)
    name = json.loads((d / "config.json").read_text())["name"]
    dest = ROOT / "benchmarks" / "results" / "studies" / name
    (dest / "tables").mkdir(parents=True, exist_ok=True)
    for t in KEEP:
        shutil.copy(d / "tables" / f"{t}.parquet", dest / "tables" / f"{t}.parquet")
    shutil.copy(d / "config.json", dest / "config.json")
    shutil.copy(d / "report" / "report.md", dest / "report.md")
    for fig in sorted((d / "report" / "figures").glob("*.png")):
        shutil.copy(fig, ROOT / "docs" / "figures" / f"{name}_{fig.name}")

    pd.set_option("display.width", 220)
    pd.set_option("display.max_columns", 20)
    summary = pd.read_parquet(d / "tables" / "summary.parquet")
    cols = ["task", "method", "mode", "iqm", "iqm_low", "iqm_high", "mean", "min", "max", "env_steps"]
    print(summary[cols].round(2).to_string(index=False))
    imp = pd.read_parquet(d / "tables" / "improvement.parquet")
    print(imp[imp["mode"] == "deterministic"].round(3).to_string(index=False))
    runs = pd.read_parquet(d / "tables" / "runs.parquet")
    print(runs.groupby(["task", "method"])[["train_time_s", "compile_time_s"]].first().round(0).to_string())
    curves = pd.read_parquet(d / "tables" / "curves.parquet")
    if "adaent_switch_fraction" in curves:
        ada = curves[curves["method"] == "sac-adaent"]
        print(ada.groupby(["task", "update"])["adaent_switch_fraction"].mean().unstack(0).round(3).to_string())
    slices = pd.read_parquet(d / "tables" / "landscape_slices.parquet")
    sim = slices.groupby(["task", "method", "seed", "time", "dim"])["similarity"].first()
    print(sim.groupby(["task", "method", "time"]).agg(["mean", "min", "max"]).round(3).to_string())


if __name__ == "__main__":
    main(sys.argv[1])

"""Numbers and figures of docs/results.md (issues 5 and 10) from a finished comparison study.

    .venv/bin/python docs/scripts/results_misleads.py runs/misleads

Copies the report figures quoted there to docs/figures/misleads_*.png, the small tables (all but the
2-D landscape maps) and report.md to benchmarks/results/studies/NAME/, and prints the
tables quoted in docs/results.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_study import archive  # noqa: E402
KEEP = ["runs", "curves", "summary", "improvement", "equal_budget", "landscape_slices"]
FIGURES = ["final_returns", "curves", "adaent_switch", "entropy", "landscape_map_obstacle2d_sac",
           "landscape_map_quadrotor_realistic_sac", "landscape_map_vehicle_authors_sac", "landscape_pendulum_sac",
           "landscape_acrobot_sac", "landscape_obstacle2d_sac"]


def main(study_dir: str) -> None:
    d = Path(study_dir)
    archive(d, KEEP, "", FIGURES)
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

"""Seed-level statistics of docs/results.md (issue 11) from the stored robustness tables.

    .venv/bin/python docs/scripts/results_statistics.py

Reads benchmarks/results/studies/{lorenz-paper,ks-paper}/tables (the small tables kept from the
paper-scale runs; the per-episode returns were not kept, so the per-alpha intervals here resample
seeds only, not seeds then episodes as the study's own `alpha_rates` table does) and prints:

- the spread of the evaluation return over alpha (mean over seeds);
- per initial distribution, noise level and alpha: the mean rate over seeds with a 95% bootstrap
  interval over seeds, and the seeds' median, min and max;
- Kendall's tau between alpha and the per-seed rate, with an interval from resampling whole seeds
  (`entrolab.stats.kendall_trend`);
- Jiang et al.'s granulated psi per axis and Psi (`entrolab.stats.granulated_kendall`) beside the
  within-alpha (stratified) tau, for the measures quoted in docs/results.md.

Writes the trend and granulated tables to benchmarks/results/studies/statistics/*.parquet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from entrolab.stats import bootstrap_ci, granulated_kendall, kendall_trend
from entrolab.studies.robustness.schema import policy_rates

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "benchmarks" / "results" / "studies"
OUT = STUDIES / "statistics"
SHOWN = {"lorenz-paper": (0.002, 0.005, 0.05), "ks-paper": (0.05, 0.2, 0.5)}
MEASURES = ["fisher_total_mean", "fisher_total_q95", "fisher_mean_mean", "sharpness_sigma", "spectral_product",
            "lipschitz_max", "log_std"]


def short(variant: str) -> str:
    return "tanh" if "_tanh_" in variant else "clip"


def per_init_rates(risk: pd.DataFrame) -> pd.DataFrame:
    sub = risk[~np.isclose(risk["value"], risk["reference_value"])]
    return sub[["variant", "run_id", "alpha", "seed", "family", "param", "value", "init", "mode", "excess_risk_rate"]]


def main() -> None:
    pd.set_option("display.width", 220)
    pd.set_option("display.max_rows", 400)
    OUT.mkdir(parents=True, exist_ok=True)
    trends, alpha_rows, grans = [], [], []
    for name, sigmas in SHOWN.items():
        d = STUDIES / name / "tables"
        runs = pd.read_parquet(d / "runs.parquet")
        risk = pd.read_parquet(d / "excess_risk.parquet")
        comp = pd.read_parquet(d / "complexity.parquet")
        spread = runs.groupby(["variant", "alpha"])["eval_return_det_mean"].mean().groupby("variant").agg(["min", "max"])
        print(f"\n== {name}: evaluation return over alpha (mean over seeds): min, max, span")
        print((spread.assign(span=spread["max"] - spread["min"])).round(2).to_string())

        rates = per_init_rates(risk)
        obs = rates[(rates["family"] == "obs_noise") & (rates["mode"] == "deterministic")]
        both = policy_rates(risk)
        both = both[(both["family"] == "obs_noise") & (both["mode"] == "deterministic")].assign(init="mean")
        for (variant, init, value), sub in pd.concat([obs, both]).groupby(["variant", "init", "value"]):
            if not np.isclose(sigmas, value).any():
                continue
            t = kendall_trend(sub, "alpha", "excess_risk_rate", "seed", num_resamples=4000, rng=0)
            trends.append({"study": name, "variant": short(variant), "init": init, "sigma": value, **t})
            for alpha, cell in sub.groupby("alpha"):
                ci = bootstrap_ci(cell["excess_risk_rate"].to_numpy(), num_resamples=4000, rng=0)
                alpha_rows.append({"study": name, "variant": short(variant), "init": init, "sigma": value,
                                   "alpha": alpha, "mean": ci.estimate, "low": ci.low, "high": ci.high,
                                   "median": cell["excess_risk_rate"].median(),
                                   "min": cell["excess_risk_rate"].min(), "max": cell["excess_risk_rate"].max()})

        target = 0.005 if name == "lorenz-paper" else 0.5
        df = both[np.isclose(both["value"], target)].merge(comp.drop(columns=["alpha", "seed"]), on=["variant", "run_id"])
        axes = (["variant"] if df["variant"].nunique() > 1 else []) + ["alpha", "seed"]
        for m in MEASURES:
            g = granulated_kendall(df, m, "excess_risk_rate", axes, num_resamples=4000, rng=0)
            grans.append(g.assign(study=name, sigma=target))

    trends = pd.DataFrame(trends)
    alpha_rates = pd.DataFrame(alpha_rows)
    gran = pd.concat(grans, ignore_index=True)
    for df, file in ((trends, "trends"), (alpha_rates, "alpha_rates"), (gran, "granulated")):
        df.to_parquet(OUT / f"{file}.parquet", index=False)
    print("\n== Kendall tau(alpha, rate), 95% interval over seeds (deterministic, obs noise)")
    print(trends[["study", "variant", "init", "sigma", "n", "kendall_tau", "kendall_tau_low", "kendall_tau_high"]]
          .round(3).to_string(index=False))
    print("\n== per-alpha rate: mean over seeds [95% bootstrap over seeds], median, min, max")
    print(alpha_rates.round(3).to_string(index=False))
    print("\n== granulated psi (Jiang) per axis and Psi, [95% over seeds]")
    print(gran[["study", "sigma", "measure", "scope", "num_cells", "psi", "psi_low", "psi_high"]].round(3)
          .to_string(index=False))
    print(f"\nwrote {OUT}/{{trends,alpha_rates,granulated}}.parquet")


if __name__ == "__main__":
    main()

"""The names a robustness study's tables share with its report (no computation, no JAX):
the tables it writes, the factors of its training variants, the complexity
measures it correlates with robustness, and how a policy's excess-risk rate is
summarised over initial distributions."""

from __future__ import annotations

import numpy as np
import pandas as pd

TABLES = ("runs", "curves", "returns", "episodes", "excess_risk", "complexity", "fisher_states",
          "sharpness", "correlations", "granulated", "alpha_rates", "trends")
FACTORS = ["variant", "schedule", "ent_horizon", "hidden", "bounding", "train_obs_noise", "normalize_observations"]
# the measures whose relation to robustness is tested (columns of complexity.parquet)
MEASURES = [
    "spectral_product", "frobenius_product", "frobenius_sq_sum", "dist_from_init", "path_norm",
    "lipschitz_max", "lipschitz_mean", "sharpness_sigma", "sharpness_sigma_refined", "fisher_total_mean", "fisher_total_median",
    "fisher_total_q95", "fisher_total_kurtosis", "fisher_mean_mean", "fisher_sensitivity_mean",
    "fisher_sensitivity_median", "fisher_precision", "log_std",
]


def policy_rates(risk: pd.DataFrame) -> pd.DataFrame:
    """Per policy x (family, param, value, mode): the excess-risk rate averaged over the
    initial distributions (the reference conditions left out)."""
    sub = risk[~np.isclose(risk["value"], risk["reference_value"])]
    return (sub.groupby(["variant", "run_id", "alpha", "seed", "family", "param", "value", "mode"], as_index=False)
            ["excess_risk_rate"].mean())

"""The names a landscape study's tables share with its report (no computation, no JAX)."""

TABLES = ("gridworld_runs", "gridworld_summary", "gridworld_curves", "probes", "probe_classes", "curvature",
          "interpolation", "policy_probes", "policy_classes", "continuous_runs", "continuous_curves",
          "continuous_probes", "continuous_classes", "continuous_interpolation")

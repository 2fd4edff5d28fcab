"""The names a comparison study's tables share with its report (no computation, no JAX)."""

TABLES = ("runs", "curves", "summary", "improvement", "equal_budget", "landscape_slices", "landscape_maps")
BUDGET_WINDOW = 0.2  # equal_budget: training returns logged in the last 20% of the common budget

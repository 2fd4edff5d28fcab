"""The names a state-entropy study's tables share with its report (no computation, no JAX)."""

TABLES = ("selection", "choices", "runs", "success", "success_summary", "differences", "visits")

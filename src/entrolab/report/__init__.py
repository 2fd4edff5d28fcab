"""Figures and reports (matplotlib with the Agg backend; never imported by envs)."""

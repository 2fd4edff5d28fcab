"""Agents: networks, the Gaussian policy, and one folder per algorithm."""

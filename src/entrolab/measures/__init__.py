"""Measures of the dynamics: Lyapunov exponents of the uncontrolled flows."""

from entrolab.measures.lyapunov import (
    LyapunovResult,
    iterate,
    largest_lyapunov_exponent,
    largest_lyapunov_exponent_map,
    lyapunov_spectrum,
    lyapunov_spectrum_map,
    uncontrolled_step,
)

__all__ = [
    "LyapunovResult",
    "iterate",
    "largest_lyapunov_exponent",
    "largest_lyapunov_exponent_map",
    "lyapunov_spectrum",
    "lyapunov_spectrum_map",
    "uncontrolled_step",
]

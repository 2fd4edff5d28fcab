"""Measures of systems and of trained policies: pure functions of pytrees and tables.

- `lyapunov`: Lyapunov exponents of the uncontrolled flows (re-exported here);
- `robustness`: returns under perturbation (`evaluate_grid`) and the excess risk;
- `complexity`: norm-based measures, empirical Lipschitz constant, PAC-Bayes sharpness;
- `fisher`: the exact trace of the policy's Fisher information per state;
- `qlandscape`: soft versus plain Q over a SAC agent's action space;
- `adversarial`: worst-case observation perturbations and what they cost;
- `landscape`: random-perturbation probes, interpolation, planes and curvature of any objective;
- `state_entropy`: the k-NN state-entropy estimator and intrinsic reward.

A measure never reads or writes a study directory: the study kinds
(`entrolab.studies`) call measures and store their results.
"""

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

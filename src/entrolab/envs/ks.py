"""Controlled Kuramoto-Sivashinsky on a periodic domain.

    u_t = -u u_x - u_xx - u_xxxx + f(x),    f(x) = action_scale * sum_j a_j g_j(x)

on [0, L) with N grid points (static), pseudo-spectral in space (real DFT, no
dealiasing: at L = 22 and N = 64 the modes past 2/3 of the spectrum are
damped by exp((k^2 - k^4) dt) < 1e-32 per step) and ETDRK4 in time (Cox & Matthews
2002, coefficients by the contour integrals of Kassam & Trefethen 2005 with
`num_contour_points` points on a unit circle). The forcing is constant over a
control step and is part of the nonlinear term, so the scheme stays fourth
order with actuation (tests/test_physics.py measures it: the observed order
reaches 4 for h <= 0.0125; at h = 0.05 it is 3.2-3.5, as for any
Cox-Matthews ETDRK4 on this stiff problem, exponax included, with an error
of 2.4e-6 per time unit).

Actuators are periodic Gaussians of width `actuator_width` (0.4) and unit
peak at `j L / m`; sensors are Gaussian-weighted averages of width
`sensor_width` at `(i + 1/2) L / p`, half a spacing from the actuators
(m = p = 8 by default; m = 4 as in Bucci et al. 2019 is `num_actuators=4`).
The forcing is defined in physical space (not through an FFT scaling).

The per-step cost is mean_x (u - u*)^2 + control_cost * mean_x f^2 (grid
means, i.e. the L2 norms divided by N). The target u* and the centre of the
initial distribution N(u_e, init_std^2 I) are steady states computed by
`entrolab.envs.ks_equilibria` for the nominal L; they are part of the task
(params arrays), so that shifting L keeps the task and changes the physics.

Why not exponax: its `ForcedStepper` adds the forcing by a forward-Euler
splitting, first order in time, and its steppers compute the ETDRK
coefficients once at construction, so L could not be a vmappable param.
exponax serves instead as an independent reference in the tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from entrolab.envs.core import ControlSystem, EnvParams
from entrolab.envs.ks_equilibria import ks_equilibria
from entrolab.envs.ks_spectral import (  # noqa: F401  (ks_rhs and the transforms re-exported from here)
    etdrk4_coefficients, etdrk4_step, irfft, ks_linear_symbol, ks_rhs, periodic_gaussians, rfft, wavenumbers,
)
from entrolab.envs.spaces import Box


@struct.dataclass
class KSParams(EnvParams):
    length: float = 22.0
    dt: float = 0.05
    action_scale: float = 1.0
    actuator_width: float = 0.4
    sensor_width: float = 0.4
    obs_scale: float = 1.0
    control_cost: float = 0.1
    init_std: float = 0.1
    u_target: jax.Array | None = None  # u*, shape (N,); set from the equilibrium named `target`
    u_init: jax.Array | None = None  # u_e, centre of the initial distribution, shape (N,)
    divergence_bound: float = 50.0
    cost_cap: float = 10.0


class KuramotoSivashinsky(ControlSystem[KSParams]):
    """Controlled Kuramoto-Sivashinsky (see the module docstring)."""

    name = "ks"

    def __init__(
        self,
        num_points: int = 64,
        num_actuators: int = 8,
        num_sensors: int = 8,
        num_substeps: int = 1,
        num_contour_points: int = 16,
        target: str = "E1",
        init: str = "E2",
    ):
        for name, value in [
            ("num_points", num_points),
            ("num_actuators", num_actuators),
            ("num_sensors", num_sensors),
            ("num_substeps", num_substeps),
            ("num_contour_points", num_contour_points),
        ]:
            if int(value) < 1:
                raise ValueError(f"ks: {name} must be >= 1, got {value}")
        if int(num_points) < 8 or int(num_points) % 2:
            raise ValueError(f"ks: num_points must be even and >= 8, got {num_points}")
        self.num_points = int(num_points)
        self.num_actuators = int(num_actuators)
        self.num_sensors = int(num_sensors)
        self.num_substeps = int(num_substeps)
        self.num_contour_points = int(num_contour_points)
        self.target_name = target
        self.init_name = init

    def __repr__(self) -> str:
        return (
            f"KuramotoSivashinsky(num_points={self.num_points}, num_actuators={self.num_actuators}, "
            f"num_sensors={self.num_sensors}, target={self.target_name!r}, init={self.init_name!r})"
        )

    def equilibrium(self, name: str, length: float = 22.0) -> np.ndarray:
        """A named steady state ("zero", "E1", "E2", "E3") on this grid, float64."""
        eqs = ks_equilibria(float(length), self.num_points)
        if name not in eqs:
            raise ValueError(f"ks: unknown equilibrium {name!r}; known: {sorted(eqs)}")
        return eqs[name].u

    @property
    def default_params(self) -> KSParams:
        dtype = jnp.result_type(float)
        return KSParams(
            u_target=jnp.asarray(self.equilibrium(self.target_name), dtype),
            u_init=jnp.asarray(self.equilibrium(self.init_name), dtype),
        )

    def grid(self, params: KSParams) -> jax.Array:
        return params.length * jnp.arange(self.num_points) / self.num_points

    def actuator_shapes(self, params: KSParams) -> jax.Array:
        """g_j(x), shape (num_actuators, N)."""
        centres = params.length * jnp.arange(self.num_actuators) / self.num_actuators
        return periodic_gaussians(self.grid(params), centres, params.actuator_width, params.length)

    def sensor_weights(self, params: KSParams) -> jax.Array:
        """Rows sum to one, shape (num_sensors, N)."""
        centres = params.length * (jnp.arange(self.num_sensors) + 0.5) / self.num_sensors
        w = periodic_gaussians(self.grid(params), centres, params.sensor_width, params.length)
        return w / jnp.sum(w, axis=1, keepdims=True)

    def actuation(self, action: jax.Array, params: KSParams) -> jax.Array:
        """f(x) on the grid for an action in action units, shape (N,)."""
        return params.action_scale * (action @ self.actuator_shapes(params))

    def flow(self, u: jax.Array, forcing: jax.Array, params: KSParams) -> jax.Array:
        """The field after one control step `dt` under constant forcing."""
        n = self.num_points
        h = params.dt / self.num_substeps
        k = wavenumbers(n, params.length).astype(u.dtype)
        ik = 1j * k.at[n // 2].set(0.0)
        coeffs = etdrk4_coefficients(ks_linear_symbol(k), h, self.num_contour_points)
        f_hat = rfft(forcing)

        def nonlinear(v):
            w = irfft(v, n)
            return -0.5 * ik * rfft(w * w) + f_hat

        v = jax.lax.fori_loop(
            0, self.num_substeps, lambda _, v: etdrk4_step(v, nonlinear, coeffs), rfft(u)
        )
        return irfft(v, n)

    def target(self, params: KSParams) -> jax.Array:
        return params.u_target

    def initial_centre(self, params: KSParams) -> jax.Array:
        return params.u_init

    def stage_cost(self, x, u, params):
        err = x - params.u_target
        return jnp.mean(err * err) + params.control_cost * jnp.mean(u * u)

    def observe(self, state, params):
        return (self.sensor_weights(params) @ state.x) / params.obs_scale

    def observation_bound(self, params: KSParams) -> float:
        """|obs_i| <= this for any state within the divergence bound (noise-free)."""
        return float(params.divergence_bound) / float(params.obs_scale)

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (self.num_actuators,))

    def observation_space(self, params=None):
        return Box(-jnp.inf, jnp.inf, (self.num_sensors,))

"""Continuous-torque Acrobot, held upright.

One of the precision-control tasks of "MaxEnt misleads" (Zhang, Chang, Gao,
ICML 2025, arXiv 2506.05615), rebuilt from its public code (github
ruipengZ/maxent-mislead, environment/custom_gym/envs/AcrobotCont/acrobotCont.py,
commit ba966a6; facts in notes/research.md).

Angle convention. theta1 is the angle of the first link from the horizontal
+x axis, counter-clockwise, so theta1 = pi/2 is straight up and -pi/2 hangs
down; theta2 is the angle of the second link relative to the first (0 =
aligned). This is gymnasium's Acrobot-v1 convention rotated by a quarter
turn: theta1 = theta1_gymnasium - pi/2 (gymnasium measures from the downward
vertical), theta2 identical.

Dynamics (the manipulator form of the public code, no friction):

    D(theta2) qdd + c(q, qd) + G(q) = (0, tau),      q = (theta1, theta2)

    D11 = m1 lc1^2 + m2 (l1^2 + lc2^2 + 2 l1 lc2 cos theta2) + I1 + I2
    D12 = D21 = m2 (lc2^2 + l1 lc2 cos theta2) + I2,   D22 = m2 lc2^2 + I2
    c   = m2 l1 lc2 sin theta2 * (-(2 thd1 thd2 + thd2^2), thd1^2)
    G   = g ((m1 lc1 + m2 l1) cos theta1 + m2 lc2 cos(theta1 + theta2), m2 lc2 cos(theta1 + theta2))

It is the "book" dynamics of Sutton & Barto that gymnasium's Acrobot-v1
`_dsdt` implements, written in the rotated angle (tests/test_precision_envs.py
checks it against an independent NumPy transcription of gymnasium's
equations). Link masses 1, l1 = 1, COM positions 0.5, moments of inertia 1,
g = 9.8; l2 (= 1) does not enter the dynamics and is not a param. The energy
E = 1/2 qd^T D qd + g ((m1 lc1 + m2 l1) sin theta1 + m2 lc2 sin(theta1 + theta2))
is conserved with zero torque (see `acrobot_energy`).

Control step: tau = action_scale * a, a in [-1, 1] (torque in [-20, 20]),
held for dt = 0.2 and integrated by `num_substeps` (static, default 1, as the
public code) classical RK4 steps; then, as in gymnasium and the public code,
the angles are wrapped into [-pi, pi) and the velocities clipped to
[-max_vel_1, max_vel_1] = [-4 pi, 4 pi] and [-max_vel_2, max_vel_2] = [-9 pi, 9 pi]
(set them large, e.g. 1e6, to leave the velocities free; `make` refuses inf). A state the RK4 step takes
beyond `divergence_bound` (only from a corrupted state or huge actuation
noise) is passed on unwrapped, so the base class ends the episode (never a NaN).

Episode: 400 steps, no natural termination. Initial state: theta1 ~
U[init_theta1_low, init_theta1_high] = U[45 deg, 135 deg]; theta2, thd1, thd2
~ U[-sqrt(3) init_std, sqrt(3) init_std] independently (std init_std); the
default init_std = 0.1 / sqrt(3) reproduces the public code's U(-0.1, 0.1)
(which draws them from NumPy's global generator, seeded 1 at import).

Cost of a step, on the state it leads to (reward = -cost):

    wrap(theta1 - pi/2)^2 + wrap(theta2)^2 + velocity_cost (thd1^2 + thd2^2),   velocity_cost = 0.1

(wrap into [-pi, pi), as the public code's `angle_normalize`). At most
2 pi^2 + 0.1 (16 + 81) pi^2 ~ 115 with the default velocity bounds; the
default cost_cap = 200 never binds. The target (the upright rest state
(pi/2, 0, 0, 0)) is an unstable equilibrium.

Observation: (cos theta1, sin theta1, cos theta2, sin theta2, thd1, thd2), as in
gymnasium and the public code (in the rotated theta1).

Unconfirmed: how the public code's agents scaled their [-1, 1] actions to the
torque (its action space is [-20, 20]; tianshou's SAC maps its tanh output to
the space's bounds, which is what action_scale = 20 does here).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from entrolab.envs.core import ControlSystem, EnvParams, EnvState
from entrolab.envs.lorenz import rk4_step
from entrolab.envs.spaces import Box


@struct.dataclass
class AcrobotParams(EnvParams):
    """Every physical quantity of the Acrobot (all vmappable).

    Attributes:
        link_mass_1, link_mass_2: m1, m2.
        link_length_1: l1 (l2 does not enter the dynamics).
        link_com_1, link_com_2: lc1, lc2, distances of the centres of mass from the joints.
        link_moi_1, link_moi_2: I1, I2, moments of inertia.
        gravity: g.
        dt: duration of a control step.
        action_scale: torque per unit action.
        max_vel_1, max_vel_2: velocity clips after each control step.
        velocity_cost: weight of the squared velocities in the cost.
        init_theta1_low, init_theta1_high: range of the uniform initial theta1.
        init_std: std of the uniform initial theta2, thd1, thd2 (centred at 0).
    """

    max_steps_in_episode: int = 400
    link_mass_1: float = 1.0
    link_mass_2: float = 1.0
    link_length_1: float = 1.0
    link_com_1: float = 0.5
    link_com_2: float = 0.5
    link_moi_1: float = 1.0
    link_moi_2: float = 1.0
    gravity: float = 9.8
    dt: float = 0.2
    action_scale: float = 20.0
    max_vel_1: float = 4.0 * math.pi
    max_vel_2: float = 9.0 * math.pi
    velocity_cost: float = 0.1
    init_theta1_low: float = math.pi / 4.0
    init_theta1_high: float = 3.0 * math.pi / 4.0
    init_std: float = 0.1 / math.sqrt(3.0)
    divergence_bound: float = 1e3
    cost_cap: float = 200.0


def wrap_angle(theta: jax.Array) -> jax.Array:
    """theta wrapped into [-pi, pi)."""
    return jnp.mod(theta + jnp.pi, 2.0 * jnp.pi) - jnp.pi


def acrobot_mass_matrix(theta2: jax.Array, params: AcrobotParams) -> jax.Array:
    """D(theta2), shape (2, 2)."""
    m1, m2, l1 = params.link_mass_1, params.link_mass_2, params.link_length_1
    lc1, lc2, i1, i2 = params.link_com_1, params.link_com_2, params.link_moi_1, params.link_moi_2
    c2 = jnp.cos(theta2)
    d11 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2.0 * l1 * lc2 * c2) + i1 + i2
    d12 = m2 * (lc2**2 + l1 * lc2 * c2) + i2
    d22 = m2 * lc2**2 + i2 + jnp.zeros_like(c2)
    return jnp.stack([jnp.stack([d11, d12]), jnp.stack([d12, d22])])


def acrobot_vector_field(s: jax.Array, torque: jax.Array, params: AcrobotParams) -> jax.Array:
    """ds/dt for s = (theta1, theta2, thd1, thd2) and the torque on joint 2 (scalar)."""
    theta1, theta2, thd1, thd2 = s[0], s[1], s[2], s[3]
    m1, m2, l1 = params.link_mass_1, params.link_mass_2, params.link_length_1
    lc1, lc2, g = params.link_com_1, params.link_com_2, params.gravity
    d = acrobot_mass_matrix(theta2, params)
    h = m2 * l1 * lc2 * jnp.sin(theta2)
    c1 = -h * (2.0 * thd1 * thd2 + thd2**2)
    c2 = h * thd1**2
    g2 = m2 * lc2 * g * jnp.cos(theta1 + theta2)
    g1 = (m1 * lc1 + m2 * l1) * g * jnp.cos(theta1) + g2
    r1 = -c1 - g1
    r2 = torque - c2 - g2
    det = d[0, 0] * d[1, 1] - d[0, 1] * d[1, 0]  # > 0: D is positive definite
    qdd1 = (d[1, 1] * r1 - d[0, 1] * r2) / det
    qdd2 = (d[0, 0] * r2 - d[1, 0] * r1) / det
    return jnp.stack([thd1, thd2, qdd1, qdd2])


def acrobot_energy(s: jax.Array, params: AcrobotParams) -> jax.Array:
    """Total mechanical energy (kinetic + potential, zero at theta1 = 0 = theta2), scalar."""
    theta1, theta2 = s[0], s[1]
    qd = s[2:4]
    kinetic = 0.5 * qd @ acrobot_mass_matrix(theta2, params) @ qd
    potential = params.gravity * (
        (params.link_mass_1 * params.link_com_1 + params.link_mass_2 * params.link_length_1)
        * jnp.sin(theta1)
        + params.link_mass_2 * params.link_com_2 * jnp.sin(theta1 + theta2)
    )
    return kinetic + potential


class Acrobot(ControlSystem[AcrobotParams]):
    """Continuous-torque Acrobot held upright (see the module docstring).

    State `x` = (theta1, theta2, thd1, thd2).
    """

    name = "acrobot"

    def default_init_log_std(self, params: AcrobotParams) -> float:
        """The authors' PPO starts from log-std -0.5 in torque units (std 0.61 N m):
        log(e^-0.5 / action_scale) in [-1, 1] units (-3.50 at the default scale 20)."""
        return -0.5 - math.log(float(params.action_scale))

    def __init__(self, num_substeps: int = 1):
        if int(num_substeps) < 1:
            raise ValueError(f"acrobot: num_substeps must be >= 1, got {num_substeps}")
        self.num_substeps = int(num_substeps)

    @property
    def default_params(self) -> AcrobotParams:
        return AcrobotParams()

    def integrate(self, x: jax.Array, u: jax.Array, params: AcrobotParams) -> jax.Array:
        """RK4 over one control step under constant torque u (shape (1,)), no wrapping or clipping."""
        h = params.dt / self.num_substeps

        def body(_, s):
            return rk4_step(lambda y: acrobot_vector_field(y, u[0], params), s, h)

        return jax.lax.fori_loop(0, self.num_substeps, body, x)

    def flow(self, x: jax.Array, u: jax.Array, params: AcrobotParams) -> jax.Array:
        """One control step: RK4, then angles wrapped and velocities clipped.

        A state the RK4 step takes beyond `divergence_bound` is returned as it
        is, so that the base class ends the episode.
        """
        raw = self.integrate(x, u, params)
        out = jnp.stack(
            [
                wrap_angle(raw[0]),
                wrap_angle(raw[1]),
                jnp.clip(raw[2], -params.max_vel_1, params.max_vel_1),
                jnp.clip(raw[3], -params.max_vel_2, params.max_vel_2),
            ]
        )
        beyond = ~jnp.all(jnp.abs(raw) <= params.divergence_bound)  # also non-finite
        return jnp.where(beyond, raw, out)

    def actuation(self, action: jax.Array, params: AcrobotParams) -> jax.Array:
        return params.action_scale * action

    def target(self, params: AcrobotParams) -> jax.Array:
        dtype = jnp.result_type(float)
        return jnp.array([jnp.pi / 2.0, 0.0, 0.0, 0.0], dtype)

    def initial_centre(self, params: AcrobotParams) -> jax.Array:
        """The centre of the initial distribution: theta1 mid-range, the rest 0."""
        mid = 0.5 * (params.init_theta1_low + params.init_theta1_high)
        zero = jnp.zeros_like(jnp.asarray(mid))
        return jnp.stack([jnp.asarray(mid), zero, zero, zero]).astype(jnp.result_type(float))

    def reset_env(self, key, params):
        dtype = jnp.result_type(float)
        key_1, key_rest = jax.random.split(key)
        theta1 = jax.random.uniform(
            key_1, (1,), dtype, params.init_theta1_low, params.init_theta1_high
        )
        half = jnp.sqrt(3.0) * params.init_std
        rest = half * jax.random.uniform(key_rest, (3,), dtype, -1.0, 1.0)
        x = jnp.concatenate([theta1, rest]).astype(dtype)
        state = EnvState(x=x, time=jnp.zeros((), jnp.int32), num_diverged=jnp.zeros((), jnp.int32))
        return self.observe(state, params), state

    def stage_cost(self, x, u, params):
        return (
            wrap_angle(x[0] - jnp.pi / 2.0) ** 2
            + wrap_angle(x[1]) ** 2
            + params.velocity_cost * (x[2] ** 2 + x[3] ** 2)
        )

    def observe(self, state, params):
        x = state.x
        return jnp.stack(
            [jnp.cos(x[0]), jnp.sin(x[0]), jnp.cos(x[1]), jnp.sin(x[1]), x[2], x[3]]
        ).astype(x.dtype)

    def observation_bound(self, params: AcrobotParams) -> float:
        """|obs_i| <= this for any state within the divergence bound (noise-free)."""
        return max(1.0, float(params.divergence_bound))

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (1,))

    def observation_space(self, params=None):
        return Box(-jnp.inf, jnp.inf, (6,))

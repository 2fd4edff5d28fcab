"""Quadrotor, as the authors' public code has it: the "MaxEnt misleads" tracking task.

Zhang, Chang, Gao (ICML 2025, arXiv 2506.05615) fly a quadrotor along "a
simple path under small perturbations"; SAC learns the simplified dynamics
and fails the realistic ones, where PPO succeeds. Their public QuadRotor-v0
(github ruipengZ/maxent-mislead, environment/custom_gym/envs/QuadRotor/
quadrotor.py, read at commit a640b60) is, by their README, the realistic
model: four independent rotor speeds. It is `quadrotor_realistic` here,
unchanged. `quadrotor` is the same rigid body flown by collective thrust and
body torques directly, our reading of "simplified" (their simplified model is
not public). entrolab's Crazyflie tasks are `entrolab.envs.crazyflie`.

Model (the public code's). State (x, y, z, vx, vy, vz, roll, pitch, yaw,
p, q, r) with ZYX Euler angles and their rates; constants m = 0.65,
J = (0.75, 0.75, 1.3), kt = 0.313, kd = 7.5e-4, arm L = 0.23, g = 9.81
(unit-less toy values: Bouabdallah's OS4 quadrotor rescaled). Rotor speeds
w in [0, 10]^4 (hover: sqrt(m g / 4 kt) = 2.26) give

    u1 = kt sum w_i^2,   u2 = kt (w1^2 - w3^2),   u3 = kt (w2^2 - w4^2),   u4 = kd (w1^2 + w3^2 - w2^2 - w4^2)

and one explicit (semi-implicit) Euler step of dt = 0.1 per control step:

    v     += (R(roll, pitch, yaw) e3 u1 / m - g e3) dt,     position += v_new dt
    rates += (gyroscopic terms + L (u2, u3, u4) / J) dt  (from the old rates),   angles += rates_new dt

with R e3 = (cos r sin p cos y + sin r sin y, cos r sin p sin y - sin r cos y, cos r cos p)
(r, p, y = roll, pitch, yaw) and the gyroscopic terms q r (Jy - Jz) / Jx,
p r (Jz - Jx) / Jy, p q (Jx - Jy) / Jz. As in the public code, the yaw torque
is L u4 too, and angles are not wrapped.

Task. The reference is x = 1.5 t, y = z = 0, velocity (1.5, 0, 0), for
4 s (40 steps), lagged by one step as in the public code: after step k,
reward and observation use the reference at time (k - 1) dt. Reward (on the
new state) -5 (|ex| + |ey| + |ez|) - |roll| - |pitch| - |yaw|; observation
(9,): (ex, ey, ez, roll, pitch, yaw, evx, evy, evz), reference minus state,
no body rates. Start: x, y ~ U(+-0.1), z ~ U(+-1), velocities U(+-0.1), level
and at rest. No termination. Zero action is free fall (about -6,200);
hovering gives about -720 (the reference runs away at 1.5 m/s). A hand-written
cascaded PD controller gets about -290 with rotor speeds and -80 with thrust and
torques (tests/test_authors_envs.py): rotor speeds saturate and couple thrust and torque.

Actions a in [-1, 1]^4, mapped affinely onto the physical inputs (entrolab's
convention, which gymnasium's and SB3's checkers ask for): low + (a + 1) (high - low) / 2,
after clipping to [-1, 1] again past actuation noise (the public env clips what it
receives). `quadrotor_realistic`: the four rotor speeds in [0, 10]^4, so a = -1 stops a
rotor (free fall is a = -1, the public code's zero action) and a = 0 is speed 5.
`quadrotor`: (u1, u2, u3, u4) in the box those rotor speeds span at the default
coefficients, [0, 400 kt] x [-100 kt, 100 kt]^2 x [-200 kd, 200 kd] (a static box:
overriding kt or kd does not move it): any combination in it is
reachable at once, where rotor speeds couple thrust and torques (no roll
torque without thrust, saturation at 0 and 10).

Departures, in the protocol only: actions in [-1, 1]^4 (above); states are float32 by default (float64
with JAX's x64); a non-finite state or |state| > 1e4 ends the episode through
the base class (`divergence_bound`, far beyond the 80 m of a 4 s free fall);
per-step costs are capped at 1e6 (never reached by the model in 4 s).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from entrolab.envs.core import Environment, EnvParams, EnvState
from entrolab.envs.spaces import Box

MAX_ROTOR_SPEED = 10.0  # rotor speeds are clipped to [0, this], as in the public code


@struct.dataclass
class QuadrotorParams(EnvParams):
    """Every quantity of the public code's quadrotor (its names in comments).

    Attributes:
        dt: control step; mass: m; gravity: g.
        inertia_xx, inertia_yy, inertia_zz: jx, jy, jz.
        thrust_coefficient: kt; drag_torque_coefficient: kd; arm: L.
        path_speed: the reference's speed along x.
        position_weight: weight of |ex| + |ey| + |ez| in the cost (angles weigh 1).
        init_xy, init_z, init_velocity: half-widths of the uniform start.
    """

    max_steps_in_episode: int = 40
    dt: float = 0.1
    mass: float = 0.65
    gravity: float = 9.81
    inertia_xx: float = 0.75
    inertia_yy: float = 0.75
    inertia_zz: float = 1.3
    thrust_coefficient: float = 0.313
    drag_torque_coefficient: float = 7.5e-4
    arm: float = 0.23
    path_speed: float = 1.5
    position_weight: float = 5.0
    init_xy: float = 0.1
    init_z: float = 1.0
    init_velocity: float = 0.1
    divergence_bound: float = 1e4
    cost_cap: float = 1e6


def rotor_inputs(w: jax.Array, params: QuadrotorParams) -> jax.Array:
    """(u1, u2, u3, u4): collective thrust and the three body torques' inputs of rotor speeds w."""
    w2 = w**2
    kt, kd = params.thrust_coefficient, params.drag_torque_coefficient
    return jnp.stack([kt * jnp.sum(w2), kt * (w2[0] - w2[2]), kt * (w2[1] - w2[3]),
                      kd * (w2[0] + w2[2] - w2[1] - w2[3])])


def quadrotor_step(s: jax.Array, u: jax.Array, params: QuadrotorParams) -> jax.Array:
    """One Euler step of the public model; s = (position, velocity, angles, rates), u = (u1..u4)."""
    pos, vel, ang, rate = s[0:3], s[3:6], s[6:9], s[9:12]
    roll, pitch, yaw = ang[0], ang[1], ang[2]
    p, q, r = rate[0], rate[1], rate[2]
    jx, jy, jz = params.inertia_xx, params.inertia_yy, params.inertia_zz
    dt, m = params.dt, params.mass
    cr, sr, cp, sp, cy, sy = jnp.cos(roll), jnp.sin(roll), jnp.cos(pitch), jnp.sin(pitch), jnp.cos(yaw), jnp.sin(yaw)
    acc = jnp.stack([(cr * sp * cy + sr * sy) * u[0] / m, (cr * sp * sy - sr * cy) * u[0] / m,
                     -params.gravity + cr * cp * u[0] / m])
    vel = vel + acc * dt
    pos = pos + vel * dt
    rate_dot = jnp.stack([r * q * (jy - jz) / jx + params.arm * u[1] / jx,
                          r * p * (jz - jx) / jy + params.arm * u[2] / jy,
                          q * p * (jx - jy) / jz + params.arm * u[3] / jz])
    rate = rate + rate_dot * dt
    ang = ang + rate * dt
    return jnp.concatenate([pos, vel, ang, rate])


class Quadrotor(Environment[EnvState, QuadrotorParams]):
    """The public code's quadrotor (see the module docstring); `rotor_speeds=True` is its realistic
    variant (actions: rotor speeds), False the simplified one (actions: thrust and torques).
    State `x` = (position, velocity, roll-pitch-yaw, their rates)."""

    name = "quadrotor"

    def __init__(self, rotor_speeds: bool = False):
        self.rotor_speeds = bool(rotor_speeds)
        if self.rotor_speeds:
            self.input_low, self.input_high = np.zeros(4), np.full(4, MAX_ROTOR_SPEED)
        else:  # the inputs rotor speeds in [0, MAX_ROTOR_SPEED] span, at the default coefficients
            p = QuadrotorParams()
            kt, kd, w2 = p.thrust_coefficient, p.drag_torque_coefficient, MAX_ROTOR_SPEED**2
            self.input_low = np.array([0.0, -kt * w2, -kt * w2, -2 * kd * w2])
            self.input_high = np.array([4 * kt * w2, kt * w2, kt * w2, 2 * kd * w2])

    def default_init_log_std(self, params: QuadrotorParams) -> float | None:
        """Rotor speeds: the authors' PPO starts from log-std -1 in rotor-speed units, i.e.
        log(e^-1 / 5) in [-1, 1] units (-2.61). Thrust and torques: none (the
        simplified model is ours; its natural scale is not the authors')."""
        if not self.rotor_speeds:
            return None
        return -1.0 - math.log(MAX_ROTOR_SPEED / 2.0)

    @property
    def default_params(self) -> QuadrotorParams:
        return QuadrotorParams()

    def to_inputs(self, action: jax.Array) -> jax.Array:
        """The physical inputs (rotor speeds, or thrust and torques) of an action in [-1, 1]^4,
        clipped to [-1, 1] again after actuation noise: low + (a + 1) (high - low) / 2."""
        a = jnp.clip(action, -1.0, 1.0)
        low, high = jnp.asarray(self.input_low, a.dtype), jnp.asarray(self.input_high, a.dtype)
        return low + (a + 1.0) * (high - low) / 2.0

    def actuation(self, action: jax.Array, params: QuadrotorParams) -> jax.Array:
        """(u1, u2, u3, u4) of an action in [-1, 1]^4."""
        inputs = self.to_inputs(action)
        return rotor_inputs(inputs, params) if self.rotor_speeds else inputs

    def reference(self, time: jax.Array, params: QuadrotorParams) -> jax.Array:
        """The reference position the public code uses after `time` steps (lagged by one step)."""
        t = jnp.maximum(time - 1, 0).astype(jnp.result_type(float)) * params.dt
        return jnp.stack([params.path_speed * t, jnp.zeros_like(t), jnp.zeros_like(t)])

    def reset_env(self, key, params):
        k_pos, k_z, k_vel = jax.random.split(key, 3)
        dtype = jnp.result_type(float)
        xy = jax.random.uniform(k_pos, (2,), dtype, -params.init_xy, params.init_xy)
        z = jax.random.uniform(k_z, (1,), dtype, -params.init_z, params.init_z)
        vel = jax.random.uniform(k_vel, (3,), dtype, -params.init_velocity, params.init_velocity)
        x = jnp.concatenate([xy, z, vel, jnp.zeros((6,), dtype)])
        state = EnvState(x=x, time=jnp.zeros((), jnp.int32), num_diverged=jnp.zeros((), jnp.int32))
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        x = quadrotor_step(state.x, self.actuation(action.astype(state.x.dtype), params), params)
        time = state.time + 1
        error = self.reference(time, params).astype(x.dtype) - x[0:3]
        cost = params.position_weight * jnp.sum(jnp.abs(error)) + jnp.sum(jnp.abs(x[6:9]))
        return state.replace(x=x, time=time), cost, {}

    def observe(self, state, params):
        x = state.x
        error = self.reference(state.time, params).astype(x.dtype) - x[0:3]
        velocity_ref = jnp.stack([params.path_speed, 0.0, 0.0]).astype(x.dtype)
        return jnp.concatenate([error, x[6:9], velocity_ref - x[3:6]])

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (4,))

    def observation_bound(self, params: QuadrotorParams) -> float:
        """|obs_i| <= this for any state within the divergence bound (noise-free)."""
        reference = float(params.path_speed) * float(params.dt) * int(params.max_steps_in_episode)
        return float(params.divergence_bound) + reference + float(params.path_speed)

    def observation_space(self, params=None):
        return Box(-jnp.inf, jnp.inf, (9,))


class QuadrotorRealistic(Quadrotor):
    """`Quadrotor(rotor_speeds=True)`: the public QuadRotor-v0, flown by its four rotor speeds."""

    name = "quadrotor_realistic"

    def __init__(self):
        super().__init__(rotor_speeds=True)

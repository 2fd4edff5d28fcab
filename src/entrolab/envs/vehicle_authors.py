"""Vehicle, as the authors' public code has it: the "MaxEnt misleads" task, model and all.

The task of Zhang, Chang, Gao (ICML 2025, arXiv 2506.05615) as coded in
github ruipengZ/maxent-mislead (environment/custom_gym/envs/DBicycle/,
`DBicycle_Env` and `DynamicBicycleState`, read at commit a640b60). Our own
reading of the task, a car with real tyres, is `entrolab.envs.vehicle`
("vehicle"); this is the model the paper's numbers come from ("vehicle_authors").

Model (the public code's, unchanged). State (X, Y, psi, vx, vy, omega), one
explicit Euler step of dt = 0.1 s per control step, in this order:

    X     += (vx cos psi - vy sin psi) dt,     Y += (vx sin psi + vy cos psi) dt
    psi   += omega dt, wrapped into [-pi, pi]
    F_yf   = -Cf arctan((vy + lf omega) / vx - delta),   F_yr = -Cr arctan((vy - lr omega) / vx)
    vx    += (throttle - F_yf sin delta / m - (c_a vx^2 + c_r vx) / m + vy omega) dt
    vy    += (F_yr / m + F_yf cos delta / m - vx omega) dt       (with the new vx)
    omega += (lf F_yf cos delta - lr F_yr) / Iz dt
    vx, vy clipped to [-30, 30] m/s

with m = 1500 kg, Iz = 2250 kg m^2, L = 2.9 m, lf = lr = L/2, Cf = 32 and
Cr = 34 N/rad (as written: tyre forces of tens of newtons, so the car slides
like a puck and throttle, an acceleration in m/s^2, is the real actuator),
c_a = 1.36 (drag c_a vx^2, whatever the sign of vx), c_r = 0.01 (rolling
force 0.01 vx). Actions (throttle, steer) in [-1, 1]^2: throttle in m/s^2,
steer in radians (up to 57 degrees).

Track and target. A natural cubic spline through 8 points of the circle of
radius 10 m (clockwise, starting at polar angle 7 pi / 4, closed), by chord
length, as PythonRobotics' `CubicSpline2D`. The car starts at arc length 9 m,
with the spline's heading there, vx = 3, vy = 0, omega = -1. The target
starts at arc length 13 m and advances by min(6, 1 + 0.1 t) dt per step for
110 positions: after step 109 it stops.

Reward of a step (on the new state and the target's new position):
-0.3 |X^2 + Y^2 - 100| - |T - (X, Y)|. No termination; 200 steps (20 s).
Observation (6,): target minus the point L ahead of (X, Y) along psi, psi,
vx, vy, omega.

Departures, all in the protocol rather than the model:
- the spline is evaluated once, at construction (scipy's natural cubic
  spline), and the car's start and the target's 110 positions are params
  arrays;
- actions are clipped to [-1, 1]^2 by the base class, then again after
  actuation noise (the public env clips the action it receives);
- a state that is not finite (vx reaching exactly 0 divides by zero in the
  public model, which then carries NaN on) ends the episode through the base
  class's divergence handling; `divergence_bound` (1e4 m) and `cost_cap` (1e6)
  are far beyond any state or cost the model reaches in 20 s.

Zero action returns about -76,900 and random actions about -75,600 over an
episode (docs/validation.md; tests/test_precision_envs.py checks a NumPy
transcription).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from scipy.interpolate import CubicSpline

from entrolab.envs.core import Environment, EnvParams, EnvState
from entrolab.envs.spaces import Box

TARGET_POSITIONS = 110  # the public code precomputes this many, then holds the last


@functools.lru_cache(maxsize=4)
def spline_course(radius: float = 10.0, points: int = 8, car_s: float = 9.0, target_s: float = 13.0,
                  dt: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(car start (X, Y, psi), target positions (110, 2)) on the public code's spline (float64).

    The course: `points` points of the circle, clockwise from polar angle 2 pi (points - 1) / points,
    closed; a natural cubic spline of x(s) and y(s) with s the cumulative chord length. The target
    moves min(6, 1 + 0.1 t) dt along s per step, starting at `target_s`."""
    angles = np.flip(np.linspace(0.0, 2.0 * np.pi, points, endpoint=False))
    xs = np.append(radius * np.cos(angles), radius * np.cos(angles[0]))
    ys = np.append(radius * np.sin(angles), radius * np.sin(angles[0]))
    s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))])
    sx, sy = CubicSpline(s, xs, bc_type="natural"), CubicSpline(s, ys, bc_type="natural")
    car = np.array([sx(car_s), sy(car_s), math.atan2(sy(car_s, 1), sx(car_s, 1))])
    arc, t, path = target_s, 0.0, []
    for _ in range(TARGET_POSITIONS):
        path.append((sx(arc), sy(arc)))
        arc += min(6.0, 1.0 + 0.1 * t) * dt
        t += dt
    return car, np.asarray(path, np.float64)


@struct.dataclass
class AuthorsVehicleParams(EnvParams):
    """Every quantity of the public code's vehicle task (its names in comments).

    Attributes:
        dt: control step (s).
        mass, yaw_inertia: m (kg), Iz (kg m^2).
        wheelbase: L (m); lf = lr = L / 2, and the observed point is L ahead.
        cornering_stiffness_front, cornering_stiffness_rear: Cf, Cr (N/rad, as written).
        aero_drag: c_a (force c_a vx^2); rolling: c_r1 (force c_r1 vx).
        max_speed: |vx|, |vy| clip (m/s).
        max_steer: steering clip (rad); max_throttle: throttle clip (m/s^2).
        circle_radius: R of the off-track term |X^2 + Y^2 - R^2|.
        off_track_weight: its weight (0.3).
        init_vx, init_vy, init_yaw_rate: the start's body velocities and yaw rate.
        start: the car's start (X, Y, psi) on the spline; target_path: the target's positions.
    """

    max_steps_in_episode: int = 200
    dt: float = 0.1
    mass: float = 1500.0
    yaw_inertia: float = 2250.0
    wheelbase: float = 2.9
    cornering_stiffness_front: float = 32.0
    cornering_stiffness_rear: float = 34.0
    aero_drag: float = 1.36
    rolling: float = 0.01
    max_speed: float = 30.0
    max_steer: float = 1.0
    max_throttle: float = 1.0
    circle_radius: float = 10.0
    off_track_weight: float = 0.3
    init_vx: float = 3.0
    init_vy: float = 0.0
    init_yaw_rate: float = -1.0
    start: jax.Array | None = None  # (3,): X, Y, psi
    target_path: jax.Array | None = None  # (110, 2)
    divergence_bound: float = 1e4
    cost_cap: float = 1e6


def authors_vehicle_step(x: jax.Array, action: jax.Array, params: AuthorsVehicleParams) -> jax.Array:
    """One explicit Euler step of the public code's dynamic bicycle; x = (X, Y, psi, vx, vy, omega)."""
    X, Y, psi, vx, vy, om = x[0], x[1], x[2], x[3], x[4], x[5]
    throttle = jnp.clip(action[0], -params.max_throttle, params.max_throttle)
    delta = jnp.clip(action[1], -params.max_steer, params.max_steer)
    dt, m = params.dt, params.mass
    lf = lr = params.wheelbase / 2.0
    X = X + (vx * jnp.cos(psi) - vy * jnp.sin(psi)) * dt
    Y = Y + (vx * jnp.sin(psi) + vy * jnp.cos(psi)) * dt
    psi = _wrap(psi + om * dt)
    f_front = -params.cornering_stiffness_front * jnp.arctan((vy + lf * om) / vx - delta)
    f_rear = -params.cornering_stiffness_rear * jnp.arctan((vy - lr * om) / vx)
    load = params.aero_drag * vx**2 + params.rolling * vx
    vx_new = vx + (throttle - f_front * jnp.sin(delta) / m - load / m + vy * om) * dt
    vy_new = vy + (f_rear / m + f_front * jnp.cos(delta) / m - vx_new * om) * dt
    om_new = om + (f_front * lf * jnp.cos(delta) - f_rear * lr) / params.yaw_inertia * dt
    vx_new = jnp.clip(vx_new, -params.max_speed, params.max_speed)
    vy_new = jnp.clip(vy_new, -params.max_speed, params.max_speed)
    return jnp.stack([X, Y, psi, vx_new, vy_new, om_new])


def _wrap(angle: jax.Array) -> jax.Array:
    """Into [-pi, pi], as the public code's `normalize_angle` (a while loop of +-2 pi)."""
    return jnp.where(angle > jnp.pi, angle - 2 * jnp.pi * jnp.ceil((angle - jnp.pi) / (2 * jnp.pi)),
                     jnp.where(angle < -jnp.pi, angle + 2 * jnp.pi * jnp.ceil((-jnp.pi - angle) / (2 * jnp.pi)),
                               angle))


class AuthorsVehicle(Environment[EnvState, AuthorsVehicleParams]):
    """The public code's vehicle task (see the module docstring). State `x` = (X, Y, psi, vx, vy, omega)."""

    name = "vehicle_authors"

    def __init__(self):  # no static options (make() reads the constructor's signature)
        pass

    def default_init_log_std(self, params: AuthorsVehicleParams) -> float:
        """The authors' PPO starts from log-std -1 on throttle and steering (std 0.37), whose
        range [-1, 1] is this env's action range."""
        return -1.0

    @property
    def default_params(self) -> AuthorsVehicleParams:
        car, path = spline_course()
        dtype = jnp.result_type(float)
        return AuthorsVehicleParams(start=jnp.asarray(car, dtype), target_path=jnp.asarray(path, dtype))

    def target(self, time: jax.Array, params: AuthorsVehicleParams) -> jax.Array:
        """The target after `time` steps (it stops at the last precomputed position)."""
        index = jnp.minimum(time, params.target_path.shape[0] - 1)
        return params.target_path[index]

    def reset_env(self, key, params):
        s = params.start
        x = jnp.stack([s[0], s[1], s[2], jnp.asarray(params.init_vx, s.dtype), jnp.asarray(params.init_vy, s.dtype),
                       jnp.asarray(params.init_yaw_rate, s.dtype)])
        state = EnvState(x=x, time=jnp.zeros((), jnp.int32), num_diverged=jnp.zeros((), jnp.int32))
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        x = authors_vehicle_step(state.x, action.astype(state.x.dtype), params)
        time = state.time + 1
        off_track = jnp.abs(x[0] ** 2 + x[1] ** 2 - params.circle_radius**2)
        distance = jnp.linalg.norm(self.target(time, params).astype(x.dtype) - x[:2])
        return state.replace(x=x, time=time), params.off_track_weight * off_track + distance, {}

    def observe(self, state, params):
        x = state.x
        front = x[:2] + params.wheelbase * jnp.stack([jnp.cos(x[2]), jnp.sin(x[2])])
        return jnp.concatenate([self.target(state.time, params).astype(x.dtype) - front, x[2:6]]).astype(x.dtype)

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (2,))

    def observation_bound(self, params: AuthorsVehicleParams) -> float:
        """|obs_i| <= this for any state within the divergence bound (noise-free)."""
        return float(params.divergence_bound) + float(params.circle_radius) + float(params.wheelbase)

    def observation_space(self, params=None):
        return Box(-jnp.inf, jnp.inf, (6,))

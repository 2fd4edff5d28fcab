"""Vehicle: a car that follows a target moving along a circle (dynamic bicycle model).

One of the precision-control tasks of "MaxEnt misleads" (Zhang, Chang, Gao,
ICML 2025, arXiv 2506.05615). The task is rebuilt from the public code
(github ruipengZ/maxent-mislead, environment/custom_gym/envs/DBicycle/,
commit ba966a6; facts in notes/research.md). The vehicle model is the
standard dynamic bicycle model. Each departure from the public code is listed
at the end of this docstring.

Vehicle model. This is the planar single-track ("bicycle") model with linear
tyres, as in Rajamani, *Vehicle Dynamics and Control* (2nd ed., 2012), sec. 2.3,
written in body-frame velocities. The state is x = (X, Y, psi, vx, vy, r, t):

    X' = vx cos psi - vy sin psi,      Y' = vx sin psi + vy cos psi,      psi' = r
    m (vx' - vy r) = F_drive - F_yf sin delta - F_aero - F_roll
    m (vy' + vx r) = F_yf cos delta + F_yr
    Iz r'          = lf F_yf cos delta - lr F_yr
    t'             = 1

(X, Y) is the centre of gravity in the world frame (metres). psi is the yaw,
counter-clockwise from +X. vx and vy are the longitudinal and lateral
velocities in the body frame. r is the yaw rate (positive counter-clockwise).
t is the elapsed time; the target's position is a closed-form function of t,
so x alone determines the next step.

Tyres. Each axle has a linear lateral force F_y = -C alpha. The slip angle
alpha is the angle between the wheel's heading and its velocity:

    alpha = arctan(v_lat / max(|v_long|, min_slip_speed)).

(v_long, v_lat) is the wheel-centre velocity in the wheel's own frame. For
the front wheel, steered by delta, that is
v_long = vx cos delta + (vy + lf r) sin delta and
v_lat = -vx sin delta + (vy + lf r) cos delta. For the rear wheel it is
(vx, vy - lr r). For small angles this is Rajamani's
alpha_f = (vy + lf r)/vx - delta and alpha_r = (vy - lr r)/vx (tested in
tests/test_precision_envs.py). Dividing by |v_long| keeps the force opposed
to lateral sliding when reversing. The low-speed guard `min_slip_speed`
(1 m/s) keeps vx -> 0 finite: below it a tyre acts as a viscous damper. C is
per axle (Rajamani's 2 C_alpha). There is no friction limit, which is the
linear-tyre idealisation.

Longitudinal forces. The drive force F_drive = max_drive_force * throttle is
applied at the rear wheel along the body x axis; a negative throttle brakes,
then reverses. Aerodynamic drag is F_aero = aero_drag * vx |vx|, with
aero_drag = 1.36 N s^2/m^2, a standard 1/2 rho C_d A. Rolling resistance is
F_roll = rolling_resistance * m * g * tanh(vx / rolling_smoothing_speed),
with rolling_resistance = 0.01 (a standard dimensionless coefficient). The
tanh is a smooth sign, so that a stopped car does not chatter.

Parameters. From the public code: L = 2.9 m, split lf = lr = 1.45 m as
there; m = 1500 kg; Iz = 2250 kg m^2; aero 1.36; rolling 0.01; dt = 0.1 s;
20 s episodes (200 steps). Cornering stiffness: the public code gives
Cf = 32 and Cr = 34 "N/rad". These are the widely copied PythonRobotics-style
values Cf = 2 x 1600 and Cr = 2 x 1700 N/rad, divided by 100. Read as N/rad,
they make a 1500 kg car unable to turn. In the linear range (|alpha| < 0.1)
the axles give at most (32 + 34) * 0.1 / 1500 = 0.004 m/s^2 of lateral
acceleration. The 10 m circle at the target's 1-3 m/s needs 0.1-0.9 m/s^2.
The initial yaw rate r = -1 rad/s would then hardly decay (yaw damping
~0.02 /s), and the car would slide like a puck. We therefore read the given
numbers in kN/rad: the defaults are Cf = 32 000 and Cr = 34 000 N/rad per
axle. These are ordinary passenger-car values, and Cr > Cf makes the car
understeer, so it is stable. The public code's tyres are
`cornering_stiffness_front=32.0, cornering_stiffness_rear=34.0`.

Integration. `num_substeps` (static, default 10) classical RK4 steps per
control step, so h = 0.01 s. With the real stiffnesses the lateral and yaw
modes are fast: rates (Cf + Cr)/(m vx) ~ 44/vx /s and
(Cf lf^2 + Cr lr^2)/(Iz vx) ~ 62/vx /s. h * rate <= 0.62 at the guard speed
1 m/s, well inside RK4's stability region. The yaw is wrapped into
[-pi, pi) after each control step.

Actions: a = (throttle, steer) in [-1, 1]^2. F_drive = 1500 N * a_0, which is
1 m/s^2 at m = 1500; the public code adds the throttle directly as an
acceleration in m/s^2. delta = max_steer * a_1 with max_steer = pi/6 (30
degrees), the usual limit for this model family. The public code steers by
a_1 radians, up to 57 degrees, past any real steering lock and far outside
the linear-tyre range.

Task. The track is the circle of radius 10 m centred at the origin. The car
starts on it at the polar angle `start_angle` (default -pi/2, so at
(0, -10)), heading along the circle clockwise (psi = start_angle - pi/2),
with vx = 3 m/s, vy = 0 and r = -1 rad/s, as in the public code. The target
starts `target_lead` = 4 m ahead along the circle and moves clockwise at
speed min(6, 1 + 0.1 t) m/s, so 1 to 3 m/s within an episode. Its arc
length travelled is the exact integral of that speed. research.md's
"13 m ahead" is the target's arc-length coordinate on the public code's
spline; the car starts at arc length 9 m on the same spline, which is 4 m
behind.

Cost of a step, on the state it leads to (reward = -cost):

    off_track_weight |X^2 + Y^2 - R^2| + |T(t) - (X, Y)|,   off_track_weight = 0.3

T is the target and (X, Y) the car's reference point, as in the public code.
There is no early termination. The cost reaches 1000 (the default
cost_cap) only about 58 m from the origin. A random or zero policy leaves
the circle within seconds, so per-step costs of tens to hundreds are
common: see docs/validation.md for the returns of zero and random actions.

Observation (6,): (T_X - F_X, T_Y - F_Y, psi, vx, vy, r). F = (X, Y) +
lf (cos psi, sin psi) is the front axle. Offsets are in the world frame, as
in the public code.

Departures from the public code, each a documented choice:
- the stiffness units (above);
- the steering limit (above);
- the standard rolling force. The public code uses 0.01 * vx newtons, which
  is negligible;
- drag that opposes the motion when reversing;
- RK4 sub-steps instead of one explicit Euler step of 0.1 s. Explicit Euler
  is unstable with real tyres;
- no velocity clipping (the public code clips at +-30 m/s; the drive force,
  drag and rolling resistance balance near 31 m/s anyway);
- the exact circle instead of a cubic spline through 8 of its points;
- a target that keeps moving for the whole episode. The public code stops
  it after 109 steps (10.9 s);
- the front axle at lf, not L, ahead of the reference point. The public
  code places it at L ahead, as if (X, Y) were the rear axle.

The start is deterministic by default (`init_std` = 0). A positive init_std
adds N(0, init_std^2) to each of X, Y (m), psi (rad), vx, vy (m/s) and
r (rad/s). The rest of the protocol is entrolab's (`core.Environment`):
clipping, actuation and observation noise, divergence handling and
auto-reset.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from entrolab.envs.acrobot import wrap_angle
from entrolab.envs.core import Environment, EnvParams, EnvState
from entrolab.envs.lorenz import rk4_step
from entrolab.envs.spaces import Box


@struct.dataclass
class VehicleParams(EnvParams):
    """Every physical quantity of the vehicle task (all vmappable).

    Attributes:
        dt: duration of a control step (s).
        mass: m (kg).
        yaw_inertia: Iz (kg m^2).
        front_axle_distance, rear_axle_distance: lf, lr, from the centre of
            gravity (m); the wheelbase is lf + lr = 2.9.
        cornering_stiffness_front, cornering_stiffness_rear: Cf, Cr per axle (N/rad).
        aero_drag: F_aero = aero_drag * vx |vx| (N s^2 / m^2).
        rolling_resistance: dimensionless coefficient c_rr (F = c_rr m g).
        rolling_smoothing_speed: speed scale of the tanh smooth sign (m/s).
        gravity: g (m/s^2).
        min_slip_speed: low-speed guard in the slip angles (m/s).
        max_drive_force: drive force at throttle 1 (N).
        max_steer: steering angle at steer 1 (rad).
        circle_radius: R, the track's radius (m); centred at the origin.
        start_angle: polar angle of the car's start on the circle (rad).
        init_vx, init_vy, init_yaw_rate: initial body velocities (m/s) and yaw rate (rad/s).
        init_std: std of Gaussian offsets of the initial state (0: fixed start).
        target_lead: the target's head start along the circle (m).
        target_speed_initial, target_acceleration, target_speed_max: the
            target's speed min(target_speed_max, initial + acceleration t).
        off_track_weight: weight of |X^2 + Y^2 - R^2| in the cost.
    """

    max_steps_in_episode: int = 200
    dt: float = 0.1
    mass: float = 1500.0
    yaw_inertia: float = 2250.0
    front_axle_distance: float = 1.45
    rear_axle_distance: float = 1.45
    cornering_stiffness_front: float = 32000.0
    cornering_stiffness_rear: float = 34000.0
    aero_drag: float = 1.36
    rolling_resistance: float = 0.01
    rolling_smoothing_speed: float = 0.1
    gravity: float = 9.81
    min_slip_speed: float = 1.0
    max_drive_force: float = 1500.0
    max_steer: float = math.pi / 6.0
    circle_radius: float = 10.0
    start_angle: float = -math.pi / 2.0
    init_vx: float = 3.0
    init_vy: float = 0.0
    init_yaw_rate: float = -1.0
    init_std: float = 0.0
    target_lead: float = 4.0
    target_speed_initial: float = 1.0
    target_acceleration: float = 0.1
    target_speed_max: float = 6.0
    off_track_weight: float = 0.3
    divergence_bound: float = 1e3
    # binds only ~58 m from the origin (0.3 |r^2 - 100| = 1000)
    cost_cap: float = 1e3


def lateral_tyre_force(
    v_long: jax.Array, v_lat: jax.Array, stiffness: jax.Array, min_speed: jax.Array
) -> jax.Array:
    """Linear tyre: -C arctan(v_lat / max(|v_long|, min_speed)), in the wheel frame (N)."""
    return -stiffness * jnp.arctan(v_lat / jnp.maximum(jnp.abs(v_long), min_speed))


def vehicle_vector_field(x: jax.Array, u: jax.Array, params: VehicleParams) -> jax.Array:
    """dx/dt of the dynamic bicycle for x = (X, Y, psi, vx, vy, r, t), u = (F_drive [N], delta [rad])."""
    psi, vx, vy, r = x[2], x[3], x[4], x[5]
    drive, delta = u[0], u[1]
    m, iz = params.mass, params.yaw_inertia
    lf, lr = params.front_axle_distance, params.rear_axle_distance
    cos_d, sin_d = jnp.cos(delta), jnp.sin(delta)
    # the front wheel's velocity in its own (steered) frame
    v_front_lat_body = vy + lf * r
    f_front = lateral_tyre_force(
        vx * cos_d + v_front_lat_body * sin_d,
        -vx * sin_d + v_front_lat_body * cos_d,
        params.cornering_stiffness_front,
        params.min_slip_speed,
    )
    f_rear = lateral_tyre_force(
        vx, vy - lr * r, params.cornering_stiffness_rear, params.min_slip_speed
    )
    rolling = params.rolling_resistance * m * params.gravity * jnp.tanh(vx / params.rolling_smoothing_speed)
    resistance = params.aero_drag * vx * jnp.abs(vx) + rolling
    cos_p, sin_p = jnp.cos(psi), jnp.sin(psi)
    return jnp.stack(
        [
            vx * cos_p - vy * sin_p,
            vx * sin_p + vy * cos_p,
            r,
            (drive - f_front * sin_d - resistance) / m + vy * r,
            (f_front * cos_d + f_rear) / m - vx * r,
            (lf * f_front * cos_d - lr * f_rear) / iz,
            jnp.ones_like(r),
        ]
    )


def target_arc_length(t: jax.Array, params: VehicleParams) -> jax.Array:
    """Distance the target has travelled along the circle by time t (exact integral of its speed)."""
    v0, v_max = params.target_speed_initial, params.target_speed_max
    a = jnp.maximum(params.target_acceleration, 1e-12)  # a = 0: constant speed v0
    t_max = jnp.maximum(v_max - v0, 0.0) / a  # when the speed reaches its maximum
    ramp = jnp.minimum(t, t_max)
    return v0 * ramp + 0.5 * a * ramp**2 + jnp.minimum(v0 + a * t_max, v_max) * jnp.maximum(t - t_max, 0.0)


def target_position(t: jax.Array, params: VehicleParams) -> jax.Array:
    """The target (T_X, T_Y) at time t; it moves clockwise, starting target_lead ahead of the car."""
    angle = params.start_angle - (params.target_lead + target_arc_length(t, params)) / params.circle_radius
    return params.circle_radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)])


class Vehicle(Environment[EnvState, VehicleParams]):
    """A car following a target moving on a circle (see the module docstring).

    State `x` = (X, Y, psi, vx, vy, r, t).
    """

    name = "vehicle"

    def default_init_log_std(self, params: VehicleParams) -> float:
        """The authors' PPO starts from log-std -1 on their throttle and steering in [-1, 1]
        (std 0.37), which are this env's action units too."""
        return -1.0

    def __init__(self, num_substeps: int = 10):
        if int(num_substeps) < 1:
            raise ValueError(f"vehicle: num_substeps must be >= 1, got {num_substeps}")
        self.num_substeps = int(num_substeps)

    @property
    def default_params(self) -> VehicleParams:
        return VehicleParams()

    # ---- physics --------------------------------------------------------------
    def actuation(self, action: jax.Array, params: VehicleParams) -> jax.Array:
        """(throttle, steer) in [-1, 1]^2 -> (drive force [N], steering angle [rad])."""
        return jnp.stack([params.max_drive_force * action[0], params.max_steer * action[1]])

    def integrate(self, x: jax.Array, u: jax.Array, params: VehicleParams) -> jax.Array:
        """RK4 over one control step under constant u, no wrapping."""
        h = params.dt / self.num_substeps

        def body(_, s):
            return rk4_step(lambda y: vehicle_vector_field(y, u, params), s, h)

        return jax.lax.fori_loop(0, self.num_substeps, body, x)

    def flow(self, x: jax.Array, u: jax.Array, params: VehicleParams) -> jax.Array:
        """One control step: RK4, then the yaw wrapped into [-pi, pi) and t = t + dt.

        t is advanced once per control step rather than summed over the
        sub-steps (one float32 rounding per step, not num_substeps). A state
        beyond `divergence_bound` is returned unwrapped, so that the base
        class ends the episode.
        """
        raw = self.integrate(x, u, params)
        out = raw.at[2].set(wrap_angle(raw[2])).at[6].set(x[6] + params.dt)
        beyond = ~jnp.all(jnp.abs(raw) <= params.divergence_bound)  # also non-finite
        return jnp.where(beyond, raw, out)

    def front_axle(self, x: jax.Array, params: VehicleParams) -> jax.Array:
        return x[:2] + params.front_axle_distance * jnp.stack([jnp.cos(x[2]), jnp.sin(x[2])])

    def stage_cost(self, x: jax.Array, params: VehicleParams) -> jax.Array:
        off_track = jnp.abs(x[0] ** 2 + x[1] ** 2 - params.circle_radius**2)
        distance = jnp.linalg.norm(target_position(x[6], params).astype(x.dtype) - x[:2])
        return params.off_track_weight * off_track + distance

    # ---- the protocol ------------------------------------------------------------
    def initial_centre(self, params: VehicleParams) -> jax.Array:
        """The noise-free initial state (on the circle, heading clockwise)."""
        angle = jnp.asarray(params.start_angle)
        values = [
            params.circle_radius * jnp.cos(angle),
            params.circle_radius * jnp.sin(angle),
            wrap_angle(angle - jnp.pi / 2.0),
            params.init_vx,
            params.init_vy,
            params.init_yaw_rate,
            0.0,
        ]
        return jnp.stack([jnp.asarray(v) for v in values]).astype(jnp.result_type(float))

    def reset_env(self, key, params):
        centre = self.initial_centre(params)
        offset = params.init_std * jax.random.normal(key, (6,), centre.dtype)
        x = centre.at[:6].add(offset)
        x = x.at[2].set(wrap_angle(x[2]))
        state = EnvState(x=x, time=jnp.zeros((), jnp.int32), num_diverged=jnp.zeros((), jnp.int32))
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        u = self.actuation(action.astype(state.x.dtype), params)
        x = self.flow(state.x, u, params)
        cost = self.stage_cost(x, params)
        return state.replace(x=x, time=state.time + 1), cost, {}

    def observe(self, state, params):
        x = state.x
        offset = target_position(x[6], params).astype(x.dtype) - self.front_axle(x, params)
        return jnp.concatenate([offset, x[2:6]]).astype(x.dtype)

    def observation_bound(self, params: VehicleParams) -> float:
        """|obs_i| <= this for any state within the divergence bound (noise-free)."""
        bound = float(params.divergence_bound)
        return bound + float(params.circle_radius) + float(params.front_axle_distance)

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (2,))

    def observation_space(self, params=None):
        return Box(-jnp.inf, jnp.inf, (6,))

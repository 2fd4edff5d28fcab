"""Crazyflie: a Crazyflie 2.x tracking a slow horizontal circle, flown by its four rotor speeds.

entrolab's own quadrotor task in the spirit of "MaxEnt misleads" (Zhang,
Chang, Gao, ICML 2025, arXiv 2506.05615), where a quadrotor tracks "a simple
path under small perturbations" with the four rotor speeds as actions, and
SAC learns the simplified dynamics but fails on the realistic ones. The
authors' public QuadRotor-v0 (a 12-state Euler-angle model, straight line at
1.5 m/s for 4 s) is `entrolab.envs.quadrotor` ("quadrotor_realistic", and
"quadrotor" with thrust and torques as actions); this module is a different
task built from a standard published vehicle, a choice, and much easier
(its zero action already hovers).

Vehicle: the Crazyflie 2.x as modelled in gym-pybullet-drones (Panerati et
al., IROS 2021; assets/cf2x.urdf, after Landry 2015 and Förster 2015):
m = 0.027 kg, arm 0.0397 m, kf = 3.16e-10 N/rpm^2, km = 7.94e-12 N m/rpm^2,
Ixx = Iyy = 1.4e-5 and Izz = 2.17e-5 kg m^2, thrust-to-weight ratio 2.25,
g = 9.8. The hover speed is sqrt(m g / (4 kf)) = 14 468 rpm.

Geometry ("X" configuration). Rotor i sits at arm (cos b_i, sin b_i, 0) in
the body frame, with b_i = 45, 135, 225 and 315 degrees: 0 front-left,
1 back-left, 2 back-right, 3 front-right. Body x points forward, z up.
Rotor i pushes f_i = kf w_i^2 along body z. Rotors 0 and 2 spin
counter-clockwise seen from above, so their drag torque on the body is
-km w_i^2 about z; rotors 1 and 3 spin clockwise and give +km w_i^2.
(gym-pybullet-drones' CF2X has the same yaw torque.) The roll and pitch
torques are sum_i r_i x f_i, computed from these positions, so their signs
follow from the geometry.

Rigid body, with state (p, v, q, Omega): world position and velocity, the
unit quaternion q = (w, x, y, z) from body to world, and body rates:

    p' = v
    m v' = R(q) (0, 0, sum f_i) - (0, 0, m g) + F_drag + F_wind
    q' = 1/2 q (x) (0, Omega)
    J Omega' = tau - Omega x J Omega,       J = diag(Ixx, Iyy, Izz)

Rotor gyroscopic effects and ground effect are neglected. Each control step
is integrated by `num_substeps` (static, default 8) classical RK4 steps, and
q is renormalised after each one. The control rate is 30 Hz (dt = 1/30 s)
and the physics runs at 240 Hz, the defaults of gym-pybullet-drones.

Actions: a in [-1, 1]^4 are the commanded rotor speeds, mapped as in
gym-pybullet-drones' ActionType.RPM:

    w_cmd,i = w_hover (1 + rotor_speed_range a_i),   rotor_speed_range = 0.05

that is, +-5 % of the hover speed, or +-10 % of the hover thrust. After
actuation noise the command is clipped to [0, sqrt(thrust_to_weight) w_hover],
so no rotor runs backwards or above its maximum. rotor_speed_range = 1 with
a = -1 stops the rotors.

The two variants are selected by the static option `realistic`, or by the
registered names `crazyflie` and `crazyflie_realistic`:

- `crazyflie` (simplified): rotors reach their commanded speed instantly.
  The default params have no drag and no wind.
- `crazyflie_realistic`: each rotor speed is a state that follows a
  first-order lag, w_i' = (w_cmd,i - w_i) / motor_time_constant. The time
  constant is 0.05 s, a choice: published Crazyflie values range from a few
  ms to ~0.15 s (unconfirmed). The state adds the four rotor speeds, stored
  in krpm so that every state entry is O(1-10). The default params add
  gym-pybullet-drones' linear rotor drag and a random wind force:
  - Drag, in the body frame:
    F_drag = -R diag(c_xy, c_xy, c_z) R^T v * sum_i w_i [rad/s], with
    c_xy = 9.1785e-7 and c_z = 10.311e-7 kg/rad. At hover this is a
    5.6 mN per m/s horizontal drag, a ~5 s velocity time constant.
  - Wind: a force held over each control step and updated between steps as
    an Ornstein-Uhlenbeck process,
    F_wind' = a F_wind + wind_force_std sqrt(1 - a^2) xi with
    a = exp(-dt / wind_correlation_time) and xi ~ N(0, I_3). The initial
    force is drawn from the stationary law N(0, wind_force_std^2 I_3).
    Defaults: 5 mN std (1.9 % of the weight, 0.19 m/s^2) and a 1 s
    correlation time.
  The drag and wind params act in the simplified variant too, if set.
  motor_time_constant acts only in the realistic one.

Task: track the horizontal circle p_ref(t) = (r cos wt, r sin wt, h), flown
counter-clockwise. r = 0.5 m, h = 1 m and w = 2 pi / 8 s, so the reference
moves at 0.39 m/s and one lap is one 8 s episode (240 steps). The drone
starts level and at rest, with its rotors at hover, at p_ref(0) plus
N(0, init_std^2) in each coordinate. Its velocity is N(0, init_std^2) too;
init_std = 0.05 m or m/s.

Cost of a step, on the state it leads to (reward = -cost):

    |p - p_ref(t)| + rate_cost |Omega|^2,      rate_cost = 1e-3

The distance is in metres. The rate term is small (0.01 at 3 rad/s); it
discourages spinning, which the distance alone does not see.

Termination. An episode ends (`terminated`) when the drone goes below the
ground (z < 0), flips (tilt arccos R_33 > max_tilt = pi/2, so its thrust
axis points below the horizon), or strays more than max_distance = 2 m from
the reference. That step's reward is -cost_cap times the steps left,
counting itself (cost_cap = 3): the same bounded penalty the base class
gives to divergence. Every per-step cost is capped at cost_cap, so ending an
episode early is never better than staying. Otherwise the episode truncates
at max_steps_in_episode. `info` carries booleans `crashed`, `flipped` and
`strayed`.

Observation: the 12 entries p_ref - p (3), v_ref - v (3), roll, pitch, yaw
(ZYX Euler angles of q, in radians) (3), Omega (3). The realistic variant
adds the four normalised rotor speeds (w_i / w_hover - 1) / rotor_speed_range,
which equal the action that commands them in steady state: 16 entries. The
wind is not observed.

The rest of the protocol is entrolab's (`core.Environment`): clipping,
actuation and observation noise, divergence handling and auto-reset.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from entrolab.envs.core import Environment, EnvParams, EnvState
from entrolab.envs.lorenz import rk4_step
from entrolab.envs.spaces import Box

RPM_TO_RAD_S = 2.0 * math.pi / 60.0

# Layout of the state vector x.
POSITION = slice(0, 3)
VELOCITY = slice(3, 6)
QUATERNION = slice(6, 10)
BODY_RATES = slice(10, 13)
WIND = slice(13, 16)
TIME = 16
ROTORS = slice(17, 21)  # realistic variant only, in krpm

# Rotor i sits at arm / sqrt(2) (X_SIGNS[i], Y_SIGNS[i], 0) in the body frame (X
# configuration: 45, 135, 225, 315 degrees; exact signs keep hover exactly balanced);
# YAW_SIGNS[i] is the sign of its drag torque about body z.
ROTOR_X_SIGNS = (1.0, -1.0, -1.0, 1.0)
ROTOR_Y_SIGNS = (1.0, 1.0, -1.0, -1.0)
ROTOR_YAW_SIGNS = (-1.0, 1.0, -1.0, 1.0)


@struct.dataclass
class CrazyflieParams(EnvParams):
    """Every physical quantity of the Crazyflie task (all vmappable).

    Attributes:
        dt: duration of a control step (s).
        mass: m (kg).
        arm: distance from the centre to each rotor (m).
        thrust_coefficient: kf, thrust = kf w^2 with w in rpm (N / rpm^2).
        torque_coefficient: km, drag torque = km w^2 (N m / rpm^2).
        inertia_xx, inertia_yy, inertia_zz: principal moments of inertia (kg m^2).
        gravity: g (m/s^2).
        thrust_to_weight: maximum total thrust over the weight (caps the rotor speeds).
        rotor_speed_range: the action +-1 commands w_hover (1 +- rotor_speed_range).
        motor_time_constant: first-order rotor lag (s), realistic variant only.
        drag_coefficient_xy, drag_coefficient_z: body-frame drag per unit of
            total rotor speed (kg/rad); 0: no drag.
        wind_force_std: stationary std of each wind-force component (N); 0: no wind.
        wind_correlation_time: correlation time of the wind force (s).
        path_radius, path_height, path_period: the reference circle (m, m, s).
        init_std: std of the initial position (m) and velocity (m/s) offsets.
        rate_cost: weight of |Omega|^2 (rad^2/s^2) in the cost.
        max_distance: the episode ends beyond this distance from the reference (m).
        max_tilt: the episode ends when the tilt of the thrust axis exceeds this (rad).
    """

    max_steps_in_episode: int = 240
    dt: float = 1.0 / 30.0
    mass: float = 0.027
    arm: float = 0.0397
    thrust_coefficient: float = 3.16e-10
    torque_coefficient: float = 7.94e-12
    inertia_xx: float = 1.4e-5
    inertia_yy: float = 1.4e-5
    inertia_zz: float = 2.17e-5
    gravity: float = 9.8
    thrust_to_weight: float = 2.25
    rotor_speed_range: float = 0.05
    motor_time_constant: float = 0.05
    drag_coefficient_xy: float = 0.0
    drag_coefficient_z: float = 0.0
    wind_force_std: float = 0.0
    wind_correlation_time: float = 1.0
    path_radius: float = 0.5
    path_height: float = 1.0
    path_period: float = 8.0
    init_std: float = 0.05
    rate_cost: float = 1e-3
    max_distance: float = 2.0
    max_tilt: float = math.pi / 2.0
    divergence_bound: float = 1e3
    # above every per-step cost of a drone still in flight (distance <= 2 m); also
    # the per-remaining-step penalty of a crash, flip or stray
    cost_cap: float = 3.0


REALISTIC_DEFAULTS = {
    "drag_coefficient_xy": 9.1785e-7,
    "drag_coefficient_z": 10.311e-7,
    "wind_force_std": 0.005,
}


def hover_rotor_speed(params: CrazyflieParams) -> jax.Array:
    """The rotor speed at which four rotors carry the weight, in krpm."""
    return jnp.sqrt(params.mass * params.gravity / (4.0 * params.thrust_coefficient)) / 1000.0


def rotation_matrix(q: jax.Array) -> jax.Array:
    """R(q) for a unit quaternion q = (w, x, y, z): body-to-world, shape (3, 3)."""
    w, x, y, z = q[0], q[1], q[2], q[3]
    return jnp.stack(
        [
            jnp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)]),
            jnp.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)]),
            jnp.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]),
        ]
    )


def euler_angles(q: jax.Array) -> jax.Array:
    """(roll, pitch, yaw) of q, ZYX convention (R = Rz(yaw) Ry(pitch) Rx(roll)), shape (3,)."""
    rot = rotation_matrix(q)
    roll = jnp.arctan2(rot[2, 1], rot[2, 2])
    pitch = -jnp.arcsin(jnp.clip(rot[2, 0], -1.0, 1.0))
    yaw = jnp.arctan2(rot[1, 0], rot[0, 0])
    return jnp.stack([roll, pitch, yaw])


def rotor_forces_and_torques(
    rotor_speeds: jax.Array, params: CrazyflieParams
) -> tuple[jax.Array, jax.Array]:
    """Total thrust (along body z, N) and body torque (3,) of rotor speeds in krpm (4,)."""
    rpm_sq = (1000.0 * rotor_speeds) ** 2
    forces = params.thrust_coefficient * rpm_sq
    corner = params.arm / jnp.sqrt(2.0)
    signs = lambda values: jnp.asarray(values, forces.dtype)  # noqa: E731
    # r x (0, 0, f) = (r_y f, -r_x f, 0), summed over the rotors
    torque = jnp.stack(
        [
            corner * jnp.sum(signs(ROTOR_Y_SIGNS) * forces),
            -corner * jnp.sum(signs(ROTOR_X_SIGNS) * forces),
            params.torque_coefficient * jnp.sum(signs(ROTOR_YAW_SIGNS) * rpm_sq),
        ]
    )
    return jnp.sum(forces), torque


def crazyflie_vector_field(
    s: jax.Array,
    rotor_input: jax.Array,
    wind_force: jax.Array,
    params: CrazyflieParams,
    realistic: bool,
) -> jax.Array:
    """ds/dt for s = (p, v, q, Omega[, rotor speeds in krpm]).

    `rotor_input` (4,), krpm: the rotor speeds themselves (simplified
    variant) or their commands (realistic, where s carries the speeds).
    """
    v, q, omega = s[3:6], s[6:10], s[10:13]
    rotors = s[13:17] if realistic else rotor_input
    thrust, torque = rotor_forces_and_torques(rotors, params)
    rot = rotation_matrix(q)
    drag_diag = jnp.stack(
        [params.drag_coefficient_xy, params.drag_coefficient_xy, params.drag_coefficient_z]
    ).astype(s.dtype)
    speed_sum = jnp.sum(rotors) * 1000.0 * RPM_TO_RAD_S
    drag = -rot @ (drag_diag * (rot.T @ v)) * speed_sum
    gravity = jnp.stack([0.0, 0.0, params.mass * params.gravity]).astype(s.dtype)
    acceleration = (rot[:, 2] * thrust - gravity + drag + wind_force) / params.mass
    w, x, y, z = q[0], q[1], q[2], q[3]
    p_, q_, r_ = omega[0], omega[1], omega[2]
    q_dot = 0.5 * jnp.stack(
        [
            -x * p_ - y * q_ - z * r_,
            w * p_ + y * r_ - z * q_,
            w * q_ + z * p_ - x * r_,
            w * r_ + x * q_ - y * p_,
        ]
    )
    inertia = jnp.stack([params.inertia_xx, params.inertia_yy, params.inertia_zz]).astype(s.dtype)
    omega_dot = (torque - jnp.cross(omega, inertia * omega)) / inertia
    parts = [v, acceleration, q_dot, omega_dot]
    if realistic:
        parts.append((rotor_input - rotors) / params.motor_time_constant)
    return jnp.concatenate(parts)


def wind_step(key: jax.Array, wind_force: jax.Array, params: CrazyflieParams) -> jax.Array:
    """The wind force one control step later: an exact Ornstein-Uhlenbeck update.

    a F + wind_force_std sqrt(1 - a^2) xi, a = exp(-dt / wind_correlation_time),
    xi ~ N(0, I_3); N(0, wind_force_std^2 I_3) is its stationary law.
    """
    decay = jnp.exp(-params.dt / params.wind_correlation_time)
    innovation = jax.random.normal(key, wind_force.shape, wind_force.dtype)
    return decay * wind_force + params.wind_force_std * jnp.sqrt(1.0 - decay**2) * innovation


def reference(t: jax.Array, params: CrazyflieParams) -> tuple[jax.Array, jax.Array]:
    """The reference position and velocity at time t, shapes (3,) and (3,)."""
    rate = 2.0 * jnp.pi / params.path_period
    c, s = jnp.cos(rate * t), jnp.sin(rate * t)
    radius = params.path_radius
    position = jnp.stack([radius * c, radius * s, params.path_height + 0.0 * c])
    velocity = jnp.stack([-radius * rate * s, radius * rate * c, 0.0 * c])
    return position, velocity


class Crazyflie(Environment[EnvState, CrazyflieParams]):
    """Crazyflie 2.x tracking a horizontal circle (see the module docstring).

    State `x` = (p, v, q, Omega, wind force, t[, rotor speeds in krpm]):
    17 entries, 21 in the realistic variant.
    """

    name = "crazyflie"

    def __init__(self, realistic: bool = False, num_substeps: int = 8):
        if int(num_substeps) < 1:
            raise ValueError(f"{self.name}: num_substeps must be >= 1, got {num_substeps}")
        self.realistic = bool(realistic)
        self.num_substeps = int(num_substeps)

    @property
    def default_params(self) -> CrazyflieParams:
        return CrazyflieParams(**REALISTIC_DEFAULTS) if self.realistic else CrazyflieParams()

    # ---- physics --------------------------------------------------------------
    def actuation(self, action: jax.Array, params: CrazyflieParams) -> jax.Array:
        """Actions (4,) -> commanded rotor speeds in krpm, within [0, sqrt(thrust_to_weight) w_hover]."""
        ratio = jnp.clip(1.0 + params.rotor_speed_range * action, 0.0, jnp.sqrt(params.thrust_to_weight))
        return hover_rotor_speed(params).astype(action.dtype) * ratio

    def integrate(
        self, s: jax.Array, rotor_input: jax.Array, wind_force: jax.Array, params: CrazyflieParams
    ) -> jax.Array:
        """RK4 sub-steps over one control step for s = (p, v, q, Omega[, rotors]);
        the quaternion is renormalised after each."""
        h = params.dt / self.num_substeps

        def body(_, y):
            y = rk4_step(
                lambda z: crazyflie_vector_field(z, rotor_input, wind_force, params, self.realistic), y, h
            )
            return y.at[QUATERNION].set(y[QUATERNION] / jnp.linalg.norm(y[QUATERNION]))

        return jax.lax.fori_loop(0, self.num_substeps, body, s)

    def _split(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """x -> (rigid body [+ rotors], wind force, t)."""
        body = jnp.concatenate([x[:13], x[ROTORS]]) if self.realistic else x[:13]
        return body, x[WIND], x[TIME]

    def _join(self, body: jax.Array, wind: jax.Array, t: jax.Array) -> jax.Array:
        parts = [body[:13], wind, t[None]]
        if self.realistic:
            parts.append(body[13:17])
        return jnp.concatenate(parts)

    def stage_cost(self, x: jax.Array, params: CrazyflieParams) -> jax.Array:
        ref_position, _ = reference(x[TIME], params)
        distance = jnp.linalg.norm(ref_position.astype(x.dtype) - x[POSITION])
        return distance + params.rate_cost * jnp.sum(x[BODY_RATES] ** 2)

    def terminal_flags(self, x: jax.Array, params: CrazyflieParams) -> dict[str, jax.Array]:
        """Booleans: below the ground, flipped, strayed from the reference."""
        ref_position, _ = reference(x[TIME], params)
        q = x[QUATERNION]
        cos_tilt = 1.0 - 2.0 * (q[1] ** 2 + q[2] ** 2)  # R_33, the thrust axis' vertical component
        return {
            "crashed": x[2] < 0.0,
            "flipped": cos_tilt < jnp.cos(params.max_tilt),
            "strayed": jnp.linalg.norm(ref_position.astype(x.dtype) - x[POSITION]) > params.max_distance,
        }

    # ---- the protocol ------------------------------------------------------------
    def reset_env(self, key, params):
        dtype = jnp.result_type(float)
        noise = jax.random.normal(key, (9,), dtype)  # one draw: each draw adds to compile time
        ref_position, _ = reference(jnp.zeros((), dtype), params)
        position = ref_position.astype(dtype) + params.init_std * noise[0:3]
        velocity = params.init_std * noise[3:6]
        wind = params.wind_force_std * noise[6:9]
        body = [position, velocity, jnp.array([1.0, 0.0, 0.0, 0.0], dtype), jnp.zeros(3, dtype)]
        if self.realistic:
            body.append(jnp.full((4,), hover_rotor_speed(params), dtype))
        x = self._join(jnp.concatenate(body), wind, jnp.zeros((), dtype))
        state = EnvState(x=x, time=jnp.zeros((), jnp.int32), num_diverged=jnp.zeros((), jnp.int32))
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        x = state.x
        rotor_input = self.actuation(action.astype(x.dtype), params)
        body, wind, t = self._split(x)
        body = self.integrate(body, rotor_input, wind, params)
        x = self._join(body, wind_step(key, wind, params), t + params.dt)
        flags = self.terminal_flags(x, params)
        terminal = flags["crashed"] | flags["flipped"] | flags["strayed"]
        info = {"terminal": terminal, **flags}
        return state.replace(x=x, time=state.time + 1), self.stage_cost(x, params), info

    def observe(self, state, params):
        x = state.x
        ref_position, ref_velocity = reference(x[TIME], params)
        parts = [
            ref_position.astype(x.dtype) - x[POSITION],
            ref_velocity.astype(x.dtype) - x[VELOCITY],
            euler_angles(x[QUATERNION]),
            x[BODY_RATES],
        ]
        if self.realistic:
            hover = hover_rotor_speed(params).astype(x.dtype)
            parts.append((x[ROTORS] / hover - 1.0) / params.rotor_speed_range)
        return jnp.concatenate(parts).astype(x.dtype)

    def observation_bound(self, params: CrazyflieParams) -> float:
        """|obs_i| <= this for any state within the divergence bound (noise-free)."""
        bound = float(params.divergence_bound)
        path = float(params.path_radius) + float(params.path_height)
        path_speed = 2.0 * math.pi * float(params.path_radius) / float(params.path_period)
        rotors = (math.sqrt(float(params.thrust_to_weight)) + 1.0) / float(params.rotor_speed_range)
        return max(bound + path + path_speed, math.pi, rotors)

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (4,))

    def observation_space(self, params=None):
        return Box(-jnp.inf, jnp.inf, (16 if self.realistic else 12,))

    def step(self, key, state, action, params=None):
        """`Environment.step`, plus termination on a crash, flip or stray (with auto-reset).

        A natural end is `terminated` (never `truncated`, also when the time
        limit falls on the same step). Its reward is -cost_cap times the steps
        left, this one included, as for divergence in the base class. The reset
        key is the one the base class uses for its own auto-reset.
        """
        params = self.default_params if params is None else params
        obs, new_state, reward, terminated, truncated, info = super().step(key, state, action, params)
        info = dict(info)
        terminal = jnp.asarray(info.pop("terminal"), bool)
        steps_left = params.max_steps_in_episode - state.time
        penalty = jnp.asarray(params.cost_cap * steps_left, reward.dtype)
        reward = jnp.where(terminal & ~terminated, -penalty, reward)
        info["cost"] = jnp.where(terminal, jnp.asarray(params.cost_cap, info["cost"].dtype), info["cost"])
        needs_reset = terminal & ~(terminated | truncated)  # else the base class already reset
        # the reset key is the one the base step uses for its own auto-reset
        obs, new_state = self.reset_where(jax.random.split(key, 4)[3], params, needs_reset, obs, new_state)
        return obs, new_state, reward, terminated | terminal, truncated & ~terminal, info


class CrazyflieRealistic(Crazyflie):
    """`Crazyflie(realistic=True)`: rotor lag, drag and wind (see the module docstring)."""

    name = "crazyflie_realistic"

    def __init__(self, num_substeps: int = 8):
        super().__init__(realistic=True, num_substeps=num_substeps)

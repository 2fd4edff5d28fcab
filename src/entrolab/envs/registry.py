"""`make(name, **overrides) -> (env, params)` with checked overrides.

An override names either a static field of the environment (its constructor
arguments: grid size, sub-steps, actuator count, equilibrium names) or a field
of its params struct. Unknown names and out-of-range values fail here with a
message naming the problem, never deep inside JAX.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from entrolab.envs.acrobot import Acrobot
from entrolab.envs.core import Environment, EnvParams
from entrolab.envs.ks import KuramotoSivashinsky
from entrolab.envs.lorenz import Lorenz
from entrolab.envs.obstacle2d import Obstacle2D
from entrolab.envs.probes import (
    ActionReward,
    ConstantReward,
    DiscountedReward,
    ObsActionReward,
    ObsDependentReward,
    TruncatedBootstrap,
)
from entrolab.envs.crazyflie import Crazyflie, CrazyflieRealistic
from entrolab.envs.quadrotor import Quadrotor, QuadrotorRealistic
from entrolab.envs.minigrid_room import MiniGridRoom
from entrolab.envs.room import Room
from entrolab.envs.vehicle import Vehicle
from entrolab.envs.vehicle_authors import AuthorsVehicle

REGISTRY: dict[str, Callable[..., Environment]] = {
    "lorenz": Lorenz,
    "ks": KuramotoSivashinsky,
    "obstacle2d": Obstacle2D,
    "room": Room,
    "minigrid_room": MiniGridRoom,
    "acrobot": Acrobot,
    "vehicle": Vehicle,
    "vehicle_authors": AuthorsVehicle,
    "quadrotor": Quadrotor,
    "quadrotor_realistic": QuadrotorRealistic,
    "crazyflie": Crazyflie,
    "crazyflie_realistic": CrazyflieRealistic,
    "probe_constant": ConstantReward,
    "probe_obs_reward": ObsDependentReward,
    "probe_discount": DiscountedReward,
    "probe_action": ActionReward,
    "probe_obs_action": ObsActionReward,
    "probe_truncation": TruncatedBootstrap,
}
ALIASES = {"kuramoto_sivashinsky": "ks", "kuramoto-sivashinsky": "ks", "lorenz63": "lorenz"}

# Params that must be strictly positive / non-negative, wherever they occur.
POSITIVE = {
    "dt", "length", "sigma", "beta", "obs_scale", "cost_scale", "actuator_width",
    "sensor_width", "divergence_bound", "cost_cap", "max_steps_in_episode",
    "mass", "yaw_inertia", "min_slip_speed", "rolling_smoothing_speed", "circle_radius",
    "inertia_xx", "inertia_yy", "inertia_zz", "arm", "thrust_coefficient", "thrust_to_weight",
    "rotor_speed_range", "motor_time_constant", "wind_correlation_time", "path_period",
    "max_distance", "wheelbase", "size", "view",
}
NON_NEGATIVE = {
    "obs_noise_std", "action_noise_std", "init_std", "control_cost", "action_scale",
    "wind_force_std", "drag_coefficient_xy", "drag_coefficient_z", "rate_cost", "drag_torque_coefficient",
    "position_weight", "off_track_weight",
}


def registered() -> list[str]:
    return sorted(REGISTRY)


def static_options(cls) -> dict[str, Any]:
    """The static (shape-defining) options of an environment class and their defaults."""
    params = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in params.items() if name != "self"}


def _static_names(cls) -> set[str]:
    return set(static_options(cls))


def check_params(params: EnvParams, name: str = "env") -> EnvParams:
    """Range checks on concrete (not traced) scalar params; returns params."""
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if value is None or np.ndim(value) != 0:
            continue
        try:
            v = float(value)
        except Exception:  # traced values are checked by their producer
            continue
        if not math.isfinite(v):
            raise ValueError(f"{name}: param {field.name} must be finite, got {v}")
        if field.name in POSITIVE and v <= 0:
            raise ValueError(f"{name}: param {field.name} must be > 0, got {v}")
        if field.name in NON_NEGATIVE and v < 0:
            raise ValueError(f"{name}: param {field.name} must be >= 0, got {v}")
    for field in ("init_equilibrium", "target_equilibrium"):
        if hasattr(params, field):
            v = int(getattr(params, field))
            if v not in (0, 1, 2):
                raise ValueError(f"{name}: param {field} must be 0, 1 or 2, got {v}")
    return params


def replace_params(params: EnvParams, name: str = "env", **changes: Any) -> EnvParams:
    """`params.replace(**changes)` with unknown names and bad ranges refused.

    The way to shift dynamics (e.g. `rho=30.0` for Lorenz, `length=24.0` for
    KS) or to set perturbation levels (`obs_noise_std=0.2`).
    """
    known = {f.name: f for f in dataclasses.fields(params)}
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise ValueError(f"{name}: unknown param(s) {unknown}; known params: {sorted(known)}")
    converted = {}
    for key, value in changes.items():
        old = getattr(params, key)
        if old is not None and np.ndim(old) > 0:
            value = jnp.asarray(value, jnp.asarray(old).dtype)
            if value.shape != jnp.shape(old) and not (
                key in ("actuation", "sensors") and value.ndim == 2
            ):
                raise ValueError(f"{name}: param {key} must have shape {jnp.shape(old)}, got {value.shape}")
        converted[key] = value
    return check_params(params.replace(**converted), name)


def make_gymnax(env_id: str, **overrides: Any):
    """A gymnax (>= 1.0) environment and its params, with checked param overrides.

    gymnax environments follow the same protocol (six-tuple `step`, auto-reset,
    `info["final_observation"]`), so entrolab's agents train on them unchanged.
    """
    try:
        import gymnax
    except ImportError as err:  # pragma: no cover - gymnax is a dependency
        raise ValueError("gymnax environments need the gymnax package") from err
    if env_id not in gymnax.registered_envs:
        raise ValueError(f"unknown gymnax environment {env_id!r}; registered: {sorted(gymnax.registered_envs)}")
    env, params = gymnax.make(env_id)
    known = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"gymnax:{env_id}: unknown param(s) {unknown}; known params: {sorted(known)}")
    return env, params.replace(**overrides)


def make(name: str, **overrides: Any) -> tuple[Environment, EnvParams]:
    """Build a registered environment and its params.

    >>> env, params = make("lorenz", rho=30.0, obs_noise_std=0.1)
    >>> env, params = make("ks", num_actuators=4, target="E1", init="E3")
    >>> env, params = make("gymnax:Pendulum-v1")
    >>> env, params = make("brax:hopper", backend="positional")  # the optional brax extra
    """
    if isinstance(name, str) and name.startswith("gymnax:"):
        return make_gymnax(name.split(":", 1)[1], **overrides)
    if isinstance(name, str) and name.startswith("brax:"):
        from entrolab.envs.brax_env import make_brax

        return make_brax(name.split(":", 1)[1], **overrides)
    key = ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else name
    if key not in REGISTRY:
        raise ValueError(f"unknown environment {name!r}; registered: {registered()}")
    cls = REGISTRY[key]
    static_names = _static_names(cls)
    static = {k: v for k, v in overrides.items() if k in static_names}
    env = cls(**static)
    params = env.default_params
    rest = {k: v for k, v in overrides.items() if k not in static_names}
    unknown = sorted(set(rest) - {f.name for f in dataclasses.fields(params)})
    if unknown:
        raise ValueError(
            f"{key}: unknown override(s) {unknown}; static options: {sorted(static_names)}; "
            f"params: {sorted(f.name for f in dataclasses.fields(params))}"
        )
    return env, replace_params(params, key, **rest)

"""Roll a policy out in a functional environment: one pure, jit/vmap-able scan.

A policy here is any `act(key, obs, state) -> action`; learned policies
ignore `state`, the full-state baselines (the LQR) read `state.x`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from flax import struct

from entrolab.envs.core import Environment, EnvParams

Act = Callable[[jax.Array, jax.Array, Any], jax.Array]


@struct.dataclass
class Trajectory:
    """Per-step arrays, leading axis = time (T). `x` is the state after the step
    (before any auto-reset: the final state of an episode is kept)."""

    obs: jax.Array  # (T, obs_dim) observation the action was chosen from
    action: jax.Array  # (T, act_dim)
    reward: jax.Array  # (T,)
    terminated: jax.Array  # (T,)
    truncated: jax.Array  # (T,)
    x: jax.Array  # (T, *state_shape) physical state reached by the step
    x0: jax.Array  # (*state_shape) initial physical state


def rollout(env: Environment, params: EnvParams, act: Act, key: jax.Array, num_steps: int) -> Trajectory:
    """Reset with `key` and run `num_steps` steps (auto-reset inside)."""
    key_reset, key_run = jax.random.split(key)
    obs, state = env.reset(key_reset, params)

    def body(carry, key):
        obs, state = carry
        key_act, key_step = jax.random.split(key)
        action = act(key_act, obs, state)
        next_obs, next_state, reward, terminated, truncated, info = env.step(key_step, state, action, params)
        return (next_obs, next_state), (obs, action, reward, terminated, truncated, info["final_x"])

    _, (o, a, r, te, tr, x) = jax.lax.scan(body, (obs, state), jax.random.split(key_run, num_steps))
    return Trajectory(obs=o, action=a, reward=r, terminated=te, truncated=tr, x=x, x0=state.x)

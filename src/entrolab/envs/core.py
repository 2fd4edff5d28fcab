"""The functional environment protocol of entrolab (gymnax >= 1.0 semantics).

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

`reset` and `step` are pure functions of their arguments: they can be `jit`-ed
and `vmap`-ed over keys, states and params. Static structure (grid size,
number of integrator sub-steps) lives on the environment object; every
physical quantity lives in the params struct, so that a sweep over dynamics
is a `vmap` over params. Methods are not jitted here: the caller composes
`jax.jit`/`jax.vmap` around them (no `self` as a static argument).

What the base class adds around a system's `step_env`, identically for every
system, is listed in `Environment.step`: action checks and clipping,
actuation and observation noise (the perturbations of the robustness study,
as params so that they can be vmapped), divergence handling (never a NaN),
time-limit truncation and auto-reset with the final observation kept in
`info["final_observation"]`.
"""

from __future__ import annotations

import abc
from typing import Any, Generic, TypeVar

import jax
import jax.numpy as jnp
from flax import struct

from entrolab.envs.spaces import Box, Discrete


@struct.dataclass
class EnvState:
    """Fields every state has. `x` is the physical state (set by each system)."""

    x: jax.Array
    time: jax.Array | int = 0
    num_diverged: jax.Array | int = 0  # episodes ended by divergence so far; survives auto-reset


@struct.dataclass
class EnvParams:
    """Fields every params struct has: the episode and the perturbations.

    Attributes:
        max_steps_in_episode: time limit (truncation) in control steps.
        obs_noise_std: std of additive Gaussian noise on every observation, in
            observation units (the partially observed setting of the main study).
        action_noise_std: std of additive Gaussian noise on the clipped action,
            in action units (the applied actuation may leave [-1, 1]).
        divergence_bound: a state with any |x_i| above this (or non-finite)
            ends the episode (terminated).
        cost_cap: per-step cost is capped at this value; a diverging step
            costs `cost_cap` for itself and every step left in the episode, so
            that diverging is never better than staying, and is bounded.
    """

    max_steps_in_episode: int = 200
    obs_noise_std: float = 0.0
    action_noise_std: float = 0.0
    divergence_bound: float = 1e3
    cost_cap: float = 10.0


def _gaussian_noise(key: jax.Array, std: jax.Array | float, like: jax.Array) -> jax.Array:
    """std * N(0, I) shaped like `like`; draws nothing when std == 0.

    The `cond` skips the draw in the common case of noise-free, un-batched
    params (it becomes a select, computing both, when std itself is vmapped).
    """
    return jax.lax.cond(
        jnp.asarray(std) > 0,
        lambda: std * jax.random.normal(key, like.shape, like.dtype),
        lambda: jnp.zeros(like.shape, like.dtype),
    )


S = TypeVar("S", bound=EnvState)
P = TypeVar("P", bound=EnvParams)


class Environment(abc.ABC, Generic[S, P]):
    """Base of every entrolab environment. Subclasses implement the physics."""

    name: str = "environment"

    def default_init_log_std(self, params: P) -> float | None:
        """The initial log-std of a Gaussian policy, in [-1, 1] action units, for tasks with a
        natural noise scale (each such task's docstring says where it comes from); None: no
        task default (learners keep their own, e.g. PPO's 0)."""
        return None

    # ---- to implement -------------------------------------------------
    @property
    @abc.abstractmethod
    def default_params(self) -> P: ...

    @abc.abstractmethod
    def reset_env(self, key: jax.Array, params: P) -> tuple[jax.Array, S]:
        """Noise-free initial observation and state."""

    @abc.abstractmethod
    def step_env(
        self, key: jax.Array, state: S, action: jax.Array, params: P
    ) -> tuple[S, jax.Array, dict[str, Any]]:
        """Advance the physics by one control step.

        Args:
            action: already clipped to the action space and perturbed.
        Returns:
            `(next_state, cost, info)`: the next state with `time` advanced,
            the non-negative per-step cost (reward = -cost), extra info.
        """

    @abc.abstractmethod
    def observe(self, state: S, params: P) -> jax.Array:
        """Noise-free observation of a (finite) state."""

    @abc.abstractmethod
    def action_space(self, params: P | None = None) -> Box | Discrete: ...

    def observation_bound(self, params: P) -> float:
        """A bound on |obs_i| for noise-free observations (concrete params only)."""
        return float("inf")

    @abc.abstractmethod
    def observation_space(self, params: P | None = None) -> Box: ...

    # ---- the protocol ---------------------------------------------------
    def reset(self, key: jax.Array, params: P | None = None) -> tuple[jax.Array, S]:
        params = self.default_params if params is None else params
        key_reset, key_noise = jax.random.split(key)
        obs, state = self.reset_env(key_reset, params)
        return self._add_obs_noise(key_noise, obs, params), state

    def reset_where(self, key_reset: jax.Array, params: P, done, obs: jax.Array, state: S) -> tuple[jax.Array, S]:
        """(obs, state), replaced by a fresh reset (from `key_reset`) where `done`; the count of
        diverged episodes survives the reset. `step`'s auto-reset, and that of envs whose
        episodes also end inside `step_env` (reached goal, crash)."""
        obs_reset, state_reset = self.reset(key_reset, params)
        state_reset = state_reset.replace(num_diverged=state.num_diverged)
        new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_reset, state)
        return jnp.where(done, obs_reset, obs), new_state

    def step(
        self, key: jax.Array, state: S, action: jax.Array, params: P | None = None
    ) -> tuple[jax.Array, S, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """One control step with auto-reset.

        In order: the action is checked (shape, a clear error), made finite
        and clipped to the action space, perturbed by actuation noise; the
        physics advances; a non-finite or out-of-bound state terminates the
        episode with a bounded penalty and is replaced by a finite one;
        observation noise is added; at the time limit the episode is
        truncated; on either, the state and observation are those of a fresh
        reset and the last observation of the episode is in
        `info["final_observation"]`.
        """
        params = self.default_params if params is None else params
        action = self._check_action(action, params)
        key_act, key_step, key_obs, key_reset = jax.random.split(key, 4)
        if not isinstance(self.action_space(params), Discrete):  # actuation noise has no meaning on {0..n-1}
            action = action + _gaussian_noise(key_act, params.action_noise_std, action)

        next_state, cost, info = self.step_env(key_step, state, action, params)
        x = next_state.x
        diverged = ~jnp.all(jnp.isfinite(x)) | jnp.any(jnp.abs(x) > params.divergence_bound)
        # Replace a diverged state by a finite one before anything reads it:
        # gradients through `where` stay finite because the kept branch is finite.
        safe_x = jnp.where(
            diverged,
            jax.lax.stop_gradient(
                jnp.clip(jnp.nan_to_num(x), -params.divergence_bound, params.divergence_bound)
            ),
            x,
        )
        next_state = next_state.replace(
            x=safe_x, num_diverged=state.num_diverged + diverged.astype(jnp.int32)
        )
        steps_left = params.max_steps_in_episode - state.time
        capped_cost = jnp.minimum(jnp.nan_to_num(cost, nan=params.cost_cap), params.cost_cap)
        reward = -jnp.where(diverged, params.cost_cap * steps_left, capped_cost)

        obs_step = self._add_obs_noise(key_obs, self.observe(next_state, params), params)
        terminated = diverged
        truncated = (next_state.time >= params.max_steps_in_episode) & ~terminated
        done = terminated | truncated

        obs, new_state = self.reset_where(key_reset, params, done, obs_step, next_state)
        info = {
            **info,
            "final_observation": obs_step,
            "final_x": next_state.x,  # physical state reached, before any auto-reset
            "diverged": diverged,
            "num_diverged": next_state.num_diverged,
            "cost": jnp.where(diverged, params.cost_cap, capped_cost),
        }
        return obs, new_state, reward.astype(obs.dtype), terminated, truncated, info

    # ---- helpers ----------------------------------------------------------
    def _check_action(self, action: jax.Array, params: P) -> jax.Array:
        space = self.action_space(params)
        action = jnp.asarray(action)
        if action.shape != space.shape:
            raise ValueError(
                f"{self.name}: action has shape {action.shape}, expected {space.shape} "
                f"(one env; vmap over a batch)"
            )
        if isinstance(space, Discrete):  # the nearest valid integer
            return jnp.clip(jnp.round(jnp.nan_to_num(action)), 0, space.n - 1).astype(jnp.int32)
        if not jnp.issubdtype(action.dtype, jnp.floating):
            action = action.astype(jnp.float32)
        return jnp.clip(jnp.nan_to_num(action), space.low, space.high)

    def _add_obs_noise(self, key: jax.Array, obs: jax.Array, params: P) -> jax.Array:
        return obs + _gaussian_noise(key, params.obs_noise_std, obs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NaturalEnds(Environment[S, P]):
    """An environment whose episodes also end by its own rules (goal reached, collision, a fall):
    its `step_env` returns `info["terminal"]`, and `step` turns that into `terminated` with
    auto-reset. A natural end is `terminated` (never `truncated`, also when the time limit falls
    on the same step). The reset key is the one the base class uses for its own auto-reset (the
    4th of split(key, 4)), so the episodes drawn do not depend on how one ended."""

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        obs, new_state, reward, terminated, truncated, info = super().step(key, state, action, params)
        info = dict(info)
        terminal = jnp.asarray(info.pop("terminal"), bool)
        needs_reset = terminal & ~(terminated | truncated)  # else the base class already reset
        obs, new_state = self.reset_where(jax.random.split(key, 4)[3], params, needs_reset, obs, new_state)
        return obs, new_state, reward, terminated | terminal, truncated & ~terminal, info


class ControlSystem(Environment[EnvState, P]):
    """An environment made of a controlled dynamical system x' = F(x, u).

    A system defines its physics through five pure functions of params:
    `actuation(action) -> u`, `flow(x, u) -> x after one control step`,
    `stage_cost(x_next, u) -> cost`, `target() -> x*` and
    `initial_centre() -> x_e`; the initial state is drawn from
    N(x_e, init_std^2 I). The same functions serve the baselines (the LQR
    linearises `flow` and takes the Hessian of `stage_cost`) and the analyses.
    """

    @abc.abstractmethod
    def actuation(self, action: jax.Array, params: P) -> jax.Array: ...

    @abc.abstractmethod
    def flow(self, x: jax.Array, u: jax.Array, params: P) -> jax.Array: ...

    @abc.abstractmethod
    def stage_cost(self, x: jax.Array, u: jax.Array, params: P) -> jax.Array: ...

    @abc.abstractmethod
    def target(self, params: P) -> jax.Array: ...

    @abc.abstractmethod
    def initial_centre(self, params: P) -> jax.Array: ...

    def reset_env(self, key, params):
        centre = self.initial_centre(params)
        dtype = jnp.result_type(float)
        x = centre.astype(dtype) + params.init_std * jax.random.normal(key, centre.shape, dtype)
        state = EnvState(x=x, time=jnp.zeros((), jnp.int32), num_diverged=jnp.zeros((), jnp.int32))
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        u = self.actuation(action, params)
        x = self.flow(state.x, u, params)
        cost = self.stage_cost(x, u, params)  # the state the action leads to
        return state.replace(x=x, time=state.time + 1), cost, {}

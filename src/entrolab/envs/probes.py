"""Probe environments with known answers, for testing reinforcement-learning agents.

In the spirit of Andy Jones' "debugging RL" probes (and rejax's probe envs),
adapted to one-dimensional continuous actions in [-1, 1]. Each probe isolates
one thing an agent must get right, so that a failure points at one part of it:

===================  ==================  =========================================
name                 class               isolates / known answer
===================  ==================  =========================================
``probe_constant``   ConstantReward      value fitting: V = 1
``probe_obs_reward`` ObsDependentReward  value depends on obs: V(+1) = +1, V(-1) = -1
``probe_discount``   DiscountedReward    discounting / bootstrapping: V(0) = gamma, V(1) = 1
``probe_action``     ActionReward        policy gradient: a* = 0.5, optimal return 0
``probe_obs_action`` ObsActionReward     obs-conditioned policy: a*(obs) = 0.5 obs
``probe_truncation`` TruncatedBootstrap  bootstrapping on truncation: V = 1 / (1 - gamma)
===================  ==================  =========================================

Every probe has observations and actions of shape (1,), reward = -cost with
the cost passed through `Environment.step` unchanged (`cost_cap` = 1e6 is far
above any probe cost, and a negative cost, i.e. a positive reward, is below the
cap), and the same protocol as every entrolab environment (gymnax >= 1.0
six-tuple step, auto-reset, `info["final_observation"]`, jit/vmap over keys,
states and params). Each class has `value(obs, gamma, params)`, the known value
of an observation, and the action probes `optimal_action(obs, params)`.

The known answers hold for noise-free params (the defaults). Action noise
(`action_noise_std` = s) adds -s^2 to the expected reward of the action probes
(`value` accounts for it); observation noise blurs the obs the agent sees and
makes the obs-dependent answers hold only in expectation.

Termination. The base class terminates an episode only on divergence; a probe
whose episodes end naturally (all but `probe_truncation`) reports it from
`step_env` as `info["terminal"]`, and `ProbeEnvironment.step` marks the step
`terminated` (never `truncated`, also when the time limit falls on the same
step) and auto-resets. `probe_truncation` never terminates: its episodes end
by the base class's time limit, `truncated`, after `max_steps_in_episode` = 5
steps, the case that tells whether an agent bootstraps through truncation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from entrolab.envs.core import EnvParams, EnvState, NaturalEnds
from entrolab.envs.spaces import Box

_DTYPE = jnp.float32


@struct.dataclass
class ProbeParams(EnvParams):
    """Common params of the probes: a cost cap far above any probe cost, and a reward scale
    (every reward, and so every known value, is multiplied by it: e.g. -1000 makes
    `probe_truncation` pay -1000 per step, for learners that must cope with any scale)."""

    max_steps_in_episode: int = 1
    cost_cap: float = 1e6
    reward_scale: float = 1.0


def _state(x: jax.Array) -> EnvState:
    return EnvState(x=x, time=jnp.zeros((), jnp.int32), num_diverged=jnp.zeros((), jnp.int32))


def _zero_obs() -> jax.Array:
    return jnp.zeros((1,), _DTYPE)


def _random_sign(key: jax.Array) -> jax.Array:
    """+1 or -1 with probability 1/2 each, shape (1,)."""
    return jnp.where(jax.random.bernoulli(key, 0.5, (1,)), 1.0, -1.0).astype(_DTYPE)


class ProbeEnvironment(NaturalEnds[EnvState, ProbeParams]):
    """Base of the probes: observation = `state.x` (shape (1,)), action in [-1, 1]^1.

    `step_env` of a subclass returns `info["terminal"]` (True when the step ends
    the episode by the rules of the probe). `step` runs the base class's step,
    then turns a natural end into `terminated` with auto-reset.
    """

    name = "probe"

    def __init__(self):  # no static options (make() reads the constructor's signature)
        pass

    # ---- the protocol -------------------------------------------------------
    def step(self, key, state, action, params=None):
        """`NaturalEnds.step` (tests/test_probes.py checks that the episodes drawn do not depend on
        which rule ended one), with the reward scaled by `reward_scale`."""
        params = self.default_params if params is None else params
        obs, new_state, reward, terminated, truncated, info = super().step(key, state, action, params)
        return obs, new_state, reward * params.reward_scale, terminated, truncated, info

    def observe(self, state, params):
        return state.x

    def observation_bound(self, params) -> float:
        return 1.0

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (1,))

    def observation_space(self, params=None):
        # unbounded like the other systems: observation noise is a param
        return Box(-jnp.inf, jnp.inf, (1,))

    # ---- the known answer ---------------------------------------------------
    def value(self, obs: jax.Array, gamma: float, params: ProbeParams | None = None) -> jax.Array:
        """The known value of a (noise-free) observation `obs` (shape (..., 1)) for
        discount `gamma`, shape `obs.shape[:-1]`. For the action-independent probes
        it is the value under any policy; for the action probes, under the optimal one.
        Scaled by `params.reward_scale`, as the rewards are."""
        params = self.default_params if params is None else params
        return self.unit_value(obs, gamma, params) * params.reward_scale

    def unit_value(self, obs: jax.Array, gamma: float, params: ProbeParams | None = None) -> jax.Array:
        """The known value at `reward_scale` = 1."""
        raise NotImplementedError


# ---- 1. constant reward ---------------------------------------------------------------


@struct.dataclass
class ConstantRewardParams(ProbeParams):
    max_steps_in_episode: int = 1


class ConstantReward(ProbeEnvironment):
    """``probe_constant``: obs always 0, reward +1, every episode one step (terminated).

    Known answer: V(0) = 1 for any discount and any policy. An agent whose value
    loss does not go to zero here has a broken value fit (loss, optimiser,
    target scaling). State: `x` = [0].
    """

    name = "probe_constant"

    @property
    def default_params(self) -> ConstantRewardParams:
        return ConstantRewardParams()

    def reset_env(self, key, params):
        state = _state(_zero_obs())
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        cost = -jnp.ones((), _DTYPE)  # reward +1
        return state.replace(time=state.time + 1), cost, {"terminal": jnp.asarray(True)}

    def unit_value(self, obs, gamma, params=None):
        return jnp.ones(jnp.shape(obs)[:-1], _DTYPE)


# ---- 2. observation-dependent reward -------------------------------------------------------


@struct.dataclass
class ObsDependentRewardParams(ProbeParams):
    max_steps_in_episode: int = 1


class ObsDependentReward(ProbeEnvironment):
    """``probe_obs_reward``: obs = +1 or -1 (probability 1/2 each, drawn at reset),
    reward = that obs, every episode one step (terminated).

    Known answer: V(+1) = +1, V(-1) = -1 for any discount and any policy. An
    agent that learns V = 0 for both ignores its input (a broken obs pipeline,
    or a value net that cannot depend on the obs). State: `x` = [sign].
    """

    name = "probe_obs_reward"

    @property
    def default_params(self) -> ObsDependentRewardParams:
        return ObsDependentRewardParams()

    def reset_env(self, key, params):
        state = _state(_random_sign(key))
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        cost = -state.x[0]  # reward = the sign the agent observed
        return state.replace(time=state.time + 1), cost, {"terminal": jnp.asarray(True)}

    def unit_value(self, obs, gamma, params=None):
        return jnp.asarray(obs, _DTYPE)[..., 0]


# ---- 3. discounting over two steps -----------------------------------------------------------


@struct.dataclass
class DiscountedRewardParams(ProbeParams):
    max_steps_in_episode: int = 2


class DiscountedReward(ProbeEnvironment):
    """``probe_discount``: two-step episodes; obs = the step index (0, then 1);
    reward 0 on the first step, 1 on the second, which ends the episode (terminated).

    Known answer: V(0) = gamma, V(1) = 1 for any policy. V(0) = 1 means no
    discounting; V(0) = 0 means no bootstrapping (or a 1-step return cut at
    the wrong place); V(1) = 1 + gamma * something means the terminal step is
    bootstrapped. State: `x` = [step index] (as a float: the observation);
    the terminal observation (`info["final_observation"]` of the second step)
    is 2, never used by a learner that stops bootstrapping at termination.
    """

    name = "probe_discount"

    @property
    def default_params(self) -> DiscountedRewardParams:
        return DiscountedRewardParams()

    def reset_env(self, key, params):
        state = _state(_zero_obs())
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        x = state.x + 1.0
        last = x[0] >= 1.5  # the step from index 1 ends the episode
        cost = -jnp.where(last, 1.0, 0.0).astype(_DTYPE)
        return state.replace(x=x, time=state.time + 1), cost, {"terminal": last}

    def observation_bound(self, params) -> float:
        return 2.0  # the terminal observation

    def unit_value(self, obs, gamma, params=None):
        first = jnp.asarray(obs, _DTYPE)[..., 0] < 0.5
        return jnp.where(first, jnp.asarray(gamma, _DTYPE), 1.0).astype(_DTYPE)


# ---- 4. action-dependent reward ---------------------------------------------------------------


@struct.dataclass
class ActionRewardParams(ProbeParams):
    max_steps_in_episode: int = 1
    target_action: float = 0.5


class ActionReward(ProbeEnvironment):
    """``probe_action``: obs always 0, reward = -(a - a*)^2 with a* = `target_action`
    = 0.5, every episode one step (terminated). `a` is the applied action:
    clipped to [-1, 1], plus action noise if any.

    Known answer: the optimal action is a* = 0.5 and the optimal (deterministic)
    return is 0. A stochastic policy whose clipped action A has mean m and
    variance v earns E[r] = -(m - a*)^2 - v - action_noise_std^2, so a learner's
    mean must go to 0.5 and, without an entropy bonus, its spread to 0. An agent
    that does not move its mean has a broken policy gradient (sign, advantage,
    log-prob of the squashed/clipped action). State: `x` = [0].
    """

    name = "probe_action"

    @property
    def default_params(self) -> ActionRewardParams:
        return ActionRewardParams()

    def reset_env(self, key, params):
        state = _state(_zero_obs())
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        cost = jnp.sum((action - params.target_action) ** 2).astype(_DTYPE)
        return state.replace(time=state.time + 1), cost, {"terminal": jnp.asarray(True)}

    def optimal_action(self, obs, params=None):
        """a* for each observation, shape `obs.shape` (the action shape is (1,))."""
        params = self.default_params if params is None else params
        return jnp.full(jnp.shape(obs), params.target_action, _DTYPE)

    def unit_value(self, obs, gamma, params=None):
        """Value under the optimal deterministic policy: 0 (-action_noise_std^2 with noise)."""
        params = self.default_params if params is None else params
        return jnp.full(jnp.shape(obs)[:-1], -(params.action_noise_std**2), _DTYPE)


# ---- 5. observation- and action-dependent reward ----------------------------------------------


@struct.dataclass
class ObsActionRewardParams(ProbeParams):
    max_steps_in_episode: int = 1
    gain: float = 0.5


class ObsActionReward(ProbeEnvironment):
    """``probe_obs_action``: obs = +1 or -1 (probability 1/2 each, drawn at reset),
    reward = -(a - `gain` * obs)^2 with gain = 0.5, every episode one step
    (terminated). `a` is the applied action (clipped, plus action noise if any).

    Known answer: the optimal action is a*(obs) = 0.5 * obs, with optimal
    return 0 from either obs. A policy that ignores the obs does best with
    a = 0 and earns -0.25; so a learned return near -0.25 means the policy
    does not condition on its input. For a stochastic policy, E[r | obs] =
    -(m(obs) - 0.5 obs)^2 - v(obs) - action_noise_std^2. State: `x` = [sign].
    """

    name = "probe_obs_action"

    @property
    def default_params(self) -> ObsActionRewardParams:
        return ObsActionRewardParams()

    def reset_env(self, key, params):
        state = _state(_random_sign(key))
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        cost = jnp.sum((action - params.gain * state.x) ** 2).astype(_DTYPE)
        return state.replace(time=state.time + 1), cost, {"terminal": jnp.asarray(True)}

    def optimal_action(self, obs, params=None):
        """a*(obs) = gain * obs, shape `obs.shape` (the action shape is (1,))."""
        params = self.default_params if params is None else params
        return (params.gain * jnp.asarray(obs, _DTYPE)).astype(_DTYPE)

    def unit_value(self, obs, gamma, params=None):
        """Value under the optimal deterministic policy: 0 (-action_noise_std^2 with noise)."""
        params = self.default_params if params is None else params
        return jnp.full(jnp.shape(obs)[:-1], -(params.action_noise_std**2), _DTYPE)


# ---- 6. bootstrapping through truncation -------------------------------------------------------


@struct.dataclass
class TruncatedBootstrapParams(ProbeParams):
    max_steps_in_episode: int = 5


def truncation_as_termination_value(gamma: float, episode_length: int = 5) -> float:
    """What a learner that treats truncation as termination fits on
    `probe_truncation` (constant obs, so one value for all steps): the mean over
    the steps of an episode of the return to its end,
    (1 / n) sum_{k=1..n} (1 - gamma^k) / (1 - gamma), n = `episode_length`.
    At gamma = 0.99 and n = 5: 2.96, against the correct 100."""
    n = int(episode_length)
    return sum((1.0 - gamma**k) / (1.0 - gamma) for k in range(1, n + 1)) / n


class TruncatedBootstrap(ProbeEnvironment):
    """``probe_truncation``: obs always 0, reward +1 every step, no terminal state;
    episodes are cut by the time limit (`max_steps_in_episode` = 5): `truncated`,
    never `terminated`, with `info["final_observation"]` = 0.

    Known answer: the process is stationary (the observation carries no time),
    so with correct bootstrapping on truncation, V(0) = r + gamma V(0), i.e.
    V(0) = 1 / (1 - gamma) (100 at gamma = 0.99). A learner that treats
    truncation as termination fits the mean return to the cut instead,
    `truncation_as_termination_value(gamma)` (2.96 at gamma = 0.99). State: `x` = [0].
    """

    name = "probe_truncation"

    @property
    def default_params(self) -> TruncatedBootstrapParams:
        return TruncatedBootstrapParams()

    def reset_env(self, key, params):
        state = _state(_zero_obs())
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        cost = -jnp.ones((), _DTYPE)  # reward +1
        return state.replace(time=state.time + 1), cost, {"terminal": jnp.asarray(False)}

    def unit_value(self, obs, gamma, params=None):
        return jnp.full(jnp.shape(obs)[:-1], 1.0 / (1.0 - gamma), _DTYPE)


PROBES: dict[str, type[ProbeEnvironment]] = {
    cls.name: cls
    for cls in (
        ConstantReward,
        ObsDependentReward,
        DiscountedReward,
        ActionReward,
        ObsActionReward,
        TruncatedBootstrap,
    )
}
"""The probes by registered name (they are also in `entrolab.envs.registry.REGISTRY`)."""

__all__ = [
    "PROBES",
    "ActionReward",
    "ActionRewardParams",
    "ConstantReward",
    "ConstantRewardParams",
    "DiscountedReward",
    "DiscountedRewardParams",
    "ObsActionReward",
    "ObsActionRewardParams",
    "ObsDependentReward",
    "ObsDependentRewardParams",
    "ProbeEnvironment",
    "ProbeParams",
    "TruncatedBootstrap",
    "TruncatedBootstrapParams",
    "truncation_as_termination_value",
]

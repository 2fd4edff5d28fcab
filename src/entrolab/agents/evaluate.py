"""Evaluate a Gaussian policy: returns of whole episodes, deterministic or sampled.

Pure and vmappable: `evaluate(...)` runs `num_episodes` episodes of
`max_steps_in_episode` steps in parallel (one `vmap` over a `lax.scan`) and
returns the undiscounted return of each. With `deterministic=True` the action
is the bounded mean; otherwise it is sampled from the policy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from entrolab.agents.policy import GaussianPolicy
from entrolab.agents.spaces import to_env_action
from entrolab.envs.core import Environment


def episode_returns(
    policy: GaussianPolicy,
    policy_params: dict,
    env: Environment,
    env_params,
    key: jax.Array,
    num_episodes: int,
    num_steps: int,
    deterministic: bool = True,
    action_low=-1.0,
    action_high=1.0,
    perturb=None,
) -> jax.Array:
    """Undiscounted return of each of `num_episodes` episodes, shape (num_episodes,).

    An episode ends at its first `terminated` or `truncated`; `num_steps` must
    be at least the episode length (rewards after the end are not counted).
    `perturb(key, obs) -> obs`, if given, changes the observation the policy
    sees at every step (an adversary; `entrolab.measures.adversarial`); the
    environment's own keys are the same with and without it.
    """

    def one_episode(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = env.reset(k_reset, env_params)

        def body(carry, key):
            obs, state, alive, total = carry
            k_act, k_env = jax.random.split(key)
            if perturb is not None:
                obs = perturb(jax.random.fold_in(k_act, 1), obs)
            if deterministic:
                a = policy.deterministic_action(policy_params, obs)
            else:
                a = policy.stochastic_action(k_act, policy_params, obs)
            a = to_env_action(a, action_low, action_high)
            obs, state, reward, term, trunc, _ = env.step(k_env, state, a, env_params)
            total = total + jnp.where(alive, reward, 0.0)
            alive = alive & ~(term | trunc)
            return (obs, state, alive, total), None

        init = (obs, state, jnp.asarray(True), jnp.zeros((), jnp.float32))
        (_, _, _, total), _ = jax.lax.scan(body, init, jax.random.split(k_run, num_steps))
        return total

    return jax.vmap(one_episode)(jax.random.split(key, num_episodes))

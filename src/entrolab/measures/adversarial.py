"""Worst-case observation perturbations of a Gaussian policy's mean action.

For a state's observation o and a budget epsilon, the worst-case perturbation in the L2 ball is

    delta* = argmax_{||delta||_2 <= epsilon} ||mu(o + delta) - mu(o)||_2,

the per-state attack of state-adversarial MDPs (Zhang et al. 2020, "Robust deep reinforcement
learning against adversarial perturbations on state observations", NeurIPS), in raw observation
units (the policy's observation normalisation included, its statistics fixed). Gaussian
observation noise of the robustness study asks how a policy fares under *typical* noise; this
asks how far the worst noise of the same size moves its action.

`worst_case_action_deviation` finds delta* by projected gradient ascent (Madry et al. 2018): from
`restarts` random points on the sphere of radius epsilon (the gradient of the deviation vanishes
at delta = 0), `num_steps` steps of size `step_size` along the normalised gradient, each followed
by the projection back onto the ball; the best restart per state is kept. The objective is
non-concave for a nonlinear network, so the result is a lower bound on the true worst case; for
an affine mean (no hidden layer, no clipping by the normalisation) it is the exact maximum,
epsilon times the largest singular value of the input Jacobian, which the tests check.
`random_action_deviation` is the baseline: the mean deviation under uniformly random directions
on the same sphere.

What the perturbations cost, beside the Gaussian-noise excess risk of the robustness study:

- `attacked_episode_returns`: whole episodes of the deterministic policy in which every
  observation it sees is moved by the per-state worst case above (the greedy attacker of
  state-adversarial MDPs, recomputed at every step), or by a random direction of the same norm;
  clean minus attacked return is the worst-case (resp. random) excess risk at budget epsilon.
- `simulator_attack`: from given start states, the closed-loop cost of `horizon` steps under the
  perturbation *sequence* (delta_1..delta_H, each in the epsilon-ball) that maximises that cost,
  found by projected gradient ascent through the differentiable simulator (Lorenz's RK4 and KS's
  ETDRK4 are JAX code), beside the clean cost, the greedy per-state attack's cost and random
  directions'. The greedy attacker maximises the action's deviation, which need not be what costs
  most; the simulator attack aims at the cost itself, so it is the stronger (a lower bound on the
  true worst case all the same: the objective is non-concave).

Everything is `jit`- and `vmap`-able (over states here; over a stack of policies by the caller).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from entrolab.agents.evaluate import episode_returns
from entrolab.agents.policy import GaussianPolicy
from entrolab.agents.spaces import to_env_action
from entrolab.envs.core import Environment
from entrolab.measures.complexity import _check_observations, _check_policy_params, _is_int


def _sphere(key: jax.Array, shape: tuple[int, ...], radius) -> jax.Array:
    """Uniform points on the sphere of `radius` in the last axis."""
    z = jax.random.normal(key, shape)
    return radius * z / jnp.linalg.norm(z, axis=-1, keepdims=True)


def _project(delta: jax.Array, epsilon) -> jax.Array:
    norm = jnp.linalg.norm(delta, axis=-1, keepdims=True)
    return delta * jnp.minimum(1.0, epsilon / jnp.maximum(norm, 1e-12))


def _check(epsilon, num_steps: int, restarts: int) -> None:
    if not _is_int(num_steps) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps}")
    if not _is_int(restarts) or restarts < 1:
        raise ValueError(f"restarts must be a positive integer, got {restarts}")
    try:
        eps = float(epsilon)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return  # traced: checked by the caller
    if not eps > 0 or eps == float("inf"):
        raise ValueError(f"epsilon must be positive and finite, got {epsilon}")


def worst_case_action_deviation(
    policy: GaussianPolicy,
    params: dict,
    observations: jax.Array,
    epsilon,
    key: jax.Array,
    num_steps: int = 20,
    restarts: int = 2,
    step_size=None,
) -> dict[str, jax.Array]:
    """Projected gradient ascent on ||mu(o + delta) - mu(o)||_2 over ||delta||_2 <= epsilon, per state.

    Args:
        observations: (N, obs_dim) raw observations.
        epsilon: the L2 budget in raw observation units.
        step_size: default 2.5 epsilon / num_steps (Madry et al.'s rule).
    Returns:
        {"deviation": (N,) the best deviation found, "delta": (N, obs_dim) its perturbation}.
    """
    _check_policy_params(policy, params)
    observations = _check_observations(policy, observations)
    _check(epsilon, num_steps, restarts)
    step = 2.5 * epsilon / num_steps if step_size is None else step_size

    def mean(o):
        return policy.apply(params, o)[0]

    def deviation(delta, o, mu0):
        return jnp.linalg.norm(mean(o + delta) - mu0)

    grad = jax.grad(deviation)

    def attack(o, k):
        mu0 = mean(o)

        def one(start):
            def body(_, delta):
                g = grad(delta, o, mu0)
                g = g / jnp.maximum(jnp.linalg.norm(g), 1e-12)
                return _project(delta + step * g, epsilon)

            delta = jax.lax.fori_loop(0, num_steps, body, start)
            return deviation(delta, o, mu0), delta

        starts = _sphere(k, (restarts, o.shape[-1]), epsilon)
        devs, deltas = jax.vmap(one)(starts)
        best = jnp.argmax(devs)
        return devs[best], deltas[best]

    keys = jax.random.split(key, observations.shape[0])
    devs, deltas = jax.vmap(attack)(observations, keys)
    return {"deviation": devs, "delta": deltas}


def random_action_deviation(
    policy: GaussianPolicy, params: dict, observations: jax.Array, epsilon, key: jax.Array, num_samples: int = 32
) -> jax.Array:
    """The mean over `num_samples` uniformly random directions of ||mu(o + delta) - mu(o)||_2 with
    ||delta||_2 = epsilon, per state: (N,)."""
    _check_policy_params(policy, params)
    observations = _check_observations(policy, observations)
    _check(epsilon, 1, 1)
    if not _is_int(num_samples) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples}")

    def per_state(o, k):
        mu0 = policy.apply(params, o)[0]
        deltas = _sphere(k, (num_samples, o.shape[-1]), epsilon)
        mus = jax.vmap(lambda d: policy.apply(params, o + d)[0])(deltas)
        return jnp.mean(jnp.linalg.norm(mus - mu0, axis=-1))

    return jax.vmap(per_state)(observations, jax.random.split(key, observations.shape[0]))


ATTACKS = ("none", "worst", "random")


def attacked_episode_returns(
    policy: GaussianPolicy,
    params: dict,
    env: Environment,
    env_params,
    key: jax.Array,
    num_episodes: int,
    num_steps: int,
    epsilon,
    attack: str = "worst",
    attack_steps: int = 20,
    restarts: int = 2,
) -> jax.Array:
    """Returns (num_episodes,) of the deterministic policy when each observation it sees is moved
    within the L2 ball of radius `epsilon`: by the per-state worst case of the action deviation
    (`attack="worst"`), by a uniformly random direction of norm epsilon (`"random"`), or not at all
    (`"none"`). The same `key` gives the same episodes (initial states, env noise) for every
    attack, so clean minus attacked returns are paired differences."""
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")
    _check(epsilon, attack_steps, restarts)

    def worst(k, o):
        found = worst_case_action_deviation(policy, params, o[None], epsilon, k, attack_steps, restarts)
        return o + found["delta"][0]

    def random(k, o):
        return o + _sphere(k, o.shape, epsilon)

    perturb = {"none": None, "worst": worst, "random": random}[attack]
    return episode_returns(policy, params, env, env_params, key, num_episodes, num_steps, True, perturb=perturb)


def simulator_attack(
    policy: GaussianPolicy,
    params: dict,
    env: Environment,
    env_params,
    states,
    epsilon,
    horizon: int,
    key: jax.Array,
    num_steps: int = 20,
    num_random: int = 8,
    attack_steps: int = 10,
) -> dict[str, jax.Array]:
    """Closed-loop cost (the sum of -reward) of `horizon` deterministic steps from each start state,
    per state (N,): "clean"; "worst", under the perturbation sequence found by projected gradient
    ascent on that cost through the simulator (each step's perturbation in the L2 ball of radius
    `epsilon`; normalised-gradient steps of 2.5 epsilon / num_steps per step's row, from zero and
    from one random sequence, the better kept); "greedy", under the per-state attack on the action
    deviation (`attack_steps` steps, one restart); "random", the mean over `num_random` sequences of
    random directions of norm epsilon. "delta": (N, horizon, obs_dim) the worst sequence found.

    `states`: a batched state of `env` (leading axis N). Each start runs with its clock at 0 and a
    fixed env key, so `env_params` should carry no noise (the costs are then deterministic). The
    horizon must be shorter than the episode.
    """
    _check(epsilon, num_steps, 1)
    if not _is_int(horizon) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon}")
    if not _is_int(num_random) or num_random < 1:
        raise ValueError(f"num_random must be a positive integer, got {num_random}")
    try:
        too_long = horizon >= int(env_params.max_steps_in_episode)
    except (TypeError, jax.errors.ConcretizationTypeError):
        too_long = False
    if too_long:
        raise ValueError(f"horizon {horizon} must be shorter than the episode ({env_params.max_steps_in_episode} steps)")
    obs_dim = int(env.observation_space(env_params).shape[0])
    step = 2.5 * epsilon / num_steps
    env_key = jax.random.PRNGKey(0)

    def cost(deltas, state, perturb=None):
        state = state.replace(time=jnp.zeros_like(state.time))
        obs = env.observe(state, env_params)

        def body(carry, inp):
            obs, state = carry
            d, k = inp
            seen = obs + d if perturb is None else perturb(k, obs)
            a = to_env_action(policy.deterministic_action(params, seen), -1.0, 1.0)
            obs, state, reward, _, _, _ = env.step(env_key, state, a, env_params)
            return (obs, state), -reward

        keys = jax.random.split(jax.random.PRNGKey(1), horizon)
        _, costs = jax.lax.scan(body, (obs, state), (deltas, keys))
        return jnp.sum(costs)

    grad = jax.grad(cost)

    def greedy(k, o):
        return o + worst_case_action_deviation(policy, params, o[None], epsilon, k, attack_steps, 1)["delta"][0]

    def one(state, k):
        zero = jnp.zeros((horizon, obs_dim))
        k_start, k_rand = jax.random.split(k)

        def ascend(start):
            def body(_, deltas):
                g = grad(deltas, state)
                g = g / jnp.maximum(jnp.linalg.norm(g, axis=-1, keepdims=True), 1e-12)
                return _project(deltas + step * g, epsilon)

            deltas = jax.lax.fori_loop(0, num_steps, body, start)
            return cost(deltas, state), deltas

        starts = jnp.stack([zero, _sphere(k_start, (horizon, obs_dim), epsilon)])
        costs, deltas = jax.vmap(ascend)(starts)
        best = jnp.argmax(costs)
        randoms = jax.vmap(lambda kk: cost(_sphere(kk, (horizon, obs_dim), epsilon), state))(
            jax.random.split(k_rand, num_random))
        return {"clean": cost(zero, state), "worst": costs[best], "delta": deltas[best],
                "greedy": cost(zero, state, greedy), "random": jnp.mean(randoms)}

    n = jax.tree_util.tree_leaves(states)[0].shape[0]
    return jax.vmap(one)(states, jax.random.split(key, n))

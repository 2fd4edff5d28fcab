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

Everything is `jit`- and `vmap`-able (over states here; over a stack of policies by the caller).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from entrolab.agents.policy import GaussianPolicy
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

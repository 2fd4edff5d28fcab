"""Lyapunov exponents of the uncontrolled flow of a `ControlSystem`, in JAX.

Let Phi(x) = env.flow(x, 0, params) be the one-control-step map (time step
`dt = params.dt`) of the uncontrolled system and J(x) = dPhi/dx its Jacobian.
For a trajectory x_{t+1} = Phi(x_t) the Lyapunov exponents are

    lambda_i = lim_{T -> inf} (1 / (T dt)) log sigma_i(J(x_{T-1}) ... J(x_1) J(x_0)),

sigma_i the singular values of the tangent propagator, in decreasing order.

Two estimators are provided, both pure functions of arrays built from
`jax.lax.scan` (so they `jit` and `vmap`):

* `lyapunov_spectrum` (small systems, e.g. Lorenz-63): the QR method of
  Benettin et al. (1980) / Shimada & Nagashima (1979). An orthonormal frame
  Q_0 (n, k) is pushed forward, Z_t = J(x_t) Q_t, and re-orthonormalised
  every step by a QR factorisation Z_t = Q_{t+1} R_t with diag(R_t) >= 0;
  then lambda_i = (1 / (T dt)) sum_t log R_t[i, i]. J is formed by
  `jax.jacfwd` of the one-step map (an (n, n) matrix: only for small n).
  Since log |det J| = sum_i log R[i, i] when k = n, the sum of the estimated
  exponents is exactly the time average of log |det J| / dt, which for a
  flow with constant divergence (Lorenz: -(sigma + 1 + beta)) converges
  with no statistical noise at all; only the time discretisation enters.

* `largest_lyapunov_exponent` (large systems, e.g. Kuramoto-Sivashinsky):
  one tangent vector v (shape of x) propagated by `jax.jvp` of the one-step
  map (no Jacobian is formed) and renormalised every step:
  lambda_1 = (1 / (T dt)) sum_t log ||J(x_t) v_t||, ||v_t|| = 1.
  `vmap` it over initial conditions to average an ensemble in one compiled
  program.

Both discard `num_transient` steps of the base trajectory first (to land on
the attractor) and, for the tangent dynamics, return the running estimate
after every step so that convergence can be inspected.

Shapes: x0 (*state_shape) -- (3,) for Lorenz, (N,) for KS. A leading batch
axis is added by the caller with `jax.vmap`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from entrolab.envs.core import ControlSystem, EnvParams

StepFn = Callable[[jax.Array], jax.Array]


class LyapunovResult(NamedTuple):
    """Exponents and their running estimates.

    Attributes:
        exponents: (k,) for the spectrum, () for the largest exponent; in
            units of 1 / time (not 1 / step).
        running: (num_steps, k) or (num_steps,): the estimate using the
            first t + 1 steps after the transient, for t = 0 .. num_steps - 1.
        x_final: the base state at the end, (*state_shape).
    """

    exponents: jax.Array
    running: jax.Array
    x_final: jax.Array


def uncontrolled_step(env: ControlSystem, params: EnvParams) -> StepFn:
    """Phi(x) = env.flow(x, u=0, params): one control step with zero actuation.

    The zero actuation has the shape of `env.actuation(action, params)` (found
    by `jax.eval_shape`, nothing is computed): (3,) for Lorenz, the (N,)
    forcing for KS.
    """

    def step(x: jax.Array) -> jax.Array:
        action = jax.ShapeDtypeStruct(env.action_space(params).shape, x.dtype)
        u_shape = jax.eval_shape(lambda a: env.actuation(a, params), action).shape
        return env.flow(x, jnp.zeros(u_shape, x.dtype), params)

    return step


def iterate(step: StepFn, x0: jax.Array, num_steps: int) -> jax.Array:
    """x_{num_steps} = Phi^num_steps(x0) (no history kept)."""
    if num_steps <= 0:
        return x0
    return jax.lax.fori_loop(0, num_steps, lambda _, x: step(x), x0)


def lyapunov_spectrum_map(
    step: StepFn,
    x0: jax.Array,
    dt: float | jax.Array,
    num_steps: int,
    num_transient: int = 0,
    num_exponents: int | None = None,
    record_every: int = 1,
) -> LyapunovResult:
    """Lyapunov spectrum of the map `step` (time step `dt`) by the QR method.

    Args:
        step: the one-step map Phi, x (n,) -> (n,).
        x0: initial state, shape (n,).
        dt: time per application of `step` (exponents are per unit time).
        num_steps: steps averaged over after the transient (static).
        num_transient: steps of the base trajectory discarded first (static).
        num_exponents: k <= n leading exponents (default: all n).
        record_every: the running estimate is kept every this many steps
            (static; must divide num_steps).

    Returns:
        `LyapunovResult` with exponents (k,) in decreasing order and running
        estimates (num_steps // record_every, k).
    """
    n = x0.shape[0]
    k = n if num_exponents is None else int(num_exponents)
    num_records = _num_records(num_steps, record_every)
    x = iterate(step, x0, num_transient)
    jac = jax.jacfwd(step)

    def qr_step(_, carry):
        x, q, log_sum = carry
        z = jac(x) @ q  # (n, k)
        q, r = jnp.linalg.qr(z)  # reduced QR: q (n, k), r (k, k)
        d = jnp.diagonal(r)
        q = q * jnp.where(d < 0, -1.0, 1.0).astype(q.dtype)[None, :]  # diag(R) >= 0
        return step(x), q, log_sum + jnp.log(jnp.abs(d))

    def body(carry, _):
        carry = jax.lax.fori_loop(0, record_every, qr_step, carry)
        return carry, carry[2]

    q0 = jnp.eye(n, k, dtype=x0.dtype)
    (x, _, log_sum), cumulative = jax.lax.scan(
        body, (x, q0, jnp.zeros(k, x0.dtype)), None, length=num_records
    )
    times = dt * record_every * jnp.arange(1, num_records + 1, dtype=x0.dtype)
    return LyapunovResult(log_sum / (num_steps * dt), cumulative / times[:, None], x)


def largest_lyapunov_exponent_map(
    step: StepFn,
    x0: jax.Array,
    v0: jax.Array,
    dt: float | jax.Array,
    num_steps: int,
    num_transient: int = 0,
    record_every: int = 1,
) -> LyapunovResult:
    """Largest Lyapunov exponent of the map `step` by tangent propagation (jvp).

    Args:
        step: the one-step map Phi, x (*s) -> (*s).
        x0: initial state, shape (*s).
        v0: initial tangent vector, shape (*s) (any non-zero vector; a
            random one has a component along the leading Lyapunov vector
            with probability one).
        dt: time per application of `step`.
        num_steps: steps averaged over after the transient (static).
        num_transient: steps discarded first (static); the tangent vector is
            also propagated (and renormalised) during the transient so that
            it is aligned with the leading direction when averaging starts.
        record_every: the running estimate is kept every this many steps
            (static; must divide num_steps).

    Returns:
        `LyapunovResult` with exponents () and running estimates
        (num_steps // record_every,).
    """
    num_records = _num_records(num_steps, record_every)

    def tangent_step(_, carry):
        x, v, log_sum = carry
        x_next, w = jax.jvp(step, (x,), (v,))
        norm = jnp.linalg.norm(w)
        return x_next, w / norm, log_sum + jnp.log(norm)

    zero = jnp.zeros((), x0.dtype)
    carry = (x0, v0 / jnp.linalg.norm(v0), zero)
    if num_transient > 0:
        x, v, _ = jax.lax.fori_loop(0, num_transient, tangent_step, carry)
        carry = (x, v, zero)

    def body(carry, _):
        carry = jax.lax.fori_loop(0, record_every, tangent_step, carry)
        return carry, carry[2]

    (x, _, log_sum), cumulative = jax.lax.scan(body, carry, None, length=num_records)
    times = dt * record_every * jnp.arange(1, num_records + 1, dtype=x0.dtype)
    return LyapunovResult(log_sum / (num_steps * dt), cumulative / times, x)


def _num_records(num_steps: int, record_every: int) -> int:
    if int(num_steps) < 1 or int(record_every) < 1 or int(num_steps) % int(record_every):
        raise ValueError(
            f"num_steps ({num_steps}) must be a positive multiple of record_every ({record_every})"
        )
    return int(num_steps) // int(record_every)


def lyapunov_spectrum(
    env: ControlSystem,
    params: EnvParams,
    x0: jax.Array,
    num_steps: int,
    num_transient: int = 0,
    num_exponents: int | None = None,
    record_every: int = 1,
) -> LyapunovResult:
    """Lyapunov spectrum of the uncontrolled flow of `env` (QR method).

    `lyapunov_spectrum_map` applied to Phi(x) = env.flow(x, 0, params) with
    dt = params.dt. `env` and the step counts are static; `params` and `x0`
    are traced, so `jax.vmap` works over x0 (or params), e.g.
    `jax.vmap(lambda p, x: lyapunov_spectrum(env, p, x, 10_000), in_axes=(None, 0))`.
    """
    return lyapunov_spectrum_map(
        uncontrolled_step(env, params), x0, params.dt, num_steps, num_transient, num_exponents,
        record_every,
    )


def largest_lyapunov_exponent(
    env: ControlSystem,
    params: EnvParams,
    x0: jax.Array,
    v0: jax.Array,
    num_steps: int,
    num_transient: int = 0,
    record_every: int = 1,
) -> LyapunovResult:
    """Largest Lyapunov exponent of the uncontrolled flow of `env` (jvp method).

    `largest_lyapunov_exponent_map` applied to Phi(x) = env.flow(x, 0, params)
    with dt = params.dt. For an ensemble, vmap over (x0, v0), with params
    passed as an argument rather than closed over (closed-over params become
    constants that XLA folds: slower to compile, and on CPU slower to run):

        run = jax.jit(jax.vmap(
            lambda p, x, v: largest_lyapunov_exponent(env, p, x, v, n, m), in_axes=(None, 0, 0)))
        result = run(params, xs, vs)  # exponents (B,), running (B, n // record_every)
    """
    return largest_lyapunov_exponent_map(
        uncontrolled_step(env, params), x0, v0, params.dt, num_steps, num_transient, record_every
    )

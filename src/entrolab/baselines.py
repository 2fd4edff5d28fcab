"""Classical baselines, usable wherever a policy is (`act(key, obs, state)`).

- `zero_action`: a = 0 (the uncontrolled system).
- `random_action`: a ~ U([-1, 1]^m).
- `lqr_controller`: a saturated linear-quadratic regulator designed on the
  linearisation of one control step at the target, a = clip(-K (x - x*)).
  It is full-state feedback (it reads `state.x`, not the sensors), so on KS
  it knows more than an agent that sees 8 sensors: a reference, not a peer.

The design is discrete-time (zero-order hold over dt, which matters: the
Lorenz origin grows by exp(11.8 * 0.05) = 1.8 per control step): A = d flow/dx
and B = d flow/da at (x*, a = 0) by JAX autodiff of the environment's own
integrator; Q and R are the Hessians of its stage cost, so the regulator
minimises the same quadratic cost as the reward; the Riccati equation is
solved by SciPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from entrolab.envs.core import ControlSystem, EnvParams


def zero_action(env, params):
    shape = env.action_space(params).shape
    return lambda key, obs, state: jnp.zeros(shape)


def random_action(env, params):
    space = env.action_space(params)
    return lambda key, obs, state: space.sample(key)


@dataclass(frozen=True)
class LQRDesign:
    gain: np.ndarray  # K, shape (m, n)
    target: np.ndarray  # x*, shape (n,)
    riccati: np.ndarray  # P, shape (n, n)
    closed_loop_radius: float  # spectral radius of A - B K (< 1: locally stable)
    open_loop_radius: float  # spectral radius of A


def lqr_design(env: ControlSystem, params: EnvParams, ridge: float = 1e-8) -> LQRDesign:
    """Discrete-time LQR on the linearised control step at the target (float64)."""
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64) if jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating) else v, params)
        x_star = jnp.asarray(env.target(p64), jnp.float64)
        m = env.action_space(params).shape[0]
        a0 = jnp.zeros(m, jnp.float64)

        def step(x, a):
            return env.flow(x, env.actuation(a, p64), p64)

        def cost(x, a):
            return env.stage_cost(x, env.actuation(a, p64), p64)

        A = np.asarray(jax.jacfwd(step, 0)(x_star, a0))
        B = np.asarray(jax.jacfwd(step, 1)(x_star, a0))
        Q = np.asarray(jax.hessian(cost, 0)(x_star, a0))
        R = np.asarray(jax.hessian(cost, 1)(x_star, a0))
    n = A.shape[0]
    Q = 0.5 * (Q + Q.T) + ridge * np.eye(n)
    R = 0.5 * (R + R.T) + ridge * np.eye(m)
    P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    radius = lambda M: float(np.max(np.abs(np.linalg.eigvals(M))))  # noqa: E731
    return LQRDesign(K, np.asarray(x_star), P, radius(A - B @ K), radius(A))


def lqr_controller(env: ControlSystem, params: EnvParams, design: LQRDesign | None = None):
    """Saturated LQR as a policy: a = clip(-K (state.x - x*), -1, 1)."""
    design = lqr_design(env, params) if design is None else design
    K = jnp.asarray(design.gain, jnp.result_type(float))
    x_star = jnp.asarray(design.target, jnp.result_type(float))
    space = env.action_space(params)
    return lambda key, obs, state: jnp.clip(-K @ (state.x - x_star), space.low, space.high)


BASELINES = {"zero": zero_action, "random": random_action, "lqr": lqr_controller}

"""Exact dynamic programming on a `FiniteMDP`: hard and soft value iteration, policy evaluation.

Soft (entropy-regularised, "MaxEnt") optimality at temperature alpha > 0, the
objective E[sum_t gamma^t (r_t + alpha H(pi(.|s_t)))] of soft Q-learning and SAC:

    Q(s, a)   = R(s, a) + gamma sum_s' P(s, a, s') V(s')
    V(s)      = alpha log sum_{a valid} exp(Q(s, a) / alpha)        (0 at terminal states)
    pi(a | s) = exp((Q(s, a) - V(s)) / alpha)                        (0 on masked actions)

Q here carries no entropy bonus for the current step (SAC's convention). As
alpha -> 0, V -> max_a Q (to within alpha log A) and pi -> the greedy policy;
alpha = 0 exactly is the hard Bellman equation, so `value_iteration(mdp)` is
`soft_value_iteration(mdp, 0.0)`. The log-sum-exp subtracts the per-state
maximum first, so small alpha neither overflows nor loses the maximum.

Value iteration runs the backup in one `lax.while_loop` from V = 0 until
max_s |V_{k+1}(s) - V_k(s)| <= tol * max(1, max_s |V_k(s)|), or `max_iterations`.
The backup is a gamma-contraction in the sup norm, so on exit the error
in V is at most gamma / (1 - gamma) times that step (gamma < 1); with gamma = 1 on
an acyclic MDP it reaches the exact fixed point after (depth) sweeps. The
default tol is 100 machine epsilons of the MDP's dtype (~2e-14 in float64).

Policy evaluation solves the linear Bellman equation of a fixed policy exactly:

    V^pi = (I - gamma P_pi)^-1 (r_pi + alpha H_pi)       (rows of terminal states zeroed)

with H_pi(s) = -sum_a pi(a|s) log pi(a|s); alpha = 0 gives the plain expected
discounted return, alpha > 0 the soft return. For the soft-optimal policy
the soft return equals the soft value (a test of both).

Every function is pure and `jit`/`vmap`-able (e.g. `vmap` over alpha); inputs
that are concrete Python/NumPy values are checked and raise `ValueError`. The
two solvers are jitted inside (checks outside), so repeated calls with MDPs of
one shape and dtype compile once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from entrolab.tabular.mdp import FiniteMDP


@struct.dataclass
class ValueIterationResult:
    """The fixed point found by (soft) value iteration.

    Attributes:
        values: (S,) V; 0 at terminal states.
        q_values: (S, A) Q = R + gamma P V; -inf on masked actions.
        policy: (S, A) the soft-optimal policy (alpha > 0) or the greedy one
            (alpha = 0; ties go to the lowest action index); 0 on masked actions.
        num_iterations: () backups done.
        residual: () max_s |T V - V|, the Bellman residual of `values`.
        converged: () whether the tolerance was met before `max_iterations`.
    """

    values: jax.Array
    q_values: jax.Array
    policy: jax.Array
    num_iterations: jax.Array
    residual: jax.Array
    converged: jax.Array


@struct.dataclass
class PolicyEvaluation:
    """Exact values of a fixed policy.

    Attributes:
        values: (S,) V^pi (soft return when alpha > 0); 0 at terminal states.
        q_values: (S, A) Q^pi = R + gamma P V^pi; -inf on masked actions.
    """

    values: jax.Array
    q_values: jax.Array


def _check_alpha(alpha) -> None:
    if isinstance(alpha, (int, float, np.integer, np.floating)) and not (np.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be finite and >= 0, got {alpha}")


def _soft_max(q: jax.Array, mask: jax.Array, alpha) -> jax.Array:
    """alpha logsumexp(q / alpha) over valid actions, (S, A) -> (S,); the max at alpha = 0."""
    alpha = jnp.asarray(alpha, q.dtype)
    q_max = jnp.max(jnp.where(mask, q, -jnp.inf), axis=-1)
    positive = alpha > 0
    safe_alpha = jnp.where(positive, alpha, 1.0)  # keeps the unused branch finite at alpha = 0
    z = jnp.where(mask, (q - q_max[:, None]) / safe_alpha, -jnp.inf)
    soft = q_max + safe_alpha * jnp.log(jnp.sum(jnp.exp(z), axis=-1))
    return jnp.where(positive, soft, q_max)


def soft_bellman_backup(mdp: FiniteMDP, values: jax.Array, alpha) -> tuple[jax.Array, jax.Array]:
    """One soft Bellman backup: (Q, T_alpha V), shapes (S, A) and (S,).

    Q is -inf on masked actions; T_alpha V is 0 at terminal states. alpha = 0
    gives the hard backup max_a Q.
    """
    _check_alpha(alpha)
    q = mdp.rewards + mdp.gamma * jnp.einsum("sat,t->sa", mdp.transitions, values)
    q = jnp.where(mdp.action_mask, q, -jnp.inf)
    new_values = jnp.where(mdp.terminal, 0.0, _soft_max(q, mdp.action_mask, alpha))
    return q, new_values


def greedy_policy(mdp: FiniteMDP, q_values: jax.Array) -> jax.Array:
    """One-hot argmax over valid actions, (S, A); ties go to the lowest index."""
    best = jnp.argmax(jnp.where(mdp.action_mask, q_values, -jnp.inf), axis=-1)
    return jax.nn.one_hot(best, mdp.num_actions, dtype=mdp.rewards.dtype)


def soft_optimal_policy(mdp: FiniteMDP, q_values: jax.Array, alpha) -> jax.Array:
    """pi(a|s) = exp((Q(s,a) - V(s)) / alpha) over valid actions, (S, A); greedy at alpha = 0.

    Computed as a masked softmax of Q / alpha (the same thing at the fixed point,
    and normalised to rounding error anywhere).
    """
    _check_alpha(alpha)
    q = q_values
    alpha = jnp.asarray(alpha, q.dtype)
    positive = alpha > 0
    safe_alpha = jnp.where(positive, alpha, 1.0)
    q_max = jnp.max(jnp.where(mdp.action_mask, q, -jnp.inf), axis=-1, keepdims=True)
    weights = jnp.where(mdp.action_mask, jnp.exp(jnp.where(mdp.action_mask, q - q_max, 0.0) / safe_alpha), 0.0)
    soft = weights / jnp.sum(weights, axis=-1, keepdims=True)
    return jnp.where(positive, soft, greedy_policy(mdp, q))


def soft_value_iteration(
    mdp: FiniteMDP,
    alpha,
    *,
    tol=None,
    max_iterations: int = 100_000,
) -> ValueIterationResult:
    """Soft value iteration at temperature alpha >= 0 (alpha = 0: hard value iteration).

    Args:
        mdp: the MDP.
        alpha: temperature (a scalar; traced, so one compilation serves every alpha).
        tol: relative stopping tolerance on the sup-norm step (module docstring);
            default 100 eps of the MDP's dtype.
        max_iterations: cap on backups; `result.converged` says whether tol was met.

    Returns:
        `ValueIterationResult` with V, Q, the soft-optimal (or greedy) policy,
        the iteration count and the final Bellman residual.
    """
    _check_alpha(alpha)
    dtype = mdp.rewards.dtype
    if tol is None:
        tol = 100 * jnp.finfo(dtype).eps
    return _soft_value_iteration(mdp, jnp.asarray(alpha, dtype), jnp.asarray(tol, dtype), max_iterations)


@jax.jit
def _soft_value_iteration(mdp: FiniteMDP, alpha, tol, max_iterations) -> ValueIterationResult:
    dtype = mdp.rewards.dtype

    def not_done(carry):
        values, step, i = carry
        return (step > tol * jnp.maximum(1.0, jnp.max(jnp.abs(values)))) & (i < max_iterations)

    def backup(carry):
        values, _, i = carry
        _, new_values = soft_bellman_backup(mdp, values, alpha)
        return new_values, jnp.max(jnp.abs(new_values - values)), i + 1

    init = (jnp.zeros(mdp.num_states, dtype), jnp.asarray(jnp.inf, dtype), jnp.asarray(0, jnp.int32))
    values, step, num_iterations = jax.lax.while_loop(not_done, backup, init)
    q, next_values = soft_bellman_backup(mdp, values, alpha)
    return ValueIterationResult(
        values=values,
        q_values=q,
        policy=soft_optimal_policy(mdp, q, alpha),
        num_iterations=num_iterations,
        residual=jnp.max(jnp.abs(next_values - values)),
        converged=step <= tol * jnp.maximum(1.0, jnp.max(jnp.abs(values))),
    )


def value_iteration(mdp: FiniteMDP, *, tol=None, max_iterations: int = 100_000) -> ValueIterationResult:
    """Hard value iteration: V = max_a Q, the greedy policy (`soft_value_iteration` at alpha = 0)."""
    return soft_value_iteration(mdp, 0.0, tol=tol, max_iterations=max_iterations)


def policy_entropy(mdp: FiniteMDP, policy: jax.Array) -> jax.Array:
    """H(pi(.|s)) = -sum_a pi log pi over valid actions, (S, A) -> (S,), with 0 log 0 = 0."""
    pi = jnp.where(mdp.action_mask, policy, 0.0)
    return -jnp.sum(jnp.where(pi > 0, pi * jnp.log(jnp.where(pi > 0, pi, 1.0)), 0.0), axis=-1)


def _check_policy(mdp: FiniteMDP, policy) -> None:
    try:
        pi = np.asarray(policy, dtype=np.float64)
    except jax.errors.TracerArrayConversionError:
        return  # traced: no checks under jit/vmap
    shape = (mdp.num_states, mdp.num_actions)
    if pi.shape != shape:
        raise ValueError(f"policy must have shape (S, A) = {shape}, got {pi.shape}")
    mask = np.asarray(mdp.action_mask)
    if not np.all(np.isfinite(pi)) or np.any(pi < 0):
        raise ValueError("policy must be finite and nonnegative")
    if np.any(pi[~mask] > 0):
        raise ValueError("policy puts probability on masked actions")
    sums = pi.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if bad.size:
        raise ValueError(f"policy rows must sum to 1; state {bad[0]} sums to {sums[bad[0]]:.6g}")


def evaluate_policy(mdp: FiniteMDP, policy: jax.Array, alpha=0.0) -> PolicyEvaluation:
    """Exact (soft) values of a fixed policy by one linear solve.

    Args:
        mdp: the MDP.
        policy: (S, A) pi(a|s), rows summing to 1 over valid actions.
        alpha: entropy weight; 0 gives the expected discounted return.

    Returns:
        `PolicyEvaluation` (V^pi, Q^pi). With gamma = 1 the policy must reach a
        terminal state from everywhere, else the system is singular.
    """
    _check_alpha(alpha)
    _check_policy(mdp, policy)
    dtype = mdp.rewards.dtype
    return _evaluate_policy(mdp, jnp.asarray(policy, dtype), jnp.asarray(alpha, dtype))


@jax.jit
def _evaluate_policy(mdp: FiniteMDP, policy: jax.Array, alpha: jax.Array) -> PolicyEvaluation:
    dtype = mdp.rewards.dtype
    pi = jnp.where(mdp.action_mask, policy, 0.0)
    rewards = jnp.where(mdp.action_mask, mdp.rewards, 0.0)
    p_pi = jnp.einsum("sa,sat->st", pi, mdp.transitions)
    r_pi = jnp.sum(pi * rewards, axis=-1) + alpha * policy_entropy(mdp, pi)
    # terminal rows: V = 0 + 0, independent of gamma (keeps gamma = 1 nonsingular)
    p_pi = jnp.where(mdp.terminal[:, None], 0.0, p_pi)
    r_pi = jnp.where(mdp.terminal, 0.0, r_pi)
    values = jnp.linalg.solve(jnp.eye(mdp.num_states, dtype=dtype) - mdp.gamma * p_pi, r_pi)
    q = mdp.rewards + mdp.gamma * jnp.einsum("sat,t->sa", mdp.transitions, values)
    return PolicyEvaluation(values=values, q_values=jnp.where(mdp.action_mask, q, -jnp.inf))

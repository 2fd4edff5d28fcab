"""Exact state-entropy regularisation on finite MDPs (Ashlag et al., arXiv 2506.07085).

The normalised discounted occupancy of a policy pi from an initial distribution mu_0,

    d^pi = (1 - gamma) mu_0' (I - gamma P_pi)^-1            (a distribution over states),

its entropy H(d^pi), and the state-entropy regularised objective, in occupancy units (the return
times 1 - gamma):

    J_alpha(pi) = sum_s d^pi(s) r_pi(s) + alpha H(d^pi),          r_pi(s) = sum_a pi(a|s) r(s, a).

The state-action variant uses d^pi(s, a) = d^pi(s) pi(a|s) and H of that. Everything is one
linear solve, so gradients come by autodiff through it and a sweep over alpha and
initialisations is a vmap (`state_entropy_ascent`).

Robustness (Thm 3.1, in the form we derive and check here). For a fixed pi, the regulariser is a
worst case over reward decreases Delta in the log-sum-exp set relative to the uniform distribution
over the n states,

    R_alpha = {Delta : (1/n) sum_s exp(Delta(s) / alpha) <= 1}   (Delta = 0, no change, is inside):
    min_{Delta in R_alpha} sum_s d(s) (r_pi(s) - Delta(s)) = sum_s d(s) r_pi(s) + alpha H(d) - alpha log n,

attained at Delta*(s) = alpha log(n d(s)): the worst-case reward r_pi(s) - alpha log(n d^pi(s))
lowers the reward where the policy's *global* occupancy is above uniform and raises it where it is
below. The constant alpha log n (the robust value is J_alpha minus it, i.e. the return minus alpha
KL(d || uniform)) is what "up to the theorem's constants" means here, with the 1 - gamma between
occupancy units and returns. (Proof: maximise sum d Delta under the constraint; the Lagrange
condition makes exp(Delta / alpha) proportional to d, and the constraint is tight.) Policy
entropy's set is the same constraint per state over its m actions, (1/m) sum_a exp(Delta(s, a) /
alpha) <= 1, with the *local* worst case alpha log(m pi(a|s)) (Eysenbach & Levine 2022; Brekelmans
et al. 2022). `worst_case_reward` and `robust_value` compute both sides;
tests/test_state_entropy.py checks the identity to 1e-8 in float64 on random MDPs and that no other
feasible Delta does worse. The paper's statement was not available verbatim here.

Thm 3.2's picture (`adversarial_set_boundary`, two states): the sets grow with alpha (by the power
mean inequality, M_{1/alpha} of exp(Delta) falls as alpha grows), from the corner {max_s Delta(s)
<= alpha log n} (l-infinity-like) as alpha -> 0 towards the half-space {sum_s Delta(s) <= 0}
(l1-like) as alpha -> infinity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from entrolab.tabular.mdp import FiniteMDP


def _entropy(p: jax.Array, axis=None) -> jax.Array:
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=axis)


def occupancy(mdp: FiniteMDP, policy: jax.Array, initial) -> jax.Array:
    """d^pi (S,): the normalised discounted state occupancy, (1 - gamma) mu_0' (I - gamma P_pi)^-1.
    Sums to 1 for gamma < 1. Terminal states are treated as ordinary absorbing states here (they
    accumulate occupancy), unlike `evaluate_policy`, which pins their value to 0."""
    pi = jnp.where(mdp.action_mask, policy, 0.0)
    p_pi = jnp.einsum("sa,sat->st", pi, mdp.transitions)
    mu = jnp.asarray(initial, p_pi.dtype)
    eye = jnp.eye(mdp.num_states, dtype=p_pi.dtype)
    return (1 - mdp.gamma) * jnp.linalg.solve((eye - mdp.gamma * p_pi).T, mu)


def state_action_occupancy(mdp: FiniteMDP, policy: jax.Array, initial) -> jax.Array:
    """d^pi(s, a) = d^pi(s) pi(a|s), (S, A)."""
    return occupancy(mdp, policy, initial)[:, None] * jnp.where(mdp.action_mask, policy, 0.0)


def state_entropy(mdp: FiniteMDP, policy: jax.Array, initial, state_action: bool = False) -> jax.Array:
    """H(d^pi) in nats (of d^pi(s, a) with `state_action`)."""
    d = state_action_occupancy(mdp, policy, initial) if state_action else occupancy(mdp, policy, initial)
    return _entropy(d)


def regularised_objective(mdp: FiniteMDP, policy: jax.Array, initial, alpha, state_action: bool = False) -> jax.Array:
    """J_alpha(pi) = sum_s d^pi(s) r_pi(s) + alpha H(d^pi), in occupancy units (return x (1 - gamma))."""
    pi = jnp.where(mdp.action_mask, policy, 0.0)
    r_pi = jnp.sum(pi * jnp.where(mdp.action_mask, mdp.rewards, 0.0), axis=-1)
    d = occupancy(mdp, policy, initial)
    return jnp.dot(d, r_pi) + alpha * state_entropy(mdp, policy, initial, state_action)


def worst_case_reward(mdp: FiniteMDP, policy: jax.Array, initial, alpha, kind: str = "state") -> jax.Array:
    """The adversary's reward decrease Delta* for a policy: alpha log(n d^pi(s)) (kind "state", (S,)), or
    alpha log(m_s pi(a|s)) with m_s the valid actions of s (kind "policy", the policy-entropy set, (S, A))."""
    if kind == "state":
        return alpha * jnp.log(mdp.num_states * occupancy(mdp, policy, initial))
    if kind == "policy":
        m = jnp.sum(mdp.action_mask, axis=1, keepdims=True)
        return alpha * jnp.log(m * jnp.where(mdp.action_mask, policy, 1.0 / m))
    raise ValueError(f"kind must be 'state' or 'policy', got {kind!r}")


def robust_value(mdp: FiniteMDP, policy: jax.Array, initial, delta: jax.Array) -> jax.Array:
    """sum_s d^pi(s) (r_pi(s) - delta(s)): the policy's occupancy-weighted reward after a state
    reward decrease `delta` (S,). States the policy never visits add nothing, whatever their delta
    (the worst case puts -inf there: 0 x inf counts as 0)."""
    pi = jnp.where(mdp.action_mask, policy, 0.0)
    r_pi = jnp.sum(pi * jnp.where(mdp.action_mask, mdp.rewards, 0.0), axis=-1)
    d = occupancy(mdp, policy, initial)
    return jnp.sum(jnp.where(d > 0, d * (r_pi - delta), 0.0))


def project_to_set(delta: jax.Array, alpha) -> jax.Array:
    """A point of the boundary of R_alpha: delta (last axis: the n states) shifted by a constant so
    that (1/n) sum exp(delta / alpha) = 1."""
    n = delta.shape[-1]
    return delta - alpha * (jax.nn.logsumexp(delta / alpha, axis=-1, keepdims=True) - jnp.log(n))


def adversarial_set_boundary(alpha: float, num: int = 200, span: float | None = None) -> np.ndarray:
    """(num, 2) points of the boundary of R_alpha = {(exp(x/alpha) + exp(y/alpha)) / 2 <= 1} for two
    states: y = alpha log(2 - exp(x/alpha)) for x from -span (default 3 max(1, alpha)) to just below
    alpha log 2."""
    span = 3.0 * max(1.0, alpha) if span is None else span
    top = alpha * np.log(2.0)
    x = top - np.geomspace(span + top, 1e-9 * max(alpha, 1e-3), num)
    y = alpha * np.log(2.0 - np.exp(x / alpha))
    return np.stack([x, y], axis=1)


def softmax_policy(logits: jax.Array, mdp: FiniteMDP) -> jax.Array:
    return jax.nn.softmax(jnp.where(mdp.action_mask, logits, -jnp.inf), axis=-1)


def state_entropy_ascent(mdp: FiniteMDP, initial, logits0: jax.Array, alpha, step_size, num_updates: int,
                         state_action: bool = False):
    """Exact gradient ascent on J_alpha over softmax logits (S, A): (final logits, objective curve)."""
    def objective(logits):
        return regularised_objective(mdp, softmax_policy(logits, mdp), initial, alpha, state_action)

    grad = jax.value_and_grad(objective)

    def step(logits, _):
        value, g = grad(logits)
        return logits + step_size * g, value

    return jax.lax.scan(step, logits0, None, length=num_updates)


# ---- where regularisation does not help (the paper's negative results) --------------------------
def cvar(values, probs, level: float) -> float:
    """Lower-tail conditional value at risk of a discrete distribution: the mean of its worst
    `level` fraction of probability mass (the worst outcomes first, the last one split)."""
    values, probs = np.asarray(values, float), np.asarray(probs, float)
    if not 0 < level <= 1:
        raise ValueError(f"level must be in (0, 1], got {level}")
    if values.shape != probs.shape or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
        raise ValueError("values and probs must have the same shape, probs a distribution")
    order = np.argsort(values, kind="stable")
    v, p = values[order], probs[order]
    taken = np.minimum(p, np.maximum(level - (np.cumsum(p) - p), 0.0))
    return float(np.dot(taken, v) / level)


def risky_choice_mdp(p: float, loss: float, gamma: float = 0.9) -> tuple[FiniteMDP, np.ndarray]:
    """The MDP behind "entropy regularisation can degrade CVaR arbitrarily": from state 0, action
    0 leads to a safe absorbing state (reward 1 per step) and action 1 to a gamble: w.p. 1 - p an
    absorbing state paying (1 + p loss) / (1 - p) per step, w.p. p one paying -loss per step. Both
    actions have the same expected value, whatever `loss`, so every policy is optimal for the
    return; any entropy bonus makes the regularised optimum take the gamble with a probability that
    does not depend on `loss`, so the return's lower tail falls without bound as `loss` grows.
    States: 0 start, 1 safe, 2 won, 3 lost. Returns (mdp, initial distribution)."""
    good = (1.0 + p * loss) / (1.0 - p)
    t = np.zeros((4, 2, 4))
    t[0, 0, 1] = 1.0
    t[0, 1, 2], t[0, 1, 3] = 1.0 - p, p
    for s in (1, 2, 3):
        t[s, :, s] = 1.0
    r = np.array([[0.0, 0.0], [1.0, 1.0], [good, good], [-loss, -loss]])
    return FiniteMDP.create(t, r, gamma), np.array([1.0, 0.0, 0.0, 0.0])


def single_rollout_entropy(branch_lengths, weights, horizon: int) -> tuple[float, float]:
    """A star: from a hub, branch i is a corridor of `branch_lengths[i]` states whose last state is
    absorbing; the policy picks branch i w.p. `weights[i]` at the hub, then walks out. Over
    `horizon` steps (the hub counted once), returns (E_tau[H(visits of one rollout)],
    H(expected visits)): the entropy a single rollout's k-NN estimate targets, and the state
    entropy of the policy's (undiscounted, finite-horizon) occupancy. By concavity the first is
    at most the second, with equality for a deterministic policy; a long branch's empty corridor
    makes the deterministic longest path the first's maximiser (Ashlag et al.'s negative result)."""
    lengths = [int(x) for x in branch_lengths]
    w = np.asarray(weights, float)
    if len(lengths) != w.size or np.any(w < 0) or not np.isclose(w.sum(), 1.0) or min(lengths) < 1:
        raise ValueError("one weight per branch (a distribution), branch lengths >= 1")
    n = 1 + sum(lengths)
    per_branch = []
    offset = 1
    for length in lengths:
        visits = np.zeros(n)
        visits[0] = 1.0
        steps = horizon - 1
        walk = min(steps, length)
        visits[offset:offset + walk] = 1.0
        visits[offset + length - 1] += max(0, steps - length)  # waiting at the end of the corridor
        per_branch.append(visits / visits.sum())
        offset += length
    per_branch = np.stack(per_branch)

    def entropy(q):
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    single = float(sum(wi * entropy(q) for wi, q in zip(w, per_branch)))
    return single, entropy(w @ per_branch)

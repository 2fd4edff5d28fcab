"""The two-goal gridworld of Ahmed et al. (2019) and exact entropy-regularised policy gradient on it.

The MDP is the one the authors built with emdp (`make_symmetric_epsilon_reward_env(0.9, size=5)`,
read from github.com/zafarali/emdp): `size` x `size` cells plus one absorbing state; cell (x, y)
is state `size * x + y`; actions LEFT (y - 1), RIGHT (y + 1), UP (x - 1), DOWN (x + 1), all
deterministic, and a move off the grid leaves the agent in place; the agent starts in cell (0, 0).
Acting (any action) in cell (0, size - 1) pays `best_reward` = 5 and in cell (size - 1, 0) pays
`second_reward` = 4.5, and then the agent moves to the absorbing state, which pays nothing. gamma =
0.99. As in emdp's analytic solution, the absorbing state is an ordinary state of the linear solve
(not a `terminal` state of `FiniteMDP`): the policy acts there too, and collects its entropy
bonus. This matters: if the absorbing state collected no entropy, wandering the grid forever would
earn up to tau log 4 / (1 - gamma) = 6.9 at tau = 0.05, more than either goal, and every tau >= 0.05
would avoid both goals (measured while building this: no initialisation of 32 reached a goal).

The policy is linear-softmax on one-hot states, logits(s) = W[s] + b: (S x A) + A = 108 parameters
for the 5 x 5 grid, as in the paper. Its objective is the exact entropy-regularised return from the
start, J_tau(theta) = mu_0' V^pi_tau with V_tau = (I - gamma P_pi)^-1 (r_pi + tau H(pi(.|s))), one
linear solve (`entrolab.tabular.evaluate_policy`); its gradient is autodiff through the solve.
`gradient_ascent` follows it with a fixed step (the paper's 0.1 for 1,500 updates), optionally
decaying tau by a factor per update (the authors' variant: tau_0 = 1, x0.99), and `sweep` runs it
vmapped over initialisations x tau x step sizes in one program, in float64: in float32 the
probabilities of a saturating softmax become subnormal numbers after some hundreds of updates and
the CPU slows down ~100x (measured: 480 runs x 1,500 updates did not finish in 90 s in float32,
10 s in float64).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from entrolab.tabular.mdp import FiniteMDP
from entrolab.tabular.solvers import evaluate_policy

LEFT, RIGHT, UP, DOWN = 0, 1, 2, 3
ACTION_NAMES = ("left", "right", "up", "down")


def two_goal_gridworld(size: int = 5, best_reward: float = 5.0, second_reward: float = 4.5, gamma: float = 0.99
                       ) -> tuple[FiniteMDP, np.ndarray, dict[str, int]]:
    """(mdp, initial distribution (S,), named states {"start", "best", "second", "absorbing"})."""
    if not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    n = size * size + 1
    absorbing = n - 1
    best, second = size - 1, size * (size - 1)  # cells (0, size - 1) and (size - 1, 0)
    p = np.zeros((n, 4, n))
    r = np.zeros((n, 4))
    for s in range(size * size):
        x, y = divmod(s, size)
        if s in (best, second):
            p[s, :, absorbing] = 1.0
            r[s, :] = best_reward if s == best else second_reward
            continue
        moves = {LEFT: (x, y - 1), RIGHT: (x, y + 1), UP: (x - 1, y), DOWN: (x + 1, y)}
        for a, (nx, ny) in moves.items():
            inside = 0 <= nx < size and 0 <= ny < size
            p[s, a, size * nx + ny if inside else s] = 1.0
    p[absorbing, :, absorbing] = 1.0
    initial = np.zeros(n)
    initial[0] = 1.0
    mdp = FiniteMDP.create(p, r, gamma)
    return mdp, initial, {"start": 0, "best": best, "second": second, "absorbing": absorbing}


def init_params(key: jax.Array, mdp: FiniteMDP, scale: float = 1.0) -> dict[str, jax.Array]:
    """Linear-softmax parameters: W ~ N(0, scale^2) of shape (S, A), b = 0."""
    dtype = mdp.rewards.dtype
    return {"kernel": scale * jax.random.normal(key, (mdp.num_states, mdp.num_actions), dtype),
            "bias": jnp.zeros(mdp.num_actions, dtype)}


def softmax_policy(params: dict[str, jax.Array]) -> jax.Array:
    """(S, A) pi(a|s) = softmax(W[s] + b)."""
    return jax.nn.softmax(params["kernel"] + params["bias"], axis=-1)


def objective(params: dict[str, jax.Array], mdp: FiniteMDP, initial, tau=0.0) -> jax.Array:
    """J_tau(theta) = mu_0' V^pi_tau: the exact (entropy-regularised when tau > 0) return."""
    values = evaluate_policy(mdp, softmax_policy(params), tau).values
    return jnp.dot(jnp.asarray(initial, values.dtype), values)


def hitting_probability(policy: jax.Array, mdp: FiniteMDP, initial, target: int, others: Sequence[int],
                        gamma: float = 0.9999) -> jax.Array:
    """Pr(the chain under `policy` reaches `target` before any of `others`), from `initial`, with a
    discount `gamma` just below 1 so that a policy that never leaves a region stays well posed."""
    p = jnp.einsum("sa,sat->st", policy, mdp.transitions)
    stop = jnp.zeros(mdp.num_states, bool).at[jnp.asarray([target, *others])].set(True) | mdp.terminal
    p = jnp.where(stop[:, None], 0.0, p)
    b = jnp.zeros(mdp.num_states, p.dtype).at[target].set(1.0)
    h = jnp.linalg.solve(jnp.eye(mdp.num_states, dtype=p.dtype) - gamma * p, b)
    return jnp.dot(jnp.asarray(initial, h.dtype), h)


def gradient_ascent(params: dict[str, jax.Array], mdp: FiniteMDP, initial, tau, step_size, num_updates: int,
                    tau_decay=1.0, record_every: int = 10) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """Exact gradient ascent on J_tau_t with tau_t = tau * tau_decay^t: (final params, curves) where
    curves hold, every `record_every` updates, "return" (J_0), "objective" (J_tau_t) and
    "grad_norm" (of J_tau_t), each (num_updates // record_every,)."""
    if num_updates < record_every or num_updates % record_every:
        raise ValueError(f"num_updates ({num_updates}) must be a positive multiple of record_every ({record_every})")
    value_and_grad = jax.value_and_grad(objective)

    def update(carry, _):
        params, tau_t = carry
        value, grad = value_and_grad(params, mdp, initial, tau_t)
        params = jax.tree_util.tree_map(lambda p, g: p + step_size * g, params, grad)
        norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(grad)))
        return (params, tau_t * tau_decay), (value, norm, tau_t)

    def block(carry, _):
        carry, (value, norm, tau_t) = jax.lax.scan(update, carry, None, length=record_every)
        ret = objective(carry[0], mdp, initial, 0.0)
        return carry, {"return": ret, "objective": value[-1], "grad_norm": norm[-1], "tau": tau_t[-1]}

    dtype = mdp.rewards.dtype
    carry = (params, jnp.asarray(tau, dtype))
    (params, _), curves = jax.lax.scan(block, carry, None, length=num_updates // record_every)
    return params, curves


def sweep(mdp: FiniteMDP, initial, names: dict[str, int], key: jax.Array, taus: Sequence[float],
          step_sizes: Sequence[float], num_inits: int, num_updates: int, init_scale: float = 1.0,
          tau_decay: float = 1.0, record_every: int = 10, converge_tol: float = 1e-4) -> dict[str, np.ndarray]:
    """`gradient_ascent` from `num_inits` random initialisations (the same ones for every tau and
    step size) x `taus` x `step_sizes`, vmapped, one program. Returns arrays indexed
    [tau, step, init]: "final_return" (J_0 at the end), "final_objective", "p_best" (the final
    policy's probability of reaching the better goal first), "converged" (the regularised
    objective changed by less than `converge_tol` relative over the last tenth of the updates and
    is finite), "stable" (finite, and the regularised objective never fell by more than
    `converge_tol` relative between recorded points in the second half: a step size too large for
    the landscape makes gradient ascent oscillate), "curves" {name: [tau, step, init, record]},
    "params" (final) and "init_params" per init. The program runs in float64; build the MDP inside
    `jax.enable_x64(True)` too, else its float32 gamma and rewards are cast with their rounding. With `tau_decay` < 1 the regularised objective
    changes as tau decays, and "stable"/"converged" read the unregularised return instead."""
    with jax.enable_x64(True):
        return _sweep(mdp, initial, names, key, taus, step_sizes, num_inits, num_updates, init_scale, tau_decay,
                      record_every, converge_tol)


def to_float64(mdp: FiniteMDP, initial) -> tuple[FiniteMDP, jax.Array]:
    """The MDP's floating arrays and the initial distribution in float64 (call inside
    `jax.enable_x64(True)`; a float32 MDP keeps its float32 rounding)."""
    mdp = jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, mdp)
    return mdp, jnp.asarray(initial, jnp.float64)


def _sweep(mdp, initial, names, key, taus, step_sizes, num_inits, num_updates, init_scale, tau_decay,
           record_every, converge_tol):
    mdp, initial = to_float64(mdp, initial)
    keys = jax.random.split(key, num_inits)
    inits = jax.vmap(lambda k: init_params(k, mdp, init_scale))(keys)
    dtype = mdp.rewards.dtype
    taus_a = jnp.asarray(taus, dtype)
    steps_a = jnp.asarray(step_sizes, dtype)
    others = [names["second"]]

    def one(p0, tau, step):
        params, curves = gradient_ascent(p0, mdp, initial, tau, step, num_updates, tau_decay, record_every)
        p_best = hitting_probability(softmax_policy(params), mdp, initial, names["best"], others)
        return params, curves, p_best

    run = jax.jit(jax.vmap(jax.vmap(jax.vmap(one, (0, None, None)), (None, None, 0)), (None, 0, None)))
    params, curves, p_best = run(inits, taus_a, steps_a)
    curves = {k: np.asarray(v) for k, v in curves.items()}
    obj = curves["objective"] if tau_decay == 1.0 else curves["return"]
    tail = max(1, obj.shape[-1] // 10)
    scale = np.maximum(1.0, np.abs(obj[..., -1]))
    change = np.abs(obj[..., -1] - obj[..., -1 - tail]) / scale
    finite = np.isfinite(obj).all(axis=-1)
    half = obj[..., obj.shape[-1] // 2:]
    falls = np.nanmax(-np.diff(half, axis=-1), axis=-1, initial=0.0) / scale
    return {"final_return": curves["return"][..., -1], "final_objective": curves["objective"][..., -1],
            "p_best": np.asarray(p_best), "converged": finite & (change < converge_tol),
            "stable": finite & (falls <= converge_tol),
            "curves": curves, "params": jax.tree_util.tree_map(np.asarray, params),
            "init_params": jax.tree_util.tree_map(np.asarray, inits)}

"""A finite MDP as a pytree of arrays, with a validating constructor.

Shapes (S states, A action slots):

    transitions  P (S, A, S)   P[s, a, s'] = Pr(s' | s, a)
    rewards      R (S, A)      expected reward of taking a in s
    gamma        ()            discount, in [0, 1]
    action_mask  (S, A) bool   which action slots are valid in each state
    terminal     (S,) bool     absorbing states: value 0, no reward, no entropy

A state with fewer actions than A masks the rest; every solver ignores masked
slots (their Q is -inf, their probability 0). A terminal state must be
absorbing (every valid action loops to itself) with zero reward; the solvers
also pin its value to 0, so that a terminal state collects no entropy bonus
either, and `gamma = 1` is well posed for episodic (proper) MDPs.

`FiniteMDP` is a flax struct dataclass: every field is a pytree leaf, so an
MDP can be passed through `jit` and a batch of MDPs with the same shapes can be
`vmap`-ed (e.g. over `gamma`). Build it with `FiniteMDP.create`, which checks
the arrays with NumPy and raises a `ValueError` naming the first problem;
calling the dataclass directly skips the checks (that is what `jit`/`vmap`
do when they rebuild the pytree). The sizes are properties read from the
shapes, never stored, so they cannot go stale.

Arrays are stored in JAX's default float dtype: float32, or float64 inside
`jax.enable_x64(True)` (use that for results exact to ~1e-12).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

_ATOL = 1e-6  # tolerance of the probability checks (float32 inputs must pass)


@struct.dataclass
class FiniteMDP:
    """A finite discounted MDP (see the module docstring for shapes and rules)."""

    transitions: jax.Array  # (S, A, S)
    rewards: jax.Array  # (S, A)
    gamma: jax.Array  # ()
    action_mask: jax.Array  # (S, A) bool
    terminal: jax.Array  # (S,) bool

    @property
    def num_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def num_actions(self) -> int:
        """Number of action slots A (the most valid actions any state has, or more)."""
        return self.transitions.shape[1]

    @classmethod
    def create(
        cls,
        transitions,
        rewards,
        gamma: float,
        action_mask=None,
        terminal=None,
    ) -> FiniteMDP:
        """Check the arrays and build the MDP.

        Args:
            transitions: (S, A, S), nonnegative and finite; each valid row sums to 1.
            rewards: (S, A), finite (masked slots are ignored; zero is customary).
            gamma: discount in [0, 1]. With gamma = 1 value iteration converges
                only if every policy reaches a terminal state (a proper MDP).
            action_mask: (S, A) bool, every state with at least one valid action;
                default all valid.
            terminal: (S,) bool; each terminal state must be absorbing with zero
                reward on its valid actions. Default: no terminal states.

        Raises:
            ValueError: on any wrong shape, value or rule, with what was found.
        """
        p = np.asarray(transitions, dtype=np.float64)
        r = np.asarray(rewards, dtype=np.float64)
        if p.ndim != 3 or p.shape[0] != p.shape[2] or p.shape[0] < 1 or p.shape[1] < 1:
            raise ValueError(f"transitions must have shape (S, A, S) with S, A >= 1, got {p.shape}")
        num_states, num_actions = p.shape[:2]
        if r.shape != (num_states, num_actions):
            raise ValueError(f"rewards must have shape (S, A) = {(num_states, num_actions)}, got {r.shape}")
        g = float(gamma)
        if not 0.0 <= g <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        mask = np.ones((num_states, num_actions), bool) if action_mask is None else np.asarray(action_mask)
        if mask.shape != (num_states, num_actions):
            raise ValueError(f"action_mask must have shape {(num_states, num_actions)}, got {mask.shape}")
        if mask.dtype != bool:
            raise ValueError(f"action_mask must be boolean, got dtype {mask.dtype}")
        term = np.zeros(num_states, bool) if terminal is None else np.asarray(terminal)
        if term.shape != (num_states,):
            raise ValueError(f"terminal must have shape ({num_states},), got {term.shape}")
        if term.dtype != bool:
            raise ValueError(f"terminal must be boolean, got dtype {term.dtype}")
        if not np.all(np.isfinite(p)) or np.any(p < 0):
            raise ValueError("transitions must be finite and nonnegative")
        if not np.all(np.isfinite(r)):
            raise ValueError("rewards must be finite (use action_mask, not inf, to remove an action)")
        no_action = np.flatnonzero(~mask.any(axis=1))
        if no_action.size:
            raise ValueError(f"every state needs at least one valid action; states {no_action.tolist()} have none")
        row_sums = p.sum(axis=2)
        bad = np.argwhere(mask & (np.abs(row_sums - 1.0) > _ATOL))
        if bad.size:
            s, a = bad[0]
            raise ValueError(
                f"transitions[s, a, :] must sum to 1 on valid actions; (s={s}, a={a}) sums to {row_sums[s, a]:.6g}"
                f" ({len(bad)} bad rows)"
            )
        for s in np.flatnonzero(term):
            valid = mask[s]
            if np.any(np.abs(p[s, valid, s] - 1.0) > _ATOL):
                raise ValueError(f"terminal state {s} must be absorbing: P[{s}, a, {s}] = 1 for its valid actions")
            if np.any(r[s, valid] != 0.0):
                raise ValueError(f"terminal state {s} must have zero reward on its valid actions")
        dtype = jnp.result_type(float)  # float64 under jax.enable_x64, else float32
        return cls(
            transitions=jnp.asarray(p, dtype),
            rewards=jnp.asarray(r, dtype),
            gamma=jnp.asarray(g, dtype),
            action_mask=jnp.asarray(mask),
            terminal=jnp.asarray(term),
        )

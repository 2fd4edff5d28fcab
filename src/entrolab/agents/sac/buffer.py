"""A replay buffer on device: fixed-size circular arrays inside the train state.

Every field has a leading axis of `capacity`; `position` is the next slot to
write and `size` the number of valid slots. Adding n transitions writes slots
(position + 0..n-1) mod capacity, so the oldest are overwritten first. It is a
pytree of arrays, so it is carried by `lax.scan` and batched by `vmap` like any
other state (one buffer per agent).

A transition stores the observation the action was taken from, the action in
the policy's space [-1, 1]^m, the reward, the *next* observation of the same
episode and whether the step terminated. The next observation is
`info["final_observation"]` of the step: the observation reached, before any
auto-reset. So a truncated step keeps the observation to bootstrap from, and a
terminated one the terminal observation that the TD target masks out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Transition:
    """Transitions with any leading axes (n,) or (batch,)."""

    obs: jax.Array  # (..., obs_dim)
    action: jax.Array  # (..., action_dim), in [-1, 1]
    reward: jax.Array  # (...)
    next_obs: jax.Array  # (..., obs_dim): final observation of the step, before auto-reset
    terminated: jax.Array  # (...) bool: no bootstrap (truncation is not termination)


@struct.dataclass
class ReplayBuffer:
    data: Transition  # every leaf (capacity, ...)
    position: jax.Array  # int32: next slot to write
    size: jax.Array  # int32: valid slots, <= capacity

    @classmethod
    def create(cls, capacity: int, obs_dim: int, action_dim: int, dtype=jnp.float32) -> ReplayBuffer:
        data = Transition(
            obs=jnp.zeros((capacity, obs_dim), dtype),
            action=jnp.zeros((capacity, action_dim), dtype),
            reward=jnp.zeros((capacity,), dtype),
            next_obs=jnp.zeros((capacity, obs_dim), dtype),
            terminated=jnp.zeros((capacity,), bool),
        )
        return cls(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    @property
    def capacity(self) -> int:
        return self.data.reward.shape[-1]

    def add(self, batch: Transition) -> ReplayBuffer:
        """Write n transitions (leading axis n <= capacity) at the current position."""
        n = batch.reward.shape[0]
        idx = (self.position + jnp.arange(n, dtype=jnp.int32)) % self.capacity
        data = jax.tree.map(lambda buf, x: buf.at[idx].set(x.astype(buf.dtype)), self.data, batch)
        return ReplayBuffer(
            data,
            (self.position + n) % self.capacity,
            jnp.minimum(self.size + n, self.capacity).astype(jnp.int32),
        )

    def sample(self, key: jax.Array, batch_size: int) -> Transition:
        """`batch_size` transitions drawn uniformly from the valid slots, with replacement.

        The buffer must hold at least one transition (training starts after one step)."""
        idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(self.size, 1))
        return jax.tree.map(lambda buf: buf[idx], self.data)

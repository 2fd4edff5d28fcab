"""Running mean and variance of observations (parallel Welford / Chan et al.)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningStats:
    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape: tuple[int, ...], dtype=jnp.float32) -> RunningStats:
        return cls(jnp.zeros(shape, dtype), jnp.ones(shape, dtype), jnp.asarray(1e-4, dtype))

    def update(self, batch: jax.Array) -> RunningStats:
        """Merge a batch (leading axis = samples)."""
        b_mean = jnp.mean(batch, axis=0)
        b_var = jnp.var(batch, axis=0)
        b_count = batch.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        return RunningStats(mean, m2 / total, total)


def normalize(obs: jax.Array, mean: jax.Array, var: jax.Array, clip: float = 10.0) -> jax.Array:
    """(obs - mean) / sqrt(var + 1e-8), clipped to [-clip, clip] (the SB3 VecNormalize rule)."""
    return jnp.clip((obs - mean) / jnp.sqrt(var + 1e-8), -clip, clip)

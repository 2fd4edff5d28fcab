"""Keyed, shape-static spaces for functional environments (gymnax conventions).

gymnax ships its own spaces, but it is an optional dependency here: the
environments of entrolab must run without it. These two classes carry only
what the agents and the gymnasium adapter need (bounds, shape, dtype, a keyed
sampler and a membership test) and convert to their gymnasium counterparts.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Box:
    """A box `low <= x <= high` of static `shape` (bounds broadcast to it)."""

    low: float | np.ndarray
    high: float | np.ndarray
    shape: tuple[int, ...]
    dtype: jnp.dtype = jnp.float32

    def sample(self, key: jax.Array) -> jax.Array:
        """Uniform sample; unbounded dimensions sample a standard normal."""
        low = jnp.broadcast_to(jnp.asarray(self.low, self.dtype), self.shape)
        high = jnp.broadcast_to(jnp.asarray(self.high, self.dtype), self.shape)
        bounded = jnp.isfinite(low) & jnp.isfinite(high)
        k_u, k_n = jax.random.split(key)
        uniform = jax.random.uniform(
            k_u, self.shape, self.dtype, jnp.where(bounded, low, 0.0), jnp.where(bounded, high, 1.0)
        )
        return jnp.where(bounded, uniform, jax.random.normal(k_n, self.shape, self.dtype))

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all((x >= self.low) & (x <= self.high))

    def to_gymnasium(self):
        import gymnasium

        low = np.broadcast_to(np.asarray(self.low, np.float32), self.shape).copy()
        high = np.broadcast_to(np.asarray(self.high, np.float32), self.shape).copy()
        return gymnasium.spaces.Box(low=low, high=high, shape=self.shape, dtype=np.float32)


@dataclass(frozen=True)
class Discrete:
    """The integers {0, ..., n - 1} (a scalar action; gymnasium's `Discrete(n)`).

    `low`, `high` and `shape` make it readable where a `Box` is (the action checks clip to
    [low, high]); an action arrives as a scalar of any dtype and is rounded to the nearest integer.
    """

    n: int
    shape: tuple[int, ...] = ()
    dtype: jnp.dtype = jnp.int32

    def __post_init__(self):
        if int(self.n) < 1:
            raise ValueError(f"Discrete needs n >= 1, got {self.n}")

    @property
    def low(self) -> int:
        return 0

    @property
    def high(self) -> int:
        return int(self.n) - 1

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, self.shape, 0, self.n, self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return (x >= 0) & (x < self.n) & (jnp.round(x) == x)

    def to_gymnasium(self):
        import gymnasium

        return gymnasium.spaces.Discrete(int(self.n))

"""Helpers the learners share for their vmapped sweeps."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def init_one_by_one(init, keys: jax.Array, hp_batch, env_params):
    """Initialise one agent per key with a jitted `init(key, hp, env_params)` (hyperparameters batched
    along axis 0), then stack: the same values as `jax.vmap(init)`. Why not vmap: on a 2-core CPU a
    vmapped init of 48 agents deadlocked (jaxlib 0.10.2): the orthogonal initialiser's QR, batched,
    runs as a parallel LAPACK map whose tasks wait on the same 2-thread XLA pool they were queued on
    (docs/benchmarks.md). The training programs have no QR."""
    init_one = jax.jit(init)
    n = int(keys.shape[0])
    states = [init_one(keys[i], jax.tree.map(lambda v: v[i], hp_batch), env_params) for i in range(n)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def all_finite(tree) -> jax.Array:
    """True when every element of every leaf of `tree` is finite (the learners' NaN guard)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))

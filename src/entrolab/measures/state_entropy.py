"""Entropy of a sample of states by k nearest neighbours, and the state-entropy intrinsic reward.

`knn_entropy(x, k)` is the Kozachenko–Leonenko estimator of the differential entropy (nats) of the
distribution a sample x (n, d) was drawn from:

    H_hat = psi(n) - psi(k) + log V_d + (d / n) sum_i log eps_i,

with eps_i the Euclidean distance from x_i to its k-th nearest neighbour among the *other* points
(its own zero distance excluded: the authors' code of Ashlag et al. counts it, a bug not copied),
V_d = pi^(d/2) / Gamma(d/2 + 1) the volume of the unit ball and psi the digamma function. It is
consistent: its bias shrinks as n grows (tests/test_knn_entropy.py checks Gaussians and uniforms
in 1–5 dimensions against their closed forms).

`knn_intrinsic_reward(x, k)` is the per-sample bonus of RE3 / APT-style state-entropy methods,
log(1 + eps_i), and `RunningStd` the normaliser Ashlag et al. divide it by. Features are the
caller's (raw states, chosen coordinates or a fixed random encoder: `random_encoder`). Everything
is pure JAX on the batch it is given (all pairwise differences, O(n^2 d) memory: fine for a
rollout batch of some thousands), `jit`- and `vmap`-able.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct
from jax.scipy.special import digamma, gammaln


def _kth_distances(x: jax.Array, k: int) -> jax.Array:
    """(n,) the distance from each point to its k-th nearest *other* point."""
    # differences, not |x|^2 + |y|^2 - 2 x.y: that form cancels catastrophically in float32 for
    # close points far from the origin (a 1-D uniform sample lost 0.2 nats to it)
    d2 = jnp.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    d2 = d2 + jnp.diag(jnp.full(x.shape[0], jnp.inf, d2.dtype))  # exclude the point itself
    # the k-th smallest per row by a partial partition: on the CPU, 26x faster than lax.top_k of the
    # negated distances for n = 2,048 (0.043 s against 1.13 s; the same values)
    kth = jnp.partition(d2, k - 1, axis=1)[:, k - 1]
    return jnp.sqrt(kth)


def _check(x: jax.Array, k: int) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"x must be (n, d) samples, got shape {x.shape}")
    if not isinstance(k, int) or k < 1 or k >= x.shape[0]:
        raise ValueError(f"k must be an integer in [1, n - 1] = [1, {x.shape[0] - 1}], got {k!r}")
    return x


def knn_entropy(x: jax.Array, k: int = 5) -> jax.Array:
    """The Kozachenko–Leonenko estimate of the entropy (nats) of the distribution of the rows of x."""
    x = _check(x, k)
    n, d = x.shape
    eps = _kth_distances(x, k)
    log_vd = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1)
    return digamma(float(n)) - digamma(float(k)) + log_vd + d * jnp.mean(jnp.log(jnp.maximum(eps, 1e-30)))


def knn_intrinsic_reward(x: jax.Array, k: int = 5) -> jax.Array:
    """(n,) log(1 + eps_i), eps_i the distance to the k-th nearest other point of the batch."""
    x = _check(x, k)
    return jnp.log1p(_kth_distances(x, k))


@struct.dataclass
class RunningStd:
    """Running standard deviation of a stream of scalars (parallel Welford), the normaliser of the
    intrinsic reward."""

    mean: jax.Array
    m2: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, dtype=jnp.float32) -> RunningStd:
        return cls(jnp.zeros((), dtype), jnp.zeros((), dtype), jnp.zeros((), dtype))

    def update(self, values: jax.Array) -> RunningStd:
        values = jnp.ravel(values)
        n = values.shape[0]
        b_mean = jnp.mean(values)
        b_m2 = jnp.sum((values - b_mean) ** 2)
        total = self.count + n
        delta = b_mean - self.mean
        mean = self.mean + delta * n / total
        m2 = self.m2 + b_m2 + delta**2 * self.count * n / total
        return RunningStd(mean, m2, total)

    @property
    def std(self) -> jax.Array:
        return jnp.sqrt(self.m2 / jnp.maximum(self.count - 1, 1.0))

    def normalize(self, values: jax.Array) -> jax.Array:
        """values / std (unchanged until two values have been seen)."""
        return jnp.where(self.count > 1, values / jnp.maximum(self.std, 1e-8), values)


def random_encoder(key: jax.Array, in_dim: int, out_dim: int):
    """A fixed random linear encoder (Gaussian weights / sqrt(in_dim)): features for the k-NN bonus on
    high-dimensional states. Returns `encode(x) -> (..., out_dim)`."""
    w = jax.random.normal(key, (in_dim, out_dim)) / math.sqrt(in_dim)
    return lambda x: x @ w

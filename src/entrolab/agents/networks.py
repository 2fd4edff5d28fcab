"""Networks of the agents (flax.linen): an MLP, the Gaussian policy, the critic.

The policy of the main study is a Gaussian with a state-independent log-std
and an MLP mean; the critic is a separate MLP. Layers act on one example;
batching is the caller's `vmap` or leading axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


class MLP(nn.Module):
    """Dense layers `hidden_sizes` with `activation`, then a linear output.

    Orthogonal initialisation (gain sqrt(2) for hidden layers, `output_scale`
    for the last), zero biases: the PPO convention (Engstrom et al. 2020).
    """

    hidden_sizes: Sequence[int]
    output_size: int
    activation: str = "tanh"
    output_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for width in self.hidden_sizes:
            x = act(nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2.0)))(x))
        return nn.Dense(self.output_size, kernel_init=nn.initializers.orthogonal(self.output_scale))(x)


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log N(x; mean, diag(exp(log_std))^2), summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Entropy of a diagonal Gaussian: sum(log_std) + d/2 (1 + log 2 pi)."""
    d = log_std.shape[-1]
    return jnp.sum(log_std, axis=-1) + 0.5 * d * (1.0 + jnp.log(2.0 * jnp.pi))


def squashed_gaussian_entropy(mean: jax.Array, log_std: jax.Array, num_points: int = 16) -> jax.Array:
    """Entropy of a = tanh(u), u ~ N(mean, diag(exp(log_std))^2), summed over the last axis.

    By the change of variables, H(a) = H(u) + E_u[sum_i log(1 - tanh(u_i)^2)]. The coordinates are
    independent, so the expectation is a sum of 1-D Gaussian expectations, each taken by
    `num_points`-point Gauss-Hermite quadrature: deterministic and differentiable in mean and
    log_std (no sampling noise in a loss). At most d log 2 (uniform on [-1, 1]^d)."""
    x, w = np.polynomial.hermite.hermgauss(num_points)
    u = mean[..., None] + jnp.exp(log_std)[..., None] * jnp.sqrt(2.0) * jnp.asarray(x, mean.dtype)
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))  # log(1 - tanh(u)^2), per point
    expected = jnp.sum(log_det * jnp.asarray(w / np.sqrt(np.pi), mean.dtype), axis=-1)  # E per coordinate
    return gaussian_entropy(jnp.broadcast_to(log_std, mean.shape)) + jnp.sum(expected, axis=-1)


def tanh_log_det_jacobian(pre_tanh: jax.Array) -> jax.Array:
    """sum log(1 - tanh(u)^2), computed stably as 2 (log 2 - u - softplus(-2u))."""
    return jnp.sum(2.0 * (jnp.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh)), axis=-1)

"""The spectral maths of Kuramoto-Sivashinsky on a periodic grid (no environment, no state).

Real DFTs (dense matrices for small grids, see `DENSE_DFT_MAX_POINTS`), wavenumbers,
the linear symbol k^2 - k^4, periodic Gaussians (actuators and sensors), ETDRK4
coefficients and step, and the right-hand side `ks_rhs`. Used by the environment
(`entrolab.envs.ks`) and by the Newton solver of its steady states
(`entrolab.envs.ks_equilibria`), which therefore depend on this module and not on
each other's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


DENSE_DFT_MAX_POINTS = 256


@functools.lru_cache(maxsize=8)
def _dft_matrices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Real forms of the rfft and irfft: (n, 2m) = [Re | Im] and (2m, n), m = n//2 + 1."""
    j = np.arange(n)
    m = np.arange(n // 2 + 1)
    fwd = np.exp(-2j * np.pi * np.outer(j, m) / n)
    weight = np.full(n // 2 + 1, 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    inv = weight[:, None] * np.exp(2j * np.pi * np.outer(m, j) / n) / n
    return np.concatenate([fwd.real, fwd.imag], axis=1), np.concatenate([inv.real, -inv.imag], axis=0)


def rfft(u: jax.Array) -> jax.Array:
    """`jnp.fft.rfft` along the last axis; a dense real DFT (one matmul) for small n.

    Why: at n = 64 a batched dense DFT is a small GEMM, which XLA runs faster
    on a CPU than its FFT (benchmarks/envs.py); HIGHEST precision keeps
    float32 accuracy on accelerators that would otherwise use TF32.
    """
    n = u.shape[-1]
    if n > DENSE_DFT_MAX_POINTS:
        return jnp.fft.rfft(u)
    fwd, _ = _dft_matrices(n)
    out = jnp.matmul(u, fwd.astype(u.dtype), precision=jax.lax.Precision.HIGHEST)
    m = n // 2 + 1
    return jax.lax.complex(out[..., :m], out[..., m:])


def irfft(v: jax.Array, n: int) -> jax.Array:
    """`jnp.fft.irfft(v, n)` along the last axis; a dense inverse real DFT for small n."""
    if n > DENSE_DFT_MAX_POINTS:
        return jnp.fft.irfft(v, n)
    _, inv = _dft_matrices(n)
    parts = jnp.concatenate([jnp.real(v), jnp.imag(v)], axis=-1)
    return jnp.matmul(parts, inv.astype(parts.dtype), precision=jax.lax.Precision.HIGHEST)


def wavenumbers(num_points: int, length) -> jax.Array:
    """Angular wavenumbers of the rfft, shape (N//2 + 1,)."""
    return 2.0 * jnp.pi / length * jnp.arange(num_points // 2 + 1)


def ks_linear_symbol(k: jax.Array) -> jax.Array:
    """Fourier symbol of -d_xx - d_xxxx: k^2 - k^4."""
    return k**2 - k**4


def periodic_gaussians(grid: jax.Array, centres: jax.Array, width, length) -> jax.Array:
    """exp(-d^2 / (2 width^2)) with d the periodic distance; shape (len(centres), N)."""
    d = jnp.mod(grid[None, :] - centres[:, None] + 0.5 * length, length) - 0.5 * length
    return jnp.exp(-0.5 * (d / width) ** 2)


def etdrk4_coefficients(lin: jax.Array, h, num_contour_points: int = 16):
    """ETDRK4 coefficients (E, E2, Q, f1, f2, f3) for the diagonal operator `lin`.

    phi-functions evaluated by the mean over a circle of radius 1 around
    h*lin (Kassam & Trefethen 2005), which avoids the cancellation of the
    closed forms near h*lin = 0.
    """
    dtype = jnp.result_type(lin.dtype, jnp.float32)
    cdtype = jnp.complex128 if dtype == jnp.float64 else jnp.complex64
    roots = jnp.exp(1j * jnp.pi * (jnp.arange(1, num_contour_points + 1) - 0.5) / num_contour_points)
    lr = (h * lin).astype(cdtype)[:, None] + roots.astype(cdtype)[None, :]
    exp_lr = jnp.exp(lr)
    exp_half = jnp.exp(lr / 2)
    mean = lambda z: jnp.real(jnp.mean(z, axis=-1)).astype(dtype)  # noqa: E731
    q = h * mean((exp_half - 1) / lr)
    f1 = h * mean((-4 - lr + exp_lr * (4 - 3 * lr + lr**2)) / lr**3)
    f2 = h * mean((2 + lr + exp_lr * (-2 + lr)) / lr**3)
    f3 = h * mean((-4 - 3 * lr - lr**2 + exp_lr * (4 - lr)) / lr**3)
    return jnp.exp(h * lin), jnp.exp(h * lin / 2), q, f1, f2, f3


def etdrk4_step(v: jax.Array, nonlinear, coeffs) -> jax.Array:
    """One ETDRK4 (Cox-Matthews) step of v' = lin v + nonlinear(v) in Fourier space."""
    e, e2, q, f1, f2, f3 = coeffs
    nv = nonlinear(v)
    a = e2 * v + q * nv
    na = nonlinear(a)
    b = e2 * v + q * na
    nb = nonlinear(b)
    c = e2 * a + q * (2 * nb - nv)
    nc = nonlinear(c)
    return e * v + nv * f1 + 2 * (na + nb) * f2 + nc * f3


def ks_rhs(u: jax.Array, length, forcing: jax.Array | float = 0.0) -> jax.Array:
    """The right-hand side -u u_x - u_xx - u_xxxx + forcing on the grid (spectral)."""
    n = u.shape[-1]
    k = wavenumbers(n, length)
    ik = 1j * k.at[n // 2].set(0.0) if n % 2 == 0 else 1j * k
    u_hat = rfft(u)
    rhs_hat = ks_linear_symbol(k) * u_hat - 0.5 * ik * rfft(u * u)
    return irfft(rhs_hat, n) + forcing

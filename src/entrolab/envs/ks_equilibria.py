"""Steady states of Kuramoto-Sivashinsky, computed by Newton's method.

Solves F(u) = -u u_x - u_xx - u_xxxx = 0 on the grid (spectral derivatives)
in float64, with the Jacobian dF/du from JAX autodiff. The Jacobian is
singular along the symmetry directions (translation: u_x; and the mean mode,
whose component of F vanishes identically), so each Newton step is the
minimum-norm least-squares solution, which moves nowhere along them.

At L = 22 the non-trivial equilibria are the 1-, 2- and 3-wave states that
bifurcate from u = 0 at wavenumbers 2 pi n / L < 1 (n = 1, 2, 3):
E2 and E3 have periods L/2 and L/3 (Cvitanovic, Davidchack & Siminos 2010).
Each is found from the guess `A sin(2 pi n x / L)` with the smallest A in a
ladder for which Newton converges to a non-zero state with dominant
wavenumber n; `zero` is u = 0. Results are cached per (L, N).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from entrolab.envs.ks_spectral import ks_rhs

NAMES = ("zero", "E1", "E2", "E3")


@dataclass(frozen=True)
class Equilibrium:
    name: str
    u: np.ndarray  # float64, shape (N,)
    residual: float  # max |F(u)| on the grid
    newton_iterations: int
    dominant_wavenumber: int  # index n of the largest Fourier amplitude (0 for zero)


def _newton(u0: np.ndarray, length: float, tol: float = 1e-12, max_iter: int = 60):
    with jax.enable_x64(True):
        f = jax.jit(lambda u: ks_rhs(u, length))
        jac = jax.jit(jax.jacfwd(lambda u: ks_rhs(u, length)))
        u = jnp.asarray(u0, jnp.float64)
        for it in range(1, max_iter + 1):
            r = f(u)
            if float(jnp.max(jnp.abs(r))) < tol:
                return np.asarray(u), float(jnp.max(jnp.abs(r))), it - 1
            step, *_ = jnp.linalg.lstsq(jac(u), -r, rcond=1e-10)
            u = u + step
        return np.asarray(u), float(jnp.max(jnp.abs(f(u)))), max_iter


def _dominant(u: np.ndarray) -> int:
    amp = np.abs(np.fft.rfft(u))
    amp[0] = 0.0
    return int(np.argmax(amp)) if amp.max() > 1e-6 else 0


@functools.lru_cache(maxsize=16)
def ks_equilibria(length: float = 22.0, num_points: int = 64) -> dict[str, Equilibrium]:
    """The zero state and E1, E2, E3 (those that exist at this L) with residuals."""
    if num_points < 8 or num_points % 2:
        raise ValueError(f"num_points must be even and >= 8, got {num_points}")
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    x = length * np.arange(num_points) / num_points
    found = {"zero": Equilibrium("zero", np.zeros(num_points), 0.0, 0, 0)}
    for n in (1, 2, 3):
        if 2 * np.pi * n / length >= 1.0:  # no bifurcation from u = 0 at this L
            continue
        for amplitude in (0.5, 1.0, 1.5, 2.0, 3.0):
            u, res, its = _newton(amplitude * np.sin(2 * np.pi * n * x / length), length)
            if res < 1e-9 and np.max(np.abs(u)) > 1e-3 and _dominant(u) == n:
                found[f"E{n}"] = Equilibrium(f"E{n}", u, res, its, n)
                break
    return found

"""Figures of uncontrolled and controlled trajectories of the chaotic systems."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def lorenz_attractor_figure(xs: np.ndarray, path: Path, title: str = "Lorenz-63, uncontrolled") -> Path:
    """3-D attractor and the x-z projection of a trajectory `xs` of shape (T, 3)."""
    xs = np.asarray(xs)
    fig = plt.figure(figsize=(9, 4))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    ax.plot(xs[:, 0], xs[:, 1], xs[:, 2], lw=0.4, color="tab:blue")
    ax.set(xlabel="x", ylabel="y", zlabel="z")
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.plot(xs[:, 0], xs[:, 2], lw=0.4, color="tab:blue")
    ax2.set(xlabel="x", ylabel="z", title="x-z projection")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def ks_spacetime_figure(us: np.ndarray, length: float, dt: float, path: Path,
                        title: str = "Kuramoto-Sivashinsky (L = 22), uncontrolled") -> Path:
    """Space-time diagram of a field trajectory `us` of shape (T, N)."""
    us = np.asarray(us)
    t_end = dt * us.shape[0]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    lim = float(np.max(np.abs(us)))
    im = ax.imshow(us.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim,
                   extent=(0.0, t_end, 0.0, length))
    ax.set(xlabel="t", ylabel="x", title=title)
    fig.colorbar(im, ax=ax, label="u(x, t)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

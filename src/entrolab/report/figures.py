"""Figure helpers shared by every report: saving, small multiples, one house style.

All figures are matplotlib with the Agg backend (no screen needed), drawn from
tables only.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 110


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The report style: no offset ("+1.996e0") on the axes, and scientific notation only
    outside [1e-3, 1e4), so tick labels stay short."""
    with plt.rc_context({"axes.formatter.useoffset": False, "axes.formatter.limits": (-3, 4)}):
        yield


def save(fig, path: Path) -> str:
    """Save a figure at the report's resolution, close it, and return its file name."""
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path).name


def grid(nrows: int, ncols: int, panel=(2.7, 1.9), left=0.8, right=0.25, top=0.75, bottom=0.55, wgap=0.75,
         hgap=0.8, **kw):
    """A figure of nrows x ncols axes laid out in inches (cheaper than tight_layout on many panels)."""
    width = left + right + ncols * panel[0] + (ncols - 1) * wgap
    height = top + bottom + nrows * panel[1] + (nrows - 1) * hgap
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=wgap / panel[0], hspace=hgap / panel[1])
    return fig, axes


def panels(n: int, ncols: int = 4, **kw):
    """Small multiples: n axes on a grid of `ncols` columns (the unused cells removed)."""
    ncols = max(1, min(ncols, n))
    fig, axes = grid(math.ceil(n / ncols), ncols, **kw)
    for ax in axes.flat[n:]:
        ax.remove()
    return fig, list(axes.flat[:n])


def jitter(n: int, rng: np.random.Generator, width: float) -> np.ndarray:
    """Horizontal offsets that spread n dots around one position (none for a single dot)."""
    return rng.uniform(-width, width, size=n) if n > 1 else np.zeros(n)

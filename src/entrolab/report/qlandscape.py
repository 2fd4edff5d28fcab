"""Figures of soft versus plain Q landscapes (`entrolab.measures.qlandscape`), from tables only.

`slices_figure` draws the 1-D slices table (one row per state x action
dimension x point: soft, plain, density, mean_action, similarity);
`heatmap_figure` the 2-D maps (dicts of grids, or `maps_from_table` of a stored
maps table). Nothing here needs a checkpoint, an agent or an environment.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def slices_figure(table, path: str | Path, state_labels: dict | None = None, title: str = ""):
    """One panel per (state, action dimension): soft and plain Q - max, the policy density shaded."""
    states, dims = sorted(table["state"].unique()), sorted(table["dim"].unique())
    fig, axes = plt.subplots(len(states), len(dims), figsize=(3.6 * len(dims), 2.6 * len(states)),
                             squeeze=False, constrained_layout=True)
    for r, s in enumerate(states):
        for c, d in enumerate(dims):
            ax = axes[r][c]
            sub = table[(table["state"] == s) & (table["dim"] == d)]
            ax.plot(sub["action"], sub["soft"], color="tab:blue", label="soft Q")
            if sub["plain"].notna().any():
                ax.plot(sub["action"], sub["plain"], color="tab:orange", label="plain Q")
            ax.axvline(sub["mean_action"].iloc[0], color="gray", lw=0.8, ls=":")
            twin = ax.twinx()
            twin.fill_between(sub["action"], sub["density"], color="tab:green", alpha=0.2, lw=0)
            twin.set_yticks([])
            label = (state_labels or {}).get(s, f"state {s}")
            sim = sub["similarity"].iloc[0]
            ax.set_title(f"{label}, a[{d}]" + ("" if np.isnan(sim) else f"  cos={sim:.2f}"), fontsize=9)
            if c == 0:
                ax.set_ylabel("Q - max Q")
            if r == len(states) - 1:
                ax.set_xlabel(f"action {d}")
            if r == 0 and c == 0:
                ax.legend(fontsize=7, loc="lower center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def heatmap_figure(maps: list[dict], path: str | Path, labels: list[str] | None = None, title: str = ""):
    """One row per state: soft Q, plain Q (each - max) and the policy's density over two action dims."""
    fig, axes = plt.subplots(len(maps), 3, figsize=(10.5, 3.2 * len(maps)), squeeze=False, constrained_layout=True)
    for r, hm in enumerate(maps):
        extent = (hm["x"][0], hm["x"][-1], hm["y"][0], hm["y"][-1])
        i, j = hm["dims"]
        for c, (key, name, cmap) in enumerate((("soft", "soft Q - max", "viridis"),
                                                ("plain", "plain Q - max", "viridis"),
                                                ("density", "policy density", "Greens"))):
            ax = axes[r][c]
            im = ax.imshow(hm[key], origin="lower", extent=extent, aspect="auto", cmap=cmap)
            fig.colorbar(im, ax=ax, shrink=0.85)
            ax.plot(*hm["mean_action"], "r+", ms=9)
            label = labels[r] if labels else f"state {r}"
            ax.set_title(f"{label}: {name}" + (f" (cos={hm['similarity']:.2f})" if c == 1 and
                                                 np.isfinite(hm["similarity"]) else ""), fontsize=9)
            ax.set_xlabel(f"action {i}")
            ax.set_ylabel(f"action {j}")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def maps_from_table(m: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """The 2-D maps of one policy from a stored maps table (one row per state x grid point:
    x, y, dim_x, dim_y, soft, plain, density, mean_x, mean_y, similarity, time), with their
    labels ("t=TIME"), as `heatmap_figure` takes them."""
    maps, labels = [], []
    for _, sub in m.groupby("state", sort=True):
        xs, ys = np.unique(sub["x"]), np.unique(sub["y"])
        sub = sub.sort_values(["y", "x"])

        def grid(col, sub=sub, xs=xs, ys=ys):
            return sub[col].to_numpy().reshape(len(ys), len(xs))

        maps.append({"x": xs, "y": ys, "dims": (int(sub["dim_x"].iloc[0]), int(sub["dim_y"].iloc[0])),
                     "soft": grid("soft"), "plain": grid("plain"), "density": grid("density"),
                     "mean_action": np.array([sub["mean_x"].iloc[0], sub["mean_y"].iloc[0]]),
                     "similarity": float(sub["similarity"].iloc[0])})
        labels.append(f"t={int(sub['time'].iloc[0])}")
    return maps, labels

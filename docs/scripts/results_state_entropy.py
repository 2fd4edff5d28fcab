"""The figure and numbers of docs/results.md's exact state-entropy section (issue 13, item 1).

    .venv/bin/python docs/scripts/results_state_entropy.py

Draws the boundary of the adversarial reward set R_alpha = {Delta : (1/n) sum_s exp(Delta(s)/alpha)
<= 1} for two states and several alpha (Thm 3.2's picture), and checks Thm 3.1's identity on 100
random MDPs in float64, printing the largest deviation.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from entrolab.tabular import FiniteMDP  # noqa: E402
from entrolab.tabular.state_entropy import (  # noqa: E402
    adversarial_set_boundary, regularised_objective, robust_value, worst_case_reward,
)

FIG = Path(__file__).resolve().parents[1] / "figures" / "state_entropy_sets.png"


def main() -> None:
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    cmap = plt.get_cmap("viridis")
    alphas = (0.05, 0.3, 1.0, 3.0)
    for i, alpha in enumerate(alphas):
        pts = adversarial_set_boundary(alpha, num=400, span=6.0)
        ax.plot(pts[:, 0], pts[:, 1], color=cmap(0.1 + 0.8 * i / (len(alphas) - 1)), label=f"alpha = {alpha:g}")
    ax.plot([-6, 6], [6, -6], "k:", lw=0.8, label="x + y = 0 (alpha -> inf)")
    ax.set_xlim(-6, 3)
    ax.set_ylim(-6, 3)
    ax.set_xlabel("Delta(s1): reward decrease in state 1")
    ax.set_ylabel("Delta(s2)")
    ax.set_title("Adversarial reward sets of state entropy (inside: below each curve)", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIG, dpi=110)
    print(f"wrote {FIG}")

    worst = 0.0
    with jax.enable_x64(True):
        for seed in range(100):
            rng = np.random.default_rng(seed)
            s, a = rng.integers(2, 12), rng.integers(2, 5)
            mdp = FiniteMDP.create(rng.dirichlet(np.ones(s), size=(s, a)), rng.normal(size=(s, a)), rng.uniform(0.5, 0.99))
            pi = jnp.asarray(rng.dirichlet(np.ones(a), size=s))
            mu = jnp.asarray(rng.dirichlet(np.ones(s)))
            alpha = float(rng.uniform(0.01, 3.0))
            lhs = robust_value(mdp, pi, mu, worst_case_reward(mdp, pi, mu, alpha))
            rhs = regularised_objective(mdp, pi, mu, alpha) - alpha * np.log(s)
            worst = max(worst, abs(float(lhs - rhs)))
    print(f"Thm 3.1 on 100 random MDPs (2-11 states, 2-4 actions, gamma 0.5-0.99, alpha 0.01-3): "
          f"largest |robust value - (J_alpha - alpha log n)| = {worst:.2e}")


if __name__ == "__main__":
    main()

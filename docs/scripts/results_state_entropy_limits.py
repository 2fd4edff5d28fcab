"""The numbers of docs/results.md's "where state entropy does not help" paragraph (issue 13, item 1).

    .venv/bin/python docs/scripts/results_state_entropy_limits.py

1. CVaR: on `risky_choice_mdp(p = 0.01, loss, gamma = 0.9)` every policy has the same expected
   return; the state-entropy regularised optimum (alpha = 0.1, a grid of 1,001 gamble probabilities)
   and the policy-entropy one (both actions have the same soft value: 1/2) take the gamble whatever
   the loss, so the 5 % CVaR of the return falls linearly in the loss.
2. A single rollout: on a star with branches of 8, 6, 6, 6 states (horizon 9), the maximiser over
   a grid of branch probabilities of one rollout's visit entropy and that of the occupancy's entropy.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from entrolab.tabular.state_entropy import cvar, regularised_objective, risky_choice_mdp, single_rollout_entropy


def main() -> None:
    jax.config.update("jax_enable_x64", True)
    qs = np.linspace(0.0, 1.0, 1001)
    print("loss | q* state entropy | mean return | 5% CVaR (state) | 5% CVaR (policy entropy, q = 1/2) | CVaR q = 0")
    for loss in (1.0, 10.0, 100.0, 1000.0):
        mdp, mu = risky_choice_mdp(0.01, loss, 0.9)
        objective = jax.vmap(lambda q: regularised_objective(
            mdp, jnp.stack([jnp.stack([1 - q, q]), *([jnp.asarray([0.5, 0.5])] * 3)]), mu, 0.1))(jnp.asarray(qs))
        q = float(qs[int(jnp.argmax(objective))])
        g = 0.9 / 0.1
        returns = [g, g * float(mdp.rewards[2, 0]), -g * loss]

        def odds(q):
            return [1 - q, q * 0.99, q * 0.01]

        mean = float(np.dot(returns, odds(q)))
        print(f"{loss:g} | {q:.3f} | {mean:.4f} | {cvar(returns, odds(q), 0.05):.1f} | "
              f"{cvar(returns, odds(0.5), 0.05):.1f} | {cvar(returns, odds(0.0), 0.05):.1f}")
    lengths, horizon = [8, 6, 6, 6], 9
    grid = np.linspace(0, 1, 41)
    best = {"single": (-1.0, None), "occupancy": (-1.0, None)}
    for a, b, c in itertools.product(grid, grid, grid):
        d = 1 - a - b - c
        if d < -1e-9:
            continue
        w = np.array([a, b, c, max(d, 0.0)])
        single, full = single_rollout_entropy(lengths, w, horizon)
        for name, v in (("single", single), ("occupancy", full)):
            if v > best[name][0]:
                best[name] = (v, w)
    for name, (v, w) in best.items():
        s, f = single_rollout_entropy(lengths, w, horizon)
        print(f"max of the {name} objective: weights {np.round(w, 3).tolist()}: one rollout's entropy {s:.3f}, "
              f"occupancy entropy {f:.3f}")


if __name__ == "__main__":
    main()

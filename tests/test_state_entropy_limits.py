"""Where state-entropy regularisation does not help (Ashlag et al.'s negative results), exactly:
the CVaR of the regularised optimum on the risky-choice MDP, and the single-rollout objective on
a star (entrolab.tabular.state_entropy)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.tabular.state_entropy import (
    cvar, occupancy, regularised_objective, risky_choice_mdp, single_rollout_entropy,
)


def test_cvar_against_sorted_samples():
    rng = np.random.default_rng(0)
    values = rng.normal(size=7)
    probs = rng.dirichlet(np.ones(7))
    # an equivalent sample: each value repeated in proportion to its probability (1e5 draws' worth)
    counts = np.round(probs * 100_000).astype(int)
    sample = np.sort(np.repeat(values, counts))
    for level in (0.01, 0.05, 0.3, 1.0):
        m = int(round(level * sample.size))
        assert cvar(values, probs, level) == pytest.approx(sample[:m].mean(), abs=1e-3)
    assert cvar([1.0, -5.0], [0.5, 0.5], 0.25) == -5.0 and cvar([1.0, -5.0], [0.5, 0.5], 1.0) == -2.0
    with pytest.raises(ValueError):
        cvar([1.0], [1.0], 0.0)


def _policy(q):
    return jnp.asarray([[1 - q, q], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])


def test_entropy_regularisation_degrades_cvar_without_bound():
    """Every policy has the same expected return whatever the loss; the state-entropy optimum takes
    the gamble with the same probability for every loss, so its 5 % CVaR falls linearly in it."""
    qs = np.linspace(0.0, 1.0, 201)
    chosen, tails = [], []
    with jax.enable_x64(True):
        for loss in (1.0, 1000.0):
            mdp, mu = risky_choice_mdp(0.01, loss, 0.9)
            rewards = [float(jnp.dot(occupancy(mdp, _policy(q), mu), mdp.rewards[:, 0])) for q in (0.0, 1.0)]
            assert rewards[0] == pytest.approx(rewards[1], rel=1e-12)  # the return cannot tell them apart
            objective = jax.vmap(lambda q: regularised_objective(mdp, _policy(q), mu, 0.1))(jnp.asarray(qs))
            q = float(qs[int(jnp.argmax(objective))])
            chosen.append(q)
            # discounted returns of the three outcomes (reward from the second step on) and their odds
            g = 0.9 / 0.1
            returns = [g * 1.0, g * float(mdp.rewards[2, 0]), g * -loss]
            tails.append(cvar(returns, [1 - q, q * 0.99, q * 0.01], 0.05))
    assert chosen[0] == chosen[1] and 0.3 < chosen[0] < 0.7
    assert tails[0] > 0 > -500 > tails[1]


def test_a_single_rollout_rewards_the_deterministic_longest_path():
    lengths, horizon = [8, 6, 6, 6], 9
    rng = np.random.default_rng(1)
    for w in rng.dirichlet(np.ones(4), size=20):  # Jensen: one rollout's entropy <= the occupancy's
        single, full = single_rollout_entropy(lengths, w, horizon)
        assert single <= full + 1e-12
    for i in range(4):  # deterministic: equal
        single, full = single_rollout_entropy(lengths, np.eye(4)[i], horizon)
        assert single == pytest.approx(full)
    longest = single_rollout_entropy(lengths, [1, 0, 0, 0], horizon)
    mixed = single_rollout_entropy(lengths, [0.35, 0.2, 0.2, 0.25], horizon)
    assert longest[0] == pytest.approx(np.log(9)) and mixed[0] < longest[0]  # the single-rollout objective
    assert mixed[1] > longest[1] + 0.9  # the state entropy of the occupancy prefers the mixture

"""The two-goal gridworld (entrolab.tabular.gridworld) and exact policy gradient on it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.tabular import value_iteration
from entrolab.tabular.gridworld import (
    DOWN, LEFT, RIGHT, UP, gradient_ascent, hitting_probability, init_params, objective, softmax_policy, sweep,
    two_goal_gridworld,
)


def test_the_gridworld_is_emdps_two_goal_world():
    mdp, initial, names = two_goal_gridworld()
    p = np.asarray(mdp.transitions)
    assert p.shape == (26, 4, 26) and names == {"start": 0, "best": 4, "second": 20, "absorbing": 25}
    assert initial[0] == 1 and initial.sum() == 1
    # from (0, 0): right to (0, 1), down to (1, 0); left and up hit the wall and stay
    assert p[0, RIGHT, 1] == 1 and p[0, DOWN, 5] == 1 and p[0, LEFT, 0] == 1 and p[0, UP, 0] == 1
    # the goals pay on any action and lead to the absorbing state, which loops and pays nothing
    r = np.asarray(mdp.rewards)
    assert np.all(r[4] == 5.0) and np.all(r[20] == 4.5) and np.all(p[4, :, 25] == 1) and np.all(p[25, :, 25] == 1)
    assert r.sum() == 4 * 9.5
    # the optimal return: four steps right then the reward, gamma^4 x 5 (independent of the solver)
    with jax.enable_x64(True):
        mdp64, _, _ = two_goal_gridworld()
        v = value_iteration(mdp64, tol=1e-12).values
    assert float(v[0]) == pytest.approx(0.99**4 * 5.0, rel=1e-9)
    assert float(v[20]) == pytest.approx(4.5, rel=1e-9)  # on the second goal: act and take it
    # next to the second goal, (4, 1): one step left to it (gamma 4.5 = 4.455) loses to seven steps to
    # the best one (gamma^7 5 = 4.660)
    assert float(v[21]) == pytest.approx(0.99**7 * 5.0, rel=1e-9)


def test_exact_values_match_a_numpy_linear_solve_and_the_gradient_finite_differences():
    with jax.enable_x64(True):
        mdp, initial, _ = two_goal_gridworld()
        params = init_params(jax.random.key(0), mdp, 1.0)
        tau = 0.05
        pi = np.asarray(softmax_policy(params))
        # an independent computation: NumPy's solve of (I - gamma P_pi) V = r_pi + tau H(pi)
        p_pi = np.einsum("sa,sat->st", pi, np.asarray(mdp.transitions))
        r_pi = (pi * np.asarray(mdp.rewards)).sum(1) - tau * (pi * np.log(pi)).sum(1)
        v = np.linalg.solve(np.eye(26) - 0.99 * p_pi, r_pi)
        assert float(objective(params, mdp, initial, tau)) == pytest.approx(v[0], rel=1e-12)
        grad = jax.grad(objective)(params, mdp, initial, tau)
        rng = np.random.default_rng(1)
        for _ in range(5):
            s, a = rng.integers(26), rng.integers(4)
            h = 1e-4  # smaller steps lose digits to the solve's conditioning (1 / (1 - gamma) = 100)
            up = {**params, "kernel": params["kernel"].at[s, a].add(h)}
            down = {**params, "kernel": params["kernel"].at[s, a].add(-h)}
            fd = (objective(up, mdp, initial, tau) - objective(down, mdp, initial, tau)) / (2 * h)
            assert float(grad["kernel"][s, a]) == pytest.approx(float(fd), rel=1e-6, abs=1e-10)
        n = sum(x.size for x in jax.tree_util.tree_leaves(params))
        assert n == 108  # the paper's count


def test_hitting_probability_of_deterministic_policies():
    mdp, initial, names = two_goal_gridworld()
    right = jnp.zeros((26, 4)).at[:, RIGHT].set(1.0)  # along the top row to the best goal
    down = jnp.zeros((26, 4)).at[:, DOWN].set(1.0)  # down the left column to the second goal
    assert float(hitting_probability(right, mdp, initial, names["best"], [names["second"]])) == pytest.approx(1, abs=1e-3)
    assert float(hitting_probability(down, mdp, initial, names["best"], [names["second"]])) == pytest.approx(0, abs=1e-6)


def test_gradient_ascent_and_the_sweep():
    mdp, initial, names = two_goal_gridworld()
    with pytest.raises(ValueError, match="multiple of record_every"):
        gradient_ascent(init_params(jax.random.key(0), mdp), mdp, initial, 0.0, 0.1, 15)
    out = sweep(mdp, initial, names, jax.random.key(0), [0.0, 0.5], [0.1], 8, 1500)
    assert out["final_return"].shape == (2, 1, 8) and out["curves"]["return"].shape == (2, 1, 8, 150)
    assert out["final_return"].dtype == np.float64
    # the returns of the final policies never exceed the optimum, and tau = 0 comes within 2 % of a goal
    assert np.all(out["final_return"] <= 0.99**4 * 5.0 + 1e-9)
    best_or_second = np.maximum(out["final_return"][0] / (0.99**4 * 5.0), out["final_return"][0] / (0.99**4 * 4.5))
    assert np.all(best_or_second > 0.98)
    assert out["stable"].dtype == bool and out["p_best"].shape == (2, 1, 8)

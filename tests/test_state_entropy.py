"""Exact state-entropy regularisation (entrolab.tabular.state_entropy) against independent computations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.tabular import FiniteMDP
from entrolab.tabular.state_entropy import (
    adversarial_set_boundary, occupancy, project_to_set, regularised_objective, robust_value, softmax_policy,
    state_action_occupancy, state_entropy, state_entropy_ascent, worst_case_reward,
)


def random_mdp(seed: int, s: int = 6, a: int = 3, gamma: float = 0.9):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(s) * 0.5, size=(s, a))
    r = rng.normal(size=(s, a))
    mdp = FiniteMDP.create(p, r, gamma)
    pi = rng.dirichlet(np.ones(a), size=s)
    mu = rng.dirichlet(np.ones(s))
    return mdp, jnp.asarray(pi), jnp.asarray(mu), rng


def test_occupancy_against_a_numpy_solve_and_monte_carlo():
    with jax.enable_x64(True):
        mdp, pi, mu, rng = random_mdp(0)
        d = np.asarray(occupancy(mdp, pi, mu))
    p = np.asarray(mdp.transitions)
    p_pi = np.einsum("sa,sat->st", np.asarray(pi), p)
    # independent: the power series (1 - gamma) sum_t gamma^t mu' P^t, summed to 1e-14
    total, row = np.zeros(6), np.asarray(mu).copy()
    for t in range(400):
        total += (1 - 0.9) * 0.9**t * row
        row = row @ p_pi
    np.testing.assert_allclose(d, total, atol=1e-12)
    assert d.sum() == pytest.approx(1.0, abs=1e-12)
    # Monte Carlo: the state at a Geometric(1 - gamma) stopping time is distributed as d
    n = 20_000
    states = rng.choice(6, size=n, p=np.asarray(mu))
    alive = np.ones(n, bool)
    stop = np.zeros(n, int)
    for t in range(300):
        done = alive & (rng.random(n) < 1 - 0.9)
        stop[done] = states[done]
        alive &= ~done
        idx = np.flatnonzero(alive)
        cum_pi = np.cumsum(np.asarray(pi)[states[idx]], axis=1)
        actions = np.minimum((rng.random(idx.size)[:, None] > cum_pi).sum(1), 2)
        cum_p = np.cumsum(p[states[idx], actions], axis=1)
        states[idx] = np.minimum((rng.random(idx.size)[:, None] > cum_p).sum(1), 5)
        if not alive.any():
            break
    freq = np.bincount(stop, minlength=6) / n
    assert np.all(np.abs(freq - d) <= 4 * np.sqrt(d * (1 - d) / n) + 1e-3), (freq, d)


def test_gradient_against_finite_differences():
    with jax.enable_x64(True):
        mdp, _, mu, rng = random_mdp(1)
        logits = jnp.asarray(rng.normal(size=(6, 3)))

        def f(x):
            return regularised_objective(mdp, softmax_policy(x, mdp), mu, 0.3)

        g = jax.grad(f)(logits)
        for s, a in [(0, 0), (3, 2), (5, 1)]:
            h = 1e-5
            fd = (f(logits.at[s, a].add(h)) - f(logits.at[s, a].add(-h))) / (2 * h)
            assert float(g[s, a]) == pytest.approx(float(fd), rel=1e-6, abs=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_theorem_3_1_the_regulariser_is_a_worst_case_over_the_log_sum_exp_set(seed):
    """min over {Delta : (1/n) sum exp(Delta / alpha) <= 1} of sum d (r_pi - Delta) = sum d r_pi + alpha H(d)
    - alpha log n, at Delta* = alpha log(n d); every other feasible Delta (on the boundary, which is where
    the minimum is) does no worse for the adversary."""
    with jax.enable_x64(True):
        mdp, pi, mu, rng = random_mdp(seed)
        for alpha in (0.01, 0.3, 2.0):
            delta = worst_case_reward(mdp, pi, mu, alpha, "state")
            assert float(jnp.mean(jnp.exp(delta / alpha))) == pytest.approx(1.0, abs=1e-12)  # feasible, tight
            target = float(regularised_objective(mdp, pi, mu, alpha)) - alpha * np.log(6)
            assert float(robust_value(mdp, pi, mu, delta)) == pytest.approx(target, abs=1e-8)
            others = project_to_set(jnp.asarray(rng.normal(size=(500, 6)) * 3 * alpha), alpha)
            values = jax.vmap(lambda dl: robust_value(mdp, pi, mu, dl))(others)
            assert float(values.min()) >= target - 1e-10


def test_policy_entropys_set_is_local():
    """The same constraint per state over its m actions: the worst case alpha log(m pi(a|s)) turns the
    occupancy-weighted reward into sum_s d(s) [r_pi(s) + alpha H(pi(.|s)) - alpha log m]."""
    with jax.enable_x64(True):
        mdp, pi, mu, _ = random_mdp(7)
        alpha = 0.5
        delta = worst_case_reward(mdp, pi, mu, alpha, "policy")
        np.testing.assert_allclose(jnp.mean(jnp.exp(delta / alpha), axis=1), 1.0, atol=1e-12)
        d = occupancy(mdp, pi, mu)
        value = jnp.dot(d, jnp.sum(pi * (mdp.rewards - delta), axis=1))
        h_pi = -jnp.sum(pi * jnp.log(pi), axis=1)
        expected = jnp.dot(d, jnp.sum(pi * mdp.rewards, axis=1) + alpha * h_pi) - alpha * np.log(3)
        assert float(value) == pytest.approx(float(expected), abs=1e-10)
        # the state-action entropy is the state entropy plus the occupancy-weighted policy entropy
        sa = state_entropy(mdp, pi, mu, state_action=True)
        assert float(sa) == pytest.approx(float(state_entropy(mdp, pi, mu) + jnp.dot(d, h_pi)), abs=1e-10)
        np.testing.assert_allclose(state_action_occupancy(mdp, pi, mu).sum(), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="kind must be"):
        worst_case_reward(mdp, pi, mu, 0.5, "global")


def test_the_set_grows_with_alpha_from_a_corner_to_a_half_space():
    alphas = (0.01, 0.3, 10.0)
    bounds = {a: adversarial_set_boundary(a) for a in alphas}
    for a, pts in bounds.items():
        np.testing.assert_allclose((np.exp(pts[:, 0] / a) + np.exp(pts[:, 1] / a)) / 2, 1.0, atol=1e-9)
        assert np.all(pts.sum(axis=1) <= 1e-9)  # by convexity, x + y <= 0 on the boundary (= 0 at the origin)
    # nested: every boundary point of a smaller alpha is inside the set of a larger one
    for small, large in zip(alphas[:-1], alphas[1:]):
        pts = bounds[small]
        assert np.all((np.exp(pts[:, 0] / large) + np.exp(pts[:, 1] / large)) / 2 <= 1 + 1e-9)
    # small alpha: a corner at max(x, y) = alpha log 2; large alpha: near the line x + y = 0 around the origin
    corner = np.max(bounds[0.01], axis=1)  # within alpha log 2 of the corner {max(x, y) = 0}
    assert corner.min() >= -1e-12 and corner.max() <= 0.01 * np.log(2) + 1e-12
    near = bounds[10.0][np.abs(bounds[10.0][:, 0] - 1.0) < 0.3]
    assert np.all(np.abs(near.sum(axis=1)) < 0.2)


def test_gradient_ascent_raises_the_state_entropy_with_alpha():
    with jax.enable_x64(True):
        mdp, _, mu, rng = random_mdp(3)
        logits0 = jnp.asarray(rng.normal(size=(6, 3)))
        run = jax.vmap(lambda a: state_entropy_ascent(mdp, mu, logits0, a, 1.0, 500))
        finals, curves = run(jnp.asarray([0.0, 1.0]))
        ent = [float(state_entropy(mdp, softmax_policy(f, mdp), mu)) for f in finals]
    assert ent[1] > ent[0]
    assert np.all(np.diff(np.asarray(curves), axis=1)[:, 100:] >= -1e-9)  # ascent

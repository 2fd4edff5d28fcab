"""Soft vs plain Q landscapes (entrolab.measures.qlandscape): the density against scipy, the slices and
maps against direct critic evaluations, AdaEnt's similarity against NumPy, and the errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from entrolab.agents.sac import SquashedGaussianPolicy
from entrolab.agents.sac.networks import TwinQ
from entrolab.measures.qlandscape import Landscape, marginal_log_density
from entrolab.report.qlandscape import heatmap_figure, slices_figure


@pytest.fixture(scope="module")
def land():
    policy = SquashedGaussianPolicy(obs_dim=3, action_dim=2, hidden_sizes=(8,))
    critic = TwinQ((8,))
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    actor = policy.init(k1)
    # a larger output layer than the 0.01 init, so the mean action is away from 0
    actor = jax.tree.map(lambda x: x * 30.0, actor)
    return Landscape(policy, critic, actor, critic.init(k2, 3, 2), critic.init(k3, 3, 2))


def test_marginal_density_is_the_squashed_normal_and_integrates_to_one():
    a = np.linspace(-0.999, 0.999, 20001)
    for mean, log_std in ((0.3, -0.5), (-1.2, 0.4)):
        got = np.exp(np.asarray(marginal_log_density(jnp.asarray(a), jnp.asarray(mean), jnp.asarray(log_std))))
        want = scipy.stats.norm.pdf(np.arctanh(a), mean, np.exp(log_std)) / (1 - a**2)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-8)
        # the mass inside [-0.999, 0.999] is that of the pre-tanh normal inside [-atanh 0.999, atanh 0.999]
        inside = np.diff(scipy.stats.norm.cdf(np.arctanh([-0.999, 0.999]), mean, np.exp(log_std)))[0]
        assert np.trapezoid(got, a) == pytest.approx(inside, abs=1e-3)


def test_slices_are_critic_values_through_the_deterministic_action(land):
    obs = np.array([[0.1, -0.4, 2.0], [1.0, 0.0, -1.0]], np.float32)
    table = land.slices(obs, num=11)
    assert len(table) == 2 * 2 * 11
    for s in range(2):
        mean, log_std = land.policy.apply(land.actor, jnp.asarray(obs[s]))
        base = np.tanh(np.asarray(mean))
        for d in range(2):
            sub = table[(table["state"] == s) & (table["dim"] == d)]
            actions = np.repeat(base[None], 11, axis=0)
            actions[:, d] = sub["action"].to_numpy()
            obs_g = jnp.broadcast_to(jnp.asarray(obs[s]), (11, 3))
            soft = np.asarray(land.critic.min(land.soft, obs_g, jnp.asarray(actions)))
            plain = np.asarray(land.critic.min(land.plain, obs_g, jnp.asarray(actions)))
            np.testing.assert_allclose(sub["soft_raw"], soft, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(sub["plain_raw"], plain, rtol=1e-5, atol=1e-6)
            assert sub["soft"].max() == 0.0 and sub["plain"].max() == 0.0
            assert sub["mean_action"].iloc[0] == pytest.approx(base[d], abs=1e-6)
            x, y = soft - soft.min(), plain - plain.min()
            assert sub["similarity"].iloc[0] == pytest.approx(x @ y / np.linalg.norm(x) / np.linalg.norm(y), abs=1e-5)
            want = scipy.stats.norm.pdf(np.arctanh(sub["action"]), float(mean[d]), float(np.exp(log_std[d])))
            np.testing.assert_allclose(sub["density"], want / (1 - sub["action"] ** 2), rtol=1e-4, atol=1e-7)
    assert abs(table["mean_action"].unique()).max() > 0.05  # the slices do not all pass through 0


def test_heatmap_is_the_critic_on_the_grid_and_the_product_density(land):
    obs = jnp.asarray([0.5, 0.5, -0.5])
    hm = land.heatmap(obs, dims=(0, 1), num=9)
    assert hm["soft"].shape == (9, 9) and hm["soft"].max() == 0.0
    mean, log_std = land.policy.apply(land.actor, obs)
    iy, ix = 2, 7
    q = land.critic.min(land.soft, obs[None], jnp.asarray([[hm["x"][ix], hm["y"][iy]]]))
    q_all = land.critic.min(land.soft, jnp.broadcast_to(obs, (81, 3)),
                            jnp.asarray(np.stack(np.meshgrid(hm["x"], hm["y"]), -1).reshape(-1, 2)))
    assert hm["soft"][iy, ix] == pytest.approx(float(q[0] - q_all.max()), abs=1e-5)
    px = scipy.stats.norm.pdf(np.arctanh(hm["x"][ix]), float(mean[0]), float(np.exp(log_std[0]))) / (1 - hm["x"][ix] ** 2)
    py = scipy.stats.norm.pdf(np.arctanh(hm["y"][iy]), float(mean[1]), float(np.exp(log_std[1]))) / (1 - hm["y"][iy] ** 2)
    assert hm["density"][iy, ix] == pytest.approx(px * py, rel=1e-4)


def test_figures_and_a_soft_only_landscape(land, tmp_path):
    soft_only = Landscape(land.policy, land.critic, land.actor, land.soft)
    table = soft_only.slices(np.zeros((1, 3)), num=5)
    assert table["plain"].isna().all() and table["soft"].notna().all()
    assert slices_figure(land.slices(np.zeros((2, 3)), num=5), tmp_path / "s.png", {0: "t=0"}).stat().st_size > 0
    assert heatmap_figure([land.heatmap(np.zeros(3), num=5)], tmp_path / "h.png", ["t=0"]).stat().st_size > 0


def test_errors_are_clear(land):
    with pytest.raises(ValueError, match="out of range"):
        land.slices(np.zeros(3), dims=[2])
    with pytest.raises(ValueError, match="num >= 2"):
        land.slices(np.zeros(3), num=1)
    with pytest.raises(ValueError, match="dimension 4"):
        land.slices(np.zeros(4))
    with pytest.raises(ValueError, match="two different"):
        land.heatmap(np.zeros(3), dims=(1, 1))

    class FakeLoaded:  # a PPO checkpoint: no critic to draw
        policy, arrays, params, manifest = object(), {"policy": {}}, {}, {}

    with pytest.raises(ValueError, match="SAC checkpoint"):
        Landscape.from_checkpoint(FakeLoaded())

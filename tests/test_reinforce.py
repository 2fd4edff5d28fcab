"""REINFORCE with a fixed-std Gaussian policy (entrolab.agents.reinforce) on probes with known answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.agents.options import OptionError, build, options
from entrolab.agents.reinforce import ReinforceConfig, ReinforceHParams, make_train
from entrolab.checkpoint import load_policy
from entrolab.envs import make
from entrolab.training import train_sweep


def test_learns_the_obs_conditioned_optimum_with_its_std_fixed(tmp_path):
    """probe_obs_action: the optimal mean is a*(obs) = 0.5 obs; a linear mean must find kernel 0.5 and
    bias 0, while the std stays exactly where the sweep put it."""
    runs = train_sweep("probe_obs_action", [0.2], 2, tmp_path, ReinforceConfig(total_timesteps=16 * 2000),
                       ReinforceHParams(learning_rate=0.05), eval_episodes=8, num_chunks=2)
    for ckpt in runs["checkpoint"]:
        params = load_policy(tmp_path / ckpt).params
        np.testing.assert_allclose(params["mean_net"]["Dense_0"]["kernel"], [[0.5]], atol=0.12)
        np.testing.assert_allclose(params["mean_net"]["Dense_0"]["bias"], [0.0], atol=0.12)
        np.testing.assert_array_equal(params["log_std"], np.log(np.float32(0.2)))
    assert (runs["eval_return_det_mean"] > -0.03).all() and (runs["algo"] == "reinforce").all()
    assert (runs["hp_std"] == np.float32(0.2)).all()


def test_a_mid_training_snapshot_is_the_policy_of_a_run_stopped_there(tmp_path):
    """train_sweep(snapshots=[0.5]) keeps each agent's policy after half the updates: it must equal
    the final policy of the same seeds trained for half as long (an independent run)."""
    cfg, hp = ReinforceConfig(total_timesteps=16 * 400), ReinforceHParams(learning_rate=0.05)
    runs = train_sweep("probe_obs_action", [0.2, 1.0], 1, tmp_path / "full", cfg, hp, eval_episodes=2,
                       num_chunks=4, snapshots=[0.5])
    half = train_sweep("probe_obs_action", [0.2, 1.0], 1, tmp_path / "half", ReinforceConfig(total_timesteps=16 * 200),
                       hp, eval_episodes=2, num_chunks=1)
    assert (runs["snapshot_steps"] == "[3200]").all() and "snapshot_steps" not in half
    for (_, full_run), (_, half_run) in zip(runs.iterrows(), half.iterrows()):
        snap = load_policy(tmp_path / "full" / full_run["checkpoint"]).arrays["policy_at_3200"]
        final = load_policy(tmp_path / "half" / half_run["checkpoint"]).params
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), snap, final)
        assert not np.allclose(snap["mean_net"]["Dense_0"]["kernel"],
                               load_policy(tmp_path / "full" / full_run["checkpoint"]).params["mean_net"]["Dense_0"]["kernel"])
    with pytest.raises(ValueError, match="fractions of training"):
        train_sweep("probe_obs_action", [0.2], 1, tmp_path / "bad", cfg, hp, snapshots=[1.0])
    with pytest.raises(ValueError, match="sweep_field 'ent_coef' is not a hyperparameter of reinforce"):
        train_sweep("probe_obs_action", [0.2], 1, tmp_path / "bad", cfg, hp, sweep_field="ent_coef")


def test_the_gradient_is_the_score_function_estimate():
    """One update from a known state: the loss's gradient equals -mean(grad log pi(u) * whitened G),
    computed here by hand for a linear mean on probe_action (one-step episodes, reward -(a - 0.5)^2)."""
    env, params = make("probe_action")
    tr = make_train(ReinforceConfig(total_timesteps=16 * 4, num_trajectories=16), env, params)
    hp = ReinforceHParams(std=0.3, learning_rate=1.0, gamma=0.995)
    state = tr.init(jax.random.key(0), hp, params)
    new, metrics = jax.jit(lambda s: tr.update(s, hp, params))(state)
    # replay the episodes with the same key to get (obs, u, reward)
    _, k_ep = jax.random.split(state.key)
    obs, u, reward, alive = tr._episodes(k_ep, state.params, state.obs_stats, params)
    obs, u, reward = np.asarray(obs)[:, 0], np.asarray(u)[:, 0], np.asarray(reward)[:, 0]
    g = (reward - reward.mean()) / (reward.std() + 1e-8)
    w = np.asarray(state.params["mean_net"]["Dense_0"]["kernel"])[0, 0]
    b = np.asarray(state.params["mean_net"]["Dense_0"]["bias"])[0]
    mu = obs[:, 0] * w + b
    score = (u[:, 0] - mu) / 0.3**2  # d log N(u; mu, s^2) / d mu
    grad_b = -np.mean(score * g)
    grad_w = -np.mean(score * g * obs[:, 0])
    np.testing.assert_allclose(new.params["mean_net"]["Dense_0"]["bias"], b - grad_b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new.params["mean_net"]["Dense_0"]["kernel"][0, 0], w - grad_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(new.params["log_std"], state.params["log_std"])


def test_options_and_errors(tmp_path):
    assert {o.name for o in options("reinforce")} >= {"num_trajectories", "hidden_sizes", "learning_rate", "gamma"}
    assert "std" not in {o.name for o in options("reinforce")}  # set per agent by the sweep
    config, hp = build("reinforce", {"hidden_sizes": [8]}, total_timesteps=1000)
    assert config.hidden_sizes == (8,) and isinstance(hp, ReinforceHParams)
    with pytest.raises(OptionError, match="learning_rate"):
        build("reinforce", {"learning_rate": -1.0}, total_timesteps=1000)
    env, params = make("lorenz")
    with pytest.raises(ValueError, match="smaller than one update"):
        make_train(ReinforceConfig(total_timesteps=100), env, params)
    with pytest.raises(ValueError, match="fixed stds and must be > 0"):
        train_sweep("probe_action", [0.0], 1, tmp_path, ReinforceConfig(total_timesteps=64))

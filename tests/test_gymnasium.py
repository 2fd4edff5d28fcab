"""Gymnasium registration: check_env without warnings, make_vec both ways."""


import gymnasium
import numpy as np
import pytest

import entrolab  # noqa: F401  (registers the environments)

IDS = ["entrolab/Lorenz-v0", "entrolab/KuramotoSivashinsky-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_passes_without_warnings(env_id, check_env_clean):
    check_env_clean(gymnasium.make(env_id).unwrapped)


@pytest.mark.parametrize("env_id", IDS)
def test_episode_truncates_at_200_and_reset_is_seeded(env_id):
    env = gymnasium.make(env_id)
    obs_a, _ = env.reset(seed=3)
    obs_b, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert env.observation_space.contains(obs_a)
    for t in range(200):
        obs, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape, np.float32))
        assert np.isfinite(reward) and not terminated
        assert truncated == (t == 199)
    assert env.observation_space.contains(obs)


def test_overrides_pass_through_gymnasium_make():
    env = gymnasium.make("entrolab/Lorenz-v0", rho=35.0)
    assert float(env.unwrapped.params.rho) == 35.0
    with pytest.raises(ValueError, match="unknown override"):
        gymnasium.make("entrolab/Lorenz-v0", rhoo=35.0)


@pytest.mark.parametrize("env_id", [pytest.param(i, marks=pytest.mark.slow) if "Kuramoto" in i else i for i in IDS])
@pytest.mark.parametrize("mode", ["sync", None])
def test_make_vec(env_id, mode):
    kwargs = {} if mode is None else {"vectorization_mode": mode}
    venv = gymnasium.make_vec(env_id, num_envs=3, max_steps_in_episode=5, **kwargs)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, *venv.single_observation_space.shape)
    saw_final = False
    for _ in range(6):
        obs, reward, terminated, truncated, info = venv.step(venv.action_space.sample())
        assert reward.shape == (3,) and np.all(np.isfinite(reward))
        if truncated.any() and mode is None:  # same-step auto-reset keeps the final observation
            assert info["_final_obs"].all() and np.isfinite(info["final_obs"]).all()
            saw_final = True
    assert venv.observation_space.contains(obs)
    assert saw_final or mode == "sync"
    venv.close()

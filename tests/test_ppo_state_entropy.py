"""PPO's k-NN state-entropy bonus (PPOConfig.state_entropy_k, PPOHParams.state_ent_coef)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.agents.ppo import PPOConfig, PPOHParams, make_train
from entrolab.envs import make
from entrolab.measures.state_entropy import RunningStd

SMALL = dict(num_envs=4, num_steps=16, num_epochs=1, num_minibatches=2, hidden_sizes=(8,), total_timesteps=4 * 16 * 3)


def _train(config, hp, env_name="lorenz"):
    env, params = make(env_name, max_steps_in_episode=20)
    trainer = make_train(config, env, params)
    state = trainer.init(jax.random.key(0), hp, params)
    return jax.jit(lambda s: trainer.run(s, hp, params, config.num_updates))(state)


def test_a_zero_coefficient_changes_nothing_and_a_positive_one_changes_training():
    plain, _ = _train(PPOConfig(**SMALL), PPOHParams())
    zero, metrics = _train(PPOConfig(**SMALL, state_entropy_k=3), PPOHParams(state_ent_coef=0.0))
    jax.tree.map(np.testing.assert_array_equal, plain.params, zero.params)
    assert np.all(np.asarray(metrics["state_entropy_bonus"]) > 0)
    assert float(zero.intrinsic_stats.count) == 3 * 4 * 16  # every rollout state fed the running std
    _assert_changes_training(plain, "advantage")


@pytest.mark.slow  # one more training (~6 s); the advantage target is in the default suite
def test_a_positive_coefficient_on_the_reward_changes_training():
    plain, _ = _train(PPOConfig(**SMALL), PPOHParams())
    _assert_changes_training(plain, "reward")


def _assert_changes_training(plain, target: str) -> None:
    on, _ = _train(PPOConfig(**SMALL, state_entropy_k=3, state_entropy_target=target), PPOHParams(state_ent_coef=1.0))
    diff = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), plain.params["policy"], on.params["policy"])
    assert max(jax.tree.leaves(diff)) > 1e-6


def test_the_bonus_is_each_groups_knn_distance_normalised():
    """The trainer's bonus on a fixed (T, E, d) batch against a NumPy brute force: groups of
    `state_entropy_rollouts` environments, log(1 + distance to the k-th nearest other state in the
    group), divided by the std of all the batch's raw values (a fresh running std)."""
    env, params = make("lorenz")
    config = PPOConfig(**SMALL, state_entropy_k=2, state_entropy_rollouts=2, state_entropy_features=(0, 2))
    trainer = make_train(config, env, params)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(16, 4, 3)).astype(np.float32)
    bonus, stats = trainer._state_entropy_bonus(jnp.asarray(obs), RunningStd.create())
    raw = np.zeros((16, 4))
    for g in range(2):
        pts = obs[:, 2 * g:2 * g + 2][..., [0, 2]].transpose(1, 0, 2).reshape(32, 2)  # env-major, as the trainer
        dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
        np.fill_diagonal(dist, np.inf)
        kth = np.sort(dist, axis=1)[:, 1]
        raw[:, 2 * g:2 * g + 2] = np.log1p(kth).reshape(2, 16).T
    np.testing.assert_allclose(bonus, raw / raw.std(ddof=1), rtol=1e-4)


@pytest.mark.parametrize("change, message", [
    (dict(state_entropy_k=-1), "state_entropy_k must be >= 0"),
    (dict(state_entropy_k=3, state_entropy_rollouts=3), "multiple of state_entropy_rollouts"),
    (dict(state_entropy_k=100, state_entropy_rollouts=1), "must be below the states per estimate"),
    (dict(state_entropy_target="value"), "state_entropy_target"),
])
def test_config_errors(change, message):
    with pytest.raises(ValueError, match=message):
        PPOConfig(**{**SMALL, **change})

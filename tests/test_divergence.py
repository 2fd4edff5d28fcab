"""Training that stops cleanly on NaN (issue 15, item 4): a diverging PPO agent is frozen and marked,
the others of the same vmapped program are bit-identical to a sweep without it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from entrolab.agents.ppo import PPOConfig, PPOHParams, make_train
from entrolab.envs import make
from entrolab.training import train_sweep

CONFIG = PPOConfig(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1, hidden_sizes=(8,),
                   total_timesteps=2 * 16 * 6)


def _run(learning_rates):
    env, params = make("lorenz", max_steps_in_episode=20)
    trainer = make_train(CONFIG, env, params)
    n = len(learning_rates)
    hp = PPOHParams(learning_rate=jnp.asarray(learning_rates, jnp.float32),
                    **{k: jnp.full((n,), v, jnp.float32) for k, v in
                       {"gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "vf_coef": 0.5, "ent_coef": 0.0,
                        "ent_horizon": 4e5, "max_grad_norm": 0.5, "init_log_std": 0.0, "critic_max_grad_norm": 0.5,
                        "reward_clip": 10.0, "adam_eps": 1e-5, "state_ent_coef": 0.0}.items()})
    state = trainer.init_batch(jnp.stack([jax.random.key(0)] * n), hp, params)
    return jax.jit(jax.vmap(lambda s, h: trainer.run(s, h, params, CONFIG.num_updates), in_axes=(0, 0)))(state, hp)


def test_a_diverging_agent_is_frozen_and_the_others_are_bit_identical():
    state, metrics = _run([3e-4, 1e30])
    assert int(state.diverged_at[0]) == -1
    assert int(state.diverged_at[1]) >= 0  # the huge step made it diverge
    assert all(bool(jnp.all(jnp.isfinite(x[1]))) for x in jax.tree.leaves(state.params))  # last finite params kept
    diverged = np.asarray(metrics["diverged"][1])
    first = int(np.argmax(diverged))
    assert diverged[first:].all() and not diverged[:first].any()  # frozen from the first bad update on
    reference, _ = _run([3e-4, 3e-4])
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[0], b[0]), state.params, reference.params)


def test_the_runs_table_marks_the_diverged_run(tmp_path, capsys):
    huge = PPOHParams(learning_rate=1e30)
    runs = train_sweep("lorenz", [0.0], 1, tmp_path, CONFIG, huge, {"max_steps_in_episode": 20}, eval_episodes=1,
                       num_chunks=1)
    assert runs["diverged_at_step"].iloc[0] >= 0
    assert np.isfinite(runs["eval_return_det_mean"].iloc[0])  # evaluated with its last finite parameters
    assert "1 of 1 agents diverged" in capsys.readouterr().err


def test_sac_freezes_a_diverging_agent_too(tmp_path):
    from entrolab.agents.sac import SACConfig, SACHParams

    config = SACConfig(num_envs=1, total_timesteps=96, learning_starts=32, log_interval=16, buffer_size=256,
                       hidden_sizes=(8,), batch_size=16)
    runs = train_sweep("probe_obs_action", [0.2], 1, tmp_path, config, SACHParams(actor_lr=1e30, critic_lr=1e30),
                       eval_episodes=1, num_chunks=1)
    assert runs["diverged_at_step"].iloc[0] >= 31  # env steps before the diverging iteration: not before learning
    assert np.isfinite(runs["eval_return_det_mean"].iloc[0])

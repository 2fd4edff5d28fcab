"""The MiniGrid room (entrolab.envs.minigrid_room) against MiniGrid itself, step by step; its tabular
twin against Monte Carlo rollouts of the env; PPO's categorical policy learning the room."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.agents.policy import CategoricalPolicy
from entrolab.envs import make
from entrolab.envs.minigrid_room import LAYOUTS, layout, perturbation_cells, tabular_twin, visibility
from entrolab.tabular.solvers import evaluate_policy
from entrolab.tabular.state_entropy import occupancy, state_entropy


def _reference(params, see_through_walls: bool):
    """MiniGrid's own 10 x 10 room with the same walls and goal (the authors' env subclasses
    MiniGridEnv the same way: start (1, 1) facing east, 200 steps, see-through walls)."""
    from minigrid.core.world_object import Goal, Wall
    from minigrid.envs import EmptyEnv

    ref = EmptyEnv(size=10, agent_start_pos=(1, 1), agent_start_dir=0, max_steps=200)
    ref.see_through_walls = see_through_walls
    ref.reset(seed=0)
    ref.grid.set(8, 8, None)
    walls = np.asarray(params.walls)
    for x, y in zip(*np.nonzero(walls)):
        ref.grid.set(int(x), int(y), Wall())
    ref.put_obj(Goal(), int(params.goal_x), int(params.goal_y))
    return ref


@pytest.mark.parametrize("see_through_walls", [True, False])
def test_steps_and_views_equal_minigrid(see_through_walls):
    """Same layouts, same actions: the same 7 x 7 x 3 view (with MiniGrid's occlusion when walls are
    opaque), reward 1 - 0.9 t / 200, termination at the goal and truncation at 200 steps."""
    pytest.importorskip("minigrid")
    env, params = make("minigrid_room", see_through_walls=see_through_walls)
    step, reset = jax.jit(env.step), jax.jit(env.reset)
    rng = np.random.default_rng(0)
    ends = {"goal": 0, "time": 0}
    for trial in range(10):
        p = layout(LAYOUTS[trial % len(LAYOUTS)], params, jax.random.key(trial))
        ref = _reference(p, see_through_walls)
        obs, state = reset(jax.random.key(0), p)
        np.testing.assert_array_equal(np.asarray(obs).reshape(7, 7, 3), ref.gen_obs()["image"])
        for t in range(250):
            action = int(rng.choice(3, p=[0.2, 0.2, 0.6]))
            ref_obs, ref_reward, ref_term, ref_trunc, _ = ref.step(action)
            _, state, reward, term, trunc, info = step(jax.random.key(t), state, jnp.asarray(action), p)
            np.testing.assert_array_equal(np.asarray(info["final_observation"]).reshape(7, 7, 3), ref_obs["image"])
            np.testing.assert_array_equal(np.asarray(info["final_x"])[:2], ref.agent_pos)
            assert int(info["final_x"][2]) == ref.agent_dir
            assert float(reward) == pytest.approx(ref_reward, abs=1e-6)
            assert (bool(term), bool(trunc)) == (ref_term, ref_trunc)
            if ref_term or ref_trunc:
                ends["goal" if ref_term else "time"] += 1
                break
    assert ends["goal"] > 0 and ends["time"] > 0  # both ends were exercised


def test_visibility_hides_what_is_behind_a_wall():
    clear = np.ones((7, 7), bool)
    assert bool(jnp.all(visibility(jnp.asarray(clear))))
    clear[:, 5] = False  # a wall across the row just ahead of the agent (row 6)
    seen = np.asarray(visibility(jnp.asarray(clear)))
    assert seen[:, 5].all() and not seen[:, :5].any() and seen[:, 6].all()


def test_layouts_are_the_authors():
    env, params = make("minigrid_room")
    wall = np.asarray(layout("wall", params).walls)
    assert {(4, y) for y in range(1, 6)} == {tuple(c) for c in np.argwhere(wall[1:-1, 1:-1]) + 1}
    keys = jax.random.split(jax.random.key(0), 200)
    cells, used, goal = jax.vmap(lambda k: perturbation_cells("blocks", k))(keys)
    assert bool(jnp.all(used)) and int(cells.min()) >= 2 and int(cells.max()) <= 8
    flat = np.asarray(cells[..., 0] * 10 + cells[..., 1])
    assert all(len(set(row)) == 7 for row in flat) and not np.isin(flat, [22, 88]).any()
    _, _, goals = jax.vmap(lambda k: perturbation_cells("moved_goal", k))(keys)
    assert set(np.unique(np.asarray(goals))) == set(range(2, 8))
    elbows = jax.vmap(lambda k: layout("elbow", params, k).walls)(keys)
    ys = {int(np.argwhere(np.asarray(w)[7, 1:-1])[0, 0]) + 1 for w in elbows}
    assert ys == {1, 2, 3, 4}
    with pytest.raises(ValueError, match="random"):
        layout("blocks", params)


def test_tabular_twin_matches_rollouts():
    """A fixed softmax policy of the observation: the twin's exact discounted value and occupancy
    d^pi against 3,000 Monte Carlo episodes of the env (gamma = 0.95, 500 steps: gamma^500 ~ 7e-12)."""
    gamma, horizon, episodes = 0.95, 500, 3000
    env, params = make("minigrid_room", max_steps_in_episode=horizon + 10)
    params = layout("wall", params)
    w = 0.01 * jax.random.normal(jax.random.key(1), (3, 147))  # a stochastic policy of the view
    probs = lambda obs: jax.nn.softmax(obs @ w.T)  # noqa: E731
    mdp, observations, initial = tabular_twin(env, params, gamma)
    pi = probs(jnp.asarray(observations))
    exact_value = float(evaluate_policy(mdp, pi).values @ initial)
    exact_d = np.asarray(occupancy(mdp, pi, initial))

    def episode(key):
        obs, state = env.reset(key, params)

        def body(carry, key):
            obs, state, alive, disc = carry
            k_a, k_s = jax.random.split(key)
            pos = state.x.astype(jnp.int32)
            index = (pos[0] * 10 + pos[1]) * 4 + pos[2]
            a = jax.random.categorical(k_a, jnp.log(probs(obs)))
            obs, state, _, _, _, info = env.step(k_s, state, a, params)
            fx = info["final_x"].astype(jnp.int32)
            goal_index = (fx[0] * 10 + fx[1]) * 4 + fx[2]
            reached = alive & info["goal"]
            # (state, weight) of this step, and the goal state's: it absorbs the rest of the discounted mass
            visits = jnp.stack([index, goal_index]), jnp.stack([jnp.where(alive, disc, 0.0),
                                                                jnp.where(reached, disc * gamma / (1 - gamma), 0.0)])
            ret = jnp.where(reached, disc, 0.0)
            return (obs, state, alive & ~info["goal"], disc * gamma), (visits, ret)

        _, ((index, weight), rets) = jax.lax.scan(body, (obs, state, jnp.bool_(True), 1.0),
                                                  jax.random.split(key, horizon))
        return index, weight, rets.sum()

    index, weight, ret = (np.asarray(x) for x in jax.jit(jax.vmap(episode))(
        jax.random.split(jax.random.key(2), episodes)))
    d = np.zeros((episodes, 400))
    np.add.at(d, (np.arange(episodes)[:, None, None], index), (1 - gamma) * weight)
    assert 0.2 < np.mean(ret > 0) < 0.95, np.mean(ret > 0)  # the goal is reached in some episodes, not all
    se = ret.std() / np.sqrt(episodes)
    assert abs(ret.mean() - exact_value) < 4 * se
    d_mean, d_se = d.mean(0), d.std(0) / np.sqrt(episodes)
    np.testing.assert_allclose(d_mean.sum(), 1.0, atol=1e-5)
    assert np.all(np.abs(d_mean - exact_d) <= 5 * d_se + 1e-6), np.max(np.abs(d_mean - exact_d) / (d_se + 1e-9))
    h = float(state_entropy(mdp, pi, initial))
    assert 1.0 < h < np.log(400)


def test_categorical_policy_against_numpy():
    policy = CategoricalPolicy(obs_dim=4, action_dim=3, hidden_sizes=(8,))
    params = policy.init(jax.random.key(0))
    params["mean_net"] = jax.tree.map(lambda x: 50.0 * x, params["mean_net"])  # far from uniform
    obs = jax.random.normal(jax.random.key(1), (5, 4))
    (logits,) = policy.apply(params, obs)
    p = np.exp(np.asarray(logits, np.float64))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(policy.distribution_entropy(logits), -(p * np.log(p)).sum(-1), rtol=1e-4)
    a = jnp.asarray([0, 1, 2, 1, 0])
    np.testing.assert_allclose(policy.log_prob(a, logits), np.log(p[np.arange(5), np.asarray(a)]), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(policy.deterministic_action(params, obs), p.argmax(-1))
    draws = jax.vmap(lambda k: policy.stochastic_action(k, params, obs[0]))(jax.random.split(jax.random.key(2), 20000))
    np.testing.assert_allclose(np.bincount(np.asarray(draws), minlength=3) / 20000, p[0], atol=0.015)


@pytest.mark.slow  # ~15 s of training; the categorical PPO's gradient is checked in the default suite (test_ppo.py)
def test_ppo_learns_the_room_near_optimally():
    """The shortest path takes 15 steps (7 east, a right turn, 7 south): return 1 - 0.9 * 15/200 =
    0.9325. PPO's categorical policy (with the k-NN bonus on the twin's state features, at 0) gets
    within 0.01 of it on the nominal room."""
    from entrolab.agents.ppo.config import PPOConfig, PPOHParams
    from entrolab.agents.ppo.train import make_train

    env, params = make("minigrid_room")
    cfg = PPOConfig(num_envs=16, num_steps=128, num_minibatches=4, num_epochs=4, total_timesteps=16 * 128 * 40,
                    state_entropy_k=5)
    _, metrics = jax.jit(make_train(cfg, env))(jax.random.key(0), PPOHParams(), params)
    final = np.asarray(metrics["episode_return"])[-5:]
    assert np.all(final > 0.9325 - 0.01), final
    assert np.all(np.asarray(metrics["state_entropy_bonus"]) != 0.0)  # the bonus ran on (x, y, direction)


def test_gymnasium_check_env_and_frames(check_env_clean):
    """`entrolab/MiniGridRoom-v0` passes gymnasium's checker without a warning; a Discrete(3) action
    space; frames change as the agent moves."""
    import gymnasium

    import entrolab  # noqa: F401  (registers the ids)

    env = gymnasium.make("entrolab/MiniGridRoom-v0", render_mode="rgb_array")
    check_env_clean(env.unwrapped)
    assert env.action_space == gymnasium.spaces.Discrete(3) and env.observation_space.shape == (147,)
    obs, _ = env.reset(seed=0)
    frames = [env.render()]
    obs2, reward, term, trunc, _ = env.step(2)  # forward: (1, 1) -> (2, 1): the same view (see-through walls)
    frames.append(env.render())
    np.testing.assert_array_equal(obs, obs2)
    obs3, *_ = env.step(1)  # turn right: facing south, the view changes
    assert frames[0].shape == (256, 256, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(obs2, obs3)
    assert (reward, term, trunc) == (0.0, False, False)

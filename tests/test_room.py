"""The room of the state-entropy study (entrolab.envs.room): walls block, the goal ends the episode
with MiniGrid's reward, the view's rays against hand geometry, Ashlag et al.'s layouts as params."""

from __future__ import annotations

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import entrolab  # noqa: F401  (registers the gymnasium ids)
from entrolab.envs import make
from entrolab.envs.room import LAYOUTS, layout

ENV, PARAMS = make("room")
RESET, STEP = jax.jit(ENV.reset), jax.jit(ENV.step)


def _at(x, y, params=PARAMS):
    _, state = RESET(jax.random.key(0), params)
    return state.replace(x=jnp.asarray([x, y], jnp.float32))


def _step(state, action, params=PARAMS):
    return STEP(jax.random.key(1), state, jnp.asarray(action, jnp.float32), params)


def test_walls_and_obstacles_block_a_move():
    # the room's outer wall: from the start, a move left would leave the free room [1, 9]^2
    _, state, reward, term, _, info = _step(_at(1.5, 1.5), [-1.0, 0.0])
    np.testing.assert_array_equal(state.x, [1.5, 1.5])
    assert bool(info["blocked"]) and float(reward) == 0.0 and not bool(term)
    wall = layout("wall", PARAMS)  # cells x = 4, y = 1..5: the rectangle [4, 5] x [1, 6]
    for start, action, end in [((3.5, 3.0), (1.0, 0.0), (3.5, 3.0)),   # into the wall
                               ((3.5, 7.0), (1.0, 0.0), (4.5, 7.0)),   # above its end (y > 6)
                               ((3.9, 3.0), (0.0, 1.0), (3.9, 4.0)),   # along it
                               ((3.5, 6.5), (1.0, -1.0), (3.5, 6.5))]:  # the segment clips its top corner
        _, state, _, _, _, info = _step(_at(*start, wall), action, wall)
        np.testing.assert_allclose(state.x, end, atol=1e-6)
        assert bool(info["blocked"]) == (start == end)


def test_the_goal_ends_the_episode_with_minigrids_reward():
    """Straight up the diagonal from (1.5, 1.5): the 7th move (7.5 -> 8.5) enters the goal cell
    [8, 9]^2; reward 1 - 0.9 * 7 / 200, terminated, and the next observation is a fresh start."""
    obs, state = RESET(jax.random.key(0), PARAMS)
    rewards = []
    for _ in range(7):
        obs, state, reward, term, trunc, info = _step(state, [1.0, 1.0])
        rewards.append(float(reward))
    assert rewards[:6] == [0.0] * 6 and rewards[6] == pytest.approx(1 - 0.9 * 7 / 200)
    assert bool(term) and not bool(trunc) and bool(info["goal"])
    np.testing.assert_allclose(info["final_x"], [8.5, 8.5])
    np.testing.assert_allclose(state.x, [1.5, 1.5])
    assert int(state.time) == 0
    # a moved goal is where the layout puts it
    moved = PARAMS.replace(goal_x=3.0, goal_y=1.0)
    _, _, reward, term, _, _ = _step(_at(2.5, 1.5, moved), [1.0, 0.0], moved)
    assert bool(term) and float(reward) == pytest.approx(1 - 0.9 / 200)


def test_the_view_rays_and_the_goal_sensor_against_hand_geometry():
    d = 1 / np.sqrt(2)
    obs, _ = ENV.reset(jax.random.key(0), PARAMS)
    # at (1.5, 1.5): walls at 0.5 to the left and below; along a diagonal towards a wall, 0.5 * sqrt(2)
    # (rays: +x, +x+y, +y, -x+y, -x, -x-y, -y, +x-y; capped at the view, 3)
    rays = [3, 3, 3, 0.5 / d, 0.5, 0.5 / d, 0.5, 0.5 / d]
    np.testing.assert_allclose(obs, [0.15, 0.15, *(np.asarray(rays) / 3), 0, 0, 0], rtol=1e-6)
    wall = layout("wall", PARAMS)
    obs = ENV.observe(_at(3.5, 7.0, wall), wall)
    # the +x-y diagonal from (3.5, 7) meets y = 6 at x = 4.5, on the wall's top edge [4, 5]: distance
    # sqrt(2); +x runs to x = 9 (capped at the view)
    assert obs[2 + 7] == pytest.approx(np.sqrt(2) / 3, rel=1e-6)
    assert obs[2 + 0] == pytest.approx(1.0)
    assert obs[2 + 6] == pytest.approx(1.0)  # -y: the wall's column is x in [4, 5], not below x = 3.5
    # the goal cell's centre (8.5, 8.5) seen from (6.5, 7.0): within the view, offset (2, 1.5) / 3
    np.testing.assert_allclose(ENV.observe(_at(6.5, 7.0), PARAMS)[-3:], [1.0, 2 / 3, 0.5], rtol=1e-6)
    np.testing.assert_allclose(ENV.observe(_at(5.0, 5.0), PARAMS)[-3:], [0.0, 0.0, 0.0])


def test_layouts_are_the_papers_and_vmap_over_keys():
    keys = jax.random.split(jax.random.key(0), 200)
    elbow = jax.vmap(lambda k: layout("elbow", PARAMS, k))(keys).obstacles
    ys = np.asarray(elbow[:, 0, 1])
    assert set(ys.astype(int)) == {1, 2, 3, 4}
    np.testing.assert_array_equal(elbow[:, 0, [0, 2]], np.tile([5.0, 8.0], (200, 1)))  # cells x = 5..7
    np.testing.assert_array_equal(elbow[:, 1], np.stack([np.full(200, 5.0), ys + 1, np.full(200, 6.0), ys + 3], 1))
    blocks = np.asarray(jax.vmap(lambda k: layout("blocks", PARAMS, k))(keys).obstacles)
    for rects in blocks:
        cells = {tuple(c) for c in rects[:7, :2].astype(int)}
        assert len(cells) == 7 and not cells & {(2, 2), (8, 8)}
        assert all(2 <= i <= 8 and 2 <= j <= 8 for i, j in cells)
        np.testing.assert_array_equal(rects[:7, 2:] - rects[:7, :2], 1.0)
        assert (rects[7:, 2] < rects[7:, 0]).all()  # the unused rows
    goals = jax.vmap(lambda k: layout("moved_goal", PARAMS, k))(keys)
    gx, gy = np.asarray(goals.goal_x), np.asarray(goals.goal_y)
    assert set(gx.astype(int)) == set(range(2, 8)) and set(gy.astype(int)) == set(range(2, 8))
    # every layout is a value of the params: one vmapped step over a batch of rooms
    rooms = jax.tree.map(lambda *xs: jnp.stack(xs), *[layout(n, PARAMS, jax.random.key(1)) for n in LAYOUTS])
    _, states = jax.vmap(ENV.reset, in_axes=(None, 0))(jax.random.key(0), rooms)
    with pytest.raises(ValueError, match="unknown layout"):
        layout("maze", PARAMS)
    with pytest.raises(ValueError, match="pass a key"):
        layout("blocks", PARAMS)
    with pytest.raises(ValueError, match="needs 7 obstacle rows"):
        layout("blocks", make("room", max_obstacles=2)[1], jax.random.key(0))
    assert states.x.shape == (len(LAYOUTS), 2)


def test_gymnasium_check_env(check_env_clean):
    check_env_clean(gymnasium.make("entrolab/Room-v0").unwrapped)

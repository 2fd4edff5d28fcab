"""Frames of every registered id, the render_mode contract, and Stable-Baselines3 on the ids.

gymnasium's check_env, which builds each id again with render_mode="rgb_array" and checks its
frame, runs for every id in test_gymnasium.py, test_precision_envs.py, test_authors_envs.py and
test_room.py. Compilation dominates: the adapter shares one compiled reset/step per env
configuration, so every test of an id after the first in a process reuses it.
"""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import entrolab  # noqa: F401  (registers the environments)
from entrolab.envs import make
from entrolab.envs.core import EnvState
from entrolab.envs.gymnasium_adapter import IDS, GymnasiumEnv, JaxVectorEnv
from entrolab.envs.quadrotor import Quadrotor
from entrolab.envs.render import frame_shape, panel, render_frame

ALL_IDS = list(IDS.values())


def _moved(state):
    """The same state at the same time with every coordinate moved by 0.5 (1 + |x_i|)."""
    x = np.asarray(state.x, np.float64)
    return state.replace(x=jnp.asarray(x + 0.5 * (1.0 + np.abs(x)), state.x.dtype))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "ks" else n  # KS: ~12 s
                                  for n in sorted(IDS)] + ["probe_obs_action"])
def test_a_frame_is_the_state_drawn(name):
    """(H, W, 3) uint8; a function of the state (same state, same frame; a moved state, another);
    the trail shows. The probe stands for every env without a drawing of its own (bars of the
    observation, no trail)."""
    adapter = GymnasiumEnv(name)  # its compiled reset is shared with the other tests of this env
    adapter.reset(seed=0)
    env, params, state = adapter.functional_env, adapter.params, adapter._state
    frame = render_frame(env, state, params)
    assert frame.shape == frame_shape(env) and frame.shape[2] == 3 and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, render_frame(env, state, params))
    assert (render_frame(env, _moved(state), params) != frame).any()
    trail = np.stack([np.asarray(_moved(state).x), np.asarray(_moved(_moved(state)).x)])
    assert (render_frame(env, state, params, trail) != frame).any() == (name in IDS)
    with pytest.raises(ValueError, match="trail must have shape"):
        render_frame(env, state, params, trail[:, :-1])


def test_frames_survive_non_finite_and_far_away_states():
    env, params = make("obstacle2d")
    _, state = env.reset(jax.random.key(0), params)
    for x in ([np.nan, np.inf], [1e30, -1e30], [-1e6, 3.0]):
        frame = render_frame(env, state.replace(x=jnp.asarray(x, jnp.float32)), params,
                             trail=np.array([[0.0, 0.0], [1e9, np.nan]]))
        assert frame.shape == (256, 256, 3)
    # an agent far outside the view is drawn at its edge: the frame still differs from the start's
    far = render_frame(env, state.replace(x=jnp.asarray([0.0, -1e6], jnp.float32)), params)
    assert (far != render_frame(env, state, params)).any()


def test_quadrotor_frame_reads_the_reference_as_the_env_does():
    """The frame's reference point (computed from params in NumPy) is Quadrotor.reference's."""
    env, params = make("quadrotor")
    _, state = env.reset(jax.random.key(0), params)
    away = state.x.at[0:3].set(jnp.asarray([4.0, 3.0, 0.0]))  # the vehicle away from the reference
    for t in (0, 1, 7, 40):
        expected = np.asarray(Quadrotor.reference(env, jnp.asarray(t), params))
        drawn = render_frame(env, state.replace(x=away, time=jnp.asarray(t, jnp.int32)), params)
        # the reference point is the only green (TARGET) in the top view; its centre is expected
        green = np.argwhere((drawn[:, :256] == (40, 160, 70)).all(axis=2))
        end = float(params.path_speed) * float(params.dt) * int(params.max_steps_in_episode)
        p = panel(0, 0, 256 - 3, 256, (-1.0, end + 1.0), (-(0.5 * end + 1.0), 0.5 * end + 1.0))
        np.testing.assert_allclose(green.mean(axis=0), p.pixels(expected[:2])[0], atol=0.6)


def test_copies_of_one_configuration_share_their_compilation():
    """SB3 and check_env make several copies of an env: one functional env and one compiled
    reset/step serve every copy with the same static options; params stay each copy's own."""
    a, b = GymnasiumEnv("lorenz"), GymnasiumEnv("lorenz", rho=35.0)
    assert a.functional_env is b.functional_env and a._step_fn is b._step_fn
    assert float(a.params.rho) == 28.0 and float(b.params.rho) == 35.0
    c = GymnasiumEnv("lorenz", num_substeps=3)  # a static option: another program
    assert c.functional_env is not a.functional_env and c.functional_env.num_substeps == 3
    assert GymnasiumEnv("ks", target="E2").functional_env is not GymnasiumEnv("ks").functional_env


def test_render_mode_is_checked_and_overrides_still_are():
    with pytest.raises(ValueError, match="render_mode must be None or one of"):
        GymnasiumEnv("lorenz", render_mode="human")
    with pytest.raises(ValueError, match="render_mode must be None or one of"):
        JaxVectorEnv("lorenz", num_envs=2, render_mode="rgb")
    with pytest.raises(ValueError, match="unknown override"):
        gymnasium.make("entrolab/Lorenz-v0", render_mode="rgb_array", rhoo=35.0)
    env = GymnasiumEnv("lorenz")
    with pytest.raises(RuntimeError, match="reset"):
        GymnasiumEnv("lorenz", render_mode="rgb_array").render()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None  # gymnasium's convention without a render mode


def test_the_end_of_an_episode_is_drawn_not_the_auto_reset():
    """After the step that ends an episode, the frame shows the state reached and the trail to it;
    the next reset starts a fresh trail."""
    env = gymnasium.make("entrolab/Obstacle2D-v0", render_mode="rgb_array", max_steps_in_episode=2)
    inner = env.unwrapped
    env.reset(seed=0)
    start = env.render()
    for _ in range(2):
        *_, truncated, _ = env.step(np.array([0.3, 0.0], np.float32))
    assert truncated
    reached = EnvState(x=jnp.asarray([1.8, 0.0], jnp.float32), time=jnp.asarray(2, jnp.int32),
                       num_diverged=jnp.asarray(0, jnp.int32))
    trail = np.array([[0.0, 0.0], [0.9, 0.0]])
    expected = render_frame(inner.functional_env, reached, inner.params, trail)
    np.testing.assert_array_equal(env.render(), expected)  # the time bar too: 2 steps of 2
    env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), start)


def test_vector_envs_render_one_frame_per_env_with_its_own_trail():
    venv = gymnasium.make_vec("entrolab/Obstacle2D-v0", num_envs=3, render_mode="rgb_array",
                              max_steps_in_episode=3)
    assert isinstance(venv.unwrapped, JaxVectorEnv) and venv.metadata["render_modes"] == ["rgb_array"]
    inner = venv.unwrapped
    venv.reset(seed=0)
    actions = np.array([[0.1, 0.0], [0.0, 0.1], [-0.1, -0.1]], np.float32)
    past = []
    for t in range(3):
        past.append(np.asarray(inner._state.x))
        venv.step(actions)
        frames = venv.render()
        assert isinstance(frames, tuple) and len(frames) == 3
        for i, frame in enumerate(frames):
            state = jax.tree.map(lambda a: a[i], inner._state)
            # same-step auto-reset at t = 2: every env starts again, with no trail
            trail = np.stack(past)[:, i] if t < 2 else None
            np.testing.assert_array_equal(frame, render_frame(inner.functional_env, state, inner.params, trail))
        if t == 1:
            assert (frames[0] != frames[1]).any()
    sync = gymnasium.make_vec("entrolab/Obstacle2D-v0", num_envs=2, vectorization_mode="sync",
                              render_mode="rgb_array")
    sync.reset(seed=0)
    assert [f.shape for f in sync.render()] == [(256, 256, 3)] * 2
    venv.close(), sync.close()


def test_render_collection_keeps_the_episode():
    env = gymnasium.make("entrolab/Lorenz-v0", render_mode="rgb_array_list", max_steps_in_episode=4)
    env.reset(seed=0)
    done = False
    while not done:
        *_, terminated, truncated, _ = env.step(np.zeros(3, np.float32))
        done = terminated or truncated
    frames = env.render()
    assert len(frames) == 5 and all(f.shape == (256, 256, 3) and f.dtype == np.uint8 for f in frames)
    assert all((a != b).any() for a, b in zip(frames, frames[1:]))


# moviepy runs ffmpeg in a subprocess (fork, then exec): JAX's fork warning does not apply
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_record_video_writes_an_episode(tmp_path):
    pytest.importorskip("moviepy")  # gymnasium's RecordVideo needs it (not an entrolab dependency)
    iio = pytest.importorskip("imageio.v3")  # a dependency of moviepy
    from gymnasium.wrappers import RecordVideo

    env = gymnasium.make("entrolab/Lorenz-v0", render_mode="rgb_array", max_steps_in_episode=20)
    env = RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda e: True, disable_logger=True)
    env.reset(seed=0)
    done = False
    while not done:
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    env.close()
    (video,) = (tmp_path / "videos").glob("*.mp4")
    assert iio.imread(video).shape == (21, 256, 256, 3)  # the reset and 20 steps


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_sb3_make_vec_env_builds_steps_and_renders(env_id):
    """SB3's make_vec_env asks for render_mode="rgb_array" (and falls back only on a TypeError);
    its frames (get_images) have the env's shape and follow the episodes."""
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(env_id, n_envs=2, seed=0)
    assert venv.render_mode == "rgb_array" and venv.metadata["render_fps"] > 0
    obs = venv.reset()
    assert obs.shape == (2, *venv.observation_space.shape)
    first = venv.get_images()
    for _ in range(3):
        obs, rewards, dones, infos = venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
        assert np.isfinite(rewards).all() and np.isfinite(obs).all()
    later = venv.get_images()
    shape = frame_shape(venv.envs[0].unwrapped.functional_env)
    assert [f.shape for f in first + later] == [shape] * 4
    assert all(f.dtype == np.uint8 for f in first + later)
    assert all((a != b).any() for a, b in zip(first, later))
    venv.close()


def test_sb3_ppo_trains_on_lorenz_through_make_vec_env():
    pytest.importorskip("stable_baselines3")
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("entrolab/Lorenz-v0", n_envs=2, seed=0, env_kwargs={"max_steps_in_episode": 50})
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert model.num_timesteps == 256
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    # 128 steps per env: each finished two 50-step episodes, logged by SB3's Monitor
    returns = [info["r"] for info in model.ep_info_buffer]
    lengths = [info["l"] for info in model.ep_info_buffer]
    assert lengths == [50] * 4 and np.isfinite(returns).all()
    venv.close()


def test_frame_shape_is_fixed_by_the_class():
    # the realistic variants draw as their base class; unknown envs fall back to the bars
    assert frame_shape(make("quadrotor_realistic")[0]) == (256, 512, 3)
    assert frame_shape(make("crazyflie_realistic")[0]) == (256, 512, 3)
    assert frame_shape(make("probe_constant")[0]) == (256, 256, 3)

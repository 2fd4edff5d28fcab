"""Gymnasium views of the functional environments.

`import entrolab` registers `entrolab/Lorenz-v0`,
`entrolab/KuramotoSivashinsky-v0`, `entrolab/Obstacle2D-v0`, `entrolab/Room-v0`, `entrolab/MiniGridRoom-v0`,
`entrolab/Acrobot-v0`, `entrolab/Vehicle-v0`, `entrolab/VehicleAuthors-v0`,
`entrolab/Quadrotor-v0`, `entrolab/QuadrotorRealistic-v0` (the authors'
quadrotor), `entrolab/Crazyflie-v0` and `entrolab/CrazyflieRealistic-v0`.
`gymnasium.make(id, render_mode=None, **overrides)` takes the same overrides as
`entrolab.envs.make` (an unknown one is a ValueError). Two ways to vectorise:

- `gymnasium.make_vec(id, n, vectorization_mode="sync")`: n copies, Python loop;
- `gymnasium.make_vec(id, n)` (the registered vector entry point): one
  jit-compiled `vmap` over n environments (`JaxVectorEnv`), with gymnasium's
  same-step auto-reset (the final observation in `info["final_obs"]`).

Rendering: `render_mode="rgb_array"` (the one mode; `"rgb_array_list"` through
`gymnasium.make`'s RenderCollection). `render()` returns the frame (H, W, 3)
uint8 of the current state drawn by `entrolab.envs.render.render_frame`, with a
trail of the episode's last TRAIL_LENGTH states (kept here, only when rendering);
after the step that ends an episode it shows the state reached, not the
auto-reset one. The vector env returns a tuple of frames, one per environment
(gymnasium's `VectorEnv.render`). `metadata["render_fps"]` is the control rate
for tasks timed in seconds, else 20. So Stable-Baselines3's
`make_vec_env(id, n_envs)` (which asks for `render_mode="rgb_array"`) and
`gymnasium.wrappers.RecordVideo` work unchanged.

Each call crosses from NumPy to JAX and back; the functional API is the fast
path, this is the compatible one. Environments of one class and static
configuration share their compiled reset and step (params are arguments): SB3
and gymnasium's checker build several copies of one env, each would otherwise
compile anew (1-4 s each on a CPU).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from entrolab.envs.registry import make
from entrolab.envs.render import render_fps, render_frame

RENDER_MODES = ("rgb_array",)
TRAIL_LENGTH = 200  # past states drawn in a frame (an episode of Lorenz or KS)
_NO_RENDER_MODE = "render() without a render_mode returns None: make the env with render_mode='rgb_array'"

IDS = {
    "lorenz": "entrolab/Lorenz-v0",
    "ks": "entrolab/KuramotoSivashinsky-v0",
    "obstacle2d": "entrolab/Obstacle2D-v0",
    "room": "entrolab/Room-v0",
    "minigrid_room": "entrolab/MiniGridRoom-v0",
    "acrobot": "entrolab/Acrobot-v0",
    "vehicle": "entrolab/Vehicle-v0",
    "vehicle_authors": "entrolab/VehicleAuthors-v0",
    "quadrotor": "entrolab/Quadrotor-v0",
    "quadrotor_realistic": "entrolab/QuadrotorRealistic-v0",
    "crazyflie": "entrolab/Crazyflie-v0",
    "crazyflie_realistic": "entrolab/CrazyflieRealistic-v0",
}


def _seed_key(seed: int | None) -> jax.Array:
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    return jax.random.key(int(seed))


def _gymnasium_spaces(env, params):
    """Finite observation bounds: the noise-free bound plus 10 noise stds.

    Observations are clipped to them (a >10-sigma noise draw is the only way
    to reach the clip), so that every observation lies in the space.
    """
    bound = env.observation_bound(params) + 10.0 * float(params.obs_noise_std)
    obs_space = env.observation_space(params)
    obs_space = type(obs_space)(-bound, bound, obs_space.shape).to_gymnasium()
    return obs_space, env.action_space(params).to_gymnasium(), bound


def _check_render_mode(render_mode: str | None) -> str | None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(
            f"render_mode must be None or one of {list(RENDER_MODES)}, got {render_mode!r} "
            "(gymnasium.make(id, render_mode='rgb_array_list') collects the frames of an episode)"
        )
    return render_mode


def _metadata(cls, env, params) -> dict[str, Any]:
    """The class's metadata with this env's frame rate (lists copied: wrappers may append)."""
    return {**cls.metadata, "render_modes": list(RENDER_MODES), "render_fps": render_fps(env, params)}


class _Unshareable(Exception):
    """An environment attribute that `_frozen` cannot compare by value."""


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a static attribute of an environment: equal values, equal keys."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        a = np.asarray(value)
        return ("array", a.dtype.str, a.shape, a.tobytes())
    if isinstance(value, (tuple, list)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    raise _Unshareable(type(value).__name__)


_SHARED: dict[tuple, tuple[Any, Callable, Callable]] = {}


def _shared(env) -> tuple[Any, Callable, Callable]:
    """(env, jax.jit(env.reset), jax.jit(env.step)) of the first environment made of this class
    and static attributes (the shapes; params are arguments, so param overrides share it too).
    Environments hold no state, so one object serves every adapter, and a `jax.jit(env.step)`
    elsewhere on `adapter.functional_env` hits the same compilation. An environment with an
    attribute that is not plain data (brax's wraps a brax env) is compiled for itself."""
    try:
        key = (type(env), _frozen(vars(env)))
    except _Unshareable:
        return env, jax.jit(env.reset), jax.jit(env.step)
    if key not in _SHARED:
        _SHARED[key] = (env, jax.jit(env.reset), jax.jit(env.step))
    return _SHARED[key]


def _scalar_info(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "diverged": bool(info["diverged"]),
        "num_diverged": int(info["num_diverged"]),
        "cost": float(info["cost"]),
    }


class GymnasiumEnv(gymnasium.Env):
    """One functional environment behind the `gymnasium.Env` API (module docstring)."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 20.0}

    def __init__(self, name: str, render_mode: str | None = None, **overrides: Any):
        self.render_mode = _check_render_mode(render_mode)
        env, self.params = make(name, **overrides)
        self.functional_env, self._reset_fn, self._step_fn = _shared(env)
        self.metadata = _metadata(type(self), self.functional_env, self.params)
        self.observation_space, self.action_space, self._obs_bound = _gymnasium_spaces(
            self.functional_env, self.params
        )
        self._key = _seed_key(None)
        self._state = None
        self._shown = None  # the state render() draws
        self._trail: deque = deque(maxlen=TRAIL_LENGTH)  # x of the states before it (device arrays)
        self._ended = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._key = _seed_key(seed)
        self._key, key = jax.random.split(self._key)
        obs, self._state = self._reset_fn(key, self.params)
        self._shown, self._ended = self._state, False
        self._trail.clear()
        return self._obs(obs), {}

    def _obs(self, obs) -> np.ndarray:
        return np.clip(np.asarray(obs, np.float32), -self._obs_bound, self._obs_bound)

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, key = jax.random.split(self._key)
        action = jnp.asarray(np.asarray(action, np.float32))
        before = self._state
        _, self._state, reward, terminated, truncated, info = self._step_fn(
            key, self._state, action, self.params
        )
        # gymnasium has no auto-reset inside an Env: return the episode's last observation
        obs = self._obs(info["final_observation"])
        terminated, truncated = bool(terminated), bool(truncated)
        if self.render_mode is not None:
            self._remember(before, info, terminated or truncated)
        return obs, float(reward), terminated, truncated, _scalar_info(info)

    def _remember(self, before, info, done: bool) -> None:
        """Keep what render() draws: the trail, and after an episode's end the state it reached
        (the functional step has already auto-reset)."""
        if self._ended:  # stepped on past the end without reset(): the auto-reset began an episode
            self._trail.clear()
        self._trail.append(before.x)
        self._ended = done
        self._shown = before.replace(x=info["final_x"], time=before.time + 1) if done else self._state

    def render(self) -> np.ndarray | None:
        """The frame (H, W, 3) uint8 of the current state; None when render_mode is None."""
        if self.render_mode is None:
            gymnasium.logger.warn(_NO_RENDER_MODE)
            return None
        if self._shown is None:
            raise RuntimeError("call reset() before render()")
        trail = np.stack([np.asarray(x) for x in self._trail]) if self._trail else None
        return render_frame(self.functional_env, self._shown, self.params, trail)


class JaxVectorEnv(VectorEnv):
    """`num_envs` functional environments stepped as one jitted `vmap`; `render()` gives a tuple
    of `num_envs` frames."""

    metadata = {
        "render_modes": list(RENDER_MODES), "render_fps": 20.0, "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def __init__(self, name: str, num_envs: int = 1, render_mode: str | None = None, **overrides: Any):
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.render_mode = _check_render_mode(render_mode)
        self.num_envs = int(num_envs)
        self.functional_env, self.params = make(name, **overrides)
        self.metadata = _metadata(type(self), self.functional_env, self.params)
        self.single_observation_space, self.single_action_space, self._obs_bound = _gymnasium_spaces(
            self.functional_env, self.params
        )
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        env, params = self.functional_env, self.params
        self._reset_fn = jax.jit(jax.vmap(lambda k: env.reset(k, params)))
        self._step_fn = jax.jit(jax.vmap(lambda k, s, a: env.step(k, s, a, params)))
        self._key = _seed_key(None)
        self._state = None
        # batched x of the past states, and how many of them belong to each env's current episode
        self._trail: deque = deque(maxlen=TRAIL_LENGTH)
        self._episode_steps = np.zeros(self.num_envs, np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._key = _seed_key(seed if isinstance(seed, int) else seed[0])
        self._key, key = jax.random.split(self._key)
        obs, self._state = self._reset_fn(jax.random.split(key, self.num_envs))
        self._trail.clear()
        self._episode_steps[:] = 0
        return self._obs(obs), {}

    _obs = GymnasiumEnv._obs

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, key = jax.random.split(self._key)
        actions = jnp.asarray(np.asarray(actions, np.float32))
        before = self._state
        obs, self._state, reward, terminated, truncated, info = self._step_fn(
            jax.random.split(key, self.num_envs), self._state, actions
        )
        terminated, truncated = np.asarray(terminated), np.asarray(truncated)
        done = terminated | truncated
        if self.render_mode is not None:  # same-step auto-reset: a done env's trail starts anew
            self._trail.append(before.x)
            self._episode_steps = np.where(done, 0, np.minimum(self._episode_steps + 1, TRAIL_LENGTH))
        infos: dict[str, Any] = {
            "diverged": np.asarray(info["diverged"]),
            "cost": np.asarray(info["cost"]),
        }
        if done.any():
            infos["final_obs"] = np.where(done[:, None], self._obs(info["final_observation"]), np.nan)
            infos["_final_obs"] = done
        return (
            self._obs(obs),
            np.asarray(reward, np.float64),
            terminated,
            truncated,
            infos,
        )

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One frame (H, W, 3) uint8 per environment; None when render_mode is None."""
        if self.render_mode is None:
            gymnasium.logger.warn(_NO_RENDER_MODE)
            return None
        if self._state is None:
            raise RuntimeError("call reset() before render()")
        trail = np.stack([np.asarray(x) for x in self._trail]) if self._trail else None  # (T, n, dim)
        frames = []
        for i in range(self.num_envs):
            state = jax.tree.map(lambda a: a[i], self._state)
            steps = int(self._episode_steps[i])
            mine = trail[len(trail) - steps :, i] if steps and trail is not None else None
            frames.append(render_frame(self.functional_env, state, self.params, mine))
        return tuple(frames)


def register_gymnasium_envs() -> None:
    """Register the entrolab environments with gymnasium (idempotent)."""
    for name, env_id in IDS.items():
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point="entrolab.envs.gymnasium_adapter:GymnasiumEnv",
            vector_entry_point="entrolab.envs.gymnasium_adapter:JaxVectorEnv",
            kwargs={"name": name},
            disable_env_checker=False,
        )

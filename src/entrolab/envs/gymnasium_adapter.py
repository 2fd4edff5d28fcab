"""Gymnasium views of the functional environments.

`import entrolab` registers `entrolab/Lorenz-v0`,
`entrolab/KuramotoSivashinsky-v0`, `entrolab/Obstacle2D-v0`,
`entrolab/Acrobot-v0`, `entrolab/Vehicle-v0`, `entrolab/VehicleAuthors-v0`,
`entrolab/Quadrotor-v0`, `entrolab/QuadrotorRealistic-v0` (the authors'
quadrotor), `entrolab/Crazyflie-v0` and `entrolab/CrazyflieRealistic-v0`. `gymnasium.make(id, **overrides)` takes
the same overrides as `entrolab.envs.make`. Two ways to vectorise:

- `gymnasium.make_vec(id, n, vectorization_mode="sync")`: n copies, Python loop;
- `gymnasium.make_vec(id, n)` (the registered vector entry point): one
  jit-compiled `vmap` over n environments (`JaxVectorEnv`), with gymnasium's
  same-step auto-reset (the final observation in `info["final_obs"]`).

Each call crosses from NumPy to JAX and back; the functional API is the fast
path, this is the compatible one (Stable-Baselines3 trains on it unchanged).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from entrolab.envs.registry import make

IDS = {
    "lorenz": "entrolab/Lorenz-v0",
    "ks": "entrolab/KuramotoSivashinsky-v0",
    "obstacle2d": "entrolab/Obstacle2D-v0",
    "room": "entrolab/Room-v0",
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


def _scalar_info(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "diverged": bool(info["diverged"]),
        "num_diverged": int(info["num_diverged"]),
        "cost": float(info["cost"]),
    }


class GymnasiumEnv(gymnasium.Env):
    """One functional environment behind the `gymnasium.Env` API."""

    metadata = {"render_modes": []}

    def __init__(self, name: str, **overrides: Any):
        self.functional_env, self.params = make(name, **overrides)
        self.observation_space, self.action_space, self._obs_bound = _gymnasium_spaces(
            self.functional_env, self.params
        )
        self._reset_fn = jax.jit(self.functional_env.reset)
        self._step_fn = jax.jit(self.functional_env.step)
        self._key = _seed_key(None)
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._key = _seed_key(seed)
        self._key, key = jax.random.split(self._key)
        obs, self._state = self._reset_fn(key, self.params)
        return self._obs(obs), {}

    def _obs(self, obs) -> np.ndarray:
        return np.clip(np.asarray(obs, np.float32), -self._obs_bound, self._obs_bound)

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, key = jax.random.split(self._key)
        action = jnp.asarray(np.asarray(action, np.float32))
        _, self._state, reward, terminated, truncated, info = self._step_fn(
            key, self._state, action, self.params
        )
        # gymnasium has no auto-reset inside an Env: return the episode's last observation
        obs = self._obs(info["final_observation"])
        return obs, float(reward), bool(terminated), bool(truncated), _scalar_info(info)


class JaxVectorEnv(VectorEnv):
    """`num_envs` functional environments stepped as one jitted `vmap`."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, name: str, num_envs: int = 1, **overrides: Any):
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.functional_env, self.params = make(name, **overrides)
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

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._key = _seed_key(seed if isinstance(seed, int) else seed[0])
        self._key, key = jax.random.split(self._key)
        obs, self._state = self._reset_fn(jax.random.split(key, self.num_envs))
        return self._obs(obs), {}

    _obs = GymnasiumEnv._obs

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, key = jax.random.split(self._key)
        actions = jnp.asarray(np.asarray(actions, np.float32))
        obs, self._state, reward, terminated, truncated, info = self._step_fn(
            jax.random.split(key, self.num_envs), self._state, actions
        )
        terminated, truncated = np.asarray(terminated), np.asarray(truncated)
        done = terminated | truncated
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

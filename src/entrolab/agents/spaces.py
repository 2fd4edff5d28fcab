"""What every learner needs to know about an environment's spaces."""

from __future__ import annotations

import numpy as np

from entrolab.envs.core import Environment


def flat_bounded_spaces(env: Environment, params, algorithm: str) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(obs_dim, action_dim, action_low, action_high) of an env with flat observations and a
    bounded box of flat actions; a clear ValueError naming `algorithm` otherwise. The learners'
    policies act in [-1, 1]^m and map affinely to [low, high] (the identity for entrolab's envs)."""
    obs_shape = env.observation_space(params).shape
    space = env.action_space(params)
    act_shape = space.shape
    if len(obs_shape) != 1 or len(act_shape) != 1:
        raise ValueError(f"{algorithm} needs flat observations and actions, got {obs_shape} and {act_shape}")
    low = np.broadcast_to(np.asarray(space.low, np.float32), act_shape).copy()
    high = np.broadcast_to(np.asarray(space.high, np.float32), act_shape).copy()
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"{algorithm} needs a bounded action space, got low={space.low}, high={space.high}")
    return obs_shape[0], act_shape[0], low, high


def to_env_action(a, low, high):
    """The affine map from the policies' [-1, 1]^m to the env's action box [low, high]; bounds None
    (a discrete action space: the categorical policy's action index) leave `a` as it is."""
    if low is None:
        return a
    return low + 0.5 * (a + 1.0) * (high - low)

"""The JAX environments against independent NumPy implementations (float64).

`benchmarks/numpy_envs.py` re-implements the Lorenz and KS control steps in
plain NumPy from the equations. Started from the same state and driven by
the same actions (some outside [-1, 1], to exercise the clipping), the two
must agree to round-off on the state reached, the observation and the
reward at every step, and on the time-limit truncation. A perturbed
reference (one constant changed in the 6th digit) must be caught, so the
comparison can fail.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from numpy_envs import KSNumpyEnv, LorenzNumpyEnv  # noqa: E402

from entrolab.envs import make  # noqa: E402

RTOL = 1e-10
NUM_STEPS = 20
REFERENCES = {"lorenz": LorenzNumpyEnv, "ks": KSNumpyEnv}


def _close(a, b) -> bool:
    """Equal to RTOL relative to the size of the reference array."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(b))), 1e-300)
    return a.shape == b.shape and float(np.max(np.abs(a - b))) <= RTOL * scale


@functools.cache
def _jax_env(name):
    """(env, params, jitted step), built once per name under x64 (call inside it)."""
    env, params = make(name)
    return env, params, jax.jit(env.step)


def _run_pair(name, ref_env, seed=0, num_steps=NUM_STEPS, start_time=0):
    """Step the JAX env and `ref_env` side by side; return per-step mismatches.

    Returns a list of (step, quantity) that differ, and the two lists of
    (terminated, truncated) flags.
    """
    with jax.enable_x64(True):
        env, params, step = _jax_env(name)
        obs, state = env.reset(jax.random.key(seed), params)
        assert state.x.dtype == jnp.float64
        state = state.replace(time=jnp.asarray(start_time, jnp.int32))
        ref_obs = ref_env.set_state(np.asarray(state.x), time=start_time)
        mismatches = [(0, "obs")] if not _close(obs, ref_obs) else []
        rng = np.random.default_rng(seed)
        flags_jax, flags_ref = [], []
        act_dim = env.action_space(params).shape[0]
        for t in range(num_steps):
            action = rng.uniform(-1.3, 1.3, act_dim)  # some entries get clipped
            obs, state, reward, term, trunc, info = step(
                jax.random.key(1000 + t), state, jnp.asarray(action), params
            )
            ref_obs, ref_reward, ref_term, ref_trunc, _ = ref_env.step(action)
            flags_jax.append((bool(term), bool(trunc)))
            flags_ref.append((ref_term, ref_trunc))
            # State and observation reached by the step (before any auto-reset).
            if not _close(info["final_x"], ref_env.state):
                mismatches.append((t + 1, "x"))
            if not _close(info["final_observation"], ref_obs):
                mismatches.append((t + 1, "obs"))
            if not _close(reward, ref_reward):
                mismatches.append((t + 1, "reward"))
            if ref_term or ref_trunc:
                break
    return mismatches, flags_jax, flags_ref


@pytest.mark.parametrize("name", ["lorenz", "ks"])
def test_jax_env_matches_numpy_reference(name):
    for seed in (0, 1):
        mismatches, flags_jax, flags_ref = _run_pair(name, REFERENCES[name](), seed=seed)
        assert mismatches == [], f"{name} seed {seed}: JAX and NumPy differ at {mismatches[:6]}"
        assert flags_jax == flags_ref
        assert len(flags_ref) == NUM_STEPS and not any(any(f) for f in flags_ref)


@pytest.mark.parametrize("name", ["lorenz", "ks"])
def test_time_limit_matches(name):
    """Started 3 steps before the limit: both truncate at the same step, same values."""
    mismatches, flags_jax, flags_ref = _run_pair(name, REFERENCES[name](), num_steps=5, start_time=197)
    assert mismatches == []
    assert flags_ref == [(False, False), (False, False), (False, True)]
    assert flags_jax == flags_ref


@pytest.mark.parametrize(
    "name, change",
    [
        ("lorenz", {"rho": 28.0 * (1 + 1e-6)}),
        ("lorenz", {"action_scale": 10.0 * (1 + 1e-6)}),
        ("ks", {"length": 22.0 * (1 + 1e-6)}),
        ("ks", {"actuator_width": 0.4 * (1 + 1e-6)}),
    ],
)
def test_comparison_catches_a_perturbed_reference(name, change):
    if name == "ks":  # the task (E1 target, E2 initial centre) stays that of the nominal L
        with jax.enable_x64(True):
            env, params, _ = _jax_env(name)
            u_target, u_init = env.target(params), env.initial_centre(params)
        change = {**change, "u_target": u_target, "u_init": u_init}
    mismatches, _, _ = _run_pair(name, REFERENCES[name](**change))
    assert mismatches, f"a reference with {change} was not told apart"

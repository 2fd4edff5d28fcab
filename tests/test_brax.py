"""brax environments behind entrolab's protocol (the optional extra; tests needing brax are slow:
each backend compiles for 10-35 s on 2 cores)."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.envs import make


def test_without_brax_the_error_says_how_to_install_it(monkeypatch):
    for name in [m for m in sys.modules if m == "brax" or m.startswith("brax.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "brax", None)  # import brax -> ImportError
    with pytest.raises(ValueError, match=r"entrolab\[brax\]"):
        make("brax:hopper")


@pytest.mark.slow
def test_hopper_steps_as_brax_does_and_ends_episodes_by_its_rules():
    pytest.importorskip("brax")
    from brax import envs

    env, params = make("brax:hopper", backend="positional", max_steps_in_episode=400)
    with pytest.raises(ValueError, match="unknown override"):
        make("brax:hopper", backend="positional", no_such_field=1)
    with pytest.raises(ValueError, match="unknown brax environment"):
        make("brax:no_such_task")
    assert env.action_space(params).shape == (3,) and env.observation_space(params).shape == (11,)
    reference = envs.get_environment("hopper", backend="positional")
    actions = jax.random.uniform(jax.random.key(1), (400, 3), minval=-1.0, maxval=1.0)

    @jax.jit
    def ours(key):
        obs, state = env.reset(key, params)

        def step(carry, a):
            state, k = carry
            k, ks = jax.random.split(k)
            obs, state, r, term, trunc, info = env.step(ks, state, a, params)
            return (state, k), (r, term, trunc, info["final_observation"])

        _, out = jax.lax.scan(step, (state, key), actions)
        return obs, out

    @jax.jit
    def theirs(key):
        s = reference.reset(jax.random.split(key)[0])  # the base class splits the reset key

        def step(s, a):
            s = reference.step(s, a)
            return s, (s.reward, s.done, s.obs)

        return s.obs, jax.lax.scan(step, s, actions)[1]

    key = jax.random.key(0)
    obs0, (r, term, trunc, final_obs) = ours(key)
    ref_obs0, (ref_r, ref_done, ref_obs) = theirs(key)
    np.testing.assert_allclose(obs0, ref_obs0, rtol=1e-5, atol=1e-6)
    end = int(np.argmax(np.asarray(ref_done) > 0))  # brax's first fall
    assert 0 < end < 399 and bool(term[end]) and not np.asarray(term[:end]).any() and not np.asarray(trunc).any()
    # until that fall the rewards and observations are brax's own: exactly at first; later to float32
    # drift through contacts (two compilations of the same float32 maths; reward = dx / 0.008 s)
    np.testing.assert_allclose(r[:40], ref_r[:40], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final_obs[:40], ref_obs[:40], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(r[: end + 1], ref_r[: end + 1], atol=2e-3)
    np.testing.assert_allclose(final_obs[: end + 1], ref_obs[: end + 1], atol=2e-2)


@pytest.mark.slow
def test_reinforce_trains_and_checkpoints_on_hopper(tmp_path):
    pytest.importorskip("brax")
    from entrolab.agents.reinforce import ReinforceConfig, ReinforceHParams
    from entrolab.checkpoint import load_policy
    from entrolab.training import train_sweep

    overrides = {"backend": "positional", "max_steps_in_episode": 50}
    runs = train_sweep("brax:hopper", [0.3], 1, tmp_path, ReinforceConfig(total_timesteps=16 * 50 * 3),
                       ReinforceHParams(), overrides, eval_episodes=2, num_chunks=1)
    loaded = load_policy(tmp_path / runs["checkpoint"].iloc[0])
    assert loaded.manifest["env"] == {"name": "brax:hopper", "overrides": overrides}
    kernel = np.asarray(loaded.params["mean_net"]["Dense_0"]["kernel"])
    assert kernel.shape == (11, 3) and np.isfinite(kernel).all()
    assert not np.allclose(kernel, np.asarray(loaded.arrays["init_policy"]["mean_net"]["Dense_0"]["kernel"]))
    assert np.isfinite(runs["eval_return_det_mean"]).all()
    assert jnp.isfinite(runs["train_return_last"].to_numpy()).all()

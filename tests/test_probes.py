"""The probe environments (`entrolab.envs.probes`): each behaves as its docstring
says (observations, rewards, terminated vs truncated, auto-reset), under jit and
vmap with random actions, and its documented known value is what a Monte-Carlo
discounted return from the environment gives. No learning here."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.envs import EnvParams, make
from entrolab.envs.probes import PROBES, ProbeEnvironment, truncation_as_termination_value
from entrolab.envs.registry import REGISTRY, static_options

NAMES = sorted(PROBES)
TERMINATING = ["probe_action", "probe_constant", "probe_discount", "probe_obs_action", "probe_obs_reward"]
ENVS = {name: make(name)[0] for name in NAMES}  # one object each: jit caches on it
N, T = 256, 10  # the standard batch: 10 steps = whole episodes of every probe


def _policy(mean=0.0, gain=0.0, spread=1.0):
    """a = mean + gain * obs + spread * U(-1, 1): uniform random actions by default,
    constant ones with spread 0, the action probes' optimum with mean or gain 0.5."""
    return jnp.array([mean, gain, spread], jnp.float32)


@partial(jax.jit, static_argnums=(0, 4, 5))
def _rollout(env, params, policy, key, num_envs=N, num_steps=T):
    """jit(vmap(scan)) of `_policy` from reset; arrays of shape (num_envs, num_steps, ...).

    `obs` is the observation the action was chosen from, `next_obs` the one returned
    by the step (a fresh episode's after an auto-reset), `time` the state's after it.
    One compilation per probe and shape: params and policy are traced.
    """

    def one(key):
        key_reset, key_run = jax.random.split(key)
        obs, state = env.reset(key_reset, params)

        def body(carry, k):
            obs, state = carry
            k_act, k_step = jax.random.split(k)
            action = policy[0] + policy[1] * obs + policy[2] * jax.random.uniform(k_act, (1,), jnp.float32, -1.0, 1.0)
            next_obs, next_state, reward, term, trunc, info = env.step(k_step, state, action, params)
            out = dict(
                obs=obs, action=action, reward=reward, terminated=term, truncated=trunc,
                final_obs=info["final_observation"], next_obs=next_obs,
                time=next_state.time, num_diverged=next_state.num_diverged,
            )
            return (next_obs, next_state), out

        _, out = jax.lax.scan(body, (obs, state), jax.random.split(key_run, num_steps))
        return out

    return jax.vmap(one)(jax.random.split(key, num_envs))


def _run(name, policy=None, params=None, key=None, num_envs=N, num_steps=T, **overrides):
    """`_rollout` of probe `name` (params: default + overrides) as NumPy arrays."""
    env = ENVS[name]
    if params is None:
        params = make(name, **overrides)[1]
    policy = _policy() if policy is None else policy
    key = jax.random.key(0) if key is None else key
    out = _rollout(env, params, policy, key, num_envs, num_steps)
    return {k: np.asarray(v) for k, v in out.items()}


def _returns(reward, cut, gamma):
    """Discounted returns to go along axis 1, restarting after each step where `cut`."""
    reward = np.asarray(reward, np.float64)
    g = np.zeros(reward.shape[0])
    out = np.zeros_like(reward)
    for t in range(reward.shape[1] - 1, -1, -1):
        g = reward[:, t] + gamma * np.where(cut[:, t], 0.0, g)
        out[:, t] = g
    return out


def _common_checks(out, *, always_terminated):
    assert out["obs"].dtype == np.float32 and out["reward"].dtype == np.float32
    assert not np.any(out["terminated"] & out["truncated"])
    assert np.all(out["num_diverged"] == 0)
    if always_terminated:
        assert out["terminated"].all() and not out["truncated"].any()
        assert np.all(out["time"] == 0)  # auto-reset after every step


# ---- protocol ---------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_made(name, key):
    assert REGISTRY[name] is PROBES[name]
    env, params = make(name)
    assert isinstance(env, ProbeEnvironment) and env.name == name
    assert static_options(type(env)) == {}
    assert isinstance(params, EnvParams) and params.cost_cap >= 1e6
    space = env.action_space(params)
    assert space.shape == (1,) and space.low == -1.0 and space.high == 1.0
    assert env.observation_space(params).shape == (1,)
    obs, state = jax.jit(env.reset)(key, params)
    assert obs.shape == (1,) and obs.dtype == jnp.float32 and state.x.shape == (1,)
    assert int(state.time) == 0
    assert abs(float(obs[0])) <= env.observation_bound(params)


def test_registered_episode_lengths():
    lengths = {name: make(name)[1].max_steps_in_episode for name in NAMES}
    assert lengths == {
        "probe_action": 1, "probe_constant": 1, "probe_discount": 2,
        "probe_obs_action": 1, "probe_obs_reward": 1, "probe_truncation": 5,
    }


# ---- each probe behaves as documented (random actions, jit + vmap) ----------------------


def test_constant_reward():
    out = _run("probe_constant")
    _common_checks(out, always_terminated=True)
    for k in ("obs", "final_obs", "next_obs"):
        np.testing.assert_array_equal(out[k], 0.0)
    np.testing.assert_array_equal(out["reward"], 1.0)


def test_obs_dependent_reward():
    out = _run("probe_obs_reward")
    _common_checks(out, always_terminated=True)
    obs = out["obs"][..., 0]
    assert set(np.unique(obs)) == {-1.0, 1.0}
    assert 0.45 < np.mean(obs > 0) < 0.55  # 2560 fair draws: 5 standard errors
    np.testing.assert_array_equal(out["reward"], obs)  # reward = the obs the agent saw
    np.testing.assert_array_equal(out["final_obs"], out["obs"])  # the sign holds to the end
    # each episode draws a fresh sign: the next one is independent of the last
    assert 0.45 < np.mean(out["next_obs"] != out["obs"]) < 0.55


def test_discounted_reward():
    out = _run("probe_discount")
    _common_checks(out, always_terminated=False)
    obs = out["obs"][..., 0]
    np.testing.assert_array_equal(obs, np.tile([0.0, 1.0], (N, T // 2)))  # step index, episode after episode
    second = obs == 1.0
    np.testing.assert_array_equal(out["reward"], np.where(second, 1.0, 0.0))
    np.testing.assert_array_equal(out["terminated"], second)  # the end is a termination
    assert not out["truncated"].any()
    np.testing.assert_array_equal(out["final_obs"][..., 0], obs + 1.0)  # terminal obs = 2
    np.testing.assert_array_equal(out["time"], np.where(second, 0, 1))


def test_action_reward():
    # actions beyond the box exercise the clipping: the reward is that of the clipped action
    out = _run("probe_action", _policy(spread=2.0))
    _common_checks(out, always_terminated=True)
    np.testing.assert_array_equal(out["obs"], 0.0)
    applied = np.clip(out["action"][..., 0], -1.0, 1.0)
    np.testing.assert_allclose(out["reward"], -((applied - 0.5) ** 2), rtol=1e-6, atol=1e-7)
    assert out["reward"].max() <= 0.0 and out["reward"].min() >= -2.25 - 1e-6
    assert np.mean(np.abs(out["action"]) > 1.0) > 0.4  # clipping was exercised
    np.testing.assert_array_equal(np.asarray(ENVS["probe_action"].optimal_action(jnp.zeros(1))), [0.5])


def test_obs_action_reward():
    out = _run("probe_obs_action", _policy(spread=2.0))
    _common_checks(out, always_terminated=True)
    obs = out["obs"][..., 0]
    assert set(np.unique(obs)) == {-1.0, 1.0} and 0.45 < np.mean(obs > 0) < 0.55
    applied = np.clip(out["action"][..., 0], -1.0, 1.0)
    np.testing.assert_allclose(out["reward"], -((applied - 0.5 * obs) ** 2), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(
        np.asarray(ENVS["probe_obs_action"].optimal_action(jnp.array([[1.0], [-1.0]]))), [[0.5], [-0.5]]
    )


def test_truncated_bootstrap():
    out = _run("probe_truncation")
    _common_checks(out, always_terminated=False)
    for k in ("obs", "final_obs", "next_obs"):
        np.testing.assert_array_equal(out[k], 0.0)
    np.testing.assert_array_equal(out["reward"], 1.0)
    assert not out["terminated"].any()  # never a terminal state ...
    step = np.arange(1, T + 1)
    np.testing.assert_array_equal(out["truncated"], np.broadcast_to(step % 5 == 0, (N, T)))  # ... cut every 5
    np.testing.assert_array_equal(out["time"], np.broadcast_to(step % 5, (N, T)))
    # the time limit is the param
    out = _run("probe_truncation", max_steps_in_episode=3)
    np.testing.assert_array_equal(out["truncated"], np.broadcast_to(step % 3 == 0, (N, T)))
    assert not out["terminated"].any()


@pytest.mark.parametrize("name", TERMINATING)
def test_natural_end_does_not_depend_on_the_time_limit(name):
    """With a long time limit, episodes still end (terminated) at the probe's length,
    and the probe itself auto-resets (the base class resets only at the time limit),
    drawing the same episodes."""
    length = make(name)[1].max_steps_in_episode
    out = _run(name, max_steps_in_episode=50)
    _common_checks(out, always_terminated=False)
    step = np.arange(1, T + 1)
    np.testing.assert_array_equal(out["terminated"], np.broadcast_to(step % length == 0, (N, T)))
    assert not out["truncated"].any()
    np.testing.assert_array_equal(out["time"], np.broadcast_to(step % length, (N, T)))
    default = _run(name)
    for k in ("obs", "reward", "terminated", "final_obs", "next_obs"):
        np.testing.assert_array_equal(out[k], default[k])


def test_a_time_limit_before_the_natural_end_truncates():
    out = _run("probe_discount", max_steps_in_episode=1)
    assert out["truncated"].all() and not out["terminated"].any()
    np.testing.assert_array_equal(out["obs"], 0.0)  # the second step is never reached
    np.testing.assert_array_equal(out["final_obs"], 1.0)  # to bootstrap from, V(1) = 1
    np.testing.assert_array_equal(out["reward"], 0.0)


def test_vmap_over_params(key):
    """The target action is a param: one program, a batch of targets."""
    env, params = make("probe_action")
    targets = jnp.array([-0.5, 0.0, 0.5])
    batch = jax.tree.map(lambda v: jnp.stack([v] * 3), params).replace(target_action=targets)
    _, state = env.reset(key, params)

    def reward(p):
        return env.step(key, state, jnp.zeros(1), p)[2]

    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(reward))(batch)), [-0.25, 0.0, -0.25], atol=1e-7)


# ---- the known values against Monte-Carlo returns -----------------------------------------


@pytest.mark.parametrize("gamma", [0.9, 0.99])
@pytest.mark.parametrize("name", NAMES)
def test_known_value_by_monte_carlo(name, gamma):
    """Discounted return to the end of each episode (terminated cuts it; truncation
    does not, since the probe's value is that of the process without time limit),
    from every observation, equals `env.value(obs, gamma)`. The action probes run
    their optimal action; the others random actions (their reward ignores the action)."""
    env, params = ENVS[name], make(name)[1]
    policy = {"probe_action": _policy(0.5, 0.0, 0.0), "probe_obs_action": _policy(0.0, 0.5, 0.0)}.get(name)
    if name == "probe_truncation":  # gamma^2000 < 1e-9: the infinite sum
        out = _run(name, policy, num_envs=4, num_steps=2000)
    else:
        out = _run(name, policy)
    g = _returns(out["reward"], out["terminated"], gamma)
    known = np.asarray(env.value(jnp.asarray(out["obs"]), gamma, params))
    if name == "probe_truncation":
        g, known = g[:, :5], known[:, :5]  # the first episode, every step of it
        assert known[0, 0] == pytest.approx(1.0 / (1.0 - gamma), rel=1e-6)
    np.testing.assert_allclose(g, known, rtol=1e-5, atol=1e-6)
    # the documented closed forms, per observation
    obs = out["obs"][..., 0][:, : g.shape[1]]
    if name == "probe_discount":
        np.testing.assert_allclose(g[obs == 0.0], gamma, rtol=1e-6)
        np.testing.assert_allclose(g[obs == 1.0], 1.0, rtol=1e-6)
    if name == "probe_obs_reward":
        np.testing.assert_array_equal(g, obs)
    if name == "probe_constant":
        np.testing.assert_array_equal(g, 1.0)
    if name in ("probe_action", "probe_obs_action"):
        np.testing.assert_array_equal(g, 0.0)


@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_truncation_as_termination_gives_the_wrong_value(gamma):
    """Cutting returns at truncation (the bug the probe detects) gives a value that
    depends on the step, and averages to `truncation_as_termination_value`."""
    out = _run("probe_truncation")  # two whole episodes
    g = _returns(out["reward"], out["terminated"] | out["truncated"], gamma)
    per_step = [(1.0 - gamma ** (5 - t)) / (1.0 - gamma) for t in range(5)]
    np.testing.assert_allclose(g, np.broadcast_to(per_step * 2, (N, T)), rtol=1e-6)
    assert g.mean() == pytest.approx(truncation_as_termination_value(gamma), rel=1e-6)
    assert truncation_as_termination_value(0.99) == pytest.approx(2.9603, abs=1e-4)
    assert truncation_as_termination_value(gamma) < 0.5 / (1.0 - gamma)


@pytest.mark.parametrize("name", ["probe_action", "probe_obs_action"])
def test_action_probes_stochastic_and_suboptimal_policies(name):
    """Expected rewards of other policies, by Monte-Carlo against the closed forms
    of the docstrings: E[r] = -(m - a*)^2 - v (- action noise variance)."""
    env, params = ENVS[name], make(name)[1]
    # uniform actions on [-1, 1]: m = 0, v = 1/3, and a* = +-0.5: E[r] = -(1/4 + 1/3)
    out = _run(name)  # 2560 one-step episodes
    assert out["reward"].mean() == pytest.approx(-7.0 / 12.0, abs=0.04)  # 3 standard errors
    # a = 0 ignores the obs: -0.25 exactly, whatever the sign
    np.testing.assert_allclose(_run(name, _policy(spread=0.0))["reward"], -0.25, rtol=1e-6)
    # the optimal action with actuation noise s = 0.1: E[r] = -s^2 = env.value
    noisy = params.replace(action_noise_std=0.1)
    optimal = _policy(0.5, 0.0, 0.0) if name == "probe_action" else _policy(0.0, 0.5, 0.0)
    out = _run(name, optimal, params=noisy)
    expected = float(env.value(jnp.zeros((1,)), 0.99, noisy))
    assert expected == pytest.approx(-0.01, rel=1e-6)
    assert out["reward"].mean() == pytest.approx(expected, abs=0.001)  # 3.5 standard errors
    assert out["reward"].std() > 0.005  # the noise is there

"""The precision-control tasks of "MaxEnt misleads": Obstacle2D and Acrobot.

Known answers (straight line into the wall, detour to the goal, telescoping
shaped reward, segment-rectangle edge cases; energy conservation, the upright
equilibrium, gymnasium's "book" equations re-derived independently here) and
the protocol properties that test_envs.py checks for the other systems.
"""

import warnings

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import entrolab  # noqa: F401  (registers the gymnasium ids)
from entrolab.envs import make, replace_params
from entrolab.envs.acrobot import acrobot_energy, acrobot_vector_field
from entrolab.envs.obstacle2d import segment_hits_rectangle


def _run(env, params, state, actions, key):
    """Step a fixed action sequence; returns the per-step outputs (eager, small)."""
    out = []
    step = jax.jit(env.step)
    for t, a in enumerate(actions):
        obs, state, reward, term, trunc, info = step(
            jax.random.fold_in(key, t), state, jnp.asarray(a, jnp.float32), params
        )
        out.append((obs, state, float(reward), bool(term), bool(trunc), info))
    return out


# ---- Obstacle2D ---------------------------------------------------------------------


def test_obstacle2d_straight_line_hits_the_wall(key):
    env, params = make("obstacle2d")
    obs, state = env.reset(key, params)
    np.testing.assert_allclose(np.asarray(state.x), [0.0, 0.0])
    np.testing.assert_allclose(np.asarray(obs), [-1.0, 0.0], atol=1e-6)  # (0 - 2.025) / 2.025
    ((obs, state, reward, term, trunc, info),) = _run(env, params, state, [[1.0, 0.0]], key)
    assert reward == -200.0 and term and not trunc
    assert bool(info["collision"]) and not bool(info["goal"])
    np.testing.assert_allclose(np.asarray(info["final_x"]), [3.0, 0.0])  # moved through it
    assert int(state.time) == 0  # auto-reset
    np.testing.assert_allclose(np.asarray(state.x), [0.0, 0.0])


def test_obstacle2d_detour_reaches_the_goal(key):
    env, params = make("obstacle2d")
    _, state = env.reset(key, params)
    steps = _run(env, params, state, [[0.0, 1.0], [1.0, 0.0], [0.0, -1.0]], key)
    rewards = [s[2] for s in steps]
    np.testing.assert_allclose(rewards[:2], [3.0 - np.sqrt(18.0), np.sqrt(18.0) - 3.0], rtol=1e-5)
    assert rewards[2] == 500.0
    assert [s[3] for s in steps] == [False, False, True]
    assert not any(s[4] for s in steps)
    assert bool(steps[2][5]["goal"]) and not bool(steps[2][5]["collision"])
    np.testing.assert_allclose(np.asarray(steps[1][5]["final_x"]), [3.0, 3.0], atol=1e-6)


def test_obstacle2d_shaped_reward_telescopes(key):
    """Without collision or goal the rewards sum to the total decrease in distance."""
    env, params = make("obstacle2d")
    _, state = env.reset(key, params)
    k_x, k_y = jax.random.split(key)
    # x never increases from 0, so the wall (x >= 2) is never reached
    actions = jnp.stack(
        [jax.random.uniform(k_x, (30,), minval=-0.5, maxval=0.0),
         jax.random.uniform(k_y, (30,), minval=-1.0, maxval=1.0)], axis=1
    )

    def body(s, inp):
        k, a = inp
        _, s, r, term, trunc, info = env.step(k, s, a, params)
        return s, (r, term | trunc, info["final_x"])

    _, (r, done, xs) = jax.jit(lambda s: jax.lax.scan(body, s, (jax.random.split(key, 30), actions)))(state)
    assert not bool(done.any())
    final = np.asarray(xs[-1], np.float64)
    expected = 3.0 - np.hypot(final[0] - 3.0, final[1])
    np.testing.assert_allclose(float(np.sum(np.asarray(r, np.float64))), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "p0, p1, hit",
    [
        ((1.9, 0.0), (2.2, 0.0), True),     # jumps over the thin wall in one step
        ((0.0, 0.0), (2.02, 0.0), True),    # ends inside the wall
        ((2.02, 0.5), (2.03, 0.6), True),   # entirely inside
        ((1.5, 2.1), (2.5, 2.1), False),    # passes above the end of the wall
        ((1.5, -2.1), (2.5, -2.1), False),  # passes below
        ((1.9, 2.2), (2.2, 1.9), False),    # cuts the corner region, misses the wall
        ((1.9, 2.1), (2.2, 1.8), True),     # through the corner point (2, 2): closed rectangle
        ((2.03, -3.0), (2.03, 3.0), True),  # vertical, along the wall's inside
        ((1.99, -3.0), (1.99, 3.0), False),  # vertical, just in front of it
        ((2.05, 3.0), (2.05, 1.0), True),   # slides down onto the wall's back face
        ((2.02, 1.0), (2.02, 1.0), True),   # zero-length step inside
        ((1.0, 1.0), (1.0, 1.0), False),    # zero-length step outside
        ((3.0, 0.0), (2.1, 0.0), False),    # behind the wall, stops short of it
        ((0.0, 0.0), (1.99, 0.0), False),   # stops in front of it (the local optimum)
    ],
)
def test_segment_hits_rectangle_edge_cases(p0, p1, hit):
    low, high = jnp.array([2.0, -2.0]), jnp.array([2.05, 2.0])
    got = jax.jit(segment_hits_rectangle)(jnp.array(p0), jnp.array(p1), low, high)
    assert bool(got) == hit
    assert bool(segment_hits_rectangle(jnp.array(p1), jnp.array(p0), low, high)) == hit  # symmetric


def test_segment_hits_rectangle_non_finite_is_false():
    low, high = jnp.array([2.0, -2.0]), jnp.array([2.05, 2.0])
    assert not bool(segment_hits_rectangle(jnp.array([jnp.nan, 0.0]), jnp.array([3.0, 0.0]), low, high))


def test_obstacle2d_collision_before_goal_and_thin_wall_jump(key):
    env, params = make("obstacle2d", start_x=1.9)
    _, state = env.reset(key, params)
    # a small step that jumps over the 0.05-wide wall
    ((_, _, reward, term, _, info),) = _run(env, params, state, [[0.1, 0.0]], key)
    assert reward == -200.0 and term and bool(info["collision"])
    # a step that crosses the wall and ends exactly on the goal is a collision
    ((_, _, reward, term, _, info),) = _run(env, params, state, [[1.1 / 3.0, 0.0]], key)
    assert reward == -200.0 and term and not bool(info["goal"])


def test_obstacle2d_truncates_at_50_and_terminal_beats_truncation(key):
    env, params = make("obstacle2d")
    _, state = env.reset(key, params)
    zero = jnp.zeros(2)
    step = jax.jit(env.step)
    for t in range(1, 51):
        obs, state, reward, term, trunc, info = step(jax.random.fold_in(key, t), state, zero, params)
        assert not bool(term) and bool(trunc) == (t == 50) and float(reward) == 0.0
    assert int(state.time) == 0
    # the time limit and the goal on the same step: terminated, not truncated
    near = state.replace(x=jnp.array([3.0, 0.3]), time=jnp.asarray(49, jnp.int32))
    _, state, reward, term, trunc, _ = step(key, near, jnp.array([0.0, -0.1]), params)
    assert float(reward) == 500.0 and bool(term) and not bool(trunc)


def test_obstacle2d_auto_reset_keeps_final_observation(key):
    env, params = make("obstacle2d", init_std=0.1)
    _, state = env.reset(key, params)
    obs, new_state, _, term, _, info = env.step(key, state, jnp.array([1.0, 0.0]), params)
    assert bool(term) and int(new_state.time) == 0
    np.testing.assert_allclose(np.asarray(obs), np.asarray(env.observe(new_state, params)), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(info["final_observation"]),
        np.asarray(env.observe(new_state.replace(x=info["final_x"]), params)), rtol=1e-6,
    )
    assert not np.allclose(np.asarray(obs), np.asarray(info["final_observation"]))


def test_obstacle2d_jit_vmap_over_keys_and_params(key):
    env, params = make("obstacle2d", init_std=0.1)
    keys = jax.random.split(key, 5)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    assert obs.shape == (5, 2) and obs.dtype == jnp.float32
    assert not np.allclose(obs[0], obs[1])
    # a vmap over the goal position: distinct rewards for the same step
    goals = jnp.array([3.0, 4.0, 5.0])
    batch = jax.tree.map(lambda v: jnp.stack([v] * 3), params).replace(goal_x=goals, init_std=jnp.zeros(3))
    step = jax.jit(jax.vmap(lambda p: env.step(key, env.reset(key, p)[1], jnp.array([0.0, 0.5]), p)))
    _, _, reward, term, trunc, _ = step(batch)
    for i, g in enumerate([3.0, 4.0, 5.0]):
        single = replace_params(params, "obstacle2d", goal_x=g, init_std=0.0)
        _, s = env.reset(key, single)
        r = env.step(key, s, jnp.array([0.0, 0.5]), single)[2]
        np.testing.assert_allclose(float(reward[i]), float(r), rtol=1e-5)
        np.testing.assert_allclose(float(reward[i]), g - np.hypot(g, 1.5), rtol=1e-5)
    assert not bool(term.any()) and not bool(trunc.any())


def test_obstacle2d_noise_and_divergence(key):
    env, params = make("obstacle2d", obs_noise_std=0.2)
    keys = jax.random.split(key, 2000)
    noisy, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    residual = np.asarray(noisy - jax.vmap(env.observe, in_axes=(0, None))(states, params))
    assert abs(residual.std() - 0.2) < 0.01
    _, state = env.reset(key, params.replace(obs_noise_std=0.0))
    noisy_act = params.replace(obs_noise_std=0.0, action_noise_std=0.5)
    step = jax.jit(env.step)
    x_a = step(jax.random.key(1), state, jnp.array([0.1, 0.1]), noisy_act)[5]["final_x"]
    x_b = step(jax.random.key(2), state, jnp.array([0.1, 0.1]), noisy_act)[5]["final_x"]
    assert not np.allclose(np.asarray(x_a), np.asarray(x_b))
    for bad in [jnp.nan, jnp.inf, 1e4]:
        bad_state = state.replace(x=state.x.at[0].set(bad), time=jnp.asarray(10, jnp.int32))
        obs, new_state, reward, term, trunc, info = step(key, bad_state, jnp.zeros(2), params)
        assert bool(term) and not bool(trunc) and bool(info["diverged"])
        assert int(new_state.time) == 0 and int(new_state.num_diverged) == 1
        np.testing.assert_allclose(float(reward), -params.cost_cap * 40, rtol=1e-6)
        for leaf in (obs, info["final_observation"], info["final_x"], reward):
            assert np.all(np.isfinite(np.asarray(leaf)))
    with pytest.raises(ValueError, match="action has shape"):
        env.step(key, state, jnp.zeros(3), params)


# ---- Acrobot -------------------------------------------------------------------------


def _gymnasium_book_dsdt(s, a, m1=1.0, m2=1.0, l1=1.0, lc1=0.5, lc2=0.5, i1=1.0, i2=1.0, g=9.8):
    """gymnasium's Acrobot-v1 `_dsdt` ("book" dynamics), transcribed from its equations.

    Angles in gymnasium's convention (theta1 = 0 hanging down).
    """
    theta1, theta2, dtheta1, dtheta2 = s
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * np.cos(theta2)) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * np.cos(theta2)) + i2
    phi2 = m2 * lc2 * g * np.cos(theta1 + theta2 - np.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dtheta2**2 * np.sin(theta2)
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * np.sin(theta2)
        + (m1 * lc1 + m2 * l1) * g * np.cos(theta1 - np.pi / 2)
        + phi2
    )
    ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * np.sin(theta2) - phi2) / (
        m2 * lc2**2 + i2 - d2**2 / d1
    )
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return np.array([dtheta1, dtheta2, ddtheta1, ddtheta2])


def _rk4_numpy(f, s, h):
    k1 = f(s)
    k2 = f(s + h / 2 * k1)
    k3 = f(s + h / 2 * k2)
    k4 = f(s + h * k3)
    return s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def test_acrobot_matches_gymnasium_book_dynamics():
    _, params = make("acrobot")
    rng = np.random.default_rng(0)
    states = np.column_stack(
        [rng.uniform(-np.pi, np.pi, 64), rng.uniform(-np.pi, np.pi, 64),
         rng.uniform(-4 * np.pi, 4 * np.pi, 64), rng.uniform(-9 * np.pi, 9 * np.pi, 64)]
    )
    torques = rng.uniform(-20, 20, 64)
    shift = np.array([np.pi / 2, 0.0, 0.0, 0.0])  # theta1_gymnasium = theta1 + pi/2
    ours = np.asarray(jax.vmap(lambda s, u: acrobot_vector_field(s, u, params))(
        jnp.asarray(states, jnp.float32), jnp.asarray(torques, jnp.float32)))
    ref = np.stack([_gymnasium_book_dsdt(s + shift, u) for s, u in zip(states, torques)])
    scale = np.abs(ref).max(axis=0)
    np.testing.assert_allclose(ours / scale, ref / scale, atol=2e-5)
    # one control step (RK4 over dt = 0.2), unwrapped, against NumPy RK4 on gymnasium's field
    env, _ = make("acrobot")
    small = states * np.array([1.0, 1.0, 0.2, 0.2])
    ours = np.asarray(jax.vmap(lambda s, u: env.integrate(s, u[None], params))(
        jnp.asarray(small, jnp.float32), jnp.asarray(torques, jnp.float32)))
    ref = np.stack([_rk4_numpy(lambda y: _gymnasium_book_dsdt(y, u), s + shift, 0.2) - shift
                    for s, u in zip(small, torques)])
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def _energy_drift(num_substeps, s0, num_steps=20):
    """max |E(t) - E(0)| over `num_steps` zero-torque control steps, over the
    potential-energy scale (m1 lc1 + m2 l1 + m2 lc2) g = 19.6."""
    env, params = make("acrobot", num_substeps=num_substeps, max_vel_1=1e6, max_vel_2=1e6)  # free

    def body(s, _):
        s = env.flow(s, jnp.zeros(1), params)
        return s, acrobot_energy(s, params)

    _, energies = jax.jit(lambda s: jax.lax.scan(body, s, None, length=num_steps))(s0)
    return float(np.max(np.abs(np.asarray(energies) - float(acrobot_energy(s0, params))))) / 19.6


def test_acrobot_energy_is_conserved_without_torque():
    # small swing about the hanging rest state, the task's own dt = 0.2 and one RK4 step
    assert _energy_drift(1, jnp.array([-np.pi / 2 + 0.1, 0.0, 0.0, 0.0])) < 1e-4  # measured 1.7e-5
    # a large swing (falling from theta1 = 45 deg): one RK4 step per 0.2 s drifts by a few
    # percent (measured 2.7e-2, the public code's integrator too); the drift shrinks at
    # RK4's order as the step is refined, to the float32 floor
    big = jnp.array([np.pi / 4, 0.3, 0.2, -0.1])
    d1, d2, d16 = _energy_drift(1, big), _energy_drift(2, big), _energy_drift(16, big)
    assert d1 < 5e-2 and d1 / d2 > 8.0  # measured 11 (a 4th-order global error gives 16)
    assert d16 < 1e-5  # measured 1.3e-6
    # energy does change under torque
    env, params = make("acrobot")
    e0 = float(acrobot_energy(big, params))
    assert abs(float(acrobot_energy(env.flow(big, jnp.ones(1) * 20.0, params), params)) - e0) > 0.1


def test_acrobot_upright_equilibrium_stays_and_costs_nothing():
    env, params = make("acrobot")
    up = env.target(params)
    np.testing.assert_allclose(np.asarray(acrobot_vector_field(up, jnp.zeros(()), params)), 0.0, atol=1e-5)
    s = up
    for _ in range(5):
        s = env.flow(s, jnp.zeros(1), params)
    np.testing.assert_allclose(np.asarray(s), np.asarray(up), atol=1e-4)
    assert float(env.stage_cost(s, jnp.zeros(1), params)) < 1e-6
    # the observation convention: upright is (cos, sin) of theta1 = (0, 1)
    state = env.reset(jax.random.key(0), params)[1].replace(x=up)
    np.testing.assert_allclose(np.asarray(env.observe(state, params)), [0, 1, 1, 0, 0, 0], atol=1e-6)
    # hanging down is a stable equilibrium too; cost = pi^2 there
    down = jnp.array([-np.pi / 2, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(np.asarray(env.flow(down, jnp.zeros(1), params)), np.asarray(down), atol=1e-5)
    np.testing.assert_allclose(float(env.stage_cost(down, jnp.zeros(1), params)), np.pi**2, rtol=1e-5)


def test_acrobot_reset_distribution_wrap_and_clip(key):
    env, params = make("acrobot")
    _, states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, 2000), params)
    x = np.asarray(states.x)
    assert x[:, 0].min() >= np.pi / 4 and x[:, 0].max() <= 3 * np.pi / 4
    assert abs(x[:, 0].mean() - np.pi / 2) < 0.03
    assert np.abs(x[:, 1:]).max() <= 0.1 + 1e-6 and np.abs(x[:, 1:]).max() > 0.09
    # a long run under full torque: angles stay wrapped, velocities clipped, no NaN
    _, state = env.reset(key, params)

    def body(s, k):
        _, s, r, term, trunc, info = env.step(k, s, jnp.ones(1), params)
        return s, (info["final_x"], r, term)

    _, (xs, r, term) = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(key, 400)))(state)
    xs = np.asarray(xs)
    assert not bool(term.any()) and np.all(np.isfinite(xs)) and np.all(np.isfinite(np.asarray(r)))
    assert np.all(np.abs(xs[:, :2]) <= np.pi + 1e-6)
    assert np.all(np.abs(xs[:, 2]) <= 4 * np.pi + 1e-5) and np.all(np.abs(xs[:, 3]) <= 9 * np.pi + 1e-5)
    assert np.all(np.asarray(r) <= 0.0)


def test_acrobot_vmap_over_dynamics_params(key):
    env, params = make("acrobot", init_std=0.0)
    values = [5.0, 9.8, 15.0]
    batch = jax.tree.map(lambda v: jnp.stack([v] * 3), params).replace(gravity=jnp.asarray(values))

    def run(p):
        _, s = env.reset(key, p)
        def body(s, k):
            _, s, r, *_ = env.step(k, s, jnp.array([0.3]), p)
            return s, r
        return jax.lax.scan(body, s, jax.random.split(key, 10))

    xs, _ = jax.jit(jax.vmap(run))(batch)
    for i, g in enumerate(values):
        single, _ = jax.jit(run)(replace_params(params, "acrobot", gravity=g))
        np.testing.assert_allclose(np.asarray(xs.x[i]), np.asarray(single.x), rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.asarray(xs.x[0]), np.asarray(xs.x[2]))


# ---- gymnasium -----------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["entrolab/Obstacle2D-v0", "entrolab/Acrobot-v0"])
def test_check_env_passes_without_warnings(env_id):
    env = gymnasium.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


def test_gymnasium_obstacle2d_terminates_on_collision():
    env = gymnasium.make("entrolab/Obstacle2D-v0")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, _ = env.step(np.array([1.0, 0.0], np.float32))
    assert reward == -200.0 and terminated and not truncated
    np.testing.assert_allclose(obs, [(3.0 - 2.025) / 2.025, 0.0], rtol=1e-6)  # the final observation

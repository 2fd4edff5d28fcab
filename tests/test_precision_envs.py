"""The precision-control tasks of "MaxEnt misleads": Obstacle2D, Acrobot, Vehicle, Quadrotor.

Known answers (straight line into the wall, detour to the goal, telescoping
shaped reward, segment-rectangle edge cases; energy conservation, the upright
equilibrium, gymnasium's "book" equations re-derived independently here;
the dynamic bicycle against an independent NumPy transcription and
Rajamani's linear model, coasting under drag and rolling resistance; hover,
free fall, torque signs, rotor lag and wind of the quadrotor) and the
protocol properties that test_envs.py checks for the other systems.

Compilation dominates the cost of these tests: the vehicle and quadrotor
tests share one compiled reset and step per environment (`_gym`).
"""

import functools

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import entrolab  # noqa: F401  (registers the gymnasium ids)
from entrolab.envs import make, replace_params
from entrolab.envs.acrobot import acrobot_energy, acrobot_vector_field
from entrolab.envs.obstacle2d import segment_hits_rectangle
from entrolab.envs.crazyflie import crazyflie_vector_field, rotation_matrix, wind_step
from entrolab.envs.vehicle import vehicle_vector_field


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


@pytest.mark.slow  # tests/test_envs.py's generic vmap tests cover acrobot by default
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
def test_check_env_passes_without_warnings(env_id, check_env_clean):
    check_env_clean(gymnasium.make(env_id).unwrapped)


def test_gymnasium_obstacle2d_terminates_on_collision():
    env = gymnasium.make("entrolab/Obstacle2D-v0")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, _ = env.step(np.array([1.0, 0.0], np.float32))
    assert reward == -200.0 and terminated and not truncated
    np.testing.assert_allclose(obs, [(3.0 - 2.025) / 2.025, 0.0], rtol=1e-6)  # the final observation



# ---- shared compilations (vehicle, quadrotor) -----------------------------------------------


@functools.cache
def _gym(env_id):
    """One gymnasium env per id, shared by the tests below.

    Compilation dominates the cost of these tests. `jax.jit(env.step)` on the
    same functional env hits the adapter's own compilation cache, so each
    environment's reset and step compile once for check_env and physics alike.
    """
    return gymnasium.make(env_id).unwrapped


@functools.cache
def _functional(env_id):
    """(env, params, jitted step, jitted reset) of the shared gymnasium env.

    Kept alive here: JAX keys its compilation cache on the bound method, and
    forgets it when the method is garbage collected.
    """
    env, params = _gym(env_id).functional_env, _gym(env_id).params
    return env, params, jax.jit(env.step), jax.jit(env.reset)


# ---- Vehicle ----------------------------------------------------------------------------


def _bicycle_numpy(x, drive, delta, p):
    """The dynamic bicycle in vector form, transcribed independently: wheel
    slip from the wheel's heading and normal, Newton-Euler in the rotating
    body frame (dv/dt = F/m - r e_z x v)."""
    _, _, psi, vx, vy, r, _ = (float(v) for v in x)
    m, iz = float(p.mass), float(p.yaw_inertia)
    lf, lr = float(p.front_axle_distance), float(p.rear_axle_distance)

    def tyre(v_wheel, steer, stiffness):
        heading = np.array([np.cos(steer), np.sin(steer)])
        normal = np.array([-np.sin(steer), np.cos(steer)])
        slip = np.arctan((v_wheel @ normal) / max(abs(v_wheel @ heading), float(p.min_slip_speed)))
        return -stiffness * slip * normal  # body-frame force

    front = tyre(np.array([vx, vy + lf * r]), delta, float(p.cornering_stiffness_front))
    rear = tyre(np.array([vx, vy - lr * r]), 0.0, float(p.cornering_stiffness_rear))
    rolling = float(p.rolling_resistance) * m * float(p.gravity) * np.tanh(vx / float(p.rolling_smoothing_speed))
    resistance = float(p.aero_drag) * vx * abs(vx) + rolling
    force = front + rear + np.array([drive - resistance, 0.0])
    moment = lf * front[1] - lr * rear[1]  # z of (lf, 0) x F_front + (-lr, 0) x F_rear
    world_velocity = np.array([[np.cos(psi), -np.sin(psi)], [np.sin(psi), np.cos(psi)]]) @ [vx, vy]
    return np.array([*world_velocity, r, force[0] / m + r * vy, force[1] / m - r * vx, moment / iz, 1.0])


def _vehicle_step_numpy(x, action, p, num_substeps=10):
    """One control step: NumPy RK4 on `_bicycle_numpy`, yaw wrapped."""
    drive, delta = float(p.max_drive_force) * action[0], float(p.max_steer) * action[1]
    f = lambda y: _bicycle_numpy(y, drive, delta, p)  # noqa: E731
    x = np.asarray(x, np.float64)
    for _ in range(num_substeps):
        x = _rk4_numpy(f, x, float(p.dt) / num_substeps)
    x[2] = (x[2] + np.pi) % (2 * np.pi) - np.pi
    return x


def _vehicle_cost_numpy(x, p):
    """0.3 |X^2 + Y^2 - 100| + distance to the target, the target's arc length
    t + 0.05 t^2 (speed 1 + 0.1 t, below its 6 m/s cap for t < 50 s)."""
    t = x[6]
    angle = -np.pi / 2 - (4.0 + t + 0.05 * t**2) / 10.0
    target = 10.0 * np.array([np.cos(angle), np.sin(angle)])
    return 0.3 * abs(x[0] ** 2 + x[1] ** 2 - 100.0) + np.hypot(*(target - x[:2]))


def test_vehicle_vector_field_matches_numpy_and_rajamani():
    _, params = make("vehicle")
    rng = np.random.default_rng(0)
    n = 64
    states = np.column_stack(
        [rng.uniform(-20, 20, n), rng.uniform(-20, 20, n), rng.uniform(-np.pi, np.pi, n),
         rng.uniform(-5, 15, n), rng.uniform(-2, 2, n), rng.uniform(-1.5, 1.5, n), rng.uniform(0, 20, n)]
    )  # includes reversing and speeds below the 1 m/s guard
    inputs = np.column_stack([rng.uniform(-1500, 1500, n), rng.uniform(-np.pi / 6, np.pi / 6, n)])
    field = jax.jit(jax.vmap(lambda x, u: vehicle_vector_field(x, u, params)))
    ours = np.asarray(field(jnp.asarray(states, jnp.float32), jnp.asarray(inputs, jnp.float32)))
    ref = np.stack([_bicycle_numpy(x, u[0], u[1], params) for x, u in zip(states, inputs)])
    scale = np.abs(ref).max(axis=0)
    np.testing.assert_allclose(ours / scale, ref / scale, atol=2e-5)
    # small slip: Rajamani's linear lateral model (Vehicle Dynamics and Control, eq. 2.31,
    # with the per-axle stiffness C = 2 C_alpha)
    m, iz, lf, lr = 1500.0, 2250.0, 1.45, 1.45
    cf, cr = 32000.0, 34000.0
    vx, vy, r, delta = 10.0, 0.01, 0.005, 0.002
    dvy = -(cf + cr) / (m * vx) * vy + (-vx - (cf * lf - cr * lr) / (m * vx)) * r + cf / m * delta
    dr = (-(lf * cf - lr * cr) / (iz * vx) * vy - (lf**2 * cf + lr**2 * cr) / (iz * vx) * r
          + lf * cf / iz * delta)
    x = jnp.array([[0.0, 0.0, 0.3, vx, vy, r, 0.0]] * 2)
    ours = np.asarray(field(x, jnp.array([[0.0, delta]] * 2)))[0]
    np.testing.assert_allclose([ours[4], ours[5]], [dvy, dr], rtol=1e-2)


def _trajectory(step, params, state, actions, key):
    """Step a fixed action sequence with a jitted `step`; the outputs stacked
    over steps as NumPy arrays (a dict), and the last state."""
    steps = []
    for t, a in enumerate(np.asarray(actions, np.float32)):
        obs, state, reward, term, trunc, info = step(
            jax.random.fold_in(key, t), state, jnp.asarray(a), params
        )
        steps.append((obs, reward, term, trunc, info))
    out = {name: np.stack([np.asarray(s[i]) for s in steps])
           for i, name in enumerate(["obs", "reward", "terminated", "truncated"])}
    for name in steps[0][4]:
        out[name] = np.stack([np.asarray(s[4][name]) for s in steps])
    out["state"] = state
    return out


def test_vehicle_episode_matches_numpy_and_truncates_at_200(key):
    env, params, step, reset = _functional("entrolab/Vehicle-v0")
    obs0, state = reset(key, params)
    # the documented start: (0, -10) heading clockwise (psi = -pi), the target 4 m ahead
    np.testing.assert_allclose(np.asarray(state.x), [0, -10, -np.pi, 3, 0, -1, 0], atol=1e-5)
    target = 10.0 * np.array([np.cos(-np.pi / 2 - 0.4), np.sin(-np.pi / 2 - 0.4)])
    np.testing.assert_allclose(
        np.asarray(obs0), [target[0] + 1.45, target[1] + 10.0, -np.pi, 3.0, 0.0, -1.0], atol=1e-5
    )
    # one full episode of random actions, one of zero actions (test inputs from NumPy: an
    # eager JAX op compiles, and compilation dominates the cost of these tests)
    random_actions = np.random.default_rng(0).uniform(-1.0, 1.0, (200, 2))
    runs = [_trajectory(step, params, state, a, key) for a in (random_actions, np.zeros((200, 2)))]
    for run in runs:
        assert not run["terminated"].any() and np.all(np.isfinite(run["reward"]))
        assert run["truncated"][-1] and not run["truncated"][:-1].any()
        np.testing.assert_allclose(run["obs"][-1], np.asarray(obs0), atol=1e-6)  # auto-reset
        assert int(run["state"].time) == 0
        # the last observation of the episode is kept: target minus front axle, yaw, velocities
        x = run["final_x"][-1].astype(np.float64)
        angle = -np.pi / 2 - (4.0 + 20.0 + 0.05 * 20.0**2) / 10.0
        front = x[:2] + 1.45 * np.array([np.cos(x[2]), np.sin(x[2])])
        np.testing.assert_allclose(
            run["final_observation"][-1],
            [*(10.0 * np.array([np.cos(angle), np.sin(angle)]) - front), *x[2:6]],
            rtol=1e-5, atol=1e-4,
        )
        costs = [_vehicle_cost_numpy(np.asarray(x, np.float64), params) for x in run["final_x"]]
        np.testing.assert_allclose(-run["reward"], costs, rtol=1e-4, atol=1e-3)
    assert runs[0]["reward"].sum() != runs[1]["reward"].sum()
    # the dynamics: 50 steps against NumPy RK4 in float64 (no chaos: the errors stay small)
    x = np.asarray(state.x, np.float64)
    for t in range(50):
        x = _vehicle_step_numpy(x, random_actions[t], params)
        np.testing.assert_allclose(runs[0]["final_x"][t], x, rtol=1e-4, atol=1e-3)


def test_vehicle_coasts_straight_and_turns_with_the_steer(key):
    env, params, step, reset = _functional("entrolab/Vehicle-v0")
    _, state = reset(key, params)
    fast = state.replace(x=jnp.asarray([0, -10, -np.pi, 10, 0, 0, 0], jnp.float32))  # heading -X at 10 m/s
    coast = np.zeros((100, 2))
    xs = _trajectory(step, params, fast, coast, key)["final_x"].astype(np.float64)
    # coasting with zero steer: a straight line along the heading, no lateral motion
    np.testing.assert_allclose(xs[:, [1, 2, 4, 5]], np.array([[-10.0, -np.pi, 0.0, 0.0]] * 100), atol=1e-5)
    # speed lost only to drag and rolling resistance: m v' = -1.36 v^2 - 0.01 m g tanh(v / 0.1)
    def derivative(y):  # y = (distance, v)
        v = y[1]
        return np.array([v, -(1.36 * v * abs(v) + 0.01 * 1500.0 * 9.81 * np.tanh(v / 0.1)) / 1500.0])

    y, expected = np.array([0.0, 10.0]), []
    for _ in range(100):
        for _ in range(100):
            y = _rk4_numpy(derivative, y, 1e-3)
        expected.append(y)
    expected = np.array(expected)
    np.testing.assert_allclose(xs[:, 3], expected[:, 1], rtol=1e-4)
    np.testing.assert_allclose(-xs[:, 0], expected[:, 0], rtol=1e-4)  # moving towards -X
    assert 7.5 < expected[-1, 1] < 8.5  # 0.19 m/s^2 at first, less as the drag falls
    # a steer to the left (positive) turns counter-clockwise from the first step; the right, mirrored
    turns = [
        _trajectory(step, params, fast, coast + [0.0, steer], key)["final_x"][:20] for steer in (0.5, -0.5)
    ]
    assert np.all(turns[0][:, 5] > 0.0) and np.all(np.diff(turns[0][:, 2]) > 0.0)
    np.testing.assert_allclose(turns[1][:, 5], -turns[0][:, 5], rtol=1e-4, atol=1e-6)
    # throttle alone: straight, faster than coasting by 1500 N / 1500 kg * dt per step
    drive = _trajectory(step, params, fast, coast[:5] + [1.0, 0.0], key)["final_x"]
    np.testing.assert_allclose(drive[:, 3] - xs[:5, 3], 0.1 * np.arange(1, 6), rtol=1e-2)  # + drag
    np.testing.assert_allclose(drive[:, 5], 0.0, atol=1e-6)


def test_vehicle_random_start_and_overrides(key):
    env, params, step, reset = _functional("entrolab/Vehicle-v0")
    noisy = params.replace(init_std=0.2)  # a Python float: no recompilation
    obs = [np.asarray(reset(jax.random.fold_in(key, i), noisy)[0]) for i in range(3)]
    assert obs[0].shape == (6,) and obs[0].dtype == np.float32
    assert not np.allclose(obs[0], obs[1]) and not np.allclose(obs[1], obs[2])
    assert env.action_space(params).shape == (2,)
    with pytest.raises(ValueError, match="mass must be > 0"):
        make("vehicle", mass=0.0)
    with pytest.raises(ValueError, match="num_substeps must be >= 1"):
        make("vehicle", num_substeps=0)


# ---- Crazyflie --------------------------------------------------------------------------


def _skew(a):
    return np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])


def _rotation_numpy(q):
    """R(q) from the quaternion's vector form: (w^2 - u.u) I + 2 u u^T + 2 w [u]_x."""
    w, u = q[0], np.asarray(q[1:], np.float64)
    return (w * w - u @ u) * np.eye(3) + 2 * np.outer(u, u) + 2 * w * _skew(u)


def _crazyflie_numpy(s, rotor_krpm, wind, p):
    """The rigid-body quadrotor transcribed independently: R from the
    quaternion's vector form, torques summed as r_i x f_i over the rotor
    positions, gym-pybullet-drones' CF2X yaw-torque signs (-, +, -, +)."""
    s = np.asarray(s, np.float64)
    v, q, omega = s[3:6], s[6:10], s[10:13]
    w, u = q[0], q[1:]
    rot = _rotation_numpy(q)
    rpm = 1000.0 * np.asarray(rotor_krpm, np.float64)
    forces = float(p.thrust_coefficient) * rpm**2
    corner = float(p.arm) / np.sqrt(2.0)
    positions = corner * np.array([[1, 1, 0], [-1, 1, 0], [-1, -1, 0], [1, -1, 0]])
    torque = sum(np.cross(r, [0.0, 0.0, f]) for r, f in zip(positions, forces))
    yaw = float(p.torque_coefficient) * (-rpm[0] ** 2 + rpm[1] ** 2 - rpm[2] ** 2 + rpm[3] ** 2)
    torque = torque + [0.0, 0.0, yaw]
    drag_body = -np.sum(rpm * 2 * np.pi / 60) * np.array(
        [float(p.drag_coefficient_xy), float(p.drag_coefficient_xy), float(p.drag_coefficient_z)]
    ) * (rot.T @ v)
    m = float(p.mass)
    force = rot @ [0.0, 0.0, forces.sum()] + rot @ drag_body + np.asarray(wind)
    accel = force / m - [0, 0, float(p.gravity)]
    xi = np.array([[-u[0], -u[1], -u[2]], [w, -u[2], u[1]], [u[2], w, -u[0]], [-u[1], u[0], w]])
    inertia = np.array([float(p.inertia_xx), float(p.inertia_yy), float(p.inertia_zz)])
    omega_dot = (torque - np.cross(omega, inertia * omega)) / inertia
    return np.concatenate([v, accel, 0.5 * xi @ omega, omega_dot])


def test_crazyflie_vector_field_matches_numpy():
    """The realistic variant's field: the simplified one is the same rigid body,
    driven by the commands instead of the rotor states (tested by hover, fall, turns)."""
    rng = np.random.default_rng(1)
    n = 32
    _, params = make("crazyflie_realistic", drag_coefficient_xy=2e-6, drag_coefficient_z=3e-6)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rotors = rng.uniform(12.0, 17.0, (n, 4))  # krpm, around the 14.47 hover speed
    states = np.column_stack(
        [rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), q, rng.normal(scale=3.0, size=(n, 3)), rotors]
    )
    commands = rng.uniform(12.0, 17.0, (n, 4))
    wind = rng.normal(scale=0.01, size=(n, 3))
    field = jax.vmap(lambda s, c, w: crazyflie_vector_field(s, c, w, params, True))
    ours = np.asarray(jax.jit(field)(*(jnp.asarray(a, jnp.float32) for a in (states, commands, wind))))
    ref = np.stack([_crazyflie_numpy(s, r, w, params) for s, r, w in zip(states, rotors, wind)])
    scale = np.abs(ref).max(axis=0)
    np.testing.assert_allclose(ours[:, :13] / scale, ref / scale, atol=3e-5)
    np.testing.assert_allclose(ours[:, 13:], (commands - rotors) / 0.05, rtol=1e-5, atol=1e-3)  # rotor lag
    # the body-rate convention: d/dt R(q) = R [Omega]_x along q' = 1/2 q (x) (0, Omega)
    s = states[0, :13]
    qdot = _crazyflie_numpy(s, rotors[0], wind[0], params)[6:10]
    h = 1e-6
    dR = (_rotation_numpy(s[6:10] + h * qdot) - _rotation_numpy(s[6:10] - h * qdot)) / (2 * h)
    np.testing.assert_allclose(dR, _rotation_numpy(s[6:10]) @ _skew(s[10:13]), atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(jax.jit(rotation_matrix)(jnp.asarray(s[6:10], jnp.float32))),
        _rotation_numpy(s[6:10]),
        atol=1e-6,
    )


def test_crazyflie_hovers_and_falls_freely(key):
    env, params, step, reset = _functional("entrolab/Crazyflie-v0")
    still = params.replace(init_std=0.0, rotor_speed_range=1.0)  # a = -1 stops the rotors
    _, state = reset(key, still)
    start = np.array([0.5, 0.0, 1.0])
    np.testing.assert_allclose(np.asarray(state.x[:3]), start, atol=1e-6)
    # hover: every rotor at sqrt(m g / (4 kf)) = 14 468 rpm carries the weight
    hover = _trajectory(step, still, state, np.zeros((20, 4)), key)
    xs = hover["final_x"]
    np.testing.assert_allclose(xs[:, :3], np.tile(start, (20, 1)), atol=1e-5)
    np.testing.assert_allclose(xs[:, 3:6], 0.0, atol=1e-5)
    np.testing.assert_allclose(xs[:, 6:13], np.tile([1.0, 0, 0, 0, 0, 0, 0], (20, 1)), atol=1e-6)
    # the reward: minus the distance to the reference, a chord of the 0.5 m circle
    t = np.arange(1, 21) / 30.0
    np.testing.assert_allclose(-hover["reward"], 2 * 0.5 * np.sin(np.pi / 8.0 * t), rtol=1e-4, atol=1e-6)
    assert not hover["terminated"].any() and not hover["truncated"].any()
    # free fall with the rotors stopped: z = 1 - g t^2 / 2 until the ground (t = 0.452 s, step 14)
    fall = _trajectory(step, still, state, -np.ones((16, 4)), key)
    z = fall["final_x"][:13, 2]
    np.testing.assert_allclose(z, 1.0 - 0.5 * 9.8 * t[:13] ** 2, atol=1e-5)
    np.testing.assert_allclose(fall["final_x"][:13, :2], np.tile(start[:2], (13, 1)), atol=1e-6)
    ref = 0.5 * np.column_stack([np.cos(np.pi / 4 * t[:13]), np.sin(np.pi / 4 * t[:13])])
    expected = np.hypot(np.hypot(*(ref - start[:2]).T), z - 1.0)
    np.testing.assert_allclose(-fall["reward"][:13], expected, rtol=1e-4, atol=1e-6)
    assert not fall["terminated"][:13].any()
    # below the ground at step 14: terminated, -cost_cap for it and every step left
    assert fall["terminated"][13] and not fall["truncated"][13] and fall["crashed"][13]
    np.testing.assert_allclose(fall["reward"][13], -3.0 * (240 - 13), rtol=1e-6)
    np.testing.assert_allclose(fall["cost"][13], 3.0)
    # auto-reset: the next step starts a fresh fall from the start
    np.testing.assert_allclose(fall["final_x"][14, 2], 1.0 - 0.5 * 9.8 / 30.0**2, atol=1e-6)
    np.testing.assert_allclose(fall["final_x"][14, 16], 1.0 / 30.0, rtol=1e-6)


def test_crazyflie_differential_thrust_turns_the_right_way(key):
    env, params, step, reset = _functional("entrolab/Crazyflie-v0")
    still = params.replace(init_std=0.0)
    _, state = reset(key, still)
    hover_rpm = np.sqrt(0.027 * 9.8 / (4 * 3.16e-10))
    corner, dt = 0.0397 / np.sqrt(2.0), 1.0 / 30.0

    def first_step(action):
        out = _trajectory(step, still, state, np.asarray([action], np.float64), key)
        return out["final_x"][0].astype(np.float64), out["obs"][0]

    def rotor_forces(action):
        rpm = hover_rpm * (1.0 + 0.05 * np.asarray(action))
        return 3.16e-10 * rpm**2, 7.94e-12 * rpm**2

    # roll: the two rotors on the +y side faster -> torque and rate about +x (the +y side rises)
    x, obs = first_step([1, 1, -1, -1])
    f, _ = rotor_forces([1, 1, -1, -1])
    alpha = corner * (f[0] + f[1] - f[2] - f[3]) / 1.4e-5
    assert alpha > 0
    np.testing.assert_allclose(x[10:13], [alpha * dt, 0.0, 0.0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(obs[6:9], [0.5 * alpha * dt**2, 0.0, 0.0], rtol=1e-3, atol=1e-7)  # roll angle
    # pitch: the two front (+x) rotors faster -> nose up (rate about -y) -> thrust tilts back
    x, _ = first_step([1, -1, -1, 1])
    f, _ = rotor_forces([1, -1, -1, 1])
    alpha = -corner * (f[0] - f[1] - f[2] + f[3]) / 1.4e-5
    assert alpha < 0
    np.testing.assert_allclose(x[10:13], [0.0, alpha * dt, 0.0], rtol=1e-4, atol=1e-6)
    assert x[3] < 0.0  # drifting backwards already
    # yaw: the clockwise rotors (1, 3) faster -> their drag turns the body counter-clockwise
    x, _ = first_step([-1, 1, -1, 1])
    _, torque = rotor_forces([-1, 1, -1, 1])
    alpha = (-torque[0] + torque[1] - torque[2] + torque[3]) / 2.17e-5
    assert alpha > 0
    np.testing.assert_allclose(x[10:13], [0.0, 0.0, alpha * dt], rtol=1e-4, atol=1e-6)
    # collective: 5 % faster everywhere -> (1.05^2 - 1) g = 1.0045 m/s^2 upwards
    x, _ = first_step([1, 1, 1, 1])
    np.testing.assert_allclose(x[2] - 1.0, 0.5 * (1.05**2 - 1.0) * 9.8 * dt**2, rtol=1e-3)
    np.testing.assert_allclose(x[10:13], 0.0, atol=1e-6)


def test_crazyflie_terminates_on_a_flip_or_a_stray(key):
    env, params, step, reset = _functional("entrolab/Crazyflie-v0")
    _, state = reset(key, params)
    x = np.asarray(state.x, np.float32).copy()
    x[16] = 5.0 / 30.0
    late = state.replace(time=jnp.asarray(5, jnp.int32), x=jnp.asarray(x))

    def moved(index, value):
        changed = x.copy()
        changed[index] = value
        return late.replace(x=jnp.asarray(changed))

    tilt = np.deg2rad(100.0)  # the thrust axis 10 degrees below the horizon
    flipped = moved(slice(6, 10), [np.cos(tilt / 2), np.sin(tilt / 2), 0.0, 0.0])
    strayed = moved(0, x[0] + 2.5)
    for start, flag in [(flipped, "flipped"), (strayed, "strayed")]:
        out = _trajectory(step, params, start, np.zeros((2, 4)), key)
        assert out["terminated"][0] and not out["truncated"][0] and out[flag][0]
        np.testing.assert_allclose(out["reward"][0], -3.0 * (240 - 5), rtol=1e-6)
        assert not out["terminated"][1] and np.isfinite(out["reward"][1]) and -3.0 < out["reward"][1] < 0.0
        np.testing.assert_allclose(out["final_x"][1, 16], 1.0 / 30.0, rtol=1e-6)  # a fresh episode
    # a small tilt ends nothing
    tilted = moved(slice(6, 10), [np.cos(0.2), np.sin(0.2), 0.0, 0.0])
    assert not _trajectory(step, params, tilted, np.zeros((1, 4)), key)["terminated"][0]


def test_crazyflie_realistic_rotor_lag_drag_and_wind(key):
    env, params, step, reset = _functional("entrolab/CrazyflieRealistic-v0")
    assert env.observation_space(params).shape == (16,) and params.wind_force_std == 0.005
    calm = params.replace(init_std=0.0, wind_force_std=0.0)
    _, state = reset(key, calm)
    hover = np.sqrt(0.027 * 9.8 / (4 * 3.16e-10)) / 1000.0  # krpm
    np.testing.assert_allclose(np.asarray(state.x[17:21]), hover, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(state.x[13:16]), 0.0)  # no wind, from the start
    # the rotors approach a step in the command as 1 - exp(-t / 0.05 s)
    climb = _trajectory(step, calm, state, np.ones((20, 4)), key)
    t = np.arange(1, 21) / 30.0
    command = 1.05 * hover
    progress = (climb["final_x"][:, 17:21] - hover) / (command - hover)
    np.testing.assert_allclose(progress, np.tile(1.0 - np.exp(-t / 0.05), (4, 1)).T, atol=2e-4)
    np.testing.assert_allclose(climb["obs"][:, 12:16], np.tile(1.0 - np.exp(-t / 0.05), (4, 1)).T, atol=4e-3)
    # no wind at wind_force_std = 0
    np.testing.assert_array_equal(climb["final_x"][:, 13:16], 0.0)
    # drag: a level drone at hover coasting at 1 m/s slows as exp(-k t),
    # k = c_xy * 4 w_hover[rad/s] / m = 0.206 / s
    gliding = state.replace(x=jnp.asarray(np.asarray(state.x) + np.eye(21)[3]))
    glide = _trajectory(step, calm, gliding, np.zeros((20, 4)), key)
    k = 9.1785e-7 * 4 * hover * 1000.0 * 2 * np.pi / 60.0 / 0.027
    np.testing.assert_allclose(glide["final_x"][:, 3], np.exp(-k * t), rtol=1e-4)
    np.testing.assert_allclose(glide["final_x"][:, [2, 4, 5]], np.tile([1.0, 0.0, 0.0], (20, 1)), atol=1e-5)


def test_crazyflie_wind_is_a_stationary_ou_process(key):
    """The wind force is an exact OU process: from its stationary law
    N(0, 0.005^2 I) an update keeps that law, with lag-one correlation
    exp(-dt / 1 s); the resets draw from it."""
    env, params, step, reset = _functional("entrolab/CrazyflieRealistic-v0")
    n = 20000
    before = np.random.default_rng(2).normal(scale=0.005, size=(n, 3)).astype(np.float32)
    update = jax.jit(jax.vmap(wind_step, in_axes=(0, 0, None)))
    keys = jax.random.split(key, n)
    after = np.asarray(update(keys, before, params), np.float64)
    before = before.astype(np.float64)
    assert abs(after.std() / 0.005 - 1.0) < 0.02 and abs(after.mean()) < 2e-4
    correlation = np.mean(before * after) / np.sqrt(np.mean(before**2) * np.mean(after**2))
    assert abs(correlation - np.exp(-1.0 / 30.0)) < 0.003
    # without wind only the decay is left (and from zero it stays zero)
    calm = update(keys, np.ones((n, 3), np.float32), params.replace(wind_force_std=0.0))
    np.testing.assert_allclose(np.asarray(calm), np.exp(-1.0 / 30.0), rtol=1e-6)
    # random starts: wind, position and velocity offsets differ between keys
    starts = np.stack([np.asarray(reset(keys[i], params)[1].x) for i in range(3)])
    assert np.all(np.abs(starts[:, 13:16]) < 5 * 0.005) and not np.allclose(starts[0], starts[1])
    assert np.all(np.abs(starts[:, 0:6] - [0.5, 0, 1, 0, 0, 0]) < 5 * 0.05)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vehicle", "crazyflie", "crazyflie_realistic", "vehicle_authors", "quadrotor",
                                  "quadrotor_realistic"])
def test_precision_envs_step_under_jit_vmap(name, key):
    """A batch of random episodes in one jit(vmap(scan)): finite rewards, noise params vmapped."""
    # the authors' tasks have their own start distributions (no init_std)
    spread = {} if name in ("vehicle_authors", "quadrotor", "quadrotor_realistic") else {"init_std": 0.1}
    env, params = make(name, obs_noise_std=0.05, action_noise_std=0.1, **spread)
    batch = jax.tree.map(lambda v: jnp.stack([v] * 8), params).replace(
        obs_noise_std=jnp.linspace(0.0, 0.1, 8)
    )

    def run(k, p):
        _, s = env.reset(k, p)

        def body(s, k):
            a = env.action_space(p).sample(k)
            _, s, r, term, trunc, info = env.step(k, s, a, p)
            return s, (r, term, trunc, info["final_x"])

        return jax.lax.scan(body, s, jax.random.split(k, 60))[1]

    reward, term, trunc, xs = jax.jit(jax.vmap(run))(jax.random.split(key, 8), batch)
    assert reward.shape == (8, 60) and np.all(np.isfinite(np.asarray(reward)))
    assert np.all(np.isfinite(np.asarray(xs)))
    assert not np.allclose(np.asarray(xs[0]), np.asarray(xs[1]))


@pytest.mark.parametrize(
    "env_id", ["entrolab/Vehicle-v0", "entrolab/Crazyflie-v0", "entrolab/CrazyflieRealistic-v0"]
)
def test_check_env_passes_for_the_vehicle_and_quadrotors(env_id, check_env_clean):
    env = _gym(env_id)  # shared: its reset and step compile once for all the tests here
    check_env_clean(env)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert np.isfinite(reward) and env.observation_space.contains(obs)


def test_crazyflie_variants_and_overrides():
    env, params = make("crazyflie", realistic=True)
    assert env.realistic and env.observation_space(params).shape == (16,)
    assert params.drag_coefficient_xy > 0 and params.wind_force_std > 0
    env, params = make("crazyflie")
    assert not env.realistic and env.observation_space(params).shape == (12,)
    assert params.drag_coefficient_xy == 0 and params.wind_force_std == 0
    with pytest.raises(ValueError, match="motor_time_constant must be > 0"):
        make("crazyflie_realistic", motor_time_constant=0.0)
    with pytest.raises(ValueError, match="wind_force_std must be >= 0"):
        make("crazyflie_realistic", wind_force_std=-1.0)
    with pytest.raises(ValueError, match="unknown override"):
        make("crazyflie_realistic", realistic=False)

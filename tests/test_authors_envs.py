"""The authors' "MaxEnt misleads" tasks (`vehicle_authors`, `quadrotor`, `quadrotor_realistic`)
against independent NumPy transcriptions of the public code's models (float64, written here
from the equations of each env's docstring: a hand-rolled natural cubic spline, scalar Euler
updates), and against the returns the issue tracker recorded from the public code (zero action,
hover, random), plus a hand-written controller on each.

The JAX envs run in float32: trajectories agree to float32 round-off over an episode (the
models are not chaotic over 200 and 40 steps).
"""

from __future__ import annotations

import functools

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import entrolab  # noqa: F401  (registers the gymnasium ids)
from entrolab.agents.options import task_defaults
from entrolab.envs import make
from entrolab.envs.quadrotor import rotor_inputs


# ---- NumPy transcriptions ------------------------------------------------------------------------
def _natural_spline(s, y):
    """Coefficients (a, b, c, d) per interval of the natural cubic spline through (s, y)."""
    n = len(s)
    h = np.diff(s)
    A = np.zeros((n, n))
    rhs = np.zeros(n)
    A[0, 0] = A[-1, -1] = 1.0
    for i in range(1, n - 1):
        A[i, i - 1], A[i, i], A[i, i + 1] = h[i - 1], 2 * (h[i - 1] + h[i]), h[i]
        rhs[i] = 3 * (y[i + 1] - y[i]) / h[i] - 3 * (y[i] - y[i - 1]) / h[i - 1]
    c = np.linalg.solve(A, rhs)
    b = np.array([(y[i + 1] - y[i]) / h[i] - h[i] * (c[i + 1] + 2 * c[i]) / 3 for i in range(n - 1)])
    d = np.array([(c[i + 1] - c[i]) / (3 * h[i]) for i in range(n - 1)])
    return y[:-1], b, c[:-1], d


def _spline_eval(s_knots, coef, s, derivative=False):
    a, b, c, d = coef
    i = min(np.searchsorted(s_knots, s, side="right") - 1, len(a) - 1)
    t = s - s_knots[i]
    if derivative:
        return b[i] + 2 * c[i] * t + 3 * d[i] * t**2
    return a[i] + b[i] * t + c[i] * t**2 + d[i] * t**3


def _course_numpy():
    angles = np.flip(np.linspace(0, 2 * np.pi, 8, endpoint=False))
    xs = np.append(10 * np.cos(angles), 10 * np.cos(angles[0]))
    ys = np.append(10 * np.sin(angles), 10 * np.sin(angles[0]))
    knots = np.concatenate([[0], np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))])
    cx, cy = _natural_spline(knots, xs), _natural_spline(knots, ys)
    car = (_spline_eval(knots, cx, 9.0), _spline_eval(knots, cy, 9.0),
           np.arctan2(_spline_eval(knots, cy, 9.0, True), _spline_eval(knots, cx, 9.0, True)))
    path, arc, t = [], 13.0, 0.0
    for _ in range(110):
        path.append((_spline_eval(knots, cx, arc), _spline_eval(knots, cy, arc)))
        arc += min(6, 1 + 0.1 * t) * 0.1
        t += 0.1
    return car, np.array(path)


class VehicleNumpy:
    """The public DBicycle task, scalar by scalar."""

    def __init__(self):
        self.car, self.path = _course_numpy()

    def reset(self):
        self.s = [*self.car, 3.0, 0.0, -1.0]
        self.k = 0
        return self.obs()

    def target(self):
        return self.path[min(self.k, 109)]

    def obs(self):
        X, Y, psi, vx, vy, om = self.s
        tx, ty = self.target()
        return np.array([tx - X - 2.9 * np.cos(psi), ty - Y - 2.9 * np.sin(psi), psi, vx, vy, om])

    def step(self, action):
        throttle, delta = np.clip(action[0], -1, 1), np.clip(action[1], -1, 1)
        X, Y, psi, vx, vy, om = self.s
        dt, m, lf, lr = 0.1, 1500.0, 1.45, 1.45
        X += vx * np.cos(psi) * dt - vy * np.sin(psi) * dt
        Y += vx * np.sin(psi) * dt + vy * np.cos(psi) * dt
        psi += om * dt
        while psi > np.pi:
            psi -= 2 * np.pi
        while psi < -np.pi:
            psi += 2 * np.pi
        ffy = -32.0 * np.arctan2((vy + lf * om) / vx - delta, 1.0)
        fry = -34.0 * np.arctan2((vy - lr * om) / vx, 1.0)
        load = 1.36 * vx**2 + 0.01 * vx
        vx = vx + (throttle - ffy * np.sin(delta) / m - load / m + vy * om) * dt
        vy = vy + (fry / m + ffy * np.cos(delta) / m - vx * om) * dt
        om = om + (ffy * lf * np.cos(delta) - fry * lr) / 2250.0 * dt
        self.s = [X, Y, psi, float(np.clip(vx, -30, 30)), float(np.clip(vy, -30, 30)), om]
        self.k += 1
        tx, ty = self.target()
        reward = -abs(X**2 + Y**2 - 100) * 0.3 - np.hypot(tx - X, ty - Y)
        return self.obs(), reward


class QuadrotorNumpy:
    """The public QuadRotor-v0, scalar by scalar; `thrust_torques` takes (u1..u4) instead of speeds."""

    m, g, jx, jy, jz, kt, kd, arm, dt = 0.65, 9.81, 0.75, 0.75, 1.3, 0.313, 7.5e-4, 0.23, 0.1

    def __init__(self, thrust_torques=False):
        self.thrust_torques = thrust_torques

    def reset(self, start):
        self.s = np.array([*start, 0, 0, 0, 0, 0, 0], dtype=np.float64)
        self.t = 0.0
        self.des = 0.0
        return self.obs()

    def obs(self):
        x, y, z, vx, vy, vz, roll, pitch, yaw = self.s[:9]
        return np.array([self.des - x, -y, -z, roll, pitch, yaw, 1.5 - vx, -vy, -vz])

    def step(self, action):
        if self.thrust_torques:
            u1, u2, u3, u4 = action
        else:
            w1, w2, w3, w4 = np.clip(action, 0, 10)
            u1 = self.kt * (w1**2 + w2**2 + w3**2 + w4**2)
            u2, u3 = self.kt * (w1**2 - w3**2), self.kt * (w2**2 - w4**2)
            u4 = self.kd * (w1**2 + w3**2 - w2**2 - w4**2)
        x, y, z, vx, vy, vz, r, p, yw, dr, dp, dy = self.s
        vx += (np.cos(r) * np.sin(p) * np.cos(yw) + np.sin(r) * np.sin(yw)) * u1 / self.m * self.dt
        vy += (np.cos(r) * np.sin(p) * np.sin(yw) - np.sin(r) * np.cos(yw)) * u1 / self.m * self.dt
        vz += (-self.g + np.cos(r) * np.cos(p) * u1 / self.m) * self.dt
        x, y, z = x + vx * self.dt, y + vy * self.dt, z + vz * self.dt
        ar = dy * dp * (self.jy - self.jz) / self.jx + self.arm * u2 / self.jx
        ap = dy * dr * (self.jz - self.jx) / self.jy + self.arm * u3 / self.jy
        ay = dp * dr * (self.jx - self.jy) / self.jz + self.arm * u4 / self.jz
        dr, dp, dy = dr + ar * self.dt, dp + ap * self.dt, dy + ay * self.dt
        r, p, yw = r + dr * self.dt, p + dp * self.dt, yw + dy * self.dt
        self.s = np.array([x, y, z, vx, vy, vz, r, p, yw, dr, dp, dy])
        self.t += self.dt
        # reward and observation with the reference of the previous step (the public code's lag)
        reward = 5 * (-abs(self.des - x) - abs(y) - abs(z)) - abs(yw) - abs(r) - abs(p)
        obs = self.obs()
        self.des = 1.5 * self.t
        return obs, reward


# ---- helpers ---------------------------------------------------------------------------------------
@functools.cache
def _env(name):
    env, params = make(name)
    return env, params, jax.jit(env.step), jax.jit(env.reset)


def _episode(name, policy, key, steps):
    """Rewards, observations and final states of one episode of the JAX env under
    `policy(obs) -> action` (NumPy in, NumPy out), and the start state."""
    env, params, step, reset = _env(name)
    obs, state = reset(key, params)
    start = np.asarray(state.x, np.float64)
    rewards, observations, xs = [], [np.asarray(obs)], []
    for t in range(steps):
        action = jnp.asarray(policy(np.asarray(obs, np.float64)), jnp.float32)
        obs, state, reward, term, trunc, info = step(jax.random.fold_in(key, t), state, action, params)
        rewards.append(float(reward))
        xs.append(np.asarray(info["final_x"], np.float64))
        observations.append(np.asarray(info["final_observation"]))
        assert not bool(term) and bool(trunc) == (t == steps - 1)
    return np.array(rewards), np.array(observations), np.array(xs), start


def _numpy_episode(model, policy, steps, **reset):
    obs = model.reset(**reset)
    rewards, observations = [], [obs]
    for _ in range(steps):
        obs, reward = model.step(policy(obs))
        rewards.append(reward)
        observations.append(obs)
    return np.array(rewards), np.array(observations)


# ---- vehicle_authors -------------------------------------------------------------------------------
def _pursuit(obs):
    """A hand-written controller for the sliding car: accelerate along the body axis when it
    points towards where the target will be, brake when it points away (steering barely acts)."""
    tx, ty, psi, vx, vy, om = obs
    heading = np.array([np.cos(psi), np.sin(psi)])
    velocity = np.array([vx * np.cos(psi) - vy * np.sin(psi), vx * np.sin(psi) + vy * np.cos(psi)])
    wanted = 0.5 * np.array([tx, ty]) - velocity
    return np.array([np.clip(wanted @ heading, -1.0, 1.0), 0.0])


@pytest.mark.parametrize("policy, expected", [
    (lambda obs: np.zeros(2), -76_900),
    (_pursuit, None),
])
def test_vehicle_authors_matches_the_public_model(policy, expected, key):
    rewards, observations, _, start = _episode("vehicle_authors", policy, key, 200)
    ref_rewards, ref_obs = _numpy_episode(VehicleNumpy(), policy, 200)
    np.testing.assert_allclose(start[:3], VehicleNumpy().car, atol=1e-5)
    np.testing.assert_allclose(observations, ref_obs, rtol=1e-3, atol=2e-2)
    np.testing.assert_allclose(rewards, ref_rewards, rtol=1e-3, atol=1e-2)
    if expected is not None:  # the public code's zero-action return, as recorded in issue 10
        assert rewards.sum() == pytest.approx(expected, rel=0.01)
    else:  # the controller does far better than doing nothing
        assert rewards.sum() > 0.5 * -76_900


def test_vehicle_authors_random_actions_return(key):
    """Uniform random actions: about -75,600 per episode by the public code (issue 10); the mean
    over 8 episodes here lies within 10% of it."""
    env, params, step, reset = _env("vehicle_authors")
    rng = np.random.default_rng(0)
    totals = []
    for e in range(8):
        rewards, *_ = _episode("vehicle_authors", lambda obs: rng.uniform(-1, 1, 2), jax.random.fold_in(key, e), 200)
        totals.append(rewards.sum())
    assert np.mean(totals) == pytest.approx(-75_600, rel=0.10)


# ---- quadrotor (realistic: rotor speeds; simplified: thrust and torques) --------------------------------
HOVER = float(np.sqrt(0.65 * 9.81 / (4 * 0.313)))


def _mix(u):
    """Rotor speeds that produce (u1, u2, u3, u4) (the mixing inverted), clipped to [0, 10]."""
    kt, kd = 0.313, 7.5e-4
    base, roll, pitch, yaw = u[0] / (4 * kt), u[1] / (2 * kt), u[2] / (2 * kt), u[3] / (4 * kd)
    squares = np.array([base + roll + yaw, base + pitch - yaw, base - roll + yaw, base - pitch - yaw])
    return np.clip(np.sqrt(np.maximum(squares, 0.0)), 0.0, 10.0)


class CascadedPD:
    """A hand-written controller: position PD -> thrust and attitude references -> attitude PD ->
    (u1, u2, u3, u4). The observation has no body rates: they are estimated from successive angles,
    so a fresh controller is needed per episode."""

    def __init__(self, kp=1.5, kd=2.0, k_angle=20.0, k_rate=8.0):
        self.kp, self.kd, self.k_angle, self.k_rate = kp, kd, k_angle, k_rate
        self.previous = None

    def __call__(self, obs):
        ex, ey, ez, roll, pitch, yaw, evx, evy, evz = obs
        angles = np.array([roll, pitch, yaw])
        rates = np.zeros(3) if self.previous is None else (angles - self.previous) / 0.1
        self.previous = angles
        m, g, jx, jy, jz, arm = 0.65, 9.81, 0.75, 0.75, 1.3, 0.23
        acc = self.kp * np.array([ex, ey, ez]) + self.kd * np.array([evx, evy, evz])
        thrust = m * (g + acc[2]) / (np.cos(roll) * np.cos(pitch))
        reference = np.array([np.clip(-acc[1] / g, -0.5, 0.5), np.clip(acc[0] / g, -0.5, 0.5), 0.0])
        torque = self.k_angle * (reference - angles) - self.k_rate * rates
        return np.array([np.clip(thrust, 0, 120), torque[0] * jx / arm, torque[1] * jy / arm, torque[2] * jz / arm])


def _speeds_pd():
    pd = CascadedPD()
    return lambda obs: _mix(pd(obs))


def _normalised(policy, name):
    """The env's action in [-1, 1]^4 for a policy in physical inputs (rotor speeds, or thrust
    and torques): the inverse of the env's affine map."""
    env = make(name)[0]
    return lambda obs: 2 * (policy(obs) - env.input_low) / (env.input_high - env.input_low) - 1


def _random_start(rng):
    return np.concatenate([rng.uniform(-0.1, 0.1, 2), rng.uniform(-1, 1, 1), rng.uniform(-0.1, 0.1, 3)])


@pytest.mark.parametrize("name, make_policy, better_than", [
    ("quadrotor_realistic", lambda: (lambda obs: np.zeros(4)), None),
    ("quadrotor_realistic", lambda: (lambda obs: np.full(4, HOVER)), None),
    ("quadrotor_realistic", _speeds_pd, -700),
    ("quadrotor", CascadedPD, -200),
])
def test_quadrotor_matches_the_public_model(name, make_policy, better_than, key):
    for e in range(2):
        rewards, observations, _, start = _episode(name, _normalised(make_policy(), name), jax.random.fold_in(key, e), 40)
        model = QuadrotorNumpy(thrust_torques=name == "quadrotor")
        ref_rewards, ref_obs = _numpy_episode(model, make_policy(), 40, start=start[:6])
        np.testing.assert_allclose(observations, ref_obs, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(rewards, ref_rewards, rtol=1e-3, atol=1e-2)
        if better_than is not None:  # better than hovering (about -706): it follows the reference
            assert rewards.sum() > better_than


@pytest.mark.parametrize("policy, expected", [(lambda obs: np.zeros(4), -6_200), (lambda obs: np.full(4, HOVER), -720)])
def test_quadrotor_model_gives_the_public_returns(policy, expected):
    """Free fall and hover, averaged over 1,000 starts of the public distribution (the model, in
    NumPy; the test above ties the JAX env to it): about -6,200 and -720 by the public code
    (issue 10). Measured: -6,244 and -706."""
    rng = np.random.default_rng(0)
    totals = [_numpy_episode(QuadrotorNumpy(), policy, 40, start=_random_start(rng))[0].sum() for _ in range(1000)]
    assert np.mean(totals) == pytest.approx(expected, rel=0.03)


def test_thrust_and_torques_reach_what_rotor_speeds_do(key):
    """The simplified variant driven by the inputs that rotor speeds make follows the realistic
    variant driven by those speeds (the same body, two ways in)."""
    rng = np.random.default_rng(1)
    speeds = rng.uniform(HOVER - 0.3, HOVER + 0.3, (40, 4))
    it = iter(range(80))
    realistic = _episode("quadrotor_realistic", lambda obs: speeds[next(it) % 40] / 5.0 - 1.0, key, 40)
    it = iter(range(80))
    params = make("quadrotor")[1]
    to_inputs = _normalised(lambda w: np.asarray(rotor_inputs(jnp.asarray(w), params)), "quadrotor")
    simplified = _episode("quadrotor", lambda obs: to_inputs(speeds[next(it) % 40]), key, 40)
    np.testing.assert_allclose(simplified[2], realistic[2], rtol=1e-4, atol=1e-4)


def test_task_defaults_and_spaces():
    env, params = make("quadrotor_realistic")
    assert env.action_space(params).shape == (4,) and float(env.action_space(params).high) == 1.0
    np.testing.assert_allclose(np.asarray(env.to_inputs(jnp.array([-1.0, 0.0, 1.0, 3.0]))), [0, 5, 10, 10])
    assert task_defaults("ppo", env, params) == {"init_log_std": pytest.approx(-1 - np.log(5))}
    env, params = make("quadrotor")
    assert task_defaults("ppo", env, params) == {}
    np.testing.assert_allclose(env.input_high, [125.2, 31.3, 31.3, 0.15], rtol=1e-6)
    env, params = make("vehicle_authors")
    assert task_defaults("ppo", env, params) == {"init_log_std": -1.0}
    assert task_defaults("sac", env, params) == {}
    acrobot, p = make("acrobot")
    assert task_defaults("ppo", acrobot, p)["init_log_std"] == pytest.approx(-0.5 - np.log(20))


@pytest.mark.parametrize("env_id", ["entrolab/VehicleAuthors-v0", "entrolab/Quadrotor-v0",
                                    "entrolab/QuadrotorRealistic-v0"])
def test_check_env_passes(env_id, check_env_clean):
    env = gymnasium.make(env_id).unwrapped
    check_env_clean(env)

"""Plain NumPy reference implementations of entrolab's Lorenz and KS control steps.

Written from the equations, as a gymnasium user would write them: one
environment, `env.step(action)` called from a Python loop, NumPy float64
arrays, no JAX. They serve two purposes:

- the baseline of `benchmarks/envs.py` (a NumPy env in a Python loop);
- an independent implementation that `tests/test_numpy_reference.py`
  compares with the JAX environments of `entrolab.envs`, step by step.

The physics, constants and conventions are those of `entrolab.envs` with
default params:

Lorenz-63: x' = sigma (y - x) + u1, y' = x (rho - z) - y + u2,
z' = x y - beta z + u3, u = action_scale * a; one control step of dt = 0.05
is 5 classical RK4 sub-steps; observation x / 50; cost
(||x - 0||^2 + 0.01 ||u||^2) / 50^2 on the state reached; initial state
N(C+, 0.1^2 I) with C+ = (sqrt(beta (rho-1)), sqrt(beta (rho-1)), rho - 1).

Kuramoto-Sivashinsky: u_t = -u u_x - u_xx - u_xxxx + f(x) on [0, 22) with 64
points, pseudo-spectral (rfft, no dealiasing, Nyquist derivative zeroed) and
one ETDRK4 step of dt = 0.05 per control step (Cox-Matthews, coefficients by
the Kassam-Trefethen contour mean over 16 points of the upper unit
half-circle); f = action_scale * sum_j a_j g_j with g_j periodic Gaussians of
width 0.4 and unit peak at j L / 8; 8 sensors, normalised Gaussian weights of
width 0.4 centred at (i + 1/2) L / 8; cost mean((u - E1)^2) + 0.1 mean(f^2);
initial state N(E2, 0.1^2 I). Only the equilibria E1, E2 come from entrolab
(`ks_equilibria`, Newton's method).

Both: actions are made finite and clipped to [-1, 1]; a state with a
non-finite entry or |x_i| above the divergence bound (500 for Lorenz, 50 for
KS) terminates the episode with reward -cost_cap * (steps left in the
episode, counting this one), and the state is replaced by a finite clipped
one; otherwise reward = -min(cost, cost_cap) with cost_cap = 10; episodes
are truncated at 200 steps. Unlike the functional envs there is no
auto-reset: the caller resets on `terminated or truncated` (gymnasium
semantics). Observation and action noise (zero by default in entrolab) are
not implemented.
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces


class _ControlEnv(gymnasium.Env):
    """What the two systems share: clipping, divergence, reward, time limit."""

    metadata = {"render_modes": []}
    max_episode_steps = 200
    divergence_bound = 1e3
    cost_cap = 10.0
    init_std = 0.1
    state: np.ndarray
    time: int

    # ---- to implement --------------------------------------------------
    def _initial_centre(self) -> np.ndarray:
        raise NotImplementedError

    def _advance(self, x: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, float]:
        """(state after one control step, per-step cost)."""
        raise NotImplementedError

    def _observe(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ---- gymnasium API -------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        centre = self._initial_centre()
        self.state = centre + self.init_std * self.np_random.standard_normal(centre.shape)
        self.time = 0
        return self._observe(self.state), {}

    def set_state(self, x, time: int = 0) -> np.ndarray:
        """Put the env in physical state x at step `time`; returns the observation."""
        self.state = np.array(x, dtype=np.float64)
        self.time = int(time)
        return self._observe(self.state)

    def step(self, action):
        a = np.clip(np.nan_to_num(np.asarray(action, dtype=np.float64)), -1.0, 1.0)
        x, cost = self._advance(self.state, a)
        diverged = not np.all(np.isfinite(x)) or bool(np.any(np.abs(x) > self.divergence_bound))
        steps_left = self.max_episode_steps - self.time
        if diverged:
            x = np.clip(np.nan_to_num(x), -self.divergence_bound, self.divergence_bound)
            reward = -self.cost_cap * steps_left
        else:
            reward = -min(cost, self.cost_cap) if np.isfinite(cost) else -self.cost_cap
        self.state = x
        self.time += 1
        terminated = diverged
        truncated = self.time >= self.max_episode_steps and not terminated
        return self._observe(x), float(reward), terminated, truncated, {"cost": cost}


class LorenzNumpyEnv(_ControlEnv):
    """Controlled Lorenz-63, RK4 sub-steps, NumPy (see the module docstring)."""

    divergence_bound = 500.0

    def __init__(self, sigma=10.0, rho=28.0, beta=8.0 / 3.0, dt=0.05, num_substeps=5,
                 action_scale=10.0, obs_scale=50.0, cost_scale=50.0, control_cost=0.01):
        self.sigma, self.rho, self.beta = sigma, rho, beta
        self.dt, self.num_substeps = dt, num_substeps
        self.action_scale, self.obs_scale = action_scale, obs_scale
        self.cost_scale, self.control_cost = cost_scale, control_cost
        self.action_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float64)
        self.state = self._initial_centre()
        self.time = 0

    def _initial_centre(self):
        r = np.sqrt(self.beta * (self.rho - 1.0))
        return np.array([r, r, self.rho - 1.0])

    def _vector_field(self, x, u):
        return np.array([
            self.sigma * (x[1] - x[0]),
            x[0] * (self.rho - x[2]) - x[1],
            x[0] * x[1] - self.beta * x[2],
        ]) + u

    def _advance(self, x, action):
        u = self.action_scale * action
        h = self.dt / self.num_substeps
        f = self._vector_field
        for _ in range(self.num_substeps):
            k1 = f(x, u)
            k2 = f(x + 0.5 * h * k1, u)
            k3 = f(x + 0.5 * h * k2, u)
            k4 = f(x + h * k3, u)
            x = x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        cost = (x @ x + self.control_cost * (u @ u)) / self.cost_scale**2  # target: origin
        return x, float(cost)

    def _observe(self, x):
        return x / self.obs_scale


class KSNumpyEnv(_ControlEnv):
    """Controlled Kuramoto-Sivashinsky, ETDRK4, NumPy (see the module docstring)."""

    divergence_bound = 50.0

    def __init__(self, length=22.0, num_points=64, num_actuators=8, num_sensors=8, dt=0.05,
                 action_scale=1.0, actuator_width=0.4, sensor_width=0.4, obs_scale=1.0,
                 control_cost=0.1, num_contour_points=16, u_target=None, u_init=None):
        if u_target is None or u_init is None:  # the equilibria E1 (target), E2 (initial centre)
            from entrolab.envs.ks_equilibria import ks_equilibria

            eqs = ks_equilibria(float(length), int(num_points))
            u_target = eqs["E1"].u if u_target is None else u_target
            u_init = eqs["E2"].u if u_init is None else u_init
        self.u_target = np.array(u_target, dtype=np.float64)
        self.u_init = np.array(u_init, dtype=np.float64)
        self.n = n = int(num_points)
        self.control_cost, self.obs_scale = control_cost, obs_scale

        # Grid, actuators, sensors.
        grid = length * np.arange(n) / n

        def gaussians(centres, width):
            d = np.mod(grid[None, :] - centres[:, None] + 0.5 * length, length) - 0.5 * length
            return np.exp(-0.5 * (d / width) ** 2)

        self.actuators = action_scale * gaussians(length * np.arange(num_actuators) / num_actuators,
                                                  actuator_width)
        w = gaussians(length * (np.arange(num_sensors) + 0.5) / num_sensors, sensor_width)
        self.sensors = w / w.sum(axis=1, keepdims=True)

        # ETDRK4 coefficients (Kassam & Trefethen 2005), computed once.
        k = 2.0 * np.pi / length * np.arange(n // 2 + 1)
        self.ik = 1j * k
        self.ik[n // 2] = 0.0  # odd derivative of the Nyquist mode
        lin = k**2 - k**4
        m = num_contour_points
        roots = np.exp(1j * np.pi * (np.arange(1, m + 1) - 0.5) / m)
        lr = dt * lin[:, None] + roots[None, :]
        self.e = np.exp(dt * lin)
        self.e2 = np.exp(dt * lin / 2)
        self.q = dt * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=1))
        self.f1 = dt * np.real(np.mean((-4 - lr + np.exp(lr) * (4 - 3 * lr + lr**2)) / lr**3, axis=1))
        self.f2 = dt * np.real(np.mean((2 + lr + np.exp(lr) * (-2 + lr)) / lr**3, axis=1))
        self.f3 = dt * np.real(np.mean((-4 - 3 * lr - lr**2 + np.exp(lr) * (4 - lr)) / lr**3, axis=1))

        self.action_space = spaces.Box(-1.0, 1.0, (num_actuators,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (num_sensors,), np.float64)
        self.state = self.u_init.copy()
        self.time = 0

    def _initial_centre(self):
        return self.u_init

    def _advance(self, x, action):
        n = self.n
        forcing = action @ self.actuators
        f_hat = np.fft.rfft(forcing)

        def nonlinear(v):
            w = np.fft.irfft(v, n)
            return -0.5 * self.ik * np.fft.rfft(w * w) + f_hat

        v = np.fft.rfft(x)
        nv = nonlinear(v)
        a = self.e2 * v + self.q * nv
        na = nonlinear(a)
        b = self.e2 * v + self.q * na
        nb = nonlinear(b)
        c = self.e2 * a + self.q * (2 * nb - nv)
        nc = nonlinear(c)
        v = self.e * v + nv * self.f1 + 2 * (na + nb) * self.f2 + nc * self.f3
        x = np.fft.irfft(v, n)
        err = x - self.u_target
        cost = np.mean(err * err) + self.control_cost * np.mean(forcing * forcing)
        return x, float(cost)

    def _observe(self, x):
        return (self.sensors @ x) / self.obs_scale

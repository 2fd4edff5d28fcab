"""The functional environment protocol: purity, jit/vmap, auto-reset, noise,
divergence handling and clear errors, for every registered control system
(the probe environments have their own tests in test_probes.py; obstacle2d,
vehicle and the quadrotors in test_precision_envs.py; the room in test_room.py; the MiniGrid room, a
grid with a fixed start, discrete actions and nothing to diverge, in test_minigrid_room.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.envs import make, registered, replace_params

# obstacle2d and vehicle have a fixed start, obstacle2d and the quadrotors end
# episodes naturally (collision, goal; crash, flip, stray): the generic tests
# below assume random initial states and no natural end. Each of them would
# also compile these environments' steps again, a few seconds apiece. Their
# equivalents are in test_precision_envs.py (the room's, fixed start and goal, in test_room.py).
PRECISION_TASKS = {"obstacle2d", "room", "minigrid_room", "vehicle", "vehicle_authors", "quadrotor", "quadrotor_realistic", "crazyflie",
                   "crazyflie_realistic"}
ENVS = [name for name in registered() if not name.startswith("probe_") and name not in PRECISION_TASKS]
# the same, with KS (the slowest to compile) in `make test-slow` only: for tests whose KS case adds
# nothing the Lorenz and Acrobot cases do not already check
ENVS_KS_SLOW = [pytest.param(n, marks=pytest.mark.slow) if n == "ks" else n for n in ENVS]


def _zeros_action(env, params):
    return jnp.zeros(env.action_space(params).shape)


@pytest.mark.parametrize("name", ENVS_KS_SLOW)
def test_reset_step_jit_vmap_over_keys(name, key):
    env, params = make(name)
    keys = jax.random.split(key, 5)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    assert obs.shape == (5, *env.observation_space(params).shape)
    assert obs.dtype == jnp.float32
    actions = jax.vmap(env.action_space(params).sample)(keys)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs2, state2, reward, term, trunc, info = step(keys, state, actions, params)
    assert obs2.shape == obs.shape and reward.shape == (5,)
    assert reward.dtype == jnp.float32
    assert not bool(term.any()) and not bool(trunc.any())
    assert np.all(np.asarray(state2.time) == 1)
    # distinct keys give distinct initial states; the same key the same one
    assert not np.allclose(obs[0], obs[1])
    obs_again, _ = env.reset(keys[0], params)  # eager vs jit+vmap: equal up to rounding
    np.testing.assert_allclose(np.asarray(obs_again), np.asarray(obs[0]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name, field, values",
    [("lorenz", "rho", [20.0, 28.0, 35.0]),
     pytest.param("ks", "length", [20.0, 22.0, 24.0], marks=pytest.mark.slow)],  # ~28 s of KS compiling
)
def test_vmap_over_dynamics_params(name, field, values, key):
    """A dynamics shift is a vmap over params: one program, distinct physics."""
    env, params = make(name, init_std=0.0)
    batch = jax.tree.map(lambda v: jnp.stack([v] * len(values)), params)
    batch = batch.replace(**{field: jnp.asarray(values)})
    action = _zeros_action(env, params) + 0.5

    def run(p):
        _, s = env.reset(key, p)
        def body(s, k):
            _, s, r, *_ = env.step(k, s, action, p)
            return s, r
        s, r = jax.lax.scan(body, s, jax.random.split(key, 20))
        return s.x, r

    xs, rs = jax.jit(jax.vmap(run))(batch)
    for i in range(len(values)):
        single = replace_params(params, name, **{field: values[i]})
        x_single, _ = jax.jit(run)(single)
        np.testing.assert_allclose(np.asarray(xs[i]), np.asarray(x_single), rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.asarray(xs[0]), np.asarray(xs[2]))


@pytest.mark.parametrize("name", ENVS_KS_SLOW)
def test_truncation_and_auto_reset(name, key):
    env, params = make(name, max_steps_in_episode=7)
    _, state = env.reset(key, params)
    action = _zeros_action(env, params)
    for t in range(1, 8):
        obs, next_state, reward, term, trunc, info = env.step(jax.random.fold_in(key, t), state, action, params)
        assert not bool(term)
        if t < 7:
            assert not bool(trunc) and int(next_state.time) == t
            np.testing.assert_array_equal(np.asarray(obs), np.asarray(info["final_observation"]))
        state = next_state
    assert bool(trunc)
    assert int(state.time) == 0  # auto-reset
    # the observation returned is the fresh episode's; the last one is kept in info
    np.testing.assert_allclose(np.asarray(obs), np.asarray(env.observe(state, params)), rtol=1e-6)
    assert not np.allclose(np.asarray(obs), np.asarray(info["final_observation"]))
    np.testing.assert_allclose(
        np.asarray(info["final_observation"]),
        np.asarray(env.observe(state.replace(x=info["final_x"]), params)),
        rtol=1e-6,
    )


@pytest.mark.parametrize("name", ENVS_KS_SLOW)
def test_step_is_deterministic_given_key(name, key):
    env, params = make(name, obs_noise_std=0.3, action_noise_std=0.2)
    _, state = env.reset(key, params)
    action = env.action_space(params).sample(key)
    out1 = jax.jit(env.step)(jax.random.key(3), state, action, params)
    out2 = jax.jit(env.step)(jax.random.key(3), state, action, params)
    out3 = jax.jit(env.step)(jax.random.key(4), state, action, params)
    for a, b in zip(jax.tree.leaves(out1), jax.tree.leaves(out2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(out1[0]), np.asarray(out3[0]))


@pytest.mark.parametrize("name", ENVS)
@pytest.mark.parametrize("sigma", [0.0, 0.2])
def test_observation_noise_has_the_requested_std(name, sigma, key):
    env, params = make(name, obs_noise_std=sigma, init_std=0.0)  # the same state every reset
    keys = jax.random.split(jax.random.key(7), 4000)
    noisy, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    clean = jax.vmap(env.observe, in_axes=(0, None))(states, params)
    residual = np.asarray(noisy - clean)
    if sigma == 0.0:
        np.testing.assert_allclose(residual, 0.0, atol=1e-6)
    else:
        # 4000 x dim draws: the std estimate is within a few percent
        assert abs(residual.std() - sigma) < 0.02 * sigma * 3
        assert abs(residual.mean()) < 0.02


@pytest.mark.parametrize("name", ENVS_KS_SLOW)
def test_action_noise_and_clipping(name, key):
    env, params = make(name)
    _, state = env.reset(key, params)
    ones = jnp.ones(env.action_space(params).shape)
    x_one = env.step(key, state, ones, params)[1].x
    x_big = env.step(key, state, 5.0 * ones, params)[1].x  # clipped to the bound
    np.testing.assert_array_equal(np.asarray(x_one), np.asarray(x_big))
    noisy = params.replace(action_noise_std=0.5)
    x_a = env.step(jax.random.key(1), state, ones, noisy)[1].x
    x_b = env.step(jax.random.key(2), state, ones, noisy)[1].x
    assert not np.allclose(np.asarray(x_a), np.asarray(x_b))
    assert not np.allclose(np.asarray(x_a), np.asarray(x_one))


@pytest.mark.parametrize("name", ENVS_KS_SLOW)
def test_divergence_terminates_with_bounded_penalty_and_no_nan(name, key):
    env, params = make(name)
    _, state = env.reset(key, params)
    action = _zeros_action(env, params)
    for bad in [jnp.nan, jnp.inf, 10.0 * params.divergence_bound]:
        bad_state = state.replace(x=state.x.at[0].set(bad), time=jnp.asarray(50, jnp.int32))
        obs, new_state, reward, term, trunc, info = jax.jit(env.step)(key, bad_state, action, params)
        assert bool(term) and not bool(trunc)
        assert bool(info["diverged"]) and int(info["num_diverged"]) == 1
        assert int(new_state.num_diverged) == 1  # the count survives the auto-reset
        assert int(new_state.time) == 0
        steps_left = params.max_steps_in_episode - 50
        np.testing.assert_allclose(float(reward), -params.cost_cap * steps_left, rtol=1e-6)
        for leaf in (obs, info["final_observation"], info["final_x"], reward):
            assert np.all(np.isfinite(np.asarray(leaf)))


def test_diverging_dynamics_give_finite_gradients(key):
    """A physically diverging run (huge actuation) keeps rewards and gradients finite."""
    env, params = make("lorenz", action_scale=1e4, divergence_bound=200.0)
    _, state = env.reset(key, params)

    def total_reward(a):
        def body(s, k):
            _, s, r, term, *_ = env.step(k, s, a, params)
            return s, (r, term)
        _, (r, term) = jax.lax.scan(body, state, jax.random.split(key, 10))
        return r.sum(), term

    (value, term), grad = jax.value_and_grad(total_reward, has_aux=True)(jnp.array([1.0, 0.3, -0.2]))
    assert bool(term.any())
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))


def test_lorenz_sensor_and_actuation_matrices(key):
    env, params = make("lorenz", sensors=np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
                       actuation=np.array([[1.0], [0.0], [0.0]]))
    obs, state = env.reset(key, params)
    assert obs.shape == (2,) and env.action_space(params).shape == (1,)
    np.testing.assert_allclose(np.asarray(obs), np.asarray(state.x[jnp.array([0, 2])] / params.obs_scale), rtol=1e-6)
    obs, *_ = env.step(key, state, jnp.ones(1), params)
    assert obs.shape == (2,)


def test_ks_actuator_count_and_shapes(key):
    env, params = make("ks", num_actuators=4)
    assert env.action_space(params).shape == (4,)
    shapes = np.asarray(env.actuator_shapes(params))
    assert shapes.shape == (4, 64)
    np.testing.assert_allclose(shapes.max(axis=1), 1.0, rtol=1e-6)  # unit peak at a grid point
    weights = np.asarray(env.sensor_weights(params))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    # sensors sit half a spacing from the actuators (8 sensors, 4 actuators: spacing L/8)
    grid = np.asarray(env.grid(params))
    assert np.isclose(grid[np.argmax(weights[0])], 22.0 / 16, atol=22.0 / 64)


def test_lorenz_equilibria_follow_params():
    from entrolab.envs import lorenz_equilibria

    _, params = make("lorenz", rho=35.0, beta=2.0)
    eq = np.asarray(lorenz_equilibria(params))
    r = np.sqrt(2.0 * 34.0)
    np.testing.assert_allclose(eq, [[0, 0, 0], [r, r, 34.0], [-r, -r, 34.0]], rtol=1e-6)


# ---- clear errors ---------------------------------------------------------

@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: make("lorentz"), "unknown environment 'lorentz'"),
        (lambda: make("lorenz", rhoo=3.0), "unknown override"),
        (lambda: make("lorenz", dt=-0.05), "dt must be > 0"),
        (lambda: make("ks", num_points=0), "num_points must be >= 1"),
        (lambda: make("ks", num_points=63), "num_points must be even"),
        (lambda: make("ks", length=0.0), "length must be > 0"),
        (lambda: make("lorenz", obs_noise_std=-1.0), "obs_noise_std must be >= 0"),
        (lambda: make("lorenz", init_equilibrium=3), "init_equilibrium must be 0, 1 or 2"),
        (lambda: make("lorenz", dt=float("nan")), "dt must be finite"),
        (lambda: make("ks", target="E7"), "unknown equilibrium 'E7'"),
        (lambda: make("lorenz", num_substeps=0), "num_substeps must be >= 1"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", ENVS)
def test_wrong_action_shape_is_a_clear_error(name, key):
    env, params = make(name)
    _, state = env.reset(key, params)
    with pytest.raises(ValueError, match="action has shape"):
        env.step(key, state, jnp.zeros(5), params)
    with pytest.raises(ValueError, match="action has shape"):
        jax.jit(env.step)(key, state, jnp.zeros((2, 3)), params)


def test_replace_params_refuses_unknown_and_wrong_shapes():
    _, params = make("ks")
    with pytest.raises(ValueError, match="unknown param"):
        replace_params(params, "ks", lenght=22.0)
    with pytest.raises(ValueError, match="must have shape"):
        replace_params(params, "ks", u_target=np.zeros(32))

"""Complexity measures and the Fisher trace against independent computations.

References are computed here without the shipped code: NumPy SVD and norms,
brute-force path enumeration, a float64 NumPy forward pass with finite
differences, closed forms for linear policies, Monte Carlo scores, scipy.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from entrolab.agents.evaluate import episode_returns
from entrolab.agents.policy import GaussianPolicy
from entrolab.envs import make
from entrolab.measures.complexity import (
    dense_layers,
    empirical_lipschitz,
    jacobian_spectral_norms,
    norm_measures,
    path_norm_squared,
    sharpness,
    sharpness_bisection,
)
from entrolab.measures.fisher import fisher_trace, fisher_trace_monte_carlo, summarize


# ---- fixtures and independent references -------------------------------------------
def random_params(policy: GaussianPolicy, seed: int, scale: float = 0.8) -> dict:
    """Policy params (the structure of `policy.init`) with every mean-net entry random, biases
    too, a random log-std and non-trivial normalisation statistics, so that no term of a
    measure vanishes. Built in NumPy: compiling flax's orthogonal init costs seconds."""
    rng = np.random.default_rng(seed)
    sizes = (policy.obs_dim, *policy.hidden_sizes, policy.action_dim)
    net = {f"Dense_{i}": {"kernel": scale * rng.standard_normal((a, b)), "bias": scale * rng.standard_normal(b)}
           for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}
    params = {
        "mean_net": net,
        "log_std": 0.4 * rng.standard_normal(policy.action_dim),
        "obs_norm": {"mean": 0.3 * rng.standard_normal(policy.obs_dim),
                     "var": rng.uniform(0.2, 3.0, policy.obs_dim)},
    }
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)


def stacked_params(policy: GaussianPolicy, seeds) -> dict:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *[random_params(policy, s) for s in seeds])


def observations(num: int, dim: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal((num, dim))


def np_layers(params):
    net = params["mean_net"]
    return [(np.asarray(net[f"Dense_{i}"]["kernel"], np.float64),
             np.asarray(net[f"Dense_{i}"]["bias"], np.float64))
            for i in range(len(net))]


def np_normalize(params, obs):
    m = np.asarray(params["obs_norm"]["mean"], np.float64)
    v = np.asarray(params["obs_norm"]["var"], np.float64)
    return np.clip((obs - m) / np.sqrt(v + 1e-8), -10.0, 10.0)


def np_mean_net(params, x):
    layers = np_layers(params)
    for kernel, bias in layers[:-1]:
        x = np.tanh(x @ kernel + bias)
    kernel, bias = layers[-1]
    return x @ kernel + bias


def fd_jacobian(f, x, h=1e-6):
    """Central finite differences in float64, (out, in)."""
    cols = []
    for j in range(x.shape[0]):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(cols, axis=1)


# jitted once per (policy, batch_size): eager vmap dispatches op by op, which is slower here
jacobian_norms_jit = jax.jit(jacobian_spectral_norms, static_argnums=(0, 3))
empirical_lipschitz_jit = jax.jit(empirical_lipschitz, static_argnums=(0, 3))
fisher_trace_jit = jax.jit(fisher_trace, static_argnums=(0, 3))

SMALL = GaussianPolicy(obs_dim=2, action_dim=1, hidden_sizes=(3, 2))  # the 2-3-2-1 net
MEDIUM = GaussianPolicy(obs_dim=3, action_dim=2, hidden_sizes=(8, 8))
LINEAR = GaussianPolicy(obs_dim=3, action_dim=2, hidden_sizes=())


# ---- norms ----------------------------------------------------------------------------
def test_dense_layers_numeric_order_and_both_param_forms():
    net = {f"Dense_{i}": {"kernel": jnp.full((1, 1), float(i)), "bias": jnp.zeros(1)} for i in (10, 2, 0, 1, 9)}
    assert [float(k[0, 0]) for k, _ in dense_layers(net)] == [0.0, 1.0, 2.0, 9.0, 10.0]
    params = random_params(MEDIUM, 0)
    from_full, from_net = dense_layers(params), dense_layers(params["mean_net"])
    assert len(from_full) == 3
    assert all(a is c and b is d for (a, b), (c, d) in zip(from_full, from_net))
    with pytest.raises(ValueError, match="Dense"):
        dense_layers({"log_std": jnp.zeros(2)})


def test_spectral_and_frobenius_norms_match_numpy():
    params = random_params(MEDIUM, 0)
    out = norm_measures(params)
    layers = np_layers(params)
    spectral = [np.linalg.svd(k, compute_uv=False)[0] for k, _ in layers]
    frob = [np.sqrt(np.sum(k**2)) for k, _ in layers]
    for l in range(3):
        np.testing.assert_allclose(out[f"spectral_norm_layer{l}"], spectral[l], rtol=1e-5)
        np.testing.assert_allclose(out[f"frobenius_norm_layer{l}"], frob[l], rtol=1e-5)
    np.testing.assert_allclose(out["spectral_product"], np.prod(spectral), rtol=1e-5)
    np.testing.assert_allclose(out["frobenius_product"], np.prod(frob), rtol=1e-5)
    np.testing.assert_allclose(out["frobenius_sq_sum"], sum(f**2 for f in frob), rtol=1e-5)
    assert "dist_from_init" not in out
    assert all(jnp.shape(v) == () for v in out.values())


def brute_force_path_norm_sq(layers, include_bias):
    """Sum over every path (from an input unit, or from a bias) to an output unit of the
    product of squared weights along it, by explicit enumeration."""
    widths = [layers[0][0].shape[0]] + [k.shape[1] for k, _ in layers]
    starts = [0] + ([l + 1 for l in range(len(layers))] if include_bias else [])
    total = 0.0
    for start in starts:  # start > 0: the path's first edge is the bias b_{start-1}[j] into layer `start`
        for units in itertools.product(*[range(w) for w in widths[start:]]):
            prod = 1.0 if start == 0 else layers[start - 1][1][units[0]] ** 2
            for step, (i, j) in enumerate(zip(units[:-1], units[1:])):
                prod *= layers[start + step][0][i, j] ** 2
            total += prod
    return total


@pytest.mark.parametrize("include_bias", [False, True])
def test_path_norm_matches_brute_force_enumeration(include_bias):
    params = random_params(SMALL, 1)
    expected = brute_force_path_norm_sq(np_layers(params), include_bias)
    np.testing.assert_allclose(path_norm_squared(params, include_bias=include_bias), expected, rtol=1e-5)
    name = "path_norm" if include_bias else "path_norm_no_bias"
    np.testing.assert_allclose(norm_measures(params)[name], np.sqrt(expected), rtol=1e-5)


def test_path_norm_of_one_layer_is_frobenius():
    params = random_params(LINEAR, 2)
    out = norm_measures(params)
    np.testing.assert_allclose(out["path_norm_no_bias"], out["frobenius_norm_layer0"], rtol=1e-6)
    bias = np.asarray(params["mean_net"]["Dense_0"]["bias"])
    np.testing.assert_allclose(out["path_norm"] ** 2, out["frobenius_sq_sum"] + np.sum(bias**2), rtol=1e-5)


def test_distance_from_init_on_known_perturbation():
    init = random_params(MEDIUM, 3)
    rng = np.random.default_rng(4)
    d_kernel = rng.standard_normal(init["mean_net"]["Dense_1"]["kernel"].shape).astype(np.float32)
    d_bias = rng.standard_normal(init["mean_net"]["Dense_2"]["bias"].shape).astype(np.float32)
    net = dict(init["mean_net"])
    net["Dense_1"] = {**net["Dense_1"], "kernel": net["Dense_1"]["kernel"] + d_kernel}
    net["Dense_2"] = {**net["Dense_2"], "bias": net["Dense_2"]["bias"] + d_bias}
    out = norm_measures({**init, "mean_net": net}, init_params=init)
    np.testing.assert_allclose(out["dist_from_init"], np.linalg.norm(d_kernel), rtol=1e-5)
    np.testing.assert_allclose(out["dist_from_init_with_bias"],
                               np.sqrt(np.sum(np.square(d_kernel)) + np.sum(np.square(d_bias))), rtol=1e-5)
    assert float(norm_measures(init, init_params=init)["dist_from_init"]) == 0.0
    with pytest.raises(ValueError, match="structure"):
        norm_measures(init, init_params=random_params(LINEAR, 3))


def test_norm_measures_jit_and_vmap_over_a_stack_of_policies():
    stack, init = stacked_params(MEDIUM, range(3)), stacked_params(MEDIUM, range(10, 13))
    batched = jax.jit(jax.vmap(norm_measures))(stack, init)
    for i in range(3):
        one = norm_measures(random_params(MEDIUM, i), random_params(MEDIUM, 10 + i))
        for name, value in one.items():
            np.testing.assert_allclose(batched[name][i], value, rtol=1e-5, err_msg=name)


# ---- empirical Lipschitz ----------------------------------------------------------------
def test_input_jacobian_norms_match_finite_differences():
    params = random_params(MEDIUM, 5)
    obs = observations(5, 3)
    obs[0, 1] = 1e3  # clipped by the normalisation: that column of the raw Jacobian is 0
    raw, normalised = jacobian_norms_jit(MEDIUM, params, obs)
    for k in range(5):
        j_raw = fd_jacobian(lambda s: np_mean_net(params, np_normalize(params, s)), obs[k])
        j_norm = fd_jacobian(lambda x: np_mean_net(params, x), np_normalize(params, obs[k]))
        np.testing.assert_allclose(raw[k], np.linalg.norm(j_raw, 2), rtol=1e-4)
        np.testing.assert_allclose(normalised[k], np.linalg.norm(j_norm, 2), rtol=1e-4)
    out = empirical_lipschitz_jit(MEDIUM, params, obs)
    np.testing.assert_allclose(out["lipschitz_max"], np.max(raw), rtol=1e-6)
    np.testing.assert_allclose(out["lipschitz_normalized_mean"], np.mean(normalised), rtol=1e-6)
    chunked = jacobian_norms_jit(MEDIUM, params, obs, 2)
    np.testing.assert_allclose(chunked[0], raw, rtol=1e-6)


def test_lipschitz_of_a_linear_policy_is_the_kernel_norm():
    params = random_params(LINEAR, 6)
    obs = observations(6, 3)
    kernel = np.asarray(params["mean_net"]["Dense_0"]["kernel"], np.float64)  # mu = W^T n(s) + b
    scale = 1.0 / np.sqrt(np.asarray(params["obs_norm"]["var"], np.float64) + 1e-8)
    raw, normalised = jacobian_norms_jit(LINEAR, params, obs)
    np.testing.assert_allclose(normalised, np.linalg.norm(kernel, 2), rtol=1e-5)
    np.testing.assert_allclose(raw, np.linalg.norm(kernel.T * scale, 2), rtol=1e-5)
    unnormalised = GaussianPolicy(obs_dim=3, action_dim=2, hidden_sizes=(), normalize_observations=False)
    out = empirical_lipschitz_jit(unnormalised, params, obs)
    np.testing.assert_allclose(out["lipschitz_max"], np.linalg.norm(kernel, 2), rtol=1e-5)
    assert float(out["observation_scale"]) == 1.0


def test_empirical_lipschitz_is_below_the_spectral_bound():
    params = random_params(MEDIUM, 7, scale=1.5)
    emp = empirical_lipschitz_jit(MEDIUM, params, observations(200, 3, scale=3.0))
    bound = norm_measures(params)["spectral_product"]
    assert float(emp["lipschitz_normalized_max"]) <= float(bound) * (1 + 1e-5)
    assert float(emp["lipschitz_max"]) <= float(bound * emp["observation_scale"]) * (1 + 1e-5)
    np.testing.assert_allclose(emp["observation_scale"], np.max(1 / np.sqrt(params["obs_norm"]["var"] + 1e-8)))


# ---- Fisher trace -----------------------------------------------------------------------
def test_fisher_trace_of_a_linear_policy_in_closed_form():
    params = random_params(LINEAR, 8)
    obs = observations(7, 3)
    # mu_i = sum_j W_ji x_j + b_i: grad mu_i = (x e_i^T, e_i), ||grad mu_i||^2 = ||x||^2 + 1
    x = np_normalize(params, obs)
    inv_var = np.exp(-2.0 * np.asarray(params["log_std"], np.float64))
    expected = (np.sum(x**2, axis=1) + 1.0) * np.sum(inv_var)
    out = fisher_trace_jit(LINEAR, params, obs)
    np.testing.assert_allclose(out["mean"], expected, rtol=1e-5)
    np.testing.assert_array_equal(out["log_std"], 2.0 * LINEAR.action_dim)
    np.testing.assert_allclose(out["total"], expected + 4.0, rtol=1e-5)
    # the parts: the sigma-free sensitivity sum_i ||grad mu_i||^2 = action_dim (||x||^2 + 1), the precision
    # mean_i 1/sigma_i^2; with unequal sigmas "mean" weighs each output by its own precision
    np.testing.assert_allclose(out["sensitivity"], LINEAR.action_dim * (np.sum(x**2, axis=1) + 1.0), rtol=1e-5)
    np.testing.assert_allclose(out["precision"], np.mean(inv_var), rtol=1e-6)
    np.testing.assert_allclose(out["mean"], out["sensitivity"] * out["precision"], rtol=1e-5)  # equal ||grad mu_i||
    np.testing.assert_allclose(out["mean"] + out["log_std"], out["total"], rtol=1e-6)


def test_fisher_parts_sum_to_the_trace_and_split_the_sigma_factor():
    """One action dimension: mean part = sensitivity / sigma^2 exactly, and mean + log-std part = total;
    halving sigma quadruples the mean part and leaves the sensitivity alone."""
    policy = GaussianPolicy(obs_dim=3, action_dim=1, hidden_sizes=(8, 8))
    params = random_params(policy, 4)
    obs = observations(6, 3)
    out = fisher_trace_jit(policy, params, obs)
    np.testing.assert_allclose(out["mean"], out["sensitivity"] * out["precision"], rtol=1e-5)
    np.testing.assert_allclose(out["mean"] + out["log_std"], out["total"], rtol=1e-6)
    narrow = fisher_trace_jit(policy, {**params, "log_std": params["log_std"] - np.log(2.0)}, obs)
    np.testing.assert_allclose(narrow["sensitivity"], out["sensitivity"], rtol=1e-6)
    np.testing.assert_allclose(narrow["mean"], 4.0 * out["mean"], rtol=1e-5)


@pytest.mark.parametrize("bounding", ["clip", "tanh"])
def test_fisher_trace_matches_monte_carlo(key, bounding):
    policy = GaussianPolicy(obs_dim=3, action_dim=2, hidden_sizes=(8, 8), action_bounding=bounding)
    params = random_params(policy, 9)
    obs = observations(4, 3)
    exact = fisher_trace_jit(policy, params, obs)
    mc = jax.jit(fisher_trace_monte_carlo, static_argnums=(0, 4))(policy, params, obs, key, 4000)
    for part in ("mean", "log_std", "total"):
        err = np.abs(np.asarray(exact[part]) - np.asarray(mc[part]))
        assert np.all(err < 5.0 * np.asarray(mc[f"{part}_stderr"])), (part, err, mc[f"{part}_stderr"])
    np.testing.assert_array_equal(exact["log_std"], 2.0 * policy.action_dim)
    chunked = fisher_trace_jit(policy, params, obs, 3)
    np.testing.assert_allclose(chunked["total"], exact["total"], rtol=1e-6)


def test_fisher_trace_vmaps_over_a_stack_of_policies():
    obs = observations(5, 3)
    batched = jax.jit(jax.vmap(lambda p: fisher_trace(MEDIUM, p, obs)["total"]))(stacked_params(MEDIUM, range(3)))
    for i in range(3):
        np.testing.assert_allclose(batched[i], fisher_trace_jit(MEDIUM, random_params(MEDIUM, i), obs)["total"],
                                   rtol=1e-5)


# ---- summarize --------------------------------------------------------------------------
def test_summarize_matches_numpy_and_scipy():
    x = np.random.default_rng(0).gamma(2.0, 1.5, size=1001)
    out = summarize(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(out["mean"], np.mean(x), rtol=1e-5)
    np.testing.assert_allclose(out["median"], np.median(x), rtol=1e-5)
    np.testing.assert_allclose(out["std"], np.std(x), rtol=1e-5)
    np.testing.assert_allclose(out["min"], np.min(x), rtol=1e-6)
    np.testing.assert_allclose(out["max"], np.max(x), rtol=1e-6)
    for q, name in zip((0.05, 0.25, 0.75, 0.95, 0.99), ("q05", "q25", "q75", "q95", "q99")):
        np.testing.assert_allclose(out[name], np.quantile(x, q), rtol=1e-5)
    np.testing.assert_allclose(out["skewness"], scipy.stats.skew(x), rtol=1e-4)
    np.testing.assert_allclose(out["kurtosis"], scipy.stats.kurtosis(x), rtol=1e-4)
    const = summarize(jnp.full((5,), 0.1))
    assert np.isnan(const["skewness"]) and np.isnan(const["kurtosis"])
    with pytest.raises(ValueError, match="empty"):
        summarize(jnp.zeros((0,)))


# ---- sharpness --------------------------------------------------------------------------
def quadratic_return(theta0):
    """J(theta) = -||theta_mean - theta0||^2: at theta0 the expected drop under absolute
    noise of scale s is exactly s^2 * num_params."""

    def return_fn(params, key):
        del key
        sq = jax.tree.map(lambda a, b: jnp.sum((a - b) ** 2), params["mean_net"], theta0)
        return -sum(jax.tree.leaves(sq))

    return return_fn


def test_sharpness_on_a_quadratic_return(key):
    params = random_params(SMALL, 10)
    n = sum(x.size for x in jax.tree.leaves(params["mean_net"]))
    assert n == 2 * 3 + 3 + 3 * 2 + 2 + 2 * 1 + 1
    return_fn = quadratic_return(params["mean_net"])
    sigmas = [0.4, 0.05, 0.8, 0.1, 0.2]  # unsorted on purpose
    tolerance = 1.5  # crossing at sqrt(1.5 / 20) = 0.27, between 0.2 and 0.4
    run = jax.jit(lambda p, k, tol: sharpness(SMALL, p, return_fn, k, sigmas, 256, tol))  # tol traced
    out = run(params, key, tolerance)
    np.testing.assert_allclose(out["sigmas"], sorted(sigmas))
    expected = np.asarray(sorted(sigmas)) ** 2 * n
    assert float(out["base_return"]) == 0.0
    assert np.all(np.abs(out["drop"] - expected) < 4.0 * out["drop_stderr"]), (out["drop"], expected)
    # common random numbers: one noise draw for every sigma, so drop / sigma^2 is one number
    ratio = np.asarray(out["drop"]) / np.asarray(out["sigmas"]) ** 2
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    assert float(out["largest_sigma"]) == pytest.approx(0.2)
    assert float(out["largest_sigma_upper"]) == pytest.approx(0.4)
    assert bool(out["bracketed"])

    flat = run(params, key, 100.0)
    assert float(flat["largest_sigma"]) == pytest.approx(0.8) and not bool(flat["bracketed"])
    assert np.isinf(flat["largest_sigma_upper"])
    sharp = run(params, key, 1e-3)
    assert float(sharp["largest_sigma"]) == 0.0 and float(sharp["largest_sigma_upper"]) == pytest.approx(0.05)

    refined = jax.jit(
        lambda p, k: sharpness_bisection(SMALL, p, return_fn, k, 0.2, 0.4, 256, tolerance, num_iterations=14)
    )(params, key)
    assert bool(refined["valid_bracket"])
    assert float(refined["sigma_high"] - refined["sigma"]) < 0.2 / 2**13
    assert float(refined["drop"]) <= tolerance
    # the same noise as `sharpness`: the crossing of drop(s) = s^2 * ratio
    np.testing.assert_allclose(refined["sigma"], np.sqrt(tolerance / ratio[0]), rtol=1e-3)
    np.testing.assert_allclose(refined["sigma"], np.sqrt(tolerance / n), rtol=0.05)
    # as the robustness study calls it: from 0, with the upper end and the tolerance traced
    from_zero = jax.jit(lambda p, k, hi, tol: sharpness_bisection(SMALL, p, return_fn, k, 0.0, hi, 256, tol,
                                                                  num_iterations=20))(params, key, 0.8, tolerance)
    assert bool(from_zero["valid_bracket"])
    np.testing.assert_allclose(from_zero["sigma"], refined["sigma"], rtol=1e-4)


def test_magnitude_aware_sharpness_on_a_quadratic_return(key):
    params = random_params(SMALL, 10)
    w_sq = sum(float(jnp.sum(x**2)) for x in jax.tree.leaves(params["mean_net"]))
    n = sum(x.size for x in jax.tree.leaves(params["mean_net"]))
    return_fn = quadratic_return(params["mean_net"])
    sigmas = np.array([0.1, 0.3])
    run = jax.jit(lambda floor: sharpness(SMALL, params, return_fn, key, sigmas, 512, 1.0,
                                          perturbation="magnitude", magnitude_floor=floor))
    for floor in (0.0, 0.05):
        out = run(floor)
        expected = sigmas**2 * w_sq + n * floor**2  # E[eps_i^2] = s^2 w_i^2 + floor^2
        assert np.all(np.abs(out["drop"] - expected) < 4.0 * out["drop_stderr"]), (floor, out["drop"], expected)


def test_sharpness_vmaps_over_a_stack_of_policies(key):
    def return_fn(params, key):  # -||theta||^2
        return -sum(jnp.sum(x**2) for x in jax.tree.leaves(params["mean_net"]))

    def drop(p):
        return sharpness(SMALL, p, return_fn, key, [0.1, 0.3], 16, 0.5)["drop"]

    batched = jax.jit(jax.vmap(drop))(stacked_params(SMALL, range(3)))
    one = jax.jit(drop)
    for i in range(3):
        np.testing.assert_allclose(batched[i], one(random_params(SMALL, i)), rtol=1e-5)


def test_sharpness_of_the_optimal_policy_of_a_probe_env(key):
    """probe_obs_action: obs = +-1, one step, reward -(a - obs / 2)^2. The linear policy
    a = obs / 2 earns 0; perturbed by (eps_w, eps_b) it earns -(eps_w obs + eps_b)^2, so
    with obs^2 = 1 the expected drop under absolute noise is exactly 2 sigma^2."""
    env, env_params = make("probe_obs_action")
    policy = GaussianPolicy(obs_dim=1, action_dim=1, hidden_sizes=(), normalize_observations=False)
    params = random_params(policy, 0)
    params["mean_net"] = {"Dense_0": {"kernel": jnp.full((1, 1), 0.5), "bias": jnp.zeros(1)}}

    def return_fn(p, k):
        return jnp.mean(episode_returns(policy, p, env, env_params, k, num_episodes=8, num_steps=1))

    sigmas = jnp.asarray([0.0, 0.05, 0.1])
    out = jax.jit(lambda p: sharpness(policy, p, return_fn, key, sigmas, num_samples=512, tolerance=0.01))(params)
    assert float(out["base_return"]) == pytest.approx(0.0, abs=1e-7)
    assert float(out["drop"][0]) == pytest.approx(0.0, abs=1e-7)  # sigma = 0: the same policy, the same key
    expected = 2.0 * np.asarray(sigmas) ** 2
    assert np.all(np.abs(out["drop"] - expected) <= 4.0 * out["drop_stderr"]), (out["drop"], expected)
    assert float(out["largest_sigma"]) == pytest.approx(0.05)  # 2 * 0.05^2 = 0.005 <= 0.01 < 0.02


def test_measures_of_an_initialised_policy_on_visited_observations(key):
    from entrolab.rollout import rollout

    env, env_params = make("lorenz")
    policy = GaussianPolicy(obs_dim=3, action_dim=3, hidden_sizes=(8,))
    params = jax.jit(policy.init)(key)
    assert jax.tree.structure(params) == jax.tree.structure(random_params(policy, 0))  # the helper's layout

    def act(k, obs, state):
        return policy.stochastic_action(k, params, obs)

    traj = jax.jit(lambda k: rollout(env, env_params, act, k, 20))(key)
    fisher = fisher_trace_jit(policy, params, traj.obs)
    lip = empirical_lipschitz_jit(policy, params, traj.obs)
    assert fisher["total"].shape == (20,) and np.all(np.asarray(fisher["total"]) >= 2.0 * 3)
    assert all(np.isfinite(float(v)) for v in lip.values())
    assert all(np.isfinite(float(v)) for v in summarize(fisher["total"]).values())
    # at initialisation the output layer is orthogonal with gain 0.01: a near-constant mean
    assert float(norm_measures(params)["spectral_norm_layer1"]) == pytest.approx(0.01, rel=1e-3)


# ---- bad input --------------------------------------------------------------------------
def test_bad_input_raises_clear_errors(key):
    params = random_params(MEDIUM, 0)
    obs = jnp.zeros((4, 3))
    with pytest.raises(ValueError, match="empty"):
        fisher_trace(MEDIUM, params, jnp.zeros((0, 3)))
    with pytest.raises(ValueError, match="empty"):
        empirical_lipschitz(MEDIUM, params, jnp.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        empirical_lipschitz(MEDIUM, params, jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        fisher_trace(MEDIUM, params, jnp.zeros(3))
    with pytest.raises(ValueError, match="log_std"):
        fisher_trace(GaussianPolicy(obs_dim=3, action_dim=3, hidden_sizes=(8, 8)), params, obs)
    with pytest.raises(ValueError, match="Dense layers"):
        fisher_trace(LINEAR, params, obs)
    with pytest.raises(ValueError, match="batch_size"):
        fisher_trace(MEDIUM, params, obs, batch_size=0)
    with pytest.raises(ValueError, match="num_samples"):
        fisher_trace_monte_carlo(MEDIUM, params, obs, key, num_samples=1)
    return_fn = quadratic_return(params["mean_net"])
    with pytest.raises(ValueError, match="sigmas"):
        sharpness(MEDIUM, params, return_fn, key, [0.1, -0.1], 8, 1.0)
    with pytest.raises(ValueError, match="sigmas"):
        sharpness(MEDIUM, params, return_fn, key, [], 8, 1.0)
    with pytest.raises(ValueError, match="tolerance"):
        sharpness(MEDIUM, params, return_fn, key, [0.1], 8, 0.0)
    with pytest.raises(ValueError, match="num_samples"):
        sharpness(MEDIUM, params, return_fn, key, [0.1], 1, 1.0)
    with pytest.raises(ValueError, match="num_samples"):
        sharpness(MEDIUM, params, return_fn, key, [0.1], 8.0, 1.0)
    with pytest.raises(ValueError, match="perturbation"):
        sharpness(MEDIUM, params, return_fn, key, [0.1], 8, 1.0, perturbation="relative")
    with pytest.raises(ValueError, match="sigma_low < sigma_high"):
        sharpness_bisection(MEDIUM, params, return_fn, key, 0.3, 0.1, 8, 1.0)


# ---- worst-case observation perturbations -------------------------------------------------
def test_attack_finds_the_analytic_worst_case_of_a_linear_policy():
    """mu = W^T n(o) + b with n(o) = (o - m) / sqrt(v + 1e-8) (unclipped here): the largest deviation
    over ||delta||_2 <= eps is eps times the largest singular value of W^T diag(1/sqrt(v + 1e-8)),
    reached along its top right singular vector (NumPy's SVD, independent of the attack)."""
    from entrolab.measures.adversarial import random_action_deviation, worst_case_action_deviation

    params = random_params(LINEAR, 5)
    obs = observations(6, 3, scale=0.3)
    eps = 0.05
    w = np.asarray(params["mean_net"]["Dense_0"]["kernel"], np.float64)
    jac = w.T / np.sqrt(np.asarray(params["obs_norm"]["var"], np.float64) + 1e-8)
    _, svals, vt = np.linalg.svd(jac)
    # fixed steps of 0.2 eps: at the optimum the gradient is radial, so projection keeps the point
    attack = jax.jit(lambda p, o, k: worst_case_action_deviation(LINEAR, p, o, eps, k, num_steps=300,
                                                                step_size=0.2 * eps))
    out = attack(params, obs, jax.random.key(0))
    np.testing.assert_allclose(out["deviation"], eps * svals[0], rtol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(out["delta"], axis=1), eps, rtol=1e-4)
    cos = np.abs(np.asarray(out["delta"], np.float64) @ vt[0]) / eps
    np.testing.assert_allclose(cos, 1.0, atol=1e-3)
    # random directions of the same norm do worse: their mean is eps E||J u|| < eps sigma_max
    rand = random_action_deviation(LINEAR, params, obs, eps, jax.random.key(1), num_samples=256)
    assert np.all(np.asarray(rand) < 0.95 * np.asarray(out["deviation"]))


def test_attack_beats_random_perturbations_on_a_network_and_checks_its_input():
    from entrolab.measures.adversarial import random_action_deviation, worst_case_action_deviation

    policy = GaussianPolicy(obs_dim=3, action_dim=2, hidden_sizes=(16, 16))
    params = random_params(policy, 6)
    obs = observations(8, 3, scale=0.5)
    out = worst_case_action_deviation(policy, params, obs, 0.1, jax.random.key(2))
    rand = random_action_deviation(policy, params, obs, 0.1, jax.random.key(3), num_samples=64)
    assert np.all(np.linalg.norm(np.asarray(out["delta"]), axis=1) <= 0.1 * (1 + 1e-5))
    assert np.all(np.asarray(out["deviation"]) >= np.asarray(rand))
    assert float(np.mean(out["deviation"])) > 1.2 * float(np.mean(rand))
    with pytest.raises(ValueError, match="epsilon"):
        worst_case_action_deviation(policy, params, obs, 0.0, jax.random.key(0))
    with pytest.raises(ValueError, match="num_steps"):
        worst_case_action_deviation(policy, params, obs, 0.1, jax.random.key(0), num_steps=0)


def test_simulator_attack_finds_the_analytic_worst_case_on_a_one_step_probe():
    """probe_obs_action, one step: cost(delta) = (mu(o + delta) - 0.5 o)^2 with an affine mean in 1-D, a
    convex parabola in delta, so its maximum over [-eps, eps] is at an endpoint: (|v| + |w| eps)^2 with
    v = mu(o) - 0.5 o and w = d mu / d o (computed here by hand from the params)."""
    from entrolab.envs import make
    from entrolab.measures.adversarial import simulator_attack

    env, env_params = make("probe_obs_action", max_steps_in_episode=2)
    policy = GaussianPolicy(obs_dim=1, action_dim=1, hidden_sizes=(), normalize_observations=False)
    params = random_params(policy, 3)
    params["mean_net"]["Dense_0"]["kernel"] = jnp.array([[0.3]])
    params["mean_net"]["Dense_0"]["bias"] = jnp.array([0.1])
    _, state = env.reset(jax.random.key(0), env_params)
    states = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), state)
    states = states.replace(x=jnp.array([[1.0], [-1.0]]))
    eps = 0.4
    out = jax.jit(lambda p, s, k: simulator_attack(policy, p, env, env_params, s, eps, 1, k, num_steps=20))(
        params, states, jax.random.key(1))
    o = np.array([1.0, -1.0])
    v = 0.3 * o + 0.1 - 0.5 * o
    np.testing.assert_allclose(out["clean"], v**2, rtol=1e-5)
    np.testing.assert_allclose(out["worst"], (np.abs(v) + 0.3 * eps) ** 2, rtol=1e-4)
    np.testing.assert_allclose(np.abs(np.asarray(out["delta"])[:, 0, 0]), eps, rtol=1e-4)
    # random directions in 1-D are +-eps with equal chance: the mean of the two endpoint costs, in expectation
    assert np.all(np.asarray(out["random"]) < np.asarray(out["worst"]))
    # the greedy attack maximises |mu(o + delta) - mu(o)|, reached at both endpoints: not the worst cost
    assert np.all(np.asarray(out["greedy"]) <= np.asarray(out["worst"]) + 1e-6)
    with pytest.raises(ValueError, match="shorter than the episode"):
        simulator_attack(policy, params, env, env_params, states, eps, 2, jax.random.key(1))


@pytest.mark.slow  # the one-step probe above is exact; tests/test_robustness.py runs the attack on Lorenz
def test_simulator_attack_on_lorenz_beats_random_and_greedy_and_its_clean_cost_is_a_plain_rollout():
    from entrolab.envs import make
    from entrolab.measures.adversarial import simulator_attack

    env, env_params = make("lorenz", max_steps_in_episode=50)
    policy = GaussianPolicy(obs_dim=3, action_dim=3, hidden_sizes=(16,))
    params = random_params(policy, 4)
    keys = jax.random.split(jax.random.key(5), 3)
    states = jax.vmap(lambda k: env.reset(k, env_params)[1])(keys)
    horizon, eps = 5, 0.5
    out = jax.jit(lambda p, s, k: simulator_attack(policy, p, env, env_params, s, eps, horizon, k, num_steps=15))(
        params, states, jax.random.key(2))
    # the clean cost by an independent Python loop over env.step
    for i in range(3):
        state = jax.tree_util.tree_map(lambda a: a[i], states)
        obs, total = env.observe(state, env_params), 0.0
        for _ in range(horizon):
            a = jnp.clip(policy.deterministic_action(params, obs), -1, 1)
            obs, state, r, *_ = env.step(jax.random.key(0), state, a, env_params)
            total -= float(r)
        np.testing.assert_allclose(out["clean"][i], total, rtol=1e-4)
    worst, clean = np.asarray(out["worst"]), np.asarray(out["clean"])
    assert np.all(worst > clean) and np.all(worst > np.asarray(out["random"]))
    assert np.all(worst >= np.asarray(out["greedy"]) - 1e-4)
    assert np.all(np.linalg.norm(np.asarray(out["delta"]), axis=-1) <= eps * (1 + 1e-5))


@pytest.mark.slow  # ~16 s (default-suite budget)
def test_attacked_episodes_pair_with_clean_ones_and_match_the_analytic_cost_on_a_probe():
    """On probe_obs_action the policy mu(o) = 0.5 o is optimal (clean return 0) and any observation shift
    delta costs (0.5 delta)^2; the per-state attack uses the whole budget (|delta| = eps), so every
    attacked episode returns -(0.5 eps)^2. On Lorenz, attack "none" is `episode_returns` itself."""
    from entrolab.agents.evaluate import episode_returns
    from entrolab.envs import make
    from entrolab.measures.adversarial import attacked_episode_returns

    env, env_params = make("probe_obs_action")
    policy = GaussianPolicy(obs_dim=1, action_dim=1, hidden_sizes=(), normalize_observations=False)
    params = random_params(policy, 3)
    params["mean_net"]["Dense_0"]["kernel"] = jnp.array([[0.5]])
    params["mean_net"]["Dense_0"]["bias"] = jnp.array([0.0])
    key = jax.random.key(3)
    for attack, expected in [("none", 0.0), ("worst", -(0.5 * 0.2) ** 2), ("random", -(0.5 * 0.2) ** 2)]:
        got = attacked_episode_returns(policy, params, env, env_params, key, 8, 1, 0.2, attack)
        np.testing.assert_allclose(got, expected, atol=1e-6)

    env, env_params = make("lorenz", max_steps_in_episode=10)
    policy = GaussianPolicy(obs_dim=3, action_dim=3, hidden_sizes=(8,))
    params = random_params(policy, 7)
    run = jax.jit(lambda p, attack, eps: attacked_episode_returns(policy, p, env, env_params, key, 3, 10, eps,
                                                                  attack, attack_steps=3), static_argnums=1)
    clean = np.asarray(run(params, "none", 1.0))
    np.testing.assert_array_equal(clean, episode_returns(policy, params, env, env_params, key, 3, 10, True))
    assert np.all(np.asarray(run(params, "worst", 1.0)) != clean)
    # an attack of a vanishing budget changes nothing measurable
    np.testing.assert_allclose(run(params, "worst", 1e-6), clean, rtol=1e-3)
    with pytest.raises(ValueError, match="attack must be one of"):
        attacked_episode_returns(policy, params, env, env_params, key, 2, 10, 1.0, "strongest")

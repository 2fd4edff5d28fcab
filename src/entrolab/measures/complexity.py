"""Complexity measures of a trained Gaussian policy's mean network, in JAX.

Every measure is a pure function of `(policy, params, data)` returning a flat
dict of arrays (a pandas row once converted), so it `jit`s and `vmap`s over a
stack of policies (`jax.vmap(norm_measures)(stacked_params)`).

Notation. The mean network of `GaussianPolicy` is an MLP

    h_0 = x,   h_{l+1} = phi(W_l^T h_l + b_l)  (l < L - 1),   mu = W_{L-1}^T h_{L-1} + b_{L-1},

with kernels W_l of shape (in, out) (flax's layout), biases b_l (out,) and
activation phi. Its input x = n(s) is the *normalised* observation
n(s) = clip((s - m) / sqrt(v + 1e-8), -10, 10) (m, v = params["obs_norm"]);
measures "w.r.t. the raw observation" include n.

Measures (Jiang et al. 2020, "Fantastic generalization measures and where to
find them", ICLR, appendix C, are the reference for the definitions):

* `norm_measures`: spectral and Frobenius norms per layer and their products,
  the sum of squared Frobenius norms, the distance from initialisation and
  the path norm (Neyshabur, Tomioka & Srebro 2015, "Norm-based capacity
  control in neural networks", COLT).
* `empirical_lipschitz`: the spectral norm of the input Jacobian d mu / d s
  on visited observations (max and mean), w.r.t. the raw and the normalised
  observation.
* `sharpness`, `sharpness_bisection`: PAC-Bayes sharpness: the largest
  perturbation scale sigma' whose expected drop in return stays below a
  tolerance (Jiang et al. 2020, PAC-Bayesian sharpness and its
  magnitude-aware variant; after Keskar et al. 2017 and Neyshabur et al. 2017).

Only the mean network enters (and, for sharpness, is perturbed): the log-std
and the observation-normalisation statistics are left out. The latter are not
trained by gradient descent; the former is a separate, state-independent
parameter whose size is reported by the policy entropy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from entrolab.agents.policy import GaussianPolicy

ReturnFn = Callable[[dict, jax.Array], jax.Array]
PERTURBATIONS = ("absolute", "magnitude")

_DENSE = re.compile(r"^Dense_(\d+)$")


# ---- helpers ------------------------------------------------------------------
def _mean_net(params: dict) -> dict:
    """The mean-network parameters, from full policy params or the mean net itself."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict of policy or mean-network parameters, "
                         f"got {type(params).__name__}")
    return params["mean_net"] if "mean_net" in params else params


def _check_policy_params(policy: GaussianPolicy, params: dict) -> None:
    # a state-dependent std (`ImportedGaussianPolicy`: SAC's actors) is a head on the mean
    # network's last hidden layer, {"log_std_net"}, instead of the parameter {"log_std"}
    std_key = "log_std_net" if getattr(policy, "state_dependent_std", False) else "log_std"
    if not isinstance(params, Mapping) or "mean_net" not in params or std_key not in params:
        raise ValueError(f"params must be the policy parameters {{'mean_net', '{std_key}', 'obs_norm'}}")
    if std_key == "log_std" and jnp.shape(params["log_std"])[-1:] != (policy.action_dim,):
        raise ValueError(f"params['log_std'] has shape {jnp.shape(params['log_std'])}, "
                         f"expected ({policy.action_dim},)")
    layers = dense_layers(params)
    if len(layers) != len(policy.hidden_sizes) + 1:
        raise ValueError(f"the mean network has {len(layers)} Dense layers, the policy expects "
                         f"{len(policy.hidden_sizes) + 1}")


def _check_observations(policy: GaussianPolicy, observations: jax.Array) -> jax.Array:
    """Observations as an (N, obs_dim) array with N >= 1 (shapes are static, so this is jit-safe)."""
    observations = jnp.asarray(observations)
    if observations.ndim != 2 or observations.shape[-1] != policy.obs_dim:
        raise ValueError(f"observations must have shape (N, {policy.obs_dim}), got {observations.shape}")
    if observations.shape[0] == 0:
        raise ValueError("observations is empty: need at least one observation")
    return observations


def _concrete(x) -> np.ndarray | None:
    """x as a numpy array if its value is known now (not traced under jit/vmap), else None."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _is_int(n) -> bool:
    """A static integer (a count that sets a shape or a loop length), bools excluded."""
    return isinstance(n, int | np.integer) and not isinstance(n, bool)


def _map(f: Callable, xs, batch_size: int | None):
    """vmap f over the leading axis, or `lax.map` in chunks of `batch_size` (bounded memory)."""
    if batch_size is None:
        return jax.vmap(f)(xs)
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size}")
    return jax.lax.map(f, xs, batch_size=batch_size)


# ---- norms --------------------------------------------------------------------
def dense_layers(params: dict) -> list[tuple[jax.Array, jax.Array]]:
    """[(W_0, b_0), ..., (W_{L-1}, b_{L-1})] of the mean network, input to output.

    Accepts the full policy parameters (uses params["mean_net"]) or the
    mean-network parameters themselves. Layers are ordered by the integer in
    flax's "Dense_<i>" names (numerically, so Dense_10 follows Dense_9).
    Kernels have flax's (in, out) layout.
    """
    net = _mean_net(params)
    names = [name for name in net if _DENSE.match(name)]
    if not names:
        raise ValueError(f"no 'Dense_<i>' layers in the mean-network parameters (keys: {sorted(net)})")
    names.sort(key=lambda name: int(_DENSE.match(name).group(1)))
    return [(net[name]["kernel"], net[name]["bias"]) for name in names]


def path_norm_squared(params: dict, include_bias: bool = True) -> jax.Array:
    """Sum over paths of the product of the squared weights along the path.

    One forward pass of the all-ones input through the network with every
    parameter squared and the identity activation:

        g_0 = 1,   g_{l+1} = (W_l o W_l)^T g_l + (b_l o b_l),   result = sum_j g_L[j].

    Expanding the recursion, sum_j g_L[j] is the sum, over every path from an
    input unit to an output unit, of prod_edges w_e^2 (Neyshabur et al. 2015,
    the l2 path norm squared); with `include_bias`, each bias b_l[j] is an
    edge from a constant unit into layer l + 1, so paths may also start at a
    bias (Jiang et al. 2020's path norm, sum_i f_{w^2}(1)[i]).
    """
    layers = dense_layers(params)
    g = jnp.ones(layers[0][0].shape[0], layers[0][0].dtype)
    for kernel, bias in layers:
        g = g @ kernel**2
        if include_bias:
            g = g + bias**2
    return jnp.sum(g)


def norm_measures(params: dict, init_params: dict | None = None) -> dict[str, jax.Array]:
    """Norm-based complexity measures of the mean network, a flat dict of scalars.

    With ||.||_2 the spectral norm (largest singular value) and ||.||_F the
    Frobenius norm of the kernels W_l, l = 0 .. L-1:

    - "spectral_norm_layer{l}" = ||W_l||_2. Computed exactly by
      `jnp.linalg.norm(W, ord=2)` (an SVD without singular vectors), not by
      power iteration: the kernels are small (64 x 64), the exact value needs
      no iteration count, no key and no convergence check, and it `vmap`s.
    - "spectral_product" = prod_l ||W_l||_2. An upper bound on the Lipschitz
      constant (l2 -> l2) of the mean network w.r.t. the *normalised*
      observation, valid when the activation is 1-Lipschitz (tanh, relu; for
      gelu, with Lipschitz constant ~1.13, or silu, ~1.10, multiply by
      c^(L-1)). Biases do not enter. W.r.t. the raw observation multiply by
      max_j 1 / sqrt(v_j + 1e-8) (the clip is 1-Lipschitz); see
      `empirical_lipschitz`.
    - "frobenius_norm_layer{l}" = ||W_l||_F, "frobenius_product" =
      prod_l ||W_l||_F, "frobenius_sq_sum" = sum_l ||W_l||_F^2.
    - "path_norm" = sqrt(`path_norm_squared(params, include_bias=True)`): the
      l2 path norm with biases as edges from constant units, as Jiang et al.
      (2020); "path_norm_no_bias" = the same over input-output paths only,
      the l2 path norm of Neyshabur et al. (2015).
    - with `init_params` (the parameters at initialisation, same structure):
      "dist_from_init" = sqrt(sum_l ||W_l - W_l^0||_F^2), kernels only (Jiang
      et al. 2020's "dist. from init." is over the weights; the zero-initialised
      biases are left out), and "dist_from_init_with_bias" = the same with
      sum_l ||b_l - b_l^0||^2 added: the Euclidean distance of the whole mean
      network from its initialisation.

    Args:
        params: policy parameters (or the mean-network parameters).
        init_params: the parameters at initialisation, e.g.
            `LoadedPolicy.arrays["init_policy"]`, or None.
    """
    layers = dense_layers(params)
    out: dict[str, jax.Array] = {}
    spectral = [jnp.linalg.norm(kernel, ord=2) for kernel, _ in layers]
    frobenius = [jnp.linalg.norm(kernel) for kernel, _ in layers]
    for l, (s, f) in enumerate(zip(spectral, frobenius, strict=True)):
        out[f"spectral_norm_layer{l}"] = s
        out[f"frobenius_norm_layer{l}"] = f
    out["spectral_product"] = jnp.prod(jnp.stack(spectral))
    out["frobenius_product"] = jnp.prod(jnp.stack(frobenius))
    out["frobenius_sq_sum"] = sum(jnp.sum(kernel**2) for kernel, _ in layers)
    out["path_norm"] = jnp.sqrt(path_norm_squared(params, include_bias=True))
    out["path_norm_no_bias"] = jnp.sqrt(path_norm_squared(params, include_bias=False))
    if init_params is not None:
        init_layers = dense_layers(init_params)
        if len(init_layers) != len(layers) or any(
            jnp.shape(k) != jnp.shape(k0) or jnp.shape(b) != jnp.shape(b0)
            for (k, b), (k0, b0) in zip(layers, init_layers, strict=True)
        ):
            raise ValueError("init_params does not have the structure of params")
        kernel_sq = sum(jnp.sum((k - k0) ** 2) for (k, _), (k0, _) in zip(layers, init_layers, strict=True))
        bias_sq = sum(jnp.sum((b - b0) ** 2) for (_, b), (_, b0) in zip(layers, init_layers, strict=True))
        out["dist_from_init"] = jnp.sqrt(kernel_sq)
        out["dist_from_init_with_bias"] = jnp.sqrt(kernel_sq + bias_sq)
    return out


# ---- empirical Lipschitz constant -----------------------------------------------
def observation_scale(policy: GaussianPolicy, params: dict) -> jax.Array:
    """max_j 1 / sqrt(v_j + 1e-8): the Lipschitz constant of the observation normalisation.

    1 when the policy does not normalise observations. The clip to [-10, 10]
    is 1-Lipschitz, so ||d mu / d s|| <= observation_scale * ||d mu / d x||.
    """
    if not policy.normalize_observations:
        return jnp.ones((), jnp.result_type(dense_layers(params)[0][0]))
    return jnp.max(1.0 / jnp.sqrt(params["obs_norm"]["var"] + 1e-8))


def jacobian_spectral_norms(
    policy: GaussianPolicy, params: dict, observations: jax.Array, batch_size: int | None = None
) -> tuple[jax.Array, jax.Array]:
    """Per-observation spectral norms of the mean's input Jacobian, each shape (N,).

    Returns (raw, normalised):
      raw[k]        = || d mu / d s (s_k) ||_2, s the raw observation (normalisation included);
      normalised[k] = || d mu / d x (n(s_k)) ||_2, x the normalised observation.

    Jacobians by `jax.jacfwd` (obs_dim forward passes; obs_dim is small),
    (action_dim, obs_dim) each, `vmap`ped over observations (or `lax.map` in
    chunks of `batch_size`). At an observation whose coordinate j is clipped
    by the normalisation (|x_j| > 10) the raw Jacobian's column j is zero.
    """
    _check_policy_params(policy, params)
    observations = _check_observations(policy, observations)

    def norms(obs):
        raw = jax.jacfwd(lambda s: policy.apply(params, s)[0])(obs)
        normalised = jax.jacfwd(lambda x: policy.apply_normalized(params, x)[0])(policy.normalize(params, obs))
        return jnp.linalg.norm(raw, ord=2), jnp.linalg.norm(normalised, ord=2)

    return _map(norms, observations, batch_size)


def empirical_lipschitz(
    policy: GaussianPolicy, params: dict, observations: jax.Array, batch_size: int | None = None
) -> dict[str, jax.Array]:
    """Max and mean over observations of the spectral norm of the mean's input Jacobian.

    Keys:
      "lipschitz_max", "lipschitz_mean": of ||d mu / d s||_2 w.r.t. the raw
          observation s (the normalisation n is part of the policy);
      "lipschitz_normalized_max", "lipschitz_normalized_mean": of
          ||d mu / d x||_2 at x = n(s), w.r.t. the normalised observation
          (what `norm_measures`'s "spectral_product" bounds for 1-Lipschitz
          activations);
      "observation_scale": max_j 1 / sqrt(v_j + 1e-8) (1 without
          normalisation), so that lipschitz_max <= observation_scale *
          lipschitz_normalized_max <= observation_scale * spectral_product.

    The max over visited states is a lower bound on the Lipschitz constant on
    the region they cover (Jiang et al. 2020 call the related input-gradient
    measures "sharpness in input space"); `observations` (N, obs_dim), raw,
    e.g. `rollout(...).obs` flattened over time and episodes.
    """
    raw, normalised = jacobian_spectral_norms(policy, params, observations, batch_size)
    return {
        "lipschitz_max": jnp.max(raw),
        "lipschitz_mean": jnp.mean(raw),
        "lipschitz_normalized_max": jnp.max(normalised),
        "lipschitz_normalized_mean": jnp.mean(normalised),
        "observation_scale": observation_scale(policy, params),
    }


# ---- sharpness ----------------------------------------------------------------
def _check_sharpness_args(num_samples: int, tolerance, perturbation: str, magnitude_floor: float) -> None:
    if not _is_int(num_samples) or num_samples < 2:
        raise ValueError(f"num_samples must be an integer >= 2 (for a standard error), got {num_samples}")
    tol = _concrete(tolerance)
    if tol is not None and not (np.all(np.isfinite(tol)) and np.all(tol > 0)):
        raise ValueError(f"tolerance must be positive and finite, got {tol}")
    if perturbation not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {perturbation!r}")
    floor = _concrete(magnitude_floor)
    if floor is not None and not (np.isfinite(floor) and floor >= 0):
        raise ValueError(f"magnitude_floor must be finite and >= 0, got {floor}")


def _standard_noise(key: jax.Array, tree: dict, num_samples: int) -> dict:
    """i.i.d. N(0, 1) with the structure of `tree` and a leading (num_samples,) axis.

    One draw of a flat (num_samples, num_params) array, then unravelled: a
    single random-number kernel compiles several times faster than one per leaf.
    """
    flat, unravel = ravel_pytree(tree)
    return jax.vmap(unravel)(jax.random.normal(key, (num_samples, flat.size), flat.dtype))


def _perturbed_returns(params, return_fn, noise, eval_key, sigma, perturbation, magnitude_floor) -> jax.Array:
    """return_fn(theta + eps_i, eval_key) for each noise sample i, shape (num_samples,)."""
    net = params["mean_net"]

    def one(z):
        if perturbation == "absolute":
            eps = jax.tree.map(lambda zi: sigma * zi, z)
        else:
            eps = jax.tree.map(lambda zi, w: zi * jnp.sqrt(sigma**2 * w**2 + magnitude_floor**2), z, net)
        perturbed = jax.tree.map(jnp.add, net, eps)
        return return_fn({**params, "mean_net": perturbed}, eval_key)

    return jax.vmap(one)(noise)


def sharpness(
    policy: GaussianPolicy,
    params: dict,
    return_fn: ReturnFn,
    key: jax.Array,
    sigmas: Sequence[float] | jax.Array,
    num_samples: int,
    tolerance: float,
    perturbation: str = "absolute",
    magnitude_floor: float = 1e-3,
) -> dict[str, jax.Array]:
    """PAC-Bayes sharpness: expected drop in return under random weight noise.

    For each scale sigma' in `sigmas` the mean-network parameters theta
    (kernels and biases; log-std and normalisation statistics untouched) are
    perturbed, theta + eps, and the expected drop

        D(sigma') = J(theta) - E_eps[J(theta + eps)]

    is estimated from `num_samples` perturbations, J = `return_fn`. Noise:

    - perturbation="absolute" (default; Jiang et al. 2020's PAC-Bayes sharpness):
      eps_i ~ N(0, sigma'^2), the same scale for every parameter;
    - perturbation="magnitude" (Jiang et al. 2020's magnitude-aware variant):
      eps_i ~ N(0, sigma'^2 w_i^2 + floor^2), floor = `magnitude_floor`
      (1e-3 as Jiang et al.), so the perturbation is relative to each weight
      and invariant to rescaling layers.

    "largest_sigma" is the largest sigma' of the grid up to which every
    D(sigma') <= tolerance (the grid is sorted first). "largest_sigma_upper"
    is the next grid point (the first to exceed the tolerance; inf if none
    did), so [largest_sigma, largest_sigma_upper] brackets the crossing for
    `sharpness_bisection`; "bracketed" says whether some grid point exceeded
    it (if not, largest_sigma is only a lower bound). largest_sigma is 0 if
    the smallest sigma' already exceeds the tolerance. Smaller means sharper.

    Variance reduction (common random numbers): one standard-normal draw z
    per sample is shared by all sigma' (eps = sigma' z), so D(sigma') is a
    smooth function of sigma' rather than independent noise per grid point;
    and every call of `return_fn`, at theta and at each theta + eps, gets the
    same `eval_key`, so the environment's randomness (initial states) is the
    same for the perturbed and unperturbed policy -- the analogue of
    Jiang et al.'s fixed training set. Perturbations are `vmap`ped
    (num_sigmas x num_samples calls of `return_fn` in one program).

    Args:
        return_fn: `(policy_params, key) -> scalar` mean return, jittable and
            vmappable, e.g. `lambda p, k: episode_returns(policy, p, env,
            env_params, k, 16, 200).mean()`.
        key: split into the perturbation key and the evaluation key.
        sigmas: perturbation scales, >= 0, shape (num_sigmas,).
        num_samples: perturbations per scale, >= 2.
        tolerance: the allowed expected drop in return, > 0.

    Returns a dict: "sigmas" (num_sigmas,) sorted; "base_return" J(theta);
    "perturbed_return" (num_sigmas,) the mean of J(theta + eps); "drop"
    (num_sigmas,) = base_return - perturbed_return; "drop_stderr"
    (num_sigmas,) the standard error of the mean perturbed return (ddof 1;
    base_return is fixed by eval_key); "largest_sigma", "largest_sigma_upper",
    "bracketed" (scalars).
    """
    _check_policy_params(policy, params)
    _check_sharpness_args(num_samples, tolerance, perturbation, magnitude_floor)
    sigmas = jnp.atleast_1d(jnp.asarray(sigmas, jnp.result_type(float)))
    if sigmas.ndim != 1 or sigmas.shape[0] == 0:
        raise ValueError(f"sigmas must be a non-empty 1-d sequence, got shape {sigmas.shape}")
    concrete = _concrete(sigmas)
    if concrete is not None and not (np.all(np.isfinite(concrete)) and np.all(concrete >= 0)):
        raise ValueError(f"sigmas must be finite and >= 0, got {concrete}")
    sigmas = jnp.sort(sigmas)
    key_noise, key_eval = jax.random.split(key)
    noise = _standard_noise(key_noise, params["mean_net"], num_samples)

    base = return_fn(params, key_eval)
    returns = jax.vmap(
        lambda s: _perturbed_returns(params, return_fn, noise, key_eval, s, perturbation, magnitude_floor)
    )(sigmas)  # (num_sigmas, num_samples)
    perturbed = jnp.mean(returns, axis=1)
    drop = base - perturbed
    stderr = jnp.std(returns, axis=1, ddof=1) / jnp.sqrt(num_samples)

    exceeded = drop > tolerance
    bracketed = jnp.any(exceeded)
    first = jnp.where(bracketed, jnp.argmax(exceeded), sigmas.shape[0])  # first grid point over tolerance
    largest = jnp.where(first == 0, 0.0, sigmas[jnp.maximum(first - 1, 0)])
    upper = jnp.where(bracketed, sigmas[jnp.minimum(first, sigmas.shape[0] - 1)], jnp.inf)
    return {
        "sigmas": sigmas,
        "base_return": base,
        "perturbed_return": perturbed,
        "drop": drop,
        "drop_stderr": stderr,
        "largest_sigma": largest.astype(sigmas.dtype),
        "largest_sigma_upper": upper.astype(sigmas.dtype),
        "bracketed": bracketed,
    }


def sharpness_bisection(
    policy: GaussianPolicy,
    params: dict,
    return_fn: ReturnFn,
    key: jax.Array,
    sigma_low: float,
    sigma_high: float,
    num_samples: int,
    tolerance: float,
    num_iterations: int = 12,
    perturbation: str = "absolute",
    magnitude_floor: float = 1e-3,
) -> dict[str, jax.Array]:
    """Refine the largest sigma' with expected drop <= tolerance by bisection on [sigma_low, sigma_high].

    The noise draw z and the evaluation key are fixed for the whole search
    (as in `sharpness`, whose largest_sigma / largest_sigma_upper make a
    bracket), so the estimated drop D(sigma') is one deterministic function of
    sigma' and the bisection converges to its crossing of the tolerance; for
    the "absolute" perturbation D grows with sigma' in expectation, so the
    crossing is the PAC-Bayes sharpness scale of Jiang et al. (2020), who
    also search by bisection. Each iteration is one `vmap` over
    `num_samples` perturbations inside a `lax.fori_loop` (jittable).

    Returns "sigma" (the lower end of the final bracket),
    "sigma_high" (upper end, width (sigma_high - sigma_low) / 2^num_iterations),
    "drop" at "sigma", "base_return", and "valid_bracket": whether the
    initial bracket had D(sigma_low) <= tolerance < D(sigma_high) (if not,
    the ends do not move toward a crossing and the result is meaningless).
    """
    _check_policy_params(policy, params)
    _check_sharpness_args(num_samples, tolerance, perturbation, magnitude_floor)
    if not _is_int(num_iterations) or num_iterations < 0:
        raise ValueError(f"num_iterations must be a non-negative integer, got {num_iterations}")
    lo_c, hi_c = _concrete(sigma_low), _concrete(sigma_high)
    if lo_c is not None and hi_c is not None and not (0 <= lo_c < hi_c and np.isfinite(hi_c)):
        raise ValueError(f"need 0 <= sigma_low < sigma_high < inf, got {lo_c}, {hi_c}")
    key_noise, key_eval = jax.random.split(key)
    noise = _standard_noise(key_noise, params["mean_net"], num_samples)
    base = return_fn(params, key_eval)
    dtype = jnp.result_type(float)

    def drop_at(sigma):
        return base - jnp.mean(
            _perturbed_returns(params, return_fn, noise, key_eval, sigma, perturbation, magnitude_floor)
        )

    lo = jnp.asarray(sigma_low, dtype)
    hi = jnp.asarray(sigma_high, dtype)
    d_lo, d_hi = drop_at(lo), drop_at(hi)
    valid = (d_lo <= tolerance) & (d_hi > tolerance)

    def body(_, carry):
        lo, hi, d_lo = carry
        mid = 0.5 * (lo + hi)
        d_mid = drop_at(mid)
        below = d_mid <= tolerance
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid), jnp.where(below, d_mid, d_lo)

    lo, hi, d_lo = jax.lax.fori_loop(0, int(num_iterations), body, (lo, hi, d_lo))
    return {"sigma": lo, "sigma_high": hi, "drop": d_lo, "base_return": base,
            "valid_bracket": valid}

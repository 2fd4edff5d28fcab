"""Trace of the conditional Fisher information of a Gaussian policy, and summaries.

For a state s the conditional Fisher information of the policy pi_theta is

    F(s) = E_{a ~ pi(.|s)} [ grad_theta log pi(a|s) grad_theta log pi(a|s)^T ],

theta = (mean-network parameters, log_std). Its trace tr F(s) =
E ||grad_theta log pi(a|s)||^2 measures how fast the action distribution at s
moves, in KL, per unit step in parameter space (KL(pi_theta || pi_{theta+d})
~ d^T F d / 2): large values mean a sensitive, "sharp" policy at s.

Derivation for pi = N(mu_theta(s), diag(sigma^2)), sigma = exp(log_std)
independent of s. With z_i = (u_i - mu_i) / sigma_i ~ N(0, 1) i.i.d.,

    d log pi / d theta_mean = sum_i (z_i / sigma_i) grad mu_i,
    d log pi / d log_std_i  = z_i^2 - 1.

Hence F_mean = E[J^T diag(z / sigma) (z / sigma)^T J] = J^T Sigma^{-1} J
(J = d mu / d theta_mean, Sigma = diag(sigma^2)), the log-std block is
diag(E[(z_i^2 - 1)^2]) = 2 I, and the cross block E[(z_i / sigma_i)(z_j^2 - 1)]
vanishes (odd moments). So

    tr F(s) = sum_i ||grad_theta mu_i(s)||^2 / sigma_i^2  +  2 * action_dim.

Action bounding. Under "clip" the log-probability the learner uses (as PPO)
is the pre-clip Gaussian's, and so is this Fisher; the distribution of the
clipped action itself (a Gaussian censored at +-1, with atoms) has a smaller
Fisher information. Under "tanh", a = tanh(u) is a bijection whose log-Jacobian
-sum log(1 - tanh(u)^2) depends on u only, not theta, so the score and the
Fisher w.r.t. theta are the pre-squash Gaussian's: the formula is exact.

State-dependent std (`ImportedGaussianPolicy` with `state_dependent_std`: SAC's
actors, log sigma(s) a head on the mean network's last hidden layer, clipped to
[log_std_min, log_std_max]). theta = (mean network, log-std head), shared trunk
included; the same moments of z give

    F(s) = sum_i [ grad mu_i grad mu_i^T / sigma_i^2  +  2 grad log sigma_i grad log sigma_i^T ],
    tr F(s) = sum_i ||grad_theta mu_i(s)||^2 / sigma_i(s)^2  +  2 sum_i ||grad_theta log sigma_i(s)||^2,

(the cross terms E[z_i (z_j^2 - 1)] and, for i != j, E[z_i z_j] vanish). A clipped
log sigma_i has zero gradient. With a state-independent log_std, grad_theta log
sigma_i is the unit vector of log_std_i and the second sum is 2 * action_dim: the
formula above.

The observation-normalisation statistics (params["obs_norm"]) are not part of
theta: they are running averages, not trained, and are held fixed; so are the
observations. `fisher_trace_monte_carlo` is an independent estimator
(sampling and autodiff of `policy.log_prob`) used to check `fisher_trace`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from entrolab.agents.policy import GaussianPolicy
from entrolab.measures.complexity import _check_observations, _check_policy_params, _is_int, _map

QUANTILES = (0.05, 0.25, 0.75, 0.95, 0.99)


def _sum_squares_per_output(tree, num_outputs: int) -> jax.Array:
    """sum over leaves of ||leaf[i]||^2 for each leading index i, shape (num_outputs,)."""
    return sum(jnp.sum(jnp.reshape(leaf, (num_outputs, -1)) ** 2, axis=1) for leaf in jax.tree.leaves(tree))


def fisher_trace(
    policy: GaussianPolicy, params: dict, observations: jax.Array, batch_size: int | None = None
) -> dict[str, jax.Array]:
    """Exact trace of the conditional Fisher information per state, each entry (N,).

    Keys:
      "mean":        sum_i ||grad_{theta_mean} mu_i(s)||^2 / sigma_i^2  (the mean network's part);
      "log_std":     2 * action_dim  (the log-std part; the same for every state);
      "total":       their sum, tr F(s);
      "sensitivity": sum_i ||grad_{theta_mean} mu_i(s)||^2, the sigma-free sensitivity of the mean;
      "precision":   mean_i 1 / sigma_i^2 (the same for every state).
    For a policy with `state_dependent_std` (module docstring) theta also holds the log-std head,
    "log_std" is 2 sum_i ||grad_theta log sigma_i(s)||^2 and "precision" mean_i 1 / sigma_i(s)^2,
    both per state: "mean" and "log_std" are the terms of mu and of sigma over all of theta (the
    shared trunk moves both), not the blocks of parameters that `fisher_trace_monte_carlo`
    reports; the totals are the same quantity.
    "mean" = "sensitivity" x "precision" exactly for one action dimension (and whenever the
    sigma_i are equal); in general "mean" weighs each output's sensitivity by its own 1 / sigma_i^2.
    The split says whether a correlation of the trace comes from the network or from the
    policy's final sigma, which never acts when the policy is evaluated deterministically.

    grad mu_i(s) is the i-th row of the Jacobian of the mean w.r.t. the
    mean-network parameters (kernels and biases), by `jax.jacrev`
    (action_dim backward passes), per raw observation (normalisation
    included, its statistics fixed). `vmap` over observations, or `lax.map` in
    chunks of `batch_size`: one state's Jacobian holds action_dim x
    num_params numbers, so chunk for large N.

    Args:
        observations: (N, obs_dim) raw observations, N >= 1.
    """
    _check_policy_params(policy, params)
    observations = _check_observations(policy, observations)
    if getattr(policy, "state_dependent_std", False):
        return _fisher_trace_state_dependent(policy, params, observations, batch_size)
    inv_var = jnp.exp(-2.0 * params["log_std"])

    def parts(obs):
        jac = jax.jacrev(lambda net: policy.apply({**params, "mean_net": net}, obs)[0])(params["mean_net"])
        per_output = _sum_squares_per_output(jac, policy.action_dim)
        return jnp.stack([jnp.sum(per_output * inv_var), jnp.sum(per_output)])

    both = _map(parts, observations, batch_size)
    mean, sensitivity = both[:, 0], both[:, 1]
    log_std = jnp.full_like(mean, 2.0 * policy.action_dim)
    precision = jnp.full_like(mean, jnp.mean(inv_var))
    return {"mean": mean, "log_std": log_std, "total": mean + log_std, "sensitivity": sensitivity,
            "precision": precision}


def _fisher_trace_state_dependent(policy, params: dict, observations: jax.Array,
                                  batch_size: int | None) -> dict[str, jax.Array]:
    """`fisher_trace` for a state-dependent std (module docstring): both blocks by `jax.jacrev`
    of (mean, log_std) w.r.t. theta = (mean network, log-std head), per state."""
    theta = {"mean_net": params["mean_net"], "log_std_net": params["log_std_net"]}

    def parts(obs):
        def outputs(t):
            return policy.apply({**params, **t}, obs)

        jac_mean, jac_log_std = jax.jacrev(outputs)(theta)
        _, log_std = outputs(theta)
        inv_var = jnp.exp(-2.0 * log_std)
        mean_sq = _sum_squares_per_output(jac_mean, policy.action_dim)
        log_std_sq = _sum_squares_per_output(jac_log_std, policy.action_dim)
        return jnp.stack([jnp.sum(mean_sq * inv_var), 2.0 * jnp.sum(log_std_sq), jnp.sum(mean_sq),
                          jnp.mean(inv_var)])

    out = _map(parts, observations, batch_size)
    mean, log_std = out[:, 0], out[:, 1]
    return {"mean": mean, "log_std": log_std, "total": mean + log_std, "sensitivity": out[:, 2],
            "precision": out[:, 3]}


def fisher_trace_monte_carlo(
    policy: GaussianPolicy, params: dict, observations: jax.Array, key: jax.Array, num_samples: int
) -> dict[str, jax.Array]:
    """Monte Carlo estimate of tr F(s) = E_{u ~ pi}[||grad_theta log pi(u|s)||^2], each entry (N,).

    For each state, `num_samples` pre-bounding samples u ~ pi(.|s) are drawn
    by `policy.sample`; the score is `jax.grad` of `policy.log_prob(u, mu, log_std)`
    w.r.t. theta = (mean net, log_std) with u held fixed (including, under
    "tanh", the change-of-variables term, whose theta-gradient is zero). No
    part of the closed form is used: this checks `fisher_trace`.

    Keys: "mean", "log_std", "total" (sample means of the squared score
    norms of the two blocks and of the whole), and "mean_stderr",
    "log_std_stderr", "total_stderr" (standard errors, ddof 1).
    """
    _check_policy_params(policy, params)
    observations = _check_observations(policy, observations)
    if not _is_int(num_samples) or num_samples < 2:
        raise ValueError(f"num_samples must be an integer >= 2, got {num_samples}")
    std_key = "log_std_net" if getattr(policy, "state_dependent_std", False) else "log_std"
    theta = {"mean_net": params["mean_net"], std_key: params[std_key]}

    def log_prob(theta, obs, u):
        mean, log_std = policy.apply({**params, **theta}, obs)
        return policy.log_prob(u, mean, log_std)

    def squared_scores(obs, key):
        mean, log_std = policy.apply(params, obs)
        u, _ = policy.sample(key, mean, log_std)
        score = jax.grad(log_prob)(theta, obs, jax.lax.stop_gradient(u))
        sq_mean = sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(score["mean_net"]))
        sq_log_std = sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(score[std_key]))
        return jnp.stack([sq_mean, sq_log_std, sq_mean + sq_log_std])

    def per_state(obs, key):
        sq = jax.vmap(lambda k: squared_scores(obs, k))(jax.random.split(key, num_samples))  # (S, 3)
        return jnp.mean(sq, axis=0), jnp.std(sq, axis=0, ddof=1) / jnp.sqrt(num_samples)

    est, err = jax.vmap(per_state)(observations, jax.random.split(key, observations.shape[0]))
    names = ("mean", "log_std", "total")
    out = {name: est[:, i] for i, name in enumerate(names)}
    out.update({f"{name}_stderr": err[:, i] for i, name in enumerate(names)})
    return out


def summarize(values: jax.Array) -> dict[str, jax.Array]:
    """Summary statistics of all elements of `values` (e.g. a per-state Fisher trace).

    Keys: "mean", "median", "std" (population, ddof 0), "min", "max",
    "q05", "q25", "q75", "q95", "q99" (quantiles by linear interpolation, as
    `numpy.quantile`'s default), "skewness" = m3 / m2^(3/2) and "kurtosis" =
    m4 / m2^2 - 3 (excess), with the biased central moments
    m_k = mean((x - mean)^k) -- `scipy.stats.skew(x)` and
    `scipy.stats.kurtosis(x)` with their defaults (bias=True, fisher=True).
    For (numerically) constant values skewness and kurtosis are nan, as scipy's.
    Pure and `vmap`pable (over a leading axis added by the caller).
    """
    x = jnp.ravel(jnp.asarray(values))
    if x.size == 0:
        raise ValueError("values is empty: nothing to summarize")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    mean = jnp.mean(x)
    dev = x - mean
    m2, m3, m4 = jnp.mean(dev**2), jnp.mean(dev**3), jnp.mean(dev**4)
    quantiles = jnp.quantile(x, jnp.asarray(QUANTILES, x.dtype))
    out = {"mean": mean, "median": jnp.median(x), "std": jnp.sqrt(m2), "min": jnp.min(x), "max": jnp.max(x)}
    out.update({f"q{round(q * 100):02d}": quantiles[i] for i, q in enumerate(QUANTILES)})
    # scipy's test for (numerically) constant data: the moments are rounding noise there
    constant = m2 <= (jnp.finfo(x.dtype).eps * mean) ** 2
    out["skewness"] = jnp.where(constant, jnp.nan, m3 / m2**1.5)
    out["kurtosis"] = jnp.where(constant, jnp.nan, m4 / m2**2 - 3.0)
    return out

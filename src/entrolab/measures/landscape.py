"""The landscape of an objective around a point: random-perturbation probes, interpolation, curvature.

After Ahmed, Le Roux, Norouzi, Schuurmans, "Understanding the impact of entropy on policy
optimization" (ICML 2019). Every function takes the objective as a pure function of a parameter
pytree, `objective(params) -> scalar` (exact, e.g. the tabular return) or, with a `key`,
`objective(params, key) -> scalar` (sampled, e.g. the mean return of episodes): the same code
probes a gridworld's exact return, a PPO checkpoint's sampled return and any user objective. The
objective is *maximised* (a return); pass `maximize=False` to `classify` for a loss.

Random-perturbation probes (`perturbation_probe`). Directions d = d'/||d'||, d' ~ N(0, I) over the
flattened parameter vector; for each direction and step epsilon the pair theta +- epsilon d. With
J0 the objective at theta (for a sampled objective, with the key every perturbed point uses, so
that the pair below is a paired difference; `num_repeats` evaluations with independent keys give
the noise's spread), the centred pair Delta+- = J(theta +- epsilon d) - J0
gives the projections

    gradient_proj  = (Delta+ - Delta-) / 2      (~ epsilon d.grad J)
    curvature_proj = (Delta+ + Delta-) / 2      (~ epsilon^2 d'Hd / 2)

Every direction, sign and epsilon is one vmapped program (`batch_size` bounds its memory). For a
sampled objective every perturbed point uses the *same* key (common random numbers), so the
differences between directions are not differences of noise. (A departure: the authors drew fresh
noise at every point and centred on the mean of the repeated evaluations; with shared keys the
band of 2 std of independent repeats is conservative for the paired differences.) Labels per direction, with the noise
band b = 2 std of the repeated centre evaluations (0 for an exact objective):

    "down"    Delta+ < -b and Delta- < -b  (the objective falls on both sides: concave along d)
    "up"      Delta+ > b and Delta- > b    (rises on both sides: convex along d)
    "slope"   one side above b, the other below -b  (linear along d)
    "flat"    both within the band
    "half"    one side within the band, the other outside

`classify(table)`, the paper's quadrant reading of the (Delta+, Delta-) scatter made a rule: "flat"
when every direction is flat; "saddle" when some directions go down on both sides and others up
on both sides; "local_optimum" when directions go down on both sides and none up on both sides or
up one side and down the other (a local maximum of a maximised objective); "linear" otherwise when
some direction slopes; "local_minimum" (the worst point of a maximised objective) when directions
only go up. A label counts as present when more than `tolerance` of the directions carry it, so a
few directions lost in the noise do not decide. The authors read the scatter by eye; the rule is
ours (documented here, tested on quadratics with known answers).

Interpolation (`interpolate`): J(theta(t)) along theta(t) = (1 - t) theta_0 + t theta_1, t in
[-0.5, 1.5] by default, for several objectives at once (e.g. with and without the entropy term).
`plane`: J over the plane through three points (theta_0 + a u + b v with u = theta_1 - theta_0 and
v the part of theta_2 - theta_0 orthogonal to u), or through one point along two random
directions, filter-normalised as in Li et al. (2018, "Visualizing the loss landscape of neural
nets") if asked: each column of a weight matrix (one output unit) scaled to the norm of the same
column of theta, vectors (biases) set to zero.

`checkpoint_objective` turns a trained policy (any entrolab checkpoint) into a sampled objective of
its trainable parameters, for the probes and interpolations.

Curvature: `hvp` (forward-over-reverse autodiff), `hessian_eigenvalues` (the extreme eigenvalues
by Lanczos with full reorthogonalisation, `matfree.decomp.tridiag_sym`), `hessian_trace`
(Hutchinson's estimator with Rademacher vectors, `matfree.stochtrace`). Exact objectives only; for
sampled returns the probes' curvature projections are the estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree

from entrolab.agents.evaluate import episode_returns

LABELS = ("down", "up", "slope", "flat", "half")
CLASSES = ("local_optimum", "saddle", "linear", "flat", "local_minimum")
PROBE_COLUMNS = ["direction", "epsilon", "j_center", "j_plus", "j_minus", "delta_plus", "delta_minus",
                 "gradient_proj", "curvature_proj", "noise_std", "label"]


def _call(objective: Callable, params, key):
    return objective(params) if key is None else objective(params, key)


_COMPILED: dict = {}  # (objective, treedef, sampled, batch_size) -> jitted evaluator (see _evaluate)


def _evaluator(objective: Callable, treedef, sampled: bool, batch_size: int | None):
    """One jitted `(points, key) -> values` per objective, tree structure and batching, so that probing
    many points of one objective (every initialisation, point and epsilon of a study) compiles once.
    Objectives are held by identity: pass the same function object to reuse its compilation."""
    cache_key = (objective, treedef, sampled, batch_size)
    fn = _COMPILED.get(cache_key)
    if fn is None:
        def one(params, key):
            return objective(params, key) if sampled else objective(params)

        if batch_size is None:
            fn = jax.jit(jax.vmap(one, in_axes=(0, None)))
        else:
            fn = jax.jit(lambda pts, key: jax.lax.map(lambda p: one(p, key), pts, batch_size=batch_size))
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        _COMPILED[cache_key] = fn
    return fn


def _evaluate(objective: Callable, unravel: Callable, vectors: jax.Array, key, batch_size: int | None):
    """The objective at each row of `vectors` (flat parameters), with one shared key (or none)."""
    points = jax.vmap(unravel)(vectors)
    treedef = jax.tree_util.tree_structure(points)
    sampled = key is not None
    batch = None if batch_size is None or batch_size >= vectors.shape[0] else batch_size
    return _evaluator(objective, treedef, sampled, batch)(points, key if sampled else jnp.zeros(()))


def _epsilons(epsilon) -> np.ndarray:
    eps = np.atleast_1d(np.asarray(epsilon, dtype=np.float64))
    if eps.ndim != 1 or eps.size == 0 or not np.all(np.isfinite(eps)) or np.any(eps <= 0):
        raise ValueError(f"epsilon must be a positive number or a list of them, got {epsilon}")
    return eps


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def random_directions(key: jax.Array, num: int, dim: int, dtype=jnp.float32) -> jax.Array:
    """(num, dim) directions uniform on the unit sphere: d'/||d'|| with d' ~ N(0, I)."""
    d = jax.random.normal(key, (num, dim), dtype)
    return d / jnp.linalg.norm(d, axis=-1, keepdims=True)


def probe_label(delta_plus, delta_minus, band) -> np.ndarray:
    """The per-direction label of centred pairs (see the module docstring)."""
    dp, dm = np.asarray(delta_plus, float), np.asarray(delta_minus, float)
    band = np.broadcast_to(np.asarray(band, float), dp.shape)
    up_p, up_m, down_p, down_m = dp > band, dm > band, dp < -band, dm < -band
    in_p, in_m = ~(up_p | down_p), ~(up_m | down_m)
    return np.select([down_p & down_m, up_p & up_m, (up_p & down_m) | (down_p & up_m), in_p & in_m],
                     ["down", "up", "slope", "flat"], "half").astype(object)


def perturbation_probe(
    objective: Callable,
    params,
    key: jax.Array,
    num_directions: int = 500,
    epsilon: float | Sequence[float] = 0.5,
    num_repeats: int = 1,
    sampled: bool = False,
    band_stds: float = 2.0,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Random-perturbation probes of `objective` at `params` (module docstring).

    Args:
        objective: `objective(params)` or, with `sampled=True`, `objective(params, key)`; a scalar,
            pure and vmappable.
        epsilon: a step or a list of steps (one row per direction and step).
        num_repeats: evaluations at `params` with independent keys (sampled objectives): their mean
            is the centre J0, their standard deviation the noise (at least 2 for a noise band).
        band_stds: the noise band's half-width in standard deviations (the authors' 2).
        batch_size: points evaluated at once (None: all in one vmap).
    Returns:
        One row per direction and epsilon with `PROBE_COLUMNS`.
    """
    num_directions = _positive_int("num_directions", num_directions)
    num_repeats = _positive_int("num_repeats", num_repeats)
    eps = _epsilons(epsilon)
    if sampled and num_repeats < 2:
        raise ValueError("a sampled objective needs num_repeats >= 2 (the noise band comes from their spread)")
    flat, unravel = ravel_pytree(params)
    k_dir, k_eval, k_rep = jax.random.split(key, 3)
    directions = random_directions(k_dir, num_directions, flat.shape[0], flat.dtype)
    steps = jnp.asarray(eps, flat.dtype)
    # (2, E, N, dim): sign x epsilon x direction
    signs = jnp.asarray([1.0, -1.0], flat.dtype)
    points = flat + signs[:, None, None, None] * steps[None, :, None, None] * directions[None, None]
    shared = k_eval if sampled else None
    values = _evaluate(objective, unravel, points.reshape(-1, flat.shape[0]), shared, batch_size)
    values = np.asarray(values, np.float64).reshape(2, eps.size, num_directions)
    if sampled:
        keys = jnp.concatenate([k_eval[None], jax.random.split(k_rep, num_repeats - 1)])
        cache_key = ("centre", objective, jax.tree_util.tree_structure(params))
        if cache_key not in _COMPILED:
            _COMPILED[cache_key] = jax.jit(jax.vmap(objective, in_axes=(None, 0)))
        centre = np.asarray(_COMPILED[cache_key](params, keys), np.float64)
    else:
        centre = np.full(num_repeats, float(_call(objective, params, None)))
    j0 = float(centre[0])  # with the perturbed points' key: paired differences
    noise = float(centre.std(ddof=1)) if centre.size > 1 else 0.0
    dp, dm = values[0] - j0, values[1] - j0
    table = pd.DataFrame({
        "direction": np.tile(np.arange(num_directions), eps.size),
        "epsilon": np.repeat(eps, num_directions),
        "j_center": j0,
        "j_plus": values[0].ravel(),
        "j_minus": values[1].ravel(),
        "delta_plus": dp.ravel(),
        "delta_minus": dm.ravel(),
        "gradient_proj": 0.5 * (dp - dm).ravel(),
        "curvature_proj": 0.5 * (dp + dm).ravel(),
        "noise_std": noise,
    })
    table["label"] = probe_label(table["delta_plus"], table["delta_minus"], band_stds * noise)
    return table[PROBE_COLUMNS]


def label_fractions(table: pd.DataFrame) -> pd.DataFrame:
    """The fraction of directions with each label, one row per epsilon."""
    counts = pd.crosstab(table["epsilon"], table["label"], normalize="index")
    return counts.reindex(columns=list(LABELS), fill_value=0.0).reset_index()


def classify(table: pd.DataFrame, tolerance: float = 0.0, maximize: bool = True) -> str | dict[float, str]:
    """The kind of point the probes show (module docstring): one of `CLASSES`; a dict per epsilon
    when the table has several. `tolerance`: the fraction of directions a label needs to count."""
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    if table.empty:
        raise ValueError("an empty probe table")
    out = {}
    for eps, sub in table.groupby("epsilon", sort=True):
        frac = sub["label"].value_counts(normalize=True)
        has = {label: frac.get(label, 0.0) > tolerance for label in LABELS}
        down, up = ("down", "up") if maximize else ("up", "down")
        if not (has["down"] or has["up"] or has["slope"]):
            kind = "flat"
        elif has[down] and has[up]:
            kind = "saddle"
        elif has[down] and not has["slope"]:
            kind = "local_optimum"
        elif has["slope"] or has["half"]:
            kind = "linear"
        else:
            kind = "local_minimum"
        out[float(eps)] = kind
    return next(iter(out.values())) if len(out) == 1 else out


def interpolate(
    objectives: Callable | Mapping[str, Callable],
    params0,
    params1,
    ts: Sequence[float] | None = None,
    key: jax.Array | None = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """J along theta(t) = (1 - t) theta_0 + t theta_1: a column `t` and one column per objective
    (a single callable is named "value"). With `key`, sampled objectives `f(params, key)`, the same
    key at every t (common random numbers)."""
    ts = np.linspace(-0.5, 1.5, 41) if ts is None else np.asarray(ts, np.float64)
    if ts.ndim != 1 or ts.size == 0 or not np.all(np.isfinite(ts)):
        raise ValueError("ts must be a non-empty list of finite numbers")
    objectives = {"value": objectives} if callable(objectives) else dict(objectives)
    a, unravel = ravel_pytree(params0)
    b, _ = ravel_pytree(params1)
    if a.shape != b.shape:
        raise ValueError(f"the two points have different sizes: {a.shape[0]} and {b.shape[0]} parameters")
    t = jnp.asarray(ts, a.dtype)[:, None]
    points = (1 - t) * a + t * b
    out = pd.DataFrame({"t": ts})
    for name, f in objectives.items():
        out[name] = np.asarray(_evaluate(f, unravel, points, key, batch_size), np.float64)
    return out


def filter_normalize(direction, params):
    """Li et al.'s filter normalisation of a direction pytree like `params`: every column (last axis,
    one output unit) of a matrix leaf scaled to the norm of the same column of `params`; vectors and
    scalars (biases, log-stds) set to zero."""
    def one(d, p):
        if d.ndim < 2:
            return jnp.zeros_like(d)
        dn = jnp.linalg.norm(d.reshape(-1, d.shape[-1]), axis=0)
        pn = jnp.linalg.norm(p.reshape(-1, p.shape[-1]), axis=0)
        return d * (pn / jnp.maximum(dn, 1e-12))

    return jax.tree_util.tree_map(one, direction, params)


def plane(
    objective: Callable,
    params0,
    params1=None,
    params2=None,
    key: jax.Array | None = None,
    num: int = 21,
    span: tuple[float, float] = (-0.5, 1.5),
    filter_normalized: bool = True,
    sampled: bool = False,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """J over a plane, one row per grid point (`a`, `b`, `value`).

    Through three points: theta_0 + a u + b v, u = theta_1 - theta_0, v the component of
    theta_2 - theta_0 orthogonal to u rescaled to ||u|| (theta_0 at (0, 0), theta_1 at (1, 0)).
    Through one point (`params1 = params2 = None`): two random directions from `key`
    (filter-normalised unless `filter_normalized=False`, else of norm ||theta_0||), a and b
    over `span`. `sampled`: evaluate `objective(params, key)` with the one `key` everywhere."""
    num = _positive_int("num", num)
    a0, unravel = ravel_pytree(params0)
    if (params1 is None) != (params2 is None):
        raise ValueError("give both params1 and params2 (a plane through three points) or neither")
    if params1 is None:
        if key is None:
            raise ValueError("a plane through one point needs a key for its random directions")
        k1, k2, key = jax.random.split(key, 3)
        dirs = []
        for k in (k1, k2):
            d = unravel(jax.random.normal(k, a0.shape, a0.dtype))
            if filter_normalized:
                d = filter_normalize(d, params0)
                dirs.append(ravel_pytree(d)[0])
            else:
                v = ravel_pytree(d)[0]
                dirs.append(v * jnp.linalg.norm(a0) / jnp.linalg.norm(v))
        u, v = dirs
    else:
        u = ravel_pytree(params1)[0] - a0
        w = ravel_pytree(params2)[0] - a0
        un = jnp.linalg.norm(u)
        if float(un) == 0.0:
            raise ValueError("params0 and params1 are the same point")
        v = w - (w @ u) / (un**2) * u
        vn = jnp.linalg.norm(v)
        if float(vn) <= 1e-6 * float(jnp.linalg.norm(w)):
            raise ValueError("the three points lie on one line")
        v = v * un / vn
    grid = np.linspace(span[0], span[1], num)
    aa, bb = np.meshgrid(grid, grid, indexing="ij")
    coeffs = jnp.asarray(np.stack([aa.ravel(), bb.ravel()], 1), a0.dtype)
    points = a0 + coeffs[:, :1] * u + coeffs[:, 1:] * v
    values = _evaluate(objective, unravel, points, key if sampled else None, batch_size)
    return pd.DataFrame({"a": aa.ravel(), "b": bb.ravel(), "value": np.asarray(values, np.float64)})


def checkpoint_objective(loaded, env, env_params, num_episodes: int, num_steps: int | None = None,
                         deterministic: bool = True, perturb_log_std: bool | None = None) -> tuple[Callable, dict]:
    """The sampled return of a trained policy as a function of its trainable parameters:
    `(objective(point, key), point)`, the mean undiscounted return of `num_episodes` episodes of
    `env`. The point is the checkpoint's parameters without the observation statistics
    ("obs_norm", fixed: they are data, not weights) and, for the deterministic policy, without the
    log-std (it never acts there, so its directions would all be exactly flat). `perturb_log_std`
    (default: only for the stochastic policy) False keeps the stochastic policy's log-std fixed too:
    the objective of a fixed-std learner (REINFORCE), whose std is a setting, not a weight. Any
    checkpoint `entrolab.checkpoint.load_policy` reads (PPO, SAC, SAC-AdaEnt, REINFORCE) on any
    entrolab or gymnax env."""
    num_episodes = _positive_int("num_episodes", num_episodes)
    steps = int(env_params.max_steps_in_episode) if num_steps is None else _positive_int("num_steps", num_steps)
    if perturb_log_std is None:
        perturb_log_std = not deterministic
    if deterministic and perturb_log_std:
        raise ValueError("the deterministic policy never uses its log-std: perturb_log_std must be False")
    frozen = {"obs_norm"} | (set() if perturb_log_std else {"log_std"})
    params = loaded.params
    point = {k: v for k, v in params.items() if k not in frozen}
    rest = {k: v for k, v in params.items() if k in frozen}

    def objective(p, key):
        return episode_returns(loaded.policy, {**rest, **p}, env, env_params, key, num_episodes, steps,
                               deterministic).mean()

    return objective, point


# ---- curvature ----------------------------------------------------------------------------------
def hvp(objective: Callable, params) -> Callable[[jax.Array], jax.Array]:
    """v -> H v for the Hessian of an exact `objective` at `params`, on flat vectors
    (forward-over-reverse: one gradient's cost per product)."""
    flat, unravel = ravel_pytree(params)

    def f(x):
        return objective(unravel(x))

    grad = jax.grad(f)
    return lambda v: jax.jvp(grad, (flat,), (v,))[1]


def _lanczos_fn(objective: Callable, treedef, num_matvecs: int):
    """A jitted `(params, start) -> Ritz values`, cached per objective (as `_evaluator`)."""
    key = ("lanczos", objective, treedef, num_matvecs)
    fn = _COMPILED.get(key)
    if fn is None:
        from matfree import decomp

        def ritz(params, start):
            result = decomp.tridiag_sym(num_matvecs, materialize=True)(hvp(objective, params), start)
            return jnp.linalg.eigvalsh(result.J_small)

        fn = _COMPILED[key] = jax.jit(ritz)
    return fn


def _hutchinson_fn(objective: Callable, treedef, num_samples: int):
    key = ("hutchinson", objective, treedef, num_samples)
    fn = _COMPILED.get(key)
    if fn is None:
        from matfree import stochtrace

        def trace(params, k):
            flat, _ = ravel_pytree(params)
            estimate = stochtrace.estimator_monte_carlo(stochtrace.monte_carlo_trace(),
                                                        stochtrace.sampler_signs(flat, num=num_samples))
            return estimate(hvp(objective, params), k)

        fn = _COMPILED[key] = jax.jit(trace)
    return fn


def dense_hessian(objective: Callable, params) -> jax.Array:
    """The exact Hessian (n, n) of an exact objective on the flat parameter vector (for small n, e.g.
    the gridworld's 108 parameters; compiled once per objective, as `_evaluator`)."""
    flat, unravel = ravel_pytree(params)
    key = ("hessian", objective, jax.tree_util.tree_structure(params))
    if key not in _COMPILED:
        _COMPILED[key] = jax.jit(lambda p: jax.hessian(lambda x: objective(unravel(x)))(ravel_pytree(p)[0]))
    return _COMPILED[key](params)


def hessian_eigenvalues(objective: Callable, params, key: jax.Array, num_matvecs: int = 30, k: int = 3
                        ) -> dict[str, jax.Array]:
    """The `k` largest and `k` smallest Hessian eigenvalues (Ritz values of `num_matvecs` Lanczos
    steps with full reorthogonalisation, `matfree.decomp.tridiag_sym`, from a random start):
    {"largest": (k,) descending, "smallest": (k,) ascending, "ritz": (num_matvecs,) all}. Exact
    when `num_matvecs` equals the number of parameters."""
    flat, _ = ravel_pytree(params)
    n = flat.shape[0]
    num_matvecs = _positive_int("num_matvecs", num_matvecs)
    if num_matvecs > n:
        raise ValueError(f"num_matvecs ({num_matvecs}) must be at most the number of parameters ({n})")
    k = min(_positive_int("k", k), num_matvecs)
    start = jax.random.normal(key, flat.shape, flat.dtype)
    ritz = _lanczos_fn(objective, jax.tree_util.tree_structure(params), num_matvecs)(params, start)
    return {"largest": ritz[::-1][:k], "smallest": ritz[:k], "ritz": ritz}


def hessian_trace(objective: Callable, params, key: jax.Array, num_samples: int = 100) -> jax.Array:
    """Hutchinson's estimate of tr(H) with `num_samples` Rademacher vectors (`matfree.stochtrace`)."""
    num_samples = _positive_int("num_samples", num_samples)
    return _hutchinson_fn(objective, jax.tree_util.tree_structure(params), num_samples)(params, key)

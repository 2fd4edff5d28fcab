"""Robustness of trained policies: returns under perturbation, and the excess risk.

A `Condition` is one perturbation of the evaluation environment: a family
("obs_noise", "action_noise" or "dynamics"), the params field it sets and its
value (obs_noise_std = 0.2, rho = 32), and the initial-state distribution
N(x_e, init_std^2 I) around a named equilibrium x_e ("origin", "C+", "C-" for
Lorenz; "zero", "E1", "E2", "E3" for KS).

`evaluate_grid` runs every (policy, condition) pair, in each evaluation mode,
as one jitted, vmapped program (in chunks when the batch is large), and keeps
every episode's return. `excess_risk` turns those into

    R(pi, s) = J(pi; s_ref) - J(pi; s),        rate(pi, s) = R(pi, s) / |J(pi; s_ref)|,

with J the expected undiscounted return (higher is better, so R > 0 means
the perturbation hurts), s_ref the family's reference condition (no noise
for the noise families, the nominal value for dynamics), per policy x
initial distribution x mode x family.

Common random numbers. Every (policy, condition, mode) uses the same
`num_episodes` episode keys, so episode e draws the same initial offset, the
same standard-normal observation and actuation noise (scaled by each
condition's std) and, in the stochastic mode, the same policy noise,
everywhere. J(pi; s_ref) and J(pi; s) are then paired episode by episode: the
difference removes the variance the two share (the initial state above all),
and a policy blind to a perturbation (e.g. one whose action ignores the
observation, under observation noise) has an excess risk of exactly zero.
Two consequences: the episodes of different conditions are not independent
samples (compare conditions paired, as `excess_risk` does), and the
reference conditions of different families are the same runs (their
returns are identical).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from entrolab.agents.evaluate import episode_returns
from entrolab.agents.policy import GaussianPolicy
from entrolab.envs.core import Environment, EnvParams
from entrolab.envs.ks_equilibria import NAMES as KS_EQUILIBRIA
from entrolab.envs.registry import replace_params
from entrolab.stats import RngLike, as_generator, bootstrap_indices, percentile_interval

FAMILIES = ("obs_noise", "action_noise", "dynamics")
NOISE_PARAMS = {"obs_noise": "obs_noise_std", "action_noise": "action_noise_std"}
MODES = ("deterministic", "stochastic")
LORENZ_INITS = {"origin": 0, "C+": 1, "C-": 2}
# Params a "dynamics" condition may not set: the perturbations of the other
# families, the initial distribution and target (set by name), the time limit.
NOT_DYNAMICS = {
    "obs_noise_std", "action_noise_std", "init_std", "init_equilibrium", "target_equilibrium",
    "u_init", "u_target", "max_steps_in_episode",
}
BASE_INIT = "base"  # the init name reported for a condition that keeps the base distribution
# Bytes one episode is assumed to hold on the device during evaluation, per
# float of (state + observation + action + hidden units): the scan carries and
# the step's temporaries (ETDRK4 stages, DFT products, MLP activations) keep
# a few tens of such vectors alive per episode; 32 errs on the large side
# (XLA's memory analysis of the CPU program at hidden sizes (64, 64): 3.3 kB
# per Lorenz and 5.0 kB per KS episode, against estimates of 17.5 and 26.6 kB).
BYTES_PER_EPISODE_FLOAT = 4 * 32


@dataclass(frozen=True)
class Condition:
    """One evaluation condition.

    Attributes:
        family: "obs_noise", "action_noise" or "dynamics".
        param: the params field set: "obs_noise_std", "action_noise_std", or a
            scalar physical param for "dynamics" (e.g. "rho", "length").
        value: its value.
        init: the equilibrium the initial state is drawn around ("origin",
            "C+", "C-" for Lorenz; "zero", "E1", "E2", "E3" for KS), or None
            to keep the base params' initial distribution.
        init_std: std of the initial distribution; None keeps the base value.
    """

    family: str
    param: str
    value: float
    init: str | None = None
    init_std: float | None = None

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown condition family {self.family!r}; families: {FAMILIES}")
        expected = NOISE_PARAMS.get(self.family)
        if expected is not None and self.param != expected:
            raise ValueError(f"a {self.family!r} condition sets {expected!r}, not {self.param!r}")
        if expected is None and self.param in NOT_DYNAMICS:
            raise ValueError(f"{self.param!r} is not a dynamics param (the families set noise; "
                             "init and init_std set the initial distribution)")
        if not isinstance(self.value, (int, float, np.floating, np.integer)) or not math.isfinite(self.value):
            raise ValueError(f"condition value must be a finite number, got {self.value!r}")
        object.__setattr__(self, "value", float(self.value))
        if self.init_std is not None:
            if not math.isfinite(self.init_std) or self.init_std < 0:
                raise ValueError(f"init_std must be finite and >= 0, got {self.init_std!r}")
            object.__setattr__(self, "init_std", float(self.init_std))

    @classmethod
    def obs_noise(cls, std: float, init: str | None = None, init_std: float | None = None) -> Condition:
        return cls("obs_noise", "obs_noise_std", std, init, init_std)

    @classmethod
    def action_noise(cls, std: float, init: str | None = None, init_std: float | None = None) -> Condition:
        return cls("action_noise", "action_noise_std", std, init, init_std)

    @classmethod
    def dynamics(cls, param: str, value: float, init: str | None = None,
                 init_std: float | None = None) -> Condition:
        return cls("dynamics", param, value, init, init_std)


def init_names(env: Environment, params: EnvParams) -> tuple[str, ...]:
    """The initial-distribution names `condition_params` accepts for this environment."""
    if hasattr(params, "init_equilibrium"):
        return tuple(LORENZ_INITS)
    if hasattr(params, "u_init") and hasattr(env, "equilibrium"):
        return KS_EQUILIBRIA
    return ()


def condition_params(env: Environment, base_params: EnvParams, condition: Condition) -> EnvParams:
    """The params of `condition`: base params with its param, init and init_std set.

    The KS initial centre is the named equilibrium at the base params' length
    (the nominal L), so a "dynamics" condition on `length` changes the physics
    and keeps the task, as the environment intends (envs/ks.py). The Lorenz
    centre is derived from the params, so under a "dynamics" condition it is
    the equilibrium of the perturbed system.
    Range checks (noise >= 0, length > 0, ...) are those of `replace_params`.
    """
    if not isinstance(condition, Condition):
        raise ValueError(f"expected a Condition, got {type(condition).__name__}")
    name = getattr(env, "name", "env")
    fields = {f.name for f in dataclasses.fields(base_params)}
    if condition.param not in fields:
        raise ValueError(f"{name}: params have no field {condition.param!r}; fields: {sorted(fields)}")
    if condition.family == "dynamics" and np.ndim(getattr(base_params, condition.param)) != 0:
        raise ValueError(f"{name}: dynamics param {condition.param!r} is not a scalar")
    changes: dict[str, Any] = {condition.param: condition.value}
    if condition.init_std is not None:
        changes["init_std"] = condition.init_std
    if condition.init is not None:
        known = init_names(env, base_params)
        if condition.init not in known:
            raise ValueError(f"{name}: unknown initial distribution {condition.init!r}; known: {list(known)}")
        if hasattr(base_params, "init_equilibrium"):
            changes["init_equilibrium"] = LORENZ_INITS[condition.init]
        else:
            centre = env.equilibrium(condition.init, float(base_params.length))
            changes["u_init"] = jnp.asarray(centre, jnp.asarray(base_params.u_init).dtype)
    return replace_params(base_params, name, **changes)


def nominal_value(base_params: EnvParams, condition: Condition) -> float:
    """The value of the condition's param in the base params (the dynamics reference)."""
    return float(np.asarray(getattr(base_params, condition.param)))


def condition_grid(
    base_params: EnvParams,
    inits: Sequence[str | None] = (None,),
    obs_noise: Iterable[float] = (),
    action_noise: Iterable[float] = (),
    dynamics: Mapping[str, Iterable[float]] | None = None,
    init_std: float | None = None,
    include_reference: bool = True,
) -> list[Condition]:
    """Every (init, family, value) combination, with each family's reference.

    With `include_reference`, 0 is prepended to each non-empty noise family
    and the base params' value to each dynamics param, unless already there.
    Order: init, then obs_noise, action_noise, dynamics params (in the
    mapping's order), values in the order given.
    """
    families: list[tuple[str, str, list[float], float]] = [
        ("obs_noise", "obs_noise_std", [float(v) for v in obs_noise], 0.0),
        ("action_noise", "action_noise_std", [float(v) for v in action_noise], 0.0),
    ]
    for param, values in (dynamics or {}).items():
        if not hasattr(base_params, param):
            raise ValueError(f"params have no field {param!r}")
        families.append(("dynamics", param, [float(v) for v in values],
                         float(np.asarray(getattr(base_params, param)))))
    inits = list(inits)
    if not inits:
        raise ValueError("no initial distribution given (inits is empty)")
    grid = []
    for init in inits:
        for family, param, values, reference in families:
            if not values:
                continue
            if include_reference and not any(np.isclose(v, reference, rtol=1e-6, atol=0) for v in values):
                values = [reference, *values]
            grid.extend(Condition(family, param, v, init, init_std) for v in values)
    if not grid:
        raise ValueError("the condition grid is empty: give obs_noise, action_noise or dynamics values")
    return grid


def stack_pytrees(trees: Sequence[Any]) -> Any:
    """Stack pytrees of the same structure along a new leading axis."""
    if not trees:
        raise ValueError("nothing to stack")
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


@dataclass(frozen=True)
class GridEvaluation:
    """What `evaluate_grid` returns.

    Attributes:
        summary: one row per (policy, condition, mode): policy_index, family,
            param, value, nominal, init, init_std, mode, mean_return,
            std_return (sample std, ddof=1; NaN for one episode), num_episodes.
        episodes: one row per episode (the same columns but the statistics,
            plus episode and return): the input of `excess_risk`.
        returns: the same returns, shape (num_policies, num_conditions,
            num_modes, num_episodes).
        conditions, modes: the grid's axes.
    """

    summary: Any  # pandas.DataFrame
    episodes: Any  # pandas.DataFrame
    returns: np.ndarray
    conditions: tuple[Condition, ...]
    modes: tuple[str, ...]


def _leading_size(stacked_policy_params) -> int:
    leaves = jax.tree.leaves(stacked_policy_params)
    if not leaves:
        raise ValueError("stacked_policy_params has no arrays")
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"policy params must be stacked: every leaf with one leading (policy) axis; "
                         f"leading sizes: {sizes} (for one policy use stack_pytrees([params]))")
    log_std = stacked_policy_params.get("log_std") if isinstance(stacked_policy_params, Mapping) else None
    if log_std is not None and np.ndim(log_std) != 2:
        raise ValueError("policy params must be stacked (leading policy axis); for one policy use "
                         "stack_pytrees([params])")
    return sizes.pop()


def _split_varying(params_list: Sequence[EnvParams]):
    """(treedef, varies, leaves): leaves that differ across conditions stacked, the others once.

    Why: a param shared by every condition stays unbatched under `vmap`, so
    what depends only on it need not be batched (the KS ETDRK4 coefficients
    when L is not varied; a `cond` on a noise std stays a branch instead of
    becoming a select that computes both).
    """
    treedef = jax.tree.structure(params_list[0])
    per_condition = [jax.tree.leaves(p) for p in params_list]
    if any(jax.tree.structure(p) != treedef for p in params_list):
        raise ValueError("condition params differ in structure")
    varies, leaves = [], []
    for k, first in enumerate(per_condition[0]):
        column = [np.asarray(leaves_k[k]) for leaves_k in per_condition]
        v = any(not np.array_equal(c, column[0]) for c in column[1:])
        varies.append(v)
        leaves.append(jnp.stack([jnp.asarray(x) for x in column]) if v else jnp.asarray(first))
    return treedef, tuple(varies), leaves


@functools.lru_cache(maxsize=16)
def _grid_program(policy, env, num_episodes, num_steps, treedef, varies, low, high):
    """The jitted program over (policy, condition) pairs; cached so that repeated
    calls with the same structure (e.g. one per batch of checkpoints) compile once."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)

    def run(policy_stack, env_leaves, policy_index, condition_index, key, deterministic):
        def one_pair(i, j):
            policy_params = jax.tree.map(lambda x: x[i], policy_stack)
            env_params = jax.tree.unflatten(treedef, [x[j] if v else x for x, v in zip(env_leaves, varies)])
            return episode_returns(policy, policy_params, env, env_params, key, num_episodes,
                                   num_steps, deterministic, low, high)

        return jax.vmap(one_pair)(policy_index, condition_index)

    return jax.jit(run, static_argnums=5)


def _action_bounds(env: Environment, params: EnvParams):
    space = env.action_space(params)
    shape = tuple(space.shape)
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape).copy()
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape).copy()
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"{getattr(env, 'name', 'env')}: the action space must be bounded")
    return low, high


def _episode_bytes(env: Environment, params: EnvParams, policy: GaussianPolicy) -> int:
    _, state = env.reset(jax.random.key(0), params)
    floats = (int(np.size(state.x)) + int(policy.obs_dim) + int(policy.action_dim)
              + int(sum(policy.hidden_sizes)))
    return BYTES_PER_EPISODE_FLOAT * floats


def evaluate_grid(
    policy: GaussianPolicy,
    stacked_policy_params: Any,
    env: Environment,
    base_params: EnvParams,
    conditions: Sequence[Condition],
    key: jax.Array,
    num_episodes: int = 100,
    modes: Sequence[str] = MODES,
    num_steps: int | None = None,
    memory_limit_bytes: int = 2 * 2**30,
    max_episodes_per_call: int | None = None,
) -> GridEvaluation:
    """Returns of every policy under every condition, deterministic and sampled.

    One jitted program per mode maps `episode_returns` over (policy,
    condition) pairs (params of both gathered from stacked pytrees inside
    the program; env params that all conditions share stay unbatched) and
    over episodes. When P x C x num_episodes episodes would
    exceed `max_episodes_per_call` (default: `memory_limit_bytes` over an
    estimate of one episode's footprint), the pairs run in chunks of equal
    size (the last one padded), so the program compiles once.
    Common random numbers: the episode keys are the same for every policy,
    condition and mode (see the module docstring). Actions in [-1, 1] are
    mapped to the env's action space, as in `train_sweep`'s evaluation.
    Returns are reproducible for a given chunking; on a GPU a different
    chunk size may change them at float32 rounding, which chaotic dynamics
    amplify (KS returns of O(100) moved by 1e-2 over 200 steps).

    Args:
        policy: the policy structure shared by all policies.
        stacked_policy_params: policy params with a leading axis of size P.
        base_params: the params every condition starts from.
        key: the key of the episodes (split into `num_episodes` keys).
        num_steps: steps per episode (default: base_params.max_steps_in_episode).
    """
    import pandas as pd

    conditions = tuple(conditions)
    if not conditions:
        raise ValueError("the condition grid is empty")
    if int(num_episodes) < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    num_episodes = int(num_episodes)
    modes = tuple(modes)
    if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
        raise ValueError(f"modes must be distinct values among {MODES}, got {modes}")
    num_policies = _leading_size(stacked_policy_params)
    if num_steps is None:
        num_steps = int(base_params.max_steps_in_episode)
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    num_steps = int(num_steps)

    params_list = [condition_params(env, base_params, c) for c in conditions]
    treedef, varies, env_leaves = _split_varying(params_list)
    low, high = _action_bounds(env, base_params)
    num_conditions = len(conditions)
    num_pairs = num_policies * num_conditions
    if max_episodes_per_call is None:
        max_episodes_per_call = max(1, int(memory_limit_bytes) // _episode_bytes(env, base_params, policy))
    pairs_per_call = max(1, min(num_pairs, int(max_episodes_per_call) // num_episodes))
    num_calls = -(-num_pairs // pairs_per_call)
    pair_policy = np.repeat(np.arange(num_policies), num_conditions)
    pair_condition = np.tile(np.arange(num_conditions), num_policies)
    pad = num_calls * pairs_per_call - num_pairs
    pair_policy = np.concatenate([pair_policy, np.zeros(pad, int)]).astype(np.int32)
    pair_condition = np.concatenate([pair_condition, np.zeros(pad, int)]).astype(np.int32)

    program = _grid_program(policy, env, num_episodes, num_steps, treedef, varies,
                            tuple(low.tolist()), tuple(high.tolist()))
    returns = np.empty((num_policies, num_conditions, len(modes), num_episodes))
    for m, mode in enumerate(modes):
        chunks = []
        for c in range(num_calls):
            sl = slice(c * pairs_per_call, (c + 1) * pairs_per_call)
            chunks.append(program(stacked_policy_params, env_leaves, pair_policy[sl],
                                  pair_condition[sl], key, mode == "deterministic"))
        flat = np.concatenate([np.asarray(x, np.float64) for x in chunks])[:num_pairs]
        returns[:, :, m, :] = flat.reshape(num_policies, num_conditions, num_episodes)

    base_std = float(np.asarray(base_params.init_std)) if hasattr(base_params, "init_std") else np.nan
    cond_cols = [{
        "family": c.family, "param": c.param, "value": c.value,
        "nominal": nominal_value(base_params, c),
        "init": BASE_INIT if c.init is None else c.init,
        "init_std": base_std if c.init_std is None else c.init_std,
    } for c in conditions]
    rows = []
    for p in range(num_policies):
        for c, cols in enumerate(cond_cols):
            for m, mode in enumerate(modes):
                r = returns[p, c, m]
                std = float(r.std(ddof=1)) if num_episodes > 1 else np.nan
                rows.append({"policy_index": p, **cols, "mode": mode, "mean_return": float(r.mean()),
                             "std_return": std, "num_episodes": num_episodes})
    summary = pd.DataFrame(rows)
    # long table: the summary's keys repeated per episode
    keys = summary.drop(columns=["mean_return", "std_return", "num_episodes"])
    episodes = keys.loc[keys.index.repeat(num_episodes)].reset_index(drop=True)
    episodes["episode"] = np.tile(np.arange(num_episodes), len(keys))
    episodes["return"] = returns.reshape(-1)
    return GridEvaluation(summary, episodes, returns, conditions, modes)


GROUP_KEYS = ["policy_index", "family", "param", "init", "init_std", "mode"]


def _reference(family: str, param: str, nominal: float, reference_value) -> float:
    if isinstance(reference_value, Mapping):
        for k in (param, family):
            if k in reference_value:
                return float(reference_value[k])
        return 0.0 if family in NOISE_PARAMS else nominal
    return float(reference_value) if family in NOISE_PARAMS else nominal


def excess_risk(
    df_returns,
    reference_value: float | Mapping[str, float] = 0.0,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    rng: RngLike = 0,
):
    """Excess risk and its rate, with paired percentile bootstrap intervals.

    For a group g = (policy, family, param, init, init_std, mode) with
    reference returns r0_e and returns r_e under condition s, e = 1..E
    (episode e shares its key across conditions: common random numbers),

        J0 = mean_e r0_e,  J = mean_e r_e,
        R = J0 - J = mean_e (r0_e - r_e),        rate = R / |J0|.

    Intervals: B resamples of the episode indices with replacement, the same
    indices for r0 and r (paired, as the episodes are), recomputing R*_b and
    rate*_b = R*_b / |J0*_b| from each; percentile interval of the
    replicates. The rate is NaN where J0 = 0.

    Args:
        df_returns: `GridEvaluation` or its `episodes` table (columns
            policy_index, family, param, value, nominal, init, init_std, mode,
            episode, return).
        reference_value: the reference value of the noise families (0: no
            noise); or a mapping from a family or param name to its reference.
            A dynamics param not in the mapping uses its `nominal` value.
    Returns:
        One row per group x condition (the reference's own row has R = 0):
        the group columns, value, reference_value, num_episodes,
        return_reference, return, excess_risk(_low, _high),
        excess_risk_rate(_low, _high).
    """
    df = df_returns.episodes if isinstance(df_returns, GridEvaluation) else df_returns
    needed = set(GROUP_KEYS) | {"value", "nominal", "episode", "return"}
    missing = sorted(needed - set(df.columns))
    if missing:
        raise ValueError(f"the returns table lacks columns {missing}")
    if len(df) == 0:
        raise ValueError("the returns table is empty")
    if int(num_resamples) < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if df.duplicated(GROUP_KEYS + ["value", "episode"]).any():
        raise ValueError("the returns table has several returns for one (group, value, episode)")

    gen = as_generator(rng)
    # one reshape of the whole table: rows (group, nominal, value), columns episodes
    wide = df.set_index(GROUP_KEYS + ["nominal", "value", "episode"])["return"].unstack("episode").sort_index()
    returns = wide.to_numpy(float)  # (rows, episodes); NaN where a row's group lacks that episode
    group_of_row = wide.groupby(level=GROUP_KEYS, sort=False, dropna=False).ngroup().to_numpy()
    values = wide.index.get_level_values("value").to_numpy(float)
    nominals = wide.index.get_level_values("nominal").to_numpy(float)
    families = wide.index.get_level_values("family").to_numpy()
    params = wide.index.get_level_values("param").to_numpy()

    num_rows = len(wide)
    ref_row = np.empty(num_rows, int)
    reference = np.empty(num_rows)
    num_ep = np.empty(num_rows, int)
    means = np.empty((num_rows, int(num_resamples)))  # the resampled mean returns of every row
    weights_cache: dict[int, np.ndarray] = {}
    order = np.argsort(group_of_row, kind="stable")
    bounds = np.flatnonzero(np.diff(group_of_row[order])) + 1
    for pos in np.split(order, bounds):
        where = {k: getattr(v, "item", lambda v=v: v)() for k, v in zip(GROUP_KEYS, wide.index[pos[0]])}
        r = returns[pos]
        r = r[:, ~np.all(np.isnan(r), axis=0)]  # episode columns of other groups
        if np.isnan(r).any():
            raise ValueError(f"group {where}: conditions do not share the same episodes "
                             "(pairing needs the same episode indices)")
        ref_value = _reference(families[pos[0]], params[pos[0]], nominals[pos[0]], reference_value)
        is_ref = np.isclose(values[pos], ref_value, rtol=1e-6, atol=1e-12)
        if not is_ref.any():
            raise ValueError(f"group {where}: no reference condition ({params[pos[0]]} = {ref_value:g}); "
                             f"values: {values[pos].tolist()}")
        e = r.shape[1]
        if e not in weights_cache:
            # resample b draws episode i counts[b, i] times: resampled means are one matmul
            idx = bootstrap_indices(e, num_resamples, gen)
            weights_cache[e] = np.stack([np.bincount(i, minlength=e) for i in idx]).T / e  # (E, B)
        means[pos] = r @ weights_cache[e]
        ref_row[pos] = pos[np.flatnonzero(is_ref)[0]]
        reference[pos] = ref_value
        num_ep[pos] = e

    j = np.nanmean(returns, axis=1)
    j_ref = j[ref_row]
    risk = j_ref - j
    risk_b = means[ref_row] - means
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(j_ref != 0, risk / np.abs(j_ref), np.nan)
        rate_b = np.where(means[ref_row] != 0, risk_b / np.abs(means[ref_row]), np.nan)
    risk_lo, risk_hi = percentile_interval(risk_b, confidence, axis=1)
    rate_lo, rate_hi = percentile_interval(rate_b, confidence, axis=1)
    out = wide.index.to_frame(index=False)[GROUP_KEYS + ["value"]]
    return out.assign(
        reference_value=reference, num_episodes=num_ep, return_reference=j_ref, **{"return": j},
        excess_risk=risk, excess_risk_low=risk_lo, excess_risk_high=risk_hi,
        excess_risk_rate=rate, excess_risk_rate_low=rate_lo, excess_risk_rate_high=rate_hi,
    )

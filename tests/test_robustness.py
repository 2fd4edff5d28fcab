"""entrolab.measures.robustness: conditions, the evaluation grid, the excess risk.

Known answers: a policy whose mean network is zero acts independently of its
observations, so under common random numbers its returns do not depend on
the observation noise at all (excess risk exactly 0); the reference
conditions of all families are the same runs; a grid cell equals a direct
`episode_returns` call.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from entrolab.agents.evaluate import episode_returns
from entrolab.agents.policy import GaussianPolicy
from entrolab.envs import make
from entrolab.measures.robustness import (
    Condition,
    condition_grid,
    condition_params,
    evaluate_grid,
    excess_risk,
    stack_pytrees,
)

NUM_EPISODES = 6
STEPS = 20
# a small KS grid: its equilibria (Newton, once per session) and programs are quick to build
KS_SMALL = {"num_points": 16, "num_actuators": 4, "num_sensors": 4}


def lorenz_policies():
    """Policy 0: zero mean network (action 0, or pure noise when sampled);
    policy 1: a random network scaled up so that its action depends on the observation."""
    policy = GaussianPolicy(obs_dim=3, action_dim=3, hidden_sizes=(8,))
    zero = policy.init(jax.random.key(0), init_log_std=-1.0)
    zero = {**zero, "mean_net": jax.tree.map(jnp.zeros_like, zero["mean_net"])}
    active = policy.init(jax.random.key(1), init_log_std=-1.0)
    active = {**active, "mean_net": jax.tree.map(lambda w: 30.0 * w, active["mean_net"])}
    return policy, stack_pytrees([zero, active])


@pytest.fixture(scope="module")
def lorenz_grid():
    env, params = make("lorenz", max_steps_in_episode=STEPS)
    policy, stacked = lorenz_policies()
    grid = condition_grid(params, ["C+", "C-"], obs_noise=[0.1, 0.5], action_noise=[0.3],
                          dynamics={"rho": [32.0]})
    # 2 x 14 = 28 (policy, condition) pairs in calls of 8: three full chunks and a padded one
    result = evaluate_grid(policy, stacked, env, params, grid, jax.random.key(7), NUM_EPISODES,
                           max_episodes_per_call=8 * NUM_EPISODES)
    return env, params, policy, stacked, grid, result


def test_condition_grid_shape_and_references():
    _, params = make("lorenz")
    grid = condition_grid(params, ["C+", "C-", "origin"], obs_noise=[0.1, 0.2, 0.5], action_noise=[0.0, 0.3],
                          dynamics={"rho": [24.0, 32.0], "sigma": [10.0]})
    # per init: obs 0 + 3; action 2 (0 given); rho 28 + 2; sigma 1 (nominal given)
    assert len(grid) == 3 * (4 + 2 + 3 + 1)
    first = grid[:10]
    assert [(c.family, c.param, c.value) for c in first] == [
        ("obs_noise", "obs_noise_std", 0.0), ("obs_noise", "obs_noise_std", 0.1),
        ("obs_noise", "obs_noise_std", 0.2), ("obs_noise", "obs_noise_std", 0.5),
        ("action_noise", "action_noise_std", 0.0), ("action_noise", "action_noise_std", 0.3),
        ("dynamics", "rho", 28.0), ("dynamics", "rho", 24.0), ("dynamics", "rho", 32.0),
        ("dynamics", "sigma", 10.0),
    ]
    assert {c.init for c in grid} == {"C+", "C-", "origin"} and len(set(grid)) == len(grid)
    assert len(condition_grid(params, ["C+"], obs_noise=[0.1], include_reference=False)) == 1


def test_condition_params_sets_the_condition():
    env, params = make("lorenz")
    p = condition_params(env, params, Condition.obs_noise(0.2, init="C-", init_std=0.5))
    assert (p.obs_noise_std, p.init_equilibrium, p.init_std) == (0.2, 2, 0.5)
    assert p.rho == params.rho and p.action_noise_std == 0.0
    p = condition_params(env, params, Condition.dynamics("rho", 32.0, init="origin"))
    assert (p.rho, p.init_equilibrium, p.init_std) == (32.0, 0, params.init_std)
    assert condition_params(env, params, Condition.action_noise(0.1)).init_equilibrium == params.init_equilibrium

    ks, ks_params = make("ks", **KS_SMALL)
    p = condition_params(ks, ks_params, Condition.dynamics("length", 23.0, init="E3"))
    # the initial centre is the equilibrium of the nominal L (the task), not of L = 23
    np.testing.assert_allclose(p.u_init, ks.equilibrium("E3", 22.0), rtol=1e-6, atol=1e-6)
    assert p.length == 23.0
    np.testing.assert_array_equal(p.u_target, ks_params.u_target)


def test_bad_conditions_are_clear_errors():
    env, params = make("lorenz")
    with pytest.raises(ValueError, match="unknown condition family"):
        Condition("wind", "rho", 1.0)
    with pytest.raises(ValueError, match="sets 'obs_noise_std'"):
        Condition("obs_noise", "action_noise_std", 0.1)
    with pytest.raises(ValueError, match="not a dynamics param"):
        Condition.dynamics("init_std", 0.3)
    with pytest.raises(ValueError, match="finite"):
        Condition.obs_noise(float("nan"))
    with pytest.raises(ValueError, match="unknown initial distribution 'E1'"):
        condition_params(env, params, Condition.obs_noise(0.1, init="E1"))
    ks, ks_params = make("ks", **KS_SMALL)
    with pytest.raises(ValueError, match="unknown initial distribution 'C\\+'"):
        condition_params(ks, ks_params, Condition.obs_noise(0.1, init="C+"))
    with pytest.raises(ValueError, match="no field 'rho'"):
        condition_params(ks, ks_params, Condition.dynamics("rho", 30.0))
    with pytest.raises(ValueError, match=">= 0"):
        condition_params(env, params, Condition.obs_noise(-0.1))
    with pytest.raises(ValueError, match="empty"):
        condition_grid(params, ["C+"])
    policy, stacked = lorenz_policies()
    with pytest.raises(ValueError, match="empty"):
        evaluate_grid(policy, stacked, env, params, [], jax.random.key(0))
    with pytest.raises(ValueError, match="num_episodes"):
        evaluate_grid(policy, stacked, env, params, [Condition.obs_noise(0.1)], jax.random.key(0), 0)
    with pytest.raises(ValueError, match="modes"):
        evaluate_grid(policy, stacked, env, params, [Condition.obs_noise(0.1)], jax.random.key(0), 2,
                      modes=("greedy",))
    one = jax.tree.map(lambda x: x[0], stacked)
    with pytest.raises(ValueError, match="stacked"):
        evaluate_grid(policy, one, env, params, [Condition.obs_noise(0.1)], jax.random.key(0), 2)


def test_grid_tables_have_one_row_per_policy_condition_mode(lorenz_grid):
    _, _, _, _, grid, result = lorenz_grid
    assert len(grid) == 2 * 7
    assert result.returns.shape == (2, 14, 2, NUM_EPISODES)
    s = result.summary
    assert len(s) == 2 * 14 * 2
    assert list(s.columns) == ["policy_index", "family", "param", "value", "nominal", "init", "init_std",
                               "mode", "mean_return", "std_return", "num_episodes"]
    assert not s.duplicated(["policy_index", "family", "param", "value", "init", "mode"]).any()
    assert len(result.episodes) == len(s) * NUM_EPISODES
    np.testing.assert_allclose(s["mean_return"], result.returns.mean(-1).reshape(-1))
    np.testing.assert_allclose(s["std_return"], result.returns.std(-1, ddof=1).reshape(-1))
    back = result.episodes.groupby(["policy_index", "family", "param", "value", "init", "mode"],
                                   sort=False)["return"].mean().to_numpy()
    np.testing.assert_allclose(back, s["mean_return"])
    assert np.isfinite(result.returns).all() and (result.returns < 0).all()


def test_grid_cell_equals_a_direct_episode_returns_call(lorenz_grid):
    """The last pair sits in the padded last chunk; sampled actions exercise the policy keys."""
    env, params, policy, stacked, grid, result = lorenz_grid
    condition = grid[-1]
    assert condition == Condition.dynamics("rho", 32.0, "C-")
    direct = jax.jit(lambda p, e, k: episode_returns(policy, p, env, e, k, NUM_EPISODES, STEPS, False))(
        jax.tree.map(lambda x: x[1], stacked), condition_params(env, params, condition), jax.random.key(7))
    np.testing.assert_allclose(result.returns[1, -1, 1], np.asarray(direct), rtol=1e-5)


def test_observation_blind_policy_has_exactly_zero_obs_noise_excess_risk(lorenz_grid):
    *_, result = lorenz_grid
    risk = excess_risk(result, num_resamples=200)
    obs = risk[risk["family"] == "obs_noise"]
    blind = obs[obs["policy_index"] == 0]
    assert len(blind) == 2 * 2 * 3  # inits x modes x {0, 0.1, 0.5}
    for col in ("excess_risk", "excess_risk_low", "excess_risk_high", "excess_risk_rate"):
        assert (blind[col] == 0.0).all(), col
    # not vacuous: the same noise moves the other policy, and action noise moves the blind one
    seeing = obs[(obs["policy_index"] == 1) & (obs["value"] == 0.5)]
    assert (seeing["excess_risk"].abs() > 1e-4).all()
    act = risk[(risk["family"] == "action_noise") & (risk["policy_index"] == 0) & (risk["value"] > 0)]
    assert (act["excess_risk"].abs() > 1e-4).all()


def test_common_random_numbers_make_the_references_of_all_families_identical(lorenz_grid):
    *_, grid, result = lorenz_grid
    for init in ("C+", "C-"):
        refs = [grid.index(Condition.obs_noise(0.0, init)), grid.index(Condition.action_noise(0.0, init)),
                grid.index(Condition.dynamics("rho", 28.0, init))]
        for r in refs[1:]:
            np.testing.assert_array_equal(result.returns[:, r], result.returns[:, refs[0]])
    # and the episodes differ from one another (one key per episode, not one key for all)
    assert np.unique(result.returns[0, 0, 0]).size == NUM_EPISODES


def test_excess_risk_estimator_on_known_returns():
    """Paired episodes: a constant shift of every episode has a zero-width interval."""
    ref = np.array([-1.0, -2.0, -3.0, -6.0])
    rows = []
    for value, returns in [(0.0, ref), (0.1, ref - 1.0), (0.2, ref[::-1] - 1.0)]:
        for e, r in enumerate(returns):
            rows.append({"policy_index": 0, "family": "obs_noise", "param": "obs_noise_std", "value": value,
                         "nominal": 0.0, "init": "C+", "init_std": 0.1, "mode": "deterministic",
                         "episode": e, "return": r})
    out = excess_risk(pd.DataFrame(rows), num_resamples=500).set_index("value")
    assert out.loc[0.0, "excess_risk"] == 0.0 and out.loc[0.0, "return_reference"] == -3.0
    assert out.loc[0.1, "excess_risk"] == pytest.approx(1.0)
    assert out.loc[0.1, "excess_risk_rate"] == pytest.approx(1.0 / 3.0)
    assert out.loc[0.1, ["excess_risk_low", "excess_risk_high"]].tolist() == pytest.approx([1.0, 1.0])
    # the same mean shift, unpaired (episodes reversed): same estimate, a wide interval
    assert out.loc[0.2, "excess_risk"] == pytest.approx(1.0)
    assert out.loc[0.2, "excess_risk_high"] - out.loc[0.2, "excess_risk_low"] > 1.0
    # pairing needs every condition of a group to have the same episodes
    unpaired = pd.DataFrame(rows[:-1])
    with pytest.raises(ValueError, match="same episodes"):
        excess_risk(unpaired, num_resamples=10)
    # a reference value other than 0
    shifted = excess_risk(pd.DataFrame(rows), reference_value=0.1, num_resamples=10).set_index("value")
    assert shifted.loc[0.0, "excess_risk"] == pytest.approx(-1.0)
    assert shifted.loc[0.0, "reference_value"] == 0.1


def test_excess_risk_refuses_a_missing_reference(lorenz_grid):
    *_, result = lorenz_grid
    no_ref = result.episodes[~((result.episodes["family"] == "dynamics") & (result.episodes["value"] == 28.0))]
    with pytest.raises(ValueError, match="no reference condition"):
        excess_risk(no_ref, num_resamples=10)
    with pytest.raises(ValueError, match="lacks columns"):
        excess_risk(result.episodes.drop(columns=["episode"]))
    with pytest.raises(ValueError, match="empty"):
        excess_risk(result.episodes.iloc[:0])
    # a dynamics reference given explicitly
    out = excess_risk(no_ref, reference_value={"rho": 32.0}, num_resamples=10)
    assert (out.loc[out["family"] == "dynamics", "excess_risk"] == 0.0).all()


def test_ks_grid_runs_with_equilibria_and_length():
    env, params = make("ks", max_steps_in_episode=4, **KS_SMALL)
    policy = GaussianPolicy(obs_dim=4, action_dim=4, hidden_sizes=(8,))
    stacked = stack_pytrees([policy.init(jax.random.key(0))])
    grid = condition_grid(params, ["E1", "E3"], obs_noise=[0.2], dynamics={"length": [23.0]})
    result = evaluate_grid(policy, stacked, env, params, grid, jax.random.key(0), 3, modes=("deterministic",))
    assert result.returns.shape == (1, 2 * 4, 1, 3)
    assert np.isfinite(result.returns).all()
    r = result.returns[0, :, 0]
    np.testing.assert_array_equal(r[0], r[2])  # obs_noise 0 and length 22: the same runs
    assert not np.allclose(r[0], r[3])  # L = 23 changes the physics
    assert not np.allclose(r[0], r[4])  # E1 and E3 starts differ


@pytest.mark.slow  # ~25 s; the attacks themselves are checked in the default suite (test_complexity.py)
def test_the_measures_unit_reports_what_attacks_cost():
    """The study's attacked-rollout columns on an untrained policy: the excess risk under the per-state
    attack equals clean minus attacked returns computed directly, and the simulator attack costs at
    least as much as random directions of the same norm."""
    from entrolab.measures.adversarial import attacked_episode_returns
    from entrolab.measures.robustness import Condition, condition_params
    from entrolab.study.config import parse_config
    from entrolab.studies.robustness.units import _attacked_measures

    config = parse_config(dict(name="t", env="lorenz", alphas=[0.0], env_options=dict(max_steps_in_episode=10),
                               evaluate=dict(inits=["C+"]),
                               measures=dict(adversarial_epsilons=[0.5], adversarial_steps=3, adversarial_episodes=2,
                                             adversarial_horizon=2, adversarial_starts=3)))
    env, base = make("lorenz", max_steps_in_episode=10)
    policy = GaussianPolicy(obs_dim=3, action_dim=3, hidden_sizes=(4,))
    params = policy.init(jax.random.key(0))
    columns = _attacked_measures(config, policy, env, base, jax.random.key(1))(params, 0.5, "0.5")
    assert set(columns) == {"attack_excess_eps0.5", "random_excess_eps0.5", "simulator_worst_excess_eps0.5",
                            "simulator_greedy_excess_eps0.5", "simulator_random_excess_eps0.5"}
    assert all(np.isfinite(v) for v in columns.values())
    assert columns["simulator_worst_excess_eps0.5"] > max(0.0, columns["simulator_random_excess_eps0.5"])
    # the same episodes by hand (the unit's episode key is the first of three split from its key)
    k_ep = jax.random.split(jax.random.key(1), 3)[0]
    ip = condition_params(env, base, Condition.obs_noise(0.0, "C+", config.evaluate.init_std))
    clean, worst = (attacked_episode_returns(policy, params, env, ip, k_ep, 2, 10, 0.5, a, 3) for a in ("none", "worst"))
    np.testing.assert_allclose(columns["attack_excess_eps0.5"], float(np.mean(clean) - np.mean(worst)), rtol=1e-5)
    none = parse_config(dict(name="t", env="lorenz", alphas=[0.0], measures=dict(adversarial_epsilons=[0.5])))
    assert _attacked_measures(none, policy, env, base, jax.random.key(1)) is None


def test_the_rate_interval_against_a_direct_paired_bootstrap():
    """Negative returns (costs): the rate R / |J0| and its interval must be positive when the perturbation
    hurts, and match a paired bootstrap written here (a different random stream, so to Monte Carlo
    precision). Catches replicates that lose the absolute value of J0 (the interval would flip sign)."""
    rng = np.random.default_rng(0)
    ref = -10.0 + rng.normal(0, 1.0, 60)
    pert = ref - 2.0 + rng.normal(0, 0.5, 60)
    rows = [{"policy_index": 0, "family": "obs_noise", "param": "obs_noise_std", "value": v, "nominal": 0.0,
             "init": "C+", "init_std": 0.1, "mode": "deterministic", "episode": e, "return": r}
            for v, returns in [(0.0, ref), (0.1, pert)] for e, r in enumerate(returns)]
    out = excess_risk(pd.DataFrame(rows), num_resamples=4000, rng=1).set_index("value").loc[0.1]
    assert out["excess_risk_rate"] == pytest.approx((ref.mean() - pert.mean()) / abs(ref.mean()))
    idx = np.random.default_rng(7).integers(0, 60, size=(4000, 60))
    reps = (ref[idx].mean(1) - pert[idx].mean(1)) / np.abs(ref[idx].mean(1))
    lo, hi = np.percentile(reps, [2.5, 97.5])
    assert 0 < out["excess_risk_rate_low"] < out["excess_risk_rate"] < out["excess_risk_rate_high"]
    assert out["excess_risk_rate_low"] == pytest.approx(lo, abs=0.01)
    assert out["excess_risk_rate_high"] == pytest.approx(hi, abs=0.01)

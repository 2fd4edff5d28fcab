"""The landscape study kind end to end on configs/tiny-landscape.toml (slow: ~45 s of study, then its
tests), its config errors and the join of policy probes (default suite)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.study.config import StudyConfigError, load_config, parse_config
from entrolab.study.runner import run_study
from entrolab.study.tables import load_tables
from entrolab.tabular.gridworld import objective, two_goal_gridworld

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny-landscape.toml"


# the tiny study takes ~45 s alone (mostly compiling); with the checkpoint probes these tests moved to
# `make test-slow` to keep the default suite within its 10 minutes
SLOW_STUDY = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("landscape")
    run_study(TINY, out)
    return out, load_config(TINY), load_tables(out)


@SLOW_STUDY
def test_tables_agree_with_each_other_and_with_direct_computations(study):
    out, config, tables = study
    g = config.gridworld
    runs, summary = tables["gridworld_runs"], tables["gridworld_summary"]
    assert len(runs) == (len(g.taus) + 1) * len(g.step_sizes) * g.inits  # + the decayed schedule
    # the summary's fractions are the runs' (recomputed here by pandas, not by the study)
    direct = runs.groupby(["schedule", "tau", "step_size"])["reached_best"].mean().to_numpy()
    np.testing.assert_allclose(summary.sort_values(["schedule", "tau", "step_size"])["frac_best"], direct)
    assert (summary["frac_best_low"] <= summary["frac_best"]).all() and (summary["frac_best"] <= summary["frac_best_high"]).all()
    # the probes: every (tau, init, point, objective) x directions x epsilons
    p = config.probes
    assert len(tables["probes"]) == len(g.taus) * p.inits * 2 * 2 * p.directions * len(p.epsilons)
    assert len(tables["probe_classes"]) == len(g.taus) * p.inits * 2 * 2 * len(p.epsilons)
    # the interpolation's ends are the solutions: J_0 at t = 0 and 1 is their final return in the runs table
    interp = tables["interpolation"]
    first = interp[(interp["pair"] == "tau0_solutions") & (interp["tau"] == 0.0)]
    assert len(first) == p.interpolation_points
    r0 = runs[(runs["schedule"] == "constant") & (runs["tau"] == 0.0) & (runs["step_size"] == g.step_sizes[0])]
    for t, init in ((0.0, first["init_a"].iloc[0]), (1.0, first["init_b"].iloc[0])):
        got = first.loc[np.isclose(first["t"], t), "return"].iloc[0]
        assert got == pytest.approx(r0.loc[r0["init"] == init, "final_return"].iloc[0], rel=1e-9)
    assert bool(r0.loc[r0["init"] == first["init_a"].iloc[0], "reached_best"].iloc[0])
    assert not bool(r0.loc[r0["init"] == first["init_b"].iloc[0], "reached_best"].iloc[0])
    # the report opens with the answer, quoting the summary at the first step size
    from entrolab.report.document import fmt_ci

    md = (out / "report" / "report.md").read_text()
    answer = md.split("\n## ", 2)[1]
    assert answer.startswith("Answer\n") and "figures/gridworld_success.png" in answer
    const = summary[(summary["schedule"] == "constant") & np.isclose(summary["step_size"], g.step_sizes[0])]
    low = const.sort_values("tau").iloc[0]
    assert f"a fraction {fmt_ci(low['frac_best'], low['frac_best_low'], low['frac_best_high'])}" in answer


@SLOW_STUDY
def test_curvature_exact_and_lanczos_agree_at_the_most_negative_eigenvalue(study):
    _, _, tables = study
    curv = tables["curvature"]
    np.testing.assert_allclose(curv["lanczos_smallest"], curv["smallest"], rtol=1e-6)
    assert (curv["lanczos_largest"] <= curv["largest"] + 1e-9).all()  # Ritz values lie inside the spectrum


@SLOW_STUDY
def test_stored_final_parameters_give_the_stored_return(study):
    out, config, tables = study
    with np.load(out / "units" / "gridworld" / "constant" / "params.npz") as z:
        kernel, bias = z["final_kernel"], z["final_bias"]
    g = config.gridworld
    with jax.enable_x64(True):
        mdp, initial, _ = two_goal_gridworld(g.size, g.best_reward, g.second_reward, g.gamma)
        value = float(objective({"kernel": jnp.asarray(kernel[1, 0, 3]), "bias": jnp.asarray(bias[1, 0, 3])},
                                mdp, initial, 0.0))
    runs = tables["gridworld_runs"]
    row = runs[(runs["schedule"] == "constant") & (runs["tau"] == g.taus[1]) & (runs["step_size"] == g.step_sizes[0])
               & (runs["init"] == 3)]
    assert value == pytest.approx(row["final_return"].iloc[0], rel=1e-9)
    assert (out / "report" / "index.html").exists()
    assert {"gridworld_success.png", "probe_scatter.png", "interpolation.png"} <= {
        f.name for f in (out / "report" / "figures").iterdir()}


@pytest.mark.parametrize("change, message", [
    (dict(gridworld=dict(updates=15, record_every=10)), "multiple of record_every"),
    (dict(gridworld=dict(taus=[0.1, 0.1])), "distinct"),
    (dict(gridworld=dict(second_reward=6.0)), "second_reward must be below"),
    (dict(probes=dict(lanczos=500)), "at most the policy's 108 parameters"),
    (dict(probes=dict(inits=100)), "at most gridworld.inits"),
])
def test_config_mistakes(change, message):
    with pytest.raises(StudyConfigError, match=message):
        parse_config({"kind": "landscape", "name": "x", **change})


@SLOW_STUDY
def test_probes_of_trained_checkpoints(tmp_path):
    """[policies]: checkpoints laid out as a study's (two untrained Lorenz policies here); the stored
    centre value is the sampled return at the checkpoint, recomputed directly with the unit's key."""
    from entrolab.agents.evaluate import episode_returns
    from entrolab.agents.policy import GaussianPolicy
    from entrolab.checkpoint import load_policy, save_checkpoint
    from entrolab.envs import make
    from entrolab.study.units import unit_key

    policy = GaussianPolicy(obs_dim=3, action_dim=3, hidden_sizes=(4,))
    other = tmp_path / "other"
    for seed, alpha in [(0, 0.0), (1, 0.1)]:
        params = policy.init(jax.random.key(seed))
        save_checkpoint(other / "train" / "v" / "checkpoints" / f"run{seed}", policy, {"policy": params},
                        algorithm="ppo", config={}, hparams={},
                        env={"name": "lorenz", "overrides": {"max_steps_in_episode": 10, "obs_noise_std": 0.1}},
                        extra={"seed": seed, "alpha": alpha})
    config = parse_config({"kind": "landscape", "name": "p",
                           "gridworld": {"size": 2, "taus": [0.0], "inits": 2, "updates": 20},
                           "probes": {"directions": 4, "inits": 1, "lanczos": 4, "hutchinson": 4,
                                      "interpolation_points": 3},
                           "policies": {"study": str(other), "directions": 6, "epsilons": [0.1], "episodes": 3,
                                        "repeats": 3}})
    out = tmp_path / "study"
    run_study(config, out, report=True)
    tables = load_tables(out)
    probes, classes = tables["policy_probes"], tables["policy_classes"]
    assert len(probes) == 2 * 6 and len(classes) == 2
    assert set(classes["alpha"]) == {0.0, 0.1}
    loaded = load_policy(other / "train" / "v" / "checkpoints" / "run1")
    env, env_params = make("lorenz", max_steps_in_episode=10)  # noise-free, as the unit evaluates
    k_eval = jax.random.split(unit_key(config.seed, "policies"), 3)[1]
    direct = float(episode_returns(policy, loaded.params, env, env_params, k_eval, 3, 10, True).mean())
    got = classes.loc[classes["seed"] == 1, "j_center"].iloc[0]
    assert got == pytest.approx(direct, rel=1e-6)
    assert "Trained policies" in (out / "report" / "report.md").read_text()
    with pytest.raises(StudyConfigError, match="no trained checkpoints"):
        parse_config({"kind": "landscape", "name": "p", "policies": {"study": str(tmp_path / "none")}})


@SLOW_STUDY
def test_continuous_std_sweep_tables(study):
    from entrolab.checkpoint import load_policy
    from entrolab.envs import make
    from entrolab.measures.landscape import checkpoint_objective
    from entrolab.study.units import unit_key

    out, config, tables = study
    c = config.continuous
    runs = tables["continuous_runs"]
    assert len(runs) == len(c.stds) * c.seeds and (runs["algo"] == "reinforce").all()
    # init, one mid-training snapshot per fraction, final
    points = 2 + len(c.snapshots)
    assert len(tables["continuous_probes"]) == len(runs) * points * c.directions * len(c.epsilons)
    classes = tables["continuous_classes"]
    assert sorted(classes.groupby("point")["env_steps"].first()) == [0, *(
        int(f * c.steps) for f in c.snapshots), int(runs["env_steps"].iloc[0])]
    interp = tables["continuous_interpolation"]
    assert len(interp) == len(c.stds) * (c.seeds - 1) * c.interpolation_points
    # each policy keeps the std it was trained with
    for _, run in runs.iterrows():
        lp = load_policy(out / "units" / "continuous" / "train" / run["checkpoint"])
        np.testing.assert_allclose(np.exp(np.asarray(lp.params["log_std"])), run["alpha"], rtol=1e-6)
    # the segment's start is seed a's final policy, evaluated with the unit's interpolation key
    row = interp[(interp["std"] == c.stds[0]) & np.isclose(interp["t"], 0.0)].iloc[0]
    ckpt = runs[(runs["alpha"] == c.stds[0]) & (runs["seed"] == row["seed_a"])]["checkpoint"].iloc[0]
    lp = load_policy(out / "units" / "continuous" / "train" / ckpt)
    env, env_params = make(c.env)
    assert c.objective == "stochastic"  # the sampled policy's return with its std fixed
    f, point = checkpoint_objective(lp, env, env_params, c.episodes, deterministic=False, perturb_log_std=False)
    assert "log_std" not in point
    k_int = jax.random.fold_in(unit_key(config.seed, "continuous/probes"), 1)
    assert float(f(point, k_int)) == pytest.approx(row["return"], rel=1e-5, abs=1e-7)


def test_policy_probes_are_joined_with_the_probed_studys_complexity(tmp_path):
    import pandas as pd

    from entrolab.studies.landscape.tables import with_complexity

    classes = pd.DataFrame({"checkpoint": ["train/v1/checkpoints/alpha=0_seed=0", "train/v2/checkpoints/alpha=0_seed=0"],
                            "seed": [0, 0], "mean_curvature_proj": [-1.0, -2.0]})
    assert with_complexity(classes, tmp_path) is classes  # no tables there: unchanged
    (tmp_path / "tables").mkdir()
    pd.DataFrame({"variant": ["v2", "v1"], "run_id": ["alpha=0_seed=0"] * 2, "fisher_total_mean": [20.0, 10.0],
                  "other": [1, 2]}).to_parquet(tmp_path / "tables" / "complexity.parquet")
    out = with_complexity(classes, tmp_path)
    assert list(out["fisher_total_mean"]) == [10.0, 20.0] and "other" not in out.columns

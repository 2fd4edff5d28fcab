"""The study runner: config validation, the tables of a finished study, and resuming
after a real SIGKILL with the same results as an uninterrupted study."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from entrolab.studies.robustness.schema import TABLES, policy_rates
from entrolab.study.config import StudyConfigError, load_config, parse_config
from entrolab.study.registry import Registry
from entrolab.study.runner import run_study
from entrolab.study.tables import load_tables

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny-test.toml"
BASE = dict(name="t", env="lorenz", alphas=[0.0, 0.1])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(colour="red"), r"colour: unknown key"),
        (dict(train=dict(stepz=10)), r"train: unknown key 'stepz' \(did you mean 'steps'\?\)"),
        (dict(train=dict(hidden_sizes=[8])), r"train: hidden_sizes: .*set train.hidden"),
        (dict(train=dict(learning_rate=-1.0)), r"train: .*learning_rate"),
        (dict(train=dict(epochs=2, num_epochs=2)), r"train: epochs and num_epochs are the same option"),
        (dict(seeds="4"), r"seeds: Input should be a valid integer"),
        (dict(train=dict(steps=1e6)), r"train.steps: Input should be a valid integer"),
        (dict(alphas=[0.0, -0.1]), r"alphas.1: Input should be greater than or equal to 0"),
        (dict(alphas=[]), r"alphas: List should have at least 1 item"),
        (dict(alphas=[0.1, 0.1]), r"alphas must be distinct"),
        (dict(env="pendulum"), r"unknown env 'pendulum'"),
        (dict(env_options=dict(rhoo=3.0)), r"env_options: lorenz: unknown override"),
        (dict(evaluate=dict(inits=["E1"])), r"evaluate.inits: unknown \['E1'\] for lorenz"),
        (dict(evaluate=dict(obs_noise=[0.1, 0.2])), r"obs_noise must include 0"),
        (dict(evaluate=dict(obs_noise=[0.0, -0.2])), r"evaluate.obs_noise.1: Input should be greater"),
        (dict(evaluate=dict(dynamics=dict(param="rho", values=[20.0, 30.0]))), r"must include the nominal rho = 28"),
        (dict(evaluate=dict(dynamics=dict(param="obs_noise_std", values=[0.0]))), r"not a scalar dynamics parameter"),
        (dict(evaluate=dict(modes=["greedy"])), r"evaluate.modes.0: Input should be 'deterministic' or 'stochastic'"),
        (dict(train=dict(bounding=["squash"])), r"train.bounding.0: Input should be 'clip', 'tanh' or 'tanh_squashed'"),
        (dict(train=dict(entropy_bonus="squashed")), r"train: .*entropy_bonus = \"squashed\" needs action_bounding"),
        (dict(train=dict(obs_normalization=[True], normalize_observations=False)),
         r"obs_normalization \(a factor\) and normalize_observations"),
        (dict(train=dict(steps=100)), r"smaller than one rollout"),
        (dict(measures=dict(adversarial_horizon=5)), r"need adversarial_epsilons"),
        (dict(measures=dict(adversarial_epsilons=[0.1], adversarial_horizon=1000)), r"adversarial_horizon must be shorter"),
        (dict(measures=dict(sharpness_sigmas=[0.0])), r"measures.sharpness_sigmas.0: Input should be greater than 0"),
    ],
)
def test_every_config_mistake_is_a_clear_error(change, message):
    with pytest.raises(StudyConfigError, match=message):
        parse_config({**BASE, **change})


def test_config_files_errors_and_presets(tmp_path):
    with pytest.raises(StudyConfigError, match="no such study config"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\nenv = \n")
    with pytest.raises(StudyConfigError, match="not valid TOML"):
        load_config(bad)
    for preset in ["lorenz-quick", "lorenz-paper", "ks-paper", "tiny-test", "lorenz-factors", "landscape-gridworld",
                   "landscape-continuous", "landscape-continuous-lorenz", "state-entropy-room", "tiny-state-entropy",
                   "tiny-landscape"]:
        config = load_config(ROOT / "configs" / f"{preset}.toml")
        assert config.name == preset
    paper = load_config(ROOT / "configs" / "ks-paper.toml")
    assert len(paper.alphas) == 6 and max(paper.alphas) == 0.5 and paper.seeds >= 6
    assert len(paper.evaluate.obs_noise) >= 5 and paper.train.steps >= 2_000_000


def test_variants_are_the_grid_of_training_factors():
    config = parse_config({**BASE, "train": dict(schedule=["linear", "constant"], ent_horizon=[1e5, 2e5],
                                                 hidden=[[8], [8, 8]], bounding=["clip", "tanh"])})
    variants = config.variants()
    # constant schedules ignore the horizon: 2 x 2 x 2 linear + 1 x 2 x 2 constant
    assert len(variants) == 12 and len({v["variant"] for v in variants}) == 12


def test_bounding_and_observation_normalisation_as_factors():
    from entrolab.studies.robustness.units import plan

    plain = parse_config({**BASE, "train": dict(bounding=["clip", "tanh"])})
    both = parse_config({**BASE, "train": dict(bounding=["clip", "tanh", "tanh_squashed"],
                                               obs_normalization=[True, False])})
    variants = both.variants()
    assert len(variants) == 6
    opts = {v["variant"]: both.variant_ppo_options(v) for v in variants}
    squashed = [n for n, o in opts.items() if o["entropy_bonus"] == "squashed"]
    assert sorted(squashed) == sorted(n for n in opts if "_tanh_squashed_" in n)
    assert all(opts[n]["action_bounding"] == "tanh" for n in squashed)
    assert {o["normalize_observations"] for o in opts.values()} == {True, False}
    assert all(o["normalize_observations"] == n.endswith("_obsnorm") for n, o in opts.items())
    # the resolved config (what a study directory stores and the units read back) validates again
    again = parse_config(json.loads(both.model_dump_json()))
    assert [v["variant"] for v in again.variants()] == [v["variant"] for v in variants]
    # without the new factor, variants keep their names and training fingerprints
    fps = {u.id: u.fingerprint for u in plan(plain) if u.kind == "train"}
    assert set(fps) == {f"train/{v['variant']}" for v in plain.variants()}
    assert all("obsnorm" not in k and "rawobs" not in k for k in fps)
    again = {u.id: u.fingerprint for u in plan(parse_config({**BASE, "train": dict(bounding=["clip", "tanh"])}))
             if u.kind == "train"}
    assert again == fps


def test_cli_refuses_a_bad_config(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nenv = "lorenz"\nalphas = [0.0]\nseedz = 3\n')
    proc = subprocess.run([sys.executable, "-m", "entrolab.cli", "study", str(bad), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "seedz: unknown key" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


# ---- end to end ------------------------------------------------------------------
def _env(cache: Path) -> dict:
    env = dict(os.environ, ENTROLAB_JAX_CACHE=str(cache), PYTHONUNBUFFERED="1")
    env.pop("JAX_PLATFORMS", None)
    return env


def _study(out: Path, cache: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "entrolab.cli", "study", str(TINY), "--out", str(out), "--no-report"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=_env(cache),
                            **kwargs)


def _done_units(out: Path) -> int:
    path = out / "registry.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM units WHERE state = 'done'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


VOLATILE = {"wall_time_s", "train_time_s", "compile_time_s"}


def _compare(a: dict, b: dict) -> None:
    assert set(a) == set(b) == set(TABLES)
    for name in TABLES:
        x, y = a[name], b[name]
        cols = [c for c in x.columns if c not in VOLATILE]
        pd.testing.assert_frame_equal(x[cols].reset_index(drop=True), y[cols].reset_index(drop=True),
                                      check_exact=True, obj=name)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    proc = _study(root / "full", root / "cache")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    return root


def test_a_finished_study_has_tidy_tables(uninterrupted):
    out = uninterrupted / "full"
    config = load_config(TINY)
    tables = load_tables(out)
    assert set(tables) == set(TABLES)
    assert set(Registry(out / "registry.sqlite").states().values()) == {"done"}
    runs = tables["runs"]
    n_pol = len(config.alphas) * config.seeds
    assert len(runs) == n_pol and not runs.duplicated(["variant", "alpha", "seed"]).any()
    # one row per policy x condition x mode: (obs 2 + action 2 + dynamics 2) x 2 inits x 2 modes
    n_cond = (2 + 2 + 2) * len(config.inits)
    returns = tables["returns"]
    assert len(returns) == n_pol * n_cond * 2
    assert not returns.duplicated(["variant", "run_id", "family", "value", "init", "mode"]).any()
    assert len(tables["episodes"]) == len(returns) * config.evaluate.episodes
    risk = tables["excess_risk"]
    assert len(risk) == len(returns)
    ref = np.isclose(risk["value"], risk["reference_value"])
    np.testing.assert_array_equal(risk.loc[ref, "excess_risk"], 0.0)
    # the excess risk is J(ref) - J(condition), from the returns table
    merged = risk.merge(returns, on=["variant", "run_id", "family", "value", "init", "mode"], suffixes=("", "_r"))
    np.testing.assert_allclose(merged["return"], merged["mean_return"], rtol=1e-6)
    assert len(tables["complexity"]) == n_pol and np.isfinite(tables["complexity"]["spectral_product"]).all()
    assert (tables["complexity"]["fisher_log_std_part"] == 2 * 3).all()
    # the sigma-free part and the precision: for Lorenz's 3 actions, with one log-std per action,
    # mean part <= sensitivity x max precision; the precision is 1/sigma^2 averaged over the actions
    comp = tables["complexity"]
    assert np.all(comp["fisher_sensitivity_mean"] > 0) and np.all(comp["fisher_precision"] > 0)
    # refined sharpness: the tiny policies never lose 10 % of their return under weight noise (their drops
    # are negative), so the grid brackets nothing and the bisection is skipped, visibly
    assert not comp["sharpness_bracketed"].any()
    assert comp["sharpness_sigma_refined"].isna().all() and (comp["sharpness_refined_valid"] == 0).all()
    # worst-case observation perturbations: the attack moves the action at least as far as random noise
    assert (comp["adversarial_deviation_max_eps0.05"] >= comp["adversarial_deviation_mean_eps0.05"]).all()
    assert (comp["adversarial_deviation_mean_eps0.05"] >= comp["random_deviation_mean_eps0.05"]).all()
    assert len(tables["fisher_states"]) == n_pol * config.measures.fisher_states
    corr = tables["correlations"]
    assert {"overall", "stratified"} <= set(corr["scope"])
    # the observation noise in the network's units: value x the policy's observation_scale
    obs = risk[risk["family"] == "obs_noise"].merge(tables["complexity"][["variant", "run_id", "observation_scale"]],
                                                    on=["variant", "run_id"])
    np.testing.assert_allclose(obs["obs_noise_network_units"], obs["value"] * obs["observation_scale"])
    assert risk.loc[risk["family"] != "obs_noise", "obs_noise_network_units"].isna().all()
    # Jiang's psi_alpha: across alpha with the seed fixed, checked cell by cell with scipy for one measure
    gran = tables["granulated"]
    assert {"alpha", "seed", "Psi"} <= set(gran["scope"])
    g = gran[(gran["measure"] == "spectral_product") & (gran["scope"] == "alpha")].iloc[0]
    rates = policy_rates(risk)
    rates = rates[(rates["family"] == g["family"]) & np.isclose(rates["value"], g["value"])
                  & (rates["mode"] == g["mode"])]
    df = rates.merge(tables["complexity"][["variant", "run_id", "spectral_product"]], on=["variant", "run_id"])
    taus = [scipy.stats.kendalltau(c["spectral_product"], c["excess_risk_rate"]).statistic
            for _, c in df.groupby(["variant", "seed"] if df["variant"].nunique() > 1 else "seed")]
    taus = [t for t in taus if np.isfinite(t)]
    assert g["num_cells"] == len(taus) and g["psi"] == pytest.approx(np.mean(taus))
    # seed-level uncertainty: the per-alpha rate is the mean of the seeds' rates, inside its interval
    ar = tables["alpha_rates"]
    all_rates = policy_rates(risk)
    for _, r in ar.iterrows():
        seeds = all_rates[(all_rates["variant"] == r["variant"]) & (all_rates["family"] == r["family"])
                          & np.isclose(all_rates["value"], r["value"]) & (all_rates["mode"] == r["mode"])
                          & (all_rates["alpha"] == r["alpha"])]["excess_risk_rate"]
        assert r["num_seeds"] == len(seeds) and r["rate"] == pytest.approx(seeds.mean())
        assert r["seed_min"] <= r["seed_median"] <= r["seed_max"] and r["rate_low"] <= r["rate_high"]
    assert len(tables["trends"]) == len(ar) // ar["alpha"].nunique()
    assert tables["trends"]["kendall_tau"].between(-1, 1).all()
    # DuckDB-style consumers read the files directly: plain parquet, no pandas index
    assert "__index_level_0__" not in pd.read_parquet(out / "tables" / "returns.parquet").columns


def test_rerunning_a_finished_study_redoes_nothing(uninterrupted):
    out = uninterrupted / "full"
    before = Registry(out / "registry.sqlite").table()
    run_study(TINY, out, report=False)
    after = Registry(out / "registry.sqlite").table()
    pd.testing.assert_frame_equal(before, after)


def test_another_study_in_the_same_directory_is_refused(uninterrupted, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(TINY.read_text().replace('name = "tiny-test"', 'name = "other"'))
    with pytest.raises(StudyConfigError, match="holds a different study"):
        run_study(other, uninterrupted / "full", report=False)


def test_an_edited_config_redoes_only_what_it_changes(uninterrupted, tmp_path):
    """Changing the evaluation grid re-runs the evaluation units and keeps the training;
    a family dropped from the config disappears from the tables."""
    import shutil

    out = tmp_path / "edited"
    shutil.copytree(uninterrupted / "full", out)
    edited = tmp_path / "tiny-test.toml"
    text = TINY.read_text().replace("obs_noise = [0.0, 0.2]", "obs_noise = [0.0, 0.1, 0.2]")
    text = text.replace("action_noise = [0.0, 0.3]\n", "")
    edited.write_text(text)
    before = Registry(out / "registry.sqlite").table().set_index("id")
    run_study(edited, out, report=False)
    after = Registry(out / "registry.sqlite").table().set_index("id")
    assert not any("action_noise" in i for i in after.index)
    for unit_id in after.index:
        redone = after.loc[unit_id, "finished_at"] != before.loc[unit_id, "finished_at"]
        assert redone == unit_id.endswith("/obs_noise"), unit_id
    tables = load_tables(out)
    assert set(tables["returns"]["family"]) == {"obs_noise", "dynamics"}
    obs = tables["returns"][tables["returns"]["family"] == "obs_noise"]
    assert sorted(obs["value"].unique()) == [0.0, 0.1, 0.2]
    # the kept units' outputs are the same as before the edit
    full = load_tables(uninterrupted / "full")
    dyn_before = full["returns"][full["returns"]["family"] == "dynamics"].reset_index(drop=True)
    dyn_after = tables["returns"][tables["returns"]["family"] == "dynamics"].reset_index(drop=True)
    pd.testing.assert_frame_equal(dyn_before, dyn_after)
    pd.testing.assert_frame_equal(full["complexity"], tables["complexity"])


@pytest.mark.slow  # ~30 s; resuming after a failure stays in the default suite (test_engine.py)
def test_sigkill_then_resume_gives_the_same_study(uninterrupted):
    """Kill the study (SIGKILL, no cleanup) while a unit after the first is running,
    rerun the same command, and compare every table with the uninterrupted study."""
    out = uninterrupted / "killed"
    proc = _study(out, uninterrupted / "cache", start_new_session=True)
    deadline = time.time() + 600
    while _done_units(out) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the study finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    states = Registry(out / "registry.sqlite").states()
    assert "running" in states.values() or list(states.values()).count("done") < len(states)
    assert not (out / "tables").exists()
    resumed = _study(out, uninterrupted / "cache")
    log, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, log
    reg = Registry(out / "registry.sqlite").table()
    assert set(reg["state"]) == {"done"}
    # units finished before the kill were not redone
    assert (reg["attempts"] <= 2).all() and (reg["attempts"] == 1).sum() >= 2
    _compare(load_tables(uninterrupted / "full"), load_tables(out))


def test_refined_sharpness_aggregates_the_valid_bisections():
    """`_refined_sharpness` on a stand-in bisection: draws whose bracket was invalid are left out;
    the mean, the 2.5/97.5 % quantiles and the relative precision are those of the valid draws."""
    import types

    import jax

    from entrolab.studies.robustness.units import _refined_sharpness

    answers = iter([(0.04, 0.001, True), (0.9, 0.5, False), (0.06, 0.002, True), (0.05, 0.001, True)])

    def fake(params, key, hi, tol):
        sigma, width, valid = next(answers)
        return {"sigma": sigma, "sigma_high": sigma + width, "valid_bracket": valid}

    m = types.SimpleNamespace(sharpness_repeats=4)
    out = _refined_sharpness(fake, None, jax.random.key(0), m, 0.1, 1.0, True)
    found = [0.04, 0.06, 0.05]
    assert out["sharpness_refined_valid"] == 3
    assert out["sharpness_sigma_refined"] == pytest.approx(np.mean(found))
    assert out["sharpness_sigma_refined_low"] == pytest.approx(np.quantile(found, 0.025))
    assert out["sharpness_sigma_refined_high"] == pytest.approx(np.quantile(found, 0.975))
    assert out["sharpness_refined_precision"] == pytest.approx(0.002 / 0.05)
    unbracketed = _refined_sharpness(fake, None, jax.random.key(0), m, 0.1, 1.0, False)
    assert np.isnan(unbracketed["sharpness_sigma_refined"]) and unbracketed["sharpness_refined_valid"] == 0

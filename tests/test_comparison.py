"""The comparison study (configs/tiny-comparison.toml): every config mistake is a clear error
before any work; a study interrupted after two units and resumed ends with complete tables
whose statistics match independent computations; the report draws every figure."""

import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from entrolab.studies.comparison import ComparisonConfig, probability_of_improvement
from entrolab.study.config import StudyConfigError, load_config, parse_config
from entrolab.study.runner import run_study

ROOT = Path(__file__).parent.parent
TINY = ROOT / "configs" / "tiny-comparison.toml"


def _data():
    return tomllib.loads(TINY.read_text())


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["methods"]["sac"]["options"].update(entropy_schedule="linear"), "has no entropy schedule"),
    (lambda d: d["methods"]["sac"]["options"].update(learning_rate=1e-3), "learning_rate: unknown sac option"),
    (lambda d: d["methods"]["sac-adaent"]["options"].update(adaent_threshold=1.5), "adaent_threshold out of range"),
    (lambda d: d["methods"]["sac-adaent"]["options"].update(adaent_num_actions=1), "adaent_num_actions"),
    (lambda d: d["methods"]["ppo"]["options"].update(total_timesteps=5), "set by the study"),
    (lambda d: d["methods"]["ppo"].update(algo="dqn"), "methods.ppo.algo"),
    (lambda d: d["tasks"]["obstacle"].update(steps={"ppo": 1024}), "no budget for method 'sac'"),
    (lambda d: d["tasks"]["obstacle"].update(steps={"pp0": 1024, "default": 400}), "are not methods"),
    (lambda d: d["tasks"]["obstacle"].update(env="nope"), "tasks.obstacle"),
    (lambda d: d["tasks"]["obstacle"]["env_options"].update(wall=1), "tasks.obstacle"),
    (lambda d: d["methods"]["sac"].update(alpha=-0.1), "methods.sac.alpha"),
    (lambda d: d.update(kind="sweep"), "unknown study kind"),
    (lambda d: d.update(tasks={}), "tasks"),
    (lambda d: d["tasks"]["obstacle"].update(options={"sac_adaent": {"adaent_threshold": 0.5}}),
     r"tasks.obstacle.options: \['sac_adaent'\] are not methods"),
    (lambda d: d["tasks"]["obstacle"].update(options={"sac-adaent": {"adaent_threshold": 2.0}}),
     "adaent_threshold out of range"),
])
def test_config_mistakes_are_clear_errors(edit, message):
    data = _data()
    edit(data)
    with pytest.raises(StudyConfigError, match=message):
        parse_config(data, "tiny")


def test_a_task_can_set_a_method_option_for_itself():
    data = _data()
    data["tasks"]["obstacle"]["options"] = {"sac-adaent": {"adaent_threshold": 0.5}}
    config = parse_config(data, "tiny")
    assert float(config.build("sac-adaent", "obstacle")[1].adaent_threshold) == 0.5
    assert float(load_config(TINY).build("sac-adaent", "obstacle")[1].adaent_threshold) == 0.9


def test_memory_only_options_leave_the_fingerprints_alone_and_others_change_them():
    """`adaent_chunk` changes memory, not results: resuming with a new chunk retrains nothing;
    a real option (K) retrains exactly that method's units."""
    from entrolab.studies.comparison.units import plan

    def prints(edit):
        data = _data()
        edit(data)
        return {u.id: u.fingerprint for u in plan(parse_config(data, "tiny"))}

    base = prints(lambda d: None)
    assert prints(lambda d: d["methods"]["sac-adaent"]["options"].update(adaent_chunk=3)) == base
    changed = prints(lambda d: d["methods"]["sac-adaent"]["options"].update(adaent_num_actions=7))
    assert {k for k in base if changed[k] != base[k]} == {k for k in base if "/sac-adaent" in k}


def test_the_config_builds_each_algorithm():
    config = load_config(TINY)
    assert isinstance(config, ComparisonConfig)
    ppo, _ = config.build("ppo", "obstacle")
    sac, sac_hp = config.build("sac", "obstacle")
    ada, _ = config.build("sac-adaent", "obstacle")
    assert ppo.total_timesteps == 1024 and ppo.entropy_schedule == "constant" and ppo.hidden_sizes == (16, 16)
    assert sac.total_timesteps == 400 and sac.plain_critic and not sac.adaent  # landscapes = true (default)
    assert ada.adaent and ada.adaent_num_actions == 4
    assert config.learns_plain_q("sac") and not config.learns_plain_q("ppo")


def test_probability_of_improvement_against_mann_whitney():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=7), np.concatenate([rng.normal(0.5, size=4), [0.0, 0.0]])
    u = scipy.stats.mannwhitneyu(x, y).statistic
    assert probability_of_improvement(x, y) == pytest.approx(u / (len(x) * len(y)))
    assert probability_of_improvement([1, 1], [1, 1]) == 0.5


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The tiny study without its plain SAC method (whose landscape path is AdaEnt's), interrupted
    after two units and resumed (about a minute on 2 cores)."""
    data = _data()
    del data["methods"]["sac"]
    config = parse_config(data, "tiny")
    out = tmp_path_factory.mktemp("cmp") / "tiny"
    run_study(config, out, stop_after=2)
    assert not (out / "tables").exists()
    run_study(config, out)
    return out


@pytest.mark.slow  # the tiny study: ~85 s of compiling (`make test-slow`)
def test_interrupted_study_ends_with_complete_tables(study):
    t = {p.stem: pd.read_parquet(p) for p in (study / "tables").glob("*.parquet")}
    assert set(t) == {"runs", "curves", "summary", "improvement", "equal_budget", "landscape_slices",
                      "landscape_maps"}
    runs = t["runs"]
    assert sorted(runs["method"].unique()) == ["ppo", "sac-adaent"]
    assert len(runs) == 2 * 2 and not runs.duplicated(["task", "method", "seed"]).any()
    assert dict(zip(runs["method"], runs["algo"])) == {"ppo": "ppo", "sac-adaent": "sac-adaent"}
    assert set(runs.groupby("method")["env_steps"].first()) == {1024, 400}
    assert all((study / c / "manifest.json").exists() for c in runs["checkpoint"])
    # summary statistics against scipy / numpy on the runs table
    for (method, mode), row in t["summary"].set_index(["method", "mode"]).iterrows():
        col = "eval_return_det_mean" if mode == "deterministic" else "eval_return_sto_mean"
        x = runs.loc[runs["method"] == method, col].to_numpy()
        assert row["iqm"] == pytest.approx(scipy.stats.trim_mean(x, 0.25))
        assert row["mean"] == pytest.approx(x.mean()) and row["iqm_low"] <= row["iqm"] <= row["iqm_high"]
    imp = t["improvement"].set_index(["method", "versus", "mode"])
    for a, b in (("ppo", "sac-adaent"),):
        xa = runs.loc[runs["method"] == a, "eval_return_det_mean"].to_numpy()
        xb = runs.loc[runs["method"] == b, "eval_return_det_mean"].to_numpy()
        by_hand = np.mean([(u > v) + 0.5 * (u == v) for u in xa for v in xb])
        assert imp.loc[(a, b, "deterministic"), "p_improvement"] == pytest.approx(by_hand)
    # learning curves: chunks rows per run, PPO and SAC metrics side by side
    curves = t["curves"]
    assert curves.groupby(["method", "seed"]).size().eq(4).all()  # PPO: 1024 / (4 x 64) updates; SAC: 400 / 100 chunks
    # AdaEnt logs its switch fraction; PPO has no such metric (NaN in the shared table)
    assert curves.loc[curves["method"] == "sac-adaent", "adaent_switch_fraction"].notna().all()
    assert curves.loc[curves["method"] == "ppo", "adaent_switch_fraction"].isna().all()
    # at the common budget of 400 steps: AdaEnt's rows logged in [320, 400]; PPO logs every 256
    # steps, so its last row before 400 (at 256)
    budget = t["equal_budget"].set_index("method")
    assert (budget["budget"] == 400).all() and (budget["n"] == 2).all()
    at_256 = curves[(curves["method"] == "ppo") & (curves["env_steps"] == 256)]["episode_return"]
    assert budget.loc["ppo", "mean"] == pytest.approx(at_256.mean())
    # landscapes: the SAC method (it learned a plain Q), every seed, both action dims
    slices = t["landscape_slices"]
    assert sorted(slices["method"].unique()) == ["sac-adaent"]
    assert slices["plain_raw"].notna().all() and slices["similarity"].between(0, 1 + 1e-6).all()
    assert set(slices["dim"]) == {0, 1} and set(slices["seed"]) == {0, 1}
    assert (slices[slices["state"] == 0]["time"] == 0).all()
    assert len(t["landscape_maps"]) == 2 * 41 * 41  # first seed, two states


@pytest.mark.slow  # the tiny study: ~85 s of compiling (`make test-slow`)
def test_report_draws_every_figure(study):
    md = (study / "report" / "report.md").read_text()
    for name in ("final_returns", "curves", "adaent_switch", "entropy", "landscape_obstacle_sac-adaent",
                 "landscape_map_obstacle_sac-adaent"):
        assert (study / "report" / "figures" / f"{name}.png").exists(), name
        assert f"figures/{name}.png" in md
    assert "P(ppo > sac-adaent)" in md and "## At an equal budget" in md and (study / "report" / "index.html").exists()


@pytest.mark.slow  # the tiny study: ~85 s of compiling (`make test-slow`)
def test_a_robustness_directory_is_refused(study, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(study, other)
    with pytest.raises(StudyConfigError, match="different study"):
        run_study(Path(__file__).parent.parent / "configs" / "tiny-test.toml", other)


@pytest.mark.parametrize("preset", ["misleads", "misleads-paper"])
def test_the_misleads_presets_load_and_build(preset):
    config = load_config(ROOT / "configs" / f"{preset}.toml")
    for task in config.tasks:
        for method in config.methods:
            algo_config, _ = config.build(method, task)
            assert algo_config.total_timesteps == config.tasks[task].steps_for(method)


def test_the_paper_preset_pins_the_authors_settings():
    """What configs/misleads-paper.toml says it reproduces (github ruipengZ/maxent-mislead)."""
    config = load_config(ROOT / "configs" / "misleads-paper.toml")
    ppo, ppo_hp = config.build("ppo", "vehicle_authors")
    assert (ppo.num_envs * ppo.num_steps, ppo.minibatch_size, ppo.num_epochs) == (2048, 64, 10)
    assert not (ppo.normalize_observations or ppo.normalize_advantages or ppo.normalize_rewards)
    assert ppo.grad_clip == "joint" and ppo.hidden_sizes == (256, 256) and float(ppo_hp.init_log_std) == -1.0
    thresholds = {t: float(config.build("sac-adaent", t)[1].adaent_threshold) for t in ("vehicle_authors", "acrobot",
                                                                                       "quadrotor_realistic")}
    assert thresholds == {"vehicle_authors": 0.8, "acrobot": 0.7, "quadrotor_realistic": 0.9}
    sac, sac_hp = config.build("sac-adaent", "quadrotor_realistic")
    assert sac.adaent_num_actions == 100 and float(sac_hp.actor_lr) == pytest.approx(3e-4)
    assert config.build("sac", "acrobot")[0].learning_starts == 25_000


def test_the_statistics_on_a_synthetic_study(tmp_path):
    """build_tables on hand-made unit outputs (no training): the summary against scipy and NumPy, the
    probability of improvement counted by hand, and the equal-budget rows picked by hand."""
    from entrolab.studies.comparison.tables import build_tables

    data = _data()
    del data["methods"]["sac"]
    config = parse_config(data, "tiny")
    task = next(iter(config.tasks))
    det = {"ppo": [1.0, 2.0, 3.0, 10.0], "sac-adaent": [0.0, 2.0, 2.5, -4.0]}
    for method, returns in det.items():
        d = tmp_path / "train" / task / method
        d.mkdir(parents=True)
        steps = 1024 if method == "ppo" else 400
        pd.DataFrame({"run_id": [f"s{i}" for i in range(4)], "seed": range(4), "env_steps": steps,
                      "eval_return_det_mean": returns, "eval_return_sto_mean": np.asarray(returns) - 1.0,
                      "checkpoint": [f"checkpoints/s{i}" for i in range(4)]}).to_parquet(d / "runs.parquet")
        logged = [256, 512, 768, 1024] if method == "ppo" else [100, 200, 300, 400]
        pd.DataFrame({"run_id": np.repeat([f"s{i}" for i in range(4)], 4), "seed": np.repeat(range(4), 4),
                      "env_steps": np.tile(logged, 4), "episode_return": np.arange(16.0)}).to_parquet(d / "metrics.parquet")
    t = build_tables(tmp_path, config, num_resamples=500)
    summary = t["summary"].set_index(["method", "mode"])
    x = np.asarray(det["ppo"])
    assert summary.loc[("ppo", "deterministic"), "iqm"] == pytest.approx(scipy.stats.trim_mean(x, 0.25))  # 2.5
    assert summary.loc[("ppo", "deterministic"), "median"] == pytest.approx(2.5)
    assert summary.loc[("ppo", "stochastic"), "mean"] == pytest.approx(x.mean() - 1.0)
    # P(ppo > sac-adaent) by hand over the 16 pairs (a tie counts 1/2): ppo's 1 beats 0 and -4 (2), its 2
    # beats 0 and -4 and ties 2 (2.5), its 3 and 10 beat all four (4 + 4): 12.5 / 16
    imp = t["improvement"].set_index(["method", "versus", "mode"])
    row = imp.loc[("ppo", "sac-adaent", "deterministic")]
    assert row["p_improvement"] == pytest.approx(12.5 / 16)
    assert imp.loc[("sac-adaent", "ppo", "deterministic"), "p_improvement"] == pytest.approx(3.5 / 16)
    assert row["low"] < row["p_improvement"] < row["high"] <= 1.0
    # equal budget: the smallest budget is 400; SAC's rows in [320, 400] (its last, 400); PPO logs every
    # 256, so its last row at or before 400 (256): per seed the row values, then their IQM and mean
    budget = t["equal_budget"].set_index("method")
    assert (budget["budget"] == 400).all()
    ppo_rows = np.arange(16.0).reshape(4, 4)[:, 0]  # env_steps 256
    sac_rows = np.arange(16.0).reshape(4, 4)[:, 3]  # env_steps 400
    assert budget.loc["ppo", "mean"] == pytest.approx(ppo_rows.mean())
    assert budget.loc["sac-adaent", "mean"] == pytest.approx(sac_rows.mean())
    assert budget.loc["sac-adaent", "iqm"] == pytest.approx(scipy.stats.trim_mean(sac_rows, 0.25))
    # the report's Answer quotes these tables: ppo's IQM is the highest, and its P(ppo > sac-adaent)
    from entrolab.report.document import fmt_ci
    from entrolab.studies.comparison.report import _answer_section

    text = " ".join(b for b in _answer_section(t["summary"], t["improvement"], config).blocks if isinstance(b, str))
    top = summary.loc[("ppo", "deterministic")]
    assert f"ppo has the highest IQM, {fmt_ci(top['iqm'], top['iqm_low'], top['iqm_high'])}" in text
    assert f"P(ppo > sac-adaent) = {fmt_ci(row['p_improvement'], row['low'], row['high'])}" in text
    assert ("a difference" if row["low"] > 0.5 else "not a difference") in text

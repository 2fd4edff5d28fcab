import json

import numpy as np
from typer.testing import CliRunner

from entrolab.cli import app


def test_simulate_writes_figures_and_summary(tmp_path):
    result = CliRunner().invoke(
        app, ["simulate", "--out", str(tmp_path), "--lorenz-time", "5", "--ks-time", "5"]
    )
    assert result.exit_code == 0, result.output
    for name in ["lorenz_attractor.png", "ks_spacetime.png", "summary.json"]:
        assert (tmp_path / name).stat().st_size > 1000 or name == "summary.json"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["lorenz"]["finite"] and summary["ks"]["finite"]
    assert summary["lorenz"]["steps"] == 100
    assert all(e["max_residual"] < 1e-8 for e in summary["ks_equilibria_L22"].values())
    traj = np.load(tmp_path / "lorenz_trajectory.npy")
    assert traj.shape == (101, 3)


def test_simulate_rejects_bad_time(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--ks-time", "0"])
    assert result.exit_code != 0
    assert "ks-time" in result.output


def test_envs_lists_options_and_refuses_unknown():
    runner = CliRunner()
    result = runner.invoke(app, ["envs", "lorenz"])
    assert result.exit_code == 0, result.output
    assert "rho" in result.output and "num_substeps" in result.output
    assert "task default" not in result.output  # Lorenz has no natural noise scale
    result = runner.invoke(app, ["envs", "acrobot"])
    assert "init_log_std (PPO)" in result.output and "-3.496" in result.output  # log(e^-0.5 / 20)
    result = runner.invoke(app, ["envs", "lorentz"])
    assert result.exit_code == 2
    assert "unknown environment 'lorentz'" in result.output


def test_train_refuses_an_env_option_without_a_value(tmp_path):
    result = CliRunner().invoke(app, ["train", "--env", "lorenz", "--env-option", "obs_noise_std", "--steps", "100",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "--env-option" in result.output and "obs_noise_std" in result.output
    assert not (tmp_path / "o" / "runs.parquet").exists()


def test_report_refuses_a_non_study_and_an_unfinished_study_then_writes_a_finished_ones(tmp_path):
    from entrolab.study.config import parse_config
    from entrolab.study.runner import run_study

    runner = CliRunner()
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "is not a study directory" in " ".join(result.output.split())
    config = parse_config({"kind": "landscape", "name": "r", "gridworld": {"size": 2, "taus": [0.0], "inits": 2,
                                                                          "updates": 20},
                           "probes": {"directions": 4, "inits": 1, "lanczos": 4, "hutchinson": 4,
                                      "interpolation_points": 3}})
    out = tmp_path / "study"
    run_study(config, out, stop_after=1, report=False)
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 2 and "not finished (" in " ".join(result.output.split())
    run_study(config, out, report=False)
    assert not (out / "report" / "index.html").exists()
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0 and (out / "report" / "index.html").exists()

"""The training driver, the `entrolab train` CLI and checkpoints."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import entrolab
from entrolab.agents.ppo import PPOConfig
from entrolab.checkpoint import CheckpointError, load_policy
from entrolab.cli import app
from entrolab.training import train_sweep

TINY = PPOConfig(num_envs=2, num_steps=16, total_timesteps=2 * 16 * 2, num_epochs=1, num_minibatches=2,
                 hidden_sizes=(8,))


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    runs = train_sweep("lorenz", [0.0, 0.1], 2, out, TINY, eval_episodes=3, num_chunks=2,
                       env_overrides={"max_steps_in_episode": 20})
    return out, runs


def test_runs_table_has_one_row_per_alpha_and_seed(sweep_dir):
    out, runs = sweep_dir
    table = pd.read_parquet(out / "runs.parquet")
    assert len(table) == 4 and table["run_id"].is_unique
    assert sorted(zip(table["alpha"], table["seed"])) == [(0.0, 0), (0.0, 1), (0.1, 0), (0.1, 1)]
    assert (table["env_steps"] == 64).all() and (table["eval_episodes"] == 3).all()
    for col in ("eval_return_det_mean", "eval_return_sto_mean", "wall_time_s", "hp_learning_rate", "hp_ent_coef"):
        assert np.isfinite(table[col]).all(), col
    np.testing.assert_allclose(table["hp_ent_coef"], table["alpha"], rtol=1e-6)
    assert table["diverged_at_step"].isna().all()  # no run diverged (tests/test_divergence.py forces one)
    curves = pd.read_parquet(out / "metrics.parquet")
    assert len(curves) == 4 * 2 and set(curves["update"]) == {0, 1}
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["alphas"] == [0.0, 0.1] and sweep["config"]["num_envs"] == 2


def test_checkpoint_round_trip_reproduces_the_deterministic_evaluation(sweep_dir):
    from entrolab.agents.evaluate import episode_returns
    from entrolab.envs import make

    out, runs = sweep_dir
    row = runs.iloc[3]
    loaded = entrolab.load_policy(out / row["checkpoint"])
    assert loaded.manifest["hparams"]["ent_coef"] == pytest.approx(row["alpha"])
    assert set(loaded.arrays) == {"policy", "init_policy", "critic"}
    mean, log_std = loaded.apply(loaded.params, jnp.ones(3))
    assert mean.shape == (3,) and log_std.shape == (3,)
    # apply is pure and differentiable in params
    grads = jax.grad(lambda p: loaded.apply(p, jnp.ones(3))[0].sum())(loaded.params)
    assert np.isfinite(np.asarray(grads["mean_net"]["Dense_0"]["kernel"])).all()
    env, params = make("lorenz", max_steps_in_episode=20)
    key = jax.random.fold_in(jax.random.key(int(row["seed"])), 10_000)
    returns = episode_returns(loaded.policy, loaded.params, env, params, key, 3, 20, True)
    assert float(returns.mean()) == pytest.approx(row["eval_return_det_mean"], rel=1e-5)


def test_bad_checkpoints_are_clear_errors(sweep_dir, tmp_path):
    import shutil

    out, runs = sweep_dir
    with pytest.raises(CheckpointError, match="does not exist"):
        load_policy(tmp_path / "nope")
    src = out / runs.iloc[0]["checkpoint"]
    truncated = tmp_path / "truncated"
    shutil.copytree(src, truncated)
    data = (truncated / "policy.msgpack").read_bytes()
    (truncated / "policy.msgpack").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_policy(truncated)
    future = tmp_path / "future"
    shutil.copytree(src, future)
    manifest = json.loads((future / "manifest.json").read_text())
    manifest["format_version"] = 99
    (future / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="format version 99 is not supported"):
        load_policy(future)
    no_manifest = tmp_path / "partial"
    shutil.copytree(src, no_manifest)
    (no_manifest / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="manifest.json is missing"):
        load_policy(no_manifest)
    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    (broken / "manifest.json").write_text('{"format_version": 1, "algo')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_policy(broken)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--alpha", ""], "is empty"),
        (["--alpha", "0,-0.1"], "must be finite and >= 0"),
        (["--alpha", "a,b"], "comma-separated list of numbers"),
        (["--steps", "100"], "smaller than one rollout"),
        (["--algo", "dqn"], "unknown algorithm"),
        (["--env", "lorentz"], "unknown environment"),
        (["--env-option", "rhoo=3"], "unknown override"),
        (["--set", "learning_rate=-1"], "learning_rate out of range"),
        (["--set", "num_minibatches=3"], "not divisible by num_minibatches = 3"),
        (["--env-option", "rho"], "--env-option takes KEY=VALUE, got 'rho'"),
        (["--set", "rho"], "--set takes KEY=VALUE, got 'rho'"),
        (["--set", "ent_coef=0.1"], "ent_coef: cannot be set here: the entropy coefficients are set by --alpha"),
        (["--set", "total_timesteps=64"], "total_timesteps: cannot be set here: set by --steps"),
        (["--options", "missing.toml"], "missing.toml does not exist"),
    ],
)
def test_train_cli_bad_input(args, message, tmp_path):
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path), "--seeds", "1", "--steps", "4096", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_train_cli_end_to_end(tmp_path):
    """A tiny PPO sweep; its options from --options FILE.toml and --set (which wins) reach
    the saved config (sweep.json and the checkpoints' manifests)."""
    options = tmp_path / "ppo.toml"
    options.write_text("num_envs = 4\nnum_steps = 16\nhidden_sizes = [8]\nent_horizon = 1_000\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "train", "--env", "lorenz", "--alpha", "0,0.05", "--seeds", "1", "--steps", "64", "--options", str(options),
        "--set", "num_envs=2", "--set", "num_epochs=1", "--set", "num_minibatches=2", "--set", "gamma=0.9",
        "--eval-episodes", "2", "--env-option", "max_steps_in_episode=10", "--env-option", "init_equilibrium=2", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs["alpha"]) == [0.0, 0.05]
    assert (out / runs["checkpoint"][0] / "manifest.json").is_file()
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["env_overrides"] == {"max_steps_in_episode": 10, "init_equilibrium": 2}
    expected = {"num_envs": 2, "num_steps": 16, "total_timesteps": 64, "num_epochs": 1, "num_minibatches": 2,
                "hidden_sizes": [8]}
    assert {k: sweep["config"][k] for k in expected} == expected
    assert sweep["hparams"]["gamma"] == 0.9 and sweep["hparams"]["ent_horizon"] == 1000.0
    manifest = entrolab.load_policy(out / runs["checkpoint"][1]).manifest
    assert manifest["config"]["num_envs"] == 2 and manifest["hparams"]["gamma"] == pytest.approx(0.9)
    assert manifest["hparams"]["ent_coef"] == pytest.approx(0.05)


def test_train_cli_reports_every_bad_option_and_exits_2(tmp_path):
    options = tmp_path / "bad.toml"
    options.write_text("num_envs = 2.5\n")
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "out"), "--options", str(options),
                                      "--set", "batch_sise=512", "--set", "normalize_observations=1"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines[0] == "error: num_envs: expected int, got 2.5 (float)"
    assert lines[1].startswith("error: batch_sise: unknown ppo option")
    assert lines[2] == "error: normalize_observations: expected bool, got 1 (int)"
    assert lines[3].startswith("error: known ppo options: num_envs, num_steps,")
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
    bad = CliRunner().invoke(app, ["train", "--options", str(tmp_path), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "cannot be read" in bad.output


def test_options_command_lists_the_dataclass_fields():
    result = CliRunner().invoke(app, ["options", "sac"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("batch_size "))
    assert row.split()[1:4] == ["static", "int", "256"]
    assert "transitions per gradient step" in row
    assert "adaent_threshold" in result.output and "entropy_schedule" not in result.output
    bad = CliRunner().invoke(app, ["options", "dqn"])
    assert bad.exit_code == 2 and "unknown algorithm 'dqn'" in bad.output


@pytest.mark.slow  # ~23 s; the PPO CLI end to end stays in the default suite, SAC sweeps in test_sac / test_comparison
def test_sac_and_adaent_sweeps_through_the_cli(tmp_path):
    """`entrolab train --algo sac-adaent`: one program per sweep, rows in runs.parquet,
    checkpoints of the squashed policy that load and act."""
    import pandas as pd

    from entrolab import load_policy
    from entrolab.agents.sac.networks import SquashedGaussianPolicy

    common = ["--env", "probe_action", "--alpha", "0.05,0.2", "--seeds", "1", "--steps", "400",
              "--set", "hidden_sizes=[16]", "--set", "buffer_size=400", "--set", "batch_size=32",
              "--set", "learning_starts=100", "--set", "log_interval=100", "--eval-episodes", "4"]
    for algo in ["sac-adaent"]:  # the plain-SAC path is the same driver (tests/test_sac.py covers SAC itself)
        out = tmp_path / algo
        result = CliRunner().invoke(app, ["train", "--algo", algo, *common, "--set", "adaent_num_actions=4", "--out",
                                          str(out)])
        assert result.exit_code == 0, result.output
        runs = pd.read_parquet(out / "runs.parquet")
        assert list(runs["algo"]) == [algo, algo] and list(runs["alpha"]) == [0.05, 0.2]
        assert (runs["env_steps"] == 400).all()
        np.testing.assert_allclose(runs["hp_alpha"], [0.05, 0.2], rtol=1e-6)
        curves = pd.read_parquet(out / "metrics.parquet")
        assert len(curves) == 2 * 4 and "adaent_switch_fraction" in curves
        policy = load_policy(out / runs["checkpoint"][0])
        assert isinstance(policy.policy, SquashedGaussianPolicy)
        assert policy.manifest["algorithm"] == algo
        assert policy.manifest["config"]["adaent_num_actions"] == 4 and policy.manifest["config"]["adaent"]
        assert abs(float(policy.act(None, jnp.zeros(1))[0])) <= 1.0
        # the soft and plain Q of the trained agent: one state (probe_action is one step), one coordinate
        land = CliRunner().invoke(app, ["landscape", str(out / runs["checkpoint"][0]), "--out", str(tmp_path / "land"),
                                        "--num", "11"])
        assert land.exit_code == 0, land.output
        table = pd.read_parquet(tmp_path / "land" / "slices.parquet")
        assert len(table) == 11 and table["plain_raw"].notna().all() and (tmp_path / "land" / "slices.png").exists()
    bad = CliRunner().invoke(app, ["landscape", str(tmp_path / "nothing")])
    assert bad.exit_code == 2 and "does not" in bad.output  # (rich wraps the long path)
    bad = CliRunner().invoke(app, ["train", "--algo", "sac", "--set", "entropy_schedule=linear", "--out",
                                   str(tmp_path / "x")])
    assert bad.exit_code == 2 and "has no entropy schedule" in bad.output
    bad = CliRunner().invoke(app, ["train", "--algo", "sac-adaent", "--set", "adaent_threshold=1.5", "--out",
                                   str(tmp_path / "y")])
    assert bad.exit_code == 2 and "adaent_threshold" in bad.output

"""Algorithm options read from the config dataclasses (entrolab.agents.options): no training."""

import dataclasses

import jax
import pytest

from entrolab.agents.options import (
    ALGOS,
    Option,
    OptionError,
    build,
    describe,
    load_options,
    options,
    parse_assignments,
)
from entrolab.agents.ppo.config import PPOConfig, PPOHParams
from entrolab.agents.sac.config import SACConfig, SACHParams
from entrolab.agents.reinforce import ReinforceConfig, ReinforceHParams

CLASSES = {"ppo": (PPOConfig, PPOHParams), "sac": (SACConfig, SACHParams), "sac-adaent": (SACConfig, SACHParams),
           "reinforce": (ReinforceConfig, ReinforceHParams)}


def error_lines(excinfo) -> list[str]:
    err = excinfo.value
    assert str(err).splitlines() == list(err.errors)
    return list(err.errors)


# ---- the dataclasses are the source -------------------------------------------------------------
@pytest.mark.parametrize("cls", [PPOConfig, PPOHParams, SACConfig, SACHParams])
def test_every_dataclass_field_has_help(cls):
    for f in dataclasses.fields(cls):
        assert isinstance(f.metadata.get("help"), str) and f.metadata["help"].strip(), f.name


@pytest.mark.parametrize("cls", [PPOHParams, SACHParams])
def test_hparams_fields_stay_pytree_leaves(cls):
    hp = cls()
    assert len(jax.tree.leaves(hp)) == len(dataclasses.fields(cls))
    doubled = cls(**{f.name: 2 * getattr(hp, f.name) for f in dataclasses.fields(cls)})
    assert jax.tree.map(lambda x: 2 * x, hp) == doubled


@pytest.mark.parametrize("algo", ALGOS)
def test_options_follow_the_dataclasses(algo):
    config_cls, hparams_cls = CLASSES[algo]
    entropy = {"ppo": "ent_coef", "reinforce": "std"}.get(algo, "alpha")
    not_settable = {"total_timesteps", entropy, "adaent"}
    expected = [(f.name, "config", f.default, f.metadata["help"]) for f in dataclasses.fields(config_cls)]
    expected += [(f.name, "hparams", f.default, f.metadata["help"]) for f in dataclasses.fields(hparams_cls)]
    opts = options(algo)
    assert all(isinstance(o, Option) for o in opts)
    assert [(o.name, o.target, o.default, o.help) for o in opts] == [e for e in expected if e[0] not in not_settable]
    types = {o.name: o.type for o in opts}
    assert types["hidden_sizes"] == "tuple[int, ...]" and types["gamma"] == "float"
    if algo != "reinforce":
        assert types["num_envs"] == "int" and types["critic_hidden_sizes"] == "tuple[int, ...] | None"
    table = describe(algo)
    for o in opts:
        assert any(line.startswith(o.name + " ") and o.help in line for line in table.splitlines()), o.name


def test_unknown_algorithm():
    for call in (lambda: options("dqn"), lambda: describe("dqn"), lambda: build("dqn", {}, total_timesteps=10)):
        with pytest.raises(OptionError, match="unknown algorithm 'dqn'; available: ppo, sac, sac-adaent, reinforce"):
            call()


# ---- build: what hand-constructed dataclasses give ------------------------------------------------
def test_build_ppo_equals_the_hand_constructed_dataclasses():
    assert build("ppo", {}, total_timesteps=1_000_000) == (PPOConfig(), PPOHParams())
    assert build("ppo", {"num_envs": 4, "hidden_sizes": [16, 16]}, total_timesteps=1024) == (
        PPOConfig(num_envs=4, hidden_sizes=(16, 16), total_timesteps=1024), PPOHParams()
    )
    config, hparams = build(
        "ppo",
        {"num_steps": 64, "activation": "relu", "entropy_schedule": "constant", "critic_hidden_sizes": [32],
         "normalize_observations": False, "learning_rate": 1e-3, "ent_horizon": 200_000, "gamma": 1},
        total_timesteps=4096,
    )
    assert config == PPOConfig(num_steps=64, activation="relu", entropy_schedule="constant", critic_hidden_sizes=(32,),
                               normalize_observations=False, total_timesteps=4096)
    assert hparams == PPOHParams(learning_rate=1e-3, ent_horizon=200_000.0, gamma=1.0)


def test_build_sac_and_adaent_equal_the_hand_constructed_dataclasses():
    values = {"buffer_size": 1e6, "batch_size": 32, "hidden_sizes": [64], "auto_alpha": True, "target_entropy": -2,
              "tau": 0.01, "adaent_threshold": 0}
    expected_hp = SACHParams(tau=0.01, adaent_threshold=0.0)
    for algo, adaent in [("sac", False), ("sac-adaent", True)]:
        config, hparams = build(algo, values, total_timesteps=5000)
        assert config == SACConfig(buffer_size=1_000_000, batch_size=32, hidden_sizes=(64,), auto_alpha=True,
                                   target_entropy=-2.0, total_timesteps=5000, adaent=adaent)
        assert hparams == expected_hp
    assert build("sac", {}, total_timesteps=1_000_000) == (SACConfig(), SACHParams())
    assert build("sac-adaent", {}, total_timesteps=1_000_000) == (SACConfig(adaent=True), SACHParams())


def test_build_converts_to_the_annotated_types():
    config, hparams = build("ppo", {"hidden_sizes": [8, 8], "critic_hidden_sizes": None, "num_steps": 32.0,
                                    "clip_eps": 1, "init_log_std": -1}, total_timesteps=2048)
    assert config.hidden_sizes == (8, 8) and type(config.hidden_sizes) is tuple
    assert config.critic_hidden_sizes is None
    assert config.num_steps == 32 and type(config.num_steps) is int  # 32.0 (e.g. TOML 3.2e1) is an int
    assert type(hparams.clip_eps) is float and type(hparams.init_log_std) is float
    config, _ = build("sac", {"critic_hidden_sizes": (128, 128), "target_entropy": None, "log_std_min": -5},
                      total_timesteps=10_000)
    assert config.critic_hidden_sizes == (128, 128) and config.target_entropy is None
    assert config.log_std_min == -5.0 and type(config.log_std_min) is float


# ---- build: errors --------------------------------------------------------------------------------
def test_unknown_keys_list_the_known_ones():
    with pytest.raises(OptionError) as excinfo:
        build("ppo", {"num_env": 2, "buffer_size": 10, "colour": "red"}, total_timesteps=4096)
    lines = error_lines(excinfo)
    assert lines[0].startswith("num_env: unknown ppo option (did you mean num_envs")
    assert lines[1] == "buffer_size: unknown ppo option (an option of sac, sac-adaent only)"
    assert lines[2] == "colour: unknown ppo option"
    assert lines[3] == "known ppo options: " + ", ".join(o.name for o in options("ppo"))


@pytest.mark.parametrize("key", ["entropy_schedule", "ent_horizon"])
def test_sac_has_no_entropy_schedule(key):
    with pytest.raises(OptionError, match=f"{key}: unknown sac option \\(SAC has no entropy schedule: its alpha is "
                                          "fixed, or learned with auto_alpha = true\\)"):
        build("sac", {key: "linear"}, total_timesteps=10_000)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("num_envs", "8", "num_envs: expected int, got '8' (str)"),
        ("num_envs", True, "num_envs: expected int, got True (bool)"),
        ("num_envs", 2.5, "num_envs: expected int, got 2.5 (float)"),
        ("num_envs", None, "num_envs: expected int, got None (NoneType)"),
        ("gamma", False, "gamma: expected float, got False (bool)"),
        ("gamma", "0.9", "gamma: expected float, got '0.9' (str)"),
        ("hidden_sizes", 64, "hidden_sizes: expected tuple[int, ...], got 64 (int)"),
        ("hidden_sizes", [64, "a"], "hidden_sizes: expected tuple[int, ...], got [64, 'a'] (list)"),
        ("critic_hidden_sizes", [1.5], "critic_hidden_sizes: expected tuple[int, ...] | None, got [1.5] (list)"),
        ("normalize_observations", 1, "normalize_observations: expected bool, got 1 (int)"),
        ("activation", 3, "activation: expected str, got 3 (int)"),
    ],
)
def test_bad_types_name_the_key_the_type_and_the_value(key, value, message):
    with pytest.raises(OptionError) as excinfo:
        build("ppo", {key: value}, total_timesteps=4096)
    assert error_lines(excinfo) == [message]


def test_entropy_coefficients_and_fixed_fields_are_not_settable():
    with pytest.raises(OptionError, match="^ent_coef: cannot be set here: .*alphas$"):
        build("ppo", {"ent_coef": 0.1}, total_timesteps=4096)
    for algo in ("sac", "sac-adaent"):
        with pytest.raises(OptionError, match="^alpha: cannot be set here: .*alphas$"):
            build(algo, {"alpha": 0.1}, total_timesteps=10_000)
        with pytest.raises(OptionError, match=r"^adaent: cannot be set here: set by the algorithm name"):
            build(algo, {"adaent": True}, total_timesteps=10_000)
    with pytest.raises(OptionError, match="^total_timesteps: cannot be set here"):
        build("ppo", {"total_timesteps": 10}, total_timesteps=4096)


def test_reserved_keys_give_their_reason():
    with pytest.raises(OptionError) as excinfo:
        build("sac", {"plain_critic": True, "alpha": 0.3}, total_timesteps=10_000,
              reserved={"plain_critic": "set by the study", "alpha": "use --alpha"})
    assert error_lines(excinfo) == ["plain_critic: cannot be set here: set by the study",
                                    "alpha: cannot be set here: use --alpha"]
    # a reserved key is not among the known ones either
    with pytest.raises(OptionError) as excinfo:
        build("sac", {"nope": 1}, total_timesteps=10_000, reserved={"plain_critic": "set by the study"})
    assert "plain_critic" not in error_lines(excinfo)[-1]


def test_dataclass_validation_becomes_an_option_error():
    with pytest.raises(OptionError, match="^num_envs \\* num_steps = 2048 is not divisible by num_minibatches = 3$"):
        build("ppo", {"num_minibatches": 3}, total_timesteps=1_000_000)
    with pytest.raises(OptionError, match="smaller than one rollout"):
        build("ppo", {}, total_timesteps=100)
    with pytest.raises(OptionError, match="activation must be one of"):
        build("ppo", {"activation": "sigmoid"}, total_timesteps=4096)
    with pytest.raises(OptionError, match="^PPOHParams.learning_rate out of range: -1.0$"):
        build("ppo", {"learning_rate": -1}, total_timesteps=4096)
    with pytest.raises(OptionError, match="^SACHParams.adaent_threshold out of range: 1.5$"):
        build("sac-adaent", {"adaent_threshold": 1.5}, total_timesteps=10_000)
    with pytest.raises(OptionError, match="adaent_num_actions \\(K\\) must be >= 2"):
        build("sac-adaent", {"adaent_num_actions": 1}, total_timesteps=10_000)


def test_several_errors_are_reported_together():
    with pytest.raises(OptionError) as excinfo:
        build("sac", {"batch_size": "big", "ent_horizon": 1.0, "alpha": 0.1, "hidden_sizes": [0.5], "tau": True},
              total_timesteps=10_000)
    lines = error_lines(excinfo)
    assert [line.split(":")[0] for line in lines] == ["batch_size", "ent_horizon", "alpha", "hidden_sizes", "tau",
                                                      "known sac options"]
    # validation of the config and of the hparams, both at once
    with pytest.raises(OptionError) as excinfo:
        build("ppo", {"num_minibatches": 3, "gamma": 2}, total_timesteps=1_000_000)
    assert len(error_lines(excinfo)) == 2 and "PPOHParams.gamma out of range" in error_lines(excinfo)[1]


# ---- reading options ------------------------------------------------------------------------------
def test_parse_assignments():
    items = ["batch_size=512", "lr=1e-3", "hidden=[256,256]", "flag=true", "none=null", "toml=[256, 256]",
             "quoted='relu'", "bare=relu", "spaced = tanh ", "eq=a=b", "batch_size=1024"]
    assert parse_assignments(items) == {
        "batch_size": 1024, "lr": 1e-3, "hidden": [256, 256], "flag": True, "none": None, "toml": [256, 256],
        "quoted": "relu", "bare": "relu", "spaced": "tanh", "eq": "a=b",
    }
    assert parse_assignments([]) == {}
    assert parse_assignments(["init=E1", "x=[tanh]", "empty="]) == {"init": "E1", "x": "[tanh]", "empty": ""}


def test_parse_assignments_errors_name_the_flag_and_the_item():
    with pytest.raises(OptionError) as excinfo:
        parse_assignments(["good=1", "batch_size", "=3"], flag="--env-option")
    assert error_lines(excinfo) == ["--env-option takes KEY=VALUE, got 'batch_size'",
                                    "--env-option takes KEY=VALUE, got '=3'"]
    with pytest.raises(OptionError, match="^--set takes KEY=VALUE, got 'x'$"):
        parse_assignments(["x"])


def test_load_options(tmp_path):
    path = tmp_path / "sac.toml"
    path.write_text('# SAC on Pendulum\nbatch_size = 512\nhidden_sizes = [128, 128]\nactivation = "tanh"\n'
                    "auto_alpha = true\nbuffer_size = 1e5\n")
    values = load_options(path)
    assert values == {"batch_size": 512, "hidden_sizes": [128, 128], "activation": "tanh", "auto_alpha": True,
                      "buffer_size": 1e5}
    config, _ = build("sac", values, total_timesteps=20_000)
    assert config == SACConfig(batch_size=512, hidden_sizes=(128, 128), activation="tanh", auto_alpha=True,
                               buffer_size=100_000, total_timesteps=20_000)
    assert load_options(str(path)) == values
    with pytest.raises(OptionError, match="does not exist"):
        load_options(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("batch_size = \n")
    with pytest.raises(OptionError, match="bad.toml is not valid TOML"):
        load_options(tmp_path / "bad.toml")

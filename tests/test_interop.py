"""Stable-Baselines3 policies in entrolab (`entrolab.interop.from_sb3`) and `entrolab measure`.

The reference is SB3 itself: tiny PPO and SAC agents are trained for a few hundred steps and
their weights pushed so that the bounds act (some PPO means beyond the clip, some SAC means in
tanh's saturation, a SAC log-std at its clamp), then every action of `from_sb3` must be the one
`model.predict(obs, deterministic=True)` gives, to 1e-5, and the Gaussian (mean, log-std) the
one SB3's distribution holds. The SB3 parts are skipped where stable-baselines3 is not installed
(the `sb3` extra); the pure parts (the imported policy class, the state-dependent Fisher trace)
always run.
"""

from __future__ import annotations

import json
import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from entrolab.agents.imported import ImportedGaussianPolicy, from_squashed_gaussian
from entrolab.agents.sac import SquashedGaussianPolicy
from entrolab.measures.complexity import norm_measures, sharpness
from entrolab.measures.fisher import fisher_trace, fisher_trace_monte_carlo

NUM_OBS = 100
fisher_trace_jit = jax.jit(fisher_trace, static_argnums=(0, 3))  # eager vmap of jacrev is seconds per call


# ---- the pure parts (no SB3) ------------------------------------------------------------
def test_entrolab_sac_actor_converts_to_the_same_function_and_its_fisher_trace_is_right(key):
    actor = SquashedGaussianPolicy(obs_dim=3, action_dim=2, hidden_sizes=(8, 8))
    rng = np.random.default_rng(0)
    net = {f"Dense_{i}": {"kernel": jnp.asarray(rng.standard_normal((a, b)), jnp.float32),
                          "bias": jnp.asarray(rng.standard_normal(b), jnp.float32)}
           for i, (a, b) in enumerate([(3, 8), (8, 8), (8, 4)])}
    params = {"net": net}
    policy, converted = from_squashed_gaussian(actor, params)
    obs = jnp.asarray(rng.standard_normal((16, 3)), jnp.float32)
    for got, want in zip(jax.vmap(lambda o: policy.apply(converted, o))(obs),
                         jax.vmap(lambda o: actor.apply(params, o))(obs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # the state-dependent std's exact Fisher trace against the score-based Monte Carlo estimate
    # (which splits by parameter block, not by the mu and sigma terms: the totals compare)
    exact = fisher_trace_jit(policy, converted, obs[:4])
    mc = jax.jit(fisher_trace_monte_carlo, static_argnums=(0, 4))(policy, converted, obs[:4], key, 4000)
    err = np.abs(np.asarray(exact["total"]) - np.asarray(mc["total"]))
    assert np.all(err < 5.0 * np.asarray(mc["total_stderr"])), (err, mc["total_stderr"])
    assert np.all(np.asarray(exact["log_std"]) > 0) and not np.allclose(exact["log_std"], 4.0)  # not 2 x dim
    # a log-std head with a zero kernel K gives the std of its bias everywhere: the mean term is
    # the state-independent policy's, and grad log sigma_i is (h, e_i) w.r.t. (K[:, i], bias),
    # so the log-std term is 2 m (1 + ||h(s)||^2), h the last hidden layer
    flat_head = {**converted, "log_std_net": {"kernel": jnp.zeros((8, 2)), "bias": jnp.asarray([-0.3, 0.4])}}
    independent = ImportedGaussianPolicy(3, 2, (8, 8), "relu", action_bounding="tanh")
    as_param = {"mean_net": converted["mean_net"], "log_std": jnp.asarray([-0.3, 0.4])}
    got, want = fisher_trace_jit(policy, flat_head, obs[:4]), fisher_trace_jit(independent, as_param, obs[:4])
    for part in ("mean", "sensitivity", "precision"):
        np.testing.assert_allclose(got[part], want[part], rtol=1e-5, err_msg=part)
    h = np.asarray(obs[:4], np.float64)
    for layer in ("Dense_0", "Dense_1"):
        h = np.maximum(h @ np.asarray(net[layer]["kernel"], np.float64) + np.asarray(net[layer]["bias"]), 0.0)
    np.testing.assert_allclose(got["log_std"], 2 * 2 * (1.0 + np.sum(h**2, axis=1)), rtol=1e-5)


def test_imported_policy_refuses_bad_structure():
    with pytest.raises(ValueError, match="activation"):
        ImportedGaussianPolicy(3, 1, (4,), "swish")
    with pytest.raises(ValueError, match="mean_scale"):
        ImportedGaussianPolicy(3, 1, (4,), "tanh", mean_scale=(0.0,))
    with pytest.raises(ValueError, match="mean_offset"):
        ImportedGaussianPolicy(3, 2, (4,), "tanh", mean_offset=(0.0,))


def test_without_torch_reading_a_zip_says_which_extra_to_install(tmp_path, monkeypatch):
    import sys

    from entrolab.interop import from_sb3

    with zipfile.ZipFile(tmp_path / "model.zip", "w") as z:
        z.writestr("data", "{}")
        z.writestr("policy.pth", b"")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(ImportError, match=r"entrolab\[sb3\]"):
        from_sb3(tmp_path / "model.zip")


# ---- SB3 agents ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sb3():
    sb3 = pytest.importorskip("stable_baselines3")
    import torch

    # torch's intra-op threads contend with XLA's on the shared cores: SAC's 100 updates took
    # 9 s instead of 0.5 s
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield sb3
    torch.set_num_threads(threads)


def _pendulum(low=None, high=None):
    import gymnasium

    env = gymnasium.make("Pendulum-v1")
    if low is not None:  # an asymmetric box: the clip and the affine frame both act
        env = gymnasium.wrappers.RescaleAction(env, np.float32(low), np.float32(high))
    return env


def _observations(seed: int, scale=(1.5, 1.5, 12.0)) -> np.ndarray:
    """Pendulum-like observations, some beyond its observation box."""
    return (np.random.default_rng(seed).standard_normal((NUM_OBS, 3)) * np.asarray(scale)).astype(np.float32)


def _predict_all(imported, obs) -> np.ndarray:
    return np.asarray(jax.jit(jax.vmap(lambda o: imported.predict(imported.params, o)))(obs))


@pytest.fixture(scope="module")
def ppo_zip(sb3, tmp_path_factory):
    """A PPO on Pendulum with actions rescaled to [-1, 3], its mean pushed beyond the bounds."""
    import torch

    model = sb3.PPO("MlpPolicy", _pendulum(-1.0, 3.0), n_steps=64, batch_size=32, n_epochs=1, seed=0,
                    policy_kwargs={"net_arch": [16, 16]})
    model.learn(64)
    with torch.no_grad():  # a mean around the box's centre 1 with a spread of its half-width 2
        weight = model.policy.action_net.weight
        weight.copy_(0.8 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
        model.policy.action_net.bias.fill_(1.0)
        model.policy.log_std.fill_(-0.4)
    path = tmp_path_factory.mktemp("sb3") / "ppo.zip"
    model.save(path)
    return path, model


@pytest.fixture(scope="module")
def sac_zip(sb3, tmp_path_factory):
    """A SAC on Pendulum ([-2, 2]), ReLU, its mean pushed into tanh's saturation, a log-std beyond the clamp."""
    import torch

    model = sb3.SAC("MlpPolicy", _pendulum(), learning_starts=50, batch_size=32, seed=0,
                    policy_kwargs={"net_arch": [16, 16]})
    model.learn(150)
    with torch.no_grad():
        model.actor.mu.weight.mul_(20.0)
        model.actor.log_std.bias.fill_(2.5)  # some states beyond LOG_STD_MAX = 2
    path = tmp_path_factory.mktemp("sb3") / "sac.zip"
    model.save(path)
    return path, model


def test_ppo_matches_predict_with_the_clip_at_asymmetric_bounds(ppo_zip):
    import torch

    from entrolab.interop import from_sb3

    path, model = ppo_zip
    imported = from_sb3(path)
    obs = _observations(1)
    want, _ = model.predict(obs, deterministic=True)
    got = _predict_all(imported, obs)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert np.mean(np.isclose(want, -1.0) | np.isclose(want, 3.0)) > 0.1  # the clip acted ...
    assert np.mean((want > -0.99) & (want < 2.99)) > 0.1  # ... and not everywhere
    np.testing.assert_array_equal(imported.action_low, [-1.0])
    np.testing.assert_array_equal(imported.action_high, [3.0])
    assert imported.source["algorithm"] == "PPO" and imported.policy.activation == "tanh"
    # the Gaussian in entrolab's frame [-1, 1]: (mean - centre) / half-range, std / half-range
    with torch.no_grad():
        dist = model.policy.get_distribution(torch.as_tensor(obs)).distribution
        sb3_mean, sb3_std = dist.mean.numpy(), dist.stddev.numpy()
    mean, log_std = jax.vmap(lambda o: imported.apply(imported.params, o))(obs)
    np.testing.assert_allclose(mean, (sb3_mean - 1.0) / 2.0, atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(np.exp(log_std), sb3_std / 2.0, rtol=1e-5)


def test_sac_matches_predict_with_tanh_and_the_log_std_clamp(sac_zip):
    import torch

    from entrolab.interop import from_sb3

    path, model = sac_zip
    imported = from_sb3(path, env="gymnax:Pendulum-v1")  # the same box: accepted
    obs = _observations(2)
    want, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(_predict_all(imported, obs), want, atol=1e-5, rtol=0)
    assert np.mean(np.abs(want) > 1.99) > 0.05 and np.mean(np.abs(want) < 1.9) > 0.05
    assert imported.policy.activation == "relu" and imported.policy.state_dependent_std
    with torch.no_grad():
        sb3_mean, sb3_log_std, _ = model.actor.get_action_dist_params(torch.as_tensor(obs))
    mean, log_std = jax.vmap(lambda o: imported.apply(imported.params, o))(obs)
    np.testing.assert_allclose(mean, sb3_mean.numpy(), atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(log_std, sb3_log_std.numpy(), atol=1e-5)
    assert np.any(np.asarray(log_std) == 2.0)  # clamped somewhere
    # the norms read the trunk and the mean head, not the log-std head
    layers = [imported.params["mean_net"][f"Dense_{i}"]["kernel"] for i in range(3)]
    assert [k.shape for k in layers] == [(3, 16), (16, 16), (16, 1)]
    np.testing.assert_allclose(float(norm_measures(imported.params)["frobenius_sq_sum"]),
                               sum(float(jnp.sum(k**2)) for k in layers), rtol=1e-5)


@pytest.fixture
def no_unpickling(monkeypatch):
    """Every way to unpickle (pickle, cloudpickle) raises while the test runs; torch's
    weights_only loader has its own restricted unpickler and is unaffected."""
    import cloudpickle

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    for module, names in ((pickle, ("load", "loads", "Unpickler")), (cloudpickle, ("load", "loads"))):
        for name in names:
            monkeypatch.setattr(module, name, refuse)


def test_zips_are_read_without_unpickling(ppo_zip, sac_zip, no_unpickling):
    from entrolab.interop import from_sb3

    for path, _ in (ppo_zip, sac_zip):
        assert np.all(np.isfinite(_predict_all(from_sb3(path), _observations(3))))
    with pytest.raises(AssertionError, match="unpickled"):  # the guard is live
        pickle.loads(pickle.dumps(1))


def test_observation_normalisation_from_vecnormalize_and_npz(sb3, tmp_path, monkeypatch):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from entrolab.interop import PickleRefused, from_sb3, save_obs_stats

    # clip_obs below the normalised range and a large epsilon, so that both constants matter
    venv = VecNormalize(DummyVecEnv([_pendulum]), clip_obs=1.5, epsilon=0.5, norm_reward=False)
    model = sb3.PPO("MlpPolicy", venv, n_steps=64, batch_size=32, n_epochs=1, seed=0,
                    policy_kwargs={"net_arch": [16]})
    model.learn(128)
    model.save(tmp_path / "ppo.zip")
    venv.save(str(tmp_path / "vecnormalize.pkl"))
    obs = _observations(4)
    want, _ = model.predict(venv.normalize_obs(obs), deterministic=True)
    raw, _ = model.predict(obs, deterministic=True)
    assert np.max(np.abs(want - raw)) > 1e-3  # normalisation changes the actions

    loads = []
    real_load = pickle.load
    monkeypatch.setattr(pickle, "load", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    with pytest.raises(PickleRefused, match="allow_pickle"):
        from_sb3(tmp_path / "ppo.zip", vecnormalize=tmp_path / "vecnormalize.pkl")
    assert loads == []  # refused before opening the pickle
    imported = from_sb3(tmp_path / "ppo.zip", vecnormalize=tmp_path / "vecnormalize.pkl", allow_pickle=True)
    assert loads == [1]
    np.testing.assert_allclose(_predict_all(imported, obs), want, atol=1e-5, rtol=0)
    assert imported.policy.obs_clip == 1.5 and imported.policy.obs_epsilon == 0.5

    npz = save_obs_stats(tmp_path / "stats.npz", venv)
    from_npz = from_sb3(tmp_path / "ppo.zip", obs_stats=npz)
    np.testing.assert_allclose(_predict_all(from_npz, obs), want, atol=1e-5, rtol=0)
    assert loads == [1]  # the npz path unpickled nothing
    with pytest.raises(ValueError, match="not both"):
        from_sb3(tmp_path / "ppo.zip", obs_stats=npz, vecnormalize=tmp_path / "vecnormalize.pkl", allow_pickle=True)
    np.savez(tmp_path / "short.npz", mean=np.zeros(2), var=np.ones(2))
    with pytest.raises(ValueError, match="for 2 observations"):
        from_sb3(tmp_path / "ppo.zip", obs_stats=tmp_path / "short.npz")


def _rewrite_data(src, dst, change):
    """A copy of an SB3 zip with its `data` JSON changed by `change(dict)`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename == "data":
                data = json.loads(content)
                change(data)
                content = json.dumps(data).encode()
            zout.writestr(item, content)
    return dst


def test_bad_input_is_a_clear_error(ppo_zip, sac_zip, tmp_path):
    from entrolab.interop import SB3FormatError, from_sb3

    ppo, _ = ppo_zip
    with pytest.raises(SB3FormatError, match="does not exist"):
        from_sb3(tmp_path / "missing.zip")
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(SB3FormatError, match="not a zip"):
        from_sb3(tmp_path / "text.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("data", "{}")
    with pytest.raises(SB3FormatError, match="policy.pth"):
        from_sb3(tmp_path / "other.zip")
    with pytest.raises(SB3FormatError, match="env lorenz has 3 observations and 3 actions"):
        from_sb3(ppo, env="lorenz")
    with pytest.raises(SB3FormatError, match="action box"):
        from_sb3(ppo, env="gymnax:Pendulum-v1")  # trained on [-1, 3], Pendulum's is [-2, 2]

    def abbreviate(data):  # numpy abbreviates long arrays: the bounds are unreadable
        data["action_space"]["low"] = "[-1. -1. ... -1.]"

    unreadable = _rewrite_data(sac_zip[0], tmp_path / "abbrev.zip", abbreviate)
    with pytest.raises(SB3FormatError, match="pass env="):
        from_sb3(unreadable)
    np.testing.assert_array_equal(from_sb3(unreadable, env="gymnax:Pendulum-v1").action_low, [-2.0])

    def sde(data):
        data["use_sde"] = True

    with pytest.raises(SB3FormatError, match="gSDE"):
        from_sb3(_rewrite_data(ppo, tmp_path / "sde.zip", sde))

    def custom_activation(data):
        data["policy_kwargs"]["activation_fn"] = "<class 'mypackage.Swish'>"

    with pytest.raises(SB3FormatError, match="activation"):
        from_sb3(_rewrite_data(ppo, tmp_path / "act.zip", custom_activation))


# ---- entrolab measure on an SB3 policy ------------------------------------------------------
def test_measure_cli_on_an_sb3_policy(sb3, tmp_path):
    import gymnasium

    import entrolab  # noqa: F401  (registers the gymnasium ids)
    from entrolab.cli import app

    import torch

    # an untrained PPO (the pipeline is under test, not learning), its mean scaled up from the
    # initial 0.01 so that the actions follow the observations and the noise costs something
    model = sb3.PPO("MlpPolicy", gymnasium.make("entrolab/Lorenz-v0"), seed=0, policy_kwargs={"net_arch": [16, 16]})
    with torch.no_grad():
        model.policy.action_net.weight.mul_(100.0)
    model.save(tmp_path / "lorenz_ppo.zip")
    runner = CliRunner()
    out = tmp_path / "measured"
    args = ["measure", str(tmp_path / "lorenz_ppo.zip"), "--env", "lorenz", "--out", str(out),
            "--obs-noise", "0.2,1.0", "--episodes", "4", "--modes", "deterministic", "--states", "24",
            "--sharpness-sigmas", "0.01,0.1,1",
            "--sharpness-samples", "2", "--sharpness-episodes", "2", "--env-option", "max_steps_in_episode=40"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    tables = {name: pd.read_parquet(out / f"{name}.parquet")
              for name in ("returns", "excess_risk", "complexity", "fisher_states", "sharpness")}
    assert sorted(tables["returns"]["obs_noise_std"].unique()) == [0.0, 0.2, 1.0]
    assert len(tables["fisher_states"]) == 24 and len(tables["sharpness"]) == 3
    # NaN only where defined so: the skewness and kurtosis of PPO's constant log-std part
    undefined = ["fisher_log_std_skewness", "fisher_log_std_kurtosis"]
    assert tables["complexity"][undefined].isna().all(axis=None)
    for name, table in tables.items():
        numbers = table.select_dtypes("number").drop(columns=undefined, errors="ignore")
        assert np.all(np.isfinite(numbers.to_numpy(float))), name
    row = tables["complexity"].iloc[0]
    assert row["fisher_log_std_mean"] == pytest.approx(6.0)  # 2 x action dim for PPO's log-std parameter
    assert row["lipschitz_max"] > 0 and row["spectral_product"] >= row["lipschitz_normalized_max"] * (1 - 1e-5)
    risk = tables["excess_risk"]
    assert np.all(risk.loc[risk["obs_noise_std"] == 0, "excess_risk"] == 0)
    assert np.abs(risk.loc[risk["obs_noise_std"] == 1.0, "excess_risk"]).max() > 0  # the actions follow the obs
    meta = json.loads((out / "measure.json").read_text())
    assert meta["source"]["format"] == "stable-baselines3" and meta["env"] == "lorenz"
    report = (out / "report" / "report.md").read_text()
    assert "Returns under observation noise" in report and "Fisher trace" in report and "Sharpness" in report
    assert "e-1" not in report.replace("e-10", "")  # no float noise such as -2.776e-17
    assert report.split("\n## ", 2)[1].startswith("Answer\n")  # the report answers first
    assert (out / "report" / "index.html").is_file()

    # bad input: an env that does not fit, a missing file, an SB3 zip without --env
    result = runner.invoke(app, ["measure", str(tmp_path / "lorenz_ppo.zip"), "--env", "acrobot", "--out",
                                 str(tmp_path / "x")])
    assert result.exit_code == 2 and "6 observations" in " ".join(result.output.split())
    result = runner.invoke(app, ["measure", str(tmp_path / "nope.zip"), "--env", "lorenz"])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["measure", str(tmp_path / "lorenz_ppo.zip")])
    assert result.exit_code == 2 and "--env is required" in result.output
    assert not (tmp_path / "x").exists()


def test_sharpness_of_an_imported_policy_perturbs_the_mean_network_only(sac_zip, key):
    """sharpness on an imported SAC: a quadratic return of the mean network's distance from the
    trained weights drops by sigma'^2 x (number of mean-network weights) in expectation."""
    from jax.flatten_util import ravel_pytree

    from entrolab.interop import from_sb3

    imported = from_sb3(sac_zip[0])
    theta0, _ = ravel_pytree(imported.params["mean_net"])

    def return_fn(p, k):
        return -jnp.sum((ravel_pytree(p["mean_net"])[0] - theta0) ** 2)

    out = jax.jit(lambda p, k: sharpness(imported.policy, p, return_fn, k, [0.1], 32, 1e9))(imported.params, key)
    expected = 0.01 * theta0.size
    assert float(out["drop"][0]) == pytest.approx(expected, rel=0.1)


# ---- entrolab checkpoints through the same path -----------------------------------------------
def _random_net(rng, sizes) -> dict:
    return {f"Dense_{i}": {"kernel": rng.standard_normal((a, b)).astype(np.float32) * 0.5,
                           "bias": rng.standard_normal(b).astype(np.float32) * 0.1}
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}


@pytest.fixture
def checkpoints(tmp_path):
    """A PPO and a SAC checkpoint of random weights (no training), on Lorenz with 40-step episodes."""
    from entrolab.agents.policy import GaussianPolicy
    from entrolab.checkpoint import save_checkpoint

    rng = np.random.default_rng(5)
    env = {"name": "lorenz", "overrides": {"max_steps_in_episode": 40}}
    ppo = GaussianPolicy(obs_dim=3, action_dim=3, hidden_sizes=(8, 8))
    params = {"mean_net": _random_net(rng, (3, 8, 8, 3)), "log_std": np.full(3, -0.5, np.float32),
              "obs_norm": {"mean": rng.standard_normal(3).astype(np.float32), "var": np.full(3, 4.0, np.float32)}}
    init = {"mean_net": _random_net(rng, (3, 8, 8, 3)), "log_std": np.zeros(3, np.float32)}
    save_checkpoint(tmp_path / "ppo", ppo, {"policy": params, "init_policy": init}, algorithm="ppo", config={},
                    hparams={}, env=env)
    sac = SquashedGaussianPolicy(obs_dim=3, action_dim=3, hidden_sizes=(8,))
    sac_params = {"net": _random_net(rng, (3, 8, 6))}
    save_checkpoint(tmp_path / "sac", sac, {"policy": sac_params, "init_policy": {"net": _random_net(rng, (3, 8, 6))}},
                    algorithm="sac", config={}, hparams={}, env=env)
    return tmp_path / "ppo", tmp_path / "sac", params, sac, sac_params


def test_load_subject_reads_entrolab_checkpoints(checkpoints, tmp_path):
    from entrolab.measuring import load_subject

    ppo_path, sac_path, params, sac, sac_params = checkpoints
    subject = load_subject(ppo_path)
    assert type(subject.policy).__name__ == "GaussianPolicy" and subject.env_name == "lorenz"
    assert subject.env_overrides == {"max_steps_in_episode": 40}
    np.testing.assert_array_equal(subject.params["log_std"], params["log_std"])
    assert set(subject.init_params) >= {"mean_net", "obs_norm"}  # norm_measures' dist_from_init gets it
    subject = load_subject(sac_path)
    assert isinstance(subject.policy, ImportedGaussianPolicy) and subject.policy.state_dependent_std
    obs = jnp.asarray(np.random.default_rng(0).standard_normal((8, 3)), jnp.float32)
    for got, want in zip(subject.policy.apply(subject.params, obs), sac.apply(sac_params, obs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert set(subject.init_params) == {"mean_net", "log_std_net"}
    np.savez(tmp_path / "stats.npz", mean=np.zeros(3), var=np.ones(3))
    with pytest.raises(ValueError, match="keeps its own observation statistics"):
        load_subject(ppo_path, obs_stats=tmp_path / "stats.npz")
    with pytest.raises(ValueError, match="does not exist"):
        load_subject(tmp_path / "nothing")


@pytest.mark.slow
def test_measure_cli_on_an_entrolab_checkpoint_uses_its_env_and_initialisation(checkpoints, tmp_path):
    from entrolab.cli import app

    out = tmp_path / "measured"
    result = CliRunner().invoke(app, ["measure", str(checkpoints[1]), "--out", str(out), "--obs-noise", "0.5",
                                      "--episodes", "4", "--states", "16", "--sharpness-sigmas", "0.01,0.1",
                                      "--sharpness-samples", "2", "--sharpness-episodes", "2"])
    assert result.exit_code == 0, result.output
    row = pd.read_parquet(out / "complexity.parquet").iloc[0]
    assert row["dist_from_init"] > 0 and np.isfinite(row["fisher_total_mean"])
    assert row["fisher_log_std_mean"] != pytest.approx(6.0)  # SAC's state-dependent std
    assert json.loads((out / "measure.json").read_text())["env_overrides"] == {"max_steps_in_episode": 40}
    assert "state-dependent head" in (out / "report" / "report.md").read_text()


@pytest.mark.slow
def test_measure_cli_on_a_gymnax_env_leaves_the_noise_grid_out_and_says_so(sac_zip, tmp_path):
    from entrolab.cli import app

    out = tmp_path / "measured"
    result = CliRunner().invoke(app, ["measure", str(sac_zip[0]), "--env", "gymnax:Pendulum-v1", "--out", str(out),
                                      "--states", "16", "--sharpness-sigmas", "0.01,0.1", "--sharpness-samples", "2",
                                      "--sharpness-episodes", "2"])
    assert result.exit_code == 0, result.output
    assert "no obs_noise_std" in result.output
    assert not (out / "excess_risk.parquet").exists() and (out / "sharpness.parquet").is_file()
    assert "robustness grid was left out" in (out / "report" / "report.md").read_text()
    row = pd.read_parquet(out / "complexity.parquet").iloc[0]
    assert np.isfinite(row["fisher_total_mean"]) and np.isfinite(row["sharpness_base_return"])


def test_the_measure_report_answers_first_from_its_tables():
    """No SB3 needed: the Answer quotes the strongest noise's rate (deterministic actions) and the
    headline measures of the tables it is given."""
    import pandas as pd

    from entrolab.report.document import fmt_plain
    from entrolab.report.measure import _answer_section

    risk = pd.DataFrame({"mode": ["deterministic", "deterministic", "stochastic"], "obs_noise_std": [0.0, 0.5, 0.5],
                         "return_reference": [-50.0, -50.0, -55.0], "return": [-50.0, -63.9, -70.0],
                         "excess_risk_rate": [0.0, 0.278, 0.27], "excess_risk_rate_low": [0.0, 0.25, 0.2],
                         "excess_risk_rate_high": [0.0, 0.31, 0.3]})
    complexity = pd.DataFrame([{"spectral_product": 6.529, "fisher_total_mean": 136.9, "sharpness_sigma": 0.1}])
    answer = _answer_section({"excess_risk": risk, "complexity": complexity}, complexity.iloc[0])
    text = " ".join(b for b in answer.blocks if isinstance(b, str))
    assert answer.title == "Answer"
    assert "std 0.5 (deterministic actions) the return falls from -50 to -63.9" in text
    assert f"rate of {fmt_plain(0.278)} [{fmt_plain(0.25)}, {fmt_plain(0.31)}]" in text
    assert "spectral-norm product 6.529" in text and "Fisher trace 136.9" in text and "tolerance 0.1" in text


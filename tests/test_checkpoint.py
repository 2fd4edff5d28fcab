"""Checkpoints of both policy classes, and checkpoints written before the manifest named
fields generically (the committed PPO runs) still load."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.agents.policy import GaussianPolicy
from entrolab.agents.sac.networks import SquashedGaussianPolicy
from entrolab.checkpoint import CheckpointError, load_policy, policy_from_spec, policy_spec, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("policy", [
    GaussianPolicy(3, 2, (8, 8), action_bounding="tanh"),
    SquashedGaussianPolicy(3, 2, (8,), log_std_min=-5.0),
])
def test_round_trip_of_each_policy_class(policy, tmp_path):
    params = policy.init(jax.random.key(0))
    path = save_checkpoint(tmp_path / "ckpt", policy, {"policy": params}, algorithm="test", config={},
                           hparams={}, env={"name": "none"})
    loaded = load_policy(path)
    assert loaded.policy == policy
    obs = jax.random.normal(jax.random.key(1), (5, 3))
    for a, b in zip(policy.apply(params, obs), loaded.apply(loaded.params, obs)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(loaded.act(None, obs)), np.asarray(policy.deterministic_action(params, obs)))


def test_committed_ppo_checkpoints_still_load():
    path = ROOT / "benchmarks/results/sb3_compare/entrolab_lorenz/checkpoints/alpha=0_seed=0"
    loaded = load_policy(path)
    assert isinstance(loaded.policy, GaussianPolicy) and loaded.policy.hidden_sizes == (64, 64)
    mean, log_std = loaded.apply(loaded.params, jnp.zeros(3))
    assert mean.shape == (3,) and np.isfinite(np.asarray(mean)).all()


def test_bad_policy_specs_are_clear_errors():
    spec = policy_spec(GaussianPolicy(3, 2))
    assert policy_from_spec(spec) == GaussianPolicy(3, 2)
    with pytest.raises(CheckpointError, match="unknown policy class 'Foo'"):
        policy_from_spec({**spec, "class": "Foo"})
    with pytest.raises(CheckpointError, match=r"unknown fields \['depth'\]"):
        policy_from_spec({**spec, "depth": 3})
    with pytest.raises(CheckpointError, match="cannot rebuild GaussianPolicy"):
        policy_from_spec({**spec, "action_bounding": "squash"})
    with pytest.raises(ValueError, match="cannot checkpoint a policy of class"):
        policy_spec(object())


def test_damaged_checkpoints_are_refused_before_deserialising(tmp_path):
    """A same-size bit flip (which the size check cannot see) fails the sha256; a missing params file
    and a missing manifest are clear errors too."""
    policy = GaussianPolicy(3, 2, (8,))
    path = save_checkpoint(tmp_path / "ckpt", policy, {"policy": policy.init(jax.random.key(0))}, algorithm="test",
                           config={}, hparams={}, env={"name": "none"})
    params_file = path / "policy.msgpack"
    data = bytearray(params_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    params_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 differs at the same size"):
        load_policy(path)
    params_file.write_bytes(bytes(data[:-3]))
    with pytest.raises(CheckpointError, match=r"size \d+ vs \d+ bytes"):
        load_policy(path)
    params_file.unlink()
    with pytest.raises(CheckpointError, match="policy.msgpack is missing"):
        load_policy(path)
    (path / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="manifest"):
        load_policy(path)

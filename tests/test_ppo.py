"""PPO's pure pieces against independent computations, and the training program's contracts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from entrolab.agents.networks import gaussian_entropy, gaussian_log_prob, tanh_log_det_jacobian
from entrolab.agents.policy import GaussianPolicy
from entrolab.agents.ppo import (
    PPOConfig,
    PPOHParams,
    clipped_surrogate,
    entropy_coefficient,
    explained_variance,
    gae,
    make_train,
    stack_hparams,
)
from entrolab.agents.running_stats import RunningStats
from entrolab.envs import make


def naive_gae(rewards, values, final_values, last_value, terminated, truncated, gamma, lam):
    """Per-environment loop written from the definitions, episode by episode."""
    T = len(rewards)
    adv = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        if terminated[t]:
            delta = rewards[t] - values[t]
            running = delta
        elif truncated[t]:
            delta = rewards[t] + gamma * final_values[t] - values[t]
            running = delta
        else:
            nxt = values[t + 1] if t + 1 < T else last_value
            delta = rewards[t] + gamma * nxt - values[t]
            running = delta + gamma * lam * running
        adv[t] = running
    return adv


def test_gae_matches_naive_loop_with_terminations_and_truncations():
    rng = np.random.default_rng(0)
    T, E = 40, 3
    rewards = rng.normal(size=(T, E))
    values = rng.normal(size=(T, E))
    final_values = rng.normal(size=(T, E))
    last_value = rng.normal(size=E)
    terminated = rng.random((T, E)) < 0.1
    truncated = (rng.random((T, E)) < 0.1) & ~terminated
    done = terminated | truncated
    following = np.concatenate([values[1:], last_value[None]], 0)
    next_values = np.where(done, final_values, following)
    adv, ret = gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(next_values),
                   jnp.asarray(terminated), jnp.asarray(done), 0.97, 0.9)
    for e in range(E):
        expected = naive_gae(rewards[:, e], values[:, e], final_values[:, e], last_value[e],
                             terminated[:, e], truncated[:, e], 0.97, 0.9)
        np.testing.assert_allclose(np.asarray(adv[:, e]), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ret), np.asarray(adv) + values, rtol=1e-5, atol=1e-5)


def test_gae_bootstraps_on_truncation_not_on_termination():
    r = jnp.array([[1.0], [1.0]])
    v = jnp.zeros((2, 1))
    nv = jnp.array([[0.0], [10.0]])  # value of the final observation at t = 1
    trunc_adv, _ = gae(r, v, nv, jnp.array([[False], [False]]), jnp.array([[False], [True]]), 0.5, 1.0)
    term_adv, _ = gae(r, v, nv, jnp.array([[False], [True]]), jnp.array([[False], [True]]), 0.5, 1.0)
    assert float(trunc_adv[1, 0]) == pytest.approx(1.0 + 0.5 * 10.0)
    assert float(term_adv[1, 0]) == pytest.approx(1.0)


def test_distribution_maths_against_scipy():
    rng = np.random.default_rng(1)
    x, mean = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    log_std = rng.normal(size=3) * 0.3
    expected = scipy.stats.norm.logpdf(x, mean, np.exp(log_std)).sum(-1)
    np.testing.assert_allclose(np.asarray(gaussian_log_prob(x, mean, log_std)), expected, rtol=1e-5)
    expected_h = scipy.stats.norm.entropy(0.0, np.exp(log_std)).sum()
    assert float(gaussian_entropy(jnp.asarray(log_std))) == pytest.approx(expected_h, rel=1e-5)
    u = np.linspace(-8, 8, 7)[:, None]
    np.testing.assert_allclose(np.asarray(tanh_log_det_jacobian(u)), np.log1p(-np.tanh(u[:, 0]) ** 2 + 1e-300),
                               rtol=1e-4, atol=1e-4)


def test_tanh_policy_log_prob_is_the_density_of_the_squashed_action():
    """Integrate exp(log_prob) over a = tanh(u) numerically: it must be 1."""
    policy = GaussianPolicy(obs_dim=1, action_dim=1, action_bounding="tanh")
    a = np.linspace(-0.999999, 0.999999, 200001)
    u = np.arctanh(a)[:, None]
    logp = policy.log_prob(jnp.asarray(u), jnp.full((1,), 0.3), jnp.full((1,), -0.2))
    assert np.trapezoid(np.exp(np.asarray(logp, np.float64)), a) == pytest.approx(1.0, abs=1e-3)


def test_clipped_surrogate_and_explained_variance():
    log_ratio = jnp.log(jnp.array([0.5, 1.0, 1.5, 1.1]))
    adv = jnp.array([1.0, -1.0, 2.0, -2.0])
    loss, kl, frac = clipped_surrogate(log_ratio, adv, 0.2)
    expected = -np.mean([min(0.5 * 1, 0.8 * 1), -1.0, min(1.5 * 2, 1.2 * 2), min(1.1 * -2, 1.1 * -2)])
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(frac) == pytest.approx(0.5)
    r = np.array([0.5, 1.0, 1.5, 1.1])
    assert float(kl) == pytest.approx(np.mean(r - 1 - np.log(r)), rel=1e-5)
    t = jnp.array([1.0, 2.0, 3.0, 4.0])
    assert float(explained_variance(t, t)) == pytest.approx(1.0)
    assert float(explained_variance(jnp.zeros(4) + 2.5, t)) == pytest.approx(0.0, abs=1e-6)


def test_running_stats_match_numpy():
    rng = np.random.default_rng(2)
    data = rng.normal(3.0, 2.0, size=(500, 4))
    stats = RunningStats.create((4,), jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    for chunk in np.split(data, 10):
        stats = stats.update(jnp.asarray(chunk))
    np.testing.assert_allclose(np.asarray(stats.mean), data.mean(0), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(stats.var), data.var(0), rtol=1e-3)


def test_entropy_schedules():
    hp = PPOHParams(ent_coef=0.1, ent_horizon=1000.0)
    assert float(entropy_coefficient(hp, 0, "linear")) == pytest.approx(0.1)
    assert float(entropy_coefficient(hp, 250, "linear")) == pytest.approx(0.075)
    assert float(entropy_coefficient(hp, 5000, "linear")) == 0.0
    assert float(entropy_coefficient(hp, 5000, "constant")) == pytest.approx(0.1)


SMALL = PPOConfig(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 3, num_epochs=2, num_minibatches=4,
                  hidden_sizes=(16, 16))


def test_train_is_deterministic_and_logs_the_applied_coefficient():
    env, params = make("lorenz")
    train = jax.jit(make_train(SMALL, env, params))
    hp = PPOHParams(ent_coef=0.05, ent_horizon=256.0)
    _, m1 = train(jax.random.key(0), hp, params)
    _, m2 = train(jax.random.key(0), hp, params)
    _, m3 = train(jax.random.key(1), hp, params)
    for k in m1:
        np.testing.assert_array_equal(np.asarray(m1[k]), np.asarray(m2[k]), err_msg=k)
    assert not np.allclose(np.asarray(m1["value_loss"]), np.asarray(m3["value_loss"]))
    # updates start after 0, 128, 256 env steps: 0.05 * (1 - t / 256)
    np.testing.assert_allclose(np.asarray(m1["ent_coef"]), [0.05, 0.025, 0.0], rtol=1e-6, atol=1e-8)
    assert m1["episode_return"].shape == (3,)
    for k in ("entropy", "approx_kl", "clip_fraction", "value_loss", "explained_variance", "policy_loss"):
        assert np.all(np.isfinite(np.asarray(m1[k]))), k


@pytest.mark.slow  # ~30 s of compiling; SAC's equivalent (tests/test_sac.py) stays in the default suite
def test_sweeping_hyperparameters_does_not_recompile():
    env, params = make("lorenz")
    train = jax.jit(jax.vmap(make_train(SMALL, env, params), in_axes=(0, 0, None)))
    keys = jax.random.split(jax.random.key(0), 3)
    a = stack_hparams([PPOHParams(ent_coef=c, learning_rate=lr) for c, lr in [(0.0, 1e-3), (0.1, 3e-4), (0.5, 1e-4)]])
    b = stack_hparams([PPOHParams(ent_coef=c, gamma=g) for c, g in [(0.2, 0.9), (0.0, 0.95), (0.01, 0.99)]])
    _, ma = train(keys, a, params)
    _, mb = train(keys, b, params)
    assert train._cache_size() == 1
    np.testing.assert_allclose(np.asarray(ma["ent_coef"][:, 0]), [0.0, 0.1, 0.5], rtol=1e-6)
    assert not np.allclose(np.asarray(ma["value_loss"]), np.asarray(mb["value_loss"]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(total_timesteps=100), "smaller than one rollout"),
        (dict(num_minibatches=3), "not divisible"),
        (dict(action_bounding="sigmoid"), "action_bounding"),
        (dict(entropy_schedule="cosine"), "entropy_schedule"),
        (dict(num_envs=0), "num_envs must be >= 1"),
    ],
)
def test_config_errors_are_clear(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PPOConfig(**{**dict(num_envs=4, num_steps=32, total_timesteps=1000, num_minibatches=4), **kwargs})


def test_hparam_errors_are_clear():
    with pytest.raises(ValueError, match="ent_coef out of range"):
        PPOHParams(ent_coef=-0.1).check()
    with pytest.raises(ValueError, match="gamma out of range"):
        stack_hparams([PPOHParams(), PPOHParams(gamma=1.5)]).check()
    PPOHParams().check()


def test_rmsprop_is_torchs():
    """optimizer = "rmsprop" against torch's RMSprop written out in NumPy (v = 0.99 v + 0.01 g^2,
    p -= lr g / (sqrt(v) + eps)), three steps on a quadratic, no clipping in the way."""
    from entrolab.agents.ppo.train import make_optimizer

    hp = PPOHParams(learning_rate=0.01, adam_eps=1e-8, max_grad_norm=1e9, critic_max_grad_norm=1e9)
    tx = make_optimizer(hp, "joint", "rmsprop")
    params = {"policy": jnp.asarray([1.0, -2.0]), "critic": jnp.asarray([0.5])}
    state = tx.init(params)
    p, v = {k: np.asarray(x, np.float64) for k, x in params.items()}, {k: 0.0 for k in params}
    for _ in range(3):
        grads = jax.tree.map(lambda x: 2.0 * x ** 3, params)
        updates, state = tx.update(grads, state, params)
        params = jax.tree.map(lambda a, b: a + b, params, updates)
        for k in p:
            g = 2.0 * p[k] ** 3
            v[k] = 0.99 * v[k] + 0.01 * g**2
            p[k] = p[k] - 0.01 * g / (np.sqrt(v[k]) + 1e-8)
    for k in p:
        np.testing.assert_allclose(np.asarray(params[k]), p[k], rtol=1e-5)


def test_one_epoch_one_minibatch_is_the_a2c_gradient():
    """With one epoch of one minibatch (and raw advantages), PPO's policy gradient is A2C's,
    -mean(A grad log pi(a|s)) - c grad H, whatever clip_eps: the ratio is 1 where it is taken."""
    from entrolab.agents.ppo.losses import gae
    from entrolab.agents.ppo.train import PPO

    env, params = make("minigrid_room")
    cfg = PPOConfig(num_envs=4, num_steps=16, num_epochs=1, num_minibatches=1, total_timesteps=64,
                    normalize_advantages=False, optimizer="rmsprop")
    ppo = PPO(cfg, env, params)
    hp = PPOHParams(clip_eps=0.05, ent_coef=0.01)
    state = jax.jit(ppo.init)(jax.random.key(0), hp, params)
    # a policy far from uniform, so that the log-probabilities differ between actions
    state = state.replace(params={**state.params, "policy": jax.tree.map(lambda x: 30.0 * x, state.params["policy"])})
    state, traj, _, done = jax.jit(ppo._rollout)(state, hp, params)
    next_values = jnp.concatenate([traj.value[1:], traj.value[-1:]], axis=0)
    adv, ret = gae(traj.reward, traj.value, next_values, traj.terminated, done, hp.gamma, hp.gae_lambda)
    flat = jax.tree.map(lambda x: x.reshape((cfg.batch_size, *x.shape[2:])), (traj, adv, ret))
    batch, adv, ret = flat
    adv = adv + jnp.linspace(-1.0, 1.0, adv.shape[0])  # nonzero advantages of both signs

    g_ppo = jax.jit(jax.grad(lambda p: ppo._loss(p, batch, adv, ret, hp, hp.ent_coef, state.value_stats)[0]))(
        state.params)

    def a2c(policy_params):
        (logits,) = ppo.policy.apply_normalized(policy_params, batch.nobs)
        logp = ppo.policy.log_prob(batch.u, logits)
        return -jnp.mean(adv * logp) - hp.ent_coef * jnp.mean(ppo.policy.distribution_entropy(logits))

    g_a2c = jax.jit(jax.grad(a2c))(state.params["policy"])
    for a, b in zip(jax.tree.leaves(g_ppo["policy"]), jax.tree.leaves(g_a2c)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)
    assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(g_a2c)) > 1e-4

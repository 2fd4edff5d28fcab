"""SAC and SAC-AdaEnt: pure pieces against independent computations, learning on the
probe environments (`entrolab.envs.probes`, known answers), and the training
program's contracts (AdaEnt at threshold 0 is SAC bit for bit, determinism, one
compiled program for a sweep, clear errors).

Speed: each (env, config) is compiled once per session (`_program`) at XLA's
backend optimisation level 0, which halves the compile time of these small
programs (about 6 s instead of 12 s on the shared 2-core CPU) for runs of a
second or two; every probe run is cached (`_train`), so tests that look at the
same run share it. Probes use gamma = 0.9 and tau = 0.05 so that bootstrapped
values converge in ~1500 iterations of 4 environments.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from entrolab.agents.evaluate import episode_returns
from entrolab.agents.sac import (
    ReplayBuffer,
    SACConfig,
    SACHParams,
    SquashedGaussianPolicy,
    Transition,
    adaent_switch,
    alpha_loss,
    make_train,
    polyak,
    shifted_cosine_similarity,
    soft_td_target,
    stack_hparams,
    td_target,
)
from entrolab.envs import make
from entrolab.envs.probes import truncation_as_termination_value

GAMMA = 0.9
BASE = dict(num_envs=4, buffer_size=4096, batch_size=64, learning_starts=256, hidden_sizes=(32, 32),
            log_interval=100, adaent_num_actions=16)
HPARAMS = SACHParams(actor_lr=3e-3, critic_lr=3e-3, alpha_lr=3e-3, gamma=GAMMA, tau=0.05, alpha=1e-3)
ITERATIONS = {"probe_action": 3000}  # the entropy check needs the longer run; the rest converge by 1500


def _f32(hp: SACHParams) -> SACHParams:
    return jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), hp)


@functools.cache
def _program(name: str, config_items: tuple):
    """(env, params, trainer, compiled train) for one env and config, compiled once."""
    env, params = make(name)
    config = SACConfig(**dict(config_items))
    trainer = make_train(config, env, params)
    lowered = jax.jit(trainer).lower(jax.random.key(0), _f32(HPARAMS), params)
    try:
        compiled = lowered.compile(compiler_options={"xla_backend_optimization_level": 0})
    except Exception:  # an XLA without the option: the default compile
        compiled = lowered.compile()
    return env, params, trainer, compiled


@functools.cache
def _train(name: str, seed: int = 0, hp_items: tuple = (), **config):
    iterations = ITERATIONS.get(name, 1500)
    config = {**BASE, "total_timesteps": iterations * BASE["num_envs"], **config}
    env, params, trainer, compiled = _program(name, tuple(sorted(config.items())))
    state, metrics = compiled(jax.random.key(seed), _f32(HPARAMS.replace(**dict(hp_items))), params)
    return env, params, trainer, state, jax.device_get(metrics)


def _col(x):
    return jnp.asarray(x, jnp.float32).reshape(-1, 1)


# ---- pure pieces --------------------------------------------------------------------------


def test_td_target_bootstraps_on_truncation_not_on_termination():
    r = jnp.array([1.0, 1.0])
    next_value = jnp.array([10.0, 10.0])  # value of the final observation of each step
    truncated_step = td_target(r, jnp.array([False, False]), next_value, 0.5)
    terminated_step = td_target(r, jnp.array([False, True]), next_value, 0.5)
    np.testing.assert_allclose(np.asarray(truncated_step), [6.0, 6.0])
    np.testing.assert_allclose(np.asarray(terminated_step), [6.0, 1.0])
    soft = soft_td_target(r, jnp.array([False, True]), next_value, jnp.array([-2.0, -2.0]), 0.25, 0.5)
    np.testing.assert_allclose(np.asarray(soft), [1.0 + 0.5 * (10.0 + 0.5), 1.0])


def test_shifted_cosine_similarity_against_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 16)), rng.normal(size=(7, 16))
    xs, ys = x - x.min(-1, keepdims=True), y - y.min(-1, keepdims=True)
    expected = (xs * ys).sum(-1) / (np.linalg.norm(xs, axis=-1) * np.linalg.norm(ys, axis=-1))
    sim = np.asarray(shifted_cosine_similarity(jnp.asarray(x), jnp.asarray(y)))
    np.testing.assert_allclose(sim, expected, rtol=1e-5)
    # invariant to shifts and positive scales (Q is compared up to its offset)
    np.testing.assert_allclose(np.asarray(shifted_cosine_similarity(jnp.asarray(3 * x + 7), jnp.asarray(y))), sim,
                               rtol=1e-4)
    # a constant vector has similarity 0, not NaN; identical vectors 1
    assert float(shifted_cosine_similarity(jnp.ones(5), jnp.arange(5.0))) == 0.0
    assert float(shifted_cosine_similarity(jnp.arange(5.0), jnp.arange(5.0))) == pytest.approx(1.0, abs=1e-6)


def test_adaent_threshold_zero_never_switches_and_one_almost_always():
    rng = np.random.default_rng(1)
    q_soft, q_plain = jnp.asarray(rng.normal(size=(2000, 8))), jnp.asarray(rng.normal(size=(2000, 8)))
    switch, sim = adaent_switch(q_soft, q_plain, 0.0)
    assert float(jnp.min(sim)) >= 0.0 and not bool(jnp.any(switch))  # shifted vectors are >= 0
    assert not bool(jnp.any(adaent_switch(q_soft, q_plain, -1.0)[0]))
    assert float(jnp.mean(adaent_switch(q_soft, q_plain, 1.0)[0])) == 1.0
    # reversed ranking (plain Q = -soft Q) is the case AdaEnt is for
    switch, sim = adaent_switch(q_soft, -q_soft, 0.9)
    assert bool(jnp.all(switch)) and float(jnp.max(sim)) < 0.9


def test_squashed_log_prob_is_the_density_of_tanh_u_and_log_std_is_clipped():
    policy = SquashedGaussianPolicy(obs_dim=1, action_dim=1, hidden_sizes=(8,))
    a = np.linspace(-0.999999, 0.999999, 200001)
    logp = policy.log_prob(jnp.asarray(np.arctanh(a))[:, None], jnp.full((1,), 0.4), jnp.full((1,), -0.3))
    assert np.trapezoid(np.exp(np.asarray(logp, np.float64)), a) == pytest.approx(1.0, abs=1e-3)
    params = policy.init(jax.random.key(0))
    params = jax.tree.map(lambda p: p * 1e3, params)  # push the log-std head far out
    _, log_std = policy.apply(params, jnp.asarray([[5.0], [-5.0]]))
    assert float(jnp.min(log_std)) >= -20.0 and float(jnp.max(log_std)) <= 2.0
    a = policy.stochastic_action(jax.random.key(1), params, jnp.zeros((100, 1)))
    assert float(jnp.max(jnp.abs(a))) <= 1.0


def test_replay_buffer_is_circular():
    buf = ReplayBuffer.create(5, obs_dim=1, action_dim=1)

    def batch(start, n):
        v = jnp.arange(start, start + n, dtype=jnp.float32)
        return Transition(v[:, None], v[:, None], v, v[:, None] + 0.5, v > 100)

    buf = buf.add(batch(0, 3))
    assert int(buf.size) == 3 and int(buf.position) == 3
    buf = buf.add(batch(3, 3))  # slots 3, 4, then 0 overwritten
    assert int(buf.size) == 5 and int(buf.position) == 1
    np.testing.assert_array_equal(np.asarray(buf.data.reward), [5.0, 1.0, 2.0, 3.0, 4.0])
    sample = buf.sample(jax.random.key(0), 1000)
    assert set(np.asarray(sample.reward).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    np.testing.assert_array_equal(np.asarray(sample.next_obs[:, 0]), np.asarray(sample.obs[:, 0]) + 0.5)


def test_alpha_loss_raises_alpha_below_the_target_entropy_and_polyak():
    log_prob_narrow = jnp.full((8,), 2.0)  # entropy estimate -2 < target -1: alpha must grow
    grad = jax.grad(alpha_loss)(jnp.asarray(0.0), log_prob_narrow, -1.0)
    assert float(grad) < 0  # gradient descent increases log alpha
    grad = jax.grad(alpha_loss)(jnp.asarray(0.0), jnp.full((8,), -0.5), -1.0)
    assert float(grad) > 0
    out = polyak({"w": jnp.zeros(3)}, {"w": jnp.ones(3)}, 0.25)
    np.testing.assert_allclose(np.asarray(out["w"]), 0.25)


# ---- learning on the probes (fixed alpha = 1e-3: the soft values are the plain ones to ~1e-2) ----


@pytest.mark.parametrize("name, obs", [
    ("probe_constant", [0.0]),
    ("probe_obs_reward", [1.0, -1.0]),
    pytest.param("probe_discount", [0.0, 1.0], marks=pytest.mark.slow),  # ~11 s (default-suite budget)
])
def test_soft_critic_learns_the_known_values(name, obs):
    env, params, trainer, state, metrics = _train(name)
    expected = np.asarray(env.value(_col(obs), GAMMA, params))
    for a in (-0.8, 0.0, 0.8):  # action-independent rewards: Q(s, a) = V(s) for every a
        q = np.asarray(trainer.soft_q(state, _col(obs), jnp.full((len(obs), 1), a)))
        np.testing.assert_allclose(q, expected, atol=0.05, err_msg=f"{name}, a = {a}")
    assert np.all(np.isfinite(metrics["critic_loss"])) and metrics["critic_loss"][-1] < 1e-3


def test_terminal_transitions_are_stored_as_terminated():
    """probe_discount: 0 -> 1 (not terminal), 1 -> terminal observation 2 (terminated)."""
    *_, state, _ = _train("probe_discount")
    data, size = state.buffer.data, int(state.buffer.size)
    obs, nxt, term = (np.asarray(x)[:size] for x in (data.obs[:, 0], data.next_obs[:, 0], data.terminated))
    assert size == 4096 and set(obs.tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(nxt, obs + 1.0)  # the final observation, not the reset one
    np.testing.assert_array_equal(term, obs == 1.0)


def test_bootstraps_through_truncation():
    env, params, trainer, state, metrics = _train("probe_truncation")
    expected = float(env.value(jnp.zeros((1,)), GAMMA, params))
    wrong = truncation_as_termination_value(GAMMA)
    assert expected == pytest.approx(1.0 / (1.0 - GAMMA)) and wrong < 0.5 * expected
    for a in (-0.8, 0.0, 0.8):
        q = float(trainer.soft_q(state, _col([0.0]), jnp.full((1, 1), a))[0])
        assert abs(q - expected) < 0.3, (a, q, expected, wrong)
    # episodes were cut by the time limit, yet no transition is stored as terminated
    assert metrics["num_episodes"].sum() > 0
    assert not np.any(np.asarray(state.buffer.data.terminated))
    np.testing.assert_array_equal(np.asarray(state.buffer.data.next_obs), 0.0)


def test_finds_the_best_action():
    env, params, trainer, state, metrics = _train("probe_action")
    target = float(np.asarray(env.optimal_action(jnp.zeros((1,)), params))[0])
    action = float(trainer.policy.deterministic_action(trainer.full_policy_params(state), jnp.zeros((1,)))[0])
    assert action == pytest.approx(target, abs=0.05)
    q_star = float(trainer.soft_q(state, _col([0.0]), jnp.full((1, 1), target))[0])
    assert q_star == pytest.approx(float(env.value(jnp.zeros((1,)), GAMMA, params)), abs=0.01)
    assert metrics["episode_return"][-1] > -0.01  # sampled actions too: the policy has narrowed
    # the trained policy plugs into the package's evaluation
    returns = episode_returns(trainer.policy, trainer.full_policy_params(state), env, params,
                              jax.random.key(3), num_episodes=8, num_steps=1)
    assert float(jnp.mean(returns)) > -0.0025


def test_conditions_the_action_on_the_observation():
    env, params, trainer, state, _ = _train("probe_obs_action")
    obs = _col([1.0, -1.0])
    target = np.asarray(env.optimal_action(obs, params)).reshape(-1)
    np.testing.assert_allclose(target, [0.5, -0.5])
    action = np.asarray(trainer.policy.deterministic_action(trainer.full_policy_params(state), obs)).reshape(-1)
    np.testing.assert_allclose(action, target, atol=0.05)


def _soft_optimum_on_probe_action(alpha: float, target: float = 0.5):
    """The best (mean, log_std) of a tanh-squashed Gaussian for the one-step reward
    -(a - target)^2 with fixed alpha, and its entropy: maximise
    E[-(tanh u - target)^2] + alpha H, H = log(sigma sqrt(2 pi e)) + E[log(1 - tanh(u)^2)],
    by Gauss-Hermite quadrature and Nelder-Mead (the family's optimum, computed
    independently of the learner; to first order sigma_a^2 = alpha / 2)."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()

    def objective(p):
        mean, log_std = p
        u = mean + np.exp(log_std) * x
        log_det = np.sum(w * 2.0 * (np.log(2.0) - u - np.logaddexp(0.0, -2.0 * u)))
        entropy = log_std + 0.5 * np.log(2 * np.pi * np.e) + log_det
        return np.sum(w * (np.tanh(u) - target) ** 2) - alpha * entropy, entropy

    res = scipy.optimize.minimize(lambda p: objective(p)[0], [0.5, -1.0], method="Nelder-Mead",
                                  options=dict(xatol=1e-8, fatol=1e-12))
    return res.x[0], res.x[1], objective(res.x)[1]


def test_fixed_alpha_gives_the_soft_optimal_squashed_gaussian():
    """probe_action is one step (terminated), so Q(s, a) = -(a - 0.5)^2 exactly and SAC's
    actor must reach the soft-optimal member of its family."""
    alpha = 0.02
    mean_star, log_std_star, entropy_star = _soft_optimum_on_probe_action(alpha)
    assert log_std_star == pytest.approx(np.log(np.sqrt(alpha / 2) / 0.75), abs=0.03)  # first-order check
    _, _, trainer, state, metrics = _train("probe_action", hp_items=(("alpha", alpha),))
    mean, log_std = trainer.policy.apply(trainer.full_policy_params(state), jnp.zeros((1,)))
    assert float(mean[0]) == pytest.approx(mean_star, abs=0.03)
    assert float(log_std[0]) == pytest.approx(log_std_star, abs=0.1)
    assert float(np.mean(metrics["entropy"][-5:])) == pytest.approx(entropy_star, abs=0.1)


# ---- automatic alpha and AdaEnt -------------------------------------------------------------

AUTO = dict(auto_alpha=True, target_entropy=-0.5)
AUTO_HP = (("alpha", 0.2),)


@pytest.mark.slow  # ~12 s (default-suite budget)
def test_automatic_alpha_finds_the_coefficient_whose_optimum_has_the_target_entropy():
    """On probe_action the soft-optimal entropy H*(alpha) is known (above); automatic alpha
    must move the entropy to the target and alpha to the root of H*(alpha) = target
    (0.049 for -0.5), from alpha = 0.2 whose optimum is far above the target."""
    target = AUTO["target_entropy"]
    alpha_star = scipy.optimize.brentq(lambda a: _soft_optimum_on_probe_action(a)[2] - target, 0.005, 0.5)
    assert _soft_optimum_on_probe_action(0.2)[2] > target + 0.4
    _, _, trainer, state, metrics = _train("probe_action", hp_items=AUTO_HP, **AUTO)
    assert trainer.target_entropy == target
    assert metrics["entropy"][0] > target + 0.5  # it started far from the target
    assert float(np.mean(metrics["entropy"][-3:])) == pytest.approx(target, abs=0.07)
    assert metrics["alpha"][-1] == pytest.approx(alpha_star, rel=0.15)
    assert float(jnp.exp(state.log_alpha)) == pytest.approx(metrics["alpha"][-1])


def test_default_target_entropy_is_minus_the_action_dimension():
    env, params = make("probe_action")
    assert make_train(SACConfig(**{**BASE, "total_timesteps": 400}), env, params).target_entropy == -1.0


@pytest.mark.slow  # ~17 s (default-suite budget); AdaEnt's switch is tested in the default suite
def test_adaent_with_threshold_zero_is_sac_exactly():
    """Shifted cosine similarities are >= 0, so threshold 0 never switches; AdaEnt's extra
    critics and draws use their own keys, so actor, soft critics and alpha are SAC's
    bit for bit (same key, same hyperparameters, auto-alpha on)."""
    _, _, _, sac, m_sac = _train("probe_action", hp_items=AUTO_HP, **AUTO)
    hp = AUTO_HP + (("adaent_threshold", 0.0),)
    _, _, _, ada, m_ada = _train("probe_action", hp_items=hp, adaent=True, **AUTO)
    for part in ("actor", "critic", "target_critic"):
        jax.tree.map(np.testing.assert_array_equal, sac.params[part], ada.params[part])
    np.testing.assert_array_equal(np.asarray(sac.log_alpha), np.asarray(ada.log_alpha))
    for k in ("actor_loss", "critic_loss", "entropy", "alpha", "q_soft", "episode_return", "log_std_mean"):
        np.testing.assert_array_equal(m_sac[k], m_ada[k], err_msg=k)
    np.testing.assert_array_equal(m_ada["adaent_switch_fraction"], 0.0)
    assert np.all(np.isfinite(m_ada["plain_critic_loss"])) and np.all(np.isnan(m_sac["plain_critic_loss"]))


@pytest.mark.parametrize("chunk", [1, 5, 16])
def test_adaent_chunked_evaluation_gives_the_unchunked_similarities(chunk):
    """`adaent_chunk` passes over the K sampled actions a few at a time (memory): the
    similarities and switches are the all-at-once ones (K = 16; chunk 5 leaves a remainder)."""
    env, params = make("probe_obs_reward")
    cfg = dict(BASE, total_timesteps=4096, adaent=True)
    whole = make_train(SACConfig(**cfg), env, params)
    parts = make_train(SACConfig(**cfg, adaent_chunk=chunk), env, params)
    state = whole.init(jax.random.key(3), _f32(HPARAMS), params)
    p = state.params
    plain = whole.critic.init(jax.random.key(4), whole.policy.obs_dim, whole.policy.action_dim)
    obs = jax.random.normal(jax.random.key(5), (64, whole.policy.obs_dim))
    args = (p["actor"], p["critic"], plain, obs, jax.random.key(6), 0.9)
    s_whole, sim_whole = jax.jit(whole._adaent_switch)(*args)
    s_parts, sim_parts = jax.jit(parts._adaent_switch)(*args)
    np.testing.assert_allclose(np.asarray(sim_parts), np.asarray(sim_whole), rtol=1e-6, atol=1e-7)
    assert 0.0 < float(np.mean(np.asarray(sim_whole))) < 1.0  # the two critics differ: a real comparison
    np.testing.assert_array_equal(np.asarray(s_parts), np.asarray(s_whole))


@pytest.mark.slow  # ~9 s; AdaEnt at threshold 0 checks the same kind of identity by default
def test_sac_with_a_plain_critic_beside_is_sac_exactly():
    """`plain_critic=True` trains the entropy-free critics (for the Q landscapes) without
    touching the actor, the soft critics or alpha: SAC's values bit for bit, and the plain
    critic's loss is logged."""
    _, _, _, sac, m_sac = _train("probe_action", hp_items=AUTO_HP, **AUTO)
    _, _, trainer, both, m_both = _train("probe_action", hp_items=AUTO_HP, plain_critic=True, **AUTO)
    for part in ("actor", "critic", "target_critic"):
        jax.tree.map(np.testing.assert_array_equal, sac.params[part], both.params[part])
    np.testing.assert_array_equal(np.asarray(sac.log_alpha), np.asarray(both.log_alpha))
    for k in ("actor_loss", "critic_loss", "entropy", "alpha", "q_soft", "episode_return"):
        np.testing.assert_array_equal(m_sac[k], m_both[k], err_msg=k)
    assert np.all(np.isfinite(m_both["plain_critic_loss"])) and np.all(np.isfinite(m_both["q_plain"]))
    # probe_action: one step, reward -(a - 0.5)^2 -> the plain Q is the reward itself
    for a in (-0.5, 0.0, 0.5):
        q = float(trainer.plain_q(both, _col([0.0]), jnp.full((1, 1), a))[0])
        assert q == pytest.approx(-((a - 0.5) ** 2), abs=0.05)


def test_adaent_with_threshold_one_switches_and_still_learns():
    hp = AUTO_HP + (("adaent_threshold", 1.0),)
    env, params, trainer, state, metrics = _train("probe_action", hp_items=hp, adaent=True, **AUTO)
    assert np.all(metrics["adaent_switch_fraction"] > 0.5)  # cos < 1 unless exactly parallel
    action = float(trainer.policy.deterministic_action(trainer.full_policy_params(state), jnp.zeros((1,)))[0])
    assert action == pytest.approx(0.5, abs=0.05)
    q_plain = float(trainer.plain_q(state, _col([0.0]), jnp.full((1, 1), 0.5))[0])
    assert q_plain == pytest.approx(0.0, abs=0.01)


@pytest.mark.slow  # ~9 s; `make test-slow` runs it (the default suite keeps the other AdaEnt tests)
def test_adaent_plain_critic_learns_the_plain_value_and_bootstraps_through_truncation():
    """probe_truncation at alpha = 0.2: the plain Q is 1 / (1 - gamma) = 10 whatever the
    policy, while the soft Q adds the discounted entropy bonus: (1 + gamma alpha H) / (1 - gamma)
    with H the policy's entropy (one state)."""
    alpha = 0.2
    env, params, trainer, state, metrics = _train("probe_truncation", hp_items=(("alpha", alpha),), adaent=True)
    expected_plain = float(env.value(jnp.zeros((1,)), GAMMA, params))
    entropy = float(np.mean(metrics["entropy"][-3:]))
    expected_soft = (1.0 + GAMMA * alpha * entropy) / (1.0 - GAMMA)
    assert expected_soft - expected_plain > 0.5  # the two are told apart
    for a in (-0.5, 0.0, 0.5):
        obs, act = _col([0.0]), jnp.full((1, 1), a)
        assert float(trainer.plain_q(state, obs, act)[0]) == pytest.approx(expected_plain, abs=0.3)
        assert float(trainer.soft_q(state, obs, act)[0]) == pytest.approx(expected_soft, abs=0.3)
    assert np.all((metrics["adaent_switch_fraction"] >= 0) & (metrics["adaent_switch_fraction"] <= 1))


# ---- contracts -------------------------------------------------------------------------------


def test_training_is_deterministic_and_logs_one_row_per_chunk():
    *_, m1 = _train("probe_action")
    *_, m2 = _train.__wrapped__("probe_action")  # recomputed, not the cached result
    *_, m3 = _train("probe_action", seed=1)
    assert set(m1) >= {"env_steps", "episode_return", "alpha", "entropy", "critic_loss", "actor_loss", "q_soft",
                       "adaent_switch_fraction"}
    for k in m1:
        np.testing.assert_array_equal(m1[k], m2[k], err_msg=k)
        assert m1[k].shape == (ITERATIONS["probe_action"] // BASE["log_interval"],), k
    assert not np.array_equal(m1["critic_loss"], m3["critic_loss"])
    np.testing.assert_array_equal(m1["env_steps"], np.arange(1, 31) * 400.0)
    # updates start once the buffer holds learning_starts = 256 transitions, within the first chunk
    assert np.isfinite(m1["critic_loss"][0])


@pytest.mark.slow  # ~12 s, like PPO's no-recompile check: `make test-slow`
def test_sweeping_alpha_and_the_threshold_does_not_recompile():
    env, params = make("probe_obs_action")
    config = SACConfig(**{**BASE, "total_timesteps": 4 * 200, "adaent": True, "learning_starts": 64})
    trainer = make_train(config, env, params)
    train = jax.jit(jax.vmap(trainer, in_axes=(0, 0, None)))
    keys = jax.random.split(jax.random.key(0), 2)
    a = stack_hparams([HPARAMS.replace(alpha=0.0), HPARAMS.replace(alpha=0.5, adaent_threshold=1.0)])
    b = stack_hparams([HPARAMS.replace(alpha=0.1, gamma=0.5), HPARAMS.replace(alpha=0.01, adaent_threshold=-1.0)])
    _, ma = train(keys, a, params)
    _, mb = train(keys, b, params)
    assert train._cache_size() == 1
    np.testing.assert_allclose(ma["alpha"][:, -1], [0.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(mb["alpha"][:, -1], [0.1, 0.01], rtol=1e-6)
    assert np.all(np.asarray(ma["adaent_switch_fraction"][1]) > 0)
    np.testing.assert_array_equal(np.asarray(mb["adaent_switch_fraction"][1]), 0.0)
    assert not np.allclose(np.asarray(ma["critic_loss"]), np.asarray(mb["critic_loss"]))


def test_plain_q_needs_adaent():
    env, params = make("probe_action")
    trainer = make_train(SACConfig(**{**BASE, "total_timesteps": 400}), env, params)
    state = jax.jit(trainer.init)(jax.random.key(0), _f32(HPARAMS), params)
    assert "plain_critic" not in state.params
    with pytest.raises(ValueError, match="plain_critic=True"):
        trainer.plain_q(state, _col([0.0]), _col([0.0]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(adaent_num_actions=1), "adaent_num_actions"),
        (dict(adaent_chunk=0), "adaent_chunk"),
        (dict(buffer_size=2, num_envs=4), "smaller than one step"),
        (dict(batch_size=0), "batch_size must be >= 1"),
        (dict(learning_starts=-1), "learning_starts must be >= 0"),
        (dict(total_timesteps=100, num_envs=4, log_interval=100), "smaller than one logging chunk"),
        (dict(activation="swish"), "activation"),
        (dict(hidden_sizes=()), "hidden_sizes"),
        (dict(log_std_min=2.0, log_std_max=-5.0), "log_std_min"),
        (dict(target_entropy=float("nan")), "target_entropy"),
    ],
)
def test_config_errors_are_clear(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SACConfig(**{**dict(total_timesteps=10_000, log_interval=10), **kwargs})


def test_hparam_errors_are_clear():
    with pytest.raises(ValueError, match="adaent_threshold out of range"):
        SACHParams(adaent_threshold=1.5).check()
    with pytest.raises(ValueError, match="adaent_threshold out of range"):
        stack_hparams([SACHParams(), SACHParams(adaent_threshold=-1.01)]).check()
    with pytest.raises(ValueError, match="alpha out of range"):
        SACHParams(alpha=-0.1).check()
    with pytest.raises(ValueError, match="auto_alpha needs alpha > 0"):
        SACHParams(alpha=0.0).check(SACConfig(auto_alpha=True))
    with pytest.raises(ValueError, match="tau out of range"):
        SACHParams(tau=0.0).check()
    with pytest.raises(ValueError, match="gamma out of range"):
        SACHParams(gamma=1.5).check()
    SACHParams(alpha=0.0, adaent_threshold=-1.0).check()
    SACHParams().check(SACConfig(auto_alpha=True))


@pytest.mark.parametrize("learning_starts, log_interval", [
    # a whole warm-up chunk, the chunk in which learning starts, learning chunks (slow: ~30 s; the
    # default suite keeps the SAC learning tests, which run a warm-up too)
    pytest.param(250, 50, marks=pytest.mark.slow),
    pytest.param(1000, 100, marks=pytest.mark.slow),
    pytest.param(400, 100, marks=pytest.mark.slow),  # one learning iteration in that chunk: decided per iteration
    pytest.param(0, 50, marks=pytest.mark.slow),
])
def test_the_warm_up_runs_without_gradient_steps_and_changes_nothing(learning_starts, log_interval):
    """The driver's plan (whole warm-up chunks with no gradient step computed, the chunk in which
    learning starts split in two scans, then learning chunks) gives the same agents and the same
    logged rows, to the bit, as deciding at every iteration (a `cond` that `vmap` turns into
    computing and discarding the updates). Two agents under jit(vmap), as `train_sweep` runs them."""
    env, params = make("probe_obs_action")
    config = SACConfig(**{**BASE, "learning_starts": learning_starts, "log_interval": log_interval,
                          "total_timesteps": 4 * 4 * log_interval})
    trainer = make_train(config, env, params)
    assert trainer.warmup_iterations() == max(0, -(-learning_starts // 4) - 1)
    keys = jax.random.split(jax.random.key(0), 2)
    hp = jax.tree.map(lambda v: jnp.full((2,), v, jnp.float32), HPARAMS)
    start = trainer.init_batch(keys, hp, params)
    run = jax.jit(jax.vmap(trainer.run_chunks, in_axes=(0, 0, None, None, None, None)), static_argnums=(3, 4, 5))
    reference, rows = run(start, hp, params, config.num_chunks, 0, False)
    plan = trainer.chunk_plan(config.num_chunks)
    assert sum(count for _, count in plan) == config.num_chunks
    state, parts = start, []
    for warmup, count in plan:
        state, part = run(state, hp, params, count, warmup, True)
        parts.append(part)
    planned = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *parts)
    for a, b in zip(jax.tree.leaves(reference.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for k in rows:
        np.testing.assert_array_equal(np.asarray(rows[k]), planned[k], err_msg=k)
    if trainer.warmup_iterations() >= log_interval:  # a whole warm-up chunk logs no update
        assert np.all(np.isnan(planned["critic_loss"][:, 0]))


def test_init_batch_is_the_stack_of_single_inits():
    """init_batch allocates the (empty) replay buffers once, stacked; every leaf equals the stack
    of the agents initialised one by one."""
    env, params = make("probe_action")
    config = SACConfig(**{**BASE, "total_timesteps": 400, "buffer_size": 64})
    trainer = make_train(config, env, params)
    keys = jax.random.split(jax.random.key(3), 2)
    hp = jax.tree.map(lambda v: jnp.full((2,), v, jnp.float32), HPARAMS)
    batch = trainer.init_batch(keys, hp, params)
    one = jax.jit(trainer.init)
    singles = [one(keys[i], jax.tree.map(lambda v: v[i], hp), params) for i in range(2)]
    expected = jax.tree.map(lambda *xs: jnp.stack(xs), *singles)
    assert jax.tree.structure(batch) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(batch), jax.tree.leaves(expected)):
        assert a.dtype == b.dtype and a.shape == b.shape
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_where_adaent_switches_the_actor_follows_the_plain_critic():
    """With alpha = 0 the soft and plain critics learn the same targets, so an AdaEnt step that switches
    everywhere must move the actor exactly as a plain SAC step whose critic *is* AdaEnt's plain critic
    (same batch, same keys), and, where it never switches, unlike it (its soft critic starts elsewhere).
    Catches choose_q returning the soft Q."""
    import dataclasses

    from entrolab.agents.sac import SACConfig, SACHParams, make_train

    env, params = make("probe_obs_action")
    cfg = SACConfig(num_envs=1, total_timesteps=64, learning_starts=16, log_interval=16, buffer_size=64,
                    batch_size=8, hidden_sizes=(8,), adaent=True, adaent_num_actions=4)
    ada = make_train(cfg, env, params)
    sac = make_train(dataclasses.replace(cfg, adaent=False), env, params)
    hp = SACHParams(alpha=0.0)
    state = ada.init(jax.random.key(0), hp, params)
    state, _ = jax.jit(lambda s: ada.run(s, hp, params, 16, "warmup"))(state)  # fill the buffer
    p, o = state.params, state.opt_state
    as_sac = ({"actor": p["actor"], "critic": p["plain_critic"], "target_critic": p["target_plain_critic"]},
              {"actor": o["actor"], "critic": o["plain_critic"], "alpha": o["alpha"]})
    key = jax.random.key(3)
    ref = sac._gradient_step(*as_sac, state.log_alpha, state.buffer, key, hp)[0]["actor"]
    always = ada._gradient_step(p, o, state.log_alpha, state.buffer, key, hp.replace(adaent_threshold=2.0))[0]["actor"]
    never = ada._gradient_step(p, o, state.log_alpha, state.buffer, key, hp.replace(adaent_threshold=-2.0))[0]["actor"]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), always, ref)
    gap = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(never), jax.tree.leaves(ref)))
    assert gap > 1e-5

"""Exact tabular (soft) value iteration and the entropic bifurcation: closed-form tests.

Everything runs in float64 (`jax.enable_x64` around each test). The shipped
solvers are checked against the closed forms of `entrolab.tabular.bifurcation`
and against an independent NumPy loop written here.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from entrolab import tabular as T


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


# ---------------------------------------------------------------- references


def numpy_value_iteration(p, r, gamma, mask, terminal, alpha, tol=1e-14, max_iterations=20_000):
    """Independent (soft) value iteration: explicit loops, naive log-sum-exp; alpha = 0 is the max."""
    num_states, num_actions = r.shape
    v = np.zeros(num_states)
    for _ in range(max_iterations):
        new = np.zeros(num_states)
        for s in range(num_states):
            if terminal[s]:
                continue
            qs = np.array([r[s, a] + gamma * p[s, a] @ v for a in range(num_actions) if mask[s, a]])
            new[s] = qs.max() if alpha == 0 else alpha * math.log(np.sum(np.exp(qs / alpha)))
        done = np.max(np.abs(new - v)) < tol
        v = new
        if done:
            break
    q = np.full((num_states, num_actions), -np.inf)
    pi = np.zeros((num_states, num_actions))
    for s in range(num_states):
        for a in range(num_actions):
            if mask[s, a]:
                q[s, a] = r[s, a] + gamma * p[s, a] @ v
        if alpha > 0:  # pi = exp((Q - V) / alpha), V recomputed here (terminal states have V pinned to 0)
            valid = mask[s]
            v_s = alpha * math.log(np.sum(np.exp(q[s, valid] / alpha)))
            pi[s, valid] = np.exp((q[s, valid] - v_s) / alpha)
    return v, q, pi


def random_mdp_arrays(seed, num_states=7, num_actions=4, num_terminal=2):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
    r = rng.normal(size=(num_states, num_actions))
    mask = rng.random((num_states, num_actions)) < 0.7
    mask[:, 0] = True
    terminal = np.zeros(num_states, bool)
    terminal[num_states - num_terminal:] = True
    for s in np.flatnonzero(terminal):
        p[s] = 0.0
        p[s, :, s] = 1.0
        r[s] = 0.0
    r[~mask] = 0.0
    return p, r, mask, terminal


SLOTS = 8192  # one action-slot count for every n below: the solvers compile once


def mediocre_probability_by_vi(num_branches, alpha, **family):
    result = T.soft_value_iteration(T.bifurcation_mdp(num_branches, num_action_slots=SLOTS, **family), alpha)
    return float(result.policy[T.START, T.MEDIOCRE_CHOICE])


# ---------------------------------------------------------------- the MDP


def test_create_keeps_arrays_and_sizes():
    p, r, mask, terminal = random_mdp_arrays(0)
    mdp = T.FiniteMDP.create(p, r, 0.9, action_mask=mask, terminal=terminal)
    assert (mdp.num_states, mdp.num_actions) == (7, 4)
    assert mdp.transitions.dtype == jnp.float64 and mdp.action_mask.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(mdp.transitions), p)
    np.testing.assert_array_equal(np.asarray(mdp.terminal), terminal)


def _bad(**changes):
    p, r, mask, terminal = random_mdp_arrays(0)
    args = dict(transitions=p, rewards=r, gamma=0.9, action_mask=mask, terminal=terminal)
    args.update(changes)
    return args


def _unnormalised():
    p = random_mdp_arrays(0)[0].copy()
    p[0, 0] *= 0.5
    return p


def _negative():
    p = random_mdp_arrays(0)[0].copy()
    p[0, 0, :2] = [-0.1, p[0, 0, 0] + p[0, 0, 1] + 0.1]
    return p


def _leaky_terminal():
    p = random_mdp_arrays(0)[0].copy()
    p[6, 0] = 1.0 / 7
    return p


def _rewarding_terminal():
    r = random_mdp_arrays(0)[1].copy()
    r[6, 0] = 1.0
    return r


def _no_action():
    mask = random_mdp_arrays(0)[2].copy()
    mask[1] = False
    return mask


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(transitions=np.ones((3, 2))), "shape \\(S, A, S\\)"),
        (dict(rewards=np.zeros((7, 3))), "rewards must have shape"),
        (dict(gamma=1.5), "gamma must be in"),
        (dict(gamma=-0.1), "gamma must be in"),
        (dict(action_mask=np.ones((7, 3), bool)), "action_mask must have shape"),
        (dict(action_mask=np.ones((7, 4))), "action_mask must be boolean"),
        (dict(terminal=np.zeros(6, bool)), "terminal must have shape"),
        (dict(terminal=np.zeros(7)), "terminal must be boolean"),
        (dict(transitions=_unnormalised()), "sum to 1"),
        (dict(transitions=_negative()), "nonnegative"),
        (dict(rewards=np.full((7, 4), np.nan)), "rewards must be finite"),
        (dict(action_mask=_no_action()), "at least one valid action"),
        (dict(transitions=_leaky_terminal()), "terminal state 6 must be absorbing"),
        (dict(rewards=_rewarding_terminal()), "terminal state 6 must have zero reward"),
    ],
)
def test_create_rejects_bad_inputs(changes, match):
    with pytest.raises(ValueError, match=match):
        T.FiniteMDP.create(**_bad(**changes))


def test_bifurcation_mdp_structure():
    mdp = T.bifurcation_mdp(25, 2.0, -0.5, fail_reward=-3.0, num_precise_actions=4, gamma=0.8)
    assert (mdp.num_states, mdp.num_actions) == (6, 25)
    np.testing.assert_array_equal(np.asarray(mdp.action_mask).sum(axis=1), [2, 4, 25, 1, 1, 1])
    np.testing.assert_array_equal(np.asarray(mdp.terminal), [False, False, False, True, True, True])
    np.testing.assert_array_equal(np.asarray(mdp.rewards[T.PRECISE, :4]), [2.0, -3.0, -3.0, -3.0])
    np.testing.assert_array_equal(np.asarray(mdp.rewards[T.MEDIOCRE, :25]), np.full(25, -0.5))
    assert float(mdp.transitions[T.START, T.MEDIOCRE_CHOICE, T.MEDIOCRE]) == 1.0
    assert float(mdp.gamma) == 0.8


# ---------------------------------------------------------------- closed forms vs soft VI


@pytest.mark.parametrize(
    "num_branches, alpha, gamma",
    [(1, 1.0, 0.9), (7, 0.5, 0.99), (50, 2.0, 0.5), (300, 0.3, 1.0), (3, 10.0, 0.9)],
)
def test_soft_value_iteration_matches_closed_form(num_branches, alpha, gamma):
    family = dict(
        terminal_reward_good=1.0, mediocre_reward=-1.0, fail_reward=-20.0, num_precise_actions=10, gamma=gamma
    )
    result = T.soft_value_iteration(T.bifurcation_mdp(num_branches, num_action_slots=SLOTS, **family), alpha)
    assert bool(result.converged) and float(result.residual) <= 1e-10
    np.testing.assert_allclose(
        np.asarray(result.values), T.bifurcation_soft_values(num_branches, alpha, **family), rtol=1e-12, atol=1e-12
    )
    # the mediocre state's soft value is r + alpha log n; its policy is uniform over the n branches
    assert float(result.values[T.MEDIOCRE]) == pytest.approx(-1.0 + alpha * math.log(num_branches), abs=1e-12)
    np.testing.assert_allclose(np.asarray(result.policy[T.MEDIOCRE, :num_branches]), 1.0 / num_branches, rtol=1e-12)
    p = T.mediocre_choice_probability(num_branches, alpha, **family)
    assert float(result.policy[T.START, T.MEDIOCRE_CHOICE]) == pytest.approx(float(p), abs=1e-12)
    # and the closed form n^gamma / (n^gamma + exp(gamma (V_P - r_m) / alpha))
    v_precise = alpha * math.log(math.exp(1.0 / alpha) + 9 * math.exp(-20.0 / alpha))
    ratio = num_branches**gamma / (num_branches**gamma + math.exp(gamma * (v_precise + 1.0) / alpha))
    assert float(p) == pytest.approx(ratio, rel=1e-12)


def test_soft_value_of_branches_is_r_plus_alpha_log_n():
    np.testing.assert_allclose(T.soft_value_of_branches(-1.0, [1, 10, 1000], 0.5), -1.0 + 0.5 * np.log([1, 10, 1000]))


@pytest.mark.parametrize("num_branches", [1, 2, 10, 100, 1000])
def test_hard_optimum_ignores_branches(num_branches):
    mdp = T.bifurcation_mdp(num_branches, gamma=0.9, num_action_slots=SLOTS)
    result = T.value_iteration(mdp)
    np.testing.assert_allclose(np.asarray(result.values), T.bifurcation_hard_values(gamma=0.9), atol=1e-15)
    assert int(jnp.argmax(result.policy[T.START])) == T.PRECISE_CHOICE == T.hard_optimal_choice()
    assert int(jnp.argmax(result.policy[T.PRECISE])) == 0  # the one correct action


def test_hard_optimum_follows_the_rewards():
    result = T.value_iteration(T.bifurcation_mdp(5, 1.0, 2.0, gamma=0.9, num_action_slots=SLOTS))
    assert int(jnp.argmax(result.policy[T.START])) == T.MEDIOCRE_CHOICE == T.hard_optimal_choice(1.0, 2.0)


def test_mediocre_probability_increases_with_branches():
    n = np.arange(1, 20_001)
    for alpha in (0.2, 0.5, 1.0, 3.0):
        p = T.mediocre_choice_probability(n, alpha, gamma=0.99)
        assert np.all(np.diff(p) > 0)
    # soft VI over a batch of MDPs with n = 1, 3, 30, 300 (padded to one shape, one vmap)
    branches = (1, 3, 30, 300)
    mdps = [T.bifurcation_mdp(k, gamma=0.9, num_action_slots=SLOTS) for k in branches]
    batch = jax.tree.map(lambda *leaves: jnp.stack(leaves), *mdps)
    by_vi = jax.vmap(lambda mdp: T.soft_value_iteration(mdp, 1.0).policy[T.START, T.MEDIOCRE_CHOICE])(batch)
    assert np.all(np.diff(np.asarray(by_vi)) > 0)
    np.testing.assert_allclose(np.asarray(by_vi), T.mediocre_choice_probability(branches, 1.0, gamma=0.9), atol=1e-12)


@pytest.mark.parametrize("p", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("alpha, gamma", [(1.0, 0.9), (0.5, 0.99)])
def test_branches_for_probability_is_the_least_n(p, alpha, gamma):
    family = dict(gamma=gamma)
    n = T.branches_for_probability(p, alpha, **family)
    assert n > 1
    assert mediocre_probability_by_vi(n, alpha, **family) >= p
    assert mediocre_probability_by_vi(n - 1, alpha, **family) < p
    assert math.log(n - 1) < T.log_branches_threshold(p, alpha, **family) <= math.log(n)
    # the optimum still takes the precise path, and the soft policy pays for it in return
    assert n < SLOTS
    mdp = T.bifurcation_mdp(n, num_action_slots=SLOTS, **family)
    assert int(jnp.argmax(T.value_iteration(mdp).policy[T.START])) == T.PRECISE_CHOICE
    soft = T.soft_value_iteration(mdp, alpha)
    hard_return = float(T.evaluate_policy(mdp, soft.policy, 0.0).values[T.START])
    assert hard_return == pytest.approx(float(T.soft_policy_return(n, alpha, **family)), abs=1e-12)
    assert hard_return < float(T.value_iteration(mdp).values[T.START]) - 0.5


def test_branches_for_probability_edge_cases():
    # a p already reached with one branch
    assert T.branches_for_probability(0.05, 1.0, gamma=0.9) == 1
    # the toy's alpha = 0.2 needs e^10 branches for p = 1/2 (V_P - r_m = 2)
    assert T.log_branches_threshold(0.5, 0.2) == pytest.approx(10.0, abs=1e-12)
    assert T.branches_for_probability(0.5, 0.2) == math.ceil(math.exp(10.0))
    with pytest.raises(ValueError, match="branches"):
        T.branches_for_probability(0.5, 0.01)  # e^200
    with pytest.raises(ValueError, match="gamma = 0"):
        T.branches_for_probability(0.6, 1.0, gamma=0.0)
    assert T.branches_for_probability(0.4, 1.0, gamma=0.0) == 1


@pytest.mark.parametrize("p", [0.3, 0.9])
def test_mediocre_reward_for_probability(p):
    r_m = T.mediocre_reward_for_probability(p, 0.7, 4, gamma=0.95)
    assert float(T.mediocre_choice_probability(4, 0.7, 1.0, r_m, gamma=0.95)) == pytest.approx(p, abs=1e-12)
    assert mediocre_probability_by_vi(4, 0.7, mediocre_reward=r_m, gamma=0.95) == pytest.approx(p, abs=1e-12)


# ---------------------------------------------------------------- the alpha -> 0 limit


def test_small_alpha_recovers_hard_value_iteration_on_the_family():
    mdp = T.bifurcation_mdp(1000, gamma=0.9, num_action_slots=SLOTS)
    hard = T.value_iteration(mdp)
    for alpha in (1e-2, 1e-4, 1e-8):
        soft = T.soft_value_iteration(mdp, alpha)
        assert np.all(np.isfinite(np.asarray(soft.values)))
        # soft - hard in [0, alpha log A / (1 - gamma)] (entropy bonus at most log A per step)
        gap = np.asarray(soft.values - hard.values)
        assert np.all(gap >= -1e-15) and np.all(gap <= alpha * math.log(1000) / (1 - 0.9) + 1e-15)
        assert float(soft.policy[T.START, T.PRECISE_CHOICE]) > 1 - 1e-6
    assert float(T.mediocre_choice_probability(1000, 1e-3, gamma=0.9)) == pytest.approx(0.0, abs=1e-300)


def test_small_alpha_recovers_hard_value_iteration_on_a_random_mdp():
    p, r, mask, terminal = random_mdp_arrays(3)
    mdp = T.FiniteMDP.create(p, r, 0.9, action_mask=mask, terminal=terminal)
    hard = T.value_iteration(mdp)
    soft = T.soft_value_iteration(mdp, 1e-7)
    np.testing.assert_allclose(np.asarray(soft.values), np.asarray(hard.values), atol=1e-7 * math.log(4) / 0.1)
    live = ~terminal  # at terminal states every action ties: soft is uniform, greedy one-hot
    np.testing.assert_allclose(np.asarray(soft.policy)[live], np.asarray(hard.policy)[live], atol=1e-6)


# ---------------------------------------------------------------- random MDPs vs NumPy


@pytest.mark.parametrize("alpha", [0.0, 0.1, 1.0])
def test_value_iteration_matches_numpy_loop(alpha):
    p, r, mask, terminal = random_mdp_arrays(1)
    mdp = T.FiniteMDP.create(p, r, 0.9, action_mask=mask, terminal=terminal)
    result = T.soft_value_iteration(mdp, alpha)
    v, q, pi = numpy_value_iteration(p, r, 0.9, mask, terminal, alpha)
    np.testing.assert_allclose(np.asarray(result.values), v, atol=1e-10)
    np.testing.assert_allclose(np.asarray(result.q_values), q, atol=1e-10)  # -inf on masked actions in both
    if alpha > 0:
        np.testing.assert_allclose(np.asarray(result.policy), pi, atol=1e-10)
        np.testing.assert_allclose(np.asarray(result.policy).sum(axis=1), 1.0, atol=1e-12)
    # soft Bellman equation residual at the returned values
    _, backed_up = T.soft_bellman_backup(mdp, result.values, alpha)
    assert float(jnp.max(jnp.abs(backed_up - result.values))) <= 1e-10
    assert float(result.residual) <= 1e-10
    assert np.all(np.asarray(result.values)[terminal] == 0.0)


@pytest.mark.parametrize("alpha", [0.3, 2.0])
def test_policy_evaluation_of_the_soft_optimum_is_the_soft_value(alpha):
    p, r, mask, terminal = random_mdp_arrays(2)
    mdp = T.FiniteMDP.create(p, r, 0.95, action_mask=mask, terminal=terminal)
    soft = T.soft_value_iteration(mdp, alpha)
    evaluation = T.evaluate_policy(mdp, soft.policy, alpha)
    np.testing.assert_allclose(np.asarray(evaluation.values), np.asarray(soft.values), atol=1e-10)
    np.testing.assert_allclose(np.asarray(evaluation.q_values), np.asarray(soft.q_values), atol=1e-10)
    # on the family, with gamma = 1 (episodic)
    mdp = T.bifurcation_mdp(20, gamma=1.0, num_action_slots=SLOTS)
    soft = T.soft_value_iteration(mdp, alpha)
    np.testing.assert_allclose(
        np.asarray(T.evaluate_policy(mdp, soft.policy, alpha).values), np.asarray(soft.values), atol=1e-12
    )


def test_policy_evaluation_matches_numpy():
    p, r, mask, terminal = random_mdp_arrays(4)
    mdp = T.FiniteMDP.create(p, r, 0.9, action_mask=mask, terminal=terminal)
    rng = np.random.default_rng(0)
    pi = rng.random(mask.shape) * mask
    pi /= pi.sum(axis=1, keepdims=True)
    entropy = -np.sum(np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, 1.0)), 0.0), axis=1)
    for alpha in (0.0, 0.5):
        v = np.zeros(7)
        for _ in range(1000):  # iterative evaluation, independent of the linear solve
            v = np.where(terminal, 0.0, np.sum(pi * (r + 0.9 * p @ v), axis=1) + alpha * entropy)
        np.testing.assert_allclose(np.asarray(T.evaluate_policy(mdp, pi, alpha).values), v, atol=1e-10)


# ---------------------------------------------------------------- jit, vmap, float32


def test_jit_and_vmap_over_alpha():
    mdp = T.bifurcation_mdp(30, gamma=0.9, num_action_slots=SLOTS)
    alphas = jnp.array([0.0, 0.25, 1.0, 4.0])
    batched = jax.jit(jax.vmap(lambda a: T.soft_value_iteration(mdp, a).policy[T.START, T.MEDIOCRE_CHOICE]))(alphas)
    expected = [float(T.soft_value_iteration(mdp, float(a)).policy[T.START, T.MEDIOCRE_CHOICE]) for a in alphas]
    np.testing.assert_allclose(np.asarray(batched), expected, atol=1e-12)
    assert float(batched[0]) == 0.0
    closed_form = T.mediocre_choice_probability(30, np.asarray(alphas[1:]), gamma=0.9)
    np.testing.assert_allclose(np.asarray(batched[1:]), closed_form, atol=1e-12)


def test_float32_default_converges():
    with jax.enable_x64(False):
        mdp = T.bifurcation_mdp(100, gamma=0.99)
        result = T.soft_value_iteration(mdp, 0.5)
        assert result.values.dtype == jnp.float32 and bool(result.converged)
        np.testing.assert_allclose(np.asarray(result.values), T.bifurcation_soft_values(100, 0.5), rtol=1e-5)


# ---------------------------------------------------------------- bad inputs, figure


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: T.bifurcation_mdp(0), "num_branches"),
        (lambda: T.bifurcation_mdp(2.5), "num_branches"),
        (lambda: T.bifurcation_mdp(3, 1.0, -1.0, fail_reward=2.0), "fail_reward"),
        (lambda: T.bifurcation_mdp(3, num_precise_actions=0), "num_precise_actions"),
        (lambda: T.bifurcation_mdp(3, gamma=1.2), "gamma"),
        (lambda: T.bifurcation_mdp(3, np.inf), "terminal_reward_good"),
        (lambda: T.mediocre_choice_probability(3, 0.0), "alpha"),
        (lambda: T.mediocre_choice_probability(0.5, 1.0), "num_branches"),
        (lambda: T.branches_for_probability(1.0, 1.0), "p must be"),
        (lambda: T.branches_for_probability(0.0, 1.0), "p must be"),
        (lambda: T.branches_for_probability(0.5, -1.0), "alpha"),
        (lambda: T.mediocre_reward_for_probability(0.5, 1.0, 0), "num_branches"),
        (lambda: T.soft_value_iteration(T.bifurcation_mdp(3), -0.1), "alpha"),
        (lambda: T.soft_value_iteration(T.bifurcation_mdp(3), float("nan")), "alpha"),
        (lambda: T.evaluate_policy(T.bifurcation_mdp(3), np.ones((6, 10)) / 10), "masked"),
        (lambda: T.bifurcation_mdp(30, num_action_slots=20), "num_action_slots"),
        (lambda: T.evaluate_policy(T.bifurcation_mdp(3), np.ones((6, 2))), "shape"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bifurcation_figure_writes_png(tmp_path):
    path = T.bifurcation_figure(tmp_path / "bifurcation.png", alphas=(0.5, 1.0), max_branches=1000)
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

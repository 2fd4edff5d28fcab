"""The entropic bifurcation, exactly: a tabular MDP family where MaxEnt prefers a mediocre state.

Source. Zhang, Chang & Gao, "When Maximum Entropy Misleads Policy Optimization",
ICML 2025 (arXiv 2506.05615). Their toy example (public code, ruipengZ/maxent-mislead,
environment/custom_gym/envs/ToyExample/toyexample.py) has six states and one
action a in [-1, 1]: from s0, a > 0 goes to s2 and a <= 0 to s1; from s1,
|a| < 0.1 reaches a terminal with reward +1 and any other action one with -20;
from s2 every action reaches a terminal with -1; PPO learns the s1 path and SAC
the s2 path. Their theorem ("Bifurcation Extension Misleads MaxEnt RL")
constructs an extension M^ of an MDP M in which the optimal policy of M is
unchanged while the MaxEnt-optimal policy at a state s follows an arbitrary
distribution, by choosing the numbers of actions |A_1^{s_mu}|, |A_2^{s_mu}|
behind the branches and a terminal reward r(s_mu^T). The exact definition of
that extension is *unconfirmed* here (only the poster and summaries were read);
the family below is our own, a discrete version of their toy example in which
the bifurcation is the splitting of the mediocre state's actions.

Construction (states; rewards are paid on the step into a terminal state):

    0 START        action 0 -> PRECISE, action 1 -> MEDIOCRE (reward 0)
    1 PRECISE      num_precise_actions = m actions: action 0 -> GOOD_END with
                   terminal_reward_good = r_g; the other m - 1 -> FAIL_END with
                   fail_reward = r_f < r_g  (the toy: 1 action in 10, |a| < 0.1 of [-1, 1])
    2 MEDIOCRE     num_branches = n actions, all -> MEDIOCRE_END with mediocre_reward = r_m
    3 GOOD_END, 4 FAIL_END, 5 MEDIOCRE_END   terminal (absorbing, value 0)

Defaults follow the toy: r_g = 1, r_f = -20, r_m = -1, m = 10, gamma = 0.99.

Hard values: V(PRECISE) = r_g, V(MEDIOCRE) = r_m, Q(START, a) = gamma V(next). The
optimal policy takes the precise path iff r_g > r_m, whatever n: adding
branches changes no hard value (they are all equally good).

Soft values at temperature alpha > 0 (a state whose actions each end the
episode with reward r_i has soft value alpha log sum_i exp(r_i / alpha); n
equal branches give r + alpha log n):

    V(PRECISE)  = alpha log(exp(r_g/alpha) + (m - 1) exp(r_f/alpha))      =: V_P
    V(MEDIOCRE) = r_m + alpha log n                                        =: V_M
    V(START)    = alpha log(exp(gamma V_P/alpha) + exp(gamma V_M/alpha))
    pi(MEDIOCRE | START) = sigmoid(gamma (V_M - V_P) / alpha)
                         = n^gamma / (n^gamma + exp(gamma (V_P - r_m) / alpha)).

So the soft-optimal probability of the mediocre choice increases strictly with
n (for gamma > 0) and tends to 1: it is >= p exactly when

    log n >= (V_P - r_m) / alpha + logit(p) / gamma,

which `branches_for_probability` turns into the least integer n. Equivalently,
for a fixed n, r_m >= V_P + alpha logit(p) / gamma - alpha log n
(`mediocre_reward_for_probability`); that threshold can exceed r_g, and then the
hard-optimal policy changes too, so branching is the lever that misleads
without changing the optimum. With two choices at START, "an arbitrary
distribution" of the theorem is "any probability p of the mediocre choice":
branching reaches every p in [pi(MEDIOCRE | START; n = 1), 1); a smaller p needs
a lower r_m (or more correct precise actions), which also leaves the optimum alone.

Scale. At the toy's alpha = 0.2, V_P - r_m ~ 2 and the exact soft optimum
needs n >= e^10 ~ 22,000 branches to pick the mediocre state half of the time
(with one branch it picks it with probability ~5e-5): at small alpha the
misleading effect of the exact optimum needs an exponentially large action
"volume" ratio, which continuous actions (measure, not count) supply freely.

Closed forms here use NumPy float64 and broadcast over `num_branches` and
`alpha`; the tests check them against soft value iteration on
`bifurcation_mdp`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.special import expit, logit

from entrolab.tabular.mdp import FiniteMDP

START, PRECISE, MEDIOCRE, GOOD_END, FAIL_END, MEDIOCRE_END = range(6)
STATE_NAMES = ("start", "precise", "mediocre", "good_end", "fail_end", "mediocre_end")
PRECISE_CHOICE, MEDIOCRE_CHOICE = 0, 1  # the two actions at START

_MAX_LOG_BRANCHES = 36.0  # e^36 ~ 4e15 < 2^53: integers stay exact in float64


def _check_family(terminal_reward_good, mediocre_reward, fail_reward, num_precise_actions, gamma) -> None:
    for name, value in (
        ("terminal_reward_good", terminal_reward_good),
        ("mediocre_reward", mediocre_reward),
        ("fail_reward", fail_reward),
    ):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if not fail_reward < terminal_reward_good:
        raise ValueError(
            f"fail_reward must be below terminal_reward_good (the precise state has one correct action),"
            f" got {fail_reward} >= {terminal_reward_good}"
        )
    if int(num_precise_actions) != num_precise_actions or num_precise_actions < 1:
        raise ValueError(f"num_precise_actions must be an integer >= 1, got {num_precise_actions}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")


def _check_alpha(alpha) -> np.ndarray:
    alpha = np.asarray(alpha, np.float64)
    if np.any(~np.isfinite(alpha)) or np.any(alpha <= 0):
        raise ValueError(f"alpha must be finite and > 0 for the soft closed forms, got {alpha}")
    return alpha


def _check_branches(num_branches) -> np.ndarray:
    n = np.asarray(num_branches, np.float64)
    if np.any(~np.isfinite(n)) or np.any(n < 1):
        raise ValueError(f"num_branches must be >= 1, got {num_branches}")
    return n


def _check_probability(p) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    return float(p)


def bifurcation_mdp(
    num_branches: int,
    terminal_reward_good: float = 1.0,
    mediocre_reward: float = -1.0,
    *,
    fail_reward: float = -20.0,
    num_precise_actions: int = 10,
    gamma: float = 0.99,
    num_action_slots: int | None = None,
) -> FiniteMDP:
    """The six-state bifurcation MDP (module docstring) with `num_branches` mediocre branches.

    START has 2 valid actions, PRECISE m, MEDIOCRE n, each terminal 1 (a
    self-loop). Action slots A = max(2, m, n) by default; a larger
    `num_action_slots` pads with masked slots, so that MDPs with different n
    share one shape (one compilation of the solvers, or a `vmap` over n).
    """
    if int(num_branches) != num_branches or num_branches < 1:
        raise ValueError(f"num_branches must be an integer >= 1, got {num_branches}")
    _check_family(terminal_reward_good, mediocre_reward, fail_reward, num_precise_actions, gamma)
    n, m = int(num_branches), int(num_precise_actions)
    num_actions = max(2, m, n)
    if num_action_slots is not None:
        if int(num_action_slots) != num_action_slots or num_action_slots < num_actions:
            raise ValueError(
                f"num_action_slots must be an integer >= max(2, m, n) = {num_actions}, got {num_action_slots}"
            )
        num_actions = int(num_action_slots)
    p = np.zeros((6, num_actions, 6))
    r = np.zeros((6, num_actions))
    mask = np.zeros((6, num_actions), bool)
    p[START, PRECISE_CHOICE, PRECISE] = 1.0
    p[START, MEDIOCRE_CHOICE, MEDIOCRE] = 1.0
    mask[START, :2] = True
    p[PRECISE, 0, GOOD_END] = 1.0
    r[PRECISE, 0] = terminal_reward_good
    p[PRECISE, 1:m, FAIL_END] = 1.0
    r[PRECISE, 1:m] = fail_reward
    mask[PRECISE, :m] = True
    p[MEDIOCRE, :n, MEDIOCRE_END] = 1.0
    r[MEDIOCRE, :n] = mediocre_reward
    mask[MEDIOCRE, :n] = True
    terminal = np.zeros(6, bool)
    for s in (GOOD_END, FAIL_END, MEDIOCRE_END):
        p[s, 0, s] = 1.0
        mask[s, 0] = True
        terminal[s] = True
    return FiniteMDP.create(p, r, gamma, action_mask=mask, terminal=terminal)


def soft_value_of_branches(reward, num_branches, alpha) -> np.ndarray:
    """Soft value r + alpha log n of a state whose n actions all end with reward r."""
    return np.asarray(reward, np.float64) + _check_alpha(alpha) * np.log(_check_branches(num_branches))


def precise_soft_value(
    alpha,
    terminal_reward_good: float = 1.0,
    *,
    fail_reward: float = -20.0,
    num_precise_actions: int = 10,
) -> np.ndarray:
    """V_P = alpha log(e^{r_g/alpha} + (m-1) e^{r_f/alpha}), as r_g + alpha log1p(...) (exact as alpha -> 0)."""
    alpha = _check_alpha(alpha)
    _check_family(terminal_reward_good, 0.0, fail_reward, num_precise_actions, 0.0)
    m = float(num_precise_actions)
    return terminal_reward_good + alpha * np.log1p((m - 1.0) * np.exp((fail_reward - terminal_reward_good) / alpha))


def mediocre_choice_probability(
    num_branches,
    alpha,
    terminal_reward_good: float = 1.0,
    mediocre_reward: float = -1.0,
    *,
    fail_reward: float = -20.0,
    num_precise_actions: int = 10,
    gamma: float = 0.99,
) -> np.ndarray:
    """Soft-optimal pi(MEDIOCRE | START) = sigmoid(gamma (V_M - V_P) / alpha); broadcasts over n, alpha.

    `num_branches` may be real (>= 1): the closed form interpolates in log n.
    """
    _check_family(terminal_reward_good, mediocre_reward, fail_reward, num_precise_actions, gamma)
    alpha = _check_alpha(alpha)
    v_precise = precise_soft_value(
        alpha, terminal_reward_good, fail_reward=fail_reward, num_precise_actions=num_precise_actions
    )
    v_mediocre = soft_value_of_branches(mediocre_reward, num_branches, alpha)
    return expit(gamma * (v_mediocre - v_precise) / alpha)


def bifurcation_soft_values(
    num_branches,
    alpha,
    terminal_reward_good: float = 1.0,
    mediocre_reward: float = -1.0,
    *,
    fail_reward: float = -20.0,
    num_precise_actions: int = 10,
    gamma: float = 0.99,
) -> np.ndarray:
    """Closed-form soft values of the six states, shape (6,) (scalar n and alpha)."""
    _check_family(terminal_reward_good, mediocre_reward, fail_reward, num_precise_actions, gamma)
    alpha = float(_check_alpha(alpha))
    v_precise = float(
        precise_soft_value(
            alpha, terminal_reward_good, fail_reward=fail_reward, num_precise_actions=num_precise_actions
        )
    )
    v_mediocre = float(soft_value_of_branches(mediocre_reward, num_branches, alpha))
    v_start = alpha * np.logaddexp(gamma * v_precise / alpha, gamma * v_mediocre / alpha)
    return np.array([v_start, v_precise, v_mediocre, 0.0, 0.0, 0.0])


def bifurcation_hard_values(
    terminal_reward_good: float = 1.0,
    mediocre_reward: float = -1.0,
    *,
    fail_reward: float = -20.0,
    num_precise_actions: int = 10,
    gamma: float = 0.99,
) -> np.ndarray:
    """Optimal (hard) values of the six states, shape (6,); independent of num_branches."""
    _check_family(terminal_reward_good, mediocre_reward, fail_reward, num_precise_actions, gamma)
    return np.array(
        [gamma * max(terminal_reward_good, mediocre_reward), terminal_reward_good, mediocre_reward, 0.0, 0.0, 0.0]
    )


def hard_optimal_choice(terminal_reward_good: float = 1.0, mediocre_reward: float = -1.0) -> int:
    """The optimal action at START: PRECISE_CHOICE iff r_g >= r_m (ties to the lower index), for every n."""
    return PRECISE_CHOICE if terminal_reward_good >= mediocre_reward else MEDIOCRE_CHOICE


def soft_policy_return(
    num_branches,
    alpha,
    terminal_reward_good: float = 1.0,
    mediocre_reward: float = -1.0,
    *,
    fail_reward: float = -20.0,
    num_precise_actions: int = 10,
    gamma: float = 0.99,
) -> np.ndarray:
    """Expected discounted (hard) return from START of the soft-optimal policy.

    gamma [(1 - p) (q r_g + (1 - q) r_f) + p r_m], p = pi(MEDIOCRE | START),
    q = pi(correct | PRECISE) = e^{r_g/alpha} / (e^{r_g/alpha} + (m-1) e^{r_f/alpha}).
    """
    p = mediocre_choice_probability(
        num_branches, alpha, terminal_reward_good, mediocre_reward,
        fail_reward=fail_reward, num_precise_actions=num_precise_actions, gamma=gamma,
    )
    alpha = _check_alpha(alpha)
    q = 1.0 / (1.0 + (num_precise_actions - 1.0) * np.exp((fail_reward - terminal_reward_good) / alpha))
    return gamma * ((1.0 - p) * (q * terminal_reward_good + (1.0 - q) * fail_reward) + p * mediocre_reward)


def log_branches_threshold(
    p: float,
    alpha: float,
    terminal_reward_good: float = 1.0,
    mediocre_reward: float = -1.0,
    *,
    fail_reward: float = -20.0,
    num_precise_actions: int = 10,
    gamma: float = 0.99,
) -> float:
    """L with pi(MEDIOCRE | START) >= p  <=>  log n >= L:  L = (V_P - r_m)/alpha + logit(p)/gamma.

    Raises:
        ValueError: for gamma = 0 and p > 1/2 (the choice is then 1/2 for every n).
    """
    p = _check_probability(p)
    _check_family(terminal_reward_good, mediocre_reward, fail_reward, num_precise_actions, gamma)
    alpha = float(_check_alpha(alpha))
    if gamma == 0.0:
        if p > 0.5:
            raise ValueError(
                f"with gamma = 0 the mediocre choice has probability 1/2 for every n; p = {p} is unreachable"
            )
        return -math.inf
    v_precise = float(
        precise_soft_value(
            alpha, terminal_reward_good, fail_reward=fail_reward, num_precise_actions=num_precise_actions
        )
    )
    return (v_precise - mediocre_reward) / alpha + float(logit(p)) / gamma


def branches_for_probability(
    p: float,
    alpha: float,
    terminal_reward_good: float = 1.0,
    mediocre_reward: float = -1.0,
    *,
    fail_reward: float = -20.0,
    num_precise_actions: int = 10,
    gamma: float = 0.99,
) -> int:
    """Least n >= 1 such that the soft-optimal policy picks MEDIOCRE at START with probability >= p.

    Returns 1 when one branch already suffices. The optimal (hard) policy is the
    same for every n (`hard_optimal_choice`).

    Raises:
        ValueError: for p outside (0, 1), bad family parameters, an unreachable p
            (gamma = 0), or an n beyond e^36 (see `log_branches_threshold`).
    """
    family = dict(
        terminal_reward_good=terminal_reward_good, mediocre_reward=mediocre_reward,
        fail_reward=fail_reward, num_precise_actions=num_precise_actions, gamma=gamma,
    )
    threshold = log_branches_threshold(p, alpha, **family)
    if threshold > _MAX_LOG_BRANCHES:
        raise ValueError(
            f"p = {p} at alpha = {alpha} needs about e^{threshold:.1f} branches (more than e^{_MAX_LOG_BRANCHES:.0f});"
            " use log_branches_threshold for the real threshold"
        )
    n = max(1, math.ceil(math.exp(threshold)))

    def reaches(k: int) -> bool:
        return bool(mediocre_choice_probability(k, alpha, **family) >= p)

    # the threshold is exact; these steps only absorb rounding at an integer boundary
    while not reaches(n):
        n += 1
    while n > 1 and reaches(n - 1):
        n -= 1
    return n


def mediocre_reward_for_probability(
    p: float,
    alpha: float,
    num_branches: int,
    terminal_reward_good: float = 1.0,
    *,
    fail_reward: float = -20.0,
    num_precise_actions: int = 10,
    gamma: float = 0.99,
) -> float:
    """The mediocre reward r_m at which pi(MEDIOCRE | START) = p exactly (every larger r_m gives more).

    r_m = V_P + alpha logit(p) / gamma - alpha log n. Unlike adding branches,
    this can change the optimal policy: it does when the result exceeds
    terminal_reward_good.
    """
    p = _check_probability(p)
    _check_family(terminal_reward_good, 0.0, fail_reward, num_precise_actions, gamma)
    if gamma == 0.0:
        raise ValueError("with gamma = 0 the mediocre choice has probability 1/2 for every reward")
    alpha = float(_check_alpha(alpha))
    v_precise = float(
        precise_soft_value(
            alpha, terminal_reward_good, fail_reward=fail_reward, num_precise_actions=num_precise_actions
        )
    )
    return v_precise + alpha * float(logit(p)) / gamma - alpha * math.log(float(_check_branches(num_branches)))


def bifurcation_figure(
    path,
    alphas=(0.25, 0.5, 1.0, 2.0),
    max_branches: int = 100_000,
    terminal_reward_good: float = 1.0,
    mediocre_reward: float = -1.0,
    *,
    fail_reward: float = -20.0,
    num_precise_actions: int = 10,
    gamma: float = 0.99,
) -> Path:
    """PNG of the soft-optimal pi(MEDIOCRE | START) against n for several alphas, the optimum marked.

    The hard-optimal probability (0 or 1, the same for every n) is a black line;
    a dot marks each alpha's `branches_for_probability(0.5)`. matplotlib is
    imported here only (Agg canvas, no pyplot state).
    """
    from matplotlib.figure import Figure

    family = dict(
        terminal_reward_good=terminal_reward_good, mediocre_reward=mediocre_reward,
        fail_reward=fail_reward, num_precise_actions=num_precise_actions, gamma=gamma,
    )
    if int(max_branches) != max_branches or max_branches < 2:
        raise ValueError(f"max_branches must be an integer >= 2, got {max_branches}")
    n = np.unique(np.round(np.geomspace(1, max_branches, 400)))
    fig = Figure(figsize=(8.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    for alpha in alphas:
        (line,) = ax.plot(n, mediocre_choice_probability(n, alpha, **family), label=f"soft-optimal, α = {alpha:g}")
        if gamma > 0:
            threshold = log_branches_threshold(0.5, alpha, **family)
            if threshold <= math.log(max_branches):
                half = branches_for_probability(0.5, alpha, **family)
                ax.plot([half], [mediocre_choice_probability(half, alpha, **family)], "o", color=line.get_color())
    hard = float(hard_optimal_choice(terminal_reward_good, mediocre_reward) == MEDIOCRE_CHOICE)
    ax.axhline(hard, color="k", lw=2, ls="--", label="hard-optimal (every n)")
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set(
        xlabel="number of branches n behind the mediocre state",
        ylabel="π(mediocre | start)",
        title=f"Entropic bifurcation: r_good={terminal_reward_good:g}, r_mediocre={mediocre_reward:g},"
        f" r_fail={fail_reward:g}, m={num_precise_actions}, γ={gamma:g}",
    )
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path

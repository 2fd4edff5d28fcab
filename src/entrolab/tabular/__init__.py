"""Exact tabular MDPs: (soft) value iteration, policy evaluation, the entropic bifurcation.

    mdp.py          FiniteMDP (P, R, gamma, action mask, terminal states) + validation
    solvers.py      hard / soft value iteration (lax.while_loop), soft-optimal policy,
                    exact (soft) policy evaluation by a linear solve
    state_entropy.py  the normalised discounted occupancy d^pi, H(d^pi), the state-entropy
                    regularised objective, the adversarial reward sets (Thm 3.1, 3.2 of
                    Ashlag et al.) and exact gradient ascent
    gridworld.py    the two-goal gridworld of Ahmed et al. and exact policy gradient on it
    bifurcation.py  the six-state family where adding equally good branches behind a
                    mediocre state makes the soft-optimal policy prefer it, to any
                    chosen probability, while the optimal policy is unchanged;
                    closed forms and a figure

For results exact to ~1e-12 build and solve inside `jax.enable_x64(True)`.
"""

from entrolab.tabular.bifurcation import (
    FAIL_END,
    GOOD_END,
    MEDIOCRE,
    MEDIOCRE_CHOICE,
    MEDIOCRE_END,
    PRECISE,
    PRECISE_CHOICE,
    START,
    STATE_NAMES,
    bifurcation_figure,
    bifurcation_hard_values,
    bifurcation_mdp,
    bifurcation_soft_values,
    branches_for_probability,
    hard_optimal_choice,
    log_branches_threshold,
    mediocre_choice_probability,
    mediocre_reward_for_probability,
    precise_soft_value,
    soft_policy_return,
    soft_value_of_branches,
)
from entrolab.tabular.mdp import FiniteMDP
from entrolab.tabular.state_entropy import (
    occupancy,
    regularised_objective,
    state_action_occupancy,
    state_entropy,
    worst_case_reward,
)
from entrolab.tabular.solvers import (
    PolicyEvaluation,
    ValueIterationResult,
    evaluate_policy,
    greedy_policy,
    policy_entropy,
    soft_bellman_backup,
    soft_optimal_policy,
    soft_value_iteration,
    value_iteration,
)

__all__ = [
    "FAIL_END",
    "GOOD_END",
    "MEDIOCRE",
    "MEDIOCRE_CHOICE",
    "MEDIOCRE_END",
    "PRECISE",
    "PRECISE_CHOICE",
    "START",
    "STATE_NAMES",
    "FiniteMDP",
    "PolicyEvaluation",
    "ValueIterationResult",
    "bifurcation_figure",
    "bifurcation_hard_values",
    "bifurcation_mdp",
    "bifurcation_soft_values",
    "branches_for_probability",
    "evaluate_policy",
    "occupancy",
    "regularised_objective",
    "state_action_occupancy",
    "state_entropy",
    "worst_case_reward",
    "greedy_policy",
    "hard_optimal_choice",
    "log_branches_threshold",
    "mediocre_choice_probability",
    "mediocre_reward_for_probability",
    "policy_entropy",
    "precise_soft_value",
    "soft_bellman_backup",
    "soft_optimal_policy",
    "soft_policy_return",
    "soft_value_iteration",
    "soft_value_of_branches",
    "value_iteration",
]

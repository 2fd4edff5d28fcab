"""SAC and SAC-AdaEnt (Zhang, Chang, Gao, ICML 2025) as pure training functions."""

from entrolab.agents.sac.buffer import ReplayBuffer, Transition
from entrolab.agents.sac.config import SACConfig, SACHParams, stack_hparams
from entrolab.agents.sac.losses import (
    actor_loss,
    adaent_switch,
    alpha_loss,
    choose_q,
    critic_loss,
    polyak,
    shifted_cosine_similarity,
    soft_td_target,
    td_target,
)
from entrolab.agents.sac.networks import SquashedGaussianPolicy, TwinQ
from entrolab.agents.sac.train import SAC, SACState, make_train, summarize

__all__ = [
    "SAC", "ReplayBuffer", "SACConfig", "SACHParams", "SACState", "SquashedGaussianPolicy", "Transition", "TwinQ",
    "actor_loss", "adaent_switch", "alpha_loss", "choose_q", "critic_loss", "make_train", "polyak",
    "shifted_cosine_similarity", "soft_td_target", "stack_hparams", "summarize", "td_target",
]

"""PPO with scheduled entropy regularisation, as a pure training function."""

from entrolab.agents.ppo.config import PPOConfig, PPOHParams, entropy_coefficient, stack_hparams
from entrolab.agents.ppo.losses import clipped_surrogate, explained_variance, gae
from entrolab.agents.ppo.train import PPO, PPOState, Transition, make_train

__all__ = [
    "PPO", "PPOConfig", "PPOHParams", "PPOState", "Transition", "clipped_surrogate",
    "entropy_coefficient", "explained_variance", "gae", "make_train", "stack_hparams",
]

"""PPO's two kinds of configuration.

`PPOConfig` is static: it fixes shapes and loop counts, so changing it
recompiles. `PPOHParams` is traced: every field is an array in the compiled
program, so a sweep over any of them (the entropy coefficient above all) is a
`vmap`, never a recompilation. Defaults follow Stable-Baselines3's PPO where
the main study used them (lr 3e-4, gamma 0.99, lambda 0.95, clip 0.2, value
coefficient 0.5, max grad norm 0.5, 10 epochs) with 8 envs x 256 steps per
rollout and minibatches of 256.

Two defaults make PPO learn at any reward scale, where SB3's bare PPO (and
entrolab before these options) does not: rewards are normalised by the running
std of the discounted return (`normalize_rewards`, SB3's
`VecNormalize(norm_reward=True)`), and the actor's and the critic's gradients
are clipped separately (`grad_clip = "separate"`), so a critic far from its
targets cannot shrink the policy's step. `FIRST_RELEASE` lists the values that
reproduce entrolab 0.1's PPO; presets that reproduce a paper pin their settings.

Every field carries its help text as metadata (`metadata={"help": ...}`):
`entrolab.agents.options` reads the fields, types, defaults and help from
here, for the command line and the study configs alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax.numpy as jnp
from flax import struct

from entrolab.agents.networks import ACTIVATIONS
from entrolab.agents.policy import BOUNDINGS

ENTROPY_BONUSES = ("gaussian", "squashed")

SCHEDULES = ("constant", "linear")
GRAD_CLIPS = ("separate", "joint")
OPTIMIZERS = ("adam", "rmsprop")
# the options added since the first release, at the values that reproduce its PPO bit for bit
FIRST_RELEASE = {"normalize_rewards": False, "normalize_values": False, "grad_clip": "joint",
                 "critic_max_grad_norm": 0.5, "reward_clip": 10.0, "adam_eps": 1e-5}


@dataclass(frozen=True)
class PPOConfig:
    """Static structure of a PPO run."""

    num_envs: int = field(default=8, metadata={"help": "parallel environments per agent"})
    num_steps: int = field(default=256, metadata={"help": "rollout length per environment"})
    total_timesteps: int = field(
        default=1_000_000, metadata={"help": "env steps per agent (rounded down to whole rollouts)"}
    )
    num_epochs: int = field(default=10, metadata={"help": "passes over each rollout"})
    num_minibatches: int = field(
        default=8, metadata={"help": "minibatches per epoch (batch = num_envs * num_steps)"}
    )
    hidden_sizes: tuple[int, ...] = field(
        default=(64, 64), metadata={"help": "hidden-layer widths of the policy mean and critic MLPs"}
    )
    activation: str = field(default="tanh", metadata={"help": "hidden-layer activation: tanh, relu, gelu or silu"})
    action_bounding: str = field(
        default="clip", metadata={"help": '"clip" a Gaussian sample, or "tanh" squashing'}
    )
    normalize_observations: bool = field(
        default=True, metadata={"help": "running mean/var of observations, as SB3's VecNormalize"}
    )
    normalize_advantages: bool = field(default=True, metadata={"help": "normalise advantages per minibatch"})
    entropy_schedule: str = field(
        default="linear", metadata={"help": '"constant", or "linear" decay from ent_coef to 0 over ent_horizon'}
    )
    critic_hidden_sizes: tuple[int, ...] | None = field(
        default=None, metadata={"help": "hidden-layer widths of the critic MLP (default: hidden_sizes)"}
    )
    normalize_rewards: bool = field(default=True, metadata={"help": (
        "divide rewards by the running std of the discounted return, reset at episode ends, and clip to "
        "+-reward_clip (SB3's VecNormalize(norm_reward=True)): the critic learns at any reward scale")})
    normalize_values: bool = field(default=False, metadata={"help": (
        "the critic learns value targets standardised by their running mean/std and its outputs are mapped "
        "back (no PopArt output correction)")})
    entropy_bonus: str = field(default="gaussian", metadata={"help": (
        '"gaussian": the bonus is the entropy of the pre-bounding Gaussian (unbounded, as SB3); '
        '"squashed" (tanh bounding only): the entropy of the squashed action tanh(u), which is bounded')})
    grad_clip: str = field(default="separate", metadata={"help": (
        '"separate": actor and critic gradients clipped each to its own global norm (max_grad_norm, '
        'critic_max_grad_norm); "joint": one clip over both (SB3, and entrolab before 0.2)')})

    optimizer: str = field(default="adam", metadata={"help": (
        '"adam", or "rmsprop" (decay 0.99, eps = adam_eps added outside the square root: torch\'s RMSprop, '
        "the optimiser of A2C in torch-ac, which Ashlag et al. use; A2C = PPO with num_epochs = 1, "
        "num_minibatches = 1, normalize_advantages = false and rmsprop)")})
    state_entropy_k: int = field(default=0, metadata={"help": (
        "k of the k-NN state-entropy bonus (Ashlag et al.): each rollout state earns log(1 + its distance to "
        "the k-th nearest other state of the batch), divided by a running std, times state_ent_coef; 0 = off")})
    state_entropy_features: tuple[int, ...] | None = field(default=None, metadata={"help": (
        "coordinates the k-NN bonus measures distances in (default: all, raw units) of the raw observation, or "
        "of the env's state features where it defines them (the MiniGrid room: x, y, one-hot direction)")})
    state_entropy_rollouts: int | None = field(default=None, metadata={"help": (
        "environments whose trajectories feed one k-NN estimate (the paper's rollout count; num_envs must be "
        "a multiple); default: all num_envs")})
    state_entropy_target: str = field(default="advantage", metadata={"help": (
        '"advantage": the bonus is added to the advantages after GAE (the authors\' MiniGrid code); '
        '"reward": to the rewards before GAE')})

    # options added later, with the value at which training is what it was before they existed: a
    # study's fingerprint leaves them out at that value, so adding an option retrains nothing
    NEUTRAL = {"entropy_bonus": "gaussian", "state_entropy_k": 0, "optimizer": "adam"}
    # options that only matter when another is away from its neutral value
    COMPANIONS = {"state_entropy_k": ("state_entropy_features", "state_entropy_rollouts", "state_entropy_target")}

    def __post_init__(self):
        for name in ("num_envs", "num_steps", "num_epochs", "num_minibatches", "total_timesteps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps = {self.batch_size} is not divisible by num_minibatches = {self.num_minibatches}"
            )
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"total_timesteps = {self.total_timesteps} is smaller than one rollout "
                f"(num_envs * num_steps = {self.batch_size})"
            )
        if self.action_bounding not in BOUNDINGS:
            raise ValueError(f"action_bounding must be one of {BOUNDINGS}, got {self.action_bounding!r}")
        if self.entropy_bonus not in ENTROPY_BONUSES:
            raise ValueError(f"entropy_bonus must be one of {ENTROPY_BONUSES}, got {self.entropy_bonus!r}")
        if self.entropy_bonus == "squashed" and self.action_bounding != "tanh":
            raise ValueError('entropy_bonus = "squashed" needs action_bounding = "tanh" (the squashed action\'s '
                             f'entropy), got action_bounding = {self.action_bounding!r}')
        if self.entropy_schedule not in SCHEDULES:
            raise ValueError(f"entropy_schedule must be one of {SCHEDULES}, got {self.entropy_schedule!r}")
        if any(int(w) < 1 for w in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {self.hidden_sizes}")
        if self.critic_hidden_sizes is not None and any(int(w) < 1 for w in self.critic_hidden_sizes):
            raise ValueError(f"critic_hidden_sizes must be positive, got {self.critic_hidden_sizes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.grad_clip not in GRAD_CLIPS:
            raise ValueError(f"grad_clip must be one of {GRAD_CLIPS}, got {self.grad_clip!r}")
        if self.state_entropy_k < 0:
            raise ValueError(f"state_entropy_k must be >= 0, got {self.state_entropy_k}")
        if self.state_entropy_target not in ("advantage", "reward"):
            raise ValueError(f'state_entropy_target must be "advantage" or "reward", got {self.state_entropy_target!r}')
        rollouts = self.state_entropy_rollouts or self.num_envs
        if self.state_entropy_k and (rollouts < 1 or self.num_envs % rollouts):
            raise ValueError(f"num_envs ({self.num_envs}) must be a multiple of state_entropy_rollouts ({rollouts})")
        if self.state_entropy_k and self.state_entropy_k >= rollouts * self.num_steps:
            raise ValueError(f"state_entropy_k ({self.state_entropy_k}) must be below the states per estimate "
                             f"({rollouts} x {self.num_steps})")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size


@struct.dataclass
class PPOHParams:
    """Traced hyperparameters (sweepable by vmap)."""

    learning_rate: float = struct.field(default=3e-4, metadata={"help": "Adam learning rate"})
    gamma: float = struct.field(default=0.99, metadata={"help": "discount factor"})
    gae_lambda: float = struct.field(default=0.95, metadata={"help": "GAE lambda"})
    clip_eps: float = struct.field(default=0.2, metadata={"help": "clip range of the surrogate objective"})
    vf_coef: float = struct.field(default=0.5, metadata={"help": "value-loss coefficient"})
    ent_coef: float = struct.field(default=0.0, metadata={"help": "initial entropy coefficient alpha_i"})
    ent_horizon: float = struct.field(
        default=400_000.0, metadata={"help": "env steps over which a linear schedule decays to 0"}
    )
    max_grad_norm: float = struct.field(default=0.5, metadata={
        "help": "global-norm clip of the actor's gradient (of actor and critic together with grad_clip = joint)"})
    init_log_std: float = struct.field(default=0.0, metadata={
        "help": "initial log-std of the policy, in [-1, 1] action units (tasks with a natural noise scale "
                "set their own default: see `entrolab envs NAME`)"})
    critic_max_grad_norm: float = struct.field(default=0.5, metadata={
        "help": "global-norm clip of the critic's gradient (grad_clip = separate)"})
    reward_clip: float = struct.field(default=10.0, metadata={
        "help": "normalised rewards are clipped to +-this (normalize_rewards; SB3's clip_reward)"})
    adam_eps: float = struct.field(default=1e-5, metadata={"help": "Adam's epsilon (RMSprop's with optimizer = rmsprop)"})
    state_ent_coef: float = struct.field(default=0.0, metadata={
        "help": "coefficient beta of the k-NN state-entropy bonus (state_entropy_k > 0)"})

    NEUTRAL = {"state_ent_coef": 0.0}  # added later: at this value training is as before (fingerprints)

    def check(self) -> PPOHParams:
        """Range checks on concrete values (a clear error before compiling)."""
        import numpy as np

        checks = {
            "learning_rate": lambda v: v > 0, "gamma": lambda v: 0 <= v <= 1,
            "gae_lambda": lambda v: 0 <= v <= 1, "clip_eps": lambda v: v > 0,
            "vf_coef": lambda v: v >= 0, "ent_coef": lambda v: v >= 0,
            "ent_horizon": lambda v: v > 0, "max_grad_norm": lambda v: v > 0,
            "init_log_std": lambda v: np.isfinite(v), "critic_max_grad_norm": lambda v: v > 0,
            "reward_clip": lambda v: v > 0, "adam_eps": lambda v: v > 0, "state_ent_coef": lambda v: v >= 0,
        }
        for name, ok in checks.items():
            values = np.atleast_1d(np.asarray(getattr(self, name), dtype=float))
            if values.size == 0 or not np.all(np.isfinite(values)) or not all(ok(v) for v in values):
                raise ValueError(f"PPOHParams.{name} out of range: {getattr(self, name)}")
        return self


def stack_hparams(hparams: list[PPOHParams]) -> PPOHParams:
    """Stack a list into one PPOHParams of arrays with a leading axis (for vmap)."""
    import jax

    return jax.tree.map(lambda *xs: jnp.asarray(xs, jnp.float32), *hparams)


def entropy_coefficient(hp: PPOHParams, env_steps, schedule: str):
    """The coefficient applied after `env_steps` steps: alpha_i, or alpha_i * max(0, 1 - t/H)."""
    if schedule == "constant":
        return jnp.asarray(hp.ent_coef, jnp.float32)
    return hp.ent_coef * jnp.maximum(0.0, 1.0 - env_steps / hp.ent_horizon)



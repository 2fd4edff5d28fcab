"""SAC's two kinds of configuration (static `SACConfig`, traced `SACHParams`).

`SACConfig` fixes shapes and loop counts: changing it recompiles. Whether α is
learned (`auto_alpha`) and whether the actor uses AdaEnt (`adaent`) are static
because they change the program (extra networks, extra optimiser states).
`SACHParams` is traced: a sweep over any of its fields (α and the AdaEnt
threshold above all) is a `vmap`, never a recompilation.

Defaults follow the SAC-AdaEnt code of "When Maximum Entropy Misleads Policy
Optimization" (Zhang, Chang, Gao, ICML 2025; github ruipengz/maxent-mislead,
examples/run_sac_adaent.py and policy/sac_adaent.py, tianshou 0.5): MLPs of
(256, 256) with ReLU, Adam at 1e-3 for actor, critics and α, γ = 0.99,
τ = 0.005, α = 0.2 fixed unless auto-α is asked for, a batch of 256, a buffer
of 1e6, 10 000 uniformly random steps before learning, one gradient step per
environment step, K = 100 actions per state for the AdaEnt comparison and a
threshold of 0.9 (the default of that code's `SACPolicy`; its command-line
script defaults to 0.8). Two choices differ from that code, on purpose:
- with `auto_alpha` the initial α is `SACHParams.alpha` (their code starts from
  log α = 0, i.e. α = 1): one field is then both the fixed α and the starting α;
- the target entropy defaults to -action_dim (theirs too) but is a static
  field, as the standard heuristic of Haarnoja et al. (2018b).

Every field carries its help text as metadata (`metadata={"help": ...}`):
`entrolab.agents.options` reads the fields, types, defaults and help from
here, for the command line and the study configs alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
from flax import struct

from entrolab.agents.networks import ACTIVATIONS


@dataclass(frozen=True)
class SACConfig:
    """Static structure of a SAC / SAC-AdaEnt run."""

    num_envs: int = field(
        default=1, metadata={"help": "parallel environments per agent (one iteration = one step of each)"}
    )
    total_timesteps: int = field(
        default=1_000_000, metadata={"help": "env steps per agent (rounded down to whole logging chunks)"}
    )
    buffer_size: int = field(
        default=1_000_000, metadata={"help": "replay capacity in transitions (a circular array on device)"}
    )
    batch_size: int = field(
        default=256, metadata={"help": "transitions per gradient step (sampled uniformly, with replacement)"}
    )
    learning_starts: int = field(
        default=10_000, metadata={"help": "env steps of uniformly random actions before the first update"}
    )
    updates_per_step: int = field(
        default=1, metadata={"help": "gradient steps per iteration (update-to-data ratio = this / num_envs)"}
    )
    hidden_sizes: tuple[int, ...] = field(default=(256, 256), metadata={"help": "hidden-layer widths of the actor MLP"})
    critic_hidden_sizes: tuple[int, ...] | None = field(
        default=None, metadata={"help": "hidden-layer widths of the critic MLPs (default: hidden_sizes)"}
    )
    activation: str = field(default="relu", metadata={"help": "hidden-layer activation: tanh, relu, gelu or silu"})
    log_std_min: float = field(
        default=-20.0, metadata={"help": "lower clip of the actor's state-dependent log-std (SB3, tianshou)"}
    )
    log_std_max: float = field(default=2.0, metadata={"help": "upper clip of the actor's state-dependent log-std"})
    auto_alpha: bool = field(
        default=False,
        metadata={"help": "learn log alpha toward target_entropy (else alpha = SACHParams.alpha, fixed)"},
    )
    target_entropy: float | None = field(
        default=None, metadata={"help": "target entropy of auto_alpha (default: -action_dim)"}
    )
    adaent: bool = field(
        default=False, metadata={"help": "SAC-AdaEnt: plain critics, per-state switch of the actor's Q"}
    )
    plain_critic: bool = field(
        default=False,
        metadata={"help": "also learn the plain (entropy-free) Q of the policy, unused by the actor"},
    )
    adaent_num_actions: int = field(
        default=100, metadata={"help": "AdaEnt: K actions per state for the soft/plain similarity (K >= 2)"}
    )
    adaent_chunk: int | None = field(
        default=None,
        metadata={"help": "AdaEnt: actions per pass over the critics (memory only; None: all K in one pass)"},
    )
    log_interval: int = field(default=1000, metadata={"help": "iterations per logged row of `SAC.__call__`"})

    # fields that change memory or speed but no result: left out of a study unit's fingerprint
    MEMORY_ONLY = ("adaent_chunk",)

    def __post_init__(self):
        for name in ("num_envs", "total_timesteps", "buffer_size", "batch_size", "updates_per_step", "log_interval"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SACConfig.{name} must be >= 1, got {getattr(self, name)}")
        if int(self.learning_starts) < 0:
            raise ValueError(f"SACConfig.learning_starts must be >= 0, got {self.learning_starts}")
        if self.buffer_size < self.num_envs:
            raise ValueError(
                f"buffer_size = {self.buffer_size} is smaller than one step of num_envs = {self.num_envs} envs"
            )
        if int(self.adaent_num_actions) < 2:
            raise ValueError(
                f"adaent_num_actions (K) must be >= 2 (a similarity of Q over one action is undefined), "
                f"got {self.adaent_num_actions}"
            )
        if self.adaent_chunk is not None and int(self.adaent_chunk) < 1:
            raise ValueError(f"adaent_chunk must be >= 1 or None, got {self.adaent_chunk}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        for name in ("hidden_sizes", "critic_hidden_sizes"):
            sizes = getattr(self, name)
            if sizes is not None and (len(sizes) == 0 or any(int(w) < 1 for w in sizes)):
                raise ValueError(f"{name} must be a non-empty tuple of positive widths, got {sizes}")
        if not (math.isfinite(self.log_std_min) and math.isfinite(self.log_std_max)) or not (
            self.log_std_min < self.log_std_max
        ):
            raise ValueError(
                f"need finite log_std_min < log_std_max, got [{self.log_std_min}, {self.log_std_max}]"
            )
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise ValueError(f"target_entropy must be finite (or None for -action_dim), got {self.target_entropy}")
        if self.num_chunks < 1:
            raise ValueError(
                f"total_timesteps = {self.total_timesteps} is smaller than one logging chunk "
                f"(num_envs * log_interval = {self.num_envs * self.log_interval})"
            )

    @property
    def learns_plain_q(self) -> bool:
        """Whether plain critics are trained: always under AdaEnt, else if `plain_critic`
        (for the soft-vs-plain Q landscapes of a plain SAC agent)."""
        return bool(self.adaent or self.plain_critic)

    @property
    def num_iterations(self) -> int:
        """Iterations of a whole run (each = one env step of `num_envs` envs + updates)."""
        return self.num_chunks * self.log_interval

    @property
    def num_chunks(self) -> int:
        """Logged rows of a whole run."""
        return self.total_timesteps // (self.num_envs * self.log_interval)


@struct.dataclass
class SACHParams:
    """Traced hyperparameters (sweepable by vmap)."""

    actor_lr: float = struct.field(default=1e-3, metadata={"help": "Adam learning rate of the actor"})
    critic_lr: float = struct.field(
        default=1e-3, metadata={"help": "Adam learning rate of the soft critics, and the plain critics of AdaEnt"}
    )
    alpha_lr: float = struct.field(
        default=1e-3, metadata={"help": "Adam learning rate of log alpha (used only with auto_alpha)"}
    )
    gamma: float = struct.field(default=0.99, metadata={"help": "discount factor"})
    tau: float = struct.field(default=0.005, metadata={"help": "Polyak rate of the target critics"})
    alpha: float = struct.field(
        default=0.2, metadata={"help": "entropy coefficient: fixed, or initial with auto_alpha"}
    )
    adaent_threshold: float = struct.field(
        default=0.9,
        metadata={"help": "AdaEnt: plain Q where cos(soft, plain) < threshold; in [-1, 1]"},
    )

    def check(self, config: SACConfig | None = None) -> SACHParams:
        """Range checks on concrete values (a clear error before compiling).

        With a `config` that learns α, the initial α must be > 0 (log α = -inf
        would never move)."""
        import numpy as np

        auto = config is not None and config.auto_alpha
        alpha_ok = (lambda v: v > 0) if auto else (lambda v: v >= 0)
        checks = {
            "actor_lr": lambda v: v > 0, "critic_lr": lambda v: v > 0, "alpha_lr": lambda v: v > 0,
            "gamma": lambda v: 0 <= v <= 1, "tau": lambda v: 0 < v <= 1, "alpha": alpha_ok,
            "adaent_threshold": lambda v: -1 <= v <= 1,
        }
        for name, ok in checks.items():
            values = np.atleast_1d(np.asarray(getattr(self, name), dtype=float))
            if values.size == 0 or not np.all(np.isfinite(values)) or not all(ok(v) for v in values):
                hint = " (auto_alpha needs alpha > 0)" if name == "alpha" and auto else ""
                raise ValueError(f"SACHParams.{name} out of range: {getattr(self, name)}{hint}")
        return self


def stack_hparams(hparams: list[SACHParams]) -> SACHParams:
    """Stack a list into one SACHParams of arrays with a leading axis (for vmap)."""
    return jax.tree.map(lambda *xs: jnp.asarray(xs, jnp.float32), *hparams)

"""The config of a landscape study (``kind = "landscape"``): what entropy does to the optimisation landscape.

After Ahmed et al. (ICML 2019), on the two-goal gridworld of their code with exact gradients
(`entrolab.tabular.gridworld`):

    kind = "landscape"
    name = "landscape-gridworld"
    seed = 0

    [gridworld]
    size = 5                                  # 5 x 5 cells + the absorbing state; gamma 0.99
    taus = [0.0, 0.001, 0.01, 0.05, 0.1, 0.5] # entropy weights (constant over training)
    step_sizes = [0.1, 1.0, 10.0]             # gradient-ascent steps (the paper's 0.1 first)
    inits = 64                                # random initialisations (the same for every tau and step)
    updates = 1500
    decay = { tau = 1.0, factor = 0.99 }      # optional: the authors' decayed-tau variant

    [probes]                                  # at the final policies of the first step size
    directions = 200
    epsilons = [0.1, 1.0]
    inits = 4                                 # probed policies per tau
    lanczos = 30                              # Lanczos steps for the Hessian's extreme eigenvalues
    hutchinson = 200                          # Rademacher vectors for the Hessian's trace
    interpolation_points = 41

    [continuous]                              # optional: REINFORCE, fixed std, on a continuous system
    env = "lorenz"
    stds = [0.1, 0.3, 1.0]                    # the policy's fixed std (its entropy)
    seeds = 4
    steps = 200_000
    directions = 50                           # probes of the sampled return at init and final policies
    epsilons = [0.05, 0.5]

    [policies]                                # optional: probes of trained checkpoints
    study = "runs/lorenz-quick"               # a robustness (or comparison) study directory
    directions = 50
    epsilons = [0.01, 0.1]
    episodes = 16                             # per evaluation of the sampled return
    repeats = 8                               # evaluations at each policy (the noise band)

Every mistake is a `StudyConfigError` naming the key, before any work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from entrolab.study.config import Strict, StudyConfigBase, ints_to_floats

PosInt = Annotated[int, Field(ge=1)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class DecaySpec(Strict):
    tau: PosFloat = 1.0
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.99

    @field_validator("tau", "factor", mode="before")
    @classmethod
    def _floats(cls, v):
        return ints_to_floats([v])[0]


class GridworldSpec(Strict):
    size: Annotated[int, Field(ge=2, le=20)] = 5
    gamma: Annotated[float, Field(gt=0, lt=1)] = 0.99
    best_reward: PosFloat = 5.0
    second_reward: PosFloat = 4.5
    taus: list[NonNegFloat] = Field(default_factory=lambda: [0.0, 0.001, 0.01, 0.05, 0.1, 0.5], min_length=1)
    step_sizes: list[PosFloat] = Field(default_factory=lambda: [0.1], min_length=1)
    inits: PosInt = 64
    updates: PosInt = 1500
    record_every: PosInt = 10
    init_scale: PosFloat = 1.0
    decay: DecaySpec | None = None

    @field_validator("taus", "step_sizes", mode="before")
    @classmethod
    def _ints_are_floats(cls, v):
        return ints_to_floats(v)

    @field_validator("taus", "step_sizes")
    @classmethod
    def _distinct(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"values must be distinct, got {v}")
        return v

    @model_validator(mode="after")
    def _check(self):
        if self.updates % self.record_every:
            raise ValueError(f"updates ({self.updates}) must be a multiple of record_every ({self.record_every})")
        if self.second_reward >= self.best_reward:
            raise ValueError("second_reward must be below best_reward (the two goals are the better and the worse)")
        return self


class ProbeSpec(Strict):
    directions: PosInt = 200
    epsilons: list[PosFloat] = Field(default_factory=lambda: [0.1, 1.0], min_length=1)
    inits: PosInt = 4
    lanczos: PosInt = 30
    hutchinson: PosInt = 200
    interpolation_points: Annotated[int, Field(ge=3)] = 41

    @field_validator("epsilons", mode="before")
    @classmethod
    def _ints_are_floats(cls, v):
        return ints_to_floats(v)


class PoliciesSpec(Strict):
    study: str  # a study directory with trained checkpoints: train/**/checkpoints/RUN/manifest.json
    directions: PosInt = 50
    epsilons: list[PosFloat] = Field(default_factory=lambda: [0.01, 0.1], min_length=1)
    episodes: PosInt = 16
    repeats: Annotated[int, Field(ge=2)] = 8
    mode: Literal["deterministic", "stochastic"] = "deterministic"

    @field_validator("epsilons", mode="before")
    @classmethod
    def _ints_are_floats(cls, v):
        return ints_to_floats(v)

    def checkpoints(self) -> list[Path]:
        """The checkpoint directories of the study, sorted."""
        return sorted(p.parent for p in Path(self.study).glob("train/**/checkpoints/*/manifest.json"))


class ContinuousSpec(Strict):
    """REINFORCE with a fixed std on a continuous system: the std sweep of Ahmed et al.'s continuous
    experiments, CPU-sized (their Hopper needs brax: not built). `snapshots`: fractions of training
    at which each policy is kept and probed too ("mid" points; [] = only the initial and final)."""

    env: str = "lorenz"
    env_options: dict[str, Any] = Field(default_factory=dict)
    stds: list[PosFloat] = Field(default_factory=lambda: [0.1, 0.3, 1.0], min_length=1)
    seeds: PosInt = 4
    steps: PosInt = 200_000
    options: dict[str, Any] = Field(default_factory=dict)  # REINFORCE options (`entrolab options reinforce`)
    eval_episodes: PosInt = 16
    directions: PosInt = 50
    epsilons: list[PosFloat] = Field(default_factory=lambda: [0.05, 0.5], min_length=1)
    episodes: PosInt = 16
    repeats: Annotated[int, Field(ge=2)] = 8
    interpolation_points: Annotated[int, Field(ge=3)] = 21
    snapshots: list[Annotated[float, Field(gt=0.0, lt=1.0)]] = Field(default_factory=list)
    # what is probed: the sampled policy's return with its std fixed (the objective REINFORCE
    # ascends, where the std can smooth the landscape), or the deterministic policy's return
    objective: Literal["stochastic", "deterministic"] = "stochastic"
    chunks: PosInt = 10  # training chunks (progress and snapshots happen at chunk ends)

    @field_validator("stds", "epsilons", "snapshots", mode="before")
    @classmethod
    def _ints_are_floats(cls, v):
        return ints_to_floats(v)

    @model_validator(mode="after")
    def _check(self):
        from entrolab.agents.options import OptionError, build
        from entrolab.envs import make

        try:
            make(self.env, **self.env_options)
        except ValueError as err:
            raise ValueError(f"env: {err}") from None
        try:
            build("reinforce", self.options, total_timesteps=self.steps)
        except OptionError as err:
            raise ValueError("options: " + "; ".join(err.errors)) from None
        if len(set(self.stds)) != len(self.stds):
            raise ValueError(f"stds must be distinct, got {self.stds}")
        return self


class LandscapeConfig(StudyConfigBase):
    kind: Literal["landscape"] = "landscape"
    seed: Annotated[int, Field(ge=0)] = 0
    bootstrap: PosInt = 2000
    gridworld: GridworldSpec = Field(default_factory=GridworldSpec)
    probes: ProbeSpec = Field(default_factory=ProbeSpec)
    policies: PoliciesSpec | None = None
    continuous: ContinuousSpec | None = None

    @model_validator(mode="after")
    def _check(self):
        g, p = self.gridworld, self.probes
        num_params = (g.size * g.size + 1) * 4 + 4
        if p.lanczos > num_params:
            raise ValueError(f"probes.lanczos ({p.lanczos}) must be at most the policy's {num_params} parameters")
        if p.inits > g.inits:
            raise ValueError(f"probes.inits ({p.inits}) must be at most gridworld.inits ({g.inits})")
        if self.policies is not None and not self.policies.checkpoints():
            raise ValueError(f"policies.study: no trained checkpoints under {self.policies.study!r} "
                             "(train/**/checkpoints/RUN/manifest.json); run that study first")
        return self

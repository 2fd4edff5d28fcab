"""A study is a TOML file, validated here (pydantic) before any work starts.

    name = "lorenz-quick"
    env = "lorenz"                      # a registered entrolab environment
    seeds = 4                           # seeds per (alpha, training variant)
    alphas = [0.0, 0.01, 0.05, 0.1]     # initial entropy coefficients

    [env_options]                       # overrides of the env's params or static options
    max_steps_in_episode = 200

    [train]                             # PPO; list-valued factors make training variants
    steps = 200_000
    schedule = ["linear"]               # "linear" (decay to 0 over ent_horizon) or "constant"
    ent_horizon = [100_000]
    hidden = [[64, 64]]                 # network widths and depth
    bounding = ["clip"]                 # "clip" a Gaussian sample, or "tanh" squashing
    train_obs_noise = [0.0]             # observation noise seen during training

    [evaluate]
    episodes = 100
    inits = ["C+", "C-"]                # initial-state distributions N(x_e, init_std^2 I)
    init_std = 0.1
    obs_noise = [0.0, 0.1, 0.2, 0.5]
    action_noise = [0.0, 0.1, 0.2]     # optional family
    dynamics = { param = "rho", values = [24.0, 28.0, 32.0] }   # optional family
    modes = ["deterministic", "stochastic"]

    [measures]
    fisher_states = 1024
    sharpness_sigmas = [0.001, 0.003, 0.01, 0.03]
    sharpness_samples = 8
    sharpness_tolerance = 0.1

Every mistake (an unknown key, a wrong type, an out-of-range value, an unknown
environment or equilibrium) is a `StudyConfigError` naming the key, raised
before anything is trained. The resolved config (defaults filled in) is
written to the study directory, and rerunning a directory with a different
config is refused.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from entrolab.envs import make

NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PosInt = Annotated[int, Field(ge=1)]
INITS = {"lorenz": {"origin": 0, "C+": 1, "C-": 2}, "ks": {"zero": "zero", "E1": "E1", "E2": "E2", "E3": "E3"}}


class StudyConfigError(ValueError):
    """A study config that cannot run: the message names the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TrainConfig(_Strict):
    algo: Literal["ppo"] = "ppo"
    steps: PosInt = 1_000_000
    num_envs: PosInt = 8
    num_steps: PosInt = 256
    epochs: PosInt = 10
    minibatches: PosInt = 8
    activation: Literal["tanh", "relu", "gelu", "silu"] = "tanh"
    normalize_obs: bool = True
    learning_rate: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 3e-4
    gamma: Annotated[float, Field(ge=0, le=1)] = 0.99
    gae_lambda: Annotated[float, Field(ge=0, le=1)] = 0.95
    clip_eps: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 0.2
    vf_coef: NonNegFloat = 0.5
    max_grad_norm: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 0.5
    init_log_std: Annotated[float, Field(allow_inf_nan=False)] = 0.0
    eval_episodes: PosInt = 16
    chunks: PosInt = 20
    # factors: each list is one axis of the grid of training variants
    schedule: list[Literal["linear", "constant"]] = Field(default_factory=lambda: ["linear"], min_length=1)
    ent_horizon: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [400_000.0], min_length=1)
    hidden: list[list[PosInt]] = Field(default_factory=lambda: [[64, 64]], min_length=1)
    bounding: list[Literal["clip", "tanh"]] = Field(default_factory=lambda: ["clip"], min_length=1)
    train_obs_noise: list[NonNegFloat] = Field(default_factory=lambda: [0.0], min_length=1)

    @field_validator("ent_horizon", "train_obs_noise", mode="before")
    @classmethod
    def _ints_are_floats(cls, v):
        return [float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _shapes(self):
        batch = self.num_envs * self.num_steps
        if batch % self.minibatches:
            raise ValueError(f"num_envs * num_steps = {batch} is not divisible by minibatches = {self.minibatches}")
        if self.steps < batch:
            raise ValueError(f"steps = {self.steps} is smaller than one rollout (num_envs * num_steps = {batch})")
        return self


class DynamicsFamily(_Strict):
    param: str
    values: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _ints_are_floats(cls, v):
        return [float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v] if isinstance(v, list) else v


class EvaluateConfig(_Strict):
    episodes: PosInt = 100
    inits: list[str] | None = None  # default: the non-trivial equilibria of the system
    init_std: NonNegFloat = 0.1
    obs_noise: list[NonNegFloat] = Field(default_factory=lambda: [0.0, 0.1, 0.2, 0.5], min_length=1)
    action_noise: list[NonNegFloat] = Field(default_factory=list)
    dynamics: DynamicsFamily | None = None
    modes: list[Literal["deterministic", "stochastic"]] = Field(
        default_factory=lambda: ["deterministic", "stochastic"], min_length=1)
    bootstrap: PosInt = 1000

    @field_validator("obs_noise", "action_noise", "init_std", mode="before")
    @classmethod
    def _ints_are_floats(cls, v):
        if isinstance(v, list):
            return [float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class MeasuresConfig(_Strict):
    fisher_states: PosInt = 1024
    sharpness_sigmas: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1], min_length=1)
    sharpness_samples: PosInt = 8
    sharpness_episodes: PosInt = 16
    sharpness_tolerance: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 0.1  # drop relative to |J|


class StudyConfig(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    env: str
    seed: Annotated[int, Field(ge=0)] = 0  # of the evaluation and measurement keys
    seeds: PosInt = 4  # training seeds per (alpha, variant): seed_offset, seed_offset + 1, ...
    seed_offset: Annotated[int, Field(ge=0)] = 0
    alphas: list[NonNegFloat] = Field(min_length=1)
    env_options: dict[str, Any] = Field(default_factory=dict)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    measures: MeasuresConfig = Field(default_factory=MeasuresConfig)

    @field_validator("alphas", mode="before")
    @classmethod
    def _ints_are_floats(cls, v):
        return [float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v] if isinstance(v, list) else v

    @field_validator("alphas")
    @classmethod
    def _distinct(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"alphas must be distinct, got {v}")
        return v

    @model_validator(mode="after")
    def _env(self):
        if self.env not in INITS:
            raise ValueError(f"unknown env {self.env!r}; a study runs on one of {sorted(INITS)}")
        try:
            _, params = make(self.env, **self.env_options)
        except ValueError as err:
            raise ValueError(f"env_options: {err}") from None
        inits = self.evaluate.inits if self.evaluate.inits is not None else self.default_inits()
        unknown = [i for i in inits if i not in INITS[self.env]]
        if unknown or not inits:
            raise ValueError(f"evaluate.inits: unknown {unknown or inits} for {self.env}; known: {sorted(INITS[self.env])}")
        dyn = self.evaluate.dynamics
        if dyn is not None:
            value = getattr(params, dyn.param, None)
            if value is None or dyn.param in {"obs_noise_std", "action_noise_std", "init_std"} or \
                    getattr(value, "ndim", 0) != 0 or isinstance(value, bool):
                raise ValueError(f"evaluate.dynamics.param: {dyn.param!r} is not a scalar dynamics parameter of {self.env}")
            if not any(math.isclose(v, float(value), rel_tol=1e-9) for v in dyn.values):
                raise ValueError(
                    f"evaluate.dynamics.values must include the nominal {dyn.param} = {float(value):g} "
                    "(the reference of the excess risk)")
        if 0.0 not in self.evaluate.obs_noise:
            raise ValueError("evaluate.obs_noise must include 0 (the reference of the excess risk)")
        if self.evaluate.action_noise and 0.0 not in self.evaluate.action_noise:
            raise ValueError("evaluate.action_noise must include 0 (the reference of the excess risk)")
        return self

    def default_inits(self) -> list[str]:
        return ["C+", "C-"] if self.env == "lorenz" else ["E1", "E2", "E3"]

    @property
    def inits(self) -> list[str]:
        return list(self.evaluate.inits) if self.evaluate.inits is not None else self.default_inits()

    def variants(self) -> list[dict[str, Any]]:
        """The grid of training variants (one compiled sweep of alphas x seeds each)."""
        t = self.train
        grid = itertools.product(t.schedule, t.ent_horizon, t.hidden, t.bounding, t.train_obs_noise)
        out = []
        for schedule, horizon, hidden, bounding, noise in grid:
            if schedule == "constant" and horizon != t.ent_horizon[0]:
                continue  # the horizon means nothing without decay
            name = (f"{schedule}" + (f"-H{horizon:g}" if schedule == "linear" else "")
                    + f"_h{'x'.join(map(str, hidden))}_{bounding}_trainnoise{noise:g}")
            out.append(dict(variant=name, schedule=schedule, ent_horizon=horizon, hidden=tuple(hidden),
                            bounding=bounding, train_obs_noise=noise))
        return out


def _format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {loc}: {msg}" + (f" (got {e['input']!r})" if e["type"] != "extra_forbidden" and
                                          not isinstance(e.get("input"), dict) else ""))
    return "\n".join(lines)


def parse_config(data: dict, source: str = "config"):
    """A `StudyConfig` (robustness study, the default) or, with ``kind = "comparison"``, a
    `entrolab.study.comparison.ComparisonConfig`."""
    from entrolab.study.comparison import ComparisonConfig

    kind = data.get("kind", "robustness")
    try:
        if kind == "comparison":
            return ComparisonConfig.model_validate(data)
        if kind != "robustness":
            raise StudyConfigError(f"{source}: invalid study config:\n  kind: unknown study kind {kind!r}; "
                                   "known: 'robustness' (the default), 'comparison'")
        return StudyConfig.model_validate({k: v for k, v in data.items() if k != "kind"})
    except ValidationError as err:
        raise StudyConfigError(f"{source}: invalid study config:\n{_format_error(err)}") from None


def load_config(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise StudyConfigError(f"{path}: no such study config")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise StudyConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_config(data, str(path))

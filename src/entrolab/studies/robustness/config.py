"""The config of a robustness study (``kind = "robustness"``, the default), validated before any work.

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
    bounding = ["clip"]                 # "clip" a Gaussian sample, "tanh" squashing (bonus: the
                                        # pre-squash entropy), or "tanh_squashed" (bonus: the
                                        # squashed action's entropy)
    obs_normalization = [true, false]   # optional factor: running observation normalisation on/off
    train_obs_noise = [0.0]             # observation noise seen during training
    num_envs = 8                        # any PPOConfig / PPOHParams option by its field name
    learning_rate = 3e-4                # (`entrolab options ppo` lists them, with their help)

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
before anything is trained (`entrolab.study.config.parse_config`).
"""

from __future__ import annotations

import difflib
import itertools
import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from entrolab.agents.options import OptionError
from entrolab.agents.options import build as build_options
from entrolab.agents.options import options as option_list
from entrolab.agents.ppo.config import FIRST_RELEASE
from entrolab.envs import make
from entrolab.study.config import Strict, StudyConfigBase, ints_to_floats

NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PosInt = Annotated[int, Field(ge=1)]
INITS = {"lorenz": {"origin": 0, "C+": 1, "C-": 2}, "ks": {"zero": "zero", "E1": "E1", "E2": "E2", "E3": "E3"}}


# The PPO options that the grid of training variants or the study itself sets (not settable in [train])
RESERVED = {
    "total_timesteps": "set by train.steps",
    "hidden_sizes": "a factor of the study: set train.hidden (a list of width lists)",
    "action_bounding": "a factor of the study: set train.bounding (a list)",
    "entropy_schedule": "a factor of the study: set train.schedule (a list)",
    "ent_horizon": "a factor of the study: set train.ent_horizon (a list)",
}
# older [train] names of PPO options, still accepted
ALIASES = {"epochs": "num_epochs", "minibatches": "num_minibatches", "normalize_obs": "normalize_observations"}
# the [train] keys of the first release, which the training fingerprint is computed from (so that
# study directories made before options came from PPOConfig/PPOHParams keep their trained units)
_LEGACY_KEYS = ("num_envs", "num_steps", "epochs", "minibatches", "activation", "normalize_obs", "learning_rate",
                "gamma", "gae_lambda", "clip_eps", "vf_coef", "max_grad_norm", "init_log_std")


class TrainConfig(Strict):
    """PPO training: the study's own keys below, plus any option of `PPOConfig`/`PPOHParams` by its
    field name (`entrolab options ppo` lists them with their help), e.g. ``num_envs = 4``,
    ``learning_rate = 1e-3``. The resolved config holds every option, defaults filled in."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    algo: Literal["ppo"] = "ppo"
    steps: PosInt = 1_000_000  # env steps per agent
    eval_episodes: PosInt = 16  # evaluation episodes per agent at the end of training
    chunks: PosInt = 20  # compiled calls per training unit (progress and learning-curve granularity)
    # factors: each list is one axis of the grid of training variants
    schedule: list[Literal["linear", "constant"]] = Field(default_factory=lambda: ["linear"], min_length=1)
    ent_horizon: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [400_000.0], min_length=1)
    hidden: list[list[PosInt]] = Field(default_factory=lambda: [[64, 64]], min_length=1)
    bounding: list[Literal["clip", "tanh", "tanh_squashed"]] = Field(default_factory=lambda: ["clip"], min_length=1)
    train_obs_noise: list[NonNegFloat] = Field(default_factory=lambda: [0.0], min_length=1)
    # observation normalisation as a factor (None: the PPO option `normalize_observations` alone)
    obs_normalization: list[bool] | None = Field(default=None, min_length=1)

    @field_validator("ent_horizon", "train_obs_noise", mode="before")
    @classmethod
    def _ints_are_floats(cls, v):
        return ints_to_floats(v)

    @model_validator(mode="before")
    @classmethod
    def _ppo_options(cls, data):
        """Check the PPO options against PPOConfig/PPOHParams and fill in every default."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for old, new in ALIASES.items():
            if old in data:
                if new in data:
                    raise ValueError(f"{old} and {new} are the same option; give {new} only")
                data[new] = data.pop(old)
        given = {k: data.pop(k) for k in list(data) if k not in cls.model_fields}
        # (a resolved config holds normalize_observations at its default beside the factor: allowed)
        if data.get("obs_normalization") is not None and given.get("normalize_observations", True) is not True:
            raise ValueError("obs_normalization (a factor) and normalize_observations (one value) set the same "
                             "thing; give one")
        settable = [o.name for o in option_list("ppo") if o.name not in RESERVED]
        unknown = [k for k in given if k not in settable and k not in RESERVED]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, [*cls.model_fields, *settable], n=1)
                hints.append(f"unknown key {k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ValueError("; ".join(hints) + f". Known: the study's keys {', '.join(cls.model_fields)}, and the "
                             f"PPO options {', '.join(settable)} (`entrolab options ppo` explains each)")
        steps = data.get("steps", cls.model_fields["steps"].default)
        if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1:
            try:
                ppo, hparams = build_options("ppo", given, total_timesteps=steps, reserved=RESERVED)
            except OptionError as err:
                raise ValueError("; ".join(err.errors).replace("total_timesteps", "steps")) from None
            data.update(_option_values(ppo, hparams))
        return data

    def ppo_options(self) -> dict[str, Any]:
        """Every PPO option of the study (the reserved ones excepted), resolved."""
        return dict(self.model_extra or {})

    def fingerprint_section(self) -> dict[str, Any]:
        """What the training units' fingerprints hash of this section: the study's keys and the
        options under their first-release names, plus any newer option whose value is not the one
        that reproduces the first release's PPO (`entrolab.agents.ppo.config.FIRST_RELEASE`), so a
        study directory made by an earlier entrolab keeps its trained units exactly when its
        training would be the same today."""
        opts = self.ppo_options()
        names = {ALIASES.get(k, k): k for k in _LEGACY_KEYS}
        defaults = {o.name: o.default for o in option_list("ppo")} | FIRST_RELEASE
        out = {"algo": self.algo, "steps": self.steps, "eval_episodes": self.eval_episodes, "chunks": self.chunks}
        for name, value in opts.items():
            if name in names:
                out[names[name]] = value
            elif value != _jsonable(defaults.get(name)):
                out[name] = value
        return out


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _option_values(ppo, hparams) -> dict[str, Any]:
    """The settable PPO options of a built (config, hparams), as JSON-able values."""
    out = {}
    for opt in option_list("ppo"):
        if opt.name in RESERVED:
            continue
        value = getattr(ppo if opt.target == "config" else hparams, opt.name)
        out[opt.name] = _jsonable(value)
    return out


class DynamicsFamily(Strict):
    param: str
    values: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _ints_are_floats(cls, v):
        return ints_to_floats(v)


class EvaluateConfig(Strict):
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
        return ints_to_floats(v)


class MeasuresConfig(Strict):
    fisher_states: PosInt = 1024
    sharpness_sigmas: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1], min_length=1)
    sharpness_samples: PosInt = 8
    sharpness_episodes: PosInt = 16
    sharpness_tolerance: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 0.1  # drop relative to |J|
    # bisection on sigma' after the grid (0: the grid alone, the first release's measure): this many
    # halvings of [0, the largest grid sigma'], repeated with `sharpness_repeats` independent noise
    # draws for an interval; the grid stays, as the cheap bracket and for comparison
    sharpness_bisection: Annotated[int, Field(ge=0)] = 0
    sharpness_repeats: Annotated[int, Field(ge=2)] = 5
    # worst-case observation perturbations (`measures.adversarial`): L2 budgets in raw observation
    # units; per budget the attack's mean and max action deviation over the visited states, and the
    # mean deviation under random directions of the same norm (empty: not measured)
    adversarial_epsilons: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(default_factory=list)
    adversarial_steps: PosInt = 20
    # what perturbations of those budgets cost (0: not measured): whole deterministic episodes per
    # initial distribution under the per-state attack and under random directions (excess risk), and
    # the simulator attack on the cost of `adversarial_horizon` steps from `adversarial_starts` states
    adversarial_episodes: Annotated[int, Field(ge=0)] = 0
    adversarial_horizon: Annotated[int, Field(ge=0)] = 0
    adversarial_starts: PosInt = 32

    # options added after the first release, at the values that measure what it measured (with the
    # options that only matter when they are on): `study.units.fingerprint_view`
    NEUTRAL: ClassVar[dict[str, Any]] = {"sharpness_bisection": 0, "adversarial_epsilons": [],
                                         "adversarial_episodes": 0, "adversarial_horizon": 0}
    COMPANIONS: ClassVar[dict[str, tuple[str, ...]]] = {"sharpness_bisection": ("sharpness_repeats",),
                                                        "adversarial_epsilons": ("adversarial_steps",),
                                                        "adversarial_horizon": ("adversarial_starts",)}


class RobustnessConfig(StudyConfigBase):
    kind: Literal["robustness"] = "robustness"
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
        return ints_to_floats(v)

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
        m = self.measures
        if (m.adversarial_episodes or m.adversarial_horizon) and not m.adversarial_epsilons:
            raise ValueError("measures.adversarial_episodes and adversarial_horizon need adversarial_epsilons (the budgets)")
        if m.adversarial_horizon >= int(params.max_steps_in_episode):
            raise ValueError(f"measures.adversarial_horizon must be shorter than the episode "
                             f"({int(params.max_steps_in_episode)} steps), got {m.adversarial_horizon}")
        for v in self.variants():  # every training variant's PPO must build (e.g. a squashed bonus needs tanh)
            try:
                build_options("ppo", self.variant_ppo_options(v), total_timesteps=self.train.steps)
            except (OptionError, ValueError) as err:
                msg = "; ".join(err.errors) if isinstance(err, OptionError) else str(err)
                raise ValueError(f"train: variant {v['variant']}: {msg}") from None
        return self

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "env": self.env}

    def default_inits(self) -> list[str]:
        return ["C+", "C-"] if self.env == "lorenz" else ["E1", "E2", "E3"]

    @property
    def inits(self) -> list[str]:
        return list(self.evaluate.inits) if self.evaluate.inits is not None else self.default_inits()

    def variants(self) -> list[dict[str, Any]]:
        """The grid of training variants (one compiled sweep of alphas x seeds each)."""
        t = self.train
        norms = [None] if t.obs_normalization is None else t.obs_normalization
        grid = itertools.product(t.schedule, t.ent_horizon, t.hidden, t.bounding, t.train_obs_noise, norms)
        out = []
        for schedule, horizon, hidden, bounding, noise, norm in grid:
            if schedule == "constant" and horizon != t.ent_horizon[0]:
                continue  # the horizon means nothing without decay
            name = (f"{schedule}" + (f"-H{horizon:g}" if schedule == "linear" else "")
                    + f"_h{'x'.join(map(str, hidden))}_{bounding}_trainnoise{noise:g}")
            v = dict(variant=name, schedule=schedule, ent_horizon=horizon, hidden=tuple(hidden),
                     bounding=bounding, train_obs_noise=noise)
            if norm is not None:  # only when a factor: earlier variants keep their names and fingerprints
                v["variant"] += "_obsnorm" if norm else "_rawobs"
                v["normalize_observations"] = norm
            out.append(v)
        return out

    def variant_ppo_options(self, variant: dict[str, Any]) -> dict[str, Any]:
        """The PPO options of one training variant: [train]'s options with the variant's factors."""
        bounding = variant["bounding"]
        opts = {**self.train.ppo_options(), "hidden_sizes": variant["hidden"],
                "action_bounding": "tanh" if bounding == "tanh_squashed" else bounding,
                "entropy_schedule": variant["schedule"], "ent_horizon": variant["ent_horizon"]}
        if bounding == "tanh_squashed":
            opts["entropy_bonus"] = "squashed"
        if "normalize_observations" in variant:
            opts["normalize_observations"] = variant["normalize_observations"]
        return opts

"""The config of a comparison study: several learning algorithms on several tasks, many seeds each.

The "MaxEnt misleads" study (configs/misleads.toml) asks whether SAC fails
on precision tasks where PPO succeeds and whether SAC-AdaEnt closes the gap.
It runs on the same machinery as the robustness study (config validated before
any work, registry of units with fingerprints, atomic unit outputs, resumable,
tidy tables, HTML + markdown report); only its config, units, tables and
report differ. A config file selects it with ``kind = "comparison"``:

    kind = "comparison"
    name = "misleads"
    seeds = 5
    eval_episodes = 20

    [tasks.obstacle2d]                 # a registered env (or "gymnax:NAME")
    env = "obstacle2d"
    steps = { ppo = 500_000, default = 100_000 }   # env steps per agent: per method, or one int
    env_options = {}
    options = { sac-adaent = { adaent_threshold = 0.8 } }   # per method: options on this task only

    [methods.ppo]                      # a label, and its algorithm
    algo = "ppo"                       # "ppo" | "sac" | "sac-adaent"
    alpha = 0.0                        # PPO: entropy coefficient; SAC: temperature (fixed, or initial)
    options = { num_envs = 8 }         # fields of PPOConfig / PPOHParams, or SACConfig / SACHParams

Units: ``train/TASK/METHOD`` (`entrolab.training.train_sweep`: seeds in one
compiled program; runs.parquet, metrics.parquet, checkpoints) and, for the
methods that learn a plain Q beside the soft one (SAC-AdaEnt, and SAC when
``landscapes = true``), ``landscape/TASK/METHOD`` (`entrolab.qlandscape`:
soft and plain Q along 1-D slices of the action space at states visited by
each trained policy, and a 2-D map for the first seed).

Tables (``tables/*.parquet``): runs, curves (learning curves), summary (per
task x method x evaluation mode: mean, median and interquartile mean of the
per-seed evaluation returns with percentile bootstrap intervals over seeds,
rliable's conventions), improvement (per task and pair of methods: the
probability that a run of one beats a run of the other, with a bootstrap
interval) and landscape_slices / landscape_maps.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from entrolab.agents.options import OptionError
from entrolab.agents.options import build as build_options
from entrolab.agents.options import task_defaults
from entrolab.envs import make
from entrolab.study.config import Name, Strict, StudyConfigBase, ints_to_floats

ALGOS = ("ppo", "sac", "sac-adaent")
PosInt = Annotated[int, Field(ge=1)]


class MethodSpec(Strict):
    algo: Literal["ppo", "sac", "sac-adaent"]
    alpha: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("alpha", mode="before")
    @classmethod
    def _int_is_float(cls, v):
        return ints_to_floats(v)


class TaskSpec(Strict):
    env: str
    steps: PosInt | dict[str, PosInt]  # one budget, or per method label (and "default")
    env_options: dict[str, Any] = Field(default_factory=dict)
    note: str = ""  # e.g. "SAC is expected to do well here"
    # per method label: options over the method's own on this task (e.g. a per-task AdaEnt threshold)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def steps_for(self, method: str) -> int:
        if isinstance(self.steps, int):
            return self.steps
        return self.steps.get(method, self.steps.get("default", 0))


class ComparisonConfig(StudyConfigBase):
    kind: Literal["comparison"] = "comparison"
    seed: Annotated[int, Field(ge=0)] = 0  # of the evaluation and landscape keys
    seeds: PosInt = 5
    seed_offset: Annotated[int, Field(ge=0)] = 0
    eval_episodes: PosInt = 20
    chunks: PosInt = 20  # compiled calls per training unit (progress and learning-curve granularity)
    bootstrap: PosInt = 2000
    landscapes: bool = True  # SAC also learns a plain Q (unused by its actor) for the landscape figures
    landscape_states: PosInt = 3  # states per trained policy: evenly spaced times of one greedy episode
    tasks: dict[Name, TaskSpec] = Field(min_length=1)
    methods: dict[Name, MethodSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self):
        for tname, task in self.tasks.items():
            try:
                env, params = make(task.env, **task.env_options)
            except ValueError as err:
                raise ValueError(f"tasks.{tname}: {err}") from None
            if isinstance(task.steps, dict):
                unknown = sorted(set(task.steps) - set(self.methods) - {"default"})
                if unknown:
                    raise ValueError(f"tasks.{tname}.steps: {unknown} are not methods ({sorted(self.methods)}) "
                                     "or 'default'")
            unknown = sorted(set(task.options) - set(self.methods))
            if unknown:
                raise ValueError(f"tasks.{tname}.options: {unknown} are not methods ({sorted(self.methods)})")
            for mname in self.methods:
                if task.steps_for(mname) < 1:
                    raise ValueError(f"tasks.{tname}.steps: no budget for method {mname!r} (give it or a 'default')")
                try:
                    self.build(mname, tname)
                except (ValueError, TypeError) as err:
                    raise ValueError(f"methods.{mname} on task {tname}: {err}") from None
        return self

    # ---- what a unit trains --------------------------------------------------------
    def build(self, method: str, task: str):
        """(algorithm config, hyperparameters) of `method` on `task`: its options applied over the
        algorithm's dataclass defaults (`entrolab.agents.options.build`: clear errors for bad options),
        with what the study decides fixed. A task's defaults (`options.task_defaults`, e.g. PPO's
        initial log-std) apply unless the method's options give the same key; the task's options for
        this method (``[tasks.NAME.options.METHOD]``) apply over both."""
        spec = self.methods[method]
        why = "is set by the study (steps come from the task, alpha from the method, adaent from algo)"
        reserved = {"total_timesteps": why, "ent_coef": why, "alpha": why, "adaent": why}
        if spec.algo == "ppo":
            fixed = {"entropy_schedule": "constant"}
        else:
            fixed = {"plain_critic": self.landscapes and spec.algo == "sac"}
        reserved.update({k: why for k in fixed})
        t = self.tasks[task]
        env, env_params = make(t.env, **t.env_options)
        try:
            values = {**task_defaults(spec.algo, env, env_params), **spec.options, **t.options.get(method, {})}
            config, hparams = build_options(spec.algo, values, total_timesteps=t.steps_for(method), reserved=reserved)
        except OptionError as err:
            raise ValueError("; ".join(err.errors)) from None
        config = dataclasses.replace(config, **fixed)
        if spec.algo != "ppo" and config.auto_alpha and spec.alpha <= 0:
            raise ValueError("with auto_alpha the alpha is the initial temperature and must be > 0")
        return config, hparams

    def learns_plain_q(self, method: str) -> bool:
        spec = self.methods[method]
        return spec.algo == "sac-adaent" or (spec.algo == "sac" and self.landscapes)

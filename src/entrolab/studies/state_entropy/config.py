"""The config of a state-entropy study (``kind = "state-entropy"``): one TOML file, validated whole.

    kind = "state-entropy"
    name = "room-quick"
    env = "room"                 # "room" (continuous) or "minigrid_room" (the authors' grid): `room_layout`
    steps = 200_000              # env steps per agent
    seeds = 10
    methods = ["none", "policy", "state", "both"]
    ppo = { num_envs = 32, num_steps = 64 }            # PPO options (`entrolab options ppo`)

    [select]                     # each coefficient: the largest that costs < max_cost of nominal return
    policy = [0.001, 0.003, 0.01, 0.03, 0.1]           # alpha candidates (policy entropy)
    state = [0.003, 0.01, 0.03, 0.1, 0.3]              # beta candidates (k-NN state entropy)
    max_cost = 0.05
    seeds = 3

    [bonus]                      # the k-NN state-entropy bonus (PPO's state_entropy_* options)
    k = 5
    features = [0, 1]            # observation coordinates: the room's position
    target = "advantage"

    rollout_counts = [4, 8, 16, 32]     # the state method retrained with each rollout count

    [evaluate]
    episodes = 200
    layouts = ["nominal", "wall", "elbow", "blocks", "moved_goal"]

Every mistake is a `StudyConfigError` naming the key, before any work.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from entrolab.study.config import Strict, StudyConfigBase, ints_to_floats

PosInt = Annotated[int, Field(ge=1)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
METHODS = ("none", "policy", "state", "both")


class SelectSpec(Strict):
    policy: list[PosFloat] = Field(default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1], min_length=1)
    state: list[PosFloat] = Field(default_factory=lambda: [0.003, 0.01, 0.03, 0.1, 0.3], min_length=1)
    max_cost: Annotated[float, Field(gt=0, lt=1)] = 0.05
    seeds: PosInt = 3

    @field_validator("policy", "state", mode="before")
    @classmethod
    def _floats(cls, v):
        return ints_to_floats(v)

    @field_validator("policy", "state")
    @classmethod
    def _distinct(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"values must be distinct, got {v}")
        return sorted(v)


class BonusSpec(Strict):
    k: PosInt = 5
    features: list[Annotated[int, Field(ge=0)]] | None = Field(default_factory=lambda: [0, 1])
    target: Literal["advantage", "reward"] = "advantage"


class EvaluateSpec(Strict):
    episodes: PosInt = 200
    layouts: list[Literal["nominal", "wall", "elbow", "blocks", "moved_goal"]] = Field(
        default_factory=lambda: ["nominal", "wall", "elbow", "blocks", "moved_goal"], min_length=1)
    heatmap_bins: Annotated[int, Field(ge=2, le=200)] = 32

    @field_validator("layouts")
    @classmethod
    def _nominal_first(cls, v):
        if "nominal" not in v or len(set(v)) != len(v):
            raise ValueError(f"layouts must be distinct and include 'nominal', got {v}")
        return ["nominal", *[x for x in v if x != "nominal"]]


def room_layout(env):
    """The `layout(name, params, key)` of a room env (the continuous room's or the MiniGrid room's); a
    ValueError for any other env."""
    from entrolab.envs import minigrid_room, room

    if isinstance(env, room.Room):
        return room.layout
    if isinstance(env, minigrid_room.MiniGridRoom):
        return minigrid_room.layout
    raise ValueError(f"the layouts are the rooms'; got {env.name!r} (use 'room' or 'minigrid_room')")


class StateEntropyConfig(StudyConfigBase):
    kind: Literal["state-entropy"] = "state-entropy"
    seed: Annotated[int, Field(ge=0)] = 0
    bootstrap: PosInt = 2000
    env: str = "room"
    env_options: dict[str, Any] = Field(default_factory=dict)
    steps: PosInt = 200_000
    seeds: PosInt = 10
    methods: list[Literal["none", "policy", "state", "both"]] = Field(default_factory=lambda: list(METHODS),
                                                                       min_length=1)
    ppo: dict[str, Any] = Field(default_factory=lambda: {"num_envs": 32, "num_steps": 64})
    select: SelectSpec = Field(default_factory=SelectSpec)
    bonus: BonusSpec = Field(default_factory=BonusSpec)
    rollout_counts: list[PosInt] = Field(default_factory=list)
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)

    def ppo_options(self, state: bool, rollouts: int | None = None) -> dict[str, Any]:
        """The PPO options of a run: the config's, plus the k-NN bonus when `state`."""
        opts = dict(self.ppo)
        if state:
            opts.update(state_entropy_k=self.bonus.k, state_entropy_target=self.bonus.target,
                        state_entropy_features=self.bonus.features, state_entropy_rollouts=rollouts)
        return opts

    @model_validator(mode="after")
    def _check(self):
        from entrolab.agents.options import OptionError, build
        from entrolab.envs import make

        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must be distinct, got {self.methods}")
        try:
            env, _ = make(self.env, **self.env_options)
        except ValueError as err:
            raise ValueError(f"env: {err}") from None
        try:
            room_layout(env)
        except ValueError as err:
            raise ValueError(f"env: {err}") from None
        reserved = {"ent_coef": "set by [select]", "state_ent_coef": "set by [select]",
                    **{f"state_entropy_{k}": "set by [bonus]" for k in ("k", "features", "rollouts", "target")}}
        for rollouts in [None, *self.rollout_counts]:
            try:
                build("ppo", self.ppo_options(True, rollouts), total_timesteps=self.steps)
            except OptionError as err:
                raise ValueError(("rollout_counts: " if rollouts else "ppo: ") + "; ".join(err.errors)) from None
        try:
            build("ppo", self.ppo, total_timesteps=self.steps, reserved=reserved)
        except OptionError as err:
            raise ValueError("ppo: " + "; ".join(err.errors)) from None
        if self.rollout_counts and "state" not in self.methods:
            raise ValueError("rollout_counts retrain the 'state' method: add it to methods")
        if len(set(self.rollout_counts)) != len(self.rollout_counts):
            raise ValueError(f"rollout_counts must be distinct, got {self.rollout_counts}")
        return self

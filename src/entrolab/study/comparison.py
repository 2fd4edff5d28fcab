"""A comparison study: several learning algorithms on several tasks, many seeds each.

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
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ALGOS = ("ppo", "sac", "sac-adaent")
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
PosInt = Annotated[int, Field(ge=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MethodSpec(_Strict):
    algo: Literal["ppo", "sac", "sac-adaent"]
    alpha: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("alpha", mode="before")
    @classmethod
    def _int_is_float(cls, v):
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class TaskSpec(_Strict):
    env: str
    steps: PosInt | dict[str, PosInt]  # one budget, or per method label (and "default")
    env_options: dict[str, Any] = Field(default_factory=dict)
    note: str = ""  # e.g. "SAC is expected to do well here"

    def steps_for(self, method: str) -> int:
        if isinstance(self.steps, int):
            return self.steps
        return self.steps.get(method, self.steps.get("default", 0))


class ComparisonConfig(_Strict):
    kind: Literal["comparison"] = "comparison"
    name: Name
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
        from entrolab.envs import make

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
        """(algorithm config, hyperparameters) of `method` on `task` (clear errors for bad options)."""
        spec, t = self.methods[method], self.tasks[task]
        steps = t.steps_for(method)
        if spec.algo == "ppo":
            from entrolab.agents.ppo import PPOConfig, PPOHParams

            cfg_cls, hp_cls, fixed = PPOConfig, PPOHParams, {"entropy_schedule": "constant"}
        else:
            from entrolab.agents.sac import SACConfig, SACHParams

            cfg_cls, hp_cls = SACConfig, SACHParams
            fixed = {"adaent": spec.algo == "sac-adaent",
                     "plain_critic": self.landscapes and spec.algo == "sac"}
        cfg_fields = {f.name for f in dataclasses.fields(cfg_cls)}
        hp_fields = {f.name for f in dataclasses.fields(hp_cls)}
        alpha_field = "ent_coef" if spec.algo == "ppo" else "alpha"
        reserved = {"total_timesteps", alpha_field, "adaent", "plain_critic"}
        cfg_kw, hp_kw = dict(fixed), {}
        for k, v in spec.options.items():
            if k in reserved:
                raise ValueError(f"option {k!r} is set by the study (steps come from the task, alpha from the "
                                 "method, adaent from algo)")
            if spec.algo != "ppo" and k in {"entropy_schedule", "ent_horizon"}:
                raise ValueError(f"option {k!r}: {spec.algo} has no entropy schedule (its alpha is fixed, or learned "
                                 "with auto_alpha = true)")
            if k in cfg_fields:
                cfg_kw[k] = tuple(v) if isinstance(v, list) else v
            elif k in hp_fields:
                hp_kw[k] = float(v) if isinstance(v, int) and not isinstance(v, bool) else v
            else:
                raise ValueError(f"unknown option {k!r} for {spec.algo}; known: {sorted(cfg_fields | hp_fields)}")
        config = cfg_cls(total_timesteps=steps, **cfg_kw)
        hparams = hp_cls(**hp_kw)
        if spec.algo == "ppo":
            hparams.check()
        else:
            hparams.check(config)
            if config.auto_alpha and spec.alpha <= 0:
                raise ValueError("with auto_alpha the alpha is the initial temperature and must be > 0")
        return config, hparams

    def learns_plain_q(self, method: str) -> bool:
        spec = self.methods[method]
        return spec.algo == "sac-adaent" or (spec.algo == "sac" and self.landscapes)


# ---- units -------------------------------------------------------------------------
def plan_units(config: ComparisonConfig) -> list:
    from entrolab.study.registry import Unit
    from entrolab.study.units import _fingerprint

    c = json.loads(config.model_dump_json())
    units = []
    for tname, task in c["tasks"].items():
        for mname, spec in c["methods"].items():
            train_id = f"train/{tname}/{mname}"
            fp = _fingerprint(task["env"], task["env_options"], config.tasks[tname].steps_for(mname), spec,
                              c["seeds"], c["seed_offset"], c["eval_episodes"], c["chunks"],
                              config.learns_plain_q(mname))
            units.append(Unit(train_id, "train", {"task": tname, "method": mname}, (), fp))
            if config.learns_plain_q(mname):
                units.append(Unit(f"landscape/{tname}/{mname}", "landscape", {"task": tname, "method": mname},
                                  (train_id,), _fingerprint(fp, c["seed"], c["landscape_states"])))
    return units


def _train(config: ComparisonConfig, study_dir: Path, unit, out: Path, progress) -> None:
    from entrolab.training import train_sweep

    task, method = unit.payload["task"], unit.payload["method"]
    algo_config, hparams = config.build(method, task)
    t = config.tasks[task]
    train_sweep(t.env, [config.methods[method].alpha], config.seeds, out, algo_config, hparams,
                dict(t.env_options), eval_episodes=config.eval_episodes, num_chunks=config.chunks,
                seed_offset=config.seed_offset, progress=progress)


def _landscape(config: ComparisonConfig, study_dir: Path, unit, out: Path, progress) -> None:
    import pandas as pd

    from entrolab.checkpoint import load_policy
    from entrolab.envs import make
    from entrolab.qlandscape import Landscape, landscape_states
    from entrolab.study.units import _write_parquet, unit_key

    task, method = unit.payload["task"], unit.payload["method"]
    tdir = study_dir / "train" / task / method
    runs = pd.read_parquet(tdir / "runs.parquet")
    env, env_params = make(config.tasks[task].env, **config.tasks[task].env_options)
    key = unit_key(config.seed, f"landscape/{task}")  # the same episode key for every method
    slices, maps = [], []
    for i, row in runs.iterrows():
        land = Landscape.from_checkpoint(load_policy(tdir / row["checkpoint"]))
        obs, times = landscape_states(land.policy, land.actor, env, env_params, key, config.landscape_states)
        table = land.slices(obs, num=81)
        table.insert(0, "time", times[table["state"].to_numpy()])
        table.insert(0, "seed", int(row["seed"]))
        slices.append(table)
        if i == 0 and land.policy.action_dim >= 2:
            for s in range(obs.shape[0]):
                hm = land.heatmap(obs[s], dims=(0, 1), num=41)
                xx, yy = np.meshgrid(hm["x"], hm["y"])
                maps.append(pd.DataFrame({
                    "seed": int(row["seed"]), "state": s, "time": int(times[s]), "dim_x": hm["dims"][0],
                    "dim_y": hm["dims"][1], "x": xx.ravel(), "y": yy.ravel(), "soft": hm["soft"].ravel(),
                    "plain": hm["plain"].ravel(), "density": hm["density"].ravel(),
                    "mean_x": hm["mean_action"][0], "mean_y": hm["mean_action"][1], "similarity": hm["similarity"],
                }))
    _write_parquet(pd.concat(slices, ignore_index=True), out / "slices.parquet")
    if maps:
        _write_parquet(pd.concat(maps, ignore_index=True), out / "maps.parquet")


UNIT_FUNCTIONS = {"train": _train, "landscape": _landscape}


# ---- tables ------------------------------------------------------------------------
TABLES = ("runs", "curves", "summary", "improvement", "equal_budget", "landscape_slices", "landscape_maps")
BUDGET_WINDOW = 0.2  # equal_budget: training returns logged in the last 20% of the common budget


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 for one run of each (the Mann-Whitney U statistic / (n m)):
    rliable's probability of improvement on one task."""
    x, y = np.asarray(x, float)[:, None], np.asarray(y, float)[None, :]
    return float(np.mean((x > y) + 0.5 * (x == y)))


def equal_budget(runs, curves, config, num_resamples: int):
    """Methods compared at the same number of env steps: per task, B = the smallest budget of
    any method; per run, the mean training episode return logged at env steps in
    [(1 - BUDGET_WINDOW) B, B] (the exploring policy's episodes; the last row before B if none is
    in that window); per task x method, the IQM over
    seeds with a bootstrap interval. When budgets differ (PPO on-policy, SAC off-policy), this
    separates "learns slower" from "learns something worse"."""
    import pandas as pd

    from entrolab.stats import bootstrap_ci, iqm

    rows = []
    for tname in config.tasks:
        b = int(runs.loc[runs["task"] == tname, "env_steps"].min())
        for mname in config.methods:
            sub = curves[(curves["task"] == tname) & (curves["method"] == mname) & (curves["env_steps"] <= b)
                         & curves["episode_return"].notna()]
            # the rows logged in the window, or the last one before it when a method logs coarsely
            start = min((1 - BUDGET_WINDOW) * b, sub["env_steps"].max()) if len(sub) else b
            per_seed = sub[sub["env_steps"] >= start].groupby("seed")["episode_return"].mean()
            row = {"task": tname, "method": mname, "budget": b, "n": len(per_seed)}
            if len(per_seed):
                ci = bootstrap_ci(per_seed.to_numpy(float), iqm, num_resamples, rng=0)
                row.update(iqm=ci.estimate, iqm_low=ci.low, iqm_high=ci.high, mean=float(per_seed.mean()))
            rows.append(row)
    return pd.DataFrame(rows)


def build_tables(study_dir: str | Path, config: ComparisonConfig, num_resamples: int | None = None) -> dict:
    import pandas as pd

    from entrolab.stats import bootstrap_ci, bootstrap_indices, iqm, percentile_interval
    from entrolab.study.analysis import _write

    study_dir = Path(study_dir)
    num_resamples = num_resamples or config.bootstrap
    tables_dir = study_dir / "tables"
    tables_dir.mkdir(exist_ok=True)
    runs, curves = [], []
    for tname in config.tasks:
        for mname, spec in config.methods.items():
            d = study_dir / "train" / tname / mname
            r = pd.read_parquet(d / "runs.parquet")
            r["checkpoint"] = [str(Path("train") / tname / mname / c) for c in r["checkpoint"]]
            r.insert(0, "method", mname)
            r.insert(0, "task", tname)
            runs.append(r)
            c = pd.read_parquet(d / "metrics.parquet")
            c.insert(0, "algo", spec.algo)
            c.insert(0, "method", mname)
            c.insert(0, "task", tname)
            curves.append(c)
    runs = pd.concat(runs, ignore_index=True)
    curves = pd.concat(curves, ignore_index=True)

    rows = []
    for (tname, mname), sub in runs.groupby(["task", "method"], sort=False):
        for mode, col in (("deterministic", "eval_return_det_mean"), ("stochastic", "eval_return_sto_mean")):
            x = sub[col].to_numpy(float)
            row = {"task": tname, "method": mname, "algo": config.methods[mname].algo, "mode": mode,
                   "n": len(x), "env_steps": int(sub["env_steps"].iloc[0])}
            for stat, fn in (("mean", np.mean), ("median", np.median), ("iqm", iqm)):
                ci = bootstrap_ci(x, fn, num_resamples, rng=0)
                row.update({stat: ci.estimate, f"{stat}_low": ci.low, f"{stat}_high": ci.high})
            row.update(min=float(x.min()), max=float(x.max()))
            rows.append(row)
    summary = pd.DataFrame(rows)

    rows = []
    methods = list(config.methods)
    for tname, sub in runs.groupby("task", sort=False):
        for a in methods:
            for b in methods:
                if a == b:
                    continue
                for mode, col in (("deterministic", "eval_return_det_mean"), ("stochastic", "eval_return_sto_mean")):
                    x = sub.loc[sub["method"] == a, col].to_numpy(float)
                    y = sub.loc[sub["method"] == b, col].to_numpy(float)
                    ix, iy = bootstrap_indices(len(x), num_resamples, 0), bootstrap_indices(len(y), num_resamples, 1)
                    reps = np.mean((x[ix][:, :, None] > y[iy][:, None, :]) + 0.5 * (x[ix][:, :, None] == y[iy][:, None, :]),
                                   axis=(1, 2))
                    low, high = percentile_interval(reps)
                    rows.append({"task": tname, "method": a, "versus": b, "mode": mode,
                                 "p_improvement": probability_of_improvement(x, y), "low": float(low),
                                 "high": float(high)})
    improvement = pd.DataFrame(rows)

    budget = equal_budget(runs, curves, config, num_resamples)

    units = plan_units(config)
    land_dirs = [study_dir / "units" / u.id for u in units if u.kind == "landscape"]

    def land_table(name):
        frames = []
        for d in land_dirs:
            if (d / name).exists():
                df = pd.read_parquet(d / name)
                _, tname, mname = d.relative_to(study_dir / "units").parts
                df.insert(0, "method", mname)
                df.insert(0, "task", tname)
                frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    out = dict(runs=runs, curves=curves, summary=summary, improvement=improvement, equal_budget=budget,
               landscape_slices=land_table("slices.parquet"), landscape_maps=land_table("maps.parquet"))
    for name, df in out.items():
        _write(df, tables_dir / f"{name}.parquet")
    return out

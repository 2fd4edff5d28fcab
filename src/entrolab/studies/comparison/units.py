"""The units of work of a comparison study and how each is executed.

- ``train/TASK/METHOD``: `entrolab.training.train_sweep` of one method on one
  task, all seeds in one compiled program -> ``train/TASK/METHOD/``
  (checkpoints, runs.parquet, metrics.parquet);
- ``landscape/TASK/METHOD`` (methods that learn a plain Q beside the soft one):
  soft and plain Q along 1-D slices of the action space at states of each
  trained policy's greedy episode, and a 2-D map for the first seed
  (`entrolab.measures.qlandscape`) -> ``units/landscape/TASK/METHOD/``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from entrolab.checkpoint import load_policy
from entrolab.envs import make
from entrolab.measures.qlandscape import Landscape, landscape_states
from entrolab.study.registry import Unit
from entrolab.study.units import fingerprint, fingerprint_view, unit_key, write_parquet
from entrolab.studies.comparison.config import ComparisonConfig
from entrolab.training import train_sweep


def plan(config: ComparisonConfig) -> list[Unit]:
    """Per task x method: a training unit, and a landscape unit where a plain Q is learned.

    A training unit's fingerprint hashes the algorithm's resolved config and hyperparameters
    (every option, defaults and task defaults included), so a change of entrolab's defaults
    retrains exactly the runs it changes. Options that change memory but no result (the
    config's ``MEMORY_ONLY``) are left out: changing them retrains nothing; so are options added
    later while at their ``NEUTRAL`` value (training as before they existed)."""
    c = json.loads(config.model_dump_json())
    units = []
    for tname, task in c["tasks"].items():
        for mname, spec in c["methods"].items():
            train_id = f"train/{tname}/{mname}"
            algo_config, hparams = config.build(mname, tname)
            resolved = fingerprint_view(dataclasses.asdict(algo_config), getattr(algo_config, "NEUTRAL", {}),
                                        getattr(algo_config, "COMPANIONS", {}),
                                        drop=getattr(algo_config, "MEMORY_ONLY", ()))
            hp = fingerprint_view(dataclasses.asdict(hparams), getattr(hparams, "NEUTRAL", {}))
            fp = fingerprint(task["env"], task["env_options"], spec["algo"], spec["alpha"],
                             resolved, hp,
                             c["seeds"], c["seed_offset"], c["eval_episodes"], c["chunks"])
            units.append(Unit(train_id, "train", {"task": tname, "method": mname}, (), fp))
            if config.learns_plain_q(mname):
                units.append(Unit(f"landscape/{tname}/{mname}", "landscape", {"task": tname, "method": mname},
                                  (train_id,), fingerprint(fp, c["seed"], c["landscape_states"])))
    return units


def output_path(unit: Unit) -> str:
    """A training sweep at ``train/TASK/METHOD`` (checkpoints, runs, metrics); landscapes under ``units/``."""
    return unit.id if unit.kind == "train" else f"units/{unit.id}"


def execute(config: ComparisonConfig, study_dir: Path, unit: Unit, out: Path, progress: Any = None) -> None:
    {"train": _train, "landscape": _landscape}[unit.kind](config, study_dir, unit, out, progress)


def _train(config: ComparisonConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    task, method = unit.payload["task"], unit.payload["method"]
    algo_config, hparams = config.build(method, task)
    t = config.tasks[task]
    train_sweep(t.env, [config.methods[method].alpha], config.seeds, out, algo_config, hparams,
                dict(t.env_options), eval_episodes=config.eval_episodes, num_chunks=config.chunks,
                seed_offset=config.seed_offset, progress=progress)


def _landscape(config: ComparisonConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
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
    write_parquet(pd.concat(slices, ignore_index=True), out / "slices.parquet")
    if maps:
        write_parquet(pd.concat(maps, ignore_index=True), out / "maps.parquet")




"""The units of a landscape study and how each is executed.

- ``gridworld/constant``: exact entropy-regularised policy gradient on the two-goal gridworld from
  every initialisation x tau x step size, one vmapped program (`entrolab.tabular.gridworld.sweep`)
  -> ``units/gridworld/constant/`` (runs.parquet, curves.parquet, params.npz: initial and final
  parameters).
- ``gridworld/decay`` (with ``[gridworld] decay``): the same with tau_t = tau_0 factor^t.
- ``probes``: at the final policies of the first step size (and at their initialisations),
  random-perturbation probes of the regularised objective and of the return, their classification,
  the Hessian's extreme eigenvalues (Lanczos, and exactly: 108 parameters) and trace (Hutchinson,
  and exactly), and interpolations between solutions that reached different goals ->
  ``units/probes/`` (probes, classes, curvature, interpolation .parquet).

Randomness comes from the config's `seed` and the unit's name (`entrolab.study.units.unit_key`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from entrolab.checkpoint import load_policy
from entrolab.envs import make
from entrolab.measures.landscape import (
    checkpoint_objective, classify, dense_hessian, hessian_eigenvalues, hessian_trace, interpolate, label_fractions, perturbation_probe,
)
from entrolab.study.registry import Unit
from entrolab.study.units import fingerprint, unit_key, write_parquet
from entrolab.studies.landscape.config import LandscapeConfig
from entrolab.tabular.gridworld import objective, sweep, to_float64, two_goal_gridworld


def plan(config: LandscapeConfig) -> list[Unit]:
    c = json.loads(config.model_dump_json())
    grid = c["gridworld"]
    constant_fp = fingerprint({k: v for k, v in grid.items() if k != "decay"}, c["seed"])
    units = [Unit("gridworld/constant", "sweep", {"schedule": "constant"}, (), constant_fp)]
    if config.gridworld.decay is not None:
        units.append(Unit("gridworld/decay", "sweep", {"schedule": "decay"}, (), fingerprint(grid, c["seed"])))
    units.append(Unit("probes", "probes", {}, ("gridworld/constant",),
                      fingerprint(constant_fp, c["probes"], c["seed"])))
    if config.continuous is not None:
        cfp = fingerprint(c["continuous"], c["seed"])
        units.append(Unit("continuous/train", "ctrain", {}, (), cfp))
        units.append(Unit("continuous/probes", "cprobes", {}, ("continuous/train",), cfp))
    if config.policies is not None:
        ckpts = [(str(p), json.loads((p / "manifest.json").read_text())["params_sha256"])
                 for p in config.policies.checkpoints()]
        units.append(Unit("policies", "policies", {}, (), fingerprint(c["policies"], ckpts, c["seed"])))
    return units


def output_path(unit: Unit) -> str:
    return f"units/{unit.id}"


def execute(config: LandscapeConfig, study_dir: Path, unit: Unit, out: Path, progress: Any = None) -> None:
    {"sweep": _sweep, "probes": _probes, "policies": _policies, "ctrain": _continuous_train,
     "cprobes": _continuous_probes}[unit.kind](config, study_dir, unit, out, progress)


def gridworld(config: LandscapeConfig):
    g = config.gridworld
    return two_goal_gridworld(g.size, g.best_reward, g.second_reward, g.gamma)


# ---- gridworld sweeps ----------------------------------------------------------------------------
def _sweep(config: LandscapeConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    g = config.gridworld
    schedule = unit.payload["schedule"]
    with jax.enable_x64(True):  # gamma and the rewards in float64 (float32 rounding would stay in the cast)
        mdp, initial, names = gridworld(config)
    taus = g.taus if schedule == "constant" else [g.decay.tau]
    factor = 1.0 if schedule == "constant" else g.decay.factor
    task = progress.add_task(f"  gridworld {schedule}: {len(taus)} tau x {len(g.step_sizes)} steps x {g.inits} inits",
                             total=None) if progress is not None else None
    # the same initialisations for both schedules: the key is named for the sweep, not the unit
    res = sweep(mdp, initial, names, unit_key(config.seed, "gridworld/inits"), taus, g.step_sizes, g.inits,
                g.updates, g.init_scale, factor, g.record_every)
    if task is not None:
        progress.remove_task(task)
    t_idx, s_idx, i_idx = np.meshgrid(np.arange(len(taus)), np.arange(len(g.step_sizes)), np.arange(g.inits),
                                      indexing="ij")
    runs = pd.DataFrame({
        "schedule": schedule, "tau": np.asarray(taus)[t_idx.ravel()], "step_size": np.asarray(g.step_sizes)[s_idx.ravel()],
        "init": i_idx.ravel(), "final_return": res["final_return"].ravel(),
        "final_objective": res["final_objective"].ravel(), "p_best": res["p_best"].ravel(),
        "converged": res["converged"].ravel(), "stable": res["stable"].ravel()})
    runs["reached_best"] = runs["p_best"] > 0.5
    write_parquet(runs, out / "runs.parquet")
    curves = res["curves"]
    num_records = curves["return"].shape[-1]
    frame = {"schedule": schedule,
             "tau": np.repeat(runs["tau"].to_numpy(), num_records),
             "step_size": np.repeat(runs["step_size"].to_numpy(), num_records),
             "init": np.repeat(runs["init"].to_numpy(), num_records),
             "update": np.tile((np.arange(num_records) + 1) * g.record_every, len(runs))}
    for name in ("return", "objective", "grad_norm", "tau"):
        frame["tau_t" if name == "tau" else name] = curves[name].reshape(-1)
    write_parquet(pd.DataFrame(frame), out / "curves.parquet")
    np.savez(out / "params.npz", final_kernel=res["params"]["kernel"], final_bias=res["params"]["bias"],
             init_kernel=res["init_params"]["kernel"], init_bias=res["init_params"]["bias"])


def load_params(study_dir: Path, unit_id: str = "gridworld/constant") -> dict[str, np.ndarray]:
    with np.load(study_dir / "units" / unit_id / "params.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ---- probes --------------------------------------------------------------------------------------
def _probes(config: LandscapeConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    g, p = config.gridworld, config.probes
    params = load_params(study_dir)
    runs = pd.read_parquet(study_dir / "units" / "gridworld" / "constant" / "runs.parquet")
    key = unit_key(config.seed, "probes")
    rows, class_rows, curv_rows, interp = [], [], [], []
    task = progress.add_task("  probes", total=len(g.taus) * p.inits) if progress is not None else None
    with jax.enable_x64(True):
        mdp, initial, _ = gridworld(config)
        mdp, initial = to_float64(mdp, initial)

        def point(kind: str, t: int, i: int) -> dict:
            if kind == "init":
                return {"kernel": jnp.asarray(params["init_kernel"][i]), "bias": jnp.asarray(params["init_bias"][i])}
            return {"kernel": jnp.asarray(params["final_kernel"][t, 0, i]),
                    "bias": jnp.asarray(params["final_bias"][t, 0, i])}

        def fn(tau: float):
            return jax.jit(lambda q: objective(q, mdp, initial, tau))

        for t, tau in enumerate(g.taus):
            objectives = {"regularised": fn(tau), "return": fn(0.0)}
            for i in range(p.inits):
                for kind in ("init", "final"):
                    theta = point(kind, t, i)
                    for oname, f in objectives.items():
                        k = jax.random.fold_in(key, i)  # the same directions at every tau, point, objective
                        table = perturbation_probe(f, theta, k, p.directions, p.epsilons)
                        ident = {"tau": tau, "init": i, "point": kind, "objective": oname}
                        rows.append(table.assign(**ident))
                        kinds = classify(table)
                        kinds = kinds if isinstance(kinds, dict) else {float(p.epsilons[0]): kinds}
                        frac = label_fractions(table)
                        for _, r in frac.iterrows():
                            class_rows.append({**ident, "epsilon": float(r["epsilon"]),
                                               "class": kinds[float(r["epsilon"])],
                                               **{f"frac_{lab}": float(r[lab]) for lab in frac.columns[1:]}})
                curv_rows.append(_curvature(objectives["regularised"], point("final", t, i), tau, i,
                                            jax.random.fold_in(key, 10_000 + i), p))
                if task is not None:
                    progress.update(task, advance=1)
            interp.extend(_interpolations(runs, params, g, p, t, tau, objectives))
    if task is not None:
        progress.remove_task(task)
    write_parquet(pd.concat(rows, ignore_index=True), out / "probes.parquet")
    write_parquet(pd.DataFrame(class_rows), out / "classes.parquet")
    write_parquet(pd.DataFrame(curv_rows), out / "curvature.parquet")
    write_parquet(pd.concat(interp, ignore_index=True) if interp else pd.DataFrame(
        columns=["pair", "tau", "init_a", "init_b", "t", "regularised", "return"]), out / "interpolation.parquet")


def _curvature(f, theta, tau, init, key, p) -> dict:
    """The Hessian of the regularised objective at a final policy: exact eigenvalues and trace (the
    dense Hessian of 108 parameters), Lanczos' extreme eigenvalues and Hutchinson's trace."""
    dense = np.asarray(dense_hessian(f, theta))
    eig = np.linalg.eigvalsh(0.5 * (dense + dense.T))
    k1, k2 = jax.random.split(key)
    lanczos = hessian_eigenvalues(f, theta, k1, num_matvecs=p.lanczos, k=1)
    trace = hessian_trace(f, theta, k2, num_samples=p.hutchinson)
    return {"tau": tau, "init": init, "largest": float(eig[-1]), "smallest": float(eig[0]),
            "trace": float(eig.sum()), "lanczos_largest": float(lanczos["largest"][0]),
            "lanczos_smallest": float(lanczos["smallest"][0]), "hutchinson_trace": float(trace),
            "num_positive": int((eig > 1e-8 * max(1.0, abs(eig).max())).sum()),
            "num_negative": int((eig < -1e-8 * max(1.0, abs(eig).max())).sum())}


def _interpolations(runs: pd.DataFrame, params, g, p, t: int, tau: float, objectives) -> list[pd.DataFrame]:
    """J_tau and J_0 along the segment between two final policies of the first step size that reached
    different goals: the first tau = 0 solutions of each goal ("tau0_solutions", the same segment
    at every tau), and this tau's own ("own_solutions"), where both goals were reached."""
    step = g.step_sizes[0]
    out = []
    ts = np.linspace(-0.5, 1.5, p.interpolation_points)

    def pair(tau_index: int, tau_value: float):
        sub = runs[(runs["schedule"] == "constant") & np.isclose(runs["tau"], tau_value)
                   & np.isclose(runs["step_size"], step)].sort_values("init")
        best = sub[sub["reached_best"]]["init"].tolist()
        second = sub[~sub["reached_best"]]["init"].tolist()
        if not best or not second:
            return None
        a, b = int(best[0]), int(second[0])

        def theta(i):
            return {"kernel": jnp.asarray(params["final_kernel"][tau_index, 0, i]),
                    "bias": jnp.asarray(params["final_bias"][tau_index, 0, i])}

        return a, b, theta(a), theta(b)

    for name, (ti, tv) in {"tau0_solutions": (0, g.taus[0]), "own_solutions": (t, tau)}.items():
        if name == "tau0_solutions" and g.taus[0] != 0.0:
            continue
        found = pair(ti, tv)
        if found is None:
            continue
        a, b, pa, pb = found
        table = interpolate(objectives, pa, pb, ts)
        out.append(table.assign(pair=name, tau=tau, init_a=a, init_b=b))
    return out


# ---- trained policies ----------------------------------------------------------------------------
def _probe_checkpoint(loaded, env, env_params, spec, key, ident: dict, mode: str = "deterministic",
                      perturb_log_std: bool | None = None):
    """Probes of one checkpoint's sampled return: (probe rows, class rows)."""
    f, point = checkpoint_objective(loaded, env, env_params, spec.episodes, deterministic=mode == "deterministic",
                                    perturb_log_std=perturb_log_std)
    table = perturbation_probe(f, point, key, spec.directions, spec.epsilons, num_repeats=spec.repeats, sampled=True)
    kinds = classify(table)
    kinds = kinds if isinstance(kinds, dict) else {float(spec.epsilons[0]): kinds}
    frac = label_fractions(table)
    class_rows = []
    for _, r in frac.iterrows():
        eps = float(r["epsilon"])
        sub = table[np.isclose(table["epsilon"], eps)]
        class_rows.append({**ident, "epsilon": eps, "class": kinds[eps], "j_center": float(sub["j_center"].iloc[0]),
                           "noise_std": float(sub["noise_std"].iloc[0]),
                           "mean_curvature_proj": float(sub["curvature_proj"].mean()),
                           "mean_abs_gradient_proj": float(sub["gradient_proj"].abs().mean()),
                           **{f"frac_{lab}": float(r[lab]) for lab in frac.columns[1:]}})
    return table.assign(**ident), class_rows


def _noise_free(env_spec: dict):
    return make(env_spec["name"], **{**env_spec.get("overrides", {}), "obs_noise_std": 0.0, "action_noise_std": 0.0})


def _policies(config: LandscapeConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    """Probes of the sampled return of every checkpoint of another study, noise-free env, the same
    directions' key and episode key for every checkpoint (common random numbers across policies of
    one shape)."""
    spec = config.policies
    key = unit_key(config.seed, "policies")
    rows, class_rows = [], []
    ckpts = spec.checkpoints()
    task = progress.add_task("  policy probes", total=len(ckpts)) if progress is not None else None
    for path in ckpts:
        loaded = load_policy(path)
        env, env_params = _noise_free(loaded.manifest["env"])
        extra = loaded.manifest.get("extra", {})
        rel = Path(path).relative_to(spec.study)
        ident = {"checkpoint": str(rel), "variant": rel.parts[1] if len(rel.parts) > 3 else "",
                 "env": loaded.manifest["env"]["name"],
                 "algorithm": loaded.manifest.get("algorithm"), "alpha": float(extra.get("alpha", np.nan)),
                 "seed": int(extra.get("seed", -1))}
        table, classes = _probe_checkpoint(loaded, env, env_params, spec, key, ident, spec.mode)
        rows.append(table)
        class_rows.extend(classes)
        if task is not None:
            progress.update(task, advance=1)
    if task is not None:
        progress.remove_task(task)
    write_parquet(pd.concat(rows, ignore_index=True), out / "probes.parquet")
    write_parquet(pd.DataFrame(class_rows), out / "classes.parquet")


# ---- REINFORCE with a fixed std on a continuous system -------------------------------------------
def _continuous_train(config: LandscapeConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    from entrolab.agents.options import build
    from entrolab.training import train_sweep

    c = config.continuous
    rf_config, hp = build("reinforce", c.options, total_timesteps=c.steps)
    train_sweep(c.env, c.stds, c.seeds, out, rf_config, hp, dict(c.env_options), eval_episodes=c.eval_episodes,
                num_chunks=c.chunks, progress=progress, snapshots=c.snapshots)


def _continuous_probes(config: LandscapeConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    """Probes of every trained REINFORCE policy's sampled return at its initialisation, at the
    snapshots kept during training (point "mid@<env steps>") and at the end of training (the same
    directions and episodes for all), and J along the segment between the final policies of
    consecutive seeds of each std (common random numbers along the segment)."""
    import dataclasses

    c = config.continuous
    key = unit_key(config.seed, "continuous/probes")
    runs = pd.read_parquet(study_dir / "units" / "continuous" / "train" / "runs.parquet")
    rows, class_rows, interp = [], [], []
    task = progress.add_task("  continuous probes", total=len(runs)) if progress is not None else None
    finals = {}
    for _, run in runs.iterrows():
        loaded = load_policy(study_dir / "units" / "continuous" / "train" / run["checkpoint"])
        env, env_params = _noise_free(loaded.manifest["env"])
        init = {**loaded.arrays["init_policy"], "obs_norm": loaded.params["obs_norm"]}
        mids = sorted((int(k.rsplit("_", 1)[1]), k) for k in loaded.arrays if k.startswith("policy_at_"))
        points = [("init", 0, dataclasses.replace(loaded, params=init)),
                  *((f"mid@{steps}", steps, dataclasses.replace(loaded, params=loaded.arrays[k])) for steps, k in mids),
                  ("final", int(run["env_steps"]), loaded)]
        for point, steps, lp in points:
            ident = {"std": float(run["alpha"]), "seed": int(run["seed"]), "point": point, "env_steps": steps}
            table, classes = _probe_checkpoint(lp, env, env_params, c, key, ident, c.objective, perturb_log_std=False)
            rows.append(table)
            class_rows.extend(classes)
        finals[float(run["alpha"]), int(run["seed"])] = (loaded, env, env_params)
        if task is not None:
            progress.update(task, advance=1)
    ts = np.linspace(-0.5, 1.5, c.interpolation_points)
    k_int = jax.random.fold_in(key, 1)
    for std in c.stds:
        seeds = sorted(s for (a, s) in finals if a == float(std))
        for a, b in zip(seeds[:-1], seeds[1:]):
            la, env, env_params = finals[float(std), a]
            lb = finals[float(std), b][0]
            det = c.objective == "deterministic"
            f, pa = checkpoint_objective(la, env, env_params, c.episodes, deterministic=det, perturb_log_std=False)
            _, pb = checkpoint_objective(lb, env, env_params, c.episodes, deterministic=det, perturb_log_std=False)
            interp.append(interpolate({"return": f}, pa, pb, ts, key=k_int).assign(std=float(std), seed_a=a, seed_b=b))
    if task is not None:
        progress.remove_task(task)
    write_parquet(pd.concat(rows, ignore_index=True), out / "probes.parquet")
    write_parquet(pd.DataFrame(class_rows), out / "classes.parquet")
    write_parquet(pd.concat(interp, ignore_index=True) if interp else
                  pd.DataFrame(columns=["t", "return", "std", "seed_a", "seed_b"]), out / "interpolation.parquet")

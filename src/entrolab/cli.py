"""The `entrolab` command line.

Each command imports what it needs when it runs (JAX, the agents, the study
engine): `entrolab --help` and argument errors answer at once instead of after
importing JAX. These lazy imports close no cycle (tests/test_architecture.py).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import Progress

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()


@app.callback()
def _root() -> None:
    """entrolab: what entropy regularisation does to reinforcement-learning policies."""


@app.command()
def simulate(
    out: Path = typer.Option(Path("runs/simulate"), help="Output directory."),
    lorenz_time: float = typer.Option(100.0, min=1.0, help="Lorenz simulated time."),
    ks_time: float = typer.Option(200.0, min=1.0, help="KS simulated time."),
    seed: int = typer.Option(0, help="PRNG seed."),
) -> None:
    """Simulate both systems uncontrolled and write a figure of each under OUT."""
    import jax
    import numpy as np

    from entrolab.baselines import zero_action
    from entrolab.envs import make, replace_params
    from entrolab.envs.ks_equilibria import ks_equilibria
    from entrolab.report.physics import ks_spacetime_figure, lorenz_attractor_figure
    from entrolab.rollout import rollout

    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(seed)
    summary: dict = {}
    with Progress(console=console) as progress:
        task = progress.add_task("simulating", total=2)
        for name, t_end, init_std in [("lorenz", lorenz_time, 1.0), ("ks", ks_time, 0.3)]:
            env, params = make(name)
            num_steps = int(round(t_end / float(params.dt)))
            params = replace_params(params, name, max_steps_in_episode=num_steps + 1, init_std=init_std)
            progress.update(task, description=f"{name}: {num_steps} steps (jit + run)")
            traj = jax.jit(lambda k: rollout(env, params, zero_action(env, params), k, num_steps))(key)
            xs = np.concatenate([np.asarray(traj.x0)[None], np.asarray(traj.x)])
            if name == "lorenz":
                fig = lorenz_attractor_figure(xs, out / "lorenz_attractor.png")
            else:
                fig = ks_spacetime_figure(xs, float(params.length), float(params.dt), out / "ks_spacetime.png")
            np.save(out / f"{name}_trajectory.npy", xs)
            summary[name] = {
                "steps": num_steps, "dt": float(params.dt), "figure": fig.name,
                "max_abs_state": float(np.max(np.abs(xs))), "finite": bool(np.isfinite(xs).all()),
            }
            progress.advance(task)
    summary["ks_equilibria_L22"] = {
        k: {"max_residual": e.residual, "newton_iterations": e.newton_iterations}
        for k, e in ks_equilibria(22.0, 64).items()
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"[green]wrote[/green] {out}/lorenz_attractor.png, {out}/ks_spacetime.png, {out}/summary.json")


@app.command()
def envs(name: str = typer.Argument(None, help="Show the options of one environment.")) -> None:
    """List the registered environments, or the options (static and params) of NAME."""
    import dataclasses

    import numpy as np
    from rich.table import Table

    from entrolab.envs import make, registered
    from entrolab.envs.registry import static_options

    names = registered() if name is None else [name]
    for env_name in names:
        try:
            env, params = make(env_name)
        except ValueError as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(2) from err
        table = Table(title=f"{env_name}: {type(env).__name__}  (entrolab.envs.make({env_name!r}, **overrides))")
        for col in ("option", "kind", "default"):
            table.add_column(col)
        for opt, default in static_options(type(env)).items():
            table.add_row(opt, "static", repr(default))
        for field in dataclasses.fields(params):
            value = getattr(params, field.name)
            shown = f"array{tuple(np.shape(value))}" if np.ndim(value) else f"{float(value):g}"
            table.add_row(field.name, "param", shown)
        default_log_std = getattr(env, "default_init_log_std", None)
        if callable(default_log_std) and default_log_std(params) is not None:
            table.add_row("init_log_std (PPO)", "task default", f"{default_log_std(params):.4g}")
        console.print(table)


def _fail(errors: list[str]) -> NoReturn:
    """One `error:` line per message, then exit code 2 (no traceback)."""
    from rich.markup import escape

    for message in errors:
        console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


def _collect(errors: list[str], fn, *args, **kwargs):
    """`fn(*args, **kwargs)`, or None with the messages of its ValueError (an OptionError has
    several) appended to `errors`: every bad input is reported at once."""
    try:
        return fn(*args, **kwargs)
    except ValueError as err:
        errors.extend(getattr(err, "errors", None) or [str(err)])
        return None


def _parse_floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip() != ""]
    except ValueError as err:
        raise ValueError(f"{what} must be a comma-separated list of numbers, got {text!r}") from err


@app.command()
def train(
    env: str = typer.Option("lorenz", help="Environment: lorenz, ks, or gymnax:NAME (e.g. gymnax:Pendulum-v1)."),
    algo: str = typer.Option("ppo", help="Algorithm: ppo, sac, sac-adaent or reinforce."),
    alpha: str = typer.Option("0,0.01,0.05,0.1", help="Initial entropy coefficients (SAC: temperatures; REINFORCE: the fixed policy stds), comma-separated."),
    seeds: int = typer.Option(8, help="Seeds per coefficient."),
    steps: int = typer.Option(1_000_000, help="Env steps per agent."),
    out: Path = typer.Option(Path("runs/train"), help="Output directory."),
    env_option: list[str] = typer.Option([], help="Env override KEY=VALUE (repeatable), e.g. obs_noise_std=0.1."),
    eval_episodes: int = typer.Option(16, help="Evaluation episodes per agent (deterministic and sampled)."),
    set_: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE",
        help="Algorithm option (repeatable), e.g. --set batch_size=512 --set hidden_sizes=[256,256]; "
             "VALUE is JSON, TOML or a bare string. List the options with `entrolab options ALGO`.",
    ),
    options_file: Path = typer.Option(
        None, "--options", metavar="FILE.toml", help="TOML file of algorithm options (--set wins over it).",
    ),
) -> None:
    """Train agents over entropy coefficients (PPO) or temperatures (SAC) x seeds as one compiled program.

    Algorithm options: --set KEY=VALUE (repeatable) or --options FILE.toml; list them with `entrolab options ALGO`.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from entrolab.agents.options import ALGOS, build, load_options, parse_assignments, task_defaults
    from entrolab.envs import make
    from entrolab.training import train_sweep

    if algo not in ALGOS:
        _fail([f"unknown algorithm {algo!r}; available: {', '.join(ALGOS)}"])
    errors: list[str] = []
    alphas = _collect(errors, _parse_floats, alpha, "--alpha")
    env_overrides = _collect(errors, parse_assignments, env_option, flag="--env-option")
    file_values = _collect(errors, load_options, options_file) if options_file is not None else {}
    set_values = _collect(errors, parse_assignments, set_, flag="--set")
    if not errors:
        entropy_field = "ent_coef" if algo == "ppo" else "alpha"
        reserved = {"total_timesteps": "set by --steps",
                    entropy_field: "the entropy coefficients are set by --alpha (one agent per value)"}
        made = _collect(errors, make, env, **env_overrides)
        defaults = task_defaults(algo, *made) if made is not None else {}
        built = _collect(errors, build, algo, {**defaults, **file_values, **set_values}, total_timesteps=steps,
                         reserved=reserved)
    if errors:
        _fail(errors)
    config, hparams = built
    for key, value in defaults.items():
        if key not in file_values and key not in set_values:
            console.print(f"task default: {key} = {value:.4g} ({env}'s natural noise scale; --set {key}=... to change)")

    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps/agent"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    try:
        with Progress(*columns, console=console) as progress:
            runs = train_sweep(env, alphas, seeds, out, config, hparams, env_overrides,
                               eval_episodes=eval_episodes, progress=progress)
    except ValueError as err:
        _fail([str(err)])
    summary = runs.groupby("alpha")[["eval_return_det_mean", "eval_return_sto_mean"]].agg(["mean", "std"])
    console.print(summary.round(3).to_string())
    console.print(f"[green]wrote[/green] {out}/runs.parquet, {out}/metrics.parquet, {out}/checkpoints/")


@app.command("options")
def list_options(algo: str = typer.Argument(..., help="Algorithm: ppo, sac, sac-adaent or reinforce.")) -> None:
    """List the options of ALGO (for `entrolab train --set KEY=VALUE` or `--options FILE.toml`)."""
    from entrolab.agents.options import OptionError, describe

    try:
        typer.echo(describe(algo))
    except OptionError as err:
        _fail(list(err.errors))


@app.command()
def landscape(
    checkpoint: Path = typer.Argument(..., help="A SAC checkpoint directory (runs/.../checkpoints/RUN)."),
    out: Path = typer.Option(None, help="Output directory (default: CHECKPOINT/landscape)."),
    states: int = typer.Option(3, help="States of the policy's greedy episode (evenly spaced times)."),
    num: int = typer.Option(81, help="Points per action coordinate."),
    seed: int = typer.Option(0, help="Seed of the episode."),
) -> None:
    """Soft vs plain Q of a trained SAC agent over its action space: slices.parquet and figures."""
    import jax

    from entrolab.checkpoint import CheckpointError, load_policy
    from entrolab.envs import make
    from entrolab.measures.qlandscape import Landscape, landscape_states
    from entrolab.report.qlandscape import heatmap_figure, slices_figure

    try:
        loaded = load_policy(checkpoint)
        land = Landscape.from_checkpoint(loaded)
        env_spec = loaded.manifest.get("env", {})
        env, params = make(env_spec["name"], **env_spec.get("overrides", {}))
        obs, times = landscape_states(land.policy, land.actor, env, params, jax.random.key(seed), states)
        table = land.slices(obs, num=num)
    except (CheckpointError, ValueError, KeyError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    out = out or checkpoint / "landscape"
    out.mkdir(parents=True, exist_ok=True)
    table.insert(0, "time", times[table["state"].to_numpy()])
    table.to_parquet(out / "slices.parquet", index=False)
    labels = {s: f"t={int(t)}" for s, t in enumerate(times)}
    slices_figure(table, out / "slices.png", labels, title=str(checkpoint))
    if land.plain is None:
        console.print("[yellow]note:[/yellow] this agent has no plain critic (train with --set plain_critic=true or "
                      "--algo sac-adaent): the soft Q only")
    if land.policy.action_dim >= 2:
        heatmap_figure([land.heatmap(o, num=min(num, 61)) for o in obs], out / "map.png",
                       [labels[s] for s in range(len(times))], title=str(checkpoint))
    sim = table.groupby(["time", "dim"])["similarity"].first().unstack()
    console.print("soft/plain similarity per time (rows) and action coordinate (columns):")
    console.print(sim.round(3).to_string())
    console.print(f"[green]wrote[/green] {out}/slices.parquet and figures")


@app.command()
def measure(
    policy: Path = typer.Argument(..., help="An entrolab checkpoint directory or a Stable-Baselines3 .zip "
                                            "(PPO, A2C or SAC; read without unpickling)."),
    env: str = typer.Option(None, help="Evaluation environment (entrolab name, e.g. lorenz); default: a "
                                       "checkpoint's own. Required for an SB3 .zip."),
    env_option: list[str] = typer.Option([], help="Env override KEY=VALUE (repeatable)."),
    out: Path = typer.Option(None, help="Output directory (default: runs/measure/NAME)."),
    obs_noise: str = typer.Option("0.05,0.1,0.2,0.5", help="Observation-noise stds of the robustness grid "
                                                          "(0 is added as the reference)."),
    episodes: int = typer.Option(32, help="Episodes per noise std and mode."),
    modes: str = typer.Option("deterministic,stochastic", help="Evaluation modes: the bounded mean action "
                                                                "(deterministic) and/or sampled actions (stochastic)."),
    states: int = typer.Option(256, help="Visited states for the Lipschitz constant and the Fisher trace."),
    sharpness_sigmas: str = typer.Option("0.001,0.002,0.005,0.01,0.02,0.05,0.1,0.2,0.5",
                                         help="Perturbation scales sigma' of the sharpness grid."),
    sharpness_samples: int = typer.Option(8, help="Perturbations per sigma'."),
    sharpness_episodes: int = typer.Option(8, help="Episodes per perturbed return."),
    sharpness_tolerance: float = typer.Option(0.1, help="Allowed drop in return, relative to |J|."),
    obs_stats: Path = typer.Option(None, help="SB3 observation statistics: a .npz of mean and var "
                                              "(entrolab.interop.save_obs_stats writes one)."),
    vecnormalize: Path = typer.Option(None, help="SB3 VecNormalize.save file (a pickle: needs --allow-pickle)."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Permit unpickling --vecnormalize (runs code "
                                                                    "from that file: only for a file you trust)."),
    seed: int = typer.Option(0, help="PRNG seed."),
) -> None:
    """Measure one trained policy: returns and excess risk under observation noise, norms, Lipschitz
    constant, Fisher trace and sharpness; parquet tables and a report under OUT."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from entrolab.agents.options import parse_assignments
    from entrolab.checkpoint import CheckpointError
    from entrolab.envs import make
    from entrolab.measuring import MeasureSettings, load_subject, measure_policy, settings_dict
    from entrolab.report.document import fmt_plain
    from entrolab.report.measure import write_measure_report

    errors: list[str] = []
    overrides = _collect(errors, parse_assignments, env_option, flag="--env-option")
    noise = _collect(errors, _parse_floats, obs_noise, "--obs-noise")
    sigmas = _collect(errors, _parse_floats, sharpness_sigmas, "--sharpness-sigmas")
    settings = None
    if noise is not None and sigmas is not None:
        settings = _collect(errors, MeasureSettings, obs_noise=tuple(noise), episodes=episodes,
                            modes=tuple(m.strip() for m in modes.split(",") if m.strip()), states=states,
                            sharpness_sigmas=tuple(sigmas), sharpness_samples=sharpness_samples,
                            sharpness_episodes=sharpness_episodes, sharpness_tolerance=sharpness_tolerance,
                            seed=seed)
    if not policy.exists():
        errors.append(f"policy {policy} does not exist (an entrolab checkpoint directory or an SB3 .zip)")
    elif policy.is_file() and env is None:
        errors.append("--env is required for a Stable-Baselines3 policy (the zip does not name an entrolab env)")
    if errors:
        _fail(errors)
    made = None
    if env is not None:
        made = _collect(errors, make, env, **overrides)
        if errors:
            _fail(errors)
    try:
        subject = load_subject(policy, env=made, vecnormalize=vecnormalize, allow_pickle=allow_pickle,
                               obs_stats=obs_stats)
    except (CheckpointError, ValueError, ImportError) as err:
        _fail([str(err)])
    env_name = env or subject.env_name
    if env is None:
        if env_name is None:
            _fail([f"{policy} does not name its env: pass --env"])
        overrides = {**subject.env_overrides, **overrides}
        made = _collect(errors, make, env_name, **overrides)
        if errors:
            _fail(errors)
    env_obj, env_params = made
    out = out or Path("runs") / "measure" / policy.stem
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    try:
        with Progress(*columns, console=console) as progress:
            tables = measure_policy(subject.policy, subject.params, env_obj, env_params, settings,
                                    init_params=subject.init_params, env_name=env_name, progress=progress)
    except ValueError as err:
        _fail([str(err)])
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_parquet(out / f"{name}.parquet", index=False)
    p = subject.policy
    meta = {"source": subject.source, "env": env_name, "env_overrides": overrides, "settings": settings_dict(settings),
            "policy": {"class": type(p).__name__, "obs_dim": p.obs_dim, "action_dim": p.action_dim,
                       "hidden_sizes": list(p.hidden_sizes), "activation": p.activation,
                       "action_bounding": p.action_bounding,
                       "state_dependent_std": bool(getattr(p, "state_dependent_std", False)),
                       "normalize_observations": bool(p.normalize_observations)},
            "tables": sorted(f"{name}.parquet" for name in tables)}
    (out / "measure.json").write_text(json.dumps(meta, indent=2, default=str))
    report_path = write_measure_report(out / "report", tables, meta)
    row = tables["complexity"].iloc[0]
    if "excess_risk" in tables:
        risk = tables["excess_risk"]
        mode = settings.modes[0]
        worst = risk[risk["mode"] == mode].sort_values("obs_noise_std").iloc[-1]
        console.print(f"{mode} return {fmt_plain(worst['return_reference'])}; at obs noise "
                      f"{fmt_plain(worst['obs_noise_std'])}: {fmt_plain(worst['return'])} "
                      f"(excess risk {fmt_plain(worst['excess_risk'], scale=worst['return_reference'])})")
    else:
        console.print(f"[yellow]note:[/yellow] {env_name} has no obs_noise_std: the robustness grid was left out")
    console.print(f"spectral product {fmt_plain(row['spectral_product'])}, Lipschitz max "
                  f"{fmt_plain(row['lipschitz_max'])}, Fisher trace mean {fmt_plain(row['fisher_total_mean'])}, "
                  f"sharpness sigma' {fmt_plain(row['sharpness_sigma'])}")
    console.print(f"[green]wrote[/green] {out}/{{{','.join(sorted(tables))}}}.parquet, {out}/measure.json, "
                  f"{report_path}")


class Executor(str, Enum):
    """Where `entrolab study` runs its units."""

    in_process = "in-process"
    ray = "ray"


@app.command()
def study(
    config: Path = typer.Argument(..., help="Study config (TOML), e.g. configs/lorenz-quick.toml."),
    out: Path = typer.Option(None, help="Study directory (default: runs/NAME). Rerun to resume."),
    no_report: bool = typer.Option(False, "--no-report", help="Build the tables but not the report."),
    executor: Executor = typer.Option(Executor.in_process, case_sensitive=False,
                                      help="Where units run: one by one in this process, or as tasks on a Ray "
                                           "cluster (the `ray` extra; the study dir must be on a filesystem "
                                           "shared by every node)."),
    address: str = typer.Option(None, help="With --executor ray: the cluster to connect to ('auto': the one "
                                           "`ray start --head` made; default: $RAY_ADDRESS, else a new local "
                                           "Ray instance)."),
    cpus_per_unit: float = typer.Option(None, help="With --executor ray: CPU cores each unit asks for "
                                                   "(default 1)."),
) -> None:
    """Run a study (train, perturb, measure, correlate, report); rerun the same command to resume."""
    from contextlib import nullcontext

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from entrolab.study.config import StudyConfigError, load_config
    from entrolab.study.runner import StudyError, compilation_cache, run_study

    ray_only = [name for name, value in (("--address", address), ("--cpus-per-unit", cpus_per_unit))
                if value is not None]
    if ray_only and executor is not Executor.ray:
        _fail([f"{' and '.join(ray_only)} {'is' if len(ray_only) == 1 else 'are'} for --executor ray "
               f"(this study runs {executor.value})"])
    if cpus_per_unit is not None and cpus_per_unit <= 0:
        _fail([f"--cpus-per-unit must be positive, not {cpus_per_unit:g}"])
    try:
        cfg = load_config(config)
    except StudyConfigError as err:
        console.print(f"[red]error:[/red] {escape(str(err))}")
        raise typer.Exit(2) from err
    out = out or Path("runs") / cfg.name
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn()]
    try:
        if executor is Executor.ray:
            from entrolab.study.ray_executor import RayExecutor

            runner = RayExecutor(address=address, num_cpus=1.0 if cpus_per_unit is None else cpus_per_unit)
            runner.start()  # before the study dir is touched: a cluster that cannot be reached is an error now
        else:
            runner = None  # run_study's default: in process
        compilation_cache(out)
        with runner or nullcontext(), Progress(*columns, console=console) as progress:
            run_study(cfg, out, executor=runner, progress=progress, report=not no_report)
    except (StudyConfigError, StudyError) as err:
        console.print(f"[red]error:[/red] {escape(str(err))}")
        raise typer.Exit(2) from err
    console.print(f"[green]study done:[/green] {out}/tables/*.parquet"
                  + ("" if no_report else f", {out}/report/index.html"))


@app.command()
def report(study_dir: Path = typer.Argument(..., help="A study directory (from `entrolab study`).")) -> None:
    """Rebuild the tables and the report of a finished study."""
    from entrolab.study.config import CONFIG_FILE
    from entrolab.study.registry import Registry
    from entrolab.study.report import write_report
    from entrolab.study.runner import REGISTRY_FILE
    from entrolab.study.tables import build_tables

    if not (study_dir / CONFIG_FILE).exists() or not (study_dir / REGISTRY_FILE).exists():
        console.print(f"[red]error:[/red] {study_dir} is not a study directory (no {CONFIG_FILE} or {REGISTRY_FILE})")
        raise typer.Exit(2)
    pending = [k for k, s in Registry(study_dir / REGISTRY_FILE).states().items() if s != "done"]
    if pending:
        console.print(f"[red]error:[/red] the study is not finished ({len(pending)} units not done); "
                      "run `entrolab study CONFIG --out DIR` to finish it")
        raise typer.Exit(2)
    build_tables(study_dir)
    path = write_report(study_dir)
    console.print(f"[green]wrote[/green] {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""The `entrolab` command line."""

from __future__ import annotations

import json
from pathlib import Path

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
        console.print(table)


def _parse_floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip() != ""]
    except ValueError as err:
        raise typer.BadParameter(f"{what} must be a comma-separated list of numbers, got {text!r}") from err


def _parse_env_options(options: list[str]) -> dict:
    out = {}
    for item in options:
        if "=" not in item:
            raise typer.BadParameter(f"--env-option takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value  # a string, e.g. target=E1
    return out


@app.command()
def train(
    env: str = typer.Option("lorenz", help="Environment: lorenz, ks, or gymnax:NAME (e.g. gymnax:Pendulum-v1)."),
    algo: str = typer.Option("ppo", help="Algorithm: ppo, sac or sac-adaent."),
    alpha: str = typer.Option("0,0.01,0.05,0.1", help="Initial entropy coefficients, comma-separated."),
    seeds: int = typer.Option(8, help="Seeds per coefficient."),
    steps: int = typer.Option(1_000_000, help="Env steps per agent."),
    out: Path = typer.Option(Path("runs/train"), help="Output directory."),
    env_option: list[str] = typer.Option([], help="Env override KEY=VALUE (repeatable), e.g. obs_noise_std=0.1."),
    num_envs: int = typer.Option(None, help="Parallel envs per agent (default: ppo 8, sac 1)."),
    num_steps: int = typer.Option(256, help="Rollout length per env."),
    epochs: int = typer.Option(10, help="Epochs per rollout."),
    minibatches: int = typer.Option(8, help="Minibatches per epoch."),
    hidden: str = typer.Option(None, help="Hidden layer widths, comma-separated (default: ppo 64,64, sac 256,256)."),
    activation: str = typer.Option(None, help="tanh, relu, gelu or silu (default: ppo tanh, sac relu)."),
    schedule: str = typer.Option(None, help="PPO entropy schedule: linear (decay to 0; the default) or constant."),
    ent_horizon: float = typer.Option(400_000, help="Env steps of the linear decay."),
    bounding: str = typer.Option("clip", help="Action bounding: clip or tanh."),
    normalize_obs: bool = typer.Option(True, help="Running observation normalisation."),
    lr: float = typer.Option(3e-4, help="Learning rate."),
    gamma: float = typer.Option(0.99, help="Discount."),
    gae_lambda: float = typer.Option(0.95, help="GAE lambda."),
    clip: float = typer.Option(0.2, help="PPO clip range."),
    vf_coef: float = typer.Option(0.5, help="Value loss coefficient."),
    max_grad_norm: float = typer.Option(0.5, help="Global gradient-norm clip."),
    init_log_std: float = typer.Option(0.0, help="Initial log-std of the policy."),
    eval_episodes: int = typer.Option(16, help="Evaluation episodes per agent (deterministic and sampled)."),
    buffer_size: int = typer.Option(1_000_000, help="SAC: replay buffer capacity."),
    batch_size: int = typer.Option(256, help="SAC: transitions per gradient step."),
    learning_starts: int = typer.Option(10_000, help="SAC: random-action steps before learning."),
    auto_alpha: bool = typer.Option(False, help="SAC: learn alpha toward the target entropy (--alpha = initial)."),
    adaent_threshold: float = typer.Option(0.9, help="SAC-AdaEnt: cosine threshold in [-1, 1]."),
    adaent_actions: int = typer.Option(100, help="SAC-AdaEnt: actions sampled per state (K >= 2)."),
    log_interval: int = typer.Option(1000, help="SAC: iterations per logged row."),
    plain_critic: bool = typer.Option(False, help="SAC: also learn the plain Q (for `entrolab landscape`)."),
) -> None:
    """Train agents over entropy coefficients (PPO) or temperatures (SAC) x seeds as one compiled program."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from entrolab.agents.ppo import PPOConfig, PPOHParams
    from entrolab.training import train_sweep

    if algo not in ("ppo", "sac", "sac-adaent"):
        console.print(f"[red]error:[/red] unknown algorithm {algo!r}; available: ppo, sac, sac-adaent")
        raise typer.Exit(2)
    try:
        alphas = _parse_floats(alpha, "--alpha")
        widths = None if hidden is None else tuple(int(w) for w in _parse_floats(hidden, "--hidden"))
        if algo != "ppo":
            from entrolab.agents.sac import SACConfig, SACHParams

            if schedule is not None:
                raise ValueError(f"--schedule: {algo} has no entropy schedule (its alpha is fixed, or learned "
                                 "with --auto-alpha)")

            config = SACConfig(
                num_envs=num_envs or 1, total_timesteps=steps, buffer_size=buffer_size, batch_size=batch_size,
                learning_starts=learning_starts, hidden_sizes=widths or (256, 256), activation=activation or "relu",
                auto_alpha=auto_alpha, adaent=algo == "sac-adaent", adaent_num_actions=adaent_actions,
                log_interval=log_interval, plain_critic=plain_critic,
            )
            hparams = SACHParams(gamma=gamma, adaent_threshold=adaent_threshold).check(config)
        columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps/agent"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        if algo == "ppo":
            config = PPOConfig(
                num_envs=num_envs or 8, num_steps=num_steps, total_timesteps=steps, num_epochs=epochs,
                num_minibatches=minibatches, hidden_sizes=widths or (64, 64), activation=activation or "tanh",
                action_bounding=bounding, normalize_observations=normalize_obs,
                entropy_schedule=schedule or "linear",
            )
            hparams = PPOHParams(learning_rate=lr, gamma=gamma, gae_lambda=gae_lambda, clip_eps=clip,
                                 vf_coef=vf_coef, ent_horizon=ent_horizon, max_grad_norm=max_grad_norm,
                                 init_log_std=init_log_std).check()
        with Progress(*columns, console=console) as progress:
            runs = train_sweep(env, alphas, seeds, out, config, hparams, _parse_env_options(env_option),
                               eval_episodes=eval_episodes, progress=progress)
    except (ValueError, typer.BadParameter) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    summary = runs.groupby("alpha")[["eval_return_det_mean", "eval_return_sto_mean"]].agg(["mean", "std"])
    console.print(summary.round(3).to_string())
    console.print(f"[green]wrote[/green] {out}/runs.parquet, {out}/metrics.parquet, {out}/checkpoints/")


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
    from entrolab.qlandscape import Landscape, heatmap_figure, landscape_states, slices_figure

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
        console.print("[yellow]note:[/yellow] this agent has no plain critic (train with --plain-critic or "
                      "--algo sac-adaent): the soft Q only")
    if land.policy.action_dim >= 2:
        heatmap_figure([land.heatmap(o, num=min(num, 61)) for o in obs], out / "map.png",
                       [labels[s] for s in range(len(times))], title=str(checkpoint))
    sim = table.groupby(["time", "dim"])["similarity"].first().unstack()
    console.print("soft/plain similarity per time (rows) and action coordinate (columns):")
    console.print(sim.round(3).to_string())
    console.print(f"[green]wrote[/green] {out}/slices.parquet and figures")


def _compilation_cache(out: Path) -> None:
    """JAX's persistent compilation cache, so that a resumed study does not compile again:
    OUT/.jax_cache, or $ENTROLAB_JAX_CACHE (an empty value turns it off)."""
    import os

    import jax

    path = os.environ.get("ENTROLAB_JAX_CACHE", str(out / ".jax_cache"))
    if path:
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@app.command()
def study(
    config: Path = typer.Argument(..., help="Study config (TOML), e.g. configs/lorenz-quick.toml."),
    out: Path = typer.Option(None, help="Study directory (default: runs/NAME). Rerun to resume."),
    no_report: bool = typer.Option(False, "--no-report", help="Build the tables but not the report."),
) -> None:
    """Run a study (train, perturb, measure, correlate, report); rerun the same command to resume."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from entrolab.study.config import StudyConfigError, load_config
    from entrolab.study.runner import StudyError, run_study

    try:
        cfg = load_config(config)
    except StudyConfigError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    out = out or Path("runs") / cfg.name
    _compilation_cache(out)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn()]
    try:
        with Progress(*columns, console=console) as progress:
            run_study(cfg, out, progress=progress, report=not no_report)
    except (StudyConfigError, StudyError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    console.print(f"[green]study done:[/green] {out}/tables/*.parquet"
                  + ("" if no_report else f", {out}/report/index.html"))


@app.command()
def report(study_dir: Path = typer.Argument(..., help="A study directory (from `entrolab study`).")) -> None:
    """Rebuild the tables and the report of a finished study."""
    from entrolab.study.analysis import build_tables
    from entrolab.study.registry import Registry
    from entrolab.study.report import write_report
    from entrolab.study.runner import REGISTRY_FILE
    from entrolab.study.units import CONFIG_FILE

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

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""Regenerate the physics-validation figures and numbers of docs/validation.md.

    .venv/bin/python docs/scripts/validation_physics.py           # ~5 min on 2 CPU cores
    .venv/bin/python docs/scripts/validation_physics.py --quick   # smoke run, small ensembles

Writes into docs/figures/ (PNG, matplotlib Agg):
    physics_lyapunov_lorenz.png    running Lyapunov exponents of Lorenz-63
    physics_lyapunov_ks.png        running largest exponent of KS (L = 22)
    physics_etdrk4_convergence.png ETDRK4 error vs sub-step, slope-4 guide
    physics_float32_error.png      float32 vs float64 error growth, both systems
    physics_ks_equilibria.png      E1, E2, E3 profiles
and prints every number quoted in docs/validation.md. All runs are float64
except the float32 trajectories; everything is seeded (deterministic on CPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

from entrolab.envs import make  # noqa: E402
from entrolab.envs.ks import ks_rhs  # noqa: E402
from entrolab.envs.ks_equilibria import ks_equilibria  # noqa: E402
from entrolab.measures import (  # noqa: E402
    iterate,
    largest_lyapunov_exponent,
    lyapunov_spectrum,
    uncontrolled_step,
)

FIGURES = Path(__file__).resolve().parents[1] / "figures"

SPROTT_LORENZ = (0.9056, 0.0, -14.5723)
LORENZ_SUM = -(10.0 + 1.0 + 8.0 / 3.0)
KS_LAMBDA1_LITERATURE = {"Cvitanovic et al. 2010": 0.048, "Edson et al. 2019": 0.043}
KS_EIGENVALUES_PUBLISHED = {"E1": 0.1308 + 0.3341j, "E2": 0.1390 + 0.2384j, "E3": 0.0933 + 0.0j}


def lorenz_initial_states(num: int, seed: int) -> jax.Array:
    return jnp.array([1.0, 1.0, 20.0]) + jax.random.normal(jax.random.key(seed), (num, 3))


def ks_initial_fields(env, params, num: int, seed: int) -> jax.Array:
    x = env.grid(params)
    n = jnp.arange(1, 5)[:, None]
    a = 0.5 * jax.random.normal(jax.random.key(seed), (num, 2, 4, 1))
    phase = 2 * jnp.pi * n * x / params.length
    return jnp.sum(a[:, 0] * jnp.cos(phase) + a[:, 1] * jnp.sin(phase), axis=1)


def trajectory(step, x0, num_steps):
    def body(x, _):
        x = step(x)
        return x, x

    return jax.lax.scan(body, x0, None, length=num_steps)[1]


def fluctuation_constant(running: np.ndarray, times: np.ndarray, t_min: float) -> float:
    """C in std_over_trajectories(estimate over [0, T]) ~ C / sqrt(T), fitted for T >= t_min."""
    std = running.std(axis=0, ddof=1)
    keep = times >= t_min
    return float(np.exp(np.mean(np.log(std[keep] * np.sqrt(times[keep])))))


# ---------------------------------------------------------------------------
def lorenz_lyapunov(num_traj: int, num_steps: int, record_every: int = 100):
    print("\n== (a) Lorenz-63 Lyapunov spectrum (QR method on jacfwd of env.flow), float64")
    with jax.enable_x64(True):
        env, params = make("lorenz")
        run = jax.jit(jax.vmap(
            lambda p, x: lyapunov_spectrum(env, p, x, num_steps, 1000, record_every=record_every),
            in_axes=(None, 0)))
        t0 = time.time()
        res = run(params, lorenz_initial_states(num_traj, seed=1))
        exps, running = np.asarray(res.exponents), np.asarray(res.running)
        elapsed = time.time() - t0
        sums = {}
        for n in (5, 20):
            e, p = make("lorenz", num_substeps=n)
            r = jax.jit(lambda p, x: lyapunov_spectrum(e, p, x, 2000, 1000))(p, jnp.array([1.0, 1.0, 20.0]))
            sums[n] = float(np.sum(r.exponents))
    dt = float(params.dt)
    times = dt * record_every * np.arange(1, running.shape[1] + 1)
    run_time = num_steps * dt
    mean, std = exps.mean(0), exps.std(0, ddof=1)
    sem = std / np.sqrt(num_traj)
    c = fluctuation_constant(running[:, :, 0], times, 100.0)
    print(f"  {num_traj} trajectories x {run_time:g} time units (dt = {dt}, RK4 h = 0.01), "
          f"1000 transient steps; {elapsed:.0f} s")
    for i, name in enumerate(("lambda_1", "lambda_2", "lambda_3")):
        print(f"  {name} = {mean[i]:+.5f} +- {sem[i]:.5f} (sem; per-trajectory std {std[i]:.5f}); "
              f"Sprott {SPROTT_LORENZ[i]:+.4f}")
    print(f"  sum = {exps.sum(1).mean():.6f} (spread {np.ptp(exps.sum(1)):.1e}); "
          f"-(sigma+1+beta) = {LORENZ_SUM:.6f}; offset {exps.sum(1).mean() - LORENZ_SUM:+.2e}")
    print(f"  sum offset vs RK4 sub-steps: 5 -> {sums[5] - LORENZ_SUM:+.2e}, "
          f"20 -> {sums[20] - LORENZ_SUM:+.2e} (100 time units)")
    print(f"  fluctuation of lambda_1 over a run of length T: std ~ {c:.3f} / sqrt(T)")

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for i, ax in enumerate(axes[:2]):
        k = 0 if i == 0 else 2
        ax.semilogx(times, running[:, :, k].T, color="tab:blue", lw=0.5, alpha=0.5)
        ax.semilogx(times, running[:, :, k].mean(0), color="k", lw=1.5, label="ensemble mean")
        ax.axhline(SPROTT_LORENZ[k], color="tab:red", ls="--", label=f"Sprott {SPROTT_LORENZ[k]}")
        ax.set(xlabel="averaging time T", ylabel=f"running $\\lambda_{k + 1}$",
               title=f"Lorenz-63 $\\lambda_{k + 1}$ ({num_traj} trajectories)")
        ax.set_ylim(SPROTT_LORENZ[k] - 0.1, SPROTT_LORENZ[k] + 0.1)
        ax.legend(fontsize=8)
    ax = axes[2]
    ax.loglog(times, running[:, :, 0].std(0, ddof=1), label="std of running $\\lambda_1$")
    ax.loglog(times, c / np.sqrt(times), "k--", label=f"{c:.2f} / $\\sqrt{{T}}$")
    ax.set(xlabel="averaging time T", ylabel="spread across trajectories",
           title="finite-time spread (sets test tolerances)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIGURES / "physics_lyapunov_lorenz.png", dpi=120)
    plt.close(fig)
    return mean, sem


def ks_lyapunov(num_traj: int, num_steps: int, record_every: int = 200):
    print("\n== (b) KS (L = 22, N = 64) largest Lyapunov exponent (jvp tangent propagation), float64")
    with jax.enable_x64(True):
        env, params = make("ks")
        x0 = ks_initial_fields(env, params, num_traj, seed=11)
        v0 = jax.random.normal(jax.random.key(12), x0.shape)
        run = jax.jit(jax.vmap(
            lambda p, x, v: largest_lyapunov_exponent(env, p, x, v, num_steps, 4000,
                                                      record_every=record_every),
            in_axes=(None, 0, 0)))
        t0 = time.time()
        res = run(params, x0, v0)
        lam, running = np.asarray(res.exponents), np.asarray(res.running)
        elapsed = time.time() - t0
    dt = float(params.dt)
    times = dt * record_every * np.arange(1, running.shape[1] + 1)
    mean, std = lam.mean(), lam.std(ddof=1)
    sem = std / np.sqrt(num_traj)
    c = fluctuation_constant(running, times, 200.0)
    print(f"  {num_traj} trajectories x {num_steps * dt:g} time units after 200 of transient; {elapsed:.0f} s")
    print(f"  lambda_1 = {mean:.5f} +- {sem:.5f} (sem); per-trajectory std {std:.5f}; "
          f"min {lam.min():.4f}, max {lam.max():.4f}")
    print(f"  literature: {KS_LAMBDA1_LITERATURE}")
    print(f"  fluctuation over a run of length T: std ~ {c:.3f} / sqrt(T)")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    ax = axes[0]
    ax.semilogx(times, running.T, color="tab:blue", lw=0.4, alpha=0.4)
    ax.semilogx(times, running.mean(0), color="k", lw=1.5, label=f"ensemble mean ({mean:.4f})")
    ax.axhspan(0.043, 0.048, color="tab:red", alpha=0.2, label="literature 0.043-0.048")
    ax.set_ylim(0.0, 0.1)
    ax.set(xlabel="averaging time T", ylabel="running $\\lambda_1$",
           title=f"KS L = 22: $\\lambda_1$ ({num_traj} trajectories)")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.loglog(times, running.std(0, ddof=1), label="std of running $\\lambda_1$")
    ax.loglog(times, c / np.sqrt(times), "k--", label=f"{c:.2f} / $\\sqrt{{T}}$")
    ax.set(xlabel="averaging time T", ylabel="spread across trajectories",
           title="finite-time spread (sets test tolerances)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIGURES / "physics_lyapunov_ks.png", dpi=120)
    plt.close(fig)
    return mean, sem, std


# ---------------------------------------------------------------------------
def etdrk4_convergence():
    print("\n== (c) ETDRK4 convergence in the sub-step h = 0.05 / n, float64 (reference n = 512)")
    import exponax

    action = jnp.array([0.8, -0.5, 0.3, -0.9, 0.6, 0.1, -0.4, 0.7])
    substeps = [1, 2, 4, 8, 16, 32]
    with jax.enable_x64(True):
        env, params = make("ks")
        u0 = jax.jit(lambda p, u: iterate(uncontrolled_step(env, p), u, 2000))(
            params, ks_initial_fields(env, params, 1, 0)[0])
        forcing = env.actuation(action, params)

        def solve(n, f, num_control_steps):
            e, p = make("ks", num_substeps=n)
            run = jax.jit(lambda p, u, f: iterate(lambda v: e.flow(v, f, p), u, num_control_steps))
            return run(p, u0, f)

        def exp_solve(n):
            stepper = exponax.stepper.KuramotoSivashinskyConservative(
                1, 22.0, 64, 0.05 / n, order=4, dealiasing_fraction=1.0, num_circle_points=16)
            return jax.jit(lambda u: exponax.repeat(stepper, 20 * n)(u))(u0[None])[0]

        curves = {}
        for label, f, k in [("forced, 20 control steps (1 time unit)", forcing, 20),
                            ("forced, 1 control step", forcing, 1),
                            ("unforced, 20 control steps", 0.0 * forcing, 20)]:
            ref = solve(512, f, k)
            curves[label] = np.array([float(jnp.max(jnp.abs(solve(n, f, k) - ref))) for n in substeps])
        ref = exp_solve(512)
        curves["exponax unforced, 20 control steps"] = np.array(
            [float(jnp.max(jnp.abs(exp_solve(n) - ref))) for n in substeps])
    h = 0.05 / np.array(substeps)
    for label, err in curves.items():
        orders = np.log2(err[:-1] / err[1:])
        print(f"  {label}:")
        print("    h      " + " ".join(f"{x:9.5f}" for x in h))
        print("    error  " + " ".join(f"{x:9.2e}" for x in err))
        print("    order           " + " ".join(f"{x:9.2f}" for x in orders))

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    markers = ["o-", "s-", "^--", "x:"]
    for (label, err), m in zip(curves.items(), markers):
        ax.loglog(h, err, m, label=label)
    main = curves["forced, 20 control steps (1 time unit)"]
    guide = main[2] * (h / h[2]) ** 4
    ax.loglog(h, guide, "k-", lw=0.8, alpha=0.6, label="slope 4")
    ax.axvline(0.05, color="gray", ls=":", lw=0.8)
    ax.text(0.05, ax.get_ylim()[0] * 3, " env default\n (h = dt = 0.05)", fontsize=7, color="gray")
    ax.minorticks_off()
    ax.set_xticks(h, [f"{x:.4g}" for x in h], fontsize=8)
    ax.set(xlabel="sub-step h", ylabel="max |u - u_ref|",
           title="KS ETDRK4: error vs sub-step (constant forcing)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIGURES / "physics_etdrk4_convergence.png", dpi=120)
    plt.close(fig)
    return curves


def cross_checks():
    print("\n== (d) uncontrolled KS vs exponax KuramotoSivashinskyConservative, float64")
    import exponax

    with jax.enable_x64(True):
        env, params = make("ks")
        u0 = jax.jit(lambda p, u: iterate(uncontrolled_step(env, p), u, 2000))(
            params, ks_initial_fields(env, params, 1, 3)[0])
        stepper = exponax.stepper.KuramotoSivashinskyConservative(
            1, 22.0, 64, 0.05, order=4, dealiasing_fraction=1.0, num_circle_points=16)
        ref = exponax.rollout(stepper, 400, include_init=False)(u0[None])
        ours = jax.jit(lambda p, u: trajectory(uncontrolled_step(env, p), u, 400))(params, u0)
        diff = np.max(np.abs(np.asarray(ours - ref[:, 0])), axis=1)
        stepper23 = exponax.stepper.KuramotoSivashinskyConservative(
            1, 22.0, 64, 0.05, order=4, num_circle_points=16)  # default: 2/3 dealiasing
        ref23 = exponax.rollout(stepper23, 400, include_init=False)(u0[None])
        diff23 = np.max(np.abs(np.asarray(ours - ref23[:, 0])), axis=1)
    print(f"  exponax state shape {tuple(ref.shape[1:])}; max |u| = {np.max(np.abs(np.asarray(ref))):.2f}")
    print("  max |difference| after 1, 20, 200, 400 control steps: "
          + ", ".join(f"{diff[i - 1]:.1e}" for i in (1, 20, 200, 400)))
    print("  the same against exponax with its default 2/3 dealiasing (the effect of not dealiasing): "
          + ", ".join(f"{diff23[i - 1]:.1e}" for i in (1, 20, 200, 400)))

    print("\n== (e) Lorenz RK4 (env.flow) vs scipy solve_ivp DOP853 (rtol = atol = 1e-12), float64")
    s, r, b = 10.0, 28.0, 8.0 / 3.0
    with jax.enable_x64(True):
        env, params = make("lorenz")
        x0 = jax.jit(lambda p, x: iterate(uncontrolled_step(env, p), x, 1000))(
            params, jnp.array([1.0, 1.0, 20.0]))
        t_eval = 0.05 * np.arange(1, 41)
        sol = solve_ivp(lambda t, y: [s * (y[1] - y[0]), y[0] * (r - y[2]) - y[1], y[0] * y[1] - b * y[2]],
                        (0, t_eval[-1]), np.asarray(x0), method="DOP853", rtol=1e-12, atol=1e-12,
                        t_eval=t_eval)
        for n in (5, 10, 20):
            e, p = make("lorenz", num_substeps=n)
            xs = np.asarray(jax.jit(lambda p, x: trajectory(uncontrolled_step(e, p), x, 40))(p, x0))
            err = np.max(np.abs(xs - sol.y.T), axis=1)
            print(f"  {n:2d} RK4 sub-steps (h = {0.05 / n:.4f}): max |error| at t = 0.05, 1, 2: "
                  f"{err[0]:.1e}, {err[19]:.1e}, {err[39]:.1e}  (|x| up to {np.abs(sol.y).max():.0f})")


# ---------------------------------------------------------------------------
def precision_error(name, num_traj, num_steps, num_transient, seed):
    with jax.enable_x64(True):
        env, params = make(name)
        x0 = (lorenz_initial_states(num_traj, seed) if name == "lorenz"
              else ks_initial_fields(env, params, num_traj, seed))
        x0 = jax.jit(jax.vmap(lambda p, x: iterate(uncontrolled_step(env, p), x, num_transient),
                              in_axes=(None, 0)))(params, x0)
        x0 = x0.astype(jnp.float32).astype(jnp.float64)
        run = jax.jit(jax.vmap(lambda p, x: trajectory(uncontrolled_step(env, p), x, num_steps),
                               in_axes=(None, 0)))
        xs64 = np.asarray(run(params, x0))
    env32, params32 = make(name)
    run = jax.jit(jax.vmap(lambda p, x: trajectory(uncontrolled_step(env32, p), x, num_steps),
                           in_axes=(None, 0)))
    xs32 = np.asarray(run(params32, jnp.asarray(x0, jnp.float32)), np.float64)
    scale = np.sqrt(np.mean(xs64**2))
    return np.sqrt(np.mean((xs32 - xs64) ** 2, axis=-1)) / scale, float(params.dt)


def float32_error(lambdas):
    print("\n== (g) float32 vs float64 trajectories (relative RMS error, same float32 initial state)")
    setups = [("lorenz", 32, 1000, 2000, (1e-5, 1e-2)), ("ks", 16, 6000, 4000, (1e-4, 1e-2))]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, (name, num_traj, num_steps, num_transient, window) in zip(axes, setups):
        err, dt = precision_error(name, num_traj, num_steps, num_transient, seed=0)
        t = dt * np.arange(1, num_steps + 1)
        log_err = np.log(err)
        geo = np.exp(log_err.mean(0))
        keep = (geo > window[0]) & (geo < window[1])
        rate, icpt = np.polyfit(t[keep], log_err.mean(0)[keep], 1)
        lam = lambdas[name]
        print(f"  {name}: {num_traj} initial states, dt = {dt}")
        for steps in (1, 20, 200, 1000, 2000, 6000):
            if steps <= num_steps:
                print(f"    after {steps:5d} steps (t = {steps * dt:6.2f}): geometric mean {geo[steps - 1]:.1e}, "
                      f"max {err[:, steps - 1].max():.1e}")
        print(f"    growth rate of <log error> where it is in [{window[0]:.0e}, {window[1]:.0e}] "
              f"(t = {t[keep][0]:.1f}..{t[keep][-1]:.1f}): {rate:.4f}; lambda_1 = {lam:.4f}")
        ax.semilogy(t, np.percentile(err, 50, axis=0), color="tab:blue", label="median")
        ax.fill_between(t, np.percentile(err, 10, axis=0), np.percentile(err, 90, axis=0),
                        color="tab:blue", alpha=0.25, label="10-90 %")
        guide_t = t[keep]
        ax.semilogy(guide_t, np.exp(icpt + lam * guide_t) * 3, "k--", lw=0.8,
                    label=f"$\\propto e^{{\\lambda_1 t}}$, $\\lambda_1$ = {lam:.3g}")
        ax.axvline(200 * dt, color="tab:red", ls=":", label="one episode (200 steps)")
        ax.set(xlabel="t", ylabel="relative RMS error", ylim=(1e-9, 10),
               title=f"{'Lorenz-63' if name == 'lorenz' else 'KS L = 22'}: float32 vs float64")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(FIGURES / "physics_float32_error.png", dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------
def equilibria():
    print("\n== (f) KS equilibria at L = 22, N = 64 (entrolab.envs.ks_equilibria)")
    eqs = ks_equilibria(22.0, 64)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = 22.0 * np.arange(64) / 64
    with jax.enable_x64(True):
        jac = jax.jit(jax.jacfwd(lambda u: ks_rhs(u, 22.0)))
        for name in ("E1", "E2", "E3"):
            u = np.asarray(eqs[name].u)
            eig = np.linalg.eigvals(np.asarray(jac(jnp.asarray(u))))
            eig = eig[np.argsort(-eig.real)]
            lead = complex(eig[0].real, abs(eig[0].imag))
            c = np.abs(np.fft.rfft(u))
            n = eqs[name].dominant_wavenumber
            off = c[np.arange(c.size) % n != 0].max() if n > 1 else float("nan")
            print(f"  {name}: residual {eqs[name].residual:.1e}; leading eigenvalues "
                  + ", ".join(f"{z.real:+.5f}{z.imag:+.5f}i" for z in eig[:4])
                  + f"; published {KS_EIGENVALUES_PUBLISHED[name]:.4f}"
                  + (f"; max |u_hat| off multiples of {n}: {off:.1e} (of {c.max():.1e})" if n > 1 else ""))
            ax.plot(np.append(x, 22.0), np.append(u, u[0]),
                    label=f"{name}: $\\mu$ = {lead.real:.4f}" + (f" $\\pm$ {lead.imag:.4f}i" if lead.imag else ""))
    ax.axhline(0, color="gray", lw=0.5)
    ax.set(xlabel="x", ylabel="u", xlim=(0, 22), title="KS equilibria at L = 22 (leading eigenvalue)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIGURES / "physics_ks_equilibria.png", dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small ensembles (smoke run)")
    args = ap.parse_args()
    FIGURES.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    if args.quick:
        lz, _ = lorenz_lyapunov(num_traj=4, num_steps=10_000)
        ks_mean, _, _ = ks_lyapunov(num_traj=8, num_steps=10_000)
    else:
        lz, _ = lorenz_lyapunov(num_traj=16, num_steps=400_000)
        ks_mean, _, _ = ks_lyapunov(num_traj=64, num_steps=200_000)
    etdrk4_convergence()
    cross_checks()
    equilibria()
    float32_error({"lorenz": float(lz[0]), "ks": float(ks_mean)})
    print(f"\nfigures in {FIGURES}; total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

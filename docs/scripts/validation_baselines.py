"""Validation figures and numbers for the classical baselines (zero, random, saturated LQR).

    .venv/bin/python docs/scripts/validation_baselines.py [--out docs/figures] [--episodes 64]

Writes into OUT (PNG, matplotlib Agg):

- baselines_lorenz_lqr.png: LQR trajectories from initial states around both
  non-trivial equilibria C+ and C- (components and distance to the origin vs
  time), with the zero-action trajectories for contrast;
- baselines_ks_lqr.png: space-time diagrams of the field under the LQR and
  under zero action from the default initial distribution (around E2), and
  the RMS distance to the target E1 vs time;
- baselines_lorenz_region.png: steps for the saturated LQR to come within 0.5
  of the origin from a grid of initial states on the slice y = x (the plane
  holding the origin, C+ and C-) over the attractor, one vmapped program; and
  the same map for action scales 5 and 20;
- baselines_ks_region.png: fraction of episodes the LQR ends within RMS 0.1
  of E1 vs the initial perturbation amplitude around zero/E1/E2/E3, and from
  states on the chaotic attractor.

and prints every number quoted in docs/validation.md (Classical baselines): mean episode
return +- std of zero/random/LQR on both systems, the action-scale sweep for
Lorenz, the success fractions. Everything runs on CPU in a few minutes
(JAX picks an accelerator when there is one).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from entrolab.baselines import lqr_controller, lqr_design, random_action, zero_action  # noqa: E402
from entrolab.envs import make, replace_params  # noqa: E402
from entrolab.rollout import rollout  # noqa: E402

LORENZ_RADIUS = 0.5  # "reached": |x - x*| < 0.5 (Euclidean)
KS_RMS = 0.1  # "reached": RMS_x (u - u*) < 0.1 at the end of the episode


def run_from(env, params, act, x0, key, num_steps):
    """Final states (num_steps, *x.shape) and rewards of one run started at x0 (jit/vmap-able).

    Starts from a reset whose physical state is replaced by x0, then steps the
    environment (so clipping, divergence handling and truncation are those of
    the environment). Returns `info["final_x"]`, the state reached at each
    step before any auto-reset, the rewards and the terminated flags.
    """
    k_reset, k_run = jax.random.split(key)
    _, state = env.reset(k_reset, params)
    state = state.replace(x=jnp.asarray(x0, state.x.dtype))
    obs = env.observe(state, params)

    def body(carry, k):
        obs, state = carry
        k_act, k_step = jax.random.split(k)
        a = act(k_act, obs, state)
        obs, state, r, term, trunc, info = env.step(k_step, state, a, params)
        return (obs, state), (info["final_x"], r, term)

    _, (xs, rs, terms) = jax.lax.scan(body, (obs, state), jax.random.split(k_run, num_steps))
    return xs, rs, terms


def first_reach(dist, terminated, radius):
    """Steps (1-based) until dist < radius, before any termination; 0 where never."""
    alive = np.cumsum(terminated, axis=-1) == 0
    hit = (dist < radius) & alive
    return np.where(hit.any(-1), hit.argmax(-1) + 1, 0)


def episode_returns(env, params, act, key, episodes):
    """Returns of `episodes` full default episodes (reset with their own keys), shape (episodes,)."""
    steps = int(params.max_steps_in_episode)
    tr = jax.jit(jax.vmap(lambda k: rollout(env, params, act, k, steps)))(jax.random.split(key, episodes))
    assert bool(jnp.all(tr.truncated[:, -1] | jnp.any(tr.terminated, axis=1)))
    first_done = np.argmax(np.asarray(tr.terminated | tr.truncated), axis=1)
    r = np.asarray(tr.reward)
    ret = np.array([r[i, : first_done[i] + 1].sum() for i in range(episodes)])  # exactly one episode
    return ret, tr


def fmt(ret):
    return f"{ret.mean():8.2f} +- {ret.std(ddof=1):6.2f}"


# ------------------------------------------------------------------ Lorenz
def lorenz_trajectories(out, key):
    env, params = make("lorenz")
    design = lqr_design(env, params)
    lqr, zero = lqr_controller(env, params, design), zero_action(env, params)
    steps = int(params.max_steps_in_episode)
    dt = float(params.dt)
    print(f"lorenz LQR design: closed-loop radius {design.closed_loop_radius:.4f}, "
          f"open-loop radius {design.open_loop_radius:.4f}, |K|_max {np.abs(design.gain).max():.3f}")
    # Three initial states around each of C+ and C- (init_std = 1, wider than the default 0.1).
    eqs = [1, 1, 1, 2, 2, 2]
    keys = jax.random.split(key, len(eqs))
    x0 = np.stack([np.asarray(env.reset(k, params.replace(init_equilibrium=e, init_std=1.0))[1].x)
                   for k, e in zip(keys, eqs)])
    run = jax.jit(jax.vmap(lambda x, k: run_from(env, params, lqr, x, k, steps)))
    run0 = jax.jit(jax.vmap(lambda x, k: run_from(env, params, zero, x, k, steps)))
    xs, _, _ = (np.asarray(v) for v in run(jnp.asarray(x0), keys))
    xs0, _, _ = (np.asarray(v) for v in run0(jnp.asarray(x0), keys))
    xs = np.concatenate([x0[:, None], xs], axis=1)
    xs0 = np.concatenate([x0[:, None], xs0], axis=1)
    t = dt * np.arange(steps + 1)
    d, d0 = np.linalg.norm(xs, axis=-1), np.linalg.norm(xs0, axis=-1)
    reach = first_reach(d[:, 1:], np.zeros_like(d[:, 1:], bool), LORENZ_RADIUS)
    print(f"lorenz trajectories (init_std 1.0 around C+,C+,C+,C-,C-,C-): steps to |x| < {LORENZ_RADIUS}: "
          f"{reach.tolist()}; final |x| LQR max {d[:, -1].max():.2e}; zero-action min |x| over episode "
          f"{d0.min():.2f}")

    colors = plt.cm.tab10(np.arange(len(eqs)))
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for j, (ax, lab) in enumerate(zip(axes.flat[:3], "xyz")):
        for i in range(len(eqs)):
            ax.plot(t, xs0[i, :, j], color=colors[i], lw=0.7, ls=":", alpha=0.7)
            ax.plot(t, xs[i, :, j], color=colors[i], lw=1.2)
        ax.set(ylabel=lab)
    ax = axes[1, 1]
    for i in range(len(eqs)):
        ax.semilogy(t, np.maximum(d0[i], 1e-12), color=colors[i], lw=0.7, ls=":", alpha=0.7)
        ax.semilogy(t, np.maximum(d[i], 1e-12), color=colors[i], lw=1.2,
                    label=f"from {'C+' if eqs[i] == 1 else 'C-'}" if i in (0, 3) else None)
    ax.axhline(LORENZ_RADIUS, color="k", lw=0.6, ls="--")
    ax.plot([], [], color="gray", ls=":", label="zero action")
    ax.set(ylabel="|x - 0|", ylim=(1e-10, 100))
    ax.legend(fontsize=8, loc="lower left")
    for ax in axes[1]:
        ax.set(xlabel="t")
    fig.suptitle("Lorenz-63: saturated LQR to the origin (solid) vs zero action (dotted), "
                 "6 initial states around C+ and C-")
    fig.tight_layout()
    fig.savefig(out / "baselines_lorenz_lqr.png", dpi=120)
    plt.close(fig)


def lorenz_region(out, key, scales=(5.0, 10.0, 20.0), n=141):
    """Steps to reach the origin from a grid on the slice y = x, for several action scales."""
    env, params = make("lorenz")
    steps = int(params.max_steps_in_episode)
    xg = np.linspace(-30.0, 30.0, n)
    zg = np.linspace(-10.0, 60.0, n)
    X, Z = np.meshgrid(xg, zg)
    x0 = np.stack([X.ravel(), X.ravel(), Z.ravel()], axis=1)  # y = x
    # The uncontrolled attractor, for orientation (projected onto x-z).
    p_long = params.replace(max_steps_in_episode=4001, init_std=1.0)
    att, _, _ = jax.jit(lambda k: run_from(env, p_long, zero_action(env, params),
                                           jnp.array([1.0, 1.0, 20.0]), k, 4000))(key)
    att = np.asarray(att)[400:]
    near_slice = np.abs(att[:, 0] - att[:, 1]) < 2.0
    print(f"lorenz attractor (uncontrolled, t = 20..200): x in [{att[:, 0].min():.1f}, {att[:, 0].max():.1f}], "
          f"z in [{att[:, 2].min():.1f}, {att[:, 2].max():.1f}]")
    # Grid points within the attractor's x-z bounding box (the region that matters).
    box = ((X.ravel() >= att[:, 0].min()) & (X.ravel() <= att[:, 0].max())
           & (Z.ravel() >= att[:, 2].min()) & (Z.ravel() <= att[:, 2].max()))
    results = {}
    for scale in scales:
        p = replace_params(params, "lorenz", action_scale=scale)
        design = lqr_design(env, p)
        lqr = lqr_controller(env, p, design)
        t0 = time.time()
        run = jax.jit(jax.vmap(lambda x, k: run_from(env, p, lqr, x, k, steps)))
        xs, _, terms = run(jnp.asarray(x0, jnp.float32), jax.random.split(key, len(x0)))
        dist = np.linalg.norm(np.asarray(xs), axis=-1)
        reach = first_reach(dist, np.asarray(terms), LORENZ_RADIUS)
        results[scale] = reach.reshape(X.shape)
        frac_all = np.mean(reach > 0)
        frac_box = np.mean(reach[box] > 0)
        med = np.median(reach[box][reach[box] > 0]) if np.any(reach[box] > 0) else float("nan")
        print(f"lorenz region, action_scale {scale:4.0f}: reached |x| < {LORENZ_RADIUS} within {steps} steps from "
              f"{100 * frac_box:5.1f}% of the slice grid over the attractor box "
              f"({100 * frac_all:5.1f}% of the whole {n}x{n} grid, x in [-30, 30], z in [-10, 60]); median steps "
              f"{med:.0f}; diverged {int(np.asarray(terms).any(-1).sum())}; closed-loop radius "
              f"{design.closed_loop_radius:.3f} ({time.time() - t0:.1f} s)")

    eq = np.sqrt(8.0 / 3.0 * 27.0)
    fig, axes = plt.subplots(1, len(scales), figsize=(5.0 * len(scales), 4.4), sharey=True)
    cmap = plt.cm.viridis.copy()
    cmap.set_bad("lightgray")
    for ax, scale in zip(axes, scales):
        r = results[scale].astype(float)
        r[r == 0] = np.nan
        im = ax.pcolormesh(xg, zg, r, cmap=cmap, vmin=0, vmax=steps, shading="auto")
        ax.plot(att[near_slice, 0], att[near_slice, 2], ",", color="w", alpha=0.5)
        ax.plot([eq, -eq, 0], [27, 27, 0], "r+", ms=10, mew=2)
        frac = np.mean(results[scale][box.reshape(X.shape)] > 0)
        ax.set(xlabel="x (= y)", title=f"action_scale {scale:g}: {100 * frac:.1f}% reached")
    axes[0].set(ylabel="z")
    fig.colorbar(im, ax=axes, label=f"steps to |x| < {LORENZ_RADIUS} (gray: not within {steps})")
    fig.suptitle("Lorenz-63, saturated LQR: initial states on the slice y = x "
                 "(red +: origin, C+, C-; white: attractor points with |x - y| < 2)")
    fig.savefig(out / "baselines_lorenz_region.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return results


def lorenz_scale_sweep(key, episodes, scales=(5.0, 10.0, 20.0)):
    """Fraction of episodes from the default initial distributions (around C+ and C-, init_std
    0.1 and a wider 1.0) that come within 0.5 of the origin within 200 steps, per action scale;
    the runs go on to 1000 steps to show where the tail ends."""
    env, params = make("lorenz")
    steps = int(params.max_steps_in_episode)
    long = 5 * steps
    for scale in scales:
        p = replace_params(params, "lorenz", action_scale=scale)
        lqr = lqr_controller(env, p, lqr_design(env, p))
        parts = []
        for eq in (1, 2):
            for init_std in (0.1, 1.0):
                pe = p.replace(init_equilibrium=eq, init_std=init_std, max_steps_in_episode=long + 1)
                tr = jax.jit(jax.vmap(lambda k, pe=pe: rollout(env, pe, lqr, k, long)))(
                    jax.random.split(jax.random.fold_in(key, 10 * eq + int(10 * init_std)), episodes))
                dist = np.linalg.norm(np.asarray(tr.x), axis=-1)
                reach = first_reach(dist, np.asarray(tr.terminated), LORENZ_RADIUS)
                within = (reach > 0) & (reach <= steps)
                ret = np.asarray(tr.reward)[:, :steps].sum(1)
                r = np.where(reach > 0, reach, 10**6)
                p50, p99 = np.percentile(r, [50, 99])
                parts.append(f"{'C+' if eq == 1 else 'C-'} std {init_std}: {within.mean():.4f} "
                             f"(steps median {p50:.0f}, 99th pct {p99:.0f}; within {long}: "
                             f"{np.mean(reach > 0):.4f}; 200-step return {fmt(ret).strip()})")
        print(f"lorenz action_scale {scale:4.0f}, fraction of {episodes} episodes reaching |x| < {LORENZ_RADIUS} "
              f"within {steps} steps:\n    " + "\n    ".join(parts))


# ------------------------------------------------------------------ KS
def ks_trajectories(out, key):
    env, params = make("ks")
    design = lqr_design(env, params)
    print(f"ks LQR design (target E1): closed-loop radius {design.closed_loop_radius:.4f}, "
          f"open-loop radius {design.open_loop_radius:.4f}, |K|_max {np.abs(design.gain).max():.3f}")
    lqr, zero = lqr_controller(env, params, design), zero_action(env, params)
    steps = int(params.max_steps_in_episode)
    dt, length = float(params.dt), float(params.length)
    target = np.asarray(env.target(params))
    keys = jax.random.split(key, 8)
    tr = jax.jit(jax.vmap(lambda k: rollout(env, params, lqr, k, steps)))(keys)
    tr0 = jax.jit(jax.vmap(lambda k: rollout(env, params, zero, k, steps)))(keys)
    us = np.concatenate([np.asarray(tr.x0)[:, None], np.asarray(tr.x)], axis=1)
    us0 = np.concatenate([np.asarray(tr0.x0)[:, None], np.asarray(tr0.x)], axis=1)
    d = np.sqrt(np.mean((us - target) ** 2, axis=-1))
    d0 = np.sqrt(np.mean((us0 - target) ** 2, axis=-1))
    sat = np.mean(np.abs(np.asarray(tr.action)) > 0.999, axis=(0, 2))
    print(f"ks trajectories (8 episodes, default init E2 + 0.1 noise): RMS to E1 at t=0 {d[:, 0].mean():.3f}, "
          f"t=2.5 {d[:, 50].mean():.3f}, t=5 {d[:, 100].mean():.3f}, t=10 (end) {d[:, -1].mean():.4f} "
          f"(max {d[:, -1].max():.4f}); zero action at end {d0[:, -1].mean():.3f} (min over episode "
          f"{d0.min():.3f}); fraction of saturated actuators in steps 1-20 {sat[:20].mean():.2f}, "
          f"steps 100-200 {sat[100:].mean():.2f}")
    t = dt * np.arange(steps + 1)
    fig = plt.figure(figsize=(11, 6.5))
    gs = fig.add_gridspec(3, 1, height_ratios=[1, 1, 1.1])
    lim = max(np.abs(us[0]).max(), np.abs(us0[0]).max())
    for row, (field, title) in enumerate([(us[0], "saturated LQR (full state)"), (us0[0], "zero action")]):
        ax = fig.add_subplot(gs[row])
        im = ax.imshow(field.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim,
                       extent=(0.0, t[-1], 0.0, length))
        ax.set(ylabel="x", title=f"u(x, t), {title}, from E2 + noise; target E1")
        fig.colorbar(im, ax=ax, pad=0.01)
    ax = fig.add_subplot(gs[2])
    for i in range(len(keys)):
        ax.semilogy(t, d[i], color="tab:blue", lw=1, label="LQR" if i == 0 else None)
        ax.semilogy(t, d0[i], color="tab:gray", lw=1, ls=":", label="zero action" if i == 0 else None)
    ax.axhline(KS_RMS, color="k", lw=0.6, ls="--")
    ax.set(xlabel="t", ylabel="RMS(u - E1)", xlim=(0, t[-1]))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "baselines_ks_lqr.png", dpi=120)
    plt.close(fig)


def ks_region(out, key, episodes, amplitudes=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0)):
    env, params = make("ks")
    design = lqr_design(env, params)
    lqr = lqr_controller(env, params, design)
    steps = int(params.max_steps_in_episode)
    target = np.asarray(env.target(params))

    long = 5 * steps

    @jax.jit
    def success(p, keys):
        p = p.replace(max_steps_in_episode=long + 1)
        tr = jax.vmap(lambda k: rollout(env, p, lqr, k, long))(keys)
        d = jnp.sqrt(jnp.mean((tr.x - target) ** 2, axis=-1))
        return d, tr.terminated

    fractions = {}
    for centre in ("zero", "E1", "E2", "E3"):
        _, pc = make("ks", init=centre)
        fr, fr_long, med = [], [], []
        for i, amp in enumerate(amplitudes):
            p = replace_params(pc, "ks", init_std=amp)
            d, term = (np.asarray(v) for v in success(p, jax.random.split(jax.random.fold_in(key, i), episodes)))
            alive = ~np.cumsum(term, axis=1).astype(bool)
            fr.append(np.mean((d[:, steps - 1] < KS_RMS) & alive[:, steps - 1]))
            fr_long.append(np.mean((d[:, -1] < KS_RMS) & alive[:, -1]))
            reach = first_reach(d, term, KS_RMS)
            med.append(np.median(np.where(reach > 0, reach, 10**6)))
        fractions[centre] = (np.array(fr), np.array(fr_long))
        print(f"ks LQR success (RMS to E1 < {KS_RMS}) around {centre:4s}, at t = 10 | at t = 50 | median steps "
              "to reach: " + "; ".join(f"std {a:g}: {f:.3f} | {g:.3f} | {m:.0f}"
                                        for a, f, g, m in zip(amplitudes, fr, fr_long, med)))

    # States on the chaotic attractor: run the uncontrolled system from noise, then hand over to the LQR.
    burn = 2000  # t = 100
    horizons = (steps, 5 * steps)
    p_long = replace_params(params, "ks", max_steps_in_episode=burn + 5 * steps + 1)
    keys = jax.random.split(jax.random.fold_in(key, 99), episodes)
    x_noise = 0.5 * jax.random.normal(jax.random.fold_in(key, 98), (episodes, env.num_points))

    @jax.jit
    def from_attractor(x_start, k):
        k1, k2 = jax.random.split(k)
        xs, _, _ = run_from(env, p_long, zero_action(env, params), x_start, k1, burn)
        x_att = xs[-1]
        xs_c, _, terms = run_from(env, p_long, lqr, x_att, k2, 5 * steps)
        return x_att, jnp.sqrt(jnp.mean((xs_c - target) ** 2, axis=-1)), terms

    x_att, d_att, terms = (np.asarray(v) for v in jax.vmap(from_attractor)(x_noise, keys))
    att_rms = np.sqrt(np.mean((x_att - target) ** 2, axis=-1))
    att_frac = {}
    for h in horizons:
        ok = (d_att[:, h - 1] < KS_RMS) & ~terms[:, :h].any(1)
        att_frac[h] = np.mean(ok)
    ever = first_reach(d_att, terms, KS_RMS)
    print(f"ks LQR from the chaotic attractor ({episodes} states after t = {burn * float(params.dt):g} uncontrolled; "
          f"RMS to E1 {att_rms.mean():.2f} +- {att_rms.std():.2f}, max |u| {np.abs(x_att).max():.2f}): success "
          f"(RMS < {KS_RMS}) at t = 10: {att_frac[steps]:.3f}; at t = 50: {att_frac[5 * steps]:.3f}; ever within "
          f"t = 10: {np.mean((ever > 0) & (ever <= steps)):.3f}; diverged {int(terms.any(1).sum())}; "
          f"final RMS at t = 10 median {np.median(d_att[:, steps - 1]):.3f}")

    fig, ax = plt.subplots(figsize=(7, 4.4))
    for j, (centre, marker) in enumerate(zip(fractions, "osD^")):
        color = f"C{j}"
        offset = 1.0 + 0.04 * (j - 1.5)  # small horizontal offsets: coinciding curves stay visible
        amps = np.asarray(amplitudes) * offset
        ax.semilogx(amps, fractions[centre][0], marker=marker, color=color, label=f"around {centre}, t = 10")
        ax.semilogx(amps, fractions[centre][1], marker=marker, color=color, ls=":", mfc="none",
                    label=f"around {centre}, t = 50")
    ax.axhline(att_frac[steps], color="k", ls="--", lw=1,
               label=f"from the chaotic attractor, t = 10 ({100 * att_frac[steps]:.0f}%)")
    ax.set(xlabel="init_std (noise amplitude per grid point)", ylabel=f"fraction with RMS(u - E1) < {KS_RMS}",
           ylim=(-0.03, 1.03), title=f"KS, saturated LQR to E1: success at the end of one episode (t = 10)\n"
           f"and of five (t = 50), {episodes} initial states per point")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(out / "baselines_ks_region.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return fractions, att_frac


# ------------------------------------------------------------------ returns
def returns_table(key, episodes):
    print(f"mean episode return +- std (ddof 1) over {episodes} episodes, default params (200 steps):")
    for name in ("lorenz", "ks"):
        env, params = make(name)
        policies = {"zero": zero_action(env, params), "random": random_action(env, params),
                    "lqr": lqr_controller(env, params)}
        for i, (pname, act) in enumerate(policies.items()):
            ret, tr = episode_returns(env, params, act, jax.random.fold_in(key, i), episodes)
            print(f"  {name:6s} {pname:6s} {fmt(ret)}   (min {ret.min():8.2f}, max {ret.max():8.2f}, "
                  f"diverged {int(np.asarray(tr.terminated).any(1).sum())})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "figures")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--sweep-episodes", type=int, default=1024,
                        help="episodes per (equilibrium, init_std) cell of the Lorenz action-scale sweep")
    parser.add_argument("--grid", type=int, default=141)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(args.seed)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; seed {args.seed}")
    t0 = time.time()
    returns_table(jax.random.fold_in(key, 0), args.episodes)
    lorenz_trajectories(args.out, jax.random.fold_in(key, 1))
    lorenz_scale_sweep(jax.random.fold_in(key, 2), args.sweep_episodes)
    lorenz_region(args.out, jax.random.fold_in(key, 3), n=args.grid)
    ks_trajectories(args.out, jax.random.fold_in(key, 4))
    ks_region(args.out, jax.random.fold_in(key, 5), args.episodes)
    print(f"wrote {args.out}/baselines_*.png in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

"""Learning comparison: entrolab PPO against Stable-Baselines3 PPO on Lorenz and KS.

Both learners get the same environment-step budget per run, the same
network (policy and value MLPs [64, 64] tanh, separate, orthogonal
initialisation, state-independent log-std starting at 0), the same rollout
(8 envs x 256 steps), 10 epochs of 8 minibatches of 256, and the same
hyperparameters (lr 3e-4, gamma 0.99, lambda 0.95, clip 0.2, value
coefficient 0.5, max grad norm 0.5, entropy coefficient 0, advantages
normalised per minibatch, Adam eps 1e-5), with running observation
normalisation (SB3: `VecNormalize(norm_obs=True, norm_reward=False)`).

- entrolab: `entrolab.training.train_sweep` (all seeds of a system in one
  compiled program), entropy schedule "constant" at alpha = 0.
- SB3: `PPO("MlpPolicy", ...)` on the gymnasium registration of the same
  system (`gymnasium.make("entrolab/Lorenz-v0")` via `make_vec_env`, 8
  envs, each wrapped in a `Monitor`), one subprocess per run, one run at a
  time, torch on 1 thread.

Budgets: entrolab rounds `--steps` down to whole rollouts of 2048 steps, SB3
rounds up, so at 500,000 SB3 gets one rollout more (501,760 against 499,712
env steps, 0.4%).

Learning curves: for both, after every rollout, the mean return of the
training episodes that ended during that rollout (entrolab's
`episode_return` metric; for SB3 a callback reading the Monitor's episode
infos), against env steps.

Final evaluation (the same for both): deterministic policy (the clipped
mean action), 16 episodes on the default environment. SB3 runs through
`evaluate_policy` on 16 fresh Monitor-wrapped envs behind a `VecNormalize`
that carries the training statistics with `training=False`.

Baselines on the same env: zero action and the saturated LQR
(`entrolab.baselines`), 64 episodes each through `entrolab.rollout.rollout`.
The cost reduction of a policy is 1 - J_policy / J_zero, with J the mean
episode cost (= -return).

    .venv/bin/python benchmarks/sb3_compare.py all --steps 500000 --seeds 3
    .venv/bin/python benchmarks/sb3_compare.py all --systems lorenz --steps 20000 --seeds 1 --out /tmp/x  # smoke

Sub-commands: `all` (everything missing, then the summary), `sb3` (one SB3
run; used as the subprocess worker), `entrolab`, `baselines`, `summarize`.
Outputs go to `benchmarks/results/sb3_compare/` (per-run curves as parquet,
per-run evaluation JSON, SB3 models) and the summary to
`benchmarks/results/sb3_compare.json`. Runs whose outputs exist are skipped
(`--force` reruns them), so an interrupted comparison resumes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "sb3_compare"
SYSTEMS = {"lorenz": "entrolab/Lorenz-v0", "ks": "entrolab/KuramotoSivashinsky-v0"}
EVAL_EPISODES = 16
BASELINE_EPISODES = 64

# The shared hyperparameters (SB3 names); entrolab's PPOConfig/PPOHParams defaults are the same.
HP = dict(n_envs=8, n_steps=256, batch_size=256, n_epochs=10, learning_rate=3e-4, gamma=0.99,
          gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------------- SB3 (one run)
def run_sb3(system: str, seed: int, steps: int, out: Path, threads: int = 1) -> dict:
    """Train and evaluate one SB3 PPO agent; writes sb3_{system}_seed{seed}.{parquet,json} and the model."""
    import gymnasium
    import pandas as pd
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    import entrolab  # noqa: F401  (registers the gymnasium ids)

    torch.set_num_threads(threads)
    env_id = SYSTEMS[system]

    def vec_env(n, seed):
        # make_vec_env(env_id_string) passes render_mode="rgb_array" to gymnasium.make and
        # only retries without it on TypeError; entrolab's adapter raises ValueError for the
        # unknown override, so the string form fails. gymnasium.make as the callable is the
        # same registration without the render_mode argument.
        return make_vec_env(gymnasium.make, n_envs=n, seed=seed, env_kwargs={"id": env_id})

    venv = VecNormalize(vec_env(HP["n_envs"], seed), norm_obs=True, norm_reward=False,
                        clip_obs=10.0, gamma=HP["gamma"])
    model = PPO(
        "MlpPolicy", venv,
        n_steps=HP["n_steps"], batch_size=HP["batch_size"], n_epochs=HP["n_epochs"],
        learning_rate=HP["learning_rate"], gamma=HP["gamma"], gae_lambda=HP["gae_lambda"],
        clip_range=HP["clip_range"], ent_coef=HP["ent_coef"], vf_coef=HP["vf_coef"],
        max_grad_norm=HP["max_grad_norm"], normalize_advantage=True,
        policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh,
                           ortho_init=True, log_std_init=0.0),
        seed=seed, device="cpu", verbose=0,
    )

    class Curve(BaseCallback):
        """Per rollout: mean return of the Monitor episodes that ended in it (entrolab's metric)."""

        def __init__(self):
            super().__init__()
            self.rows, self.finished = [], []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.finished.append(float(info["episode"]["r"]))
            return True

        def _on_rollout_end(self) -> None:
            self.rows.append({
                "env_steps": float(self.num_timesteps),
                "episode_return": float(np.mean(self.finished)) if self.finished else float("nan"),
                "num_episodes": float(len(self.finished)),
                "wall_s": time.perf_counter() - t0,
            })
            self.finished = []

    curve = Curve()
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, callback=curve)
    train_s = time.perf_counter() - t0

    # ---- deterministic evaluation, training statistics frozen
    eval_env = VecNormalize(vec_env(EVAL_EPISODES, 10_000 + seed), norm_obs=True, norm_reward=False,
                            clip_obs=10.0, training=False)
    eval_env.obs_rms = venv.obs_rms.copy()
    returns, lengths = evaluate_policy(model, eval_env, n_eval_episodes=EVAL_EPISODES,
                                       deterministic=True, return_episode_rewards=True)
    stem = f"sb3_{system}_seed{seed}"
    df = pd.DataFrame(curve.rows)
    df.insert(0, "seed", seed)
    df.insert(0, "algo", "sb3")
    df.insert(0, "system", system)
    df.to_parquet(out / f"{stem}.parquet", index=False)
    model.save(out / f"{stem}_model.zip")
    venv.save(str(out / f"{stem}_vecnormalize.pkl"))
    record = {
        "system": system, "algo": "sb3", "seed": seed, "env_steps": int(model.num_timesteps),
        "train_s": train_s, "steps_per_s": model.num_timesteps / train_s, "torch_threads": threads,
        "eval_returns_det": [float(r) for r in returns], "eval_lengths": [int(n) for n in lengths],
        "eval_return_det_mean": float(np.mean(returns)),
    }
    _write_json(out / f"{stem}.json", record)
    return record


# ---------------------------------------------------------------------- entrolab (all seeds)
def run_entrolab(system: str, seeds: int, steps: int, out: Path) -> dict:
    import pandas as pd

    from entrolab.agents.ppo import PPOConfig, PPOHParams
    from entrolab.training import train_sweep

    config = PPOConfig(num_envs=HP["n_envs"], num_steps=HP["n_steps"], total_timesteps=steps,
                       num_epochs=HP["n_epochs"], num_minibatches=HP["n_envs"] * HP["n_steps"] // HP["batch_size"],
                       hidden_sizes=(64, 64), activation="tanh", action_bounding="clip",
                       normalize_observations=True, normalize_advantages=True, entropy_schedule="constant")
    hparams = PPOHParams(learning_rate=HP["learning_rate"], gamma=HP["gamma"], gae_lambda=HP["gae_lambda"],
                         clip_eps=HP["clip_range"], vf_coef=HP["vf_coef"], ent_coef=0.0,
                         max_grad_norm=HP["max_grad_norm"], init_log_std=0.0)
    sweep_dir = out / f"entrolab_{system}"
    t0 = time.perf_counter()
    runs = train_sweep(system, [0.0], seeds, sweep_dir, config, hparams, eval_episodes=EVAL_EPISODES)
    wall = time.perf_counter() - t0
    metrics = pd.read_parquet(sweep_dir / "metrics.parquet")
    curve = metrics[["seed", "env_steps", "episode_return", "num_episodes"]].copy()
    curve.insert(0, "algo", "entrolab")
    curve.insert(0, "system", system)
    curve.to_parquet(out / f"entrolab_{system}.parquet", index=False)
    record = {
        "system": system, "algo": "entrolab", "seeds": list(map(int, runs["seed"])),
        "env_steps": int(runs["env_steps"].iloc[0]), "wall_s": wall,
        "train_s": float(runs["train_time_s"].iloc[0]), "compile_s": float(runs["compile_time_s"].iloc[0]),
        "eval_return_det_mean": [float(v) for v in runs["eval_return_det_mean"]],
        "eval_return_det_std": [float(v) for v in runs["eval_return_det_std"]],
        "eval_return_sto_mean": [float(v) for v in runs["eval_return_sto_mean"]],
        "eval_episodes": EVAL_EPISODES,
    }
    _write_json(out / f"entrolab_{system}.json", record)
    return record


# ---------------------------------------------------------------------- baselines
def run_baselines(system: str, out: Path, episodes: int = BASELINE_EPISODES) -> dict:
    import jax

    from entrolab.baselines import lqr_controller, zero_action
    from entrolab.envs import make
    from entrolab.rollout import rollout

    env, params = make(system)
    steps = int(params.max_steps_in_episode)
    record = {"system": system, "episodes": episodes}
    for name, act in [("zero", zero_action(env, params)), ("lqr", lqr_controller(env, params))]:
        tr = jax.jit(jax.vmap(lambda k: rollout(env, params, act, k, steps)))(
            jax.random.split(jax.random.key(123), episodes))
        done = np.asarray(tr.terminated | tr.truncated)
        first = np.argmax(done, axis=1)
        r = np.asarray(tr.reward)
        ret = np.array([r[i, : first[i] + 1].sum() for i in range(episodes)])  # exactly one episode
        record[name] = {"returns": ret.tolist(), "return_mean": float(ret.mean()),
                        "return_std": float(ret.std(ddof=1)),
                        "diverged": int(np.asarray(tr.terminated).any(axis=1).sum())}
    _write_json(out / f"baselines_{system}.json", record)
    return record


# ---------------------------------------------------------------------- summary
def summarize(out: Path, systems: list[str], summary_path: Path, command: str | None = None) -> dict:
    from rich.console import Console
    from rich.table import Table

    result = {"benchmark": "benchmarks/sb3_compare.py", "command": command,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "hyperparameters": HP, "eval_episodes": EVAL_EPISODES, "systems": {}}
    table = Table(title=f"Deterministic evaluation return ({EVAL_EPISODES} episodes per policy): "
                        "mean ± std across seeds; cost reduction 1 - J/J_zero")
    for col in ("system", "policy", "runs", "env steps", "return", "cost reduction", "per seed"):
        table.add_column(col, justify="left" if col in ("system", "policy", "per seed") else "right")
    for system in systems:
        base_file = out / f"baselines_{system}.json"
        if not base_file.exists():
            continue
        base = json.loads(base_file.read_text())
        j_zero = -base["zero"]["return_mean"]
        sysres = {"zero": base["zero"] | {"cost_reduction": 0.0},
                  "lqr": base["lqr"] | {"cost_reduction": 1 + base["lqr"]["return_mean"] / j_zero}}
        for k in ("zero", "lqr"):
            sysres[k] = {kk: v for kk, v in sysres[k].items() if kk != "returns"} | {"episodes": base["episodes"]}
        rows = {}
        ent = out / f"entrolab_{system}.json"
        if ent.exists():
            e = json.loads(ent.read_text())
            rows["entrolab PPO"] = (e["eval_return_det_mean"], e["env_steps"], e["train_s"])
        sb3 = sorted(out.glob(f"sb3_{system}_seed*.json"))
        if sb3:
            recs = [json.loads(p.read_text()) for p in sb3]
            rows["SB3 PPO"] = ([r["eval_return_det_mean"] for r in recs], recs[0]["env_steps"],
                               float(np.mean([r["train_s"] for r in recs])))
        for name, (per_seed, env_steps, train_s) in rows.items():
            per_seed = np.asarray(per_seed, float)
            red = 1.0 + per_seed / j_zero  # per seed
            sysres[name] = {
                "per_seed_return": per_seed.tolist(), "return_mean": float(per_seed.mean()),
                "return_std": float(per_seed.std(ddof=1)) if per_seed.size > 1 else 0.0,
                "cost_reduction_per_seed": red.tolist(), "cost_reduction_mean": float(red.mean()),
                "cost_reduction_std": float(red.std(ddof=1)) if red.size > 1 else 0.0,
                "env_steps": int(env_steps), "train_s_per_program_or_run": train_s, "runs": int(per_seed.size),
            }
            table.add_row(system, name, str(per_seed.size), f"{env_steps:,}",
                          f"{per_seed.mean():.2f} ± {sysres[name]['return_std']:.2f}",
                          f"{red.mean():.3f} ± {sysres[name]['cost_reduction_std']:.3f}",
                          ", ".join(f"{v:.2f}" for v in per_seed))
        for k, label in (("zero", "zero action"), ("lqr", "saturated LQR")):
            b = base[k]
            table.add_row(system, label, f"{base['episodes']} ep.", "-",
                          f"{b['return_mean']:.2f} ± {b['return_std']:.2f}",
                          f"{sysres[k]['cost_reduction']:.3f}", "(std over episodes)")
        if "entrolab PPO" in sysres and "SB3 PPO" in sysres:
            sysres["entrolab_cuts_cost_at_least_as_much"] = bool(
                sysres["entrolab PPO"]["cost_reduction_mean"] >= sysres["SB3 PPO"]["cost_reduction_mean"])
        result["systems"][system] = sysres
    Console(width=140).print(table)
    _write_json(summary_path, result)
    print(f"wrote {summary_path}")
    return result


# ---------------------------------------------------------------------- driver
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_all = sub.add_parser("all", help="everything missing (baselines, entrolab, SB3 runs one by one), then the summary")
    p_sb3 = sub.add_parser("sb3", help="one SB3 run")
    p_ent = sub.add_parser("entrolab", help="entrolab PPO, all seeds of one system in one program")
    p_base = sub.add_parser("baselines", help="zero action and saturated LQR")
    p_sum = sub.add_parser("summarize", help="the table and the summary JSON from the saved results")
    for p in (p_all, p_sb3, p_ent, p_base, p_sum):
        p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    for p in (p_all, p_sum):
        p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
        p.add_argument("--summary", type=Path, default=None, help="summary JSON (default: OUT.json)")
    for p in (p_sb3, p_ent, p_base):
        p.add_argument("--system", required=True, choices=list(SYSTEMS))
    for p in (p_all, p_sb3, p_ent):
        p.add_argument("--steps", type=int, default=500_000, help="env steps per run (both learners)")
    for p in (p_all, p_ent):
        p.add_argument("--seeds", type=int, default=3)
    p_sb3.add_argument("--seed", type=int, required=True)
    p_all.add_argument("--force", action="store_true", help="rerun runs whose outputs exist")
    p_all.add_argument("--skip-sb3", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = getattr(args, "summary", None) or args.out.with_name(args.out.name + ".json")

    if args.cmd == "sb3":
        print(json.dumps(run_sb3(args.system, args.seed, args.steps, args.out), default=float)[:400])
    elif args.cmd == "entrolab":
        print(json.dumps(run_entrolab(args.system, args.seeds, args.steps, args.out), default=float)[:400])
    elif args.cmd == "baselines":
        rec = run_baselines(args.system, args.out)
        print({k: rec[k]["return_mean"] for k in ("zero", "lqr")})
    elif args.cmd == "summarize":
        summarize(args.out, args.systems, summary_path, command=" ".join(sys.argv))
    else:
        t0 = time.perf_counter()
        for system in args.systems:  # each system complete before the next (Lorenz first)
            if args.force or not (args.out / f"baselines_{system}.json").exists():
                print(f"[{time.perf_counter() - t0:7.0f} s] baselines {system}", flush=True)
                run_baselines(system, args.out)
            if args.force or not (args.out / f"entrolab_{system}.json").exists():
                print(f"[{time.perf_counter() - t0:7.0f} s] entrolab {system}: {args.seeds} seeds x {args.steps:,} steps", flush=True)
                run_entrolab(system, args.seeds, args.steps, args.out)
            if args.skip_sb3:
                continue
            for seed in range(args.seeds):
                if not args.force and (args.out / f"sb3_{system}_seed{seed}.json").exists():
                    continue
                print(f"[{time.perf_counter() - t0:7.0f} s] sb3 {system} seed {seed}: {args.steps:,} steps", flush=True)
                # a fresh process per run (one at a time): clean torch/JAX state, bounded memory
                subprocess.run([sys.executable, __file__, "sb3", "--system", system, "--seed", str(seed),
                                "--steps", str(args.steps), "--out", str(args.out)],
                               check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        print(f"[{time.perf_counter() - t0:7.0f} s] done", flush=True)
        summarize(args.out, args.systems, summary_path, command=" ".join(sys.argv))


if __name__ == "__main__":
    main()

"""Train the Stable-Baselines3 PPO that the README's "Measuring a Stable-Baselines3 policy" measures.

    .venv/bin/python docs/scripts/sb3_lorenz_ppo.py --steps 100000 --out runs/sb3-lorenz   # the sb3 extra

SB3 PPO on `entrolab/Lorenz-v0` (8 envs, `VecNormalize` observations, the hyperparameters of
benchmarks/sb3_compare.py: [64, 64] tanh, lr 3e-4, 10 epochs of 256-step minibatches), torch on
one thread. Writes into OUT:

- ppo.zip: `model.save`;
- vecnormalize.pkl: `VecNormalize.save` (a pickle: `entrolab measure` reads it only with
  --allow-pickle);
- obs_stats.npz: the same observation statistics as plain arrays
  (`entrolab.interop.save_obs_stats`), which `entrolab measure --obs-stats` reads without
  unpickling anything.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/sb3-lorenz"))
    args = parser.parse_args()

    import gymnasium
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    import entrolab  # noqa: F401  (registers the gymnasium ids)
    from entrolab.interop import save_obs_stats

    torch.set_num_threads(1)
    # gymnasium.make by id, not make_vec_env(id): make_vec_env passes render_mode, which the
    # entrolab adapter refuses
    venv = VecNormalize(DummyVecEnv([lambda: gymnasium.make("entrolab/Lorenz-v0")] * 8), norm_obs=True,
                        norm_reward=False, clip_obs=10.0, gamma=0.99)
    venv.seed(args.seed)
    model = PPO("MlpPolicy", venv, n_steps=256, batch_size=256, n_epochs=10, learning_rate=3e-4, gamma=0.99,
                gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh),
                seed=args.seed, device="cpu", verbose=0)
    start = time.perf_counter()
    model.learn(args.steps)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "ppo.zip")
    venv.save(str(args.out / "vecnormalize.pkl"))
    save_obs_stats(args.out / "obs_stats.npz", venv)
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.0f} s; wrote {args.out}/ppo.zip, "
          f"vecnormalize.pkl, obs_stats.npz")


if __name__ == "__main__":
    main()

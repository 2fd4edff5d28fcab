"""Exact state entropy of the MiniGrid study's trained policies, on the room's tabular twin (issue 13).

    .venv/bin/python docs/scripts/results_minigrid_twin.py STUDY_DIR [--gamma 0.99] [--alpha 0.1]

For every trained policy of a `state-entropy` study on `minigrid_room` (STUDY_DIR/units/train/*), in
the nominal room and with the wall: the sampled policy pi(a|s) = softmax(logits(view(s))) on every
(x, y, direction) of the twin (`entrolab.envs.minigrid_room.tabular_twin`), then exactly
- H(d^pi), the entropy of its normalised discounted state occupancy (nats; at most log 256 = 5.55
  over the room's free cells x directions);
- V, the discounted probability of reaching the goal, sum_t gamma^t Pr(goal at t + 1);
- the robust value under Thm 3.1's worst-case state-reward decrease for `alpha` (the occupancy-
  weighted reward minus alpha log(n d^pi(s)); occupancy units), what state-entropy regularisation
  is robust to.
Writes STUDY_DIR/tables/twin.parquet (one row per run, seed, layout) and prints the means per run
with 95 % bootstrap intervals over seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from entrolab.checkpoint import load_policy
from entrolab.envs import make
from entrolab.envs.minigrid_room import layout, tabular_twin
from entrolab.stats import bootstrap_ci
from entrolab.tabular.solvers import evaluate_policy
from entrolab.tabular.state_entropy import robust_value, state_entropy, worst_case_reward


def twin_table(study: Path, gamma: float, alpha: float) -> pd.DataFrame:
    env, base = make("minigrid_room")
    twins = {name: tabular_twin(env, layout(name, base), gamma) for name in ("nominal", "wall")}
    rows = []
    for train_dir in sorted((study / "units" / "train").iterdir()):
        runs = pd.read_parquet(train_dir / "runs.parquet").sort_values("seed")
        for _, r in runs.iterrows():
            lp = load_policy(train_dir / r["checkpoint"])
            for name, (mdp, observations, initial) in twins.items():
                pi = jax.nn.softmax(lp.policy.apply(lp.params, jnp.asarray(observations))[0], axis=-1)
                delta = worst_case_reward(mdp, pi, initial, alpha)
                rows.append({"run": train_dir.name, "seed": int(r["seed"]), "layout": name,
                             "state_entropy": float(state_entropy(mdp, pi, initial)),
                             "value": float(evaluate_policy(mdp, pi).values @ initial),
                             "robust_value": float(robust_value(mdp, pi, initial, delta)),
                             "gamma": gamma, "alpha": alpha})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--alpha", type=float, default=0.1)
    args = parser.parse_args()
    table = twin_table(args.study, args.gamma, args.alpha)
    table.to_parquet(args.study / "tables" / "twin.parquet", index=False)
    print("run | layout | H(d^pi) [95% CI over seeds] | V | robust value")
    for (run, name), g in table.groupby(["run", "layout"], sort=False):
        cells = []
        for col in ("state_entropy", "value", "robust_value"):
            ci = bootstrap_ci(g[col].to_numpy())
            cells.append(f"{ci.estimate:.3f} [{ci.low:.3f}, {ci.high:.3f}]")
        print(f"{run} | {name} | " + " | ".join(cells))


if __name__ == "__main__":
    main()

"""The state-entropy study kind: the coefficient choice, the differences, the layout evaluator
against a plain Python loop (default suite), and the tiny studies (the continuous room, the MiniGrid room)
end to end (slow: ~3 and ~2 min)."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from entrolab.agents.policy import CategoricalPolicy, GaussianPolicy
from entrolab.envs import make
from entrolab.envs.room import layout
from entrolab.study.config import StudyConfigError, load_config, parse_config
from entrolab.studies.state_entropy.tables import differences, summarize
from entrolab.studies.state_entropy.units import choose, layout_episodes

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny-state-entropy.toml"
TINY_GRID = ROOT / "configs" / "tiny-state-entropy-minigrid.toml"


def test_the_largest_coefficient_within_the_budget_is_chosen():
    runs = pd.DataFrame({"alpha": [0.01, 0.01, 0.1, 0.1, 0.3, 0.3],
                         "eval_return_sto_mean": [0.96, 0.94, 0.93, 0.91, 0.5, 0.6]})
    # reference 0.95, 5 %: floor 0.9025; means 0.95, 0.92, 0.55 -> 0.1
    c = choose(runs, 0.95, 0.05, "policy")
    assert c["coefficient"] == 0.1 and c["within_budget"] and c["floor"] == pytest.approx(0.9025)
    assert not c["largest_candidate"] and choose(runs, 0.5, 0.05, "policy")["largest_candidate"]
    c = choose(runs, 0.95, 0.001, "policy")  # floor 0.94905: only 0.01 (mean 0.95)
    assert c["coefficient"] == 0.01
    c = choose(runs, 2.0, 0.05, "state")  # nothing reaches 1.9: the smallest candidate, flagged
    assert c["coefficient"] == 0.01 and not c["within_budget"]
    c = choose(runs.assign(eval_return_sto_mean=-runs["eval_return_sto_mean"]), -0.95, 0.05, "state")
    assert c["floor"] == pytest.approx(-0.9975)  # a negative reference: the floor is below it


def test_summary_and_differences_against_direct_computations():
    rng = np.random.default_rng(0)
    rows = [{"run": run, "seed": s, "layout": lay, "mode": "sampled", "success": float(rng.uniform())}
            for run in ("none", "state") for s in range(6) for lay in ("nominal", "wall")]
    success = pd.DataFrame(rows)
    summary = summarize(success, 500)
    direct = success.groupby(["run", "layout"])["success"].mean()
    for _, r in summary.iterrows():
        assert r["mean"] == pytest.approx(direct[r["run"], r["layout"]]) and r["low"] <= r["mean"] <= r["high"]
        assert r["seeds"] == 6
    diffs = differences(success, 2000)
    assert set(diffs["run"]) == {"state"} and len(diffs) == 2
    for _, r in diffs.iterrows():
        assert r["difference"] == pytest.approx(direct["state", r["layout"]] - direct["none", r["layout"]])
        assert r["low"] < r["difference"] < r["high"]
    # a run that always succeeds against one that never does: the interval is the point
    fixed = pd.DataFrame([{"run": run, "seed": s, "layout": "wall", "mode": "sampled", "success": v}
                          for run, v in (("none", 0.0), ("state", 1.0)) for s in range(4)])
    d = differences(fixed, 100).iloc[0]
    assert (d["difference"], d["low"], d["high"]) == (1.0, 1.0, 1.0)
    # the stored table adds the state-entropy runs against policy entropy (the paper's comparison)
    from entrolab.studies.state_entropy.tables import _all_differences

    three = pd.DataFrame([{**r, "run": "policy", "success": 0.5 * r["success"]} for r in rows if r["run"] == "none"]
                         + rows)
    table = _all_differences(three, 500)
    vp = table[table["reference"] == "policy"]
    assert set(vp["run"]) == {"state"} and len(vp) == 2
    for _, r in vp.iterrows():
        assert r["difference"] == pytest.approx(direct["state", r["layout"]] - 0.5 * direct["none", r["layout"]])
    assert set(table[table["reference"] == "none"]["run"]) == {"policy", "state"}


def test_layout_episodes_match_a_python_loop_over_env_step():
    """A policy whose mean is (1, 1) everywhere: the diagonal reaches the goal in 7 moves in the
    nominal room; the wall [4, 5] x [1, 6] stops it at (3.5, 3.5) for the rest of the episode."""
    env, base = make("room")
    policy = GaussianPolicy(obs_dim=13, action_dim=2, hidden_sizes=(4,), normalize_observations=False)
    params = policy.init(jax.random.key(0), -20.0)
    params["mean_net"] = jax.tree.map(jnp.zeros_like, params["mean_net"])
    params["mean_net"]["Dense_1"]["bias"] = jnp.asarray([5.0, 5.0])  # clipped to the action box
    stacked = jax.tree.map(lambda x: x[None], params)
    rooms = jax.tree.map(lambda *x: jnp.stack(x), layout("nominal", base), layout("wall", base))
    success, x, alive = layout_episodes(policy, stacked, env, rooms, jax.random.key(3), 200, True)
    assert success.shape == (1, 2) and x.shape == (1, 2, 200, 2)
    assert bool(success[0, 0]) and not bool(success[0, 1])
    assert int(alive[0, 0].sum()) == 7 and int(alive[0, 1].sum()) == 200
    # the same episodes by hand (each step jitted, the loop in Python)
    step, act = jax.jit(env.step), jax.jit(policy.deterministic_action)
    for i, room in enumerate((layout("nominal", base), layout("wall", base))):
        obs, state = env.reset(jax.random.key(0), room)
        reached, path = False, []
        for t in range(200):
            a = np.clip(np.asarray(act(params, obs)), -1, 1)
            obs, state, reward, term, trunc, info = step(jax.random.key(t), state, jnp.asarray(a), room)
            path.append(np.asarray(info["final_x"]))
            reached |= float(reward) > 0
            if bool(term) or bool(trunc):
                break
        assert reached == bool(success[0, i])
        np.testing.assert_allclose(np.asarray(x[0, i])[: len(path)], np.stack(path), atol=1e-6)
    np.testing.assert_allclose(x[0, 1, -1], [3.5, 3.5])


def test_layout_episodes_on_the_minigrid_room_match_a_python_loop():
    """A categorical policy of the view, greedy: the evaluator's successes and cell centres against
    env.step in a Python loop, in the nominal room and with the wall."""
    from entrolab.envs.minigrid_room import layout as grid_layout

    env, base = make("minigrid_room")
    policy = CategoricalPolicy(obs_dim=147, action_dim=3, hidden_sizes=(8,), normalize_observations=False)
    params = policy.init(jax.random.key(4))
    params["mean_net"] = jax.tree.map(lambda x: 300.0 * x, params["mean_net"])  # far from uniform
    rooms_list = [grid_layout("nominal", base), grid_layout("wall", base)]
    rooms = jax.tree.map(lambda *x: jnp.stack(x), *rooms_list)
    success, x, alive = layout_episodes(policy, jax.tree.map(lambda v: v[None], params), env, rooms,
                                        jax.random.key(3), 200, True)
    assert x.shape == (1, 2, 200, 2)
    step, act = jax.jit(env.step), jax.jit(policy.deterministic_action)
    for i, room in enumerate(rooms_list):
        obs, state = env.reset(jax.random.key(0), room)
        reached, path = False, []
        for t in range(200):
            obs, state, reward, term, trunc, info = step(jax.random.key(t), state, act(params, obs), room)
            path.append(np.asarray(info["final_x"])[:2] + 0.5)
            reached |= float(reward) > 0
            if bool(term) or bool(trunc):
                break
        assert reached == bool(success[0, i]) and int(alive[0, i].sum()) == len(path)
        np.testing.assert_array_equal(np.asarray(x[0, i])[: len(path)], np.stack(path))
    assert len({tuple(p) for p in np.asarray(x[0, 0])}) > 1  # the policy moves


def test_config_mistakes_are_clear_errors():
    base = {"kind": "state-entropy", "name": "x"}
    assert parse_config(base).methods == ["none", "policy", "state", "both"]
    assert parse_config({**base, "env": "minigrid_room"}).env == "minigrid_room"
    for change, message in [({"env": "lorenz"}, "layouts are the rooms"),
                            ({"ppo": {"ent_coef": 0.1}}, "cannot be set here"),
                            ({"ppo": {"state_entropy_k": 3}}, "set by \\[bonus\\]"),
                            ({"ppo": {"num_envs": 6}, "rollout_counts": [4]}, "multiple"),
                            ({"methods": ["none", "policy"], "rollout_counts": [4]}, "add it to methods"),
                            ({"evaluate": {"layouts": ["wall"]}}, "include 'nominal'"),
                            ({"select": {"max_cost": 1.5}}, "max_cost")]:
        with pytest.raises(StudyConfigError, match=message):
            parse_config({**base, **change})
    assert load_config(ROOT / "configs" / "state-entropy-room.toml").rollout_counts == [4, 8, 16, 32]


@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path):
    from entrolab.checkpoint import load_policy
    from entrolab.measures.robustness import stack_pytrees
    from entrolab.study.runner import run_study
    from entrolab.study.tables import load_tables
    from entrolab.study.units import unit_key
    from entrolab.studies.state_entropy.units import layout_batch

    out = tmp_path / "study"
    run_study(TINY, out)
    config, tables = load_config(TINY), load_tables(out)
    runs_per_method = {"none", "policy", "state", "both", "state_r4"}
    assert set(tables["runs"]["run"]) == runs_per_method
    success = tables["success"]
    assert len(success) == len(runs_per_method) * config.seeds * len(config.evaluate.layouts) * 2
    # each chosen coefficient is choose() on the selection table, and the trained runs use it
    sel = tables["selection"]
    reference = sel[sel["method"] == "none"]["eval_return_sto_mean"].mean()
    for _, c in tables["choices"].iterrows():
        again = choose(sel[sel["method"] == c["method"]], reference, config.select.max_cost, c["method"])
        assert again["coefficient"] == c["coefficient"]
    runs = tables["runs"]
    chosen = dict(zip(tables["choices"]["method"], tables["choices"]["coefficient"]))
    both = runs[runs["run"] == "both"]
    assert np.allclose(both["hp_ent_coef"], chosen["policy"]) and np.allclose(both["hp_state_ent_coef"], chosen["state"])
    assert (runs[runs["run"] == "none"][["hp_ent_coef", "hp_state_ent_coef"]] == 0).all().all()
    assert (runs["seed"] >= 1000).all()  # fresh seeds
    # one seed's wall success, recomputed from its checkpoint
    r = runs[runs["run"] == "state"].sort_values("seed").iloc[0]
    lp = load_policy(out / "units" / "train" / "state" / r["checkpoint"])
    env, _ = make("room")
    layouts = layout_batch(config, "wall", unit_key(config.seed, "layouts/wall"))
    ok, _, _ = layout_episodes(lp.policy, stack_pytrees([lp.params]), env, layouts,
                               unit_key(config.seed, "episodes/wall"), 200, False)
    stored = success[(success["run"] == "state") & (success["seed"] == r["seed"]) & (success["layout"] == "wall")
                     & (success["mode"] == "sampled")]["success"].iloc[0]
    assert float(np.asarray(ok).mean()) == pytest.approx(stored)
    visits = tables["visits"]
    assert np.allclose(visits.groupby(["run", "layout", "mode"])["frequency"].sum(), 1.0)
    report = (out / "report" / "report.md").read_text()
    assert "Does state entropy buy robustness" in report and "rollouts" in report
    assert json.loads((out / "config.json").read_text())["kind"] == "state-entropy"


@pytest.mark.slow
def test_tiny_minigrid_study_end_to_end(tmp_path):
    """The same study kind on the MiniGrid room (a categorical policy, the bonus on the room's state
    features): every table, heat maps over the grid's cells."""
    from entrolab.study.runner import run_study
    from entrolab.study.tables import load_tables

    run_study(TINY_GRID, tmp_path / "study")
    config, tables = load_config(TINY_GRID), load_tables(tmp_path / "study")
    assert set(tables["runs"]["run"]) == {"none", "state"}
    assert len(tables["success"]) == 2 * config.seeds * len(config.evaluate.layouts) * 2
    visits = tables["visits"]
    assert set(visits["x"]) == {i + 0.5 for i in range(1, 9)}  # one bin per cell of the free room
    nominal = visits[(visits["layout"] == "nominal") & (visits["run"] == "none")]
    assert nominal.groupby("mode")["frequency"].sum().round(6).eq(1.0).all()

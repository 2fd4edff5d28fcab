"""How close entrolab's SAC update runs to this machine's matrix-product speed, for 1 and 20 agents.

SAC with (256, 256) networks is arithmetic-bound (benchmarks/sac.py): almost all of an update's
FLOPs are matrix products. So the useful question is not "how many updates per second" but
"what fraction of the time the products alone would take". This script answers it directly:

1. It compiles the training program (`sac.run`, as `train_sweep` does: `jit` for 1 agent,
   `jit(vmap)` for 20), runs the warm-up, and times calls of `--chunk` iterations, each one
   env step plus one gradient step per agent.
2. It reads every matrix product of one update from the lowered program
   (`stablehlo.dot_general`: operand shapes, batch and contracting dimensions), and compiles a
   reference program that does exactly those products, `--chunk` times, and nothing else (each
   iteration passes the loop-carried operands through an optimisation barrier, so no product is
   hoisted out of the loop, and carries the outputs, so none is dead; the operands are arguments,
   not constants captured by the program).
3. It times the two programs alternately (`--repeats` rounds, best call of each), so both see
   the same machine load, and reports

       fraction = (product FLOPs per update x updates/s) / (product FLOPs / reference time)
                = reference time / training time,

   i.e. the training program's achieved GFLOP/s on its products divided by the GFLOP/s of plain
   batched products of the same shapes. 100 % would mean everything else (the env, buffer
   sampling, elementwise work, optimiser, the loop) costs nothing.

The products of both branches of the update's warm-up `cond` are counted; the warm-up branch's
are 1-row actor products (under 0.1 % of the FLOPs). XLA's own cost analysis of the update (all
FLOPs, elementwise included) is recorded beside it.

    .venv/bin/python benchmarks/sac_efficiency.py            # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/sac_efficiency.py --quick    # under a minute

Writes `benchmarks/results/sac_efficiency.json` (or `--out`). Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _workers import make_record, peak_rss_self_mb, write_record  # noqa: E402  (benchmarks/_workers.py)

ENV = "gymnax:Pendulum-v1"
HIDDEN = (256, 256)
BATCH_SIZE = 256
GOAL = 0.60

_DOT = re.compile(
    r"stablehlo\.dot_general .*?(?:batching_dims = \[([\d, ]*)\] x \[([\d, ]*)\], )?"
    r"contracting_dims = \[([\d, ]*)\] x \[([\d, ]*)\].*?: \(tensor<([^>]*)>, tensor<([^>]*)>\)"
)


def _dims(text: str) -> tuple[int, ...]:
    return tuple(int(d) for d in text.split(",") if d.strip())


def _shape(tensor_type: str) -> tuple[int, ...]:
    *dims, dtype = tensor_type.split("x")
    assert dtype == "f32", f"only float32 products expected, got {tensor_type}"
    return tuple(int(d) for d in dims)


def dot_products(stablehlo: str) -> list[dict]:
    """Every `dot_general` of a lowered program: operand shapes, dimension numbers and FLOPs
    (2 x output elements x contracted length)."""
    out = []
    for line in stablehlo.splitlines():
        if "stablehlo.dot_general" not in line:
            continue
        m = _DOT.search(line)
        if m is None:
            raise ValueError(f"cannot read this product: {line.strip()[:200]}")
        lb, rb, lc, rc = (_dims(g or "") for g in m.groups()[:4])
        lhs, rhs = _shape(m.group(5)), _shape(m.group(6))
        free_l = [d for i, d in enumerate(lhs) if i not in lb and i not in lc]
        free_r = [d for i, d in enumerate(rhs) if i not in rb and i not in rc]
        out_elems = math.prod(lhs[i] for i in lb) * math.prod(free_l) * math.prod(free_r)
        flops = 2 * out_elems * math.prod(lhs[i] for i in lc)
        out.append({"lhs": lhs, "rhs": rhs, "dims": ((lc, rc), (lb, rb)), "flops": flops})
    return out


def reference_program(products: list[dict], iterations: int):
    """A compiled program doing exactly `products`, `iterations` times, and its inputs."""
    import jax

    keys = jax.random.split(jax.random.key(0), 2 * len(products))
    operands = [(jax.random.normal(keys[2 * i], p["lhs"]), jax.random.normal(keys[2 * i + 1], p["rhs"]))
                for i, p in enumerate(products)]

    def dots(ops):
        return tuple(jax.lax.dot_general(a, b, p["dims"]) for p, (a, b) in zip(products, ops))

    def body(_, carry):
        # the operands are loop-carried and pass through an optimisation barrier every iteration,
        # so XLA cannot hoist a product out of the loop; the outputs are carried, so none is dead
        ops = jax.lax.optimization_barrier(carry[0])
        return ops, dots(ops)

    program = jax.jit(lambda ops: jax.lax.fori_loop(0, iterations, body, (ops, dots(ops))))
    program = program.lower(operands).compile()  # operands are arguments, not captured constants
    program_input = (operands,)
    return program, program_input


def measure(agents: int, adaent: bool, chunk: int, repeats: int, adaent_chunk: int | None) -> dict:
    import jax
    import numpy as np

    from entrolab.agents.sac import SACConfig, SACHParams, make_train, stack_hparams
    from entrolab.envs import make

    env, params = make(ENV)
    learning_starts = 1000
    config = SACConfig(
        total_timesteps=learning_starts + chunk * (repeats + 1), buffer_size=100_000, batch_size=BATCH_SIZE,
        learning_starts=learning_starts, hidden_sizes=HIDDEN, activation="relu", adaent=adaent,
        adaent_num_actions=100, adaent_chunk=adaent_chunk, log_interval=chunk,
    )
    sac = make_train(config, env, params)
    hp = SACHParams(actor_lr=1e-3, critic_lr=1e-3, gamma=0.99, tau=0.005, alpha=0.2).check(config)
    keys = jax.random.split(jax.random.key(0), agents)
    batched = (lambda f: f) if agents == 1 else (lambda f: jax.vmap(f, in_axes=(0, 0, None)))
    hp_run = hp if agents == 1 else stack_hparams([hp] * agents)
    # `init_batch`, not `vmap(init)`: a vmapped orthogonal initialiser deadlocks on a 2-core CPU
    state = jax.jit(sac.init)(keys[0], hp, params) if agents == 1 else sac.init_batch(keys, hp_run, params)
    warmup = functools.partial(sac.run, num_iterations=learning_starts // config.num_envs, phase="warmup")
    run = jax.jit(batched(functools.partial(sac.run, num_iterations=chunk)))
    update = jax.jit(batched(sac.update))
    # the warm-up: random actions into the buffer, no gradient step (as `run_chunks` does it)
    state, _ = jax.block_until_ready(jax.jit(batched(warmup))(state, hp_run, params))
    products = dot_products(update.lower(state, hp_run, params).as_text())
    cost = update.lower(state, hp_run, params).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    train = run.lower(state, hp_run, params).compile()
    reference, reference_input = reference_program(products, chunk)

    state, _ = jax.block_until_ready(train(state, hp_run, params))  # first calls: warm-up
    jax.block_until_ready(reference(*reference_input))
    train_s, reference_s = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        state, metrics = jax.block_until_ready(train(state, hp_run, params))
        train_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        jax.block_until_ready(reference(*reference_input))
        reference_s.append(time.perf_counter() - t)
    assert np.all(np.isfinite(np.asarray(metrics["critic_loss"]))), "the timed calls must all be gradient steps"
    dot_flops = sum(p["flops"] for p in products)  # all agents, one update each
    updates_per_s = agents * chunk / min(train_s)
    achieved = dot_flops * chunk / min(train_s) / 1e9
    plain = dot_flops * chunk / min(reference_s) / 1e9
    return {
        "algorithm": "sac-adaent" if adaent else "sac", "agents": agents, "chunk_iterations": chunk,
        "adaent_num_actions": 100 if adaent else None, "adaent_chunk": adaent_chunk,
        "repeats": repeats, "train_s": train_s, "reference_s": reference_s,
        "updates_per_s": updates_per_s, "products_per_update": len(products) / agents,
        "product_gflop_per_update": dot_flops / agents / 1e9,
        "xla_cost_gflop_per_update": float(cost.get("flops", float("nan"))) / agents / 1e9,
        "achieved_product_gflop_per_s": achieved, "reference_gflop_per_s": plain,
        "fraction": achieved / plain, "vmhwm_mb": peak_rss_self_mb(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="short run")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per row (default 5, quick 2)")
    parser.add_argument("--no-adaent", action="store_true", help="skip the SAC-AdaEnt rows")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sac_efficiency.json")
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from envs import machine_info  # noqa: E402  (benchmarks/envs.py)

    repeats = args.repeats or (2 if args.quick else 5)
    scale = 4 if args.quick else 1
    plan = [("sac", 1, 400 // scale, None), ("sac", 20, 40 // scale, None)]
    if not args.no_adaent:
        plan += [("sac-adaent", 1, 20 // scale, None), ("sac-adaent", 20, 2, None)]
    console = Console(width=max(Console().width, 120))
    info = machine_info()
    console.print(f"[bold]SAC products vs plain products[/] on {info['device']} ({info['cpu_model']}, "
                  f"{info['cpus_usable']} usable cores), jax {info['jax']}")
    started = time.perf_counter()
    rows = []
    for algo, agents, chunk, adaent_chunk in plan:
        console.print(f"[dim]{algo}, {agents} agent(s), {chunk} iterations per call ...[/]")
        rows.append(measure(agents, algo == "sac-adaent", chunk, repeats, adaent_chunk))
    table = Table(title=f"SAC (256, 256) on {ENV}: time on matrix products as a fraction of plain products' time")
    for col in ["algorithm", "agents", "AdaEnt chunk", "updates/s", "product GFLOP/update", "achieved GFLOP/s",
                "plain products GFLOP/s", "fraction"]:
        table.add_column(col, justify="left" if col == "algorithm" else "right")
    for r in rows:
        table.add_row(r["algorithm"], str(r["agents"]), str(r["adaent_chunk"] or "-"), f"{r['updates_per_s']:,.1f}",
                      f"{r['product_gflop_per_update']:.3f}", f"{r['achieved_product_gflop_per_s']:.1f}",
                      f"{r['reference_gflop_per_s']:.1f}", f"{100 * r['fraction']:.0f} %")
    console.print(table)
    record = make_record(
        "benchmarks/sac_efficiency.py", argv, info, started,
        settings={"env": ENV, "hidden_sizes": HIDDEN, "batch_size": BATCH_SIZE, "repeats": repeats,
                  "quick": args.quick},
        goal={"fraction": GOAL, "result": {f"{r['algorithm']}_{r['agents']}_{r['adaent_chunk']}": r["fraction"]
                                          for r in rows}},
        results=rows,
    )
    write_record(args.out, record)
    console.print(f"wrote {args.out} ({record['total_wall_s']:.0f} s)")
    return record


if __name__ == "__main__":
    main()

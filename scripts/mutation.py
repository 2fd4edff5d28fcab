"""Mutation check of the core maths modules with cosmic-ray (issue 15, item 5). Not part of CI.

Usage (from the repository root, with the `mutation` extra installed: pip install -e ".[mutation]"):

    .venv/bin/python scripts/mutation.py                      # every module below (18 min on 2 cores, 2026-12-02)
    .venv/bin/python scripts/mutation.py --modules stats      # one or more of them
    .venv/bin/python scripts/mutation.py --dry-run            # only count the mutants
    .venv/bin/python scripts/mutation.py --rerun-survivors    # after adding tests: run again only the
                                                              # mutants that survived the last run
    .venv/bin/python scripts/mutation.py --report             # tally the sessions of the last run again

What it does, per module: copies src/, tests/ and pyproject.toml into a scratch folder (default
/tmp/entrolab-mutation, --workdir), so that the mutants are never written into the working tree
(cosmic-ray mutates the file on disk, and other processes may import entrolab from here meanwhile);
imports entrolab from that copy (PYTHONPATH); runs `cosmic-ray init`, skips the mutants this script
does not use (below), runs the module's fast tests once unmutated (the baseline: it must pass; the
per-mutant timeout is 3 x its time + 30 s), then `cosmic-ray exec`, one mutant at a time (one test
process at a time). Each mutant's tests run as

    python -m pytest -q -x -p no:randomly -p no:cacheprovider -m "not slow" <the module's tests>

plus, where tests/test_mutation_guards.py has a class for the module, that class. A mutant is
"killed" when the tests fail, "timeout" when they ran past the timeout (cosmic-ray counts it as
killed; counted apart here) and "survived" when they pass.

Mutants used (to keep a run within about half an hour on two cores): of cosmic-ray's 213
operators, the ones in OPERATORS (arithmetic + <-> -, * <-> /, ** -> *, // -> /, comparison
boundaries < <-> <=, > <-> >=, == <-> !=, is <-> is not, deleting a unary minus or a `not`,
number literals +-1, True <-> False, and <-> or, zero-iteration for loops, an added `not` on
if/while conditions); the other operators (every arithmetic operator into every other, shifts and
bitwise operators, variable replacement) multiply the count by about ten and mostly give mutants
that crash at once. Mutants inside default argument values and annotations are skipped (a changed
default is not the maths; the tests pass explicit arguments). A module may also be restricted to
some functions (Target.functions): the JSON says which.

Output: a table (module, mutants, killed, survived, timeout, skipped, incompetent) on stdout and
benchmarks/results/mutation.json, with every survivor's function, line, operator and diff.
`--rerun-survivors` reuses the last session of each module in --workdir (the mutated functions
must be unchanged; edits elsewhere in the module are fine: mutants are matched by function and
position within it), keeps its killed mutants and runs the survivors again with the current tests.
A module whose mutated functions changed is skipped with a message: run it afresh.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
GUARDS = "tests/test_mutation_guards.py"

OPERATORS = re.compile(
    r"core/(ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|Pow_Mul|FloorDiv_Div)"
    r"|ReplaceComparisonOperator_(Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Eq_NotEq|NotEq_Eq|Is_IsNot|IsNot_Is)"
    r"|ReplaceUnaryOperator_(Delete_USub|Delete_Not)"
    r"|NumberReplacer|ReplaceTrueWithFalse|ReplaceFalseWithTrue|ReplaceAndWithOr|ReplaceOrWithAnd"
    r"|ZeroIterationForLoop|AddNot)$"
)


@dataclass(frozen=True)
class Target:
    module: str  # path of the module, from the repository root
    tests: tuple[str, ...]  # pytest arguments: files or node ids (fast ones first: -x stops at the first failure)
    guards: str  # the class of tests/test_mutation_guards.py for this module
    functions: tuple[str, ...] | None = None  # only mutants inside these top-level functions/classes


TARGETS = {
    "stats": Target("src/entrolab/stats.py", ("tests/test_stats.py",), "TestStats",
                    ("kendall_tau_b", "percentile_interval")),
    "ppo_losses": Target(
        "src/entrolab/agents/ppo/losses.py",
        ("tests/test_ppo.py::test_gae_matches_naive_loop_with_terminations_and_truncations",
         "tests/test_ppo.py::test_gae_bootstraps_on_truncation_not_on_termination",
         "tests/test_ppo.py::test_clipped_surrogate_and_explained_variance"),
        "TestPPOLosses", ("gae", "clipped_surrogate")),
    "fisher": Target(
        "src/entrolab/measures/fisher.py",
        ("tests/test_complexity.py::test_fisher_trace_of_a_linear_policy_in_closed_form",
         "tests/test_complexity.py::test_fisher_parts_sum_to_the_trace_and_split_the_sigma_factor",
         "tests/test_complexity.py::test_summarize_matches_numpy_and_scipy",
         "tests/test_complexity.py::test_fisher_trace_vmaps_over_a_stack_of_policies",
         "tests/test_complexity.py::test_fisher_trace_matches_monte_carlo"),
        "TestFisher", ("fisher_trace", "_sum_squares_per_output")),
    "knn_entropy": Target("src/entrolab/measures/state_entropy.py", ("tests/test_knn_entropy.py",), "TestKnnEntropy",
                          ("_kth_distances", "knn_entropy")),
    "tabular_state_entropy": Target("src/entrolab/tabular/state_entropy.py", ("tests/test_state_entropy.py",),
                                    "TestTabularStateEntropy", ("_entropy", "occupancy", "worst_case_reward")),
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 1)  # NaN (not measured) as null


def _functions_sha(source: str, functions: tuple[str, ...] | None) -> str:
    """Hash of the mutated part of a module: the selected top-level definitions (all of it when None)."""
    if functions is None:
        return hashlib.sha256(source.encode()).hexdigest()[:16]
    tree = ast.parse(source)
    parts = [ast.get_source_segment(source, node) or "" for node in tree.body
             if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in functions]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _copy_tree(work: Path) -> None:
    if work.exists():
        for name in ("src", "tests"):
            shutil.rmtree(work / name, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", work / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")


def _env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(work / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def _test_command(target: Target, work: Path) -> tuple[str, list[str]]:
    args = list(target.tests)
    guards = work / GUARDS
    if guards.exists() and re.search(rf"^class {target.guards}\b", guards.read_text(), re.MULTILINE):
        args.append(f"{GUARDS}::{target.guards}")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", "-p", "no:cacheprovider",
           "-m", "not slow", *args]
    return shlex.join(cmd), args


def _skipped_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of default argument values and annotations."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            parts = [*a.defaults, *(d for d in a.kw_defaults if d is not None), node.returns]
            parts += [arg.annotation for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg)
                      if arg is not None]
            spans += [((p.lineno, p.col_offset), (p.end_lineno, p.end_col_offset)) for p in parts if p is not None]
        elif isinstance(node, ast.AnnAssign):
            spans.append(((node.annotation.lineno, node.annotation.col_offset),
                          (node.annotation.end_lineno, node.annotation.end_col_offset)))
    return spans


def _top_level_ranges(source: str) -> dict[str, tuple[int, int]]:
    return {node.name: (node.lineno, node.end_lineno) for node in ast.parse(source).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def _enclosing(line: int, ranges: dict[str, tuple[int, int]]) -> str:
    return next((name for name, (a, b) in ranges.items() if a <= line <= b), "<module>")


def _filter(db, target: Target, source: str) -> dict[str, int]:
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    spans = _skipped_spans(source)
    ranges = _top_level_ranges(source)
    counts = {"operator": 0, "default_or_annotation": 0, "function": 0}
    for item in db.pending_work_items:
        (m,) = item.mutations
        start = tuple(m.start_pos)
        reason = None
        if not OPERATORS.match(m.operator_name):
            reason = "operator"
        elif any(a <= start < b for a, b in spans):
            reason = "default_or_annotation"
        elif target.functions is not None and _enclosing(start[0], ranges) not in target.functions:
            reason = "function"
        if reason:
            counts[reason] += 1
            db.set_result(item.job_id, WorkResult(output=f"skipped by scripts/mutation.py: {reason}",
                                                  worker_outcome=WorkerOutcome.SKIPPED))
    return counts


def _keys(items, ranges) -> dict[tuple, object]:
    """A key per mutant that survives edits elsewhere in the module: operator, function, position
    relative to the function's first line, and rank among that operator's mutants in the function."""
    first: dict[tuple, int] = {}
    for item in items:
        m = item.mutations[0]
        k = (m.operator_name, _enclosing(m.start_pos[0], ranges))
        first[k] = min(first.get(k, m.occurrence), m.occurrence)
    out = {}
    for item in items:
        m = item.mutations[0]
        fn = _enclosing(m.start_pos[0], ranges)
        line0 = ranges.get(fn, (0, 0))[0]
        out[(m.operator_name, fn, m.start_pos[0] - line0, m.start_pos[1], m.end_pos[0] - line0, m.end_pos[1],
             m.occurrence - first[(m.operator_name, fn)])] = item
    return out


def _cosmic_ray(*args: str, work: Path) -> None:
    exe = Path(sys.executable).with_name("cosmic-ray")
    subprocess.run([str(exe), *args], cwd=work, env=_env(work), check=True)


def run_module(name: str, target: Target, work: Path, dry_run: bool, rerun: bool, report: bool = False) -> dict:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome

    source = (work / target.module).read_text()
    session = work / f"{name}.sqlite"
    previous = work / f"{name}.previous.sqlite"
    meta = work / f"{name}.sha"
    stale = not session.exists() or not meta.exists() or meta.read_text() != _functions_sha(source, target.functions)
    if (rerun or report) and stale:
        print(f"[{name}] no earlier session for this source (or the mutated functions changed): skipped; "
              "run it without --rerun-survivors / --report", flush=True)
        return {}
    if rerun:
        shutil.copy2(session, previous)
    command, test_args = _test_command(target, work)
    timeout = 600.0
    baseline_s = elapsed = float("nan")
    if report:
        return _tally(name, target, work, source, session, command, test_args, None, baseline_s, elapsed, True)
    if not dry_run:
        start = time.perf_counter()
        base = subprocess.run(shlex.split(command), cwd=work, env=_env(work), capture_output=True, text=True,
                              check=False)
        baseline_s = time.perf_counter() - start
        if base.returncode != 0:
            raise SystemExit(f"{name}: the tests fail without a mutant:\n{base.stdout[-3000:]}\n{base.stderr[-3000:]}")
        timeout = round(3 * baseline_s + 30.0)
    config = work / f"{name}.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(target.module)}\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    _cosmic_ray("init", "--force", str(config), str(session), work=work)
    kept_source = work / f"{name}.source.py"  # the source this session mutates (for --rerun-survivors)
    old_ranges = _top_level_ranges(kept_source.read_text()) if rerun else {}
    meta.write_text(_functions_sha(source, target.functions))
    kept_source.write_text(source)
    ranges = _top_level_ranges(source)
    with use_db(str(session)) as db:
        skipped = _filter(db, target, source)
        (work / f"{name}.skipped.json").write_text(json.dumps(skipped))
        reused = 0
        if rerun:  # keep the earlier verdict of every mutant that did not survive
            with use_db(str(previous), WorkDB.Mode.open) as old:
                done = old.completed_work_items
            results = {item.job_id: result for item, result in done}
            earlier = {k: results[item.job_id] for k, item in _keys([i for i, _ in done], old_ranges).items()}
            for k, item in _keys(db.pending_work_items, ranges).items():
                result = earlier.get(k)
                if result is not None and result.test_outcome != TestOutcome.SURVIVED:
                    db.set_result(item.job_id, result)
                    reused += 1
        pending = len(db.pending_work_items)
    print(f"[{name}] {pending} mutants to run (skipped: {skipped}; reused from the last run: {reused}); "
          f"timeout {timeout:.0f} s; tests: {command}", flush=True)
    if dry_run:
        return {"module": target.module, "to_run": pending, "skipped": skipped}
    start = time.perf_counter()
    _cosmic_ray("exec", str(config), str(session), work=work)
    elapsed = time.perf_counter() - start
    return _tally(name, target, work, source, session, command, test_args, timeout, baseline_s, elapsed, rerun)


def _tally(name, target, work, source, session, command, test_args, timeout, baseline_s, elapsed, rerun) -> dict:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    ranges = _top_level_ranges(source)
    skipped_file = work / f"{name}.skipped.json"
    skipped = json.loads(skipped_file.read_text()) if skipped_file.exists() else {}
    counts = {"mutants": 0, "killed": 0, "survived": 0, "timeout": 0, "incompetent": 0, "skipped": 0}
    survivors = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        done = db.completed_work_items
    for item, result in done:
        (m,) = item.mutations
        if result.worker_outcome == WorkerOutcome.SKIPPED:
            counts["skipped"] += 1
            continue
        counts["mutants"] += 1
        if result.test_outcome == TestOutcome.SURVIVED:
            counts["survived"] += 1
            survivors.append({"function": _enclosing(m.start_pos[0], ranges), "line": m.start_pos[0],
                              "operator": m.operator_name, "occurrence": m.occurrence,
                              "diff": "\n".join(line for line in (result.diff or "").splitlines()
                                                if line[:1] in "+-" and line[:3] not in ("+++", "---"))})
        elif result.test_outcome == TestOutcome.KILLED and result.output == "timeout":
            counts["timeout"] += 1
        elif result.test_outcome == TestOutcome.KILLED:
            counts["killed"] += 1
        else:
            counts["incompetent"] += 1
    survivors.sort(key=lambda s: (s["line"], s["operator"], s["occurrence"]))
    return {"module": target.module, "source_sha256_16": _sha(work / target.module), "tests": test_args,
            "functions": list(target.functions) if target.functions else "all", "timeout_s": timeout,
            "command": command.replace(sys.executable, "python"),
            "baseline_s": _round(baseline_s), "elapsed_s": _round(elapsed), "rerun_survivors_only": rerun,
            **counts, "skipped_by_reason": skipped, "survivors": survivors}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modules", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/entrolab-mutation"))
    parser.add_argument("--dry-run", action="store_true", help="count the mutants, run nothing")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="run only the mutants that survived the last run of each module, with the current tests")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: tally the sessions left in --workdir by the last run (e.g. an interrupted one)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--all-functions", action="store_true",
                        help="mutate every function of the modules (about 660 mutants, some hours on 2 cores)")
    args = parser.parse_args(argv)

    from importlib.metadata import version

    import cosmic_ray  # noqa: F401  (fail early when the extra is not installed)

    work = args.workdir.resolve()
    if work == ROOT or ROOT in work.parents:
        raise SystemExit("--workdir must be outside the repository: the mutants are written there")
    if not args.report:
        _copy_tree(work)
    results = {}
    for name in args.modules:
        target = TARGETS[name]
        if args.all_functions:
            target = Target(target.module, target.tests, target.guards, None)
        result = run_module(name, target, work, args.dry_run, args.rerun_survivors, args.report)
        if result:
            results[name] = result
    if args.dry_run:
        return 0

    header = ("module", "mutants", "killed", "survived", "timeout", "skipped", "incompetent")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(str(r[h]) for h in header[1:]) + " |")
    for name, r in results.items():
        for s in r["survivors"]:
            print(f"  survivor {name}:{s['line']} in {s['function']} ({s['operator']}): {s['diff']!r}")

    out = json.loads(args.output.read_text()) if args.output.exists() else {}
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                         check=False).stdout.strip()
    modules = out.setdefault("modules", {})
    for name, r in results.items():
        if (args.rerun_survivors or args.report) and name in modules:  # keep the first run's counts
            first = modules[name].get("before") or modules[name]
            r["before"] = {k: first[k] for k in ("mutants", "killed", "survived", "timeout", "incompetent", "skipped")}
        modules[name] = r
    out.update({"tool": f"cosmic-ray {version('cosmic-ray')}", "python": sys.version.split()[0], "git_head": git,
                "date": datetime.date.today().isoformat(), "operators": OPERATORS.pattern})
    out.setdefault("commands", []).append("python scripts/mutation.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.output.relative_to(ROOT) if ROOT in args.output.parents else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

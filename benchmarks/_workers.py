"""Plumbing shared by the benchmark scripts (benchmarks/ppo.py, sac.py, envs.py).

- `Workers`: run one configuration of a script in its own subprocess
  (`python SCRIPT worker --result TMP.json ARGS...`), reap it with `os.wait4`
  so that the child's own peak resident memory (`ru_maxrss`) comes back, kill
  it after a timeout (a hung worker is never waited on forever), and run N
  identical workers side by side with their rates aggregated;
- `add_worker_command`: the `worker --result PATH` subcommand that
  `Workers.spawn` runs;
- `peak_rss_self_mb`: a worker's own `VmHWM`, the cross-check of `ru_maxrss`;
- `make_record`, `write_record`: the JSON record every script writes.

Standard library only: a worker imports it before it sets `XLA_FLAGS` and
imports jax. The scripts find it as a sibling module (`sys.path` holds
`benchmarks/`, the script's own folder, when run as `python benchmarks/x.py`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# (worker command-line tail: the result path and the worker's arguments, why it failed, its peak RSS in MB) -> row
FailureRow = Callable[[list[str], str, float], dict]


def add_worker_command(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `worker` subcommand (`args.cmd == "worker"`) with its `--result PATH`, where the
    worker writes its row as JSON; returns it, for the script's own worker options."""
    worker = parser.add_subparsers(dest="cmd").add_parser("worker")
    worker.add_argument("--result", type=Path, required=True)
    return worker


def peak_rss_self_mb() -> float | None:
    """This process's peak resident memory (`VmHWM`) in MB, None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


@dataclass(frozen=True)
class Workers:
    """How one script runs its worker subprocesses.

    script: the script to run (`__file__`); it must accept `worker --result PATH ...`
        and write its row there as JSON.
    timeout_s: a worker still running after this long is killed and gets `failure_row`.
    rate_keys: the row's rates, summed over side-by-side workers; the first one is
        also kept per process (`per_process_<key>`).
    failure_row: the row of a worker that was killed (or, unless `raise_on_error`,
        that exited with a non-zero code), from (args, why, peak RSS in MB).
    raise_on_error: a non-zero exit code raises RuntimeError instead.
    agents_are_processes: the aggregate row of N side-by-side workers has `agents` = N.
    """

    script: str | Path
    timeout_s: int | float
    rate_keys: Sequence[str]
    failure_row: FailureRow
    raise_on_error: bool = False
    agents_are_processes: bool = False

    def spawn(self, args: list[str]) -> tuple[subprocess.Popen, Path, float]:
        """Start one worker with a fresh temporary result file; (process, result path, deadline)."""
        fd, path = tempfile.mkstemp(suffix=".json", prefix=f"{Path(self.script).stem}_bench_")
        os.close(fd)
        proc = subprocess.Popen([sys.executable, str(self.script), "worker", "--result", path, *args])
        return proc, Path(path), time.monotonic() + self.timeout_s

    def reap(self, proc: subprocess.Popen, path: Path, deadline: float) -> dict:
        """Wait for a worker (killing it past its deadline); its row with `peak_rss_mb`."""
        killed = False
        while True:  # os.wait4 (not Popen.wait) so that the child's own rusage comes back
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if not killed and time.monotonic() > deadline:
                proc.kill()
                killed = True
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak_rss_mb = usage.ru_maxrss / 1024.0  # Linux: kilobytes
        if not killed and proc.returncode != 0 and self.raise_on_error:
            raise RuntimeError(f"worker {proc.args} failed with exit code {proc.returncode}")
        if killed or proc.returncode != 0:
            path.unlink(missing_ok=True)
            why = f"killed after {self.timeout_s} s" if killed else f"exit code {proc.returncode}"
            return self.failure_row(list(proc.args)[4:], why, peak_rss_mb)
        row = json.loads(path.read_text())
        path.unlink()
        row["peak_rss_mb"] = peak_rss_mb
        return row

    def run(self, args: list[str], parallel: int = 1) -> dict:
        """Run `parallel` identical workers side by side; one row (aggregate rates if parallel > 1)."""
        load = os.getloadavg()
        t0 = time.perf_counter()
        started = [self.spawn(args) for _ in range(parallel)]
        rows = [self.reap(*one) for one in started]
        wall = time.perf_counter() - t0
        row = rows[0]
        if parallel > 1:
            row = dict(row)
            if self.agents_are_processes:
                row["agents"] = parallel
            row["parallel_processes"] = parallel
            for key in self.rate_keys:
                row[key] = sum(r[key] for r in rows)
            row[f"per_process_{self.rate_keys[0]}"] = [r[self.rate_keys[0]] for r in rows]
            row["peak_rss_mb"] = sum(r["peak_rss_mb"] for r in rows)
            row["peak_rss_mb_per_process"] = [r["peak_rss_mb"] for r in rows]
        row["wall_s_including_startup"] = wall
        row["load_average_before"] = list(load)
        return row


# ---------------------------------------------------------------------- the JSON record
def make_record(benchmark: str, argv: list[str] | None, machine: dict, started: float, **body) -> dict:
    """A script's record: benchmark, command, date, machine, then `body` (settings, goal,
    results, in the order given), then the wall time since `started` (`time.perf_counter()`)
    and the load average at the end."""
    return {
        "benchmark": benchmark,
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]) if argv is None else argv,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        **body,
        "total_wall_s": time.perf_counter() - started,
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def write_record(path: Path, record: dict) -> None:
    """Write `record` to `path` as indented JSON, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")

"""Running a study's units as Ray tasks: `entrolab study CONFIG --executor ray [--address ADDR]`.

    from entrolab.study.ray_executor import RayExecutor
    with RayExecutor(address="auto") as executor:      # the cluster of `ray start --head`
        run_study("configs/lorenz-paper.toml", "runs/lorenz-paper", executor=executor)

Ray is the optional extra ``ray`` (``pip install 'entrolab[ray]'``), imported when a
`RayExecutor` is made; without it, making one raises a `StudyError` that says so.

**Who does what.** The driver (the process that calls `run_study`) keeps the study's
registry: SQLite is not shared between machines, so only the driver claims, finishes and
fails units. Each ready unit becomes one Ray task that runs
`entrolab.study.units.execute(study_dir, unit)` in a worker process. The driver marks
each unit running and submits the whole batch at once, then yields the units as they
finish (`ray.wait`), in completion order.

**Outputs go through a shared filesystem.** Workers write a unit's outputs into the
study directory themselves (a scratch directory, then one `os.replace`), so the study
directory must be the same path on every node: a network or cluster filesystem (on one
machine, any directory). Sending the outputs back to the driver through Ray's object
store, so that the workers need no shared filesystem, is future work.

**A worker killed mid-unit** (SIGKILL, the OOM killer, a lost node) leaves the unit to
be retried, never half-published: Ray runs the task again, up to `max_retries` times
(system failures only: an exception raised by the unit fails it at once, as in
process). Each attempt writes into a scratch directory of its own (`.scratch/<uuid>`),
so a dead attempt's partial output is never published nor reused; such leftovers are
removed when a batch is over, or by `prepare` when a study starts. A unit whose worker
died `max_retries + 1` times fails with Ray's `WorkerCrashedError`. An interrupted driver
resumes as before: the next run resets the units left running (`Registry.recover`),
and Ray ends the tasks of a driver that is gone (an interrupted generator cancels them).

**Resources per unit.** Each unit asks for `num_cpus` cores (a scheduling request: XLA's
CPU thread pool is not confined to it). Units that train agents (`GPU_UNITS`) ask for one
GPU when the cluster has GPUs; every other unit then runs JAX on the CPU
(``JAX_PLATFORMS=cpu``), so that it never allocates memory on a GPU that Ray gave to
another task.

**The same code and settings as the driver.** Each worker is a separate process. Its
tasks run with the driver's PYTHONPATH, led by the directory the driver imported
entrolab from (a source checkout; not a site-packages), and with the driver's
``ENTROLAB_*``, ``JAX_*`` and ``XLA_*`` variables (a task `runtime_env`). A worker turns
on the study's JAX compilation cache (`compilation_cache_dir`: workers share compiled
programs, and a resumed study does not compile again), and refuses to run a unit under
another entrolab version, or, on the driver's node, from another copy of entrolab. On
several nodes the same entrolab and packages must be installed on every node (a Ray
runtime_env ``working_dir`` or ``py_modules`` could ship the package; this executor
does not).

**Progress.** Workers' progress bars cannot reach the driver's: workers run units with
``progress=None``, and `run_study` logs each unit when the driver learns it finished.

**Known limit.** A batch is the set of units ready when it starts: the units that depend
on them are submitted with the next batch (`run_study` asks the registry again when a
batch is over), so the slowest unit of a batch holds the next batch back.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from entrolab._version import __version__
from entrolab.study.config import CONFIG_FILE, read_config
from entrolab.study.kinds import KINDS, register_kind, registration
from entrolab.study.registry import Unit
from entrolab.study.runner import StudyError, compilation_cache_dir, enable_compilation_cache
from entrolab.study.units import SCRATCH_DIR, execute

INSTALL = "pip install 'entrolab[ray]'"

# Unit kinds (`Unit.kind`) that train agents, in every study kind: robustness and comparison
# "train", state-entropy "select" and "train", landscape "ctrain" (continuous REINFORCE).
GPU_UNITS = frozenset({"train", "select", "ctrain"})

# Variables of the driver's environment that every task gets (entrolab's and JAX's settings).
FORWARDED_ENV = ("ENTROLAB_", "JAX_", "XLA_")

_PACKAGE = Path(__file__).resolve().parents[1]  # .../entrolab


def import_ray() -> Any:
    """The `ray` module, or a `StudyError` naming the extra that installs it."""
    try:
        import ray
    except ImportError as err:
        raise StudyError(f"the Ray executor needs Ray, which is not installed here ({err}); install the "
                         f"extra: {INSTALL}") from None
    return ray


def worker_env(gpu_cluster: bool, gpu_unit: bool, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables a unit's task runs with (see the module docstring)."""
    environ = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in environ.items() if k.startswith(FORWARDED_ENV)}
    paths = [os.path.abspath(p) for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    root = _PACKAGE.parent
    if root.name not in ("site-packages", "dist-packages"):
        # a source checkout: workers must import this one, whatever is installed where Ray started
        paths.insert(0, str(root))
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    if gpu_cluster and not gpu_unit:
        env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def _check_origin(origin: dict[str, str]) -> None:
    """Refuse to run a unit with other code than the driver's."""
    import ray

    here = str(_PACKAGE / "__init__.py")
    if __version__ != origin["version"]:
        raise StudyError(f"this Ray worker imports entrolab {__version__} ({here}), the driver entrolab "
                         f"{origin['version']}: install the driver's entrolab on every node")
    if ray.get_runtime_context().get_node_id() == origin["node"] and here != origin["file"]:
        raise StudyError(f"this Ray worker imports entrolab from {here}, the driver (on the same node) from "
                         f"{origin['file']}: start Ray from the driver's environment, or install that entrolab")


def _run_unit(study_dir: str, unit: Unit, kind: tuple[str, Any], origin: dict[str, str],
              cache_dir: str | None) -> float:
    """The Ray task of one unit: run it in this worker; returns its wall seconds."""
    _check_origin(origin)
    name, spec = kind
    if not isinstance(spec, str) or KINDS.get(name) != spec:  # a kind the driver registered itself
        register_kind(name, spec)
    enable_compilation_cache(cache_dir)
    t0 = time.perf_counter()
    execute(study_dir, unit, None)
    return time.perf_counter() - t0


def _unwrapped(err: BaseException, ray: Any, max_retries: int) -> BaseException:
    """The exception a unit raised (not Ray's wrapper), with the worker's traceback as a note;
    a worker that kept dying, said in words."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, Exception):
        cause.add_note("raised in a Ray worker:\n" + re.sub(r"\x1b\[[0-9;]*m", "", str(err)))  # no terminal colours
        return cause
    if isinstance(err, getattr(getattr(ray, "exceptions", None), "WorkerCrashedError", ())):
        return StudyError(f"its Ray worker died, and so did the {max_retries} retries (WorkerCrashedError: {err})")
    return err


def _check_reachable(address: str | None, timeout: float = 10.0) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing answers on is an error now: Ray itself keeps
    trying to reach it for minutes."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise StudyError(f"--address {address!r} is not HOST:PORT, ray://HOST:PORT, 'auto' or 'local'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise StudyError(f"no Ray cluster answers at {address} ({err}); start one with `ray start --head` "
                         "and pass the address it prints") from None


class RayExecutor:
    """Runs units as Ray tasks (see the module docstring).

    `address`: the cluster to connect to ("auto": the one `ray start` made on this
    machine; "ray://HOST:10001"; None: $RAY_ADDRESS if set, else a new local Ray
    instance). Ray is started or connected on first use and shut down by `close`
    (or leaving a ``with`` block) if this executor started it; a Ray already
    initialised in this process is used as it is. `num_cpus`: cores per unit;
    `max_retries`: how many times a unit whose worker died is run again; `gpu_units`:
    the unit kinds that get a GPU when the cluster has GPUs.
    """

    def __init__(self, address: str | None = None, num_cpus: float = 1.0, max_retries: int = 3,
                 gpu_units: Iterable[str] = GPU_UNITS):
        if num_cpus <= 0:
            raise StudyError(f"cores per unit must be positive, not {num_cpus}")
        if max_retries < 0:
            raise StudyError(f"max_retries must be >= 0, not {max_retries}")
        self.ray = import_ray()
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self.gpu_units = frozenset(gpu_units)
        self._started = False
        self._task = None

    # ---- the Ray instance ---------------------------------------------------
    def start(self) -> None:
        """Connect to (or start) Ray, unless this process already did."""
        if self.ray.is_initialized():
            return
        _check_reachable(self.address)
        try:
            with warnings.catch_warnings():
                # JAX warns of any fork in a process that uses it; Ray forks only to exec its own processes
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                self.ray.init(address=self.address)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"the Ray cluster at {self.address!r}" if self.address else "a local Ray instance"
            hint = (" (start one with `ray start --head`)" if self.address == "auto" else
                    " (Ray's token authentication: with an explicit address, set RAY_AUTH_MODE=token and give "
                    "the cluster's token, ~/.ray/auth_token or RAY_AUTH_TOKEN)" if self.address else "")
            raise StudyError(f"cannot reach {where}{hint}: {err}") from err
        self._started = True

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- running units ------------------------------------------------------
    def _check_fits(self, gpus: bool) -> None:
        """A unit no node can hold would wait for ever: refuse it now."""
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        most = max((r.get("CPU", 0.0) for r in nodes), default=0.0)
        if self.num_cpus > most:
            raise StudyError(f"each unit asks for {self.num_cpus:g} CPUs, but the largest node of the Ray cluster "
                             f"has {most:g}; ask for fewer cores per unit")
        if gpus and not any(r.get("GPU", 0.0) >= 1 and r.get("CPU", 0.0) >= self.num_cpus for r in nodes):
            raise StudyError(f"no node of the Ray cluster has a GPU and {self.num_cpus:g} CPUs for a training unit")

    def run(self, study_dir: Path, units: Iterable[Unit], on_start: Callable[[Unit], None],
            progress: Any = None) -> Iterator[tuple[Unit, float, BaseException | None]]:
        units = list(units)
        if not units:
            return
        ray = self.ray
        self.start()
        study_dir = Path(study_dir).resolve()  # workers may not share the driver's working directory
        if not (study_dir / CONFIG_FILE).exists():
            raise StudyError(f"{study_dir} is not a study directory (no {CONFIG_FILE})")
        gpus = ray.cluster_resources().get("GPU", 0.0) >= 1
        self._check_fits(gpus and bool(self.gpu_units & {u.kind for u in units}))
        kind_name = read_config(study_dir).kind
        kind = (kind_name, registration(kind_name))
        origin = {"version": __version__, "file": str(_PACKAGE / "__init__.py"),
                  "node": ray.get_runtime_context().get_node_id()}
        cache = compilation_cache_dir(study_dir)
        cache = str(Path(cache).resolve()) if cache else None
        if self._task is None:
            self._task = ray.remote(_run_unit)
        pending: dict[Any, tuple[Unit, float]] = {}
        try:
            for unit in units:
                gpu = gpus and unit.kind in self.gpu_units
                on_start(unit)
                ref = self._task.options(
                    name=f"entrolab:{unit.id}", num_cpus=self.num_cpus, num_gpus=1 if gpu else 0,
                    max_retries=self.max_retries, retry_exceptions=False,
                    runtime_env={"env_vars": worker_env(gpus, gpu)},
                ).remote(str(study_dir), unit, kind, origin, cache)
                pending[ref] = (unit, time.perf_counter())
            if progress is not None:
                resources = ray.cluster_resources()
                progress.console.log(
                    f"Ray: {len(units)} unit{'s' if len(units) > 1 else ''} submitted, {self.num_cpus:g} CPU each"
                    + (" (+ 1 GPU for training units)" if gpus else "")
                    + f"; the cluster has {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs")
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                unit, t0 = pending.pop(ref)
                try:
                    wall = ray.get(ref)
                except Exception as err:  # the unit's own exception, or Ray's (worker died too often, ...)
                    yield unit, time.perf_counter() - t0, _unwrapped(err, ray, self.max_retries)
                else:
                    yield unit, wall, None
            # every task of the batch is over: what is left in the scratch area belongs to attempts
            # whose worker died (Ray ran them again), never to a unit still running
            shutil.rmtree(study_dir / SCRATCH_DIR, ignore_errors=True)
        finally:
            # the driver stopped early (a failed unit, Ctrl-C): end the units still running; their
            # registry rows stay `running`, reset by the next run's `recover`
            for ref in pending:
                ray.cancel(ref, force=True)

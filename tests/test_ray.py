"""Studies on Ray (`entrolab study CONFIG --executor ray`, `entrolab.study.ray_executor`).

Fast tests (no Ray needed): the CLI's argument checks, the error without Ray, and what the
executor asks Ray for (resources, environment, completion order), seen through a stand-in for
Ray that runs the tasks in this process. Slow tests start a local Ray instance with 2 CPUs:
the tiny robustness study through Ray gives the in-process tables, bit for bit, even when a
worker is SIGKILLed mid-unit; a toy kind whose units kill their own worker shows the retry,
the scratch directory of the dead attempt (never published), a unit whose worker always dies,
and a driver interrupted with units in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from pydantic import Field
from typer.testing import CliRunner

from entrolab.report.document import Section
from entrolab.study import Kind, StudyError, parse_config, register_kind, run_study
from entrolab.study.config import StudyConfigBase
from entrolab.study.kinds import unregister_kind
from entrolab.study.registry import Registry, Unit
from entrolab.study.runner import REGISTRY_FILE
from entrolab.study.tables import load_tables, write_table
from entrolab.study.units import SCRATCH_DIR, fingerprint, write_parquet

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny-test.toml"
VOLATILE = {"wall_time_s", "train_time_s", "compile_time_s"}  # timings: never equal between two runs


# ---- a toy kind whose units can kill their own worker ------------------------------------------
# Ray workers import this module to run it (its functions are pickled by name): the fixture puts
# tests/ on the PYTHONPATH that the executor hands to its workers.
class ToyConfig(StudyConfigBase):
    kind: str = "ray-toy"
    numbers: list[int] = Field(min_length=1)
    marks: str  # a directory where every attempt at a unit leaves a file: <unit>.<attempt>
    die: dict[str, int] = {}  # unit id -> how many of its attempts SIGKILL their worker mid-unit
    sleep: float = 0.0  # seconds each "train" unit takes
    fail: list[str] = []  # unit ids that raise


def _plan(config: ToyConfig) -> list[Unit]:
    units = [Unit(f"train/{n}", "train", {"n": n}, (), fingerprint(n)) for n in config.numbers]
    units.append(Unit("sum", "sum", {}, tuple(u.id for u in units), fingerprint([u.fingerprint for u in units])))
    return units


def _execute(config: ToyConfig, study_dir: Path, unit: Unit, out: Path, progress) -> None:
    marks = Path(config.marks)
    stem = unit.id.replace("/", "-")
    attempt = len(list(marks.glob(f"{stem}.*"))) + 1
    stale = sorted(p.parent.name for p in (study_dir / SCRATCH_DIR).glob("*/INCOMPLETE"))
    (marks / f"{stem}.{attempt}").write_text(json.dumps(
        {"pid": os.getpid(), "scratch": out.name, "stale": stale, "progress": progress is not None}))
    if unit.id in config.fail:
        raise RuntimeError(f"toy failure in {unit.id}")
    if unit.kind == "train":
        n = unit.payload["n"]
        time.sleep(config.sleep)
        if attempt <= config.die.get(unit.id, 0):
            # half an output in the scratch dir, then the worker dies as a SIGKILL or the OOM killer would
            write_parquet(pd.DataFrame({"n": [n], "square": [-1]}), out / "square.parquet")
            (out / "INCOMPLETE").write_text("the worker of this attempt was killed mid-unit")
            os.kill(os.getpid(), signal.SIGKILL)
        write_parquet(pd.DataFrame({"n": [n], "square": [n * n]}), out / "square.parquet")
    else:
        total = sum(int(pd.read_parquet(study_dir / "units" / f"train/{n}" / "square.parquet")["square"].iloc[0])
                    for n in config.numbers)
        write_parquet(pd.DataFrame({"total": [total]}), out / "sum.parquet")


def _build_tables(study_dir: Path, config: ToyConfig, num_resamples=None) -> dict:
    squares = pd.concat([pd.read_parquet(study_dir / "units" / f"train/{n}" / "square.parquet")
                         for n in config.numbers], ignore_index=True)
    total = pd.read_parquet(study_dir / "units" / "sum" / "sum.parquet")
    for name, df in (("squares", squares), ("total", total)):
        write_table(df, study_dir / "tables" / f"{name}.parquet")
    return {"squares": squares, "total": total}


def _report(config: ToyConfig, tables: dict, fig_dir: Path):
    return f"Toy study {config.name}", [Section("Squares", [])]


TOY = Kind(name="ray-toy", config_model=ToyConfig, tables=("squares", "total"), plan=_plan, execute=_execute,
           output_path=lambda unit: f"units/{unit.id}", build_tables=_build_tables, report=_report)


@pytest.fixture
def toy(tmp_path):
    """A function making a toy config (marks under tmp_path) with the toy kind registered."""
    register_kind("ray-toy", TOY)
    (tmp_path / "marks").mkdir()

    def make(**kw) -> ToyConfig:
        return parse_config({"kind": "ray-toy", "name": "toy", "numbers": [1, 2, 3],
                             "marks": str(tmp_path / "marks"), **kw})

    yield make
    unregister_kind("ray-toy")


def _attempts(config: ToyConfig, unit_id: str) -> list[dict]:
    stem = unit_id.replace("/", "-")
    files = sorted(Path(config.marks).glob(f"{stem}.*"), key=lambda p: int(p.suffix[1:]))
    return [json.loads(p.read_text()) for p in files]


def _no_half_outputs(out: Path) -> None:
    """Nothing of a killed attempt anywhere: no scratch leftovers, no partial file published."""
    assert not any((out / SCRATCH_DIR).glob("*")), list((out / SCRATCH_DIR).glob("*"))
    assert not list(out.rglob("INCOMPLETE"))


# ---- fast: the CLI's checks, no Ray ---------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--address", "auto"], "--address is for --executor ray (this study runs in-process)"),
    (["--cpus-per-unit", "2", "--address", "auto"], "--address and --cpus-per-unit are for --executor ray"),
    (["--executor", "ray", "--cpus-per-unit", "0"], "--cpus-per-unit must be positive, not 0"),
    (["--executor", "dask"], "'dask' is not one of 'in-process', 'ray'"),
])
def test_the_cli_refuses_ray_options_without_ray(tmp_path, args, message):
    result = CliRunner().invoke(app(), ["study", str(TINY), "--out", str(tmp_path / "s"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split()), result.output
    assert not (tmp_path / "s").exists()


def test_without_ray_the_executor_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    from entrolab.study.ray_executor import RayExecutor

    with pytest.raises(StudyError, match=r"needs Ray, which is not installed .*pip install 'entrolab\[ray\]'"):
        RayExecutor()
    result = CliRunner().invoke(app(), ["study", str(TINY), "--out", str(tmp_path / "s"), "--executor", "ray"])
    assert result.exit_code == 2 and "entrolab[ray]" in result.output, result.output
    assert not (tmp_path / "s").exists()


def app():
    from entrolab.cli import app

    return app


# ---- fast: what the executor asks Ray for, through a stand-in ----------------------------------------
class FakeRay:
    """Just enough of Ray's API for RayExecutor: `ray.wait` returns the newest task first (so the
    order of completion differs from the order of submission) and `ray.get` runs it here."""

    def __init__(self, gpus: int = 0, cpus: float = 4.0):
        self.resources = {"CPU": cpus, **({"GPU": float(gpus)} if gpus else {})}
        self.initialized = False
        self.submitted: list[tuple[dict, tuple]] = []
        self.cancelled: list = []

    def is_initialized(self):
        return self.initialized

    def init(self, address=None):
        self.initialized, self.address = True, address

    def shutdown(self):
        self.initialized = False

    def cluster_resources(self):
        return dict(self.resources)

    def nodes(self):
        return [{"Alive": True, "Resources": dict(self.resources)}]

    def get_runtime_context(self):
        return SimpleNamespace(get_node_id=lambda: "node-0")

    def remote(self, fn):
        fake = self

        class Task:
            def options(self, **options):
                return SimpleNamespace(remote=lambda *args: fake._submit(fn, options, args))

        return Task()

    def _submit(self, fn, options, args):
        self.submitted.append((options, args))
        return lambda: fn(*args)

    def wait(self, refs, num_returns=1):
        return refs[-num_returns:], refs[:-num_returns]

    def get(self, ref):
        return ref()

    def cancel(self, ref, force=False):
        self.cancelled.append(ref)


@pytest.fixture
def fake_ray(monkeypatch):
    def make(**kw) -> FakeRay:
        fake = FakeRay(**kw)
        monkeypatch.setitem(sys.modules, "ray", fake)
        return fake

    monkeypatch.setenv("ENTROLAB_JAX_CACHE", "")  # tasks run in this process: leave its JAX config alone
    monkeypatch.setenv("XLA_FLAGS", "--xla_test_forwarded")
    return make


@pytest.mark.parametrize("gpus", [0, 2])
def test_each_unit_is_one_task_with_its_resources_and_the_drivers_environment(toy, tmp_path, fake_ray, gpus):
    from entrolab.study.ray_executor import RayExecutor

    fake = fake_ray(gpus=gpus)
    config = toy()
    order: list[str] = []
    with RayExecutor(num_cpus=1.5, max_retries=2) as executor:
        out = run_study(config, tmp_path / "s", executor=executor,
                        progress=_Progress(on_log=lambda m: order.append(m)))
        assert fake.initialized
    assert not fake.initialized  # the executor started Ray, so it shut it down
    assert load_tables(out)["total"]["total"].iloc[0] == 14
    # one batch of the three squares, then the sum; each claimed before any was submitted
    names = [options["name"] for options, _ in fake.submitted]
    assert names == ["entrolab:train/1", "entrolab:train/2", "entrolab:train/3", "entrolab:sum"]
    done = [m.removeprefix("done: ").split(" ")[0] for m in order if m.startswith("done: ")]
    assert done == ["train/3", "train/2", "train/1", "sum"]  # completion order, as ray.wait gives it
    for options, args in fake.submitted:
        training = options["name"].startswith("entrolab:train/")
        assert options["num_cpus"] == 1.5 and options["max_retries"] == 2 and options["retry_exceptions"] is False
        assert options["num_gpus"] == (1 if gpus and training else 0)
        env = options["runtime_env"]["env_vars"]
        assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT / "src")
        assert env["XLA_FLAGS"] == "--xla_test_forwarded" and env["ENTROLAB_JAX_CACHE"] == ""
        # on a cluster with GPUs, a unit without one must not touch them
        assert env.get("JAX_PLATFORMS") == ("cpu" if gpus and not training else None)
        study_dir, unit, kind, origin, cache = args
        assert Path(study_dir).is_absolute() and kind == ("ray-toy", TOY) and cache is None
    assert all(not a["progress"] for u in ("train/1", "sum") for a in _attempts(config, u))  # no progress bars
    assert any("Ray: 3 units submitted, 1.5 CPU each" in m for m in order)
    assert fake.cancelled == []


def test_a_unit_no_node_can_hold_is_refused(toy, tmp_path, fake_ray):
    from entrolab.study.ray_executor import RayExecutor

    fake = fake_ray(cpus=2.0)
    with pytest.raises(StudyError, match="each unit asks for 4 CPUs, but the largest node of the Ray cluster has 2"):
        with RayExecutor(num_cpus=4) as executor:
            run_study(toy(), tmp_path / "s", executor=executor)
    assert fake.submitted == [] and not fake.initialized
    # an address nothing answers on is refused at once (Ray would keep trying for minutes)
    with pytest.raises(StudyError, match="no Ray cluster answers at 127.0.0.1:9"):
        RayExecutor(address="127.0.0.1:9").start()
    with pytest.raises(StudyError, match="is not HOST:PORT"):
        RayExecutor(address="nowhere").start()


def test_a_failing_unit_fails_the_study_and_the_rest_is_cancelled(toy, tmp_path, fake_ray):
    from entrolab.study.ray_executor import RayExecutor

    fake = fake_ray()
    with pytest.raises(StudyError, match=r"unit train/2 failed: RuntimeError\('toy failure in train/2'\)"):
        run_study(toy(numbers=[1, 2, 3, 4], fail=["train/2"]), tmp_path / "s", executor=RayExecutor())
    states = Registry(tmp_path / "s" / REGISTRY_FILE).states()
    assert states["train/2"] == "failed" and states["train/4"] == states["train/3"] == "done"
    assert states["train/1"] == "running" and len(fake.cancelled) == 1  # still in flight: cancelled
    run_study(toy(numbers=[1, 2, 3, 4]), tmp_path / "s", executor=RayExecutor())
    assert load_tables(tmp_path / "s")["total"]["total"].iloc[0] == 30


class _Progress:
    """What run_study asks of a rich Progress; `on_log` sees each line the driver logs."""

    def __init__(self, on_log=lambda message: None, on_update=lambda: None):
        self.console = SimpleNamespace(log=on_log)
        self.on_update = on_update

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        self.on_update()


# ---- slow: a local Ray instance --------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs, whose workers can import this module (the toy kind)."""
    ray = pytest.importorskip("ray")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), *([old] if old else [])])
    with warnings.catch_warnings():  # JAX warns of any fork; Ray forks only to exec its own processes
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
    if old is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = old


@pytest.mark.slow
def test_a_worker_killed_mid_unit_is_retried_and_never_half_published(toy, tmp_path, local_ray):
    from entrolab.study.ray_executor import RayExecutor

    config = toy(die={"train/2": 1})
    out = run_study(config, tmp_path / "s", executor=RayExecutor(max_retries=2))
    tables = load_tables(out)
    assert tables["squares"]["square"].tolist() == [1, 4, 9] and tables["total"]["total"].iloc[0] == 14
    killed, retry = _attempts(config, "train/2")
    assert killed["pid"] != retry["pid"] and not Path(f"/proc/{killed['pid']}").exists()
    # the retry wrote into a scratch dir of its own; the dead attempt's, half-written, was still there
    assert retry["scratch"] != killed["scratch"] and retry["stale"] == [killed["scratch"]]
    # ... and was removed once the batch was over; the published output is the retry's
    _no_half_outputs(out)
    assert sorted(p.name for p in (out / "units" / "train" / "2").iterdir()) == ["square.parquet"]
    table = Registry(out / REGISTRY_FILE).table()
    assert set(table["state"]) == {"done"} and (table["attempts"] == 1).all()  # Ray's retry, not the driver's
    assert [len(_attempts(config, u)) for u in ("train/1", "train/3", "sum")] == [1, 1, 1]


@pytest.mark.slow
def test_a_unit_whose_worker_always_dies_fails_and_a_rerun_finishes(toy, tmp_path, local_ray):
    from entrolab.study.ray_executor import RayExecutor

    config = toy(die={"train/3": 9}, sleep=0.5)
    with pytest.raises(StudyError, match=r"unit train/3 failed: StudyError\('its Ray worker died, and so did the 1 "
                                         r"retries \(WorkerCrashedError: The worker died unexpectedly"):
        run_study(config, tmp_path / "s", executor=RayExecutor(max_retries=1))
    assert len(_attempts(config, "train/3")) == 2
    states = Registry(tmp_path / "s" / REGISTRY_FILE).states()
    assert states["train/3"] == "failed" and states["sum"] == "pending"
    assert not (tmp_path / "s" / "units" / "train" / "3").exists() and not (tmp_path / "s" / "tables").exists()
    out = run_study(toy(sleep=0.5), tmp_path / "s", executor=RayExecutor(max_retries=1))
    assert load_tables(out)["total"]["total"].iloc[0] == 14
    _no_half_outputs(out)


@pytest.mark.slow
def test_an_interrupted_driver_resumes(toy, tmp_path, local_ray):
    """Ctrl-C in the driver while units run: the units in flight are cancelled, and the next run
    redoes them (Registry.recover) with the same tables."""
    from entrolab.study.ray_executor import RayExecutor

    def interrupt():
        raise KeyboardInterrupt

    config = toy(numbers=[1, 2, 3, 4], sleep=2.0)
    with pytest.raises(KeyboardInterrupt):
        run_study(config, tmp_path / "s", executor=RayExecutor(), progress=_Progress(on_update=interrupt))
    states = Registry(tmp_path / "s" / REGISTRY_FILE).states()
    assert list(states.values()).count("done") == 1 and "running" in states.values()
    out = run_study(config, tmp_path / "s", executor=RayExecutor())
    tables = load_tables(out)
    assert tables["squares"]["square"].tolist() == [1, 4, 9, 16] and tables["total"]["total"].iloc[0] == 30
    table = Registry(out / REGISTRY_FILE).table().set_index("id")
    assert set(table["state"]) == {"done"} and table["attempts"].max() == 2
    _no_half_outputs(out)


# ---- slow: the tiny robustness study, in process and on Ray (the CLI) ---------------------------------
def _cli(out: Path, cache: Path, *args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, ENTROLAB_JAX_CACHE=str(cache), PYTHONUNBUFFERED="1")
    env.pop("JAX_PLATFORMS", None)
    return subprocess.Popen([sys.executable, "-m", "entrolab.cli", "study", str(TINY), "--out", str(out),
                             "--no-report", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, env=env, **popen)


def _same_tables(a: Path, b: Path) -> None:
    names = sorted(p.name for p in (a / "tables").glob("*.parquet"))
    assert names and names == sorted(p.name for p in (b / "tables").glob("*.parquet"))
    for name in names:
        x, y = pd.read_parquet(a / "tables" / name), pd.read_parquet(b / "tables" / name)
        cols = [c for c in x.columns if c not in VOLATILE]
        pd.testing.assert_frame_equal(x[cols], y[cols], check_exact=True, obj=name)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """The tiny study run in process (the reference); its JAX cache is shared with the Ray runs."""
    pytest.importorskip("ray")
    root = tmp_path_factory.mktemp("tiny")
    t0 = time.perf_counter()
    proc = _cli(root / "in-process", root / "cache")
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log
    print(f"\nin process: {time.perf_counter() - t0:.0f} s (cold JAX cache)")
    return root


@pytest.mark.slow
def test_the_tiny_study_on_ray_gives_the_in_process_tables(in_process):
    t0 = time.perf_counter()
    proc = _cli(in_process / "ray", in_process / "cache", "--executor", "ray")
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log
    print(f"on Ray (a local instance, 2 CPUs): {time.perf_counter() - t0:.0f} s (warm JAX cache)")
    assert "Ray: 1 unit submitted" in log and "Ray: 4 units submitted" in log  # train, then evaluate + measures
    _same_tables(in_process / "in-process", in_process / "ray")
    assert set(Registry(in_process / "ray" / REGISTRY_FILE).states().values()) == {"done"}


def _unit_workers(prefix: str) -> list[int]:
    """Pids of the Ray workers running a unit whose id starts with `prefix` (Ray titles a worker
    'ray::TASK NAME' while it runs a task)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(f"ray::entrolab:{prefix}".encode()):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's workers in /proc")
def test_sigkill_of_a_worker_mid_unit_gives_the_same_study(in_process):
    out = in_process / "killed"
    proc = _cli(out, in_process / "cache", "--executor", "ray", start_new_session=True)
    try:
        deadline = time.time() + 300
        while not (pids := _unit_workers("train/")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert pids, "no worker ran the training unit"
        time.sleep(2.0)  # well inside the unit (it trains for seconds)
        (unit,) = [u for u in Registry(out / REGISTRY_FILE).units() if u.kind == "train"]
        assert not (out / unit.id).exists(), "the training unit finished before its worker could be killed"
        killed_at = time.time()
        os.kill(pids[0], signal.SIGKILL)
        log, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, log
    assert (out / unit.id).stat().st_mtime > killed_at  # published by the retry
    _same_tables(in_process / "in-process", out)
    table = Registry(out / REGISTRY_FILE).table()
    assert set(table["state"]) == {"done"}
    _no_half_outputs(out)

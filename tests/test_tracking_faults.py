"""Tracking faults lose nothing: concurrent first use of a new store, runs interrupted by a
signal or killed outright, their worker processes, and servers that fail.

Real processes, real SQLite stores and a real HTTP server on loopback; nothing of ours is
mocked. :func:`concurrent_first_use` and :func:`killed_run` are also run by
``benchmarks/fault_injection.py`` (``from test_tracking_faults import concurrent_first_use,
killed_run`` with ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from servers import failing_tracking_server, free_port

from ketapredict import tracking
from ketapredict.tracking import TrackingError, preflight

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds worker processes through /proc"
)

# -- reusable fault cases (also for benchmarks/fault_injection.py) -----------------------------
N_METRICS = 30

# One process of the concurrent first use: our own store creation and logging session,
# started with the others at the same instant (a barrier on files) to hit the race.
_CONCURRENT_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import mlflow
    from ketapredict import tracking

    folder, index, n_metrics = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    (folder / f"ready-{index}").touch()
    while not (folder / "go").exists():
        time.sleep(0.005)
    with tracking._store(), tracking._logging_session() as opened:
        experiment_id = tracking._experiment_id("concurrent first use")
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"process {index}",
            tags=tracking.process_tags(),
        ) as run:
            opened.append(run.info.run_id)
            mlflow.log_params({"process": index})
            mlflow.log_metrics({f"metric_{k}": float(k + index) for k in range(n_metrics)})
            mlflow.log_text(f"process {index}", "note.txt")
    """
)


def _environment(uri: str) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONWARNINGS": "ignore"}


def concurrent_first_use(n_processes: int, tmp: str | Path) -> dict:
    """``n_processes`` processes make their first use of one brand-new SQLite store at the
    same instant, each logging one run with :data:`N_METRICS` metrics, a param and an
    artifact through ``ketapredict.tracking``'s store and session.

    Returns
    -------
    dict
        ``processes``, ``failed`` (processes that exited non-zero), ``runs`` found,
        ``complete`` (runs FINISHED with every metric, the param and the artifact), ``lost``
        (``processes - complete``), ``seconds`` and the ``errors`` (last line of each
        failed process's stderr).
    """
    from mlflow.tracking import MlflowClient

    tmp = Path(tmp)
    barrier = tmp / "barrier"
    barrier.mkdir(parents=True)
    database = tmp / "store" / "mlflow.db"
    uri = f"sqlite:///{database}"
    began = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _CONCURRENT_WORKER, str(barrier), str(i), str(N_METRICS)],
            cwd=tmp,
            env=_environment(uri),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n_processes)
    ]
    deadline = time.monotonic() + 120
    while len(list(barrier.glob("ready-*"))) < n_processes and time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            break
        time.sleep(0.01)
    (barrier / "go").touch()
    errors = []
    for process in processes:
        _, err = process.communicate(timeout=300)
        if process.returncode:
            errors.append((err.strip().splitlines() or ["(no message)"])[-1])
    seconds = time.perf_counter() - began
    runs = []
    if database.is_file():
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("concurrent first use")
        if experiment is not None:
            runs = client.search_runs([experiment.experiment_id])
    complete = 0
    for run in runs:
        if (
            run.info.status == "FINISHED"
            and len(run.data.metrics) == N_METRICS
            and "process" in run.data.params
            and [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]
        ):
            complete += 1
    return {
        "processes": n_processes,
        "failed": sum(1 for p in processes if p.returncode),
        "runs": len(runs),
        "complete": complete,
        "lost": n_processes - complete,
        "seconds": round(seconds, 1),
        "errors": errors,
    }


# One process killed while logging: its joblib workers started the way cross-validation
# starts them (and left idle, as they are while a training logs), then a logging session
# that writes a metric every 50 ms until a signal ends it.
_KILLED_WORKER = textwrap.dedent(
    """
    import os, sys, time
    import mlflow
    from joblib import Parallel, delayed
    from ketapredict import tracking
    from ketapredict.evaluate import _workers_die_with_parent

    workers = set()
    if sys.argv[1] == "workers":
        with _workers_die_with_parent():
            workers = set(Parallel(n_jobs=2)(delayed(os.getpid)() for _ in range(8)))
    with tracking._store(), tracking._logging_session() as opened:
        experiment_id = tracking._experiment_id("killed")
        with mlflow.start_run(
            experiment_id=experiment_id, run_name="killed", tags=tracking.process_tags()
        ) as run:
            opened.append(run.info.run_id)
            print(run.info.run_id, *sorted(workers), flush=True)
            step = 0
            while True:
                mlflow.log_metric("heartbeat", step, step=step)
                step += 1
                time.sleep(0.05)
    """
)


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def descendants(pid: int) -> list[int]:
    """The processes a process started, and theirs (workers, resource trackers)."""
    children, found, todo = _children(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return sorted(found)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_gone(pids: list[int], timeout: float) -> tuple[list[int], float]:
    """Wait until none of ``pids`` runs; those still running after ``timeout`` and the
    seconds waited."""
    began = time.monotonic()
    while (left := [p for p in pids if alive(p)]) and time.monotonic() - began < timeout:
        time.sleep(0.1)
    return left, time.monotonic() - began


def _end_orphans(pids: list[int]) -> None:
    """Kill the test's own leftover processes (by pid), so a failure does not leak them."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _status(uri: str, run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri).get_run(run_id).info.status


def _next_session(uri: str) -> None:
    """What the next ``ketapredict train`` or external validation does first."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        with tracking._store(), tracking._logging_session():
            pass
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def killed_run(
    tmp: str | Path,
    how: str = "SIGKILL",
    *,
    workers: bool = True,
    uri: str | None = None,
    orphan_timeout: float = 30.0,
) -> dict:
    """A process killed by signal ``how`` while it logs a run, with idle joblib workers
    (started as cross-validation starts them) unless ``workers=False``.

    The store is ``uri`` (by default a new one under ``tmp``).

    Returns
    -------
    dict
        ``signal``, the process's ``exit_code``, the run's ``status_after_kill`` and, after
        the next logging session on the store, ``status_after_next_run`` (KILLED or FAILED
        is right, RUNNING is a run left running forever), ``workers`` (joblib workers and
        other descendants), ``orphans`` still running after ``orphan_timeout`` seconds and
        ``seconds_until_no_orphans``.
    """
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    uri = uri or f"sqlite:///{tmp / 'store' / 'mlflow.db'}"
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WORKER, "workers" if workers else "none"],
        cwd=tmp,
        env=_environment(uri),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    family: list[int] = []
    try:
        line = process.stdout.readline().split()
        if not line:
            process.wait(timeout=30)
            raise RuntimeError(f"the logging process ended early: {process.stderr.read()[-2000:]}")
        run_id = line[0]
        time.sleep(0.3)  # mid-logging: heartbeats are being written
        family = descendants(process.pid)
        os.kill(process.pid, getattr(signal, how))
        exit_code = process.wait(timeout=60)
        orphans, waited = _wait_gone(family, orphan_timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _end_orphans(family)
    status = _status(uri, run_id)
    _next_session(uri)
    return {
        "signal": how,
        "exit_code": exit_code,
        "status_after_kill": status,
        "status_after_next_run": _status(uri, run_id),
        "workers": len(family),
        "orphans": len(orphans),
        "seconds_until_no_orphans": round(waited, 1),
    }


# -- default run --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template_store(tmp_path_factory):
    """An empty store made once: creating one runs MLflow's migrations (3 to 8 s)."""
    database = tmp_path_factory.mktemp("template") / "mlflow.db"
    _next_session(f"sqlite:///{database}")
    return database


@pytest.fixture
def empty_store(tmp_path, template_store, monkeypatch):
    """A copy of the empty store in a fresh directory (the current one), in use."""
    database = tmp_path / "mlruns" / "mlflow.db"
    database.parent.mkdir()
    shutil.copyfile(template_store, database)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{database}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_concurrent_first_use_of_a_new_store_loses_no_run(tmp_path):
    """Four processes create the same new store at the same instant (MLflow's migrations
    raced: 1 to 3 of 4 runs were lost before the lock)."""
    found = concurrent_first_use(4, tmp_path)
    assert found["errors"] == []
    assert found["failed"] == 0
    assert found["runs"] == found["complete"] == 4
    assert (tmp_path / "store" / "mlflow.db.lock").is_file()


def test_a_run_killed_outright_is_failed_by_the_next_and_its_workers_die(tmp_path, empty_store):
    """SIGKILL leaves the run RUNNING until the next session on the store marks it FAILED;
    the joblib workers are gone within seconds (loky kept them 5 minutes)."""
    found = killed_run(tmp_path, "SIGKILL", uri=empty_store)
    assert found["exit_code"] == -signal.SIGKILL
    assert found["status_after_kill"] == "RUNNING"
    assert found["status_after_next_run"] == "FAILED"
    assert found["workers"] >= 2
    assert found["orphans"] == 0
    assert found["seconds_until_no_orphans"] < 10


def test_a_run_terminated_by_a_signal_ends_killed(empty_store):
    """A real SIGTERM to this process while a session logs: the run ends KILLED, the
    process would exit with status 143, and the handlers are put back (the training test
    under the slow marker does it to a `ketapredict train`; ``killed_run(tmp, "SIGTERM")``
    to a separate process)."""
    import mlflow

    before = signal.getsignal(signal.SIGTERM)
    with (  # noqa: PT012 - the signal arrives inside the session
        pytest.raises(tracking.Terminated) as ended,
        tracking._store(),
        tracking._logging_session() as opened,
    ):
        assert signal.getsignal(signal.SIGTERM) is not before
        experiment_id = tracking._experiment_id("terminated")
        with mlflow.start_run(experiment_id=experiment_id) as run:
            opened.append(run.info.run_id)
            mlflow.log_metric("before", 1.0)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
    assert ended.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    assert mlflow.active_run() is None
    assert _status(empty_store, run.info.run_id) == "KILLED"


def test_a_running_run_of_a_live_process_is_left_alone(empty_store):
    """Stale-run cleaning ends only runs whose process has ended: another process logging at
    the same time (here, this one) keeps its run RUNNING."""
    import mlflow

    with tracking._store():
        experiment_id = tracking._experiment_id("live")
        client = mlflow.MlflowClient()
        ours = client.create_run(experiment_id, tags=tracking.process_tags()).info.run_id
        dead_tags = {**tracking.process_tags(), "ketapredict.pid": str(2**22 + 1)}
        dead = client.create_run(experiment_id, tags=dead_tags).info.run_id
        elsewhere_tags = {**dead_tags, "ketapredict.host": "another-host"}
        elsewhere = client.create_run(experiment_id, tags=elsewhere_tags).info.run_id
    _next_session(empty_store)
    assert client.get_run(ours).info.status == "RUNNING"
    assert client.get_run(dead).info.status == "FAILED"
    assert (
        "ended without ending this run" in client.get_run(dead).data.tags["ketapredict.ended_by"]
    )
    assert client.get_run(elsewhere).info.status == "RUNNING"


def test_preflight_refuses_an_unreachable_server_at_once(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    began = time.perf_counter()
    with pytest.raises(TrackingError, match=r"is unreachable: GET /health failed .*refused"):
        preflight(timeout=5)
    assert time.perf_counter() - began < 5


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("file:./mlruns", "deprecated file store"),
        ("sqlite:///{tmp}/a-file/mlflow.db", r"a-file is not a directory"),
        ("sqlite:///{tmp}/a-file", r"a-file is not a readable SQLite database"),
        ("sqlite:////proc/ketapredict/mlflow.db", r"directory /proc is not writable"),
        # MLflow said so only when logging, after the training (a review)
        ("ftp://example.org/runs", r"MLflow has no tracking store for ftp://"),
        ("s3://bucket/runs", r"MLflow has no tracking store for s3://"),
    ],
)
def test_preflight_refuses_a_store_it_cannot_write(tmp_path, monkeypatch, uri, message):
    (tmp_path / "a-file").write_text("not a database")
    uri = uri.format(tmp=tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(TrackingError, match=message) as refused:
        preflight()
    assert "\n" not in str(refused.value)
    assert uri in str(refused.value)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("sqlite://relative.db", "is not sqlite:/// followed by the database's path"),
        ("SQLITE:////tmp/x.db", "write its scheme in lower case (sqlite://)"),
        ("sqlite:///", "is not sqlite:/// followed by the database's path"),
        ("sqlite:///:memory:", "keeps the store in memory"),
        ("sqlite:///{tmp}/q.db?mode=ro", "has options after '?'"),
        ("mysql+nosuchdriver://alice:s3cret@127.0.0.1:9/db", "cannot be used: NoSuchModule"),
        ("HTTP://127.0.0.1:9", "write its scheme in lower case (http://)"),
    ],
)
def test_preflight_refuses_a_uri_mlflow_would_fail_on_only_after_training(
    tmp_path, monkeypatch, uri, message
):
    """Each failed when logging, after training (a traceback, the model unsaved), or kept
    nothing (in memory); a password in the URI is never shown."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(tmp=tmp_path))
    with pytest.raises(TrackingError, match=re.escape(message)) as refused:
        preflight()
    assert "s3cret" not in str(refused.value)
    assert "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_a_password_in_a_tracking_uri_is_never_shown():
    assert tracking.redacted("at http://alice:s3cret@host:5000/x and mysql://u:p@h/db") == (
        "at http://alice:***@host:5000/x and mysql://u:***@h/db"
    )
    assert (
        str(TrackingError("postgresql://bob:pw@h/db failed")) == "postgresql://bob:***@h/db failed"
    )
    assert tracking.redacted("http://host:5000/path@x") == "http://host:5000/path@x"


def test_preflight_refuses_a_deleted_experiment(empty_store):
    """MLflow keeps a deleted experiment's name and refuses to log to it: after training."""
    import mlflow

    with tracking._store():
        mlflow.delete_experiment(tracking._experiment_id("gone"))
        tracking._experiment_id("kept")
    with pytest.raises(
        TrackingError, match=r"experiment 'gone' \(id \d+\) is deleted in .*restore"
    ):
        preflight(experiment="gone")
    assert preflight(experiment="kept") == tracking.tracking_uri()
    assert preflight(experiment="new") == tracking.tracking_uri()


def test_preflight_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert preflight() == "sqlite:///mlruns/mlflow.db"
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_store_keeps_its_artifacts_beside_it_wherever_the_command_runs(
    tmp_path, template_store, monkeypatch
):
    """Not in an mlruns/ of whatever directory the command ran in."""
    import mlflow

    store = tmp_path / "runs" / "team.db"
    store.parent.mkdir()
    shutil.copyfile(template_store, store)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    with tracking._store(), mlflow.start_run(experiment_id=tracking._experiment_id("beside")):
        mlflow.log_text("x", "marker.txt")
    assert [m.relative_to(tmp_path).parts[:3] for m in tmp_path.rglob("marker.txt")] == [
        ("runs", "mlruns", "beside")
    ]
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert tracking.ui_command()[-1] == (tmp_path / "runs" / "mlruns").as_uri()


def test_artifacts_stay_under_mlruns_whatever_the_experiment_name(tmp_path, empty_store):
    """Names come from file names (an experiment file named ``...toml`` is named ``..``)."""
    import mlflow

    names = ["..", "...", "../../outside", "/tmp/absolute", ".hidden", "a/../../b"]
    with tracking._store():
        for name in names:
            with mlflow.start_run(experiment_id=tracking._experiment_id(name)):
                mlflow.log_text(name, "marker.txt")
    markers = list(tmp_path.rglob("marker.txt"))
    assert sorted(m.read_text() for m in markers) == sorted(names)
    for marker in markers:
        assert marker.relative_to(tmp_path).parts[0] == "mlruns", marker
    assert not list(Path("/tmp/absolute").rglob("marker.txt"))


# -- slow: real `ketapredict train` processes and servers -------------------------------------
TINY = """
description = "tracking faults"
[data]
source = "simulated"
n = 700
seed = 3
[features]
set = "core"
[outcomes]
names = ["response"]
[model]
n_estimators = 20
[validation]
scheme = "stratified_kfold"
n_splits = 2
bootstraps = 20
peers = false
"""


def _train(tmp: Path, uri: str, experiment: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ketapredict.cli", "train", str(experiment), "--quiet"],
        cwd=tmp,
        env=_environment(uri),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.mark.slow
def test_four_concurrent_trainings_on_a_new_store_keep_every_run(tmp_path):
    from mlflow.tracking import MlflowClient

    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    processes = [_train(tmp_path, uri, experiment) for _ in range(4)]
    errors = [p.communicate(timeout=900)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, errors
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 4
    assert len(children) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    for group in (parents, children):
        keys = [set(r.data.metrics) for r in group]
        assert all(k == keys[0] for k in keys)
        assert "response/within_arm/auc" in keys[0]
    assert len({r.data.tags["ketapredict.pid"] for r in parents}) == 4


def _first_running_run(database: Path) -> str | None:
    try:
        with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_training_killed_while_logging_ends_its_runs_and_workers(tmp_path, how):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    database = tmp_path / "store" / "mlflow.db"
    uri = f"sqlite:///{database}"
    process = _train(tmp_path, uri, experiment)
    family: list[int] = []
    try:
        deadline = time.monotonic() + 600
        while (run_id := _first_running_run(database)) is None:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline
            family = descendants(process.pid) or family  # the workers, while they are known
            time.sleep(0.05)
        family = sorted(set(family) | set(descendants(process.pid)))
        os.kill(process.pid, getattr(signal, how))
        process.wait(timeout=60)
        orphans, _ = _wait_gone(family, 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _end_orphans(family)
    assert len(family) >= 2  # loky's workers (and resource trackers)
    assert orphans == []
    if how == "SIGTERM":
        assert process.returncode == 128 + signal.SIGTERM
        assert _status(uri, run_id) == "KILLED"
        assert "marked KILLED" in process.stderr.read()
    else:
        assert _status(uri, run_id) == "RUNNING"
    # the next training cleans a run left RUNNING, and says so
    again = _train(tmp_path, uri, experiment)
    _, said = again.communicate(timeout=900)
    assert again.returncode == 0, said
    assert _status(uri, run_id) in ("KILLED", "FAILED")
    if how == "SIGKILL":
        assert re.search(rf"Marked MLflow run {run_id} .* FAILED", said)


@pytest.mark.slow
def test_a_server_that_fails_its_api_is_refused_before_training(tmp_path):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    with failing_tracking_server() as url:
        began = time.perf_counter()
        process = _train(tmp_path, url, experiment)
        _, said = process.communicate(timeout=120)
        seconds = time.perf_counter() - began
    assert process.returncode == 1
    assert f"the MLflow tracking server at {url} answers /health but not its API" in said
    assert "HTTP 500" in said
    assert "Traceback" not in said
    assert not (tmp_path / "models").exists()  # nothing was trained
    assert seconds < 30


@pytest.mark.slow
def test_a_server_that_fails_after_training_loses_no_model(tmp_path):
    """The server passes the check, then fails every call: logging gives up within MLflow's
    bounded retries and the model is saved locally."""
    from ketapredict import RiskModel

    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    with failing_tracking_server(
        answering=("/api/2.0/mlflow/experiments/search",),
        missing=("/api/2.0/mlflow/experiments/get-by-name",),  # a new experiment
    ) as url:
        process = _train(tmp_path, url, experiment)
        _, said = process.communicate(timeout=900)
    assert process.returncode == 1, said
    assert "Traceback" not in said
    assert f"logging to {url} failed" in said
    saved = re.search(r"The trained model is saved at (\S+) ", said).group(1)
    assert RiskModel.load(tmp_path / saved).outcomes == ["response"]


@pytest.mark.slow
def test_a_server_that_hangs_is_given_up_within_the_timeout(monkeypatch):
    with failing_tracking_server(hang=60) as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        began = time.perf_counter()
        with pytest.raises(TrackingError, match=r"answers /health but not its API.*timed out"):
            preflight(timeout=3)
        assert time.perf_counter() - began < 6

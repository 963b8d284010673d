"""MLflow tracking: where runs go, what a run logs, the model registry and the UI.

Runs go to ``sqlite:///mlruns/mlflow.db`` with artifacts under ``mlruns/``, relative to the
current directory, unless ``MLFLOW_TRACKING_URI`` names another store (a team's MLflow
server). MLflow's file-store backend is deprecated and never used.

``ketapredict train`` logs one parent run per experiment file (the MLflow experiment is named
after the file) and one child run per outcome. Each run carries the experiment file, every
parameter, the cross-validated metrics (mean, SD and each fold as a step) of the model, its
peers and the oracle, a digest and schema of the data (never its rows, never identifiers),
tags (git commit, package version, data kind, host and pid) and plots. The parent run logs
the fitted RiskModel as an MLflow pyfunc loaded by the installed package (no pickle, no code
in the artifact).

Faults lose nothing: :func:`preflight` checks the store before training; MLflow's HTTP calls
get bounded timeouts; a new SQLite store is created under a file lock (concurrent first
runs); runs interrupted by a signal end KILLED, and runs left RUNNING by a dead process are
marked FAILED by the next run on the same host; experiment artifacts stay in the database's
directory or an ``mlruns/`` beside it, whatever the name; reading a store never creates one.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_TRACKING_URI",
    "TrackingError",
    "log_evaluation",
    "log_experiment",
    "preflight",
    "tracking_uri",
]

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
# MLflow's usage telemetry would send events off the machine: a clinical tool does not.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
ARTIFACT_ROOT = "mlruns"
# Rows of the data used for the SHAP figures: 500 dots per feature already give a stable
# beeswarm and bar chart, and each row costs its TreeSHAP over the draws of its missing fields.
SHAP_SAMPLE = 500


class TrackingError(RuntimeError):
    """The tracking store could not be reached or written; says where the model was saved.

    A password in a tracking URI never shows in the message (:func:`redacted`)."""

    def __init__(self, message: str) -> None:
        super().__init__(redacted(message))


# the user information of a URL (of a server or a database): everything between "://" and
# the last "@" before the path, so that a password holding "@" is hidden whole
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/?#]*)@")


def redacted(text: str) -> str:
    """``text`` with the password (or token) of every URL in it replaced by ``***``: the
    user's name is kept, a name without a password (often a token) is hidden.

    Examples
    --------
    >>> from ketapredict.tracking import redacted
    >>> redacted("logging to http://alice:s3cret@mlflow.example:5000 failed")
    'logging to http://alice:***@mlflow.example:5000 failed'
    >>> redacted("https://alice:p@ss@host and https://TOKEN@host")
    'https://alice:***@host and https://***@host'
    """

    def hide(match: re.Match) -> str:
        user = match["user"]
        shown = f"{user.split(':', 1)[0]}:***" if ":" in user else "***"
        return f"{match['scheme']}{shown}@"

    return _CREDENTIALS.sub(hide, str(text))


def resolved_tracking_uri() -> str:
    """:func:`tracking_uri` with a local SQLite store's path made absolute: the store every
    command logs to, named the same way by each (``sqlite:////home/me/mlruns/mlflow.db``).

    Examples
    --------
    >>> resolved_tracking_uri().startswith(("sqlite:////", "http"))
    True
    """
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        return f"sqlite:///{_sqlite_path(uri)}"
    return uri


def tracking_uri() -> str:
    """The tracking URI in use: ``MLFLOW_TRACKING_URI`` or the local SQLite default.

    Examples
    --------
    >>> import os
    >>> from ketapredict.tracking import tracking_uri
    >>> tracking_uri() == os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlruns/mlflow.db")
    True
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def preflight(*, timeout: float = 10.0, experiment: str | None = None) -> str:
    """Check, before any training, that the tracking store can be reached and written.

    Nothing is created: a local SQLite store that does not exist yet only needs a
    directory that can be written (``ketapredict train`` creates the store when it logs).

    - ``http://`` and ``https://``: the server must answer ``/health`` *and* an API call
      (a search of experiments) within ``timeout`` seconds in all, without MLflow's retries
      (which wait about 4 minutes on a server that fails); the credentials of
      ``MLFLOW_TRACKING_TOKEN`` or ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` are used.
    - ``sqlite:///``: the database file, if it exists, must be an SQLite database that can be
      written, and its directory and its artifacts' (:func:`_artifact_root`; or the nearest
      existing parents) must be writable directories. A URI without a path, with options
      after ``?`` or in memory (which would keep nothing) is refused.
    - MLflow's deprecated file store (``file:`` or a bare path) is refused.
    - Other databases (PostgreSQL, MySQL...): the URL must parse and its driver be
      installed; nothing is connected to. Databricks is left to MLflow; any other scheme
      must be one MLflow has a store for (an installed plugin's), or it is refused.
    - With ``experiment``, that experiment must not be deleted in a store that exists.

    Parameters
    ----------
    timeout : float, default=10.0
        Seconds the server has to answer both calls.
    experiment : str, optional
        The MLflow experiment the runs will go to: in a store that exists, it must not be
        deleted (MLflow refuses to log to a deleted experiment, which it keeps by name).

    Returns
    -------
    str
        The tracking URI checked (:func:`tracking_uri`).

    Raises
    ------
    TrackingError
        One line naming the URI and what failed.

    Examples
    --------
    >>> import os, tempfile
    >>> from ketapredict.tracking import preflight
    >>> folder = tempfile.mkdtemp()
    >>> before = os.environ.get("MLFLOW_TRACKING_URI")
    >>> os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/new/mlflow.db"
    >>> preflight() == os.environ["MLFLOW_TRACKING_URI"]
    True
    >>> os.path.exists(f"{folder}/new")  # checked, not created
    False
    >>> _ = os.environ.pop("MLFLOW_TRACKING_URI")
    >>> os.environ.update({} if before is None else {"MLFLOW_TRACKING_URI": before})
    """
    uri = tracking_uri()
    _check_uri(uri)
    if uri.startswith(("http://", "https://")):
        _check_server(uri, timeout=timeout)
    elif uri.startswith("sqlite:///"):
        _check_sqlite(uri, timeout=timeout)
    if experiment is not None:
        _check_experiment(uri, experiment)
    return uri


def _check_experiment(uri: str, name: str) -> None:
    """The experiment ``name``, if the store exists and holds it, is not deleted."""
    if uri.startswith("sqlite:///"):
        database = _sqlite_path(uri)
        if not database.is_file() or not _has_tables(database):
            return  # created when logging
        uri = f"sqlite:///{database}"
    elif not uri.startswith(("http://", "https://")):
        return
    from mlflow.tracking import MlflowClient

    bounded = {k: v for k, v in _BOUNDED_HTTP.items() if k not in os.environ}
    os.environ.update(bounded)
    try:
        found = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    except Exception as error:
        raise TrackingError(
            f"the MLflow store {uri} cannot be used: {_one_line(error)}"
        ) from error
    finally:
        for key in bounded:
            os.environ.pop(key, None)
    if found is not None and found.lifecycle_stage != "active":
        raise TrackingError(
            f"the MLflow experiment {name!r} (id {found.experiment_id}) is deleted in "
            f"{uri}; restore it (mlflow experiments restore --experiment-id "
            f"{found.experiment_id}, with MLFLOW_TRACKING_URI set to this store) or rename "
            "the experiment file"
        )


# MLflow's hosted stores, reached with their own credentials: left to MLflow
_HOSTED = ("databricks", "databricks-uc", "uc")
# The databases MLflow's SQL store serves (SQLAlchemy dialects, "+driver" optional); other
# schemes are MLflow's plugins, left to MLflow
_DATABASES = ("postgresql", "mysql", "mssql")


def _check_uri(uri: str) -> None:
    """Refuse, before any work, a tracking URI MLflow would fail on only when logging (after
    training) or that would keep nothing: the deprecated file store, an SQLite URI without
    a path, with options or in memory, and a database whose driver is not installed."""
    scheme = uri.split(":", 1)[0].lower()
    if scheme in _HOSTED:  # its credentials are MLflow's to check
        return
    use = (
        f"use sqlite:///relative/path.db, sqlite:////absolute/path.db (the default is "
        f"{DEFAULT_TRACKING_URI!r}) or a tracking server URL"
    )
    if uri.startswith("file:") or "://" not in uri:
        raise TrackingError(
            f"MLFLOW_TRACKING_URI={uri!r} is MLflow's deprecated file store; {use}."
        )
    if uri.split("://", 1)[0] != scheme:  # HTTP://host would skip the server's checks
        raise TrackingError(
            f"MLFLOW_TRACKING_URI={uri!r}: write its scheme in lower case ({scheme}://)"
        )
    if scheme == "sqlite" or scheme.startswith("sqlite+"):
        path = uri.removeprefix("sqlite:///")
        problem = (
            "is not sqlite:/// followed by the database's path"
            if not uri.startswith("sqlite:///") or not path
            else "keeps the store in memory: every run would be lost when the command ends"
            if path == ":memory:" or path.startswith("file::memory:")
            else "has options after '?', which ketapredict does not pass on"
            if "?" in path
            else None
        )
        if problem:
            raise TrackingError(f"MLFLOW_TRACKING_URI={uri!r} {problem}; {use}.")
    elif scheme.split("+", 1)[0] in _DATABASES:
        _check_database_driver(uri)
    elif scheme not in ("http", "https"):
        # a plugin's scheme, or one MLflow has no store for (ftp://, s3://), which MLflow
        # said only when logging, after the training: its client is made at once
        from mlflow.tracking import MlflowClient

        try:
            MlflowClient(tracking_uri=uri)
        except Exception:
            raise TrackingError(
                f"MLFLOW_TRACKING_URI={uri!r}: MLflow has no tracking store for {scheme}:// "
                f"(nor a plugin installed for it); {use}."
            ) from None


def _check_database_driver(uri: str) -> None:
    """A database URI (PostgreSQL, MySQL...) must parse and its driver be installed: MLflow
    finds out only when it logs, after training. Nothing is connected to."""
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(uri)  # imports the driver, connects to nothing
        engine.dispose()
    except Exception as error:  # an unknown dialect, a missing driver, a malformed URL
        raise TrackingError(
            f"the MLflow store {uri} cannot be used: {_one_line(error)} (a database store "
            "needs its SQLAlchemy driver installed: psycopg for PostgreSQL, mysqlclient or "
            "PyMySQL for MySQL)"
        ) from None


def _writable_directory(path: Path) -> str | None:
    """Why ``path`` could not be used as a directory to write in (None if it can): the
    directory itself or, when it does not exist yet, the nearest parent that does.

    Tried by writing a nameless file there (``O_TMPFILE``-like: created and unlinked at
    once), not by permission bits, which say nothing about read-only file systems, /proc or
    an administrator's account."""
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            return f"{existing} is a broken symbolic link"
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"the directory {existing} is not writable ({error.strerror or error})"
    return None


def _check_sqlite(uri: str, timeout: float) -> None:
    import sqlite3

    database = _sqlite_path(uri)
    problem = _writable_directory(database.parent) or _writable_directory(_artifact_root(uri))
    if problem is None and database.exists():
        if not database.is_file():
            problem = f"{database} is not a file"
        elif not os.access(database, os.R_OK | os.W_OK):
            problem = f"{database} is not writable"
        else:
            try:  # read-only: a check never changes the store
                with contextlib.closing(
                    sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=timeout)
                ) as connection:
                    connection.execute("PRAGMA schema_version").fetchone()
            except sqlite3.Error as error:
                problem = f"{database} is not a readable SQLite database ({error})"
    if problem is not None:
        raise TrackingError(f"the MLflow store {uri} cannot be used: {problem}")


# MLflow retries a failing HTTP call 7 times with a doubling back-off (about 4 minutes) and
# waits 120 s for each answer; while logging, a server that fails is said to fail within
# about a minute instead (a variable the user set keeps its value).
_BOUNDED_HTTP = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    # MLflow prints "View run ... at: <server URL>", user and password included; the
    # commands say where the runs went themselves, with the password hidden
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
# How long a process waits for another one that is creating the same SQLite store.
_LOCK_SECONDS = 120.0


@contextmanager
def _store(*, create: bool = True) -> Iterator[str]:
    """Point MLflow at the store for the length of a logging session.

    With ``create``, a local SQLite store is created if needed (its tables and migrations
    under a lock, so that concurrent first runs do not race); without, a store that does not
    exist is refused (:func:`_require_store`) and nothing is written. A server must pass
    :func:`preflight`'s check, and MLflow's HTTP calls get bounded timeouts and retries.
    MLflow's ``set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment;
    it is put back afterwards, so that the user's choice (or its absence) still decides the
    next store.
    """
    import mlflow

    uri = tracking_uri()
    _check_uri(uri)
    bounded: dict[str, str] = {}
    if uri.startswith("sqlite:///"):
        # resolve against the current directory now: MLflow caches stores by URI, so a
        # relative path would keep pointing at the directory of its first use
        uri = resolved_tracking_uri()
        if create:
            _create_sqlite_store(uri, _sqlite_path(uri))
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
        bounded = {k: v for k, v in _BOUNDED_HTTP.items() if k not in os.environ}
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ.update(bounded)
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        for name in bounded:
            os.environ.pop(name, None)
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@contextmanager
def _without_download_bars() -> Iterator[None]:
    """No MLflow progress bars while a model's files are fetched, unless the user asked.

    MLflow draws one bar per file (fourteen for a two-outcome model) on stderr even from a
    local store, in the middle of a clinician's Python session. A value the user (or
    ``ketapredict --verbose``) set is kept.
    """
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if name in os.environ:
        yield
        return
    os.environ[name] = "false"  # MLflow reads it at each download
    try:
        yield
    finally:
        os.environ.pop(name, None)


@contextmanager
def _file_lock(path: Path, timeout: float = _LOCK_SECONDS) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) across processes.

    ``fcntl.flock``: the kernel releases it when its holder dies, so a killed process never
    leaves the store locked. Where ``fcntl`` does not exist (Windows) there is no lock, and
    concurrent first uses of a new store are not protected.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TrackingError(
                        f"another process has held {path} for over {timeout:g} s while "
                        "creating the MLflow store; try again when it has finished"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _has_tables(database: Path) -> bool:
    """Whether MLflow has made ``database`` a store (read-only: nothing is created)."""
    import sqlite3

    if not database.is_file():
        return False
    with contextlib.closing(
        sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=30)
    ) as connection:
        found = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'"
        ).fetchone()
    return bool(found[0])


def _create_sqlite_store(uri: str, database: Path) -> None:
    """Create (or open) the SQLite store, its tables and migrations done by one process.

    MLflow creates the tables of an empty database and runs its alembic migrations when it
    first opens it; two processes doing so at once both migrate, and one of them fails (4
    concurrent first runs lost one to three). The first process here does it under a lock
    on ``mlflow.db.lock`` beside the database; the others wait, then find the tables made
    and open the store at the same time. A database being made by MLflow itself (not
    through ketapredict) at the same moment is not protected.
    """
    from mlflow.tracking import MlflowClient

    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(database.with_name(database.name + ".lock")):
            # a store made under this lock is complete: open it concurrently, outside
            if not _has_tables(database):
                client = MlflowClient(tracking_uri=uri, registry_uri=uri)
                client.search_experiments(max_results=1)  # the tables and migrations
                client.search_registered_models(max_results=1)
    except TrackingError:
        raise
    except Exception as error:
        raise TrackingError(
            f"the MLflow store {uri} could not be created or opened: {_one_line(error)}"
        ) from error


def _check_server(uri: str, timeout: float = 10.0) -> None:
    """The server answers ``/health`` and an API call within ``timeout`` seconds in all.

    MLflow's own HTTP client, for its credentials and TLS settings, but with no retries: a
    server that answers ``/health`` and fails every API call (a proxy in front of a broken
    server) would otherwise be retried for about 4 minutes before anything is said.
    """
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    deadline = time.monotonic() + timeout
    creds = get_default_host_creds(uri)
    for verdict, endpoint, method, body in (
        ("is unreachable", "/health", "GET", None),
        (
            "answers /health but not its API",
            "/api/2.0/mlflow/experiments/search",
            "POST",
            {"max_results": 1},
        ),
    ):
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError(f"no time left of {timeout:g} s")
            answer = http_request(
                creds,
                endpoint,
                method,
                max_retries=0,
                backoff_factor=0,
                backoff_jitter=0,
                timeout=left,
                raise_on_status=False,
                **({"json": body} if body is not None else {}),
            )
            problem = None if answer.status_code == 200 else f"HTTP {answer.status_code}"
        except Exception as error:  # connection refused, timeout, TLS, DNS...
            problem = _one_line(_root_cause(error))
        if problem is not None:
            raise TrackingError(
                f"the MLflow tracking server at {uri} {verdict}: {method} {endpoint} "
                f"failed (timeout {timeout:g} s): {problem}"
            ) from None


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a chain (the refused connection under requests' and
    MLflow's wrappers)."""
    seen = {id(error)}
    while (inner := error.__cause__ or error.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        error = inner
    return error


def _one_line(error: BaseException, limit: int = 300) -> str:
    """An exception as one line of at most ``limit`` characters, for a message."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _experiment_id(name: str) -> str:
    """The id of the experiment ``name``, created if needed (by this or, at the same moment,
    another process)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifact_location = None
    if mlflow.get_tracking_uri().startswith("sqlite:///"):
        artifact_location = artifact_location_of(name, _artifact_root(mlflow.get_tracking_uri()))
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        found = mlflow.get_experiment_by_name(name)  # another process created it first
        if found is None:
            raise
        return found.experiment_id


def artifact_location_of(name: str, root: str | Path = ARTIFACT_ROOT) -> str:
    """Where a local store keeps an experiment's artifacts: a folder of ``root`` named after
    the experiment, whatever the name holds.

    The name comes from a file name and may hold anything a file name can: separators,
    ``..`` (an experiment file named ``...toml``), a leading dot or other characters. Each
    character other than letters, digits, ``-``, ``_`` and ``.`` becomes ``_``, leading dots
    are dropped, and the folder is checked to be inside ``root`` (two names may share a
    folder: runs keep apart in it by their ids).

    Examples
    --------
    >>> from pathlib import Path
    >>> from ketapredict.tracking import artifact_location_of
    >>> root = Path("mlruns").resolve()
    >>> for name in ["baseline", "..", "../../etc", "/tmp/x", "a b;c"]:
    ...     print(Path(artifact_location_of(name).removeprefix("file://")).relative_to(root))
    baseline
    experiment
    etc
    tmp_x
    a_b_c
    """
    root = Path(root).resolve()
    folder = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._") or "experiment"
    location = (root / folder).resolve()
    if location.parent != root:  # cannot happen after the substitution; never trust it
        raise TrackingError(
            f"the experiment name {name!r} would put its artifacts at {location}, outside "
            f"the store's artifact root {root}"
        )
    return location.as_uri()


# -- a logging session: interrupted runs end KILLED, stale ones FAILED -----------------------
class Terminated(SystemExit):
    """SIGTERM or SIGHUP arrived while runs were being logged.

    Raised in the main thread by the handler :func:`_logging_session` installs, so that the
    runs are ended as ``KILLED`` on the way out; as a ``SystemExit`` it ends the process
    with the conventional status 128 + the signal's number, and no traceback.
    """


# signals that ask a process to end; SIGINT already raises KeyboardInterrupt
_ENDING_SIGNALS = ("SIGTERM", "SIGHUP")
_logger = logging.getLogger(__name__)


def _process_started(pid: int) -> str | None:
    """When the process ``pid`` started, in clock ticks since boot (Linux's /proc), or None
    where /proc does not say or the process has ended (a zombie); with the pid, it names
    one process even after its pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state) of proc(5), fields[19] field 22 (starttime)
    return None if fields[0] in ("Z", "X") else fields[19]


def process_tags() -> dict[str, str]:
    """Tags naming the process that logs a run: host, pid and the pid's start time.

    With them, the next run on the same host tells a run that is still being logged from one
    whose process died without ending it (see :func:`_end_stale_runs`).

    Examples
    --------
    >>> import os
    >>> from ketapredict.tracking import process_tags
    >>> process_tags()["ketapredict.pid"] == str(os.getpid())
    True
    """
    tags = {"ketapredict.host": socket.gethostname(), "ketapredict.pid": str(os.getpid())}
    started = _process_started(os.getpid())
    if started is not None:
        tags["ketapredict.process_started"] = started
    return tags


def _alive(pid: int, started: str | None) -> bool:
    """Whether the process that logged a run still runs (the same pid, started then)."""
    now = _process_started(pid)
    if now is not None or Path("/proc/self/stat").exists():
        return now is not None and (started is None or now == started)
    try:  # no /proc: whether the pid exists at all
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _end_stale_runs(client) -> list[str]:
    """Mark FAILED the RUNNING runs that a dead process on this host left behind.

    A process killed outright (SIGKILL, a power cut) cannot end its runs; they would show
    as running forever. Runs of live processes (another ``ketapredict train`` at the same
    time) and of other hosts are left alone. Says so in the log; never fails the logging.
    """
    host = socket.gethostname()
    ended: list[str] = []
    try:
        experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        if not experiments:
            return ended
        runs = client.search_runs(
            experiments,
            filter_string=f"attributes.status = 'RUNNING' and tags.`ketapredict.host` = '{host}'",
            max_results=1000,
        )
        for run in runs:
            tags = run.data.tags
            try:
                pid = int(tags.get("ketapredict.pid", ""))
            except ValueError:
                continue
            if _alive(pid, tags.get("ketapredict.process_started")):
                continue
            client.set_terminated(run.info.run_id, "FAILED")
            client.set_tag(
                run.info.run_id,
                "ketapredict.ended_by",
                f"a later run: process {pid} on {host} ended without ending this run",
            )
            ended.append(run.info.run_id)
            _logger.warning(
                "Marked MLflow run %s (%s) FAILED: process %d on %s left it RUNNING and has "
                "ended.",
                run.info.run_id,
                run.info.run_name,
                pid,
                host,
            )
    except Exception as error:  # cleaning up must never stop this run's logging
        _logger.warning("Could not look for runs left RUNNING: %s", _one_line(error))
    return ended


@contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` in the main thread, for a while.

    The previous handlers come back afterwards; a signal the process ignores (``nohup``)
    stays ignored, and outside the main thread (where Python cannot set handlers) nothing
    changes. A second signal while the first is being handled is ignored, so that the runs
    can be ended.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum, frame):
        if fired:
            return
        fired.append(signum)
        raise Terminated(128 + signum)

    previous = {}
    for name in _ENDING_SIGNALS:
        number = getattr(signal, name, None)
        if number is None or signal.getsignal(number) is signal.SIG_IGN:
            continue
        previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, before in previous.items():
            signal.signal(number, signal.SIG_DFL if before is None else before)


@contextmanager
def _logging_session() -> Iterator[list[str]]:
    """A session of logging runs, inside :func:`_store`; yields the list to which each run
    created is appended.

    First, runs left RUNNING by dead processes of this host are marked FAILED. Then, if the
    session ends by an exception, every run it opened that is not finished is ended:
    ``KILLED`` for an interruption (SIGINT, SIGTERM, SIGHUP), ``FAILED`` otherwise.
    """
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient()
        _end_stale_runs(client)
    except Exception as error:
        raise TrackingError(
            f"the MLflow store {tracking_uri()} cannot be used: {_one_line(error)}"
        ) from error
    opened: list[str] = []
    with _signals_raise():
        try:
            yield opened
        except BaseException as error:
            interrupted = isinstance(error, KeyboardInterrupt | Terminated)
            _end_runs(client, opened, "KILLED" if interrupted else "FAILED")
            if isinstance(error, Terminated):
                _logger.warning(
                    "Ended by signal %d while logging to MLflow; runs %s marked KILLED.",
                    error.code - 128,
                    ", ".join(opened) or "(none yet)",
                )
            raise


def _end_runs(client, run_ids: list[str], status: str) -> None:
    """End with ``status`` the runs that are not finished, best effort: the store may be
    what failed, so the first call that fails stops it, and a server gets one try of at most
    5 s per call (unless the user set MLflow's variables)."""
    import mlflow

    quick = {
        name: value
        for name, value in (
            ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "5"),
        )
        if os.environ.get(name) in (None, _BOUNDED_HTTP[name])
    }
    before = {name: os.environ.get(name) for name in quick}
    os.environ.update(quick)
    try:
        # MLflow's own stack of active runs (ours only: a caller's run is theirs to end)
        while (active := mlflow.active_run()) is not None and active.info.run_id in run_ids:
            mlflow.end_run(status)
        for run_id in run_ids:
            if client.get_run(run_id).info.status != "FINISHED":
                client.set_terminated(run_id, status)
    except Exception as error:
        _logger.warning(
            "Could not mark the MLflow runs %s %s: %s",
            ", ".join(run_ids),
            status,
            _one_line(error),
        )
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def git_commit() -> dict[str, str]:
    """The git commit of ketapredict's own source, when it runs from a git checkout.

    The commit of the package's directory, not of the directory the command runs in (that
    is MLflow's own ``mlflow.source.git.commit``); empty when the package was installed
    from a wheel. ``dirty`` says whether the package's files differ from the commit.
    """
    package = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(package), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()

    try:
        # a package installed inside some other checkout (a virtualenv in a repository)
        # is not that repository's source: the file must be tracked
        git("ls-files", "--error-unmatch", Path(__file__).name)
        return {
            "commit": git("rev-parse", "HEAD"),
            "dirty": "true" if git("status", "--porcelain", "--", ".") else "false",
        }
    except (OSError, subprocess.SubprocessError):
        return {}


# -- what a run logs --------------------------------------------------------------------------
def dataset_name(spec) -> str:
    """The name a dataset is logged under: its source in words (the same for every
    experiment on the same data, so MLflow shows one dataset, told apart by digest)."""
    return spec.describe()


def _dataset(data: pd.DataFrame, experiment) -> Any:
    """The data as MLflow sees it: name, digest, schema and a profile of counts; never rows
    or identifiers."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    from .schema import columns, table_digest

    kept = data.drop(columns=columns("identifier", frame=data))
    spec = experiment.spec.data
    source = CodeDatasetSource(
        {"kind": "simulated" if spec.simulated else (spec.format or "file")}
    )
    profile = {"courses": len(data)}
    if "trial_id" in data.columns:
        profile["trials"] = int(data["trial_id"].nunique())
    if "arm" in data.columns:
        profile["arms"] = int(data.groupby(["trial_id", "arm"], observed=True).ngroups)
    for outcome in columns("outcome", frame=data):
        if data[outcome].dtype == "boolean":
            profile[f"{outcome}_events"] = int(data[outcome].sum())
            profile[f"{outcome}_missing"] = int(data[outcome].isna().sum())

    class _Profiled(MetaDataset):  # MetaDataset logs no profile; the UI shows this one
        @property
        def profile(self) -> Any:
            return profile

        def to_dict(self) -> dict[str, str]:
            return {**super().to_dict(), "profile": json.dumps(profile)}

    return _Profiled(
        source=source,
        name=dataset_name(spec),
        digest=table_digest(data),
        schema=_schema(kept.columns),
    )


def _schema(names, *, loose: bool = False) -> Any:
    """An MLflow schema of contract columns; ``loose`` leaves all but decimal columns
    untyped, for the pyfunc (see :func:`signature`)."""
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    from .schema import column

    kinds = {
        "float": "double",
        "int": "double",
        "bool": "boolean",
        "category": "string",
        "string": "string",
    }
    specs = []
    for name in names:
        kind = column(name).kind
        dtype = AnyType() if loose and kind != "float" else kinds[kind]
        specs.append(ColSpec(dtype, name, required=column(name).required))
    return Schema(specs)


def signature(model) -> Any:
    """The pyfunc signature: the contract's baseline and regimen columns the model reads in,
    one probability per outcome out, and the ``outcome`` parameter.

    Decimal columns are typed ``double``; categories, whole numbers and yes/no fields are
    left untyped (``Any``) because MLflow's schema enforcement refuses pandas' categorical,
    nullable-integer and nullable-boolean columns, the contract's own dtypes. The model
    validates every column against the data contract itself (allowed categories, ranges),
    with a ValidationError that names them.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    from .schema import columns

    read = set().union(*(model.outcome_state(o).feature_names_in for o in model.outcomes))
    names = [c for c in columns("baseline") + columns("regimen") if c in read]
    return ModelSignature(
        inputs=_schema(names, loose=True),
        outputs=Schema([ColSpec("double", o) for o in model.outcomes]),
        params=ParamSchema([ParamSpec("outcome", "string", ALL_OUTCOMES)]),
    )


# the pyfunc's ``outcome`` parameter that asks for every outcome's column
ALL_OUTCOMES = "all"


def input_example(model) -> pd.DataFrame:
    """An invented patient (never a real one) with the columns the model reads."""
    from .schema import column, example_course

    names = signature(model).inputs.input_names()
    # whole-number columns are doubles in the signature: they may be missing
    return pd.DataFrame(
        [
            {
                k: float(v) if column(k).kind == "int" else v
                for k, v in example_course().items()
                if k in names
            }
        ]
    )


# How ValidationResult.metrics columns are named in MLflow: one scheme on parent and child
# runs, grouped by outcome, then by population (the MLflow UI groups keys on "/").
METRIC_KEYS = {
    "within_arm_auc": "within_arm/auc",
    "within_arm_auc_low": "within_arm/auc_low",
    "within_arm_auc_high": "within_arm/auc_high",
    "active_ece": "active/ece",
    "active_calibration_intercept": "active/calibration_intercept",
    "active_calibration_slope": "active/calibration_slope",
    "auc": "all/auc",
    "auc_low": "all/auc_low",
    "auc_high": "all/auc_high",
    "pr_auc": "all/pr_auc",
    "brier": "all/brier",
    "ece": "all/ece",
    "calibration_intercept": "all/calibration_intercept",
    "calibration_slope": "all/calibration_slope",
}
_FOLD_METRICS = ("within_arm_auc", "auc", "brier")


def metric_key(outcome: str, metric: str, model: str = "OutcomeModel") -> str:
    """The MLflow key of a metric: ``response/within_arm/auc`` for the model,
    ``response/oracle/within_arm/auc`` for a peer or the oracle.

    Examples
    --------
    >>> from ketapredict.tracking import metric_key
    >>> metric_key("response", "within_arm_auc")
    'response/within_arm/auc'
    >>> metric_key("cognitive_decline", "brier", "oracle")
    'cognitive_decline/oracle/all/brier'
    """
    name = METRIC_KEYS.get(metric, metric)
    return f"{outcome}/{name}" if model == "OutcomeModel" else f"{outcome}/{model}/{name}"


def outcome_metrics(result, seconds: float | None = None) -> dict[str, float]:
    """Every metric of one outcome's validation under its MLflow key.

    The model's, each peer's and the oracle's (:data:`METRIC_KEYS`), the mean and SD over
    folds shown of the model's within-arm AUC, AUC and Brier score
    (``response/folds/auc_mean``; each fold is in the run's ``tables/folds.csv``; a fold
    withheld for privacy counts in neither), and the validation's wall time. A
    metric that cannot be computed (an AUC with one class) is logged as NaN, so runs of
    different experiments carry the same keys.
    """
    outcome = result.outcome
    out: dict[str, float] = {}
    for model in result.metrics.index:
        for metric in METRIC_KEYS:
            out[metric_key(outcome, metric, model)] = float(result.metrics.loc[model, metric])
    shown = result.shown_folds
    ours = shown[shown["model"] == "OutcomeModel"]
    for metric in _FOLD_METRICS:
        values = ours[metric].dropna()
        out[f"{outcome}/folds/{metric}_mean"] = float(values.mean()) if len(values) else np.nan
        out[f"{outcome}/folds/{metric}_sd"] = (
            float(values.std(ddof=1)) if len(values) > 1 else np.nan
        )
    if seconds is not None:
        out[f"{outcome}/time/validation_s"] = float(seconds)
    return out


def fold_table(result) -> pd.DataFrame:
    """One row per model and fold, naming the held-out trial (or fold) first; a fold of
    fewer than :data:`~ketapredict.schema.MIN_CELL` courses (a small trial), or one that
    would give such a group away, is left out (``fold_metrics["withheld"]``)."""
    table = result.shown_folds.copy()
    table.insert(0, "outcome", result.outcome)
    if "trial" in table.columns:
        table = table.rename(columns={"trial": "held_out_trial"})
    return table


def model_parameters(experiment, outcome: str, fitted=None) -> dict[str, Any]:
    """Every effective hyperparameter of an outcome's model (defaults included; a fitted
    model's own, tuned ones included), and, for a fitted model, the boosting rounds early
    stopping chose and the leaf weight used."""
    params = (fitted if fitted is not None else experiment.model(outcome)).get_params()
    out = {f"model.{k}": v for k, v in params.items() if k not in ("outcome", "features")}
    if fitted is not None:
        out["model.n_rounds_fitted"] = int(fitted.n_rounds_)
        out["model.min_child_weight_fitted"] = round(float(fitted.min_child_weight_), 4)
    return out


def run_parameters(result, outcome: str | None = None, risk_model=None) -> dict[str, Any]:
    """The params of a run: the experiment's data, feature set, validation scheme and
    tuning grid, and the effective model hyperparameters (for the parent run, the first
    outcome's, tuned ones included, with each outcome's fitted rounds and leaf weight as
    ``response.n_rounds_fitted`` and ``response.min_child_weight_fitted``, and the values
    its grid search chose as ``response.tuned.max_depth``)."""
    experiment = result.experiment
    spec = experiment.spec
    # an outcome's folds: under leave-one-trial-out, the trials that measured it
    folds = {name: r.fold_metrics["fold"].nunique() for name, r in result.results.items()}
    if outcome is not None:
        fold_text: Any = folds[outcome]
    elif len(set(folds.values())) == 1:
        fold_text = next(iter(folds.values()))
    else:
        fold_text = ", ".join(f"{n} {name}" for name, n in folds.items())
    params: dict[str, Any] = {
        "data.source": spec.data.describe(),
        "data.kind": result.data_kind,
        "data.courses": result.n_rows,
        "features.set": spec.features.set,
        "validation.scheme": spec.validation.scheme,
        "validation.folds": fold_text,
        "validation.bootstraps": spec.validation.bootstraps,
        "validation.seed": spec.validation.seed,
        "validation.peers": spec.validation.peers,
        "outcomes": ",".join(result.results),
    }
    if spec.tuning:
        params["tuning.grid"] = json.dumps(spec.tuning)
    from .models import outcome_models

    models = outcome_models(risk_model) if risk_model is not None else {}
    if outcome is not None:
        validation = result.results[outcome]
        params.update(
            {
                "outcome": outcome,
                "rows": len(validation.predictions),
                "events": int(validation.predictions[outcome].sum()),
                "rows_left_out": validation.rows_left_out,
            }
        )
        params.update(model_parameters(experiment, outcome, models.get(outcome)))
    else:
        first = next(iter(result.results))
        chosen = model_parameters(experiment, first, models.get(first))
        params.update({k: v for k, v in chosen.items() if not k.endswith("_fitted")})
        for name, fitted in models.items():
            params[f"{name}.n_rounds_fitted"] = int(fitted.n_rounds_)
            params[f"{name}.min_child_weight_fitted"] = round(float(fitted.min_child_weight_), 4)
            # the values the grid search chose for the model kept (per outcome)
            params.update({f"{name}.tuned.{k}": fitted.get_params()[k] for k in spec.tuning})
    return {k: _param(v) for k, v in params.items()}


# -- the whole experiment ---------------------------------------------------------------------
@dataclass
class TrackedRun:
    """Where an experiment was logged."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    child_run_ids: dict[str, str]
    model_uri: str | None
    registered: dict[str, Any] | None = None
    seconds: float = 0.0


def log_experiment(
    result,
    data: pd.DataFrame,
    risk_model=None,
    *,
    register: str | None = None,
    learning_curves: Mapping[str, pd.DataFrame] | None = None,
) -> TrackedRun:
    """Log an experiment's results (and its fitted RiskModel) to MLflow.

    One parent run per experiment (named ``<experiment> <date>``) and one child run per
    outcome (``<experiment> / <outcome>``), built for comparison in the MLflow UI:

    - params: the data source, feature set, validation scheme, every effective model
      hyperparameter (defaults included) and the boosting rounds early stopping chose;
    - metrics under one scheme on parent and child (:func:`metric_key`), with each run's
      validation time; the parent run spans the whole job;
    - tables: each fold with its held-out trial (``tables/folds.csv``), the subgroups
      (``tables/subgroups.csv``) and the quantile calibration bins
      (``tables/calibration.csv``);
    - the data through ``mlflow.data`` under one name per source, with its digest, schema
      and a profile of counts (never rows, never identifiers);
    - plots, the experiment file, the model card and tags (ketapredict's version and source
      commit, data kind, feature set, scheme, data digest);
    - the RiskModel as an MLflow pyfunc (parent run), optionally registered.

    Parameters
    ----------
    result : ExperimentResult
        From :func:`ketapredict.experiment.run_experiment`.
    data : DataFrame
        The experiment's data; only its digest, schema and counts are logged, and a sample
        of its rows is explained for the SHAP plots (the plots show no identifiers).
    risk_model : RiskModel, optional
        Logged as an MLflow pyfunc from the parent run.
    register : str, optional
        Register the model under this name; alias ``champion`` if it beats the current
        champion on a like-for-like comparison (same data digest, validation scheme, folds
        and primary outcome; see :data:`PRIMARY_METRIC`), else ``challenger``, with the reason
        as a tag of the model version and of the run.
    learning_curves : mapping of outcome to DataFrame, optional
        Learning-curve results to plot in the outcome's run.

    Returns
    -------
    TrackedRun

    Raises
    ------
    TrackingError
        The store cannot be reached or written.
    """

    start = time.perf_counter()
    with _store() as uri, _logging_session() as opened:
        return _log(result, data, risk_model, register, learning_curves, uri, start, opened)


def _milliseconds(seconds: float) -> int:
    return int(seconds * 1000)


def _log(result, data, risk_model, register, learning_curves, uri, start, opened) -> TrackedRun:
    import matplotlib.pyplot as plt
    import mlflow
    from mlflow.tracking import MlflowClient

    from . import __version__

    client = MlflowClient()
    experiment = result.experiment
    spec = experiment.spec
    try:
        experiment_id = _experiment_id(experiment.name)
        if spec.description:  # the MLflow UI shows this tag as the experiment's description
            client.set_experiment_tag(experiment_id, "mlflow.note.content", spec.description)
        dataset = _dataset(data, experiment)
        source = git_commit()
        tags = {
            "ketapredict.version": __version__,
            "data_kind": result.data_kind,
            "feature_set": spec.features.set,
            "validation_scheme": spec.validation.scheme,
            "validation_folds": validation_folds(spec.validation),
            "data_digest": dataset.digest,
            "primary_outcome": next(iter(result.results)),
            **{f"ketapredict.git_{k}": v for k, v in source.items()},
            **process_tags(),
        }
        if result.data_kind == "simulated":
            tags["not_for_clinical_decisions"] = "trained on the virtual cohort"
        parent = client.create_run(
            experiment_id,
            start_time=_milliseconds(result.started),
            tags={**tags, "mlflow.note.content": spec.description},
            run_name=f"{experiment.name} {time.strftime('%Y-%m-%d %H:%M')}",
        )
        parent_id = parent.info.run_id
        opened.append(parent_id)
        children, all_metrics = {}, {}
        with mlflow.start_run(run_id=parent_id):
            mlflow.log_params(run_parameters(result, risk_model=risk_model))
            mlflow.log_text(experiment.text, "experiment.toml")
            mlflow.log_input(dataset, context="training")
            # each outcome's run spans its own validation inside the parent's time
            began = (
                result.started
                + result.seconds
                - sum(result.timings.get(o, 0.0) for o in result.results)
            )
            for outcome, validation in result.results.items():
                seconds = result.timings.get(outcome)
                child = client.create_run(
                    experiment_id,
                    start_time=_milliseconds(began),
                    # the experiment's primary outcome is the parent's; a child is one outcome's
                    tags={
                        **{k: v for k, v in tags.items() if k != "primary_outcome"},
                        "outcome": outcome,
                        "mlflow.parentRunId": parent_id,
                    },
                    run_name=f"{experiment.name} / {outcome}",
                )
                child_id = child.info.run_id
                opened.append(child_id)
                metrics = outcome_metrics(validation, seconds)
                all_metrics.update(metrics)
                with mlflow.start_run(run_id=child_id, nested=True):
                    mlflow.log_params(run_parameters(result, outcome, risk_model))
                    mlflow.log_text(experiment.text, "experiment.toml")
                    mlflow.log_input(dataset, context="training")
                    mlflow.log_metrics(metrics)
                    _log_tables(validation)
                    figures = _outcome_figures(
                        experiment,
                        validation,
                        data,
                        risk_model,
                        (learning_curves or {}),
                        simulated=result.data_kind == "simulated",
                    )
                    for name, figure in figures.items():
                        mlflow.log_figure(figure, f"plots/{name}")
                        plt.close(figure)
                if seconds is not None:
                    began += seconds
                    client.set_terminated(child_id, end_time=_milliseconds(began))
                children[outcome] = child_id
            for step in ("tuning", "final_model"):  # the grid search before the final fit
                if step in result.timings:
                    all_metrics[f"time/{step}_s"] = result.timings[step]
            mlflow.log_metrics(all_metrics)
            model_uri = None
            if risk_model is not None:
                mlflow.log_text(risk_model.model_card(), "model_card.md")
                model_uri = _log_model(risk_model)
            registered = _register(model_uri, register, risk_model) if register else None
        return TrackedRun(
            uri,
            experiment_id,
            parent_id,
            children,
            model_uri,
            registered,
            time.perf_counter() - start,
        )
    except TrackingError:
        raise
    except Exception as error:  # the store failed mid-way: say so, with the cause
        raise TrackingError(f"logging to {uri} failed: {_one_line(error)}") from error


def _log_tables(validation) -> None:
    """The run's tables: folds, subgroups and calibration bins (aggregates, no rows)."""
    import mlflow

    from .evaluate import calibration_bins
    from .plots import calibration_bin_count
    from .schema import MIN_CELL

    mlflow.log_text(fold_table(validation).to_csv(index=False), "tables/folds.csv")
    mlflow.log_text(validation.subgroups.to_csv(index=False), "tables/subgroups.csv")
    predictions = validation.predictions
    y = predictions[validation.outcome].to_numpy(dtype=float)
    # the plot's bins, each of at least MIN_CELL patients
    per_patient = validation.courses_per_patient
    k = calibration_bin_count(int(y.sum()), len(y) // per_patient)
    least = MIN_CELL * per_patient
    bins = [
        calibration_bins(y, predictions[column].to_numpy(), k, min_courses=least).assign(
            model=column.removeprefix("p_")
        )
        for column in predictions.columns
        if column.startswith("p_")
    ]
    mlflow.log_text(pd.concat(bins).to_csv(index=False), "tables/calibration.csv")


def _outcome_figures(
    experiment, validation, data, risk_model, learning_curves, *, simulated: bool
) -> dict:
    """The plots of one outcome's run: ROC, calibration, decision curve, learning curve
    (:func:`ketapredict.plots.validation_figures`) and, when the model was fitted, shap's
    bar chart, waterfall and, for simulated patients, beeswarm
    (:func:`ketapredict.explanation.shap_figures`)."""
    from .explanation import shap_figures
    from .plots import outcome_words, validation_figures

    outcome = validation.outcome
    feature_set = experiment.spec.features.set
    figures = validation_figures(
        validation,
        experiment=experiment.name,
        feature_set=feature_set,
        learning_curve=learning_curves.get(outcome),
    )
    if risk_model is not None and outcome in risk_model.outcomes:
        rows = data[data[outcome].notna()]
        sample = rows.sample(min(SHAP_SAMPLE, len(rows)), random_state=0)
        title = (
            f"{outcome_words(outcome)}: experiment {experiment.name}, feature set {feature_set}"
        )
        # a beeswarm's dots are single patients' values: drawn for simulated ones only
        figures.update(
            shap_figures(risk_model, sample, outcome, title=title, each_patient=simulated)
        )
    return figures


def _param(value: Any) -> Any:
    if isinstance(value, list | dict | tuple):
        return str(value)
    return value


_NOT_SERVED = ("shap", "matplotlib", "tqdm")


def requirements() -> list[str]:
    """The pip requirements of the logged pyfunc: ketapredict itself and its dependencies,
    at the versions installed here.

    The model's loader is the installed package's (``ketapredict._mlflow_pyfunc``): no code
    travels with the model, so the serving environment installs ketapredict. No public index
    serves it; point pip at a wheel of it (``pip wheel --no-deps -w dist/ .`` in the
    repository, then ``PIP_FIND_LINKS=dist/``) or at your own index.

    Examples
    --------
    >>> import ketapredict
    >>> from ketapredict.tracking import requirements
    >>> requirements()[0] == f"ketapredict=={ketapredict.__version__}"
    True
    """
    from importlib.metadata import PackageNotFoundError, requires, version

    from packaging.requirements import Requirement

    pinned = [f"ketapredict=={version('ketapredict')}"]
    for text in requires("ketapredict") or []:
        requirement = Requirement(text)
        # extras (tests) and the training side's plotting and explanation libraries are
        # never imported by the pyfunc (shap alone would add numba and LLVM to the image)
        if requirement.marker is not None or requirement.name in _NOT_SERVED:
            continue
        try:
            pinned.append(f"{requirement.name}=={version(requirement.name)}")
        except PackageNotFoundError:
            pinned.append(str(requirement))
    return pinned


def _log_model(risk_model) -> str:
    """Log the RiskModel as a pyfunc whose loader is the installed package's.

    The model directory (its files and their checksums, and its signature when it was
    signed) is the flavor's data; MLflow loads it with ``ketapredict._mlflow_pyfunc`` of the
    installed ketapredict (``loader_module``), which verifies it with
    :meth:`RiskModel.load`. No code travels with the model (no ``code_paths``, no
    models-from-code file; an edited copy of the loader ran before), and ``MLmodel`` records
    no path of this machine. ``MLmodel`` itself is MLflow's and unsigned: whoever can write
    the artifact can make it name other code, which ``mlflow.pyfunc.load_model`` would run;
    :func:`load_logged_model` reads the RiskModel's files alone. The requirements pin
    ketapredict and its dependencies (:func:`requirements`).
    """
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        saved = risk_model.save(Path(folder) / "risk_model")
        info = mlflow.pyfunc.log_model(
            name="risk_model",
            loader_module="ketapredict._mlflow_pyfunc",
            data_path=str(saved),
            signature=signature(risk_model),
            input_example=input_example(risk_model),
            pip_requirements=requirements(),
        )
    _forget_local_paths(info)
    return info.model_uri


def _forget_local_paths(info) -> None:
    """Put the model's URI where MLflow wrote its artifact location in ``MLmodel``.

    MLflow 3 records the logged model's artifact location as ``artifact_path``: for a local
    store, an absolute path of this machine (its user name, its folders), which then travels
    wherever the model is copied. The URI ``models:/<id>`` names the same files in any
    store's terms (MLflow reads ``artifact_path`` only to find the input example, which the
    URI finds too).
    """
    import mlflow
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as folder:
        location = mlflow.get_logged_model(info.model_id).artifact_location
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location.rstrip('/')}/MLmodel", dst_path=folder
        )
        described = Model.load(local)
        described.artifact_path = info.model_uri
        described.save(local)
        MlflowClient().log_model_artifact(info.model_id, local)


def risk_metrics() -> list:
    """Metrics of predicted risks for ``mlflow.models.evaluate``: AUC, Brier score,
    calibration intercept and slope, observed rate and mean predicted risk.

    MLflow's built-in ``classifier`` evaluation scores labels (and probabilities only of
    scikit-learn and XGBoost flavors), not the risks a pyfunc returns; these metrics score
    the risk of one outcome, chosen with ``predictions=<outcome>``::

        mlflow.models.evaluate(
            model_uri, data, targets="response", predictions="response",
            extra_metrics=ketapredict.tracking.risk_metrics(),
        )

    ``data`` holds the patients and the observed outcome (0/1, no missing values).

    Returns
    -------
    list of mlflow.models.EvaluationMetric
    """
    from mlflow.metrics import MetricValue, make_metric

    from .evaluate import _calibration_line

    def scored(name: str, compute) -> Any:
        def eval_fn(predictions, targets, metrics=None):
            y = np.asarray(targets, dtype=float)
            p = np.asarray(predictions, dtype=float)
            both = min(y.sum(), len(y) - y.sum()) > 0
            value = (
                compute(y, p)
                if both or name in ("brier", "observed", "mean_predicted")
                else np.nan
            )
            return MetricValue(aggregate_results={name: float(value)})

        return eval_fn

    def auc(y, p):
        from sklearn.metrics import roc_auc_score

        return roc_auc_score(y, p)

    computed = {
        "auc": (auc, True),
        "brier": (lambda y, p: np.mean((p - y) ** 2), False),
        "calibration_intercept": (lambda y, p: _calibration_line(y, p)[0], True),
        "calibration_slope": (lambda y, p: _calibration_line(y, p)[1], True),
        "observed": (lambda y, p: y.mean(), True),
        "mean_predicted": (lambda y, p: p.mean(), True),
    }
    return [
        make_metric(eval_fn=scored(name, compute), greater_is_better=better, name=name)
        for name, (compute, better) in computed.items()
    ]


def log_evaluation(result, model, model_source: str) -> str:
    """Log an external validation (:func:`ketapredict.evaluate_model`) as an MLflow run.

    The run sits in the experiment ``external-validation``, is named after the model and
    the data, and is linked to the model by tags: ``model_source`` (the MLflow URI, or the
    model directory's name) and ``model_sha256`` (the saved model's content checksum). It
    logs every figure of the report as a metric (``response/ketamine/auc``...), the data's
    digest, and the report and its table (aggregates only, never a patient row).

    Returns
    -------
    str
        The run's id.
    """
    source = model_source
    if not source.startswith(("models:/", "runs:/")):
        source = Path(source).name or source  # a directory's name, not this machine's path
    with _store() as uri, _logging_session() as opened:
        try:
            return _log_evaluation(result, model, source, opened)
        except TrackingError:
            raise
        except Exception as error:  # the store refused a write: say so, with the cause
            raise TrackingError(f"logging to {uri} failed: {_one_line(error)}") from error


def _log_evaluation(result, model, source: str, opened: list[str]) -> str:
    import mlflow

    from . import __version__
    from .exceptions import one_line

    experiment_id = _experiment_id("external-validation")
    name = one_line(
        f"{model.provenance.get('name', 'model')} on {result.source or result.data_digest}"
    )
    with mlflow.start_run(experiment_id=experiment_id, run_name=name[:200]) as run:
        opened.append(run.info.run_id)
        mlflow.set_tags(
            {
                **process_tags(),
                "model_source": source,
                "model_sha256": getattr(model, "content_sha256", "unsaved"),
                "model_data_kind": model.provenance.get("data_kind", "unknown"),
                "data_digest": result.data_digest,
                "ketapredict.version": __version__,
                **{f"ketapredict.git_{k}": v for k, v in git_commit().items()},
                "mlflow.note.content": (
                    f"External validation of {result.model} on {result.n_courses:,} courses."
                ),
            }
        )
        mlflow.log_params(
            {
                "n_courses": result.n_courses,
                "outcomes": ",".join(pd.unique(result.table["outcome"])),
            }
        )
        mlflow.log_metrics(result.metrics)
        mlflow.log_text(str(result), "external_validation.txt")
        mlflow.log_text(result.table.to_csv(index=False), "external_validation.csv")
        return run.info.run_id


def load_logged_model(uri: str, *, public_key: Any = None):
    """The RiskModel logged at an MLflow model URI (``models:/name@alias``, ``runs:/...``).

    The model's files are downloaded from the store of :func:`tracking_uri` into a
    temporary directory, loaded (every byte read and verified against its checksum, and its
    signature when ``public_key`` is given, by :meth:`RiskModel.load`), and the directory is
    removed. Nothing from the artifact is executed, and reading never creates a store.

    Parameters
    ----------
    uri : str
        An MLflow model URI.
    public_key : optional
        Passed to :meth:`RiskModel.load`: refuse a model not signed with its private key.

    Raises
    ------
    ModelFileError
        No store at a local SQLite URI (MLflow would silently create an empty one; the
        message says where it looked and how to point elsewhere), no such model or run in
        the store, or model files that fail verification.
    TrackingError
        The store could not be reached (a server down).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from .exceptions import ModelFileError
    from .risk import RiskModel

    _require_store(f"read the model {uri!r}", error=ModelFileError)
    with (
        _store(create=False),
        _without_download_bars(),
        tempfile.TemporaryDirectory(prefix="ketapredict-") as folder,
    ):
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder))
        except MlflowException as error:
            if error.error_code in _NOT_FOUND:
                raise ModelFileError(
                    redacted(
                        f"no ketapredict model at {uri!r} in the MLflow store "
                        f"{tracking_uri()}: {_one_line(error)}"
                    )
                ) from None
            raise TrackingError(
                f"could not read the model {uri!r} from {tracking_uri()}: {_one_line(error)}"
            ) from error
        except OSError as error:  # a run's artifact path that holds nothing
            raise ModelFileError(
                redacted(
                    f"no ketapredict model at {uri!r} in the MLflow store {tracking_uri()}: "
                    f"{_one_line(error)}"
                )
            ) from None
        # the flavor's data (a model logged by this version), the python_model's artifact
        # (earlier versions), or a RiskModel directory logged as plain artifacts; only the
        # RiskModel's files are read, nothing of MLflow's (MLmodel, code) is used
        for saved in (local / "data" / "risk_model", local / "artifacts" / "risk_model", local):
            if (saved / "manifest.json").is_file():
                break
        return RiskModel.load(saved, public_key=public_key)


# MLflow's error codes for a model, version, alias or run that is not in the store
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


# The champion rule compares like with like: the same data, validation scheme, folds and
# primary outcome, judged on the clinician's question (AUC within arm among active-drug patients).
PRIMARY_METRIC = "within_arm_auc"


def validation_folds(validation) -> str:
    """How an experiment's folds were drawn, for the like-for-like rule: leave-one-trial-out
    has one fold per trial; k-fold schemes depend on k and the seed.

    Examples
    --------
    >>> from ketapredict.experiment import _Validation
    >>> from ketapredict.tracking import validation_folds
    >>> validation_folds(_Validation(scheme="stratified_kfold", n_splits=3, seed=7))
    '3 folds, seed 7'
    """
    if validation.scheme == "leave_one_trial_out":
        return "one per trial"
    return f"{validation.n_splits} folds, seed {validation.seed}"


_COMPARABLE = {
    "data_digest": "data",
    "validation_scheme": "validation scheme",
    # other folds of the same data move an AUC by more than most real improvements
    "validation_folds": "validation folds",
    "primary_outcome": "primary outcome",
}


def _comparable(run, tag: str) -> str | None:
    """A run's value of a like-for-like tag; the folds of a run logged before that tag
    existed are read from its scheme and parameters."""
    value = run.data.tags.get(tag)
    if value is None and tag == "validation_folds":
        params, scheme = run.data.params, run.data.tags.get("validation_scheme")
        if scheme == "leave_one_trial_out":
            return "one per trial"
        if "validation.folds" in params and "validation.seed" in params:
            return f"{params['validation.folds']} folds, seed {params['validation.seed']}"
    return value


def _register(model_uri: str | None, name: str, risk_model=None) -> dict[str, Any]:
    """Register the model; alias it champion if it beats the current champion on a like-for-
    like comparison, else challenger, saying why (a tag of the version and of the run).

    The registered model and the version carry a description and tags: the training
    data's kind (and "not for clinical decisions" for the virtual cohort), the experiment,
    feature set, validation scheme, data digest and the primary metric."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if model_uri is None:
        raise TrackingError("--register needs a fitted model to register")
    client = MlflowClient()
    # MLflow prints "Successfully registered model ..." on stderr, outside its logger: route
    # it through the logger, which the command line keeps quiet unless --verbose
    with contextlib.redirect_stderr(io.StringIO()) as said:
        version = mlflow.register_model(model_uri, name)
    for line in said.getvalue().splitlines():
        logging.getLogger("mlflow").info(line)
    ours_run = client.get_run(mlflow.active_run().info.run_id)
    primary = ours_run.data.tags.get("primary_outcome", "")
    key = metric_key(primary, PRIMARY_METRIC)
    ours = ours_run.data.metrics.get(key, np.nan)
    try:
        champion = client.get_model_version_by_alias(name, "champion")
        theirs_run = client.get_run(champion.run_id)
        # the champion's own primary outcome: if it is another, its AUC is that outcome's
        their_primary = theirs_run.data.tags.get("primary_outcome", "")
        theirs = theirs_run.data.metrics.get(metric_key(their_primary, PRIMARY_METRIC), np.nan)
    except MlflowException:
        champion, theirs_run, their_primary, theirs = None, None, None, np.nan
    if champion is None:
        alias, reason = "champion", "no champion yet"
    else:
        differ = [
            label
            for tag, label in _COMPARABLE.items()
            if _comparable(ours_run, tag) != _comparable(theirs_run, tag)
        ]
        # a champion is what users load: its successor must answer every outcome it did
        dropped = sorted(_outcomes(theirs_run) - _outcomes(ours_run))
        if differ:
            alias = "challenger"
            reason = (
                f"not comparable with champion version {champion.version}: other "
                + ", ".join(differ)
            )
        elif dropped:
            alias = "challenger"
            reason = (
                f"predicts no {', '.join(dropped)}, which champion version "
                f"{champion.version} predicts"
            )
        elif not np.isfinite(ours) or not np.isfinite(theirs):
            alias, reason = "challenger", "no within-arm AUC to compare"
        elif ours > theirs:
            alias, reason = "champion", f"beats version {champion.version} ({theirs:.3f})"
            low, high = (ours_run.data.metrics.get(f"{key}_{end}") for end in ("low", "high"))
            if low is not None and high is not None and ours - theirs < (high - low) / 4:
                # two runs on the same folds differ by less than their intervals, which
                # resample trials and patients; a small gain may be chance
                reason += (
                    f" by {ours - theirs:.3f}, well inside its 95% interval "
                    f"[{low:.3f}, {high:.3f}]: the gain may be chance"
                )
        else:
            alias, reason = (
                "challenger",
                f"does not beat version {champion.version} ({theirs:.3f})",
            )
    try:  # the version that held the alias until now says so
        previous = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        previous = None
    client.set_registered_model_alias(name, alias, version.version)
    if previous is not None and str(previous.version) != str(version.version):
        client.set_model_version_tag(
            name,
            previous.version,
            "alias_reason",
            f"was {alias} until version {version.version} ({reason})",
        )
    tags = ours_run.data.tags
    simulated = tags.get("data_kind") == "simulated"
    described = {
        "data_kind": tags.get("data_kind", "unknown"),
        "experiment": ours_run.info.run_name.rsplit(" ", 2)[0],
        "feature_set": tags.get("feature_set", ""),
        "validation_scheme": tags.get("validation_scheme", ""),
        "data_digest": tags.get("data_digest", ""),
        "primary_outcome": primary,
        key: f"{ours:.4f}",
        "alias_reason": f"{alias}: {reason}",
    }
    if simulated:
        described["not_for_clinical_decisions"] = "trained on the virtual cohort"
    for tag, value in described.items():
        client.set_model_version_tag(name, version.version, tag, value)
    from .card import VIRTUAL_COHORT_NOTICE

    notice = f"{VIRTUAL_COHORT_NOTICE} " if simulated else ""
    client.update_model_version(
        name,
        version.version,
        description=(
            f"{notice}Experiment {described['experiment']!r}, feature set "
            f"{described['feature_set']!r}, {described['validation_scheme']}; within-arm AUC "
            f"of {primary} {ours:.3f}. Registered as {alias}: {reason}. The model card is "
            "the run's model_card.md."
        ),
    )
    registered = client.get_registered_model(name)
    if not registered.description:
        client.update_registered_model(
            name,
            description=(
                "ketapredict RiskModel: calibrated probabilities of ketamine and esketamine "
                "outcomes for one patient, dose schedule and day. Load it with "
                f"ketapredict.load_model('models:/{name}@champion')."
            ),
        )
    client.set_registered_model_tag(name, "ketapredict", "RiskModel")
    mlflow.set_tag("registry_decision", f"{name} version {version.version}: {alias}, {reason}")
    return {
        "name": name,
        "version": version.version,
        "alias": alias,
        "reason": reason,
        "primary_outcome": primary,
        "within_arm_auc": ours,
        "champion_primary_outcome": their_primary,
        "champion_within_arm_auc": None if champion is None else theirs,
    }


def _outcomes(run) -> set[str]:
    """The outcomes a run's model predicts (its ``outcomes`` parameter)."""
    return {o for o in run.data.params.get("outcomes", "").split(",") if o}


def ui_command(port: int = 5000, *, verbose: bool = False) -> list[str]:
    """The command that serves the MLflow UI for the current store on 127.0.0.1.

    One worker: the UI serves one person on this machine, and each worker imports MLflow
    anew (four, MLflow's default, take about a minute to start on two cores). Without
    ``verbose``, the web server logs warnings and errors only, not every request. Requests
    must name the UI's own address and port as their host: MLflow's default also admits any
    private-network address and advises ``--host 0.0.0.0``, and a store of runs has no
    business on the network (a page elsewhere that rebinds its name to 127.0.0.1 is
    refused).

    Examples
    --------
    >>> from ketapredict.tracking import ui_command
    >>> command = ui_command(5001)
    >>> command[command.index("--port") + 1], command[command.index("--workers") + 1]
    ('5001', '1')
    >>> command[command.index("--allowed-hosts") + 1]
    '127.0.0.1:5001,localhost:5001'
    """
    import sys

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        # absolute: the message, the server and the store agree on one file
        uri = f"sqlite:///{_sqlite_path(uri)}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--allowed-hosts",
        f"127.0.0.1:{port},localhost:{port}",
        "--workers",
        "1",
        "--backend-store-uri",
        uri,
        "--registry-store-uri",
        uri,
    ]
    if not verbose:
        command += ["--uvicorn-opts", "--log-level warning"]
    if uri.startswith("sqlite:///"):
        command += ["--default-artifact-root", _artifact_root(uri).as_uri()]
    return command


def _artifact_root(uri: str) -> Path:
    """Where a SQLite store keeps its artifacts, wherever the command runs: its database's
    directory when that is an ``mlruns/`` (the default store), else an ``mlruns/`` beside
    the database (``sqlite:///mlflow.db`` must not write experiments' folders among the
    project's own)."""
    directory = _sqlite_path(uri).parent
    return directory if directory.name == ARTIFACT_ROOT else directory / ARTIFACT_ROOT


def _sqlite_path(uri: str) -> Path:
    """The absolute path of the database file of a ``sqlite:///`` URI (relative to the
    current directory, as MLflow reads it)."""
    return Path(uri.removeprefix("sqlite:///")).resolve()


def _require_store(action: str, *, error: type[Exception] = TrackingError) -> None:
    """Refuse to read a local SQLite store that does not exist (or is no MLflow store).

    MLflow creates an empty database wherever a ``sqlite:///`` URI points (and the tables of
    an empty file), so reading the relative default from the wrong directory would silently
    show nothing (and leave an empty ``mlruns/`` behind). Servers and other databases are
    left to MLflow.

    Raises
    ------
    TrackingError (or ``error``)
        Saying which file was looked for and how to point at the right store.
    """
    import sqlite3

    uri = tracking_uri()
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return
    database = _sqlite_path(uri)
    if database.is_file():
        try:  # read-only: a file MLflow has not made a store would be made one
            with contextlib.closing(
                sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=10)
            ) as connection:
                tables = connection.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'"
                ).fetchone()[0]
        except sqlite3.Error as problem:
            raise error(
                f"cannot {action}: {database} is not an MLflow store ({problem})"
            ) from None
        if tables:
            return
        raise error(f"cannot {action}: {database} is not an MLflow store (it has no tables)")
    where = (
        "MLFLOW_TRACKING_URI is not set, so the store is mlruns/mlflow.db under the current "
        "directory"
        if uri == DEFAULT_TRACKING_URI and not os.environ.get("MLFLOW_TRACKING_URI")
        else f"MLFLOW_TRACKING_URI is {uri!r}"
    )
    raise error(
        f"cannot {action}: no MLflow store at {database} ({where}). Run from the project "
        "directory whose mlruns/ holds your runs (ketapredict train creates it), or set "
        "MLFLOW_TRACKING_URI to the store: sqlite:////absolute/path/to/mlflow.db or a "
        "tracking server URL."
    )

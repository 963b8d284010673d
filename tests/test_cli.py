import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
from servers import free_port, wait_for

from ketapredict import (
    ModelFileError,
    Regimen,
    ValidationError,
    load_model,
    published_trials,
    validate,
    validate_patient,
)
from ketapredict.cli import main
from ketapredict.regimen import REGIMEN_FIELDS


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_simulate_writes_a_valid_cohort_and_summarises_it(tmp_path, capsys, suffix):
    out = tmp_path / "sub" / f"cohort{suffix}"
    assert main(["simulate", "--n", "600", "--seed", "3", "--out", str(out)]) == 0
    written = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    validate(written)
    assert len(written) == 600  # exactly the courses asked for
    printed = capsys.readouterr().out
    assert "Virtual cohort: simulated patients" in printed
    assert "all trials" in printed
    for name, design in published_trials().items():
        if design.in_cohort:
            assert name in printed


def test_simulate_refuses_an_unknown_file_type(tmp_path, capsys):
    assert main(["simulate", "--n", "100", "--out", str(tmp_path / "cohort.xlsx")]) == 2
    assert "expected a .parquet or .csv file name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_simulate_says_when_it_replaces_a_file_and_reads_suffixes_in_any_case(tmp_path, capsys):
    out = tmp_path / "cohort.CSV"
    out.write_text("precious\n")
    assert main(["simulate", "--n", "20", "--out", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # as read, whatever the line breaks
    assert f"wrote {out} (replacing the file that was there)." in printed
    assert len(pd.read_csv(out)) == 20


def test_a_file_the_system_refuses_is_one_line_not_a_traceback(tmp_path, capsys):
    """Any OSError (here: a model directory whose name is too long to look up) is one
    line; before, only missing, directory and permission errors were."""
    assert main(["score", str(PATIENT), "--model", "m" * 300]) in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith("ketapredict: ")
    assert len(err.strip().splitlines()) == 1


def test_calibrate_prints_every_target_and_exits_by_the_result(capsys):
    code = main(["calibrate", "--n-per-arm", "3000"])
    printed = capsys.readouterr().out
    assert "Fit targets: scripts/fit_cohort.py fitted the parameters to these." in printed
    assert "Validation targets: never used by the fit, nor to set anything else." in printed
    assert "Checks: never used by the fit" in printed
    for target in ("A1.response_d1", "G3.frequency_lasting_deficit", "F.bmi_d1", "F.oracle_auc"):
        assert target in printed
    assert "Oracle AUC of response within each active arm" in printed
    assert "popova2019/esketamine_56mg" in printed
    assert "Not simulated:" in printed
    assert "A8.other_adverse_events" in printed
    assert "NaN" not in printed  # a statement without a published figure shows a blank
    assert max(len(line) for line in printed.splitlines()) <= 100
    assert code == (1 if "Missed:" in printed else 0)


def test_bad_arguments_give_a_clear_error(capsys):
    assert main(["simulate", "--n", "0", "--out", "unused.csv"]) == 2
    assert "n=0 is not a positive whole number" in capsys.readouterr().err


def test_console_script_is_installed():
    executable = shutil.which("ketapredict")
    assert executable, "the ketapredict command is not on PATH; install the package"
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ketapredict ")


@pytest.mark.slow
def test_quickstart_runs_the_whole_package(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["quickstart", "--quiet"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "OutcomeModel",
        "oracle",
        "ketapredict risk report",
        "dominated",
        "ketapredict ui",
        "Not for clinical decisions",
        "family_history_aud=True",  # the whole record the report is about
        "explains every column",  # where the metrics are explained
    ):
        assert expected in out
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()


# -- ketapredict score -------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "src" / "ketapredict" / "data" / "examples"
PATIENT = EXAMPLES / "patient.json"
BIDS = EXAMPLES / "bids" / "mapping.toml"
ESKETAMINE = {
    "drug": "esketamine",
    "route": "intranasal",
    "dose": 56,
    "dose_unit": "mg",
    "sessions_per_week": 2,
    "n_sessions": 8,
}


def test_the_example_patient_is_package_data_and_valid():
    from importlib import resources

    shipped = resources.files("ketapredict") / "data" / "examples" / "patient.json"
    assert json.loads(shipped.read_text()) == json.loads(PATIENT.read_text())
    record = json.loads(PATIENT.read_text())
    regimen = Regimen(**record.pop("regimen"))
    validate_patient(record)  # every field inside the contract
    assert regimen.drug == "ketamine"


def test_score_prints_the_report_of_the_example_patient(capsys):
    assert main(["score", str(PATIENT), "--horizon-day", "28"]) == 0
    out = capsys.readouterr().out
    record = json.loads(PATIENT.read_text())
    expected = load_model().score(
        {k: v for k, v in record.items() if k not in ("patient_id", "regimen")},
        record["regimen"],
        horizon_day=28,
    )
    assert out == f"{expected}\n"
    assert "ketamine 0.5 mg/kg IV over 40 min, 2/week x 8" in out
    assert record["patient_id"] not in out


def test_score_json_is_the_reports_dict_for_scripts(capsys):
    assert main(["score", str(PATIENT), "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert set(report) >= {"regimen", "risks", "horizon_day", "warnings", "provenance"}
    assert report["horizon_day"] == 25.5  # no day given: 24 h after the 8th session
    for risk in report["risks"].values():
        assert 0 <= risk["low"] <= risk["probability"] <= risk["high"] <= 1
    assert "EXAMPLE-0001" not in out


def test_regimen_fields_in_the_record_or_as_an_object_score_the_same(tmp_path, capsys):
    record = json.loads(PATIENT.read_text())
    flat = tmp_path / "flat.json"
    regimen = record.pop("regimen")
    flat.write_text(json.dumps({**record, **regimen}))
    assert main(["score", str(flat), "--json"]) == 0
    from_flat = json.loads(capsys.readouterr().out)
    assert main(["score", str(PATIENT), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == from_flat


def test_regimen_option_replaces_the_files_regimen_and_says_so(tmp_path, capsys):
    assert main(["score", str(PATIENT), "--regimen", json.dumps(ESKETAMINE), "--json"]) == 0
    given_as_text = json.loads(capsys.readouterr().out)
    assert given_as_text["regimen"] == "esketamine 56 mg intranasal, 2/week x 8"
    assert any("were replaced by the regimen given" in w for w in given_as_text["warnings"])
    path = tmp_path / "spray.json"
    path.write_text(json.dumps(ESKETAMINE))
    assert main(["score", str(PATIENT), "--regimen", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == given_as_text


def test_a_record_without_a_schedule_is_told_of_regimen_with_its_other_problems(tmp_path, capsys):
    """Every problem at once, wrapped to 100 columns, and the command line's way to give a
    schedule (not Python's regimen=Regimen(...))."""
    record = json.loads(PATIENT.read_text())
    del record["regimen"], record["age"]
    record["madrs_baseline"] = 999
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(record))
    assert main(["score", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ketapredict: 3 problems in the patient and its regimen fields:")
    assert "age is missing" in err
    assert "madrs_baseline=999" in err
    assert 'give the schedule as a "regimen" object in the file, or with --regimen' in " ".join(
        err.split()
    )
    assert "Regimen(" not in err
    assert max(len(line) for line in err.splitlines()) <= 100


def test_score_reads_the_patient_from_standard_input(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(PATIENT.read_text()))
    assert main(["score", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["regimen"].startswith("ketamine 0.5 mg/kg")


def test_score_refuses_a_file_that_is_not_one_record(tmp_path, capsys):
    """A device or FIFO (which could block or never end) and a file too large to be one
    record are refused before they are read; an unknown field in the 'regimen' object is
    named as a regimen field."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    big.write_text(" " * 1_000_001)
    odd = tmp_path / "odd.json"
    record = json.loads(PATIENT.read_text())
    regimen = {k: record.pop(k) for k in list(record) if k in REGIMEN_FIELDS}
    odd.write_text(json.dumps({**record, "regimen": {**regimen, "colour": "blue"}}))
    for path, message in (
        ("/dev/zero", "is not a regular file"),
        (fifo, "is not a regular file"),
        (big, "is over 1,000,000 bytes"),
        (odd, "unknown regimen field 'colour' in 'regimen'; expected one of drug, route"),
    ):
        assert main(["score", str(path)]) == 2
        assert message in capsys.readouterr().err


def _patient_with(**changes) -> str:
    record = json.loads(PATIENT.read_text())
    record.update(changes)
    return json.dumps(record)


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ('{"age": 46,', [], "is not valid JSON: Expecting property name enclosed in double"),
        ('{"sex": "fem', [], "Unterminated string starting at line 1, column 9"),  # "at at"
        ("[]", [], "expected one patient record, a JSON object of contract fields; got a list"),
        (_patient_with(madrs_baseline=75), [], "madrs_baseline=75 is outside 0-60"),
        (_patient_with(shoe_size=44), [], "shoe_size"),
        (_patient_with(drug="ketamine"), [], "the record gives its regimen twice"),
        (_patient_with(regimen="ketamine"), [], "'regimen' must be an object of regimen"),
        (
            None,
            ["--horizon-day", "400"],
            "--horizon-day=400 is not a day after the first session",
        ),
        (None, ["--regimen", '{"drug": "ketamine"'], "--regimen is not valid JSON"),
        (None, ["--regimen", "ketamine 0.5 mg/kg"], "expected the regimen's fields as JSON"),
        (None, ["--regimen", '{"drug": "ketamine", "route": "iv", "dose": 9}'], "dose=9"),
        (None, ["--model", "no/such/model"], "no ketapredict model at 'no/such/model'"),
    ],
)
def test_bad_score_input_exits_2_with_a_message(tmp_path, capsys, content, options, message):
    path = PATIENT
    if content is not None:
        path = tmp_path / "patient.json"
        path.write_text(content)
    assert main(["score", str(path), *options]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ketapredict: ")
    assert message in captured.err
    assert "EXAMPLE-0001" not in captured.err


# Names MLflow's registry accepts, and names it refuses (mlflow.utils.validation and the file
# registry); the command line refuses a few more (see check_registered_model_name).
_ACCEPTED = ["ketapredict", "ketapredict-response", "team.model_v2", "a b", "x" * 256]
_REFUSED_BY_MLFLOW = ["team/model", "model:v2", "50%", ".", "..", "../model", "", "   "]
_REFUSED_BY_US = ["x" * 257, "two\nlines", "tab\there", "back\\slash"]


@pytest.mark.parametrize("name", _ACCEPTED + _REFUSED_BY_MLFLOW + _REFUSED_BY_US)
def test_registry_names_follow_mlflows_rules(name):
    from mlflow.exceptions import MlflowException
    from mlflow.store.model_registry.file_store import _validate_model_name

    from ketapredict.cli import check_registered_model_name

    try:
        _validate_model_name(name)
    except MlflowException:
        mlflow_refuses = True
    else:
        mlflow_refuses = False
    assert mlflow_refuses == (name in _REFUSED_BY_MLFLOW)
    if name in _ACCEPTED:
        assert check_registered_model_name(name) == name
    else:
        with pytest.raises(ValidationError, match="MLflow's registry refuses this name"):
            check_registered_model_name(name)


def test_a_missing_patient_file_is_named(tmp_path, capsys):
    assert main(["score", str(tmp_path / "nobody.json")]) == 2
    assert f"{str(tmp_path / 'nobody.json')!r}: no such file" in capsys.readouterr().err


def _unread(*argv: str) -> tuple[int, str]:
    """Run the command with its output piped to a reader that has already left (``| head``
    done reading); its exit code and what it wrote on stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ketapredict.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()
    err = process.stderr.read()
    return process.wait(timeout=120), err


def test_a_broken_pipe_ends_quietly():
    """`ketapredict score ... | head -1`: the reader is gone before the report is written."""
    # no traceback, no "Exception ignored ... BrokenPipeError"
    assert _unread("score", str(PATIENT)) == (0, "")


def test_a_reader_that_leaves_stops_the_printing_not_the_work(tmp_path):
    """`ketapredict simulate | head -1`: the cohort still reaches its file, whole."""
    out = tmp_path / "cohort.csv"
    assert _unread("simulate", "--n", "300", "--out", str(out)) == (0, "")
    assert len(pd.read_csv(out)) == 300


def test_verbose_goes_before_or_after_the_command_and_leaves_no_trace(monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    level = logging.getLogger("mlflow").level
    reports = []
    for argv in (["--verbose", "score"], ["score", "--verbose"], ["score"]):
        assert main([*argv, str(PATIENT), "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert reports[0] == reports[1] == reports[2]
    assert "MLFLOW_LOGGING_LEVEL" not in os.environ
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    assert logging.getLogger("mlflow").level == level


# -- help texts ----------------------------------------------------------------------------------
def _help(*command: str) -> str:
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*command, "--help"])
    return out.getvalue()


def test_calibrate_help_describes_the_evidence_it_uses():
    text = " ".join(_help("calibrate").split())
    assert "CALIBRATION.md" not in text
    assert "ketapredict/cohort/targets.toml" in text


def test_help_texts_name_only_files_the_repository_has():
    from ketapredict.cli import _parser

    commands = _parser()._subparsers._group_actions[0].choices
    texts = [_help()] + [_help(name) for name in commands]
    outputs = {"cohort.parquet", "courses.parquet"}  # default output files, written
    named = set()
    for text in texts:
        named |= set(re.findall(r"[\w.-]+(?:/[\w.-]+)*\.(?:md|toml|py|json|yaml)\b", text))
    assert named, "no file named at all: the pattern is wrong"
    for name in named - outputs:
        assert (ROOT / name).exists() or (ROOT / "src" / name).exists(), name


def test_an_unreachable_store_fails_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    (tmp_path / "small.toml").write_text("[data]\nn = 600\n")
    assert main(["train", "small.toml", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no metrics: nothing was trained
    assert "is unreachable" in captured.err
    assert "nothing was trained (ketapredict train --no-track trains without" in captured.err
    assert sorted(tmp_path.iterdir()) == [tmp_path / "small.toml"]  # no fallback model


# -- stores are read, never created --------------------------------------------------------------
def test_ui_refuses_a_missing_store_and_creates_none(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["ui", "--port", str(free_port())]) == 1
    err = capsys.readouterr().err
    assert f"no MLflow store at {tmp_path / 'mlruns' / 'mlflow.db'}" in err
    assert "MLFLOW_TRACKING_URI" in err
    assert list(tmp_path.iterdir()) == []


def test_a_registered_model_is_not_read_from_a_missing_store(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere" / "runs.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    with pytest.raises(ModelFileError, match=re.escape(f"no MLflow store at {other}")):
        load_model("models:/ketapredict@champion")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(ModelFileError, match=re.escape(str(tmp_path / "mlruns" / "mlflow.db"))):
        load_model("models:/ketapredict@champion")
    assert list(tmp_path.iterdir()) == []


# -- against a real local store ------------------------------------------------------------------
@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A store made by `ketapredict evaluate` in a fresh directory (its output too), with the
    demo model logged as a run's artifacts."""
    folder = tmp_path_factory.mktemp("store")
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-m", "ketapredict.cli", "evaluate", "demo", str(BIDS)],
        cwd=folder,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    try:
        with mlflow.start_run(
            experiment_id=mlflow.get_experiment_by_name("external-validation").experiment_id
        ) as run:
            demo = resources.files("ketapredict") / "data" / "demo_model"
            with resources.as_file(demo) as path:
                mlflow.log_artifacts(str(path), "risk_model")
    finally:
        mlflow.set_tracking_uri(previous)
    return folder, done, f"runs:/{run.info.run_id}/risk_model"


def test_mlflow_says_nothing_unless_verbose(logged):
    folder, done, _ = logged
    assert (folder / "mlruns" / "mlflow.db").is_file()  # it created the store...
    assert "Logged MLflow run" in done.stdout
    printed = done.stdout + done.stderr
    assert not re.search(r"\bINFO\b", printed)  # ...without MLflow's log lines
    assert "Downloading artifacts" not in printed


def test_score_with_a_logged_model(logged, monkeypatch, capsys):
    folder, _, uri = logged
    monkeypatch.chdir(folder)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["score", str(PATIENT), "--model", uri]) == 0
    from_store = capsys.readouterr()
    assert main(["score", str(PATIENT)]) == 0
    assert from_store.out == capsys.readouterr().out  # the same demo model
    assert "INFO" not in from_store.err


# -- ketapredict ui stops with its server --------------------------------------------------------
def test_ui_refuses_a_port_in_use(logged, monkeypatch, capsys):
    folder, _, _ = logged
    monkeypatch.chdir(folder)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port)]) == 1
    assert f"port {port} on 127.0.0.1 is taken" in capsys.readouterr().err


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":  # a zombie holds nothing
            found[int(entry.name)] = (int(fields[1]), command)
    return found


def _descendants(pid: int) -> dict[int, str]:
    processes = _processes()
    found, frontier = {}, {pid}
    while frontier:
        frontier = {p for p, (parent, _) in processes.items() if parent in frontier}
        found.update({p: processes[p][1] for p in frontier})
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
@pytest.mark.parametrize(
    ("stop", "verbose"),
    [
        pytest.param(signal.SIGTERM, False, id="SIGTERM"),
        pytest.param(signal.SIGINT, True, id="SIGINT-verbose", marks=pytest.mark.slow),
    ],
)
def test_ui_stops_with_its_server(logged, stop, verbose):
    folder, _, _ = logged
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ketapredict.cli", "ui", "--port", str(port)]
        + (["--verbose"] if verbose else []),
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the test's own group, as a terminal would give it
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    )
    try:
        wait_for(port)
        server = _descendants(process.pid)
        assert any(f"--port {port}" in command for command in server.values()), server
        # a page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) is refused
        rebound = urllib.request.Request(
            f"http://127.0.0.1:{port}/", headers={"Host": f"192.168.1.4:{port}"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=30)
        assert refused.value.code == 403
        os.kill(process.pid, stop)  # the ketapredict process only, as `kill PID` does
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = process.stdout.read()
    assert f"Stopped the MLflow UI; port {port} is free." in output
    assert "0.0.0.0" not in output  # MLflow's advice to open the UI to the network
    # MLflow's and uvicorn's log lines (each request) only when asked for
    assert bool(re.search(r"\bINFO\b", output)) == verbose
    left = {
        pid: command
        for pid, (_, command) in _processes().items()
        if pid in server and command == server[pid]
    }
    assert left == {}
    with socket.socket() as probe:  # nothing listens there any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_keys_sign_a_recalibrated_model_and_score_refuses_it_once_edited(tmp_path, capsys):
    """`ketapredict keys`, then `recalibrate --signing-key` and `score --public-key`: the
    signed model scores; edited with fresh checksums, it is refused (exit 2, one line)."""
    from ketapredict.io import example_study
    from ketapredict.modelfile import content_digest

    assert main(["keys", str(tmp_path / "keys")]) == 0
    private, public = tmp_path / "keys" / "ketapredict.key", tmp_path / "keys" / "ketapredict.pub"
    assert "fingerprint" in capsys.readouterr().out
    assert main(["keys", str(tmp_path / "keys")]) == 2  # never overwritten
    out = tmp_path / "local"
    mapping = str(example_study("bids") / "mapping.toml")
    argv = ["recalibrate", "demo", mapping, "--out", str(out), "--signing-key", str(private)]
    assert main(argv) == 0
    patient = str(resources.files("ketapredict") / "data" / "examples" / "patient.json")
    score = ["score", patient, "--model", str(out), "--public-key", str(public)]
    assert main(score) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["provenance"]["data_kind"] = "real"
    manifest["content_sha256"] = content_digest(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(score[:-2]) == 0  # the checksums alone cannot tell
    capsys.readouterr()
    assert main(score) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "is not a signature of this manifest" in err
    # a public key where the private one belongs: refused before any work
    assert main([*argv[:4], str(tmp_path / "other"), "--signing-key", str(public)]) == 2
    assert "is not an unencrypted Ed25519 private key" in capsys.readouterr().err
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())


def test_an_interrupted_write_leaves_the_file_that_was_there(tmp_path, monkeypatch):
    """Ctrl-C while simulate wrote 300,000 rows left a cut table that pandas read without
    complaint, and the file that was there was gone (a review of the command line)."""
    from ketapredict.cli import _write

    out = tmp_path / "cohort.csv"
    out.write_text("the file that was there\n")

    def interrupted(self, path, **kwargs):
        Path(path).write_text("age\n4")  # part of a table, then the user's Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _write(pd.DataFrame({"age": [40, 50]}), out)
    assert out.read_text() == "the file that was there\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cohort.csv"]  # no part left behind
    monkeypatch.undo()
    assert _write(pd.DataFrame({"age": [40, 50]}), out).endswith(
        "(replacing the file that was there)"
    )
    assert pd.read_csv(out)["age"].tolist() == [40, 50]
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()  # a new file's
    # a file kept private stays so, and a link is written through (a diff review)
    out.chmod(0o600)
    link = tmp_path / "link.csv"
    link.symlink_to(out)
    _write(pd.DataFrame({"age": [60]}), link)
    assert link.is_symlink()
    assert out.stat().st_mode & 0o777 == 0o600
    assert pd.read_csv(out)["age"].tolist() == [60]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    "argv",
    [["keys", ""], ["simulate", "--n", "10", "--out", ""], ["ingest", ""]],
)
def test_an_empty_path_is_refused_not_read_as_the_current_directory(
    argv, tmp_path, capsys, monkeypatch
):
    """`ketapredict keys ""` wrote the key pair into the working directory, and `--out ""`
    was reported as '.' (a review of the command line)."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "expected a path; got an empty one" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_patient_file_with_a_byte_order_mark_is_read(tmp_path, capsys):
    """Notepad saves UTF-8 with a BOM; Python's own hint to decode it was the answer."""
    marked = tmp_path / "patient.json"
    marked.write_bytes(b"\xef\xbb\xbf" + PATIENT.read_bytes())
    assert main(["score", str(marked), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["risks"]


def test_a_patient_file_never_quotes_its_identifier(tmp_path, capsys):
    """The identifier put in another field was quoted in the error ("sex='EXAMPLE-0001' is
    not one of ..."); a report never shows it either."""
    record = json.loads(PATIENT.read_text())
    shifted = tmp_path / "shifted.json"
    shifted.write_text(json.dumps({**record, "sex": record["patient_id"]}))
    assert main(["score", str(shifted), "--horizon-day", "28"]) == 2
    err = capsys.readouterr().err
    assert record["patient_id"] not in err
    assert "sex=<a patient_id of this record> is not one of" in err
    for extra in ([], ["--json"]):
        assert main(["score", str(PATIENT), "--horizon-day", "28", *extra]) == 0
        assert record["patient_id"] not in capsys.readouterr().out
    # in the record's own regimen, or its assessment day (a review): named, not shown
    flat = {k: v for k, v in record.items() if k != "regimen"} | record["regimen"]
    for field in ("drug", "dose_unit", "endpoint_day"):
        shifted.write_text(json.dumps({**flat, field: record["patient_id"]}))
        assert main(["score", str(shifted)]) == 2
        err = capsys.readouterr().err
        assert record["patient_id"] not in err
        assert f"{field}=<a patient_id of this record>" in err


def test_a_number_too_long_to_read_is_refused_in_a_line(capsys):
    """Python refuses to read more than 4,300 digits: its own message came through."""
    assert main(["calibrate", "--seed", "9" * 5000]) == 2
    err = capsys.readouterr().err
    assert "--seed: expected a whole number from 0; got '999" in err
    assert len(err) < 300


def test_the_quickstart_checks_its_store_before_it_starts(monkeypatch, tmp_path, capsys):
    """It simulated and printed the cohort first, then suggested `train --no-track`, an
    option the quickstart does not have (a review)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:./mlruns")
    assert main(["quickstart"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "the quickstart logs its run to MLflow (unset MLFLOW_TRACKING_URI" in err
    assert "--no-track" not in err


def test_a_signing_key_with_nothing_to_sign_is_refused(tmp_path, capsys):
    """`train --no-track --signing-key K` without --save ignored the key (a review)."""
    assert main(["keys", str(tmp_path)]) == 0
    capsys.readouterr()
    argv = ["train", "baseline", "--no-track", "--signing-key", str(tmp_path / "ketapredict.key")]
    assert main(argv) == 2
    assert "no model is saved to sign: add --save DIR" in capsys.readouterr().err


def test_the_header_says_how_many_courses_the_within_arm_auc_ranks():
    """Cognitive decline's within-arm AUC ranks 1,424 of 4,315 active-drug courses (the arms
    with 5 events and 5 non-events): the header named the arms only (a statistical review)."""
    import pandas as pd

    from ketapredict.evaluate import _ranked_courses

    assert _ranked_courses(pd.Series({"within_arm_n": 1424.0})) == "1,424 courses"
    assert _ranked_courses(pd.Series({"within_arm_n": 0})) is None
    assert _ranked_courses(pd.Series({"auc": 0.7})) is None

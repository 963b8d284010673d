"""Every user error on the command line exits 2 with one line on stderr and no traceback.

``CLI_CASES`` lists the hostile cases, and :func:`run_case` runs one through
``ketapredict.cli.main`` the way the test does; benchmarks/fault_injection.py imports both
(``from test_cli_errors import CLI_CASES, run_case``, with tests/ on ``sys.path``). A case
writes what it needs into a fresh directory and returns the arguments. Nothing a case does
may train, simulate a large cohort, or write a file: every check comes first.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ketapredict.cli import main

PATIENT = Path(__file__).resolve().parents[1] / "src/ketapredict/data/examples/patient.json"

# An experiment small enough to train in seconds, were a check to come too late.
SMALL = """
[data]
n = 600
[outcomes]
names = ["response"]
[validation]
scheme = "stratified_kfold"
n_splits = 2
bootstraps = 0
peers = false
"""


@dataclass(frozen=True)
class CliCase:
    """One command a user could get wrong.

    Attributes
    ----------
    id : str
    build : callable
        ``build(folder)`` writes the case's files into ``folder`` and returns the arguments.
    expected : str
        Text the one-line message contains (the file, key or value at fault).
    stdin : bytes, optional
        What standard input holds.
    """

    id: str
    build: Callable[[Path], list[str]]
    expected: str
    stdin: bytes | None = None


@dataclass(frozen=True)
class CliOutcome:
    code: int
    out: str
    err: str


def run_case(case: CliCase, folder: Path) -> CliOutcome:
    """Run a case in ``folder`` (the current directory while it runs, and the home of its
    own tracking store); exceptions other than SystemExit propagate (a crash)."""
    folder = Path(folder)
    argv = case.build(folder)
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI"), sys.stdin
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'store' / 'mlflow.db'}"
    if case.stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(case.stdin), encoding="utf-8")
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as stop:  # argparse's --help; anything else is a bug
                code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os.chdir(previous[0])
        if previous[1] is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous[1]
        sys.stdin = previous[2]
    return CliOutcome(code, out.getvalue(), err.getvalue())


# -- builders ------------------------------------------------------------------------------------
def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _train(text: str | bytes, *options: str, name: str = "experiment.toml", files=None):
    """A ``train`` case: the experiment file ``text`` and any other ``files`` it names."""

    def build(folder: Path) -> list[str]:
        for file_name, content in (files or {}).items():
            _write(folder, file_name, content)
        path = _write(folder, name, text)
        return ["train", str(path), *options]

    return build


def _with_data(source: str) -> str:
    return SMALL.replace("n = 600", f'source = "{source}"')


def _score(content: str | bytes | None, *options: str) -> Callable[[Path], list[str]]:
    """A ``score`` case: a patient file (None: the example patient) and options."""

    def build(folder: Path) -> list[str]:
        path = PATIENT if content is None else _write(folder, "patient.json", content)
        return ["score", str(path), *options]

    return build


def _patient(**changes) -> str:
    record = json.loads(PATIENT.read_text())
    record.update(changes)
    return json.dumps(record)


def _command(*argv: str, files: dict[str, str | bytes] | None = None, dirs=()):
    """Any command; ``{folder}`` in an argument is the case's directory."""

    def build(folder: Path) -> list[str]:
        for name in dirs:
            (folder / name).mkdir(parents=True, exist_ok=True)
        for name, content in (files or {}).items():
            _write(folder, name, content)
        return [a.replace("{folder}", str(folder)) for a in argv]

    return build


_NOT_UTF8 = b'description = "caf\xe9"\n'  # Latin-1, as an old Windows editor saves it
_BINARY = b"\x00\x01PK\x03\x04\xff\xfe garbage \x80\x81\n\x02"
_BAD_FEATURES = 'description = "missing bracket"\ngroups = [\n'
_STORE = "store/mlflow.db"

CLI_CASES: list[CliCase] = [
    # -- experiment and feature-set files
    CliCase(
        "feature-set-invalid-toml",
        _train(
            SMALL.replace("[outcomes]", '[features]\nset = "mine.toml"\n[outcomes]'),
            "--no-track",
            files={"mine.toml": _BAD_FEATURES},
        ),
        "mine.toml is not valid TOML",
    ),
    CliCase(
        "feature-set-wrong-type",
        _train(
            SMALL.replace("[outcomes]", '[features]\nset = "mine.toml"\n[outcomes]'),
            "--no-track",
            files={"mine.toml": 'groups = ["severity"]\n'},
        ),
        "groups must be a table of groups",
    ),
    CliCase(
        "feature-set-missing",
        _train(SMALL.replace("[outcomes]", '[features]\nset = "cor"\n[outcomes]'), "--no-track"),
        "no feature set named 'cor'",
    ),
    CliCase(
        "feature-set-deep-nesting",
        _train(
            SMALL.replace("[outcomes]", '[features]\nset = "mine.toml"\n[outcomes]'),
            "--no-track",
            files={"mine.toml": "groups = " + "[" * 50_000 + "]" * 50_000},
        ),
        "mine.toml nests arrays or tables too deeply",
    ),
    CliCase(
        "experiment-deep-nesting",
        _train("data = " + "[" * 50_000 + "]" * 50_000, "--no-track"),
        "experiment.toml nests arrays or tables too deeply",
    ),
    CliCase("experiment-not-utf8", _train(_NOT_UTF8, "--no-track"), "is not UTF-8 text"),
    CliCase(
        "experiment-invalid-toml",
        _train("[data]\nn = 600\n[outcomes\n", "--no-track"),
        "experiment.toml is not valid TOML",
    ),
    CliCase(
        "experiment-missing",
        _command("train", "{folder}/nothing.toml", "--no-track"),
        "nothing.toml' does not exist; the shipped experiments are baseline, demo,",
    ),
    CliCase(
        "experiment-name-with-separators",  # not looked up among the shipped experiments
        _command("train", "../experiments/baseline", "--no-track"),
        "'../experiments/baseline' does not exist",
    ),
    CliCase(
        "experiment-is-a-directory",
        _command("train", "{folder}/runs.toml", "--no-track", dirs=["runs.toml"]),
        "runs.toml' is a directory; expected a .toml file",
    ),
    CliCase(
        "experiment-unknown-key",
        _train(SMALL.replace("[data]", "[daata]"), "--no-track"),
        "unknown key 'daata'",
    ),
    CliCase(
        "experiment-wrong-type",
        _train(SMALL.replace("n = 600", 'n = "many"'), "--no-track"),
        "data.n='many'",
    ),
    CliCase(
        "experiment-n-too-large",
        _train(SMALL.replace("n = 600", "n = 1_000_000_000_000"), "--no-track"),
        "data.n=1000000000000: Input should be less than or equal to 1000000",
    ),
    CliCase(
        "experiment-name-dots",
        _train(SMALL, "--no-track", name="...toml"),
        "its name '..' names the MLflow experiment",
    ),
    CliCase(
        "experiment-name-odd-characters",
        _train(SMALL, "--no-track", name="my run;rm -rf.toml"),
        "its name 'my run;rm -rf'",
    ),
    CliCase(
        "experiment-data-file-missing",
        _train(_with_data("trial.csv"), "--no-track"),
        "data.source='trial.csv': no such file",
    ),
    CliCase(
        "experiment-data-empty-csv",
        _train(_with_data("trial.csv"), "--no-track", files={"trial.csv": ""}),
        "trial.csv cannot be read as csv",
    ),
    CliCase(
        "experiment-data-binary-csv",
        _train(_with_data("trial.csv"), "--no-track", files={"trial.csv": _BINARY}),
        "trial.csv is not UTF-8 text",
    ),
    CliCase(
        "experiment-data-text-garbage-csv",
        _train(_with_data("trial.csv"), "--no-track", files={"trial.csv": "hello world\nfoo\n"}),
        "trial.csv has none of the data contract's columns",
    ),
    CliCase(
        "experiment-data-csv-named-parquet",
        _train(
            _with_data("trial.parquet"), "--no-track", files={"trial.parquet": "age,sex\n40,F\n"}
        ),
        "trial.parquet cannot be read as parquet",
    ),
    CliCase(
        "experiment-data-other-suffix",
        _train(_with_data("trial.xlsx"), "--no-track", files={"trial.xlsx": "x"}),
        "data.source='trial.xlsx': expected \"simulated\" or a patient table",
    ),
    CliCase(
        "experiment-learning-curve-too-large",
        _train(
            SMALL.replace("peers = false", "peers = false\nlearning_curve = [5000]"), "--no-track"
        ),
        "validation.learning_curve sizes [5000] exceed the 420 training courses",
    ),
    # -- train: what would fail after training is checked before it
    CliCase(
        "train-save-not-empty",
        _train(SMALL, "--no-track", "--save", "model", files={"model/notes.txt": "mine"}),
        "--save 'model' is not empty; expected a new or empty directory",
    ),
    CliCase(
        "train-save-is-a-file",
        _train(SMALL, "--no-track", "--save", "model.json", files={"model.json": "{}"}),
        "--save 'model.json' is a file",
    ),
    CliCase(
        "train-register-invalid-name",
        _train(SMALL, "--register", "team/ketapredict:v2"),
        "--register 'team/ketapredict:v2': MLflow's registry refuses this name",
    ),
    CliCase(
        "train-register-without-tracking",
        _train(SMALL, "--register", "ketapredict", "--no-track"),
        "which --no-track turns off",
    ),
    # -- simulate and calibrate: sizes and outputs before any simulation
    CliCase(
        "simulate-n-too-large",
        _command("simulate", "--n", str(10**12), "--out", "cohort.csv"),
        "n=1000000000000 is more than 1,000,000",
    ),
    CliCase(
        "simulate-negative-seed",
        _command("simulate", "--seed", "-1", "--out", "cohort.csv"),
        "--seed: expected a whole number from 0; got '-1'",
    ),
    CliCase(
        "simulate-out-other-suffix",
        _command("simulate", "--n", "100", "--out", "cohort.xlsx"),
        "--out 'cohort.xlsx': expected a .parquet or .csv file name",
    ),
    CliCase(
        "simulate-out-is-a-directory",
        _command("simulate", "--n", "100", "--out", "cohort.csv", dirs=["cohort.csv"]),
        "--out 'cohort.csv' is a directory",
    ),
    CliCase(
        "simulate-out-below-a-file",
        _command(
            "simulate", "--n", "100", "--out", "notes.txt/cohort.csv", files={"notes.txt": "x"}
        ),
        "is a file, not a directory",
    ),
    CliCase(
        "calibrate-n-per-arm-too-large",
        _command("calibrate", "--n-per-arm", str(10**12)),
        "--n-per-arm 1000000000000: expected 100 to 100,000",
    ),
    CliCase(
        "calibrate-n-per-arm-too-small",  # 1 divided by zero, 2-5 left a target no responder
        _command("calibrate", "--n-per-arm", "1"),
        "--n-per-arm 1: expected 100 to 100,000",
    ),
    CliCase(
        "simulate-out-name-too-long",  # was a traceback from to_csv, after the simulation
        _command("simulate", "--n", "10", "--out", "a" * 300 + ".csv"),
        "the name is too long (at most 255 bytes a part",
    ),
    CliCase(
        "train-save-name-too-long",  # was found after training, and the model lost
        _command(
            "train", "small.toml", "--no-track", "--save", "m" * 300, files={"small.toml": SMALL}
        ),
        "--save 'mmm",
    ),
    CliCase(
        "keys-name-leaves-the-directory",  # wrote evil.key beside the directory
        _command("keys", "keys", "--name", "../evil"),
        "--name '../evil': expected a plain file name",
    ),
    CliCase(
        "keys-directory-is-a-file",
        _command("keys", "notes.txt", files={"notes.txt": "x"}),
        "'notes.txt' is a file; expected a directory",
    ),
    CliCase(
        "ingest-adsl-for-a-bids-study",  # was ignored
        _command(
            "ingest",
            str(PATIENT.parent / "bids/mapping.toml"),
            "--adsl",
            "adsl.xpt",
            "--out",
            "courses.csv",
        ),
        "adsl='adsl.xpt' is for an ADaM study; this mapping reads a BIDS one",
    ),
    # -- evaluate, recalibrate, ingest: data files (read before the model is loaded)
    CliCase(
        "evaluate-empty-csv",
        _command("evaluate", "demo", "study.csv", "--no-track", files={"study.csv": ""}),
        "study.csv cannot be read as csv: No columns to parse",
    ),
    CliCase(
        "evaluate-header-only-csv",
        _command("evaluate", "demo", "study.csv", "--no-track", files={"study.csv": "age,sex\n"}),
        "study.csv has no rows",
    ),
    CliCase(
        "evaluate-binary-csv",
        _command("evaluate", "demo", "study.csv", "--no-track", files={"study.csv": _BINARY}),
        "study.csv is not UTF-8 text",
    ),
    CliCase(
        "evaluate-csv-named-parquet",
        _command(
            "evaluate",
            "demo",
            "study.parquet",
            "--no-track",
            files={"study.parquet": "age,sex\n40,F\n"},
        ),
        "study.parquet cannot be read as parquet",
    ),
    CliCase(
        "evaluate-missing-data",
        _command("evaluate", "demo", "study.csv", "--no-track"),
        "'study.csv': no such file",
    ),
    CliCase(
        "evaluate-data-is-a-directory",
        _command("evaluate", "demo", "study.csv", "--no-track", dirs=["study.csv"]),
        "'study.csv' is a directory",
    ),
    CliCase(
        "evaluate-other-suffix",
        _command("evaluate", "demo", "study.xlsx", "--no-track", files={"study.xlsx": "x"}),
        "expected a mapping file (.toml) or a patient table",
    ),
    CliCase(
        "recalibrate-out-not-empty",
        _command(
            "recalibrate",
            "demo",
            "study.csv",
            "--out",
            "updated",
            files={"study.csv": "", "updated/notes.txt": "mine"},
        ),
        "--out 'updated' is not empty",
    ),
    CliCase(
        "ingest-invalid-mapping-toml",
        _command(
            "ingest",
            "mapping.toml",
            "--out",
            "courses.csv",
            files={"mapping.toml": "format = [\n"},
        ),
        "not valid TOML",
    ),
    CliCase(
        "ingest-deeply-nested-mapping",
        _command("ingest", "mapping.toml", files={"mapping.toml": "a = " + "[" * 50_000}),
        "too deeply to read",
    ),
    CliCase(
        "ingest-mapping-is-a-directory",
        _command("ingest", "mapping.toml", dirs=["mapping.toml"]),
        "'mapping.toml' is a directory; expected a .toml file",
    ),
    CliCase(
        "score-public-key-not-a-key",
        _command(
            "score",
            "patient.json",
            "--public-key",
            "patient.json",
            files={"patient.json": '{"age": 46}'},
        ),
        "is not an Ed25519 public key",
    ),
    CliCase(
        "train-signing-key-missing",
        _command("train", "baseline", "--no-track", "--signing-key", "none.key"),
        "the signing key 'none.key' does not exist",
    ),
    CliCase(
        "ingest-out-other-suffix",
        _command("ingest", "mapping.toml", "--out", "courses.txt"),
        "--out 'courses.txt': expected a .parquet or .csv file name",
    ),
    # -- score: the patient file, --regimen, --horizon-day, --model
    CliCase("score-duplicate-key", _score('{"age": 46, "age": 64}'), "the key 'age' twice"),
    CliCase("score-not-an-object", _score("[1, 2]"), "expected one patient record"),
    CliCase("score-not-utf8", _score(b'{"sex": "f\xe9minin"}'), "is not UTF-8 text"),
    CliCase(
        "score-stdin-not-utf8",
        _command("score", "-"),
        "standard input is not UTF-8 text",
        stdin=b'{"sex": "f\xe9minin"}',
    ),
    CliCase("score-invalid-json", _score('{"age": 46,'), "is not valid JSON"),
    CliCase(
        "score-huge-integer", _score('{"age": 1' + "0" * 5000 + "}"), "more than 4,300 digits"
    ),
    CliCase("score-deep-nesting", _score("[" * 100_000 + "]" * 100_000), "nests JSON too deeply"),
    CliCase("score-missing-file", _command("score", "nobody.json"), "'nobody.json': no such file"),
    CliCase(
        "score-patient-is-a-directory",
        _command("score", "patients", dirs=["patients"]),
        "'patients' is a directory; expected a JSON file",
    ),
    CliCase(
        "score-regimen-invalid-json",
        _score(None, "--regimen", '{"drug": "ketamine"'),
        "--regimen is not valid JSON",
    ),
    CliCase(
        "score-regimen-neither-json-nor-file",
        _score(None, "--regimen", "ketamine 0.5 mg/kg"),
        "expected the regimen's fields as JSON text",
    ),
    CliCase(
        "score-regimen-duplicate-key",
        _score(None, "--regimen", '{"drug": "ketamine", "dose": 0.5, "dose": 5}'),
        "--regimen gives the key 'dose' twice",
    ),
    CliCase(
        "score-regimen-not-an-object",
        _command(
            "score", str(PATIENT), "--regimen", "regimen.json", files={"regimen.json": "[1]"}
        ),
        "--regimen must be a JSON object of regimen fields; got list",
    ),
    CliCase(
        "score-horizon-out-of-range",
        _score(None, "--horizon-day", "400"),
        "--horizon-day=400 is not a day after the first session",  # as typed, not 400.0
    ),
    CliCase("score-horizon-nan", _score(None, "--horizon-day", "nan"), "--horizon-day=nan"),
    *(  # Python's float() reads these as 10 and 28; a command line does not guess
        CliCase(
            f"score-horizon-{label}",
            _score(None, "--horizon-day", typed),
            f"--horizon-day={typed!r} is not a day after the first session: above 0 and at "
            "most 365",
        )
        for label, typed in (("digit-separator", "1_0"), ("arabic-digits", "\u0662\u0668"))
    ),
    CliCase(
        "score-horizon-not-a-number",
        _score(None, "--horizon-day", "2026-01-05"),  # a date is no horizon
        "--horizon-day='2026-01-05' is not a day after the first session: above 0 and at most",
    ),
    CliCase(
        "score-model-not-a-model-directory",
        _command(
            "score",
            str(PATIENT),
            "--model",
            "{folder}/not-a-model",
            files={"not-a-model/notes.txt": "x"},
        ),
        "not-a-model",
    ),
    CliCase(
        "score-model-is-a-file",
        _command(
            "score", str(PATIENT), "--model", "{folder}/model.json", files={"model.json": "{}"}
        ),
        "model.json",
    ),
    CliCase(
        "score-patient-without-regimen",
        _score(
            json.dumps(
                {k: v for k, v in json.loads(PATIENT.read_text()).items() if k != "regimen"}
            )
        ),
        'give the schedule as a "regimen" object in the file, or with --regimen',
    ),
    CliCase(
        "score-patient-regimen-twice",
        _score(_patient(drug="ketamine")),
        "the record gives its regimen twice",
    ),
    # -- the command line itself
    CliCase("ui-port-out-of-range", _command("ui", "--port", "70000"), "port from 1 to 65535"),
    CliCase("no-command", _command(), "the following arguments are required: command"),
    CliCase("unknown-command", _command("trian", "x.toml"), "invalid choice: 'trian'"),
    CliCase(
        "misspelt-option",
        _score(None, "--horizon-dya", "28"),
        "ketapredict score: unrecognized arguments: '--horizon-dya' '28' (did you mean "
        "'--horizon-day'?) (see 'ketapredict score --help')",
    ),
]


def _files(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*")}


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.id for case in CLI_CASES])
def test_a_user_error_exits_2_with_one_line_and_no_traceback(case, tmp_path):
    case.build(tmp_path)  # the case's own files (building again in run_case changes nothing)
    before = _files(tmp_path)
    outcome = run_case(case, tmp_path)
    assert outcome.code == 2, outcome
    assert outcome.err.endswith("\n"), outcome.err
    assert outcome.err.count("\n") == 1, outcome.err  # one line
    assert outcome.err.startswith("ketapredict"), outcome.err
    assert case.expected in outcome.err
    assert "Traceback" not in outcome.err + outcome.out
    assert outcome.out == ""  # nothing trained, simulated or reported before the refusal
    # nothing written: no model saved as a fallback, no tracking store, no output file
    assert _files(tmp_path) == before
    assert not (tmp_path / _STORE).exists()


def test_cases_cover_the_issues_list():
    """The cases issue 13 names, each kept by id (the benchmark counts them)."""
    named = {
        "feature-set-invalid-toml",
        "experiment-not-utf8",
        "experiment-data-empty-csv",
        "experiment-data-binary-csv",
        "experiment-data-csv-named-parquet",
        "experiment-n-too-large",
        "train-save-not-empty",
        "train-register-invalid-name",
        "experiment-name-dots",
    }
    ids = [case.id for case in CLI_CASES]
    assert named <= set(ids)
    assert len(ids) == len(set(ids))

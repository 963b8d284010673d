"""Hostile inputs and faults: how many are refused cleanly, and how many get through?

    python benchmarks/fault_injection.py            # everything (about 2-3 minutes on 2 cores)
    python benchmarks/fault_injection.py --quick    # 1,000 fuzzed patients, no training

Runs the hostile cases the tests keep (each area's cases live in its test file, so the
tests and this count are the same cases) and prints, per area, the cases tried and how
each ended:

- **refused**: a ``ValidationError`` / ``ModelFileError`` (or, on the command line, exit 2
  with one line and no traceback), or for tracking faults the outcome the issue asks for;
- **accepted**: the input was valid after all and gave a correct answer (fuzzed patients);
- **crashed**: any other exception or a traceback;
- **hung**: no answer within the case's time limit;
- **read outside**: a model loaded from a file outside its directory;
- **NaN / outside [0, 1]**: a probability that is not one.

Areas:

- model directories: every case of ``tests/test_hostile_models.py`` (path escapes, links,
  special files, each structural corruption, malformed manifests), plus an edited and
  resealed signed model loaded with its public key;
- command line: every case of ``tests/test_cli_errors.py`` through ``main``;
- patients and tables: ``tests/test_fuzz.py``'s generators, 10,000 patients for ``score``
  and 10,000 tables for ``validate`` (1,000 each with ``--quick``);
- tracking faults: 4 processes on a new SQLite store, runs killed by SIGKILL and SIGTERM
  (with their joblib workers), servers that fail or hang behind a working ``/health``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

COLUMNS = ("tried", "refused", "accepted", "crashed", "hung", "read outside", "NaN/outside")


def model_directories() -> dict:
    import shutil

    from test_hostile_models import HOSTILE_CASES, _edited_and_resealed, try_case

    from ketapredict import generate_keys, load_model

    counts = dict.fromkeys(COLUMNS, 0)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        private, public = generate_keys(tmp / "keys")
        signed = load_model().save(tmp / "signed", signing_key=private)

        def signed_and_edited(path: Path, outside: Path) -> None:
            shutil.rmtree(path)
            shutil.copytree(signed, path)
            _edited_and_resealed(path)

        cases = [(name, edit, None) for name, edit, _ in HOSTILE_CASES]
        cases.append(("signed-then-edited-and-resealed", signed_and_edited, public))
        for k, (name, edit, key) in enumerate(cases):
            result = try_case(edit, tmp / f"case{k}", public_key=key, timeout=60.0)
            counts["tried"] += 1
            counts["refused"] += result["refused"]
            counts["accepted"] += result["loaded"] and not result["crashed"]
            counts["crashed"] += result["crashed"] is not None
            counts["hung"] += result["hung"]
            counts["read outside"] += result["read_outside"]
            counts["NaN/outside"] += result["nan"]
            if not result["refused"]:
                failures.append(f"{name}: {result}")
    return {"counts": counts, "failures": failures}


def patients(quick: bool) -> dict:
    """Fuzzed patients for ``score`` / ``compare_regimens`` and fuzzed tables for
    ``validate`` (tests/test_fuzz.py's generators, seed 0)."""
    from test_fuzz import fuzz_counts

    n = 1_000 if quick else 10_000
    counts = dict.fromkeys(COLUMNS, 0)
    failures = []
    for target in ("score", "validate"):
        found = fuzz_counts(n, seed=0, target=target)
        counts["tried"] += found["tried"]
        counts["refused"] += found["refused"]
        counts["accepted"] += found["scored"]
        counts["crashed"] += found["crashed"]
        counts["hung"] += found["hung"]
        counts["NaN/outside"] += found["nan"] + found["outside"]
        failures += [f"{target}: {f}" for f in found["failures"]]
    return {"counts": counts, "failures": failures}


def command_line() -> dict:
    """Every case of tests/test_cli_errors.py through ``ketapredict``'s ``main``: refused
    means exit 2, one line on stderr, no traceback."""
    from test_cli_errors import CLI_CASES, run_case

    counts = dict.fromkeys(COLUMNS, 0)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, case in enumerate(CLI_CASES):
            folder = Path(tmp) / f"case{k}"
            folder.mkdir()
            counts["tried"] += 1
            try:
                outcome = run_case(case, folder)
            except Exception as error:  # a crash is what this counts
                counts["crashed"] += 1
                failures.append(f"{case.id}: {error!r}")
                continue
            lines = outcome.err.strip().splitlines()
            clean = (
                outcome.code == 2
                and len(lines) == 1
                and "Traceback" not in outcome.err + outcome.out
            )
            counts["refused"] += clean
            counts["crashed"] += "Traceback" in outcome.err + outcome.out
            if not clean:
                failures.append(f"{case.id}: exit {outcome.code}, {outcome.err[:200]!r}")
    return {"counts": counts, "failures": failures}


def tracking() -> dict:
    """Tracking faults, each once: 4 processes on a brand-new SQLite store (refused means
    all 4 runs complete), a logging process killed with SIGKILL and with SIGTERM (its run
    ends KILLED or FAILED, no worker alive after 30 s), and servers that answer ``/health``
    but fail or hang on the API (refused before training within the timeout)."""
    from servers import failing_tracking_server
    from test_tracking_faults import concurrent_first_use, killed_run

    from ketapredict.tracking import TrackingError, preflight

    counts = dict.fromkeys(COLUMNS, 0)
    failures = []

    def count(name: str, ok: bool, detail) -> None:
        counts["tried"] += 1
        counts["refused"] += ok
        if not ok:
            failures.append(f"{name}: {detail}")

    with tempfile.TemporaryDirectory() as tmp:
        found = concurrent_first_use(4, Path(tmp) / "concurrent")
        count("4 processes on a new store", found["complete"] == 4 and not found["lost"], found)
        for how in ("SIGKILL", "SIGTERM"):
            found = killed_run(Path(tmp) / how, how)
            ended = found["status_after_next_run"] in ("KILLED", "FAILED")
            count(f"run killed by {how}", ended and not found["orphans"], found)
            counts["hung"] += bool(found["orphans"])
    for kind, options in (("failing", {}), ("hanging", {"hang": 60})):
        with failing_tracking_server(**options) as url:
            os.environ["MLFLOW_TRACKING_URI"] = url
            began = time.perf_counter()
            try:
                preflight(timeout=5.0)
                count(f"{kind} server", False, "preflight passed")
            except TrackingError as error:
                seconds = time.perf_counter() - began
                count(f"{kind} server", seconds < 10, f"{seconds:.1f} s: {error}")
                counts["hung"] += seconds >= 10
            finally:
                os.environ.pop("MLFLOW_TRACKING_URI")
    return {"counts": counts, "failures": failures}


def main(argv: list[str] | None = None) -> int:
    from _options import options

    parser = options(__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run, no training")
    args = parser.parse_args(argv)
    areas = {
        "model directories": model_directories,
        "command line": command_line,
        "patients and tables": lambda: patients(args.quick),
        "tracking faults": tracking,
    }
    rows = {}
    for area, run in areas.items():
        began = time.perf_counter()
        found = run()
        rows[area] = found["counts"]
        print(f"{area}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
        for failure in found["failures"]:
            print(f"  not refused: {failure}", file=sys.stderr)
    width = max(map(len, rows)) + 2
    print("area".ljust(width) + "".join(c.rjust(14) for c in COLUMNS))
    for area, counts in rows.items():
        print(area.ljust(width) + "".join(str(counts.get(c, "-")).rjust(14) for c in COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())

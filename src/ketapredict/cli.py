"""The ``ketapredict`` command line.

Each command is a thin layer over a public function; the work happens in the library.
Exit codes: 0 done, 1 a failure to report (a missed calibration target, an unreachable or
missing tracking store), 2 bad input (arguments, files, values outside the data contract).

Bad input never shows a traceback: the command prints ``ketapredict: `` and what is wrong,
naming the file, key or value and what is allowed, on one line (a table with several bad
cells lists them, one line each). Everything a command will write (``--out``, ``--save``), a
registry name and a size are checked before any simulation or training starts, and so is
the tracking store (:func:`ketapredict.tracking.preflight`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._text import listed, paragraph
from .exceptions import short_repr

__all__ = ["main"]

_VIRTUAL = (
    "Virtual cohort: simulated patients calibrated to published ketamine trials "
    "(`ketapredict calibrate`), not real patient data."
)


def _say(text: str) -> None:
    """Print a paragraph in lines of at most 96 characters (a terminal of 100), each line
    after the first indented; blank lines kept."""
    print(
        "\n".join(
            paragraph(line, indent=line[: len(line) - len(line.lstrip())] + "  ")
            for line in text.split("\n")
        )
    )


def _print_table(frame: pd.DataFrame, **kwargs) -> None:
    with pd.option_context(
        "display.width",
        200,
        "display.max_columns",
        50,
        "display.max_colwidth",
        60,
        "display.max_rows",
        500,
    ):
        print(frame.to_string(**kwargs))


def cohort_summary(cohort: pd.DataFrame) -> pd.DataFrame:
    """One line per trial: courses (a crossover patient gives two), patients, arms, endpoint
    and outcome rates.

    Examples
    --------
    >>> from ketapredict import simulate_cohort
    >>> from ketapredict.cli import cohort_summary
    >>> summary = cohort_summary(simulate_cohort(n=1000, seed=0))
    >>> list(summary.columns)[:4]
    ['courses', 'patients', 'arms', 'endpoint_day']
    """
    from .schema import OUTCOMES

    grouped = cohort.groupby("trial_id", observed=True)
    summary = pd.DataFrame(
        {
            "courses": grouped.size(),
            "patients": grouped["patient_id"].nunique(),
            "arms": grouped["arm"].nunique(),
            "endpoint_day": grouped["endpoint_day"].first(),
            **{rate: grouped[rate].mean() for rate in OUTCOMES},
        }
    )
    total = pd.DataFrame(
        {
            "courses": [len(cohort)],
            "patients": [cohort["patient_id"].nunique()],
            "arms": [cohort.groupby(["trial_id", "arm"], observed=True).ngroups],
            "endpoint_day": [float("nan")],
            **{rate: [cohort[rate].mean()] for rate in OUTCOMES},
        },
        index=["all trials"],
    )
    return pd.concat([summary, total]).round(3)


def _summary_text(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`cohort_summary` for reading: rates in percent, whole days, and "not measured"
    where a trial did not assess an outcome (rather than pandas' ``<NA>``)."""
    from .schema import OUTCOMES

    shown = summary.copy()
    for column in OUTCOMES:
        shown[column] = [
            "not measured" if pd.isna(v) else f"{100 * v:.1f}%" for v in summary[column]
        ]
    shown["endpoint_day"] = ["" if pd.isna(v) else f"{v:g}" for v in summary["endpoint_day"]]
    for column in ("courses", "patients"):  # 8,000, as the prose around the table writes it
        shown[column] = [f"{int(v):,}" for v in summary[column]]
    shown.index = [f"{name} *" if name in _hypothetical() else name for name in shown.index]
    # "day" (explained under the table): a terminal of 100 holds the table
    return shown.rename(columns=lambda c: "day" if c == "endpoint_day" else c.replace("_", " "))


def _hypothetical() -> dict[str, str]:
    """The cohort's trial designs that no published trial ran, with what they are."""
    from .cohort.simulate import published_trials

    return {name: t.citation for name, t in published_trials().items() if t.hypothetical}


def _print_cohort_summary(cohort: pd.DataFrame) -> None:
    """The table of :func:`cohort_summary`, with a footnote for each hypothetical design."""
    summary = cohort_summary(cohort)
    _print_table(_summary_text(summary))
    print("day: the day the outcomes were assessed, counted from the first session.")
    for name, citation in _hypothetical().items():
        if name in summary.index:
            print(paragraph(f"* {name}: {citation}", indent="  "))


def _write(frame: pd.DataFrame, path: Path) -> str:
    """Write a table to a path :func:`_check_output_file` accepted; returns how to say it
    (a file that was there is replaced, as by any command's output, and said so).

    The table is written beside the path and renamed onto it once whole: an interrupted
    write (Ctrl-C, a full disk) leaves the file that was there, not a cut table that reads
    without complaint."""
    import tempfile

    replaced = os.path.lexists(path)
    # a link is written through, onto the file it names, which keeps its permissions (a
    # table the user kept to themselves stays so); a new file gets a new file's
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    # a short name beside it: the name checked before the work may be near the limit
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=".kp-", suffix=".part")
    os.close(handle)
    if target.exists():
        mode = target.stat().st_mode & 0o7777
    else:
        umask = os.umask(0)  # the permissions a new file would have had, not mkstemp's 0600
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(name, mode)
    try:
        if path.suffix.lower() == ".parquet":
            frame.to_parquet(name, index=False)
        else:
            frame.to_csv(name, index=False)
        os.replace(name, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(name)
        raise
    return f"{path} (replacing the file that was there)" if replaced else str(path)


def _refuse(option: str, value: Any, message: str, what: str = "command line") -> None:
    from .exceptions import Problem, ValidationError

    raise ValidationError([Problem(option, value, message)], what)


# Linux's limits (NAME_MAX, PATH_MAX); other systems' are no larger.
_NAME_MAX = 255
_PATH_MAX = 4096


def _nearest_existing(path: Path) -> Path:
    """The path itself or its nearest ancestor that exists (what a mkdir would start from)."""
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _check_writable_parent(path: Path, option: str) -> None:
    """The directories above ``path`` exist or can be made, and can be written, and no
    part of its name is longer than the system allows (found only when writing, after the
    work, the output was lost)."""
    from .exceptions import short_repr

    longest = max((len(os.fsencode(part)) for part in Path(path).parts), default=0)
    # PATH_MAX counts the terminating NUL
    if longest > _NAME_MAX or len(os.fsencode(os.path.abspath(path))) >= _PATH_MAX:
        _refuse(
            option,
            str(path)[:80],
            f"{option} {short_repr(str(path))}: the name is too long (at most {_NAME_MAX} "
            f"bytes a part, {_PATH_MAX:,} in all)",
        )
    start = _nearest_existing(path.parent)
    if not os.path.isdir(start):
        _refuse(
            option,
            str(path),
            f"{option} {str(path)!r}: {str(start)!r} is a file, not a directory",
        )
    if not os.access(start, os.W_OK | os.X_OK):
        _refuse(option, str(path), f"{option} {str(path)!r}: cannot write in {str(start)!r}")


def _check_output_file(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, a table output that could not be written: another suffix,
    a directory, a parent that is a file or cannot be written. An existing file is
    replaced (and the output says so)."""
    if path.suffix.lower() not in (".parquet", ".csv"):
        _refuse(
            option,
            str(path),
            f"{option} {str(path)!r}: expected a .parquet or .csv file name; got suffix "
            f"{path.suffix!r}",
        )
    if os.path.isdir(path):
        _refuse(
            option,
            str(path),
            f"{option} {str(path)!r} is a directory; expected a .parquet or .csv file name",
        )
    _check_writable_parent(path, option)


def _check_new_directory(path: Path, option: str) -> None:
    """Refuse, before any work, a model directory that could not be saved to: a file, a
    directory with files in it (a model is never mixed with other files, nor overwritten),
    or a place that cannot be written."""
    if os.path.lexists(path) and not os.path.isdir(path):
        _refuse(
            option,
            str(path),
            f"{option} {str(path)!r} is a file; expected a new or empty directory",
        )
    if os.path.isdir(path):
        if any(Path(path).iterdir()):
            _refuse(
                option,
                str(path),
                f"{option} {str(path)!r} is not empty; expected a new or empty directory",
            )
        if not os.access(path, os.W_OK | os.X_OK):
            _refuse(option, str(path), f"{option} {str(path)!r}: cannot write in it")
        return
    _check_writable_parent(path, option)


# MLflow's rules for a registered model's name (mlflow.utils.validation._validate_model_name,
# and the file registry's in mlflow.store.model_registry.file_store, MLflow 3.17): not empty
# or blank, no "/" or ":", no path that normalises to another name ("." or starting with
# ".."), no "%" or backslash (a path separator on Windows); the SQL registry stores at most
# 256 characters. Control characters are refused too: the name is printed and shown in the
# UI. Checked here so that a bad name fails before training, not after it.
_REGISTRY_NAME_LENGTH = 256


def check_registered_model_name(name: str) -> str:
    """Check a name for MLflow's model registry before anything is trained.

    Parameters
    ----------
    name : str
        The ``--register`` name.

    Returns
    -------
    str
        ``name``, unchanged.

    Raises
    ------
    ValidationError
        Saying what MLflow allows when it would refuse the name.

    Examples
    --------
    >>> from ketapredict.cli import check_registered_model_name
    >>> check_registered_model_name("ketapredict-response")
    'ketapredict-response'
    >>> try:
    ...     check_registered_model_name("team/ketapredict")
    ... except ValueError as error:
    ...     print(error.problems[0].message.split(" (")[0])
    --register 'team/ketapredict': MLflow's registry refuses this name
    """
    reasons = []
    if not name.strip():
        reasons.append("it is empty")
    bad = sorted({c for c in name if c in "/:%\\" or not c.isprintable()})
    if bad:
        reasons.append(f"it contains {', '.join(map(repr, bad))}")
    if name == "." or name.startswith(".."):
        reasons.append("it is '.' or starts with '..'")
    if len(name) > _REGISTRY_NAME_LENGTH:
        reasons.append(f"it has {len(name)} characters")
    if reasons:
        _refuse(
            "--register",
            name,
            f"--register {name[:80]!r}: MLflow's registry refuses this name "
            f"({'; '.join(reasons)}); a name has 1-{_REGISTRY_NAME_LENGTH} characters, no "
            "'/', ':', '%', backslash or control character, and is neither '.' nor starts "
            "with '..'",
        )
    return name


def _simulate(args: argparse.Namespace) -> int:
    from .cohort.simulate import simulate_cohort

    _check_output_file(args.out)
    cohort = simulate_cohort(n=args.n, seed=args.seed)
    written = _write(cohort, args.out)
    _say(_VIRTUAL)
    _say(
        f"Simulated {len(cohort):,} patient courses from "
        f"{cohort['trial_id'].nunique()} trial designs (seed {args.seed}); "
        f"wrote {written}.\n"
    )
    _print_cohort_summary(cohort)
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from .io import IngestSummary, read_study

    _check_output_file(args.out)
    table = read_study(args.mapping, path=args.data, adsl=args.adsl, efficacy=args.efficacy)
    summary = IngestSummary(**table.attrs["ingest"])
    written = _write(table, args.out)
    print(summary)
    _say(f"Wrote {len(table):,} patient courses to {written}.")
    return 0


def _read_data(path: Path) -> tuple[pd.DataFrame, str]:
    """A study from a mapping file (.toml) or a patient table (.csv, .parquet)."""
    from .io import read_patient_table

    suffix = path.suffix.lower()  # real.CSV is a CSV file, as in experiment files
    if suffix == ".toml":
        from .io import read_study

        return read_study(path), f"{path.parent.name}/{path.name}"
    if suffix not in (".csv", ".parquet"):
        _refuse(
            "data",
            str(path),
            f"{str(path)!r}: expected a mapping file (.toml) or a patient table (.csv, "
            f".parquet); got suffix {path.suffix!r}",
            "data",
        )
    return read_patient_table(path), path.name


def _evaluate(args: argparse.Namespace) -> int:
    from .external import evaluate_model

    data, name = _read_data(args.data)  # the user's file first: it is the likelier mistake
    model = _load(args)
    result = evaluate_model(model, data, source=name)
    print(result, flush=True)
    if args.no_track:
        return 0
    from .tracking import TrackingError, log_evaluation, redacted, resolved_tracking_uri

    try:
        run_id = log_evaluation(result, model, "demo" if args.model == "demo" else args.model)
    except TrackingError as error:
        print(f"ketapredict: not logged to MLflow: {error}", file=sys.stderr)
        return 1
    _say(
        f"\nLogged MLflow run {run_id} (experiment external-validation) to "
        f"{redacted(resolved_tracking_uri())}."
    )
    return 0


_UPDATES = {
    "none": "kept as it was",
    "intercept": "intercept updated",
    "intercept_slope": "intercept and slope updated",
}


def _recalibrate(args: argparse.Namespace) -> int:
    from .exceptions import one_line

    _check_new_directory(args.out, "--out")
    key = _signing_key(args.signing_key)
    data, name = _read_data(args.data)
    model = _load(args)
    updated = model.recalibrate(data, args.method, outcomes=args.outcomes)
    record = updated.provenance["recalibration"]
    _say(
        f"Recalibrated {one_line(model.provenance.get('name', 'the model'))} to {name} "
        f"({record['n_patients']:,} courses, data digest {record['data_sha256']}), "
        f"method {args.method}:"
    )
    before = model.predict_proba(data)
    after = updated.predict_proba(data)
    for outcome, update in record["outcomes"].items():
        if outcome not in data.columns:  # updated before, kept now
            continue
        observed = data[outcome].dropna().astype(float).mean()
        has = data[outcome].notna()
        # "original_vs_intercept_slope": the model as it was against intercept + slope
        tests = ", ".join(
            f"{k.replace('_vs_', ' vs ').replace('intercept_slope', 'intercept + slope')} "
            f"{_p_value(v)}"
            for k, v in update["p_values"].items()
            if v is not None
        )
        _say(
            f"  {outcome}: {_UPDATES[update['method']]} (intercept "
            f"{update['intercept']:+.2f}, slope "
            f"{update['slope']:.2f}; {update['events']:,} events in {update['n']:,}; {tests})\n"
            f"    observed {observed:.1%}; mean predicted {before.loc[has, outcome].mean():.1%} "
            f"before, {after.loc[has, outcome].mean():.1%} after (on the same courses: judge "
            "it on patients it was not fitted to)"
            + (f"\n    note: {update['note']}" if update.get("note") else "")
        )
    for outcome, reason in record.get("skipped", {}).items():
        _say(f"  {outcome}: {reason}")
    updated.save(args.out, signing_key=key)
    print(f"Saved the recalibrated model to {args.out}.")
    return 0


def _p_value(p: float) -> str:
    """A p-value as printed: three decimals (p=0.300 beside p=0.553), or p<0.001."""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _calibrate(args: argparse.Namespace) -> int:
    from .cohort.calibration import MAX_PER_ARM, MIN_PER_ARM, calibration_report

    if not MIN_PER_ARM <= args.n_per_arm <= MAX_PER_ARM:
        _refuse(
            "--n-per-arm",
            args.n_per_arm,
            f"--n-per-arm {args.n_per_arm}: expected {MIN_PER_ARM} to {MAX_PER_ARM:,} patients "
            "per arm",
        )
    report = calibration_report(seed=args.seed, n_per_arm=args.n_per_arm)
    print(
        paragraph(
            f"Virtual cohort against published evidence ({args.n_per_arm:,} patients per "
            f"simulated arm, a typical trial, seed {args.seed}). Tolerances follow each "
            "result's sample size and the spread between trials (the rules are written at the "
            "top of ketapredict/cohort/targets.toml)."
        )
        + "\n"
    )
    titles = {
        "fit": "Fit targets: scripts/fit_cohort.py fitted the parameters to these.",
        "validation": "Validation targets: never used by the fit, nor to set anything else.",
        "check": "Checks: never used by the fit, but they shaped a mechanism or a fixed value.",
    }
    for role, title in titles.items():
        rows = report[report["role"] == role]
        print(f"{title} {int(rows['passed'].sum())} of {len(rows)} reproduced.\n")
        # the check carries the tolerance; a statement without a published figure shows
        # a blank, not NaN
        shown = rows[["id", "published", "simulated"]].round(3)
        shown["check"] = [r.check.split(" (")[0] for r in rows.itertuples()]
        shown["reproduced"] = rows["passed"].map({True: "yes", False: "NO"})
        _print_table(shown, index=False, na_rep="")
        if shown["check"].str.startswith("d ").any():
            print(
                paragraph(
                    "d: the simulated standardised difference between the arms compared "
                    "(Cohen's d); a bound on it says what the trial's significant or "
                    "non-significant result allows (one trial of its size is one draw)."
                )
            )
        print()
    by_arm = report.attrs.get("oracle_auc_by_arm", {})
    if by_arm:
        print("Oracle AUC of response within each active arm of the pooled cohort:")
        for arm, auc in by_arm.items():
            print(f"  {arm:40s} {auc:.3f}")
        print()
    print("Not simulated:")
    for row in report.attrs["not_expressed"]:
        line = f"{row['id']}, {row['source']}: {row['statement']} -- {row['not_expressed']}"
        print(paragraph(line, first_indent="  ", indent="    "))
    failed = report.loc[~report["passed"], "id"].tolist()
    print(
        f"\n{int(report['passed'].sum())} of {len(report)} targets reproduced."
        + (f" Missed: {', '.join(failed)}." if failed else "")
    )
    return 1 if failed else 0


def _train(args: argparse.Namespace) -> int:
    code, _ = _train_and_log(
        args.experiment,
        quiet=args.quiet,
        save=args.save,
        register=args.register,
        track=not args.no_track,
        signing_key=args.signing_key,
    )
    return code


def _train_and_log(
    experiment_file: str | Path,
    *,
    quiet: bool = False,
    save: Path | None = None,
    register: str | None = None,
    track: bool = True,
    hint: bool = True,
    signing_key: Path | None = None,
):
    """Validate an experiment, fit its RiskModel and log both; (exit code, model).

    Everything that could fail after training is checked first: the experiment file, the
    ``save`` directory, the registry name and the tracking store.

    ``hint`` prints the command that opens the MLflow UI (the quickstart prints it last)."""
    import time

    if save is not None:
        _check_new_directory(save, "--save")
    key = _signing_key(signing_key)
    if key is not None and save is None and not track:
        _refuse(
            "--signing-key",
            str(signing_key),
            "--signing-key signs the model --save writes (or the copy saved when logging "
            "fails); with --no-track and no --save no model is saved to sign: add --save DIR",
        )
    if register is not None:
        if not track:
            _refuse(
                "--register",
                register,
                f"--register {register!r} registers the model in MLflow, which --no-track "
                "turns off; give one of them",
            )
        check_registered_model_name(register)
    # imported after the checks above, which then answer in a second
    from .experiment import load_experiment, run_experiment
    from .tracking import TrackingError, log_experiment, preflight, redacted, ui_command

    experiment = load_experiment(experiment_file)
    if track:  # a store that cannot be reached fails now, not after training
        try:
            preflight(experiment=experiment.name)
        except TrackingError as error:
            raise TrackingError(
                f"{str(error).rstrip('.')}; nothing was trained (ketapredict train "
                "--no-track trains without MLflow)"
            ) from None
    result = run_experiment(experiment, progress=not quiet)
    if result.data_kind == "simulated":
        _say(_VIRTUAL)
    _say(
        f"Experiment {experiment.name!r} ({experiment.path}): {result.n_rows:,} courses, "
        f"validated in {result.seconds:.1f} s.\n"
    )
    print(result)
    began = time.perf_counter()
    model = result.fit_model()
    # each outcome on the courses that record it: the counts its header gave
    counts = {o: int(v.metrics.iloc[0]["n"]) for o, v in result.results.items()}
    if set(counts.values()) == {result.n_rows}:
        courses = f"all {result.n_rows:,} courses"
    elif len(counts) == 1:
        courses = f"the {next(iter(counts.values())):,} courses that record it"
    else:
        courses = (
            "the courses that record each ("
            + ", ".join(f"{o.replace('_', ' ')} {n:,}" for o, n in counts.items())
            + ")"
        )
    _say(
        f"\nFitted the final model of {listed([o.replace('_', ' ') for o in model.outcomes])} "
        f"on {courses}, with "
        f"{model.provenance.get('replicates', 0)} bootstrap replicates each for the "
        f"intervals ({time.perf_counter() - began:.1f} s)."
    )
    for outcome, chosen in model.provenance.get("tuned_parameters", {}).items():
        settings = ", ".join(f"{k}={v}" for k, v in chosen.items())
        _say(f"  {outcome}: tuned on all courses by the same grid search as each fold: {settings}")
    saved = None
    if save:
        saved = model.save(save, signing_key=key)
        print(f"Saved the model to {saved}" + (", signed." if key else "."))
    if not track:
        return 0, model
    try:
        tracked = log_experiment(
            result,
            result.data,
            model,
            register=register,
            learning_curves=result.learning_curves,
        )
    except TrackingError as error:
        if saved is None:
            saved = model.save(
                Path("models") / f"{experiment.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                signing_key=key,
            )
        print(
            f"ketapredict: {error}\nThe trained model is saved at {saved} (load it with "
            f"ketapredict.load_model({str(saved)!r}) or RiskModel.load).",
            file=sys.stderr,
        )
        return 1, model
    _say(
        f"Logged to MLflow ({redacted(tracked.tracking_uri)}) in {tracked.seconds:.1f} s: "
        f"experiment {experiment.name!r}, run {tracked.parent_run_id}; model {tracked.model_uri}."
    )
    if tracked.registered:
        r = tracked.registered
        theirs = ""
        if r["champion_within_arm_auc"] is not None and np.isfinite(r["champion_within_arm_auc"]):
            of = (
                ""
                if r["champion_primary_outcome"] == r["primary_outcome"]
                else f" ({r['champion_primary_outcome']})"
            )
            theirs = f", the champion's{of} {r['champion_within_arm_auc']:.3f}"
        auc = r["within_arm_auc"]
        # no within-arm AUC (too few events in every arm) is said so, never "nan"
        ours = f"{auc:.3f}" if auc is not None and np.isfinite(auc) else "not measured"
        _say(
            f"Registered {r['name']} version {r['version']} as {r['alias']} ({r['reason']}; "
            f"within-arm AUC of {r['primary_outcome']} {ours}{theirs})."
        )
    if hint:
        print("Compare runs in the MLflow UI: " + _ui_hint(ui_command()))
    return 0, model


# The quickstart's horizon: day 28, the end point of the 4-week esketamine trials (TRANSFORM-2,
# Popova 2019) and of a 4-week IV course.
HORIZON_DAY = 28


def _quickstart(args: argparse.Namespace) -> int:
    import time

    from .cohort.simulate import simulate_cohort
    from .experiment import load_experiment
    from .regimen import Regimen
    from .schema import columns, example_course
    from .tracking import TrackingError, preflight

    began = time.perf_counter()
    experiment = load_experiment("baseline")
    try:  # the store is checked before anything is printed or simulated
        preflight(experiment=experiment.name)
    except TrackingError as error:
        unset = (
            " (unset MLFLOW_TRACKING_URI for the local store, mlruns/mlflow.db)"
            if os.environ.get("MLFLOW_TRACKING_URI")
            else ""
        )
        raise TrackingError(
            f"{str(error).rstrip('.')}; the quickstart logs its run to MLflow{unset}"
        ) from None
    _say(
        "ketapredict quickstart: the virtual cohort, the baseline experiment, MLflow, and a "
        "risk report for one (invented) patient.\n"
    )
    data = experiment.spec.data  # the cohort the experiment trains on
    print(f"1. The virtual cohort ({data.n:,} simulated courses, seed {data.seed}), by trial:\n")
    _print_cohort_summary(simulate_cohort(n=data.n, seed=data.seed))
    print("\n2. The baseline experiment: train, validate across trials, log to MLflow.\n")
    code, model = _train_and_log("baseline", quiet=args.quiet, hint=False)
    if code != 0:
        return code
    guide = (
        "Within-arm AUC ranks patients who got the same regimen (the clinician's question); "
        "ECE and the calibration slope say how far the probabilities are from the observed "
        "rates. docs/validation.md explains every column."
    )
    print("\n" + paragraph(guide))
    patient = {k: v for k, v in example_course().items() if k in columns("baseline")}
    course = Regimen(
        drug="ketamine",
        route="iv",
        dose=0.5,
        dose_unit="mg/kg",
        infusion_minutes=40,
        sessions_per_week=2,
        n_sessions=8,
    )
    record = ", ".join(
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in patient.items()
    )
    print(
        "\n3. A risk report from the model just trained, for an invented patient with a "
        "complete record\n(the README's `ketapredict score` example; its Python example "
        "records fewer fields):\n" + paragraph(record, first_indent="   ", indent="   ") + "\n"
    )
    print(model.score(patient, course, horizon_day=HORIZON_DAY))
    comparison = model.compare_regimens(patient, horizon_day=HORIZON_DAY)
    print(
        f"\n4. The standard grid of {len(comparison)} schedules for her, all at day "
        f"{HORIZON_DAY}:\n"
    )
    print(comparison)
    print(
        f"\nDone in {time.perf_counter() - began:.0f} s. Open the runs in the MLflow UI "
        "with:\n\n    ketapredict ui\n"
    )
    return 0


def _ui_hint(command: list[str]) -> str:
    from .tracking import DEFAULT_TRACKING_URI, redacted, tracking_uri

    if tracking_uri() != DEFAULT_TRACKING_URI:
        uri = redacted(tracking_uri())
        return f"open {uri}" if uri.startswith("http") else "ketapredict ui"
    return "ketapredict ui"


def _ui(args: argparse.Namespace) -> int:
    import socket

    from .tracking import (
        _check_uri,
        _require_store,
        _sqlite_path,
        redacted,
        tracking_uri,
        ui_command,
    )

    uri = tracking_uri()
    _check_uri(uri)  # a URI MLflow's server would fail on, said in one line
    if uri.startswith(("http://", "https://")):
        print(f"Runs are on the tracking server {redacted(uri)}; open it in a browser.")
        return 0
    _require_store("open the MLflow UI")  # MLflow would create an empty store and show it
    store = _sqlite_path(uri) if uri.startswith("sqlite:///") else uri
    with socket.socket() as probe:
        # as the server binds: a port left in TIME_WAIT by a stopped server is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError as error:
            print(
                f"ketapredict: port {args.port} on 127.0.0.1 is taken ({error.strerror}); "
                "another MLflow UI may be running there. Choose another with --port.",
                file=sys.stderr,
            )
            return 1
    environment = dict(os.environ)
    # MLflow's job runner (GenAI scorers and trace jobs, eight more processes) has nothing
    # to do for ketapredict's runs
    environment.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if not args.verbose:
        environment.setdefault("PYTHONWARNINGS", "ignore")  # the server's own deprecations
    print(
        f"MLflow UI for {redacted(str(store))} at http://127.0.0.1:{args.port} (Ctrl-C to stop)",
        flush=True,
    )
    code = _serve(ui_command(args.port, verbose=args.verbose), environment)
    if code is None:
        print(f"Stopped the MLflow UI; port {args.port} is free.", flush=True)
        return 0
    return code


# A server that ignores SIGTERM for this long is killed.
_STOP_SECONDS = 10.0


def _serve(command: list[str], environment: dict[str, str]) -> int | None:
    """Run a server until it exits (its exit code) or this process is asked to stop (None).

    The server starts in a process group of its own, and the whole group is stopped: MLflow's
    server runs uvicorn, which runs its workers, and a signal to MLflow alone would leave
    them holding the port. SIGINT (Ctrl-C), SIGTERM and SIGHUP all stop it; the group is
    not in the terminal's foreground, so Ctrl-C reaches this process only, once.
    """
    import signal
    import subprocess

    stops = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        stops.append(signal.SIGHUP)
    asked: list[int] = []
    # the handler only records the request: raising from it could land between the start
    # of the server and the line that keeps its handle, leaving it running unseen
    previous = {s: signal.signal(s, lambda signum, frame: asked.append(signum)) for s in stops}
    server = None
    try:
        server = subprocess.Popen(command, env=environment, start_new_session=True)
        while not asked:
            try:
                code = server.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            _stop_group(server)  # what it left behind, if anything
            return code if code >= 0 else 1
        _stop_group(server)
        return None
    finally:
        if server is not None and server.poll() is None:  # an unexpected error
            _stop_group(server)
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stop_group(server) -> None:
    """Stop a server started in its own process group, and every process of that group."""
    import signal
    import subprocess
    import time

    if not hasattr(os, "killpg"):  # Windows: no process groups to signal
        server.terminate()
        try:
            server.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
        return

    def send(sig: int) -> bool:
        try:
            os.killpg(server.pid, sig)  # the group's id is the server's pid
        except ProcessLookupError:
            return False  # nobody left in the group
        return True

    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not send(sig):
            return
        deadline = time.monotonic() + _STOP_SECONDS
        try:
            server.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        while time.monotonic() < deadline:
            if not send(0):
                return
            time.sleep(0.1)


def _loads(text: str) -> Any:
    """JSON text as Python values, refusing a key given twice: two ages in one patient file
    are a mistake to report, not a choice to make."""
    from ._json import unique_keys

    return json.loads(text, object_pairs_hook=unique_keys)


def _json_problem(error: ValueError | RecursionError, name: str) -> str:
    """What is wrong with JSON text :func:`_loads` refused (never its content)."""
    from ._json import DuplicateKeyError

    if isinstance(error, DuplicateKeyError):
        key = str(error.key)
        shown = repr(key) if len(key) <= 40 else repr(key[:37] + "...")
        return f"{name} gives the key {shown} twice; give each field once"
    if isinstance(error, json.JSONDecodeError):
        return (
            # json's "Unterminated string starting at" takes the place that follows
            f"{name} is not valid JSON: {error.msg.removesuffix(' at')} at line {error.lineno}, "
            f"column {error.colno}"
        )
    if isinstance(error, RecursionError):
        return f"{name} nests JSON too deeply to read; expected one record of fields"
    if "integer string conversion" in str(error):  # Python's guard against huge integers
        return (
            f"{name} has a whole number of more than {sys.get_int_max_str_digits():,} "
            "digits; no field takes one"
        )
    reason = " ".join(str(error).split())[:150]
    return f"{name} cannot be read as JSON: {reason}"


# The largest patient or regimen file read (one record of a few dozen fields is about a
# kilobyte): anything larger is refused before it fills the memory.
MAX_RECORD_BYTES = 1_000_000


def _read_json(path: str, what: str) -> Any:
    """The JSON in a file (``-``: standard input), or a ValidationError that says what is
    wrong with it (never its content, which may identify a patient)."""
    from ._files import not_a_file
    from .exceptions import Problem, ValidationError

    name = "standard input" if path == "-" else repr(path)
    try:
        if path == "-":  # bytes where standard input has them, else its text
            raw = getattr(sys.stdin, "buffer", None)
            data = (
                raw.read(MAX_RECORD_BYTES + 1)
                if raw is not None
                else sys.stdin.read(MAX_RECORD_BYTES + 1).encode("utf-8")
            )
        elif (fault := not_a_file(path, "a JSON file")) and fault.startswith("is not a regular"):
            # a FIFO or a device (/dev/zero) could block or never end; a directory or a
            # missing file fails to open below, with the system's reason
            raise ValidationError([Problem(None, path, f"{name} {fault}")], what)
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_RECORD_BYTES + 1)
        if len(data) > MAX_RECORD_BYTES:
            raise ValidationError(
                [Problem(None, path, f"{name} is over {MAX_RECORD_BYTES:,} bytes; expected one "
                         "record of fields")],
                what,
            )  # fmt: skip
        # a byte-order mark is no data (Notepad writes one), as a BIDS file's is not
        return _loads(data.decode("utf-8-sig"))
    except ValidationError:
        raise
    except FileNotFoundError:
        message = f"{name}: no such file"
    except IsADirectoryError:
        message = f"{name} is a directory; expected a JSON file"
    except UnicodeDecodeError:
        message = f"{name} is not UTF-8 text; expected a JSON file"
    except (ValueError, RecursionError) as error:  # JSON errors, duplicate keys, huge numbers
        message = _json_problem(error, name)
    except OSError as error:
        message = f"{name} cannot be read: {error.strerror}"
    raise ValidationError([Problem(None, path, message)], what)


def _patient_record(path: str) -> dict[str, Any]:
    """One patient record from a JSON file: contract fields, the regimen's either among them
    or as a "regimen" object. The identifier stays in the record: never a model input nor
    shown, it lets an error that quotes a field holding it name it instead
    (:func:`ketapredict.schema.validate_record`)."""
    from .exceptions import Problem, ValidationError
    from .regimen import REGIMEN_FIELDS, unknown_fields

    record = _read_json(path, "patient file")
    if not isinstance(record, dict):
        kind = "a list" if isinstance(record, list) else type(record).__name__
        raise ValidationError(
            [
                Problem(
                    None,
                    None,
                    f"expected one patient record, a JSON object of contract fields; got "
                    f"{kind} (score one patient per file)",
                )
            ],
            "patient file",
        )
    nested = record.pop("regimen", None)
    if nested is None:
        return record
    flat = [k for k in REGIMEN_FIELDS if k in record]
    unknown = unknown_fields(nested, where=" in 'regimen'") if isinstance(nested, dict) else []
    if unknown:
        raise ValidationError(unknown, "patient file")
    if not isinstance(nested, dict) or flat:
        problem = (
            f"the record gives its regimen twice: as a 'regimen' object and as the fields "
            f"{', '.join(flat)}; keep one"
            if isinstance(nested, dict)
            else f"'regimen' must be an object of regimen fields; got {type(nested).__name__}"
        )
        raise ValidationError([Problem("regimen", None, problem)], "patient file")
    return {**record, **nested}


def _regimen_argument(text: str) -> dict[str, Any]:
    """The --regimen value: JSON text of the regimen's fields, or a JSON file of them."""
    from .exceptions import Problem, ValidationError, short_repr

    if text.lstrip().startswith(("{", "[")):  # JSON text, not a file name
        try:
            regimen = _loads(text)
        except (ValueError, RecursionError) as error:
            message = _json_problem(error, "--regimen")
            raise ValidationError([Problem("regimen", text, message)], "regimen") from None
    elif os.path.isfile(text):  # os.path: False for a name too long, where pathlib raises
        regimen = _read_json(text, "regimen")
    else:
        from ._files import not_a_file

        fault = not_a_file(text, "a JSON file")
        message = (
            f"--regimen {short_repr(text)}: expected the regimen's fields as JSON text "
            '(\'{"drug": "ketamine", "route": "iv", "dose": 0.5, "infusion_minutes": 40}\') '
            "or a JSON file of them; "
            + ("no such file" if fault == "does not exist" else f"it {fault.split(';')[0]}")
        )
        raise ValidationError([Problem("regimen", text, message)], "regimen")
    if not isinstance(regimen, dict):
        message = (
            f"--regimen must be a JSON object of regimen fields; got {type(regimen).__name__}"
        )
        raise ValidationError([Problem("regimen", None, message)], "regimen")
    return regimen


def _check_horizon(day: float | str | None) -> None:
    """``--horizon-day`` a day the reports take (as ``horizon_day``), before the model is
    loaded."""
    from .clinic import _day
    from .exceptions import ValidationError

    problems: list = []
    if day is not None and _day(day, "--horizon-day", problems) is None:
        raise ValidationError(problems, "command line")


_NO_SCHEDULE_HINT = 'give the schedule as a "regimen" object in the file, or with --regimen'


def _score(args: argparse.Namespace) -> int:
    from .exceptions import ValidationError

    patient = _patient_record(args.patient)
    regimen = None if args.regimen is None else _regimen_argument(args.regimen)
    _check_horizon(args.horizon_day)
    model = _load(args)
    try:
        report = model.score(patient, regimen, horizon_day=args.horizon_day)
    except ValidationError as error:  # a missing schedule is given as the command line gives it
        from dataclasses import replace

        from .clinic import NO_SCHEDULE_HINT

        problems = [
            replace(p, message=p.message.replace(NO_SCHEDULE_HINT, _NO_SCHEDULE_HINT))
            for p in error.problems
        ]
        raise ValidationError(problems, error.what) from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        print(report)
    return 0


def _load(args: argparse.Namespace):
    """The model of ``--model`` / MODEL, verified against ``--public-key`` if given."""
    from .clinic import load_model

    return load_model(None if args.model == "demo" else args.model, public_key=args.public_key)


def _signing_key(path: Path | None):
    """The private key of ``--signing-key``, read before any work (ModelFileError if it is
    not one)."""
    if path is None:
        return None
    from .modelfile import _private_key

    return _private_key(path)


def _keys(args: argparse.Namespace) -> int:
    from .modelfile import fingerprint, generate_keys, key_name_problem

    name = args.name
    fault = key_name_problem(name)
    if fault:
        _refuse("--name", name, f"--{fault}")
    if os.path.lexists(args.directory) and not os.path.isdir(args.directory):
        _refuse(
            "directory",
            str(args.directory),
            f"{str(args.directory)!r} is a file; expected a directory",
        )
    for file in (args.directory / f"{name}{kind}" for kind in (".key", ".pub")):
        if file.exists():
            _refuse("directory", str(file), f"{str(file)!r} exists; keys are never overwritten")
    private, public = generate_keys(args.directory, args.name)
    print(
        f"Wrote the Ed25519 key pair {private} (private: readable by you only) and {public} "
        f"(public, fingerprint {fingerprint(public)}).\n"
        # quoted as a shell needs them, so that the lines paste (a folder named "my keys")
        f"Sign a model:   ketapredict train EXPERIMENT --save DIR --signing-key "
        f"{shlex.quote(str(private))}\n"
        f"Verify it:      ketapredict score PATIENT.json --model DIR --public-key "
        f"{shlex.quote(str(public))}\n"
        "Keep the private key where only the people who release models can read it; give "
        "the public key to whoever loads them."
    )
    return 0


def _public_key_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--public-key",
        type=_path,
        metavar="FILE",
        help="refuse the model unless it is signed by this key's private key (the .pub file "
        "of `ketapredict keys`)",
    )


def _signing_key_option(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument(
        "--signing-key",
        type=_path,
        metavar="FILE",
        help=f"sign {what} with this Ed25519 private key (the .key file of `ketapredict keys`)",
    )


def _model_and_data(command: argparse.ArgumentParser) -> None:
    """The MODEL and DATA arguments of the commands that apply a model to a study."""
    command.add_argument(
        "model", help="model directory, MLflow URI (models:/name@champion) or 'demo'"
    )
    command.add_argument(
        "data",
        type=_path,
        help="mapping file (.toml) of a study, or a patient table (.csv, .parquet)",
    )
    _public_key_option(command)


class _UsageError(Exception):
    """A command line argparse refused, as one line."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (argparse prints the whole usage first) and
    returned by :func:`main` as exit code 2 rather than raised as SystemExit."""

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _unrecognized(parser: argparse.ArgumentParser, command: str, extra: list[str]):
    """The usage error for arguments ``command`` does not take, named by the command, with
    the nearest of its options to a misspelt one (``--horizon-dya``: ``--horizon-day``)."""
    import difflib

    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [o for a in commands.choices[command]._actions for o in a.option_strings]
    near = [
        (typed, found[0])
        for typed in extra
        if typed.startswith("--")
        and (found := difflib.get_close_matches(typed.split("=")[0], options, n=1))
    ]
    meant = (
        f" (did you mean {near[0][1]!r}?)"
        if len(near) == 1
        else f" (did you mean {listed([f'{o!r} for {short_repr(t)}' for t, o in near])}?)"
        if near
        else ""
    )
    return _UsageError(
        f"ketapredict {command}: unrecognized arguments: {' '.join(map(short_repr, extra))}"
        f"{meant} (see 'ketapredict {command} --help')"
    )


def _path(text: str) -> Path:
    """A path as given: an empty one is refused (``Path("")`` is the current directory,
    where keys were written among other files and an output name was reported as '.')."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path; got an empty one")
    return Path(text)


# A whole number as a person types one: ASCII digits and a sign. Python's own int() also
# reads "1_0" as 10 and other scripts' digits ("٢٨" as 28), which a command line should not
# guess at (a decimal is read as a record's numbers are: ketapredict.schema._number).
_WHOLE = re.compile(r"[+-]?\d+", re.ASCII)


def _days_after_first(text: str) -> float | str:
    """A horizon: days after the first session, as a number; a whole number stays one, so
    that a message shows it as typed (-3, not -3.0). Text that is no number (a date, say)
    stays text, for :func:`_check_horizon` to refuse with the range a number would get."""
    from .schema import _number

    value = _number(text)
    if value is None:
        return text
    return int(value) if value.is_integer() and abs(value) < 1e9 else value


def _whole(text: str, fallback: int) -> int:
    """``text`` as a whole number written with ASCII digits, else ``fallback`` (also for
    one of more than 4,300 digits, which Python refuses to read)."""
    if not _WHOLE.fullmatch(text.strip()):
        return fallback
    try:
        return int(text)
    except ValueError:
        return fallback


def _integer(text: str) -> int:
    """A whole number (its range is checked where it is used)."""
    value = _whole(text, None)
    if value is None:
        raise argparse.ArgumentTypeError(
            f"expected a whole number such as 1000; got {short_repr(text)}"
        )
    return value


def _seed(text: str) -> int:
    """A random seed: numpy takes whole numbers from 0."""
    value = _whole(text, -1)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0; got {short_repr(text)}")
    return value


def _port(text: str) -> int:
    """A TCP port to listen on."""
    value = _whole(text, 0)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port from 1 to 65535; got {short_repr(text)}"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _ArgumentParser(
        prog="ketapredict",
        description="Predict response and cognitive adverse effects of ketamine treatment.",
    )
    parser.add_argument("--version", action="version", version=f"ketapredict {__version__}")
    parser.add_argument("--verbose", action="store_true", help=_VERBOSE)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    simulate = commands.add_parser(
        "simulate",
        help="simulate the pooled virtual cohort and summarise it",
        description="Simulate the pooled virtual cohort (every trial design of "
        "src/ketapredict/cohort/trials.toml: published trials and one hypothetical design), "
        "write it to a "
        "file and print a summary per trial.",
    )
    simulate.add_argument(
        "--n",
        type=_integer,
        default=5000,
        help="courses: rows (default 5000; a crossover patient has one a period)",
    )
    simulate.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    simulate.add_argument(
        "--out",
        type=_path,
        default=Path("cohort.parquet"),
        help="output file, .parquet or .csv (default cohort.parquet)",
    )
    simulate.set_defaults(run=_simulate)

    calibrate = commands.add_parser(
        "calibrate",
        help="compare the virtual cohort with published evidence (fit and validation)",
        description="Simulate every published result the virtual cohort is checked against "
        "(the targets in ketapredict/cohort/targets.toml: each with its source, statement, "
        "published value and sample size) and print published and simulated values side by "
        "side, fit targets, validation targets and checks apart, with the oracle AUC of each "
        "active arm. Exits 1 if a target is missed.",
    )
    calibrate.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    calibrate.add_argument(
        "--n-per-arm",
        type=_integer,
        default=20_000,
        help="patients per simulated arm (default 20000)",
    )
    calibrate.set_defaults(run=_calibrate)

    ingest = commands.add_parser(
        "ingest",
        help="read a BIDS or CDISC ADaM study into a patient-course table",
        description="Read the study a mapping file describes (BIDS participants and "
        "phenotype files, or ADaM ADSL and an efficacy dataset as .xpt or Dataset-JSON), "
        "check it against the data contract, write the patient-course table and print what "
        "was read, kept and left out. The mapping's keys are described in docs/own-data.md "
        "and in help(ketapredict.io.load_mapping); an example "
        "study to copy, with its mapping file, is in the folder that "
        "python -c 'import ketapredict.io as i; print(i.example_study(\"bids\"))' prints "
        '(or "adam").',
    )
    ingest.add_argument("mapping", type=_path, help="mapping file (TOML)")
    ingest.add_argument(
        "--out",
        type=_path,
        default=Path("courses.parquet"),
        help="output file, .parquet or .csv (default courses.parquet)",
    )
    ingest.add_argument(
        "--data", type=_path, help="BIDS: the dataset root (default: the mapping's path)"
    )
    ingest.add_argument("--adsl", type=_path, help="ADaM: ADSL (default: the mapping's adsl)")
    ingest.add_argument(
        "--efficacy",
        type=_path,
        help="ADaM: the efficacy dataset (default: the mapping's efficacy)",
    )
    ingest.set_defaults(run=_ingest)

    score = commands.add_parser(
        "score",
        help="a risk report for one patient on one dose schedule",
        description="Score one patient with a saved model and print the risk report: for "
        "each outcome the probability, its 90% interval, a risk band and the predictors "
        "that moved it, with warnings and the fields not recorded. The patient file is a "
        "JSON object of the data contract's baseline fields (ketapredict.Patient): age, "
        "sex, diagnosis and madrs_baseline are required, any other may be left out (the "
        "report integrates it over its plausible values and says so); the dose "
        "schedule is either among them (drug, route, dose, dose_unit, infusion_minutes, "
        'sessions_per_week, n_sessions, new_oral_antidepressant) or a "regimen" object of '
        "those fields, or given with --regimen, which replaces the file's (the report says "
        "so). An identifier (patient_id) is never a model input and never shown. Exits 2 on "
        "bad input.",
    )
    score.add_argument(
        "patient",
        help="patient file (JSON; '-' reads standard input), e.g. "
        "src/ketapredict/data/examples/patient.json",
    )
    score.add_argument(
        "--regimen",
        help='the dose schedule as JSON text (\'{"drug": "esketamine", "route": '
        '"intranasal", "dose": 56, "dose_unit": "mg", "sessions_per_week": 2, '
        '"n_sessions": 8, "new_oral_antidepressant": true}\') or a JSON file of it; replaces '
        "the patient file's",
    )
    score.add_argument(
        "--model",
        default="demo",
        help="model directory, MLflow URI (models:/name@champion) or 'demo', the model "
        "shipped in the package, trained on the virtual cohort (default demo)",
    )
    score.add_argument(
        "--horizon-day",
        type=_days_after_first,
        metavar="DAY",
        help="day after the first session the probabilities are for (default: the record's "
        "endpoint_day if it gives its own regimen, else 24 h after the last session)",
    )
    score.add_argument(
        "--json", action="store_true", help="print the report as JSON (RiskReport.to_dict)"
    )
    _public_key_option(score)
    score.set_defaults(run=_score)

    evaluate = commands.add_parser(
        "evaluate",
        help="validate a saved model on a study it never saw (external validation)",
        description="Score a study with a saved model and report, per outcome and arm, "
        "observed against predicted risk, calibration intercept and slope, AUC with "
        "small-sample intervals and Brier score, with warnings (small samples, courses "
        "outside the training data); log the evaluation to MLflow.",
    )
    _model_and_data(evaluate)
    evaluate.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    evaluate.set_defaults(run=_evaluate)

    recalibrate = commands.add_parser(
        "recalibrate",
        help="update a saved model to a local population (intercept, slope, closed test)",
        description="Update a model's calibration to a study of the local population "
        "(calibration in the large, or intercept and slope, chosen by a closed testing "
        "procedure) and save the updated model; the trees are not refitted.",
    )
    _model_and_data(recalibrate)
    recalibrate.add_argument(
        "--out", type=_path, required=True, help="new directory for the updated model"
    )
    recalibrate.add_argument(
        "--method",
        choices=("closed_test", "intercept", "intercept_slope"),
        default="closed_test",
        help="the update (default closed_test: chosen by likelihood-ratio tests)",
    )
    recalibrate.add_argument(
        "--outcomes",
        nargs="+",
        metavar="OUTCOME",
        help="the outcomes to update (default: every outcome of the model the data record "
        "with events and non-events; the others are kept as they were)",
    )
    _signing_key_option(recalibrate, "the updated model")
    recalibrate.set_defaults(run=_recalibrate)

    train = commands.add_parser(
        "train",
        help="run an experiment file: train and validate its outcome models",
        description="Train and validate the outcome models an experiment file describes, "
        "against peer models and (on simulated data) the oracle; print the "
        'metrics. The file\'s [data] names the virtual cohort (source = "simulated"), a '
        'patient table, or a study read through a mapping (format = "bids" or '
        '"adam", and mapping = the path of its mapping file); every key is described in '
        "help(ketapredict.experiment) and in the shipped experiments/*.toml.",
    )
    train.add_argument(
        "experiment",
        help="experiment file (experiments/baseline.toml) or a shipped experiment's name "
        "(baseline)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--save", type=_path, help="also save the fitted model to this directory")
    train.add_argument(
        "--register",
        metavar="NAME",
        help="register the model in MLflow: alias champion if it beats the "
        "current champion, else challenger",
    )
    train.add_argument(
        "--no-track", action="store_true", help="do not log to MLflow (metrics are still printed)"
    )
    _signing_key_option(train, "the saved model (--save, or the copy saved if logging fails)")
    train.set_defaults(run=_train)

    keys = commands.add_parser(
        "keys",
        help="make an Ed25519 key pair for signing models",
        description="Write a private key (NAME.key, readable by you only) and a public key "
        "(NAME.pub) for signing models: `train --signing-key` and `recalibrate "
        "--signing-key` sign with the private key, `score/evaluate/recalibrate --public-key` "
        "refuse a model that the matching private key did not sign or that changed since. "
        "Checksums alone catch accidents, not edits.",
    )
    keys.add_argument("directory", type=_path, help="where to write the two files")
    keys.add_argument(
        "--name", default="ketapredict", help="the files' stem (default %(default)s)"
    )
    keys.set_defaults(run=_keys)

    quickstart = commands.add_parser(
        "quickstart",
        help="the whole package in one command: simulate, train, validate, log, report",
        description="Simulate the virtual cohort, train and validate the baseline "
        "experiment, log it to MLflow, and print its metrics, a risk report for an "
        "invented patient with a comparison of dose schedules, and the command that opens "
        "the MLflow UI.",
    )
    quickstart.add_argument("--quiet", action="store_true", help="no progress bars")
    quickstart.set_defaults(run=_quickstart)

    ui = commands.add_parser(
        "ui",
        help="open the MLflow UI for ketapredict's runs (on 127.0.0.1)",
        description="Serve the MLflow UI for the tracking store (MLFLOW_TRACKING_URI, or "
        "sqlite:///mlruns/mlflow.db under the current directory, which must exist: run "
        "from the directory you trained in) on 127.0.0.1, until Ctrl-C, SIGTERM or SIGHUP "
        "stops it and every process it started.",
    )
    ui.add_argument("--port", type=_port, default=5000, help="port (default 5000)")
    ui.set_defaults(run=_ui)
    for name, command in commands.choices.items():
        # also after the command (`ketapredict train x --verbose`), without overriding the
        # global flag when absent; a command that never touches MLflow takes it too (scripts
        # pass it to every command) and says it changes nothing there
        command.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help=(
                "show MLflow's log lines (INFO), its download bars and the server's request "
                "log; by default only its warnings and errors"
                if name == "ui"
                else "show MLflow's log lines (INFO) and its download bars; by default only "
                "its warnings and errors"
                if name in _MLFLOW_COMMANDS
                else _NO_MLFLOW
            ),
        )
    return parser


# the commands that may read or write an MLflow store (score and evaluate: models:/ URIs)
_MLFLOW_COMMANDS = ("score", "evaluate", "recalibrate", "train", "quickstart", "ui")
_NO_MLFLOW = "no effect: this command uses no MLflow"
_VERBOSE = (
    "show MLflow's log lines (INFO), its download bars and (ui) the server's request log; "
    "by default only its warnings and errors"
)
_QUIET_LOGGERS = ("mlflow", "alembic")
_QUIET_ENVIRONMENT = {
    "MLFLOW_LOGGING_LEVEL": "WARNING",  # read when MLflow is imported, here or in a server
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # read at each download
}
# ketapredict's Python calls hide MLflow's download bars unless the variable is set
_VERBOSE_ENVIRONMENT = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "true"}


@contextmanager
def _mlflow_output(verbose: bool) -> Iterator[None]:
    """Keep MLflow to warnings and errors for one command; verbose, show all, download bars
    included (ketapredict's Python calls hide them unless the variable is set).

    A variable the user set keeps its value. Loggers and variables are put back afterwards,
    so that calling :func:`main` leaves the process as it found it.
    """
    environment = _VERBOSE_ENVIRONMENT if verbose else _QUIET_ENVIRONMENT
    saved = {name: os.environ.get(name) for name in environment}
    for name, value in environment.items():
        os.environ.setdefault(name, value)
    loggers = [] if verbose else [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ketapredict`` command line; returns the exit code.

    Bad input, arguments argparse refuses included, returns 2 after one line on stderr
    (``--help`` and ``--version`` still exit through SystemExit, as argparse does).
    Output piped into a program that stops reading (``| head``) stops the printing, not
    the work: a training still logs its run and saves its model, a cohort or table still
    reaches its file, and the exit code is the work's.
    """
    if sys.stdout is None:  # started with its output closed (>&-): print() writes nothing
        return _run(argv)
    printout = _Printout(sys.stdout)
    sys.stdout = printout
    try:
        return _run(argv)
    finally:
        printout.flush()  # a reader that left shows here rather than at exit
        sys.stdout = printout.stream


class _Printout:
    """Standard output that a reader may leave (``| head``): what is printed after it left
    goes nowhere, and the command goes on. A command's product is its run, model or file as
    much as its printout, and a training cut short by ``head`` would lose a run for lines
    nobody reads."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._reader_left()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._reader_left()

    def _reader_left(self) -> None:
        # Python's documented recipe (library/signal, "Note on SIGPIPE"): point stdout at
        # devnull, so that what is still buffered, and the flush at exit, go nowhere quietly
        with suppress(OSError, ValueError, AttributeError):  # stdout is no file (tests)
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            self.stream.flush()

    def __getattr__(self, name: str):  # isatty, fileno, encoding, ...: the stream's own
        return getattr(self.stream, name)


def _one_line(error) -> str:
    """A ValidationError with one problem on one line, naming what was checked; with several,
    its usual lines (a headline, then one line per problem)."""
    if len(error.problems) != 1:
        return str(error)
    # the problem's line as the message renders it (cut there to a readable length)
    problem = str(error).split("\n", 1)[-1]
    # an option's message starts with the option itself, which says what was checked
    said = problem if error.what == "command line" else f"{error.what}: {problem}"
    return " ".join(said.split())


def _run(argv: Sequence[str] | None) -> int:
    try:
        parser = _parser()
        args, extra = parser.parse_known_args(argv)
        if extra:
            raise _unrecognized(parser, args.command, extra)
    except _UsageError as error:
        print(error, file=sys.stderr)
        return 2
    from .exceptions import ModelFileError, ValidationError, short_repr
    from .tracking import TrackingError

    def say(message: str) -> None:
        # one problem stays on one line (for scripts that read it); several are wrapped to
        # a terminal's width, each problem under its own first word
        headline, *problems = f"ketapredict: {message}".split("\n")
        if problems:
            headline = paragraph(headline, indent="  ")
            problems = [paragraph(p.strip(), first_indent="  ", indent="    ") for p in problems]
        print("\n".join([headline, *problems]), file=sys.stderr)

    with _mlflow_output(args.verbose):
        try:
            return args.run(args)
        except ValidationError as error:
            say(_one_line(error))
            return 2
        except ModelFileError as error:
            say(str(error))
            return 2
        except TrackingError as error:
            say(str(error))
            return 1
        # The inputs' readers turn these into ValidationErrors that name the input; any that
        # escape them are still the user's files (missing, unreadable, not UTF-8, not TOML),
        # not a fault of ketapredict to show with a traceback. Other errors still show one.
        except (
            FileNotFoundError,
            IsADirectoryError,
            NotADirectoryError,
            PermissionError,
        ) as error:
            say(f"{error.strerror}: {short_repr(str(error.filename))}")
            return 2
        except OSError as error:  # the system refused a file (full disk, read-only, exists)
            said = error.strerror or str(error) or type(error).__name__
            say(f"{said}: {short_repr(str(error.filename))}" if error.filename else said)
            return 1
        except UnicodeDecodeError as error:
            say(f"an input file is not UTF-8 text ({error.reason} at byte {error.start})")
            return 2
        except tomllib.TOMLDecodeError as error:
            say(f"an input file is not valid TOML: {error}")
            return 2
        except KeyboardInterrupt:
            say("interrupted")
            return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

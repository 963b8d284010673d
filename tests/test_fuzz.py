"""Hostile input for the clinician path: ``score``, ``compare_regimens`` and ``validate``.

Every patient, regimen, horizon or table, however malformed, gets a ``ValidationError``
(whose message is bounded) or a sound answer: every probability and interval end finite and
in [0, 1], never NaN, never a crash.

The generators draw from a ``random.Random``, so the same cases drive hypothesis here (its
``st.randoms()`` is a ``random.Random`` whose draws it controls and shrinks) and the
benchmark without pytest::

    from tests.test_fuzz import fuzz_counts
    fuzz_counts(10_000, seed=0)  # {'tried': 10000, 'refused': ..., 'crashed': 0, ...}
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import math
import pickle
import random
import re
import time
import types
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketapredict import Regimen, ValidationError, load_model, regimen_grid, validate
from ketapredict.exceptions import MAX_MESSAGE_CHARS, MAX_VALUE_CHARS, Problem, short_repr
from ketapredict.regimen import REGIMEN_FIELDS
from ketapredict.schema import column, columns, example_course, validate_patient

BASELINE = columns("baseline")
PATIENT = {k: v for k, v in example_course().items() if k in BASELINE}
COURSE = Regimen(
    drug="ketamine", route="iv", dose=0.5, infusion_minutes=40, sessions_per_week=2, n_sessions=8
)


# --------------------------------------------------------------------------------------------
# Hostile values: what other systems, typos and attackers send
# --------------------------------------------------------------------------------------------
def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _cycle() -> list:
    value: list = [1]
    value.append(value)
    return value


# (label, value): each a way a field can come wrong. Module level, so that the benchmark
# can list them.
HOSTILE_VALUES: tuple[tuple[str, Any], ...] = (
    # integers beyond a float, and beyond what Python writes out (4,300 digits)
    ("10**400", 10**400),
    ("-10**400", -(10**400)),
    ("-10**30", -(10**30)),
    ("10**5000", 10**5000),
    ("2**63", 2**63),
    ("-2**63 - 1", -(2**63) - 1),
    # floats that are not numbers
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("nan", math.nan),
    ("np.float16(inf)", np.float16("inf")),
    ("np.float32(nan)", np.float32("nan")),
    ("np.float64(-inf)", np.float64("-inf")),
    ("np.longdouble(1e4000)", np.longdouble("1e4000")),
    # numpy extremes
    ("np.int8(-128)", np.int8(-128)),
    ("np.uint8(255)", np.uint8(255)),
    ("np.int16(max)", np.int16(np.iinfo(np.int16).max)),
    ("np.uint16(max)", np.uint16(np.iinfo(np.uint16).max)),
    ("np.int32(min)", np.int32(np.iinfo(np.int32).min)),
    ("np.uint32(max)", np.uint32(np.iinfo(np.uint32).max)),
    ("np.int64(max)", np.int64(np.iinfo(np.int64).max)),
    ("np.uint64(max)", np.uint64(np.iinfo(np.uint64).max)),
    ("np.float16(max)", np.float16(np.finfo(np.float16).max)),
    ("np.float32(max)", np.float32(np.finfo(np.float32).max)),
    ("np.float64(tiny)", np.float64(5e-324)),
    # other number types
    ("Decimal('1e400')", Decimal("1e400")),
    ("Decimal('NaN')", Decimal("NaN")),
    ("Decimal('sNaN')", Decimal("sNaN")),
    ("Decimal('-Infinity')", Decimal("-Infinity")),
    ("Fraction(10**400, 3)", Fraction(10**400, 3)),
    ("Fraction(1, 3)", Fraction(1, 3)),
    ("complex(46, 0)", complex(46, 0)),
    ("1j", 1j),
    ("np.complex64(1)", np.complex64(1)),
    # booleans where numbers are expected (and numbers where booleans are)
    ("True", True),
    ("False", False),
    ("np.bool_(True)", np.bool_(True)),
    ("2", 2),
    ("0.5", 0.5),
    ("-1", -1),
    # missing in every spelling
    ("None", None),
    ("pd.NA", pd.NA),
    ("pd.NaT", pd.NaT),
    ("np.datetime64('NaT')", np.datetime64("NaT")),
    ("np.timedelta64('NaT')", np.timedelta64("NaT")),
    # dates and times
    ("pd.Timestamp", pd.Timestamp("2020-01-01")),
    ("np.datetime64", np.datetime64("2020-01-01")),
    ("datetime.date", datetime.date(2020, 1, 1)),
    ("datetime.timedelta", datetime.timedelta(days=3)),
    ("pd.Timedelta", pd.Timedelta(days=3)),
    # bytes
    ("b'46'", b"46"),
    ("b'female'", b"female"),
    ("bytearray", bytearray(b"TRD")),
    ("np.bytes_", np.bytes_(b"iv")),
    # text
    ("''", ""),
    ("'   '", "   "),
    ("'NaN'", "NaN"),
    ("'-nan'", "-nan"),
    ("'null'", "null"),
    ("'inf'", "inf"),
    ("'1e400'", "1e400"),
    ("'4_6'", "4_6"),
    ("' 46 '", " 46 "),
    ("'46 years'", "46 years"),
    ("arabic digits", "\u0664\u0666"),
    ("fullwidth 'female'", "\uff46\uff45\uff4d\uff41\uff4c\uff45"),
    ("NUL", "\x00"),
    ("control chars", "fe\x07male\x1b[31m"),
    ("right-to-left override", "\u202emale"),
    ("lone surrogate", "\ud800"),
    ("emoji", "\U0001f489"),
    ("'{age}' (format braces)", "{age} {0} {{"),
    ("np.str_('TRD')", np.str_("TRD")),
    ("100,000 characters", "x" * 100_000),
    ("a million digits", "9" * 1_000_000),
    # containers and objects
    ("[]", []),
    ("[46]", [46]),
    ("{}", {}),
    ("{'age': 46}", {"age": 46}),
    ("(46,)", (46,)),
    ("{46}", {46}),
    ("frozenset", frozenset({"TRD"})),
    ("nested 10,000 deep", _nested(10_000)),
    ("a list that holds itself", _cycle()),
    ("np.array(46.0)", np.array(46.0)),
    ("np.array([46.0, 47.0])", np.array([46.0, 47.0])),
    ("pd.Series", pd.Series([46.0])),
    ("object()", object()),
    ("a class", int),
    ("range", range(3)),
    ("Ellipsis", ...),
)

# Names a record's key can have besides the contract's fields.
HOSTILE_KEYS: tuple[Any, ...] = (
    "unknown_field",
    "madrs_basline",
    "Age",
    " age",
    "age\x00",
    "\u202eage",
    "k" * 10_000,
    5,
    None,
    1.5,
    ("age",),
    b"age",
    frozenset({"age"}),
    # not inputs: ignored by score, refused by validate_patient
    "response",
    "p_response",
    "arm",
    "madrs_d7",
)


def _valid_number(rng: random.Random, name: str) -> Any:
    """A value inside the column's range, as one of the number types a caller may hold."""
    spec = column(name)
    if spec.kind == "int":
        k = rng.randint(int(spec.low), int(spec.high))
        kinds = [int, float, str, Decimal, np.int64, np.int32, np.float64, np.uint64]
        kinds += [np.int8, np.uint8] if k <= 127 else []
        return rng.choice(kinds)(k) if rng.random() < 0.9 else str(k)
    x = rng.uniform(spec.low, spec.high)
    kind = rng.choice(["float", "float", "np.float64", "np.float32", "Decimal", "Fraction", "str"])
    if kind == "np.float32":
        return np.float32(x)  # the bounds are exact in float32: rounding stays inside
    if kind == "Decimal":
        return Decimal(repr(x))
    if kind == "Fraction":
        return Fraction(x)
    if kind == "str":
        return f" {x} "
    return np.float64(x) if kind == "np.float64" else x


def _valid_value(rng: random.Random, name: str) -> Any:
    spec = column(name)
    if spec.kind in ("float", "int"):
        return _valid_number(rng, name)
    if spec.kind == "bool":
        return rng.choice([True, False, np.bool_(True), 0, 1, 1.0, "yes", "No", "TRUE", "f"])
    if spec.kind == "category":
        value = rng.choice(spec.categories)
        return rng.choice([value, value.upper(), f"  {value} ", np.str_(value), value.title()])
    return rng.choice(["p1", "patient 7", 7, 7.0, "\u00e9l\u00e8ve", ""])


def _edge_value(rng: random.Random, name: str) -> Any:
    """The edges of a number column's range, on both sides."""
    spec = column(name)
    if spec.kind not in ("float", "int"):
        return _valid_value(rng, name)
    low, high = spec.low, spec.high
    return rng.choice(
        [low, high, low - 1e-9, high + 1e-9, np.nextafter(high, np.inf), -0.0, low - 1, high + 1]
    )


def field_value(rng: random.Random, name: str) -> Any:
    """A value for the field ``name`` that may well be wrong: an edge, or hostile."""
    if rng.random() < 0.25:
        return _edge_value(rng, name)
    return rng.choice(HOSTILE_VALUES)[1]


def _retyped(rng: random.Random, value: Any) -> Any:
    """The same value as another type a caller may hold it in."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return rng.choice([value, np.bool_(value), int(value), "yes" if value else "no"])
    if isinstance(value, int):
        kinds = [int, float, str, Decimal, np.int64, np.int32, np.uint16, np.float32]
        return rng.choice(kinds)(value)
    if isinstance(value, float):
        # float32 rounds: only whole and half values, exact in it, are retyped to it
        exact = int(float(value) * 2 == round(float(value) * 2))
        kinds = ["np.float64", "Decimal", "Fraction", "str", *(["np.float32"] * exact)]
        kind = rng.choice(kinds)
        if kind == "Decimal":
            return Decimal(repr(value))
        if kind == "Fraction":
            return Fraction(value)
        if kind == "str":
            return f" {value!r} "
        return np.float32(value) if kind == "np.float32" else np.float64(value)
    if isinstance(value, str):
        return rng.choice([value, value.upper(), f" {value} ", np.str_(value)])
    return value


def _valid_regimens() -> list[Regimen]:
    return [
        *regimen_grid(sessions_per_week=(1, 2), weeks=2),
        COURSE,
        Regimen(drug="saline", route="iv", dose=0, infusion_minutes=40),
        Regimen(drug="midazolam", route="iv", dose=0.045, infusion_minutes=40),
        Regimen(drug="placebo", route="intranasal", dose=0, sessions_per_week=2, n_sessions=8),
        Regimen(drug="arketamine", route="sc", dose=0.5, sessions_per_week=0.25, n_sessions=104),
        Regimen(drug="ketamine", route="oral", dose=500, dose_unit="mg", n_sessions=104),
        Regimen(drug="ketamine", route="iv", dose=5, infusion_minutes=1, sessions_per_week=7),
    ]


VALID_REGIMENS = _valid_regimens()


def regimen_value(rng: random.Random) -> Any:
    """A regimen argument: a Regimen, its fields (some retyped, some hostile), None or
    something else entirely."""
    u = rng.random()
    base = rng.choice(VALID_REGIMENS)
    if u < 0.3:
        return base
    if u < 0.88:
        fields = {k: v for k, v in base.to_dict().items() if v is not None}
        for name in list(fields):
            if rng.random() < 0.3:
                fields[name] = _retyped(rng, fields[name])
        for _ in range(rng.choice([0, 0, 0, 0, 0, 0, 0, 1, 2])):
            fields[rng.choice(REGIMEN_FIELDS)] = rng.choice(HOSTILE_VALUES)[1]
        if rng.random() < 0.05:
            fields.pop(rng.choice(REGIMEN_FIELDS), None)
        if rng.random() < 0.05:
            fields[rng.choice(HOSTILE_KEYS)] = 1
        if rng.random() < 0.1:
            return pd.Series(fields, dtype=object)
        if rng.random() < 0.05:  # a field given twice
            return pd.Series([*fields.values(), 0.7], index=[*fields, "dose"], dtype=object)
        return fields
    if u < 0.94:
        return None  # the patient record carries the schedule, or not
    return rng.choice(HOSTILE_VALUES)[1]


def horizon_value(rng: random.Random) -> Any:
    u = rng.random()
    if u < 0.6:
        return None
    if u < 0.9:
        return rng.choice([rng.uniform(0, 365), 28, np.float32(7), Decimal("14"), "21", 365, 0])
    return rng.choice(HOSTILE_VALUES)[1]


def patient_value(rng: random.Random) -> Any:
    """A patient argument: mostly a dict of fields, a few hostile, in hostile containers
    too."""
    record: dict[Any, Any] = {}
    for name in BASELINE:
        if column(name).required or rng.random() < 0.6:
            value = PATIENT[name] if rng.random() < 0.8 else _valid_value(rng, name)
            record[name] = _retyped(rng, value) if rng.random() < 0.3 else value
    for _ in range(rng.choice([0, 0, 0, 0, 0, 0, 1, 1, 2, 3])):
        name = rng.choice(BASELINE)
        record[name] = field_value(rng, name)
    if rng.random() < 0.03:
        record.pop(rng.choice(BASELINE), None)
    if rng.random() < 0.1:
        record["patient_id"] = rng.choice(["p1", 7, *(v for _, v in HOSTILE_VALUES[:8])])
    for _ in range(rng.choice([0] * 8 + [1, 3])):
        record[rng.choice(HOSTILE_KEYS)] = rng.choice(HOSTILE_VALUES)[1]
    if rng.random() < 0.1:  # the schedule in the record itself, with its assessment day
        record.update(rng.choice(VALID_REGIMENS).to_dict())
        record["endpoint_day"] = rng.choice([28.0, None, math.nan, pd.NA, -3, 10**400, "x"])
    u = rng.random()
    if u < 0.75:
        return record
    names, values = list(record), list(record.values())
    if u < 0.82:
        return pd.Series(values, index=names, dtype=object)
    if u < 0.86:  # a field twice with two values: which age is it?
        return pd.Series([*values, 80.0], index=[*names, "age"], dtype=object)
    if u < 0.90:
        return pd.DataFrame([values], columns=names, dtype=object)
    if u < 0.92:
        return pd.DataFrame([[*values, 80.0]], columns=[*names, "age"], dtype=object)
    if u < 0.94:
        return [*record.items(), ("age", 80.0)]  # a list of pairs
    if u < 0.96:
        return types.MappingProxyType(record)
    if u < 0.98:
        return collections.OrderedDict(record)
    return rng.choice(HOSTILE_VALUES)[1]


def table_value(rng: random.Random) -> pd.DataFrame:
    """A patient table as other systems make them, with hostile cells, columns and dtypes."""
    n = rng.choice([0, 1, 2, 3, 5])
    names = [*BASELINE, *REGIMEN_FIELDS]
    records = []
    for _ in range(n):
        record = {**PATIENT, **rng.choice(VALID_REGIMENS).to_dict()}
        for name in BASELINE:
            if rng.random() < 0.1:
                record[name] = _valid_value(rng, name)
        for name in names:
            if rng.random() < 0.1:
                record[name] = _retyped(rng, record[name])
        records.append(record)
    how = rng.choice(["infer", "object", "object", "columns"])
    if how == "infer":
        table = pd.DataFrame(records, columns=names)
    elif how == "object":  # None and NaN side by side in object columns
        table = pd.DataFrame(records, columns=names, dtype=object)
    else:
        dtypes = ["Float64", "float32", "Int64", "str", "category", "object", "boolean"]
        table = pd.DataFrame({name: pd.Series([r[name] for r in records]) for name in names})
        for name in rng.sample(names, 3):
            # pandas cannot, or overflows: not what is tested here
            with contextlib.suppress(TypeError, ValueError), np.errstate(all="ignore"):
                table[name] = table[name].astype(rng.choice(dtypes))
    for _ in range(rng.choice([0, 1, 1, 2, 4])):
        action = rng.random()
        # a column of the contract the table holds once (earlier changes may drop or repeat)
        held = [c for c in names if (table.columns == c).sum() == 1]
        if not held:
            break
        name = rng.choice(held)
        if action < 0.45 and n:
            cells = table[name].tolist()
            cells[rng.randrange(n)] = rng.choice(HOSTILE_VALUES)[1]
            table[name] = pd.Series(cells, index=table.index, dtype=object)
        elif action < 0.55 and n:
            missing = rng.choice([None, math.nan, pd.NA, pd.NaT])
            table[name] = pd.Series([missing] * n, index=table.index, dtype=object)
        elif action < 0.62:
            table = table.drop(columns=name)
        elif action < 0.68:
            table = pd.concat([table, table[[name]]], axis=1)  # the column twice
        elif action < 0.75:
            table[rng.choice(HOSTILE_KEYS)] = 1
        elif action < 0.88:
            kind = rng.choice(["complex", "datetime64[ns]", "bool", "float16", "uint64", "str"])
            with (
                contextlib.suppress(TypeError, ValueError, OverflowError),
                np.errstate(all="ignore"),
            ):
                table[name] = table[name].astype(kind)
        elif action < 0.95 and n:
            labels = [0, "p\x00", ("a", 1), math.nan, "r" * 500]
            table.index = [rng.choice(labels) for _ in range(n)]
        elif n:
            table = table.sample(frac=1.0, random_state=rng.randrange(100))
    return table


# --------------------------------------------------------------------------------------------
# Judging one call
# --------------------------------------------------------------------------------------------
def _message_problem(error: ValidationError) -> str | None:
    """What is wrong with an error's message, if anything."""
    if not error.problems:
        return "a ValidationError without problems"
    text = str(error)
    if len(text) > MAX_MESSAGE_CHARS:
        return f"a message of {len(text)} characters"
    return None


def _ends(report) -> list[float]:
    values = []
    for risk in report.risks.values():
        values += [risk.probability, *(v for v in (risk.low, risk.high) if v is not None)]
        if risk.unrecorded is not None:
            values += list(risk.unrecorded)
    return values


def _judge(values: list[float]) -> str:
    values = np.asarray(values, dtype=float)
    if np.isnan(values).any():
        return "nan"
    if ((values < 0) | (values > 1)).any():
        return "outside"
    return "scored"


def judge_score(model, rng: random.Random) -> tuple[str, str]:
    """Score one generated case; its outcome and, for a failure, what happened."""
    patient, regimen = patient_value(rng), regimen_value(rng)
    horizon = horizon_value(rng)
    drivers = rng.choice([False] * 12 + [True] * 4 + ["all", np.bool_(True), "yes", None, [True]])
    compare = rng.random() < 0.1
    try:
        if compare:
            regimens = rng.choice(
                [[regimen, rng.choice(VALID_REGIMENS)], {"a": regimen}, regimen, "iv", 5]
            )
            comparison = model.compare_regimens(patient, regimens, horizon_day=horizon)
            str(comparison)
            ends = [
                comparison.table[c].to_numpy(float)
                for c in comparison.table.columns
                if c in model.outcomes or c.endswith(("_low", "_high"))
            ]
            values = list(np.concatenate(ends)) if ends else []
        else:
            reports = model.score(patient, regimen, horizon_day=horizon, drivers=drivers)
            values = []
            for report in reports if isinstance(reports, list) else [reports]:  # a table's
                str(report)
                values += _ends(report)
    except ValidationError as error:
        wrong = _message_problem(error)
        return ("crashed", wrong) if wrong else ("refused", "")
    except Exception as error:  # anything else is what this test looks for
        return "crashed", f"{type(error).__name__}: {short_repr(str(error), 200)}"
    outcome = _judge(values)
    return outcome, "" if outcome == "scored" else short_repr(values, 200)


def judge_validate(rng: random.Random) -> tuple[str, str]:
    """Validate one generated table; its outcome and, for a failure, what happened."""
    table = table_value(rng)
    try:
        out = validate(table)
    except ValidationError as error:
        wrong = _message_problem(error)
        return ("crashed", wrong) if wrong else ("refused", "")
    except Exception as error:
        return "crashed", f"{type(error).__name__}: {short_repr(str(error), 200)}"
    # accepted: every cell in the contract's type and range
    for name in out.columns:
        if name not in columns(frame=out):
            continue
        spec = column(name)
        values = out[name]
        missing = values.isna().to_numpy()
        if spec.required and missing.any():
            return "outside", f"{name}: a required value missing"
        if spec.kind in ("float", "int"):
            numbers = values.to_numpy(dtype=float, na_value=np.nan)[~missing]
            if not (np.isfinite(numbers) & (numbers >= spec.low) & (numbers <= spec.high)).all():
                return "outside", f"{name}: {short_repr(numbers.tolist(), 200)}"
        elif spec.kind == "category" and not values[~missing].isin(spec.categories).all():
            return "outside", f"{name}: {short_repr(values.tolist(), 200)}"
    return "scored", ""


# A case taking longer than this counts as hung (it is not interrupted: it is counted).
HUNG_SECONDS = 10.0


def fuzz_counts(
    n: int, seed: int = 0, *, target: str = "score", model: Any = None
) -> dict[str, Any]:
    """Run ``n`` generated cases and count what came of them; usable without pytest.

    Parameters
    ----------
    n : int
        Cases to try.
    seed : int, default=0
        Seed of the ``random.Random`` that makes the cases.
    target : {"score", "validate"}, default="score"
        ``"score"``: a patient, regimen, horizon and drivers for ``score`` (one case in ten
        goes to ``compare_regimens``); ``"validate"``: a patient table for ``validate``.
    model : RiskModel, optional
        The model to score with; the demo model by default.

    Returns
    -------
    dict
        ``tried``, ``refused`` (a ValidationError with a bounded message), ``scored``
        (accepted, every probability and interval end finite and in [0, 1]), ``crashed``
        (any other exception, or a ValidationError with no problems or an unbounded
        message), ``nan``, ``outside`` (a probability outside [0, 1], or a table accepted
        with a value out of its range), ``hung`` (cases over :data:`HUNG_SECONDS`),
        ``slowest_seconds`` and ``failures`` (the first 10, described).
    """
    if target not in ("score", "validate"):
        raise ValueError(f"target must be 'score' or 'validate'; got {target!r}")
    if target == "score" and model is None:
        model = load_model()
    rng = random.Random(seed)
    counts: dict[str, Any] = dict.fromkeys(
        ["tried", "refused", "scored", "crashed", "nan", "outside", "hung"], 0
    )
    counts["slowest_seconds"] = 0.0
    counts["failures"] = []
    for _ in range(n):
        start = time.perf_counter()
        if target == "score":
            outcome, detail = judge_score(model, rng)
        else:
            outcome, detail = judge_validate(rng)
        seconds = time.perf_counter() - start
        counts["tried"] += 1
        counts[outcome] += 1
        counts["hung"] += seconds > HUNG_SECONDS
        counts["slowest_seconds"] = max(counts["slowest_seconds"], round(seconds, 3))
        if outcome not in ("refused", "scored") and len(counts["failures"]) < 10:
            counts["failures"].append(f"{outcome}: {detail}")
    return counts


# --------------------------------------------------------------------------------------------
# Property tests: a default-run size, and 10,000 cases under the slow marker
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return load_model()


def _check_score(model, rng: random.Random) -> None:
    outcome, detail = judge_score(model, rng)
    assert outcome in ("refused", "scored"), detail


def _check_validate(rng: random.Random) -> None:
    outcome, detail = judge_validate(rng)
    assert outcome in ("refused", "scored"), detail


_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}


@settings(max_examples=400, **_SETTINGS)
@given(rng=st.randoms(use_true_random=False))
def test_any_patient_regimen_and_horizon_scores_soundly_or_is_refused(model, rng):
    _check_score(model, rng)


@settings(max_examples=200, **_SETTINGS)
@given(rng=st.randoms(use_true_random=False))
def test_any_table_validates_soundly_or_is_refused(rng):
    _check_validate(rng)


@pytest.mark.slow
@settings(max_examples=10_000, **_SETTINGS)
@given(rng=st.randoms(use_true_random=False))
def test_ten_thousand_patients_score_soundly_or_are_refused(model, rng):
    _check_score(model, rng)


@pytest.mark.slow
@settings(max_examples=10_000, **_SETTINGS)
@given(rng=st.randoms(use_true_random=False))
def test_ten_thousand_tables_validate_soundly_or_are_refused(rng):
    _check_validate(rng)


def test_the_counts_for_the_benchmark_add_up(model):
    counts = fuzz_counts(20, seed=3, model=model)
    assert counts["tried"] == 20
    assert (
        counts["refused"]
        + counts["scored"]
        + counts["crashed"]
        + counts["nan"]
        + counts["outside"]
        == 20
    )
    assert counts["crashed"] == counts["nan"] == counts["outside"] == counts["hung"] == 0
    assert counts["refused"] > 0  # the generator makes both
    assert counts["scored"] > 0
    assert fuzz_counts(20, seed=3, model=model)["refused"] == counts["refused"]  # reproducible


# --------------------------------------------------------------------------------------------
# Each case the issue found, and its neighbours
# --------------------------------------------------------------------------------------------
def _refusal(call, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        call(*args, **kwargs)
    assert len(str(caught.value)) <= MAX_MESSAGE_CHARS
    return caught.value


@pytest.mark.parametrize(
    "big", [10**400, -(10**400), -(10**30), 10**5000], ids=["1e400", "-1e400", "-1e30", "1e5000"]
)
def test_huge_integers_are_refused_as_outside_the_range(model, big):
    text = short_repr(big)
    assert len(text) <= MAX_VALUE_CHARS
    for error, field in [
        (_refusal(model.score, {**PATIENT, "age": big}, COURSE), "age"),
        (_refusal(validate_patient, {**PATIENT, "madrs_baseline": big}), "madrs_baseline"),
        (_refusal(model.score, PATIENT, {**COURSE.to_dict(), "n_sessions": big}), "n_sessions"),
        (_refusal(Regimen, drug="ketamine", route="im", dose=big), "dose"),
        (_refusal(model.score, PATIENT, COURSE, horizon_day=big), "horizon_day"),
    ]:
        (problem,) = error.problems
        assert problem.column == field
        assert problem.value == big  # the value itself, for programs
        assert f"{field}={text} is" in str(error)
        assert "not finite" not in str(error)  # a whole number is never infinite
    table = pd.DataFrame([{**PATIENT, **COURSE.to_dict(), "age": big}], dtype=object)
    error = _refusal(validate, table)
    assert [(p.row, p.column) for p in error.problems] == [(0, "age")]


def test_huge_integers_print_short():
    assert short_repr(10**400) == "1000000000000000000000000000000000000000...(401 digits)"
    assert short_repr(-(10**5000)) == "<a negative integer of about 5001 digits>"


def test_a_table_mixing_none_and_nan_in_object_columns_validates():
    records = [
        {**PATIENT, **COURSE.to_dict(), "bmi": None, "weight_kg": math.nan},
        {**PATIENT, **COURSE.to_dict(), "bmi": math.nan, "weight_kg": None},
        {**PATIENT, **COURSE.to_dict(), "bmi": pd.NA, "weight_kg": pd.NaT},
    ]
    table = pd.DataFrame(records, dtype=object)
    assert table["bmi"].map(type).nunique() == 3  # None, float and NAType side by side
    out = validate(table)
    assert out["bmi"].isna().all()
    assert out["weight_kg"].isna().all()
    assert out["age"].tolist() == [46.0] * 3


def test_a_numbers_column_takes_1_but_not_true():
    # True == 1 == 1.0 and they hash alike: each is still judged as itself
    table = pd.DataFrame([{**PATIENT, **COURSE.to_dict()}] * 3, dtype=object)
    table["n_failed_treatments"] = pd.Series([3, True, 3.0], dtype=object)
    error = _refusal(validate, table)
    assert [(p.row, p.value) for p in error.problems] == [(1, True)]


@pytest.mark.parametrize(
    "patient",
    [
        pd.Series([46.0, 80.0], index=["age", "age"], dtype=object),
        pd.DataFrame([[46.0, 80.0]], columns=["age", "age"], dtype=object),
    ],
    ids=["Series with a repeated label", "DataFrame with a repeated column"],
)
def test_a_field_given_twice_is_refused_not_the_last_taken(model, patient):
    others = {k: v for k, v in PATIENT.items() if k != "age"}
    if isinstance(patient, pd.Series):
        patient = pd.concat([patient, pd.Series(others, dtype=object)])
    else:
        patient = pd.concat([patient, pd.DataFrame([others], dtype=object)], axis=1)
    error = _refusal(model.score, patient, COURSE)
    assert [p.column for p in error.problems] == ["age"]
    if isinstance(patient, pd.Series):
        assert "field 'age' is given 2 times (46.0, 80.0); give each field once" in str(error)
    else:
        assert "column 'age' appears 2 times; give each column once" in str(error)
    error = _refusal(model.compare_regimens, patient, [COURSE])
    assert [p.column for p in error.problems] == ["age"]
    if isinstance(patient, pd.Series):
        assert _refusal(validate_patient, patient).problems[0].value == [46.0, 80.0]


def test_a_regimen_field_given_twice_is_refused(model):
    course = pd.Series([*COURSE.to_dict().values(), 5.0], index=[*REGIMEN_FIELDS, "dose"])
    error = _refusal(model.score, PATIENT, course)
    assert [p.column for p in error.problems] == ["dose"]
    assert _refusal(Regimen.from_record, course).problems[0].value == [0.5, 5.0]
    # the same schedule once each: a Series is a regimen like a dict
    once = pd.Series(COURSE.to_dict(), dtype=object)
    assert model.score(PATIENT, once).regimen == model.score(PATIENT, COURSE).regimen


def test_a_record_without_a_schedule_is_a_validation_error_not_a_type_error():
    error = _refusal(Regimen.from_record, {"drug": "", "route": None, "age": 50})
    assert [p.column for p in error.problems] == ["drug", "route", "dose"]


def test_a_field_name_that_is_not_text_is_named(model):
    error = _refusal(model.score, {**PATIENT, 5: 1, ("age",): 2}, COURSE)
    assert "field name 5 is not text; expected one of patient_id, age" in str(error)
    assert "field name ('age',) is not text" in str(error)


def test_a_record_as_a_list_of_pairs_is_refused(model):
    pairs = [*PATIENT.items(), ("age", 80.0)]
    error = _refusal(model.score, pairs, COURSE)
    expected = "a patient must be a dict, a Patient, a pandas Series or a DataFrame; got list"
    assert expected in str(error)


def test_a_table_with_a_repeated_column_is_refused_by_validate_and_score(model):
    table = pd.DataFrame([{**PATIENT, **COURSE.to_dict()}])
    table = pd.concat([table, table[["age"]].assign(age=80.0)], axis=1)
    assert "column 'age' appears 2 times" in str(_refusal(validate, table))
    assert "column 'age' appears 2 times" in str(_refusal(model.score, table))
    # a table of schedules is named as such, not as the patient table
    schedules = pd.DataFrame([COURSE.to_dict()] * 2).loc[:, [*COURSE.to_dict(), "dose"]]
    error = _refusal(model.compare_regimens, PATIENT, schedules)
    assert str(error).startswith("1 problem in the table of regimens:\n  column 'dose' appears")


@pytest.mark.parametrize(
    "age",
    [
        np.float32(46.0),
        np.float16(46.0),
        np.int8(46),
        np.uint64(46),
        Decimal("46"),
        Fraction(46),
        "46",
        " 46.0 ",
        np.str_("46"),
    ],
    ids=repr,
)
def test_numbers_of_any_type_score_as_the_number(model, age):
    expected = model.score({**PATIENT, "age": 46.0}, COURSE, drivers=False)
    report = model.score({**PATIENT, "age": age}, COURSE, drivers=False)
    assert report["response"].probability == expected["response"].probability


@pytest.mark.parametrize(
    "missing",
    [None, math.nan, pd.NA, pd.NaT, np.float32("nan"), Decimal("NaN"), "", "NA"],
    ids=repr,
)
def test_every_spelling_of_missing_means_missing(model, missing):
    expected = model.score({**PATIENT, "bmi": None}, COURSE, drivers=False)
    report = model.score({**PATIENT, "bmi": missing}, COURSE, drivers=False)
    assert report["response"].probability == expected["response"].probability
    assert "BMI" in report.missing


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("age", True, "age=True is not a number; expected 12-100 (years)"),
        ("age", np.bool_(False), "age=np.False_ is not a number"),
        ("age", 46 + 0j, "age=(46+0j) is not a number"),
        ("age", b"46", "age=b'46' is not a number"),
        ("age", pd.Timestamp("2020-01-01"), "age=Timestamp('2020-01-01 00:00:00') is not a"),
        ("age", [46], "age=[46] is not a number"),
        ("age", math.inf, "age=inf is not finite"),
        ("age", np.float16("-inf"), "age=np.float16(-inf) is not finite"),
        ("anxious_distress", 2, "anxious_distress=2 is not true or false"),
        ("anxious_distress", 0.5, "anxious_distress=0.5 is not true or false"),
        ("sex", b"female", "sex=b'female' is not one of 'female', 'male'"),
        ("sex", "fe\x00male", "sex='fe\\x00male' is not one of"),
        ("n_failed_treatments", 2.5, "n_failed_treatments=2.5 is not a whole number in 0-30"),
    ],
)
def test_a_value_of_the_wrong_kind_is_named_with_what_is_allowed(model, field, value, says):
    error = _refusal(model.score, {**PATIENT, field: value}, COURSE)
    assert [p.column for p in error.problems] == [field]
    assert says in str(error)
    table = pd.DataFrame([{**PATIENT, **COURSE.to_dict(), field: value}], dtype=object)
    assert says in str(_refusal(validate, table))


def test_a_long_value_is_cut_in_the_message_and_kept_whole_on_the_error(model):
    long = "x" * 100_000
    error = _refusal(model.score, {**PATIENT, "sex": long, long: 1}, COURSE)
    assert len(str(error)) < 1000
    assert {p.value for p in error.problems} == {long, 1}
    assert max(len(line) for line in str(error).splitlines()) < 400


def test_error_messages_are_capped_and_say_how_many_problems_are_not_shown(model):
    table = pd.DataFrame([{**PATIENT, **COURSE.to_dict()}] * 10_000, dtype=object)
    table["sex"] = "s" * 5000  # one cause in every row: one line
    table["madrs_baseline"] = range(100, 10_100)  # a value of its own in each row
    error = _refusal(validate, table)
    text = str(error)
    assert len(error.problems) == 20_000  # every problem, for programs
    assert len(text) <= MAX_MESSAGE_CHARS
    lines = text.splitlines()
    assert "[and 9999 more like it: row 1, row 2, row 3, row 4, row 5, ...]" in lines[1]
    left = int(
        re.fullmatch(
            r"  \.\.\. and (\d+) more problems not shown \(in Python: the "
            r"error's \.problems\)",
            lines[-1],
        ).group(1)
    )
    assert left == 20_000 - 10_000 - (len(lines) - 3)  # every problem counted once
    # many unknown fields, each naming every field it could have been
    many = {**PATIENT, **{f"field_{i}": i for i in range(200)}}
    text = str(_refusal(model.score, many, COURSE))
    assert len(text) <= MAX_MESSAGE_CHARS
    assert re.search(r"\.\.\. and \d+ more problems not shown", text)


def test_a_validation_error_survives_pickling_with_its_problems():
    error = ValidationError([Problem("age", 10**400, "age is outside", row=3)], "patient table")
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems
    assert str(copy) == str(error)


@pytest.mark.parametrize(
    ("regimens", "says"),
    [
        (5, "regimens must be a Regimen, a list of them, a mapping of names to them or a "
         "DataFrame of them, one a row; got int"),
        ("iv", "got str"),
        ({1: COURSE}, "a regimen's name must be text on one line, not empty, of at most 100 "
         "characters (it is printed in the table); got 1"),
        ({" ": COURSE}, "got ' '"),
        ([{**COURSE.to_dict(), "dose": 10**400}], "dose=1000000000000"),
        (["iv"], "regimen must be a Regimen, a mapping of its fields or None; got str"),
    ],
)  # fmt: skip
def test_compare_regimens_refuses_what_is_not_a_set_of_schedules(model, regimens, says):
    assert says in str(_refusal(model.compare_regimens, PATIENT, regimens))


def test_compare_regimens_takes_a_table_of_schedules(model):
    table = pd.DataFrame([COURSE.to_dict(), VALID_REGIMENS[0].to_dict()])
    comparison = model.compare_regimens(PATIENT, table, horizon_day=28)
    assert sorted(comparison.table["regimen"]) == sorted([str(COURSE), str(VALID_REGIMENS[0])])


@pytest.mark.parametrize("drivers", ["yes", None, np.array([True, False]), pd.NA, 1])
def test_drivers_must_be_true_false_or_all(model, drivers):
    error = _refusal(model.score, PATIENT, COURSE, drivers=drivers)
    assert error.problems[0].column == "drivers"


@pytest.mark.parametrize(
    "horizon", [math.nan, pd.NA, True, "soon", 1j, -1, 366, Decimal("sNaN"), 10**400]
)
def test_a_horizon_asked_for_must_be_a_day_in_range(model, horizon):
    error = _refusal(model.score, PATIENT, COURSE, horizon_day=horizon)
    assert error.problems[0].column == "horizon_day"
    assert "is not a day after the first session: above 0 and at most 365" in str(error)


@pytest.mark.parametrize("endpoint", [None, math.nan, pd.NA, pd.NaT, ""], ids=repr)
def test_a_missing_assessment_day_in_the_record_means_the_schedules_end(model, endpoint):
    patient = {**PATIENT, **COURSE.to_dict(), "endpoint_day": endpoint}
    assert model.score(patient).horizon_day == COURSE.endpoint_day


@pytest.mark.parametrize("field", ["age", "n_failed_treatments", "anxious_distress", "sex"])
def test_each_hostile_value_in_each_kind_of_field_is_refused_or_scored(model, field):
    for label, value in HOSTILE_VALUES:
        try:
            report = model.score({**PATIENT, field: value}, COURSE, drivers=False)
        except ValidationError as error:
            refused = error
        else:
            refused = None
            assert _judge(_ends(report)) == "scored", label
        if refused is not None:
            assert len(str(refused)) <= MAX_MESSAGE_CHARS, label
            assert [p.column for p in refused.problems] == [field], label

"""Feature sets and their encoders, without scikit-learn.

A feature set (``features/<name>.toml``) is a list of groups. Each group has a clinical
label and one or more encoder steps, each naming its source columns::

    [groups.severity]
    label = "depression severity"
    steps = [
      { encoder = "numeric", columns = ["madrs_baseline", "hamd17_baseline"] },
      { encoder = "severity_band", columns = ["madrs_baseline"] },
    ]

A set may start from another with ``extends = "core"`` (a shipped set's name, or a path to
a ``.toml`` file, taken from the extending file's directory) and ``drop_groups = [...]``.
Each encoder reads columns of its kind (``numeric`` numbers, ``flag`` yes/no, ``one_hot``
categories, ``cognition`` the cognitive z-scores, ``severity_band`` the baseline MADRS,
``dose_schedule`` every regimen field): anything else is refused when the set is read.

This module parses sets and encodes tables (or one patient's columns) with numpy and
pandas only, so the clinician path (:mod:`ketapredict.clinic`) loads fast;
:class:`ketapredict.FeatureEncoder` wraps it as a scikit-learn transformer. Only baseline
and regimen columns can be features: selecting an outcome, truth, identifier or group
column is an error.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._files import not_a_file
from ._toml import read_toml
from .exceptions import Problem, ValidationError
from .regimen import REGIMEN_FIELDS, exposure
from .schema import COMPARATORS, column

__all__ = [
    "Columns",
    "FeatureSet",
    "encode",
    "feature_map",
    "parse_feature_set",
    "reads_planned_course",
    "sources",
    "spec_from_dict",
    "spec_to_dict",
]

_ALLOWED_ROLES = ("baseline", "regimen")


# --------------------------------------------------------------------------------------------
# Encoders: each turns its source columns into named float columns, and says which clinical
# predictor each output comes from: (name, predictor, label).
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Output:
    name: str
    predictor: str
    label: str


Encoder = Callable[[pd.DataFrame, Sequence[str]], dict[str, np.ndarray]]
_ENCODERS: dict[str, tuple[Encoder, Callable[[Sequence[str]], list[_Output]]]] = {}
# Encoders whose outputs for a column depend on that column alone.
_COLUMNWISE = frozenset({"numeric", "flag", "one_hot"})


def _encoder(name: str, outputs: Callable[[Sequence[str]], list[_Output]]):
    def register(function: Encoder) -> Encoder:
        _ENCODERS[name] = (function, outputs)
        return function

    return register


def _floats(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as floats (booleans as 0/1), NaN where missing or absent from the frame."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    values = frame[name]
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(float)
    if isinstance(values, np.ndarray):
        values = pd.Series(values, dtype=object)
    if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
        values = pd.to_numeric(values.astype(object), errors="coerce")
    return values.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _labels(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    values = frame[name]
    if isinstance(values, np.ndarray):
        return values.astype(object)
    return values.astype(object).to_numpy()


def _same(columns: Sequence[str]) -> list[_Output]:
    return [_Output(c, c, column(c).clinical_label) for c in columns]


@_encoder("numeric", _same)
def _numeric(frame, columns):
    """Numbers as they are; missing stays NaN (the trees route it)."""
    return {c: _floats(frame, c) for c in columns}


@_encoder("flag", _same)
def _flag(frame, columns):
    """Yes/no columns as 1/0; missing stays NaN."""
    return {c: _floats(frame, c) for c in columns}


def _one_hot_outputs(columns):
    return [
        _Output(f"{c}_{category}", c, f"{column(c).clinical_label}: {category}")
        for c in columns
        for category in column(c).categories
    ]


@_encoder("one_hot", _one_hot_outputs)
def _one_hot(frame, columns):
    """One 1/0 column per contract category; a missing value is NaN in all of them."""
    out = {}
    for c in columns:
        values = _labels(frame, c)
        missing = pd.isna(values)
        for category in column(c).categories:
            out[f"{c}_{category}"] = np.where(missing, np.nan, (values == category) * 1.0)
    return out


# MADRS severity bands: 0-6 normal, 7-19 mild, 20-34 moderate, 35-60 severe (Snaith 1986).
_MADRS_BANDS = (7, 20, 35)


@_encoder(
    "severity_band",
    lambda columns: [_Output("madrs_band", "madrs_baseline", "MADRS severity band")],
)
def _severity_band(frame, columns):
    """MADRS band, 0 normal to 3 severe (Snaith 1986 cut-offs)."""
    madrs = _floats(frame, columns[0])
    band = np.digitize(madrs, _MADRS_BANDS).astype(float)
    return {"madrs_band": np.where(np.isnan(madrs), np.nan, band)}


# A composite at least 1 SD below healthy norms marks a cognitive deficit.
_DEFICIT_Z = -1.0


def _cognition_outputs(columns):
    return [
        *_same(columns),
        _Output("cognition_composite", "baseline cognition", "baseline cognition (composite)"),
        _Output(
            "cognitive_deficit", "baseline cognition", "cognitive deficit (composite <= -1 SD)"
        ),
    ]


@_encoder("cognition", _cognition_outputs)
def _cognition(frame, columns):
    """Domain z-scores, their mean and a deficit flag (NaN without a battery).

    No missing-battery indicator: whether a patient was tested says which trial they came
    from, not how they will fare; OutcomeModel integrates an untested battery out
    (ketapredict.imputation).
    """
    domains = {c: _floats(frame, c) for c in columns}
    stacked = np.column_stack(list(domains.values()))
    tested = ~np.isnan(stacked).all(axis=1)
    with np.errstate(invalid="ignore"):
        composite = np.where(
            tested, np.nanmean(np.where(tested[:, None], stacked, 0.0), axis=1), np.nan
        )
    return {
        **domains,
        "cognition_composite": composite,
        "cognitive_deficit": np.where(tested, (composite <= _DEFICIT_Z) * 1.0, np.nan),
    }


_SCHEDULE = (
    ("racemic_iv_equivalent_mg_per_kg", "dose", "dose (racemic IV equivalent)"),
    (
        "peak_exposure_mg_per_kg_per_h",
        "peak exposure",
        "peak exposure (racemic IV equivalent per hour)",
    ),
    ("weekly_exposure_mg_per_kg", "weekly exposure", "weekly exposure (racemic IV equivalent)"),
    (
        "cumulative_exposure_mg_per_kg",
        "cumulative exposure",
        "cumulative exposure by the assessment (racemic IV equivalent)",
    ),
    ("course_weeks", "course length", "course length by the assessment"),
    ("sessions_by_endpoint", "sessions given", "sessions given by the assessment"),
    ("endpoint_day", "assessment timing", "assessment day"),
    ("days_after_last_session", "assessment timing", "days from last session to assessment"),
    ("active_drug", "active drug", "active drug (not a comparator)"),
)
# The units of the encoded schedule features, as reports and SHAP labels print them
DERIVED_UNITS = {
    # the mean of three z-scores (processing speed, working memory, verbal memory)
    "cognition_composite": "SD",
    "racemic_iv_equivalent_mg_per_kg": "mg/kg (racemic IV equivalent)",
    "peak_exposure_mg_per_kg_per_h": "mg/kg/h",
    "weekly_exposure_mg_per_kg": "mg/kg per week",
    "cumulative_exposure_mg_per_kg": "mg/kg",
    "course_weeks": "weeks",
    "endpoint_day": "days",
    "days_after_last_session": "days",
}
_ROUTES = column("route").categories


def _schedule_outputs(columns):
    return [
        *[_Output(name, predictor, label) for name, predictor, label in _SCHEDULE],
        *[_Output(f"comparator_{c}", "comparator", f"comparator: {c}") for c in COMPARATORS],
        *[_Output(f"route_{r}", "route", f"route: {r}") for r in _ROUTES],
        _Output(
            "new_oral_antidepressant",
            "new oral antidepressant",
            column("new_oral_antidepressant").clinical_label,
        ),
    ]


@_encoder("dose_schedule", _schedule_outputs)
def _dose_schedule(frame, columns):
    """The pharmacology of ketapredict.regimen.exposure, and the comparator and route."""
    regimens = {
        c: (_floats(frame, c) if column(c).kind in ("float", "int") else _labels(frame, c))
        for c in columns
        if c in frame.columns
    }
    if "weight_kg" in frame.columns:
        regimens["weight_kg"] = _floats(frame, "weight_kg")
    x = exposure(regimens)
    out = {name: np.asarray(x[name], dtype=float) for name, _, _ in _SCHEDULE}
    for c in COMPARATORS:
        out[f"comparator_{c}"] = (x["comparator"] == c) * 1.0
    route = _labels(frame, "route")
    for r in _ROUTES:
        out[f"route_{r}"] = (route == r) * 1.0
    # not given means none was started, as for Regimen (the contract's default)
    out["new_oral_antidepressant"] = np.nan_to_num(_floats(frame, "new_oral_antidepressant"))
    return out


# The dose-schedule encoder needs these columns whatever the set lists (weight converts
# fixed doses; it is optional).
_SCHEDULE_SOURCES = (*REGIMEN_FIELDS, "endpoint_day")
# what the dose-schedule step reads besides its own columns: the regimen, and the weight
# that turns a fixed dose into mg/kg
_SCHEDULE_READS = (*_SCHEDULE_SOURCES, "weight_kg")


# --------------------------------------------------------------------------------------------
# Feature-set specs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Step:
    encoder: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class _Group:
    name: str
    label: str
    steps: tuple[_Step, ...]


@dataclass(frozen=True)
class FeatureSet:
    """A parsed feature-set file.

    Attributes
    ----------
    name : str
    description : str
    groups : tuple
        Each with a ``name``, a clinical ``label`` and encoder ``steps``.
    source : str
        Where the set was read from.
    assessed_day : float or None
        The day every row's dose-schedule features describe, in place of its
        ``endpoint_day``: an outcome with a time of its own
        (:func:`ketapredict.schema.assessment_day`: dissociation, in the first session).
        None (a file's set): each row's ``endpoint_day``.
    antidepressant_from_day : float or None
        With ``assessed_day`` before it, no row has started a new oral antidepressant (it
        has not begun to act). Set by :class:`~ketapredict.FeatureEncoder` for a set with an
        assessment day; None in a model saved before the rule, which is scored as it was
        trained.
    """

    name: str
    description: str
    groups: tuple[_Group, ...]
    source: str
    assessed_day: float | None = None
    antidepressant_from_day: float | None = None

    @property
    def columns(self) -> list[str]:
        """The contract columns the set reads, in order, each once."""
        seen: dict[str, None] = {}
        for group in self.groups:
            for step in group.steps:
                seen.update(dict.fromkeys(step.columns))
        return list(seen)

    def outputs(self) -> list[tuple[_Output, _Group]]:
        found = []
        for group in self.groups:
            for step in group.steps:
                found += [(out, group) for out in _ENCODERS[step.encoder][1](step.columns)]
        return found


# A set's name in features/: letters, digits, "_" and "-" (then "." too). Anything else, a
# path separator or a leading dot, is not looked up among the shipped sets.
_SET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
# ``extends`` chains this long are a mistake (the shipped sets use one level); the bound also
# stops a cycle spelled with different paths to one file.
_MAX_EXTENDS = 8


def _locate(name_or_path: str | Path) -> tuple[Any, str, str]:
    """Where a feature set is: (a readable path, the source to name in messages, a key that is
    the same for two spellings of one file)."""
    if not isinstance(name_or_path, str | os.PathLike) or not os.fspath(name_or_path):
        # Path("") is the current directory, which would be "a directory, not a .toml file"
        said = (
            "is empty"
            if isinstance(name_or_path, str | os.PathLike)
            else f"must be text or a path; got {type(name_or_path).__name__}"
        )
        raise ValidationError(
            [
                Problem(
                    "features",
                    None,
                    f"the feature set {said}: name a shipped set (core, ...) or a .toml file",
                )
            ],
            "feature set",
        )
    path = Path(name_or_path)
    # os.path: False for a name too long or with a NUL, where pathlib raises
    if path.suffix == ".toml" or os.path.exists(path):
        fault = not_a_file(path, "a .toml file")
        if fault is None:
            return path, str(path), str(path.resolve())
        message = f"feature-set file {str(path)!r} {fault}"
        raise ValidationError([Problem("features", str(name_or_path), message)], "feature set")
    files = resources.files("ketapredict.feature_sets")
    name = str(name_or_path)
    found = files.joinpath(f"{name}.toml") if _SET_NAME.fullmatch(name) else None
    if found is None or not found.is_file():
        available = sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))
        raise ValidationError(
            [
                Problem(
                    "features",
                    name_or_path,
                    f"no feature set named "
                    f"{name_or_path!r}; available: {', '.join(available)} "
                    "(or give a path to a .toml file)",
                )
            ],
            "feature set",
        )
    source = f"features/{name}.toml"
    return found, source, source


# What each encoder can read, by the contract's kind of column: a numeric encoder given a
# category made an all-NaN feature without a word, one-hot given a number failed in fitting.
_READS = {
    "numeric": ("float", "int", "bool"),  # a yes/no as 1/0, as flag reads it
    "flag": ("bool",),
    "one_hot": ("category",),
    "cognition": ("float",),
}


def _kind_problems(encoder: str, columns: Sequence[str]) -> list[str]:
    """Why ``columns`` cannot be read by ``encoder`` (empty if they can)."""
    known = [c for c in columns if _known_column(c)]
    if encoder == "severity_band" and tuple(columns) != ("madrs_baseline",):
        return ["severity_band reads ['madrs_baseline'] only"]
    if encoder == "cognition":
        odd = [c for c in known if column(c).unit != "z-score"]
        return [f"cognition reads cognitive z-scores only (the *_z columns); got {odd}"] * bool(
            odd
        )
    if encoder == "dose_schedule":
        # the pharmacology reads every field of a regimen: a field left out was read as its
        # default (56 mg of esketamine as 56 mg/kg, every course assessed at day 1)
        lacking = [c for c in _SCHEDULE_SOURCES if c not in columns]
        other = [c for c in columns if c not in _SCHEDULE_SOURCES]
        said = []
        if lacking:
            said.append(f"dose_schedule reads every regimen field; add {lacking}")
        if other:
            said.append(f"dose_schedule reads regimen fields only; {other} are not")
        return said
    kinds = _READS.get(encoder)
    if kinds is None:
        return []
    wrong = [f"{c} ({column(c).kind})" for c in known if column(c).kind not in kinds]
    if not wrong:
        return []
    return [f"{encoder} reads {' or '.join(kinds)} columns; got {', '.join(wrong)}"]


def _known_column(name: str) -> bool:
    try:
        column(name)
    except KeyError:
        return False
    return True


def _beside(child: Any, parent: str) -> str:
    """``extends = parent`` as read from the file ``child``: a relative path is taken from
    the child's directory (as a mapping's paths are from the mapping's), not from wherever
    the command runs; a set's name (no ``.toml``) is a shipped set."""
    if (
        isinstance(child, Path)
        and parent.lower().endswith(".toml")
        and not Path(parent).is_absolute()
    ):
        return str(child.parent / parent)
    return parent


def _toml_kind(value: Any) -> str:
    """A TOML value's kind in the words of the TOML specification ("a table", "an array")."""
    kinds = {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}
    kinds |= {int: "an integer", float: "a float"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _checked_groups(
    declared: Mapping[str, Any], problem: Callable, typed: Callable, problems: list
) -> dict[str, _Group]:
    """The groups of a feature set (``{name: {label, steps}}``), each step checked as the
    file format allows: a known encoder, contract columns that may be features, of the kinds
    the encoder reads. Faults go to ``problem``, which appends to ``problems`` (once there is
    one, a group left without steps is no news)."""
    groups: dict[str, _Group] = {}
    for name, body in declared.items():
        if not typed(f"groups.{name}", body, dict, "a table with label and steps"):
            continue
        extra = set(body) - {"label", "steps"}
        for key_ in sorted(extra):
            problem(
                f"groups.{name}.{key_}",
                body[key_],
                f"unknown key groups.{name}.{key_}; expected label and steps",
            )
        label = body.get("label", name)
        typed(f"groups.{name}.label", label, str, "a string")
        declared_steps = body.get("steps", [])
        if not typed(f"groups.{name}.steps", declared_steps, list, "an array of steps"):
            declared_steps = []
        steps = []
        for i, step in enumerate(declared_steps):
            checked = _checked_step(step, f"groups.{name}.steps[{i}]", problem, typed)
            if checked is not None:
                steps.append(checked)
        if not steps and not problems:
            problem(f"groups.{name}.steps", [], f"group {name!r} has no steps")
        groups[name] = _Group(name, str(label), tuple(steps))
    return groups


def _checked_step(step: Any, where: str, problem: Callable, typed: Callable) -> _Step | None:
    """One ``{encoder, columns}`` step, checked (None if it cannot be read at all)."""
    if not typed(where, step, dict, "a table { encoder = ..., columns = [...] }"):
        return None
    encoder = step.get("encoder")
    if not isinstance(encoder, str) or encoder not in _ENCODERS:
        shown = repr(encoder) if len(repr(encoder)) <= 60 else repr(encoder)[:57] + "..."
        problem(
            f"{where}.encoder",
            encoder,
            f"{where}.encoder={shown} is not one of {', '.join(map(repr, _ENCODERS))}",
        )
        return None
    cols = step.get("columns", [])
    if not typed(f"{where}.columns", cols, list, "an array of column names") or not all(
        typed(f"{where}.columns", c, str, "an array of column names") for c in cols
    ):
        return None
    cols = tuple(cols)
    if not cols:
        problem(f"{where}.columns", cols, f"{where} lists no columns")
    for c in cols:
        try:
            role = column(c).role
        except KeyError as error:
            problem(f"{where}.columns", c, str(error.args[0]))
            continue
        if role not in _ALLOWED_ROLES:
            problem(
                f"{where}.columns",
                c,
                f"{c!r} is a {role} column and cannot be a feature (features come from "
                f"{' and '.join(_ALLOWED_ROLES)} columns)",
            )
    for problem_ in _kind_problems(encoder, cols):
        problem(f"{where}.columns", cols, f"{where}: {problem_}")
    return _Step(encoder, cols)


def _check_outputs(spec: FeatureSet, problem: Callable, problems: list) -> None:
    """No output feature made twice (checked once every step could be read)."""
    names = Counter(out.name for out, _ in spec.outputs()) if not problems else Counter()
    for duplicate in sorted(n for n, count in names.items() if count > 1):
        problem("groups", duplicate, f"feature {duplicate!r} is produced twice")


def _parse(name_or_path: str | Path, seen: tuple[str, ...] = ()) -> FeatureSet:
    found, source, key = _locate(name_or_path)
    spec, _ = read_toml(found, source, "feature set", "features")
    problems: list[Problem] = []

    def problem(key: str, value: Any, message: str) -> None:
        problems.append(Problem(key, value, f"{source}: {message}"))

    def typed(key: str, value: Any, kind: type, words: str) -> bool:
        """Whether ``value`` is a ``kind``; if not, a problem saying what was expected."""
        if isinstance(value, kind):
            return True
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        problem(key, value, f"{key} must be {words}; got {_toml_kind(value)} {shown}")
        return False

    unknown = set(spec) - {"description", "groups", "extends", "drop_groups"}
    for name in sorted(unknown):
        problem(
            name,
            spec[name],
            f"unknown key {name!r}; expected description, groups, extends, drop_groups",
        )
    description = spec.get("description", "")
    if typed("description", description, str, "a string") and len(description) > 2000:
        # as a saved model's is checked: a set that trains must give a model that loads
        problem(
            "description", None, f"description is over 2,000 characters ({len(description):,})"
        )
    groups: dict[str, _Group] = {}
    parent = spec.get("extends")
    if parent is not None and typed("extends", parent, str, "a string (a set's name or path)"):
        if key in seen:
            problem("extends", parent, f"extends {parent!r} makes a cycle")
        elif len(seen) >= _MAX_EXTENDS:
            problem("extends", parent, f"more than {_MAX_EXTENDS} sets extend one another")
        else:
            groups = {g.name: g for g in _parse(_beside(found, parent), (*seen, key)).groups}
    dropped = spec.get("drop_groups", [])
    if typed("drop_groups", dropped, list, "an array of group names"):
        for name in dropped:
            if not typed("drop_groups", name, str, "an array of group names"):
                continue
            if groups.pop(name, None) is None:
                problem(
                    "drop_groups",
                    name,
                    f"drop_groups names {name!r}, which is not a group of "
                    f"the extended set ({', '.join(groups) or 'none'})",
                )
    declared = spec.get("groups", {})
    if not typed("groups", declared, dict, "a table of groups ([groups.<name>])"):
        declared = {}
    groups |= _checked_groups(declared, problem, typed, problems)
    if not groups and not problems:
        problem("groups", {}, "the feature set has no groups")
    result = FeatureSet(
        name=Path(str(name_or_path)).stem,
        description=spec.get("description", ""),
        groups=tuple(groups.values()),
        source=source,
    )
    _check_outputs(result, problem, problems)
    if problems:
        raise ValidationError(problems, "feature set")
    return result


# --------------------------------------------------------------------------------------------
# The transformer
# --------------------------------------------------------------------------------------------


def parse_feature_set(name_or_path: str | Path) -> FeatureSet:
    """Read and check a feature set by name (in ``features/``) or path.

    Raises
    ------
    ValidationError
        Naming the file and key of every problem.
    """
    return _parse(name_or_path)


def sources(spec: FeatureSet) -> list[str]:
    """The contract columns a feature set reads (the dose schedule adds its own)."""
    names = spec.columns
    if any(s.encoder == "dose_schedule" for g in spec.groups for s in g.steps):
        names += [c for c in _SCHEDULE_READS if c not in names]
    return names


def encode(
    spec: FeatureSet, frame: Any, reading: Collection[str] | None = None
) -> dict[str, np.ndarray]:
    """Encode a table with a feature set: output name -> float array.

    ``frame`` is a DataFrame, or a :class:`Columns` of one-dimensional arrays; columns it
    lacks become missing (NaN) features. With ``reading``, only the steps that read some of
    those contract columns are encoded, and only their outputs returned (re-encoding the
    features that a change of those columns can change).
    """
    if spec.assessed_day is not None:  # also when re-encoding a draw of the weight
        frame = _assessed(frame, spec.assessed_day, spec.antidepressant_from_day)
    encoded: dict[str, np.ndarray] = {}
    for step in _steps(spec, reading):
        encoded.update(_ENCODERS[step.encoder][0](frame, step.columns))
    if reading is not None:
        return encoded
    return {name: encoded[name] for name in _output_names(spec)}


# An oral antidepressant started with the course begins to act after 2-3 weeks (seed review
# 002; the virtual cohort's own increment is half-way at day 21): before this day it is no
# reason for an outcome assessed then.
ANTIDEPRESSANT_ACTS_FROM_DAY = 14.0


def _assessed(frame: Any, day: float, antidepressant_from: float | None = None) -> Any:
    """The table with every row assessed at ``day`` (the caller's table is not changed).

    Assessed before a newly started oral antidepressant can act (dissociation, in the first
    session), no row has started one: else the flag, which the published trials give only
    with esketamine, would stand for the route, and starting an antidepressant would change
    the first session's dissociation.
    """
    days = np.full(len(frame), day)
    at_day = {"endpoint_day": days}
    if antidepressant_from is not None and day < antidepressant_from:
        at_day["new_oral_antidepressant"] = np.zeros(len(frame))
    if isinstance(frame, pd.DataFrame):
        return frame.assign(**at_day)
    return Columns({**frame, **at_day})


def outputs_reading(spec: FeatureSet, reading: Collection[str]) -> list[str]:
    """The output features that the columns ``reading`` can change: each of their own
    outputs for an encoder that encodes column by column, every output of another step that
    reads one of them."""
    names = []
    for step in _steps(spec, reading):
        outputs = _ENCODERS[step.encoder][1]
        if step.encoder in _COLUMNWISE:
            names += [out.name for c in step.columns if c in reading for out in outputs((c,))]
        else:
            names += [out.name for out in outputs(step.columns)]
    return names


def sources_reading(spec: FeatureSet, reading: Collection[str]) -> list[str]:
    """Every contract column read by the steps that read some of the columns ``reading``."""
    found: dict[str, None] = {}
    for step in _steps(spec, reading):
        found.update(dict.fromkeys(_step_sources(step)))
    return list(found)


def reads_planned_course(spec: FeatureSet) -> bool:
    """Whether the set reads the planned number of sessions other than through the dose
    schedule (whose features count only the sessions given by the assessment), so that
    sessions still to come at the horizon move its models' estimates.

    Examples
    --------
    >>> reads_planned_course(parse_feature_set("core"))
    False
    """
    return any(
        "n_sessions" in step.columns
        for group in spec.groups
        for step in group.steps
        if step.encoder != "dose_schedule"
    )


def _steps(spec: FeatureSet, reading: Collection[str] | None) -> list[_Step]:
    steps = [step for group in spec.groups for step in group.steps]
    if reading is None:
        return steps
    return [step for step in steps if not set(_step_sources(step)).isdisjoint(reading)]


def _step_sources(step: _Step) -> tuple[str, ...]:
    """The contract columns a step reads."""
    if step.encoder == "dose_schedule":
        return (*step.columns, *_SCHEDULE_READS)
    return step.columns


_NAMES: dict[int, tuple[FeatureSet, list[str]]] = {}


def _output_names(spec: FeatureSet) -> list[str]:
    # the set is frozen, so its outputs never change: list them once
    known = _NAMES.get(id(spec))
    if known is None or known[0] is not spec:
        known = _NAMES[id(spec)] = (spec, [out.name for out, _ in spec.outputs()])
    return known[1]


class Columns(dict):
    """Named one-dimensional arrays with the little of DataFrame the encoders use
    (``columns``, ``len``, ``frame[name]``): encoding one patient without pandas' overhead.
    """

    @property
    def columns(self):
        return self.keys()

    def __len__(self) -> int:
        return len(next(iter(self.values()))) if dict.__len__(self) else 0


def feature_map(spec: FeatureSet) -> pd.DataFrame:
    """Indexed by output feature: ``predictor``, ``label``, ``group``, ``group_label`` and
    ``encoder`` (the encoder that made it, whatever the set names its group)."""
    rows = [
        {
            "feature": out.name,
            "predictor": out.predictor,
            "label": out.label,
            "group": group.name,
            "group_label": group.label,
            "encoder": step.encoder,
        }
        for group in spec.groups  # the order of FeatureSet.outputs
        for step in group.steps
        for out in _ENCODERS[step.encoder][1](step.columns)
    ]
    return pd.DataFrame(rows).set_index("feature")


def spec_to_dict(spec: FeatureSet) -> dict[str, Any]:
    """A feature set as plain data, saved with a model so that it needs no file."""
    day = {} if spec.assessed_day is None else {"assessed_day": spec.assessed_day}
    if spec.antidepressant_from_day is not None:
        day["antidepressant_from_day"] = spec.antidepressant_from_day
    return {
        **day,
        "name": spec.name,
        "description": spec.description,
        "source": spec.source,
        "groups": [
            {
                "name": g.name,
                "label": g.label,
                "steps": [{"encoder": s.encoder, "columns": list(s.columns)} for s in g.steps],
            }
            for g in spec.groups
        ],
    }


def checked_assessed_day(day: Any) -> float | None:
    """An assessment day for :attr:`FeatureSet.assessed_day`: None, or a number of days
    above 0 and within the contract's range of ``endpoint_day`` (ValueError otherwise)."""
    if day is None:
        return None
    spec = column("endpoint_day")
    if (
        isinstance(day, bool)
        or not isinstance(day, int | float | np.integer | np.floating)
        or not spec.low < day <= spec.high  # NaN fails too
    ):
        raise ValueError(
            f"assessed_day={str(day)[:40]} is not a day after the first session (above "
            f"{spec.low:g}, at most {spec.high:g})"
        )
    return float(day)


# A saved feature set's texts at most: a description as a set file allows (_parse), a name
# (a file's stem) and a source (its path) as file systems do.
_TEXT_LIMITS = {"name": 255, "description": 2000, "source": 4096}


def spec_from_dict(state: Mapping[str, Any]) -> FeatureSet:
    """The feature set written by :func:`spec_to_dict`, checked as a feature-set file is
    (a model file is untrusted: a step with no columns loaded, then failed at scoring).

    Raises
    ------
    ValueError
        Naming every fault (up to three, then how many more): an unknown key, a text that is
        not one, an assessment day that is not one, a group or step the file format refuses.
    """
    problems: list[Problem] = []

    def problem(key: str, value: Any, message: str) -> None:
        problems.append(Problem(key, value, message))

    def typed(key: str, value: Any, kind: type, words: str) -> bool:
        if isinstance(value, kind):
            return True
        problem(key, value, f"{key} must be {words}; got {type(value).__name__}")
        return False

    if not isinstance(state, Mapping):
        raise ValueError(f"feature_set must be an object; got {type(state).__name__}")
    fields = {"name", "description", "source", "groups"}
    optional = {"assessed_day", "antidepressant_from_day"}
    unknown = sorted(str(k)[:40] for k in set(state) - fields - optional)
    lacking = sorted(fields - set(state))
    if unknown or lacking:
        raise ValueError(f"feature_set: missing {lacking}, unknown {unknown[:5]}")
    for key, limit in _TEXT_LIMITS.items():
        if typed(key, state[key], str, "text") and len(state[key]) > limit:
            problem(key, None, f"{key} is over {limit:,} characters ({len(state[key]):,})")
    declared: dict[str, Any] = {}
    if typed("groups", state["groups"], list, "a list of groups"):
        for i, group in enumerate(state["groups"]):
            if not (isinstance(group, Mapping) and set(group) == {"name", "label", "steps"}):
                problem(f"groups[{i}]", None, f"groups[{i}] is not {{name, label, steps}}")
            elif not isinstance(group["name"], str) or group["name"] in declared:
                problem(f"groups[{i}].name", None, f"groups[{i}].name is not a new name")
            else:
                declared[group["name"]] = {"label": group["label"], "steps": group["steps"]}
    groups = _checked_groups(declared, problem, typed, problems)
    if not groups and not problems:
        problem("groups", [], "the feature set has no groups")
    try:
        day = checked_assessed_day(state.get("assessed_day"))
    except ValueError as error:
        problem("assessed_day", None, str(error))
        day = None
    try:
        antidepressant = checked_assessed_day(state.get("antidepressant_from_day"))
    except ValueError as error:
        problem("antidepressant_from_day", None, str(error).replace("assessed_day", "day"))
        antidepressant = None
    spec = FeatureSet(
        assessed_day=day,
        antidepressant_from_day=antidepressant,
        name=str(state["name"]),
        description=str(state["description"]),
        source=str(state["source"]),
        groups=tuple(groups.values()),
    )
    _check_outputs(spec, problem, problems)
    if problems:
        shown = "; ".join(p.message[:200] for p in problems[:3])
        more = len(problems) - 3
        raise ValueError(
            f"feature_set: {shown}" + (f"; and {more} more problems" if more > 0 else "")
        )
    return spec

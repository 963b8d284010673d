"""Mapping files: how a study's own files become the data contract's patient courses.

A mapping is a TOML file (or the same structure as a dict) that says, for one study, which
source columns fill which contract columns (with value maps such as ``M -> male``), which
session or visit is the baseline and which are follow-ups (with their day after the first
session of the course), which arm each participant had in each period, and the
:class:`~ketapredict.Regimen` of every arm. Nothing is guessed: a session, visit, arm code or
value the mapping does not name is reported, never assumed.

The same file format serves BIDS datasets (``format = "bids"``: ``participants.tsv`` and
``phenotype/*.tsv``) and CDISC ADaM datasets (``format = "adam"``: ADSL and a basic data
structure dataset such as ADQS, as SAS XPORT or Dataset-JSON). See :func:`load_mapping` for
every key.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic

from .._files import checked_path, not_a_file
from .._toml import allowed_keys, read_toml
from ..exceptions import Problem, ValidationError
from ..regimen import REGIMEN_FIELDS, Regimen
from ..schema import _value_problem, column, columns, visit_label

__all__ = ["Arm", "Session", "StudyMapping", "ValueMap", "load_mapping"]

# Scales whose visits are the contract's visit families (``madrs_d2``...), with a baseline.
SCALES = ("madrs", "hamd17", "ssi")
# Contract columns a mapping fills from the subject-level file: the baseline fields, less
# the baseline scores (those come from the baseline session of [scores]) and diagnosis
# (its own key, because it also decides who is in the study).
_SUBJECT_COLUMNS = tuple(
    c
    for c in columns("baseline")
    if c != "diagnosis" and c.removesuffix("_baseline") not in SCALES
)


class _Strict(pydantic.BaseModel):
    # strict: a value of another type is refused, not converted (day = true is not day 1)
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)


class ValueMap(_Strict):
    """A source column and, optionally, how its values translate.

    Source values are matched as written (after trimming spaces); a value the map does not
    list is an error, except for ``diagnosis``, where the map also selects the participants
    (others are dropped and counted).
    """

    column: str = pydantic.Field(min_length=1)
    # written `values` in the file; `translate` here, apart from pandas' `.values`
    translate: dict[str, str | float | bool] | None = pydantic.Field(default=None, alias="values")


class Session(_Strict):
    """What one session (BIDS) or visit value (ADaM) is.

    Exactly one of ``baseline = true``, ``day = <days after the course's first session>`` or
    ``skip = true`` (a session the study has but the courses do not use, e.g. screening).
    ``arm`` or ``period`` say which course a session belongs to when a participant has more
    than one (crossover); a baseline without them is shared by all of a participant's courses.
    """

    baseline: bool = False
    day: float | None = pydantic.Field(default=None, gt=0, le=365)
    skip: bool = False
    arm: str | None = None
    period: int | None = pydantic.Field(default=None, ge=1, le=10)

    @pydantic.model_validator(mode="after")
    def _one_kind(self) -> Session:
        kinds = [self.baseline, self.day is not None, self.skip]
        if sum(kinds) != 1:
            raise ValueError(
                "give exactly one of baseline = true, day = <days after the first session> "
                "or skip = true"
            )
        _whole_minutes(self.day)
        return self


def _whole_minutes(day: float | None) -> None:
    """Visit columns are named by whole days, hours or minutes (``madrs_h4``)."""
    if day is not None:
        visit_label(day)  # raises ValueError, which pydantic reports with the key


class Arm(_Strict):
    """One arm: the keyword arguments of :class:`~ketapredict.Regimen` (checked by it, with
    its defaults), and optionally ``endpoint_day``, the day its response and remission are
    assessed (by default its last mapped follow-up)."""

    model_config = pydantic.ConfigDict(extra="allow", frozen=True)
    endpoint_day: float | None = pydantic.Field(default=None, gt=0, le=365)

    @pydantic.model_validator(mode="after")
    def _minutes(self) -> Arm:
        _whole_minutes(self.endpoint_day)
        return self

    def regimen(self) -> Regimen:
        fields = dict(self.model_extra or {})
        unknown = sorted(set(fields) - set(REGIMEN_FIELDS))
        if unknown:
            raise ValidationError(
                [
                    Problem(
                        k,
                        fields[k],
                        f"unknown key {k!r}; a Regimen has {', '.join(REGIMEN_FIELDS)}",
                    )
                    for k in unknown
                ],
                "regimen",
            )
        return Regimen(**fields)


class Periods(_Strict):
    """Which subject-level column holds the arm code of each period, and what the codes mean.

    One column is a parallel-arm study (period 1 only). An empty code (``n/a``) means the
    participant never started that period; it is counted, not an error.
    """

    columns: list[str] = pydantic.Field(min_length=1, max_length=10)
    codes: dict[str, str] = pydantic.Field(min_length=1)


class Visits(_Strict):
    """ADaM only: which efficacy variable names the visit, and what each of its values is."""

    variable: str = "AVISIT"
    values: dict[str, Session] = pydantic.Field(min_length=1)


class AdamVariables(_Strict):
    """ADaM only: the variable names of the datasets, by their ADaM defaults."""

    subject: str = "USUBJID"
    parameter: str = "PARAMCD"
    value: str = "AVAL"
    # the record's period in a crossover (ADaM APERIOD); absent in parallel studies
    period: str | None = "APERIOD"
    # analysis flags a record must carry as "Y" to be used (e.g. ANL01FL)
    flags: list[str] = pydantic.Field(default_factory=list)


class StudyMapping(_Strict):
    """A checked mapping file; build one with :func:`load_mapping`."""

    format: Literal["bids", "adam"]
    trial_id: str | None = None
    path: str | None = None  # bids: the dataset root, relative to the mapping file
    adsl: str | None = None  # adam: the subject-level dataset
    efficacy: str | None = None  # adam: the questionnaire or efficacy dataset (e.g. ADQS)
    diagnosis: str | ValueMap
    columns: dict[str, str | ValueMap] = pydantic.Field(default_factory=dict)
    scores: dict[str, str] = pydantic.Field(min_length=1)
    sessions: dict[str, Session] = pydantic.Field(default_factory=dict)
    visits: Visits | None = None
    adam: AdamVariables = AdamVariables()
    periods: Periods | None = None
    arms: dict[str, Arm] = pydantic.Field(min_length=1)
    # subject-level column -> the values a participant must have to be kept (others counted)
    keep: dict[str, list[str]] = pydantic.Field(default_factory=dict)
    # a course without its baseline MADRS: an error, or dropped and counted
    incomplete: Literal["error", "drop"] = "error"
    # where the file was read from (relative paths in it resolve against its directory)
    origin: str | None = None

    @property
    def entries(self) -> dict[str, Session]:
        """Sessions (BIDS) or visit values (ADaM) by their label."""
        return dict(self.sessions) if self.format == "bids" else dict(self.visits.values)

    def resolve(self, relative: str | None) -> Path | None:
        """A path named in the mapping, resolved against the mapping file's directory."""
        if relative is None:
            return None
        base = Path(self.origin).parent if self.origin else Path.cwd()
        return base / relative


def _check(mapping: StudyMapping) -> list[Problem]:
    """Rules that span keys: known contract columns and scales, arms that exist, the
    keys each format needs."""
    problems = []

    def add(field: str, value: Any, message: str) -> None:
        problems.append(Problem(field, value, f"{field}={value!r}: {message}"))

    for name in mapping.columns:
        if name not in _SUBJECT_COLUMNS:
            close = difflib.get_close_matches(name, _SUBJECT_COLUMNS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            add(
                f"columns.{name}",
                name,
                f"not a baseline column the mapping can fill{hint}; expected one of "
                + ", ".join(_SUBJECT_COLUMNS),
            )
    # one source column read as two fields (bmi = "age") is a slip: every course's BMI
    # would be its age
    read_by: dict[str, list[str]] = {}
    for name, source in mapping.columns.items():
        column_ = source if isinstance(source, str) else source.column
        read_by.setdefault(column_, []).append(name)
    for column_, names in read_by.items():
        if len(names) > 1:
            add(
                f"columns.{names[1]}",
                column_,
                f"the source column is already read as {names[0]}; each field reads a "
                "column of its own",
            )
    if "madrs" not in mapping.scores:
        add("scores", sorted(mapping.scores), "the MADRS is required (scores.madrs)")
    for scale in mapping.scores:
        if scale not in SCALES:
            add(f"scores.{scale}", scale, f"not a scale of the contract; expected {SCALES}")
    entries_name = "sessions" if mapping.format == "bids" else "visits.values"
    if mapping.format == "bids" and not mapping.sessions:
        add("sessions", {}, "a BIDS mapping names its sessions ([sessions])")
    if mapping.format == "adam":
        if mapping.visits is None:
            add("visits", None, "an ADaM mapping names its visits ([visits] with values)")
            return problems
        if mapping.sessions:
            add("sessions", list(mapping.sessions), "BIDS only; an ADaM mapping uses [visits]")
    entries = mapping.entries
    if not any(s.baseline for s in entries.values()):
        add(entries_name, list(entries), "no session is the baseline (baseline = true)")
    if not any(s.day is not None for s in entries.values()):
        add(entries_name, list(entries), "no session is a follow-up (day = ...)")
    arms = set(mapping.arms)
    visits: dict[tuple, str] = {}
    for label, session in entries.items():
        if session.day is None:
            continue
        for arm in [session.arm] if session.arm else sorted(arms):
            key = (arm, session.period, visit_label(session.day))
            if key in visits:
                add(
                    f"{entries_name}.{label}.day",
                    session.day,
                    f"{visits[key]!r} is the same visit ({key[2]}) of arm {arm!r}",
                )
            visits[key] = label
    for label, session in entries.items():
        if session.arm is not None and session.arm not in arms:
            add(
                f"{entries_name}.{label}.arm", session.arm, f"no such arm; arms are {sorted(arms)}"
            )
    if mapping.periods is not None:
        for code, arm in mapping.periods.codes.items():
            if arm not in arms:
                add(f"periods.codes.{code}", arm, f"no such arm; arms are {sorted(arms)}")
    elif len(arms) > 1:
        add(
            "periods",
            None,
            f"the mapping has {len(arms)} arms, so it must say which arm each participant had "
            "([periods] with columns and codes; one column for a parallel-arm study)",
        )
    for name, arm in mapping.arms.items():
        try:
            arm.regimen()
        except ValidationError as error:
            problems.extend(
                Problem(f"arms.{name}.{p.column}", p.value, f"arms.{name}: {p.message}")
                for p in error.problems
            )
    if isinstance(mapping.diagnosis, str):
        allowed = column("diagnosis").categories
        if mapping.diagnosis not in allowed:
            add("diagnosis", mapping.diagnosis, f"expected a column map or one of {allowed}")
    # what a value map translates to is judged here, once, not in every participant's row
    maps = [("diagnosis", mapping.diagnosis), *mapping.columns.items()]
    for name, spec in maps:
        if (
            isinstance(spec, str)
            or not spec.translate
            or name not in (*_SUBJECT_COLUMNS, "diagnosis")
        ):
            continue
        for code, target in spec.translate.items():
            _, fault = _value_problem(column(name), target, name)
            if fault is not None:
                field = "diagnosis" if name == "diagnosis" else f"columns.{name}"
                problems.append(
                    Problem(f"{field}.values.{code}", target, f"{field}.values.{code}: {fault}")
                )
    return problems


def load_mapping(source: str | Path | Mapping[str, Any]) -> StudyMapping:
    """Read and check a mapping file.

    Keys (``[columns]``, ``[scores]``, ``[sessions]``, ``[periods]`` and ``[arms.NAME]`` are
    tables):

    - ``format``: ``"bids"`` or ``"adam"``.
    - ``trial_id``: the study's name in the table (default: the BIDS dataset's name, or the
      ADaM ``STUDYID``).
    - ``diagnosis``: one diagnosis for everyone (``"TRD"``), or ``{ column, values }``
      mapping source groups to ``MDD``, ``TRD`` or ``bipolar``; participants of other
      groups (e.g. healthy volunteers) are dropped and counted.
    - ``[columns]``: contract baseline column = source column, or ``{ column, values }``.
    - ``[scores]``: contract scale (``madrs``, ``hamd17``, ``ssi``) = the phenotype column
      (BIDS) or ``PARAMCD`` value (ADaM) holding its total.
    - ``[sessions]`` (BIDS) or ``[visits]`` (ADaM: ``variable`` such as ``"AVISIT"`` and a
      ``[visits.values]`` table): each label is ``{ baseline = true }``, ``{ day = D }`` or
      ``{ skip = true }``, optionally with ``arm`` or ``period`` for crossovers.
    - ``[periods]``: ``columns``, the subject-level columns holding each period's arm code
      (``participants.tsv`` or ADSL, e.g. ``["TRT01A", "TRT02A"]``), and ``codes``, code ->
      arm. Needed whenever there is more than one arm.
    - ``[arms.NAME]``: the arm's :class:`~ketapredict.Regimen` fields, and optionally
      ``endpoint_day`` (default: the arm's last follow-up day in the mapping).
    - ``[adam]`` (ADaM only): ``subject``, ``parameter``, ``value``, ``period`` variable
      names (ADaM defaults) and ``flags`` that must be ``"Y"``.
    - ``keep``: ``{ column = [values] }`` participants must match (others counted).
    - ``incomplete``: ``"error"`` (default) or ``"drop"``: what to do with a course that
      has no baseline MADRS.
    - ``path`` (BIDS root), ``adsl`` and ``efficacy`` (ADaM files): where the data are,
      relative to the mapping file; the readers' arguments take precedence.

    Parameters
    ----------
    source : str, path-like or mapping
        A TOML file, or its contents already parsed.

    Returns
    -------
    StudyMapping

    Raises
    ------
    ValidationError
        Naming every key at fault, its value and what is allowed.

    Examples
    --------
    >>> from ketapredict.io import load_mapping
    >>> mapping = load_mapping({
    ...     "format": "bids", "diagnosis": "TRD", "scores": {"madrs": "MADRS_Total"},
    ...     "sessions": {"ses-b0": {"baseline": True}, "ses-d1": {"day": 1}},
    ...     "arms": {"ketamine": {"drug": "ketamine", "route": "iv", "dose": 0.5,
    ...                           "infusion_minutes": 40}}})
    >>> mapping.entries["ses-d1"].day
    1.0
    >>> load_mapping({"format": "bids", "diagnosis": "TRD", "scores": {"madrs": "M"},
    ...               "sessions": {"ses-1": {"day": 1, "baseline": True}},
    ...               "arms": {"k": {"drug": "ketamine", "route": "iv", "dose": 0.5}}})
    Traceback (most recent call last):
    ...
    ketapredict.exceptions.ValidationError: 1 problem in the mapping file:
      sessions.ses-1: give exactly one of baseline = true, day = <days after the first ...
    """
    origin = None
    where = "mapping file"
    if isinstance(source, str | os.PathLike):
        path = checked_path(source, "mapping", "a mapping file (.toml)")
        where = f"mapping file {str(path)!r}"
        fault = not_a_file(path, "a .toml file")
        if fault is not None:
            raise ValidationError([Problem(None, str(path), f"{str(path)!r} {fault}")], where)
        data, _ = read_toml(path, repr(str(path)), where)
        origin = str(path.resolve())
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        raise ValidationError(
            [
                Problem(
                    "mapping",
                    None,
                    "the mapping must be a path to its .toml file or its contents as a dict; "
                    f"got {type(source).__name__}",
                )
            ],
            "arguments",
        )
    if "origin" in data:
        raise ValidationError([Problem("origin", data["origin"], "origin is not a key")], where)
    try:
        mapping = StudyMapping.model_validate({**data, "origin": origin})
    except pydantic.ValidationError as error:
        raise ValidationError([_problem(e) for e in error.errors()], where) from None
    problems = _check(mapping)
    if problems:
        raise ValidationError(problems, where)
    return mapping


def _problem(error: Mapping[str, Any]) -> Problem:
    # pydantic's location: drop the union-member names it inserts ("str", "ValueMap")
    loc = [str(part) for part in error["loc"] if part not in ("str", "ValueMap")]
    field = ".".join(loc) or None
    value = error.get("input")
    if error["type"] == "missing":
        return Problem(field, None, f"{field} is required")
    if error["type"] == "extra_forbidden":
        known = allowed_keys(StudyMapping, loc, hidden=("origin",))
        return Problem(field, value, f"{field}: unknown key{known}")
    message = error["msg"].removeprefix("Value error, ")
    shown = "" if isinstance(value, dict) else f"={value!r}"
    return Problem(field, value, f"{field}{shown}: {message}")

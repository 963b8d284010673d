"""From a study's subjects and score records to the contract's patient courses.

Both readers (BIDS and ADaM) bring their files to the same two long tables, and this module
does the rest, the same way for both: participants kept or dropped (and counted), source
values mapped, each score record placed in its course (a participant's period and arm) at
its day, the baseline found, response and remission derived as in the virtual cohort, and
the result validated against the data contract. Every problem is collected and raised as one
:class:`~ketapredict.ValidationError`.

The two long tables:

- ``subjects``: one row per participant, :data:`SUBJECT` (the identifier), :data:`WHERE`
  (file and line, for messages) and the source's subject-level columns as text.
- ``records``: one row per score value, ``subject``, ``label`` (session or visit),
  ``scale`` (contract scale), ``value`` (text), ``period`` (the record's own period, ADaM
  only, else missing) and ``where``.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import Problem, ValidationError, short_repr
from ..regimen import below_any_studied
from ..schema import (
    REMISSION_MAX,
    RESPONSE_FRACTION,
    _is_missing,
    _value_problem,
    column,
    columns,
    endpoint_scores,
    validate,
    visit_days,
    visit_label,
)
from ..schema import (
    _number as _contract_number,
)
from .mapping import StudyMapping, ValueMap

__all__ = ["SUBJECT", "WHERE", "IngestSummary", "assemble"]

# The subject table's own columns, named so no source column can clash with them.
SUBJECT = "__subject__"
WHERE = "__where__"


@dataclass
class IngestSummary:
    """What a reader read, kept and dropped; ``str()`` gives the printed summary.

    Attributes
    ----------
    source : str
        The files read.
    subject_file : str
        The subject-level file (``participants.tsv``, ADSL).
    participants : int
        Participants in the subject-level file.
    patients : int
        Participants kept (with at least one course).
    dropped : dict of str to int
        Participants (or courses) left out, by reason; nothing is left out uncounted.
    courses : dict of str to int
        Courses per arm.
    visits : dict of str to int
        Courses with a value, per visit column.
    endpoints : dict of str to float
        The assessment day of each arm's response and remission.
    unassessed : dict of str to int
        Courses without response (no MADRS at the endpoint), per arm.
    ignored_records : dict of str to int
        Score records not used, by reason (a session the mapping skips, an analysis flag
        not set).
    columns_not_read : list of str
        The subject file's columns the mapping does not read.
    notes : list of str
        What the mapping holds that a reader should check, such as an arm's dose below any
        studied (a unit mixed up: 0.5 mg for 0.5 mg/kg).
    """

    source: str
    subject_file: str = ""
    participants: int = 0
    patients: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    courses: dict[str, int] = field(default_factory=dict)
    visits: dict[str, int] = field(default_factory=dict)
    endpoints: dict[str, float] = field(default_factory=dict)
    unassessed: dict[str, int] = field(default_factory=dict)
    ignored_records: dict[str, int] = field(default_factory=dict)
    columns_not_read: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def __str__(self) -> str:
        kept = sum(self.courses.values())
        lines = [
            f"Read {self.source}",
            f"  {self.participants} participants in {self.subject_file}; {self.patients} kept, "
            f"with {kept} course{'s' if kept != 1 else ''}",
        ]
        for reason, n in self.dropped.items():
            lines.append(f"  left out: {n} ({reason})")
        lines.append("  courses per arm:")
        for arm, n in self.courses.items():
            day = self.endpoints.get(arm)
            missing = self.unassessed.get(arm, 0)
            lines.append(
                f"    {arm}: {n} (response assessed at day {day:g}"
                + (f"; {missing} without a MADRS then" if missing else "")
                + ")"
            )
        lines.append("  visits available (courses with a value):")
        width = max((len(v) for v in self.visits), default=0)
        for name, n in self.visits.items():
            lines.append(f"    {name:<{width}}  {n}")
        for reason, n in self.ignored_records.items():
            lines.append(f"  score records not used: {n} ({reason})")
        if self.columns_not_read:
            names = self.columns_not_read
            lines.append(
                f"  columns of {self.subject_file} the mapping does not read (a field of the "
                "data contract among them is read once [columns] maps it): "
                + ", ".join(names[:12])
                + (f" and {len(names) - 12} more" if len(names) > 12 else "")
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _text(value: Any) -> str | None:
    """A source cell as stripped text, or None when missing (BIDS writes ``n/a``)."""
    if _is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1.0 read from XPT is the code "1"
    return str(value).strip()


def did_you_mean(given: str, found: list[str]) -> str:
    """`` (did you mean 'X'?)`` for the name in ``found`` closest to ``given`` (the same
    but for case first), or ``""``."""
    near = [f for f in found if f.casefold() == given.casefold()]
    near = near or difflib.get_close_matches(given, found, n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _shown(score: float | None) -> str:
    """A score as a message shows it: ``43``, ``42.5``, ``n/a``."""
    return "n/a" if score is None else f"{score:g}"


def _folded(text: str) -> str:
    """Text compared without case or spaces (``"mdd "`` is ``"MDD"``)."""
    return "".join(text.split()).casefold()


def _number(value: Any) -> float | None:
    """A score as a float: None when missing; ValueError (with the text) when it is not a
    finite number. Read as the data contract reads numbers (:func:`ketapredict.schema.
    _number`): ``"4_3"`` is a typo, not 43, and an integer too large for a float is not
    finite."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        number, shown = _contract_number(value), short_repr(value)
        if number is not None and np.isnan(number):
            return None
    else:
        shown = _text(value)
        if shown is None:
            return None
        number = _contract_number(shown)
    if number is None or not np.isfinite(number):
        raise ValueError(shown)
    return number


def _mapped(
    spec: str | ValueMap, row: pd.Series, name: str, where: str, problems: list[Problem]
) -> Any:
    """The contract value of ``name`` for one subject row (None when missing)."""
    source = spec if isinstance(spec, str) else spec.column
    value = _text(row.get(source))
    if value is None or isinstance(spec, str) or spec.translate is None:
        return value
    if value in spec.translate:
        return spec.translate[value]
    problems.append(
        Problem(
            name,
            value,
            f"{where}: {source}={value!r} is not in the mapping's values for {name} "
            f"({', '.join(map(repr, spec.translate))})",
        )
    )
    return None


def _subject_sources(mapping: StudyMapping) -> list[tuple[str, str]]:
    """(mapping key, subject-file column) of every column the mapping reads per subject."""
    needed = [("diagnosis", mapping.diagnosis)] if not isinstance(mapping.diagnosis, str) else []
    needed += list(mapping.columns.items())
    sources = [(name, s if isinstance(s, str) else s.column) for name, s in needed]
    sources += (
        [(f"periods.columns[{i}]", c) for i, c in enumerate(mapping.periods.columns)]
        if (mapping.periods)
        else []
    )
    return sources + [(f"keep.{c}", c) for c in mapping.keep]


def _missing_columns(
    mapping: StudyMapping, subjects: pd.DataFrame, what: str, problems: list[Problem]
) -> bool:
    sources = _subject_sources(mapping)
    # a required field the mapping does not give: said of the mapping, not of the file (which
    # may well have the column: "required column 'age' is missing" sent users to the file)
    given = {*mapping.columns, "diagnosis", "madrs_baseline"}  # the last two by their keys
    offered = [c for c in subjects.columns if c not in (SUBJECT, WHERE)]
    before = len(problems)
    for name in columns("baseline"):
        if column(name).required and name not in given:
            near = [c for c in offered if c.casefold() == name.casefold()]
            near = near or difflib.get_close_matches(name, offered, n=1)
            add = (
                f"{what} has a column {near[0]!r}: add {name} = {near[0]!r}"
                if near
                else f"add {name} = '<the column of {what} that holds it>'"
            )
            problems.append(
                Problem(
                    f"columns.{name}",
                    None,
                    f"the mapping's [columns] has no entry for {name} "
                    f"({column(name).description}), which is required; {add}",
                )
            )
    absent = [(name, c) for name, c in sources if c not in subjects.columns]
    for name, c in absent:
        problems.append(
            Problem(
                name,
                c,
                f"{what} has no column {c!r} (mapped to {name}); its columns are "
                + ", ".join(map(repr, subjects.columns.drop([SUBJECT, WHERE]))),
            )
        )
    return bool(absent) or len(problems) > before


def _course_key(
    subject: str,
    session,
    record_period: Any,
    arms_of: dict[str, dict[int, str]],
    where: str,
    problems: list[Problem],
    started: str = "",
) -> int | None:
    """The period of the course a record belongs to; 0 for a baseline shared by all of
    the participant's courses; None (with a problem) when it cannot be told."""
    periods = arms_of[subject]
    period = session.period
    if record_period is not None:
        if period is not None and period != record_period:
            problems.append(
                Problem(
                    "period",
                    record_period,
                    f"{where}: the record's period {record_period} is not the visit's "
                    f"mapped period {period}",
                )
            )
            return None
        period = record_period
    if period is not None:
        if period not in periods:
            problems.append(
                Problem(
                    "period",
                    period,
                    f"{where}: its participant has no period {period} ("
                    + (
                        f"only period{'s' * (len(periods) > 1)} "
                        + ", ".join(str(k) for k in sorted(periods))
                        if periods
                        else "none"
                    )
                    + f"{started})",
                )
            )
            return None
        if session.arm is not None and periods[period] != session.arm:
            problems.append(
                Problem(
                    "arm",
                    session.arm,
                    f"{where}: the session is mapped to arm {session.arm!r}, but its participant "
                    f"had {periods[period]!r} in period {period}",
                )
            )
            return None
        return period
    if session.arm is not None:
        matches = [k for k, arm in periods.items() if arm == session.arm]
        if len(matches) == 1:
            return matches[0]
        problems.append(
            Problem(
                "arm",
                session.arm,
                f"{where}: its participant "
                + (
                    f"had arm {session.arm!r} in {len(matches)} periods, so the session's "
                    "period cannot be told"
                    if matches
                    else f"never had arm {session.arm!r} (its arms: "
                    f"{', '.join(periods.values()) or 'none'})"
                ),
            )
        )
        return None
    if session.baseline:
        return 0
    if len(periods) == 1:
        return next(iter(periods))
    problems.append(
        Problem(
            "period",
            None,
            f"{where}: its participant has {len(periods)} periods and the session names "
            "neither its arm nor its period",
        )
    )
    return None


def _strangers(
    found: dict[Any, Problem], listed: set[Any], any_known: bool, subject_file: str, file: str
) -> list[Problem]:
    """The problems of records whose participant the subject file lacks: one for each
    such participant, or, when no record names a participant of the subject file, one
    for all (the files write identifiers differently, and a problem for each participant
    hid that), saying how many match without case and a ``sub-`` prefix. Identifiers
    themselves are never shown."""
    if any_known or len(found) < 2:
        return list(found.values())
    keys = {_id_key(s) for s in listed if isinstance(s, str)}
    close = sum(isinstance(s, str) and _id_key(s) in keys for s in found)
    hint = (
        f": {close:,} of them match one when case and a 'sub-' prefix are ignored; write the "
        f"identifiers as {subject_file} does"
        if close
        else ": do the files write identifiers differently? (first: "
        f"{next(iter(found.values())).message})"
    )
    return [
        Problem(
            "participant_id",
            None,
            f"none of the {len(found):,} participants of {file} is in {subject_file}{hint}",
        )
    ]


def _id_key(identifier: str) -> str:
    """An identifier without case, spaces and a BIDS ``sub-`` prefix."""
    folded = "".join(identifier.split()).casefold()
    return folded.removeprefix("sub-")


def _started(mapping: StudyMapping, row: str) -> str:
    """Where a participant's periods are said: ``; see TRT01A, TRT02A of adsl.xpt record
    3``."""
    if mapping.periods is None:
        return ""
    return f"; see {', '.join(mapping.periods.columns)} of {row}"


def _not_started(session, record_period: Any, periods: dict[int, str]) -> bool:
    """Whether a record belongs to a period or arm the participant never started."""
    if not _is_missing(record_period):
        try:
            return int(float(record_period)) not in periods
        except (TypeError, ValueError, OverflowError):  # checked with the record's values
            return False
    if session.period is not None:
        return session.period not in periods
    return session.arm is not None and session.arm not in periods.values()


def _endpoints(mapping: StudyMapping) -> dict[str, float]:
    """Each arm's assessment day: its own ``endpoint_day``, else its last mapped day."""
    days: dict[str, list[float]] = defaultdict(list)
    for session in mapping.entries.values():
        if session.day is not None:
            for arm in [session.arm] if session.arm else list(mapping.arms):
                days[arm].append(session.day)
    return {
        arm: spec.endpoint_day if spec.endpoint_day is not None else max(days.get(arm, [np.nan]))
        for arm, spec in mapping.arms.items()
    }


def _endpoint_problems(mapping: StudyMapping, endpoints: dict[str, float]) -> list[Problem]:
    """An arm's assessment day must be a mapped follow-up visit of that arm: with none, its
    responses would be NaN days; with an ``endpoint_day`` on no visit, all of them missing."""
    problems = []
    for arm, day in endpoints.items():
        days = sorted(
            {s.day for s in mapping.entries.values() if s.day is not None and s.arm in (None, arm)}
        )
        if np.isnan(day):
            message = (
                f"arms.{arm}: no follow-up visit is mapped for this arm, so its response "
                "cannot be assessed"
            )
        elif day not in days:
            shown = ", ".join(f"{d:g}" for d in days)
            message = (
                f"arms.{arm}.endpoint_day = {day:g} is no mapped visit of this arm (its "
                f"visits: day {shown or 'none'})"
            )
        else:
            continue
        problems.append(Problem("endpoint_day", None if np.isnan(day) else day, message))
    return problems


def assemble(
    mapping: StudyMapping,
    subjects: pd.DataFrame,
    records: pd.DataFrame,
    *,
    trial_id: str,
    source: str,
    subject_file: str,
    record_files: str,
    ignored: dict[str, int] | None = None,
    read_by_reader: Sequence[str] = (),
) -> pd.DataFrame:
    """Build and validate the patient-course table (see the module docstring).

    Returns the table with the :class:`IngestSummary` in ``table.attrs["ingest"]`` (as a
    dict); ``ignored`` counts score records the reader left out, by reason;
    ``read_by_reader`` names subject columns the reader used itself (ADaM's STUDYID as the
    trial). Raises one
    :class:`~ketapredict.ValidationError` listing every problem.
    """
    what = f"study at {source}"
    problems: list[Problem] = []
    summary = IngestSummary(source=source, subject_file=subject_file, participants=len(subjects))
    dropped: Counter = Counter()
    unused: Counter = Counter(ignored or {})
    if _missing_columns(mapping, subjects, subject_file, problems):
        raise ValidationError(problems, what)
    # the subject file's columns the mapping does not read: named, so that one a site
    # added (weight, handedness) is not dropped without a word
    read = {c for _, c in _subject_sources(mapping)} | {SUBJECT, WHERE, *read_by_reader}
    summary.columns_not_read = [str(c) for c in subjects.columns if c not in read]

    # -- participants -----------------------------------------------------------------------
    no_id = subjects[SUBJECT].map(_is_missing).to_numpy(dtype=bool)
    for where in subjects.loc[no_id, WHERE]:
        problems.append(Problem("participant_id", None, f"{where}: no participant id"))
    subjects = subjects[~no_id]
    duplicated = subjects[SUBJECT].duplicated(keep=False)
    for _, rows in subjects[duplicated].groupby(SUBJECT)[WHERE]:
        problems.append(
            Problem(
                "participant_id",
                None,
                f"one participant id appears {len(rows)} times in {subject_file} "
                f"({', '.join(rows)})",
            )
        )
    # a participant in messages: by their row, never by their identifier
    row_of = dict(zip(subjects[SUBJECT], subjects[WHERE], strict=True))
    people: dict[str, dict[str, Any]] = {}
    arms_of: dict[str, dict[int, str]] = {}
    # participants with a problem of the mapping stage: their courses are left out of the
    # table's own checks, which run anyway so that one pass reports every problem
    flawed: set[Any] = set()
    for _, row in subjects[~duplicated].iterrows():
        subject, where = row[SUBJECT], row[WHERE]
        before = len(problems)
        for col, allowed in mapping.keep.items():
            if _text(row[col]) not in allowed:
                dropped[f"{col} not one of {', '.join(allowed)}"] += 1
                break
        else:
            if isinstance(mapping.diagnosis, str):
                diagnosis = mapping.diagnosis
            else:
                group = _text(row[mapping.diagnosis.column])
                values = mapping.diagnosis.translate or {}
                diagnosis = values.get(group) if values else group
                # a code that differs from a mapped one only in case or spaces is a typo, not
                # a group left out on purpose: refused, not dropped with the healthy controls
                near = [
                    v
                    for v in values
                    if diagnosis is None and group and _folded(v) == _folded(group)
                ]
                if near:
                    problems.append(
                        Problem(
                            mapping.diagnosis.column,
                            group,
                            f"{where}: {mapping.diagnosis.column}={group!r} is not in the "
                            f"mapping's values (did you mean {near[0]!r}? a group the mapping "
                            "does not name is left out)",
                        )
                    )
                elif diagnosis is None:
                    dropped[f"{mapping.diagnosis.column} = {group or 'n/a'}, not mapped"] += 1
                    continue
            record = {"diagnosis": diagnosis}
            for name, spec in mapping.columns.items():
                record[name] = _mapped(spec, row, name, where, problems)
            people[subject] = record
            arms_of[subject] = _periods(mapping, row, where, dropped, problems)
        if len(problems) > before:
            flawed.add(subject)

    # -- score records ----------------------------------------------------------------------
    entries = mapping.entries
    kind = "session" if mapping.format == "bids" else "visit"  # each standard's own word
    values: dict[tuple, tuple[float | None, str]] = {}
    # records whose participant the subject file lacks, by file: their participants and
    # each one's first record's problem; and the files that name some participant it has
    strangers: dict[str, dict[Any, Problem]] = defaultdict(dict)
    known_files: set[str] = set()
    without_id: list[str] = []
    with_records = set(records["subject"])
    listed = set(subjects[SUBJECT])
    for rec in records.itertuples(index=False):
        subject, label, where = rec.subject, rec.label, rec.where
        file = re.split(r" (?:line|record) \d+$", where)[0]
        before = len(problems)
        try:  # a record's problem marks its participant (finally: past every continue)
            if subject in listed:
                known_files.add(file)
            if subject not in people:
                if subject in listed:
                    continue  # a participant left out above (counted there)
                if _is_missing(subject):
                    without_id.append(where)
                    continue
                if subject not in strangers[file]:
                    strangers[file][subject] = Problem(
                        "participant_id",
                        None,
                        f"{where}: its participant is not in {subject_file}",
                    )
                continue
            session = entries.get(label)
            if session is None:
                problems.append(
                    Problem(
                        kind,
                        label,
                        f"{where}: {kind} {label!r} is not in the mapping (it names "
                        + ", ".join(map(repr, entries))
                        + "; add it, with skip = true if the courses do not use it)",
                    )
                )
                continue
            if session.skip:
                unused[f"{kind} {label} skipped by the mapping"] += 1
                continue
            if not arms_of[subject]:
                continue  # started no period (counted above)
            if _is_missing(rec.value) and _not_started(session, rec.period, arms_of[subject]):
                unused["missing values of periods the participant did not start"] += 1
                continue
            record_period = None
            if not _is_missing(rec.period):
                try:
                    record_period = float(rec.period)
                except (TypeError, ValueError):
                    record_period = None
                if record_period is None or not record_period.is_integer():
                    problems.append(
                        Problem(
                            "period", rec.period, f"{where}: period {rec.period!r} is not a number"
                        )
                    )
                    continue
                record_period = int(record_period)
            period = _course_key(
                subject,
                session,
                record_period,
                arms_of,
                where,
                problems,
                _started(mapping, row_of[subject]),
            )
            if period is None:
                continue
            try:
                value = _number(rec.value)
            except ValueError as error:
                problems.append(
                    Problem(
                        rec.scale,
                        str(error),
                        f"{where}: {rec.scale} score {str(error)!r} is not a number",
                    )
                )
                continue
            # judged here, where its file and line are known: in the table it would be
            # named by its participant's line in the subject file
            name = f"{rec.scale}_" + ("baseline" if session.baseline else visit_label(session.day))
            _, fault = _value_problem(column(name), value, name)
            if value is not None and fault is not None:
                problems.append(Problem(name, value, f"{where}: {fault}"))
                continue
            key = (subject, period, "baseline" if session.baseline else session.day, rec.scale)
            if key in values:
                earlier, first = values[key]
                problems.append(
                    Problem(
                        rec.scale,
                        label,
                        f"{where}: a second {rec.scale} value ({_shown(value)}) for its "
                        f"participant at "
                        f"{'baseline' if session.baseline else f'day {session.day:g}'}"
                        + (f" of period {period}" if period else "")
                        + f" (the first: {_shown(earlier)}, {first})",
                    )
                )
                continue
            values[key] = (value, where)

        finally:
            if len(problems) > before:
                flawed.add(subject)
    for file, found in strangers.items():
        problems += _strangers(found, listed, file in known_files, subject_file, file)
    # a file none of whose identifiers are the subject file's: every course lacks its
    # scores, which that one problem says (not once more for each course)
    ids_differ = any(len(found) > 1 and f not in known_files for f, found in strangers.items())
    if without_id:  # one problem, however many records: the first says where to look
        more = f" (and {len(without_id) - 1:,} more records)" if len(without_id) > 1 else ""
        problems.append(
            Problem("participant_id", None, f"{without_id[0]}: no participant id{more}")
        )

    # -- courses ----------------------------------------------------------------------------
    endpoints = _endpoints(mapping)
    endpoint_problems = _endpoint_problems(mapping, endpoints)
    problems += endpoint_problems
    # each course's follow-up values, found by its participant and period (a scan of every
    # value per course took minutes for a large study)
    visits_of: dict[tuple[Any, int], list[tuple[float, str, float]]] = defaultdict(list)
    for (who, k, day, scale), (value, _) in values.items():
        if day != "baseline":
            visits_of[who, k].append((day, scale, value))
    rows = []
    for subject, record in people.items():
        for period, arm in sorted(arms_of[subject].items()):
            course = {
                "patient_id": subject,
                "trial_id": trial_id,
                "arm": arm,
                "period": period,
                **record,
                **mapping.arms[arm].regimen().to_dict(),
                "endpoint_day": endpoints[arm],
            }
            for scale in mapping.scores:
                own = values.get((subject, period, "baseline", scale))
                shared = values.get((subject, 0, "baseline", scale))
                course[f"{scale}_baseline"] = (own or shared or (None,))[0]
            if course["madrs_baseline"] is None:
                if subject in flawed or ids_differ:
                    continue  # a record of theirs was refused, and said: not twice
                if mapping.incomplete == "drop":
                    dropped["courses without a baseline MADRS"] += 1
                    continue
                if subject not in with_records:
                    if period == min(arms_of[subject]):  # once per participant
                        problems.append(
                            Problem(
                                "participant_id",
                                None,
                                f"the participant of {row_of[subject]} has no rows in "
                                f"{record_files}",
                            )
                        )
                    continue
                problems.append(
                    Problem(
                        "madrs_baseline",
                        None,
                        f"the participant of {row_of[subject]}"
                        + (f" period {period}" if len(arms_of[subject]) > 1 else "")
                        + f' ({arm}): no baseline MADRS (set incomplete = "drop" to leave '
                        "such courses out, counted)",
                    )
                )
                continue
            for day, scale, value in visits_of.get((subject, period), ()):
                course[f"{scale}_{visit_label(day)}"] = value
            rows.append(course)
    if not endpoint_problems:
        problems += _unassessed_arms(mapping, endpoints, rows, flawed, kind)
    if problems:
        # the table's own checks too, on the courses the mapping stage found no fault with,
        # so that one pass reports every problem (not after the first are fixed); after a
        # fault of the mapping itself (an arm's endpoint), every course would repeat it
        clean = [course for course in rows if course["patient_id"] not in flawed]
        if clean and not endpoint_problems:
            try:
                _checked_table(clean, mapping, row_of, what)
            except ValidationError as error:
                problems += error.problems
        raise ValidationError(problems, what)
    table, visit_columns = _checked_table(rows, mapping, row_of, what)

    summary.dropped = dict(dropped)
    summary.ignored_records = dict(unused)
    summary.notes = [
        f"arms.{arm}: {note}"
        for arm, spec in mapping.arms.items()
        if (note := below_any_studied(spec.regimen().to_dict())) is not None
    ]
    summary.patients = int(table["patient_id"].nunique())
    summary.courses = table["arm"].value_counts().reindex(list(mapping.arms)).dropna()
    summary.courses = {k: int(v) for k, v in summary.courses.items()}
    summary.endpoints = {a: endpoints[a] for a in summary.courses}
    summary.unassessed = {
        arm: int(group["response"].isna().sum()) for arm, group in table.groupby("arm")
    }
    summary.visits = {
        c: int(table[c].notna().sum())
        for c in table.columns
        if c.endswith("_baseline") or c in visit_columns
    }
    table.attrs["ingest"] = summary.to_dict()
    return table


def _unassessed_arms(
    mapping: StudyMapping,
    endpoints: dict[str, float],
    rows: list[dict[str, Any]],
    flawed: set[Any],
    kind: str,
) -> list[Problem]:
    """An arm none of whose courses has a MADRS on its assessment day: its every response
    would be missing, and the arm would leave training and validation with a count for a
    reason (a session mapped to a day the files never hold, a wrong ``endpoint_day``)."""
    problems = []
    for arm, day in endpoints.items():
        own = [c for c in rows if c["arm"] == arm and c["patient_id"] not in flawed]
        if not own or any(c.get(f"madrs_{visit_label(day)}") is not None for c in own):
            continue
        labels = [
            label for label, s in mapping.entries.items() if s.day == day and s.arm in (None, arm)
        ]
        problems.append(
            Problem(
                "endpoint_day",
                day,
                f"arms.{arm}: none of its {len(own):,} courses has a MADRS on its assessment "
                f"day, day {day:g} ({kind} {', '.join(map(repr, labels))}), so none has a "
                f"response: map the {kind} that holds it, or set arms.{arm}.endpoint_day",
            )
        )
    return problems


def _checked_table(
    rows: list[dict[str, Any]], mapping: StudyMapping, row_of: dict[Any, str], what: str
) -> tuple[pd.DataFrame, list[str]]:
    """The courses as a validated table (ValidationError naming every bad cell by its
    participant's line), and its visit columns in day order."""
    table = pd.DataFrame(rows)
    # visit columns in day order, per scale, after the course columns
    visit_columns = sorted(
        (c for c in table.columns if c.split("_")[0] in mapping.scores and "_baseline" not in c),
        key=lambda c: (list(mapping.scores).index(c.split("_")[0]), visit_days(c)),
    )
    declared = [c for c in columns() if c in table.columns]  # the contract's order
    table = table[declared + visit_columns]
    table = _derive(table, mapping)
    # a course in messages: by its participant's line, never by the identifier
    table.index = [
        f"{row_of[p]}, period {k}" if n > 1 else row_of[p]
        for p, k, n in zip(
            table["patient_id"],
            table["period"],
            table.groupby("patient_id")["period"].transform("size"),
            strict=True,
        )
    ]
    table = validate(table, what=what, row_labels=True).reset_index(drop=True)
    return table, visit_columns


def _periods(
    mapping: StudyMapping,
    row: pd.Series,
    where: str,
    dropped: Counter,
    problems: list[Problem],
) -> dict[int, str]:
    """A participant's arm in each period it started."""
    if mapping.periods is None:
        return {1: next(iter(mapping.arms))}
    arms = {}
    for k, col in enumerate(mapping.periods.columns, start=1):
        code = _text(row[col])
        if code is None:
            dropped[f"period {k} not started ({col} empty)"] += 1
            continue
        if code not in mapping.periods.codes:
            problems.append(
                Problem(
                    col,
                    code,
                    f"{where}: {col}={code!r} is not an arm code of the mapping "
                    f"({', '.join(map(repr, mapping.periods.codes))})",
                )
            )
            continue
        arms[k] = mapping.periods.codes[code]
    return arms


def _derive(table: pd.DataFrame, mapping: StudyMapping) -> pd.DataFrame:
    """Response and remission at each course's endpoint, as the virtual cohort defines
    them (:data:`ketapredict.schema.RESPONSE_FRACTION`, ``REMISSION_MAX``); missing when
    the MADRS of that day is (never carried forward)."""
    endpoint = endpoint_scores(table)
    baseline = table["madrs_baseline"].astype(float).to_numpy()
    known = ~np.isnan(endpoint)
    response = np.where(known, endpoint <= baseline * RESPONSE_FRACTION, None)
    remission = np.where(known, endpoint <= REMISSION_MAX, None)
    return table.assign(
        response=pd.array(response, dtype="boolean"),
        remission=pd.array(remission, dtype="boolean"),
    )

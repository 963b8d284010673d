"""The data contract: every column of a patient table, declared once.

One row of a patient table is one patient's treatment course. Each column has a *role*:

========== ==================================================================================
role       rule
========== ==================================================================================
identifier never a feature, never logged, never in a report (``patient_id``)
group      used only to group rows for validation (``trial_id``, ``site_id``, ``arm``,
           ``period``)
baseline   known before treatment; may be missing (NaN) unless required
regimen    the dose schedule being considered
outcome    what happened; never a feature
truth      a simulated patient's true outcome probability; never a feature
========== ==================================================================================

Visit scores form *families*: ``madrs_d7`` is the MADRS total 7 days after the first session,
``madrs_h4`` after 4 hours, ``madrs_m40`` after 40 minutes; ``hamd17_*`` and ``ssi_*`` work
the same way.

From this single declaration come the table validator (:func:`validate`), the single-patient
pydantic model (:class:`Patient`, :func:`validate_patient`), the role split used by the
feature encoders (:func:`columns`), and the cross-column rules shared with
:class:`ketapredict.Regimen`.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import pydantic
from pydantic_core import PydanticCustomError

from .exceptions import Problem, ValidationError, short_repr

__all__ = [
    "ROLES",
    "Column",
    "Patient",
    "assessment_day",
    "check_outcome",
    "column",
    "columns",
    "endpoint_scores",
    "outcome_measure",
    "validate",
    "validate_patient",
    "visit_days",
    "visit_label",
    "withheld_groups",
]

ROLES = ("identifier", "group", "baseline", "regimen", "outcome", "truth")

Role = Literal["identifier", "group", "baseline", "regimen", "outcome", "truth"]
Kind = Literal["float", "int", "bool", "category", "string"]

# Drugs that act on the NMDA receptor, and the comparators trials use against them.
KETAMINES = ("ketamine", "esketamine", "arketamine")
COMPARATORS = ("saline", "midazolam", "placebo")
INERT_COMPARATORS = ("saline", "placebo")
INJECTED_ROUTES = ("iv", "im", "sc")
# The outcomes every model, report and cohort speaks of, in the order they are shown.
OUTCOMES = ("response", "remission", "cognitive_decline", "dissociation")
# The mood outcomes, for the virtual cohort and for real trial data alike: response is a fall
# of at least half of the baseline MADRS, remission a MADRS of at most 10 at the assessment
# (the definitions of the pooled trials the cohort reproduces, CALIBRATION.md A1-A3).
# RESPONSE_FRACTION is the share of the baseline MADRS a response leaves at most (so the
# fall is at least 1 - RESPONSE_FRACTION of it).
RESPONSE_FRACTION = 0.5
# Statistics of fewer courses than this are not published (subgroup tables, external
# validation by arm): a row of one or two patients tells their outcomes. CMS's cell-size
# suppression policy withholds counts of 1 to 10 (CMS 2020, "Cell Size Suppression Policy").
MIN_CELL = 11
# Validation needs at least 100 events and 100 non-events for calibration and
# discrimination estimates precise enough to act on (Collins, Ogundimu and Altman 2016,
# Statistics in Medicine 35:214-226); with fewer, reports say so.
MIN_EVENTS = 100
REMISSION_MAX = 10
# The harms, as the virtual cohort defines them (no pooled definition exists): cognitive
# decline is composite cognition half an SD or more below baseline, an SD-based cut-off for
# the subset harmed (CALIBRATION.md G3); clinically relevant dissociation a CADSS total above
# 4, the cut-off of the project's first version (CALIBRATION.md D3 asks only for its shape).
COGNITIVE_DECLINE_AT = -0.5
DISSOCIATION_ABOVE = 4
# The outcomes whose event lies strictly beyond the cut-off (the others include it).
STRICT_CUTOFFS = ("dissociation",)
# Each outcome in a few words, with its cut-off (tables, figures, reports)
OUTCOME_LABELS = {
    "response": f"response (MADRS -{1 - RESPONSE_FRACTION:.0%})",
    "remission": f"remission (MADRS <= {REMISSION_MAX})",
    "cognitive_decline": f"cognitive decline (>= {-COGNITIVE_DECLINE_AT:g} SD)",
    "dissociation": "dissociation (first session)",
}
# What each outcome is, in the words a report prints under its table, from the cut-offs
# the contract defines it by (ketapredict.schema)
OUTCOME_DEFINITIONS = {
    "response": f"MADRS fell by at least {1 - RESPONSE_FRACTION:.0%} from baseline at the horizon",
    "remission": f"MADRS at most {REMISSION_MAX} at the horizon",
    "cognitive_decline": "the mean of the processing speed, working memory and verbal memory "
    f"z-scores fell by {-COGNITIVE_DECLINE_AT:g} SD or more from baseline at the horizon",
    "dissociation": f"CADSS above {DISSOCIATION_ABOVE} in the first session",
}
# When an outcome is assessed, in days after the first session, for the outcomes that have a
# time of their own: dissociation is rated in the first session, at the end of its 40-minute
# infusion, when the CADSS peaks (Luckenbaugh 2014, J Affect Disord 159:56). Its features
# describe the course as of then, whatever horizon the other outcomes are assessed at: the
# sessions to come cannot change what happened in the first. The other outcomes are assessed
# at each course's endpoint_day.
ASSESSED_AT = {"dissociation": 40 / 1440}


def empty_outcomes(table: pd.DataFrame, outcomes: Sequence[str]) -> list[str]:
    """Of ``outcomes``, those whose column ``table`` has but holds no value in: to be said,
    not skipped in silence (a column an export blanked looks recorded)."""
    return [o for o in outcomes if o in table.columns and table[o].isna().all()]


def withheld_groups(
    groups: Mapping[tuple[str, Any], Any], *, courses_per_patient: int = 1
) -> set[tuple[str, Any]]:
    """The rows of a table of groups not to show, so that no group of fewer than
    :data:`MIN_CELL` courses can be read off it, nor worked out from the rows shown and the
    total by subtraction (complementary suppression).

    A row of fewer than ``MIN_CELL`` courses is withheld. The table then still tells some
    sets: each row shown, the courses outside it, the courses of a variable's rows not
    shown (the total less its rows shown), and the total. While one of these, less another
    inside it or less the rows of one variable inside it, leaves between 1 and
    ``MIN_CELL - 1`` courses (the total less every other arm; a diagnosis less the one
    trial that holds all but 4 of it), the smallest row whose withholding undoes that is
    withheld too. Last, any sum and difference of the rows shown and the total, however
    long, that leaves a group of 1 to ``MIN_CELL - 1`` courses is searched for exactly (a
    mixed-integer program; a trial plus one drug's courses less every active-drug course
    gave a trial's saline arm of 5 away), and the smallest row it uses is withheld, until
    none is left. The search is given 20 s each time; if it runs out, or its answers are
    not exact, every row is withheld and the log says why (a warning).

    Parameters
    ----------
    groups : mapping of (variable, level) to boolean array
        Each row the table would show: which courses it counts (all arrays of one length,
        the total's courses). The levels of one variable are disjoint.
    courses_per_patient : int, default=1
        The most courses one patient gives (2 in a two-period crossover). The smallest
        group shown or derivable is then ``MIN_CELL`` times it in courses, so that it
        holds at least ``MIN_CELL`` patients: 12 courses of a crossover may be 6 patients.

    Returns
    -------
    set of (variable, level)
        The rows not to show.

    Examples
    --------
    >>> import numpy as np
    >>> from ketapredict.schema import withheld_groups
    >>> arm = np.array(["A"] * 25 + ["B"] * 3)
    >>> sorted(withheld_groups({("arm", a): arm == a for a in ("A", "B")}))
    [('arm', 'A'), ('arm', 'B')]
    """
    names = list(groups)
    if not names:
        return set()
    least = MIN_CELL * max(int(courses_per_patient), 1)
    courses = np.column_stack([np.asarray(groups[g], dtype=bool) for g in names])
    # the courses that fall in the same rows are one cell: the sets below are sets of cells
    cells, counts = np.unique(courses, axis=0, return_counts=True)
    size = counts @ cells
    if counts.sum() < least:
        return set(names)
    withheld = {g for g, n in zip(names, size, strict=True) if n < least}
    variables: dict[str, list[int]] = {}
    for j, (variable, _) in enumerate(names):
        variables.setdefault(variable, []).append(j)
    while True:
        shown = [j for j, g in enumerate(names) if g not in withheld]
        found = _giving_away(cells, counts, size, shown, variables, least)
        if found is None:
            found = _derivable(cells, counts, shown, least)
        if found is None:
            return withheld
        if found is _UNSETTLED:  # fail closed
            return set(names)
        withheld.add(names[min(found, key=lambda j: (size[j], str(names[j])))])


def _derivable(cells, counts, shown, least: int = MIN_CELL) -> set[int] | None:
    """The shown rows (by column) of some sum and difference of the rows shown and the total
    that leaves a group of 1 to ``least - 1`` courses (``MIN_CELL``, times the most
    courses a patient gives), however long; None if there is
    none; :data:`_UNSETTLED` if that cannot be settled (the search ran out of time, or the
    solver's answers were not exact), and then every row is withheld.

    Solved as a mixed-integer feasibility problem (HiGHS, through SciPy): coefficients
    ``c`` for the rows and the total, and a 0/1 choice ``z`` of the groups of courses that
    share their shown rows (only a group under ``least`` can be chosen), with ``A c = z``
    and ``1 <= courses(z) < least``; a ``z`` found is checked by an exact least-squares
    fit, since a solver's tolerance is no derivation."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    span = np.column_stack([cells[:, shown], np.ones(len(cells), bool)])
    atoms, which = np.unique(span, axis=0, return_inverse=True)
    n = np.bincount(np.ravel(which), weights=counts).astype(int)
    small = np.flatnonzero(n < least)
    if not len(small):
        return None
    k = atoms.shape[1]
    choose = np.zeros((len(atoms), len(small)))
    choose[small, np.arange(len(small))] = -1.0
    total = np.r_[np.zeros(k), n[small]][None, :]
    constraints = [
        LinearConstraint(np.hstack([atoms.astype(float), choose]), 0.0, 0.0),
        LinearConstraint(total, 1.0, least - 1.0),
    ]
    bounds = Bounds(
        np.r_[np.full(k, -np.inf), np.zeros(len(small))],
        np.r_[np.full(k, np.inf), np.ones(len(small))],
    )
    for _ in range(_EXACT_ATTEMPTS):
        solved = milp(
            c=total[0],
            constraints=constraints,
            integrality=np.r_[np.zeros(k), np.ones(len(small))],
            bounds=bounds,
            options={"time_limit": _EXACT_SECONDS},
        )
        if solved.x is None:
            if solved.status != 1:  # proven: no such group
                return None
            break  # out of time: not settled
        chosen = np.round(solved.x[k:])
        z = np.zeros(len(atoms))
        z[small] = chosen
        c, *_ = np.linalg.lstsq(atoms.astype(float), z, rcond=None)
        if np.abs(atoms @ c - z).max() < 1e-9:
            # withholding a row the sum uses undoes it (with a solver's noise, one may be
            # named that is not needed: more withheld, never less)
            used = np.flatnonzero(np.abs(solved.x[: k - 1]) > 1e-6)
            if not len(used):
                used = np.flatnonzero(np.abs(c[: k - 1]) > 1e-6)
            return {shown[j] for j in used} or set(shown[:1])
        # not exact: rule this choice out and ask again
        cut = np.r_[np.zeros(k), np.where(chosen > 0, 1.0, -1.0)][None, :]
        constraints.append(LinearConstraint(cut, -np.inf, chosen.sum() - 1))
    logging.getLogger(__name__).warning(
        "Could not settle whether longer sums and differences of the %d rows shown give away "
        "a group of fewer than %d courses (%d groups of courses); every row is withheld.",
        len(shown),
        least,
        len(atoms),
    )
    return _UNSETTLED


# The exact search's budget: seconds a solve, and solves when a solver's answer is not exact.
_EXACT_SECONDS = 20.0
_EXACT_ATTEMPTS = 3
_UNSETTLED: set[int] = set()  # by identity: the search could not say


def _giving_away(cells, counts, size, shown, variables, least: int = MIN_CELL) -> set[int] | None:
    """The shown rows (by column) one of which must be withheld so that the table gives a
    small group away one way fewer (see :func:`withheld_groups`); None if it gives none."""
    shown_set = set(shown)
    # the sets the table tells, each with the rows that make it (withholding one undoes it)
    told: list[tuple[np.ndarray, set[int]]] = [(np.ones(len(cells), bool), set())]
    for j in shown:
        told += [(cells[:, j], {j}), (~cells[:, j], {j})]
    blocks: dict[str, list[tuple[np.ndarray, set[int]]]] = {}
    for variable, columns_ in variables.items():
        levels = [j for j in columns_ if j in shown_set]
        rest = ~cells[:, levels].any(axis=1) if levels else np.ones(len(cells), bool)
        blocks[variable] = [(cells[:, j], {j}) for j in levels]
        if levels and counts[rest].sum():
            blocks[variable].append((rest, set(levels)))
            told.append((rest, set(levels)))
    sets = np.column_stack([t for t, _ in told])
    n = counts @ sets
    # [a, b]: b lies wholly inside a
    outside = (~sets).astype(np.int64).T @ sets.astype(np.int64)
    inside = outside.T == 0
    left = n[:, None] - n[None, :]
    hits: list[set[int]] = [
        told[a][1] | told[b][1] for a, b in np.argwhere(inside & (left > 0) & (left < least))
    ]
    for whole, made in told:
        for parts in blocks.values():
            within = [
                (part, rows)
                for part, rows in parts
                if not (part & ~whole).any() and (part != whole).any()
            ]
            if within:
                rest = counts[whole & ~np.any([part for part, _ in within], axis=0)].sum()
                if 0 < rest < least:
                    hits.append(made | set().union(*(rows for _, rows in within)))
    # a set told outright (a variable's rows not shown)
    hits += [made for (_, made), k in zip(told, n, strict=True) if 0 < k < least]
    hits = [hit & shown_set for hit in hits if hit & shown_set]
    if hits:  # the row that most of them need, then the smallest
        need = Counter(j for hit in hits for j in hit)
        return {min(need, key=lambda j: (-need[j], size[j]))}
    return None  # longer sums: _derivable


def assessment_day(outcome: str) -> float | None:
    """The day an outcome is assessed whatever the course's ``endpoint_day`` (None: at it).

    Examples
    --------
    >>> from ketapredict.schema import assessment_day
    >>> round(assessment_day("dissociation") * 24 * 60)  # minutes after the first session
    40
    >>> assessment_day("response") is None
    True
    """
    return ASSESSED_AT.get(outcome)


@dataclass(frozen=True)
class Column:
    """The declaration of one column (or one family of visit columns).

    Parameters
    ----------
    name : str
        Column name; for a family, a template such as ``"madrs_{visit}"``.
    role : {"identifier", "group", "baseline", "regimen", "outcome", "truth"}
        How the column may be used.
    kind : {"float", "int", "bool", "category", "string"}
        Logical type. Validated tables store float as ``float64``, int as ``Int64``, bool as
        ``boolean``, category as ``category`` with the declared categories, string as ``str``.
    description : str
        What the column holds, in clinical words.
    unit : str, optional
        Unit or scale, shown in error messages.
    low, high : float, optional
        Inclusive allowed range.
    low_open : bool
        Whether ``low`` itself is excluded (a day after the first session is above 0).
    categories : tuple of str
        Allowed values of a category column, in canonical spelling.
    required : bool
        Whether a patient table must have the column with no missing value.
    label : str, optional
        Short name in clinical words for reports; defaults to the name without underscores.
    """

    name: str
    role: Role
    kind: Kind
    description: str
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    categories: tuple[str, ...] = ()
    required: bool = False
    label: str | None = None
    low_open: bool = False

    @property
    def clinical_label(self) -> str:
        """A short name in clinical words, for reports ("baseline MADRS")."""
        return self.label or self.name.replace("_", " ")

    @property
    def printed_unit(self) -> str | None:
        """The unit printed after a value: "SD" for a z-score; None for a scale's name
        ("MADRS total score": the label already says it), a count or no unit."""
        if self.unit == "z-score":
            return "SD"
        if not self.unit or any(word in self.unit for word in ("score", "total", "count")):
            return None
        return self.unit

    def value_text(self, value: Any, dose_unit: Any = None, *, rounded: bool = False) -> str:
        """A value of this column as a clinician reads it: ``46 years``, ``-0.9 SD``,
        ``56 mg`` (a dose with its ``dose_unit``), ``yes``, ``TRD``; ``missing`` for none.
        As recorded, or ``rounded`` to two decimals (two significant digits below 0.1) for
        a figure's labels.

        Examples
        --------
        >>> column("age").value_text(46), column("dose").value_text(56.0, "mg")
        ('46 years', '56 mg')
        """
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return "missing"
        if self.kind == "bool":
            return "yes" if value else "no"
        if not isinstance(value, float | int | np.number):
            return str(value)
        shown = label_number(value) if rounded else f"{value:g}"
        if self.name == "dose":
            unit = None if dose_unit is None or pd.isna(dose_unit) else str(dose_unit)
        else:
            unit = self.printed_unit if self.kind == "float" else None
        return f"{shown} {unit}" if unit else shown

    @property
    def is_family(self) -> bool:
        """Whether this declares a family of visit columns."""
        return "{visit}" in self.name

    def allowed(self) -> str:
        """What the column accepts, e.g. ``"0-60 (MADRS total score)"``."""
        if self.kind == "category":
            text = "one of " + ", ".join(repr(c) for c in self.categories)
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "string":
            text = "text"
        else:
            # "-6-6" reads as a subtraction: a range from a negative end says "to"
            joint = " to " if self.low is not None and self.low < 0 else "-"
            text = f"{_fmt(self.low)}{joint}{_fmt(self.high)}"
            if self.low_open:
                text = f"above {_fmt(self.low)} and at most {_fmt(self.high)}"
            if self.kind == "int":
                text = f"a whole number in {text}"
        return f"{text} ({self.unit})" if self.unit else text

    def _normaliser(self) -> dict[str, str]:
        return {c.casefold(): c for c in self.categories}


def _fmt(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:g}"


# --------------------------------------------------------------------------------------------
# The declaration. Add a column here and every validator, model and feature split sees it.
# Ranges are the instruments' own ranges; clinical limits carry their source.
# --------------------------------------------------------------------------------------------
_MADRS = "MADRS total score"
_CONTRACT: tuple[Column, ...] = (
    # identifier
    Column("patient_id", "identifier", "string", "patient identifier; never leaves the table"),
    # group
    Column("trial_id", "group", "string", "trial or data source the course comes from"),
    Column("site_id", "group", "string", "recruiting site within the trial"),
    Column("arm", "group", "string", "randomised arm label within the trial"),
    Column(
        "period",
        "group",
        "int",
        "period of a crossover trial (1 in a parallel-arm trial)",
        "period",
        1,
        10,
    ),
    # baseline
    Column(
        "age", "baseline", "float", "age at baseline", "years", 12, 100, required=True, label="age"
    ),
    Column(
        "sex",
        "baseline",
        "category",
        "sex",
        categories=("female", "male"),
        required=True,
        label="sex",
    ),
    Column("bmi", "baseline", "float", "body-mass index", "kg/m^2", 12, 80, label="BMI"),
    Column("weight_kg", "baseline", "float", "body weight", "kg", 25, 300, label="body weight"),
    Column(
        "diagnosis",
        "baseline",
        "category",
        "index diagnosis: major depressive disorder, treatment-resistant depression (at least "
        "two failed adequate antidepressant trials) or bipolar depression",
        categories=("MDD", "TRD", "bipolar"),
        required=True,
        label="diagnosis",
    ),
    Column(
        "n_failed_treatments",
        "baseline",
        "int",
        "adequate antidepressant trials failed in the current episode",
        "count",
        0,
        30,
        label="failed antidepressant trials",
    ),
    Column(
        "episode_months",
        "baseline",
        "float",
        "length of the current episode",
        "months",
        0,
        600,
        label="episode length",
    ),
    Column(
        "anxious_distress",
        "baseline",
        "bool",
        "anxious depression (DSM-5 specifier)",
        label="anxious depression",
    ),
    Column(
        "prior_suicide_attempt",
        "baseline",
        "bool",
        "lifetime suicide attempt",
        label="past suicide attempt",
    ),
    Column(
        "family_history_aud",
        "baseline",
        "bool",
        "first-degree relative with alcohol use disorder",
        label="family history of alcohol use disorder",
    ),
    Column(
        "madrs_baseline",
        "baseline",
        "float",
        "MADRS at baseline",
        _MADRS,
        0,
        60,
        required=True,
        label="baseline MADRS",
    ),
    Column(
        "hamd17_baseline",
        "baseline",
        "float",
        "HAMD-17 at baseline",
        "HAMD-17 total",
        0,
        52,
        label="baseline HAMD-17",
    ),
    Column(
        "ssi_baseline",
        "baseline",
        "float",
        "Scale for Suicidal Ideation",
        "SSI total",
        0,
        38,
        label="baseline suicidal ideation (SSI)",
    ),
    Column(
        "processing_speed_z",
        "baseline",
        "float",
        "processing speed against norms",
        "z-score",
        -6,
        6,
        label="processing speed",
    ),
    Column(
        "working_memory_z",
        "baseline",
        "float",
        "working memory against norms",
        "z-score",
        -6,
        6,
        label="working memory",
    ),
    Column(
        "verbal_memory_z",
        "baseline",
        "float",
        "verbal memory against norms",
        "z-score",
        -6,
        6,
        label="verbal memory",
    ),
    # regimen
    Column(
        "drug",
        "regimen",
        "category",
        "drug given: racemic ketamine, its enantiomers, or a comparator",
        categories=(*KETAMINES, *COMPARATORS),
        required=True,
        label="drug",
    ),
    Column(
        "route",
        "regimen",
        "category",
        "route of administration",
        categories=("iv", "intranasal", "im", "sc", "oral", "sublingual"),
        required=True,
        label="route",
    ),
    Column(
        "dose",
        "regimen",
        "float",
        "dose per session",
        "mg/kg or mg, per dose_unit",
        0,
        1000,
        required=True,
        label="dose",
    ),
    Column(
        "dose_unit",
        "regimen",
        "category",
        "unit of the dose",
        categories=("mg/kg", "mg"),
        required=True,
        label="dose unit",
    ),
    Column(
        "infusion_minutes",
        "regimen",
        "float",
        "length of an IV infusion",
        "minutes",
        1,
        240,
        label="infusion time",
    ),
    Column(
        "sessions_per_week",
        "regimen",
        "float",
        "dosing frequency",
        "sessions/week",
        0.25,
        7,
        required=True,
        label="sessions per week",
    ),
    Column(
        "n_sessions",
        "regimen",
        "int",
        "sessions in the course",
        "count",
        1,
        104,
        required=True,
        label="number of sessions",
    ),
    Column(
        "new_oral_antidepressant",
        "regimen",
        "bool",
        "an oral antidepressant newly started with the course",
        label="new oral antidepressant",
    ),
    Column(
        "endpoint_day",
        "regimen",
        "float",
        "when response and remission are assessed",
        "days after the first session",
        0,
        365,
        label="assessment day",
        low_open=True,  # the moment of the first session, before anything acts, is no day
    ),
    # outcome: visit families
    Column("madrs_{visit}", "outcome", "float", "MADRS at the visit", _MADRS, 0, 60),
    Column("hamd17_{visit}", "outcome", "float", "HAMD-17 at the visit", "HAMD-17 total", 0, 52),
    Column("ssi_{visit}", "outcome", "float", "SSI at the visit", "SSI total", 0, 38),
    # outcome: per course
    Column(
        "response",
        "outcome",
        "bool",
        f"MADRS fell by at least {1 - RESPONSE_FRACTION:.0%} at the endpoint",
    ),
    Column("remission", "outcome", "bool", f"MADRS at most {REMISSION_MAX} at the endpoint"),
    Column(
        "cognition_change",
        "outcome",
        "float",
        "composite cognition at the endpoint minus baseline",
        "SD units",
        -10,
        10,
    ),
    Column(
        "cognitive_decline",
        "outcome",
        "bool",
        f"cognition_change of {COGNITIVE_DECLINE_AT:g} SD or worse",
    ),
    Column(
        "cadss_peak",
        "outcome",
        "float",
        "peak dissociation in the first session (CADSS, 23 items scored 0-4)",
        "CADSS total",
        0,
        92,
    ),
    Column(
        "cadss_last",
        "outcome",
        "float",
        "peak dissociation in the last session given",
        "CADSS total",
        0,
        92,
    ),
    Column(
        "dissociation",
        "outcome",
        "bool",
        f"clinically relevant dissociation (CADSS > {DISSOCIATION_ABOVE}) in the first session",
    ),
    # truth (simulated data only): given the trial's random effects, and for a new trial
    *(
        Column(
            f"p_{outcome}{suffix}",
            "truth",
            "float",
            f"true probability of {outcome.replace('_', ' ')}{words}",
            "probability",
            0,
            1,
        )
        for suffix, words in (("", ""), ("_marginal", " in a new trial"))
        for outcome in OUTCOMES
    ),
)

_BY_NAME = {c.name: c for c in _CONTRACT if not c.is_family}
_FAMILIES = {c.name.split("_{")[0]: c for c in _CONTRACT if c.is_family}
_VISIT = re.compile(r"^(?P<scale>" + "|".join(_FAMILIES) + r")_(?P<unit>[dhm])(?P<n>\d+)$")
_UNIT_DAYS = {"d": 1.0, "h": 1 / 24, "m": 1 / 1440}


def visit_label(days: float) -> str:
    """The suffix naming a visit ``days`` after the first session.

    Whole days give ``d<n>``, else whole hours ``h<n>``, else whole minutes ``m<n>``.

    Parameters
    ----------
    days : float
        Time since the first session, in days; must be positive.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If ``days`` is not positive or not a whole number of minutes.

    Examples
    --------
    >>> visit_label(7), visit_label(4 / 24), visit_label(40 / 1440)
    ('d7', 'h4', 'm40')
    """
    if not (isinstance(days, int | float) and math.isfinite(days) and days > 0):
        raise ValueError(f"A visit time must be a positive number of days; got {days!r}.")
    for unit in ("d", "h", "m"):
        n = days / _UNIT_DAYS[unit]
        if round(n) >= 1 and abs(n - round(n)) < 1e-6:  # never d0 for a moment after 0
            return f"{unit}{round(n)}"
    raise ValueError(f"A visit time must be a whole number of minutes; got {days!r} days.")


def visit_days(name: str) -> float:
    """Days after the first session of a visit column such as ``"madrs_h4"``.

    Parameters
    ----------
    name : str
        A visit column name, or just its suffix (``"d7"``).

    Returns
    -------
    float

    Examples
    --------
    >>> visit_days("madrs_d7"), visit_days("h12")
    (7.0, 0.5)
    """
    suffix = name.rsplit("_", 1)[-1]
    match = re.fullmatch(r"([dhm])(\d+)", suffix)
    if match is None:
        raise ValueError(f"{name!r} does not name a visit; expected e.g. 'madrs_d7' or 'h4'.")
    return int(match.group(2)) * _UNIT_DAYS[match.group(1)]


def endpoint_scores(table: pd.DataFrame, scale: str = "madrs") -> np.ndarray:
    """Each course's ``scale`` total at its endpoint: the visit ``endpoint_day`` days after
    the first session.

    Parameters
    ----------
    table : DataFrame
        Courses with ``endpoint_day`` and visit columns such as ``madrs_d1``.
    scale : {"madrs", "hamd17", "ssi"}, default="madrs"
        The rating scale, the prefix of the visit columns.

    Returns
    -------
    ndarray of float
        NaN where the course has no endpoint day or that visit was not recorded (a score is
        never carried forward from an earlier visit).

    Examples
    --------
    >>> table = pd.DataFrame({"endpoint_day": [1.0, 7.0, 7.0, None],
    ...                       "madrs_d1": [12, 30, 20, 9], "madrs_d7": [None, 8, None, 9]})
    >>> endpoint_scores(table)
    array([12.,  8., nan, nan])
    """
    out = np.full(len(table), np.nan)
    if "endpoint_day" not in table.columns:
        return out
    days = pd.to_numeric(table["endpoint_day"], errors="coerce").to_numpy(dtype=float)
    for day in np.unique(days[np.isfinite(days) & (days > 0)]):
        try:
            name = f"{scale}_{visit_label(float(day))}"
        except ValueError:  # not a whole number of minutes: no visit column can hold it
            continue
        if name in table.columns:
            rows = days == day
            out[rows] = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)[rows]
    return out


def courses_per_patient(table: Any) -> int:
    """The most courses one patient gives in ``table`` (2 in a two-period crossover; 1
    without patient identifiers): what a count of courses is divided by to count patients
    at the least (:func:`withheld_groups`).

    Examples
    --------
    >>> courses_per_patient(pd.DataFrame({"patient_id": ["a", "a", "b"]}))
    2
    >>> courses_per_patient(pd.DataFrame({"age": [40, 50]}))
    1
    """
    patients = crossover_patients(table)
    return 1 if patients is None else int(pd.Series(patients).value_counts().max())


def crossover_patients(table: Any) -> np.ndarray | None:
    """Each row's patient when some patient has several rows (the periods of a crossover
    trial), else None.

    A patient's periods share the patient's own response to treatment, so any split of
    the rows into training and held-out parts keeps them together. A patient is a
    ``patient_id`` within its ``trial_id`` (pooled trials may reuse the same subject
    numbers); a row without a ``patient_id`` is a patient of its own.

    Examples
    --------
    >>> crossover_patients(pd.DataFrame({"patient_id": ["a", "a", "b"]})).tolist()
    ['a', 'a', 'b']
    >>> crossover_patients(pd.DataFrame({"trial_id": ["t1", "t2"], "patient_id": ["a", "a"]}))
    >>> crossover_patients(pd.DataFrame({"patient_id": ["a", None, None]})) is None
    True
    """
    if not isinstance(table, pd.DataFrame) or "patient_id" not in table.columns:
        return None
    known = table["patient_id"].notna().to_numpy()
    key = table["patient_id"].astype(str)
    if "trial_id" in table.columns:
        key = table["trial_id"].astype(str) + "/" + key
    key = key.to_numpy(dtype=object)
    if not pd.Series(key[known]).duplicated().any():
        return None
    # each row without an identifier on its own (no identifier can contain a NUL)
    key[~known] = [f"\0{row}" for row in np.flatnonzero(~known)]
    return key.astype(str)


def label_number(value: float) -> str:
    """A number as a figure's label shows it: 88.35, 0.4, 1200, 0.035 (two decimals; two
    significant digits below 0.1)."""
    value = float(value)
    return f"{round(value, 2):g}" if abs(value) >= 0.1 or value == 0 else f"{value:.2g}"


def outcome_measure(table: pd.DataFrame, outcome: str) -> np.ndarray | None:
    """The measurement behind a binary outcome, as its signed distance from the cut-off.

    ``response`` and ``remission`` cut the endpoint MADRS (:func:`endpoint_scores`;
    :data:`RESPONSE_FRACTION` of the baseline, :data:`REMISSION_MAX`), ``cognitive_decline``
    cuts ``cognition_change`` (:data:`COGNITIVE_DECLINE_AT`) and ``dissociation`` cuts
    ``cadss_peak`` (:data:`DISSOCIATION_ABOVE`). A score is compared with its cut-off on the
    logit of its range, ``log((x + 0.5) / (top + 0.5 - x))``, on which a fall of 10 points
    counts for more from 15 than from 45; cognition in its own SD units.

    Parameters
    ----------
    table : DataFrame
        Courses with the measurement's columns.
    outcome : str
        The binary outcome: ``"response"``, ``"remission"``, ``"cognitive_decline"`` or
        ``"dissociation"``.

    Returns
    -------
    ndarray of float or None
        Positive on the event's side of the cut-off, negative on the other, 0 at it (an
        event, except for the outcomes of :data:`STRICT_CUTOFFS`); NaN where a course's
        measurement is missing. None for an outcome without a known
        measurement, or when the table lacks its columns.

    Examples
    --------
    >>> table = pd.DataFrame({"madrs_baseline": [30, 30, 30], "endpoint_day": 1.0,
    ...                       "madrs_d1": [10, 15, 16]})
    >>> (outcome_measure(table, "response") >= 0).tolist()  # MADRS at most 15
    [True, True, False]
    >>> (outcome_measure(table, "remission") >= 0).tolist()  # MADRS at most 10
    [True, False, False]
    >>> outcome_measure(table, "cognitive_decline") is None  # no cognition_change
    True
    """
    columns_ = set(table.columns)

    def on_range(x, name: str) -> np.ndarray:
        top = column(name).high
        return np.log((np.asarray(x, dtype=float) + 0.5) / (top + 0.5 - np.asarray(x, float)))

    if outcome in ("response", "remission"):
        if not {"madrs_baseline", "endpoint_day"} <= columns_:
            return None
        endpoint = endpoint_scores(table)
        if outcome == "response":
            baseline = pd.to_numeric(table["madrs_baseline"], errors="coerce").to_numpy(float)
            cut = baseline * RESPONSE_FRACTION
        else:
            cut = REMISSION_MAX
        return on_range(cut, "madrs_d1") - on_range(endpoint, "madrs_d1")
    if outcome == "cognitive_decline" and "cognition_change" in columns_:
        change = pd.to_numeric(table["cognition_change"], errors="coerce").to_numpy(float)
        return COGNITIVE_DECLINE_AT - change
    if outcome == "dissociation" and "cadss_peak" in columns_:
        peak = pd.to_numeric(table["cadss_peak"], errors="coerce").to_numpy(float)
        return on_range(peak, "cadss_peak") - on_range(DISSOCIATION_ABOVE, "cadss_peak")
    return None


def column(name: str) -> Column:
    """The declaration of a column, visit columns included.

    Parameters
    ----------
    name : str
        A column name, visit columns such as ``"madrs_d7"`` included.

    Returns
    -------
    Column

    Raises
    ------
    KeyError
        If the contract has no such column.

    Examples
    --------
    >>> column("madrs_baseline").allowed()
    '0-60 (MADRS total score)'
    >>> column("madrs_d7").role
    'outcome'
    """
    if name in _BY_NAME:
        return _BY_NAME[name]
    match = _VISIT.match(name)
    if match:
        return _FAMILIES[match.group("scale")]
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise KeyError(f"The data contract has no column {name!r}.{hint}")


def columns(role: str | None = None, frame: pd.DataFrame | None = None) -> list[str]:
    """Names of the contract's columns, optionally of one role.

    Parameters
    ----------
    role : {"identifier", "group", "baseline", "regimen", "outcome", "truth"}, optional
        Keep only columns with this role; all columns when None.
    frame : DataFrame, optional
        When given, list the columns of ``frame`` (visit columns such as ``madrs_d7``
        included) instead of the declared ones. Without a frame, visit families are left out
        because their names depend on the visit days.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from ketapredict import columns
    >>> columns("truth")[:4]
    ['p_response', 'p_remission', 'p_cognitive_decline', 'p_dissociation']
    >>> columns("truth")[4]
    'p_response_marginal'
    """
    if role is not None and role not in ROLES:
        raise ValidationError(
            [
                Problem(
                    "role",
                    role,
                    f"got role={short_repr(role)}, but expected one of "
                    f"{', '.join(map(repr, ROLES))}",
                )
            ],
            "arguments",
        )
    names = list(_BY_NAME) if frame is None else [c for c in frame.columns if _known(c)]
    return [n for n in names if role is None or column(n).role == role]


def _known(name: object) -> bool:
    return isinstance(name, str) and (name in _BY_NAME or _VISIT.match(name) is not None)


def rows_for_messages(
    df: pd.DataFrame, what: str, row_labels: bool | None = None
) -> tuple[pd.DataFrame, str]:
    """The table with the row labels its problems may print, and what to call it.

    A text label or a long number may be a patient's name or record number, which an error
    message, often logged, must not carry: such a table (and one indexed by an identifier
    column) is named by position, and ``what`` says so. ``row_labels`` True keeps the
    labels (a caller's own, such as a file's line numbers); False always uses positions.
    """
    index = df.index
    identifiers = [c for c in columns("identifier") if c in df.columns]
    if row_labels is False:
        return df.reset_index(drop=True), what
    if any(name in columns("identifier") for name in index.names) or any(
        np.array_equal(index.to_numpy(dtype=object), df[c].to_numpy(dtype=object))
        for c in identifiers
        if isinstance(df[c], pd.Series)
    ):
        return df.reset_index(
            drop=True
        ), f"{what} (rows by position: its index identifies patients)"
    if row_labels is None and not _row_numbers(index):
        return df.reset_index(
            drop=True
        ), f"{what} (rows by position: its index is not row numbers)"
    return df, what


# What a contract column's name adds to a site's plain word for it: a unit or the visit
# (``weight`` for ``weight_kg``, ``hamd17`` for ``hamd17_baseline``). A word that names only
# part of a column (``family_history`` for ``family_history_aud``) is a site's own.
_SUFFIXES = ("kg", "months", "minutes", "baseline")


def contract_part(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """The columns of ``frame`` the data contract knows, for the Python API's model inputs.

    A column the contract does not know (a site's own column, a free-text note) is no
    model's input and is left out, as scikit-learn's column selectors leave columns out.
    A column whose name is a near-miss of a contract column the table lacks (``BMI`` for
    ``bmi``, ``madrs_basline``), or a patient or schedule column's name without its unit or
    visit (``weight`` for ``weight_kg``, ``hamd17`` for ``hamd17_baseline``), is refused
    instead: leaving it out would read a recorded value as missing, silently.

    Raises
    ------
    ValidationError
        Naming each near-miss and the contract column it resembles.

    Examples
    --------
    >>> table = pd.DataFrame({"age": [40], "site": ["Leeds"]})
    >>> list(contract_part(table, "patient table").columns)
    ['age']
    >>> contract_part(pd.DataFrame({"age": [40], "BMI": [27.0]}), "patient table")
    Traceback (most recent call last):
    ...
    ketapredict.exceptions.ValidationError: 1 problem in the patient table:
      column 'BMI' is not in the data contract (did you mean 'bmi'?); rename it, or ...
    """
    _refuse_nested_columns(frame, what)
    known = list(dict.fromkeys(c for c in frame.columns if _known(c)))  # a repeat: once
    problems = near_misses(frame.columns)
    if problems:
        raise ValidationError(problems, what)
    return frame[known]


def _refuse_nested_columns(frame: pd.DataFrame, what: str) -> None:
    """One problem for columns in levels (a MultiIndex, as a pivot or a concat with keys
    makes): no name is a contract column's, and each required field was said missing."""
    if isinstance(frame.columns, pd.MultiIndex):
        raise ValidationError(
            [
                Problem(
                    None,
                    None,
                    f"the columns have {frame.columns.nlevels} levels (a pandas MultiIndex, "
                    f"such as {short_repr(frame.columns[0])}); give each column one name, e.g. "
                    "table.columns = table.columns.get_level_values(-1)",
                )
            ],
            what,
        )


def near_misses(names: Iterable[Any], noun: str = "column") -> list[Problem]:
    """A problem for each of ``names`` that is not a contract column but looks like one the
    names lack: a case or spelling slip (``BMI``, ``madrs_basline``, ``n_session``), a unit
    in parentheses (``Weight (kg)``), or a name without its unit or visit (``weight`` for
    ``weight_kg``). Other unknown names (a site's own column) are no problem.

    Examples
    --------
    >>> from ketapredict.schema import near_misses
    >>> [p.column for p in near_misses(["drug", "n_session", "site"])]
    ['n_session']
    """
    names = list(names)
    known = {c for c in names if _known(c)}
    absent = [name for name in _BY_NAME if name not in known]
    lowered = {name.lower(): name for name in absent}
    inputs = [name for name in absent if _BY_NAME[name].role in ("baseline", "regimen")]
    problems = []
    for name in names:
        if _known(name) or not isinstance(name, str) or len(name) > 100:
            continue
        spelled = name.strip().lower()
        visit = spelled if _VISIT.match(spelled) and spelled not in known else None
        snake = "_".join(re.findall(r"[a-z0-9]+", spelled))  # "Body weight (kg)"
        bare = "_".join(re.findall(r"[a-z0-9]+", re.sub(r"\(.*?\)", " ", spelled)))
        near = (
            lowered.get(spelled)
            or visit  # MADRS_d7 for madrs_d7
            or (snake if snake in absent else None)  # "Weight (kg)", "weight-kg"
            or (bare if bare in absent else None)  # "BMI (kg/m2)", "Age (years)"
            or next(iter(difflib.get_close_matches(spelled, absent, n=1, cutoff=0.9)), None)
            or next(
                (
                    c
                    for c in inputs
                    for name in (snake, bare)
                    if name and c in (f"{name}_{s}" for s in _SUFFIXES)
                ),
                None,
            )  # "Infusion (min)"
        )
        if near is not None:
            problems.append(
                Problem(
                    name,
                    None,
                    f"{noun} {short_repr(name)} is not in the data contract (did you mean "
                    f"{near!r}?); rename it, or drop it to leave the value out",
                )
            )
    return problems


# --------------------------------------------------------------------------------------------
# Cross-column rules, shared by the table validator and by Regimen.
# --------------------------------------------------------------------------------------------
# Highest dose per session accepted, per unit. Ketamine: IV anaesthetic induction is
# 1-4.5 mg/kg (Ketalar prescribing information); antidepressant doses are 0.1-1 mg/kg IV
# (Fava 2020) and fixed intranasal esketamine doses 28-84 mg (Spravato prescribing
# information, 2019). Esketamine is as potent at half the racemic dose (ketapredict.regimen
# POTENCY; its IV induction dose is 0.5-1 mg/kg), so its limit is half the racemic one:
# 5 mg/kg of esketamine would be 10 mg/kg of ketamine. Arketamine, the weaker enantiomer,
# keeps the racemic limit. Midazolam as an active placebo is 0.02-0.045 mg/kg IV (Grunebaum
# 2018; Fava 2020); 0.1 mg/kg is already a sedating dose.
MAX_DOSE = {
    "ketamine": {"mg/kg": 5.0, "mg": 500.0},
    "esketamine": {"mg/kg": 2.5, "mg": 250.0},
    "arketamine": {"mg/kg": 5.0, "mg": 500.0},
    "midazolam": {"mg/kg": 0.1, "mg": 10.0},
}
_MAX_DOSE_REASON = {
    "ketamine": "IV anaesthetic induction is 1-4.5 mg/kg; antidepressant doses are 0.1-1 mg/kg "
    "IV or 28-84 mg intranasal",
    "esketamine": "half the racemic limit, as esketamine is as potent at half the dose; "
    "intranasal doses are 28-84 mg",
    "midazolam": "active-placebo doses are 0.02-0.045 mg/kg IV",
}
_MAX_DOSE_REASON["arketamine"] = _MAX_DOSE_REASON["ketamine"]


def _present(x: np.ndarray) -> np.ndarray:
    return ~pd.isna(x)


def _eq(x: np.ndarray, value: str) -> np.ndarray:
    return np.asarray(x == value, dtype=bool) & _present(x)


def _in(x: np.ndarray, values: Sequence[str]) -> np.ndarray:
    return np.isin(x.astype(object), list(values)) & _present(x)


Rule = Callable[
    [Mapping[str, np.ndarray]], Iterator[tuple[np.ndarray, str, Callable[[int], tuple]]]
]


def _regimen_rules(v: Mapping[str, np.ndarray]) -> Iterator[tuple]:
    """Yield ``(mask, column, render)``; ``render(i)`` gives ``(value, message)`` for row i."""
    drug, route, dose, unit = v["drug"], v["route"], v["dose"], v["dose_unit"]
    inert = _in(drug, INERT_COMPARATORS)
    yield (
        inert & (dose != 0) & _present(dose),
        "dose",
        lambda i: (
            dose[i],
            f"dose={dose[i]:g} but drug={drug[i]!r} is an inert comparator; its dose must be 0",
        ),
    )
    active = _in(drug, (*KETAMINES, "midazolam"))
    yield (
        active & (dose == 0),
        "dose",
        lambda i: (dose[i], f"dose=0 but drug={drug[i]!r} needs a positive dose"),
    )
    for family, limits in MAX_DOSE.items():
        for unit_name, limit in limits.items():
            over = _in(drug, (family,)) & _eq(unit, unit_name) & (dose > limit)
            yield (
                over,
                "dose",
                lambda i, limit=limit, family=family: (
                    dose[i],
                    f"dose={dose[i]:g} {unit[i]} is above {limit:g} {unit[i]}, the highest dose "
                    f"allowed for {drug[i]} ({_MAX_DOSE_REASON[family]})",
                ),
            )
    if "infusion_minutes" in v:
        minutes = v["infusion_minutes"]
        yield (
            _eq(route, "iv") & ~_present(minutes),
            "infusion_minutes",
            lambda i: (
                None,
                "infusion_minutes is missing; route='iv' needs an infusion time in minutes "
                f"({column('infusion_minutes').allowed().split(' (')[0]})",
            ),
        )
        yield (
            _present(route) & ~_eq(route, "iv") & _present(minutes),
            "infusion_minutes",
            lambda i: (
                minutes[i],
                f"infusion_minutes={minutes[i]:g} but route={route[i]!r} is not an infusion; "
                "leave infusion_minutes empty",
            ),
        )
    else:
        yield (
            _eq(route, "iv"),
            "infusion_minutes",
            lambda i: (None, "infusion_minutes is missing; route='iv' needs an infusion time"),
        )
    yield (
        _eq(drug, "saline") & _present(route) & ~_in(route, INJECTED_ROUTES),
        "route",
        lambda i: (
            route[i],
            f"route={route[i]!r} but drug='saline' is an injected comparator "
            f"({', '.join(INJECTED_ROUTES)}); use drug='placebo' for an inert {route[i]} "
            "comparator",
        ),
    )
    yield (
        _eq(drug, "placebo") & _in(route, INJECTED_ROUTES),
        "route",
        lambda i: (
            route[i],
            f"route={route[i]!r} but an injected inert comparator is drug='saline', not 'placebo'",
        ),
    )


def _baseline_rules(v: Mapping[str, np.ndarray]) -> Iterator[tuple]:
    diagnosis, failed = v["diagnosis"], v["n_failed_treatments"]
    # Treatment-resistant depression: at least two failed adequate antidepressant trials
    # (CALIBRATION.md conventions; Cheng 2021).
    yield (
        _eq(diagnosis, "TRD") & _present(failed) & (np.nan_to_num(failed, nan=99) < 2),
        "n_failed_treatments",
        lambda i: (
            failed[i],
            f"n_failed_treatments={failed[i]:g} but diagnosis='TRD' means at least 2 failed "
            "adequate antidepressant trials",
        ),
    )


_RULES: tuple[tuple[tuple[str, ...], Rule], ...] = (
    (("drug", "route", "dose", "dose_unit"), _regimen_rules),
    (("diagnosis", "n_failed_treatments"), _baseline_rules),
)


def check_rules(values: Mapping[str, np.ndarray], rows: Sequence | None = None) -> list[Problem]:
    """Apply the contract's cross-column rules to columns given as arrays.

    Rules whose columns are absent are skipped. ``rows`` labels the problems (None for one
    record). Used by :func:`validate` and by :class:`ketapredict.Regimen`.
    """
    problems: list[Problem] = []
    for needed, rule in _RULES:
        if not all(name in values for name in needed):
            continue
        for mask, name, render in rule(values):
            for i in np.flatnonzero(mask):
                value, message = render(i)
                problems.append(Problem(name, value, message, None if rows is None else rows[i]))
    return problems


# --------------------------------------------------------------------------------------------
# Table validation
# --------------------------------------------------------------------------------------------
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


# Text that means "not known" in a number, yes/no or category field (pandas reads the same
# tokens from CSV files as missing). Identifiers and labels keep such text as it is.
_MISSING_TEXT = frozenset({"", "na", "nan", "n/a", "null", "none"})


def _is_missing(x: Any, text: bool = True) -> bool:
    """Whether ``x`` means "not known": None, NaN of any type, ``pd.NA``, ``NaT`` and, in a
    number, yes/no or category field, the missing-value text of CSV files."""
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    if isinstance(x, float | np.floating):
        return math.isnan(x)
    if isinstance(x, Decimal):
        return x.is_nan()
    if isinstance(x, np.datetime64 | np.timedelta64):
        return bool(np.isnat(x))
    return text and isinstance(x, str) and x.strip().casefold() in _MISSING_TEXT


def _number(x: Any) -> float | None:
    """``x`` as a float, or None when it is not a real number.

    Accepted: Python and numpy integers and floats, ``Decimal``, ``Fraction`` and text that
    reads as a number in ASCII digits (not ``"4_6"``, which Python reads as 46, nor other
    scripts' digits); not booleans
    (True is not 1 year), complex numbers, bytes, dates or containers. An integer too large
    for a float becomes an infinity of its sign, which is outside every range; NaN (from
    ``"-nan"``, say) means missing.
    """
    if isinstance(x, bool | np.bool_ | np.timedelta64):  # numpy's durations are integers
        return None
    if isinstance(x, int | np.integer | float | np.floating | Fraction | Decimal):
        try:
            return float(x)
        except OverflowError:  # 10**400, Fraction(10**400)
            return math.inf if x > 0 else -math.inf
        except ValueError:  # Decimal("sNaN")
            return math.nan
    if isinstance(x, str):
        # Python reads "4_6" as 46, and other scripts' digits ("٤٦", "４６") as numbers:
        # a typo or a pasted value, not a number a record means (spaces around are fine,
        # a no-break space included)
        text = x.strip()
        if "_" in text or not text.isascii():
            return None
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _infinite(value: Any) -> bool:
    """Whether a value read as an infinite float is infinite itself: integers, fractions
    and decimals are exact, and when they overflow a float they are too large, not
    infinite."""
    if isinstance(value, Decimal):
        return value.is_infinite()
    return not isinstance(value, int | np.integer | Fraction)


def _number_problem(col: Column, value: Any, number: float | None, name: str) -> str | None:
    """What is wrong with ``value`` (read as ``number``) in the number column ``name``."""
    if number is None:
        return f"{_shown(name, value)} is not a number; expected {col.allowed()}"
    if math.isinf(number) and _infinite(value):
        return f"{_shown(name, value)} is not finite; expected {col.allowed()}"
    if not col.low <= number <= col.high or (col.low_open and number == col.low):
        # "is outside 0-60 (MADRS total score)", "is not a whole number in 1-104 (count)"
        verb = "is not" if col.kind == "int" or col.low_open else "is outside"
        return f"{_shown(name, value)} {verb} {col.allowed()}"
    if col.kind == "int" and number != round(number):
        return f"{_shown(name, value)} is not {col.allowed()}"
    return None


def _shown(name: str, value: Any) -> str:
    """``name=value`` for a message, the value cut to a readable length."""
    return f"{name}={short_repr(value)}"


def _to_bool(x: Any) -> bool | None:
    """``x`` as a yes/no answer: booleans, 0 and 1 (of any number type), and yes/no text;
    None otherwise."""
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, str):
        text = x.strip().casefold()
        return (text in _TRUE) if text in _TRUE | _FALSE else None
    number = _number(x)
    return bool(number) if number in (0.0, 1.0) else None


def _to_category(col: Column) -> Callable[[Any], str | None]:
    """A function giving the canonical spelling of a category of ``col``, or None."""
    lookup = col._normaliser()
    return lambda x: lookup.get(x.strip().casefold()) if isinstance(x, str) else None


def _as_text(x: Any) -> str | None:
    """Identifiers and labels: text, or a whole number (CSV readers make ``7`` into ``7.0``)."""
    if isinstance(x, str):
        return x
    try:
        if isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_ | np.timedelta64):
            return str(int(x))
        if isinstance(x, float | np.floating) and math.isfinite(x) and x == round(x):
            return str(int(x))
    except ValueError:  # more digits than Python writes out (4,300)
        return None
    return None


def _value_problem(col: Column, value: Any, name: str | None = None) -> tuple[Any, str | None]:
    """One value of ``col`` in its contract type, or what is wrong with it.

    The one place a value is judged, for a table's cells and for one record's fields alike:
    returns ``(coerced, None)``, with None for a missing value, or ``(None, message)``.
    ``name`` is the column's own name (``madrs_d7`` of the family ``madrs_{visit}``).
    """
    name = name or col.name
    if _is_missing(value, text=col.kind != "string"):
        if col.required:
            return None, f"{name} is missing; it is required ({col.allowed()})"
        return None, None
    if col.kind in ("float", "int"):
        number = _number(value)
        if number is not None and math.isnan(number):
            return _value_problem(col, None, name)
        message = _number_problem(col, value, number, name)
        if message is not None:
            return None, message
        # + 0.0: a zero is 0, not -0 (which prints as "-0" in a report)
        return (round(number) if col.kind == "int" else number + 0.0), None
    if col.kind == "bool":
        answer = _to_bool(value)
        if answer is None:
            return None, f"{_shown(name, value)} is not {col.allowed()}"
        return answer, None
    if col.kind == "category":
        canonical = _to_category(col)(value)
        if canonical is None:
            # no guess at a unit: "mcg/kg" is not a typo of "mg/kg" but a 1000-fold dose
            near = "" if col.name == "dose_unit" else _near_category(value, col.categories)
            return None, f"{_shown(name, value)} is not {col.allowed()}{near}"
        return canonical, None
    text = _as_text(value)
    if text is None and col.role == "identifier":  # never echoed: it identifies a patient
        return None, f"{name} (a {type(value).__name__}) is not text or a whole number"
    if text is None:
        return None, f"{_shown(name, value)} is not text or a whole number"
    return text, None


_MARKERS = {type(None), type(pd.NA)}


def _check_each(
    values: np.ndarray, check: Callable[[Any], tuple[Any, str | None]]
) -> tuple[np.ndarray, np.ndarray]:
    """``check`` of each value, called once per distinct value (a column of 100,000
    patients holds a handful of categories): the coerced values and the problems (None
    where there is none), as two object arrays.

    Values are told apart by type as well as value, because ``True == 1 == 1.0``: a
    number column takes 1 but not True. A column of text alone (the usual case) is told
    apart at numpy speed; values that cannot be hashed (lists) are checked one by one.
    """
    kinds = set(map(type, values))
    if kinds - _MARKERS <= {str} or kinds - _MARKERS <= {bool, np.bool_}:
        codes, distinct = pd.factorize(values)  # missing markers: code -1
        results = [check(value) for value in distinct]
        gaps = np.flatnonzero(codes < 0)
        for marker in (None, pd.NA):  # each marker checked once
            rows = gaps[[value is marker for value in values[gaps]]]
            if len(rows):
                codes[rows] = len(results)
                results.append(check(marker))
    else:
        memo: dict[tuple[type, Any], int] = {}
        codes = np.empty(len(values), dtype=np.intp)
        results = []
        for i, value in enumerate(values):
            kind = type(value)
            # every NaN is its own object, unequal to the others: one key for them all
            # (and pd.NA == pd.NA is neither True nor False)
            missing = value is pd.NA or (kind is float and value != value)
            key = (kind, "missing") if missing else (kind, value)
            try:
                codes[i] = memo[key]
            except KeyError:
                codes[i] = memo[key] = len(results)
                results.append(check(value))
            except TypeError:  # unhashable
                codes[i] = len(results)
                results.append(check(value))
    coerced = np.empty(len(results), dtype=object)
    problems = np.empty(len(results), dtype=object)
    for j, (value, problem) in enumerate(results):
        coerced[j], problems[j] = value, problem
    return coerced[codes], problems[codes]


# The types of a column of plain numbers (``pd.DataFrame(records, dtype=object)``,
# ``astype(object)``), read at numpy speed; any other value sends the column value by value.
_PLAIN = frozenset(
    {float, int, type(None), type(pd.NA)}
    | {np.dtype(code).type for code in np.typecodes["AllInteger"] + "efd"}
)


def _plain_numbers(objects: np.ndarray) -> np.ndarray | None:
    """A column of plain numbers and None as floats (NaN for missing); None for any other."""
    if not set(map(type, objects)) <= _PLAIN:
        return None
    try:
        return np.array([np.nan if v is None or v is pd.NA else v for v in objects], dtype=float)
    except OverflowError:  # 10**400: judged value by value
        return None


def _coerce(series: pd.Series, col: Column) -> tuple[pd.Series, list[Problem]]:
    """Coerce one column to its contract dtype; report every cell that cannot be, or, for
    a number column all of whose values are text (a column mapped by mistake: notes,
    another identifier), that once, without echoing them."""
    out, problems = _coerce_cells(series, col)
    if (
        col.kind in ("float", "int")
        and len(problems) >= 3
        and all(
            isinstance(p.value, str) and p.value.strip() and _number(p.value) is None
            for p in problems
        )
        and not out.notna().any()
    ):
        first = problems[0].row
        where = "" if first is None else f" (the first: row {first})"
        return out, [
            Problem(
                series.name,
                None,
                f"{series.name}: none of its {len(problems):,} values is a number{where}; is "
                f"the right column given as {series.name}? ({col.allowed()})",
            )
        ]
    return out, problems


def _coerce_cells(series: pd.Series, col: Column) -> tuple[pd.Series, list[Problem]]:
    """Coerce one column to its contract dtype; report every cell that cannot be.

    Columns of numbers are checked at once with numpy; other columns value by value, with
    the same rules as one patient's fields (:func:`_value_problem`).
    """
    name = series.name
    problems: list[Problem] = []
    objects = series.to_numpy(dtype=object)

    def flag(mask: np.ndarray) -> None:
        for label, value in zip(series.index[mask], objects[mask], strict=True):
            problems.append(Problem(name, value, _value_problem(col, value, name)[1], label))

    dtype = series.dtype
    numeric = (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
    )
    values = None
    if col.kind in ("float", "int") and numeric:
        with np.errstate(over="ignore"):  # float128 beyond float64 becomes inf, refused below
            values = series.astype("float64").to_numpy()
    elif col.kind in ("float", "int"):
        values = _plain_numbers(objects)
    if values is not None:
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(values) & (
                np.isinf(values)
                | (values < col.low)
                | ((values == col.low) if col.low_open else False)
                | (values > col.high)
                | ((values != np.round(values)) if col.kind == "int" else False)
            )
        missing = np.isnan(values)
        flag(bad | (missing & col.required))
        out = pd.Series(values, index=series.index, name=name)
        if col.kind == "int" and not problems:
            out = out.astype("Int64")
        return out, problems
    coerced, messages = _check_each(objects, lambda value: _value_problem(col, value, name))
    flag(messages != None)  # noqa: E711 (elementwise, on an object array)
    if col.kind in ("float", "int"):
        out = pd.Series(coerced, index=series.index, name=name, dtype=object)
        out = out.astype("float64")
        if col.kind == "int" and not problems:
            out = out.astype("Int64")
    else:
        out = pd.Series(coerced, index=series.index, name=name, dtype=object)
        if col.kind == "bool":
            out = out.astype("boolean") if not problems else out
        elif col.kind == "category":
            out = out.astype(pd.CategoricalDtype(list(col.categories)))
        else:
            out = out.astype("str")
    return out, problems


# An integer index is taken for row numbers only below this: a longer number may be a
# record number.
_MAX_ROW_NUMBER = 100_000


def _row_numbers(index: pd.Index) -> bool:
    """Whether an index holds row numbers (safe to print), not labels of patients."""
    if isinstance(index, pd.RangeIndex):
        return True
    if isinstance(index, pd.MultiIndex) or not pd.api.types.is_integer_dtype(index.dtype):
        return False
    return len(index) == 0 or (index.min() >= 0 and index.max() < _MAX_ROW_NUMBER)


def _required_names(required: Any, what: str) -> set[str]:
    """``validate(required=...)`` checked: an iterable of contract column names (a name the
    contract lacks would have turned the check of that column off without a word)."""
    if isinstance(required, str | bytes) or not isinstance(required, Iterable):
        raise ValidationError(
            [
                Problem(
                    "required",
                    None,
                    "required must be a list of column names (or None for all the contract "
                    f"requires); got {short_repr(required)}",
                )
            ],
            what,
        )
    names = list(required)
    unknown = [
        Problem(
            "required",
            None,
            f"required names {short_repr(name)}, which is not a column of the data contract"
            + (_did_you_mean(name, _BY_NAME) if isinstance(name, str) else ""),
        )
        for name in names
        if not (isinstance(name, str) and _known(name))
    ]
    if unknown:
        raise ValidationError(unknown, what)
    return set(names)


def validate(
    df: pd.DataFrame,
    *,
    what: str = "patient table",
    required: Iterable[str] | None = None,
    row_labels: bool | None = None,
) -> pd.DataFrame:
    """Check a patient table against the data contract and return a coerced copy.

    Numbers, booleans and categories are coerced to the contract's dtypes; category spelling
    is case-normalised (``"iv"``, ``"IV"`` and ``" Iv "`` all become ``"iv"``). Nothing else
    changes: no row or column is dropped, no value is clipped or filled.

    Parameters
    ----------
    df : DataFrame
        One row per patient treatment course.
    what : str, default="patient table"
        How the table is named in error messages.
    required : iterable of str, optional
        Which of the columns the contract requires the table must have; by default all of
        them (a model checks only those its feature set reads). A name the contract does
        not have is refused.
    row_labels : bool, optional
        Whether messages name a bad row by its index label (True) or by its position
        (False). By default, by label only when the index holds row numbers (whole numbers
        from 0 to under 100,000, unnamed or not named as an identifier): a text label or a
        longer number may be a patient's name or record number, and messages are often
        logged. An index that holds the table's identifiers is named by position whatever
        is asked.

    Returns
    -------
    DataFrame
        A new frame with the same index and columns, in contract dtypes.

    Raises
    ------
    ValidationError
        Listing every problem at once: missing required columns, unknown columns, and each
        bad cell with its row, column, value and what is allowed.

    Examples
    --------
    >>> import pandas as pd
    >>> import ketapredict
    >>> table = pd.DataFrame({
    ...     "age": [41, 52], "sex": ["F", "male"], "diagnosis": ["trd", "MDD"],
    ...     "madrs_baseline": [34, 75], "drug": "ketamine", "route": "IV", "dose": 0.5,
    ...     "dose_unit": "mg/kg", "infusion_minutes": 40, "sessions_per_week": 2,
    ...     "n_sessions": 8})
    >>> ketapredict.validate(table)
    Traceback (most recent call last):
    ...
    ketapredict.exceptions.ValidationError: 2 problems in the patient table:
      row 0: sex='F' is not one of 'female', 'male'
      row 1: madrs_baseline=75 is outside 0-60 (MADRS total score)
    >>> table.loc[0, "sex"], table.loc[1, "madrs_baseline"] = "female", 35
    >>> ketapredict.validate(table)[["sex", "diagnosis", "route"]]
          sex diagnosis route
    0  female       TRD    iv
    1    male       MDD    iv
    """
    if not isinstance(df, pd.DataFrame):
        raise ValidationError(
            [
                Problem(
                    "df",
                    None,
                    f"validate expects a pandas DataFrame; got {type(df).__name__} (one "
                    "record: pd.DataFrame([record]))",
                )
            ],
            what,
        )
    _refuse_nested_columns(df, what)
    if (problem := flag_problem("row_labels", row_labels, none=True)) is not None:
        raise ValidationError([problem], "arguments")
    index = df.index  # the table comes back with its own labels
    df, what = rows_for_messages(df, what, row_labels)
    problems: list[Problem] = []
    duplicated = df.columns[df.columns.duplicated()].unique()
    for name in duplicated:
        count = int((df.columns.get_indexer_for([name]) >= 0).sum())
        problems.append(
            Problem(
                name,
                None,
                f"column {short_repr(name)} appears {count} times; give each column once",
            )
        )
    for name in df.columns:
        if not _known(name):
            problems.append(
                Problem(
                    name,
                    None,
                    f"unknown column {short_repr(name)}{_did_you_mean(name, _BY_NAME)}; the "
                    "data contract does not declare it",
                )
            )
    needed = None if required is None else _required_names(required, what)
    for name, col in _BY_NAME.items():
        if col.required and name not in df.columns and (needed is None or name in needed):
            problems.append(
                Problem(name, None, f"required column {name!r} is missing ({col.description})")
            )
    if len(duplicated):
        raise ValidationError(problems, what)

    out = {}
    for name in df.columns:
        if _known(name):
            out[name], found = _coerce(df[name], column(name))
            problems.extend(found)
        else:
            out[name] = df[name]
    arrays = {
        name: (
            s.to_numpy(dtype=float, na_value=np.nan)
            if column(name).kind in ("float", "int")
            else s.to_numpy(dtype=object)
        )
        for name, s in out.items()
        if _known(name) and column(name).kind in ("float", "int", "category")
    }
    problems.extend(check_rules(arrays, rows=df.index))
    if problems:
        if "patient_id" in df.columns:
            problems = identifiers_masked(problems, df["patient_id"])
        raise ValidationError(problems, what)
    return pd.DataFrame(out).set_axis(index, axis=0)


def identifiers_masked(
    problems: list[Problem], ids: pd.Series, whose: str = "this table"
) -> list[Problem]:
    """The problems, a value that is one of the table's (or record's) own patient
    identifiers (a row shifted by a cell put 'PATIENT-SMITH-JOHN-1970-003' in age) not
    shown: it names the identifier's column instead. Identifiers that read as numbers are
    left, as a number in a number field is the field's own value."""
    known = {str(v).strip() for v in ids.dropna().astype(str)} - {""}
    known = {v for v in known if _number(v) is None}
    if not known:
        return problems
    masked = []
    for problem in problems:
        value = problem.value
        if problem.column != "patient_id" and isinstance(value, str) and value.strip() in known:
            message = problem.message.replace(short_repr(value), f"<a patient_id of {whose}>")
            problem = Problem(problem.column, None, message, problem.row)
        masked.append(problem)
    return masked


def repeated_courses(table: pd.DataFrame, rows: Sequence) -> list[Problem]:
    """A problem for each row that repeats an earlier one exactly, its patient identified:
    the same course given twice (a table file pasted into itself) would count twice in
    training and validation. Rows without a ``patient_id`` may be two patients alike. Asked
    of a table file (:func:`ketapredict.io.read_patient_table`), not by
    :func:`validate`, whose tables may repeat a course on purpose (a patient's draws of the
    fields not recorded)."""
    if "patient_id" not in table.columns:
        return []
    try:
        again = table.duplicated(keep="first").to_numpy() & table["patient_id"].notna().to_numpy()
    except TypeError:  # a cell that cannot be compared: its column's check says so
        return []
    return [
        Problem(
            None,
            None,
            "repeats an earlier row exactly (the same patient's course given twice); give "
            "each course once",
            rows[i],
        )
        for i in np.flatnonzero(again)
    ]


# --------------------------------------------------------------------------------------------
# One patient: a pydantic model generated from the same declaration.
# --------------------------------------------------------------------------------------------
def _scalar_check(col: Column) -> Callable[[Any], Any]:
    """A pydantic before-validator applying the contract to one value of ``col``."""

    def check(value: Any) -> Any:
        coerced, message = _value_problem(col, value)
        if message is not None:
            raise PydanticCustomError("contract", message)
        return coerced

    return check


def _field(col: Column) -> tuple[Any, Any]:
    python_type: Any = {"float": float, "int": int, "bool": bool, "string": str}.get(col.kind)
    if col.kind == "category":
        python_type = Literal[col.categories]
    annotated = Annotated[python_type | None, pydantic.BeforeValidator(_scalar_check(col))]
    extra = {"unit": col.unit} if col.unit else {}
    field = pydantic.Field(
        default=... if col.required else None,
        description=col.description + (f" [{col.unit}]" if col.unit else ""),
        ge=col.low if col.kind in ("float", "int") and not col.low_open else None,
        gt=col.low if col.kind in ("float", "int") and col.low_open else None,
        le=col.high if col.kind in ("float", "int") else None,
        json_schema_extra=extra or None,
    )
    return annotated, field


class _Record(pydantic.BaseModel):
    """A record of contract fields whose constructor speaks the contract's language.

    Built directly (``Patient(age="x")``), a record raises :class:`ValidationError` naming
    each bad field, as :func:`validate_record` does, never pydantic's own error (whose
    message links to pydantic's site, not to the contract), and applies the contract's
    cross-column rules too. (``model_validate`` calls this constructor and wraps its error
    in pydantic's: use the constructor or :func:`validate_record`.)
    """

    # pydantic's own error quotes the whole input, identifier included (model_validate)
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    def __init__(self, /, **data: Any) -> None:
        what = type(self).__name__.removesuffix("Record").lower()
        try:
            super().__init__(**data)
        except pydantic.ValidationError as error:
            problems = [_problem(e, type(self)) for e in error.errors()]
            if isinstance(data.get("patient_id"), str):
                problems = identifiers_masked(
                    problems, pd.Series([data["patient_id"]]), "this record"
                )
            raise ValidationError(problems, what) from None
        _check_rules_of(self.model_dump(), what)

    def __repr_args__(self):
        # an identifier is never printed: a notebook cell, a log line or an f-string showing
        # the record would carry it off
        for name, value in super().__repr_args__():
            hidden = value is not None and name in _IDENTIFIERS
            yield name, _HIDDEN if hidden else value


class _Hidden:
    def __repr__(self) -> str:
        return "<hidden>"


_HIDDEN = _Hidden()
_IDENTIFIERS = frozenset(c.name for c in _CONTRACT if c.role == "identifier")


def record_model(name: str, fields: Sequence[str], doc: str) -> type[pydantic.BaseModel]:
    """A frozen pydantic model with one field per contract column in ``fields``."""
    return pydantic.create_model(
        name,
        __base__=_Record,
        __doc__=doc,
        **{f: _field(column(f)) for f in fields},
    )


def _check_rules_of(fields: Mapping[str, Any], what: str) -> None:
    """Raise :class:`ValidationError` if one record breaks the contract's cross-column
    rules."""
    arrays = {
        k: np.array([np.nan if v is None else v], dtype=float)
        if column(k).kind in ("float", "int")
        else np.array([v], dtype=object)
        for k, v in fields.items()
    }
    problems = check_rules(arrays)
    if problems:
        raise ValidationError(problems, what)


def validate_record(model: type[pydantic.BaseModel], record: Any, what: str) -> dict[str, Any]:
    """Validate one record with ``model`` and the contract's cross-column rules.

    Raises :class:`ValidationError` listing every problem; returns the coerced fields.
    """
    record = record_items(record, what)
    problems = [
        Problem(
            short_repr(k),
            record[k],
            f"field name {short_repr(k)} is not text; expected one of "
            f"{', '.join(model.model_fields)}",
        )
        for k in record
        if not isinstance(k, str)
    ]
    try:
        fields = model(**{k: v for k, v in record.items() if isinstance(k, str)}).model_dump()
    except ValidationError as error:
        problems += error.problems
    if problems:  # named after what was checked, not after the model (the record's own
        # identifier already masked by its constructor)
        raise ValidationError(problems, what)
    return fields


def courses_table_problems(data: Any, name: str = "data") -> list[Problem]:
    """The problem of an argument that should be a table of patient courses and is not.

    Examples
    --------
    >>> from ketapredict.schema import courses_table_problems
    >>> courses_table_problems([{"age": 40}])[0].message
    'data must be a DataFrame of patient courses; got list'
    """
    if isinstance(data, pd.DataFrame):
        return []
    return [
        Problem(
            name, None, f"{name} must be a DataFrame of patient courses; got {type(data).__name__}"
        )
    ]


def record_items(
    record: Any, what: str, expected: str = "a mapping of field to value"
) -> dict[Any, Any]:
    """One record (a mapping, a pandas Series or a :class:`Patient`) as a dict, each field
    given once.

    A Series may hold a field twice (``pd.Series([46, 80], index=["age", "age"])``, a row
    of a table with a repeated column); a dict would keep the last value without a word,
    so the record is refused, as :func:`validate` refuses a repeated column.

    Raises
    ------
    ValidationError
        If ``record`` is not a mapping or a Series, or a field is given twice; ``expected``
        says what was expected in the first case.
    """
    if isinstance(record, pd.Series):
        repeated: dict[Any, list[Any]] = {}
        if record.index.has_duplicates:
            again = record.index.duplicated(keep=False)
            values = record.to_numpy(dtype=object)[again]
            for label, value in zip(record.index[again], values, strict=True):
                repeated.setdefault(label, []).append(value)
        if repeated:
            raise ValidationError(
                [
                    Problem(
                        label,
                        values,
                        f"field {short_repr(label)} is given {len(values)} times "
                        f"({', '.join(short_repr(v, 20) for v in values[:5])}); give each "
                        "field once",
                    )
                    for label, values in repeated.items()
                ],
                what,
            )
        return record.to_dict()
    if isinstance(record, Mapping):
        return dict(record)
    if isinstance(record, pydantic.BaseModel):  # a Patient, already checked
        return {k: v for k, v in record.model_dump().items() if v is not None}
    raise ValidationError(
        [Problem(None, record, f"a {what} must be {expected}; got {type(record).__name__}")],
        what,
    )


# every field a record can give: the contract's columns (a family's by its template, so a
# visit's slip is not matched to a template)
_FIELD_NAMES = tuple(c.name for c in _CONTRACT if "{" not in c.name)


def _near_category(value: Any, categories: Sequence[str]) -> str:
    """`` (did you mean 'ketamine'?)`` for a misspelt category, in any case, or nothing."""
    if not isinstance(value, str):
        return ""
    by_case = {c.lower(): c for c in categories}
    close = difflib.get_close_matches(value.strip().lower()[:100], list(by_case), n=1)
    return f" (did you mean {by_case[close[0]]!r}?)" if close else ""


def _did_you_mean(name: Any, known: Iterable[str]) -> str:
    """`` (did you mean 'age'?)`` for a misspelt field name, or nothing."""
    if not isinstance(name, str) or len(name) > 100:  # no field name is that long
        return ""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


Patient = record_model(
    "Patient",
    [c.name for c in _CONTRACT if c.role in ("identifier", "baseline")],
    """One patient's baseline record, generated from the data contract.

    Fields are the contract's identifier and baseline columns; each carries its unit and
    range in ``Patient.model_json_schema()`` (for EHR integrations). A bad record raises
    :class:`ketapredict.ValidationError` naming every bad field, as :func:`validate_patient`
    does.

    Examples
    --------
    >>> from ketapredict import Patient
    >>> patient = Patient(age=52, sex="Male", diagnosis="trd", madrs_baseline=36)
    >>> patient.diagnosis, patient.bmi
    ('TRD', None)
    >>> Patient.model_json_schema()["properties"]["madrs_baseline"]["description"]
    'MADRS at baseline [MADRS total score]'
    >>> Patient(age="fifty", sex="male", diagnosis="MDD", madrs_baseline=36)
    Traceback (most recent call last):
    ...
    ketapredict.exceptions.ValidationError: 1 problem in the patient:
      age='fifty' is not a number; expected 12-100 (years)
    """,
)


def validate_patient(record: Mapping[str, Any] | pd.Series) -> dict[str, Any]:
    """Check one patient's baseline record against the data contract.

    Parameters
    ----------
    record : mapping or Series
        Baseline fields (and optionally ``patient_id``). Missing optional fields, None and NaN
        all mean "not known".

    Returns
    -------
    dict
        The coerced record with every baseline field, unknown ones as None.

    Raises
    ------
    ValidationError
        Naming each bad field, its value and what is allowed, and each unknown field.

    Examples
    --------
    >>> from ketapredict import validate_patient
    >>> validate_patient({"age": 45, "sex": "Female", "diagnosis": "trd",
    ...                   "madrs_baseline": 33})["diagnosis"]
    'TRD'
    >>> validate_patient({"age": 45, "sex": "female", "diagnosis": "TRD",
    ...                   "madrs_baseline": 75})
    Traceback (most recent call last):
    ...
    ketapredict.exceptions.ValidationError: 1 problem in the patient:
      madrs_baseline=75 is outside 0-60 (MADRS total score)
    """
    return validate_record(Patient, record, "patient")


def _problem(error: Mapping[str, Any], model: type[pydantic.BaseModel]) -> Problem:
    key = error["loc"][0] if error["loc"] else None
    name = key if key is None or isinstance(key, str) else short_repr(key)
    value = error.get("input")
    if error["type"] == "contract":
        return Problem(name, value, error["msg"])
    if error["type"] == "missing":
        return Problem(name, None, f"{name} is missing; it is required ({column(name).allowed()})")
    if error["type"] == "extra_forbidden":
        return Problem(
            name,
            value,
            # the other columns too: a record may give its schedule (``n_session``)
            f"unknown field {short_repr(name)}{_did_you_mean(name, _FIELD_NAMES)}; "
            f"expected one of {', '.join(model.model_fields)}",
        )
    if name is None:
        return Problem(None, value, error["msg"])
    return Problem(name, value, f"{name}={short_repr(value)}: {error['msg']}")


def whole_number_problem(
    name: str, value: Any, low: int, high: int, *, none: bool = False, meaning: str = ""
) -> Problem | None:
    """The problem with an argument that must be a whole number from ``low`` to ``high``
    (None too, with ``none``), or None: the one wording of every count and seed an
    argument takes (a boolean is no number; numpy's integers are).

    Examples
    --------
    >>> print(whole_number_problem("seed", -1, 0, 2**32 - 1).message)
    seed=-1 is not a whole number from 0 to 4,294,967,295
    >>> whole_number_problem("seed", np.int64(3), 0, 10) is None
    True
    """
    if none and value is None:
        return None
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, int | np.integer)
        or not low <= value <= high
    ):
        return Problem(
            name,
            None,
            f"{name}={short_repr(value)} is not a whole number from {low:,} to {high:,}"
            + (" (or None)" if none else "")
            + (f" ({meaning})" if meaning else ""),
        )
    return None


def flag_problem(
    name: str, value: Any, *, also: tuple[str, ...] = (), none: bool = False
) -> Problem | None:
    """The problem with an argument that must be True or False (or one of the words in
    ``also``; None too, with ``none``), or None: the one wording of every flag an argument
    takes. A text such as "no" is refused, not read as true, and numpy's booleans are
    booleans.

    Examples
    --------
    >>> print(flag_problem("validated", "no").message)
    validated='no' is not True or False
    >>> print(flag_problem("drivers", 1, also=("all",)).message)
    drivers=1 is not True, False or 'all'
    >>> flag_problem("peers", np.True_) is None
    True
    """
    if (
        isinstance(value, bool | np.bool_)
        or (isinstance(value, str) and value in also)
        or (none and value is None)
    ):
        return None
    allowed = ["True", "False", *map(repr, also), *(["None"] if none else [])]
    return Problem(
        name, None, f"{name}={short_repr(value)} is not {', '.join(allowed[:-1])} or {allowed[-1]}"
    )


def outcome_names(outcomes: Any) -> list[str]:
    """``outcomes`` as a list of names: one name, or an iterable of them (ValidationError
    for anything else: None or a number gave a bare TypeError)."""
    if isinstance(outcomes, str):  # one outcome, not its letters
        return [outcomes]
    if isinstance(outcomes, Iterable) and not isinstance(outcomes, bytes | Mapping):
        names = list(outcomes)
        if all(isinstance(name, str) for name in names):
            return names
    raise ValidationError(
        [
            Problem(
                "outcomes",
                None,
                f"outcomes must be an outcome's name or a list of them (such as "
                f"{list(OUTCOMES)}); got {short_repr(outcomes)}",
            )
        ],
        "arguments",
    )


def check_outcome(
    y: Any, name: str = "outcome", *, min_per_class: int = 1, return_classes: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Check a binary outcome and return it as a 0/1 integer array.

    Parameters
    ----------
    y : array-like
        Booleans or 0/1 (also a nullable pandas column), or any two labels (the larger is
        the event, as in scikit-learn).
    name : str, default="outcome"
        How the outcome is named in the error.
    min_per_class : int, default=1
        The fewest events (and non-events) the caller can work with.
    return_classes : bool, default=False
        Also return the two labels, non-event first.

    Returns
    -------
    codes : ndarray of int
        1 for the event, 0 otherwise.
    classes : ndarray
        Only with ``return_classes=True``.

    Raises
    ------
    ValidationError
        If values are missing, the outcome is continuous or has more than two classes, or a
        class has fewer than ``min_per_class`` members; the message gives the counts.

    Examples
    --------
    >>> from ketapredict.schema import check_outcome
    >>> check_outcome([True, False, True], "response")
    array([1, 0, 1])
    >>> check_outcome([0, 0, 1], "cognitive_decline", min_per_class=2)
    Traceback (most recent call last):
    ...
    ketapredict.exceptions.ValidationError: 1 problem in the outcome:
      cognitive_decline has 1 event and 2 non-events (class counts); at least 2 of each are needed
    """
    if (problem := flag_problem("return_classes", return_classes)) is not None:
        raise ValidationError([problem], "arguments")
    try:
        shape = np.shape(y)
    except ValueError:  # rows of different lengths
        shape = ()
    if isinstance(y, str | bytes | Mapping) or not (
        len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)  # a column: as scikit-learn
    ):
        # a scalar was read as one row ("response is missing in 1 of 1 rows")
        raise ValidationError(
            [
                Problem(
                    name,
                    None,
                    f"{name} must be one value per row (a list, array or Series); got "
                    f"{short_repr(y)}",
                )
            ],
            "outcome",
        )
    values = pd.Series(np.asarray(y, dtype=object).ravel())
    missing = values.map(_is_missing).to_numpy(dtype=bool)
    if missing.any():
        raise ValidationError(
            [
                Problem(
                    name,
                    None,
                    f"{name} is missing in {missing.sum()} of "
                    f"{len(values)} rows; drop those rows first",
                )
            ],
            "outcome",
        )
    labels = np.asarray(values.tolist())  # numpy infers bool, int, float or str
    if labels.dtype.kind not in "biufU":
        # complex numbers, bytes, dates or other objects: no label a model file can hold
        raise ValidationError(
            [
                Problem(
                    name,
                    None,
                    f"{name} must hold booleans, numbers or text; got values of type "
                    f"{type(labels.flat[0]).__name__ if labels.size else labels.dtype}",
                )
            ],
            "outcome",
        )
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        # an infinite label gave scikit-learn's bare ValueError
        infinite = int((~np.isfinite(labels)).sum())
        raise ValidationError(
            [Problem(name, None, f"{name} is infinite in {infinite:,} of {len(labels):,} rows")],
            "outcome",
        )
    kind = _target_kind(labels)
    if kind != "binary" and labels.dtype != bool:
        if kind.startswith("continuous"):
            message = f"Unknown label type: {kind}; {name} must be binary, not continuous"
        else:
            message = (
                f"Only binary classification is supported. The type of {name} is "
                f"{kind}: {len(np.unique(labels))} classes"
            )
        raise ValidationError([Problem(name, None, message)], "outcome")
    classes = np.unique(labels)
    if labels.dtype == bool or set(classes.tolist()) <= {0, 1}:
        classes = np.array([False, True]) if labels.dtype == bool else np.array([0, 1])
    codes = (labels == classes[-1]).astype(int)
    events, non_events = int(codes.sum()), int(len(codes) - codes.sum())
    needed = max(min_per_class, 1)
    if min(events, non_events) < needed:
        only = (
            " (no values)"
            if not len(codes)
            else " (only one class)"
            if min(events, non_events) == 0
            else " (class counts)"
        )
        raise ValidationError(
            [
                Problem(
                    name,
                    None,
                    f"{name} has {events:,} event{'s' if events != 1 else ''} and "
                    f"{non_events:,} non-event{'s' if non_events != 1 else ''}{only}; at least "
                    f"{needed:,} of each are needed",
                )
            ],
            "outcome",
        )
    return (codes, classes) if return_classes else codes


def _target_kind(labels: np.ndarray) -> str:
    """ "binary", "multiclass" or "continuous", as scikit-learn's ``type_of_target`` names
    a one-dimensional target of finite numbers or text, without importing scikit-learn
    (outcomes are checked on the clinician path too: ``RiskModel.recalibrate``); two
    labels are binary however large (``type_of_target`` called 1e20 continuous)."""
    if labels.dtype.kind == "f" and (labels != np.floor(labels)).any():
        return "continuous"
    return "binary" if len(np.unique(labels)) <= 2 else "multiclass"


def table_digest(frame: pd.DataFrame) -> str:
    """A short sha256 of a patient table's content without its identifiers.

    It names a dataset in MLflow and in a model's provenance without storing a row: equal
    tables give equal digests, and nothing can be read back from one.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"patient_id": ["p1"], "age": [40.0]})
    >>> b = pd.DataFrame({"patient_id": ["p9"], "age": [40.0]})
    >>> table_digest(a) == table_digest(b), len(table_digest(a))
    (True, 16)
    """
    import hashlib

    kept = frame.drop(columns=columns("identifier", frame=frame))
    hashed = pd.util.hash_pandas_object(kept.astype(str), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def example_course() -> dict[str, Any]:
    """An invented patient and dose schedule, for examples and model signatures.

    Not a real patient: every value is made up to sit inside the contract's ranges.

    Examples
    --------
    >>> example_course()["diagnosis"]
    'TRD'
    """
    return {
        "age": 46.0,
        "sex": "female",
        "bmi": 29.5,
        "weight_kg": 80.0,
        "diagnosis": "TRD",
        "n_failed_treatments": 3,
        "episode_months": 26.0,
        "anxious_distress": True,
        "prior_suicide_attempt": False,
        "family_history_aud": True,
        "madrs_baseline": 34.0,
        "hamd17_baseline": 25.0,
        "ssi_baseline": 6.0,
        "processing_speed_z": -0.9,
        "working_memory_z": -0.6,
        "verbal_memory_z": -0.4,
        "drug": "ketamine",
        "route": "iv",
        "dose": 0.5,
        "dose_unit": "mg/kg",
        "infusion_minutes": 40.0,
        "sessions_per_week": 2.0,
        "n_sessions": 8,
        "new_oral_antidepressant": False,
        "endpoint_day": 25.5,
    }

"""Dose schedules and the exposure they produce.

A :class:`Regimen` is what a clinician prescribes: drug, route, dose, infusion time and how
often, for how long. :func:`exposure` turns regimens (one, or a whole table of them) into the
quantities that drive effect and harm:

- systemic dose: the dose in mg/kg times the route's bioavailability;
- racemic-IV-equivalent dose: the systemic dose times the enantiomer's NMDA potency relative
  to racemic ketamine (0 for comparators);
- peak-exposure proxy: the equivalent dose over the time it enters the blood (the infusion
  time for IV, the time to peak for other routes), in mg/kg per hour;
- weekly and cumulative exposure, and the course length.

These are published point values: the feature encoders use them as they are. The virtual
cohort starts from them too, but each simulated patient's true exposure varies around them
(bioavailability, potency and clearance differ between patients), so a model reading these
features does not read the simulator's own pharmacology (``cohort/model.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import Problem, ValidationError, short_repr
from .schema import (
    COMPARATORS,
    KETAMINES,
    _did_you_mean,
    _is_missing,
    _value_problem,
    column,
    near_misses,
    record_items,
    record_model,
    validate_record,
)

__all__ = [
    "BIOAVAILABILITY",
    "EXPOSURE_COLUMNS",
    "POTENCY",
    "REFERENCE_WEIGHT_KG",
    "Regimen",
    "drug_route",
    "drug_routes",
    "exposure",
    "schedule_kind",
    "schedule_kinds",
    "schedules_in_words",
    "unknown_fields",
]

# Fraction of a dose reaching the systemic circulation, by route.
BIOAVAILABILITY = {
    "iv": 1.00,  # by definition
    "im": 0.93,  # Clements 1982 (J Pharm Sci 71:539); seed review 002 (B6)
    # Esketamine nasal spray 48% (Spravato prescribing information, 2019); racemic ~45%
    # (Yanagihara 2003); "45-50%" in seed review 002 (B6).
    "intranasal": 0.48,
    "sublingual": 0.28,  # ~30% (Yanagihara 2003); "25-30%" in seed review 002 (B6)
    "oral": 0.17,  # 17% (Clements 1982); "15-20%" in seed review 002 (B6)
    # No subcutaneous figure in these sources. Assumed equal to IM: both are parenteral
    # depots, and Loo 2016 gave SC and IM ketamine at the IV mg/kg doses.
    "sc": 0.93,
}

# NMDA-receptor potency relative to racemic ketamine. S-ketamine has ~4x the affinity of
# R-ketamine, and esketamine at half the racemic dose gives the same effect (seed review 002,
# its refs 17-18; CALIBRATION.md B5): esketamine 2.0, so arketamine 2.0 / 4 = 0.5.
# Comparators have no NMDA action.
POTENCY = {
    "ketamine": 1.0,
    "esketamine": 2.0,
    "arketamine": 0.5,
    "saline": 0.0,
    "midazolam": 0.0,
    "placebo": 0.0,
}

# Minutes over which a non-IV dose enters the blood, for the peak-exposure proxy (IV uses the
# infusion time). Intranasal: time to peak 20-40 min (Spravato prescribing information,
# 2019). The others are assumptions that keep the ordering of the seed review (B6): an IM
# depot is absorbed fastest, oral slowest (first-pass metabolism). The proxy only needs this
# ordering, not exact times.
ABSORPTION_MINUTES = {"im": 15.0, "sc": 30.0, "intranasal": 30.0, "sublingual": 45.0, "oral": 60.0}

# Fixed doses in mg are converted with the patient's weight; without one, with the weight of
# the adults fixed doses were studied in ("about 75-80 kg", CALIBRATION.md conventions).
REFERENCE_WEIGHT_KG = 77.5

# The smallest dose a session gave in the trials the virtual cohort models, as racemic-IV-
# equivalent mg/kg: sublingual ketamine 10 mg (Lara 2013) at the reference weight, about
# 0.036. Below half of it, a dose is beyond anything studied, and likelier a unit mixed up
# (0.5 mg for 0.5 mg/kg) than a plan: reports say so.
LOWEST_STUDIED_MG_PER_KG = 10 / REFERENCE_WEIGHT_KG * BIOAVAILABILITY["sublingual"]

EXPOSURE_COLUMNS = (
    "dose_mg_per_kg",
    "systemic_dose_mg_per_kg",
    "racemic_iv_equivalent_mg_per_kg",
    "peak_exposure_mg_per_kg_per_h",
    "weekly_exposure_mg_per_kg",
    "cumulative_exposure_mg_per_kg",
    "course_weeks",
    "endpoint_day",
    "sessions_by_endpoint",
    "days_after_last_session",
    "active_drug",
    "comparator",
)

# The contract's regimen columns a Regimen holds (endpoint_day is derived from them).
REGIMEN_FIELDS = (
    "drug",
    "route",
    "dose",
    "dose_unit",
    "infusion_minutes",
    "sessions_per_week",
    "n_sessions",
    "new_oral_antidepressant",
)
_RegimenRecord = record_model("RegimenRecord", REGIMEN_FIELDS, "The fields of a Regimen.")


# What a regimen field left out means: for a Regimen, a patient record's fields, a table's
# columns and exposure() alike.
REGIMEN_DEFAULTS = {
    "dose_unit": "mg/kg",
    "sessions_per_week": 1.0,
    "n_sessions": 1,
    "new_oral_antidepressant": False,
}


def default_endpoint_day(n_sessions: Any, sessions_per_week: Any) -> Any:
    """The assessment day a schedule implies without one given: 24 h after its last
    session (sessions on days 0, 7 / ``sessions_per_week``, ...); numbers or arrays."""
    return (n_sessions - 1.0) * (7.0 / sessions_per_week) + 1.0


def unknown_fields(
    fields: Mapping[str, Any], known: Sequence[str] = REGIMEN_FIELDS, where: str = ""
) -> list[Problem]:
    """A problem for each of ``fields`` a regimen does not have (``where``: in which
    object, for a message), naming the nearest field and every field there is.

    Examples
    --------
    >>> from ketapredict.regimen import unknown_fields
    >>> [p.message[:62] for p in unknown_fields({"drug": "ketamine", "n_session": 3})]
    ["unknown regimen field 'n_session' (did you mean 'n_sessions'?)"]
    """
    return [
        Problem(
            name,
            None,
            f"unknown regimen field {short_repr(name)}{where}{_did_you_mean(name, known)}; "
            f"expected one of {', '.join(known)}",
        )
        for name in fields
        if name not in known
    ]


@dataclass(frozen=True, kw_only=True)
class Regimen:
    """A ketamine (or comparator) dose schedule.

    Parameters
    ----------
    drug : {"ketamine", "esketamine", "arketamine", "saline", "midazolam", "placebo"}
        ``"ketamine"`` is racemic ketamine. Saline and placebo are inert comparators (dose 0):
        saline is injected, placebo is given by a non-injected route.
    route : {"iv", "intranasal", "im", "sc", "oral", "sublingual"}
    dose : float
        Dose per session, in ``dose_unit``.
    dose_unit : {"mg/kg", "mg"}, default="mg/kg"
        Fixed doses (mg) are converted with the patient's weight.
    infusion_minutes : float, optional
        Required for IV, not allowed for other routes.
    sessions_per_week : float, default=1
        Dosing frequency; sessions are evenly spaced.
    n_sessions : int, default=1
        Sessions in the course.
    new_oral_antidepressant : bool, default=False
        Whether an oral antidepressant is started with the course.

    Raises
    ------
    ValidationError
        For an impossible regimen, naming every field at fault, and for a field a regimen
        lacks (``n_session=3``) or one given by position.

    See Also
    --------
    exposure : the derived exposure quantities for a table of regimens.

    Examples
    --------
    >>> from ketapredict import Regimen
    >>> twice_weekly = Regimen(drug="ketamine", route="iv", dose=0.5, dose_unit="mg/kg",
    ...                        infusion_minutes=40, sessions_per_week=2, n_sessions=8)
    >>> twice_weekly.peak_exposure()
    0.75
    >>> twice_weekly.cumulative_exposure()
    4.0
    >>> spray = Regimen(drug="esketamine", route="intranasal", dose=84, dose_unit="mg",
    ...                 sessions_per_week=2, n_sessions=8)
    >>> round(spray.racemic_iv_equivalent(weight_kg=84), 2)
    0.96
    >>> print(spray)
    esketamine 84 mg intranasal, 2/week x 8
    """

    # required: None as their default so that one left out is a ValidationError naming it,
    # with every other fault of the regimen, rather than Python's TypeError
    drug: str = None  # type: ignore[assignment]
    route: str = None  # type: ignore[assignment]
    dose: float = None  # type: ignore[assignment]
    dose_unit: str = REGIMEN_DEFAULTS["dose_unit"]
    infusion_minutes: float | None = None
    sessions_per_week: float = REGIMEN_DEFAULTS["sessions_per_week"]
    n_sessions: int = REGIMEN_DEFAULTS["n_sessions"]
    new_oral_antidepressant: bool = REGIMEN_DEFAULTS["new_oral_antidepressant"]

    def __new__(cls, *args: Any, **fields: Any) -> Regimen:
        # a field given by position or under a name the regimen lacks is a user's slip: a
        # ValidationError naming it and the fields there are, with the known fields' own
        # faults, rather than Python's TypeError
        known = [f.name for f in dataclasses.fields(cls)]  # a subclass's fields too
        problems = unknown_fields(fields, known)
        if args:
            problems.insert(
                0,
                Problem(
                    None,
                    None,
                    "a regimen takes its fields by name (drug=..., route=..., dose=...); got "
                    f"{len(args)} by position: {', '.join(map(short_repr, args))}",
                ),
            )
        if problems:
            try:
                cls(**{k: v for k, v in fields.items() if k in known})
            except ValidationError as error:
                problems += error.problems
            raise ValidationError(problems, "regimen")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        # the fields as given, not dataclasses.asdict: that deep-copies each value, and a
        # value that cannot be copied would fail there rather than as a ValidationError
        given = {name: getattr(self, name) for name in REGIMEN_FIELDS}
        clean = validate_record(_RegimenRecord, given, "regimen")
        for name in ("sessions_per_week", "n_sessions", "new_oral_antidepressant"):
            if clean[name] is None:
                clean[name] = REGIMEN_DEFAULTS[name]
        for name, value in clean.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | pd.Series) -> Regimen:
        """Build a regimen from a mapping or table row holding the regimen columns.

        Other keys (baseline columns, outcomes, a site's own fields) are ignored, but a key
        that looks like a regimen or patient field the record lacks (``n_session``,
        ``Infusion (min)``) is refused rather than read as a field left out. A field the
        record leaves out takes its default; a missing value (None, NaN, ``pd.NA``) does so
        only where the contract allows one (``infusion_minutes``,
        ``new_oral_antidepressant``), as in a table: a blank ``n_sessions`` is not one
        session.

        Parameters
        ----------
        record : mapping or Series
            A patient record or a table row with the regimen columns.

        Returns
        -------
        Regimen

        Raises
        ------
        ValidationError
            For an impossible regimen, a record that is not a mapping or a Series, a
            field given twice (a Series with a repeated label) or a misspelt field.

        Examples
        --------
        >>> Regimen.from_record({"drug": "ketamine", "route": "IV", "dose": 0.5,
        ...                      "infusion_minutes": 40, "age": 50}).route
        'iv'
        """
        items = record_items(record, "regimen")
        fields, problems = recorded_fields(items)
        absent = [k for k in ("drug", "route", "dose") if k not in fields and k not in problems]
        problems.update(  # the fields without a default
            {k: f"{k} is missing; it is required ({column(k).allowed()})" for k in absent}
        )
        # a misspelt field ("n_session") would otherwise take its default, silently
        found = [*near_misses(items, "field"), *(Problem(k, None, t) for k, t in problems.items())]
        if absent:
            raise ValidationError(found, "regimen")
        try:  # the other fields' faults too, beside a blank's
            course = cls(**fields)
        except ValidationError as error:  # a blank said once, by recorded_fields
            others = [p for p in error.problems if p.column not in problems]
            raise ValidationError([*found, *others], "regimen") from None
        if found:
            raise ValidationError(found, "regimen")
        return course

    def to_dict(self) -> dict[str, Any]:
        """The regimen as the contract's regimen columns."""
        return {name: getattr(self, name) for name in REGIMEN_FIELDS}

    # -- schedule ---------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether the drug acts on the NMDA receptor (not a comparator)."""
        return self.drug in KETAMINES

    def session_days(self) -> np.ndarray:
        """Days after the first session at which each session is given (first at day 0)."""
        return np.arange(self.n_sessions) * 7.0 / self.sessions_per_week

    @property
    def course_weeks(self) -> float:
        """Weeks from the first to the last session (0 for a single session)."""
        return (self.n_sessions - 1) / self.sessions_per_week

    @property
    def endpoint_day(self) -> float:
        """The default assessment day: 24 h after the last session (as :func:`exposure`)."""
        return default_endpoint_day(self.n_sessions, self.sessions_per_week)

    # -- exposure ---------------------------------------------------------------------------
    def exposure(self, weight_kg: float | None = None) -> dict[str, Any]:
        """The exposure quantities of :func:`exposure` for this regimen.

        Parameters
        ----------
        weight_kg : float, optional
            Converts fixed mg doses; defaults to :data:`REFERENCE_WEIGHT_KG`.

        Returns
        -------
        dict
            Each quantity as a plain Python value (float, bool or str).

        Examples
        --------
        >>> from ketapredict import Regimen
        >>> course = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40,
        ...                  sessions_per_week=2, n_sessions=8)
        >>> quantities = course.exposure()
        >>> quantities["cumulative_exposure_mg_per_kg"], quantities["endpoint_day"]
        (4.0, 25.5)
        """
        if _is_missing(weight_kg):  # any spelling of missing: the reference weight
            weight_kg = None
        else:
            value, message = _value_problem(column("weight_kg"), weight_kg)
            if message is not None:
                raise ValidationError([Problem("weight_kg", weight_kg, message)], "weight")
            weight_kg = value
        table = exposure({**self.to_dict(), "weight_kg": weight_kg})
        return {k: v[:1].tolist()[0] for k, v in table.items()}  # numpy scalars to Python

    def racemic_iv_equivalent(self, weight_kg: float | None = None) -> float:
        """Racemic-IV-equivalent dose per session, mg/kg.

        Parameters
        ----------
        weight_kg : float, optional
            Converts fixed mg doses; defaults to :data:`REFERENCE_WEIGHT_KG`.

        Examples
        --------
        >>> from ketapredict import Regimen
        >>> course = Regimen(drug="esketamine", route="intranasal", dose=56, dose_unit="mg")
        >>> round(course.racemic_iv_equivalent(weight_kg=70), 3)  # bioavailability, potency
        0.768
        """
        return float(self.exposure(weight_kg)["racemic_iv_equivalent_mg_per_kg"])

    def peak_exposure(self, weight_kg: float | None = None) -> float:
        """Peak-exposure proxy, racemic-IV-equivalent mg/kg per hour.

        Parameters
        ----------
        weight_kg : float, optional
            Converts fixed mg doses; defaults to :data:`REFERENCE_WEIGHT_KG`.
        """
        return float(self.exposure(weight_kg)["peak_exposure_mg_per_kg_per_h"])

    def cumulative_exposure(self, weight_kg: float | None = None) -> float:
        """Racemic-IV-equivalent mg/kg over the whole course.

        Parameters
        ----------
        weight_kg : float, optional
            Converts fixed mg doses; defaults to :data:`REFERENCE_WEIGHT_KG`.
        """
        return float(self.exposure(weight_kg)["cumulative_exposure_mg_per_kg"])

    def __str__(self) -> str:
        route = self.route.upper() if self.route in ("iv", "im", "sc") else self.route
        text = f"{self.drug} {self.dose:g} {self.dose_unit} {route}"
        if self.infusion_minutes is not None:
            text += f" over {self.infusion_minutes:g} min"
        if self.n_sessions > 1:
            text += f", {self.sessions_per_week:g}/week x {self.n_sessions}"
        if self.new_oral_antidepressant:
            text += " + new oral antidepressant"
        return text


# help(Regimen), editors and inspect show the fields, not __new__'s (*args, **fields)
Regimen.__signature__ = inspect.signature(Regimen.__init__).replace(
    parameters=list(inspect.signature(Regimen.__init__).parameters.values())[1:]
)


def schedules_in_words(table: pd.DataFrame) -> pd.Series:
    """Each course's dose schedule in words, as :class:`Regimen` says it (``ketamine 0.5
    mg/kg IV over 40 min``); the fields as given where they make no whole regimen.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"drug": ["ketamine"], "route": ["iv"], "dose": [0.5],
    ...                       "infusion_minutes": [40]})
    >>> schedules_in_words(table).tolist()
    ['ketamine 0.5 mg/kg IV over 40 min']
    """
    fields = [f for f in REGIMEN_FIELDS if f in table.columns]
    keys = table[fields].astype(object).where(table[fields].notna(), None)
    said: dict[tuple, str] = {}
    out = []
    for row in keys.itertuples(index=False, name=None):
        if row not in said:  # one Regimen per distinct schedule, not per course
            given = {f: v for f, v in zip(fields, row, strict=True) if v is not None}
            try:
                said[row] = str(Regimen(**given))
            except (ValueError, TypeError):
                said[row] = " ".join(str(v) for v in given.values())
        out.append(said[row])
    return pd.Series(out, index=table.index, dtype=object)


def drug_routes(frame: Any) -> np.ndarray:
    """Each course's drug and route as one text (``"esketamine intranasal"``; empty where
    either is missing), to say whether a model was trained on a drug by that route.

    Examples
    --------
    >>> import pandas as pd
    >>> drug_routes(pd.DataFrame({"drug": ["ketamine", None], "route": ["iv", "iv"]})).tolist()
    ['ketamine iv', '']
    """
    n = len(frame)
    columns = getattr(frame, "columns", ())
    if "drug" not in columns or "route" not in columns:
        return np.full(n, "", dtype=object)
    drug = pd.Series(frame["drug"]).astype(object).to_numpy()
    route = pd.Series(frame["route"]).astype(object).to_numpy()
    return np.array([drug_route(d, r) for d, r in zip(drug, route, strict=True)], dtype=object)


def drug_route(drug: Any, route: Any) -> str:
    """One course's drug and route as one text, empty where either is missing: the words
    of :func:`drug_routes` and :func:`schedule_kind`.

    Examples
    --------
    >>> drug_route("esketamine", "intranasal"), drug_route(None, "iv")
    ('esketamine intranasal', '')
    """
    if drug is None or route is None or pd.isna(drug) or pd.isna(route):
        return ""
    return f"{drug} {route}"


def schedule_kinds(frame: Any, *, by_diagnosis: bool = False) -> np.ndarray:
    """Each course's kind of schedule in words (:func:`schedule_kind`), to say whether a
    model was trained on such a schedule.

    Examples
    --------
    >>> import pandas as pd
    >>> courses = pd.DataFrame({"drug": ["esketamine"], "route": ["intranasal"],
    ...     "n_sessions": [8], "new_oral_antidepressant": [True], "diagnosis": ["TRD"]})
    >>> schedule_kinds(courses).tolist()
    ['esketamine intranasal, repeated sessions, with a new oral antidepressant']
    >>> schedule_kinds(courses, by_diagnosis=True).tolist()
    ['TRD: esketamine intranasal, repeated sessions']
    """
    columns = getattr(frame, "columns", ())
    n = len(frame)

    def values(name: str) -> list[Any]:
        if name not in columns:
            return [None] * n
        return [None if pd.isna(v) else v for v in pd.Series(frame[name]).astype(object)]

    fields = ("drug", "route", "n_sessions", "new_oral_antidepressant", "diagnosis")
    return np.array(
        [
            schedule_kind(*row, by_diagnosis=by_diagnosis)
            for row in zip(*(values(f) for f in fields), strict=True)
        ],
        dtype=object,
    )


def schedule_kind(
    drug: Any,
    route: Any,
    n_sessions: Any = None,
    new_oral_antidepressant: Any = None,
    diagnosis: Any = None,
    *,
    by_diagnosis: bool = False,
) -> str:
    """One course's kind of schedule in words: the drug by its route, in one session or
    repeated, with or without a new oral antidepressant (empty where the drug or route is
    missing); with ``by_diagnosis``, the diagnosis and the drug by its route in one session or
    repeated (empty where the diagnosis is missing too). A model keeps the kinds it was
    trained on, to say when a schedule, or a diagnosis on it, is new to it: every encoded
    feature of esketamine without an oral antidepressant, or of bipolar depression in
    repeated sessions, can look familiar when the training data held neither. A field left
    out (None) takes the Regimen's default: one session, no new antidepressant.

    Examples
    --------
    >>> schedule_kind("ketamine", "iv", 1)
    'ketamine iv, one session, without a new oral antidepressant'
    >>> schedule_kind("ketamine", "iv", 8, diagnosis="bipolar", by_diagnosis=True)
    'bipolar: ketamine iv, repeated sessions'
    """
    pair = drug_route(drug, route)
    if not pair:
        return ""
    repeated = n_sessions is not None and not pd.isna(n_sessions) and float(n_sessions) > 1
    kind = f"{pair}, {'repeated sessions' if repeated else 'one session'}"
    if by_diagnosis:
        known = diagnosis is not None and not pd.isna(diagnosis)
        return f"{diagnosis}: {kind}" if known else ""
    started = new_oral_antidepressant is not None and bool(new_oral_antidepressant)
    return f"{kind}, {'with' if started else 'without'} a new oral antidepressant"


def recorded_fields(items: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The regimen fields a record gives, and what is wrong with those it gives blank.

    A field left out takes the Regimen's default. A blank (None, NaN, ``pd.NA``) is a value
    not recorded: it takes the default only where the contract allows a blank
    (``infusion_minutes``, ``new_oral_antidepressant``), as a table's cell does; a blank
    ``n_sessions`` would otherwise become one session, silently, where a table refuses it.

    Examples
    --------
    >>> from ketapredict.regimen import recorded_fields
    >>> recorded_fields({"drug": "ketamine", "n_sessions": None, "infusion_minutes": None})[1]
    {'n_sessions': 'n_sessions is missing; it is required (a whole number in 1-104 (count)); \
leave the field out for its default, 1'}
    """
    fields, problems = {}, {}
    for k in REGIMEN_FIELDS:
        if k not in items:
            continue
        if not _is_missing(items[k]):
            fields[k] = items[k]
        elif column(k).required:
            default = REGIMEN_DEFAULTS.get(k)
            text = f"{default:g}" if isinstance(default, float) else default
            problems[k] = f"{k} is missing; it is required ({column(k).allowed()})" + (
                "" if default is None else f"; leave the field out for its default, {text}"
            )
    return fields, problems


def below_any_studied(fields: Mapping[str, Any]) -> str | None:
    """What to say of an active drug's dose per session below half the smallest in the
    trials the virtual cohort models (:data:`LOWEST_STUDIED_MG_PER_KG`): beyond the
    evidence, and often a unit mixed up. None otherwise.

    ``fields`` are a regimen's fields, as a record. A dose in mg is judged at the reference
    weight, not the patient's: the trials' fixed doses are plans for any weight (Lara's
    10 mg for a patient of 170 kg is still Lara's dose).

    Examples
    --------
    >>> from ketapredict.regimen import below_any_studied
    >>> iv = {"drug": "ketamine", "route": "iv", "infusion_minutes": 40}
    >>> below_any_studied({**iv, "dose": 0.5}) is None
    True
    >>> below_any_studied({**iv, "dose": 0.5, "dose_unit": "mg"})[:70]
    "a session's dose, 0.0065 mg/kg at the reference weight of 77.5 kg, as "
    """
    found = exposure({k: np.array([fields.get(k)], dtype=object) for k in REGIMEN_FIELDS})
    equivalent = float(found["racemic_iv_equivalent_mg_per_kg"][0])
    if not found["active_drug"][0] or equivalent >= LOWEST_STUDIED_MG_PER_KG / 2:
        return None
    at = (
        ""
        if fields.get("dose_unit", "mg/kg") == "mg/kg"
        else f" at the reference weight of {REFERENCE_WEIGHT_KG:g} kg"
    )
    return (
        f"a session's dose, {equivalent:.2g} mg/kg{at}, as racemic ketamine IV, is below half the "
        "smallest in the trials the virtual cohort models (sublingual ketamine 10 mg, Lara "
        f"2013: about {LOWEST_STUDIED_MG_PER_KG:.2g} mg/kg): check the dose and its unit"
    )


def beyond_the_horizons(day: float, whose: str, field: str = "horizon_day") -> str | None:
    """What is wrong when a default horizon (a schedule's own end point, 24 h after its last
    session) lies beyond the days a horizon may reach; None when it does not.

    Examples
    --------
    >>> from ketapredict.regimen import beyond_the_horizons
    >>> beyond_the_horizons(25.5, "the schedule's") is None
    True
    >>> beyond_the_horizons(2885, "the schedule's", "endpoint_day")[:58]
    "no endpoint_day was given, and the schedule's own end poin"
    """
    high = column("endpoint_day").high
    if day <= high:
        return None
    return (
        f"no {field} was given, and {whose} own end point (24 h after its last session) is "
        f"day {day:g}, beyond the {high:g} days a horizon may reach: give {field}"
    )


def undated_beyond_the_horizons(table: pd.DataFrame) -> list[Problem]:
    """A problem for each row of a patient table with no ``endpoint_day`` whose schedule's
    own end point lies beyond the days a horizon may reach: scored, it would be predicted
    for a day no course was ever assessed at (a clinician's ``score`` refuses it too)."""
    days = exposure(table)["endpoint_day"]
    given = table["endpoint_day"].to_numpy(float) if "endpoint_day" in table else np.nan
    problems = []
    for row, day in zip(table.index, np.where(np.isnan(given), days, np.nan), strict=True):
        text = (
            None if np.isnan(day) else beyond_the_horizons(day, "its schedule's", "endpoint_day")
        )
        if text is not None:
            problems.append(Problem("endpoint_day", None, text, row=row))
    return problems


def exposure(regimens: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Exposure quantities for a table of regimens (already validated).

    Parameters
    ----------
    regimens : DataFrame or mapping of column to array-like
        The contract's regimen columns; ``weight_kg`` converts fixed mg doses (missing
        weights use :data:`REFERENCE_WEIGHT_KG`); ``endpoint_day``, when present, is the day
        outcomes are assessed (missing: 24 h after the last session).

    Returns
    -------
    dict of str to ndarray
        One array per name in :data:`EXPOSURE_COLUMNS`:

        - ``dose_mg_per_kg``: nominal dose per session per kg of body weight;
        - ``systemic_dose_mg_per_kg``: times the route's bioavailability;
        - ``racemic_iv_equivalent_mg_per_kg``: times the drug's potency (0 for comparators);
        - ``peak_exposure_mg_per_kg_per_h``: equivalent dose over its input time in hours;
        - ``weekly_exposure_mg_per_kg``: equivalent dose times sessions in a week of course,
          at most the sessions given by the assessment (a 3-per-week course judged at day 1
          has had one);
        - ``cumulative_exposure_mg_per_kg``: equivalent dose times the sessions given by the
          assessment (every session when it follows the last);
        - ``course_weeks``: first to last session given by the assessment;
        - ``endpoint_day``: the assessment day (default 24 h after the last session);
        - ``sessions_by_endpoint``: sessions given before the assessment;
        - ``days_after_last_session``: from the last of those sessions to the assessment;
        - ``active_drug``: the drug acts on the NMDA receptor;
        - ``comparator``: ``"saline"``, ``"midazolam"``, ``"placebo"`` or ``"none"``.

    Examples
    --------
    >>> import pandas as pd
    >>> from ketapredict.regimen import exposure
    >>> arms = pd.DataFrame({"drug": ["ketamine", "esketamine"], "route": ["iv", "iv"],
    ...                      "dose": [0.5, 0.25], "dose_unit": ["mg/kg", "mg/kg"],
    ...                      "infusion_minutes": [40, 40], "sessions_per_week": [2, 2],
    ...                      "n_sessions": [8, 8]})
    >>> exposure(arms)["racemic_iv_equivalent_mg_per_kg"]
    array([0.5, 0.5])
    """
    if not isinstance(regimens, pd.DataFrame | Mapping):
        raise ValidationError(
            [Problem(None, regimens, f"regimens must be a DataFrame or a mapping of columns; "
                     f"got {type(regimens).__name__}")],
            "regimens",
        )  # fmt: skip
    lacking = [name for name in ("drug", "route", "dose") if name not in regimens]
    if lacking:
        raise ValidationError(
            [Problem(name, None, f"required column {name!r} is missing") for name in lacking],
            "regimens",
        )
    get = regimens.__getitem__
    n = len(regimens) if isinstance(regimens, pd.DataFrame) else np.size(get("drug"))

    def array(name: str, default: Any, dtype: Any = float) -> np.ndarray:
        present = name in regimens
        if not present:
            return np.full(n, default, dtype=dtype)
        values = get(name)
        if isinstance(values, pd.Series):
            values = (
                values.to_numpy(dtype=float, na_value=np.nan)
                if dtype is float
                else values.to_numpy(dtype=object)
            )
        values = np.atleast_1d(np.asarray(values, dtype=dtype if dtype is float else object))
        if dtype is float:
            values = values.astype(float)
            return np.where(np.isnan(values), default, values) if default is not None else values
        return values

    drug = array("drug", None, object)
    route = array("route", None, object)
    unit = array("dose_unit", REGIMEN_DEFAULTS["dose_unit"], object)
    dose = array("dose", None)
    weight = array("weight_kg", REFERENCE_WEIGHT_KG)
    per_week = array("sessions_per_week", REGIMEN_DEFAULTS["sessions_per_week"])
    sessions = array("n_sessions", float(REGIMEN_DEFAULTS["n_sessions"]))
    minutes = array("infusion_minutes", np.nan)
    spacing = 7.0 / per_week
    endpoint = array("endpoint_day", np.nan)
    endpoint = np.where(np.isnan(endpoint), default_endpoint_day(sessions, per_week), endpoint)
    # sessions on days 0, spacing, 2 spacing, ...; a visit sees those strictly before it
    given = np.clip(np.ceil(endpoint / spacing - 1e-9), 1.0, sessions)

    per_kg = np.where(unit == "mg", dose / weight, dose)
    systemic = per_kg * _lookup(BIOAVAILABILITY, route)
    equivalent = systemic * _lookup(POTENCY, drug)
    input_minutes = np.where(route == "iv", minutes, _lookup(ABSORPTION_MINUTES, route, 60.0))
    comparator = np.where(np.isin(drug, COMPARATORS), drug, "none").astype(object)
    return {
        "dose_mg_per_kg": per_kg,
        "systemic_dose_mg_per_kg": systemic,
        "racemic_iv_equivalent_mg_per_kg": equivalent,
        "peak_exposure_mg_per_kg_per_h": equivalent / (input_minutes / 60.0),
        # As of the assessment: a visit cannot see the sessions still to come (nor does the
        # virtual cohort's, whose outcomes at day 15 are the same for 7 or 24 planned
        # sessions), and a course assessed mid-way must read as the course given so far.
        "weekly_exposure_mg_per_kg": equivalent * np.minimum(per_week, given),
        "cumulative_exposure_mg_per_kg": equivalent * given,
        "course_weeks": (given - 1.0) / per_week,
        "endpoint_day": endpoint,
        "sessions_by_endpoint": given,
        "days_after_last_session": endpoint - (given - 1.0) * spacing,
        "active_drug": np.isin(drug, KETAMINES),
        "comparator": comparator,
    }


def _lookup(table: Mapping[str, float], keys: np.ndarray, default: float = np.nan) -> np.ndarray:
    keys = np.asarray(keys, dtype=object)
    if len(keys) > 64:  # pandas maps long columns faster; short ones pay its overhead
        return pd.Series(keys, dtype=object).map(table).fillna(default).to_numpy(dtype=float)
    return np.array([table.get(k, default) if isinstance(k, str) else default for k in keys])

"""The clinician path: one patient, one dose schedule, a risk report in milliseconds.

:func:`load_model` reads a saved :class:`~ketapredict.RiskModel` (a directory, an MLflow
model URI, or the demo model shipped in the package); :meth:`RiskModel.score` turns a
patient and a :class:`~ketapredict.Regimen` into a :class:`RiskReport`: for each outcome a
calibrated probability, its 90% interval, a risk band and the five predictors that moved it
most, in percentage points; warnings when the patient lies outside the training data; the
fields that were missing; and where the model comes from.
:meth:`RiskModel.compare_regimens` ranks dose schedules for one patient.

This path imports numpy, pandas and pydantic only: no XGBoost, scikit-learn, MLflow or SHAP
(tested in a fresh process), so a new process scores its first patient in about a second.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .encoding import Columns, feature_map, sources
from .exceptions import Problem, ValidationError
from .regimen import REFERENCE_WEIGHT_KG, REGIMEN_FIELDS, Regimen
from .risk import joint_distance
from .schema import _known, column, columns, validate_patient

__all__ = [
    "DriverEffect",
    "OutcomeRisk",
    "RiskReport",
    "compare_regimens",
    "load_model",
    "regimen_grid",
    "score",
]

# Risk bands are ketapredict's conventions for reading a probability, not clinical
# thresholds from the literature. Benefits (response, remission): below 30% low, from 60%
# high; single IV ketamine gave 71% response at 24 h in Zarate 2006 and placebo arms
# 0-30%. Harms (cognitive decline, dissociation): below 5% low, from 20% high.
BANDS: dict[str, tuple[float, float]] = {
    "response": (0.30, 0.60),
    "remission": (0.30, 0.60),
    "cognitive_decline": (0.05, 0.20),
    "dissociation": (0.05, 0.20),
}
OUTCOME_LABELS = {
    "response": "response (MADRS -50%)",
    "remission": "remission (MADRS <= 10)",
    "cognitive_decline": "cognitive decline (>= 0.5 SD)",
    "dissociation": "dissociation (first session)",
}
N_DRIVERS = 5
_NOT_INPUTS = ("outcome", "truth", "group")
_DEMO = "demo_model"


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def load_model(source: str | Path | None = None):
    """Load a RiskModel for scoring.

    Parameters
    ----------
    source : str, path-like or None
        ``None``: the demo model shipped in the package, trained on the virtual cohort by
        ``scripts/build_demo_model.py`` (not for clinical decisions; its reports say so).
        A directory written by :meth:`RiskModel.save`. Or an MLflow model URI
        (``models:/name@champion``, ``models:/name/1``, ``runs:/<id>/model``), read from the
        tracking store of :func:`ketapredict.tracking.tracking_uri` (this imports MLflow).

    Returns
    -------
    RiskModel

    Raises
    ------
    ModelFileError
        If the files are missing, changed since they were saved, or of another format.

    Examples
    --------
    >>> from ketapredict import load_model
    >>> model = load_model()
    >>> model.outcomes
    ['response', 'remission', 'cognitive_decline', 'dissociation']
    >>> model.provenance["data_kind"]
    'simulated'
    """
    from .risk import RiskModel

    if source is None:
        with resources.as_file(resources.files("ketapredict") / "data" / _DEMO) as path:
            return RiskModel.load(path)
    text = str(source)
    if text.startswith(("models:/", "runs:/")):
        from .tracking import load_logged_model

        return load_logged_model(text)
    return RiskModel.load(source)


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DriverEffect:
    """One predictor's push on a probability, in percentage points."""

    predictor: str
    label: str
    value: str
    points: float

    def __str__(self) -> str:
        return f"{self.points:+6.1f} pp  {self.label}: {self.value}"


@dataclass(frozen=True)
class OutcomeRisk:
    """The risk of one outcome: probability, 90% interval, band and drivers."""

    outcome: str
    probability: float
    low: float | None
    high: float | None
    band: str
    average: float
    drivers: tuple[DriverEffect, ...] = ()
    schedule_points: float | None = None

    @property
    def other_points(self) -> float:
        """Points of the predictors not listed, so that the lines add up to
        ``probability - average``."""
        listed = sum(d.points for d in self.drivers) + (self.schedule_points or 0.0)
        return 100 * (self.probability - self.average) - listed


@dataclass(frozen=True)
class RiskReport:
    """What the model says of one patient on one dose schedule.

    Attributes
    ----------
    regimen : str
        The dose schedule, in words.
    horizon_day : float
        The day after the first session that every probability is for.
    horizon : str
        The same in words, with where it came from (asked, the record's assessment day, or
        the schedule's end point when none was given).
    risks : dict of str to OutcomeRisk
        By outcome: ``probability`` (calibrated), ``low`` and ``high`` (90% interval from
        the bootstrap replicates; None if the model has none), ``band`` (low, moderate,
        high; see :data:`BANDS`), ``average`` (the model's average risk: the probability
        at its expected margin over the training data, from which the drivers are
        measured), ``drivers`` (the top 5 of the patient's predictors, signed percentage
        points that add up, with the others, to ``probability - average``) and
        ``schedule_points`` (the regimen, i.e. drug, route, dose, schedule and a new oral
        antidepressant, and the horizon together: what the clinician chose, not a reason
        of the patient's; None when ``drivers="all"`` lists them).
    warnings : list of str
        Inputs outside the training data, one by one and jointly, and replaced fields.
    missing : list of str
        Fields the model reads that the patient record did not give. Each probability is
        averaged over draws of them given the recorded fields (ketapredict.imputation), so
        a missing field is never a driver; the estimate is less specific.
    provenance : dict
        The model's name, version, training data kind, date, validation metrics and notes.
    """

    regimen: str
    risks: dict[str, OutcomeRisk]
    horizon_day: float | None = None
    horizon: str = ""
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, outcome: str) -> OutcomeRisk:
        return self.risks[outcome]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-serialisable data."""
        return json.loads(json.dumps(asdict(self), default=str))

    def _notice(self) -> str | None:
        return self.provenance.get("notes")

    def __str__(self) -> str:
        lines = [f"ketapredict risk report: {self.regimen}", f"Horizon: {self.horizon}"]
        source = self.provenance
        lines.append(
            f"Model {source.get('name', 'unnamed')!r} (ketapredict "
            f"{source.get('ketapredict_version', '?')}), trained {source.get('trained', '?')} "
            f"on {source.get('data_kind', 'unknown')} data."
        )
        if self._notice():
            lines.append(f"NOTE: {self._notice()}")
        lines.append("")
        lines.append(f"{'outcome':<32}{'risk':>6}  {'90% interval':<15} band")
        for risk in self.risks.values():
            interval = f"[{risk.low:.0%}, {risk.high:.0%}]" if risk.low is not None else "(none)"
            lines.append(
                f"{OUTCOME_LABELS.get(risk.outcome, risk.outcome):<32}"
                f"{risk.probability:>6.0%}  {interval:<15} {risk.band}"
            )
        for risk in self.risks.values():
            if risk.drivers:
                lines.append(
                    f"\nWhat moved {risk.outcome.replace('_', ' ')}: from the model's average "
                    f"risk, {risk.average:.1%}, to {risk.probability:.1%}"
                )
                lines += [f"  {driver}" for driver in risk.drivers]
                if risk.schedule_points is not None:
                    lines.append(f"  {risk.schedule_points:+6.1f} pp  {_CHOSEN}")
                lines.append(f"  {risk.other_points:+6.1f} pp  {_OTHERS}")
        if self.missing:
            lines.append(
                "\nNot recorded (integrated over their plausible values given the rest of "
                "the record): " + ", ".join(self.missing)
            )
        if self.warnings:
            lines.append("\nWarnings:")
            lines += [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td>{e(OUTCOME_LABELS.get(r.outcome, r.outcome))}</td>"
            f"<td><b>{r.probability:.0%}</b></td>"
            f"<td>{'' if r.low is None else f'{r.low:.0%} to {r.high:.0%}'}</td>"
            f"<td>{e(r.band)}</td>"
            f"<td>{'<br>'.join(e(str(d)) for d in r.drivers)}"
            + (
                ""
                if r.schedule_points is None
                else f"<br>{r.schedule_points:+.1f} pp  {e(_CHOSEN)}"
            )
            + (f"<br>{r.other_points:+.1f} pp  {e(_OTHERS)}" if r.drivers else "")
            + "</td></tr>"
            for r in self.risks.values()
        )
        notice = f"<p><b>Note:</b> {e(self._notice())}</p>" if self._notice() else ""
        extras = "".join(
            f"<p><b>{title}:</b> {e('; '.join(items))}</p>"
            for title, items in (
                ("Warnings", self.warnings),
                ("Not recorded (integrated over their plausible values)", self.missing),
            )
            if items
        )
        return (
            f"<div><p><b>ketapredict risk report</b>: {e(self.regimen)}<br>"
            f"Horizon: {e(self.horizon)}</p>{notice}"
            "<table><tr><th>outcome</th><th>risk</th><th>90% interval</th><th>band</th>"
            f"<th>top drivers (percentage points)</th></tr>{rows}</table>{extras}"
            f"<p><small>Model {e(str(self.provenance.get('name', '')))}, "
            f"{e(str(self.provenance.get('data_kind', '')))} data, trained "
            f"{e(str(self.provenance.get('trained', '')))}.</small></p></div>"
        )


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------
def _band(outcome: str, p: float) -> str:
    low, high = BANDS.get(outcome, (1 / 3, 2 / 3))
    return "low" if p < low else ("moderate" if p < high else "high")


def _regimen_of(record: Mapping[str, Any], regimen: Any, problems: list[Problem]):
    """The Regimen to score, and the regimen fields to drop from the record."""
    if isinstance(regimen, Regimen):
        return regimen
    if regimen is not None:
        if not isinstance(regimen, Mapping):
            problems.append(
                Problem(
                    "regimen",
                    regimen,
                    f"regimen must be a Regimen, a mapping of its fields or None; got "
                    f"{type(regimen).__name__}",
                )
            )
            return None
        fields = dict(regimen)
    else:
        fields = {k: record[k] for k in REGIMEN_FIELDS if k in record}
        fields = {k: v for k, v in fields.items() if not _missing(v)}
    unknown = [k for k in fields if k not in REGIMEN_FIELDS]
    for name in unknown:
        problems.append(
            Problem(
                name,
                fields[name],
                f"unknown regimen field {name!r}; expected one of {', '.join(REGIMEN_FIELDS)}",
            )
        )
    absent = [k for k in ("drug", "route", "dose") if k not in fields]
    if absent:
        problems.append(
            Problem(
                absent[0],
                None,
                f"no dose schedule: the patient record has no {', '.join(absent)}; pass "
                "regimen=Regimen(...) or give the regimen fields",
            )
        )
    if unknown or absent:
        return None
    try:
        return Regimen(**fields)
    except ValidationError as error:
        problems.extend(error.problems)
        return None


def _role(name: Any) -> str | None:
    """The contract role of a field (visit columns included), None if unknown."""
    return column(name).role if _known(name) else None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _prepare(
    model, patient: Mapping[str, Any], regimen: Any, horizon_day: Any = None
) -> tuple[Columns, dict, list, str, str]:
    """Validate one patient, regimen and horizon; the encoder's columns, the record, warnings,
    the regimen in words and the horizon in words."""
    if isinstance(patient, pd.Series):
        patient = patient.to_dict()
    if not isinstance(patient, Mapping):
        raise ValidationError(
            [
                Problem(
                    None,
                    patient,
                    f"a patient must be a dict, a pandas Series or a DataFrame; got "
                    f"{type(patient).__name__}",
                )
            ],
            "patient",
        )
    warnings: list[str] = []
    regimen_columns = set(columns("regimen"))
    baseline = {k: v for k, v in patient.items() if _role(k) not in (*_NOT_INPUTS, "regimen")}
    if regimen is not None:
        replaced = [k for k in patient if k in regimen_columns and not _missing(patient[k])]
        if replaced:
            warnings.append(
                "the record's own regimen fields (" + ", ".join(replaced) + ") were "
                "replaced by the regimen given"
            )
    problems: list[Problem] = []
    try:
        record = validate_patient(baseline)
    except ValidationError as error:
        problems.extend(error.problems)
        record = {}
    course = _regimen_of(patient, regimen, problems)
    if horizon_day is not None:  # asked for: NaN is a mistake, not "none"
        endpoint, source = _day(horizon_day, "horizon_day", problems), "as given"
    else:
        recorded = None if regimen is not None else patient.get("endpoint_day")
        endpoint = None if _missing(recorded) else _day(recorded, "endpoint_day", problems)
        source = "the record's assessment day"
    if problems:
        raise ValidationError(problems, "patient")
    values = {**record, **course.to_dict()}
    if endpoint is None:
        # no horizon given: the schedule's own end point, said in the report
        endpoint = course.endpoint_day
        source = "24 h after the last session; pass horizon_day to choose another"
    values["endpoint_day"] = endpoint
    horizon = f"day {endpoint:g} after the first session ({source})"
    arrays = Columns()
    for name, value in values.items():
        if name == "patient_id":
            continue  # an identifier is never a model input, nor reported
        kind = column(name).kind
        if kind in ("float", "int", "bool"):
            arrays[name] = np.array([np.nan if value is None else float(value)])
        else:
            arrays[name] = np.array([value], dtype=object)
    return arrays, values, warnings, str(course), horizon


def _day(value: Any, name: str, problems: list[Problem]) -> float | None:
    """A horizon in days after the first session, within the contract's range."""
    spec = column("endpoint_day")
    try:
        if isinstance(value, bool | np.bool_):
            raise TypeError  # True is not day 1
        day = float(value)
        if not spec.low <= day <= spec.high:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        problems.append(Problem(name, value, f"{name}={value!r} is not {spec.allowed()}"))
        return None
    return day


@dataclass(frozen=True)
class _Words:
    """An outcome's encoded features in clinical words, as plain lists (fast to read)."""

    names: list[str]  # features in model order
    label: dict[str, str]  # feature -> label
    predictor: dict[str, str]  # feature -> clinical predictor
    predictors: list[str]
    code: np.ndarray  # feature position -> predictor position
    predictor_label: list[str]
    given: np.ndarray  # by predictor: part of the schedule or horizon, not of the patient


def _words(state) -> _Words:
    cached = state.__dict__.get("_words")
    if cached is None:
        fmap = feature_map(state.spec).reindex(state.feature_names)
        predictors = list(dict.fromkeys(fmap["predictor"]))
        position = {p: i for i, p in enumerate(predictors)}
        code = np.array([position[p] for p in fmap["predictor"]])
        cached = _Words(
            names=list(fmap.index),
            label=dict(zip(fmap.index, fmap["label"], strict=True)),
            predictor=dict(zip(fmap.index, fmap["predictor"], strict=True)),
            predictors=predictors,
            code=code,
            predictor_label=[
                column(p).clinical_label
                if p in _COLUMN_NAMES
                else fmap["label"].iloc[int(np.argmax(code == i))]
                for i, p in enumerate(predictors)
            ],
            given=np.array(
                [
                    fmap["encoder"].iloc[int(np.argmax(code == i))] in _GIVEN_ENCODERS
                    for i in range(len(predictors))
                ]
            ),
        )
        state.__dict__["_words"] = cached
    return cached


def _ood_warnings(reference: Mapping[str, Any], names: Sequence[str], x: np.ndarray, words):
    if not reference:
        return []
    where = {name: j for j, name in enumerate(names)}
    warnings = []
    continuous = reference["continuous"]
    z = np.full(len(continuous), np.nan)
    for k, name in enumerate(continuous):
        value = x[where[name]]
        if np.isnan(value):
            continue
        low, high = reference["low"][k], reference["high"][k]
        if not low <= value <= high:
            warnings.append(
                f"{words.label[name]} = {value:.3g} is outside the training range "
                f"{low:.3g} to {high:.3g} (0.5th to 99.5th percentile)"
            )
        z[k] = (value - reference["mean"][k]) / reference["sd"][k]
    seen = set(reference["seen_categories"])
    for name in reference["binary"]:
        if x[where[name]] == 1 and name not in seen and words.predictor[name] != name:
            warnings.append(f"{words.label[name]} never occurs in the training data")
    covariance, precision = _inverse(reference)
    if np.isnan(z).any():
        distance = float(joint_distance(z, covariance)[0])
    else:  # every value given: the inverse is computed once
        distance = float(np.sqrt(z @ precision @ z))
    if distance > reference["joint_threshold"]:
        warnings.append(
            f"this combination of values is unusual for the training data (Mahalanobis "
            f"distance {distance:.1f}, above the {reference['joint_threshold']:.1f} of 99% "
            "of training patients): the estimate is an extrapolation"
        )
    return warnings


_INVERSES: dict[int, tuple[Mapping, np.ndarray, np.ndarray]] = {}


def _inverse(reference: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The reference covariance and its inverse, computed once per model (kept here, not
    in the model's reference, which is saved as it was fitted)."""
    known = _INVERSES.get(id(reference))
    if known is None or known[0] is not reference:
        covariance = np.asarray(reference["covariance"])
        known = _INVERSES[id(reference)] = (reference, covariance, np.linalg.inv(covariance))
    return known[1], known[2]


def _value_text(predictor: str, values: Mapping[str, Any], x: np.ndarray, words) -> str:
    name = predictor.replace(" ", "_")
    if name in _COLUMN_NAMES and name in values:
        value = values[name]
        spec = column(name)
        if value is None:
            return "missing"
        if spec.kind == "bool":
            return "yes" if value else "no"
        if name == "dose":
            return f"{value:g} {values.get('dose_unit', '')}".strip()
        shown = f"{value:g}" if isinstance(value, float | int) else str(value)
        # units that are names of scales ("MADRS total score") would read as a label
        unit = spec.unit if spec.unit and "score" not in spec.unit else None
        return f"{shown} {unit}" if unit and spec.kind == "float" else shown
    positions = [j for j, code in enumerate(words.code) if words.predictors[code] == predictor]
    if len(positions) > 1 and all(x[j] in (0.0, 1.0) for j in positions):
        # one-hot columns (comparator, route): name the one that is set
        chosen = [words.label[words.names[j]].split(": ", 1)[-1] for j in positions if x[j] == 1]
        return chosen[0] if chosen else "none"
    value = x[positions[0]]
    unit = _DERIVED_UNITS.get(words.names[positions[0]], "")
    return "missing" if np.isnan(value) else f"{value:.3g} {unit}".strip()


# Units of the dose-schedule features (ketapredict.regimen.exposure).
_DERIVED_UNITS = {
    "racemic_iv_equivalent_mg_per_kg": "mg/kg (racemic IV equivalent)",
    "peak_exposure_mg_per_kg_per_h": "mg/kg/h",
    "weekly_exposure_mg_per_kg": "mg/kg per week",
    "cumulative_exposure_mg_per_kg": "mg/kg",
    "course_weeks": "weeks",
    "endpoint_day": "days",
    "days_after_last_session": "days",
}


_COLUMN_NAMES = frozenset(c for role in ("baseline", "regimen") for c in columns(role))


# Encoders whose features describe what the clinician chose (the regimen: drug, route, dose,
# schedule, a new oral antidepressant; and the horizon), not the patient: by default their
# share is one line of its own rather than reasons. By encoder, not by the feature set's
# group name, which a user's set may choose freely.
_GIVEN_ENCODERS = frozenset({"dose_schedule"})


_CHOSEN = "the regimen and the horizon (chosen, not the patient's)"
_OTHERS = "the other predictors together"


def _drivers(
    state,
    draws: np.ndarray,
    x: np.ndarray,
    values,
    p: float,
    n: int = N_DRIVERS,
    everything: bool = False,
):
    """Top ``n`` predictors in percentage points, the points of the schedule and horizon
    together (None when they are listed), and the model's average risk.

    ``draws`` are the encoded rows the probability ``p`` averages over (one row, or one per
    draw of the missing fields); ``x`` is the patient's own encoded row, missing values
    included. SHAP values are averaged over the draws. A predictor the record lacks is never
    a reason: its points join "the other predictors together".
    """
    from .trees import calibrated_log_odds
    from .updating import apply_update

    phi, base = state.contributions(draws, member=0)
    phi = phi.mean(axis=0)
    calibrator = state.calibrators[0]

    def probability(margin: float) -> float:
        log_odds = apply_update(calibrated_log_odds(np.array([margin]), calibrator), state.update)
        return float(1 / (1 + np.exp(-log_odds[0])))

    margin = base + phi.sum()
    p0 = probability(base)
    total = phi.sum()
    if abs(total) > 1e-6:
        # the secant slope of a monotone map lies between 0 and its steepest slope, so the
        # shares stay bounded; they add up exactly to p - p0
        slope = (p - p0) / total
    else:
        slope = (probability(margin + 1e-4) - probability(margin - 1e-4)) / 2e-4
    words = _words(state)
    points = np.bincount(words.code, weights=100 * slope * phi, minlength=len(words.predictors))
    given = None if everything else round(float(points[words.given].sum()), 2)
    ranked = np.argsort(-np.abs(points), kind="stable")
    if not everything:
        ranked = ranked[~words.given[ranked]]
    # a predictor that moves across the draws rests on a missing field (a composite of a
    # partly recorded battery, say): integrated out too, not a reason
    drawn = np.bincount(
        words.code, weights=(np.ptp(np.nan_to_num(draws), axis=0) > 0) * 1.0, minlength=len(points)
    )
    effects = []
    for i in ranked:
        predictor = words.predictors[i]
        value = _value_text(predictor, values, x, words)
        if value == "missing" or drawn[i] > 0:  # integrated out, not a reason
            continue
        effects.append(
            DriverEffect(
                predictor=predictor,
                label=words.predictor_label[i],
                value=value,
                points=round(float(points[i]), 2),
            )
        )
        if len(effects) == n:
            break
    return tuple(effects), given, p0


def score(
    model,
    patient: Any,
    regimen: Any = None,
    *,
    horizon_day: Any = None,
    drivers: bool | str = True,
):
    """Score one patient (dict or Series) or each row of a DataFrame; see
    :meth:`RiskModel.score`."""
    if isinstance(patient, pd.DataFrame):
        return [
            score(model, row, regimen, horizon_day=horizon_day, drivers=drivers)
            for _, row in patient.iterrows()
        ]
    if drivers not in (True, False, "all"):
        raise ValidationError(
            [Problem("drivers", drivers, f"drivers={drivers!r} is not True, False or 'all'")],
            "arguments",
        )
    arrays, values, warnings, described, horizon = _prepare(model, patient, regimen, horizon_day)
    # a missing optional field is integrated out: the patient is scored on draws of it given
    # the recorded fields, and the probabilities are averaged (ketapredict.imputation)
    filled, owner = model._expand(arrays)
    encoded = model._encoded(filled)
    own = model._encoded(arrays) if owner is not None else encoded
    intervals = model._intervals(encoded, owner, 1)
    risks = {}
    first = True
    for outcome, state in model._outcomes.items():
        x = own[outcome][0]
        if first:
            warnings += _ood_warnings(model.reference, state.feature_names, x, _words(state))
            first = False
        p, low, high = (float(v[0]) for v in intervals[outcome])
        effects, given, average = (
            _drivers(state, encoded[outcome], x, values, p, everything=drivers == "all")
            if drivers
            else ((), None, np.nan)
        )
        risks[outcome] = OutcomeRisk(
            outcome=outcome,
            probability=p,
            low=low if state.z is not None else None,
            high=high if state.z is not None else None,
            band=_band(outcome, p),
            average=float(average) if drivers else p,
            drivers=effects,
            schedule_points=given,
        )
    if values.get("dose_unit") == "mg" and values.get("weight_kg") is None and values["dose"]:
        warnings.append(
            f"the {values['dose']:g} mg dose was converted to mg/kg at the reference weight "
            f"of {REFERENCE_WEIGHT_KG:g} kg; give the patient's weight for a sounder estimate"
        )
    read = model.__dict__.get("_read")
    if read is None:  # the baseline fields the models read, once per model
        read = set().union(*(sources(s.spec) for s in model._outcomes.values()))
        read = model.__dict__["_read"] = sorted(read - {*REGIMEN_FIELDS, "endpoint_day"})
    missing = [column(name).clinical_label for name in read if values.get(name) is None]
    if not model.has_intervals:
        warnings.append("this model has no bootstrap replicates, so no intervals")
    from . import __version__

    provenance = {"ketapredict_version": __version__, **model.provenance}
    return RiskReport(
        regimen=described,
        horizon_day=float(values["endpoint_day"]),
        horizon=horizon,
        risks=risks,
        warnings=warnings,
        missing=missing,
        provenance=provenance,
    )


# --------------------------------------------------------------------------------------------
# Comparing schedules
# --------------------------------------------------------------------------------------------
def regimen_grid(
    doses: Mapping[str, Sequence[float]] | None = None,
    sessions_per_week: Iterable[float] = (1, 2, 3),
    weeks: float = 4,
) -> list[Regimen]:
    """The standard grid of schedules: dose x sessions per week x route.

    Parameters
    ----------
    doses : mapping of route to doses, optional
        By default racemic ketamine IV over 40 minutes at 0.2, 0.5 and 1.0 mg/kg (the doses
        of Fava 2020), IM at 0.5 mg/kg (Loo 2016) and esketamine intranasal at 28, 56 and
        84 mg (the licensed doses, Daly 2018; Popova 2019).
    sessions_per_week : iterable of float, default=(1, 2, 3)
        Frequencies (Singh 2016 compared two and three a week).
    weeks : float, default=4
        Course length; sessions are ``sessions_per_week * weeks``.

    Returns
    -------
    list of Regimen

    Examples
    --------
    >>> from ketapredict.clinic import regimen_grid
    >>> grid = regimen_grid()
    >>> len(grid)
    21
    >>> print(grid[0])
    ketamine 0.2 mg/kg IV over 40 min, 1/week x 4
    """
    doses = doses or {"iv": (0.2, 0.5, 1.0), "im": (0.5,), "intranasal": (28, 56, 84)}
    grid = []
    for route, route_doses in doses.items():
        for dose in route_doses:
            for per_week in sessions_per_week:
                n = max(1, round(per_week * weeks))
                if route == "intranasal":
                    grid.append(
                        Regimen(
                            drug="esketamine",
                            route=route,
                            dose=dose,
                            dose_unit="mg",
                            sessions_per_week=per_week,
                            n_sessions=n,
                        )
                    )
                else:
                    grid.append(
                        Regimen(
                            drug="ketamine",
                            route=route,
                            dose=dose,
                            dose_unit="mg/kg",
                            infusion_minutes=40 if route == "iv" else None,
                            sessions_per_week=per_week,
                            n_sessions=n,
                        )
                    )
    return grid


def compare_regimens(
    model, patient: Any, regimens: Any = None, *, horizon_day: Any = None
) -> pd.DataFrame:
    """See :meth:`RiskModel.compare_regimens`."""
    if isinstance(patient, pd.DataFrame):
        if len(patient) != 1:
            raise ValidationError(
                [
                    Problem(
                        None,
                        len(patient),
                        f"compare_regimens takes one patient; got a table of {len(patient)}",
                    )
                ],
                "patient",
            )
        patient = patient.iloc[0]
    if regimens is None:
        regimens = regimen_grid()
    if isinstance(regimens, Regimen) or (
        isinstance(regimens, Mapping) and any(k in regimens for k in REGIMEN_FIELDS)
    ):
        regimens = [regimens]  # one regimen
    if isinstance(regimens, Mapping):
        named = list(regimens.items())
    else:
        named = [(None, r) for r in regimens]
    if not named:
        raise ValidationError(
            [Problem("regimens", regimens, "compare_regimens needs at least one regimen")],
            "regimens",
        )
    problems: list[Problem] = []
    if horizon_day is None:
        # one common day for all: the latest schedule's end point, so every course is over
        courses = [_regimen_of({}, regimen, problems) for _, regimen in named]
        if problems:
            raise ValidationError(problems, "regimens")
        horizon_day = max(course.endpoint_day for course in courses)
    rows = []
    for name, regimen in named:
        report = score(model, patient, regimen, horizon_day=horizon_day, drivers=False)
        row: dict[str, Any] = {"regimen": name or report.regimen}
        for outcome, risk in report.risks.items():
            row[outcome] = risk.probability
            row[f"{outcome}_low"] = risk.low
            row[f"{outcome}_high"] = risk.high
        row["warnings"] = len(report.warnings)
        row["horizon_day"] = report.horizon_day
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["horizon_day"] = float(rows[0]["horizon_day"])
    if {"response", "cognitive_decline"} <= set(table.columns):
        benefit = table["response"].to_numpy()
        harm = table["cognitive_decline"].to_numpy()
        better = (benefit[:, None] >= benefit[None, :]) & (harm[:, None] <= harm[None, :])
        strictly = (benefit[:, None] > benefit[None, :]) | (harm[:, None] < harm[None, :])
        # row j is dominated when some regimen i is at least as good on both and better on one
        table["dominated"] = (better & strictly).any(axis=0)
    key = "response" if "response" in table.columns else model.outcomes[0]
    return table.sort_values(key, ascending=False, ignore_index=True)

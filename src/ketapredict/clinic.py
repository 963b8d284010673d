"""The clinician path: one patient, one dose schedule, a risk report in milliseconds.

:func:`load_model` reads a saved :class:`~ketapredict.RiskModel` (a directory, an MLflow
model URI, or the demo model shipped in the package); :meth:`RiskModel.score` turns a
patient and a :class:`~ketapredict.Regimen` into a :class:`RiskReport`: for each outcome a
calibrated probability, its 90% interval, a risk band and the five predictors that moved it
most, in percentage points; warnings when the patient lies outside the training data; the
fields that were missing; and where the model comes from.
:meth:`RiskModel.compare_regimens` compares dose schedules for one patient at one day and
returns a :class:`RegimenComparison` (a table, its printout, its HTML and a plot).

This path imports numpy, pandas and pydantic only: no XGBoost, scikit-learn, MLflow or SHAP
(tested in a fresh process), so a new process scores its first patient in about a second.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._text import cell, listed, paragraph
from .card import VIRTUAL_COHORT_NOTICE
from .encoding import DERIVED_UNITS, Columns, feature_map, reads_planned_course, sources
from .exceptions import ModelFileError, Problem, ValidationError, one_line, short_repr
from .regimen import (
    REFERENCE_WEIGHT_KG,
    REGIMEN_FIELDS,
    Regimen,
    below_any_studied,
    beyond_the_horizons,
    drug_route,
    exposure,
    recorded_fields,
    schedule_kind,
    unknown_fields,
)
from .risk import INTERVAL_LEVEL, joint_distance, unseen_flags
from .schema import (
    MIN_CELL,
    OUTCOME_DEFINITIONS,
    OUTCOME_LABELS,
    _is_missing,
    _known,
    _number,
    column,
    columns,
    contract_part,
    flag_problem,
    identifiers_masked,
    record_items,
    rows_for_messages,
    validate_patient,
)

__all__ = [
    "DriverEffect",
    "OutcomeRisk",
    "RegimenComparison",
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
# Which way is good: a high chance of a benefit is favourable, a high risk of a harm is not.
# The band's colour and words say so; dominance among schedules weighs the first of each.
BENEFITS = ("response", "remission")
HARMS = ("cognitive_decline", "dissociation")
N_DRIVERS = 5
_NOT_INPUTS = ("outcome", "truth", "group")
_DEMO = "demo_model"


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def load_model(source: str | Path | None = None, *, public_key: Any = None):
    """Load a RiskModel for scoring.

    Parameters
    ----------
    source : str, path-like or None, default=None
        ``None``: the demo model shipped in the package, trained on the virtual cohort by
        ``scripts/build_demo_model.py`` (not for clinical decisions; its reports say so).
        A directory written by :meth:`RiskModel.save`. Or an MLflow model URI
        (``models:/name@champion``, ``models:/name/1``, ``runs:/<id>/model``), read from the
        tracking store of :func:`ketapredict.tracking.tracking_uri` (this imports MLflow).
    public_key : str, path-like, bytes or Ed25519PublicKey, optional
        The public key (PEM file) of whoever signed the model
        (:func:`ketapredict.generate_keys`): an unsigned model, or one changed after
        signing, is then refused. Without it the checksums catch accidental changes only.
        Loading executes nothing from the model's files, whatever their origin.

    Returns
    -------
    RiskModel

    Raises
    ------
    ModelFileError
        If the files are missing, changed since they were saved, malformed, of another
        format, or not signed by ``public_key``; or ``source`` is empty text or neither
        text nor a path.

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
            return RiskModel.load(path, public_key=public_key)
    if not isinstance(source, str | os.PathLike):
        raise ModelFileError(
            f"a model is named by a directory or an MLflow model URI (text or a path), or "
            f"None for the demo model; got {type(source).__name__}"
        )
    text = str(source)
    if not text.strip():  # empty text would be read as the current directory
        raise ModelFileError(
            f"no model given ({short_repr(source)}): give a model directory, an MLflow model "
            "URI, or nothing for the demo model"
        )
    if text.startswith(("models:/", "runs:/")):
        from .tracking import load_logged_model

        return load_logged_model(text, public_key=public_key)
    return RiskModel.load(source, public_key=public_key)


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
        return f"{_plain_points(self.points):>6} pp  {self.label}: {self.value}"


@dataclass(frozen=True)
class OutcomeRisk:
    """The risk of one outcome: probability, 90% interval, band, drivers and warnings.

    ``warnings`` are the ones that concern this outcome alone (its interval reaches from
    the low band to the high band; the fields not recorded could move it across a band);
    those that concern every outcome are in :attr:`RiskReport.warnings`. ``unrecorded`` is
    the lowest and highest probability over the plausible values of the fields the record
    did not give (None when it gave them all). ``horizon_free``: the horizon does not move
    it, as the outcome has a time of its own in this model (dissociation, rated in the
    first session).
    """

    outcome: str
    probability: float
    low: float | None
    high: float | None
    band: str
    reference: float | None
    drivers: tuple[DriverEffect, ...] = ()
    schedule_points: float | None = None
    warnings: tuple[str, ...] = ()
    unrecorded: tuple[float, float] | None = None
    horizon_free: bool = False

    @property
    def label(self) -> str:
        """The outcome in clinical words, with its definition."""
        return OUTCOME_LABELS.get(self.outcome, self.outcome.replace("_", " "))

    @property
    def reading(self) -> str | None:
        """What the band means for the patient: "favourable", "intermediate" or
        "unfavourable" (a high chance of a benefit is favourable, a high risk of a harm is
        not); None for an outcome of unknown direction."""
        if self.outcome not in BENEFITS and self.outcome not in HARMS:
            return None
        if self.band == "moderate":
            return "intermediate"
        good = (self.band == "high") == (self.outcome in BENEFITS)
        return "favourable" if good else "unfavourable"

    @property
    def band_text(self) -> str:
        """The band and its reading in words, e.g. "high: favourable"."""
        return self.band if self.reading is None else f"{self.band}: {self.reading}"

    @property
    def interval_text(self) -> str:
        """The 90% interval in words, e.g. "71% to 95%"."""
        if self.low is None or self.high is None:
            return "(none)"
        return f"{_percent(self.low)} to {_percent(self.high)}"

    @property
    def other_points(self) -> float:
        """Points of the predictors not listed, so that the lines add up to
        ``probability - reference``."""
        if self.reference is None:  # scored without drivers
            return 0.0
        listed = sum(d.points for d in self.drivers) + (self.schedule_points or 0.0)
        return 100 * (self.probability - self.reference) - listed


def _from_reference(risk: OutcomeRisk) -> str:
    """Where the drivers start and end, in words (what the reference risk is, the report
    says once: :data:`_REFERENCE`)."""
    return f"from the reference risk {risk.reference:.1%} to {risk.probability:.1%}"


# what the drivers' points measure, said once under a report's table
_REFERENCE = (
    "Drivers: percentage points that move the probability from the model's reference risk "
    "(its average over the training courses, taken on the log-odds scale) to the patient's; "
    "they add up to the difference."
)


@dataclass(frozen=True)
class RiskReport:
    """What the model says of one patient on one dose schedule.

    ``str(report)`` is a plain-text report; in a notebook the report shows as HTML: each
    outcome's probability, interval and band (coloured and said in words: favourable,
    intermediate or unfavourable), its drivers as a table, and warnings as lists, those
    of each outcome with it.

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
        high; see :data:`BANDS`) and its ``reading`` (favourable, intermediate,
        unfavourable), ``reference`` (the reference risk the drivers are measured from: the
        probability at the model's mean log-odds over its training courses; for a rare,
        skewed outcome well below their mean risk, e.g. 0.3% for cognitive decline where
        1.5% of courses had it; None when scored with ``drivers=False``),
        ``drivers`` (the top 5 of the patient's predictors, signed percentage points that
        add up, with the others, to ``probability - reference``), ``schedule_points`` (the
        regimen, i.e. drug, route, dose, schedule and a new oral antidepressant, and the
        horizon together: what the clinician chose, not a reason of the patient's; None
        when ``drivers="all"`` lists them), ``warnings`` (those of this outcome alone) and
        ``unrecorded`` (the range of the probability over the fields not recorded).
    warnings : list of str
        Warnings that concern every outcome: inputs outside the training data, one by one
        and jointly; replaced fields; a dose converted at a reference weight. One about the
        course by the horizon, which an outcome assessed in the first session
        (dissociation) never sees, begins with the outcomes it concerns ("response,
        remission: ..."). Each outcome's own are in ``risks[outcome].warnings``;
        :attr:`all_warnings` has both.
    missing : list of str
        Fields the model reads that the patient record did not give. Each probability is
        averaged over draws of them given the recorded fields (ketapredict.imputation), so
        a missing field is never a driver; the estimate is less specific.
    provenance : dict
        The model's name, version, training data kind, date, validation metrics and notes.
    interval_meaning : str or None
        What the 90% intervals mean for this model (None: it has none): widened to hold
        the true probabilities of new virtual patients, or the bootstrap's spread alone.

    Examples
    --------
    >>> from ketapredict import Regimen, load_model
    >>> patient = {"age": 52, "sex": "male", "diagnosis": "MDD", "madrs_baseline": 30}
    >>> single = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
    >>> report = load_model().score(patient, single, horizon_day=1)
    >>> report.horizon_day
    1.0
    >>> list(report.risks)
    ['response', 'remission', 'cognitive_decline', 'dissociation']
    >>> risk = report.risks["cognitive_decline"]
    >>> risk.band in ("low", "moderate", "high"), "BMI" in report.missing
    (True, True)
    >>> any(driver.predictor == "bmi" for driver in risk.drivers)  # missing: no reason
    False
    >>> report.to_dict()["horizon_day"]
    1.0
    """

    regimen: str
    risks: dict[str, OutcomeRisk]
    horizon_day: float | None = None
    horizon: str = ""
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    interval_meaning: str | None = None

    def __getitem__(self, outcome: str) -> OutcomeRisk:
        try:
            return self.risks[outcome]
        except (KeyError, TypeError):  # a mapping's own error, with the outcomes it has
            raise KeyError(
                f"the report has no outcome {short_repr(outcome)}; it has {', '.join(self.risks)}"
            ) from None

    @property
    def all_warnings(self) -> list[str]:
        """Every warning: those of every outcome, then each outcome's own, prefixed with
        the outcome ("cognitive decline: ...")."""
        return self.warnings + [
            f"{risk.outcome.replace('_', ' ')}: {w}"
            for risk in self.risks.values()
            for w in risk.warnings
        ]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-serialisable data: each risk with its ``reading``, and at the
        top ``interval_level`` (0.9: every ``low``-``high`` is a 90% interval) and
        ``notice`` (the model's own notice, such as that it was trained on a virtual
        cohort, or None), so that a system reading the JSON alone sees both."""
        data = json.loads(json.dumps(asdict(self), default=str))
        for outcome, risk in self.risks.items():
            data["risks"][outcome]["reading"] = risk.reading
        return {"interval_level": INTERVAL_LEVEL, "notice": self._notice(), **data}

    def _notice(self) -> str | None:
        return _notice(self.provenance)

    def _model_line(self) -> str:
        return _model_line(self.provenance)

    def _warnings_title(self) -> str:
        names = {outcome.replace("_", " ") for outcome in self.risks}
        named = any(
            set(w.split(": ", 1)[0].split(", ")) <= names for w in self.warnings if ": " in w
        )
        return f"Warnings (every outcome{' unless named' if named else ''})"

    def __repr__(self) -> str:
        # one line a REPL can show (print() or the notebook gives the whole report)
        risks = ", ".join(
            f"{o}={_percent(r.probability)}"
            + (f" [{r.interval_text}]" if r.low is not None else "")
            for o, r in self.risks.items()
        )
        day = "" if self.horizon_day is None else f", day {self.horizon_day:g}"
        return f"<RiskReport: {self.regimen}{day}: {risks}>"

    def __str__(self) -> str:
        lines = [
            f"ketapredict risk report: {self.regimen}",
            paragraph(f"Horizon: {self.horizon}", width=92, indent="  "),
        ]
        lines.append(self._model_line())
        if self._notice():
            lines.append(paragraph(f"NOTE: {self._notice()}", width=92, indent="  "))
        if self.warnings:
            lines.append(f"\n{self._warnings_title()}:")
            lines += [paragraph(w, indent="    ", first_indent="  - ") for w in self.warnings]
        width = max(len(r.label) for r in self.risks.values()) + 2
        lines.append("")
        lines.append(f"{'outcome':<{width}}{'probability':>11}  {'90% interval':<15} band")
        for risk in self.risks.values():
            mark = f"  ({len(risk.warnings)} warning{'s' * (len(risk.warnings) > 1)})"
            lines.append(
                f"{risk.label:<{width}}{_percent(risk.probability):>11}  "
                f"{risk.interval_text:<15} {risk.band_text}{mark if risk.warnings else ''}"
            )
        lines.append(paragraph(bands_legend(self.risks), width=92))
        lines.append(paragraph(outcomes_legend(self.risks, self.interval_meaning), width=92))
        if any(r.drivers for r in self.risks.values()):
            lines.append(paragraph(_REFERENCE, width=92))
        for risk in self.risks.values():
            if risk.drivers:
                lines.append(
                    f"\nWhat moved {risk.outcome.replace('_', ' ')}: {_from_reference(risk)}"
                )
                lines += [f"  {driver}" for driver in risk.drivers]
                if risk.schedule_points is not None:
                    chosen = _chosen(risk)
                    lines.append(f"  {_plain_points(risk.schedule_points):>6} pp  {chosen}")
                lines.append(f"  {_plain_points(risk.other_points):>6} pp  {_OTHERS}")
            elif risk.warnings:
                lines.append(f"\n{risk.label}:")
            if risk.warnings:
                lines.append(f"  Warnings for {risk.outcome.replace('_', ' ')}:")
                lines += [
                    paragraph(w, indent="      ", first_indent="    - ") for w in risk.warnings
                ]
        if self.missing:
            lines.append(
                "\n"
                + paragraph(
                    "Not recorded (integrated over their plausible values given the rest of "
                    "the record): " + ", ".join(self.missing),
                    width=92,
                    indent="  ",
                )
            )
            if self._ranges():
                lines.append(
                    paragraph(f"{_UNRECORDED_RANGES}: {self._ranges()}", width=92, indent="  ")
                )
        return "\n".join(lines)

    def _ranges(self) -> str:
        return "; ".join(
            f"{risk.outcome.replace('_', ' ')} {_percent(risk.unrecorded[0])} to "
            f"{_percent(risk.unrecorded[1])}"
            for risk in self.risks.values()
            if risk.unrecorded is not None
        )

    def to_html(self) -> str:
        """The HTML a notebook shows, as a whole page to save or send (UTF-8, titled).

        Examples
        --------
        >>> from ketapredict import Regimen, load_model
        >>> patient = {"age": 40, "sex": "male", "diagnosis": "MDD", "madrs_baseline": 30}
        >>> single = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
        >>> page = load_model().score(patient, single, horizon_day=1).to_html()
        >>> page.startswith("<!DOCTYPE html>"), '<meta charset="utf-8">' in page
        (True, True)
        """
        return _html_page(self._repr_html_(), f"ketapredict risk report: {self.regimen}")

    def _repr_html_(self) -> str:
        e = html.escape
        parts = [
            f'<div class="ketapredict-report" style="{_FONT}">',
            '<div style="font-size:1.15em;font-weight:600">ketapredict risk report</div>',
            f"<div>Dose schedule: <b>{e(self.regimen)}</b></div>",
            f"<div>Horizon: {e(self.horizon)}</div>",
        ]
        if self._notice():
            parts.append(_notice_html(self._notice()))
        if self.warnings:
            parts.append(_warnings_html("all", self._warnings_title(), self.warnings))
        rows = []
        for r in self.risks.values():
            note = (
                f"{len(r.warnings)} warning{'s' * (len(r.warnings) > 1)}, below"
                if r.warnings
                else ""
            )
            rows.append(
                "<tr>"
                f'<td style="{_CELL}">{e(r.label)}</td>'
                f'<td style="{_NUM};font-weight:600">{e(_percent(r.probability))}</td>'
                f'<td style="{_NUM}">{e(r.interval_text)}</td>'
                f'<td style="{_CELL}">{_badge(r)}</td>'
                f'<td style="{_CELL};font-size:.85em">{note}</td>'
                "</tr>"
            )
        parts.append(
            f'<table style="{_TABLE}"><thead><tr>'
            f'<th style="{_HEAD}">outcome</th>'
            f'<th style="{_HEAD};text-align:right">probability</th>'
            f'<th style="{_HEAD};text-align:right">90% interval</th>'
            f'<th style="{_HEAD}">band</th><th style="{_HEAD}"></th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f'<div style="font-size:.85em;margin:.2em 0 .6em">Band colours: green '
            f"favourable, amber intermediate, red unfavourable. "
            f"{html.escape(bands_legend(self.risks))}<br>"
            f"{html.escape(outcomes_legend(self.risks, self.interval_meaning))}"
            + f"<br>{e(_REFERENCE)}" * any(r.drivers for r in self.risks.values())
            + "</div>"
        )
        cards = [_outcome_html(r) for r in self.risks.values() if r.drivers or r.warnings]
        if cards:
            parts.append(
                # side by side where the page is wide enough, one under another where not
                f'<div style="display:flex;flex-wrap:wrap;gap:.8em">{"".join(cards)}</div>'
            )
        if self.missing:
            ranges = f"<br>{_UNRECORDED_RANGES}: {e(self._ranges())}" * bool(self._ranges())
            parts.append(
                '<p style="margin:.6em 0">Not recorded (integrated over their plausible '
                f"values given the rest of the record): {e(', '.join(self.missing))}{ranges}</p>"
            )
        parts.append(f'<div style="font-size:.8em;opacity:.8">{e(self._model_line())}</div>')
        parts.append("</div>")
        return "".join(parts)


# what the ranges over the fields not recorded are: the lowest and highest probability over
# the draws the estimate averages
_UNRECORDED_RANGES = "Lowest and highest over the draws of the fields not recorded"


def _html_page(body: str, title: str) -> str:
    """A whole HTML page around a report's or comparison's HTML: a file saved from
    ``_repr_html_`` alone had no encoding, and a browser showed a minus sign as mojibake."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>{body}</body></html>\n"
    )


# -- shared by the reports and the comparison of schedules -------------------------------------
def bands_legend(outcomes: Iterable[str]) -> str:
    """Where the bands of ``outcomes`` fall, and which way is good, in one sentence.

    Examples
    --------
    >>> from ketapredict.clinic import bands_legend
    >>> bands_legend(["response", "cognitive_decline"])  # doctest: +NORMALIZE_WHITESPACE
    "Bands (ketapredict's conventions, not clinical thresholds): response low below 30%,
    high from 60%, a high chance favourable; cognitive decline low below 5%, high from 20%,
    a high risk unfavourable."
    """
    outcomes = list(outcomes)
    parts = []
    for group, reading in (
        (BENEFITS, "a high chance favourable"),
        (HARMS, "a high risk unfavourable"),
    ):
        for low, high in dict.fromkeys(BANDS[o] for o in group if o in outcomes):
            names = [o for o in group if o in outcomes and BANDS[o] == (low, high)]
            parts.append(
                f"{' and '.join(n.replace('_', ' ') for n in names)} low below {low:.0%}, "
                f"high from {high:.0%}, {reading}"
            )
    return "Bands (ketapredict's conventions, not clinical thresholds): " + "; ".join(parts) + "."


def outcomes_legend(outcomes: Iterable[str], intervals: str | None = None) -> str:
    """What ``outcomes`` are and, given ``intervals`` (what the model's 90% intervals mean:
    :attr:`RiskReport.interval_meaning`), what an interval is, in one paragraph: a report
    and a comparison print it under their tables.

    Examples
    --------
    >>> from ketapredict.clinic import outcomes_legend
    >>> outcomes_legend(["dissociation"])
    'Outcomes: dissociation: CADSS above 4 in the first session.'
    """
    defined = [
        f"{o.replace('_', ' ')}: {OUTCOME_DEFINITIONS[o]}"
        for o in outcomes
        if o in OUTCOME_DEFINITIONS
    ]
    text = f"Outcomes: {'; '.join(defined)}." if defined else ""
    return f"{text} {intervals}".strip() if intervals else text


def interval_meaning(model) -> str | None:
    """What a 90% interval of ``model`` means, in words (None: it has none). Widened to
    hold the true probabilities of new virtual patients
    (:meth:`RiskModel.calibrate_intervals`), it says so; from the bootstrap alone, it is
    how far another training sample would move the estimate, and leaves out the model's
    bias."""
    kind = model.interval_kind
    if kind is None:
        return None
    if kind == "calibrated":
        return (
            "90% interval: widened until it held the true probability of 9 in 10 new "
            "virtual patients in trials the model never saw (the model's provenance says how)."
        )
    return (
        "90% interval: how far the estimate would move with another training sample of this "
        "size; it leaves out the model's own bias, so read it as the least uncertainty there is."
    )


def _rounded(p: float) -> float:
    """A probability in percent as printed: one decimal below 10%, whole points above."""
    v = 100 * float(p)
    return round(v, 1) if round(v, 1) < 10 else float(round(v))


def _percent(p: float, unit: str = "%") -> str:
    """A probability as a percentage, rounded to what it can say (:func:`_rounded`), and
    never 0% or 100% for an estimate that is neither."""
    if 100 * float(p) < 0.05:
        return f"<0.1{unit}"
    v = _rounded(p)
    if v < 10:
        return f"{v:.1f}{unit}"
    if v <= 99:
        return f"{v:.0f}{unit}"
    return f">99{unit}"


def _model_line(source: Mapping[str, Any]) -> str:
    return (
        f"Model {source.get('name', 'unnamed')!r} (ketapredict "
        f"{one_line(source.get('ketapredict_version', '?'))}), trained "
        f"{one_line(source.get('trained', '?'))} on "
        f"{one_line(source.get('data_kind', 'unknown'))} data."
    )


# The most lines of schedule names the comparison's figure lists (about 10 inches of them)
_LISTED_LINES = 64
# The longest line of a schedule's name in the comparison's figure (the standard grid's
# ketamine names fit on one, its esketamine names with their antidepressant take two).
_NAME_CHARS = 48


def _notice(provenance: Mapping[str, Any]) -> str | None:
    """The model's own notes, led by the virtual cohort's notice for a model of simulated
    data, whatever its notes say (unless they say it already)."""
    # a model file's text: no lines of its own
    notes = one_line(provenance["notes"]) if provenance.get("notes") else None
    if provenance.get("data_kind") != "simulated" or (
        notes is not None and VIRTUAL_COHORT_NOTICE in notes
    ):
        return notes
    return f"{VIRTUAL_COHORT_NOTICE} {notes}" if notes else VIRTUAL_COHORT_NOTICE


# Inline styles, not a <style> block: notebook front ends and viewers that strip style
# sheets keep them, and they cannot leak into the rest of the page. Colours are the
# Okabe-Ito bluish green, orange and vermillion (Okabe and Ito 2008), told apart with the
# common colour-vision deficiencies, and every colour is said in words too.
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.4;max-width:60em"
_TABLE = "border-collapse:collapse;margin:.4em 0"
_HEAD = "padding:3px 8px;text-align:left;border-bottom:1px solid #8888;font-weight:600"
_CELL = "padding:2px 8px;text-align:left;vertical-align:top"
_NOWRAP = ";white-space:nowrap"
_NUM = (
    "padding:2px 8px;text-align:right;vertical-align:top;white-space:nowrap;"
    "font-variant-numeric:tabular-nums"
)
# reading -> (background, text, border)
_COLOURS = {
    "favourable": ("#d4efe4", "#0b5640", "#009e73"),
    "intermediate": ("#fcefd2", "#6a4700", "#e69f00"),
    "unfavourable": ("#fbe0d1", "#8a2d00", "#d55e00"),
    None: ("#ececec", "#333333", "#999999"),
}


def _badge(risk: OutcomeRisk) -> str:
    background, text, border = _COLOURS[risk.reading]
    return (
        f'<span class="kp-band kp-{risk.reading or "neutral"}" style="background:'
        f"{background};color:{text};border:1px solid {border};border-radius:3px;"
        f'padding:0 .45em;white-space:nowrap">{html.escape(risk.band_text)}</span>'
    )


def _notice_html(text: str) -> str:
    return (
        '<div role="note" style="border-left:5px solid #d55e00;background:#fbe0d1;'
        'color:#5a1d00;padding:.45em .8em;margin:.5em 0;font-weight:600">'
        f"{html.escape(text)}</div>"
    )


def _warnings_html(outcome: str, title: str, warnings: Sequence[str]) -> str:
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return (
        f'<section class="kp-warnings" data-outcome="{html.escape(outcome)}" '
        'style="border-left:5px solid #e69f00;background:#fcefd2;color:#3d2900;'
        'padding:.35em .8em;margin:.5em 0">'
        f'<div style="font-weight:600">{html.escape(title)}</div>'
        f'<ul style="margin:.2em 0;padding-left:1.3em">{items}</ul></section>'
    )


def _points(value: float) -> str:
    """Signed percentage points, one decimal (two below 0.1, which one would show as 0.0),
    with a true minus sign, as wide as the plus."""
    return f"{value:+.{1 if abs(value) >= 0.095 else 2}f}".replace("-", "\u2212")


def _named(row: Mapping[str, Any]) -> str:
    """A compared schedule as shown: its name, and what it is when the name is the caller's
    own (``"mine: ketamine 0.5 mg/kg IV over 40 min"``)."""
    name, schedule = str(row["regimen"]), str(row.get("schedule", row["regimen"]))
    return name if name == schedule else f"{name}: {schedule}"


def _plain_points(value: float) -> str:
    """:func:`_points` for plain text (an ASCII minus)."""
    return _points(value).replace("\u2212", "-")


def _outcome_html(risk: OutcomeRisk) -> str:
    e = html.escape
    parts = [
        f'<section class="kp-outcome" data-outcome="{e(risk.outcome)}" '
        'style="flex:1 1 24em;border:1px solid #8886;border-radius:4px;padding:.4em .7em">',
        f"<div><b>{e(risk.label)}: {e(_percent(risk.probability))}</b>"
        f"{'' if risk.low is None else f' ({e(risk.interval_text)})'} {_badge(risk)}</div>",
    ]
    if risk.drivers:
        rows = [
            f'<tr><td style="{_CELL}">{e(d.label)}</td><td style="{_CELL}">{e(d.value)}</td>'
            f'<td style="{_NUM}">{_points(d.points)}</td></tr>'
            for d in risk.drivers
        ]
        italic = f"{_CELL};font-style:italic"
        if risk.schedule_points is not None:
            rows.append(
                f'<tr><td style="{italic}" colspan="2">{e(_chosen(risk))}</td>'
                f'<td style="{_NUM}">{_points(risk.schedule_points)}</td></tr>'
            )
        rows.append(
            f'<tr><td style="{italic}" colspan="2">{e(_OTHERS)}</td>'
            f'<td style="{_NUM}">{_points(risk.other_points)}</td></tr>'
        )
        total = 100 * (risk.probability - risk.reference)
        rows.append(
            f'<tr style="border-top:1px solid #8888"><td style="{_CELL}" colspan="2">'
            f"{e(_from_reference(risk))}</td>"
            f'<td style="{_NUM};font-weight:600">{_points(total)}</td></tr>'
        )
        parts.append(
            f'<table style="{_TABLE};width:100%"><thead><tr>'
            f'<th style="{_HEAD}">what moved it</th><th style="{_HEAD}">this patient</th>'
            f'<th style="{_HEAD};text-align:right">points</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    if risk.warnings:
        title = f"Warnings for {risk.outcome.replace('_', ' ')}"
        parts.append(_warnings_html(risk.outcome, title, risk.warnings))
    parts.append("</section>")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------
def _band(outcome: str, p: float) -> str:
    """The band of a probability as printed (:func:`_percent`): 29.6% prints as 30% and so
    reads as moderate, never as "30% low"."""
    low, high = BANDS.get(outcome, (1 / 3, 2 / 3))
    p = _rounded(p) / 100
    return "low" if p < low else ("moderate" if p < high else "high")


def _regimen_of(record: Mapping[str, Any], regimen: Any, problems: list[Problem]):
    """The Regimen to score, and the regimen fields to drop from the record."""
    if isinstance(regimen, Regimen):
        return regimen
    if regimen is not None:
        if not isinstance(regimen, Mapping | pd.Series):
            problems.append(
                Problem(
                    "regimen",
                    regimen,
                    f"regimen must be a Regimen, a mapping of its fields or None; got "
                    f"{type(regimen).__name__}",
                )
            )
            return None
        try:
            fields = record_items(regimen, "regimen")
        except ValidationError as error:  # a field given twice
            problems.extend(error.problems)
            return None
        blank = {}
    else:
        fields, blank = recorded_fields(record)
        # a blank drug, route or dose is said below (no dose schedule), and a record with
        # none of them has no schedule whose other blanks would matter
        given = any(k in fields for k in ("drug", "route", "dose"))
        blank = {k: t for k, t in blank.items() if given and k not in ("drug", "route", "dose")}
        problems.extend(Problem(k, None, text) for k, text in blank.items())
    unknown = unknown_fields(fields)
    problems.extend(unknown)
    absent = [k for k in ("drug", "route", "dose") if k not in fields]
    if absent:
        problems.append(
            Problem(
                absent[0],
                None,
                f"no dose schedule: the regimen given has no {', '.join(absent)}"
                if regimen is not None
                else f"no dose schedule: the patient record has no {', '.join(absent)}; "
                + NO_SCHEDULE_HINT,
            )
        )
    if unknown or absent:
        return None
    try:  # the other fields' faults too, beside a blank's
        course = Regimen(**fields)
    except ValidationError as error:
        problems.extend(error.problems)
        return None
    return None if blank else course


def _role(name: Any) -> str | None:
    """The contract role of a field (visit columns included), None if unknown."""
    return column(name).role if _known(name) else None


def _mid_course(values: Mapping[str, Any], planned_read: bool = False) -> str | None:
    """A note when the horizon comes before the schedule's last session: the features
    describe the course given by then (its exposure, sessions and length), so the estimate
    is for that part of the course and the sessions still to come do not move it, unless
    the feature set reads the planned number of sessions too (``planned_read``). None
    otherwise."""
    fields = {
        k: np.array([values.get(k)], dtype=object) for k in (*REGIMEN_FIELDS, "endpoint_day")
    }
    given = float(exposure(fields)["sessions_by_endpoint"][0])
    planned = values.get("n_sessions") or 1
    if given >= planned:
        return None
    day = _day_text(float(values["endpoint_day"]))
    said = (
        f"the horizon (day {day}) comes before the last of the {int(planned)} planned "
        f"sessions: the estimate is for the {given:g} given by then"
    )
    if planned_read:
        return (
            f"{said}, but this model's feature set also reads the planned number of sessions, "
            "so the sessions still to come move it: read it with care"
        )
    return f"{said}, and the sessions still to come do not count"


# What a patient may be given as, for the error that says otherwise.
_PATIENT_KINDS = "a dict, a Patient, a pandas Series or a DataFrame"


def _prepare(
    model, patient: Mapping[str, Any], regimen: Any, horizon_day: Any = None
) -> tuple[Columns, dict, list, str, str]:
    """Validate one patient, regimen and horizon; the encoder's columns, the record, warnings,
    the regimen in words and the horizon in words."""
    patient = record_items(patient, "patient", _PATIENT_KINDS)
    warnings: list[str] = []
    regimen_columns = set(columns("regimen"))
    baseline = {k: v for k, v in patient.items() if _role(k) not in (*_NOT_INPUTS, "regimen")}
    # a regimen given replaces the record's schedule, and its day unless a horizon is given;
    # a horizon replaces the record's day
    if regimen is not None:
        replaced = [
            k
            for k in patient
            if k in regimen_columns and k != "endpoint_day" and not _is_missing(patient[k])
        ]
        if replaced:
            warnings.append(
                "the record's own regimen fields (" + ", ".join(replaced) + ") were "
                "replaced by the regimen given"
            )
    own_day = patient.get("endpoint_day")
    own_day = None if _is_missing(own_day) else _number(own_day)
    if horizon_day is not None and own_day is not None and own_day != _number(horizon_day):
        warnings.append("the record's own endpoint_day was replaced by the horizon given")
    problems: list[Problem] = []
    try:
        record = validate_patient(baseline)
    except ValidationError as error:
        problems.extend(error.problems)
        record = {}
    at_fault = ["patient"] if problems else []  # the error's heading names what was wrong
    before = len(problems)
    course = _regimen_of(patient, regimen, problems)
    if len(problems) > before:
        # "the patient and its regimen fields", not "the patient and patient's ..."
        whose = "its" if at_fault else "patient's"
        at_fault.append("regimen" if regimen is not None else f"{whose} regimen fields")
    before = len(problems)
    if horizon_day is not None:  # asked for: NaN is a mistake, not "none"
        endpoint, source = _day(horizon_day, "horizon_day", problems), "as given"
    else:
        recorded = None if regimen is not None else patient.get("endpoint_day")
        endpoint = None if _is_missing(recorded) else _day(recorded, "endpoint_day", problems)
        source = "the record's assessment day"
    if len(problems) > before:  # the record's own day is the patient's
        whose = "horizon" if horizon_day is not None else "patient"
        at_fault += [] if whose in at_fault else [whose]
    if problems:
        *others, last = at_fault
        identifier = patient.get("patient_id")
        if isinstance(identifier, str):  # put in a regimen field or the day: named, not shown
            problems = identifiers_masked(problems, pd.Series([identifier]), "this record")
        raise ValidationError(problems, f"{', '.join(others)} and {last}" if others else last)
    values = {**record, **course.to_dict()}
    if endpoint is None:
        # no horizon given: the schedule's own end point, said in the report
        endpoint = course.endpoint_day
        if regimen is not None and own_day is not None and own_day != endpoint:
            warnings.append(
                "the record's own endpoint_day was replaced by the regimen's end point (24 h "
                "after its last session)"
            )
        source = "24 h after the last session; give a horizon day to choose another"
        beyond = _beyond_the_horizons(endpoint, "the schedule's")
        if beyond is not None:
            raise ValidationError([beyond], "horizon")
    values["endpoint_day"] = endpoint
    horizon = f"day {_day_text(endpoint)} after the first session ({source})"
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


def _beyond_the_horizons(day: float, whose: str) -> Problem | None:
    """A problem when a default horizon (a schedule's end point) lies beyond the days a
    horizon may take; None otherwise."""
    text = beyond_the_horizons(day, whose)
    return None if text is None else Problem("horizon_day", None, text)


def _day_text(day: float) -> str:
    """A day to one decimal (a tenth of a day is under 3 hours), without a trailing .0;
    within the first day to two (day 0.04 is about an hour, not day 0), and below 0.005
    (7 minutes, which two decimals would round to day 0 or 0.01) to two significant digits:
    a horizon is above day 0.

    Examples
    --------
    >>> from ketapredict.clinic import _day_text
    >>> _day_text(25.5), _day_text(28.0), _day_text(0.04), _day_text(0.004), _day_text(1e-300)
    ('25.5', '28', '0.04', '0.004', '1e-300')
    """
    if day < 0.005:
        return f"{day:.2g}"
    text = f"{day:.2f}".rstrip("0") if round(day, 1) < 1 else f"{day:.1f}"
    return text.removesuffix(".").removesuffix(".0")


def _day(value: Any, name: str, problems: list[Problem]) -> float | None:
    """A horizon in days after the first session: above 0 (the moment of the first session,
    before anything acts) and within the contract's range."""
    spec = column("endpoint_day")
    day = _number(value)  # as a number field of a record: True is not day 1
    if day is None or not spec.low < day <= spec.high:  # NaN too: asked for, not "none"
        problems.append(
            Problem(
                name,
                value,
                f"{name}={short_repr(value)} is not a day after the first session: above "
                f"{spec.low:g} and at most {spec.high:g} (days; 0.1 is about 2.4 hours, 1 "
                "is 24 hours)",
            )
        )
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
                # several features (comparator: saline, ...): the predictor, not the first
                else p
                if (code == i).sum() > 1
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


def _spared(model, own, name: str | None, referenced, x_referenced: np.ndarray) -> list[str]:
    """The outcomes assessed at a time of their own (dissociation, in the first session)
    that a warning about one feature of the training data does not concern: the training
    summary describes the courses as of the horizon, and such an outcome sees a different
    value of the feature (the course by the assessment), or none. The joint distance
    (``name`` None) spares none: it weighs the patient's own values too, which every
    outcome reads."""
    if name is None:
        return []
    spared = []
    for outcome, state in model._outcomes.items():
        if state.spec.assessed_day is None or state is referenced:
            continue
        names = list(state.feature_names)
        if (
            name not in names
            or own[outcome][0][names.index(name)]
            != x_referenced[list(referenced.feature_names).index(name)]
        ):
            spared.append(outcome)
    return spared


def _ood_warnings(
    reference: Mapping[str, Any], names: Sequence[str], x: np.ndarray, words
) -> list[tuple[str | None, str]]:
    """Warnings about the training data as (feature, text): ``feature`` None for the joint
    (Mahalanobis) distance over every continuous feature."""
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
            unit = _unit_of(name)
            warnings.append(
                (
                    name,
                    # "1 days", "1 weeks": a plural unit after exactly one
                    f"{words.label[name]} = {value:.3g}"
                    f"{unit.removesuffix('s') if f'{value:.3g}' == '1' else unit} is outside "
                    "the training range "
                    f"{low:.3g} to {high:.3g}{unit} (0.5th to 99.5th percentile, each end "
                    f"at least {MIN_CELL} patients in)",
                )
            )
        z[k] = (value - reference["mean"][k]) / reference["sd"][k]
    for name in unseen_flags(reference):
        if x[where[name]] == 1:
            warnings.append((name, f"{words.label[name]} never occurs in the training data"))
    covariance, precision = _inverse(reference)
    if np.isnan(z).any():
        distance = float(joint_distance(z, covariance)[0])
    else:  # every value given: the inverse is computed once
        distance = float(np.sqrt(z @ precision @ z))
    if distance > reference["joint_threshold"]:
        warnings.append(
            (
                None,
                f"this combination of values is unusual for the training data (Mahalanobis "
                f"distance {distance:.1f}, above the {reference['joint_threshold']:.1f} of 99% "
                "of training patients): the estimate is an extrapolation",
            )
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
        return column(name).value_text(values[name], values.get("dose_unit"))
    positions = [j for j, code in enumerate(words.code) if words.predictors[code] == predictor]
    if len(positions) > 1 and all(x[j] in (0.0, 1.0) for j in positions):
        # one-hot columns (comparator, route): name the one that is set
        chosen = [words.label[words.names[j]].split(": ", 1)[-1] for j in positions if x[j] == 1]
        return chosen[0] if chosen else "none"
    value = x[positions[0]]
    if np.isnan(value):
        return "missing"
    if words.names[positions[0]] in _YES_NO:
        return "yes" if value == 1 else "no"
    unit = DERIVED_UNITS.get(words.names[positions[0]], "")
    return f"{value:.3g} {unit}".strip()


# Dose-schedule features that are yes or no.
_YES_NO = frozenset({"active_drug"})


_COLUMN_NAMES = frozenset(c for role in ("baseline", "regimen") for c in columns(role))


def _unit_of(feature: str) -> str:
    """An encoded feature's unit after a space ("" for none), for a warning's numbers:
    "weeks", "years", "mg/kg per week" (a scale's name is not a unit to print)."""
    unit = DERIVED_UNITS.get(feature)
    if unit is None and feature in _COLUMN_NAMES and column(feature).kind == "float":
        unit = column(feature).printed_unit
    return " " + unit.split(" (")[0] if unit else ""


# Encoders whose features describe what the clinician chose (the regimen: drug, route, dose,
# schedule, a new oral antidepressant; and the horizon), not the patient: by default their
# share is one line of its own rather than reasons. By encoder, not by the feature set's
# group name, which a user's set may choose freely.
_GIVEN_ENCODERS = frozenset({"dose_schedule"})


_CHOSEN = "the regimen and the horizon (chosen, not the patient's)"


def _chosen(risk: OutcomeRisk) -> str:
    """The line of the chosen: an outcome with a time of its own (dissociation, in the
    first session) is not moved by the horizon."""
    return "the regimen (chosen, not the patient's)" if risk.horizon_free else _CHOSEN


_OTHERS = "the other predictors together"


def _drivers(
    model,
    state,
    draws: np.ndarray,
    x: np.ndarray,
    values,
    n: int = N_DRIVERS,
    everything: bool = False,
):
    """Top ``n`` predictors in percentage points, the points of the schedule and horizon
    together (None when they are listed), and the reference risk (the probability at the
    model's mean log-odds).

    ``draws`` are the encoded rows the probability averages over (one row, or one per draw
    of the missing fields); ``x`` is the patient's own encoded row, missing values
    included. SHAP values are averaged over the draws. A predictor the record lacks is never
    a reason: its points join "the other predictors together".
    """
    from .trees import expit

    phi, base = state.contributions(draws, member=0)

    def probability(margin: np.ndarray) -> np.ndarray:
        margins = np.asarray(margin, dtype=float)[:, None]
        return expit(model._reported(state, model._log_odds(state, None, False, margins))[:, 0])

    p0 = float(probability(np.array([base]))[0])
    # each draw's SHAP values are scaled to points by that draw's own secant slope (of a
    # monotone map: between 0 and its steepest slope, never negative), then averaged: the
    # secant of the averages could point the other way when the draws straddle the base
    totals = phi.sum(axis=1)
    margins = base + totals
    steep = np.abs(totals) <= 1e-6
    slopes = np.where(
        steep,
        (probability(margins + 1e-4) - probability(margins - 1e-4)) / 2e-4,
        (probability(margins) - p0) / np.where(steep, 1.0, totals),
    )
    scaled = (slopes[:, None] * phi).mean(axis=0)
    words = _words(state)
    points = np.bincount(words.code, weights=100 * scaled, minlength=len(words.predictors))
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
        if abs(points[i]) < _LEAST_POINTS:  # "+0.00 pp" moves nothing: not a reason either
            break
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


# The smallest push listed as a driver, in percentage points (smaller ones print as 0.00).
_LEAST_POINTS = 0.005

# The fields not recorded "matter" for an outcome when their plausible values put it in
# different bands, by at least this much (probability), so that a hair across a band's edge
# does not count: ketapredict's convention.
MISSING_SPREAD = 0.05
_UNRECORDED = (
    "the fields not recorded could move it into another band: recording them would narrow it"
)


def _unrecorded_range(model, state, draws: np.ndarray) -> tuple[float, float]:
    """The lowest and highest probability over the draws of the fields not recorded.

    ``draws`` are the patient's encoded rows, one per draw of the missing fields; each
    draw's probability (the fitted model's, before averaging) shows how far they reach.
    """
    from .trees import expit

    p = expit(model._reported(state, model._log_odds(state, draws, members=False))[:, 0])
    return float(p.min()), float(p.max())


def _check_columns_once(table: pd.DataFrame, what: str = "patient table") -> None:
    """Refuse a table (``what``) with a repeated column: each row would hold the field
    twice."""
    repeated = table.columns[table.columns.duplicated()].unique()
    if len(repeated):
        raise ValidationError(
            [
                Problem(
                    name,
                    None,
                    f"column {short_repr(name)} appears "
                    f"{int((table.columns.get_indexer_for([name]) >= 0).sum())} times; give each "
                    "column once",
                )
                for name in repeated
            ],
            what,
        )


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
    if (problem := flag_problem("drivers", drivers, also=("all",))) is not None:
        raise ValidationError([problem], "arguments")
    drivers = drivers if isinstance(drivers, str) else bool(drivers)
    if isinstance(patient, pd.DataFrame):
        _check_columns_once(patient)
        # as the table entry points read a table: rows named by position where the labels
        # could identify patients, a site's own columns left out
        table, what = rows_for_messages(patient, "patient table")
        table = contract_part(table, what)
        problems, at_fault = [], []
        if regimen is not None:  # the arguments' problems once, not once a row
            _regimen_of({}, regimen, problems)
            at_fault += ["regimen"] if problems else []
        if horizon_day is not None and _day(horizon_day, "horizon_day", problems) is None:
            at_fault.append("horizon")
        if problems:
            raise ValidationError(problems, " and ".join(at_fault))
        reports = []
        for label, row in table.iterrows():
            try:
                reports.append(
                    score(model, row, regimen, horizon_day=horizon_day, drivers=drivers)
                )
            except ValidationError as error:  # every row's, each named, as a table's are
                problems += [replace(p, row=label) for p in error.problems]
        if problems:
            raise ValidationError(problems, what)
        return reports
    arrays, values, warnings, described, horizon = _prepare(model, patient, regimen, horizon_day)
    # a missing optional field is integrated out: the patient is scored on draws of it given
    # the recorded fields, and the probabilities are averaged (ketapredict.imputation)
    filled, owner = model._expand(arrays)
    encoded = model._encoded(filled)
    own = model._encoded(arrays) if owner is not None else encoded
    intervals = model._intervals(encoded, owner, 1)
    read = model.__dict__.get("_read")
    if read is None:  # the baseline fields the models read, once per model
        read = set().union(*(sources(s.spec) for s in model._outcomes.values()))
        read = model.__dict__["_read"] = sorted(read - {*REGIMEN_FIELDS, "endpoint_day"})
    missing = [column(name).clinical_label for name in read if values.get(name) is None]
    some_lack_intervals = not model.has_intervals and any(
        s.z is not None for s in model._outcomes.values()
    )
    risks = {}
    referenced = model._referenced()  # the encoding the training summary describes
    x_referenced = own[referenced.outcome][0]
    for name, text in _ood_warnings(
        model.reference, referenced.feature_names, x_referenced, _words(referenced)
    ):
        # one that concerns some outcomes only begins with their names, as an outcome's own
        # warnings do in all_warnings and comparisons
        spared = _spared(model, own, name, referenced, x_referenced)
        concerned = [o.replace("_", " ") for o in model._outcomes if o not in spared]
        warnings.append(f"{', '.join(concerned)}: {text}" if spared else text)
    for outcome, state in model._outcomes.items():
        x = own[outcome][0]
        p, low, high = (float(v[0]) for v in intervals[outcome])
        effects, given, reference = (
            _drivers(model, state, encoded[outcome], x, values, everything=drivers == "all")
            if drivers
            else ((), None, np.nan)
        )
        own_warnings = []
        if state.z is None:
            if some_lack_intervals:
                own_warnings.append(
                    "this outcome's model has no bootstrap replicates, so no interval"
                )
        elif _band(outcome, low) == "low" and _band(outcome, high) == "high":
            # the interval itself is shown beside the warning, so the text is the same for
            # every schedule of a comparison, and listed there once
            own_warnings.append(
                "its 90% interval reaches from the low band into the high band, so the band "
                "is uncertain"
            )
        unrecorded = None
        if owner is not None:
            unrecorded = _unrecorded_range(model, state, encoded[outcome])
            lowest, highest = unrecorded
            if (
                _band(outcome, lowest) != _band(outcome, highest)
                and highest - lowest >= MISSING_SPREAD
            ):
                own_warnings.append(_UNRECORDED)
        risks[outcome] = OutcomeRisk(
            outcome=outcome,
            probability=p,
            low=low if state.z is not None else None,
            high=high if state.z is not None else None,
            band=_band(outcome, p),
            reference=float(reference) if drivers else None,  # not computed: no drivers
            drivers=effects,
            schedule_points=given,
            warnings=tuple(own_warnings),
            unrecorded=unrecorded,
            horizon_free=state.spec.assessed_day is not None,
        )
    if values.get("dose_unit") == "mg" and values.get("weight_kg") is None and values["dose"]:
        warnings.append(
            # the dose itself is in the schedule's name: one text for every dose in mg
            f"the dose in mg was converted to mg/kg at the reference weight of "
            f"{REFERENCE_WEIGHT_KG:g} kg; give the patient's weight for a sounder estimate"
        )
    low_dose = below_any_studied(values)
    if low_dose is not None:
        warnings.append(low_dose)
    before_the_end = _mid_course(
        values, any(reads_planned_course(s.spec) for s in model._outcomes.values())
    )
    if before_the_end is not None:
        warnings.append(before_the_end)
    at_horizon = [o for o, s in model._outcomes.items() if s.spec.assessed_day is None]
    for text, horizon_only in _never_trained_on(model.reference or {}, values):
        if horizon_only and len(at_horizon) < len(model._outcomes):
            text = f"{', '.join(o.replace('_', ' ') for o in at_horizon)}: {text}"
        if not horizon_only or at_horizon:
            warnings.append(text)
    if not any(s.z is not None for s in model._outcomes.values()):
        warnings.append("this model has no bootstrap replicates, so no intervals")
    from . import __version__

    # a copy all the way down: a report annotated or redacted by its reader leaves the model
    provenance = {"ketapredict_version": __version__, **copy.deepcopy(model.provenance)}
    return RiskReport(
        regimen=described,
        horizon_day=float(values["endpoint_day"]),
        horizon=horizon,
        risks=risks,
        warnings=warnings,
        missing=missing,
        provenance=provenance,
        interval_meaning=interval_meaning(model),
    )


def _never_trained_on(
    reference: Mapping[str, Any], values: Mapping[str, Any]
) -> list[tuple[str, bool]]:
    """The warnings for a course whose kind the model never trained on, each with whether
    only the outcomes assessed at the horizon are concerned. A new drug by its route says
    so alone (everything after it is new too); else a new schedule, and a diagnosis new on
    the drug and route, or new on the schedule when the schedule is not. Every encoded
    feature can look familiar where the kind is new (arketamine as half a dose of ketamine;
    esketamine without an oral antidepressant as esketamine with one). An outcome of the
    first session (dissociation) sees a first session, not the sessions to come nor an
    antidepressant yet to act: a new schedule of a drug and route it trained on is no
    extrapolation for it, nor a diagnosis it saw on that drug and route, but a diagnosis
    never seen on the drug and route is."""
    said = " never occurs in the training data: the estimate is an extrapolation"
    fields = [
        values.get(f)
        for f in ("drug", "route", "n_sessions", "new_oral_antidepressant", "diagnosis")
    ]
    pair = drug_route(fields[0], fields[1])
    trained_on = reference.get("drug_routes")
    if trained_on and pair and pair not in trained_on:
        routes = ", ".join(trained_on)
        drug, route = values.get("drug"), values.get("route")
        return [(_routes_upper(f"{drug} by the {route} route{said} (it has {routes})"), False)]
    found = []
    kind = schedule_kind(*fields)
    new_schedule = (
        bool(reference.get("schedules")) and kind != "" and (kind not in reference["schedules"])
    )
    if new_schedule:
        found.append((f"the schedule {kind}{said}", True))
    seen = reference.get("diagnosis_schedules")
    kind = schedule_kind(*fields, by_diagnosis=True)
    if seen and kind:
        diagnosis, schedule = kind.split(": ", 1)
        on_pair = any(k.startswith(f"{diagnosis}: {pair},") for k in seen)
        if not on_pair:  # the first session is new too
            found.append((f"diagnosis {diagnosis} with {pair}{said}", False))
        elif kind not in seen and not new_schedule:
            found.append((f"diagnosis {diagnosis} with {schedule}{said}", True))
    return [(_routes_upper(text), first) for text, first in found]


def _routes_upper(text: str) -> str:
    """IV and IM as the reports write them elsewhere ("ketamine 0.5 mg/kg IV"); the
    model's record of schedules keeps the contract's lower-case codes."""
    return re.sub(r"\b(iv|im)\b", lambda m: m.group(1).upper(), text)


# --------------------------------------------------------------------------------------------
# Comparing schedules
# --------------------------------------------------------------------------------------------
def _finite(value: Any) -> float | None:
    """A finite number as the contract reads one (:func:`ketapredict.schema._number`), or
    None."""
    number = _number(value)
    return number if number is not None and np.isfinite(number) else None


def _checked_grid(
    doses: Any, sessions_per_week: Any, weeks: Any
) -> tuple[dict[str, list[float]], list[float], float]:
    """regimen_grid's arguments checked: one ValidationError naming each bad one."""
    problems: list[Problem] = []
    checked: dict[str, list[float]] = {}
    if not isinstance(doses, Mapping) or not doses:
        problems.append(
            Problem("doses", doses, "doses must map routes to lists of doses, e.g. "
                    f"{{'iv': [0.5], 'intranasal': [56]}}; got {short_repr(doses)}")
        )  # fmt: skip
    else:
        for route, values in doses.items():
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                values = None
            else:
                values = list(values)
            numbers = [_finite(v) for v in values or ()]
            routes = column("route").categories
            if route not in routes:  # named as a key of doses, not as a regimen's route
                problems.append(
                    Problem(
                        "doses",
                        None,
                        f"doses names the route {short_repr(route)}, which is not one of "
                        + ", ".join(map(repr, routes)),
                    )
                )
            elif not numbers or None in numbers:
                problems.append(
                    Problem("doses", values, f"doses[{short_repr(route)}] must be a non-empty "
                            f"list of numbers; got {short_repr(doses[route])}")
                )  # fmt: skip
            else:
                checked[route] = numbers
    frequencies = (
        [_finite(v) for v in sessions_per_week]
        if isinstance(sessions_per_week, Iterable) and not isinstance(sessions_per_week, str)
        else None
    )
    weeks_ = _finite(weeks)
    if not frequencies or not all(f is not None and f > 0 for f in frequencies):
        problems.append(
            Problem("sessions_per_week", sessions_per_week, "sessions_per_week must be a "
                    f"non-empty list of positive numbers; got {short_repr(sessions_per_week)}")
        )  # fmt: skip
    elif weeks_ is None or weeks_ <= 0:
        problems.append(
            Problem("weeks", weeks, f"weeks must be a positive number; got {short_repr(weeks)}")
        )
    else:  # the sessions of each course, rounded as the grid rounds them
        limit = column("n_sessions").high
        for frequency in frequencies:
            sessions = round(frequency * weeks_)
            if not 1 <= sessions <= limit:
                problems.append(
                    Problem("weeks", weeks, f"weeks={short_repr(weeks)} at {frequency:g} a "
                            f"week gives {sessions} sessions; a course has 1 to {limit:g}")
                )  # fmt: skip
    if problems:
        raise ValidationError(problems, "regimen grid")
    return checked, frequencies, weeks_


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
        84 mg (the licensed doses, Daly 2018; Popova 2019), with a newly started oral
        antidepressant, as it is licensed and was trialled (Popova 2019).
    sessions_per_week : iterable of float, default=(1, 2, 3)
        Frequencies (Singh 2016 compared two and three a week).
    weeks : float, default=4
        Course length; sessions are ``sessions_per_week * weeks`` rounded to the nearest
        whole number (half to even: 2.5 a week for 3 weeks is 8 sessions).

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
    if doses is None:
        doses = {"iv": (0.2, 0.5, 1.0), "im": (0.5,), "intranasal": (28, 56, 84)}
    doses, sessions_per_week, weeks = _checked_grid(doses, sessions_per_week, weeks)
    grid = []
    for route, route_doses in doses.items():
        for dose in route_doses:
            for per_week in sessions_per_week:
                n = round(per_week * weeks)
                if route == "intranasal":
                    grid.append(
                        Regimen(
                            drug="esketamine",
                            route=route,
                            dose=dose,
                            dose_unit="mg",
                            sessions_per_week=per_week,
                            n_sessions=n,
                            new_oral_antidepressant=True,
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


# A valid schedule to check a patient with when every schedule given has problems.
_PLACEHOLDER = Regimen(drug="saline", route="iv", dose=0.0, infusion_minutes=40)
# At most this many schedules in one comparison: each is scored in about 10 ms, and the
# dominance check compares every pair (10,000 schedules took 100 MB a matrix; the default
# grid has 21). A longer list is a mistake or a search, which a loop over score() serves.
MAX_REGIMENS = 1_000
# A schedule's name is printed in the comparison's table: one line of readable length.
_MAX_NAME = 100


def compare_regimens(
    model, patient: Any, regimens: Any = None, *, horizon_day: Any = None
) -> RegimenComparison:
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
        # read as score reads a table: a site's own columns left out, near-misses refused
        _check_columns_once(patient)
        patient = contract_part(patient, "patient").iloc[0]
    if regimens is None:
        regimens = regimen_grid()
    table_rows = False
    if isinstance(regimens, pd.DataFrame):  # one schedule a row
        _check_columns_once(regimens, "table of regimens")
        named = [(None, row) for _, row in regimens.head(MAX_REGIMENS + 1).iterrows()]
        table_rows = True  # its problems name the table's row by position, as validate does
    elif isinstance(regimens, Regimen) or (
        isinstance(regimens, Mapping | pd.Series) and any(k in regimens for k in REGIMEN_FIELDS)
    ):
        named = [(None, regimens)]  # one regimen
    elif isinstance(regimens, Mapping):
        named = list(islice(regimens.items(), MAX_REGIMENS + 1))
        names = [
            name
            for name, _ in named
            if not isinstance(name, str)
            or not name.strip()
            or len(name) > _MAX_NAME
            or one_line(name) != name
        ]
        if names:
            raise ValidationError(
                [
                    Problem(
                        "regimens",
                        name,
                        f"a regimen's name must be text on one line, not empty, of at most "
                        f"{_MAX_NAME} characters (it is printed in the table); got "
                        f"{short_repr(name)}",
                    )
                    for name in names
                ],
                "regimens",
            )
    elif isinstance(regimens, Iterable) and not isinstance(regimens, str | bytes):
        # at most one past the limit: a generator without end is refused, not run forever
        named = [(None, r) for r in islice(regimens, MAX_REGIMENS + 1)]
    else:
        raise ValidationError(
            [
                Problem(
                    "regimens",
                    regimens,
                    "regimens must be a Regimen, a list of them, a mapping of names to them or "
                    f"a DataFrame of them, one a row; got {type(regimens).__name__}",
                )
            ],
            "regimens",
        )
    if not named:
        raise ValidationError(
            [Problem("regimens", regimens, "compare_regimens needs at least one regimen")],
            "regimens",
        )
    if len(named) > MAX_REGIMENS:
        raise ValidationError(
            [
                Problem(
                    "regimens",
                    None,
                    f"compare_regimens compares at most {MAX_REGIMENS:,} schedules; got more. "
                    "Score a longer list one schedule at a time with model.score(patient, "
                    "regimen, horizon_day=...)",
                )
            ],
            "regimens",
        )
    # every schedule checked before any is scored, each problem naming its schedule (and
    # the patient's own problems with them), so one error lists all that is wrong
    problems: list[Problem] = []
    courses = []
    try:  # a schedule of None is the patient record's own
        own = record_items(patient, "patient", _PATIENT_KINDS)
    except ValidationError:
        own = {}  # the patient's problems are reported below
    for k, (name, regimen) in enumerate(named, start=1):
        found: list[Problem] = []
        courses.append(_regimen_of(own, regimen, found))
        label = (
            f"schedule {short_repr(name)}"
            if name is not None
            else f"row {k - 1} (schedule {k})"
            if table_rows
            else f"schedule {k}"
        )
        problems += [Problem(p.column, p.value, f"{label}: {p.message}") for p in found]
    if problems:
        valid = [course for course in courses if course is not None]
        try:  # the patient's and the horizon's problems too, with a schedule that has none
            _prepare(model, patient, valid[0] if valid else _PLACEHOLDER, horizon_day)
        except ValidationError as error:
            problems = [*error.problems, *problems]
        raise ValidationError(problems, "comparison")
    chosen = horizon_day is None
    if chosen:
        # one common day for all: the latest schedule's end point, so every course is over
        horizon_day = max(course.endpoint_day for course in courses)
        beyond = _beyond_the_horizons(horizon_day, "the longest schedule's")
        if beyond is not None:
            raise ValidationError([beyond], "comparison")
    rows = []
    report = None
    for name, regimen in named:
        report = score(model, patient, regimen, horizon_day=horizon_day, drivers=False)
        # a name of the caller's own keeps the schedule it stands for beside it
        row: dict[str, Any] = {"regimen": name or report.regimen, "schedule": report.regimen}
        for outcome, risk in report.risks.items():
            row[outcome] = risk.probability
            if risk.low is not None:
                row[f"{outcome}_low"] = risk.low
                row[f"{outcome}_high"] = risk.high
        row["warnings"] = report.all_warnings
        row["horizon_day"] = report.horizon_day
        rows.append(row)
    table = pd.DataFrame(rows)
    outcomes = list(report.risks)
    benefit = next((o for o in BENEFITS if o in outcomes), None)
    harm = next((o for o in HARMS if o in outcomes), None)
    beaten = _dominance(table, benefit, harm)
    table["dominated"] = np.array([bool(b) for b in beaten])
    table["dominated_by"] = [[str(table["regimen"].iloc[i]) for i in b] for b in beaten]
    # the front first, then the best chance of the benefit (or of the first outcome)
    key = benefit or outcomes[0]
    order = np.lexsort((-table[key].to_numpy(), table["dominated"].to_numpy()))
    table = table.iloc[order].reset_index(drop=True)
    first = [
        *(o for o in (benefit, harm) if o),
        *(o for o in outcomes if o not in (benefit, harm)),
    ]
    columns_ = ["regimen", "schedule"]
    for outcome in first:
        columns_ += [c for c in (outcome, f"{outcome}_low", f"{outcome}_high") if c in table]
    table = table[[*columns_, "dominated", "dominated_by", "warnings", "horizon_day"]]
    table.attrs["horizon_day"] = float(report.horizon_day)
    horizon = report.horizon
    if chosen:
        horizon = (
            f"day {_day_text(report.horizon_day)} after the first session (24 h after the "
            "last session of the longest schedule; give a horizon day to choose another)"
        )
    return RegimenComparison(
        table=table,
        horizon_day=float(report.horizon_day),
        horizon=horizon,
        benefit=benefit,
        harm=harm,
        missing=list(report.missing),
        provenance=dict(report.provenance),
    )


# Without intervals, a schedule is clearly better than another on an outcome only by at
# least this much (probability). ketapredict's convention, not a clinical threshold: four
# times the rounding of a whole percentage, so that differences of a few tenths of a point
# between point estimates never set a schedule aside.
MIN_DIFFERENCE = 0.02


def _dominance(table: pd.DataFrame, benefit: str | None, harm: str | None) -> list[list[int]]:
    """For each row, the rows that dominate it (see :meth:`RiskModel.compare_regimens`)."""
    n = len(table)
    no_worse = np.ones((n, n), bool)  # [i, j]: i is at least as good as j on every axis
    clearly = np.zeros((n, n), bool)  # [i, j]: i is clearly better than j on some axis
    for outcome, sign in ((benefit, 1.0), (harm, -1.0)):
        if outcome is None:
            continue
        # on the "higher is better" scale: a harm's risk with its sign flipped
        p = sign * table[outcome].to_numpy(float)
        no_worse &= p[:, None] >= p[None, :]
        if f"{outcome}_low" in table:
            ends = sign * table[[f"{outcome}_low", f"{outcome}_high"]].to_numpy(float)
            worst, best = ends.min(axis=1), ends.max(axis=1)
            clearly |= worst[:, None] > best[None, :]  # i's interval wholly above j's
        else:
            clearly |= p[:, None] - p[None, :] >= MIN_DIFFERENCE
    dominates = no_worse & clearly
    return [np.flatnonzero(dominates[:, j]).tolist() for j in range(n)]


# How a caller gives a record its schedule (the command line says it its own way).
NO_SCHEDULE_HINT = "pass regimen=Regimen(...) or give the regimen fields"

# Printed comparisons wrap their prose, and their table where it can, at this width.
_WIDTH = 100
# A comparison's columns of notes, printed only when some schedule has one.
_NOTES = ("dominated by", "warnings")


def _item(mark: str, text: str) -> str:
    """A list item wrapped under its own first character."""
    return paragraph(text, width=_WIDTH, first_indent=mark, indent=" " * len(mark))


def _letters(k: int) -> str:
    """Footnote marks: a, b, ..., z, aa, ab, ..."""
    text = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        text = chr(ord("a") + r) + text
    return text


# A number in a warning's text (a value, a range's end, a distance), with its sign and
# exponent; not digits joined to letters ("99.5th", "x2"). "17" in "HAMD-17" is a number,
# the same in every text of a label, so it never differs.
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])")


def _footnotes(texts: Sequence[str]) -> list[list[str]]:
    """The warnings of a comparison grouped into footnotes: texts that differ in one number
    only (the same field outside its training range at two doses) share one; any other
    difference keeps them apart."""
    groups: list[tuple[list[str], set[int], list[str]]] = []  # words, varying, texts
    for text in texts:
        words, numbers = _NUMBER.split(text), _NUMBER.findall(text)
        for same, varying, group in groups:
            if same != words:
                continue
            first = _NUMBER.findall(group[0])
            differ = varying | {
                k for k, (a, b) in enumerate(zip(numbers, first, strict=True)) if a != b
            }
            if len(differ) <= 1:
                varying |= differ
                group.append(text)
                break
        else:
            groups.append((words, set(), [text]))
    return [group for _, _, group in groups]


def _merged(texts: Sequence[str]) -> str:
    """One footnote for warnings that differ in one number only: that number lists each
    schedule's value, lowest first (a range could straddle the training range it is
    compared with).

    Examples
    --------
    >>> _merged(["weekly exposure = 3.12 is outside the training range 0 to 2.79",
    ...          "weekly exposure = 3 is outside the training range 0 to 2.79"])
    'weekly exposure = 3 or 3.12 is outside the training range 0 to 2.79'
    """
    words = _NUMBER.split(texts[0])
    numbers = [_NUMBER.findall(text) for text in texts]
    out = words[0]
    for k, after in enumerate(words[1:]):
        values = {float(n[k]): n[k] for n in reversed(numbers)}  # one spelling per value
        out += listed([values[v] for v in sorted(values)], "or") + after
    return out


@dataclass(frozen=True, eq=False, repr=False)
class RegimenComparison:
    """Dose schedules compared for one patient at one day: what
    :meth:`RiskModel.compare_regimens` returns.

    ``print(comparison)`` gives a table in rounded percentages with 90% intervals, the
    stated sort and dominance rule, and each warning once as a footnote; in a notebook the
    comparison shows as an HTML table; :meth:`plot` draws response against cognitive
    decline. ``comparison["response"]``, ``len(comparison)`` and iteration (column names)
    reach the table as they would a DataFrame.

    Attributes
    ----------
    table : DataFrame
        One row per schedule, in the stated order (the front first, then by the chance of
        response, highest first): ``regimen`` (its name, or the schedule in words),
        ``schedule`` (the schedule in words, beside a name of the caller's own); each
        outcome's probability (0 to 1), with ``_low`` and ``_high`` for its 90% interval
        when the model has one, response and cognitive decline first; ``dominated`` and
        ``dominated_by`` (the names of the schedules that dominate it); ``warnings`` (the
        text of the schedule's warnings, a list; an outcome's own are prefixed with it);
        and ``horizon_day``, the same for every row.
    horizon_day : float
        The day after the first session at which every schedule is judged.
    horizon : str
        The same in words, with where it came from.
    benefit, harm : str or None
        The two outcomes dominance is judged on: response (or remission) and cognitive
        decline (or dissociation); None when the model has neither.
    missing : list of str
        The patient's fields not recorded (integrated over, as in :class:`RiskReport`).
    provenance : dict
        The model's provenance, notes included.
    """

    table: pd.DataFrame
    horizon_day: float
    horizon: str = ""
    benefit: str | None = "response"
    harm: str | None = "cognitive_decline"
    missing: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    # -- as a table -------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The tidy table (a copy): one row per schedule, probabilities from 0 to 1."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-serialisable data, as :meth:`RiskReport.to_dict` is for one
        schedule: ``horizon_day``, ``horizon``, ``benefit``, ``harm``, ``missing``,
        ``provenance`` and ``regimens``, one record per row of :attr:`table` in its order
        (a probability from 0 to 1; an interval end the model does not give is None).

        Examples
        --------
        >>> import json
        >>> from ketapredict import load_model
        >>> patient = {"age": 46, "sex": "female", "diagnosis": "TRD",
        ...            "n_failed_treatments": 3, "madrs_baseline": 34}
        >>> data = load_model().compare_regimens(patient, horizon_day=28).to_dict()
        >>> data["horizon_day"], len(data["regimens"]), sorted(data["regimens"][0])[:3]
        (28.0, 21, ['cognitive_decline', 'cognitive_decline_high', 'cognitive_decline_low'])
        >>> _ = json.dumps(data, allow_nan=False)  # strict JSON
        """
        records = [
            {
                k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in row.items()
                if k != "horizon_day"
            }
            for row in json.loads(self.table.to_json(orient="records", double_precision=15))
        ]
        data = {
            "interval_level": INTERVAL_LEVEL,
            "notice": _notice(self.provenance),
            "horizon_day": float(self.horizon_day),
            "horizon": self.horizon,
            "benefit": self.benefit,
            "harm": self.harm,
            "missing": list(self.missing),
            "provenance": json.loads(json.dumps(self.provenance, default=str)),
            "regimens": records,
        }
        return data

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.table[key]
        except (KeyError, TypeError):  # pandas' own error, with the columns there are
            raise KeyError(
                f"the comparison has no column {short_repr(key)}; it has "
                f"{', '.join(map(str, self.table.columns))}"
            ) from None

    def __iter__(self):
        return iter(self.table)

    @property
    def front(self) -> list[str]:
        """The schedules no other dominates, in the table's order."""
        return self.table.loc[~self.table["dominated"], "regimen"].tolist()

    @property
    def outcomes(self) -> list[str]:
        """The outcomes compared, in the table's order."""
        fixed = ("regimen", "schedule", "dominated", "dominated_by", "warnings", "horizon_day")
        return [
            c for c in self.table.columns if c not in fixed and not c.endswith(("_low", "_high"))
        ]

    # -- in words ---------------------------------------------------------------------------
    def _name(self, outcome: str | None) -> str:
        return (outcome or "").replace("_", " ")

    def _sort_text(self) -> str:
        key = self.benefit or self.outcomes[0]
        return (
            "Sorted: the front first (the schedules no other dominates), then by "
            f"{self._name(key)}, highest first."
        )

    def _rule_text(self) -> str:
        axes = [o for o in (self.benefit, self.harm) if o]
        if not axes:
            return "Dominance is not judged: the model has no response or harm outcome."
        better = []
        for outcome in axes:
            higher = outcome == self.benefit
            side = "above" if higher else "below"
            if f"{outcome}_low" in self.table:
                better.append(f"its {self._name(outcome)} interval lies wholly {side} the other's")
            else:
                better.append(
                    f"its {self._name(outcome)} {'chance' if higher else 'risk'} is "
                    f"{'higher' if higher else 'lower'} by at least {MIN_DIFFERENCE:.0%} points "
                    "(the model has no intervals)"
                )
        both = " and ".join(
            f"{'at least' if o == self.benefit else 'at most'} the other's {self._name(o)}"
            for o in axes
        )
        return (
            f"A schedule dominates another when it has {both} (point estimates) and, on "
            f"{'one of them' if len(axes) > 1 else 'it'}, " + " or ".join(better) + " (90%). "
            '"Dominated by" gives the numbers of up to three schedules that dominate it '
            "(+n: n more)."
        )

    def _rows(self) -> tuple[list[dict[str, str]], list[str], dict[str, str]]:
        """Display rows, the warnings every schedule has, and the others' footnotes (mark
        -> text). Warnings that differ in one number only share one footnote
        (:func:`_footnotes`, :func:`_merged`)."""
        table = self.table
        every = [
            w
            for w in dict.fromkeys(w for ws in table["warnings"] for w in ws)
            if all(w in ws for ws in table["warnings"])
        ]
        kinds = _footnotes(
            [w for w in dict.fromkeys(w for ws in table["warnings"] for w in ws) if w not in every]
        )
        marks = {w: _letters(k) for k, kind in enumerate(kinds) for w in kind}
        notes = {_letters(k): _merged(kind) for k, kind in enumerate(kinds)}
        number = {}
        for i, name in enumerate(table["regimen"]):
            number.setdefault(name, i + 1)
        rows = []
        for i, row in table.iterrows():
            shown = {"#": str(i + 1), "schedule": _named(row)}
            for outcome in self.outcomes:
                text = _percent(row[outcome])
                if f"{outcome}_low" in table:
                    low, high = row[f"{outcome}_low"], row[f"{outcome}_high"]
                    text += f" [{_percent(low, '')}-{_percent(high, '')}]"
                shown[outcome] = text
            by = [str(k) for k in sorted({number[name] for name in row["dominated_by"]})]
            shown["dominated by"] = ", ".join(by[:3]) + (f" +{len(by) - 3}" if len(by) > 3 else "")
            shown["warnings"] = ", ".join(
                sorted(
                    {marks[w] for w in row["warnings"] if w in marks}, key=lambda m: (len(m), m)
                )
            )
            rows.append(shown)
        return rows, every, notes

    def _header(self) -> list[str]:
        lines = [
            f"{len(self)} dose schedule{'s' * (len(self) != 1)} for one patient, all judged at "
            f"{self.horizon}.",
        ]
        if _notice(self.provenance):
            lines.append(f"NOTE: {_notice(self.provenance)}")
        lines += [
            "Percentages with 90% intervals [low-high]. " + self._sort_text(),
            self._rule_text(),
            outcomes_legend(self.outcomes),
        ]
        return lines

    def __str__(self) -> str:
        rows, every, notes = self._rows()
        lines = [paragraph(text, width=_WIDTH, indent="  ") for text in self._header()]
        # "dominated by" and "warnings" only when some schedule has one
        keys = [k for k in rows[0] if k not in _NOTES or any(row[k] for row in rows)]
        table = self._table_lines(rows, keys)
        if max(map(len, table)) > _WIDTH and len(self.outcomes) > 2:
            # too wide for a terminal: the outcomes dominance is judged on (or the first
            # two) with the verdicts, then the others for the same schedules
            judged = [o for o in (self.benefit, self.harm) if o] or self.outcomes[:2]
            others = [o for o in self.outcomes if o not in judged]
            table = self._table_lines(rows, [k for k in keys if k not in others])
            table += ["", "The other outcomes of the same schedules:", ""]
            table += self._table_lines(rows, ["#", "schedule", *others])
        lines += ["", *table]
        if every:
            lines.append("\nWarnings for every schedule:")
            lines += [_item("  - ", w) for w in every]
        if notes:
            lines.append("\nWarnings (marked in the table):")
            lines += [_item(f"  {mark}. ", text) for mark, text in notes.items()]
        if self.missing:
            lines.append("")
            lines.append(
                paragraph(
                    "Not recorded (integrated over their plausible values given the rest of "
                    "the record): " + ", ".join(self.missing),
                    width=_WIDTH,
                )
            )
        lines += ["", paragraph(_model_line(self.provenance), width=_WIDTH)]
        return "\n".join(lines)

    def _table_lines(self, rows: list[dict[str, str]], keys: list[str]) -> list[str]:
        """The printed table of the columns ``keys``, within :data:`_WIDTH` columns where
        it can be: a title wraps over its column's values, the schedule wraps within its
        cell (drug, dose and route above the sessions; down to 28 characters), then the
        warnings' marks (down to 12), so that a row may take more than one line.
        Probabilities never wrap. The front and the dominated schedules are headed apart."""
        left = ("schedule", *_NOTES)
        titles = {k: OUTCOME_LABELS.get(k, k).split(" (")[0] for k in keys}
        natural = {
            k: max(*(len(r[k]) for r in rows), *(len(word) for word in titles[k].split()))
            for k in keys
        }
        widths = dict(natural)
        cells = [{k: [row[k]] for k in keys} for row in rows]

        def wrap(key: str, least: int) -> None:
            """Wrap one column's cells in the room the others leave (at least ``least``)."""
            room = _WIDTH - sum(w for k, w in widths.items() if k != key) - 2 * (len(keys) - 1)
            width = min(natural[key], max(least, len(titles[key]), room))
            for row, shown in zip(rows, cells, strict=True):
                shown[key] = cell(row[key], width, head_apart=key == "schedule")
            widths[key] = max(len(titles[key]), *(len(line) for c in cells for line in c[key]))

        # the schedule first, the warnings in the room it leaves: marks read as well on two lines
        if "warnings" in keys:
            widths["warnings"] = min(natural["warnings"], max(12, len(titles["warnings"])))
        wrap("schedule", 28)
        if "warnings" in keys:
            wrap("warnings", 12)

        def block(lines: Mapping[str, list[str]], top: bool) -> list[str]:
            height = max(len(c) for c in lines.values())
            padded = {
                k: (c + [""] * (height - len(c))) if top else [""] * (height - len(c)) + c
                for k, c in lines.items()
            }
            return [
                "  ".join(
                    padded[k][i].ljust(widths[k]) if k in left else padded[k][i].rjust(widths[k])
                    for k in keys
                ).rstrip()
                for i in range(height)
            ]

        lines = block({k: textwrap.wrap(titles[k], widths[k]) or [""] for k in keys}, top=False)
        dominated = [bool(row["dominated by"]) for row in rows]  # kept or not, rows have it
        under = " " * (widths["#"] + 2)  # group headings start where the schedules do
        for k, shown in enumerate(cells):
            if any(dominated) and not all(dominated) and k in (0, dominated.index(True)):
                lines.append(under + ("The front:" if k == 0 else "Dominated:"))
            lines += block(shown, top=True)
        return lines

    def __repr__(self) -> str:
        return str(self)

    def to_html(self) -> str:
        """The HTML a notebook shows, as a whole page to save or send (UTF-8, titled).

        Examples
        --------
        >>> from ketapredict import load_model
        >>> patient = {"age": 40, "sex": "male", "diagnosis": "MDD", "madrs_baseline": 30}
        >>> page = load_model().compare_regimens(patient, horizon_day=28).to_html()
        >>> page.startswith("<!DOCTYPE html>"), '<meta charset="utf-8">' in page
        (True, True)
        """
        return _html_page(self._repr_html_(), "ketapredict: dose schedules compared")

    def _repr_html_(self) -> str:
        e = html.escape
        rows, every, notes = self._rows()
        keys = list(rows[0])

        def title(key: str) -> str:
            name, _, definition = OUTCOME_LABELS.get(key, key).partition(" (")
            small = f'<br><span style="font-weight:400;font-size:.8em">({e(definition)}</span>'
            return e(name) + (small if definition else "")

        head = "".join(
            f'<th style="{_HEAD};vertical-align:bottom'
            f'{";text-align:right" if k in self.outcomes or k == "#" else ""}">{title(k)}</th>'
            for k in keys
        )
        body = []
        for shown, dominated in zip(rows, self.table["dominated"], strict=True):
            style = "opacity:.6" if dominated else "font-weight:600"
            cells = "".join(
                f'<td style="{_NUM if k in self.outcomes or k == "#" else _CELL + _NOWRAP}">'
                f"{e(shown[k]).replace('-', chr(0x2013)) if k in self.outcomes else e(shown[k])}"
                "</td>"
                for k in keys
            )
            body.append(f'<tr style="{style}">{cells}</tr>')
        header = self._header()
        parts = [
            f'<div class="ketapredict-comparison" style="{_FONT}">',
            f'<div style="font-size:1.15em;font-weight:600">{e(header[0])}</div>',
        ]
        if _notice(self.provenance):
            parts.append(_notice_html(_notice(self.provenance)))
        parts.append(
            f"<div>{e(header[-2])}</div><div>{e(header[-1])} Schedules on the front are in "
            "bold; dominated ones are greyed.</div>"
        )
        if every:
            parts.append(_warnings_html("all", "Warnings for every schedule", every))
        parts.append(
            f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )
        if notes:
            items = "".join(f"<li><b>{mark}.</b> {e(text)}</li>" for mark, text in notes.items())
            parts.append(
                '<section class="kp-footnotes"><div style="font-weight:600">Warnings (marked '
                f'in the table)</div><ul style="list-style:none;padding-left:.5em;margin:.2em 0">'
                f"{items}</ul></section>"
            )
        if self.missing:
            parts.append(
                '<p style="margin:.6em 0">Not recorded (integrated over their plausible '
                f"values given the rest of the record): {e(', '.join(self.missing))}</p>"
            )
        parts.append(
            f'<div style="font-size:.8em;opacity:.8">{e(_model_line(self.provenance))}</div></div>'
        )
        return "".join(parts)

    # -- as a figure ------------------------------------------------------------------------
    def plot(self, ax: Any = None, *, xscale: str = "log"):
        """Response (y) against the risk of cognitive decline (x), with 90% intervals.

        Each schedule is a point with its 90% intervals as error bars in both directions,
        numbered as in the printed table; the front (schedules no other dominates) is
        coloured and named at the right, the dominated ones are grey.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; by default a new figure.
        xscale : {"log", "linear"}, default="log"
            Risks of harm span orders of magnitude (0.1% to 50%), so a log axis keeps the
            small ones apart.

        Returns
        -------
        matplotlib.figure.Figure
            Not left open in pyplot: a notebook shows it once; save it with
            ``fig.savefig(path)``.

        Raises
        ------
        ValueError
            If the model has no benefit or no harm outcome to plot.
        """
        import matplotlib.pyplot as plt
        from matplotlib import patheffects
        from matplotlib.colors import to_rgba
        from matplotlib.ticker import FuncFormatter, NullFormatter

        if self.benefit is None or self.harm is None:
            raise ValueError(
                "plot() needs a benefit (response or remission) and a harm (cognitive decline "
                f"or dissociation); the comparison has {', '.join(self.outcomes)}"
            )
        if xscale not in ("log", "linear"):
            raise ValueError(f"xscale must be 'log' or 'linear'; got {xscale!r}")
        table = self.table
        # a long name goes on over lines of its own, so that the list never squeezes the
        # axes nor loses what tells two schedules apart (its end)
        listed = [
            textwrap.fill(
                _named(row),
                _NAME_CHARS + 4,  # and the number before it
                initial_indent=f"{i + 1:>2}  ",
                subsequent_indent="    ",
            )
            for i, (_, row) in enumerate(table.iterrows())
        ]
        # at most _LISTED_LINES lines of names: a list of hundreds would make a figure
        # yards tall (the table has them all)
        used = np.cumsum([name.count("\n") + 1 for name in listed])
        listed = [name if used[i] <= _LISTED_LINES else None for i, name in enumerate(listed)]
        if ax is None:
            # tall enough for the lists of names (8-point lines, about 0.155 inch each)
            lines = min(int(used[-1]), _LISTED_LINES + 2) + 3 if len(used) else 3
            fig, ax = plt.subplots(
                figsize=(10, max(5.6, 1.2 + 0.155 * lines)), layout="constrained"
            )
            plt.close(fig)  # returned, not shown twice by a notebook's pyplot
        fig = ax.figure
        x, y = 100 * table[self.harm].to_numpy(float), 100 * table[self.benefit].to_numpy(float)

        def bars(outcome: str, centre: np.ndarray) -> np.ndarray | None:
            if f"{outcome}_low" not in table:
                return None
            low = 100 * table[f"{outcome}_low"].to_numpy(float)
            high = 100 * table[f"{outcome}_high"].to_numpy(float)
            return np.vstack([centre - low, high - centre]).clip(0)

        xerr, yerr = bars(self.harm, x), bars(self.benefit, y)
        front = ~table["dominated"].to_numpy(bool)
        styles = {
            "dominated": ("#9a9a9a", "white", "dominated by another schedule"),
            "front": ("#0072b2", "#0072b2", "front: no other schedule dominates it"),
        }
        for gid, mask in (("dominated", ~front), ("front", front)):
            if not mask.any():
                continue
            colour, face, label = styles[gid]
            drawn = ax.errorbar(
                x[mask], y[mask],
                xerr=None if xerr is None else xerr[:, mask],
                yerr=None if yerr is None else yerr[:, mask],
                fmt="o", ms=7, color=colour, mfc=face, ecolor=to_rgba(colour, 0.35),
                elinewidth=1, capsize=2, zorder=3 if gid == "front" else 2, label=label,
            )  # fmt: skip
            drawn.lines[0].set_gid(gid)  # the points, not their error bars' caps
        for i in range(len(table)):
            ax.annotate(
                str(i + 1), (x[i], y[i]), xytext=(5, 4), textcoords="offset points",
                fontsize=8, fontweight="bold" if front[i] else "normal",
                color="#0072b2" if front[i] else "#6f6f6f", gid="number", zorder=4,
                # a white halo keeps the number legible where error bars cross it
                path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")],
            )  # fmt: skip
        if xscale == "log":
            ax.set_xscale("log")
        percent = FuncFormatter(lambda v, _: f"{v:g}%")
        ax.xaxis.set_major_formatter(percent)
        ax.yaxis.set_major_formatter(percent)
        if xscale == "log":
            # within one decade the minor ticks carry the only labels: as percentages too
            # (matplotlib's own read "2x10^0"); across decades they stay unlabelled
            low, high = ax.get_xlim()
            within = np.floor(np.log10(low)) == np.floor(np.log10(high))
            ax.xaxis.set_minor_formatter(percent if within else NullFormatter())
        ax.set_xlabel(f"risk of {OUTCOME_LABELS.get(self.harm, self._name(self.harm))}")
        ax.set_ylabel(f"chance of {OUTCOME_LABELS.get(self.benefit, self._name(self.benefit))}")
        count = f"{len(table)} schedule{'s' * (len(table) != 1)}"
        ax.set_title(
            f"{count} at day {self.horizon_day:g}, with 90% intervals "
            "(better: up and to the left)",
            fontsize=10,
        )
        ax.grid(True, alpha=0.3, which="major")
        ax.legend(loc="lower right", fontsize=8)
        top = 1.0
        for gid, mask, colour, title in (
            ("front names", front, "#0072b2", "The front:"),
            ("dominated names", ~front, "#6f6f6f", "Dominated:"),
        ):
            if mask.any():
                names = [name for i, name in enumerate(listed) if mask[i] and name]
                left = sum(1 for i, name in enumerate(listed) if mask[i] and name is None)
                if left:
                    names.append(f"    ... and {left} more (comparison.table)")
                shown = ax.text(
                    1.02, top, "\n".join([title, *names]), transform=ax.transAxes,
                    va="top", ha="left", fontsize=8, family="monospace", color=colour, gid=gid,
                    parse_math=False,  # a name's "$5 plan" is text, not mathematics
                )  # fmt: skip
                # the next list starts a line below this one, as measured when drawn
                box = shown.get_window_extent()
                top = ax.transAxes.inverted().transform((0, box.y0))[1] - 0.03
        if _notice(self.provenance):
            fig.supxlabel(_notice(self.provenance), fontsize=8, color="#8a2d00")
        return fig

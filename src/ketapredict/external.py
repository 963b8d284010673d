"""External validation: how a saved model does on a study it never saw.

:func:`evaluate_model` scores a real (or virtual) patient-course table with a
:class:`~ketapredict.RiskModel` and reports, per outcome and per arm, what a reader of an
external validation study needs (TRIPOD+AI): observed against mean predicted risk
(calibration in the large), the calibration intercept and slope, the AUC, the Brier score,
and whether patients lay outside the training distribution, with intervals suited to small
samples and warnings where the sample is too small to say much. A study of 25 patients is
normal in this field, so every figure comes with its uncertainty.

It reads only what a RiskModel exposes (no scikit-learn, no XGBoost), so it is as fast as
scoring: a 25-patient study is reported in well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._text import paragraph
from .card import VIRTUAL_COHORT_NOTICE
from .exceptions import Problem, ValidationError, one_line
from .regimen import schedules_in_words
from .schema import (
    KETAMINES,
    MIN_CELL,
    MIN_EVENTS,
    courses_per_patient,
    empty_outcomes,
    table_digest,
    withheld_groups,
)
from .updating import fit_intercept, fit_line

__all__ = ["ExternalValidation", "evaluate_model"]

_Z95 = 1.959963984540054  # the normal 97.5th percentile
# A group's slope and AUC are shown only with at least this many events and non-events: with
# fewer, one patient moves the AUC by a tenth or more (as evaluate.MIN_CLASS_PER_ARM).
MIN_CLASS = 5
# The rows that pool arms: every active-drug arm, and every course. An arm of either name
# is reported as "arm all".
_POOLED = ("active drug", "all")
# A group's part of an MLflow metric key, at most (MLflow's keys hold 250 characters).
_KEY_CHARS = 100


def auc_interval(auc: float, events: int, non_events: int) -> tuple[float, float]:
    """95% interval of an AUC for small samples (score-type, never outside [0, 1]).

    The AUC's variance is Hanley and McNeil's (1982) with both group sizes set to their
    mean, and the interval is every value ``t`` whose distance to the estimate is within
    1.96 of its own standard error at ``t`` (Newcombe 2006, Statistics in Medicine
    25:559-573, method 5). Unlike a Wald interval it stays inside [0, 1] and is not empty at
    an AUC of 1, which 25 patients easily give.

    Examples
    --------
    >>> from ketapredict.external import auc_interval
    >>> low, high = auc_interval(0.75, 10, 15)
    >>> round(low, 2), round(high, 2)
    (0.51, 0.89)
    >>> auc_interval(1.0, 5, 5)[1]
    1.0
    """
    m, n = events, non_events
    half_n = (m + n) / 2

    def excess(t: float) -> float:
        variance = (
            t
            * (1 - t)
            / (m * n)
            * (1 + (half_n - 1) * (1 - t) / (2 - t) + (half_n - 1) * t / (1 + t))
        )
        return (auc - t) ** 2 - _Z95**2 * variance

    def solve(a: float, b: float) -> float:
        # excess is <= 0 at the estimate and >= 0 at the far end: bisect between them
        for _ in range(60):
            middle = (a + b) / 2
            if (excess(middle) > 0) == (excess(a) > 0):
                a = middle
            else:
                b = middle
        return (a + b) / 2

    low = 0.0 if excess(0.0) <= 0 else solve(0.0, auc)
    high = 1.0 if excess(1.0) <= 0 else solve(auc, 1.0)
    return low, high


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """The Mann-Whitney AUC, ties counted half."""
    ranks = pd.Series(p).rank(method="average").to_numpy()
    events = int(y.sum())
    non_events = len(y) - events
    return float((ranks[y == 1].sum() - events * (events + 1) / 2) / (events * non_events))


def _share_text(k: int, n: int, least: int = MIN_CELL) -> str:
    """ "k of n", where neither k nor n - k is under ``least`` (``MIN_CELL`` courses, times
    the most one patient gives); otherwise a range, not the count. No row says how many of
    its courses lie outside the training data: with the rows' sizes (and across outcomes)
    such counts could give a few courses away."""
    if 0 < k < least:
        return f"fewer than {least} of {n:,}"
    if 0 < n - k < least:
        return f"all but fewer than {least} of {n:,}"
    return f"{k:,} of {n:,}"


def _group_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    n, events = len(y), int(y.sum())
    row: dict[str, Any] = {
        "n": n,
        "events": events,
        "observed": events / n,
        "predicted": float(p.mean()),
        "brier": float(np.mean((p - y) ** 2)),
    }
    log_odds = np.log(p) - np.log1p(-p)
    estimable = min(events, n - events) >= 1
    intercept = fit_intercept(y, log_odds) if estimable else None
    if intercept is not None and intercept.converged:
        se = math.sqrt(intercept.covariance[0][0])
        row |= {
            "intercept": intercept.intercept,
            "intercept_low": intercept.intercept - _Z95 * se,
            "intercept_high": intercept.intercept + _Z95 * se,
        }
    if min(events, n - events) >= MIN_CLASS:
        line = fit_line(y, log_odds)
        if line.converged:
            se = math.sqrt(line.covariance[1][1])
            row |= {
                "slope": line.slope,
                "slope_low": line.slope - _Z95 * se,
                "slope_high": line.slope + _Z95 * se,
            }
        auc = _auc(y, p)
        low, high = auc_interval(auc, events, n - events)
        row |= {"auc": auc, "auc_low": low, "auc_high": high}
    return row


_COLUMNS = (
    "outcome", "group", "horizon", "n", "events", "observed", "predicted", "intercept",
    "intercept_low", "intercept_high", "slope", "slope_low", "slope_high", "auc", "auc_low",
    "auc_high", "brier",
)  # fmt: skip


@dataclass
class ExternalValidation:
    """The result of :func:`evaluate_model`; ``str()`` gives the printed report.

    Attributes
    ----------
    table : DataFrame
        One row per outcome and group (each arm, then all active-drug courses, then all
        courses): ``n``, ``events``, ``observed`` rate, mean ``predicted`` risk, calibration
        ``intercept`` and ``slope`` with 95% intervals (``_low``, ``_high``), ``auc`` with its
        small-sample interval, ``brier``, and ``horizon`` (when the group was assessed, e.g. "day 7
        in ketamine"). A figure a group is too small for is missing (NaN), and the warnings
        say why.
    warnings : list of str
        What to read the table with: groups withheld and why, too few events, courses left
        out, repeated patients, extrapolation, a model of simulated data.
    model : str
        The model's name and what it was trained on.
    data_digest : str
        The table's digest (no rows are kept).
    n_courses : int
        Courses in the study (with or without each outcome).
    source : str
        What the study is called in the report (``evaluate_model(source=...)``).
    metrics : dict of str to float
        The table's figures under MLflow keys (``response/all/auc``), as
        ``ketapredict evaluate`` logs them; a figure that does not exist is left out.

    Examples
    --------
    >>> from ketapredict import evaluate_model, load_model, read_study
    >>> from ketapredict.io import example_study
    >>> study = read_study(example_study("bids") / "mapping.toml")
    >>> result = evaluate_model(load_model(), study, source="example")
    >>> result.n_courses, len(result.data_digest)
    (50, 16)
    >>> row = result.table.query("outcome == 'response' and group == 'all'").iloc[0]
    >>> int(row["n"]), int(row["events"])
    (50, 15)
    >>> bool(0 < row["auc_low"] < row["auc"] < row["auc_high"] < 1)
    True
    >>> any("Collins 2016" in warning for warning in result.warnings)  # 15 events are few
    True
    """

    table: pd.DataFrame
    warnings: list[str]
    model: str
    data_digest: str
    n_courses: int
    source: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"External validation of {self.model}",
            paragraph(
                f"on {self.n_courses:,} courses{f' ({self.source})' if self.source else ''}; "
                f"data digest {self.data_digest}. Each course is predicted at its own "
                "assessment day (endpoint_day); dissociation at the first session."
            ),
        ]
        for outcome, rows in self.table.groupby("outcome", sort=False):
            horizons = sorted(set(rows["horizon"]) - {""})
            # every row withheld (too few courses) leaves no horizon to say
            at = f"  (assessed at {'; '.join(horizons)})" if horizons else ""
            lines += ["", f"{outcome}{at}"]
            lines += _columns(
                {
                    # a group name (trial / arm) shown up to 60 characters
                    "group": [group[:60] for group in rows["group"]],
                    "n": [f"{n}" for n in rows["n"]],
                    "events": [f"{e}" for e in rows["events"]],
                    "observed": [f"{v:.1%}" for v in rows["observed"]],
                    "predicted": [f"{v:.1%}" for v in rows["predicted"]],
                    "intercept [95% CI]": [
                        _ci(r.intercept, r.intercept_low, r.intercept_high, 2, sign=True)
                        for r in rows.itertuples()
                    ],
                    "slope [95% CI]": [
                        _ci(r.slope, r.slope_low, r.slope_high, 2) for r in rows.itertuples()
                    ],
                    "AUC [95% CI]": [
                        _ci(r.auc, r.auc_low, r.auc_high, 2) for r in rows.itertuples()
                    ],
                    "Brier": [f"{v:.3f}" for v in rows["brier"]],
                },
                left=("group", "intercept [95% CI]", "slope [95% CI]", "AUC [95% CI]"),
            )
        lines += [
            "",
            paragraph(
                "intercept: calibration in the large (log-odds; 0 is ideal, above 0 the model "
                "under-predicts); slope: 1 is ideal, below 1 the predictions are too extreme; "
                "AUC: ranking of patients within the group (0.5 is chance)."
            ),
        ]
        if self.warnings:
            lines += ["", "Warnings:"] + [
                paragraph(w, first_indent="  - ", indent="    ") for w in self.warnings
            ]
        return "\n".join(lines)


def _columns(cells: dict[str, list[str]], left: tuple[str, ...]) -> list[str]:
    """A text table, indented two spaces: each column as wide as its widest cell or header,
    two spaces apart (fixed widths ran a slope of -14.13 (-36.69 to 8.43) into the next
    column); the columns in ``left`` aligned left, numbers right."""
    widths = {name: max(len(name), *map(len, column)) for name, column in cells.items()}

    def line(values: dict[str, str]) -> str:
        return (
            "  "
            + "  ".join(
                value.ljust(widths[name]) if name in left else value.rjust(widths[name])
                for name, value in values.items()
            ).rstrip()
        )

    rows = zip(*cells.values(), strict=True)
    return [line({name: name for name in cells})] + [
        line(dict(zip(cells, row, strict=True))) for row in rows
    ]


def _ci(value: float, low: float, high: float, digits: int, sign: bool = False) -> str:
    """ "+0.25 [-0.74, 1.24]", as ``ketapredict train`` writes an estimate and its interval
    (signed: an intercept); "n/a" when there is none, as ``train`` writes it."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:{'+' if sign else ''}.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def evaluate_model(
    model, data: pd.DataFrame, *, outcomes: list[str] | None = None, source: str = ""
) -> ExternalValidation:
    """Validate a RiskModel on a study it was not trained on.

    Each course is predicted at its own ``endpoint_day`` (the day its response was
    assessed), with missing optional fields integrated out as in every prediction.

    Parameters
    ----------
    model : RiskModel
        E.g. from :func:`ketapredict.load_model`.
    data : DataFrame
        Patient courses with observed outcomes, e.g. from :func:`ketapredict.read_bids`.
        Courses without an outcome are left out of that outcome (and counted).
    outcomes : list of str, optional
        By default every outcome of the model that the data record.
    source : str, optional
        How to name the data in the report.

    Returns
    -------
    ExternalValidation

    Raises
    ------
    ValidationError
        If the table breaks the data contract, records none of the model's outcomes, or
        lacks the assessment day (``endpoint_day``) of a course with an outcome assessed at
        one (not dissociation, rated in the first session).

    Examples
    --------
    >>> import ketapredict
    >>> from ketapredict.external import evaluate_model
    >>> from ketapredict.io import example_study
    >>> study = ketapredict.read_study(example_study("bids") / "mapping.toml")
    >>> result = evaluate_model(ketapredict.load_model(), study)
    >>> result.table.query("outcome == 'response'")["group"].tolist()
    ['ketamine', 'saline', 'all']
    >>> print(result)  # doctest: +ELLIPSIS
    External validation of ...
    response  (assessed at day 7 in ketamine, saline)
    ...
    """
    from .risk import RiskModel

    if not isinstance(model, RiskModel):
        raise ValidationError(
            [
                Problem(
                    "model",
                    None,
                    "model must be a RiskModel (ketapredict.load_model(...)); got "
                    f"{type(model).__name__}",
                )
            ],
            "arguments",
        )
    table, wanted = model._observed(data, outcomes, "validation data")
    probabilities = model.predict_proba(table, validated=True)
    reasons = model._outside_reasons(table)
    outside = np.logical_or.reduce([np.zeros(len(table), dtype=bool), *reasons.values()])
    # a course without an arm is grouped by its dose schedule, as evaluate.arm_labels does:
    # never pooled with other schedules' courses
    schedule = schedules_in_words(table)
    arm = (
        table["arm"].astype(object).astype(str).where(table["arm"].notna(), "(no arm) " + schedule)
        if "arm" in table.columns
        else schedule
    )
    if "trial_id" in table.columns and len(pd.unique(table["trial_id"].dropna())) > 1:
        # an arm is a trial's: arms of one name in several trials differ in schedule,
        # population and assessment day
        arm = table["trial_id"].astype(object).fillna("(no trial)").astype(str) + " / " + arm
    arm = arm.where(~arm.isin(_POOLED), "arm " + arm)  # the pooled rows' names are theirs
    active = table["drug"].astype(object).isin(KETAMINES).to_numpy()
    rows, warnings = [], []
    if outcomes is None:
        warnings += [
            f"{outcome}: its column holds no value, so it is not evaluated"
            for outcome in empty_outcomes(table, model.outcomes)
        ]
    for outcome in wanted:
        has = table[outcome].notna().to_numpy()
        y = table.loc[has, outcome].astype(float).to_numpy()  # validated: booleans
        p = probabilities.loc[has, outcome].to_numpy(dtype=float)
        names = sorted(pd.unique(arm[has]))
        groups = [(name, (arm[has] == name).to_numpy()) for name in names]
        if len({n for n, inside in groups if active[has][inside].all()}) > 1:
            groups.append((_POOLED[0], active[has]))  # only when it pools arms
        groups.append((_POOLED[1], np.ones(has.sum(), bool)))
        own_time = model._assessed_day(outcome) is not None  # dissociation: first session
        # a row too small, or one that with the others shown would give a small group away
        # ("all" less "active drug": the comparator courses), is withheld
        # a group must hold MIN_CELL patients: in courses, times a patient's most (a
        # crossover's 12 courses may be 6 patients)
        per_patient = courses_per_patient(table.loc[has])
        withheld = {
            name
            for _, name in withheld_groups(
                {
                    ("arm" if name not in _POOLED else name, name): inside
                    for name, inside in groups
                },
                courses_per_patient=per_patient,
            )
        }
        fewer = (
            f"fewer than {MIN_CELL} courses"
            if per_patient == 1
            else f"fewer than {MIN_CELL} patients ({MIN_CELL * per_patient} courses, as a "
            f"patient gives up to {per_patient})"
        )
        small = [name for name, inside in groups if 0 < inside.sum() < MIN_CELL * per_patient]
        if small:
            warnings.append(
                f"{outcome}: {', '.join(small)} not shown ({fewer}: such a row could tell a "
                "patient's outcome)"
            )
        telling = [name for name, inside in groups if name in withheld and name not in small]
        if telling:
            warnings.append(
                f"{outcome}: {', '.join(telling)} not shown either (with the rows shown, "
                f"{'it' if len(telling) == 1 else 'they'} would give away a group of {fewer})"
            )
        for name, inside in groups:
            if name in withheld:
                continue
            metrics = _group_metrics(y[inside], p[inside])
            rows.append({"outcome": outcome, "group": name, "horizon": "", **metrics})
            if name not in _POOLED:  # an outcome with a time of its own is assessed then
                when = (
                    "the first session"
                    if own_time
                    else _days(table.loc[has, "endpoint_day"].to_numpy()[inside])
                )
                rows[-1]["horizon"] = f"{when} in {name}"
        if (~has).sum():
            warnings.append(
                f"{outcome}: {int((~has).sum()):,} courses without an observed value left out"
            )
        events = int(y.sum())
        if len(y) >= MIN_CELL and min(events, len(y) - events) < MIN_EVENTS:
            warnings.append(
                f"{outcome}: {events:,} events and {len(y) - events:,} non-events; precise "
                f"external validation needs at least {MIN_EVENTS} of each (Collins 2016): read "
                "the intervals, not the point estimates"
            )
        small = [
            r["group"]
            for r in rows
            if r["outcome"] == outcome and min(r["events"], r["n"] - r["events"]) < MIN_CLASS
        ]
        if small:
            warnings.append(
                f"{outcome}: slope and AUC not shown for {', '.join(small)} (fewer than "
                f"{MIN_CLASS} events or non-events)"
            )
    if not rows:
        observed = max((int(table[o].notna().sum()) for o in wanted), default=0)
        raise ValidationError(
            [
                Problem(
                    None,
                    observed,
                    f"external validation needs at least {MIN_CELL} courses with an observed "
                    f"outcome; the table has {observed:,} (fewer could tell a patient's "
                    "outcome, and say nothing of the model)",
                )
            ],
            "external validation",
        )
    frame = pd.DataFrame(rows).reindex(columns=list(_COLUMNS))
    frame = _merge_horizons(frame)
    if outside.any():
        # the reasons that hold for at least MIN_CELL courses, most common first, without
        # their counts (a reason of a few courses is not named: it would point at them)
        least = MIN_CELL * courses_per_patient(table)  # patients, counted in courses
        common = sorted(
            (reason for reason, held in reasons.items() if held.sum() >= least),
            key=lambda reason: -int(reasons[reason].sum()),
        )
        share = _share_text(int(outside.sum()), len(table), least)
        warnings.append(
            f"{share} courses lie outside the training "
            "distribution (a value beyond its 0.5-99.5% range, a category never seen, or an "
            "unusual combination): their predictions are extrapolations"
            + (
                f"; chiefly {'; '.join(common[:3])}"
                + (" (and other reasons)" if len(common) > 3 else "")
                if common
                else ""
            )
        )
    if "patient_id" in table.columns and table["patient_id"].notna().any():
        # a patient is a trial's (the same identifier in two trials is two people)
        keys = table[[c for c in ("trial_id", "patient_id") if c in table.columns]]
        keys = keys[keys["patient_id"].notna()].astype(object).fillna("(no trial)")
        repeated = int((keys.value_counts() > 1).sum())
        if repeated:
            warnings.append(
                f"{repeated:,} patients give more than one course (crossover periods): rows "
                "pooling arms count them as independent, so their intervals are too narrow"
            )
    provenance = getattr(model, "provenance", {})
    if provenance.get("data_kind") == "simulated":
        warnings.append(VIRTUAL_COHORT_NOTICE)
    name = one_line(provenance.get("name", "the model"))  # a model file's text: one line
    keys = _keys(frame["group"])
    # named as training's metrics are (ketapredict.tracking.METRIC_KEYS), so that the MLflow
    # UI sets an external validation's calibration beside the cross-validated one
    named = {"intercept": "calibration_intercept", "slope": "calibration_slope"}
    metrics = {
        f"{r.outcome}/{keys[r.group]}/{named.get(m, m)}": float(getattr(r, m))
        for r in frame.itertuples(index=False)
        for m in ("observed", "predicted", "intercept", "slope", "auc", "brier")
        if getattr(r, m) is not None and np.isfinite(getattr(r, m))
    }
    return ExternalValidation(
        table=frame,
        warnings=warnings,
        model=f"{name} ({one_line(provenance.get('data_kind', 'unknown'))} training data"
        + _recalibrated(provenance.get("recalibration"))
        + ")",
        data_digest=table_digest(table),
        n_courses=len(table),
        source=source,
        metrics=metrics,
    )


def _days(days: np.ndarray) -> str:
    unique = sorted(set(np.round(days.astype(float), 3)))
    return "day " + ", ".join(f"{d:g}" for d in unique)


def _merge_horizons(frame: pd.DataFrame) -> pd.DataFrame:
    """One horizon text per outcome: 'day 10 in ketamine, saline' when the arms share it."""
    out = frame.copy()
    for outcome, rows in frame.groupby("outcome", sort=False):
        texts = [t for t in rows["horizon"] if t]
        by_day: dict[str, list[str]] = {}
        for text in texts:
            day, arm = text.split(" in ", 1)
            by_day.setdefault(day, []).append(arm)
        merged = "; ".join(f"{day} in {', '.join(arms)}" for day, arms in by_day.items())
        out.loc[out["outcome"] == outcome, "horizon"] = merged
    return out


def _keys(groups: pd.Series) -> dict[str, str]:
    """Each group's name as an MLflow metric key part: letters, digits and ``_ - .`` only,
    at most 100 characters (MLflow's keys hold 250), and one key per group (``ket/iv`` and
    ``ket_iv`` would both be ``ket_iv``: the second is ``ket_iv_2``)."""
    keys: dict[str, str] = {}
    # the pooled rows first: their keys are the ones readers look for
    for group in sorted(dict.fromkeys(groups), key=lambda g: g not in _POOLED):
        key = "".join(c if c.isalnum() or c in "_-." else "_" for c in group)[:_KEY_CHARS]
        stem, n = key, 1
        while key in keys.values():
            n += 1
            key = f"{stem[: _KEY_CHARS - len(str(n)) - 1]}_{n}"
        keys[group] = key
    return keys


def _recalibrated(record: Any) -> str:
    """ ", recalibrated <date>" for a model some outcome of which a recalibration changed
    (not one kept as it was); "" otherwise."""
    if not isinstance(record, dict) or not isinstance(record.get("outcomes"), dict):
        return ""
    changed = any(
        isinstance(o, dict) and o.get("method") not in (None, "none")
        for o in record["outcomes"].values()
    )
    return f", recalibrated {str(record.get('date', ''))[:10]}" if changed else ""

"""The model card: what a model is for, what it learned from and how well it did.

A Markdown page laid out after the TRIPOD+AI statement (Collins 2024, BMJ 385:e078378):
intended use and users, data source, outcomes and horizon, predictors, missing data,
sample size and events, validation, discrimination and calibration with their intervals,
subgroups and limitations. :meth:`ketapredict.ExperimentResult.model_card` fills it from an
experiment; :meth:`ketapredict.RiskModel.save` writes it beside the model (``model_card.md``,
checksummed with the other files) and ``ketapredict train`` logs it with the run.

This module is plain Python: the clinician path (``risk``) writes cards without importing
scikit-learn, XGBoost or MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .exceptions import one_line
from .schema import MIN_CELL, assessment_day, column

__all__ = ["VIRTUAL_COHORT_NOTICE", "model_card", "recalibration_section"]

RECALIBRATION_HEADING = "\n## Recalibration"

# The one line every output of a model trained on the virtual cohort leads with: reports,
# comparisons, the model's notes and its registered version (the card has its own banner).
VIRTUAL_COHORT_NOTICE = (
    "Trained on ketapredict's virtual cohort (simulated patients calibrated to published "
    "trials), not on real patients. Not for clinical decisions."
)

SIMULATED_NOTICE = (
    "**Not for clinical decisions.** This model was trained on ketapredict's virtual cohort: "
    "simulated patients whose parameters were fitted to published ketamine and esketamine "
    "trials. Its figures describe how well it recovers the simulator's patients, not real "
    "ones."
)

INTENDED_USE = (
    "Estimate, for one adult with a depressive disorder, one ketamine or esketamine dose "
    "schedule and one stated day after the first session, the probability of each outcome "
    "below, with a 90% interval and the predictors that moved it. Users: clinicians weighing "
    "dose schedules with a patient, and researchers comparing models. It ranks and "
    "calibrates patients on the same schedule; it is not a diagnostic test, and it does not "
    "say whether a patient should receive ketamine at all."
)

MISSING_DATA = (
    "Optional baseline fields (cognition, scales other than MADRS, history) may be missing. "
    "In training, each missing field was filled with one draw from its distribution given "
    "the patient's recorded fields; at prediction the probability is averaged over many "
    "such draws, so a missing field is integrated out and never read as a signal of where "
    "the data came from (ketapredict.imputation). Courses without the outcome were left out "
    "of that outcome's model, not imputed."
)

LIMITATIONS = (
    "Validated only on the kinds of patients, drugs, routes and schedules in its training "
    "data; the report warns when a patient or schedule lies outside them.",
    "Cross-validated figures are internal validation: validate the model on a study it "
    "never saw (`ketapredict evaluate`) and update its calibration to the local population "
    "(`ketapredict recalibrate`) before any use.",
    "The two courses of a crossover patient are treated as independent in training.",
    "A multiplier set against the virtual cohort's true probabilities (see Intervals) says "
    "how far this model's errors reach there, not in a real population.",
)


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _with_interval(metrics: Mapping[str, Any], key: str) -> str:
    text = _number(metrics.get(key))
    low, high = metrics.get(f"{key}_low"), metrics.get(f"{key}_high")
    if text != "n/a" and low is not None and high is not None:
        text += f" [{_number(low)}, {_number(high)}]"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def model_card(
    provenance: Mapping[str, Any],
    outcomes: Sequence[str],
    predictors: Sequence[str],
    *,
    sample: Mapping[str, Mapping[str, Any]] | None = None,
    subgroups: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    description: str = "",
) -> str:
    """The model card of a model, as Markdown.

    Parameters
    ----------
    provenance : mapping
        The model's provenance (:attr:`ketapredict.RiskModel.provenance`): ``name``,
        ``data_kind``, ``data_source``, ``trained``, ``validation``, ``metrics`` by outcome
        (with ``_low``/``_high`` intervals), ``horizon_days``, ``n_patients``,
        ``feature_set``, ``notes``.
    outcomes : sequence of str
        The model's outcomes.
    predictors : sequence of str
        The clinical predictors the model reads, in clinical words.
    sample : mapping of outcome to mapping, optional
        Per outcome: ``n`` (courses with the outcome) and ``events``.
    subgroups : mapping of outcome to rows, optional
        Per outcome, rows of ``variable``, ``level``, ``n``, ``events``, ``observed``,
        ``predicted``, ``within_arm_auc`` (from cross-validation).
    description : str, optional
        What the experiment set out to do.

    Returns
    -------
    str

    Examples
    --------
    >>> from ketapredict.card import model_card
    >>> card = model_card({"name": "demo", "data_kind": "simulated"}, ["response"], ["age"])
    >>> card.splitlines()[0]
    '# Model card: demo'
    >>> "Not for clinical decisions" in card
    True
    """
    # a model file's texts, each printed on its line: no headings or lines of their own
    name = one_line(provenance.get("name", "unnamed model"))
    simulated = provenance.get("data_kind") == "simulated"
    lines = [f"# Model card: {name}", ""]
    if simulated:
        lines += [SIMULATED_NOTICE, ""]
    lines += [
        f"Trained {one_line(provenance.get('trained', 'on an unknown date'))}"
        + (
            f" with ketapredict {one_line(provenance['ketapredict_version'])}"
            if provenance.get("ketapredict_version")
            else ""
        )
        + ". Laid out after TRIPOD+AI (Collins 2024).",
        "",
    ]
    if description:
        lines += [description, ""]
    lines += ["## Intended use and users", "", INTENDED_USE, ""]
    lines += ["## Data", ""]
    source = one_line(provenance.get("data_source", "not recorded"))
    kind = (
        "simulated (virtual cohort)"
        if simulated
        else one_line(provenance.get("data_kind", "unknown"))
    )
    lines += [f"- Source: {source}", f"- Kind: {kind}"]
    if provenance.get("n_patients") is not None:
        lines.append(f"- Courses: {provenance['n_patients']:,} (one row per treatment course)")
    if provenance.get("n_trials"):
        lines.append(f"- Trials: {provenance['n_trials']}")
    lines.append("")
    lines += ["## Outcomes and horizon", ""]
    for outcome in outcomes:
        lines.append(f"- `{outcome}`: {column(outcome).description}.")
    horizon = provenance.get("horizon_days")
    lines += [
        "",
        "Every probability is for a stated day after the first session (the horizon, an input "
        "of the model)"
        + "".join(
            f", but {o}'s, which is for the first session whatever the horizon"
            for o in outcomes
            if assessment_day(o) is not None
        )
        + (
            f"; the training courses were judged between day {horizon[0]:g} and day "
            f"{horizon[1]:g}."
            if horizon
            else "."
        ),
        "",
    ]
    lines += [
        "## Predictors",
        "",
        f"Feature set `{provenance.get('feature_set', 'unknown')}`: "
        + ", ".join(predictors)
        + ".",
        "",
    ]
    # a saved model's provenance is untrusted: only short texts, by outcome, are shown
    structure = provenance.get("structure")
    said = [
        (outcome, text)
        for outcome, text in (structure.items() if isinstance(structure, Mapping) else ())
        if outcome in outcomes and isinstance(text, str) and len(text) <= 1000
    ]
    if said:
        lines += ["## Model", "", "One gradient-boosted model per outcome (OutcomeModel):", ""]
        lines += [f"- `{outcome}`: {text}." for outcome, text in said]
        lines.append("")
    lines += ["## Missing data", "", MISSING_DATA, ""]
    if sample:
        lines += ["## Sample size and events", ""]
        lines += _table(
            ["outcome", "courses", "events", "rate"],
            [
                [o, f"{s['n']:,}", f"{s['events']:,}", f"{s['events'] / max(s['n'], 1):.1%}"]
                for o, s in sample.items()
            ],
        )
        lines.append("")
    lines += [
        "## Validation",
        "",
        f"Scheme: {provenance.get('validation', 'not recorded')}. Figures are out of fold, "
        "with 95% bootstrap intervals.",
        "",
    ]
    metrics = provenance.get("metrics", {})
    if metrics:
        lines += [
            "## Discrimination and calibration",
            "",
            "Among active-drug patients, within their arm (the clinician's question: ranking "
            "patients on the same schedule), then over all courses.",
            "",
        ]
        rows = []
        for outcome in outcomes:
            m = metrics.get(outcome, {})
            rows.append(
                [
                    outcome,
                    _with_interval(m, "within_arm_auc"),
                    _number(m.get("active_ece"), 4),
                    _number(m.get("active_calibration_slope")),
                    _with_interval(m, "auc"),
                    _number(m.get("brier"), 4),
                ]
            )
        lines += _table(
            [
                "outcome",
                "within-arm AUC [95% CI]",
                "ECE (active)",
                "calibration slope (active)",
                "AUC, all courses [95% CI]",
                "Brier",
            ],
            rows,
        )
        lines.append("")
    if subgroups:
        lines += [
            "## Subgroups",
            "",
            "Out-of-fold observed rate against mean predicted risk, and the within-arm AUC "
            "among active-drug patients where the subgroup has 5 events and 5 non-events in "
            f"an arm. Subgroups of fewer than {MIN_CELL} patients are not shown (counted in "
            f"courses: {MIN_CELL} times the most one patient gives, as a crossover patient "
            "gives one a period), nor a subgroup that with those shown and the total would "
            "give one away: such a row could tell a patient's outcome.",
            "",
        ]
        for outcome, rows in subgroups.items():
            lines += [f"### {outcome}", ""]
            lines += _table(
                ["variable", "level", "courses", "events", "observed", "predicted", "AUC"],
                [
                    [
                        r["variable"],
                        r["level"],
                        f"{r['n']:,}",
                        f"{r['events']:,}",
                        f"{r['observed']:.1%}",
                        f"{r['predicted']:.1%}",
                        _number(r.get("within_arm_auc")),
                    ]
                    for r in rows
                ],
            )
            lines.append("")
    lines += ["## Intervals", "", f"{provenance.get('intervals', 'not recorded')}.", ""]
    lines += ["## Limitations", ""]
    lines += [f"- {item}" for item in LIMITATIONS]
    if provenance.get("notes"):
        lines += [f"- {one_line(provenance['notes'])}"]
    return "\n".join(lines) + "\n"


def recalibration_section(update: Mapping[str, Any]) -> str:
    """The card's section on a recalibration (``provenance["recalibration"]``, written by
    :meth:`ketapredict.RiskModel.recalibrate`).

    Examples
    --------
    >>> from ketapredict.card import recalibration_section
    >>> update = {"method": "closed_test", "n_patients": 120, "date": "2026-01-05",
    ...           "outcomes": {"response": {"method": "intercept", "intercept": -0.3,
    ...                                     "slope": 1.0, "events": 40, "n": 120}}}
    >>> print(recalibration_section(update).strip().splitlines()[-1])
    - `response`: intercept updated (intercept -0.30, slope 1.00; 40 events in 120 courses).
    """
    methods = {
        "none": "kept as trained",
        "intercept": "intercept updated",
        "intercept_slope": "intercept and slope updated",
    }
    lines = [
        RECALIBRATION_HEADING,
        "",
        f"On {update.get('date', 'an unknown date')} the calibration was updated to "
        f"{update.get('n_patients', '?')} courses of a local population ({update.get('method')}"
        "; the trees were not refitted). Judge it on patients it was not fitted to.",
        "",
    ]
    for outcome, record in update.get("outcomes", {}).items():
        lines.append(
            f"- `{outcome}`: {methods.get(record.get('method'), record.get('method'))} "
            f"(intercept {record.get('intercept', 0):+.2f}, slope {record.get('slope', 1):.2f}; "
            f"{record.get('events', '?')} events in {record.get('n', '?')} courses)."
            + (f" Note: {record['note']}." if record.get("note") else "")
        )
    for outcome, reason in update.get("skipped", {}).items():
        if outcome not in update.get("outcomes", {}):  # else its earlier update stands
            lines.append(f"- `{outcome}`: {reason}.")
    return "\n".join(lines) + "\n"

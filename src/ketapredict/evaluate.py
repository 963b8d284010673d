"""Honest validation: metrics, validation schemes, peers and the oracle.

- :func:`score_predictions`: the clinician's question first. Discrimination *within arm
  among active-drug patients* (the AUC among patients who got the same regimen, n-weighted
  over arms) and calibration among active-drug patients (ECE over equal-count bins,
  calibration intercept and slope); then the same over all rows, which also rewards knowing
  the arm. Intervals resample trials, then patients within them, when trials are given.
- :func:`net_benefit`: the decision curve.
- :func:`cross_validate`: out-of-fold predictions of an :class:`~ketapredict.OutcomeModel`
  under stratified k-fold, grouped k-fold by trial or leave-one-trial-out (nested when a
  tuning grid is given), next to the peers a data scientist would otherwise use and, on
  simulated data, the oracle (the true probabilities).
- :func:`peer_models`: logistic regression on standardised and one-hot raw columns,
  scikit-learn's ``HistGradientBoostingClassifier`` and ``XGBClassifier``, all with their
  default settings; and the same three on ketapredict's encoded features.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone

from ._text import listed, paragraph
from .encoding import parse_feature_set, sources
from .exceptions import Problem, ValidationError, short_repr
from .regimen import REGIMEN_FIELDS
from .schema import (
    KETAMINES,
    MIN_EVENTS,
    _did_you_mean,
    assessment_day,
    check_outcome,
    column,
    columns,
    courses_per_patient,
    courses_table_problems,
    crossover_patients,
    flag_problem,
    whole_number_problem,
    withheld_groups,
)
from .trees import logit

__all__ = [
    "SCHEMES",
    "ValidationResult",
    "active_drug",
    "arm_labels",
    "cross_validate",
    "decision_thresholds",
    "expected_calibration_error",
    "learning_curve",
    "net_benefit",
    "peer_models",
    "score_predictions",
    "subgroup_metrics",
    "subgroup_variables",
    "tune_parameters",
    "withheld_subgroups",
]

SCHEMES = ("stratified_kfold", "grouped_kfold", "leave_one_trial_out")
# The most folds k-fold validation takes: more leave each fold too few courses to score.
MAX_SPLITS = 20
# Each validation fold should hold this many events on average: with fewer, fold metrics are
# noise and the folds' training sets run short of events.
EVENTS_PER_FOLD = 5
# An arm adds its AUC to the within-arm mean only with at least this many events and as many
# non-events: with fewer, one patient moves the arm's AUC by a tenth or more.
MIN_CLASS_PER_ARM = 5


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------
def _weighted_auc(p: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC for each row of ``weights`` (bootstrap replicates), ties counted half."""
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    # one column per distinct predicted value, so that tied pairs count half
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    events = y[order].astype(weights.dtype)
    ordered = weights[:, order]
    positives = np.add.reduceat(ordered * events, starts, axis=1)
    negatives = np.add.reduceat(ordered * (1 - events), starts, axis=1)
    below = np.cumsum(negatives, axis=1, dtype=np.float64) - negatives
    pairs = positives.sum(axis=1, dtype=np.float64) * negatives.sum(axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (positives * (below + 0.5 * negatives)).sum(axis=1) / pairs


@lru_cache(maxsize=4)
def _bootstrap_weights(n: int, n_bootstraps: int, seed: int, clusters: bytes) -> np.ndarray:
    """Bootstrap weights, one row per replicate, shared by every model scored on the same rows
    (their intervals then come from the same resamples, drawn once).

    Without clusters, Poisson(1) weights per row. With clusters (trials), a two-stage
    bootstrap: draw the trials with replacement, then the patients within each drawn trial
    (Davison & Hinkley 1997, section 3.8), so the interval holds the variation between trials
    as well as within them.
    """
    rng = np.random.default_rng(seed)
    if clusters:
        codes = np.frombuffer(clusters, dtype=np.int64)
        k = int(codes.max()) + 1
        drawn = rng.multinomial(k, np.full(k, 1.0 / k), size=n_bootstraps)
        # a trial drawn c times: each copy resamples its patients anew, Poisson(1) each, so
        # a patient's weight is their sum, Poisson(c)
        weights = rng.poisson(drawn[:, codes]).astype(np.float32)
    else:
        weights = rng.poisson(1.0, size=(n_bootstraps, n)).astype(np.float32)
    weights.flags.writeable = False
    return weights


def _percentile_interval(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def expected_calibration_error(
    y: Any, p: Any, n_bins: int = 10, strategy: str = "quantile"
) -> float:
    """Expected calibration error: the size-weighted mean gap between observed and predicted.

    The mean over bins of |observed rate - mean predicted probability|, weighted by the bins'
    sizes (Naeini 2015). With ``strategy="quantile"`` the bins hold equal numbers of
    patients, so a rare outcome's predictions are spread over every bin; with ``"uniform"``
    they have equal widths (Guo 2017), which puts nearly every patient of a 3% outcome in
    the first bin.

    Parameters
    ----------
    y : array-like of 0/1
        Observed outcomes.
    p : array-like of float in [0, 1]
        Predicted probabilities.
    n_bins : int, default=10
        Number of bins.
    strategy : {"quantile", "uniform"}, default="quantile"
        Equal-count or equal-width bins (the names of
        :func:`sklearn.calibration.calibration_curve`).

    Returns
    -------
    float

    Examples
    --------
    >>> expected_calibration_error([0, 1, 0, 1], [0.1, 0.9, 0.1, 0.9])
    0.1
    """
    y, p = _checked_scores(y, p)
    n_bins = _checked_bins(n_bins)
    if strategy == "uniform":
        which = np.minimum((p * n_bins).astype(int), n_bins - 1)
    elif strategy == "quantile":
        which = _quantile_bins(p, n_bins)
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    gaps = np.abs(np.bincount(which, weights=y - p, minlength=n_bins))
    return float(gaps.sum() / len(p))


def _checked_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValidationError(
            [Problem("n_bins", n_bins, f"n_bins must be a whole number >= 1; got {n_bins!r}")],
            "scores",
        )
    return int(n_bins)


def _quantile_bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Each prediction's bin of (about) equal counts; cut at the quantiles, so that tied
    predictions share a bin whatever the row order."""
    edges = np.quantile(p, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.searchsorted(edges, p, side="left")


def _joined_small_bins(which: np.ndarray, n_bins: int, min_courses: int) -> np.ndarray:
    """Bins of at least ``min_courses`` courses: the smallest non-empty bin under it joins
    its smaller non-empty neighbour, until none is under it (or one bin is left)."""
    which = which.copy()
    while True:
        n = np.bincount(which, minlength=n_bins)
        used = np.flatnonzero(n)
        small = [b for b in used if n[b] < min_courses]
        if not small or len(used) < 2:
            return which
        b = min(small, key=lambda k: n[k])
        at = int(np.flatnonzero(used == b)[0])
        neighbours = [used[i] for i in (at - 1, at + 1) if 0 <= i < len(used)]
        into = min(neighbours, key=lambda k: n[k])
        which[which == b] = into


def calibration_bins(y: Any, p: Any, n_bins: int = 10, *, min_courses: int = 1) -> pd.DataFrame:
    """The calibration table: predictions in bins of equal counts, each bin's mean
    prediction against its observed rate with a 95% Wilson interval.

    Equal-count bins spread a rare outcome's predictions over every bin (equal-width bins
    put nearly every patient of a 3% outcome in the first); the bins of
    :func:`expected_calibration_error`.

    Parameters
    ----------
    y : array-like of 0/1
        Observed outcomes.
    p : array-like of float in [0, 1]
        Predicted probabilities.
    n_bins : int, default=10
        Number of bins; fewer when ties leave some empty.
    min_courses : int, default=1
        A bin holds at least this many courses: one with fewer (tied predictions make bins
        unequal) joins its smaller neighbour. Tables that leave the machine use
        :data:`~ketapredict.schema.MIN_CELL`.

    Returns
    -------
    DataFrame
        One row per non-empty bin: ``bin``, ``n``, ``events``, ``predicted_low`` and
        ``predicted_high`` (the range of predictions), ``mean_predicted``, ``observed``,
        ``observed_low``, ``observed_high``.

    Examples
    --------
    >>> from ketapredict.evaluate import calibration_bins
    >>> table = calibration_bins([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
    >>> table[["n", "events", "mean_predicted", "observed"]].to_numpy().tolist()
    [[2.0, 0.0, 0.15, 0.0], [2.0, 2.0, 0.8, 1.0]]
    """
    y, p = _checked_scores(y, p)
    n_bins = _checked_bins(n_bins)
    which = _joined_small_bins(_quantile_bins(p, n_bins), n_bins, min_courses)
    n = np.bincount(which, minlength=n_bins).astype(float)
    events = np.bincount(which, weights=y, minlength=n_bins)
    kept = n > 0
    n, events = n[kept], events[kept]
    rate = events / n
    # Wilson's score interval (Wilson 1927): inside [0, 1] even for 0 or n events
    z = 1.959963984540054
    centre = (rate + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    frame = pd.DataFrame({"bin": np.flatnonzero(kept), "n": n, "events": events})
    grouped = pd.Series(p).groupby(which)
    frame["predicted_low"] = grouped.min().to_numpy()
    frame["predicted_high"] = grouped.max().to_numpy()
    frame["mean_predicted"] = grouped.mean().to_numpy()
    frame["observed"] = rate
    frame["observed_low"] = np.clip(centre - half, 0, 1)
    frame["observed_high"] = np.clip(centre + half, 0, 1)
    return frame


def _calibration_line(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration intercept (in the large, slope fixed at 1) and calibration slope.

    Both from logistic recalibration of the outcome on logit(p) (Cox 1958; Van Calster
    2019), by maximum likelihood to convergence; the ideal values are 0 and 1. NaN where
    the value does not exist: a slope for predictions that are all alike, or either when
    the outcome separates on the predictions (the estimate lies at infinity).
    """
    from .updating import fit_intercept, fit_line

    x = logit(p, clip=1e-6)
    in_large = fit_intercept(y, x)  # logit(p) as an offset
    line = fit_line(y, x)
    return (
        float(in_large.intercept) if in_large.converged else np.nan,
        float(line.slope) if line.converged else np.nan,
    )


def arm_labels(frame: pd.DataFrame) -> np.ndarray:
    """Which regimen each row got: its trial and arm, or else its dose schedule.

    Rows share a label when they are patients of the same arm of the same trial (columns
    ``trial_id`` and ``arm``); a row without an arm (no ``arm`` column, or no value in it),
    when they share every regimen field (and trial, if given). Rows whose arm is missing
    are never pooled into one "arm" whatever their regimens: that would make the arm
    membership a predictor within "arm".

    Examples
    --------
    >>> from ketapredict import simulate_cohort
    >>> arm_labels(simulate_cohort(n=200, seed=0))[0]
    'zarate2006/saline'
    >>> import pandas as pd
    >>> arm_labels(pd.DataFrame({"arm": ["A", None], "drug": ["saline", "ketamine"]})).tolist()
    ['A', '(no arm) ketamine']
    """

    def joined(keys: list[str]) -> pd.Series:
        keys = [k for k in keys if k in frame.columns]
        if not keys:
            return pd.Series("all", index=frame.index, dtype=object)
        parts = [frame[k].astype(object).where(frame[k].notna(), "NA").astype(str) for k in keys]
        label = parts[0]
        for part in parts[1:]:
            label = label + "/" + part
        return label

    if "arm" not in frame.columns:
        return joined(["trial_id", *REGIMEN_FIELDS]).to_numpy(dtype=object)
    label = joined(["trial_id", "arm"])
    no_arm = frame["arm"].isna()
    if no_arm.any():  # never the same label as a named arm
        label = label.where(~no_arm, "(no arm) " + joined(["trial_id", *REGIMEN_FIELDS]))
    return label.to_numpy(dtype=object)


def active_drug(frame: pd.DataFrame) -> np.ndarray:
    """Whether each row's drug is ketamine or one of its enantiomers (not a comparator)."""
    if "drug" not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    return frame["drug"].astype(object).isin(KETAMINES).to_numpy()


def _codes(labels: Any, n: int) -> np.ndarray:
    """Integer codes of group labels; a missing label is a group of its own."""
    if labels is None:
        return np.zeros(n, dtype=np.int64)
    labels = np.asarray(labels, dtype=object)
    if len(labels) != n:
        raise ValueError(f"group labels have {len(labels)} rows, the predictions {n}")
    return pd.factorize(labels, use_na_sentinel=False)[0].astype(np.int64)


def _within_arm_auc(
    p: np.ndarray, y: np.ndarray, arms: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, int, int]:
    """n-weighted mean over arms of the AUC within each arm, per row of ``weights``.

    Only arms with ``MIN_CLASS_PER_ARM`` events and non-events take part. Returns the means
    (NaN where no arm takes part), the number of arms and of rows that take part.
    """
    totals = np.zeros(len(weights))
    sizes = np.zeros(len(weights))
    n_arms = n_rows = 0
    for arm in np.unique(arms):
        inside = arms == arm
        events = int(y[inside].sum())
        if min(events, int(inside.sum()) - events) < MIN_CLASS_PER_ARM:
            continue
        n_arms += 1
        n_rows += int(inside.sum())
        w = weights[:, inside]
        aucs = np.concatenate(
            [_weighted_auc(p[inside], y[inside], w[i : i + 200]) for i in range(0, len(w), 200)]
        )
        size = w.sum(axis=1, dtype=np.float64)
        ok = np.isfinite(aucs)
        totals[ok] += aucs[ok] * size[ok]
        sizes[ok] += size[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / sizes, n_arms, n_rows


def _checked_scores(y: Any, p: Any, **groups: Any) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes and probabilities as float arrays, checked: one value each per row, the
    outcomes 0 or 1, the probabilities in [0, 1], none missing, and each of ``groups``
    (arm, active, cluster) as long (ValidationError naming each problem)."""
    problems: list[Problem] = []
    arrays = {}
    for name, values in (("y", y), ("p", p)):
        try:
            arrays[name] = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            arrays[name] = None
        if arrays[name] is None or arrays[name].ndim != 1:
            problems.append(Problem(name, None, f"{name} must be a list of numbers, one per row"))
    if not problems:
        y, p = arrays["y"], arrays["p"]
        if len(y) != len(p) or not len(y):
            problems.append(
                Problem("p", None, f"y has {len(y)} values and p {len(p)}; give one of each "
                        "per row, at least one row")
            )  # fmt: skip
        if not np.isin(y, (0.0, 1.0)).all():
            problems.append(Problem("y", None, "y must hold 0 or 1 (event or not), none missing"))
        bad = np.flatnonzero(np.isnan(p) | (p < 0) | (p > 1))
        if len(bad):
            shown = ", ".join(f"p[{i}]={p[i]:g}" for i in bad[:3])
            problems.append(
                Problem(
                    "p",
                    None,
                    f"predicted probabilities must lie in [0, 1], none missing; {len(bad)} do "
                    f"not: {shown}{', ...' if len(bad) > 3 else ''}",
                )
            )
        for name, values in groups.items():
            if values is not None and np.size(values) != len(y):
                problems.append(
                    Problem(name, None, f"{name} has {np.size(values)} values for {len(y)} rows")
                )
        active = groups.get("active")
        if active is not None and np.size(active) == len(y) and not _flags(active):
            # np.asarray(..., bool) would read NaN and any text ("comparator") as True
            problems.append(
                Problem("active", None, "active must hold True or False (or 1 or 0), none missing")
            )
    if problems:
        raise ValidationError(problems, "scores")
    return arrays["y"], arrays["p"]


# Bootstrap resamples at most: 1,000 give a 95% interval's ends to about a hundredth of an
# AUC; 10**12 asked numpy for 7 TiB.
MAX_BOOTSTRAPS = 100_000


def _resampling_problems(n_bootstraps: Any, seed: Any) -> list[Problem]:
    """What is wrong with the bootstrap's count and seed, before any work."""
    problems = [
        whole_number_problem(
            "n_bootstraps", n_bootstraps, 0, MAX_BOOTSTRAPS, meaning="0: no confidence intervals"
        ),
        whole_number_problem("seed", seed, 0, 2**32 - 1),
    ]
    problems = [problem for problem in problems if problem is not None]
    return problems


def _flags(values: Any) -> bool:
    """Whether ``values`` are all booleans or 0/1 numbers."""
    array = np.asarray(values)
    if array.dtype == bool:
        return True
    try:
        numbers = array.astype(float)
    except (TypeError, ValueError):
        return False
    return array.dtype.kind in "iuf" and bool(np.isin(numbers, (0.0, 1.0)).all())


def score_predictions(
    y: Any,
    p: Any,
    *,
    arm: Any = None,
    active: Any = None,
    cluster: Any = None,
    n_bootstraps: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Discrimination and calibration of predicted probabilities, the clinician's question
    first.

    A clinician ranks patients who would get the same regimen, and needs the risk to be right
    for patients on an active drug. So the headline is the AUC *within arm among active-drug
    patients* (the AUC among patients of one arm, averaged over arms weighted by their size)
    and calibration among active-drug patients. The same metrics over all rows follow; they
    also reward knowing which arm a patient was in.

    Parameters
    ----------
    y : array-like of bool or 0/1
        Observed outcomes.
    p : array-like of float
        Predicted probabilities of the event.
    arm : array-like, optional
        The regimen each row got (see :func:`arm_labels`). Default: all rows are one arm.
    active : array-like of bool, optional
        Whether each row got an active drug (see :func:`active_drug`). Default: all rows.
    cluster : array-like, optional
        The trial of each row. Given, the intervals resample trials and then patients within
        them; otherwise patients. With one trial there is no between-trial variation to
        draw, and the interval is a patient bootstrap (with a warning); with a handful of
        trials it is rough (a percentile interval over few clusters is too narrow).
    n_bootstraps : int, default=1000
        Replicates for the AUC intervals (0: no interval).
    seed : int, default=0
        Seed of the bootstrap.

    Returns
    -------
    dict
        Among active-drug patients: ``within_arm_auc`` with its 95% interval
        ``within_arm_auc_low`` / ``within_arm_auc_high``, ``within_arm_arms`` and
        ``within_arm_n`` (the arms and rows with at least ``MIN_CLASS_PER_ARM`` events and
        non-events that take part), ``active_n``, ``active_events``, ``active_ece`` (10
        equal-count bins), ``active_calibration_intercept`` and
        ``active_calibration_slope``. Over all rows: ``n``, ``events``, ``auc`` with
        ``auc_low`` / ``auc_high``, ``pr_auc`` (average precision), ``brier``, ``ece``,
        ``calibration_intercept`` and ``calibration_slope``. A metric that cannot be
        computed (one class only) is NaN.

    Examples
    --------
    >>> from ketapredict.evaluate import score_predictions
    >>> scores = score_predictions([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], n_bootstraps=0)
    >>> scores["auc"], scores["brier"]
    (0.75, 0.158...)

    A prediction that knows only each arm's response rate ranks no patient within an arm,
    yet scores 0.75 over all rows:

    >>> y = [0] * 5 + [1] * 15 + [0] * 15 + [1] * 5
    >>> p = [0.7] * 20 + [0.2] * 20
    >>> arm = ["a"] * 20 + ["b"] * 20
    >>> scores = score_predictions(y, p, arm=arm, n_bootstraps=0)
    >>> scores["within_arm_auc"], scores["auc"]
    (0.5, 0.75)
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    resampling = _resampling_problems(n_bootstraps, seed)
    if resampling:
        raise ValidationError(resampling, "arguments")
    y, p = _checked_scores(y, p, arm=arm, active=active, cluster=cluster)
    n = len(y)
    arms = _codes(arm, n)
    is_active = np.ones(n, dtype=bool) if active is None else np.asarray(active).astype(bool)
    clusters = _codes(cluster, n).tobytes() if cluster is not None else b""
    if cluster is not None and n_bootstraps and len(pd.unique(np.asarray(cluster))) < 2:
        warnings.warn(
            "cluster names one trial: the intervals cannot hold variation between trials "
            "and resample patients only",
            UserWarning,
            stacklevel=2,
        )
    weights = (
        _bootstrap_weights(n, n_bootstraps, seed, clusters)
        if n_bootstraps
        else np.ones((1, n), dtype=np.float32)
    )

    out: dict[str, float] = {}
    # -- among active-drug patients, within arm
    a = is_active
    within, n_arms, n_rows = _within_arm_auc(p[a], y[a], arms[a], weights[:, a])
    point, _, _ = _within_arm_auc(p[a], y[a], arms[a], np.ones((1, int(a.sum())), np.float32))
    low, high = _percentile_interval(within) if n_bootstraps else (np.nan, np.nan)
    ya, pa = y[a], p[a]
    both = 0 < ya.sum() < len(ya)
    intercept, slope = _calibration_line(ya, pa) if both else (np.nan, np.nan)
    out.update(
        within_arm_auc=float(point[0]),
        within_arm_auc_low=low,
        within_arm_auc_high=high,
        within_arm_arms=n_arms,
        within_arm_n=n_rows,
        active_n=int(a.sum()),
        active_events=int(ya.sum()),
        active_ece=expected_calibration_error(ya, pa) if len(ya) else np.nan,
        active_calibration_intercept=intercept,
        active_calibration_slope=slope,
    )
    # -- over all rows
    out.update(
        n=n,
        events=int(y.sum()),
        brier=float(np.mean((p - y) ** 2)),
        ece=expected_calibration_error(y, p),
    )
    if 0 < y.sum() < n:
        if n_bootstraps:
            blocks = range(0, n_bootstraps, 200)
            aucs = np.concatenate([_weighted_auc(p, y, weights[i : i + 200]) for i in blocks])
            low, high = _percentile_interval(aucs)
        else:
            low, high = np.nan, np.nan
        intercept, slope = _calibration_line(y, p)
        out.update(
            auc=float(roc_auc_score(y, p)),
            auc_low=low,
            auc_high=high,
            pr_auc=float(average_precision_score(y, p)),
            calibration_intercept=intercept,
            calibration_slope=slope,
        )
    else:
        out.update(
            auc=np.nan,
            auc_low=np.nan,
            auc_high=np.nan,
            pr_auc=np.nan,
            calibration_intercept=np.nan,
            calibration_slope=np.nan,
        )
    return out


def decision_thresholds(base_rate: float, n: int = 60) -> np.ndarray:
    """Risk thresholds a clinician could choose for an outcome of this base rate.

    From a third of the base rate up to ``min(0.9, 3 × base rate + 0.1)``, ``n`` thresholds
    evenly spaced. Below the base rate, "treat all" beats "treat none"; a model is worth
    using where it beats both. Far above the base rate, few patients reach the threshold
    and every curve is near zero, so the range stops at about three times the base rate
    (plus a margin, so that a rare outcome still reaches 10%).

    Parameters
    ----------
    base_rate : float in (0, 1)
        Share of patients with the outcome.
    n : int, default=60
        Number of thresholds.

    Returns
    -------
    ndarray of float

    Examples
    --------
    >>> from ketapredict.evaluate import decision_thresholds
    >>> t = decision_thresholds(0.03)
    >>> float(t[0]), float(t[-1])
    (0.01, 0.19)
    >>> t = decision_thresholds(0.45)
    >>> float(t[0]), float(t[-1])
    (0.15, 0.9)
    """
    if not 0 < base_rate < 1:
        raise ValueError(f"Got base_rate={base_rate!r}, but expected a share in (0, 1).")
    low = max(base_rate / 3, 0.001)
    high = max(min(0.9, 3 * base_rate + 0.1), low + 0.01)
    return np.unique(np.round(np.linspace(low, high, n), 4))


def net_benefit(y: Any, p: Any, thresholds: Iterable[float] | None = None) -> pd.DataFrame:
    """The decision curve: net benefit of acting when p >= threshold (Vickers 2006).

    Net benefit = TP/n - FP/n * t / (1 - t). Treat-all and treat-none are the references.

    Parameters
    ----------
    y : array-like of bool or 0/1
        Observed outcomes.
    p : array-like of float
        Predicted probabilities.
    thresholds : iterable of float, optional
        Risk thresholds at which a clinician would act. Default: :func:`decision_thresholds`
        of the observed base rate (a fixed 0.05-0.95 grid says nothing of a 2% outcome).

    Returns
    -------
    DataFrame
        Indexed by threshold: ``model``, ``treat_all``, ``treat_none``.

    Examples
    --------
    >>> from ketapredict.evaluate import net_benefit
    >>> curve = net_benefit([0, 1, 1, 0], [0.2, 0.7, 0.9, 0.6], thresholds=[0.5])
    >>> float(curve.loc[0.5, "model"])
    0.25
    """
    y, p = _checked_scores(y, p)
    n = len(y)
    if thresholds is None:  # a sample without events (or non-events) still gets a curve
        thresholds = decision_thresholds(min(max(float(y.mean()), 0.01), 0.99))
    thresholds = list(thresholds)
    if not thresholds:
        raise ValidationError(
            [Problem("thresholds", [], "thresholds must list at least one risk in (0, 1)")],
            "scores",
        )
    bad = [t for t in thresholds if not (isinstance(t, Real) and 0 < t < 1)]
    if bad:  # at 1 the odds t / (1 - t) are infinite; at 0 every patient is acted on
        raise ValidationError(
            [Problem("thresholds", bad[0], f"thresholds must lie in (0, 1); got {bad[0]!r}")],
            "scores",
        )
    rows = []
    for t in thresholds:
        act = p >= t
        odds = t / (1 - t)
        rows.append(
            {
                "threshold": float(t),
                "model": ((act & (y == 1)).sum() - (act & (y == 0)).sum() * odds) / n,
                "treat_all": (y.sum() - (n - y.sum()) * odds) / n,
                "treat_none": 0.0,
            }
        )
    return pd.DataFrame(rows).set_index("threshold")


def _age_band(age: pd.Series) -> pd.Series:
    return pd.cut(
        age, [0, 35, 50, 65, 200], right=False, labels=["<35", "35-49", "50-64", ">=65"]
    ).astype(object)


def subgroup_metrics(
    frame: pd.DataFrame,
    y: Any,
    predictions: Mapping[str, Any],
    *,
    min_events: int = 5,
    ranked_within: Any = None,
    withheld: Collection[tuple[str, Any]] | None = None,
) -> pd.DataFrame:
    """Metrics within subgroups: by sex, age band, diagnosis, drug, route, trial, arm, and
    active drug against comparator.

    Parameters
    ----------
    frame : DataFrame
        The rows scored; variables whose columns it lacks are skipped.
    y : array-like of 0/1
        Observed outcomes of those rows.
    predictions : mapping of name to array-like
        Predicted probabilities by model (e.g. ``{"OutcomeModel": p, "oracle": truth}``).
    min_events : int, default=5
        Subgroups with fewer events (or non-events) get no AUC.
        Subgroups of fewer than :data:`~ketapredict.schema.MIN_CELL` (11) patients are left
        out (in courses, 11 times the most one patient gives): their row could tell a
        patient's outcome.
    ranked_within : array-like, optional
        The groups the within-arm AUC ranks rows in (default: their arms;
        :func:`cross_validate` gives arm and fold where its folds split arms).
    withheld : collection of (variable, level), optional
        The rows not to show (default: those :func:`withheld_subgroups` finds in ``frame``;
        :func:`cross_validate` judges them together with its folds).

    Returns
    -------
    DataFrame
        One row per (model, variable, level): ``n``, ``events``, ``observed`` (rate),
        ``predicted`` (mean), ``within_arm_auc`` (among its active-drug rows, see
        :func:`score_predictions`), ``auc``, ``brier``, ``ece``.
    """
    y = np.asarray(y, dtype=float)
    variables = subgroup_variables(frame)
    from sklearn.metrics import roc_auc_score

    strata = arm_labels(frame) if ranked_within is None else np.asarray(ranked_within, object)
    arms = _codes(strata, len(frame))
    active = active_drug(frame)
    if withheld is None:
        withheld = withheld_subgroups(variables, courses_per_patient=courses_per_patient(frame))
    withheld = set(withheld)
    rows = []
    for name, p in predictions.items():
        p = np.asarray(p, dtype=float)
        for variable, levels in variables.items():
            for level in sorted(levels.dropna().unique(), key=str):
                if (variable, level) in withheld:
                    continue  # a patient's outcome, not a subgroup's
                inside = (levels == level).to_numpy()
                yi, pi = y[inside], p[inside]
                events = int(yi.sum())
                enough = min(events, len(yi) - events) >= min_events
                a = inside & active
                within, _, _ = _within_arm_auc(
                    p[a], y[a], arms[a], np.ones((1, int(a.sum())), np.float32)
                )
                rows.append(
                    {
                        "model": name,
                        "variable": variable,
                        "level": str(level),
                        "n": int(inside.sum()),
                        "events": events,
                        "observed": float(yi.mean()),
                        "predicted": float(pi.mean()),
                        "within_arm_auc": float(within[0]),
                        "auc": float(roc_auc_score(yi, pi)) if enough else np.nan,
                        "brier": float(np.mean((pi - yi) ** 2)),
                        "ece": expected_calibration_error(yi, pi),
                    }
                )
    return pd.DataFrame(rows)


def subgroup_variables(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The variables :func:`subgroup_metrics` groups by, each a level per row (missing
    where the row has none): sex, diagnosis, drug, route, age band, trial, arm, and active
    drug against comparator, of those ``frame`` has the columns of."""
    index = frame.index
    variables = {
        name: frame[name].astype(object)
        for name in ("sex", "diagnosis", "drug", "route")
        if name in frame.columns
    }
    if "age" in frame.columns:
        variables["age band"] = _age_band(frame["age"])
    if "trial_id" in frame.columns:
        variables["trial"] = frame["trial_id"].astype(object)
    variables["arm"] = pd.Series(arm_labels(frame), index=index)
    if "drug" in frame.columns:
        variables["active drug"] = pd.Series(
            np.where(active_drug(frame), "active drug", "comparator"), index=index
        )
    return variables


def withheld_subgroups(
    variables: Mapping[str, Any], *, courses_per_patient: int = 1
) -> set[tuple[str, Any]]:
    """The (variable, level) rows of a subgroup table not to show: fewer than
    :data:`~ketapredict.schema.MIN_CELL` patients, or giving such a group away by
    subtraction from the other rows and the total (:func:`~ketapredict.schema.
    withheld_groups`; a trial less the one diagnosis it holds but a few of).

    Parameters
    ----------
    variables : mapping of name to Series or array
        Each variable's level per course (missing: none), as :func:`subgroup_variables`
        gives them; :func:`cross_validate` adds each course's fold.
    courses_per_patient : int, default=1
        The most courses one patient gives (:func:`~ketapredict.schema.
        courses_per_patient`): a group must hold ``MIN_CELL`` patients, not courses.
    """
    groups = {}
    for name, values in variables.items():
        values = pd.Series(np.asarray(values, dtype=object))
        for level in values.dropna().unique():
            groups[(name, level)] = (values == level).to_numpy()
    return withheld_groups(groups, courses_per_patient=courses_per_patient)


# --------------------------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------------------------
def _raw_columns(
    frame: pd.DataFrame, reading: Collection[str] | None = None
) -> tuple[list[str], list[str]]:
    """The contract's baseline and regimen columns in ``frame`` (of them, those in
    ``reading`` if given): numeric and categorical."""
    raw = [
        c
        for c in columns("baseline") + columns("regimen")
        if c in frame.columns and (reading is None or c in reading)
    ]
    categorical = [c for c in raw if column(c).kind == "category"]
    return [c for c in raw if c not in categorical], categorical


class _RawColumns:
    """Pickle-free factory of the peers' shared preprocessing (a ColumnTransformer)."""

    def __init__(self, frame: pd.DataFrame, scale: bool, reading: Collection[str] | None = None):
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

        numeric, categorical = _raw_columns(frame, reading)
        to_float = FunctionTransformer(_as_float, feature_names_out="one-to-one")
        numeric_steps = [to_float, SimpleImputer(strategy="median", add_indicator=True)]
        if scale:
            numeric_steps.append(StandardScaler())
        categorical_steps = [
            FunctionTransformer(_as_text, feature_names_out="one-to-one"),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False),
        ]
        self.transformer = ColumnTransformer(
            [
                ("numeric", make_pipeline(*numeric_steps), numeric),
                ("categorical", make_pipeline(*categorical_steps), categorical),
            ],
            verbose_feature_names_out=False,
        )


class _DropEmpty(TransformerMixin, BaseEstimator):
    """Leave out the features with no value in the training rows (a field that no trial of
    a fold recorded). HistGradientBoosting cannot bin a column of NaN only, and such a
    column carries nothing to learn from."""

    def fit(self, X, y=None):
        self.keep_ = ~np.isnan(np.asarray(X, dtype=float)).all(axis=0)
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float)[:, self.keep_]


def _as_float(x):
    return (
        pd.DataFrame(x).apply(lambda s: s.astype("Float64")).to_numpy(dtype=float, na_value=np.nan)
    )


def _as_text(x):
    return pd.DataFrame(x).astype(object).fillna("missing").astype(str).to_numpy()


def peer_models(
    frame: pd.DataFrame,
    seed: int = 0,
    *,
    features: str | None = "core",
    outcome: str | None = None,
) -> dict[str, Any]:
    """What a data scientist would otherwise use: on the raw contract columns, and on
    ketapredict's encoded features.

    The two sets separate what the features add (raw against encoded, the same learner)
    from what OutcomeModel adds (encoded peers against OutcomeModel, the same features).

    Parameters
    ----------
    frame : DataFrame
        A patient table; its baseline and regimen columns are the raw peers' inputs.
    seed : int, default=0
        Random state of the tree ensembles.
    features : str, path-like or None, default="core"
        The feature set of the encoded peers (OutcomeModel's); the raw peers see the raw
        columns it reads. None: raw peers only, on every baseline and regimen column.
    outcome : str or None, default=None
        The outcome the peers will predict: the encoded peers encode it as OutcomeModel
        does (dissociation as of the first session, :func:`~ketapredict.schema.assessment_day`).

    Returns
    -------
    dict of str to estimator
        ``logistic_regression`` (median imputation with missing indicators, standardised
        numbers, one-hot categories), ``hist_gradient_boosting`` and ``xgboost_default``
        (imputation only; default settings), all unfitted scikit-learn pipelines; and the
        same three learners on the encoded features, named with ``_encoded``.

    Examples
    --------
    >>> from ketapredict import simulate_cohort
    >>> list(peer_models(simulate_cohort(n=200, seed=0)))  # doctest: +NORMALIZE_WHITESPACE
    ['logistic_regression', 'hist_gradient_boosting', 'xgboost_default',
     'logistic_regression_encoded', 'hist_gradient_boosting_encoded',
     'xgboost_default_encoded']
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBClassifier

    from .features import FeatureEncoder

    # the raw peers see the columns the feature set reads, so a set that leaves a field out
    # (no_cognition) is compared with peers that do not see it either
    reading = None if features is None else sources(parse_feature_set(features))
    peers = {
        "logistic_regression": make_pipeline(
            _RawColumns(frame, scale=True, reading=reading).transformer,
            LogisticRegression(max_iter=5000),
        ),
        "hist_gradient_boosting": make_pipeline(
            _RawColumns(frame, scale=False, reading=reading).transformer,
            HistGradientBoostingClassifier(random_state=seed),
        ),
        "xgboost_default": make_pipeline(
            _RawColumns(frame, scale=False, reading=reading).transformer,
            XGBClassifier(random_state=seed, n_jobs=None),
        ),
    }
    if features is not None:
        day = None if outcome is None else assessment_day(outcome)
        peers.update(
            logistic_regression_encoded=make_pipeline(
                FeatureEncoder(features, assessed_day=day),
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                StandardScaler(),
                LogisticRegression(max_iter=5000),
            ),
            hist_gradient_boosting_encoded=make_pipeline(
                FeatureEncoder(features, assessed_day=day),
                _DropEmpty(),
                HistGradientBoostingClassifier(random_state=seed),
            ),
            xgboost_default_encoded=make_pipeline(
                FeatureEncoder(features, assessed_day=day),
                XGBClassifier(random_state=seed, n_jobs=None),
            ),
        )
    return peers


# --------------------------------------------------------------------------------------------
# Validation schemes
# --------------------------------------------------------------------------------------------
def _splitter(scheme: str, n_splits: int, seed: int):
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold

    if scheme == "stratified_kfold":
        return StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    if scheme == "grouped_kfold":
        return StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
    if scheme == "leave_one_trial_out":
        return LeaveOneGroupOut()
    raise ValidationError(
        [
            Problem(
                "scheme",
                scheme,
                f"scheme={scheme!r} is not one of {', '.join(map(repr, SCHEMES))}",
            )
        ],
        "validation",
    )


def check_design(
    data: pd.DataFrame, outcome: str, scheme: str, n_splits: int = 5
) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Check an outcome can be validated with a scheme; before any training.

    Rows with the outcome missing (for example untested cognition) are left out and
    counted. Returns the rows kept, the 0/1 outcome and how many rows were left out.

    Raises
    ------
    ValidationError
        The outcome column is absent; it has one class; or it has fewer events (or
        non-events) than the scheme needs: 5 per validation fold, at least 10; or
        ``n_splits`` of a k-fold scheme is not a whole number from 2 to
        :data:`MAX_SPLITS`.
    """
    if scheme != "leave_one_trial_out" and (  # which has one fold per trial, whatever n_splits
        isinstance(n_splits, bool)
        or not isinstance(n_splits, Integral)
        or not 2 <= n_splits <= MAX_SPLITS
    ):
        raise ValidationError(
            [
                Problem(
                    "n_splits",
                    n_splits,
                    f"n_splits={short_repr(n_splits)} is not a whole number from 2 to "
                    f"{MAX_SPLITS} "
                    "(the folds of k-fold validation)",
                )
            ],
            "validation",
        )
    if outcome not in data.columns:
        present = [c for c in columns("outcome") if c in data.columns]
        raise ValidationError(
            [
                Problem(
                    outcome,
                    None,
                    f"outcome column {outcome!r} is not in "
                    f"the data; outcomes present: {', '.join(present)}",
                )
            ],
            "data",
        )
    kept = data[data[outcome].notna()]
    dropped = len(data) - len(kept)
    grouped = scheme in ("grouped_kfold", "leave_one_trial_out")
    if grouped and "trial_id" not in kept.columns:
        raise ValidationError(
            [
                Problem(
                    "trial_id",
                    None,
                    f"scheme={scheme!r} groups by trial_id, which the data does not have",
                )
            ],
            "data",
        )
    n_folds = kept["trial_id"].nunique() if scheme == "leave_one_trial_out" else n_splits
    if grouped and kept["trial_id"].nunique() < max(2, n_folds):
        raise ValidationError(
            [
                Problem(
                    "trial_id",
                    None,
                    f"scheme={scheme!r} needs at least "
                    f"{max(2, n_folds)} trials; the data has "
                    f"{kept['trial_id'].nunique()}",
                )
            ],
            "data",
        )
    needed = max(10, EVENTS_PER_FOLD * n_folds)
    try:
        y = check_outcome(kept[outcome], outcome, min_per_class=needed)
    except ValidationError as error:
        detail = (
            f"{scheme} over {n_folds} folds needs {needed} ({EVENTS_PER_FOLD} per fold)"
            f"; {len(kept):,} rows have the outcome"
            + (f" ({dropped:,} without it were left out)" if dropped else "")
        )
        raise ValidationError(
            [Problem(p.column, p.value, f"{p.message}: {detail}") for p in error.problems], "data"
        ) from None
    return kept, y, dropped


@dataclass
class ValidationResult:
    """Out-of-fold predictions of a model, its peers and the oracle, and their metrics.

    Attributes
    ----------
    outcome, scheme : str
    metrics : DataFrame
        One row per model (``OutcomeModel``, the peers, ``oracle``), on the pooled
        out-of-fold predictions (see :func:`score_predictions`): within arm among
        active-drug patients first, intervals resampling trials when the data has them.
    fold_metrics : DataFrame
        One row per (model, fold): ``fold``, ``trial`` (the held-out trial, if one),
        ``n``, ``events``, ``within_arm_auc``, ``active_ece``, ``auc``, ``pr_auc``,
        ``brier``, ``ece``; ``within_arm_auc`` is NaN in folds with no arm of 5 events and
        5 non-events, ``auc`` in folds with one class. ``withheld`` marks the folds not to
        publish (a fold of fewer than 11 patients, or one that would give such a group
        away, judged with the subgroups: :func:`withheld_subgroups`).
    decision_curve : DataFrame
        Net benefit by threshold, a column per model plus treat-all and treat-none.
    subgroups : DataFrame
        See :func:`subgroup_metrics`.
    predictions : DataFrame
        Each row's position in the table given (``data.iloc[row]``), its fold and outcome,
        and each model's probability. No identifiers.
    rows_left_out : int
        Rows without the outcome, not used.
    resampled : str
        What the bootstrap intervals resample: ``"trials, then patients"``, or
        ``"patients"`` for data from one trial (nothing between trials to draw).
    ranked_within : str
        The groups the within-arm AUC ranks patients in: ``"arm"``, or ``"arm and fold"``
        when the folds split arms (stratified k-fold), so that each group's patients were
        scored by one fold's model.
    courses_per_patient : int
        The most courses one patient gave (2 in a two-period crossover): a published group
        (a subgroup, a fold, a calibration bin) holds ``MIN_CELL`` times as many courses.
    """

    outcome: str
    scheme: str
    metrics: pd.DataFrame
    fold_metrics: pd.DataFrame
    decision_curve: pd.DataFrame
    subgroups: pd.DataFrame
    predictions: pd.DataFrame
    rows_left_out: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    resampled: str = "trials, then patients"
    ranked_within: str = "arm"
    courses_per_patient: int = 1

    def __str__(self) -> str:
        """The metrics as ``ketapredict train`` prints them: the clinician's question
        first (among active-drug patients: AUC within arm with its 95% interval,
        calibration), then every course."""
        return _metrics_text(self)

    def __repr__(self) -> str:
        # a notebook shows the table, not every frame's first rows
        return str(self)

    @property
    def shown_folds(self) -> pd.DataFrame:
        """The fold metrics that may leave the machine: without the folds withheld for
        privacy (``fold_metrics["withheld"]``). Every summary over folds (a mean, an SD) is
        taken over these alone: with the number of folds, a mean and an SD over all of them
        would give two withheld folds' values back."""
        table = self.fold_metrics
        if table is None or "withheld" not in table.columns:
            return table
        return table[~table["withheld"].astype(bool)].drop(columns="withheld")


# -- a validation as text (what `ketapredict train` prints) ----------------------------
def _number(value: float, spec: str = ".3f") -> str:
    """A metric as ``spec`` formats it, or n/a where it does not exist (a calibration slope
    when the outcome separates on the predictions)."""
    return format(value, spec) if np.isfinite(value) else "n/a"


def _interval(point: float, low: float, high: float) -> str:
    if not np.isfinite(point):
        return "n/a"
    if not np.isfinite(low):
        return f"{point:.3f}"
    return f"{point:.3f} [{low:.3f}, {high:.3f}]"


def _ranked_courses(metrics: pd.Series) -> str | None:
    """ "1,424 courses": how many of the active-drug courses the within-arm AUC ranks (an
    arm with fewer than 5 events or non-events is left out), None when none or not known."""
    n = metrics.get("within_arm_n")
    if n is None or pd.isna(n) or int(n) == 0:
        return None
    return f"{int(n):,} course{'s' if int(n) != 1 else ''}"


def _parenthesis(*parts: str | None) -> str:
    """ " (a; b)" of the parts given, "" of none: one parenthesis, never two in a row."""
    given = [part for part in parts if part]
    return f" ({'; '.join(given)})" if given else ""


def _active_counts(validation) -> str:
    """The courses and events among active-drug patients, as the subgroup table shows them:
    withheld with its rows when they, or the comparators (all courses less these), are too
    few to show or could be worked out (:func:`ketapredict.evaluate.withheld_subgroups`)."""
    m = validation.metrics.iloc[0]
    n, comparators = int(m["active_n"]), int(m["n"]) - int(m["active_n"])
    table = validation.subgroups
    shown = set(table.loc[table["variable"] == "active drug", "level"])
    if "active drug" in shown and (comparators == 0 or "comparator" in shown):
        return f"{n:,} courses, {int(m['active_events']):,} events"
    return "courses and events withheld with their subgroup rows"


def _small_sample_notes(validation) -> list[str]:
    """What a small study's table cannot say, and what to change: the within-arm AUC when no
    arm has enough events, and the width of every estimate under 100 events or non-events."""
    first = validation.metrics.iloc[0]
    n, events = int(first["n"]), int(first["events"])
    notes = []
    if int(first["within_arm_arms"]) == 0:
        where = "arm" if validation.ranked_within == "arm" else "arm within a fold"
        notes.append(
            f"no {where} has {MIN_CLASS_PER_ARM} events and {MIN_CLASS_PER_ARM} non-events "
            "among active-drug patients, so the AUC within arm is n/a"
            + (
                "; fewer, larger folds (a smaller n_splits in [validation]) or more courses "
                "would give one"
                if validation.ranked_within != "arm"
                else ""
            )
        )
    predictions = validation.predictions
    if isinstance(predictions, pd.DataFrame):
        by_fold = predictions.groupby("fold") if "fold" in predictions.columns else None
        constant = [
            model
            for model in validation.metrics.index
            if f"p_{model}" in predictions.columns
            and by_fold is not None
            and int(by_fold[f"p_{model}"].nunique().max()) == 1
        ]
        if constant:  # an AUC of 0.500 [0.500, 0.500] looks certain, and says nothing
            notes.append(
                f"{', '.join(constant)} gave every course of a fold the same probability "
                "(nothing learnt from so few courses): "
                + ("its" if len(constant) == 1 else "their")
                + " AUCs in such a fold (0.500, with no spread) say nothing of how "
                + ("it ranks" if len(constant) == 1 else "they rank")
            )
    tied = validation.extras.get("folds_tied", 0)
    if tied:
        from .models import _EVENTS_PER_TERM

        folds = len(validation.extras["tuned_parameters"])
        notes.append(
            f"in {tied} of {folds} folds every candidate of the tuning grid scored the same, so "
            "the grid's first values were kept: its parameters change nothing there (with "
            f"fewer than {_EVENTS_PER_TERM} events, or non-events, per linear term OutcomeModel "
            "boosts no trees, and tree parameters do nothing)"
        )
    if min(events, n - events) < MIN_EVENTS:
        notes.append(
            f"{events:,} events and {n - events:,} non-events: estimates of performance precise "
            f"enough to act on need at least {MIN_EVENTS} of each (Collins 2016, Stat Med "
            "35:214); read the intervals, not the point estimates"
        )
    return notes


def _metrics_text(validation: ValidationResult) -> str:
    """A validation's metrics as text (:meth:`ValidationResult.__str__`): first the
    clinician's question (among active-drug patients: AUC within arm, calibration), then
    the same over all rows, and what a small sample cannot say."""
    m = validation.metrics
    folds = validation.shown_folds.groupby("model")["within_arm_auc"]
    n_folds = validation.fold_metrics["fold"].nunique()
    hidden = n_folds - validation.shown_folds["fold"].nunique()
    first = m.iloc[0]
    header = (
        f"{validation.outcome}: {int(first['n']):,} courses, {int(first['events']):,} events; "
        f"{validation.scheme}, {n_folds} folds"
        + (
            f" ({hidden} withheld for privacy, and left out of the fold mean and SD)"
            if hidden
            else ""
        )
        + (", a grid search nested in each" if "tuned_parameters" in validation.extras else "")
    )
    if validation.rows_left_out:
        left = validation.rows_left_out
        header += f" ({left:,} course{'s' if left > 1 else ''} without the outcome left out)"
    arms = int(first["within_arm_arms"])
    unit = "arm" if validation.ranked_within == "arm" else "arm-fold"
    if arms:
        ranked = (
            f"AUC within arm, n-weighted over the {arms} {unit}{'s' if arms != 1 else ''}"
            + _parenthesis(
                None if validation.ranked_within == "arm" else "one model each",
                _ranked_courses(first),
            )
            + f" with at least {MIN_CLASS_PER_ARM} events and {MIN_CLASS_PER_ARM} non-events"
        )
    else:  # the note below says why, and what would give one
        ranked = "AUC within arm n/a"
    # n_bootstraps=0: no interval to speak of, in the header or the columns' names
    intervals = bool(m[["within_arm_auc_low", "auc_low"]].notna().to_numpy().any())
    ci = " [95% CI]" if intervals else ""
    header = (
        paragraph(header, indent="  ")
        + "\n"
        + paragraph(
            f"among active-drug patients ({_active_counts(validation)}): {ranked}; calibration "
            "(ECE, intercept and slope)"
            + (f"; 95% intervals resample {validation.resampled}" if intervals else ""),
            indent="  ",
            first_indent="  ",
        )
    )
    active = pd.DataFrame(
        {
            f"within-arm AUC{ci}": [
                _interval(r.within_arm_auc, r.within_arm_auc_low, r.within_arm_auc_high)
                for r in m.itertuples()
            ],
            "ECE": m["active_ece"].map("{:.4f}".format),
            "intercept": m["active_calibration_intercept"].map(lambda v: _number(v, "+.3f")),
            "slope": m["active_calibration_slope"].map(_number),
            # no fold with an arm of 5 events and 5 non-events: n/a, not "nan (nan)"
            # every fold withheld: no model has a fold to summarise (n/a)
            "fold mean (sd)": [
                f"{_number(mean)} ({_number(sd)})"
                for mean, sd in zip(
                    folds.mean().reindex(m.index), folds.std().reindex(m.index), strict=True
                )
            ],
        },
        index=m.index,
    )
    pooled = pd.DataFrame(
        {
            f"AUC{ci}": [_interval(r.auc, r.auc_low, r.auc_high) for r in m.itertuples()],
            "PR AUC": m["pr_auc"].map("{:.3f}".format),
            "Brier": m["brier"].map("{:.4f}".format),
            "ECE": m["ece"].map("{:.4f}".format),
            "intercept": m["calibration_intercept"].map(lambda v: _number(v, "+.3f")),
            "slope": m["calibration_slope"].map(_number),
        },
        index=m.index,
    )
    return (
        header
        + "\n"
        + active.to_string()
        + "\n  all courses, every arm (also rewards knowing the arm):\n"
        + pooled.to_string()
        + "".join(
            "\n" + paragraph(f"note: {note}", indent="    ", first_indent="  ")
            for note in _small_sample_notes(validation) + _separation_notes(m)
        )
    )


# A calibration intercept this far from 0 (log-odds; an odds ratio of about 150) is no
# miscalibration to correct: the model's probabilities sit at 0 or 1.
_EXTREME_INTERCEPT = 5.0


def _separation_notes(metrics: pd.DataFrame) -> list[str]:
    """What an extreme calibration intercept means, for the models that have one: not a
    number to read, but probabilities pushed to 0 and 1 (a learner near separation, as a
    logistic regression of unscaled columns with few events)."""
    extreme = [
        name
        for name, row in metrics.iterrows()
        if any(
            abs(row.get(column, np.nan)) >= _EXTREME_INTERCEPT
            for column in ("active_calibration_intercept", "calibration_intercept")
        )
    ]
    if not extreme:
        return []
    return [
        f"{listed(extreme)}: a calibration intercept of {_EXTREME_INTERCEPT:g} or more either "
        "way means probabilities pushed to 0 and 1 (near separation), not an offset to "
        "correct: badly calibrated, and the exact value depends on where the probabilities "
        "are clipped (docs/validation.md)"
    ]


def _option_problems(
    model: Any, tuning: Any, peers: Any, n_jobs: Any, progress: Any
) -> list[Problem]:
    """What is wrong with cross_validate's options, before any fit (each gave a bare
    TypeError, AttributeError or joblib's ValueError, some after the folds were fitted)."""
    problems = []
    if tuning is not None:
        known = set(model.get_params()) if hasattr(model, "get_params") else set()
        if not isinstance(tuning, Mapping):
            problems.append(
                Problem(
                    "tuning",
                    None,
                    "tuning must map a parameter to the values to try, such as "
                    f"{{'max_depth': [1, 2, 3]}}; got {short_repr(tuning)}",
                )
            )
        else:
            for name, values in tuning.items():
                if known and name not in known:
                    problems.append(
                        Problem(
                            "tuning",
                            None,
                            f"tuning names {short_repr(name)}, which is no parameter of "
                            f"{type(model).__name__}" + _did_you_mean(name, sorted(known)),
                        )
                    )
                if (
                    isinstance(values, str | bytes | Mapping)
                    or not isinstance(values, Sequence | np.ndarray)
                    or not len(values)
                ):
                    problems.append(
                        Problem(
                            "tuning",
                            None,
                            f"tuning[{short_repr(name)}] must list the values to try; got "
                            f"{short_repr(values)}",
                        )
                    )
    if (problem := flag_problem("peers", peers)) is not None:
        problems.append(problem)
    if not isinstance(progress, str) and (problem := flag_problem("progress", progress)):
        problems.append(problem)
    if n_jobs is not None and (
        isinstance(n_jobs, bool)
        or not isinstance(n_jobs, Integral)
        or not (-1024 <= n_jobs <= 1024 and n_jobs != 0)
    ):
        problems.append(
            Problem(
                "n_jobs",
                None,
                f"n_jobs={short_repr(n_jobs)} is not None or a whole number from 1 to 1,024 "
                "(or -1 for every core, -2 for all but one...)",
            )
        )
    return problems


def cross_validate(
    model: Any,
    data: pd.DataFrame,
    *,
    outcome: str | None = None,
    scheme: str = "leave_one_trial_out",
    n_splits: int = 5,
    tuning: Mapping[str, Sequence[Any]] | None = None,
    peers: bool = True,
    n_bootstraps: int = 1000,
    seed: int = 0,
    progress: bool | str = False,
    n_jobs: int | None = -1,
) -> ValidationResult:
    """Validate a model out of fold, with peers and (on simulated data) the oracle.

    Parameters
    ----------
    model : OutcomeModel
        Cloned for every fold.
    data : DataFrame
        A validated patient table with the outcome (and ``trial_id`` for grouped schemes).
    outcome : str, optional
        Defaults to ``model.outcome``.
    scheme : {"stratified_kfold", "grouped_kfold", "leave_one_trial_out"}
        Default ``"leave_one_trial_out"``. Leave-one-trial-out validates across trials, as
        Chekroud 2016 did for antidepressants; grouped k-fold keeps each trial in one fold.
        Stratified k-fold keeps a patient's rows (the periods of a crossover) in one fold.
    n_splits : int, default=5
        Folds for the k-fold schemes.
    tuning : mapping of parameter to values, optional
        Nested cross-validation: in every outer fold a grid search over these OutcomeModel
        parameters (inner 3-fold, log-loss; grouped by trial, or by patient, whenever the
        outer folds are) picks the model.
    peers : bool, default=True
        Also validate :func:`peer_models` on the same folds.
    n_bootstraps : int, default=1000
        Replicates for the AUC intervals.
    seed : int, default=0
        Seed of the folds, the peers and the bootstrap.
    progress : bool or str, default=False
        Show a progress bar over completed folds (on stderr); a string labels it.
    n_jobs : int or None, default=-1
        Folds fitted at once, in worker processes (-1: one per core). Each model then uses
        one thread, so the cores are not oversubscribed.

    Returns
    -------
    ValidationResult

    Raises
    ------
    ValidationError
        Before any training, when the outcome is absent or has too few events for the
        scheme (see :func:`check_design`).

    Examples
    --------
    >>> from ketapredict import OutcomeModel, cross_validate, simulate_cohort
    >>> cohort = simulate_cohort(n=1500, seed=0)
    >>> result = cross_validate(OutcomeModel("response", n_estimators=100), cohort,
    ...                         scheme="stratified_kfold", n_splits=3, n_bootstraps=100)
    >>> list(result.metrics.index)  # doctest: +NORMALIZE_WHITESPACE
    ['OutcomeModel', 'logistic_regression', 'hist_gradient_boosting', 'xgboost_default',
     'logistic_regression_encoded', 'hist_gradient_boosting_encoded',
     'xgboost_default_encoded', 'oracle']
    >>> bool(0.6 < result.metrics.loc["oracle", "within_arm_auc"] < 0.8)  # not arm membership
    True
    """
    problems = _resampling_problems(n_bootstraps, seed)
    if not (hasattr(model, "fit") and hasattr(model, "get_params")):
        problems.append(
            Problem(
                "model",
                None,
                "model must be an unfitted estimator such as OutcomeModel('response'); got "
                f"{type(model).__name__}",
            )
        )
    problems += courses_table_problems(data)
    problems += _option_problems(model, tuning, peers, n_jobs, progress)
    if problems:
        raise ValidationError(problems, "arguments")
    outcome = outcome if outcome is not None else getattr(model, "outcome", None)
    if not isinstance(outcome, str) or not outcome:
        raise ValidationError(
            [
                Problem(
                    "outcome",
                    outcome,
                    f"name the outcome: outcome='response', or a model's; got "
                    f"{short_repr(outcome)}",
                )
            ],
            "arguments",
        )
    kept, y, dropped = check_design(data, outcome, scheme, n_splits)
    splitter = _splitter(scheme, n_splits, seed)
    grouped = scheme in ("grouped_kfold", "leave_one_trial_out")
    groups = kept["trial_id"].astype(str).to_numpy() if grouped else None
    patients = crossover_patients(kept)
    if not grouped and patients is not None:
        # a crossover patient has a row per period: keep both in one fold
        splitter = _splitter("grouped_kfold", n_splits, seed)
        groups = patients
    splits = list(splitter.split(kept, y, groups))
    if tuning and groups is not None:
        fewest = min(len(np.unique(groups[train])) for train, _ in splits)
        if fewest < 3:
            raise ValidationError(
                [
                    Problem(
                        "tuning",
                        dict(tuning),
                        f"nested tuning with scheme={scheme!r} splits each training fold "
                        f"into 3 groups, but one training fold holds only {fewest}; use more "
                        "trials (or patients), fewer outer folds, or no tuning",
                    )
                ],
                "validation",
            )
    candidates = _candidates(model, kept, seed, peers)
    oof = {name: np.full(len(y), np.nan) for name in candidates}
    fold_of = np.empty(len(y), dtype=int)
    for k, (_, test) in enumerate(splits):
        fold_of[test] = k

    def fit_fold(k: int) -> list[tuple[str, np.ndarray, Any]]:
        train, test = splits[k]
        found = []
        for name, candidate in candidates.items():
            estimator = _single_threaded(clone(candidate))
            if name == "OutcomeModel" and tuning:
                inner_groups = None if groups is None else groups[train]
                estimator = _grid_search(estimator, tuning, seed, inner_groups)
                estimator.fit(kept.iloc[train], y[train], groups=inner_groups)
            else:
                estimator.fit(kept.iloc[train], y[train])
            chosen = (
                (estimator.best_params_, _tied(estimator))
                if name == "OutcomeModel" and tuning
                else None
            )
            found.append((name, estimator.predict_proba(kept.iloc[test])[:, 1], chosen))
        return found

    from joblib import Parallel, delayed

    # worker processes, not threads: the encoders' pandas work holds the GIL (35 s against
    # 45 s for the baseline experiment on 2 cores). Each worker's models use one thread.
    with _workers_die_with_parent():
        fitted: Iterable = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(fit_fold)(k) for k in range(len(splits))
        )
    if progress:
        from tqdm.auto import tqdm

        label = progress if isinstance(progress, str) else outcome
        # a bar for a person watching (a terminal or a notebook), none in a log or a pipe,
        # where its redrawn lines would run into the next output
        watched = sys.stderr.isatty() or "ipykernel" in sys.modules
        fitted = tqdm(
            fitted, total=len(splits), desc=label, unit="fold", leave=False, disable=not watched
        )
    chosen, tied = [], 0
    for k, found in enumerate(fitted):
        for name, p, params in found:
            oof[name][splits[k][1]] = p
            if params is not None:
                chosen.append(params[0])
                tied += params[1]
    truth = f"p_{outcome}"
    if truth in kept.columns and kept[truth].notna().all():
        oof["oracle"] = kept[truth].to_numpy(dtype=float)

    arm = arm_labels(kept)
    # a clinician ranks patients with one model: where the folds split an arm (stratified
    # k-fold), its patients are ranked within arm and fold, each group scored by one
    # fold's model. Pooling several models' predictions within an arm mixes their offsets
    # and lowers the AUC below every fold's (0.642 against 0.70-0.73 on 1,500 courses).
    split = pd.Series(fold_of).groupby(arm).nunique().gt(1).any()
    if split:
        arm = np.array([f"{a} / fold {k}" for a, k in zip(arm, fold_of, strict=True)], object)
    design = {
        "arm": arm,
        "active": active_drug(kept),
        # one trial: nothing between trials to resample, so patients
        "cluster": (
            kept["trial_id"].astype(str).to_numpy()
            if "trial_id" in kept and len(pd.unique(kept["trial_id"])) > 1
            else None
        ),
    }
    metrics = pd.DataFrame(
        {
            name: score_predictions(y, p, **design, n_bootstraps=n_bootstraps, seed=seed)
            for name, p in oof.items()
        }
    ).T.astype(dict.fromkeys(_COUNT_METRICS, "int64"))
    fold_rows = []
    for name, p in oof.items():
        for k in range(len(splits)):
            inside = fold_of == k
            scores = score_predictions(
                y[inside],
                p[inside],
                arm=design["arm"][inside],
                active=design["active"][inside],
                n_bootstraps=0,
            )
            fold_rows.append(
                {
                    "model": name,
                    "fold": k,
                    "trial": _fold_trial(kept, inside),
                    **{m: scores[m] for m in _FOLD_METRICS},
                }
            )
    curve = pd.concat({name: net_benefit(y, p)["model"] for name, p in oof.items()}, axis=1)
    curve = curve.join(net_benefit(y, oof["OutcomeModel"])[["treat_all", "treat_none"]])
    subgroup_predictions = {k: v for k, v in oof.items() if k in ("OutcomeModel", "oracle")}
    predictions = pd.DataFrame(
        {
            # the row's position in the table given (rows without the outcome were left
            # out), so the predictions join back to it: data.iloc[row]
            "row": np.flatnonzero(data[outcome].notna().to_numpy()),
            "fold": fold_of,
            outcome: y,
            **{f"p_{name}": p for name, p in oof.items()},
        }
    )
    # a fold's row is a group too (under leave-one-trial-out, a trial's): judged with the
    # subgroups, so that neither table gives away what the other withholds
    variables = {**subgroup_variables(kept), "fold": fold_of}
    withheld = withheld_subgroups(variables, courses_per_patient=courses_per_patient(kept))
    fold_metrics = pd.DataFrame(fold_rows)
    fold_metrics["withheld"] = [("fold", k) in withheld for k in fold_metrics["fold"]]
    return ValidationResult(
        outcome=outcome,
        scheme=scheme,
        metrics=metrics,
        fold_metrics=fold_metrics,
        decision_curve=curve,
        subgroups=subgroup_metrics(
            kept, y, subgroup_predictions, ranked_within=arm, withheld=withheld
        ),
        predictions=predictions,
        rows_left_out=dropped,
        extras={"tuned_parameters": chosen, "folds_tied": tied} if tuning else {},
        resampled="patients" if design["cluster"] is None else "trials, then patients",
        ranked_within="arm and fold" if split else "arm",
        courses_per_patient=courses_per_patient(kept),
    )


# the metrics that count courses, arms or events: whole numbers in every table
_COUNT_METRICS = ("within_arm_arms", "within_arm_n", "active_n", "active_events", "n", "events")
_FOLD_METRICS = ("n", "events", "within_arm_auc", "active_ece", "auc", "pr_auc", "brier", "ece")


def _workers_die_with_parent():
    """A joblib configuration whose loky worker processes exit when their parent dies.

    loky keeps its workers for reuse (5 minutes idle by default) and does not watch the
    parent: a ``ketapredict train`` killed with SIGKILL left its workers running (all four
    processes, workers and resource trackers, still alive 30 s later). Each worker here
    starts a thread that exits the worker within half a second of its parent's death
    (:func:`_exit_with_parent`). Only joblib's default backend (loky) is configured; a
    backend the caller chose with ``joblib.parallel_config`` is left alone.
    """
    import os
    from contextlib import nullcontext

    from joblib import parallel_config
    from joblib._parallel_backends import LokyBackend
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if type(backend) is not LokyBackend:
        return nullcontext()
    return parallel_config(backend="loky", initializer=_exit_with_parent, initargs=(os.getpid(),))


def _exit_with_parent(parent: int) -> None:
    """Initializer of a joblib worker: exit as soon as ``parent`` is no longer its parent.

    A process whose parent dies is handed to another (init, or a subreaper), so its parent
    pid changes; polling it is portable and works whichever thread of the parent started
    the worker (Linux's ``PR_SET_PDEATHSIG`` fires when that *thread* ends).
    """
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        # nobody is left to take the results: exit at once, without cleanup that could hang
        os._exit(1)

    threading.Thread(target=watch, name="ketapredict-parent-watch", daemon=True).start()


def _fold_trial(kept: pd.DataFrame, inside: np.ndarray) -> str:
    """The held-out trial of a fold, or an empty string when a fold mixes trials."""
    if "trial_id" not in kept.columns:
        return ""
    trials = kept["trial_id"].to_numpy()[inside]
    return str(trials[0]) if len(trials) and (trials == trials[0]).all() else ""


def _candidates(model: Any, frame: pd.DataFrame, seed: int, peers: bool) -> dict[str, Any]:
    """OutcomeModel and, with ``peers``, the peers on its feature set and outcome."""
    candidates: dict[str, Any] = {"OutcomeModel": model}
    if peers:
        candidates.update(
            peer_models(
                frame,
                seed,
                features=getattr(model, "features", None),
                outcome=getattr(model, "outcome", None),
            )
        )
    return candidates


def _single_threaded(estimator: Any) -> Any:
    """Limit an XGBoost-based estimator (or a pipeline ending in one) to one thread; joblib
    limits the others' native threads in its workers."""
    from xgboost import XGBClassifier

    from .models import OutcomeModel

    target = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if isinstance(target, XGBClassifier | OutcomeModel):
        target.set_params(n_jobs=1)
    return estimator


def tune_parameters(
    model: Any,
    data: pd.DataFrame,
    grid: Mapping[str, Sequence[Any]],
    *,
    scheme: str = "stratified_kfold",
    seed: int = 0,
) -> dict[str, Any]:
    """The grid's parameters that the final model is fitted with: the same grid search as
    each outer fold of nested cross-validation (:func:`cross_validate` with ``tuning``), on
    every course with the outcome.

    Nested cross-validation scores the *procedure* "tune, then fit"; the model to keep goes
    through the same procedure on all the data, so the metrics describe how it was made
    (Cawley and Talbot 2010, J Mach Learn Res 11:2079).

    Parameters
    ----------
    model : OutcomeModel
        Unfitted; its other parameters stay as they are.
    data : DataFrame
        The patient table (rows without the outcome are left out).
    grid : mapping of str to sequence
        Parameter values to try.
    scheme : str, default="stratified_kfold"
        The outer scheme: with a grouped one the inner split keeps trials whole, as it
        does in every outer fold; crossover patients are always kept whole.
    seed : int, default=0
        Seed of the inner split (the outer folds' own, as in :func:`cross_validate`).

    Returns
    -------
    dict
        The chosen value of each parameter of ``grid``.
    """
    if scheme not in SCHEMES:
        raise ValidationError(
            [Problem("scheme", scheme, f"scheme={short_repr(scheme)} is not one of {SCHEMES}")],
            "validation",
        )
    grouped = scheme in ("grouped_kfold", "leave_one_trial_out")
    if grouped and "trial_id" not in data.columns:
        raise ValidationError(
            [Problem("trial_id", None, f"scheme={scheme!r} groups by trial_id, which the data "
                     "does not have")],
            "data",
        )  # fmt: skip
    # the inner split's needs: 3 folds, of whole trials when the outer folds are
    kept, y, _ = check_design(
        data, model.outcome, "grouped_kfold" if grouped else "stratified_kfold", 3
    )
    groups = kept["trial_id"].astype(str).to_numpy() if grouped else crossover_patients(kept)
    # the parameters only: the caller fits the model it keeps (with its replicates)
    search = _grid_search(clone(model), grid, seed, groups, refit=False)
    search.fit(kept, y, groups=groups)
    return {k: _plain(v) for k, v in search.best_params_.items()}


def _tied(search: Any) -> bool:
    """Whether every candidate of a fitted grid search scored the same: its choice is then
    the grid's first values, and the parameters changed nothing."""
    scores = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
    return len(scores) > 1 and bool(np.ptp(scores) <= 1e-12 * max(1.0, np.abs(scores).max()))


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (JSON, MLflow params)."""
    return value.item() if isinstance(value, np.generic) else value


def _grid_search(
    model: Any,
    grid: Mapping[str, Sequence[Any]],
    seed: int,
    groups: np.ndarray | None = None,
    refit: bool = True,
):
    """The inner loop of nested cross-validation: grouped like the outer one (trials, or a
    crossover patient's periods), so tuning never scores on a group it trained on."""
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold

    if groups is None:
        inner = StratifiedKFold(3, shuffle=True, random_state=seed)
    else:
        inner = StratifiedGroupKFold(3, shuffle=True, random_state=seed)
    return GridSearchCV(
        model,
        {k: list(v) for k, v in grid.items()},
        cv=inner,
        scoring="neg_log_loss",
        refit=refit,
    )


def _held_out(
    kept: pd.DataFrame, y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training and held-out rows, stratified by outcome. When some
    patient has several rows (crossover periods), every period stays on one side (the other
    would tell the held-out one's outcome): the held-out rows are then one of
    ``round(1 / test_fraction)`` folds of whole patients, stratified as well as whole
    patients allow."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    patients = crossover_patients(kept)
    if patients is None:
        return tuple(
            train_test_split(
                np.arange(len(kept)), test_size=test_fraction, stratify=y, random_state=seed
            )
        )
    folds = StratifiedGroupKFold(max(2, round(1 / test_fraction)), shuffle=True, random_state=seed)
    return next(folds.split(kept, y, patients))


def learning_curve(
    model: Any,
    data: pd.DataFrame,
    sizes: Sequence[int],
    *,
    outcome: str | None = None,
    repeats: int = 3,
    test_fraction: float = 0.3,
    peers: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """AUC, Brier score and ECE by training size, on one held-out part of ``data``.

    The held-out rows are patients of the same trials as the training rows (a crossover
    patient's periods stay on one side), so the curve measures learning within these
    trials, not transport to a new one (for that, validate with
    ``scheme="leave_one_trial_out"``).

    Parameters
    ----------
    model : OutcomeModel
        Cloned for every training sample.
    data : DataFrame
        Rows without the outcome are left out.
    sizes : sequence of int
        Training sizes, each at most the training part (1 - ``test_fraction`` of the rows).
    outcome : str, optional
        Defaults to ``model.outcome``.
    repeats : int, default=3
        Training samples drawn per size.
    test_fraction : float, default=0.3
        Share of the rows held out to score every model (with crossover patients, one of
        ``round(1 / test_fraction)`` folds of whole patients: a third for 0.3).
    peers : bool, default=True
        Also train the peers on each sample.
    seed : int, default=0
        Seed of the split, the samples and the peers.

    Returns
    -------
    DataFrame
        One row per (size, repeat, model): ``n_train``, ``repeat``, ``model``,
        ``within_arm_auc``, ``active_ece``, ``active_calibration_slope`` (among active-drug
        patients, see :func:`score_predictions`), ``auc``, ``brier``, ``ece``; the oracle
        when the data has the true probabilities.
    """
    outcome = outcome or model.outcome
    kept = data[data[outcome].notna()]
    y = check_outcome(kept[outcome], outcome, min_per_class=2)
    train, test = _held_out(kept, y, test_fraction, seed)
    too_big = [n for n in sizes if n > len(train)]
    if too_big:
        raise ValidationError(
            [
                Problem(
                    "sizes",
                    too_big,
                    f"training sizes {too_big} exceed the {len(train):,} training rows",
                )
            ],
            "learning curve",
        )
    rng = np.random.default_rng(seed)
    held_out = kept.iloc[test]
    design = {"arm": arm_labels(held_out), "active": active_drug(held_out)}
    rows = []
    for n in sizes:
        for repeat in range(repeats):
            chosen = rng.choice(train, size=n, replace=False)
            if len(np.unique(y[chosen])) < 2:
                continue
            candidates = _candidates(model, kept, seed, peers)
            for name, candidate in candidates.items():
                fitted = clone(candidate).fit(kept.iloc[chosen], y[chosen])
                p = fitted.predict_proba(kept.iloc[test])[:, 1]
                scores = score_predictions(y[test], p, **design, n_bootstraps=0)
                rows.append(
                    {
                        "n_train": n,
                        "repeat": repeat,
                        "model": name,
                        **{m: scores[m] for m in _CURVE_METRICS},
                    }
                )
    truth = f"p_{outcome}"
    if truth in kept.columns and kept[truth].notna().all():
        scores = score_predictions(y[test], kept[truth].to_numpy()[test], **design, n_bootstraps=0)
        for n in sizes:
            rows.append(
                {
                    "n_train": n,
                    "repeat": 0,
                    "model": "oracle",
                    **{m: scores[m] for m in _CURVE_METRICS},
                }
            )
    return pd.DataFrame(rows)


_CURVE_METRICS = (
    "within_arm_auc",
    "active_ece",
    "active_calibration_slope",
    "auc",
    "brier",
    "ece",
)

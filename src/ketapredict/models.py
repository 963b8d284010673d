"""Outcome models: feature encoder + gradient-boosted trees + probability calibration.

:class:`OutcomeModel` predicts one outcome (response, remission, cognitive decline,
dissociation). Fitting it:

1. fills each missing optional baseline field with one draw from its distribution given
   the patient's recorded fields (:class:`~ketapredict.imputation.BaselineImputer`), so the
   trees never learn "missing" as a sign of the trial a patient came from; at prediction, a
   patient with missing fields is scored on many such draws and the probabilities averaged
   (the missing fields integrated out);
2. encodes the patient table with a feature set (:func:`ketapredict.load_feature_set`);
3. fits a linear component: a penalised logistic regression on the standardised features
   and each patient feature's interaction with the active drug, its penalty chosen by
   cross-validated log-loss (within an arm the true log-odds of the virtual cohort are
   close to linear in the patient's predictors, which trees approximate with many small
   steps: at 1,000 courses a linear model ranked patients within arm better than the trees
   alone; benchmarks/learning_curve.py); with ``linear="dose_time"`` also each patient
   feature's interactions with the dose and the time (:data:`DOSE_TIME_MODIFIERS`). When
   events are too few for that regression (fewer than 10 per term) and the table holds the
   measurement the outcome is cut from (the endpoint MADRS, the change in cognition, the
   CADSS; :func:`ketapredict.schema.outcome_measure`), the patient terms' direction is
   learned from that measurement by ridge regression, and only their scale from the
   yes/no outcome: every course then informs the direction, not only the few near the
   cut-off (dichotomising throws most of a measurement's information away: Altman and
   Royston 2006, BMJ 332:1080); the regimen's weights still come from the outcome
   (:func:`_measured_coef`). With about 34 events of cognitive decline in 3,000 courses,
   this raised the within-arm AUC from 0.747 to 0.785 (benchmarks/learning_curve.py, 5
   repeats). With so few events the linear component then stands alone: no trees (step 4)
   are boosted from it, as they would learn from the yes/no outcome alone;
4. cross-fits ``calibration_folds`` XGBoost models boosted from that linear margin, each
   trained on the other folds and watched on its own held-out fold (a crossover patient's
   periods in one fold, :func:`ketapredict.schema.crossover_patients`), their trees
   monotone where the pharmacology is certain (:data:`MONOTONE`) and, after a measurement
   taken with events enough for trees (``measurement=True``), in each patient feature's
   direction there (the trees bend an effect but never reverse it); the number of boosting
   rounds is the one with the lowest held-out log-loss averaged over folds (as
   ``xgboost.cv`` chooses it; 0 when the linear component alone is best), and the held-out
   margins at that round are the out-of-fold margins;
5. trains the final XGBoost model on every row for that number of rounds;
6. fits a one-dimensional calibrator (Platt's sigmoid, or isotonic) on the out-of-fold
   margins, so it never sees a margin the trees were trained on.

The result is a linear component, one booster and one monotone map from their margin to a
probability: SHAP values on the margin are exact (the linear terms plus TreeSHAP of the
trees), and the whole model saves as JSON without pickle.
"""

from __future__ import annotations

import difflib
import warnings
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from .encoding import parse_feature_set, sources
from .exceptions import Problem, ValidationError, short_repr
from .features import FeatureEncoder
from .imputation import BaselineImputer
from .schema import (
    STRICT_CUTOFFS,
    assessment_day,
    check_outcome,
    column,
    columns,
    contract_part,
    crossover_patients,
    outcome_measure,
    validate,
    whole_number_problem,
)
from .trees import (
    calibrated_log_odds,
    expit,
    linear_margin,
    linear_terms,
    logit,
    modifier_values,
    rounded_outward,
)

__all__ = ["DOSE_TIME_MODIFIERS", "MONOTONE", "OutcomeModel", "outcome_models"]


def _log_losses(y: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """Each row's log-loss of a margin (log-odds), clipped as XGBoost's ``logloss``."""
    p = np.clip(expit(margin), 1e-15, 1 - 1e-15)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def _rows(values: Any, rows: np.ndarray) -> Any:
    """The rows at ``rows`` (positions) of a table, a Series (keeping its index) or an
    array; None stays None."""
    if values is None:
        return None
    if isinstance(values, pd.DataFrame | pd.Series):
        return values.iloc[rows]
    return np.asarray(values)[rows]


def _bootstrap_counts(
    n_rows: int, groups: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """How many times each row is drawn in one bootstrap resample: rows drawn with
    replacement, or with ``groups`` (crossover patients) patients drawn with replacement,
    each with all their rows (a cluster bootstrap, as the periods of one patient are not
    independent)."""
    if groups is None:
        return np.bincount(rng.integers(0, n_rows, n_rows), minlength=n_rows)
    _, patient = np.unique(groups, return_inverse=True)
    n = int(patient.max()) + 1
    return np.bincount(rng.integers(0, n, n), minlength=n)[patient]


def _measured_coef(
    design: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    measure: np.ndarray,
    alpha: float,
    schedule: np.ndarray,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float]:
    """Coefficients and intercept on the log-odds scale of a linear component whose
    patient terms come from a ridge regression of the measurement, and the slope of their
    map to log-odds.

    The ridge's patient terms (every column but ``schedule``) give the direction. A
    logistic regression of ``y`` on their out-of-fold prediction (:data:`_MEASURE_FOLDS`
    folds, so the ridge's fit to its own rows does not steepen the slope) and on the
    ``schedule`` columns gives that slope and the schedule's own weights: the regimen may
    act on an outcome through a tail the measurement's mean barely shows (harm in a
    susceptible subset, CALIBRATION.md G3). With the schedule's weights from the ridge too,
    at 8,000 courses the arms at highest risk of cognitive decline were predicted at 84% of
    their true risk, with them from the outcome at 93% (the outcome's own regression: 94%),
    and cognitive decline ranked within arm as well or better at every size
    (benchmarks/learning_curve.py). The regimen's weights are shrunk (:data:`_LINK_C` on
    standardised columns), the patient score's slope hardly (:data:`_SCORE_SCALE`): with
    the regimen's weights nearly free (C = 1) the bootstrap replicates disagreed on them,
    and the demo model's 90% interval of cognitive decline for a twice-weekly course
    spanned 0.2% to 23% (0.6% to 9.1% shrunk), with within-arm AUCs no better; choosing the
    penalty by cross-validation ranked worse at 300 courses. With ``groups`` (the patients
    of crossover periods) a patient's rows fall in one fold."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import GroupKFold, KFold

    def patient_terms(rows: np.ndarray) -> np.ndarray:
        fit = Ridge(alpha=alpha).fit(design[rows], measure[rows], sample_weight=weight[rows])
        beta = fit.coef_.copy()
        beta[schedule] = 0.0
        return beta

    known = ~np.isnan(measure) & (weight > 0)
    beta = patient_terms(np.flatnonzero(known))
    score = design @ beta
    splitter = (KFold if groups is None else GroupKFold)(
        _MEASURE_FOLDS, shuffle=True, random_state=0
    )
    enough = groups is None or len(set(groups)) >= _MEASURE_FOLDS
    if known.sum() >= 2 * _MEASURE_FOLDS and enough:
        for train, held_out in splitter.split(design, None, groups):
            score[held_out] = design[held_out] @ patient_terms(train[known[train]])
    center, spread = score.mean(), score.std()
    spread = (spread if spread > 1e-12 else 1.0) / _SCORE_SCALE
    link = LogisticRegression(C=_LINK_C, max_iter=2000).fit(
        np.column_stack([(score - center) / spread, design[:, schedule]]), y, sample_weight=weight
    )
    slope = float(link.coef_[0, 0]) / spread
    coef = slope * beta
    coef[schedule] = link.coef_[0, 1:]
    return coef, float(link.intercept_[0]) - slope * center, slope


def _leave_one_out_errors(
    design: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    groups: np.ndarray | None,
    alphas: tuple[float, ...],
) -> np.ndarray:
    """For each penalty of ``alphas``, the weighted sum of squared errors of a ridge
    regression (with an unpenalised intercept, as :class:`sklearn.linear_model.Ridge`)
    when each patient is left out in turn: each row, or with ``groups`` each patient's rows
    together (the periods of a crossover patient share the patient's response, so leaving
    out one period while the other stays in rewards too weak a penalty).

    Exact, without refitting: with the rows scaled by the square root of their weight and
    centred, the hat matrix is ``H = r r' / sum(w) + U diag(s^2 / (s^2 + alpha)) U'`` (``r``
    the root weights; ``U``, ``s`` from the singular value decomposition of the centred
    design), and the residuals of a left-out patient ``g`` are ``(I - H_gg)^-1 e_g``: the
    deletion of several rows at once (Cook and Weisberg 1982, Residuals and Influence in
    Regression, sec. 3.6); one row at a time, Allen's PRESS (1974, Technometrics 16:125), the
    efficient leave-one-out of :class:`sklearn.linear_model.RidgeCV`. A patient the others
    cannot predict at all (``I - H_gg`` numerically singular, which only rounding of
    extreme weights reaches) makes that penalty's error infinite, so it is never chosen (with
    every penalty's infinite, :meth:`OutcomeModel._choose_alpha` takes the strongest).
    With every row from one patient, rows are left out one at a time.
    """
    root = np.sqrt(weight)
    total = weight.sum()
    Xc = (design - weight @ design / total) * root[:, None]
    yc = (y - weight @ y / total) * root
    U, s, _ = np.linalg.svd(Xc, full_matrices=False)
    Uy = U.T @ yc
    # the patients, by how many rows each has: one (patients, rows) array per size
    if groups is None or len(set(groups)) < 2:
        blocks = [np.arange(len(y))[:, None]]
    else:
        _, patient = np.unique(groups, return_inverse=True)
        order = np.argsort(patient, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(patient[order]) != 0])
        sizes = np.diff(np.r_[starts, len(y)])
        blocks = [order[starts[sizes == k][:, None] + np.arange(k)] for k in np.unique(sizes)]
    parts = [(rows, U[rows], root[rows][:, :, None] * root[rows][:, None, :] / total)
             for rows in blocks]  # fmt: skip
    errors = np.zeros(len(alphas))
    for k, alpha in enumerate(alphas):
        shrink = s**2 / (s**2 + alpha)
        residual = yc - U @ (shrink * Uy)
        for rows, u, intercept in parts:
            if rows.shape[1] == 1:  # one row each: (1 - h_ii)^-1 e_i
                kept = 1.0 - (u[:, 0] ** 2 @ shrink + intercept[:, 0, 0])
                if (kept <= 1e-12).any():
                    errors[k] = np.inf
                    break
                errors[k] += float(((residual[rows[:, 0]] / kept) ** 2).sum())
                continue
            left = u * np.sqrt(shrink)
            kept = np.eye(rows.shape[1]) - (np.einsum("gia,gja->gij", left, left) + intercept)
            if (np.linalg.cond(kept) > 1e12).any():
                errors[k] = np.inf
                break
            held_out = np.linalg.solve(kept, residual[rows][:, :, None])
            errors[k] += float((held_out**2).sum())
    return errors


# linear="dose_time": the regimen features that change a patient feature's weight, as
# (feature, read as log(1 + x), only on the active drug). Exposure and time since the last
# session shape the drug's part of the outcome; the assessment day and a new oral
# antidepressant shape the improvement every arm shares (CALIBRATION.md C2, C4).
DOSE_TIME_MODIFIERS = (
    ("racemic_iv_equivalent_mg_per_kg", True, True),
    ("days_after_last_session", True, True),
    ("endpoint_day", True, False),
    ("new_oral_antidepressant", False, False),
)

# Monotone constraints, only where the pharmacology is certain (feature -> +1: risk never
# falls as the feature rises).
MONOTONE: dict[str, dict[str, int]] = {
    # Dissociation rises with dose and with how fast it enters the blood (Fava 2020, A7;
    # route differences, seed review 002, B6).
    "dissociation": {
        "peak_exposure_mg_per_kg_per_h": 1,
        "racemic_iv_equivalent_mg_per_kg": 1,
    },
    # Lasting cognitive deficits come with frequent use (seed review 002, B7) and grow with
    # cumulative exposure (DESIGN.md).
    "cognitive_decline": {
        "weekly_exposure_mg_per_kg": 1,
        "cumulative_exposure_mg_per_kg": 1,
    },
    # Response and remission get none: the dose-response flattens above 0.5 mg/kg (Fava
    # 2020) and may turn at anaesthetic doses, and timing interacts with the course.
}

# The fewest events (and non-events) a fit accepts: two folds need one of each to hold out.
# With few events the model uses fewer folds; whether that many events make a useful model
# is for the validation scheme to judge (ketapredict.evaluate checks it, with counts).
MIN_EVENTS = 2
# min_child_weight="auto": a leaf must carry the Hessian weight of this many patients at the
# outcome's base rate, k * ybar * (1 - ybar). A fixed weight does not fit outcomes of very
# different frequency: 5 lets response (45%) split, but asks about 150 patients per leaf of
# cognitive decline (3.5%), which then never splits (benchmarks/model_defaults.py).
_LEAF_PATIENTS = 20
# Ridge penalties the linear component chooses from (leaving one patient out,
# _leave_one_out_errors) when it learns from the outcome's measurement. For cognitive
# decline in the virtual cohort it chose 316 or 1,000 at 300 courses, 100-316 at 1,000,
# 316 at 3,000 and 10-316 at 10,000 (5 repeats each, standardised features).
_RIDGE_ALPHA = tuple(np.logspace(-1, 5, 13))
# measurement="auto": the measurement is used while the rarer class has fewer than this many
# courses per linear term, the classic floor for a stable logistic regression (Peduzzi et al.
# 1996, J Clin Epidemiol 49:1373). Above it the outcome's own regression is the better
# guide: under leave-one-trial-out on 8,000 courses (the demo experiment), response from the
# measurement ranked within arm as well (0.687 against 0.685) but was calibrated worse
# across regimens (ECE among active-drug patients 0.057 against 0.038, slope 0.64 against
# 0.82): one map from the measurement to log-odds serves every regimen's cut-off only
# roughly, and a trial's regimen unseen in training gets no tree to correct it.
# Below it, the trees are not fitted either: they learn from the yes/no outcome alone, and
# flexible learners need many more events per variable than a logistic regression (van der
# Ploeg, Austin and Steyerberg 2014, BMC Med Res Methodol 14:137). At 3,000 courses of the
# virtual cohort (31-39 cognitive declines) early stopping chose 8-69 rounds by noise, and
# the trees lowered the within-arm AUC from 0.786 to 0.780 (benchmarks/learning_curve.py).
_EVENTS_PER_TERM = 10
# The largest penalty or leaf weight a parameter may take (see _parameter_constraints):
# XGBoost holds them as 32-bit floats (at most 3.4e38; 1e308 is "out of range" at fit).
_MAX_PENALTY = 1e30
# Folds of the out-of-fold measurement predictions that the logistic map to log-odds is
# fitted on (an in-sample prediction is too spread, and the map too steep).
_MEASURE_FOLDS = 5
# The penalty (inverse) of the logistic regression that scales the measurement's patient
# terms and weighs the schedule (see _measured_coef).
_LINK_C = 0.1
# The patient score enters that regression at 10 times its standard deviation, so its own
# coefficient is penalised 100 times less than the regimen's weights: they are shrunk, it
# is not.
_SCORE_SCALE = 10.0
# Penalties (inverse L2 strength on standardised features) the linear component chooses from
# by cross-validated log-loss. Strong ones won at 1,000-10,000 courses of the virtual cohort
# (C = 0.01 for cognitive decline, 0.01-0.03 for response): about 70 correlated features.
_LINEAR_C = (0.003, 0.01, 0.03, 0.1, 0.3)
# Bootstrap replicates of one model, at most: each is a whole model, fitted and kept (and
# every prediction scores them all); 10**12 asked numpy for 7 TiB.
MAX_REPLICATES = 1_000


def _no_outcome_column(outcome: str, X: Any) -> Problem:
    """What to say when ``y`` is not given and ``X`` has no column ``outcome``."""
    if not isinstance(X, pd.DataFrame):  # scikit-learn's words, which its checks expect
        return Problem(
            outcome,
            None,
            "OutcomeModel requires y to be passed, but the target y is None and X is no table "
            f"with an {outcome!r} column",
        )
    present = [
        c
        for c in getattr(X, "columns", [])
        if isinstance(c, str) and c in columns("outcome") and column(c).kind == "bool"
    ]
    near = difflib.get_close_matches(outcome, present, n=1, cutoff=0.8)
    return Problem(
        outcome,
        None,
        f"X has no outcome column {outcome!r}"
        + (f" (did you mean {near[0]!r}?)" if near else "")
        + (f"; outcomes present: {', '.join(present)}" if present else "")
        + "; pass y, or an outcome X holds",
    )


def _check_outcome_role(outcome: str) -> None:
    """Refuse a contract column that is no outcome (a baseline field would be both the
    target and an input)."""
    try:
        role = column(outcome).role
    except KeyError:
        return  # not a contract column: a target of the caller's own
    if role != "outcome":
        outcomes = [c for c in columns("outcome") if column(c).kind == "bool"]
        raise ValidationError(
            [
                Problem(
                    "outcome",
                    outcome,
                    f"{outcome!r} is a {role} column, not an outcome; expected one of "
                    + ", ".join(outcomes),
                )
            ],
            "outcome",
        )


class ParameterError(ValidationError, InvalidParameterError):
    """A model parameter of the wrong type or range: a :class:`~ketapredict.ValidationError`
    that scikit-learn's tools also recognise as its own ``InvalidParameterError``."""


def _keeps_both(y: Any, X: Any, outcome: str, positions: np.ndarray) -> bool:
    """Whether the outcome at ``positions`` (``y``, else ``X``'s outcome column) holds two
    values."""
    if y is None:
        if not isinstance(X, pd.DataFrame) or outcome not in X.columns:
            return False  # refused by fit, with the reason
        y = X[outcome]
    return len(pd.unique(np.asarray(_rows(y, positions)).ravel())) > 1


class OutcomeModel(ClassifierMixin, BaseEstimator):
    """A calibrated gradient-boosted model of one outcome.

    Parameters
    ----------
    outcome : str, default="response"
        The outcome column: ``"response"``, ``"remission"``, ``"cognitive_decline"``,
        ``"dissociation"`` or another binary column of the table. Selects the default
        monotone constraints and is where ``fit`` finds ``y`` when none is given.
    features : str, path-like or None, default="core"
        Feature set (name in ``features/`` or ``.toml`` path). With None, ``X`` is used as
        already-encoded numeric features (any array-like).
    n_estimators : int, default=1000
        Most boosting rounds; early stopping picks fewer.
    learning_rate : float, default=0.05
    max_depth : int, default=2
        Shallow trees: clinical-size data support few interactions, and depth 2 (pairwise)
        matched or beat depth 3 and 4 from 300 to 3,000 patients for both outcomes.
    min_child_weight : float or "auto", default="auto"
        Minimum Hessian weight in a leaf. ``"auto"`` is the weight of 20 patients at the
        outcome's base rate, ``20 * ybar * (1 - ybar)``: about 5 for response, 0.7 for
        cognitive decline; a fixed 5 left the rarer outcome unable to split below about
        1,000 patients.
    subsample, colsample_bytree : float, default=0.8
    reg_lambda : float, default=5.0
        L2 penalty on leaf weights.
    reg_alpha : float, default=0.0
    early_stopping_rounds : int, default=40
        Rounds without improvement of a fold's held-out log-loss before it stops.
    calibration : {"sigmoid", "isotonic", "none"}, default="sigmoid"
        Map from margin to probability, fitted on out-of-fold margins. Sigmoid (Platt) has
        two parameters and suits hundreds of patients; isotonic needs thousands (it was
        worse than sigmoid at every size tried).
    calibration_folds : int, default=3
    linear : bool or "dose_time", default=True
        Boost the trees from a penalised logistic regression on the encoded features and
        their interactions with the active drug (``linear_``). False: trees alone.
        "dose_time": also each patient feature's interactions with the drug's exposure,
        the days since the last session, the assessment day and a newly started oral
        antidepressant (:data:`DOSE_TIME_MODIFIERS`): how a predictor's weight changes
        with dose and time, which one weight per feature cannot follow
        (``benchmarks/learning_curve.py --ceiling``).
    measurement : "auto" or bool, default="auto"
        Learn the linear component's direction from the measurement the outcome is cut
        from, when ``X`` holds it for at least half the rows and it agrees with ``y`` on
        every row (:func:`ketapredict.schema.outcome_measure`). "auto": only while the
        rarer class has fewer than 10 courses per linear term (with the 63 terms of the
        core feature set: cognitive decline below about 37,000 courses with a cognitive
        battery, response below about 1,600 courses, remission below about 2,800). True:
        whenever it can, with a warning when it cannot; False: from the yes/no outcome
        alone. ``measurement_`` says whether it was used. While the events are that few,
        a linear component stands alone, whether learned from the measurement or from the
        outcome: no trees are boosted from it (``n_rounds_`` is 0, ``few_events_`` is True),
        as their early stopping on so few events chooses rounds by noise.
    monotone : bool or dict, default=True
        True applies :data:`MONOTONE` for ``outcome`` and, when the linear component learned
        from the measurement, each patient feature's direction there (``monotone_``); a
        dict gives feature -> +1/-1; False applies none.
    random_state : int, numpy integer, RandomState or None, default=0
        Seeds the folds and the trees. The same integer (or a fresh ``RandomState`` with
        the same seed) gives the same model; None gives a new one each fit.
    n_jobs : int or None, default=None
        Threads for XGBoost (None: all cores).

    Attributes
    ----------
    min_child_weight_ : float
        The leaf weight used (``min_child_weight`` resolved).
    imputer_ : BaselineImputer or None
        The model of missing optional baseline fields given the recorded ones (None when
        ``features=None``: encoded features keep their NaN, which the trees route).
    imputer_n_ : int
        How many training courses ``imputer_`` was estimated from (0 without one; a
        RiskModel shares the imputer of its outcome fitted on the most).
    n_features_in_ : int
        The number of input columns ``fit`` read.
    feature_names_in_ : ndarray of str
        Those columns' names (the contract columns the feature set reads; absent for
        ``features=None`` on an array without names).
    encoder_ : FeatureEncoder or None
        The fitted feature encoder (None when ``features=None``).
    measurement_ : bool
        Whether the linear component learned its direction from the outcome's measurement.
    monotone_ : dict
        The trees' monotone constraints, feature -> +1 or -1.
    linear_ : dict or None
        The linear component: ``center`` and ``scale`` (standardisation), ``coef``,
        ``coef_active`` (interactions with the active drug, 0 for schedule features),
        ``active`` (the position of ``active_drug``, or None), ``intercept`` and the chosen
        penalty: ``C`` of the logistic regression; after a measurement also ``alpha`` of
        the ridge regression on it and ``slope``, the patient terms' map to log-odds;
        with ``linear="dose_time"`` also ``modifiers`` and ``coef_modifiers`` (one row per
        modifier); None with ``linear=False``. See
        :func:`ketapredict.trees.linear_terms`.
    booster_ : xgboost.XGBClassifier
        The final trees, trained on every row from the linear margin.
    n_rounds_ : int
        Boosting rounds of the final trees: lowest mean held-out log-loss over the folds
        (0: the linear component alone; the booster then holds one tree of zeros). Always
        0 while the rarer class has too few events beside a linear component (see
        ``measurement``).
    few_events_ : bool
        Whether that was so, and no trees were boosted for it.
    calibrator_ : dict
        ``{"method": "sigmoid", "a": ..., "b": ...}`` (p = 1 / (1 + exp(-(a m + b))) for
        margin m), ``{"method": "isotonic", "margins": [...], "probabilities": [...]}`` or
        ``{"method": "none"}``.
    feature_names_ : ndarray of str
        Encoded feature names, in booster order.
    classes_ : ndarray
        The two labels of ``y``, the non-event first: ``[False, True]`` for the contract's
        boolean outcomes, ``[0, 1]`` for 0/1 labels; :meth:`predict` returns them.

    Examples
    --------
    >>> from ketapredict import OutcomeModel, simulate_cohort
    >>> cohort = simulate_cohort(n=2000, seed=0)
    >>> model = OutcomeModel(outcome="response").fit(cohort)
    >>> p = model.predict_proba(cohort)[:, 1]
    >>> bool(((p > 0) & (p < 1)).all())
    True
    >>> model.calibrator_["method"]
    'sigmoid'
    """

    _parameter_constraints: ClassVar[dict] = {
        "outcome": [str],
        "features": [str, Path, None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, 1, closed="right")],
        "max_depth": [Interval(Integral, 1, 12, closed="both")],
        "min_child_weight": [Interval(Real, 0, _MAX_PENALTY, closed="both"), StrOptions({"auto"})],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
        # XGBoost keeps penalties as 32-bit floats (_MAX_PENALTY)
        "reg_lambda": [Interval(Real, 0, _MAX_PENALTY, closed="both")],
        "reg_alpha": [Interval(Real, 0, _MAX_PENALTY, closed="both")],
        "early_stopping_rounds": [Interval(Integral, 1, None, closed="left")],
        "calibration": [StrOptions({"sigmoid", "isotonic", "none"})],
        "calibration_folds": [Interval(Integral, 2, 10, closed="both")],
        "linear": ["boolean", StrOptions({"dose_time"})],
        "measurement": ["boolean", StrOptions({"auto"})],
        "monotone": ["boolean", dict],
        "random_state": ["random_state"],
        # joblib's convention: -1 all cores, -2 all but one...; 0 means nothing
        # (at most 1,024 either way: XGBoost refuses 10**12 with its own error)
        "n_jobs": [
            Interval(Integral, -1024, -1, closed="both"),
            Interval(Integral, 1, 1024, closed="both"),
            None,
        ],
    }

    def _validate_params(self) -> None:
        """scikit-learn's checks of the parameters' types and ranges, no true or false for a
        number (scikit-learn takes True as 1; XGBoost then refused ``subsample=True`` with its
        own error), and each ``monotone`` direction being -1, 0 or +1 (XGBoost reads nothing
        else, and says so only at fit). Faults raise :class:`ParameterError`."""
        try:
            super()._validate_params()
        except InvalidParameterError as error:
            raise ParameterError([Problem(None, None, str(error))], "model parameters") from None
        flags = [
            Problem(name, None, f"{name}={value!r}: expected a number, not true or false")
            for name, constraints in self._parameter_constraints.items()
            if isinstance(value := getattr(self, name), bool | np.bool_)
            and "boolean" not in constraints
        ]
        if flags:
            raise ParameterError(flags, "model parameters")
        if isinstance(self.monotone, dict):
            bad = {
                k: v
                for k, v in self.monotone.items()
                if not isinstance(k, str)
                or isinstance(v, bool)
                or not isinstance(v, Integral)  # XGBoost refuses 1.0
                or v not in (-1, 0, 1)
            }
            if bad:
                raise ParameterError(
                    [
                        Problem(
                            "monotone",
                            v,
                            f"monotone[{short_repr(k)}]={short_repr(v)}: expected -1 "
                            "(decreasing), 0 (free) or 1 (increasing) for a feature name",
                        )
                        for k, v in bad.items()
                    ],
                    "model parameters",
                )

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        # scikit-learn leaves out parameters at their defaults, and the default outcome
        # too: "OutcomeModel()" would not say what the model predicts
        text = super().__repr__(N_CHAR_MAX)
        if "outcome=" in text:
            return text
        head, rest = text.split("(", 1)
        return f"{head}(outcome={self.outcome!r}" + ("" if rest == ")" else ", ") + rest

    def __init__(
        self,
        outcome: str = "response",
        *,
        features: str | Path | None = "core",
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        max_depth: int = 2,
        min_child_weight: float | str = "auto",
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 5.0,
        reg_alpha: float = 0.0,
        early_stopping_rounds: int = 40,
        calibration: str = "sigmoid",
        calibration_folds: int = 3,
        linear: bool | str = True,
        measurement: bool | str = "auto",
        monotone: bool | dict = True,
        random_state: int | np.random.RandomState | None = 0,
        n_jobs: int | None = None,
    ):
        self.outcome = outcome
        self.features = features
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.linear = linear
        self.measurement = measurement
        self.monotone = monotone
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        return tags

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> OutcomeModel:
        """Fit the encoder, the trees and the calibrator.

        Parameters
        ----------
        X : DataFrame or array-like
            The patient table (all columns; the feature set picks its own), or encoded
            features when ``features=None``.
        y : array-like of bool or 0/1, optional
            The outcome; by default ``X[outcome]``. Missing values are an error: drop those
            rows first.
        sample_weight : array-like of float, optional
            Non-negative weight of each row, for the trees, their early stopping and the
            calibrator (for example inverse sampling weights). ``"auto"`` leaf weights scale
            with the mean weight, so a leaf still holds about 20 average patients. A row of
            weight 0 is left out, as if it were not given.

        Returns
        -------
        self

        Raises
        ------
        ValidationError
            If the outcome is missing, continuous or has more than two classes, or has fewer
            than two events or non-events; or the table lacks columns the feature set needs.
        """
        self._validate_params()
        _check_outcome_role(self.outcome)
        if (
            isinstance(y, pd.Series)
            and isinstance(X, pd.DataFrame)
            and not y.index.equals(X.index)
        ):
            # matched by position, a shuffled y would train on other patients' outcomes
            raise ValidationError(
                [
                    Problem(
                        "y",
                        None,
                        "y is a Series whose index differs from X's; align it (y.loc[X.index]) "
                        "or pass an array in X's row order",
                    )
                ],
                "outcome",
            )
        X = self._checked(X, fit=True)
        if y is not None and _num_samples(y) != _num_samples(X):
            # before the classes (a short y is no "only one class") and before rows of
            # weight 0 are left out (which would cut y to fit)
            raise ValidationError(
                [
                    Problem(
                        "y",
                        f"{_num_samples(y)} values",
                        f"y has {_num_samples(y)} values but X has {_num_samples(X)} rows: give "
                        "one outcome per row",
                    )
                ],
                "outcome",
            )
        if sample_weight is not None:
            given = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            kept = np.flatnonzero(given)
            if 0 < len(kept) < len(given) and _keeps_both(y, X, self.outcome, kept):
                # a row of weight 0 is a row not given (scikit-learn's convention): left out
                # of the imputer, the encoder's ranges and the cross-fitting folds too (when
                # a class keeps no weight, the check below says so)
                y = None if y is None else _rows(y, kept)
                return self.fit(_rows(X, kept), y, given[kept])
        # numpy integers and RandomState instances too (scikit-learn's convention)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        Z = self._encode(self._fill(X, fit=True, seed=seed), fit=True)
        if y is None:
            if not isinstance(X, pd.DataFrame) or self.outcome not in X.columns:
                raise ValidationError([_no_outcome_column(self.outcome, X)], "outcome")
            y = X[self.outcome]
        elif not isinstance(y, pd.Series):
            y = column_or_1d(y, warn=True)
        target, self.classes_ = check_outcome(
            y, self.outcome, min_per_class=MIN_EVENTS, return_classes=True
        )
        weight = _check_sample_weight(sample_weight, Z, dtype=np.float64, ensure_non_negative=True)
        weighted = [float(weight[target == k].sum()) for k in (1, 0)]
        if sample_weight is not None and min(weighted) <= 0:
            raise ValidationError(
                [
                    Problem(
                        "sample_weight",
                        None,
                        "sample_weight gives one class (the "
                        f"{'events' if weighted[0] <= 0 else 'non-events'}) a total weight of "
                        "0; a model needs both classes",
                    )
                ],
                "outcome",
            )
        # only relative weights matter: scaled to a mean of 1, the penalties (set for
        # unit-weight rows) mean the same whatever the weights' scale
        weight = weight / weight.mean()
        rate = np.average(target, weights=weight)
        self.min_child_weight_ = (
            _LEAF_PATIENTS * rate * (1 - rate) * weight.mean()
            if self.min_child_weight == "auto"
            else float(self.min_child_weight)
        )
        measure = self._measure(X, target)

        groups = crossover_patients(X)
        folds = self._folds(target, groups, seed)
        # the cross-fitted boosters take a float32 array: a fifth faster than a DataFrame
        array = Z.to_numpy(dtype=np.float32)
        X = Z.to_numpy(dtype=float)
        # the same modifiers (and training ranges) for the folds, the final fit and the
        # replicates, which are scored as one stack
        modifiers = self._modifiers(X, self._design_parts()[1])
        patient, active = self._design_parts()
        terms = len(patient) + (0 if active is None else patient.sum() * (1 + len(modifiers)))
        few_events = np.bincount(target[weight > 0]).min() < _EVENTS_PER_TERM * terms
        if measure is not None and self.measurement == "auto" and not few_events:
            measure = None  # enough events for the outcome's own regression
        self.measurement_ = measure is not None
        # the trees learn from the yes/no outcome alone: too few events for a linear
        # regression of it are too few for trees beyond the linear component, whether that
        # learned from the measurement or from the outcome (_EVENTS_PER_TERM); without a
        # linear component the trees are the model
        trees = not (few_events and self.linear)
        self.few_events_ = not trees
        if not self.linear:
            penalty = None
        elif measure is not None:
            penalty = self._choose_alpha(X, weight, modifiers, measure, groups)
        else:
            penalty = self._choose_penalty(X, target, weight, folds, modifiers)
        # the component on every row first: its directions constrain every booster's trees
        self.linear_ = self._fit_linear(X, target, weight, penalty, modifiers, measure, groups)
        self.monotone_ = self._monotone()
        curves, fold_boosters, first = [], [], []
        for train, held_out in folds:
            linear = self._fit_linear(
                X[train],
                target[train],
                weight[train],
                penalty,
                modifiers,
                _rows(measure, train),
                _rows(groups, train),
            )
            base = linear_margin(X, linear) if linear is not None else None
            if not trees:
                fold_boosters.append((None, held_out, base))
                continue
            booster = self._xgb(self.n_estimators, seed, early_stopping=True)
            booster.fit(
                array[train],
                target[train],
                sample_weight=weight[train],
                base_margin=None if base is None else base[train],
                eval_set=[(array[held_out], target[held_out])],
                sample_weight_eval_set=[weight[held_out]],
                base_margin_eval_set=None if base is None else [base[held_out]],
                verbose=False,
            )
            curves.append(booster.evals_result()["validation_0"]["logloss"])
            # round 0: the linear component alone (without one, never chosen)
            first.append(
                np.average(_log_losses(target[held_out], base[held_out]), weights=weight[held_out])
                if base is not None
                else np.inf
            )
            fold_boosters.append((booster, held_out, base))
        if trees:
            length = min(len(curve) for curve in curves)
            mean = np.mean([[f, *c[:length]] for f, c in zip(first, curves, strict=True)], axis=0)
            self.n_rounds_ = int(np.argmin(mean))
        else:
            self.n_rounds_ = 0
        out_of_fold = np.empty(len(target))
        for booster, held_out, base in fold_boosters:
            out_of_fold[held_out] = (
                base[held_out]
                if self.n_rounds_ == 0
                else booster.predict(
                    array[held_out],
                    output_margin=True,
                    base_margin=None if base is None else base[held_out],
                    iteration_range=(0, self.n_rounds_),
                )
            )
        self.booster_ = self._final_booster(array, target, weight, seed, self.linear_)
        self.calibrator_ = self._fit_calibrator(out_of_fold, target, weight)
        return self

    def describe(self) -> str:
        """What was fitted, in words: the linear component, the trees and the calibration
        (the "Model" section of a model card).

        Returns
        -------
        str

        Examples
        --------
        >>> from ketapredict import OutcomeModel, simulate_cohort
        >>> model = OutcomeModel("response").fit(simulate_cohort(n=1000, seed=0))
        >>> print(model.describe())  # doctest: +ELLIPSIS
        a linear component over ... encoded features ...; sigmoid calibration on ... margins
        """
        check_is_fitted(self)
        parts = []
        if self.linear_ is None:
            parts.append("no linear component")
        else:
            kind = "encoded features" if self.features is not None else "features"
            text = f"a linear component over {len(self.feature_names_)} {kind}"
            interactions = int(np.count_nonzero(self.linear_["coef_active"]))
            if interactions:
                text += (
                    f" and {interactions} interactions of patient features with the active drug"
                )
            if "coef_modifiers" in self.linear_:
                text += " and with dose and time"
            why = (
                "too few events for the outcome's own"
                if self.measurement == "auto"
                else "asked for"
            )
            text += (
                f", its patient terms from a ridge regression of the outcome's measurement "
                f"({why}), scaled by a logistic regression of the outcome"
                if self.measurement_
                else ", from a logistic regression of the outcome"
            )
            parts.append(text)
        if self.n_rounds_:
            parts.append(
                f"{self.n_rounds_} boosted trees of depth at most {self.max_depth}"
                + (" from its margin" if self.linear_ is not None else "")
                + (
                    " (the most allowed, n_estimators: held-out log-loss was still falling)"
                    if self.n_rounds_ >= self.n_estimators
                    else " (as many as held-out log-loss chose)"
                )
            )
        else:
            # a model restored from a file before few_events_ existed: said as far as known
            few = getattr(self, "few_events_", None)
            if few is None and self.measurement_ and self.measurement == "auto":
                few = True  # it took the measurement for want of events
            reason = {
                True: "too few events for them",
                False: "held-out log-loss chose none",
                None: "too few events, or held-out log-loss chose none",
            }[few]
            parts.append(f"no boosted trees ({reason})")
        day = None if self.encoder_ is None else self.encoder_.spec_.assessed_day
        if day is not None:
            when = f"{day * 24 * 60:.0f} minutes" if day < 1 else f"{day:g} days"
            parts.append(
                f"the dose schedule as of {when} after the first session starts (the "
                "outcome's own time, whatever the horizon)"
            )
        method = self.calibrator_["method"]
        parts.append(
            "no calibration"
            if method == "none"
            else f"{method} calibration on cross-fitted margins"
        )
        return "; ".join(parts)

    def replicates(
        self, X: Any, y: Any = None, n_replicates: int = 20, random_state: int = 0
    ) -> list[tuple[Any, dict[str, Any], Any]]:
        """Bootstrap replicates of the fitted model, for the uncertainty of its estimates.

        Each replicate trains this model's linear component (same penalty) and trees (same
        parameters and number of rounds) on a bootstrap resample of the rows (of the
        patients, each with all their periods, when some patient has several: crossover
        trials; unweighted: a ``sample_weight`` given to ``fit`` is not applied here), and
        calibrates its margins
        on the rows the resample left out (about 37%), so no replicate is calibrated on
        rows it was trained on. The spread of the replicates' calibrated log-odds for a
        patient estimates how much the estimate would move with another sample of the same
        size (Efron and Tibshirani 1993, An Introduction to the Bootstrap, ch. 6).

        Parameters
        ----------
        X : DataFrame
            The data the model was fitted on.
        y : array-like, optional
            Its outcome; by default ``X[outcome]``.
        n_replicates : int, default=20
            Bootstrap replicates, 1 to 1,000 (:data:`MAX_REPLICATES`).
        random_state : int, default=0
            Seed of the resamples and the replicates' trees (0 to 2**32 - 1).

        Returns
        -------
        list of (XGBClassifier, calibrator dict, linear component dict or None)
        """
        from joblib import Parallel, delayed

        check_is_fitted(self, "booster_")
        problems = [
            problem
            for problem in (
                whole_number_problem("n_replicates", n_replicates, 1, MAX_REPLICATES),
                whole_number_problem("random_state", random_state, 0, 2**32 - 1, none=True),
            )
            if problem is not None
        ]
        if problems:
            raise ValidationError(problems, "arguments")
        X = self._checked(X)
        # the same draws of the missing fields as the fitted model was trained on
        Z = self._encode(self._fill(X, fit=False, seed=getattr(self, "_seed", 0)))
        if y is None:
            y = X[self.outcome]
        target = check_outcome(y, self.outcome, min_per_class=MIN_EVENTS)
        rng = np.random.default_rng(random_state)
        groups = crossover_patients(X)
        draws = [
            (_bootstrap_counts(len(target), groups, rng), s)
            for s in rng.integers(2**31 - 1, size=n_replicates)
        ]

        array = Z.to_numpy(dtype=np.float32)

        values = Z.to_numpy(dtype=float)
        linear_ = self.linear_ or {}
        penalty = linear_.get("alpha", linear_.get("C"))
        modifiers = linear_.get("modifiers", [])
        measure = self._measure(X, target) if self.measurement_ else None
        if self.measurement_ and measure is None:
            raise ValueError(
                "replicates() needs the table the model was fitted on, with the measurement "
                f"of {self.outcome!r} its linear component was learned from."
            )

        def one(counts: np.ndarray, seed: int) -> tuple[Any, dict[str, Any], Any]:
            weight = counts.astype(float)
            kept = counts > 0
            linear = self._fit_linear(
                values[kept],
                target[kept],
                weight[kept],
                penalty,
                modifiers,
                _rows(measure, kept),
                _rows(groups, kept),
            )
            if linear is None and self.linear_ is not None:
                # a resample with one class has no regression of its own: keep the model's
                linear = self.linear_
            booster = self._final_booster(array, target, weight, int(seed), linear, n_jobs=1)
            left_out = counts == 0
            if np.unique(target[left_out]).size < 2:
                return booster, self.calibrator_, linear
            margin = self._margin_of(booster, array[left_out], linear)
            return booster, self._fit_calibrator(margin, target[left_out]), linear

        # threads: XGBoost releases the GIL while it trains, nothing is copied, and threads
        # end with the process (a backend chosen around this call is not used: worker
        # processes could outlive a killed parent)
        n_jobs = -1 if self.n_jobs is None else self.n_jobs
        return Parallel(n_jobs=n_jobs, backend="threading")(
            delayed(one)(counts, seed) for counts, seed in draws
        )

    def _folds(
        self, target: np.ndarray, groups: np.ndarray | None, seed: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The cross-fitting folds: as many as there are events to hold out, at most
        ``calibration_folds``, stratified by the outcome; with ``groups`` (crossover
        patients, :func:`ketapredict.schema.crossover_patients`) a patient's periods stay in
        one fold, so no out-of-fold margin was learned from the same patient's other period.
        Grouped folds that would leave a part without one class (a few patients hold all
        the events) fall back to ungrouped ones."""
        from sklearn.model_selection import StratifiedGroupKFold

        fewest = int(np.bincount(target).min())
        if groups is not None:
            # no more folds than patients of the rarer class
            n_folds = min(
                self.calibration_folds,
                *(len(set(groups[target == label])) for label in (0, 1)),
            )
            if n_folds >= 2:
                splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
                folds = list(splitter.split(target, target, groups))
                # every part, trained on and held out, with both classes
                if all(np.unique(target[part]).size == 2 for fold in folds for part in fold):
                    return folds
        splitter = StratifiedKFold(
            min(self.calibration_folds, fewest), shuffle=True, random_state=seed
        )
        return list(splitter.split(target, target))

    def _design_parts(self) -> tuple[np.ndarray, int | None]:
        """Which features are the patient's (they get an active-drug interaction), and the
        position of ``active_drug``."""
        names = list(self.feature_names_)
        if self.encoder_ is None or "active_drug" not in names:
            return np.zeros(len(names), bool), None
        encoders = self.encoder_.feature_map_["encoder"].reindex(names)
        return (encoders != "dose_schedule").to_numpy(), names.index("active_drug")

    def _modifiers(self, X: np.ndarray, active: int | None) -> list[dict[str, Any]]:
        """The modifiers of ``linear="dose_time"`` that the feature set has, each with its
        training range (see :func:`ketapredict.trees.modifier_values`)."""
        if self.linear != "dose_time" or active is None:
            return []
        names = list(self.feature_names_)
        out = []
        for name, log, on_drug in DOSE_TIME_MODIFIERS:
            if name in names:
                column = names.index(name)
                with np.errstate(all="ignore"):
                    low, high = np.nanmin(X[:, column]), np.nanmax(X[:, column])
                low, high = float(np.nan_to_num(low)), float(np.nan_to_num(high))
                out.append(
                    {"column": column, "low": low, "high": high, "log": log, "active": on_drug}
                )
        return out

    def _measure(self, X: Any, target: np.ndarray) -> np.ndarray | None:
        """The outcome's measurement (:func:`ketapredict.schema.outcome_measure`) when the
        linear component may learn from it: the feature set has patient features beside
        the dose schedule, the table has the measurement for at least half the rows, and
        it agrees with ``target`` wherever both are known, ties at the cut-off included (a
        ``y`` cut another way is not this measurement's outcome). With
        ``measurement=True`` a measurement that cannot be used is said in a warning."""
        if not (self.measurement and self.linear) or self.features is None:
            return None
        patient, active = self._design_parts()
        if active is None or not patient.any():
            reason = "the feature set has no active-drug flag or no patient feature"
        elif not isinstance(X, pd.DataFrame):
            reason = "X is not a patient table"
        else:
            measure = outcome_measure(X, self.outcome)
            if measure is None or len(measure) != len(target):
                reason = f"the table has no measurement of {self.outcome!r}"
            else:
                known = ~np.isnan(measure)
                event = measure > 0 if self.outcome in STRICT_CUTOFFS else measure >= 0
                if known.mean() < 0.5:
                    reason = f"the measurement of {self.outcome!r} is missing for most rows"
                elif (known & (event != (target == 1))).any():
                    reason = f"y is not {self.outcome!r} as its measurement defines it"
                else:
                    return measure
        if self.measurement is True:
            warnings.warn(
                f"OutcomeModel(measurement=True): not used, because {reason}; the linear "
                "component learns from the outcome alone (measurement_ is False).",
                UserWarning,
                stacklevel=3,
            )
        return None

    def _linear_design(
        self, X: np.ndarray, weight: np.ndarray, modifiers: list[dict[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The linear component's design: standardised features, each patient feature's
        interaction with the active drug and with each of ``modifiers``; and the centre
        and scale of the standardisation."""
        patient, active = self._design_parts()
        # weighted mean and SD over the recorded values (a value still missing sits at the
        # mean: term 0)
        seen_weight = np.where(np.isnan(X), 0.0, weight[:, None])
        total = np.maximum(seen_weight.sum(axis=0), 1e-12)
        center = (np.nan_to_num(X) * seen_weight).sum(axis=0) / total
        spread = np.sqrt((np.nan_to_num(X - center) ** 2 * seen_weight).sum(axis=0) / total)
        scale = np.where(spread > 1e-9, spread, 1.0)
        z = np.nan_to_num((X - center) / scale)  # within the training range already
        design = z if active is None else np.hstack([z, z[:, patient] * X[:, [active]]])
        moved = modifier_values(X, {"modifiers": modifiers, "active": active})
        if moved.shape[1]:
            design = np.hstack(
                [design, *(z[:, patient] * moved[:, [m]] for m in range(len(modifiers)))]
            )
        return design, center, scale

    def _fit_linear(
        self,
        X: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray,
        penalty: float | None,
        modifiers: list[dict[str, Any]],
        measure: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ) -> dict[str, Any] | None:
        """The linear component on :meth:`_linear_design` (see
        ketapredict.trees.linear_terms).

        Without ``measure``, a logistic regression of ``y`` with inverse penalty ``penalty``
        (C). With it, a ridge regression of the measurement with penalty ``penalty``
        (alpha) for the patient's terms, and a logistic regression of ``y`` for their scale
        and the schedule's weights (:func:`_measured_coef`).
        """
        if penalty is None or np.unique(y).size < 2:
            return None
        from sklearn.linear_model import LogisticRegression

        patient, active = self._design_parts()
        design, center, scale = self._linear_design(X, weight, modifiers)
        if measure is None:
            fit = LogisticRegression(C=penalty, max_iter=2000).fit(design, y, sample_weight=weight)
            coef, intercept = fit.coef_[0], float(fit.intercept_[0])
            chosen = {"C": float(penalty)}
        else:
            schedule = np.flatnonzero(~patient)  # the regimen's columns (no interactions)
            coef, intercept, slope = _measured_coef(
                design, y, weight, measure, penalty, schedule, groups
            )
            chosen = {"alpha": float(penalty), "C": _LINK_C, "slope": slope}
        coef_active = np.zeros(len(center))
        n_patient = int(patient.sum())
        if active is not None:
            coef_active[patient] = coef[len(center) : len(center) + n_patient]
        coef_modifiers = np.zeros((len(modifiers), len(center)))
        for m in range(len(modifiers)):
            start = len(center) + (m + 1) * n_patient
            coef_modifiers[m, patient] = coef[start : start + n_patient]
        # each feature's range among the patients fitted on (0 to 0 for one never recorded
        # there: NaN as +-inf, so that no "all-NaN slice" warning reaches the user)
        seen = X[weight > 0]
        low = np.where(np.isnan(seen), np.inf, seen).min(axis=0, initial=np.inf)
        high = np.where(np.isnan(seen), -np.inf, seen).max(axis=0, initial=-np.inf)
        low, high = np.where(np.isfinite(low), low, 0.0), np.where(np.isfinite(high), high, 0.0)
        # no patient's exact value is kept in the model file: not the oldest patient's age,
        # nor a weight that a dose in mg per kg (the dose over the weight) would give away
        low, high = rounded_outward(low, np.floor), rounded_outward(high, np.ceil)
        return {
            "low": low.tolist(),
            "high": high.tolist(),
            "center": center.tolist(),
            "scale": scale.tolist(),
            "coef": coef[: len(center)].tolist(),
            "coef_active": coef_active.tolist(),
            "active": active,
            **(
                {"modifiers": modifiers, "coef_modifiers": coef_modifiers.tolist()}
                if modifiers
                else {}
            ),
            "intercept": intercept,
            **chosen,
        }

    def _choose_alpha(self, X, weight, modifiers, measure, groups=None) -> float:
        """The ridge penalty of :data:`_RIDGE_ALPHA` with the lowest leave-one-out error of
        the measurement (:func:`_leave_one_out_errors`); with ``groups`` (crossover
        patients) a patient's periods are left out together."""
        design, _, _ = self._linear_design(X, weight, modifiers)
        known = ~np.isnan(measure) & (weight > 0)
        errors = _leave_one_out_errors(
            design[known],
            measure[known],
            weight[known],
            _rows(groups, np.flatnonzero(known)),
            _RIDGE_ALPHA,
        )
        if np.isinf(errors).all():  # no penalty can be judged: the strongest
            return float(max(_RIDGE_ALPHA))
        return float(_RIDGE_ALPHA[int(np.argmin(errors))])

    def _choose_penalty(self, X, y, weight, folds, modifiers) -> float:
        """The strongest penalty of :data:`_LINEAR_C` whose cross-validated log-loss is
        within one standard error of the best (the one-standard-error rule; Hastie,
        Tibshirani and Friedman 2009, The Elements of Statistical Learning, 2nd ed., sec.
        7.10): with few events the best penalty is chosen by noise, toward a weaker one."""
        losses = np.empty((len(_LINEAR_C), len(y)))
        for k, C in enumerate(_LINEAR_C):
            for train, held_out in folds:
                linear = self._fit_linear(X[train], y[train], weight[train], C, modifiers)
                losses[k, held_out] = _log_losses(y[held_out], linear_margin(X[held_out], linear))
        w = weight / weight.sum()
        mean = losses @ w
        best = int(np.argmin(mean))
        difference = losses - losses[best]
        se = np.sqrt(((difference - (difference @ w)[:, None]) ** 2) @ w / max(len(y) - 1, 1))
        within = np.flatnonzero(mean - mean[best] <= se)
        return float(_LINEAR_C[int(within.min())])

    def _final_booster(self, array, y, weight, seed, linear, n_jobs=None):
        """Trees on every row for ``n_rounds_`` rounds, boosted from the linear margin (one
        tree of zeros when ``n_rounds_`` is 0: the linear component alone)."""
        booster = self._xgb(max(self.n_rounds_, 1), seed)
        if self.n_rounds_ == 0:
            booster.set_params(learning_rate=0.0)
        if n_jobs is not None:
            booster.set_params(n_jobs=n_jobs)
        base = None if linear is None else linear_margin(array, linear)
        return booster.fit(array, y, sample_weight=weight, base_margin=base)

    @staticmethod
    def _margin_of(booster, array: np.ndarray, linear) -> np.ndarray:
        """The margin of a linear component plus trees."""
        if linear is None:
            return booster.predict(array, output_margin=True)
        return booster.predict(array, output_margin=True, base_margin=linear_margin(array, linear))

    def _fill(self, X: Any, fit: bool, seed: int) -> Any:
        """The training table with one conditional draw per missing optional field."""
        if self.features is None or not isinstance(X, pd.DataFrame):
            if fit:
                self.imputer_, self.imputer_n_ = None, 0
            return X
        if fit:
            fields = [
                name
                for name in sources(parse_feature_set(self.features))
                if name in columns("baseline") and not column(name).required
            ]
            self.imputer_ = BaselineImputer(fields).fit(X)
            self.imputer_n_ = len(X)
        return self.imputer_.draw_once(X, seed) if self.imputer_ is not None else X

    def _checked(self, X: Any, fit: bool = False) -> Any:
        """A patient table checked against the data contract (:func:`ketapredict.validate`:
        a ValidationError naming every bad cell, spellings normalised; of the required
        columns, only those the feature set reads must be there), with the columns the
        contract does not know left out; anything else (encoded features) as given."""
        if self.features is None or not isinstance(X, pd.DataFrame):
            return X
        return validate(
            contract_part(X, "patient table"),
            what="patient table",
            # the columns the feature set reads: parsed when fitting, the encoder's after
            required=(
                sources(parse_feature_set(self.features)) if fit else self.feature_names_in_
            ),
        )

    def _expanded(self, X: Any) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Encoded features of every draw of the missing fields, and each draw's row."""
        check_is_fitted(self, "booster_")
        X = self._checked(X)
        imputer = getattr(self, "imputer_", None)
        if imputer is None or not isinstance(X, pd.DataFrame):
            return self._encode(X), None
        self.encoder_.transform(X.head(0))  # a missing column: ValidationError, before drawing
        filled, owner = imputer.expand(X)
        return self._encode(filled), owner

    def _encode(self, X: Any, fit: bool = False) -> pd.DataFrame:
        if self.features is None:
            array = validate_data(
                self, X, reset=fit, ensure_all_finite="allow-nan", dtype=np.float64
            )
            if fit:
                self.encoder_ = None
                self.feature_names_ = np.array(
                    [f"x{i}" for i in range(array.shape[1])], dtype=object
                )
            return pd.DataFrame(array, columns=self.feature_names_)
        if not isinstance(X, pd.DataFrame):
            raise ValidationError(
                [
                    Problem(
                        "X",
                        None,
                        f"OutcomeModel(features={self.features!r}) needs the patient table "
                        f"as a pandas DataFrame; got {type(X).__name__} (one patient: "
                        "pd.DataFrame([record])); features=None takes already-encoded numbers",
                    )
                ],
                "arguments",
            )
        if fit:
            # an outcome with a time of its own (dissociation, in the first session) is
            # encoded as of then, whatever the table's endpoint_day
            self.encoder_ = FeatureEncoder(
                self.features, assessed_day=assessment_day(self.outcome)
            ).fit(X)
            self.feature_names_ = self.encoder_.get_feature_names_out()
            self.n_features_in_ = self.encoder_.n_features_in_
            self.feature_names_in_ = self.encoder_.feature_names_in_
        return self.encoder_.transform(X)

    def _constraints(self) -> dict[str, int]:
        # features=None: the columns are the caller's own, so only a dict of theirs applies
        # (the shipped table names ketapredict's encoded features)
        if self.monotone is False or (self.features is None and self.monotone is True):
            return {}
        table = MONOTONE.get(self.outcome, {}) if self.monotone is True else self.monotone
        unknown = set(table) - set(self.feature_names_)
        if self.monotone is not True and unknown:
            raise ValidationError(
                [
                    Problem(
                        "monotone",
                        sorted(unknown),
                        f"monotone names features the model does not read: {sorted(unknown)}",
                    )
                ],
                "model parameters",
            )
        return {k: v for k, v in table.items() if k in set(self.feature_names_)}

    def _monotone(self) -> dict[str, int]:
        """The trees' monotone constraints: :meth:`_constraints`, and, when the linear
        component learned its direction from the measurement, each patient feature's
        direction there wherever it holds on and off the drug and, with
        ``linear="dose_time"``, at every dose and time within the training ranges (the
        feature's weight is linear in the drug flag and in each modifier, so its extremes
        over those ranges add up from each modifier's). The trees may then bend
        a predictor's effect but not reverse it: trees free to split either way ranked
        patients within arm worse (cognitive decline 0.760 against 0.776 at 1,000 courses,
        0.768 against 0.775 at 3,000; benchmarks/learning_curve.py, measured with the
        schedule's weights still from the ridge). Read from the fitted linear component
        alone, so a loaded model rebuilds the same constraints."""
        constraints = self._constraints()
        if self.monotone is not True or not self.measurement_ or self.linear_ is None:
            return constraints
        linear = self.linear_
        patient, active = self._design_parts()
        coef = np.asarray(linear["coef"], dtype=float)
        # each feature's weight is linear in the drug flag and in each modifier, so over the
        # training ranges its extremes are sums of per-modifier extremes (no enumeration:
        # a model file's modifier count cannot make this slow)
        low = high = coef
        if active is not None:
            coef_active = np.asarray(linear["coef_active"], dtype=float)
            modifiers = linear.get("modifiers") or []
            rows = np.asarray(linear.get("coef_modifiers", []), dtype=float).reshape(
                len(modifiers), len(coef)
            )
            lows, highs = [], []
            for drug in (0.0, 1.0):
                at_low = at_high = coef + drug * coef_active
                for m, row in zip(modifiers, rows, strict=True):
                    ends = (m["low"], m["high"])
                    if m["log"]:
                        ends = tuple(np.log1p(max(v, 0.0)) for v in ends)
                    scale = drug if m["active"] else 1.0
                    a, b = ends[0] * scale * row, ends[1] * scale * row
                    at_low, at_high = at_low + np.minimum(a, b), at_high + np.maximum(a, b)
                lows.append(at_low)
                highs.append(at_high)
            low, high = np.min(lows, axis=0), np.max(highs, axis=0)
        for j, name in enumerate(self.feature_names_):
            if patient[j] and name not in constraints:
                if low[j] > 0:
                    constraints[name] = 1
                elif high[j] < 0:
                    constraints[name] = -1
        return constraints

    def _xgb(self, n_estimators: int, seed: int, early_stopping: bool = False):
        from xgboost import XGBClassifier

        return XGBClassifier(
            n_estimators=n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_child_weight=self.min_child_weight_,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            reg_alpha=self.reg_alpha,
            # by position, so that arrays without column names are constrained too
            monotone_constraints=(
                tuple(constraints.get(f, 0) for f in self.feature_names_)
                if (constraints := self.monotone_)
                else None
            ),
            early_stopping_rounds=self.early_stopping_rounds if early_stopping else None,
            objective="binary:logistic",
            eval_metric="logloss",
            tree_method="hist",
            random_state=seed,
            n_jobs=self.n_jobs,
        )

    def _fit_calibrator(
        self, margin: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
    ) -> dict[str, Any]:
        if self.calibration == "none":
            return {"method": "none"}
        if self.calibration == "sigmoid":
            from sklearn.linear_model import LogisticRegression

            platt = LogisticRegression(C=1e6).fit(margin.reshape(-1, 1), y, sample_weight=weight)
            return {
                "method": "sigmoid",
                "a": float(platt.coef_[0, 0]),
                "b": float(platt.intercept_[0]),
            }
        isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        isotonic.fit(margin, y, sample_weight=weight)
        return {
            "method": "isotonic",
            "margins": isotonic.X_thresholds_.tolist(),
            "probabilities": isotonic.y_thresholds_.tolist(),
        }

    # -- prediction -------------------------------------------------------------------------
    def margin(self, X: Any) -> np.ndarray:
        """The raw margin (log-odds before calibration) of the linear component and the
        trees; :meth:`contributions` add up to it.

        For a patient with missing fields, the mean margin over the draws of those fields.

        Parameters
        ----------
        X : DataFrame or array-like
            Patient courses with the columns the feature set reads (encoded numbers when
            ``features=None``).

        Returns
        -------
        ndarray of shape (n,)
        """
        Z, owner = self._expanded(X)
        margin = self._margin_of(self.booster_, Z.to_numpy(dtype=float), self.linear_)
        return margin if owner is None else BaselineImputer.average(margin, owner, len(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated log-odds of the event, within +-9.2 (of the averaged probability for
        a patient with missing fields).

        Parameters
        ----------
        X : DataFrame or array-like
            Patient courses with the columns the feature set reads (encoded numbers when
            ``features=None``).

        Returns
        -------
        ndarray of shape (n,)
        """
        p = self.predict_proba(X)[:, 1]
        return logit(p)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): [no event, event].

        A patient with missing optional fields gets the mean probability over
        ``imputer_.n_draws`` draws of them given the recorded fields. Every probability lies
        between 1e-4 and 1 - 1e-4; none is NaN.

        Parameters
        ----------
        X : DataFrame or array-like
            Patient courses with the columns the feature set reads (encoded numbers when
            ``features=None``).

        Returns
        -------
        ndarray of shape (n, 2)
        """
        Z, owner = self._expanded(X)
        log_odds = calibrated_log_odds(
            self._margin_of(self.booster_, Z.to_numpy(dtype=float), self.linear_),
            self.calibrator_,
        )
        p = expit(log_odds)
        if owner is not None:
            p = BaselineImputer.average(p, owner, len(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """The event label where its calibrated probability is at least 0.5.

        Parameters
        ----------
        X : DataFrame or array-like
            Patient courses with the columns the feature set reads (encoded numbers when
            ``features=None``).

        Returns
        -------
        ndarray of shape (n,)
            Labels from :attr:`classes_`.
        """
        check_is_fitted(self, "booster_")
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def contributions(self, X: Any) -> np.ndarray:
        """Exact SHAP values of the margin, shape (n, features + 1), the last column the
        base value: TreeSHAP of the trees (XGBoost's ``pred_contribs``) plus the linear
        component's terms (:func:`ketapredict.trees.linear_terms`). For a patient with
        missing fields, the mean over the draws of those fields; each row adds up to
        :meth:`margin`.

        Parameters
        ----------
        X : DataFrame or array-like
            Patient courses with the columns the feature set reads (encoded numbers when
            ``features=None``).

        Returns
        -------
        ndarray of shape (n, n_features + 1)
        """
        from xgboost import DMatrix

        if len(X) == 0:  # XGBoost's contributions of no rows are no 2-d array
            check_is_fitted(self, "booster_")
            return np.zeros((0, len(self.feature_names_) + 1))
        draws, owner = self._expanded(X)
        values = draws.to_numpy(dtype=float)
        offset = linear_margin(values, self.linear_) if self.linear_ is not None else None
        phi = (
            self.booster_.get_booster()
            .predict(DMatrix(draws, missing=np.nan, base_margin=offset), pred_contribs=True)
            .astype(float)
        )
        if self.linear_ is not None:
            # XGBoost puts the whole linear margin in the bias; give each feature its term
            phi[:, :-1] += linear_terms(values, self.linear_)
            phi[:, -1] += self.linear_["intercept"] - offset
        return phi if owner is None else BaselineImputer.average(phi, owner, len(X))

    def importances(self, X: Any) -> pd.Series:
        """Each encoded feature's mean absolute SHAP value over ``X`` (log-odds), largest
        first: the linear component and the trees together.

        Parameters
        ----------
        X : DataFrame or array-like
            Patient courses with the columns the feature set reads (encoded numbers when
            ``features=None``).

        Returns
        -------
        Series
            Indexed by encoded feature, named ``mean_abs_shap``.
        """
        check_is_fitted(self, "booster_")
        if len(X) == 0:
            raise ValidationError(
                [Problem(None, None, "importances need at least one course; the table is empty")],
                "patient table",
            )
        phi = self.contributions(X)[:, :-1]
        return pd.Series(
            np.abs(phi).mean(axis=0), index=list(self.feature_names_), name="mean_abs_shap"
        ).sort_values(ascending=False)


def outcome_models(risk_model: Any) -> dict[str, OutcomeModel]:
    """The fitted OutcomeModel of each outcome of a :class:`~ketapredict.RiskModel`.

    For SHAP values and MLflow, which need the XGBoost model. A model the learning side
    built keeps its OutcomeModels; a loaded one has them restored from its checked booster
    files on first use (this imports XGBoost and scikit-learn; the loader checked that the
    booster holds the scoring trees' first member, so that the learning side and the
    clinician path are one model).

    Parameters
    ----------
    risk_model : RiskModel
        A model built by :func:`ketapredict.fit_risk_model` or loaded from its files.

    Returns
    -------
    dict of str to OutcomeModel

    Raises
    ------
    ValidationError
        If ``risk_model`` is no RiskModel.
    ModelFileError
        If a loaded model's parameters or booster are not ones OutcomeModel can take.

    Examples
    --------
    >>> from ketapredict import load_model
    >>> from ketapredict.models import outcome_models
    >>> fitted = outcome_models(load_model())
    >>> fitted["response"].n_rounds_ > 0
    True
    """
    if not hasattr(risk_model, "outcome_state"):  # models sits upstream of RiskModel
        raise ValidationError(
            [
                Problem(
                    "risk_model",
                    None,
                    f"outcome_models needs a RiskModel; got {type(risk_model).__name__}",
                )
            ],
            "arguments",
        )
    states = {o: risk_model.outcome_state(o) for o in risk_model.outcomes}
    for state in states.values():
        if state.model is None:
            state.model = _restored(state)
    return {outcome: state.model for outcome, state in states.items()}


def _restored(state: Any) -> OutcomeModel:
    """The OutcomeModel of a loaded outcome (an ``OutcomeState``), from its booster as
    checked JSON."""
    from xgboost import XGBClassifier
    from xgboost.core import XGBoostError

    from .exceptions import ModelFileError

    record, where = state.record, f"{state.outcome}.ubj"
    try:
        model = OutcomeModel(**record["params"])
        model._validate_params()  # each value of the kind OutcomeModel accepts
    except (TypeError, ValueError) as error:  # a parameter OutcomeModel does not have
        raise ModelFileError(f"{state.outcome}.json: params: {str(error)[:300]}") from None
    model.encoder_ = FeatureEncoder.from_spec(state.spec, state.feature_names_in)
    # JSON re-encoded from the decoded and checked booster file (ketapredict.modelfile)
    booster = XGBClassifier()
    try:
        booster.load_model(bytearray(state.booster))
    except (XGBoostError, ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"{where} is not a readable XGBoost model ({error!r:.200})") from None
    model.booster_ = booster
    model.feature_names_ = np.array(state.feature_names, dtype=object)
    model.feature_names_in_ = np.array(state.feature_names_in, dtype=object)
    model.n_features_in_ = len(state.feature_names_in)
    model.classes_ = np.array(record["classes"])
    model.n_rounds_ = record["n_rounds"]
    if "few_events" in record:  # format 6; older files leave describe() to say what it can
        model.few_events_ = record["few_events"]
    model.min_child_weight_ = record["min_child_weight"]
    model.calibrator_ = state.calibrators[0]
    model.linear_ = (state.linear or [None])[0]
    model.imputer_ = state.imputer
    # a linear component learned from the measurement carries its ridge penalty
    model.measurement_ = "alpha" in (model.linear_ or {})
    try:  # from the params and the linear component, as at fitting
        model.monotone_ = model._monotone()
    except (ValidationError, AttributeError, TypeError, ValueError, KeyError) as error:
        raise ModelFileError(
            f"{state.outcome}.json: params monotone: {str(error)[:200]}"
        ) from None
    return model

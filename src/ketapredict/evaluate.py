"""Honest validation: metrics, validation schemes, peers and the oracle.

- :func:`score_predictions`: ROC AUC with a bootstrap 95% interval, PR AUC, Brier score,
  expected calibration error, calibration intercept and slope.
- :func:`net_benefit`: the decision curve.
- :func:`cross_validate`: out-of-fold predictions of an :class:`~ketapredict.OutcomeModel`
  under stratified k-fold, grouped k-fold by trial or leave-one-trial-out (nested when a
  tuning grid is given), next to the peers a data scientist would otherwise use and, on
  simulated data, the oracle (the true probabilities).
- :func:`peer_models`: logistic regression on standardised and one-hot raw columns,
  scikit-learn's ``HistGradientBoostingClassifier`` and ``XGBClassifier``, all with their
  default settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from .exceptions import Problem, ValidationError
from .schema import check_outcome, column, columns

__all__ = [
    "SCHEMES",
    "ValidationResult",
    "cross_validate",
    "expected_calibration_error",
    "learning_curve",
    "net_benefit",
    "peer_models",
    "score_predictions",
    "subgroup_metrics",
]

SCHEMES = ("stratified_kfold", "grouped_kfold", "leave_one_trial_out")
# Each validation fold should hold this many events on average: with fewer, fold metrics are
# noise and the folds' training sets run short of events.
EVENTS_PER_FOLD = 5
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)


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
def _poisson_weights(n: int, n_bootstraps: int, seed: int) -> np.ndarray:
    """Poisson(1) bootstrap weights, shared by every model scored on the same rows: the
    models' intervals then come from the same resamples, and are drawn once."""
    weights = np.random.default_rng(seed).poisson(1.0, size=(n_bootstraps, n))
    weights = weights.astype(np.float32)
    weights.flags.writeable = False
    return weights


def _auc_interval(p, y, n_bootstraps: int, seed: int) -> tuple[float, float]:
    """Percentile 95% interval of the AUC over Poisson-bootstrap replicates."""
    if n_bootstraps == 0:
        return np.nan, np.nan
    weights = _poisson_weights(len(p), n_bootstraps, seed)
    blocks = range(0, n_bootstraps, 200)
    aucs = np.concatenate([_weighted_auc(p, y, weights[i : i + 200]) for i in blocks])
    low, high = np.nanpercentile(aucs, [2.5, 97.5])
    return float(low), float(high)


def expected_calibration_error(y: Any, p: Any, n_bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins.

    The size-weighted mean of |observed rate - mean predicted probability| over ``n_bins``
    bins of width 1/n_bins (Naeini 2015; Guo 2017).

    Parameters
    ----------
    y : array-like of 0/1
        Observed outcomes.
    p : array-like of float in [0, 1]
        Predicted probabilities.
    n_bins : int, default=10
        Number of equal-width bins.

    Returns
    -------
    float

    Examples
    --------
    >>> expected_calibration_error([0, 1, 0, 1], [0.1, 0.9, 0.1, 0.9])
    0.1
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    which = np.minimum((p * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    gaps = np.abs(np.bincount(which, weights=y - p, minlength=n_bins))
    return float(gaps.sum() / counts.sum())


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def _calibration_line(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration intercept (in the large, slope fixed at 1) and calibration slope.

    Both from logistic recalibration of the outcome on logit(p) (Cox 1958; Van Calster
    2019); the ideal values are 0 and 1.
    """
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression

    x = _logit(p)
    # intercept with logit(p) as an offset: Newton's method on one concave parameter
    a = 0.0
    for _ in range(100):
        q = expit(a + x)
        step = (y - q).sum() / max((q * (1 - q)).sum(), 1e-12)
        a += float(np.clip(step, -5, 5))
        if abs(step) < 1e-10:
            break
    slope = LogisticRegression(C=np.inf, max_iter=1000).fit(x.reshape(-1, 1), y).coef_[0, 0]
    return float(a), float(slope)


def score_predictions(
    y: Any, p: Any, *, n_bootstraps: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Discrimination and calibration of predicted probabilities.

    Parameters
    ----------
    y : array-like of bool or 0/1
        Observed outcomes.
    p : array-like of float
        Predicted probabilities of the event.
    n_bootstraps : int, default=1000
        Replicates for the AUC interval (0: no interval).
    seed : int, default=0
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``n``, ``events``, ``auc``, ``auc_low``, ``auc_high`` (bootstrap 95% interval),
        ``pr_auc`` (average precision), ``brier``, ``ece`` (10 equal-width bins),
        ``calibration_intercept`` and ``calibration_slope``. Discrimination is NaN when only
        one class is present.

    Examples
    --------
    >>> from ketapredict.evaluate import score_predictions
    >>> scores = score_predictions([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], n_bootstraps=0)
    >>> scores["auc"], scores["brier"]
    (0.75, 0.158...)
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("Predicted probabilities must lie in [0, 1] with none missing.")
    out = {
        "n": len(y),
        "events": int(y.sum()),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(y, p),
    }
    if 0 < y.sum() < len(y):
        low, high = _auc_interval(p, y, n_bootstraps, seed)
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


def net_benefit(y: Any, p: Any, thresholds: Iterable[float] = THRESHOLDS) -> pd.DataFrame:
    """The decision curve: net benefit of acting when p >= threshold (Vickers 2006).

    Net benefit = TP/n - FP/n * t / (1 - t). Treat-all and treat-none are the references.

    Parameters
    ----------
    y : array-like of bool or 0/1
        Observed outcomes.
    p : array-like of float
        Predicted probabilities.
    thresholds : iterable of float, default 0.05 to 0.95 by 0.05
        Risk thresholds at which a clinician would act.

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
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    n = len(y)
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
    frame: pd.DataFrame, y: Any, predictions: Mapping[str, Any], *, min_events: int = 5
) -> pd.DataFrame:
    """Metrics within subgroups by sex, age band and diagnosis.

    Parameters
    ----------
    frame : DataFrame
        The rows scored, with ``sex``, ``age`` and ``diagnosis``.
    y : array-like of 0/1
        Observed outcomes of those rows.
    predictions : mapping of name to array-like
        Predicted probabilities by model (e.g. ``{"OutcomeModel": p, "oracle": truth}``).
    min_events : int, default=5
        Subgroups with fewer events (or non-events) get no AUC.

    Returns
    -------
    DataFrame
        One row per (model, variable, level): ``n``, ``events``, ``observed`` (rate),
        ``predicted`` (mean), ``auc``, ``brier``, ``ece``.
    """
    y = np.asarray(y, dtype=float)
    variables = {
        "sex": frame["sex"].astype(object),
        "age band": _age_band(frame["age"]),
        "diagnosis": frame["diagnosis"].astype(object),
    }
    rows = []
    for name, p in predictions.items():
        p = np.asarray(p, dtype=float)
        for variable, levels in variables.items():
            for level in sorted(levels.dropna().unique(), key=str):
                inside = (levels == level).to_numpy()
                yi, pi = y[inside], p[inside]
                events = int(yi.sum())
                scores = score_predictions(yi, pi, n_bootstraps=0)
                enough = min(events, len(yi) - events) >= min_events
                rows.append(
                    {
                        "model": name,
                        "variable": variable,
                        "level": str(level),
                        "n": int(inside.sum()),
                        "events": events,
                        "observed": float(yi.mean()),
                        "predicted": float(pi.mean()),
                        "auc": scores["auc"] if enough else np.nan,
                        "brier": scores["brier"],
                        "ece": scores["ece"],
                    }
                )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------------------------
def _raw_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The contract's baseline and regimen columns in ``frame``: numeric and categorical."""
    raw = [c for c in columns("baseline") + columns("regimen") if c in frame.columns]
    categorical = [c for c in raw if column(c).kind == "category"]
    return [c for c in raw if c not in categorical], categorical


class _RawColumns:
    """Pickle-free factory of the peers' shared preprocessing (a ColumnTransformer)."""

    def __init__(self, frame: pd.DataFrame, scale: bool):
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

        numeric, categorical = _raw_columns(frame)
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


def _as_float(x):
    return (
        pd.DataFrame(x).apply(lambda s: s.astype("Float64")).to_numpy(dtype=float, na_value=np.nan)
    )


def _as_text(x):
    return pd.DataFrame(x).astype(object).fillna("missing").astype(str).to_numpy()


def peer_models(frame: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """What a data scientist would otherwise use, on the raw contract columns.

    Parameters
    ----------
    frame : DataFrame
        A patient table; its baseline and regimen columns are the peers' inputs.
    seed : int, default=0
        Random state of the tree ensembles.

    Returns
    -------
    dict of str to estimator
        ``logistic_regression`` (median imputation with missing indicators, standardised
        numbers, one-hot categories), ``hist_gradient_boosting`` and ``xgboost_default``
        (imputation only; default settings), all unfitted scikit-learn pipelines.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from xgboost import XGBClassifier

    return {
        "logistic_regression": make_pipeline(
            _RawColumns(frame, scale=True).transformer, LogisticRegression(max_iter=5000)
        ),
        "hist_gradient_boosting": make_pipeline(
            _RawColumns(frame, scale=False).transformer,
            HistGradientBoostingClassifier(random_state=seed),
        ),
        "xgboost_default": make_pipeline(
            _RawColumns(frame, scale=False).transformer,
            XGBClassifier(random_state=seed, n_jobs=None),
        ),
    }


# --------------------------------------------------------------------------------------------
# Validation schemes
# --------------------------------------------------------------------------------------------
def _repeated_patients(frame: pd.DataFrame) -> bool:
    """Whether some patient has several rows (the periods of a crossover)."""
    return "patient_id" in frame.columns and bool(frame["patient_id"].duplicated().any())


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
        non-events) than the scheme needs: 5 per validation fold, at least 10.
    """
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
            f"; {len(kept)} rows have the outcome"
            + (f" ({dropped} without it were left out)" if dropped else "")
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
        out-of-fold predictions (see :func:`score_predictions`).
    fold_metrics : DataFrame
        One row per (model, fold): ``fold``, ``n``, ``events``, ``auc``, ``pr_auc``,
        ``brier``, ``ece``; AUC is NaN in folds with one class.
    decision_curve : DataFrame
        Net benefit by threshold, a column per model plus treat-all and treat-none.
    subgroups : DataFrame
        See :func:`subgroup_metrics`.
    predictions : DataFrame
        Row position, fold and outcome, and each model's probability. No identifiers.
    rows_left_out : int
        Rows without the outcome, not used.
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
        Leave-one-trial-out validates across trials, as Chekroud 2016 did for
        antidepressants; grouped k-fold keeps each trial in one fold. Stratified k-fold
        keeps a patient's rows (the periods of a crossover) in one fold.
    n_splits : int, default=5
        Folds for the k-fold schemes.
    tuning : mapping of parameter to values, optional
        Nested cross-validation: in every outer fold a grid search over these OutcomeModel
        parameters (inner stratified 3-fold, log-loss) picks the model.
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
    >>> list(result.metrics.index)
    ['OutcomeModel', 'logistic_regression', 'hist_gradient_boosting', 'xgboost_default', 'oracle']
    """
    outcome = outcome or model.outcome
    kept, y, dropped = check_design(data, outcome, scheme, n_splits)
    splitter = _splitter(scheme, n_splits, seed)
    grouped = scheme in ("grouped_kfold", "leave_one_trial_out")
    groups = kept["trial_id"].astype(str).to_numpy() if grouped else None
    if not grouped and _repeated_patients(kept):
        # a crossover patient has a row per period: keep both in one fold
        splitter = _splitter("grouped_kfold", n_splits, seed)
        groups = kept["patient_id"].astype(str).to_numpy()
    splits = list(splitter.split(kept, y, groups))
    candidates: dict[str, Any] = {"OutcomeModel": model}
    if peers:
        candidates.update(peer_models(kept, seed))
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
                estimator = _grid_search(estimator, tuning, seed)
            estimator.fit(kept.iloc[train], y[train])
            chosen = estimator.best_params_ if name == "OutcomeModel" and tuning else None
            found.append((name, estimator.predict_proba(kept.iloc[test])[:, 1], chosen))
        return found

    from joblib import Parallel, delayed

    # worker processes, not threads: the encoders' pandas work holds the GIL (35 s against
    # 45 s for the baseline experiment on 2 cores). Each worker's models use one thread.
    fitted: Iterable = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(fit_fold)(k) for k in range(len(splits))
    )
    if progress:
        from tqdm.auto import tqdm

        label = progress if isinstance(progress, str) else outcome
        fitted = tqdm(fitted, total=len(splits), desc=label, unit="fold", leave=False)
    chosen = []
    for k, found in enumerate(fitted):
        for name, p, params in found:
            oof[name][splits[k][1]] = p
            if params is not None:
                chosen.append(params)
    truth = f"p_{outcome}"
    if truth in kept.columns and kept[truth].notna().all():
        oof["oracle"] = kept[truth].to_numpy(dtype=float)

    metrics = pd.DataFrame(
        {
            name: score_predictions(y, p, n_bootstraps=n_bootstraps, seed=seed)
            for name, p in oof.items()
        }
    ).T
    fold_rows = []
    for name, p in oof.items():
        for k in range(len(splits)):
            inside = fold_of == k
            scores = score_predictions(y[inside], p[inside], n_bootstraps=0)
            fold_rows.append(
                {
                    "model": name,
                    "fold": k,
                    **{m: scores[m] for m in ("n", "events", "auc", "pr_auc", "brier", "ece")},
                }
            )
    curve = pd.concat({name: net_benefit(y, p)["model"] for name, p in oof.items()}, axis=1)
    curve = curve.join(net_benefit(y, oof["OutcomeModel"])[["treat_all", "treat_none"]])
    subgroup_predictions = {k: v for k, v in oof.items() if k in ("OutcomeModel", "oracle")}
    predictions = pd.DataFrame(
        {
            "row": np.arange(len(y)),
            "fold": fold_of,
            outcome: y,
            **{f"p_{name}": p for name, p in oof.items()},
        }
    )
    return ValidationResult(
        outcome=outcome,
        scheme=scheme,
        metrics=metrics,
        fold_metrics=pd.DataFrame(fold_rows),
        decision_curve=curve,
        subgroups=subgroup_metrics(kept, y, subgroup_predictions),
        predictions=predictions,
        rows_left_out=dropped,
        extras={"tuned_parameters": chosen} if tuning else {},
    )


def _single_threaded(estimator: Any) -> Any:
    """Limit an XGBoost-based estimator (or a pipeline ending in one) to one thread; joblib
    limits the others' native threads in its workers."""
    from xgboost import XGBClassifier

    from .models import OutcomeModel

    target = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if isinstance(target, XGBClassifier | OutcomeModel):
        target.set_params(n_jobs=1)
    return estimator


def _grid_search(model: Any, grid: Mapping[str, Sequence[Any]], seed: int):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    return GridSearchCV(
        model,
        {k: list(v) for k, v in grid.items()},
        cv=StratifiedKFold(3, shuffle=True, random_state=seed),
        scoring="neg_log_loss",
        refit=True,
    )


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
        Share of the rows held out to score every model.
    peers : bool, default=True
        Also train the peers on each sample.
    seed : int, default=0
        Seed of the split, the samples and the peers.

    Returns
    -------
    DataFrame
        One row per (size, repeat, model): ``n_train``, ``repeat``, ``model``, ``auc``,
        ``brier``, ``ece``; the oracle when the data has the true probabilities.
    """
    from sklearn.model_selection import train_test_split

    outcome = outcome or model.outcome
    kept = data[data[outcome].notna()]
    y = check_outcome(kept[outcome], outcome, min_per_class=2)
    train, test = train_test_split(
        np.arange(len(kept)), test_size=test_fraction, stratify=y, random_state=seed
    )
    too_big = [n for n in sizes if n > len(train)]
    if too_big:
        raise ValidationError(
            [
                Problem(
                    "sizes",
                    too_big,
                    f"training sizes {too_big} exceed the {len(train)} training rows",
                )
            ],
            "learning curve",
        )
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        for repeat in range(repeats):
            chosen = rng.choice(train, size=n, replace=False)
            if len(np.unique(y[chosen])) < 2:
                continue
            candidates = {"OutcomeModel": model}
            if peers:
                candidates.update(peer_models(kept, seed))
            for name, candidate in candidates.items():
                fitted = clone(candidate).fit(kept.iloc[chosen], y[chosen])
                p = fitted.predict_proba(kept.iloc[test])[:, 1]
                scores = score_predictions(y[test], p, n_bootstraps=0)
                rows.append(
                    {
                        "n_train": n,
                        "repeat": repeat,
                        "model": name,
                        **{m: scores[m] for m in ("auc", "brier", "ece")},
                    }
                )
    truth = f"p_{outcome}"
    if truth in kept.columns and kept[truth].notna().all():
        scores = score_predictions(y[test], kept[truth].to_numpy()[test], n_bootstraps=0)
        for n in sizes:
            rows.append(
                {
                    "n_train": n,
                    "repeat": 0,
                    "model": "oracle",
                    **{m: scores[m] for m in ("auc", "brier", "ece")},
                }
            )
    return pd.DataFrame(rows)

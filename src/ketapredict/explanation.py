"""Which predictors drive a prediction: exact SHAP values as ``shap.Explanation`` objects.

:func:`explain` returns a :class:`shap.Explanation`, so shap's own plots and operations work
on it (``shap.plots.waterfall(e[0])``, ``beeswarm``, ``bar``, ``force``, ``e.abs.mean(0)``).
The values are those of ``OutcomeModel.contributions``: the linear component's terms plus
XGBoost's TreeSHAP of the trees (``pred_contribs``, the algorithm of Lundberg et al. 2020,
Nature Machine Intelligence 2:56-67), exact and additive. A patient with missing fields
gets the mean over the draws of those fields, as the model scores them.

Two scales:

- ``"log-odds"`` (default): SHAP values of the margin, the model's log-odds before
  calibration. ``base_values + values.sum(axis=1)`` is each patient's margin.
- ``"probability"``: percentage points of the calibrated risk, as the clinician report gives
  them: a patient's log-odds contributions scaled by one positive factor (the secant of
  the calibration from the base margin to the patient's margin), so that they add up from
  the risk at the base margin (``base_values``, %) to the patient's calibrated risk (%);
  for a patient with missing fields, the mean of such values over the draws. Percentage
  points depend on the patient's baseline risk; compare patients on log-odds.

Two levels: one column per encoded feature (``level="feature"``, the trees' own
inputs: ``diagnosis: TRD``), or per clinical predictor (``level="predictor"``: the encoded
columns of one predictor summed, which additivity allows: ``diagnosis``). Feature names
are clinical labels; no patient identifier is kept.

shap itself is imported only by these functions (it takes seconds to import); the
clinician path never imports this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pandas as pd

from .exceptions import Problem, ValidationError, short_repr
from .schema import column, columns, label_number

if TYPE_CHECKING:  # imported lazily: shap and matplotlib take seconds to import
    import shap
    from matplotlib.figure import Figure

__all__ = ["explain", "importance", "shap_figures", "top_drivers"]

_LEVELS = ("feature", "predictor")
_SCALES = ("log-odds", "probability")
# Closer than this, a secant is 0/0: the slope at the point is used instead.
_FLAT = 1e-6
# Rows of the SHAP figures: the 14 largest and the sum of the others (shap's own default).
_MAX_DISPLAY = 15
# A composite patient is made from at least this many patients (composite_patient): a
# median of fewer is close to one of them, and the composite is drawn into MLflow runs.
MIN_COMPOSITE = 10


def _scale_words(outcome: str, scale: str) -> str:
    if scale == "log-odds":
        return f"{outcome}: log-odds (margin before calibration)"
    return f"{outcome}: calibrated risk (%)"


def _secant(f, x: np.ndarray, x0: np.ndarray, step: float) -> np.ndarray:
    """Slope of a monotone map ``f`` from ``x0`` to ``x``: the secant, or the derivative
    at ``x`` where the two are too close to divide. The secant of a monotone map lies
    between 0 and its steepest slope, so scaled values stay bounded and keep their signs."""
    x, x0 = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(x0, dtype=float))
    slope = np.empty(len(x))
    flat = np.abs(x - x0) <= _FLAT
    slope[~flat] = (f(x[~flat]) - f(x0[~flat])) / (x[~flat] - x0[~flat])
    slope[flat] = (f(x[flat] + step) - f(x[flat] - step)) / (2 * step)
    return slope


@dataclass
class _Parts:
    """What every level and scale of one explanation is built from (computed once)."""

    outcome: str
    model: Any  # the OutcomeModel
    phi: np.ndarray  # (draws, features): log-odds SHAP values of each draw
    base: np.ndarray  # (draws,): base value (the same for every draw)
    owner: np.ndarray | None  # each draw's patient (None: one draw each)
    encoded: np.ndarray  # (patients, features): encoded values, NaN where missing
    feature_map: pd.DataFrame  # in booster order
    calibrator: dict  # margin -> calibrated log-odds
    update: dict | None  # a RiskModel's recalibration to a new population

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Each patient's mean over their draws."""
        from .imputation import BaselineImputer

        if self.owner is None:
            return values
        return BaselineImputer.average(values, self.owner, len(self.encoded))

    def calibrated(self, margin: np.ndarray) -> np.ndarray:
        """The calibrated risk (0-1) of margins, before any recalibration."""
        from .trees import calibrated_log_odds, expit

        return expit(calibrated_log_odds(margin, self.calibrator))

    def updated(self, risk: np.ndarray) -> np.ndarray:
        """A calibrated risk after the RiskModel's recalibration (unchanged without one),
        as ``RiskModel.predict_proba`` applies it: to the risk averaged over the draws."""
        from .trees import MAX_LOG_ODDS, expit, logit
        from .updating import apply_update

        if self.update is None:
            return np.asarray(risk, dtype=float)
        log_odds = apply_update(logit(risk, clip=1e-12), self.update, MAX_LOG_ODDS)
        return expit(log_odds)


def _parts(model: Any, X: pd.DataFrame, outcome: str | None) -> _Parts:
    from sklearn.utils.validation import check_is_fitted

    from .models import OutcomeModel, outcome_models

    risk = None
    # a RiskModel, known by what it offers: it is built downstream of explanations
    # (DESIGN.md), so this module does not import it
    if not isinstance(model, OutcomeModel) and hasattr(model, "outcome_state"):
        outcome = outcome or model.outcomes[0]
        if outcome not in model.outcomes:
            _refuse(
                "outcome",
                outcome,
                f"the model has no outcome {short_repr(outcome)}; it "
                f"has {', '.join(model.outcomes)}",
            )
        risk, model = model, outcome_models(model)[outcome]
    if not isinstance(model, OutcomeModel):
        _refuse(
            "model",
            None,
            f"explain needs an OutcomeModel or RiskModel; got {type(model).__name__}",
        )
    if outcome is not None and risk is None and outcome != model.outcome:
        _refuse(
            "outcome",
            outcome,
            f"the model predicts {model.outcome!r}; got outcome={short_repr(outcome)}",
        )
    check_is_fitted(model, "booster_")
    if model.encoder_ is None:
        _refuse(
            "model",
            None,
            "explain needs a model with a feature set (features=None has "
            "no clinical predictors to explain)",
        )
    if not isinstance(X, pd.DataFrame) or len(X) == 0:
        got = f"{len(X)} rows" if isinstance(X, pd.DataFrame) else type(X).__name__
        _refuse("X", None, f"explain needs a patient table with at least one row; got {got}")
    X = model._checked(X)  # a bad cell: ValidationError
    names = list(model.feature_names_)
    encoded = model.encoder_.transform(X)[names]  # a missing column: ValidationError
    # the draws of missing fields the model scores (a RiskModel: its first outcome's, as
    # RiskModel.predict_proba draws them); each draw is complete, so its SHAP values are
    # exact for it
    if risk is None:
        imputer = getattr(model, "imputer_", None)
    else:
        imputer = risk.outcome_state(risk.outcomes[0]).imputer
    filled, owner = (X, None) if imputer is None else imputer.expand(X)
    contributions = model.contributions(filled)
    if risk is None:
        calibrator, update = model.calibrator_, None
    else:  # the RiskModel's calibrator and its recalibration, as it scores
        state = risk.outcome_state(outcome)
        calibrator, update = state.calibrators[0], state.update
    return _Parts(
        outcome=outcome or model.outcome,
        model=model,
        phi=contributions[:, :-1],
        base=contributions[:, -1],
        owner=owner if owner is not None and len(owner) > len(X) else None,
        encoded=encoded.to_numpy(dtype=float),
        feature_map=model.encoder_.feature_map_.reindex(names),
        calibrator=calibrator,
        update=update,
    )


def _on_scale(parts: _Parts, scale: str) -> tuple[np.ndarray, np.ndarray]:
    """Each patient's per-feature values and base value on ``scale``."""
    if scale == "log-odds":
        return parts.mean(parts.phi), parts.mean(parts.base)
    # each draw's log-odds values scaled by the secant of the calibration from the base
    # margin to the draw's margin, so they add up to the draw's risk minus the base risk;
    # their mean over draws adds up to the patient's risk (the mean over draws) minus it
    margin = parts.base + parts.phi.sum(axis=1)
    slope = _secant(parts.calibrated, margin, parts.base, 1e-4)
    points = parts.mean(slope[:, None] * parts.phi)
    # then a RiskModel's recalibration, a monotone map of the averaged risk
    base_risk = parts.calibrated(parts.base[:1])
    risk = base_risk + points.sum(axis=1)
    factor = _secant(parts.updated, risk, base_risk, 1e-6)
    return 100 * factor[:, None] * points, np.full(len(points), 100 * parts.updated(base_risk)[0])


def _display(values: np.ndarray, unit: str = "") -> np.ndarray:
    """Encoded values as text for shap's labels ("missing" rather than "nan")."""
    out = np.empty(values.shape, dtype=object)
    for index, value in np.ndenumerate(values):
        out[index] = "missing" if np.isnan(value) else f"{label_number(value)} {unit}".strip()
    return out


def _column_text(X: pd.DataFrame, name: str) -> np.ndarray:
    """A contract column's raw values as a clinician reads them (as reports print them)."""

    spec = column(name)
    values = X[name].astype(object).to_numpy()
    units = X["dose_unit"].astype(object).to_numpy() if "dose_unit" in X.columns else None
    return np.array(
        [
            spec.value_text(value, None if units is None else units[i], rounded=True)
            for i, value in enumerate(values)
        ],
        dtype=object,
    )


# Encoded yes/no features derived from several columns (the contract's own yes/no columns
# are shown from the record).
_DERIVED_FLAGS = frozenset({"active_drug"})


def _by_predictor(
    parts: _Parts, X: pd.DataFrame, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Values summed by clinical predictor, with each predictor's data, text and label.

    The data are numeric, for shap's colours: the value of the encoded column named like
    the predictor (numeric and yes/no columns: the patient's own value, 0/1 for no/yes);
    for a category spread over 0/1 columns (``diagnosis_TRD``...), the category's position
    among them (it tells categories apart; its order means nothing), NaN when missing or
    none; otherwise the predictor's first encoded column (``dose``: the racemic IV
    equivalent in mg/kg). The text is the patient's raw value where the predictor is one
    contract column (``56 mg``, ``TRD``, ``yes``).
    """
    from .encoding import DERIVED_UNITS as units  # the units the clinician report shows

    fmap = parts.feature_map
    names = list(fmap.index)
    predictor_of = fmap["predictor"].to_numpy()
    predictors = list(dict.fromkeys(predictor_of))
    contract = set(columns("baseline")) | set(columns("regimen"))
    n = len(values)
    summed = np.empty((n, len(predictors)))
    data = np.full((n, len(predictors)), np.nan)
    text = np.empty((n, len(predictors)), dtype=object)
    labels = []
    for k, predictor in enumerate(predictors):
        members = np.flatnonzero(predictor_of == predictor)
        summed[:, k] = values[:, members].sum(axis=1)
        own = [j for j in members if names[j] == predictor]
        one_hot = len(members) > 1 and all(names[j].startswith(f"{predictor}_") for j in members)
        if own:
            data[:, k] = parts.encoded[:, own[0]]
        elif one_hot:
            block = parts.encoded[:, members]
            chosen = (block == 1).any(axis=1)
            data[chosen, k] = np.argmax(block[chosen] == 1, axis=1)
        else:
            data[:, k] = parts.encoded[:, members[0]]
        if predictor in contract and predictor in X.columns:
            text[:, k] = _column_text(X, predictor)
        elif one_hot:
            # the category whose column is set ("comparator: saline" -> "saline")
            categories = [fmap["label"].iloc[j].split(": ", 1)[-1] for j in members]
            text[:, k] = [
                "missing"
                if np.isnan(row).all()
                else (categories[int(np.argmax(row == 1))] if (row == 1).any() else "none")
                for row in parts.encoded[:, members]
            ]
        elif names[members[0]] in _DERIVED_FLAGS:  # "yes = active drug", not "1 = ..."
            flag = parts.encoded[:, members[0]]
            text[:, k] = np.where(np.isnan(flag), "missing", np.where(flag == 1, "yes", "no"))
        else:
            text[:, k] = _display(parts.encoded[:, members[0]], units.get(names[members[0]], ""))
        if predictor in contract:
            labels.append(column(predictor).clinical_label)
        elif one_hot:  # "comparator: saline" -> "comparator"
            labels.append(fmap["label"].iloc[members[0]].split(": ", 1)[0])
        else:
            labels.append(fmap["label"].iloc[members[0]])
    return summed, data, text, labels


def _explanation(parts: _Parts, X: pd.DataFrame, level: str, scale: str) -> shap.Explanation:
    import shap

    values, base = _on_scale(parts, scale)
    if level == "feature":
        data, text = parts.encoded, _display(parts.encoded)
        labels = list(parts.feature_map["label"])
    else:
        values, data, text, labels = _by_predictor(parts, X, values)
    # no instance names: the table's index may hold patient identifiers
    return shap.Explanation(
        values=values,
        base_values=base,
        data=data,
        display_data=text,
        feature_names=labels,
        output_names=_scale_words(parts.outcome, scale),
    )


def _refuse(name: str, value: Any, message: str) -> NoReturn:
    """Raise the one ValidationError of an argument ``explain`` and its helpers cannot use."""
    raise ValidationError([Problem(name, value, message)], "arguments")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        _refuse(
            name,
            value,
            f"got {name}={short_repr(value)}, but expected one of {', '.join(map(repr, allowed))}",
        )


def explain(
    model: Any,
    X: pd.DataFrame,
    outcome: str | None = None,
    *,
    level: str = "feature",
    scale: str = "log-odds",
) -> shap.Explanation:
    """Exact SHAP values of a fitted model for the patients in ``X``, as a shap Explanation.

    Parameters
    ----------
    model : OutcomeModel or RiskModel
        A model with a feature set. For a RiskModel, ``outcome`` picks the outcome.
    X : DataFrame
        Patients (a validated patient table), at least one.
    outcome : str, optional
        For a RiskModel, the outcome to explain (default: its first). For an
        OutcomeModel, its own outcome if given.
    level : {"feature", "predictor"}, default="feature"
        One column per encoded feature (what the trees split on: ``diagnosis: TRD``), or
        per clinical predictor (the encoded columns of one predictor summed:
        ``diagnosis``).
    scale : {"log-odds", "probability"}, default="log-odds"
        ``"log-odds"``: SHAP values of the margin (log-odds before calibration), and
        ``base_values + values.sum(1)`` is each patient's margin. ``"probability"``:
        percentage points of the calibrated risk (with a RiskModel's recalibration),
        ``base_values`` the risk (%) at the base margin and ``base_values + values.sum(1)``
        each patient's risk (%), as in the clinician report.

    Returns
    -------
    shap.Explanation
        ``values`` (patients x columns), ``base_values`` (one per patient, all equal),
        ``data`` (numeric, for shap's colours: encoded values, NaN where missing; by
        predictor, the patient's value of a numeric or yes/no predictor as 0/1 and a
        category's position), ``display_data`` (the values as text, "missing" where
        missing), ``feature_names`` (clinical labels) and ``output_names`` (the outcome
        and the scale, e.g. ``"response: log-odds (margin before calibration)"``). No
        patient identifier is kept.

    Raises
    ------
    ValidationError
        If ``model`` is neither an OutcomeModel nor a RiskModel, has no such outcome or no
        feature set; if ``level`` or ``scale`` is not one of the above; or if ``X`` has no
        rows or a bad cell.

    See Also
    --------
    importance : mean absolute SHAP value of each column, largest first.
    top_drivers : the largest contributions for one patient.
    shap_figures : beeswarm, bar chart and waterfall, as logged with a run.

    Examples
    --------
    >>> import numpy as np, shap
    >>> from ketapredict import explain, load_model, simulate_cohort
    >>> from ketapredict.models import outcome_models
    >>> model = load_model()  # the demo RiskModel
    >>> patients = simulate_cohort(n=50, seed=0)
    >>> e = explain(model, patients, "response")
    >>> e.shape
    (50, 41)
    >>> e.output_names
    'response: log-odds (margin before calibration)'
    >>> total = e.base_values + e.values.sum(axis=1)
    >>> fitted = outcome_models(model)["response"]
    >>> bool(np.allclose(total, fitted.margin(patients), atol=1e-4))
    True
    >>> ax = shap.plots.waterfall(e[0], show=False)

    By clinical predictor, in percentage points of the calibrated risk:

    >>> by_predictor = explain(model, patients, "response", level="predictor",
    ...                        scale="probability")
    >>> "diagnosis" in by_predictor.feature_names
    True
    >>> risk = by_predictor.base_values + by_predictor.values.sum(axis=1)
    >>> bool(np.allclose(risk, 100 * model.predict_proba(patients)["response"], atol=1e-4))
    True
    """
    _check_choice("level", level, _LEVELS)
    _check_choice("scale", scale, _SCALES)
    return _explanation(_parts(model, X, outcome), X, level, scale)


def importance(explanation: shap.Explanation) -> pd.DataFrame:
    """Global importance: each column's mean absolute SHAP value, largest first.

    The same numbers as shap's ``explanation.abs.mean(0)``, as a table.

    Parameters
    ----------
    explanation : shap.Explanation
        Several patients (two dimensions), e.g. from :func:`explain`.

    Returns
    -------
    DataFrame
        Indexed by feature name: ``mean_abs_shap`` (on the explanation's scale) and
        ``share`` of their total.

    Examples
    --------
    >>> import numpy as np, shap
    >>> from ketapredict.explanation import importance
    >>> e = shap.Explanation(np.array([[0.2, -1.0], [-0.4, 0.8]]), base_values=np.zeros(2),
    ...                      feature_names=["age", "diagnosis"])
    >>> importance(e)
               mean_abs_shap  share
    feature
    diagnosis            0.9   0.75
    age                  0.3   0.25
    """
    values = np.asarray(explanation.values, dtype=float)
    if values.ndim != 2:
        _refuse(
            "explanation",
            None,
            "importance needs an explanation of several patients (2 "
            f"dimensions); got shape {values.shape}",
        )
    mean = np.abs(values).mean(axis=0)
    total = mean.sum()
    table = pd.DataFrame(
        {"mean_abs_shap": mean, "share": mean / total if total > 0 else np.zeros_like(mean)},
        index=pd.Index(list(explanation.feature_names), name="feature"),
    )
    return table.sort_values("mean_abs_shap", ascending=False, kind="stable")


def top_drivers(explanation: shap.Explanation, k: int = 5) -> pd.DataFrame:
    """The ``k`` largest contributions for one patient, largest absolute first.

    A field the patient's record lacks is never a driver: its contribution says where the
    data came from (which trial measured what), not how the patient will fare, so it is
    left out here, as the clinician's report leaves it out.

    Parameters
    ----------
    explanation : shap.Explanation
        One patient (one dimension), e.g. ``explain(model, X, level="predictor")[3]``.
    k : int, default=5
        How many.

    Returns
    -------
    DataFrame
        ``feature`` (clinical label), ``value`` (the patient's value as text) and
        ``contribution`` (on the explanation's scale; positive raises the risk).

    Examples
    --------
    >>> import numpy as np, shap
    >>> from ketapredict.explanation import top_drivers
    >>> e = shap.Explanation(np.array([0.2, -1.0, 0.05]), base_values=-0.3,
    ...                      data=np.array([61.0, 1.0, 0.0]),
    ...                      feature_names=["age", "diagnosis: TRD", "sex: male"])
    >>> top_drivers(e, k=2)
              feature value  contribution
    0  diagnosis: TRD     1          -1.0
    1             age    61           0.2
    """
    values = np.asarray(explanation.values, dtype=float)
    if values.ndim != 1:
        _refuse(
            "explanation",
            None,
            "top_drivers needs one patient's explanation (1 "
            f"dimension), e.g. explanation[0]; got shape {values.shape}",
        )
    shown = explanation.display_data
    if shown is None:
        shown = _display(np.asarray(explanation.data, dtype=float))
    recorded = np.array([str(v) != "missing" for v in np.asarray(shown, dtype=object)])
    order = [j for j in np.argsort(-np.abs(values), kind="stable") if recorded[j]][:k]
    names = list(explanation.feature_names)
    return pd.DataFrame(
        {
            "feature": [names[j] for j in order],
            "value": [str(shown[j]) for j in order],
            "contribution": values[order],
        }
    )


def composite_patient(X: pd.DataFrame, row: int = 0) -> pd.DataFrame:
    """A made-up typical patient of a table, for figures that show one patient's values.

    The schedule (regimen columns and the trial) is that of row ``row``: a trial's
    protocol, not a person's data. Every baseline field is the table's median (numbers;
    counts rounded) or most common value (categories, yes/no) among the patients of the
    most common diagnosis, so the record keeps the contract's rules (a TRD patient has
    failed at least two treatments). Identifiers are left empty. A figure of a real
    patient would carry their whole record into a report or an MLflow run.

    Parameters
    ----------
    X : DataFrame
        Patients (a validated table).
    row : int, default=0
        Position of the row whose schedule the composite takes.

    Returns
    -------
    DataFrame
        One row: the regimen columns, ``trial_id`` and the baseline columns of ``X`` (no
        identifier, outcome, visit score, true probability or site).

    Raises
    ------
    ValidationError
        With fewer than :data:`MIN_COMPOSITE` patients of the most common diagnosis.

    Examples
    --------
    >>> from ketapredict import simulate_cohort
    >>> from ketapredict.explanation import composite_patient
    >>> cohort = simulate_cohort(n=500, seed=3)
    >>> typical = composite_patient(cohort)
    >>> "patient_id" in typical or "response" in typical
    False
    >>> same = cohort[cohort["diagnosis"] == typical["diagnosis"].item()]
    >>> bool(typical["age"].item() == same["age"].median())
    True
    """

    # the schedule and the trial only: no identifier, outcome, visit, truth or site
    kept = [c for c in X.columns if c in set(columns("regimen")) | {"trial_id"}]
    one = X.iloc[[row]][kept].copy()
    peers = X
    if "diagnosis" in X.columns and X["diagnosis"].notna().any():
        peers = X[X["diagnosis"] == X["diagnosis"].mode().iloc[0]]
    if len(peers) < MIN_COMPOSITE:
        raise ValidationError(
            [
                Problem(
                    None,
                    len(peers),
                    f"a composite patient needs at least {MIN_COMPOSITE} patients of the most "
                    f"common diagnosis; got {len(peers)}: with fewer it would be close to one "
                    "real record",
                )
            ],
            "patient table",
        )
    for name in columns("baseline"):
        if name not in X.columns:
            continue
        known = peers[name].dropna()
        if known.empty:
            value = None
        elif column(name).kind == "float":
            value = float(known.median())
        elif column(name).kind == "int":
            value = float(np.floor(known.astype(float).median() + 0.5))
        else:
            value = known.mode().iloc[0]
        one[name] = pd.Series([value], index=one.index, dtype=X[name].dtype)
    return one


def shap_figures(
    model: Any,
    X: pd.DataFrame,
    outcome: str | None = None,
    *,
    title: str,
    each_patient: bool = True,
) -> dict[str, Figure]:
    """The SHAP figures logged with a run, drawn by shap's own plots.

    - ``shap_beeswarm.png`` (with ``each_patient``): each patient's SHAP value of each
      encoded feature (log-odds), coloured by the feature's value (grey where missing): a
      dot per patient, so not for real patients' runs;
    - ``shap_bar_by_predictor.png``: mean absolute SHAP value by clinical predictor
      (log-odds);
    - ``shap_waterfall_example.png`` (with at least :data:`MIN_COMPOSITE` patients of the
      most common diagnosis): a composite typical patient
      (:func:`composite_patient`: the schedule of the patient whose predicted risk is
      closest to the median, each baseline field the sample's median or most common
      value), by clinical predictor in percentage points of the calibrated risk. No real
      patient's record is drawn: the figures go into MLflow runs, where patient rows must
      never go.

    Parameters
    ----------
    model : OutcomeModel or RiskModel
        A model with a feature set, as for :func:`explain`.
    X : DataFrame
        Patients to explain (a sample of a few hundred is plenty).
    outcome : str, optional
        For a RiskModel, the outcome (default: its first).
    title : str
        Names the outcome, experiment and feature set; heads every figure.
    each_patient : bool, default=True
        Draw the beeswarm, whose dots are single patients' values; runs on real patients
        leave it out (the bar chart and the composite's waterfall are summaries).

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        By file name. The caller closes them (``matplotlib.pyplot.close(figure)``).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from ketapredict import load_model, simulate_cohort
    >>> from ketapredict.explanation import shap_figures
    >>> patients = simulate_cohort(n=100, seed=1)
    >>> figures = shap_figures(load_model(), patients, "dissociation",
    ...                        title="dissociation, demo model, core features")
    >>> sorted(figures)
    ['shap_bar_by_predictor.png', 'shap_beeswarm.png', 'shap_waterfall_example.png']
    >>> for figure in figures.values():
    ...     plt.close(figure)
    """
    import matplotlib.pyplot as plt
    import shap

    from .evaluate import active_drug
    from .regimen import schedules_in_words

    parts = _parts(model, X, outcome)
    features = _explanation(parts, X, "feature", "log-odds")
    predictors = _explanation(parts, X, "predictor", "log-odds")
    risk = _explanation(parts, X, "predictor", "probability")
    # the schedule of the row whose predicted risk is closest to the median, among the
    # active-drug courses when there are any (a comparator's course explains a placebo)
    predicted = risk.base_values + np.asarray(risk.values).sum(axis=1)
    active = active_drug(X)
    among = np.flatnonzero(active) if active.any() else np.arange(len(X))
    middle = among[np.argmin(np.abs(predicted[among] - np.median(predicted[among])))]
    try:
        typical = composite_patient(X, int(middle))
    except ValidationError:  # too few patients for a composite that is no one's record
        example = None
    else:
        example = _explanation(
            _parts(model, typical, outcome), typical, "predictor", "probability"
        )

    figures = {}
    with plt.rc_context({"font.size": 11, "figure.dpi": 110}):
        if each_patient:
            figure, ax = plt.subplots(figsize=(9, 0.4 * _MAX_DISPLAY + 2))
            shap.plots.beeswarm(
                features, max_display=_MAX_DISPLAY, show=False, ax=ax, plot_size=None
            )
            ax.set_xlabel("SHAP value (log-odds, before calibration)", fontsize=12)
            ax.set_title(f"{title}\nSHAP values by encoded feature", fontsize=12)
            figure.tight_layout()
            figures["shap_beeswarm.png"] = figure

        figure, ax = plt.subplots(figsize=(9, 0.4 * _MAX_DISPLAY + 2))
        shap.plots.bar(predictors, max_display=_MAX_DISPLAY, show=False, ax=ax)
        ax.set_xlabel("mean |SHAP value| (log-odds, before calibration)", fontsize=12)
        # a mean of absolute values has no sign (shap writes "+0.72"), and the last bar
        # is the rest of the predictors, not of the encoded features
        for text in ax.texts:
            text.set_text(text.get_text().lstrip("+"))
        ax.set_yticks(
            ax.get_yticks(),
            [
                re.sub(
                    r"^Sum of (\d+) other features$", r"\1 other predictors together", t.get_text()
                )
                for t in ax.get_yticklabels()
            ],
        )
        # over the figure, not the axes, which the long predictor names push to the right
        figure.suptitle(f"{title}\nImportance by clinical predictor", fontsize=12)
        figure.tight_layout()
        figures["shap_bar_by_predictor.png"] = figure

        if example is None:
            return figures
        figure = plt.figure()
        shap.plots.waterfall(example[0], max_display=12, show=False)
        # wider than the others: the labels carry values and units, the bars need room
        figure.set_size_inches(11, figure.get_size_inches()[1] + 1.2)
        # and room left of the leftmost bar for its number (shap writes a short bar's
        # number beside it, over the labels otherwise); the twin axes that carry
        # E[f(X)] and f(x) keep the same limits, so their marks stay in place
        for ax in figure.axes:
            low, high = ax.get_xlim()
            ax.set_xlim(low - 0.1 * (high - low), high)
        schedule = schedules_in_words(typical).iloc[0]
        figure.suptitle(
            f"{title}\nA composite typical patient, not a real one (each baseline field "
            f"the sample's median or most common value),\non {schedule}: "
            "percentage points of the calibrated risk from the reference risk E[f(X)]",
            fontsize=12,
        )
        # room on the right for shap's "E[f(X)] = ..." and "f(x) = ..." labels, which
        # tight_layout does not see (they sit on twin axes at the ends of the bars)
        figure.tight_layout(rect=(0, 0, 0.92, 1))
        figures["shap_waterfall_example.png"] = figure
    return figures

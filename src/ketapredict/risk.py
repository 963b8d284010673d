"""RiskModel: every outcome's model for one patient and dose schedule, and its files.

A :class:`RiskModel` bundles one fitted :class:`~ketapredict.OutcomeModel` per outcome with
its bootstrap replicates (for intervals) and a summary of the training distribution (for
out-of-distribution warnings). It scores with numpy alone: the trees are compiled into a
:class:`~ketapredict.trees.TreeEnsemble`, so loading a saved model and scoring a patient
imports neither XGBoost nor scikit-learn (the clinician path, :mod:`ketapredict.clinic`).

Saved models are JSON and UBJSON files with a manifest of sha256 checksums; nothing is
pickled, and loading refuses a changed or incompatible file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .encoding import Columns, FeatureSet, encode, feature_map, spec_from_dict, spec_to_dict
from .exceptions import ModelFileError, Problem, ValidationError
from .trees import MAX_LOG_ODDS, TreeEnsemble, calibrated_log_odds

__all__ = ["OUTCOMES", "RiskModel"]

OUTCOMES = ("response", "remission", "cognitive_decline", "dissociation")
FORMAT = "ketapredict-risk-model"
# Bump on any change of the saved layout; loading refuses other versions.
FORMAT_VERSION = 2
# Bootstrap replicates per outcome: 20 estimate the spread of the log-odds to within about
# 16% (relative standard error 1/sqrt(2(B-1))) at a cost of 20 tree sets per prediction.
REPLICATES = 20
# Two-sided 90% intervals from the replicates' standard deviation, with Student's t on
# B - 1 degrees of freedom because B is small: t(0.95, 19) (tables of the t distribution).
_T95 = {19: 1.729}
# Training-distribution summaries: each continuous feature's 0.5-99.5% range (percentiles,
# not extremes, so no single patient's value is stored) and the 99th percentile of the
# training patients' Mahalanobis distance.
_RANGE = (0.5, 99.5)
_JOINT_QUANTILE = 99.0


def _t95(df: int) -> float:
    if df in _T95:
        return _T95[df]
    from scipy import stats

    return float(stats.t.ppf(0.95, df))


@dataclass
class _Outcome:
    """What scoring one outcome needs, without scikit-learn or XGBoost objects."""

    outcome: str
    spec: FeatureSet
    feature_names: list[str]
    feature_names_in: list[str]
    trees: TreeEnsemble  # member 0: the fitted model; members 1..B: bootstrap replicates
    calibrators: list[dict[str, Any]]
    z: float | None  # interval multiplier, None without replicates
    state: dict[str, Any] = field(default_factory=dict)  # saved OutcomeModel state
    model: Any = None  # the OutcomeModel, restored on demand


def _encoding_key(state: _Outcome) -> str:
    """Equal for outcomes whose features are encoded alike (computed once per outcome)."""
    key = state.__dict__.get("_key")
    if key is None:
        key = state.__dict__["_key"] = json.dumps([spec_to_dict(state.spec), state.feature_names])
    return key


class RiskModel:
    """The risk of every outcome for a patient and a dose schedule.

    One calibrated :class:`~ketapredict.OutcomeModel` per outcome, with bootstrap
    replicates for 90% intervals and a summary of the training data for
    out-of-distribution warnings. Build one with :meth:`fit`, save it with :meth:`save`,
    read it with :meth:`load` or :func:`ketapredict.load_model`; score patients with
    :meth:`predict_proba`, :meth:`predict_interval` or :meth:`score`.

    Parameters
    ----------
    models : mapping of str to OutcomeModel
        Fitted models by outcome.
    provenance : mapping, optional
        Where the model comes from: ``name``, ``data_kind`` ("simulated" or "real"),
        ``trained`` (date), ``n_patients``, ``metrics``, ``notes``... Saved with the model
        and shown in every report.
    replicates : mapping of str to list, optional
        Per outcome, bootstrap replicates from :meth:`OutcomeModel.replicates`. Without
        them the model gives no intervals.
    reference : mapping, optional
        The training-distribution summary (see :meth:`fit`).

    Attributes
    ----------
    outcomes : list of str
    models : dict of str to OutcomeModel
        Restored from the files on first use (this imports XGBoost).
    provenance : dict
    reference : dict

    Examples
    --------
    >>> from ketapredict import RiskModel, simulate_cohort
    >>> cohort = simulate_cohort(n=2000, seed=0)
    >>> model = RiskModel.fit(cohort, outcomes=["response", "dissociation"], replicates=5)
    >>> model.predict_proba(cohort.head(3)).columns.tolist()
    ['response', 'dissociation']
    >>> interval = model.predict_interval(cohort.head(3))
    >>> bool(((interval["low"] <= interval["probability"])
    ...       & (interval["probability"] <= interval["high"])).all())
    True
    """

    def __init__(
        self,
        models: Mapping[str, Any],
        provenance: Mapping | None = None,
        *,
        replicates: Mapping[str, Sequence[tuple[Any, dict]]] | None = None,
        reference: Mapping[str, Any] | None = None,
    ):
        from sklearn.utils.validation import check_is_fitted

        if not models:
            raise ValueError("A RiskModel needs at least one fitted OutcomeModel.")
        self._outcomes: dict[str, _Outcome] = {}
        for outcome, model in models.items():
            check_is_fitted(model, "booster_")
            if model.features is None:
                raise ValueError(
                    f"The {outcome!r} model was fitted without a feature set; a "
                    "RiskModel scores patient tables."
                )
            extra = list((replicates or {}).get(outcome, []))
            self._outcomes[outcome] = _Outcome(
                outcome=outcome,
                spec=model.encoder_.spec_,
                feature_names=list(model.feature_names_),
                feature_names_in=list(model.feature_names_in_),
                trees=TreeEnsemble.from_xgboost([model.booster_, *(b for b, _ in extra)]),
                calibrators=[model.calibrator_, *(c for _, c in extra)],
                z=_t95(len(extra) - 1) if len(extra) >= 2 else None,
                model=model,
            )
        self.provenance = dict(provenance or {})
        self.reference = dict(reference or {})

    @property
    def outcomes(self) -> list[str]:
        return list(self._outcomes)

    @property
    def models(self) -> dict[str, Any]:
        for state in self._outcomes.values():
            if state.model is None:
                state.model = _restore(state.state, self._path)
        return {o: s.model for o, s in self._outcomes.items()}

    # -- fitting ----------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        data: pd.DataFrame,
        outcomes: Sequence[str] = OUTCOMES,
        *,
        features: str | Path = "core",
        provenance: Mapping | None = None,
        replicates: int = REPLICATES,
        random_state: int = 0,
        **params: Any,
    ) -> RiskModel:
        """Fit one OutcomeModel per outcome on ``data``, with bootstrap replicates.

        Rows without an outcome (e.g. untested cognition) are left out of that outcome's
        model only.

        Parameters
        ----------
        data : DataFrame
            A validated patient table with the outcome columns.
        outcomes : sequence of str
            Outcome columns to model, by default the four of :data:`OUTCOMES`.
        features : str or path-like, default="core"
            Feature set shared by the models.
        provenance : mapping, optional
            Added to the model's provenance (``n_patients``, ``feature_set`` and
            ``intervals`` are set).
        replicates : int, default=20
            Bootstrap replicates per outcome for the 90% intervals (0: no intervals).
        random_state : int, default=0
            Seed of the models and the bootstrap.
        **params
            OutcomeModel parameters shared by all outcomes.

        Returns
        -------
        RiskModel
        """
        from .models import OutcomeModel

        models, extra = {}, {}
        for outcome in outcomes:
            if outcome not in data.columns:
                raise ValidationError(
                    [Problem(outcome, None, f"outcome column {outcome!r} is not in the data")],
                    "data",
                )
            rows = data[data[outcome].notna()]
            model = OutcomeModel(outcome, features, random_state=random_state, **params)
            models[outcome] = model.fit(rows)
            if replicates:
                extra[outcome] = model.replicates(rows, n_replicates=replicates)
        record = {
            "n_patients": len(data),
            "feature_set": str(features),
            "replicates": replicates,
            "intervals": (
                f"90% intervals from {replicates} bootstrap replicates per outcome (logit "
                "scale, Student t): how much the estimate would move with another training "
                "sample of this size; they leave out the model's own bias"
                if replicates
                else "none"
            ),
            **(provenance or {}),
        }
        risk = cls(models, record, replicates=extra)
        risk.reference = risk._summarise(data)
        return risk

    def _summarise(self, data: pd.DataFrame) -> dict[str, Any]:
        """The training distribution of the encoded features, for OOD warnings."""
        first = next(iter(self._outcomes.values()))
        X = self._matrix(first, data)
        names = first.feature_names
        binary = [np.isin(x[~np.isnan(x)], (0.0, 1.0)).all() for x in X.T]
        continuous = [j for j in range(X.shape[1]) if not binary[j]]
        with np.errstate(all="ignore"):
            low, high = np.nanpercentile(X[:, continuous], _RANGE, axis=0)
            mean = np.nanmean(X[:, continuous], axis=0)
            sd = np.nanstd(X[:, continuous], axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        z = (X[:, continuous] - mean) / sd
        # covariance with missing values at the mean (slightly shrunk where values are
        # often missing); distances use only the features a patient has
        covariance = np.cov(np.nan_to_num(z), rowvar=False) + 1e-3 * np.eye(len(continuous))
        distance = joint_distance(z, covariance)
        return {
            "features": names,
            "continuous": [names[j] for j in continuous],
            "low": low.tolist(),
            "high": high.tolist(),
            "mean": mean.tolist(),
            "sd": sd.tolist(),
            "covariance": covariance.tolist(),
            "joint_threshold": float(np.percentile(distance, _JOINT_QUANTILE)),
            "seen_categories": [
                names[j] for j in range(X.shape[1]) if binary[j] and np.nanmax(X[:, j]) == 1
            ],
            "binary": [names[j] for j in range(X.shape[1]) if binary[j]],
        }

    # -- scoring ----------------------------------------------------------------------------
    def _matrix(self, state: _Outcome, frame: Any) -> np.ndarray:
        encoded = encode(state.spec, frame)
        return np.column_stack([encoded[name] for name in state.feature_names]).astype(float)

    def _encoded(self, frame: Any) -> dict[str, np.ndarray]:
        """Encoded features per outcome; outcomes sharing a feature set share the work."""
        done: dict[str, np.ndarray] = {}
        out = {}
        for outcome, state in self._outcomes.items():
            key = _encoding_key(state)
            if key not in done:
                done[key] = self._matrix(state, frame)
            out[outcome] = done[key]
        return out

    def _stacked(self) -> tuple[TreeEnsemble, list[int]] | None:
        """Every outcome's trees as one ensemble (when they share their features), so one
        patient's trees are all walked at once; and where each outcome's members start."""
        if "_stack" not in self.__dict__:
            states = list(self._outcomes.values())
            shared = len({_encoding_key(s) for s in states}) == 1
            self._stack = (
                (
                    TreeEnsemble.concatenate([s.trees for s in states]),
                    np.cumsum([0, *(s.trees.n_members for s in states)]).tolist(),
                )
                if shared
                else None
            )
        return self._stack

    def _log_odds(
        self, state: _Outcome, X: np.ndarray, members: bool, margins: np.ndarray | None = None
    ) -> np.ndarray:
        """Calibrated log-odds, shape (n, 1) or (n, 1 + replicates)."""
        if margins is None:
            margins = state.trees.margins(X, members=None if members else 1)
        k = margins.shape[1]
        if all(c["method"] == "sigmoid" for c in state.calibrators[:k]):
            a = np.array([c["a"] for c in state.calibrators[:k]])
            b = np.array([c["b"] for c in state.calibrators[:k]])
            return np.clip(margins * a + b, -MAX_LOG_ODDS, MAX_LOG_ODDS)
        return np.column_stack(
            [calibrated_log_odds(margins[:, j], state.calibrators[j]) for j in range(k)]
        )

    def _table(self, X: Any, validated: bool) -> Any:
        if isinstance(X, Columns) or validated:
            return X
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"expected a patient table (DataFrame); got {type(X).__name__}")
        # spellings are normalised ("IV" -> "iv") and every bad cell is reported at once;
        # columns the contract does not know are no model's input and are left out
        from .schema import _known, validate

        return validate(X[[c for c in X.columns if _known(c)]], what="patient table")

    def predict_proba(self, X: pd.DataFrame, *, validated: bool = False) -> pd.DataFrame:
        """The calibrated probability of each outcome, one column each.

        Every probability lies between 1e-4 and 1 - 1e-4; none is NaN.

        Parameters
        ----------
        X : DataFrame
            Patients (baseline and regimen columns; others are ignored).
        validated : bool, default=False
            Whether ``X`` already went through :func:`ketapredict.validate` (skips doing it
            again, which takes most of the time for large tables).

        Raises
        ------
        ValidationError
            Naming every bad cell, unless ``validated``.
        """
        X = self._table(X, validated)
        encoded = self._encoded(X)
        probabilities = {}
        for outcome, state in self._outcomes.items():
            log_odds = self._log_odds(state, encoded[outcome], members=False)[:, 0]
            probabilities[outcome] = 1.0 / (1.0 + np.exp(-log_odds))
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(probabilities, index=index)

    def predict_interval(self, X: pd.DataFrame, *, validated: bool = False) -> pd.DataFrame:
        """Probabilities with 90% intervals, one row per (patient, outcome).

        The interval is ``sigmoid(l +- t * s)``: ``l`` the model's calibrated log-odds,
        ``s`` the standard deviation of the bootstrap replicates' calibrated log-odds and
        ``t`` Student's 95th percentile on B - 1 degrees of freedom. It lies in (0, 1) and
        always holds the estimate. It shows the estimate's sampling uncertainty, not the
        model's bias.

        Parameters
        ----------
        X : DataFrame
            Patients, as for :meth:`predict_proba`.
        validated : bool, default=False
            Whether ``X`` already went through :func:`ketapredict.validate`.

        Returns
        -------
        DataFrame
            Columns ``row`` (the index label of ``X``), ``outcome``, ``probability``,
            ``low``, ``high``.
        """
        X = self._table(X, validated)
        rows = X.index.to_numpy() if isinstance(X, pd.DataFrame) else np.arange(len(X))
        frames = [
            pd.DataFrame(
                {"row": rows, "outcome": outcome, "probability": p, "low": lo, "high": hi}
            )
            for outcome, (p, lo, hi) in self._intervals(self._encoded(X)).items()
        ]
        return pd.concat(frames, ignore_index=True)

    def _intervals(self, encoded: Mapping[str, np.ndarray]) -> dict[str, tuple]:
        stacked = self._stacked() if len(next(iter(encoded.values()))) <= 8 else None
        if stacked is not None:
            ensemble, starts = stacked
            every = ensemble.margins(next(iter(encoded.values())))
        out = {}
        for i, (outcome, state) in enumerate(self._outcomes.items()):
            margins = every[:, starts[i] : starts[i + 1]] if stacked is not None else None
            if margins is not None and state.z is None:
                margins = margins[:, :1]
            log_odds = self._log_odds(
                state, encoded[outcome], members=state.z is not None, margins=margins
            )
            centre = log_odds[:, 0]
            if state.z is None:
                low = high = centre
            else:
                spread = log_odds[:, 1:] - log_odds[:, 1:].mean(axis=1, keepdims=True)
                sd = np.sqrt((spread**2).sum(axis=1) / (log_odds.shape[1] - 2))
                half = state.z * sd
                low = np.clip(centre - half, -MAX_LOG_ODDS, MAX_LOG_ODDS)
                high = np.clip(centre + half, -MAX_LOG_ODDS, MAX_LOG_ODDS)
            out[outcome] = tuple(1.0 / (1.0 + np.exp(-v)) for v in (centre, low, high))
        return out

    def score(
        self,
        patient: Any,
        regimen: Any = None,
        *,
        horizon_day: float | None = None,
        drivers: bool | str = True,
    ):
        """A risk report for a patient on a dose schedule, at a stated day.

        Parameters
        ----------
        patient : dict, Series or DataFrame
            Baseline fields of the data contract (missing optional fields are allowed and
            listed in the report). It may hold the regimen fields too; outcome, truth and
            group columns are ignored, and an identifier is never reported. A DataFrame
            gives one report per row.
        regimen : Regimen, dict or None
            The dose schedule; None takes it from the patient's fields. A given regimen
            replaces the patient's own regimen fields (the report says so).
        horizon_day : float, optional
            The day after the first session the probabilities are for (day 1 is 24 h). Not
            given: the record's ``endpoint_day`` if it has one and no regimen is given, else
            the schedule's end point (24 h after its last session). The report states which
            (``report.horizon``).
        drivers : bool or "all", default=True
            True: the top 5 of the patient's own predictors for each outcome (exact SHAP
            values of the trees), and the dose schedule and horizon together in one figure
            (``schedule_points``), since the clinician chose them. "all": the top 5 of every
            predictor, schedule included. False: none (faster).

        Returns
        -------
        RiskReport or list of RiskReport

        Raises
        ------
        ValidationError
            Naming every bad field, its value and what is allowed.

        Examples
        --------
        >>> from ketapredict import Regimen, load_model
        >>> model = load_model()
        >>> patient = {"age": 46, "sex": "female", "diagnosis": "TRD",
        ...            "madrs_baseline": 34, "n_failed_treatments": 3}
        >>> course = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40,
        ...                  sessions_per_week=2, n_sessions=8)
        >>> report = model.score(patient, course, horizon_day=28)
        >>> report.horizon
        'day 28 after the first session (as given)'
        >>> risk = report["response"]
        >>> bool(0 < risk.low <= risk.probability <= risk.high < 1)
        True
        >>> len(risk.drivers)
        5
        >>> "virtual cohort" in str(report)
        True
        """
        from .clinic import score

        return score(self, patient, regimen, horizon_day=horizon_day, drivers=drivers)

    def compare_regimens(
        self, patient: Any, regimens: Any = None, *, horizon_day: float | None = None
    ) -> pd.DataFrame:
        """Rank dose schedules for one patient by response at one common day, marking
        dominated ones.

        Parameters
        ----------
        patient : dict, Series or one-row DataFrame
            Baseline fields, as for :meth:`score`.
        regimens : sequence of Regimen or dict, or mapping of name to them, optional
            By default the standard grid of :func:`ketapredict.regimen_grid`.
        horizon_day : float, optional
            The day after the first session every schedule is assessed at. Not given: the
            latest end point among the schedules (24 h after its last session), so that
            every course is over and none is judged at its own, different day.

        Returns
        -------
        DataFrame
            One row per regimen, sorted by response probability: ``regimen``; each
            outcome's probability with ``_low`` and ``_high`` (90% interval);
            ``warnings`` (how many the report gave, e.g. outside the training data); and
            ``dominated``, true when another regimen has at least the response probability
            and at most the cognitive-decline probability, and is better on one. Dominance
            reads the point estimates of those two outcomes only: where intervals overlap
            the difference may not be real, and remission and dissociation are in the table
            to weigh too. ``horizon_day`` on every row (and in ``table.attrs``) says the
            common day.

        Examples
        --------
        >>> from ketapredict import load_model
        >>> model = load_model()
        >>> table = model.compare_regimens({"age": 46, "sex": "female", "diagnosis": "TRD",
        ...                                 "madrs_baseline": 34})
        >>> table[["regimen", "response", "cognitive_decline", "dominated"]].shape[0]
        21
        >>> round(table.attrs["horizon_day"], 2)  # 24 h after the last of 12 sessions
        26.67
        """
        from .clinic import compare_regimens

        return compare_regimens(self, patient, regimens, horizon_day=horizon_day)

    @property
    def has_intervals(self) -> bool:
        return all(s.z is not None for s in self._outcomes.values())

    # -- files ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model as JSON and UBJSON files plus ``manifest.json`` with checksums.

        Each outcome has ``<outcome>.json`` (parameters, feature set, calibrators),
        ``<outcome>.ubj`` (XGBoost's own format, for :attr:`models`) and
        ``<outcome>.trees.json`` (the compiled trees of the model and its replicates, for
        scoring without XGBoost).

        Parameters
        ----------
        path : str or path-like
            A new or empty directory.

        Returns
        -------
        Path
        """
        from . import __version__

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if any(path.iterdir()):
            raise FileExistsError(f"{str(path)!r} is not empty; save a model to a new directory.")
        files = []
        models = self.models
        for outcome, state in self._outcomes.items():
            model = models[outcome]
            booster = f"{outcome}.ubj"
            model.booster_.save_model(path / booster)
            record = {
                "outcome": outcome,
                "params": {
                    k: (str(v) if isinstance(v, Path) else v)
                    for k, v in model.get_params().items()
                },
                "feature_set": spec_to_dict(state.spec),
                "feature_names": state.feature_names,
                "feature_names_in": state.feature_names_in,
                "classes": [v.item() if hasattr(v, "item") else v for v in model.classes_],
                "n_rounds": model.n_rounds_,
                "min_child_weight": model.min_child_weight_,
                "calibrator": model.calibrator_,
                "replicate_calibrators": state.calibrators[1:],
                "interval_z": state.z,
                "booster": booster,
                "trees": f"{outcome}.trees.json",
            }
            (path / f"{outcome}.json").write_text(json.dumps(record, indent=1))
            (path / f"{outcome}.trees.json").write_text(
                json.dumps(state.trees.to_dict(), separators=(",", ":"))
            )
            files += [f"{outcome}.json", booster, f"{outcome}.trees.json"]
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "ketapredict_version": __version__,
            "saved": time.strftime("%Y-%m-%d"),
            "outcomes": self.outcomes,
            "provenance": self.provenance,
            "reference": {k: v for k, v in self.reference.items() if not k.startswith("_")},
            "files": {name: _sha256(path / name) for name in sorted(files)},
        }
        # the provenance (what the model is, and that it is not for clinical decisions) and
        # the reference are checked on loading like the files
        manifest["content_sha256"] = _content_digest(manifest)
        (path / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> RiskModel:
        """Read a saved model, verifying every file against the manifest's checksums.

        Neither XGBoost nor scikit-learn is imported until :attr:`models` is used.

        Parameters
        ----------
        path : str or path-like
            A directory written by :meth:`save`.

        Returns
        -------
        RiskModel

        Raises
        ------
        ModelFileError
            If the manifest is missing or of another format or version, a file is missing,
            or a file's checksum differs (the model was changed after saving).
        """
        path = Path(path)
        manifest = _read_manifest(path)
        risk = cls.__new__(cls)
        risk._outcomes = {}
        risk._path = path
        for outcome in manifest["outcomes"]:
            where = f"{outcome}.json of the ketapredict model at {str(path)!r}"
            try:
                state = json.loads((path / f"{outcome}.json").read_text())
                trees = TreeEnsemble.from_dict(json.loads((path / state["trees"]).read_text()))
                spec = spec_from_dict(state["feature_set"])
                if list(feature_map(spec).index) != state["feature_names"]:
                    raise ModelFileError(
                        f"{where}: its feature set no longer produces the features the "
                        "trees were trained on"
                    )
                risk._outcomes[outcome] = _Outcome(
                    outcome=outcome,
                    spec=spec,
                    feature_names=state["feature_names"],
                    feature_names_in=state["feature_names_in"],
                    trees=trees,
                    calibrators=[state["calibrator"], *state["replicate_calibrators"]],
                    z=state["interval_z"],
                    state=state,
                )
            except (KeyError, TypeError, ValueError) as error:
                if isinstance(error, ModelFileError):
                    raise
                raise ModelFileError(f"{where}: unreadable ({error!r})") from None
        risk.provenance = manifest.get("provenance", {})
        risk.reference = manifest.get("reference", {})
        return risk


def joint_distance(z: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Mahalanobis distance of standardised rows over their observed features only.

    A missing value is not evidence of an unusual patient, so each row is measured in the
    marginal distribution of the features it has (one inverse per missingness pattern).
    """
    z = np.atleast_2d(z)
    observed = ~np.isnan(z)
    if len(z) == 1:  # one patient: no grouping by pattern
        seen = np.flatnonzero(observed[0])
        if not len(seen):
            return np.zeros(1)
        zz = z[0, seen]
        return np.array([np.sqrt(zz @ np.linalg.solve(covariance[np.ix_(seen, seen)], zz))])
    out = np.zeros(len(z))
    patterns, which = np.unique(observed, axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        rows = np.flatnonzero(which.ravel() == k)
        if not pattern.any():
            continue
        precision = np.linalg.inv(covariance[np.ix_(pattern, pattern)])
        zz = z[np.ix_(rows, np.flatnonzero(pattern))]
        out[rows] = np.sqrt(np.einsum("ij,jk,ik->i", zz, precision, zz))
    return out


def _content_digest(manifest: Mapping[str, Any]) -> str:
    import hashlib

    content = {k: manifest.get(k) for k in ("outcomes", "provenance", "reference", "files")}
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(path: Path) -> dict[str, Any]:
    where = f"ketapredict model at {str(path)!r}"
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise ModelFileError(f"no {where}: manifest.json is missing")
    try:
        manifest = json.loads(manifest_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{where}: manifest.json is not valid JSON ({error})") from None
    if manifest.get("format") != FORMAT:
        raise ModelFileError(
            f"{where}: manifest format is {manifest.get('format')!r}, expected {FORMAT!r}"
        )
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: format version {manifest.get('format_version')!r} is "
            f"not {FORMAT_VERSION}, the version this ketapredict reads; "
            f"saved by ketapredict {manifest.get('ketapredict_version')}"
        )
    if manifest.get("content_sha256") != _content_digest(manifest):
        raise ModelFileError(
            f"{where}: manifest.json was changed after the model was saved (its provenance, "
            "reference or file list no longer match their checksum), so it is refused"
        )
    expected = manifest.get("files", {})
    kinds = (".json", ".ubj", ".trees.json")
    needed = {f"{o}{kind}" for o in manifest.get("outcomes", []) for kind in kinds}
    if not manifest.get("outcomes") or not needed <= set(expected):
        raise ModelFileError(f"{where}: the manifest does not list every model file")
    for name, digest in expected.items():
        file = path / name
        if not file.is_file():
            raise ModelFileError(f"{where}: {name} is missing")
        if _sha256(file) != digest:
            raise ModelFileError(
                f"{where}: {name} does not match its checksum in "
                "manifest.json; the file was changed after the model was "
                "saved, so it is refused"
            )
    return manifest


def _restore(state: Mapping[str, Any], path: Path) -> Any:
    """The OutcomeModel of a saved outcome (imports XGBoost and scikit-learn)."""
    from xgboost import XGBClassifier

    from .features import FeatureEncoder
    from .models import OutcomeModel

    model = OutcomeModel(**state["params"])
    model.encoder_ = FeatureEncoder.from_spec(
        spec_from_dict(state["feature_set"]), state["feature_names_in"]
    )
    booster = XGBClassifier()
    booster.load_model(path / state["booster"])
    model.booster_ = booster
    model.feature_names_ = np.array(state["feature_names"], dtype=object)
    model.feature_names_in_ = np.array(state["feature_names_in"], dtype=object)
    model.n_features_in_ = len(state["feature_names_in"])
    model.classes_ = np.array(state["classes"])
    model.n_rounds_ = state["n_rounds"]
    model.min_child_weight_ = state["min_child_weight"]
    model.calibrator_ = state["calibrator"]
    return model

"""RiskModel: every outcome's model for one patient and dose schedule, and its files.

A :class:`RiskModel` is the serving artifact: one fitted :class:`~ketapredict.OutcomeModel`
per outcome, compiled, with its bootstrap replicates (for intervals) and a summary of the
training distribution (for out-of-distribution warnings). The learning side builds it
(:func:`ketapredict.fit_risk_model`); this module never imports that side. It scores with
numpy alone: the trees are compiled into a :class:`~ketapredict.trees.TreeEnsemble`, so
loading, recalibrating, saving a model and scoring a patient import neither XGBoost nor
scikit-learn (the clinician path, :mod:`ketapredict.clinic`).

Saved models are JSON and UBJSON files with a manifest of sha256 checksums; nothing is
pickled, and loading refuses a changed or incompatible file.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from ._files import not_a_path
from .encoding import (
    Columns,
    FeatureSet,
    encode,
    feature_map,
    outputs_reading,
    sources,
    sources_reading,
    spec_from_dict,
    spec_to_dict,
)
from .exceptions import ModelFileError, Problem, ValidationError, one_line, short_repr
from .imputation import BaselineImputer
from .modelfile import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    ModelFiles,
    _private_key,
    booster_json,
    check_calibrator,
    check_reference,
    content_digest,
    provenance_problems,
    read_model_files,
    sha256_file,
    sign,
    size_problem,
)
from .regimen import drug_routes, schedule_kinds
from .schema import OUTCOMES, outcome_names
from .trees import (
    MAX_LOG_ODDS,
    TreeEnsemble,
    calibrated_log_odds,
    expit,
    linear_margins,
    linear_terms,
    logit,
    rounded_outward,
    stack_linear,
)
from .updating import apply_update, update_variance

__all__ = ["OUTCOMES", "OutcomeState", "RiskModel"]

FORMAT = "ketapredict-risk-model"
# Bump on any change of the saved layout or of what it means; loading refuses versions
# not in READABLE_VERSIONS. 6: an outcome's feature set may carry its own assessment day
# (dissociation, in the first session), and its file whether it had too few events for
# trees. A version-5 file is read as it was saved (its feature sets say how each outcome
# was encoded), while ketapredict that reads version 5 only refuses a version-6 file
# rather than score its dissociation at the horizon.
FORMAT_VERSION = 6
READABLE_VERSIONS = (5, 6)
# the model card beside the model files (ketapredict.card); optional
CARD_FILE = "model_card.md"
# Bootstrap replicates per outcome: 20 estimate the spread of the log-odds to within about
# 16% (relative standard error 1/sqrt(2(B-1))) at a cost of 20 tree sets per prediction.
REPLICATES = 20
# Every interval a model gives is a two-sided 90% interval: a clinical convention for a
# range a patient can weigh, and the level its coverage is measured at (benchmarks/coverage.py).
INTERVAL_LEVEL = 0.9
# Before widening, from the replicates' standard deviation with Student's t on B - 1 degrees
# of freedom because B is small (t(0.95, 19) = 1.729 for the default 20 replicates, kept so
# that scoring does not import scipy); and a recalibration's own error at the normal
# distribution's quantile.
_T_QUANTILES = {(0.95, 19): 1.729}
_Z_INTERVAL = NormalDist().inv_cdf((1 + INTERVAL_LEVEL) / 2)
# Training-distribution summaries: each continuous feature's 0.5-99.5% range (percentiles,
# not extremes, and rounded outward to two significant digits, so no single patient's value
# is stored) and the 99th percentile of the training patients' Mahalanobis distance.
_RANGE = (0.5, 99.5)
_JOINT_QUANTILE = 99.0
# An interval's ends may reach far beyond the point estimate's clip (+-9.21, 1e-4): a true
# risk of one in a million must be coverable (logit 23: about 1e-10).
_INTERVAL_LOG_ODDS = 23.0
# Rows whose out-of-fold error calibrates the interval multiplier (a random sample; the
# 90% quantile of 3,000 is within about 1.5 percentage points of coverage).
_SCALE_ROWS = 3000
# The bootstrap SD a calibrated multiplier divides by is at least this (log-odds), so that
# a patient whose replicates agree by chance does not get a zero-width interval.
_MIN_SD = 0.05


def t_quantile(df: int) -> float:
    """Student's t at the interval's upper quantile, on ``df`` degrees of freedom."""
    quantile = (1 + INTERVAL_LEVEL) / 2
    if (quantile, df) in _T_QUANTILES:
        return _T_QUANTILES[(quantile, df)]
    from scipy import stats

    return float(stats.t.ppf(quantile, df))


# Tree nodes that scoring one patient may visit, at most: over every outcome, its trees (the
# model's and its bootstrap replicates') times their depth times the draws that integrate
# out missing fields. The demo model visits 139,104; 25 million take about 0.3 s on the
# 2-core development machine. A model file within every size limit asked for 400 million
# (1,000 replicates, 1,024 draws): 5 s a report, 102 s a comparison of 21 schedules.
MAX_SCORING_NODES = 25_000_000


def scoring_nodes(outcomes: Iterable[OutcomeState]) -> int:
    """The tree nodes scoring one patient visits at most (see :data:`MAX_SCORING_NODES`):
    every outcome's trees times their depth, times the most draws any outcome's imputer
    makes (scoring draws with the first outcome's for all, so one outcome's small count
    must not stand for another's)."""
    outcomes = list(outcomes)
    draws = max((o.imputer.n_draws for o in outcomes if o.imputer is not None), default=1)
    return draws * sum(len(o.trees.roots) * o.trees.max_depth for o in outcomes)


@dataclass
class OutcomeState:
    """What scoring and saving one outcome need, without scikit-learn or XGBoost objects.

    The learning side builds it from a fitted OutcomeModel and its bootstrap replicates
    (:func:`ketapredict.experiment.build_risk_model`); :meth:`RiskModel.load` builds it
    from the outcome's verified files.
    """

    outcome: str
    spec: FeatureSet
    feature_names: list[str]
    feature_names_in: list[str]
    trees: TreeEnsemble  # member 0: the fitted model; members 1..B: bootstrap replicates
    calibrators: list[dict[str, Any]]
    z: float | None  # interval multiplier, None without replicates
    # multipliers calibrated against true probabilities ({"active": .., "comparator": ..})
    scale: dict[str, float] | None = None
    imputer: BaselineImputer | None = None  # missing optional fields, given the others
    linear: list[dict[str, Any] | None] = field(default_factory=list)  # per member
    # an update to a new population (RiskModel.recalibrate): intercept and slope on the
    # calibrated log-odds, with their covariance; None: as trained
    update: dict[str, Any] | None = None
    # the fitted model's own fields of the outcome file (params, classes, n_rounds,
    # min_child_weight, few_events), as saved
    record: dict[str, Any] = field(default_factory=dict)
    # the XGBoost booster file (UBJSON) as saved, so a loaded model saves without XGBoost
    booster_file: bytes = b""
    # a loaded model's booster, decoded, checked and re-encoded as JSON: what XGBoost
    # reads when the learning side restores the OutcomeModel (models.outcome_models)
    booster: bytes | None = None
    # the learning side's OutcomeModel, when it built this state or restored it; nothing
    # here reads it
    model: Any = None

    def linear_margins(self, X: np.ndarray, k: int, columns: Any = None) -> np.ndarray:
        """The first ``k`` members' linear margins, shape (n, k) (zeros without them);
        with ``columns``, only those features' terms (see :func:`trees.linear_margins`)."""
        if not self.linear or self.linear[0] is None:
            return np.zeros((len(X), k))
        stacked = self.__dict__.get("_stacked_linear")
        if stacked is None:  # arrays once, not lists per call
            stacked = self.__dict__["_stacked_linear"] = stack_linear(self.linear)
        if k < len(self.linear):
            stacked = {n: v[:k] if isinstance(v, np.ndarray) else v for n, v in stacked.items()}
        return linear_margins(X, stacked, columns)

    def contributions(self, X: np.ndarray, member: int = 0) -> tuple[np.ndarray, float]:
        """Exact SHAP values of a member's margin, shape (n, features), and its base
        value: TreeSHAP of the trees plus the linear terms (ketapredict.trees)."""
        phi, base = self.trees.contributions(X, member=member)
        linear = self.linear[member] if self.linear else None
        if linear is None:
            return phi, base
        return phi + linear_terms(X, linear), base + linear["intercept"]


def _encoding_key(state: OutcomeState) -> str:
    """Equal for outcomes whose features are encoded alike (computed once per outcome)."""
    key = state.__dict__.get("_key")
    if key is None:
        key = state.__dict__["_key"] = json.dumps([spec_to_dict(state.spec), state.feature_names])
    return key


# Patients scored at a time in a batch: each with a missing field becomes 16 draws, so a block
# this size keeps the draws' encoded features near 30 MB, where 100,000 virtual patients at
# once would hold 1.4 million draws (about 0.5 GB) and were no faster.
_BATCH_PATIENTS = 5_000


def _blocks(frame: Any) -> list[Any]:
    """``frame`` (DataFrame or encoding.Columns) in blocks of ``_BATCH_PATIENTS`` rows."""
    if len(frame) <= _BATCH_PATIENTS:
        return [frame]
    starts = range(0, len(frame), _BATCH_PATIENTS)
    if isinstance(frame, pd.DataFrame):
        return [frame.iloc[i : i + _BATCH_PATIENTS] for i in starts]
    return [
        type(frame)({k: np.asarray(v)[i : i + _BATCH_PATIENTS] for k, v in frame.items()})
        for i in starts
    ]


class _Batch:
    """A batch of patients scored over draws of their missing fields, without walking
    every tree on every draw.

    A patient with missing fields is scored on ``n_draws`` draws of them
    (:class:`~ketapredict.imputation.BaselineImputer`). A draw changes only the features
    that the missing fields feed, so a tree that splits on none of them gives all of a
    patient's draws the same leaf: it is walked once per patient, the other trees once per
    draw. The margins are those of walking every tree on every draw (tested to rounding), at
    a fraction of the cost: most patients lack one or two fields, which few trees read.
    """

    def __init__(self, model: RiskModel, frame: Any):
        self.model, self.frame, self.n = model, frame, len(frame)
        imputer = next(iter(model._outcomes.values())).imputer
        if imputer is None:
            owner, self._values, missing, fields = np.arange(self.n), {}, None, []
        else:
            owner, self._values, missing = imputer.draws(frame)
            fields = imputer.fields_
        self.imputer = imputer
        self.owner = owner if len(owner) > self.n else None
        self._lacking = (
            [] if missing is None else [f for j, f in enumerate(fields) if missing[:, j].any()]
        )
        # patients grouped by which fields they lack; their draws' rows, group by group
        self._groups: list[tuple[np.ndarray, np.ndarray, list[str]]] = []
        if self.owner is None:
            self._groups.append((np.arange(self.n), np.arange(self.n), []))
        else:
            codes = missing.astype(np.int64) @ (np.int64(1) << np.arange(missing.shape[1]))
            order = np.argsort(codes[owner], kind="stable")
            bounds = np.flatnonzero(np.r_[True, np.diff(codes[owner][order]) != 0, True])
            for start, end in itertools.pairwise(bounds):
                rows = order[start:end]
                patients = np.unique(owner[rows])
                lacking = [f for j, f in enumerate(fields) if missing[patients[0], j]]
                self._groups.append((patients, rows, lacking))
        self._patients: dict[str, np.ndarray] = {}
        self._rows: dict[str, np.ndarray] = {}
        self._redone: dict[str, list[int]] = {}  # columns a patient's draws change
        self._draw_table: Any = None

    def matrix(self, state: OutcomeState) -> np.ndarray:
        """Encoded features of every draw row (a complete patient's one row)."""
        key = _encoding_key(state)
        if key not in self._rows:
            patients = self._patients[key] = self.model._matrix(state, self.frame)
            if self.owner is None:
                self._rows[key] = patients
            else:
                rows = patients[self.owner]
                redone = encode(state.spec, self._draws(), reading=self._lacking)
                columns = [j for j, name in enumerate(state.feature_names) if name in redone]
                for j in columns:
                    rows[:, j] = redone[state.feature_names[j]]
                self._rows[key], self._redone[key] = rows, columns
        return self._rows[key]

    def margins(self, state: OutcomeState, members: int | None) -> np.ndarray:
        """Margins (trees and linear component) of every draw row, shape (rows, members)."""
        rows = self.matrix(state)
        trees = state.trees
        k = trees.n_members if members is None else min(members, trees.n_members)
        if self.owner is None:
            return trees.margins(rows, members=k) + state.linear_margins(rows, k)
        return self._tree_margins(state, k) + self._linear_margins(state, k)

    def _linear_margins(self, state: OutcomeState, k: int) -> np.ndarray:
        """The linear component's margins of every draw row: a patient's terms once, plus
        the terms of the columns the draws change (the terms add up, feature by feature)."""
        key = _encoding_key(state)
        patients, columns = self._patients[key], self._redone[key]
        first = state.linear[0] if state.linear and state.linear[0] else {}
        # columns that change a patient feature's weight: the drug flag and the modifiers
        weighing = {first.get("active")} | {m["column"] for m in first.get("modifiers") or []}
        if any(
            j in weighing
            and not np.array_equal(self._rows[key][:, j], patients[self.owner, j], equal_nan=True)
            for j in columns
        ):  # a draw changes a weight: every term of every draw
            return state.linear_margins(self._rows[key], k)
        margins = state.linear_margins(patients, k)[self.owner]
        if columns:
            margins += state.linear_margins(self._rows[key], k, columns)
            margins -= state.linear_margins(patients, k, columns)[self.owner]
        return margins

    def _tree_margins(self, state: OutcomeState, k: int) -> np.ndarray:
        """Tree margins of every draw row, each tree walked once per patient unless the
        patient's draws change what it reads."""
        rows = self.matrix(state)
        patients = self._patients[_encoding_key(state)]
        trees = state.trees
        reads = trees.tree_features()
        # groups whose draws change the same trees are walked together
        alike: dict[bytes, tuple[np.ndarray, list, list]] = {}
        for group, draw_rows, lacking in self._groups:
            fed = outputs_reading(state.spec, lacking) if lacking else []
            columns = [j for j, name in enumerate(state.feature_names) if name in fed]
            changes = reads[:, columns].any(axis=1)
            _, groups, draws = alike.setdefault(changes.tobytes(), (changes, [], []))
            groups.append(group)
            draws.append(draw_rows)
        fixed = np.empty((self.n, k))
        varying = np.zeros((len(rows), k))
        for changes, groups, draws in alike.values():
            group = np.concatenate(groups)
            fixed[group] = trees.margins(patients[group], members=k, trees=~changes)
            if changes.any():
                draw_rows = np.concatenate(draws)
                varying[draw_rows] = trees.margins(
                    rows[draw_rows], members=k, trees=changes, base=False
                )
        return fixed[self.owner] + varying

    def _draws(self) -> Any:
        """The draw rows of the columns that the lacking fields' encoding steps read."""
        if self._draw_table is None:
            read = set()
            for state in self.model._outcomes.values():
                read.update(sources_reading(state.spec, self._lacking))
            frame = self.frame
            names = [c for c in frame.columns if c in read]
            if isinstance(frame, pd.DataFrame):
                table = frame[names].iloc[self.owner].reset_index(drop=True)
            else:
                table = type(frame)({c: np.asarray(frame[c])[self.owner] for c in names})
            values = {f: v for f, v in self._values.items() if f in read}
            self._draw_table = self.imputer.write(table, values)
        return self._draw_table


def _not_a_table(X: Any) -> ValidationError:
    """The error for patients given as something other than a table."""
    return ValidationError(
        [
            Problem(
                None,
                None,
                f"expected a patient table (a pandas DataFrame, one patient course a row); got "
                f"{type(X).__name__}. For one patient: model.score(patient, regimen, "
                "horizon_day=...), or pd.DataFrame([record])",
            )
        ],
        "patient table",
    )


def outcome_mapping_problems(name: str, value: Any, kind: type) -> list[Problem]:
    """What is wrong with ``value`` as a mapping of each outcome to its ``kind`` object
    (whose ``outcome`` is the key): a RiskModel's scoring states, or the OutcomeModels the
    learning side builds one from. A key is the outcome its object predicts:
    ``{"respnse": model}`` labelled the response's risks "respnse"."""
    what = kind.__name__
    if not isinstance(value, Mapping):
        return [
            Problem(name, None, f"{name} must be a mapping (a dict); got {type(value).__name__}")
        ]
    if not value:
        return [Problem(name, None, f"a RiskModel needs at least one {what}; {name} is empty")]
    return [
        Problem(
            name,
            None,
            f"{name}[{short_repr(key)}] must be an {what} of that outcome; got "
            + (f"one of {item.outcome!r}" if isinstance(item, kind) else type(item).__name__),
        )
        for key, item in value.items()
        if not (isinstance(item, kind) and item.outcome == key)
    ]


def _check_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
    """``provenance``, if every field that reports print is readable text
    (:func:`~ketapredict.modelfile.provenance_problems`); a saved model with a longer one
    would be refused at load."""
    long = provenance_problems(provenance)
    if long:
        raise ValidationError([Problem("provenance", None, text) for text in long], "model")
    return provenance


class RiskModel:
    """The risk of every outcome for a patient and a dose schedule.

    One fitted model per outcome, compiled for scoring with numpy, with bootstrap
    replicates for 90% intervals and a summary of the training data for
    out-of-distribution warnings. The learning side builds one
    (:func:`ketapredict.fit_risk_model`, or :func:`ketapredict.build_risk_model` from
    fitted OutcomeModels); save it with :meth:`save`, read it with :meth:`load` or
    :func:`ketapredict.load_model`; score patients with :meth:`predict_proba`,
    :meth:`predict_interval` or :meth:`score`. The fitted OutcomeModels themselves
    (for SHAP and MLflow) are :func:`ketapredict.models.outcome_models`.

    Parameters
    ----------
    outcomes : mapping of str to OutcomeState
        Each outcome's scoring state, by outcome.
    provenance : mapping, optional
        Where the model comes from: ``name``, ``data_kind`` ("simulated" or "real"),
        ``trained`` (date), ``n_patients``, ``metrics``, ``notes``... Saved with the model
        and shown in every report.
    reference : mapping, optional
        The training-distribution summary (:meth:`training_summary`).

    Attributes
    ----------
    outcomes : list of str
    provenance : dict
    reference : dict

    Examples
    --------
    >>> from ketapredict import fit_risk_model, simulate_cohort
    >>> cohort = simulate_cohort(n=2000, seed=0)
    >>> model = fit_risk_model(cohort, outcomes=["response", "dissociation"], replicates=5)
    >>> model.predict_proba(cohort.head(3)).columns.tolist()
    ['response', 'dissociation']
    >>> interval = model.predict_interval(cohort.head(3))
    >>> bool(((interval["low"] <= interval["probability"])
    ...       & (interval["probability"] <= interval["high"])).all())
    True
    """

    def __init__(
        self,
        outcomes: Mapping[str, OutcomeState],
        provenance: Mapping | None = None,
        *,
        reference: Mapping[str, Any] | None = None,
    ):
        problems = outcome_mapping_problems("outcomes", outcomes, OutcomeState)
        problems += [
            Problem(name, None, f"{name} must be a mapping (a dict); got {type(value).__name__}")
            for name, value in (("provenance", provenance), ("reference", reference))
            if value is not None and not isinstance(value, Mapping)
        ]
        if problems:
            raise ValidationError(problems, "arguments")
        self._outcomes: dict[str, OutcomeState] = dict(outcomes)
        self.provenance = _check_provenance(dict(provenance or {}))
        self.reference = dict(reference or {})
        # the model card (Markdown); ExperimentResult.fit_model writes the full one
        self.card: str | None = None

    @property
    def outcomes(self) -> list[str]:
        return list(self._outcomes)

    def __repr__(self) -> str:
        source = self.provenance
        intervals = {
            None: "no intervals",
            "calibrated": "90% intervals calibrated on new virtual trials",
            "bootstrap": "90% intervals from the bootstrap alone",
        }[self.interval_kind]
        return (
            f"RiskModel({one_line(str(source.get('name', 'unnamed')))!r}: "
            f"{', '.join(self.outcomes)}; trained {one_line(str(source.get('trained', '?')))} "
            f"on {one_line(str(source.get('data_kind', 'unknown')))} data; {intervals})"
        )

    def outcome_state(self, outcome: str) -> OutcomeState:
        """What scoring ``outcome`` uses: its compiled trees, calibrators, imputer..."""
        if outcome not in self._outcomes:
            raise ValidationError(
                [
                    Problem(
                        "outcome",
                        outcome,
                        f"the model has no {short_repr(outcome)} outcome; it has "
                        f"{', '.join(self._outcomes)}",
                    )
                ],
                "arguments",
            )
        return self._outcomes[outcome]

    # -- what the learning side sets once, at building --------------------------------------
    def calibrate_intervals(
        self, data: pd.DataFrame, *, random_state: int = 0
    ) -> dict[str, dict[str, float]]:
        """Set each outcome's interval multipliers from errors against true probabilities.

        For up to 3,000 patients of ``data``, the error of the model's log-odds against the
        true log-odds is divided by the patient's bootstrap SD; the multiplier is the 90%
        quantile of that ratio, rounded up as split-conformal quantiles are (Angelopoulos
        and Bates 2023, Foundations and Trends in Machine Learning 16:494-591), among
        active-drug and among comparator patients apart, and never below Student's t. The
        errors include the model's bias and the new trials' unknown effects, which the
        bootstrap alone cannot see. Real data have no true probabilities, so only a model
        of the virtual cohort can be calibrated so. Outcomes without replicates or without
        a truth column are left as they are; the provenance's ``intervals`` says what was
        done.

        Parameters
        ----------
        data : DataFrame
            Patients the model never saw, with their true probabilities ``p_<outcome>``:
            a fresh virtual cohort (new patients from new trials).
        random_state : int, default=0
            Seed of the sample of 3,000 patients.

        Returns
        -------
        dict
            The multipliers set, by outcome: ``{"active": .., "comparator": ..}``.
        """
        if not isinstance(data, pd.DataFrame):
            raise ValidationError(
                [
                    Problem(
                        "data",
                        None,
                        "data must be a DataFrame of simulated courses with their true "
                        f"probabilities; got {type(data).__name__}",
                    )
                ],
                "arguments",
            )
        calibrated = {}
        for outcome, state in self._outcomes.items():
            if f"p_{outcome}" in data.columns and state.z is not None:
                calibrated[outcome] = self._calibrate_outcome(state, data, random_state)
        if calibrated:
            replicates = {self._outcomes[o].trees.n_members - 1 for o in calibrated}
            self.provenance["intervals"] = (
                f"90% intervals: the SD of {' or '.join(map(str, sorted(replicates)))} "
                "bootstrap replicates' log-odds times a multiplier chosen so that 90% of the "
                f"true probabilities of {min(_SCALE_ROWS, len(data)):,} of {len(data):,} new "
                "virtual courses (new trials, never trained on) lie inside; multipliers "
                "(active drug / comparator): "
                + "; ".join(
                    f"{o} {s['active']:.2f} / {s['comparator']:.2f}" for o, s in calibrated.items()
                )
            )
        return calibrated

    def _calibrate_outcome(
        self, state: OutcomeState, data: pd.DataFrame, seed: int
    ) -> dict[str, float]:
        """One outcome's multipliers (see :meth:`calibrate_intervals`)."""
        truth = pd.to_numeric(data[f"p_{state.outcome}"], errors="coerce").to_numpy(dtype=float)
        usable = np.flatnonzero(np.isfinite(truth))
        rng = np.random.default_rng(seed)
        if len(usable) > _SCALE_ROWS:
            usable = np.sort(rng.choice(usable, _SCALE_ROWS, replace=False))
        centre, sd, active = self._spread(state, data.iloc[usable])
        error = centre - logit(truth[usable], clip=1e-12)
        ratio = np.abs(error) / np.maximum(sd, _MIN_SD)
        scale = {}
        for name, group in (("active", active), ("comparator", ~active)):
            r = np.sort(ratio[group])
            if len(r) < 20:
                scale[name] = state.z
                continue
            k = min(int(np.ceil(INTERVAL_LEVEL * (len(r) + 1))), len(r)) - 1
            scale[name] = float(max(r[k], state.z))
        state.scale = scale
        return scale

    def _spread(
        self, state: OutcomeState, frame: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centre and bootstrap SD of the calibrated log-odds, and the active-drug flag."""
        parts = []
        for block in _blocks(frame):
            batch = _Batch(self, block)
            margins = batch.margins(state, members=None if state.z is not None else 1)
            rows = batch.matrix(state)
            parts.append(self._centre_sd(state, rows, batch.owner, len(block), margins))
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    def _centre_sd(self, state, X, owner, n_rows, margins=None):
        log_odds = self._log_odds(state, X, members=state.z is not None, margins=margins)
        log_odds = self._reported(state, log_odds, owner, n_rows)
        names = state.feature_names
        active = X[:, names.index("active_drug")] == 1 if "active_drug" in names else None
        if active is None:
            active = np.ones(len(X), bool)
        if owner is not None:
            active = BaselineImputer.average(active * 1.0, owner, n_rows) > 0.5
        if log_odds.shape[1] < 3:
            return log_odds[:, 0], np.zeros(len(log_odds)), active
        spread = log_odds[:, 1:] - log_odds[:, 1:].mean(axis=1, keepdims=True)
        sd = np.sqrt((spread**2).sum(axis=1) / (log_odds.shape[1] - 2))
        return log_odds[:, 0], sd, active

    def training_summary(self, data: pd.DataFrame) -> dict[str, Any]:
        """The training distribution of the encoded features (the model's ``reference``),
        for out-of-distribution warnings: ranges, means, covariance, the categories,
        drug and route pairs and kinds of schedule seen."""
        first = self._referenced()
        X = self._matrix(first, data)
        names = first.feature_names
        binary = [np.isin(x[~np.isnan(x)], (0.0, 1.0)).all() for x in X.T]
        continuous = [j for j in range(X.shape[1]) if not binary[j]]
        with np.errstate(all="ignore"):
            low, high = np.nanpercentile(X[:, continuous], _RANGE, axis=0)
            mean = np.nanmean(X[:, continuous], axis=0)
            sd = np.nanstd(X[:, continuous], axis=0)
        low, high = _ends_of_many(X[:, continuous], low, high, data)
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
                names[j] for j in range(X.shape[1]) if binary[j] and (X[:, j] == 1).any()
            ],
            "binary": [names[j] for j in range(X.shape[1]) if binary[j]],
            # the drug and route pairs trained on: a drug's exposure is encoded as a
            # multiple of racemic ketamine's, so a drug (or route) never seen looks familiar
            # to every encoded feature (arketamine as half a dose of ketamine)
            "drug_routes": sorted(set(drug_routes(data))),
            # and the kinds of schedule, and of diagnosis by schedule: esketamine without a
            # new oral antidepressant, or bipolar depression in repeated sessions, is as new
            # to a model trained on neither
            "schedules": sorted(set(schedule_kinds(data)) - {""}),
            "diagnosis_schedules": sorted(set(schedule_kinds(data, by_diagnosis=True)) - {""}),
        }

    # -- scoring ----------------------------------------------------------------------------
    def _assessed_day(self, outcome: str) -> float | None:
        """The day this model assesses ``outcome`` at whatever the horizon (dissociation:
        the first session), as its own feature set says (None: at the horizon). A model
        file is read as it was saved, whichever version wrote it."""
        state = self._outcomes.get(outcome)
        return None if state is None else state.spec.assessed_day

    def _referenced(self) -> OutcomeState:
        """The outcome whose encoding the training summary (``reference``, for
        out-of-distribution warnings) describes: the first assessed at the horizon, since
        dissociation's first-session encoding cannot see a course beyond the training data;
        else the first."""
        states = list(self._outcomes.values())
        return next((s for s in states if s.spec.assessed_day is None), states[0])

    def _matrix(self, state: OutcomeState, frame: Any) -> np.ndarray:
        encoded = encode(state.spec, frame)
        return np.column_stack([encoded[name] for name in state.feature_names]).astype(float)

    def _expand(self, frame: Any) -> tuple[Any, np.ndarray | None]:
        """Patients with missing optional fields as draws of those fields given the
        recorded ones (:class:`~ketapredict.imputation.BaselineImputer`), and each draw's
        patient; predictions are averaged over a patient's draws.

        One imputer serves every outcome: the first outcome's. ``fit_risk_model`` gives every
        outcome the imputer of the model fitted on the most patients (with the default
        outcomes, every patient with a response; the cognitive-decline model saw only tested
        patients, but what is plausible for a field given the others is a fact about
        patients, not outcomes).
        """
        imputer = next(iter(self._outcomes.values())).imputer
        if imputer is None:
            return frame, None
        filled, owner = imputer.expand(frame)
        return filled, (owner if len(owner) > len(frame) else None)

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
        self, state: OutcomeState, X: np.ndarray, members: bool, margins: np.ndarray | None = None
    ) -> np.ndarray:
        """Calibrated log-odds, shape (n, 1) or (n, 1 + replicates); ``margins``, when
        given, are the trees' and the linear component's (:meth:`_Batch.margins`)."""
        if margins is None:
            margins = state.trees.margins(X, members=None if members else 1)
            margins = margins + state.linear_margins(X, margins.shape[1])
        k = margins.shape[1]
        if all(c["method"] == "sigmoid" for c in state.calibrators[:k]):
            a = np.array([c["a"] for c in state.calibrators[:k]])
            b = np.array([c["b"] for c in state.calibrators[:k]])
            log_odds = np.clip(margins * a + b, -MAX_LOG_ODDS, MAX_LOG_ODDS)
        else:
            log_odds = np.column_stack(
                [calibrated_log_odds(margins[:, j], state.calibrators[j]) for j in range(k)]
            )
        # never a NaN probability: the loader's checks should make this unreachable
        if not np.isfinite(log_odds).all():
            raise ModelFileError(
                f"the model of {state.outcome!r} gave no number for a patient: its files "
                "hold values no fitted model has"
            )
        return log_odds

    @staticmethod
    def _reported(
        state: OutcomeState,
        log_odds: np.ndarray,
        owner: np.ndarray | None = None,
        n_rows: int | None = None,
    ) -> np.ndarray:
        """The log-odds a prediction reports, from the calibrated ones of :meth:`_log_odds`:
        averaged over the draws of missing fields (on the probability scale; ``owner``
        gives each draw's row of ``n_rows``), then through the model's local update, if
        any. Every probability a RiskModel reports (predictions, intervals, the report's
        drivers and the range over the fields not recorded) comes this way;
        :func:`ketapredict.explain`, upstream of the saved model, follows the same steps.
        """
        if owner is not None:
            log_odds = logit(BaselineImputer.average(expit(log_odds), owner, n_rows))
        return apply_update(log_odds, state.update, MAX_LOG_ODDS)

    def _table(self, X: Any, validated: bool) -> Any:
        if isinstance(X, Columns):  # the clinician path's own, checked
            return X
        if not isinstance(X, pd.DataFrame):  # validated or not: a record is no table
            raise _not_a_table(X)
        from .schema import flag_problem

        if (problem := flag_problem("validated", validated)) is not None:  # "no" is truthy
            raise ValidationError([problem], "arguments")
        # spellings are normalised ("IV" -> "iv") and every bad cell is reported at once;
        # columns the contract does not know are no model's input and are left out
        from .regimen import undated_beyond_the_horizons
        from .schema import contract_part, rows_for_messages, validate

        if not validated:
            table = validate(contract_part(X, "patient table"), what="patient table")
        else:
            table = X
        # a validated table too (MLflow's serving path): the day is the model's question
        labelled, what = rows_for_messages(table, "patient table")  # never an identifier
        beyond = undated_beyond_the_horizons(labelled)
        if beyond:
            raise ValidationError(beyond, what)
        return table

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
        blocks = [self._probabilities(block) for block in _blocks(X)]
        probabilities = {o: np.concatenate([b[o] for b in blocks]) for o in self._outcomes}
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(probabilities, index=index)

    def _probabilities(self, X: Any) -> dict[str, np.ndarray]:
        """Each outcome's probability for a block of patients (see :class:`_Batch`)."""
        batch = _Batch(self, X)
        probabilities = {}
        for outcome, state in self._outcomes.items():
            rows, margins = batch.matrix(state), batch.margins(state, members=1)
            log_odds = self._log_odds(state, rows, members=False, margins=margins)[:, 0]
            probabilities[outcome] = expit(self._reported(state, log_odds, batch.owner, len(X)))
        return probabilities

    def predict_interval(self, X: pd.DataFrame, *, validated: bool = False) -> pd.DataFrame:
        """Probabilities with 90% intervals, one row per (patient, outcome).

        The interval is ``sigmoid(l +- m * s)``: ``l`` the model's calibrated log-odds,
        ``s`` the standard deviation of the bootstrap replicates' calibrated log-odds and
        ``m`` a multiplier: calibrated against true probabilities of a fresh virtual
        cohort (:meth:`calibrate_intervals`; it then covers the model's bias too, as
        measured there), else Student's 95th percentile on B - 1
        degrees of freedom (the estimate's sampling uncertainty only). The provenance's
        ``intervals`` says which. It lies in (0, 1), its ends within 1e-10 of 0 and 1 (a
        tiny true risk stays coverable), and always holds the estimate.

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

        Raises
        ------
        ValidationError
            When an outcome has no bootstrap replicates (fitted with ``replicates=0``): its
            interval would be the estimate itself, which says nothing of its uncertainty.
        """
        without = [o for o, s in self._outcomes.items() if s.z is None]
        if without:
            raise ValidationError(
                [
                    Problem(
                        "replicates",
                        0,
                        f"the model has no bootstrap replicates for {', '.join(without)}, so no "
                        "intervals; fit it with replicates >= 2 (predict_proba gives the "
                        "probabilities alone)",
                    )
                ],
                "model",
            )
        X = self._table(X, validated)
        rows = X.index.to_numpy() if isinstance(X, pd.DataFrame) else np.arange(len(X))
        blocks = []
        for block in _blocks(X):
            batch = _Batch(self, block)
            encoded = {o: batch.matrix(s) for o, s in self._outcomes.items()}
            margins = {
                o: batch.margins(s, members=None if s.z is not None else 1)
                for o, s in self._outcomes.items()
            }
            blocks.append(self._intervals(encoded, batch.owner, len(block), margins=margins))
        frames = []
        for outcome in self._outcomes:
            p, lo, hi = (np.concatenate([b[outcome][j] for b in blocks]) for j in range(3))
            frames.append(
                pd.DataFrame(
                    {"row": rows, "outcome": outcome, "probability": p, "low": lo, "high": hi}
                )
            )
        return pd.concat(frames, ignore_index=True)

    def _intervals(
        self,
        encoded: Mapping[str, np.ndarray],
        owner: np.ndarray | None = None,
        n_rows: int | None = None,
        margins: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, tuple]:
        """Probability, low and high per outcome; with ``owner``, rows are draws of
        missing fields and each member's probability is averaged over a patient's draws.
        ``margins``: the margins (trees and linear component, :meth:`_Batch.margins`) per
        outcome, when already computed;
        else a few rows walk every outcome's trees at once."""
        given = margins
        rows = len(next(iter(encoded.values())))
        stacked = self._stacked() if given is None and rows <= 64 else None
        if stacked is not None:
            ensemble, starts = stacked
            every = ensemble.margins(next(iter(encoded.values())))
        out = {}
        for i, (outcome, state) in enumerate(self._outcomes.items()):
            margins = None
            if given is not None:
                margins = given[outcome]
            elif stacked is not None:
                trees = every[:, starts[i] : starts[i + 1]]
                trees = trees if state.z is not None else trees[:, :1]
                margins = trees + state.linear_margins(encoded[outcome], trees.shape[1])
            if margins is not None and state.z is None:
                margins = margins[:, :1]
            n = len(encoded[outcome]) if owner is None else n_rows
            centre, sd, active = self._centre_sd(state, encoded[outcome], owner, n, margins)
            if state.z is None:
                low = high = centre
            else:
                if state.scale is None:
                    half = state.z * sd
                else:
                    multiplier = np.where(active, state.scale["active"], state.scale["comparator"])
                    half = multiplier * np.maximum(sd, _MIN_SD)
                if state.update is not None:
                    # the recalibration's own estimation error, at the normal 90% point
                    half = np.sqrt(
                        half**2 + _Z_INTERVAL**2 * update_variance(centre, state.update)
                    )
                low = np.clip(centre - half, -_INTERVAL_LOG_ODDS, _INTERVAL_LOG_ODDS)
                high = np.clip(centre + half, -_INTERVAL_LOG_ODDS, _INTERVAL_LOG_ODDS)
            out[outcome] = tuple(expit(v) for v in (centre, low, high))
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
        # one of risk's two imports of the clinic (with compare_regimens): DESIGN.md asks
        # for ``model.score(...)``, and the report is the clinic's
        from .clinic import score

        return score(self, patient, regimen, horizon_day=horizon_day, drivers=drivers)

    def compare_regimens(
        self, patient: Any, regimens: Any = None, *, horizon_day: float | None = None
    ):
        """Compare dose schedules for one patient at one common day.

        Parameters
        ----------
        patient : dict, Series or one-row DataFrame
            Baseline fields, as for :meth:`score`.
        regimens : sequence of Regimen or dict, or mapping of name to them, optional
            By default the standard grid of :func:`ketapredict.regimen_grid`. At most
            1,000 schedules (:data:`ketapredict.clinic.MAX_REGIMENS`); a name is text on
            one line of at most 100 characters.
        horizon_day : float, optional
            The day after the first session every schedule is assessed at. Not given: the
            latest end point among the schedules (24 h after its last session), so that
            every course is over and none is judged at its own, different day.

        Returns
        -------
        RegimenComparison
            ``print()`` it for a table in rounded percentages with 90% intervals, sorted
            with the front first (the schedules no other dominates), then by the chance of
            response, highest first, and each warning once as a footnote; in a notebook it
            shows as HTML; ``.plot()`` draws response against cognitive decline;
            ``.table`` (or ``.to_frame()``) is the tidy DataFrame: ``regimen``, each
            outcome's probability with ``_low`` and ``_high`` (90% interval), ``dominated``,
            ``dominated_by``, ``warnings`` (the text of each, a list) and ``horizon_day``.

            Dominance is judged on the intervals: schedule A dominates B when A has at
            least B's chance of response and at most B's risk of cognitive decline (point
            estimates), and on one of the two A's 90% interval lies wholly on the better
            side of B's (above, for response; below, for cognitive decline). Where the
            intervals overlap on both, neither dominates: a difference within the
            uncertainty is not a reason to set a schedule aside. For a model without
            intervals, "clearly better" is by at least 2 percentage points
            (:data:`ketapredict.clinic.MIN_DIFFERENCE`). The intervals of two schedules
            come from the same bootstrap replicates, so this is stricter than a paired
            test: "not dominated" means "not shown to be worse", not "as good". Remission
            and dissociation are in the table to weigh too.

        Examples
        --------
        >>> from ketapredict import load_model
        >>> model = load_model()
        >>> comparison = model.compare_regimens({"age": 46, "sex": "female",
        ...                                      "diagnosis": "TRD", "madrs_baseline": 34})
        >>> len(comparison)
        21
        >>> round(comparison.horizon_day, 2)  # 24 h after the last of 12 sessions
        26.67
        >>> print(comparison.horizon)  # doctest: +NORMALIZE_WHITESPACE
        day 26.7 after the first session (24 h after the last session of the longest
        schedule; give a horizon day to choose another)
        >>> comparison.table.columns[:4].tolist()
        ['regimen', 'schedule', 'response', 'response_low']
        >>> bool(comparison.table["dominated"].iloc[0])  # the front comes first
        False
        """
        # one of risk's two imports of the clinic (with score): DESIGN.md asks for
        # ``model.compare_regimens(...)``, and the report is the clinic's
        from .clinic import compare_regimens

        return compare_regimens(self, patient, regimens, horizon_day=horizon_day)

    def recalibrate(
        self,
        data: pd.DataFrame,
        method: str = "closed_test",
        *,
        outcomes: Sequence[str] | None = None,
        alpha: float = 0.05,
    ) -> RiskModel:
        """A copy of the model updated to a new population's outcome rates.

        The standard hierarchy of model updating, on each outcome's calibrated log-odds
        ``l``: keep the model; update its intercept (``a + l``: recalibration in the large,
        when the new population's rate differs); or its intercept and slope (``a + b l``,
        when its predictions are also too extreme or too flat there). ``"closed_test"``
        chooses by likelihood-ratio tests at ``alpha`` (Vergouwe et al. 2017, Statistics in
        Medicine 36:4529-4539; :func:`ketapredict.updating.choose_update`), so a small study
        changes the model only as far as it has evidence to. The trees are not refitted.

        The 90% intervals widen by the update's own estimation error. The provenance records
        the method, each outcome's update and tests, and the data's digest (never a row).

        Recalibration is not enough when the new population differs in *how* predictors
        act (a predictor that matters there and not in training, a regimen never trained
        on): the ranking of patients (AUC) is unchanged by it. Then refit on the new data, or
        pool them with the training data.

        Parameters
        ----------
        data : DataFrame
            Patients of the new population with their observed outcomes (e.g. from
            :func:`ketapredict.read_bids`); rows without an outcome are left out of that
            outcome's update.
        method : {"closed_test", "intercept", "intercept_slope"}, default="closed_test"
            Which update: chosen by the closed test, or the one named whatever the tests say.
        outcomes : sequence of str, optional
            Outcomes to update; by default every outcome of the model that ``data`` records
            with both events and non-events (the others are kept as they were, and
            ``provenance["recalibration"]["skipped"]`` says why).
        alpha : float, default=0.05
            Level of the closed test's likelihood-ratio tests.

        Returns
        -------
        RiskModel
            A new model; this one is unchanged. Save and load it like any other.

        Raises
        ------
        ValidationError
            If ``data`` breaks the contract, records none of the outcomes, lacks the
            assessment day (``endpoint_day``) of a course with an outcome assessed at one (not
            dissociation, rated in the first session), or an outcome named
            in ``outcomes`` (or every outcome recorded) has no event or no non-event; or if
            ``method`` or ``alpha`` is not one allowed.

        Examples
        --------
        >>> from ketapredict import Population, Regimen, TrialEffect, fit_risk_model
        >>> from ketapredict import simulate_cohort, simulate_trial
        >>> model = fit_risk_model(simulate_cohort(n=2000, seed=0), outcomes=["response"],
        ...                        replicates=0)
        >>> arms = [Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)]
        >>> local = simulate_trial(Population(), arms, n_per_arm=400, seed=1, visit_days=[1],
        ...                        trial_effect=TrialEffect(nonspecific=1, drug=1))
        >>> predicted = model.predict_proba(local)["response"].mean()
        >>> round(float(local["response"].mean()), 3), round(float(predicted), 3)
        (0.56, 0.305)
        >>> updated = model.recalibrate(local)
        >>> updated.provenance["recalibration"]["outcomes"]["response"]["method"]
        'intercept'
        >>> round(float(updated.predict_proba(local)["response"].mean()), 3)
        0.56
        """
        from .schema import _did_you_mean, check_outcome, empty_outcomes, table_digest
        from .updating import METHODS, choose_update

        problems = []
        if not isinstance(method, str) or method not in METHODS:
            problems.append(
                Problem(
                    "method",
                    None,
                    f"method={short_repr(method)} is not one of {', '.join(METHODS)}"
                    + (_did_you_mean(method, METHODS) if isinstance(method, str) else ""),
                )
            )
        if isinstance(alpha, bool) or not (isinstance(alpha, float | int) and 0 < alpha < 1):
            problems.append(
                Problem("alpha", None, f"alpha={short_repr(alpha)} is not a level between 0 and 1")
            )
        if problems:
            raise ValidationError(problems, "arguments")
        table, wanted = self._observed(data, outcomes, "recalibration data")
        skipped = {}
        if outcomes is None:  # outcomes recorded with one class only are left as they are
            for outcome in empty_outcomes(table, self.outcomes):
                skipped[outcome] = "kept as it was: its column holds no value"
            for outcome in wanted:
                y = table[outcome].dropna().astype(float)
                if y.nunique() < 2:
                    skipped[outcome] = (
                        f"kept as it was: {int(y.sum()):,} events in {len(y):,} courses, no "
                        "evidence for an update"
                    )
            wanted = [o for o in wanted if o not in skipped]
            if not wanted:  # say why by an outcome that has values (of one class)
                recorded = next(o for o in skipped if table[o].notna().any())
                check_outcome(table[recorded].dropna(), recorded)
        updated = copy.copy(self)
        updated._outcomes = dict(self._outcomes)
        updated.__dict__.pop("_stack", None)
        record = {}
        for outcome in wanted:
            rows = table[table[outcome].notna()]
            y = check_outcome(rows[outcome], outcome)
            current = self.predict_proba(rows, validated=True)[outcome].to_numpy()
            update = choose_update(y, logit(current), method, alpha)
            note = update.pop("note")
            previous = self._outcomes[outcome].update
            if previous is not None and previous["method"] != "none":
                update = _compose(previous, update)  # one update from the original log-odds
            updated._outcomes[outcome] = replace(self._outcomes[outcome], update=update)
            record[outcome] = {
                k: update[k] for k in ("method", "intercept", "slope", "n", "events", "p_values")
            } | ({"note": note} if note else {})
        entry = {
            "method": method,
            "alpha": alpha,
            "data_sha256": table_digest(table),
            "n_patients": len(table),
            "date": time.strftime("%Y-%m-%d"),
            "outcomes": record,
            **({"skipped": skipped} if skipped else {}),
        }
        earlier = self.provenance.get("recalibration")
        if earlier:  # outcomes updated before and not now keep their record; the history too
            entry["outcomes"] = {**earlier["outcomes"], **record}
            entry["earlier"] = [
                *earlier.get("earlier", []),
                {k: v for k, v in earlier.items() if k != "earlier"},
            ]
        # the record adds about 1 kB: a model near the limit would no longer save
        updated.provenance = _check_provenance({**self.provenance, "recalibration": entry})
        return updated

    def _observed(
        self, data: pd.DataFrame, outcomes: Sequence[str] | None, what: str
    ) -> tuple[pd.DataFrame, list[str]]:
        """The validated table (contract columns only) and the model's outcomes it records
        (``outcomes``, checked, or all that have a value): for recalibration and external
        validation."""
        from .schema import contract_part, repeated_courses

        if not isinstance(data, pd.DataFrame):
            raise _not_a_table(data)
        known = contract_part(data, what)
        # a table pasted into itself would count each course again, and the closed test
        # would find at 1,000 courses what 50 cannot show (as a table file is refused)
        repeated = repeated_courses(known, known.index)
        if repeated:
            raise ValidationError(repeated, what)
        table = self._table(known, validated=False)
        recorded = [o for o in self.outcomes if o in table.columns and table[o].notna().any()]
        wanted = outcome_names(outcomes) if outcomes is not None else recorded
        problems = [
            Problem(o, None, f"{o!r} is not an outcome of this model ({', '.join(self.outcomes)})")
            if o not in self._outcomes
            else Problem(o, None, f"the data have no {o!r} values")
            for o in wanted
            if o not in recorded
        ]
        if not wanted:
            problems.append(
                Problem(None, None, f"the data record none of the outcomes {self.outcomes}")
            )
        # an observed outcome is compared with the prediction for the day it was assessed:
        # without that day the model would predict for a day of its own choosing (an
        # outcome with a time of its own, dissociation in the first session, needs none)
        dated = [o for o in wanted if o in recorded and self._assessed_day(o) is None]
        assessed = table[dated].notna().any(axis=1)
        day = table["endpoint_day"] if "endpoint_day" in table.columns else None
        undated = int((assessed & (day.isna() if day is not None else True)).sum())
        if undated:
            problems.append(
                Problem(
                    "endpoint_day",
                    None,
                    f"endpoint_day (the day each outcome was assessed, in days after the first "
                    f"session) is missing for {undated:,} of {int(assessed.sum()):,} courses with "
                    "an outcome; a prediction is for a day, so the model needs it",
                )
            )
        if problems:
            raise ValidationError(problems, what)
        return table, wanted

    def outside_training(self, X: pd.DataFrame, *, validated: bool = False) -> np.ndarray:
        """Whether each patient lies outside the training distribution.

        Outside means, as in the reports' warnings: a continuous feature beyond the
        training data's 0.5-99.5% range, a category the training data never had, a drug by a
        route, a schedule or a diagnosis on a schedule the training data never had (for
        every outcome: a report spares first-session dissociation a new schedule of a drug
        and route it trained on), or a combination of values more unusual (Mahalanobis
        distance over the recorded features) than 99% of training patients. A missing value
        is never a reason.

        Parameters
        ----------
        X : DataFrame
            Patients, as for :meth:`predict_proba`.
        validated : bool, default=False
            Whether ``X`` already went through :func:`ketapredict.validate`.

        Returns
        -------
        ndarray of bool
        """
        reasons = self._outside_reasons(self._table(X, validated))
        return np.logical_or.reduce([np.zeros(len(X), dtype=bool), *reasons.values()])

    def _outside_reasons(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each reason a patient of the checked table ``X`` lies outside the training data,
        in words, with the patients it holds for (only reasons that hold for someone)."""
        reference = self.reference
        if not reference:
            return {}
        first = self._referenced()
        matrix = self._matrix(first, X)
        where = {name: j for j, name in enumerate(first.feature_names)}
        label = feature_map(first.spec)["label"]
        continuous = matrix[:, [where[name] for name in reference["continuous"]]]
        low, high = np.asarray(reference["low"]), np.asarray(reference["high"])
        reasons: dict[str, np.ndarray] = {}
        with np.errstate(invalid="ignore"):
            beyond = (continuous < low) | (continuous > high)
        for k, name in enumerate(reference["continuous"]):
            reasons[f"{label.get(name, name)} beyond its training range"] = beyond[:, k]
        for name in unseen_flags(reference):
            if name in where:
                reasons[f"{label.get(name, name)}, never seen in training"] = (
                    matrix[:, where[name]] == 1
                )
        for reason, key, kinds in (
            ("a drug by a route never trained on", "drug_routes", drug_routes(X)),
            ("a schedule never trained on", "schedules", schedule_kinds(X)),
            (
                "a diagnosis on a schedule never trained on",
                "diagnosis_schedules",
                schedule_kinds(X, by_diagnosis=True),
            ),
        ):
            if reference.get(key):  # a model saved before they were kept has none
                reasons[reason] = (kinds != "") & ~np.isin(kinds, reference[key])
        z = (continuous - np.asarray(reference["mean"])) / np.asarray(reference["sd"])
        distance = joint_distance(z, np.asarray(reference["covariance"]))
        reasons["an unusual combination of values"] = distance > reference["joint_threshold"]
        return {reason: held for reason, held in reasons.items() if held.any()}

    @property
    def has_intervals(self) -> bool:
        return all(s.z is not None for s in self._outcomes.values())

    @property
    def interval_kind(self) -> str | None:
        """How the 90% intervals were made: "calibrated" (against the true probabilities
        of new virtual trials, :meth:`calibrate_intervals`), "bootstrap" (the replicates'
        spread alone) or None (no outcome has intervals)."""
        states = [s for s in self._outcomes.values() if s.z is not None]
        if not states:
            return None
        return "calibrated" if all(s.scale is not None for s in states) else "bootstrap"

    # -- files ------------------------------------------------------------------------------
    def model_card(
        self,
        *,
        sample: Mapping[str, Mapping[str, Any]] | None = None,
        subgroups: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        description: str = "",
    ) -> str:
        """The model card (Markdown, after TRIPOD+AI): intended use, data, outcomes and
        horizon, predictors, missing data, validation, metrics, subgroups, limitations.

        Without arguments: the card written when the model was trained
        (:meth:`ketapredict.ExperimentResult.fit_model`), or for a model fitted directly one
        built from its provenance; with any recalibration since. :meth:`save` writes it as
        ``model_card.md``.

        Parameters
        ----------
        sample, subgroups, description : optional
            Build a new card with these sections (see :func:`ketapredict.card.model_card`).

        Returns
        -------
        str

        Examples
        --------
        >>> from ketapredict import load_model
        >>> print(load_model().model_card().splitlines()[0])
        # Model card: ketapredict demo model
        """
        from .card import RECALIBRATION_HEADING, model_card, recalibration_section

        problems = [
            Problem(name, None, f"{name} must be {kind}; got {type(value).__name__}")
            for name, value, allowed, kind in (
                ("sample", sample, Mapping, "a mapping of each outcome to its counts"),
                ("subgroups", subgroups, Mapping, "a mapping of each outcome to its rows"),
                ("description", description, str, "text"),
            )
            if value is not None and not isinstance(value, allowed)
        ]
        if problems:
            raise ValidationError(problems, "arguments")
        card = self.card
        if card is None or sample or subgroups or description:
            predictors = []
            for state in self._outcomes.values():
                for name in feature_map(state.spec)["predictor"]:
                    label = _predictor_label(name)
                    if label not in predictors:
                        predictors.append(label)
            card = model_card(
                self.provenance,
                self.outcomes,
                predictors,
                sample=sample,
                subgroups=subgroups,
                description=description,
            )
        # a recalibration since training replaces the section of any earlier one
        card = card.split(RECALIBRATION_HEADING)[0]
        update = self.provenance.get("recalibration")
        return card + recalibration_section(update) if update else card

    def save(self, path: str | Path, *, signing_key: Any = None) -> Path:
        """Write the model as JSON and UBJSON files plus ``manifest.json`` with checksums.

        Each outcome has ``<outcome>.json`` (parameters, feature set, calibrators),
        ``<outcome>.ubj`` (XGBoost's own format, for :func:`ketapredict.models.outcome_models`) and
        ``<outcome>.trees.json`` (the compiled trees of the model and its replicates, for
        scoring without XGBoost), and ``model_card.md`` (:meth:`model_card`).
        ``manifest.json`` holds every file's sha256 and a checksum of its own fields.

        Checksums catch a file changed by accident, not an edit: whoever can write the
        directory can recompute them. Where that matters, sign the model with a private key
        (``signing_key``) and load it with the public key (:func:`ketapredict.load_model`):
        an edited model is then refused (:mod:`ketapredict.modelfile`).

        Parameters
        ----------
        path : str or path-like
            A new or empty directory.
        signing_key : str, path-like, bytes or Ed25519PrivateKey, optional
            An Ed25519 private key or its PEM file (:func:`ketapredict.generate_keys`):
            writes ``manifest.sig``, the signature of ``manifest.json``.

        Returns
        -------
        Path

        Raises
        ------
        FileExistsError
            If ``path`` is a directory that is not empty (a model is never written over
            other files).
        ValidationError
            If ``path`` is no path or empty.
        """
        from . import __version__

        fault = not_a_path(path, "the model")
        if fault:
            raise ValidationError([Problem("path", None, fault)], "arguments")

        key = None if signing_key is None else _private_key(signing_key)  # before writing
        _check_provenance(self.provenance)  # loading would refuse the saved model
        nodes = scoring_nodes(self._outcomes.values())
        if nodes > MAX_SCORING_NODES:  # so would it
            raise ValidationError(
                [
                    Problem(
                        "model",
                        None,
                        f"the model is too slow to save: scoring one patient would visit "
                        f"{nodes:,} tree nodes, over the limit of {MAX_SCORING_NODES:,}; "
                        "fewer trees (n_estimators), shallower ones (max_depth) or fewer "
                        "bootstrap replicates make it faster",
                    )
                ],
                "model",
            )
        incomplete = [
            Problem(
                "model",
                None,
                f"the {outcome!r} outcome has no booster file or lacks its fitted fields "
                f"({', '.join(_FITTED_FIELDS)}); build it from a fitted OutcomeModel "
                "(ketapredict.build_risk_model)",
            )
            for outcome, state in self._outcomes.items()
            if not state.booster_file or not set(_FITTED_FIELDS) <= set(state.record)
        ]
        if incomplete:  # loading would refuse the saved model
            raise ValidationError(incomplete, "model")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if any(path.iterdir()):
            raise FileExistsError(f"{str(path)!r} is not empty; save a model to a new directory.")
        files = []
        for outcome, state in self._outcomes.items():
            booster = f"{outcome}.ubj"
            (path / booster).write_bytes(state.booster_file)
            fitted = state.record
            record = {  # in the order the files have always had
                "outcome": outcome,
                "params": fitted["params"],
                "feature_set": spec_to_dict(state.spec),
                "feature_names": state.feature_names,
                "feature_names_in": state.feature_names_in,
                "classes": fitted["classes"],
                "n_rounds": fitted["n_rounds"],
                "min_child_weight": fitted["min_child_weight"],
                "calibrator": state.calibrators[0],
                "replicate_calibrators": state.calibrators[1:],
                "interval_z": state.z,
                "interval_scale": state.scale,
                "imputer": None if state.imputer is None else state.imputer.to_dict(),
                "linear": state.linear,
                "recalibration": state.update,
                "booster": booster,
                "trees": f"{outcome}.trees.json",
            }
            if "few_events" in fitted:  # unknown for a model read from a version 5
                record["few_events"] = fitted["few_events"]
            (path / f"{outcome}.json").write_text(json.dumps(record, indent=1))
            (path / f"{outcome}.trees.json").write_text(
                json.dumps(state.trees.to_dict(), separators=(",", ":"))
            )
            files += [f"{outcome}.json", booster, f"{outcome}.trees.json"]
        (path / CARD_FILE).write_text(self.model_card(), encoding="utf-8")
        files.append(CARD_FILE)
        too_large = size_problem(path, files)
        if too_large:  # loading would refuse it: take back what was written, say why
            for name in files:
                (path / name).unlink()
            raise ValidationError(
                [
                    Problem(
                        "model",
                        None,
                        f"the model is too large to save: {too_large}; fewer trees "
                        "(n_estimators) or bootstrap replicates make it smaller",
                    )
                ],
                "model",
            )
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "ketapredict_version": __version__,
            "saved": time.strftime("%Y-%m-%d"),
            "outcomes": self.outcomes,
            "provenance": self.provenance,
            "reference": {k: v for k, v in self.reference.items() if not k.startswith("_")},
            "files": {name: sha256_file(path / name) for name in sorted(files)},
        }
        # every field (what the model is, that it is not for clinical decisions, when and by
        # which version it was saved) is checked on loading like the files
        manifest["content_sha256"] = content_digest(manifest)
        text = json.dumps(manifest, indent=1, default=str)
        if len(text.encode()) > MAX_MANIFEST_BYTES:  # its provenance, most likely
            for name in files:
                (path / name).unlink()
            raise ValidationError(
                [
                    Problem(
                        "provenance",
                        None,
                        f"the model is too large to save: its manifest would hold "
                        f"{len(text.encode()):,} bytes, over the limit of "
                        f"{MAX_MANIFEST_BYTES:,} (a long provenance?)",
                    )
                ],
                "model",
            )
        (path / MANIFEST).write_text(text)
        if key is not None:
            sign(path, key)
        return path

    @classmethod
    def load(cls, path: str | Path, *, public_key: Any = None) -> RiskModel:
        """Read a saved model, verifying every file and checking what it holds.

        A model directory is untrusted input (:mod:`ketapredict.modelfile`): only the
        model's own files are read, without following links, once, at load; each must match
        its checksum; the manifest and outcome files must have their exact shapes; the
        trees, calibrators and reference statistics are checked for structure, so that a
        loaded model cannot produce NaN, hang or index out of range. Nothing is read from
        the directory afterwards. Neither XGBoost nor scikit-learn is imported, unless the
        learning side restores the OutcomeModels
        (:func:`ketapredict.models.outcome_models`).

        Parameters
        ----------
        path : str or path-like
            A directory written by :meth:`save`.
        public_key : str, path-like, bytes or Ed25519PublicKey, optional
            The public key of whoever signed the model (its PEM file from
            :func:`ketapredict.generate_keys`). When given, an unsigned model or one whose
            signature does not verify (changed after signing, or signed by another key) is
            refused.

        Returns
        -------
        RiskModel

        Raises
        ------
        ModelFileError
            Naming the file and the problem: a missing, changed or malformed file, another
            format or version, a structure that cannot be scored, a missing or wrong
            signature.
        """
        from .schema import columns

        read = read_model_files(
            path,
            format_version=READABLE_VERSIONS,
            outcomes_allowed=columns("outcome"),
            optional=[CARD_FILE],
            public_key=public_key,
        )
        manifest = read.manifest
        risk = cls.__new__(cls)
        risk._outcomes = {}
        for outcome in manifest["outcomes"]:
            name = f"{outcome}.json"
            where = f"{name} of the ketapredict model at {str(read.path)!r}"
            state = read.json(name)
            try:
                risk._outcomes[outcome] = _outcome_from_file(outcome, state, read)
            except (KeyError, TypeError, ValueError, OverflowError, IndexError) as error:
                if isinstance(error, ModelFileError):  # its file named: the model's too
                    if str(read.path) in str(error):
                        raise
                    raise ModelFileError(
                        f"ketapredict model at {str(read.path)!r}: {error}"
                    ) from None
                message = str(error) if isinstance(error, ValueError) else repr(error)
                raise ModelFileError(f"{where}: {message[:300]}") from None
        nodes = scoring_nodes(risk._outcomes.values())
        if nodes > MAX_SCORING_NODES:
            raise ModelFileError(
                f"ketapredict model at {str(read.path)[:200]!r}: scoring one patient would "
                f"visit {nodes:,} tree nodes (trees times depth times imputation draws, over "
                f"its outcomes), over the limit of {MAX_SCORING_NODES:,}"
            )
        risk.provenance = manifest["provenance"]
        first = risk._referenced()
        try:
            risk.reference = check_reference(manifest["reference"], first.feature_names)
        except ValueError as error:
            raise ModelFileError(
                f"manifest.json of the ketapredict model at {str(read.path)!r}: {error}"
            ) from None
        # verified with the other files; models saved before cards existed have none
        risk.card = read.text(CARD_FILE) if CARD_FILE in read.files else None
        risk.content_sha256 = manifest["content_sha256"]  # verified: names this model
        return risk


# The fields of an outcome's file that the fitted model gives (OutcomeState.record): its
# parameters, labels, boosting rounds and leaf size; and whether it had too few events for
# trees, absent from a version-5 file.
_FITTED_FIELDS = ("params", "classes", "n_rounds", "min_child_weight")
_MODEL_FIELDS = (*_FITTED_FIELDS, "few_events")
# The fields of an outcome's file (``RiskModel.save``), all required.
# Fields of a newer version's outcome file that an older one lacks: few_events (format 6)
_OPTIONAL_FIELDS = {"few_events"}
_OUTCOME_FIELDS = {
    "outcome",
    "params",
    "feature_set",
    "feature_names",
    "feature_names_in",
    "classes",
    "n_rounds",
    "min_child_weight",
    "calibrator",
    "replicate_calibrators",
    "interval_z",
    "interval_scale",
    "imputer",
    "linear",
    "recalibration",
    "booster",
    "trees",
}


def _outcome_from_file(outcome: str, state: Any, read: ModelFiles) -> OutcomeState:
    """One outcome's scoring state from its verified files, every part checked (ValueError,
    KeyError or TypeError naming the part if not)."""
    if not isinstance(state, dict):
        raise ValueError(f"holds a {type(state).__name__}; expected an object")
    if not _OUTCOME_FIELDS <= set(state) <= _OUTCOME_FIELDS | _OPTIONAL_FIELDS:
        found = set(state)
        unknown = [name[:40] for name in sorted(found - _OUTCOME_FIELDS - _OPTIONAL_FIELDS)[:5]]
        raise ValueError(
            f"expected an outcome's object ({len(_OUTCOME_FIELDS)} fields); missing "
            f"{sorted(_OUTCOME_FIELDS - found)}, unknown {unknown}"
        )
    if state["outcome"] != outcome:
        raise ValueError(f"it is the file of {str(state['outcome'])[:40]!r}, not {outcome!r}")
    if not isinstance(state.get("few_events", False), bool):
        raise ValueError(f"few_events {str(state['few_events'])[:20]} is not true or false")
    # the files it names are the verified ones, never another path
    if (state["trees"], state["booster"]) != (f"{outcome}.trees.json", f"{outcome}.ubj"):
        raise ValueError(
            f"names the files {str(state['trees'])[:80]!r} and {str(state['booster'])[:80]!r}; "
            f"expected {outcome}.trees.json and {outcome}.ubj"
        )
    for key in ("params", "feature_set"):
        if not isinstance(state[key], dict):
            raise ValueError(f"{key} is not an object")
    names, names_in = state["feature_names"], state["feature_names_in"]
    for key, value in (("feature_names", names), ("feature_names_in", names_in)):
        if not (
            isinstance(value, list)
            and value
            and all(isinstance(v, str) for v in value)
            and len(set(value)) == len(value)
        ):
            raise ValueError(f"{key} is not a list of distinct names")
    trees = TreeEnsemble.from_dict(read.json(state["trees"]))
    if trees.n_features != len(names):
        raise ValueError(
            f"its trees read {trees.n_features} features; feature_names has {len(names)}"
        )
    spec = spec_from_dict(state["feature_set"])
    if list(feature_map(spec).index) != names:
        raise ValueError(
            "its feature set no longer produces the features the trees were trained on"
        )
    from .schema import _known

    unknown = [name[:40] for name in names_in if not _known(name)][:5]
    lacking = sorted(set(sources(spec)) - set(names_in))[:5]
    if unknown or lacking:
        raise ValueError(
            f"feature_names_in: columns the data contract does not have {unknown}, columns "
            f"its feature set reads but it lacks {lacking}"
        )
    classes, rounds, leaf = state["classes"], state["n_rounds"], state["min_child_weight"]
    if not (
        isinstance(classes, list)
        and len(classes) == 2
        and all(
            isinstance(c, bool | int | str) or (isinstance(c, float) and math.isfinite(c))
            for c in classes
        )
        and type(classes[0]) is type(classes[1])
        and classes[0] < classes[1]
    ):  # as scikit-learn sorts them: the second is the event
        raise ValueError(f"classes {str(classes)[:60]}: expected two labels, in order")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or not 0 <= rounds <= 1_000_000:
        raise ValueError(f"n_rounds {str(rounds)[:40]}: expected a whole number of rounds")
    if not isinstance(leaf, int | float) or isinstance(leaf, bool) or not 0 <= leaf < 1e12:
        raise ValueError(f"min_child_weight {str(leaf)[:40]}: expected a non-negative number")
    calibrators = state["replicate_calibrators"]
    if not isinstance(calibrators, list) or len(calibrators) != trees.n_members - 1:
        raise ValueError(
            f"replicate_calibrators: expected {trees.n_members - 1}, one per replicate's trees"
        )
    calibrators = [check_calibrator(c) for c in [state["calibrator"], *calibrators]]
    z = state["interval_z"]
    if z is not None and (
        not isinstance(z, int | float) or isinstance(z, bool) or not 0 < z < 1e3
    ):
        raise ValueError(f"interval_z {str(z)[:40]} is not a number in (0, 1000)")
    imputer = state["imputer"]
    linear = _checked_linear(state["linear"], trees.n_members, len(names))
    state = {**state, "linear": linear}
    # the booster file is decoded and checked here, in Python, and must hold the scoring
    # trees' first member: XGBoost only ever reads the JSON of what was checked
    where = state["booster"]
    document, booster = booster_json(read.files[where], len(names), where)
    try:
        compiled = TreeEnsemble.from_xgboost_json([document])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(
            f"{where}: not a booster ketapredict saved ({error!r:.160})"
        ) from None
    end = len(trees.left) if trees.n_members == 1 else trees.roots[trees.tree_member == 1][0]
    if (
        len(compiled.left) != end
        or not all(
            np.array_equal(getattr(compiled, name), getattr(trees, name)[:end])
            for name in ("left", "right", "feature", "threshold", "value", "default_left")
        )
        # the base score, where it counts: a linear component's margin replaces it (the
        # scoring trees then hold 0)
        or (not (linear and linear[0]) and compiled.base_margins[0] != trees.base_margins[0])
    ):
        raise ModelFileError(f"{where} holds other trees than {state['trees']} scores with")
    # n_rounds says how many of them XGBClassifier scores with (0: one tree of zeros)
    if len(compiled.roots) != max(state["n_rounds"], 1):
        raise ModelFileError(
            f"{state['outcome']}.json: n_rounds {state['n_rounds']} but {where} holds "
            f"{len(compiled.roots)} trees"
        )
    return OutcomeState(
        outcome=outcome,
        spec=spec,
        feature_names=names,
        feature_names_in=names_in,
        trees=trees,
        calibrators=calibrators,
        z=z,
        scale=_checked_scale(state["interval_scale"]),
        linear=linear,
        imputer=None if imputer is None else BaselineImputer.from_dict(imputer),
        update=_checked_update(state["recalibration"]),
        record={key: state[key] for key in _MODEL_FIELDS if key in state},
        booster_file=read.files[where],
        booster=booster,
    )


_LINEAR_VECTORS = ("low", "high", "center", "scale", "coef", "coef_active")
# What fitting chose (OutcomeModel._fit_linear): the penalties, and the measurement's slope
_LINEAR_CHOSEN = {"C", "alpha", "slope"}
_LINEAR_KEYS = {*_LINEAR_VECTORS, *_LINEAR_CHOSEN, "intercept", "active"}
_LINEAR_KEYS |= {"modifiers", "coef_modifiers"}  # linear="dose_time"
# The largest magnitude a saved linear component's numbers may have, and a standardised
# feature's reach over its training range: far beyond any fitted model (the demo model's
# largest coefficient is 1.2, its largest reach 14 SDs), and small enough that no sum of
# terms can overflow to an infinite margin (a tampered 1e308 gave NaN probabilities).
_LINEAR_LIMIT = 1e6


def _checked_linear(linear: Any, n_members: int, n_features: int) -> list:
    """A saved model's linear components, one per member, checked (ValueError if not),
    their numbers as floats."""
    if linear is None or linear == []:
        return []
    if not isinstance(linear, list) or len(linear) != n_members:
        raise ValueError(f"linear components: expected a list of {n_members}")
    if all(member is None for member in linear):
        return linear
    checked = []
    for member in linear:
        if not isinstance(member, dict):
            raise ValueError("linear components: every member needs one")
        unknown = sorted(str(key)[:40] for key in set(member) - _LINEAR_KEYS)
        if unknown:
            raise ValueError(f"linear component: unknown fields {unknown[:5]}")
        for key in _LINEAR_CHOSEN & set(member):  # the penalty chosen: said, not used
            value = member[key]
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not (abs(value) <= _LINEAR_LIMIT)
            ):
                raise ValueError(f"linear {key} {str(value)[:40]} is not a finite number")
        vectors = {}
        for key in _LINEAR_VECTORS:
            try:
                vector = np.asarray(member[key], dtype=float)
            except (TypeError, ValueError):
                vector = np.full(1, np.nan)
            if (
                vector.shape != (n_features,)
                or not np.isfinite(vector).all()
                or (np.abs(vector) > _LINEAR_LIMIT).any()
            ):
                raise ValueError(
                    f"linear {key}: expected {n_features} finite numbers within "
                    f"+-{_LINEAR_LIMIT:g}"
                )
            vectors[key] = vector
        if not (vectors["scale"] > 0).all() or (vectors["low"] > vectors["high"]).any():
            raise ValueError("linear scale: every entry must be positive, low <= high")
        reach = np.maximum(
            np.abs(vectors["high"] - vectors["center"]), np.abs(vectors["low"] - vectors["center"])
        )
        if (reach > _LINEAR_LIMIT * vectors["scale"]).any():
            raise ValueError(f"linear scale: a feature reaches beyond {_LINEAR_LIMIT:g} SDs")
        intercept = member["intercept"]
        if (
            not isinstance(intercept, int | float)
            or isinstance(intercept, bool)
            or not abs(intercept) <= _LINEAR_LIMIT
        ):
            raise ValueError(f"linear intercept {str(intercept)[:40]} is not a finite number")
        active = member.get("active")
        if active is not None and not _position(active, n_features):
            raise ValueError(f"linear active {active!r} is not a feature position")
        _check_modifiers(member, linear[0], n_features)
        checked.append(
            {
                **member,
                **{k: v.tolist() for k, v in vectors.items()},
                "intercept": float(intercept),
            }
        )
    return checked


def _position(value: Any, n_features: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n_features


def _check_modifiers(member: dict, first: dict, n_features: int) -> None:
    """A member's modifiers (``linear="dose_time"``): each a regimen column with a finite
    range and two flags, the same for every member, with a finite coefficient row each."""
    modifiers = member.get("modifiers")
    if modifiers is None and "coef_modifiers" not in member:
        return
    if not isinstance(modifiers, list) or modifiers != first.get("modifiers"):
        raise ValueError("linear modifiers: expected one list, the same for every member")
    for spec in modifiers:
        if (
            not isinstance(spec, dict)
            or set(spec) != {"column", "low", "high", "log", "active"}
            or not _position(spec["column"], n_features)
            or not all(isinstance(spec[k], bool) for k in ("log", "active"))
            or not all(
                isinstance(spec[k], int | float) and not isinstance(spec[k], bool)
                for k in ("low", "high")
            )
            or not np.isfinite([spec["low"], spec["high"]]).all()
            or spec["low"] > spec["high"]
            or (spec["active"] and member.get("active") is None)
        ):
            raise ValueError(f"linear modifier {str(spec)[:60]} is not a valid modifier")
    expected = f"linear coef_modifiers: expected {len(modifiers)} x {n_features} finite numbers"
    try:
        rows = np.asarray(member.get("coef_modifiers"), dtype=float)
    except (TypeError, ValueError):
        raise ValueError(expected) from None
    if (
        rows.shape != (len(modifiers), n_features)
        or not np.isfinite(rows).all()
        or (np.abs(rows) > _LINEAR_LIMIT).any()
        or any(max(abs(spec["low"]), abs(spec["high"])) > _LINEAR_LIMIT for spec in modifiers)
    ):
        raise ValueError(expected + f" within +-{_LINEAR_LIMIT:g}")


def _compose(first: Mapping[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """One update doing ``first`` then ``second``: a2 + b2 (a1 + b1 l).

    Its covariance carries both estimates' errors (delta method, the two samples
    independent): the Jacobian of (a, b) = (a2 + b2 a1, b2 b1) in (a2, b2) is
    [[1, a1], [0, b1]], in (a1, b1) it is b2 times the identity. A second update the closed
    test declines leaves the first as it was.
    """
    if second["method"] == "none":
        return {**first, "p_values": second["p_values"], "n": second["n"],
                "events": second["events"]}  # fmt: skip
    a1, b1 = first["intercept"], first["slope"]
    a2, b2 = second["intercept"], second["slope"]
    jacobian = np.array([[1.0, a1], [0.0, b1]])
    covariance = jacobian @ np.asarray(second["covariance"]) @ jacobian.T + b2**2 * np.asarray(
        first["covariance"]
    )
    method = (
        "intercept_slope"
        if "slope" in (first["method"] + second["method"])
        else ("intercept" if "intercept" in (first["method"], second["method"]) else "none")
    )
    return {
        **second,
        "method": method,
        "intercept": float(a2 + b2 * a1),
        "slope": float(b2 * b1),
        "covariance": covariance.tolist(),
    }


# The largest intercept or slope (and, squared, variance) a saved recalibration may hold,
# and 1 / it the smallest slope: the recalibrated log-odds are clipped at about 9.2, so
# updates beyond these say nothing more, and they keep the interval's variance finite.
_UPDATE_LIMIT = 1e3


def _checked_update(update: Any) -> dict[str, Any] | None:
    """A saved recalibration, checked: a known method, finite coefficients, a 2x2
    covariance with non-negative variances."""
    if update is None:
        return None
    if not isinstance(update, dict) or update.get("method") not in (
        "none",
        "intercept",
        "intercept_slope",
    ):
        raise ValueError(f"recalibration is not a known update: {str(update)[:80]}")
    numbers = [update.get("intercept"), update.get("slope")]
    covariance = update.get("covariance")
    if not (isinstance(covariance, list) and len(covariance) == 2):
        raise ValueError("recalibration covariance is not 2 x 2")
    for row in covariance:
        if not (isinstance(row, list) and len(row) == 2):
            raise ValueError("recalibration covariance is not 2 x 2")
        numbers += row
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in numbers
    ):
        raise ValueError("recalibration coefficients are not finite numbers")
    (vaa, vab), (vba, vbb) = covariance
    # (an inverse of a symmetric matrix may differ from symmetric in its last digits)
    asymmetric = abs(vab - vba) > 1e-9 * max(abs(vab), abs(vba), np.sqrt(abs(vaa * vbb)))
    if vaa < 0 or vbb < 0 or asymmetric or vab * vba > vaa * vbb * (1 + 1e-6) + 1e-300:
        raise ValueError(
            "recalibration covariance is not a covariance (symmetric, with non-negative "
            "variances and |covariance| at most their root product)"
        )
    if not (
        abs(update["intercept"]) <= _UPDATE_LIMIT
        and update["slope"] <= _UPDATE_LIMIT
        and max(vaa, vbb) <= _UPDATE_LIMIT**2
    ):
        # a finite number can still overflow the interval's variance (inf - inf = NaN)
        raise ValueError(
            f"recalibration intercept, slope or variances beyond {_UPDATE_LIMIT:g} (or "
            f"{_UPDATE_LIMIT**2:g} for a variance): no recalibration sample gives them"
        )
    if update["slope"] <= 1 / _UPDATE_LIMIT:  # choose_update never gives one
        raise ValueError(
            f"recalibration slope {update['slope']:.3g} is not above {1 / _UPDATE_LIMIT:g}: "
            "at 0 or below it turns every prediction round, near 0 it makes them all one, "
            "which this version never applies (recalibrate the original model again)"
        )
    return {
        **update,
        "intercept": float(update["intercept"]),
        "slope": float(update["slope"]),
        "covariance": [[float(vaa), float(vab)], [float(vba), float(vbb)]],
    }


def _checked_scale(scale: Any) -> dict[str, float] | None:
    """Saved interval multipliers, checked (ValueError if not)."""
    if scale is None:
        return None
    if not isinstance(scale, dict) or set(scale) != {"active", "comparator"}:
        raise ValueError("interval_scale: expected 'active' and 'comparator'")
    for name, value in scale.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < 1e3:
            raise ValueError(f"interval_scale {name} {value!r} is not a number in (0, 1000)")
    return {k: float(v) for k, v in scale.items()}


def _ends_of_many(values: np.ndarray, low: np.ndarray, high: np.ndarray, data: Any):
    """Training ranges that are no patient's exact value: each end moved in until at least
    ``MIN_CELL`` patients lie at or beyond it (in courses, times the most one patient
    gives), then rounded outward, as the linear part's range is. With few patients the
    0.5th and 99.5th percentiles are the youngest and oldest patients' ages, and whole
    numbers round to themselves: a model saved them and its reports printed them (a
    privacy review). A feature with too few values for both ends has its median as both."""
    from .schema import MIN_CELL, courses_per_patient

    least = MIN_CELL * courses_per_patient(data)
    ordered = np.sort(values, axis=0)  # NaN last
    counts = (~np.isnan(values)).sum(axis=0)
    low, high = low.copy(), high.copy()
    for j, n in enumerate(counts):
        if n >= 2 * least:
            low[j] = max(low[j], ordered[least - 1, j])
            high[j] = min(high[j], ordered[n - least, j])
        elif n:
            low[j] = high[j] = np.median(ordered[:n, j])
    return rounded_outward(low, np.floor), rounded_outward(high, np.ceil)


def unseen_flags(reference: Mapping[str, Any]) -> list[str]:
    """The 0/1 features (a category, a yes/no field) never 1 in the training data: a
    patient with one is outside it, in reports and in :meth:`RiskModel.outside_training`
    alike."""
    seen = set(reference["seen_categories"])
    return [name for name in reference["binary"] if name not in seen]


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


def _predictor_label(name: str) -> str:
    """A predictor in clinical words: its column's label, or its own name when it is built
    from several columns (``peak exposure``)."""
    from .schema import column

    try:
        return column(name).clinical_label
    except KeyError:
        return name

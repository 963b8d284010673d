"""Feature sets as scikit-learn transformers.

:func:`load_feature_set` returns a :class:`FeatureEncoder`, a scikit-learn transformer with
pandas output whose ``feature_map_`` maps every output column back to the clinical predictor
and group it came from (``diagnosis_TRD`` -> predictor ``diagnosis``, group ``diagnosis``).
The sets themselves and their encoders live in :mod:`ketapredict.encoding` (see there for
the file format).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .encoding import (
    ANTIDEPRESSANT_ACTS_FROM_DAY,
    FeatureSet,
    _parse,
    checked_assessed_day,
    encode,
    feature_map,
    sources,
)
from .exceptions import Problem, ValidationError, short_repr
from .schema import column

__all__ = ["FeatureEncoder", "FeatureSet", "load_feature_set"]


class FeatureEncoder(TransformerMixin, BaseEstimator):
    """Encode a patient table with a feature set; a scikit-learn transformer.

    Parameters
    ----------
    feature_set : str or path-like, default="core"
        A feature-set name in ``features/`` or a path to a ``.toml`` file.
    assessed_day : float or None, default=None
        Encode every row as of this day (days after the first session) in place of its
        ``endpoint_day``: for an outcome with a time of its own, such as dissociation in
        the first session (:func:`ketapredict.schema.assessment_day`). None: each row's
        ``endpoint_day``.

    Attributes
    ----------
    spec_ : FeatureSet
        The parsed feature set.
    feature_map_ : DataFrame
        Indexed by output feature: ``predictor`` (the clinical predictor it comes from),
        ``label`` (clinical words), ``group`` and ``group_label``.
    feature_names_in_ : ndarray of str
        The contract columns the encoder reads: every column the feature set lists, whether
        or not the table given to ``fit`` had it. An optional column that table lacked was
        fitted as missing; given later, it is read (``weight_kg``, for one, converts a dose
        in mg to mg/kg).
    n_features_in_ : int

    Examples
    --------
    >>> from ketapredict import load_feature_set, simulate_cohort
    >>> cohort = simulate_cohort(n=500, seed=0)
    >>> encoder = load_feature_set("core").fit(cohort)
    >>> encoded = encoder.transform(cohort)
    >>> encoded.shape
    (500, 41)
    >>> encoder.feature_map_.loc["diagnosis_TRD", "predictor"]
    'diagnosis'
    >>> encoder.feature_map_.loc["peak_exposure_mg_per_kg_per_h", "group"]
    'dose_schedule'
    """

    def __init__(self, feature_set: str | Path = "core", *, assessed_day: float | None = None):
        self.feature_set = feature_set
        self.assessed_day = assessed_day

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureEncoder:
        """Parse the feature set and check ``X`` has the columns it needs.

        Parameters
        ----------
        X : DataFrame
            A patient table (validated or not); other columns are ignored.
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        self
        """
        if not isinstance(X, pd.DataFrame):
            raise ValidationError(
                [
                    Problem(
                        "X",
                        None,
                        "FeatureEncoder needs a patient table (pandas DataFrame) with the "
                        f"contract's columns; got {type(X).__name__}",
                    )
                ],
                "arguments",
            )
        try:
            day = checked_assessed_day(self.assessed_day)
        except ValueError as error:
            raise ValidationError(
                [Problem("assessed_day", self.assessed_day, str(error))], "FeatureEncoder"
            ) from None
        self.spec_ = replace(
            _parse(self.feature_set),
            assessed_day=day,
            antidepressant_from_day=None if day is None else ANTIDEPRESSANT_ACTS_FROM_DAY,
        )
        needed = sources(self.spec_)
        self._check_columns(X, needed)
        self.feature_names_in_ = np.array(needed, dtype=object)
        self.n_features_in_ = len(needed)
        self.feature_map_ = feature_map(self.spec_)
        return self

    @classmethod
    def from_spec(cls, spec: FeatureSet, columns_in: Sequence[str]) -> FeatureEncoder:
        """A fitted encoder rebuilt from a saved feature set (no file is read)."""
        encoder = cls(spec.name, assessed_day=spec.assessed_day)
        encoder.spec_ = spec
        encoder.feature_names_in_ = np.array(list(columns_in), dtype=object)
        encoder.n_features_in_ = len(encoder.feature_names_in_)
        encoder.feature_map_ = feature_map(spec)
        return encoder

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Encode ``X``; optional columns it lacks become missing (NaN) features.

        Parameters
        ----------
        X : DataFrame
            A patient table with the columns the set reads.

        Returns
        -------
        DataFrame
            Float columns named by :meth:`get_feature_names_out`, same index as ``X``.
        """
        check_is_fitted(self, "feature_map_")
        if not isinstance(X, pd.DataFrame):
            raise ValidationError(
                [Problem("X", None, f"FeatureEncoder needs a DataFrame; got {type(X).__name__}")],
                "arguments",
            )
        self._check_columns(X, self.feature_names_in_)
        return pd.DataFrame(encode(self.spec_, X), index=X.index)

    def _check_columns(self, X: pd.DataFrame, needed: Sequence[str]) -> None:
        """Every required contract column the set reads is in ``X`` (optional ones may be
        absent: they become missing features)."""
        missing = [c for c in needed if column(c).required and c not in X.columns]
        # a column given twice is two columns under one name: which one to read?
        twice = sorted({str(c) for c in X.columns[X.columns.duplicated()] if c in needed})
        if missing or twice:
            raise ValidationError(
                [
                    Problem(
                        c,
                        None,
                        f"column {c!r} is missing; feature set {self.spec_.name!r} needs it",
                    )
                    for c in missing
                ]
                + [
                    Problem(c, None, f"column {c!r} appears more than once; give it once")
                    for c in twice
                ],
                "patient table",
            )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the encoded columns."""
        check_is_fitted(self, "feature_map_")
        return self.feature_map_.index.to_numpy(dtype=object)

    def set_output(self, *, transform: str | None = None) -> FeatureEncoder:
        """The encoder always returns pandas; ``transform="default"`` or ``"pandas"`` only."""
        if transform not in (None, "default", "pandas"):
            raise ValidationError(
                [
                    Problem(
                        "transform",
                        None,
                        "FeatureEncoder returns pandas DataFrames; transform must be "
                        f"'default' or 'pandas'; got {short_repr(transform)}",
                    )
                ],
                "arguments",
            )
        return self

    def predictor_of(self, feature: str) -> str:
        """The clinical predictor an encoded column comes from.

        Parameters
        ----------
        feature : str
            An encoded column, one of :meth:`get_feature_names_out`.

        Returns
        -------
        str
        """
        check_is_fitted(self, "feature_map_")
        if feature not in self.feature_map_.index:
            raise ValidationError(
                [
                    Problem(
                        "feature",
                        feature,
                        f"{short_repr(feature)} is no encoded feature of this set; expected one "
                        f"of {', '.join(map(str, self.feature_map_.index))}",
                    )
                ],
                "arguments",
            )
        return str(self.feature_map_.loc[feature, "predictor"])


def load_feature_set(name_or_path: str | Path = "core") -> FeatureEncoder:
    """The feature encoder for a named set in ``features/`` or a ``.toml`` file.

    The file is read and checked now, so a bad set fails before any training.

    Parameters
    ----------
    name_or_path : str or path-like, default="core"
        A set in ``features/`` by name (``"core"``, ``"no_cognition"``) or a TOML file.

    Returns
    -------
    FeatureEncoder
        Unfitted; ``fit`` parses the set again and checks the data has the columns it
        needs.

    Raises
    ------
    ValidationError
        Naming the file and key of every problem: unknown keys or encoders, unknown columns,
        and columns that cannot be features (outcome, truth, identifier, group).

    Examples
    --------
    >>> from ketapredict import load_feature_set, simulate_cohort
    >>> encoder = load_feature_set("core").fit(simulate_cohort(n=200, seed=0))
    >>> [group.name for group in encoder.spec_.groups]
    ['severity', 'cognition', 'diagnosis', 'dose_schedule', 'demographics']
    """
    _parse(name_or_path)  # fail now, not at fit; the result is fit's to keep (spec_)
    return FeatureEncoder(name_or_path)

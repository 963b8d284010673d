"""Missing baseline fields integrated out: a conditional-Gaussian model of what is not known.

Trials collect different fields, so a missing field says which trial a patient came from; a
model that routes "missing" down its own branch learns the trial, not the patient. Instead,
:class:`BaselineImputer` models the optional baseline fields (BMI, HAMD-17, family history,
the cognitive tests...) jointly with the required ones (age, sex, diagnosis, MADRS) as one
multivariate normal, estimated from the training rows where each pair of fields is recorded
(pairwise-complete covariance, repaired to be positive definite). Then:

- **training** fills each missing value with one random draw from its conditional
  distribution given the patient's recorded fields (one stochastic imputation: a filled
  value carries no mark of having been missing, unlike a conditional mean, which is one
  constant per missingness pattern);
- **scoring** replaces a patient with missing fields by ``n_draws`` copies whose missing
  values are draws from that conditional distribution, and averages the predicted
  probabilities over them: the probability marginalised over the field's plausible values
  given what is known (multiple imputation at prediction; Little and Rubin 2019, Statistical
  Analysis with Missing Data, 3rd ed., ch. 10). The draws are fixed (antithetic normal
  pairs and uniforms from seed 0), so a patient's prediction does not depend on the rest of
  the batch.

Yes/no fields are drawn as Bernoulli with the conditional mean as probability (clipped to
[0, 1]); counts are rounded; every draw is clipped to the contract's range. The model assumes
a field is missing at random given the recorded ones: where a field is missing *because* of
its value (in the virtual cohort, family history and past suicide attempts are), the
integrated probability leans toward the recorded patients' values.

numpy only: the clinician path uses it without scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .encoding import _floats
from .schema import column, columns

__all__ = ["BaselineImputer"]

# Draws per patient with missing fields at scoring: 8 antithetic pairs. Against 256 draws,
# the demo model's probabilities for 2,000 virtual courses moved by an SD of 0.21 points
# (response) and at most 1.7 points (benchmarks/latency.py measures it again).
N_DRAWS = 16
# Eigenvalues of the correlation matrix are kept at least this large: pairwise-complete
# covariances need not be positive definite, and a near-singular one would make conditional
# variances of exactly zero.
_MIN_EIGENVALUE = 1e-3


def _values(frame: Any, name: str) -> np.ndarray:
    """A contract column as floats (yes/no as 1/0, categories as NaN), NaN if absent."""
    return _floats(frame, name)


class BaselineImputer:
    """Draws of missing optional baseline fields given the recorded ones.

    Parameters
    ----------
    fields : sequence of str
        The optional baseline columns to impute (those a feature set reads).
    n_draws : int, default=16
        Draws per patient with a missing field, at scoring (even: antithetic pairs).

    Attributes
    ----------
    variables_ : list of str
        The modelled variables: ``fields`` recorded in the training data, then the
        conditioning ones (required numeric fields and one indicator per category of the
        required categorical fields).
    mean_, covariance_ : ndarray
        The multivariate normal of ``variables_``.
    kinds_ : list of str
        ``"float"``, ``"int"`` or ``"bool"`` per imputed field.
    spec_ : list of (str, str or None)
        Each variable's column and, for a category's indicator, the category.

    Examples
    --------
    >>> from ketapredict import simulate_cohort
    >>> from ketapredict.imputation import BaselineImputer
    >>> cohort = simulate_cohort(n=2000, seed=0)
    >>> imputer = BaselineImputer(["bmi", "hamd17_baseline"]).fit(cohort)
    >>> filled, owner = imputer.expand(cohort.head(20))
    >>> int(filled["bmi"].isna().sum()), len(filled) >= 20
    (0, True)
    """

    def __init__(self, fields: Sequence[str], n_draws: int = N_DRAWS):
        self.fields = list(fields)
        self.n_draws = n_draws

    # -- fitting ----------------------------------------------------------------------------
    def _conditioners(self) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for name in columns("baseline"):
            spec = column(name)
            if not spec.required:
                continue
            if spec.kind == "category":
                out.extend((name, category) for category in spec.categories[1:])
            else:
                out.append((name, None))
        return out

    def _matrix(self, frame: Any, variables: Sequence[tuple[str, str | None]]) -> np.ndarray:
        out = np.empty((len(frame), len(variables)))
        for j, (name, category) in enumerate(variables):
            if category is None:
                out[:, j] = _values(frame, name)
            elif name in frame.columns:
                labels = np.asarray(frame[name], dtype=object)
                missing = pd.isna(labels)
                out[:, j] = np.where(missing, np.nan, (labels == category) * 1.0)
            else:
                out[:, j] = np.nan
        return out

    def fit(self, frame: pd.DataFrame) -> BaselineImputer:
        """Estimate the joint normal from the training table."""
        spec = [(f, None) for f in self.fields] + self._conditioners()
        X = self._matrix(frame, spec)
        # a variable needs two recorded values to have a variance; fields first, in order
        keep = [j for j in range(X.shape[1]) if np.isfinite(X[:, j]).sum() >= 2]
        self.spec_ = [spec[j] for j in keep]
        X = X[:, keep]
        recorded = [n for n, _ in self.spec_[: sum(j < len(self.fields) for j in keep)]]
        mean = np.nanmean(X, axis=0)
        covariance = pd.DataFrame(X).cov(min_periods=2).to_numpy()
        sd = np.sqrt(np.clip(np.diag(covariance), 1e-12, None))
        correlation = np.nan_to_num(covariance / np.outer(sd, sd))
        np.fill_diagonal(correlation, 1.0)
        values, vectors = np.linalg.eigh(correlation)
        correlation = (vectors * np.maximum(values, _MIN_EIGENVALUE)) @ vectors.T
        d = np.sqrt(np.diag(correlation))
        correlation = correlation / np.outer(d, d)
        self.fields_ = recorded
        self.variables_ = [n if c is None else f"{n}={c}" for n, c in self.spec_]
        self.mean_ = mean
        self.covariance_ = correlation * np.outer(sd, sd)
        self.kinds_ = [column(f).kind for f in recorded]
        return self

    # -- drawing ----------------------------------------------------------------------------
    def _fill(self, X: np.ndarray, normals: np.ndarray, uniforms: np.ndarray) -> dict[str, Any]:
        """Filled values of the imputed fields for every row of ``X`` (the rows' variables,
        :meth:`_matrix`).

        ``normals`` and ``uniforms`` have shape (len(X), n_variables): the standard draws.
        """
        k = len(self.fields_)
        filled = X[:, :k].copy()
        missing = np.isnan(X)
        # one integer per missingness pattern (np.unique over boolean rows is slow)
        codes = missing.astype(np.int64) @ (np.int64(1) << np.arange(missing.shape[1]))
        for code in np.unique(codes):
            rows = np.flatnonzero(codes == code)
            pattern = missing[rows[0]]
            m = np.flatnonzero(pattern[:k])
            if not len(m):
                continue
            o = np.flatnonzero(~pattern)
            S = self.covariance_
            if len(o):
                gain = np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)]).T
                mean = self.mean_[m] + (X[np.ix_(rows, o)] - self.mean_[o]) @ gain.T
                cov = S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
            else:
                mean = np.broadcast_to(self.mean_[m], (len(rows), len(m)))
                cov = S[np.ix_(m, m)]
            scale = np.linalg.cholesky(cov + 1e-9 * np.eye(len(m)))
            draw = mean + normals[np.ix_(rows, m)] @ scale.T
            for i, j in enumerate(m):
                kind = self.kinds_[j]
                spec = column(self.fields_[j])
                if kind == "bool":
                    value = (uniforms[rows, j] < np.clip(mean[:, i], 0.0, 1.0)) * 1.0
                else:
                    value = draw[:, i]
                    if kind == "int":
                        value = np.round(value)
                    value = np.clip(
                        value,
                        -np.inf if spec.low is None else spec.low,
                        np.inf if spec.high is None else spec.high,
                    )
                filled[rows, j] = value
        return {f: filled[:, j] for j, f in enumerate(self.fields_)}

    def write(self, frame: Any, values: Mapping[str, np.ndarray]) -> Any:
        """``frame`` (a DataFrame or encoding.Columns) with these fields' values, in the
        contract's types."""
        if not isinstance(frame, pd.DataFrame):  # encoding.Columns: plain arrays
            out = type(frame)(frame)
            out.update(values)
            return out
        out = frame.copy()
        for name, value in values.items():
            if column(name).kind == "bool":
                out[name] = pd.array(value.astype(bool), dtype="boolean")
            elif column(name).kind == "int":
                out[name] = pd.array(value.astype("int64"), dtype="Int64")
            else:
                out[name] = value
        return out

    def draw_once(self, frame: pd.DataFrame, random_state: int) -> pd.DataFrame:
        """The table with each missing value replaced by one conditional draw (training)."""
        if not self.fields_:
            return frame
        rng = np.random.default_rng(random_state)
        shape = (len(frame), len(self.variables_))
        X = self._matrix(frame, self.spec_)
        values = self._fill(X, rng.standard_normal(shape), rng.random(shape))
        return self.write(frame, values)

    def missing(self, frame: Any) -> np.ndarray:
        """Which imputed fields each row lacks: bool array (rows, fields)."""
        return np.column_stack(
            [np.isnan(_values(frame, f)) for f in self.fields_] or [np.zeros(len(frame), bool)]
        )[:, : len(self.fields_)]

    def draws(self, frame: Any) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """The imputed fields of every row's copies, without copying the rest of the table.

        Returns
        -------
        owner : ndarray of int
            For each copy, the position of its row in ``frame``: a row with missing fields
            has ``n_draws`` copies, a complete row one. A row's copies are consecutive.
        values : dict of str to ndarray
            Each imputed field's value in every copy (recorded values repeated).
        missing : ndarray of bool, shape (len(frame), len(fields_))
            Which imputed fields each row lacks.
        """
        if not self.fields_:
            return np.arange(len(frame)), {}, np.zeros((len(frame), 0), bool)
        missing = self.missing(frame)
        counts = np.where(missing.any(axis=1), self.n_draws, 1)
        owner = np.repeat(np.arange(len(frame)), counts)
        # the k-th copy of every row gets the k-th fixed draw: a patient's prediction does not
        # depend on the batch it came in
        copy = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        normals, uniforms = _standard_draws(self.n_draws, len(self.variables_))
        X = self._matrix(frame, self.spec_)[owner]
        return owner, self._fill(X, normals[copy], uniforms[copy]), missing

    def expand(self, frame: Any) -> tuple[Any, np.ndarray]:
        """Rows with missing fields as ``n_draws`` filled copies (scoring).

        Returns
        -------
        filled : DataFrame or encoding.Columns, as given
            Complete rows come once; rows with missing fields ``n_draws`` times.
        owner : ndarray of int
            For each filled row, the position of its row in ``frame``; average a
            prediction over it with :meth:`average`.
        """
        owner, values, missing = self.draws(frame)
        if not missing.any():
            return frame, owner
        expanded = (
            frame.iloc[owner].reset_index(drop=True)
            if isinstance(frame, pd.DataFrame)
            else type(frame)({k: np.asarray(v)[owner] for k, v in frame.items()})
        )
        return self.write(expanded, values), owner

    @staticmethod
    def average(values: np.ndarray, owner: np.ndarray, n_rows: int) -> np.ndarray:
        """Average per-copy values (rows first) back to one per original row."""
        counts = np.bincount(owner, minlength=n_rows).astype(float)
        values = np.asarray(values, dtype=float)
        if values.ndim == 1:
            return np.bincount(owner, weights=values, minlength=n_rows) / counts
        return np.column_stack(
            [np.bincount(owner, weights=v, minlength=n_rows) / counts for v in values.T]
        )

    # -- files ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "n_draws": self.n_draws,
            "spec": [[n, c] for n, c in self.spec_],
            "fields_": self.fields_,
            "mean": self.mean_.tolist(),
            "covariance": self.covariance_.tolist(),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> BaselineImputer:
        """Rebuild a saved imputer, checking every part (a model file is untrusted).

        Raises
        ------
        ValueError
            If a name is not a baseline column of the contract, a shape does not match,
            a number is not finite, the covariance is not positive definite, or
            ``n_draws`` is not 1 to 1,024.
        """
        keys = {"fields", "n_draws", "spec", "fields_", "mean", "covariance"}
        if not isinstance(state, Mapping) or set(state) != keys:
            found = sorted(str(k)[:40] for k in state) if isinstance(state, Mapping) else []
            raise ValueError(
                f"imputer: expected an object of {sorted(keys)}; got "
                + (f"{found[:8]}" if isinstance(state, Mapping) else type(state).__name__)
            )
        lists = ("fields", "spec", "fields_", "mean", "covariance")
        for key in lists:
            if not isinstance(state[key], list):
                raise ValueError(
                    f"imputer {key}: expected a list; got {type(state[key]).__name__}"
                )
        if not all(
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], str | None)
            for item in state["spec"]
        ) or not all(isinstance(name, str) for name in (*state["fields"], *state["fields_"])):
            raise ValueError(
                "imputer spec: expected [name, category] pairs, and fields and fields_ as names"
            )
        baseline = set(columns("baseline"))
        n_draws = state["n_draws"]
        if not isinstance(n_draws, int) or isinstance(n_draws, bool) or not 1 <= n_draws <= 1024:
            raise ValueError(f"imputer n_draws {n_draws!r} is not an integer from 1 to 1,024")
        spec = [(n, c) for n, c in state["spec"]]
        fields = list(state["fields_"])
        wanted = list(state["fields"])
        for name, category in spec:
            if name not in baseline or (
                category is not None and category not in column(name).categories
            ):
                raise ValueError(f"imputer variable {name!r}={category!r} is not in the contract")
        # only optional, non-categorical fields are ever drawn: a required one (diagnosis,
        # sex) in fields_ would overwrite what the clinician recorded with a draw
        for name in wanted:
            if name not in baseline or column(name).required or column(name).kind == "category":
                raise ValueError(
                    f"imputer field {str(name)[:40]!r} is not an optional numeric or yes/no "
                    "baseline field of the contract (only those are drawn)"
                )
        if len(set(wanted)) != len(wanted) or not _in_order(fields, wanted):
            raise ValueError("imputer fields must be distinct, and fields_ some of them in order")
        if [(f, None) for f in fields] != spec[: len(fields)]:
            raise ValueError("imputer fields_ do not lead its variables")
        # after them, the conditioning variables fit makes, in its order (some may be left
        # out: fewer than two recorded values)
        if not _in_order(spec[len(fields) :], cls(wanted)._conditioners()):
            raise ValueError(
                "imputer variables after fields_ are not the required baseline fields it "
                "conditions on, in order"
            )
        mean = np.asarray(state["mean"], dtype=float)
        covariance = np.asarray(state["covariance"], dtype=float)
        k = len(spec)
        if mean.shape != (k,) or covariance.shape != (k, k):
            raise ValueError(f"imputer mean {mean.shape} / covariance {covariance.shape} for {k}")
        if not (np.isfinite(mean).all() and np.isfinite(covariance).all()):
            raise ValueError("imputer mean or covariance is not finite")
        if not np.allclose(covariance, covariance.T):
            raise ValueError("imputer covariance is not symmetric")
        np.linalg.cholesky(covariance)  # LinAlgError (a ValueError) if not positive definite
        # a mean is a mean of the contract's values, and a variance at most the square of
        # their range (a bounded variable's is at most a quarter of it): a tampered 1e300
        # would draw every missing value at the range's end
        for i, (name, category) in enumerate(spec):
            spec_i = column(name)
            if category is not None or spec_i.kind == "bool":
                low, high = 0.0, 1.0
            else:
                low = -np.inf if spec_i.low is None else float(spec_i.low)
                high = np.inf if spec_i.high is None else float(spec_i.high)
            if not low <= mean[i] <= high or covariance[i, i] > (high - low) ** 2:
                variable = name if category is None else f"{name}={category}"
                raise ValueError(
                    f"imputer {variable}: mean {mean[i]:.3g} or variance "
                    f"{covariance[i, i]:.3g} impossible for values in {low:g} to {high:g}"
                )
        imputer = cls(wanted, n_draws)
        imputer.spec_ = spec
        imputer.fields_ = fields
        imputer.variables_ = [n if c is None else f"{n}={c}" for n, c in spec]
        imputer.mean_ = mean
        imputer.covariance_ = covariance
        imputer.kinds_ = [column(f).kind for f in fields]
        return imputer


def _in_order(items: Sequence[Any], within: Sequence[Any]) -> bool:
    """Whether ``items`` are distinct members of ``within``, in its order."""
    rest = iter(within)
    return all(any(item == other for other in rest) for item in items)


_DRAWS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _standard_draws(n_draws: int, n_variables: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed antithetic standard normals and uniforms, shape (n_draws, n_variables)."""
    key = (n_draws, n_variables)
    if key not in _DRAWS:
        rng = np.random.default_rng(0)
        half = (n_draws + 1) // 2
        z = rng.standard_normal((half, n_variables))
        u = rng.random((half, n_variables))
        _DRAWS[key] = (np.vstack([z, -z])[:n_draws], np.vstack([u, 1 - u])[:n_draws])
    return _DRAWS[key]

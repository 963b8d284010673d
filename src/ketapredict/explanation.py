"""Which predictors drive a prediction: exact SHAP values, in clinical words.

:func:`explain` computes SHAP values of an outcome model (``OutcomeModel.contributions``):
its linear component's terms plus XGBoost's own TreeSHAP of its trees (``pred_contribs``),
exact and additive on the model's margin (log-odds before calibration): base value + the
sum of a patient's contributions = the patient's margin. A patient with missing fields gets
the mean over the draws of those fields.
Contributions of encoded columns are summed into the clinical predictor they came from
(``diagnosis_TRD`` and ``diagnosis_MDD`` into ``diagnosis``) and into groups (the dose
schedule), which SHAP's additivity allows.

XGBoost implements the TreeSHAP algorithm of the SHAP authors (Lundberg 2020) for its own
trees, so no other SHAP library is needed; the plots are plain matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

__all__ = ["Explanation", "explain"]


@dataclass
class Explanation:
    """SHAP values of one outcome model for some patients.

    Attributes
    ----------
    outcome : str
    contributions : DataFrame
        SHAP values: one column per encoded feature, one row per patient (log-odds).
    base_value : float
        The margin with no information (the trees' expected output).
    margin : ndarray
        Each patient's margin: ``base_value + contributions.sum(axis=1)``.
    features : DataFrame
        The encoded feature values (for plots).
    feature_map : DataFrame
        Feature -> ``predictor``, ``label``, ``group``, ``group_label``.
    """

    outcome: str
    contributions: pd.DataFrame
    base_value: float
    margin: np.ndarray
    features: pd.DataFrame
    feature_map: pd.DataFrame

    def by_predictor(self) -> pd.DataFrame:
        """Contributions summed by clinical predictor (columns: predictor names)."""
        return self.contributions.T.groupby(self.feature_map["predictor"], sort=False).sum().T

    def by_group(self) -> pd.DataFrame:
        """Contributions summed by feature group (columns: group labels)."""
        return self.contributions.T.groupby(self.feature_map["group_label"], sort=False).sum().T

    def importance(self, level: str = "predictor") -> pd.DataFrame:
        """Global importance: mean absolute contribution, largest first.

        Parameters
        ----------
        level : {"predictor", "group", "feature"}, default="predictor"
            Sum contributions by clinical predictor, by group, or show encoded features.

        Returns
        -------
        DataFrame
            ``mean_abs_shap`` and ``share`` (of the total), and a clinical ``label``.
        """
        table = {
            "predictor": self.by_predictor,
            "group": self.by_group,
            "feature": lambda: self.contributions,
        }[level]()
        mean_abs = table.abs().mean().sort_values(ascending=False)
        out = pd.DataFrame({"mean_abs_shap": mean_abs, "share": mean_abs / mean_abs.sum()})
        if level == "predictor":
            out["label"] = self._predictor_labels().reindex(out.index)
        elif level == "feature":
            out["label"] = self.feature_map["label"].reindex(out.index)
        else:
            out["label"] = out.index
        return out

    def top_drivers(self, row: int = 0, k: int = 5) -> pd.DataFrame:
        """The ``k`` predictors with the largest contributions for one patient.

        Parameters
        ----------
        row : int, default=0
            Position of the patient in the explained table.
        k : int, default=5
            How many predictors.

        Returns
        -------
        DataFrame
            ``predictor``, ``label``, ``contribution`` (log-odds; positive raises the
            risk), ordered by absolute contribution.
        """
        contributions = self.by_predictor().iloc[row]
        order = contributions.abs().sort_values(ascending=False).index[:k]
        labels = self._predictor_labels()
        return pd.DataFrame(
            {
                "predictor": order,
                "label": labels.reindex(order).to_numpy(),
                "contribution": contributions[order].to_numpy(),
            }
        )

    def _predictor_labels(self) -> pd.Series:
        """One clinical label per predictor: the column's label, or the group's for
        predictors built from several columns."""
        from .schema import column

        labels = {}
        for predictor in self.feature_map["predictor"].unique():
            try:
                labels[predictor] = column(predictor).clinical_label
            except KeyError:
                labels[predictor] = predictor
        return pd.Series(labels)


def explain(model: Any, X: pd.DataFrame, outcome: str | None = None) -> Explanation:
    """Exact SHAP values of a fitted model's trees for the patients in ``X``.

    Parameters
    ----------
    model : OutcomeModel or RiskModel
        For a RiskModel, ``outcome`` picks the outcome (default: its first).
    X : DataFrame
        Patients (a validated patient table).
    outcome : str, optional
        For a RiskModel, the outcome to explain.

    Returns
    -------
    Explanation

    Examples
    --------
    >>> import numpy as np
    >>> from ketapredict import OutcomeModel, explain, simulate_cohort
    >>> cohort = simulate_cohort(n=2000, seed=0)
    >>> model = OutcomeModel("response").fit(cohort)
    >>> shap = explain(model, cohort.head(50))
    >>> total = shap.base_value + shap.contributions.sum(axis=1)
    >>> bool(np.allclose(total, model.margin(cohort.head(50)), atol=1e-4))
    True
    >>> shap.importance().index[0] in shap.feature_map["predictor"].to_numpy()
    True
    """

    from .models import OutcomeModel
    from .risk import RiskModel

    if isinstance(model, RiskModel):
        outcome = outcome or model.outcomes[0]
        if outcome not in model.models:
            raise KeyError(f"The model has no {outcome!r} outcome; it has {model.outcomes}.")
        model = model.models[outcome]
    if not isinstance(model, OutcomeModel):
        raise TypeError(f"explain needs an OutcomeModel or RiskModel; got {type(model).__name__}.")
    check_is_fitted(model, "booster_")
    if model.encoder_ is None:
        raise ValueError(
            "explain needs a model with a feature set (features=None has no "
            "clinical predictors to explain)."
        )
    encoded = model.encoder_.transform(X)
    # a patient with missing fields is explained as scored: SHAP values averaged over the
    # draws of those fields (OutcomeModel.contributions); ``features`` keeps them missing
    contributions = model.contributions(X)
    shap_values = pd.DataFrame(contributions[:, :-1], columns=encoded.columns, index=X.index)
    base = float(contributions[0, -1]) if len(contributions) else float("nan")
    return Explanation(
        outcome=outcome or model.outcome,
        contributions=shap_values,
        base_value=base,
        margin=contributions.sum(axis=1),
        features=encoded,
        feature_map=model.encoder_.feature_map_,
    )


def plot_beeswarm(explanation: Explanation, max_display: int = 15):
    """A SHAP beeswarm plot: each dot a patient, placed by its contribution to one encoded
    feature, coloured by that feature's value (low blue, high red; grey when missing).
    Returns the matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = explanation.contributions
    order = values.abs().mean().sort_values(ascending=False).index[:max_display][::-1]
    labels = explanation.feature_map["label"].reindex(order)
    figure, ax = plt.subplots(figsize=(8, 0.38 * len(order) + 1.5))
    for row, feature in enumerate(order):
        shap = values[feature].to_numpy()
        raw = explanation.features[feature].to_numpy(dtype=float)
        # colour by the rank of the feature's value, so skewed features still spread
        ranks = pd.Series(raw).rank(pct=True).to_numpy()
        # swarm: dots in the same narrow band of SHAP values are stacked up and down
        bands = np.round((shap - shap.min()) / (np.ptp(shap) + 1e-12) * 60)
        offsets = np.zeros(len(shap))
        for band in np.unique(bands):
            members = np.flatnonzero(bands == band)
            steps = np.arange(len(members))
            offsets[members] = ((steps + 1) // 2) * np.where(steps % 2, 1, -1)
        spread = np.abs(offsets).max() or 1
        y = row + 0.4 * offsets / spread
        missing = np.isnan(ranks)
        ax.scatter(shap[missing], y[missing], s=6, color="lightgrey", linewidths=0)
        dots = ax.scatter(
            shap[~missing],
            y[~missing],
            s=6,
            c=ranks[~missing],
            cmap="coolwarm",
            vmin=0,
            vmax=1,
            linewidths=0,
        )
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_yticks(range(len(order)), labels)
    ax.set_xlabel("SHAP value (contribution to the log-odds)")
    ax.set_title(f"{explanation.outcome}: SHAP values by encoded feature")
    bar = figure.colorbar(dots, ax=ax, fraction=0.03, pad=0.02)
    bar.set_ticks([0, 1], labels=["low", "high"])
    bar.set_label("feature value")
    figure.tight_layout()
    return figure


def plot_importance(explanation: Explanation, level: str = "predictor", max_display: int = 15):
    """A bar chart of global importance by clinical predictor; returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = explanation.importance(level).head(max_display).iloc[::-1]
    figure, ax = plt.subplots(figsize=(7, 0.35 * len(table) + 1.2))
    ax.barh(table["label"], table["mean_abs_shap"], color="C3")
    ax.set_xlabel("mean |SHAP value| (log-odds)")
    ax.set_title(f"{explanation.outcome}: importance by clinical {level}")
    figure.tight_layout()
    return figure

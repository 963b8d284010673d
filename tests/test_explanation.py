import numpy as np
import pytest

from ketapredict import OutcomeModel, RiskModel, explain, simulate_cohort
from ketapredict.explanation import plot_beeswarm, plot_importance


@pytest.fixture(scope="module")
def data():
    return simulate_cohort(n=2500, seed=4)


@pytest.fixture(scope="module")
def model(data):
    return OutcomeModel("response").fit(data)


@pytest.fixture(scope="module")
def explanation(model, data):
    return explain(model, data.iloc[:400])


def test_contributions_add_up_to_the_margin(model, data, explanation):
    total = explanation.base_value + explanation.contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, model.margin(data.iloc[:400]), atol=1e-4)
    np.testing.assert_allclose(total, explanation.margin, atol=1e-4)


def test_predictor_and_group_sums_keep_additivity(explanation):
    by_feature = explanation.contributions.sum(axis=1)
    np.testing.assert_allclose(explanation.by_predictor().sum(axis=1), by_feature, atol=1e-6)
    np.testing.assert_allclose(explanation.by_group().sum(axis=1), by_feature, atol=1e-6)
    predictors = explanation.by_predictor().columns
    assert "diagnosis" in predictors
    assert not any(p.startswith("diagnosis_") for p in predictors)
    assert "dose schedule" in explanation.by_group().columns
    np.testing.assert_allclose(
        explanation.by_predictor()["diagnosis"],
        explanation.contributions[["diagnosis_MDD", "diagnosis_TRD", "diagnosis_bipolar"]].sum(
            axis=1
        ),
        atol=1e-6,  # float32 contributions, summed in another order
    )


def test_global_importance_and_top_drivers(explanation):
    table = explanation.importance()
    assert table["mean_abs_shap"].is_monotonic_decreasing
    assert table["share"].sum() == pytest.approx(1)
    assert table.loc["family_history_aud", "label"] == "family history of alcohol use disorder"
    drivers = explanation.top_drivers(row=3, k=5)
    assert len(drivers) == 5
    assert drivers["contribution"].abs().is_monotonic_decreasing
    row = explanation.by_predictor().iloc[3]
    assert drivers["contribution"].abs().iloc[0] == pytest.approx(row.abs().max())


def test_the_simulated_predictors_point_the_published_way(explanation):
    """Family history of alcohol use disorder raises response (Niciu 2014) in the model."""
    shap = explanation.contributions["family_history_aud"]
    has = explanation.features["family_history_aud"] == 1
    assert shap[has].mean() > 0 > shap[~has].mean()


def test_risk_model_explains_each_outcome(data):
    risk = RiskModel.fit(data, ["response", "dissociation"], n_estimators=80)
    shap = explain(risk, data.iloc[:50], "dissociation")
    assert shap.outcome == "dissociation"
    np.testing.assert_allclose(
        shap.margin, risk.models["dissociation"].margin(data.iloc[:50]), atol=1e-4
    )
    with pytest.raises(KeyError, match="has no 'remission' outcome"):
        explain(risk, data.iloc[:5], "remission")


def test_explain_refuses_what_it_cannot_explain(data):
    with pytest.raises(TypeError, match="needs an OutcomeModel or RiskModel"):
        explain(object(), data)


def test_plots_are_figures(explanation):
    for figure in (plot_beeswarm(explanation), plot_importance(explanation)):
        assert figure.axes

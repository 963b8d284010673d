import re
import subprocess
import sys
from importlib.metadata import version

import matplotlib
import numpy as np
import pytest
import shap

from ketapredict import OutcomeModel, ValidationError, explain, simulate_cohort
from ketapredict.explanation import composite_patient, importance, shap_figures, top_drivers
from ketapredict.trees import calibrated_log_odds, linear_terms

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ketapredict import build_risk_model

# the pair of versions the TreeExplainer comparison ran with (named in its test id)
VERSIONS = f"shap-{version('shap')}-xgboost-{version('xgboost')}"


@pytest.fixture(scope="module")
def data():
    return simulate_cohort(n=2500, seed=4)


@pytest.fixture(scope="module")
def model(data):
    return OutcomeModel("response").fit(data)


@pytest.fixture(scope="module")
def sample(data):
    return data.iloc[:400]


@pytest.fixture(scope="module")
def explanation(model, sample):
    return explain(model, sample)


@pytest.fixture(scope="module")
def by_predictor(model, sample):
    return explain(model, sample, level="predictor")


@pytest.fixture(scope="module")
def complete(model, data):
    """Patients with every field recorded: no draws of missing fields to average over."""
    recorded = model.encoder_.transform(data).notna().all(axis=1).to_numpy()
    return data[recorded].iloc[:60]


def test_a_shap_explanation_that_adds_up_to_the_margin(model, sample, explanation):
    assert isinstance(explanation, shap.Explanation)
    assert explanation.shape == (len(sample), len(model.feature_names_))
    fmap = model.encoder_.feature_map_.reindex(model.feature_names_)
    assert list(explanation.feature_names) == list(fmap["label"])
    assert "diagnosis: TRD" in explanation.feature_names
    assert explanation.output_names == "response: log-odds (margin before calibration)"
    total = explanation.base_values + explanation.values.sum(axis=1)
    np.testing.assert_allclose(total, model.margin(sample), atol=1e-4)
    # data are the encoded values, missing fields missing (their SHAP values are averaged
    # over the draws of those fields, as the model scores them)
    encoded = model.encoder_.transform(sample)[list(model.feature_names_)]
    np.testing.assert_array_equal(explanation.data, encoded.to_numpy(dtype=float))
    assert np.isnan(explanation.data).any()
    bmi = list(model.feature_names_).index("bmi")
    missing = np.isnan(explanation.data[:, bmi])
    assert (explanation.display_data[missing, bmi] == "missing").all()
    assert explanation.instance_names is None  # the index may hold identifiers


def test_predictor_level_sums_the_encoded_columns(model, sample, explanation, by_predictor):
    assert by_predictor.shape[0] == len(sample)
    names = list(by_predictor.feature_names)
    assert {"diagnosis", "comparator", "route", "sex", "dose", "baseline MADRS"} <= set(names)
    assert not any(name.startswith(("diagnosis:", "comparator:")) for name in names)
    np.testing.assert_allclose(
        by_predictor.values.sum(axis=1), explanation.values.sum(axis=1), atol=1e-9
    )
    np.testing.assert_allclose(by_predictor.base_values, explanation.base_values)
    features = list(explanation.feature_names)
    diagnosis = [features.index(f"diagnosis: {c}") for c in ("MDD", "TRD", "bipolar")]
    np.testing.assert_allclose(
        by_predictor.values[:, names.index("diagnosis")],
        explanation.values[:, diagnosis].sum(axis=1),
        atol=1e-12,
    )
    # MADRS and its severity band are one predictor
    madrs = [features.index("baseline MADRS"), features.index("MADRS severity band")]
    np.testing.assert_allclose(
        by_predictor.values[:, names.index("baseline MADRS")],
        explanation.values[:, madrs].sum(axis=1),
        atol=1e-12,
    )


def test_predictor_data_are_the_patients_values(sample, by_predictor):
    names = list(by_predictor.feature_names)
    data, text = by_predictor.data, by_predictor.display_data
    assert data.dtype == float  # shap's beeswarm colours by it
    np.testing.assert_array_equal(data[:, names.index("age")], sample["age"].to_numpy(float))
    family = sample["family_history_aud"]
    column = names.index("family history of alcohol use disorder")
    recorded = family.notna().to_numpy()
    np.testing.assert_array_equal(data[recorded, column], family[recorded].astype(float))
    assert np.isnan(data[~recorded, column]).all()
    assert set(text[recorded, column]) == {"yes", "no"}
    assert set(text[~recorded, column]) == {"missing"}
    diagnosis = names.index("diagnosis")
    np.testing.assert_array_equal(text[:, diagnosis], sample["diagnosis"].astype(str))
    # a category's position among its columns: tells categories apart
    for code, category in enumerate(["MDD", "TRD", "bipolar"]):
        assert (data[text[:, diagnosis] == category, diagnosis] == code).all()
    dose = names.index("dose")
    first = sample.iloc[0]
    assert text[0, dose] == f"{first['dose']:g} {first['dose_unit']}"


def test_probability_scale_adds_up_to_the_calibrated_risk(model, sample, complete, explanation):
    points = explain(model, sample, scale="probability")
    assert points.output_names == "response: calibrated risk (%)"
    p = model.predict_proba(sample)[:, 1]
    # to the rounding of XGBoost's float32 contributions
    np.testing.assert_allclose(
        points.base_values + points.values.sum(axis=1), 100 * p, rtol=0, atol=1e-4
    )
    margin = explanation.base_values[:1]
    p0 = 1 / (1 + np.exp(-calibrated_log_odds(margin, model.calibrator_)))
    np.testing.assert_allclose(points.base_values, 100 * p0[0])
    assert np.isfinite(points.values).all()
    # a patient with every field recorded: one positive factor, signs and order kept, at
    # most the steepest slope of the Platt sigmoid (a/4 per unit of log-odds); a patient
    # with missing fields gets the mean over draws of such values
    log_odds = explain(model, complete)
    points = explain(model, complete, scale="probability")
    assert (np.sign(points.values) == np.sign(log_odds.values)).all()
    steepest = 100 * abs(model.calibrator_["a"]) / 4
    assert (np.abs(points.values) <= steepest * np.abs(log_odds.values) + 1e-9).all()
    ratio = points.values / np.where(log_odds.values == 0, np.nan, log_odds.values)
    np.testing.assert_allclose(np.nanmin(ratio, axis=1), np.nanmax(ratio, axis=1))


@pytest.mark.parametrize("versions", [VERSIONS])
def test_values_match_shap_tree_explainer(model, complete, versions):
    """ketapredict's SHAP values equal shap's TreeExplainer's on the same trees.

    Like for like: the model's margin is a linear component (given to XGBoost as a base
    margin) plus the trees, and shap sees only the trees and XGBoost's stored base score
    (which XGBoost ignores when it boosts from a base margin). So ketapredict's values
    minus the linear terms must equal shap's, and its base value minus the linear
    intercept must equal shap's expected value minus the base score's log-odds. Patients
    with every field recorded, so no draws are averaged; log-odds.
    """
    e = explain(model, complete)
    Z = model.encoder_.transform(complete)[list(model.feature_names_)].to_numpy(dtype=float)
    trees = e.values - linear_terms(Z, model.linear_)
    trees_base = e.base_values - model.linear_["intercept"]
    # shap's TreeExplainer on the booster (for XGBoost it asks XGBoost's own TreeSHAP)
    explainer = shap.TreeExplainer(model.booster_)
    offset = float(np.ravel(explainer.model.base_offset)[0])
    np.testing.assert_allclose(explainer.shap_values(Z), trees, rtol=0, atol=1e-5)
    expected = float(np.ravel(explainer.expected_value)[0])
    np.testing.assert_allclose(expected - offset, trees_base, rtol=0, atol=1e-5)
    # shap's own TreeSHAP algorithm (its C extension) on the trees shap read from the
    # booster, given back as shap's documented dictionary of trees; an inner node's value
    # is the cover-weighted mean of its children's (shap's expected value reads the roots)
    internal = {
        "trees": [_tree(tree) for tree in explainer.model.trees],
        "base_offset": offset,
        "input_dtype": np.float32,
        "internal_dtype": np.float64,
    }
    own = shap.TreeExplainer(internal)
    assert own.model.model_type == "internal"
    np.testing.assert_allclose(own.shap_values(Z.astype(np.float32)), trees, rtol=0, atol=1e-5)
    expected = float(np.ravel(own.expected_value)[0])
    np.testing.assert_allclose(expected - offset, trees_base, rtol=0, atol=1e-5)
    # the clinician path's numpy TreeSHAP (ketapredict.trees), from a RiskModel
    state = build_risk_model({"response": model})._outcomes["response"]
    values, base = state.contributions(Z)
    np.testing.assert_allclose(values, e.values, rtol=0, atol=1e-5)
    np.testing.assert_allclose(base, e.base_values, rtol=0, atol=1e-5)


def _tree(tree) -> dict:
    values = tree.values.copy()
    weight = tree.node_sample_weight
    # XGBoost numbers a node's children after it: fill inner nodes from the last one back
    for node in range(len(values) - 1, -1, -1):
        left, right = tree.children_left[node], tree.children_right[node]
        if left >= 0:
            values[node] = (values[left] * weight[left] + values[right] * weight[right]) / (
                weight[node]
            )
    return {
        "children_left": tree.children_left,
        "children_right": tree.children_right,
        "children_default": tree.children_default,
        "features": tree.features,
        "thresholds": tree.thresholds,
        "values": values,
        "node_sample_weight": weight,
    }


def test_shap_plots_run_on_the_explanation(explanation, by_predictor):
    figures = []
    shap.plots.waterfall(explanation[0], show=False)
    figures.append(plt.gcf())
    shap.plots.beeswarm(explanation, show=False)
    figures.append(plt.gcf())
    shap.plots.bar(by_predictor, show=False)
    figures.append(plt.gcf())
    shap.plots.bar(by_predictor[0], show=False)
    figures.append(plt.gcf())
    figures.append(shap.plots.force(by_predictor[0], matplotlib=True, show=False))
    try:
        for figure in figures:
            assert figure.axes
        labels = [t.get_text() for t in figures[0].axes[0].get_yticklabels()]
        assert any(label.endswith("= baseline MADRS") for label in labels)
    finally:
        plt.close("all")
    # shap's own operations: global importance by predictor
    mean = by_predictor.abs.mean(0)
    assert mean.shape == (by_predictor.shape[1],)
    np.testing.assert_allclose(mean.values, np.abs(by_predictor.values).mean(axis=0))


def test_global_importance_and_top_drivers(by_predictor):
    table = importance(by_predictor)
    assert table["mean_abs_shap"].is_monotonic_decreasing
    assert table["share"].sum() == pytest.approx(1)
    assert "family history of alcohol use disorder" in table.index
    drivers = top_drivers(by_predictor[3], k=5)
    assert list(drivers.columns) == ["feature", "value", "contribution"]
    assert len(drivers) == 5
    assert drivers["contribution"].abs().is_monotonic_decreasing
    assert drivers["contribution"].abs().iloc[0] == pytest.approx(
        np.abs(by_predictor.values[3]).max()
    )
    with pytest.raises(ValidationError, match=re.escape("one patient's explanation")):
        top_drivers(by_predictor)
    with pytest.raises(ValidationError, match=re.escape("several patients")):
        importance(by_predictor[0])


def test_the_simulated_predictors_point_the_published_way(explanation):
    """Family history of alcohol use disorder raises response (Niciu 2014) in the model."""
    column = list(explanation.feature_names).index("family history of alcohol use disorder")
    values, has = explanation.values[:, column], explanation.data[:, column] == 1
    assert values[has].mean() > 0 > values[~has].mean()


def test_risk_model_explains_its_outcome_with_its_recalibration(model, data):
    risk = build_risk_model({"response": model})
    patients = data.iloc[:50]
    np.testing.assert_allclose(explain(risk, patients).values, explain(model, patients).values)
    # a population where response is more common: the update moves the calibrated risk,
    # and the percentage points follow the RiskModel's (updated) risk
    new = data.iloc[1000:1600].copy()
    new.loc[new.index[::3], "response"] = True
    updated = risk.recalibrate(new, method="intercept")
    points = explain(updated, patients, "response", scale="probability")
    p = updated.predict_proba(patients)["response"].to_numpy()
    assert not np.allclose(p, model.predict_proba(patients)[:, 1], atol=0.01)
    np.testing.assert_allclose(
        points.base_values + points.values.sum(axis=1), 100 * p, rtol=0, atol=1e-4
    )
    with pytest.raises(ValidationError, match="has no outcome 'remission'; it has response"):
        explain(risk, patients, "remission")


def test_explain_refuses_what_it_cannot_explain(model, data):
    with pytest.raises(ValidationError, match="needs an OutcomeModel or RiskModel"):
        explain(object(), data)
    with pytest.raises(ValidationError, match=re.escape("got level='group', but expected one of")):
        explain(model, data.head(3), level="group")
    with pytest.raises(ValidationError, match=re.escape("got scale='points', but expected")):
        explain(model, data.head(3), scale="points")
    with pytest.raises(ValidationError, match=re.escape("at least one row; got 0 rows")):
        explain(model, data.head(0))
    with pytest.raises(ValidationError, match=re.escape("predicts 'response'; got outcome='dis")):
        explain(model, data.head(3), "dissociation")


def test_shap_figures_are_shaps_own_legible_and_anonymous(model, sample):
    title = "response · baseline · features: core"
    figures = shap_figures(model, sample.assign(patient_id="P-0042"), title=title)
    try:
        assert list(figures) == [
            "shap_beeswarm.png",
            "shap_bar_by_predictor.png",
            "shap_waterfall_example.png",
        ]
        for name, figure in figures.items():
            assert figure.get_size_inches()[0] >= 8, name
            assert figure.dpi >= 100, name
            texts = [t for t in figure.findobj(matplotlib.text.Text) if t.get_text()]
            words = " ".join(t.get_text() for t in texts)
            assert title in words, name
            assert "P-0042" not in words, name
            assert min(t.get_fontsize() for t in texts) >= 9, name
        bar = figures["shap_bar_by_predictor.png"].axes[0]
        assert "diagnosis" in [t.get_text() for t in bar.get_yticklabels()]
        # the example is a composite patient on the schedule of the active-drug patient
        # whose predicted risk is closest to their median; no real patient's record is drawn
        p = 100 * model.predict_proba(sample)[:, 1]
        active = np.flatnonzero(sample["drug"].isin(["ketamine", "esketamine", "arketamine"]))
        middle = active[np.argmin(np.abs(p[active] - np.median(p[active])))]
        composite = composite_patient(sample, int(middle))
        typical = 100 * model.predict_proba(composite)[0, 1]
        assert "composite typical patient, not a real one" in figures[
            "shap_waterfall_example.png"
        ].texts[0].get_text().replace("\n", " ")
        words = " ".join(t.get_text() for t in figures["shap_waterfall_example.png"].texts)
        words += " ".join(
            t.get_text()
            for ax in figures["shap_waterfall_example.png"].axes
            for t in ax.get_xticklabels()
        )
        assert f"{typical:.3f}".rstrip("0") in words
    finally:
        for figure in figures.values():
            plt.close(figure)
    # real patients' runs get no beeswarm: its dots are single patients' values
    figures = shap_figures(model, sample, title=title, each_patient=False)
    assert list(figures) == ["shap_bar_by_predictor.png", "shap_waterfall_example.png"]
    for figure in figures.values():
        plt.close(figure)


def test_shap_is_imported_only_when_explaining():
    """``import ketapredict`` stays light and the clinician path never imports shap."""
    code = """
import sys, ketapredict, ketapredict.explanation
ketapredict.explain
model = ketapredict.load_model()
course = ketapredict.Regimen(drug="ketamine", route="iv", dose=0.5, dose_unit="mg/kg",
                             infusion_minutes=40)
report = model.score({"age": 46, "sex": "female", "diagnosis": "TRD",
                      "madrs_baseline": 34}, course, horizon_day=1)
assert report.risks["response"].drivers
assert "shap" not in sys.modules, "shap imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_composite_patient_is_no_ones_record_and_keeps_the_contract():
    from ketapredict import validate
    from ketapredict.explanation import MIN_COMPOSITE

    cohort = simulate_cohort(n=400, seed=8)
    for row in (0, 57, 311):
        typical = composite_patient(cohort, row)
        assert len(typical) == 1
        validate(typical)  # the contract's cross-field rules hold (TRD: >= 2 failures)
        for column in ("patient_id", "response", "madrs_d1", "p_response", "site_id"):
            assert column not in typical.columns
        assert typical["dose"].item() == cohort["dose"].iloc[row]
        baseline = ["age", "madrs_baseline", "bmi"]
        record = typical[baseline].astype(float).to_numpy()
        assert not (cohort[baseline].astype(float).to_numpy() == record).all(axis=1).any()
    few = cohort[cohort["diagnosis"] == "MDD"].head(MIN_COMPOSITE - 1)
    with pytest.raises(ValidationError, match=f"at least {MIN_COMPOSITE} patients"):
        composite_patient(few)


def test_shap_figures_leave_out_the_waterfall_for_too_few_patients(model, sample):
    few = sample[sample["diagnosis"] == sample["diagnosis"].mode().iloc[0]].head(5)
    figures = shap_figures(model, few, title="five patients")
    try:
        assert sorted(figures) == ["shap_bar_by_predictor.png", "shap_beeswarm.png"]
    finally:
        for figure in figures.values():
            plt.close(figure)


def test_top_drivers_never_lists_a_missing_field():
    import ketapredict
    from ketapredict.explanation import top_drivers

    patients = ketapredict.simulate_cohort(300, seed=3)
    lacking = patients[patients["ssi_baseline"].isna()].head(5)
    explained = ketapredict.explain(
        ketapredict.load_model(), lacking, "response", level="predictor", scale="probability"
    )
    for i in range(len(lacking)):
        drivers = top_drivers(explained[i])
        assert len(drivers) == 5
        assert "missing" not in set(drivers["value"])


def test_shap_labels_print_values_as_reports_do_rounded_for_a_figure():
    """One text for a recorded value (schema.Column.value_text): units as the report prints
    them, two decimals as a figure's label wants (a review found 33.6039 kg/m^2)."""
    import pandas as pd

    from ketapredict.explanation import _column_text

    table = pd.DataFrame(
        {"bmi": [33.6039, None], "age": [46.0, 80.0], "dose": [56.0, 0.5]}
    ).assign(dose_unit=["mg", "mg/kg"])
    assert _column_text(table, "bmi").tolist() == ["33.6 kg/m^2", "missing"]
    assert _column_text(table, "age").tolist() == ["46 years", "80 years"]
    assert _column_text(table, "dose").tolist() == ["56 mg", "0.5 mg/kg"]

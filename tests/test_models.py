import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from ketapredict import OutcomeModel, ValidationError, simulate_cohort
from ketapredict.evaluate import expected_calibration_error
from ketapredict.models import MONOTONE


@pytest.fixture(scope="module")
def trials():
    """One pooled cohort (one draw of each trial's random effects), in random order."""
    return simulate_cohort(n=12_500, seed=21).sample(frac=1.0, random_state=0)


@pytest.fixture(scope="module")
def train(trials):
    return trials.iloc[:2500].reset_index(drop=True)


@pytest.fixture(scope="module")
def response_model(train):
    return OutcomeModel("response").fit(train)


# scikit-learn's estimator checks feed random numeric arrays. With features=None the model
# takes any numeric array, and every check passes but one (below; check_array_api_input is
# skipped by scikit-learn unless SCIPY_ARRAY_API is set). With a feature set (the default,
# "core") the model needs the contract's patient table, which the checks cannot build: that
# configuration is tested here on real tables instead (clone, grid search, seeds, weights,
# columns).
# Weights are not repeats here, as for scikit-learn's random forests: a repeated row can land
# in two calibration folds (and two row subsamples), a weighted row in one.
WEIGHTS_ARE_NOT_REPEATS = {
    "check_sample_weight_equivalence_on_dense_data": "cross-fitting and row subsampling "
    "treat a weight of 2 differently from a repeated row"
}


@parametrize_with_checks(
    [OutcomeModel(features=None, n_estimators=30)],
    expected_failed_checks=lambda estimator: WEIGHTS_ARE_NOT_REPEATS,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_fit_uses_the_whole_table_but_only_the_feature_set(train, response_model):
    p = response_model.predict_proba(train)[:, 1]
    scrambled = train.copy()
    rng = np.random.default_rng(0)
    for name in ("response", "remission", "p_response", "madrs_d1", "patient_id", "arm"):
        scrambled[name] = rng.permutation(scrambled[name].to_numpy())
    scrambled["notes"] = "anything"
    np.testing.assert_array_equal(response_model.predict_proba(scrambled)[:, 1], p)
    assert "p_response" not in response_model.feature_names_
    assert set(response_model.feature_names_in_) <= set(train.columns)


def test_probabilities_are_valid_even_with_missing_features(train, response_model):
    sparse_table = train.copy()
    for name in (
        "hamd17_baseline",
        "ssi_baseline",
        "bmi",
        "weight_kg",
        "episode_months",
        "processing_speed_z",
        "working_memory_z",
        "verbal_memory_z",
        "n_failed_treatments",
        "anxious_distress",
    ):
        sparse_table[name] = np.nan
    p = response_model.predict_proba(sparse_table)
    assert np.isfinite(p).all()
    assert ((p > 0) & (p < 1)).all()
    np.testing.assert_allclose(p.sum(axis=1), 1)


def test_same_seed_same_model(train, response_model):
    again = OutcomeModel("response").fit(train)
    np.testing.assert_array_equal(again.predict_proba(train), response_model.predict_proba(train))
    assert again.n_rounds_ == response_model.n_rounds_


@pytest.mark.parametrize(
    "seed",
    [np.int64(7), np.int32(7), "RandomState"],
    ids=["numpy int64", "numpy int32", "RandomState"],
)
def test_random_state_accepts_numpy_integers_and_random_states(train, seed):
    """The same seed, however it is given, gives the same model; a different seed another."""
    small = train.iloc[:800]

    def fit(random_state):
        return OutcomeModel("response", n_estimators=60, random_state=random_state).fit(small)

    state = (lambda: np.random.RandomState(7)) if seed == "RandomState" else (lambda: seed)
    first, second = fit(state()), fit(state())
    np.testing.assert_array_equal(first.predict_proba(small), second.predict_proba(small))
    other = fit(8).predict_proba(small)
    assert not np.array_equal(first.predict_proba(small), other)
    np.testing.assert_array_equal(first.predict_proba(small), fit(7).predict_proba(small))


def test_sample_weight(train):
    small, y = train.iloc[:1200], train["response"].iloc[:1200].astype(int).to_numpy()
    plain = OutcomeModel("response", n_estimators=80).fit(small, y)
    ones = OutcomeModel("response", n_estimators=80).fit(small, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(ones.predict_proba(small), plain.predict_proba(small))
    # responders counted three times: the model believes in three times the odds
    heavy = OutcomeModel("response", n_estimators=80).fit(small, y, sample_weight=1 + 2 * y)
    assert heavy.predict_proba(small)[:, 1].mean() > plain.predict_proba(small)[:, 1].mean() + 0.1
    with pytest.raises(ValueError, match=r"[Nn]egative"):
        OutcomeModel("response", n_estimators=20).fit(small, y, sample_weight=-np.ones(len(y)))
    # a weight of 0 leaves the row out, imputer and folds included (a statistical review
    # found predictions 0.19 apart)
    weight = np.where(np.arange(len(y)) % 4 == 0, 0.0, 1.0)
    zeroed = OutcomeModel("response", n_estimators=80).fit(small, y, sample_weight=weight)
    dropped = OutcomeModel("response", n_estimators=80).fit(small[weight > 0], y[weight > 0])
    np.testing.assert_allclose(zeroed.predict_proba(small), dropped.predict_proba(small))
    by_column = OutcomeModel("response", n_estimators=80).fit(small, sample_weight=weight)
    np.testing.assert_allclose(by_column.predict_proba(small), dropped.predict_proba(small))


@pytest.mark.parametrize("dropped", ["drug", "madrs_baseline", "age"])
def test_prediction_names_a_missing_column(response_model, train, dropped):
    with pytest.raises(ValidationError, match=f"column '{dropped}' is missing"):
        response_model.predict_proba(train.drop(columns=[dropped]))


def test_clone_and_grid_search_work_on_the_patient_table(train):
    model = OutcomeModel("response", n_estimators=60)
    assert clone(model).get_params() == model.get_params()
    search = GridSearchCV(model, {"max_depth": [2, 3]}, cv=3, scoring="roc_auc").fit(
        train, train["response"]
    )
    assert search.best_params_["max_depth"] in (2, 3)
    assert search.predict_proba(train).shape == (len(train), 2)


def test_calibrated_on_new_patients(trials, response_model):
    """New patients of the same trials (a new trial has its own effects, CALIBRATION.md E)."""
    test = trials.iloc[2500:]
    p = response_model.predict_proba(test)[:, 1]
    y = test["response"].astype(int)
    assert expected_calibration_error(y, p) < 0.04
    assert abs(p.mean() - y.mean()) < 0.02


def test_monotone_constraints_hold_for_dissociation(train):
    model = OutcomeModel("dissociation").fit(train)
    encoded = model.encoder_.transform(train.iloc[:200])
    for feature, sign in MONOTONE["dissociation"].items():
        grid = np.linspace(0, encoded[feature].max() * 1.5, 25)
        margins = []
        for value in grid:
            changed = encoded.assign(**{feature: value})
            margins.append(model.booster_.predict(changed, output_margin=True))
        steps = np.diff(np.array(margins), axis=0) * sign
        assert (steps >= -1e-6).all(), feature


def test_trees_keep_the_direction_the_measurement_gave_each_patient_feature(train):
    """With the linear component learned from the measurement, the trees may bend a patient
    feature's effect but not reverse it: the margin (linear terms and trees) moves one way
    as the feature rises, on and off the drug."""
    model = OutcomeModel("response", measurement=True, n_jobs=1).fit(train)
    patient, _ = model._design_parts()
    constrained = {
        name: sign
        for name, sign in model.monotone_.items()
        if patient[list(model.feature_names_).index(name)]
    }
    assert len(constrained) >= 5
    assert model.n_rounds_ >= 1
    assert OutcomeModel("response", measurement=False, n_jobs=1).fit(train).monotone_ == {}
    encoded = model.encoder_.transform(train.iloc[:200])
    for feature, sign in constrained.items():
        low, high = encoded[feature].min(), encoded[feature].max()
        margins = [
            model.booster_.predict(encoded.assign(**{feature: value}), output_margin=True)
            for value in np.linspace(low, high, 15)
        ]
        steps = np.diff(np.array(margins), axis=0) * sign
        assert (steps >= -1e-6).all(), feature


def test_decision_function_and_margin(response_model, train):
    margin = response_model.margin(train)
    log_odds = response_model.decision_function(train)
    p = response_model.predict_proba(train)[:, 1]
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-log_odds)))
    assert np.corrcoef(margin, log_odds)[0, 1] > 0.999
    assert response_model.predict(train).dtype == bool


def test_importances_name_encoded_features(response_model, train):
    found = response_model.importances(train.head(300))
    assert set(found.index) == set(response_model.feature_names_)
    assert found.iloc[0] > 0
    assert found.index[0] != "cognition_missing"  # no such feature: missing is integrated
    # the SHAP values add up to the margin, linear component and trees together
    phi = response_model.contributions(train.head(50))
    np.testing.assert_allclose(phi.sum(axis=1), response_model.margin(train.head(50)), atol=1e-4)


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (
            lambda t: t["response"].astype(object).where(t.index > 5, None),
            "response is missing in 6 of",
        ),
        (lambda t: np.zeros(len(t)), "response has 0 events and"),
        (lambda t: t["madrs_baseline"] / 60, "Unknown label type: continuous"),
    ],
)
def test_bad_outcomes_are_refused(train, y, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        OutcomeModel("response").fit(train, y(train))


def test_outcome_is_taken_from_the_table_when_y_is_absent(train):
    with pytest.raises(ValidationError) as caught:
        OutcomeModel("remision").fit(train)
    message = str(caught.value)
    assert "X has no outcome column 'remision' (did you mean 'remission'?)" in message
    assert "outcomes present: response, remission" in message
    # an outcome of another length is said as such before its classes are counted
    with pytest.raises(ValidationError, match="y has 10 values but X has"):
        OutcomeModel().fit(train, np.ones(10))


def test_describe_says_what_was_fitted_and_why(train):
    asked = OutcomeModel("response", measurement=True, n_estimators=30).fit(train).describe()
    assert "ridge regression of the outcome's measurement (asked for)" in asked
    capped = OutcomeModel("response", linear=False, n_estimators=3).fit(train).describe()
    assert capped.startswith("no linear component; 3 boosted trees of depth at most 2 (the most")
    assert "from its margin" not in capped


def test_an_outcome_of_another_length_is_refused(train):
    with pytest.raises(ValidationError, match="y has 95 values but X has 100 rows"):
        OutcomeModel().fit(train.head(100), train["response"].to_numpy()[:95])
    # also where rows of weight 0 are left out, which must not cut y to fit (a review)
    weight = np.where(np.arange(100) % 4 == 0, 0.0, 1.0)
    for n in (95, 110):
        with pytest.raises(ValidationError, match=f"y has {n} values but X has 100 rows"):
            OutcomeModel().fit(
                train.head(100), np.resize(train["response"].to_numpy(), n), sample_weight=weight
            )


def test_contributions_of_no_courses_are_empty_and_importances_need_one(train):
    """No rows gave XGBoost's IndexError ("too many indices")."""
    model = OutcomeModel("response", n_estimators=20).fit(train)
    assert model.contributions(train.iloc[:0]).shape == (0, len(model.feature_names_) + 1)
    with pytest.raises(ValidationError, match="importances need at least one course"):
        model.importances(train.iloc[:0])


def test_bad_parameters_are_refused(train):
    from sklearn.utils._param_validation import InvalidParameterError

    # a ValidationError that scikit-learn's tools also take for their own
    with pytest.raises(ValidationError, match="max_depth") as caught:
        OutcomeModel(max_depth=0).fit(train)
    assert isinstance(caught.value, InvalidParameterError)
    with pytest.raises(ValueError, match="calibration"):
        OutcomeModel(calibration="platt").fit(train)
    # True is 1 to scikit-learn's checks; XGBoost refused subsample=True with its own error
    for name in ("subsample", "max_depth", "reg_lambda"):
        with pytest.raises(ValidationError, match=f"{name}=True: expected a number, not true"):
            OutcomeModel(**{name: True}).fit(train)
    with pytest.raises(ValidationError, match="'n_jobs' parameter of OutcomeModel must be"):
        OutcomeModel(n_jobs=10**12).fit(train)
    with pytest.raises(ValidationError, match="monotone names features the model does not read"):
        OutcomeModel(monotone={"shoe_size": 1}).fit(train)


def test_the_linear_component_keeps_no_patients_exact_extreme(train):
    """Its clip range was the training minimum and maximum, saved in the model file: one
    patient's exact value. Now rounded outward, for every feature: a dose in mg per kg is
    a fixed dose over the patient's weight, so its end gave the lightest patient's weight."""
    rows = train.copy()
    rows["processing_speed_z"] = rows["processing_speed_z"].clip(upper=2.0)
    rows.loc[rows.index[0], "processing_speed_z"] = 2.3456789
    model = OutcomeModel("response", n_estimators=20).fit(rows)
    names = list(model.feature_names_)
    assert model.linear_["high"][names.index("processing_speed_z")] == 2.4
    encoded = model.encoder_.transform(rows)
    high = np.asarray(model.linear_["high"])
    low = np.asarray(model.linear_["low"])
    assert (high >= encoded[names].max().fillna(0.0).to_numpy() - 1e-12).all()
    assert (low <= encoded[names].min().fillna(0.0).to_numpy() + 1e-12).all()
    # no end is a patient's exact value where that value has more than two digits
    for j, name in enumerate(names):
        values = encoded[name].dropna().to_numpy()
        precise = values[np.abs(values - np.round(values, 2)) > 1e-9]
        assert high[j] not in precise, name
        assert low[j] not in precise, name


def test_feature_set_model_needs_a_table(train):
    with pytest.raises(ValidationError, match="needs the patient table as a pandas DataFrame"):
        OutcomeModel().fit(train.to_numpy(), train["response"])


def test_isotonic_and_uncalibrated_options(train):
    for method in ("isotonic", "none"):
        model = OutcomeModel("response", calibration=method, n_estimators=80).fit(train)
        p = model.predict_proba(train)[:, 1]
        assert ((p > 0) & (p < 1)).all()
        assert model.calibrator_["method"] == method


def test_few_events_still_fit_with_fewer_folds():
    tiny = simulate_cohort(n=300, seed=5)
    y = pd.Series(False, index=tiny.index)
    y.iloc[[3, 50, 120]] = True
    model = OutcomeModel("response", n_estimators=30).fit(tiny, y)
    assert np.isfinite(model.predict_proba(tiny)).all()


def test_the_linear_component_and_the_trees_add_up_to_the_margin(train, response_model):
    from ketapredict.models import _LINEAR_C
    from ketapredict.trees import linear_margin

    linear = response_model.linear_
    assert not response_model.measurement_  # about 1,000 events: enough for the outcome's own
    assert linear["C"] in _LINEAR_C
    assert linear["active"] == list(response_model.feature_names_).index("active_drug")
    complete = train[train.drop(columns=["ssi_baseline"]).notna().all(axis=1)].head(50)
    complete = complete.assign(ssi_baseline=10.0)
    Z = response_model.encoder_.transform(complete).to_numpy(dtype=float)
    trees = response_model.booster_.predict(Z, output_margin=True, base_margin=np.zeros(len(Z)))
    np.testing.assert_allclose(
        response_model.margin(complete), linear_margin(Z, linear) + trees, atol=1e-5
    )
    # interactions only for the patient's own features, never the schedule's
    schedule = response_model.encoder_.feature_map_["encoder"] == "dose_schedule"
    coef_active = pd.Series(linear["coef_active"], index=response_model.feature_names_)
    assert (coef_active[schedule.reindex(coef_active.index).to_numpy()] == 0).all()


def test_dose_time_weights_a_predictor_by_dose_and_time(train):
    """linear="dose_time": each patient feature's weight moves with the drug's exposure,
    the days since the last session, the day and a new oral antidepressant; the SHAP
    values still add up to the margin, and the replicates share the modifiers."""
    from ketapredict.models import DOSE_TIME_MODIFIERS

    model = OutcomeModel("response", linear="dose_time", n_jobs=1).fit(train)
    names = [model.feature_names_[m["column"]] for m in model.linear_["modifiers"]]
    assert names == [name for name, *_ in DOSE_TIME_MODIFIERS]
    rows = np.asarray(model.linear_["coef_modifiers"])
    patient, _ = model._design_parts()
    assert np.abs(rows[:, patient]).max() > 0
    assert (rows[:, ~patient] == 0).all()  # schedule features are not the patient's
    phi = model.contributions(train.head(50))
    np.testing.assert_allclose(phi.sum(axis=1), model.margin(train.head(50)), atol=1e-4)
    (_, _, linear), *_ = model.replicates(train, n_replicates=2)
    assert linear["modifiers"] == model.linear_["modifiers"]
    with pytest.raises(ValueError, match="linear"):
        OutcomeModel("response", linear="dose").fit(train)


def test_linear_false_gives_the_trees_alone(train):
    model = OutcomeModel("response", linear=False, n_jobs=1).fit(train)
    assert model.linear_ is None
    assert model.n_rounds_ >= 1
    p = model.predict_proba(train)[:, 1]
    assert ((p > 0) & (p < 1)).all()


def test_too_few_events_for_a_linear_regression_are_too_few_for_trees(train):
    """Without the measurement too: the linear component then stands alone (early stopping
    on so few events chose rounds by noise); without a linear component the trees are the
    model."""
    rows = train[train["cognitive_decline"].notna()].drop(columns="cognition_change")
    plain = OutcomeModel("cognitive_decline", n_jobs=1).fit(rows)
    assert not plain.measurement_
    assert plain.few_events_
    assert plain.n_rounds_ == 0
    assert "no boosted trees (too few events for them)" in plain.describe()
    alone = OutcomeModel("cognitive_decline", linear=False, n_jobs=1).fit(rows)
    assert not alone.few_events_
    enough = OutcomeModel("response", measurement=False, n_jobs=1).fit(train)
    assert not enough.few_events_


def test_the_linear_component_learns_from_the_measurement_behind_the_outcome(train):
    """With measurement=True the linear direction comes from the endpoint MADRS (a ridge
    regression) and only its scale from the yes/no outcome; without the measurement, or
    with an outcome cut another way, from a logistic regression of the outcome, as
    ``measurement_`` says. "auto" uses it for the rare outcome only."""
    from ketapredict.models import _LINEAR_C, _RIDGE_ALPHA
    from ketapredict.schema import endpoint_scores

    rare = OutcomeModel("cognitive_decline", n_jobs=1).fit(
        train[train["cognitive_decline"].notna()]
    )
    assert rare.measurement_
    assert rare.linear_["alpha"] in _RIDGE_ALPHA
    # too few events for the outcome's own regression are too few for trees: none
    assert rare.n_rounds_ == 0
    rows = train[train["cognitive_decline"].notna()]
    encoded = rare.encoder_.transform(rows)
    assert np.ptp(rare.booster_.predict(encoded, output_margin=True)) == 0  # no feature moves it
    measured = OutcomeModel("response", measurement=True, n_jobs=1).fit(train)
    assert measured.measurement_
    assert measured.n_rounds_ >= 1  # enough responders for trees beyond the measurement
    assert measured.linear_["slope"] > 0
    plain = OutcomeModel("response", measurement=False, n_jobs=1).fit(train)
    assert not plain.measurement_
    assert plain.linear_["C"] in _LINEAR_C
    assert "alpha" not in plain.linear_
    assert not np.allclose(measured.linear_["coef"], plain.linear_["coef"])
    # a stricter response (a fall of 70%) is not the measurement's cut-off: not used
    strict = endpoint_scores(train) <= 0.3 * train["madrs_baseline"].to_numpy(dtype=float)
    with pytest.warns(UserWarning, match="measurement"):
        other = OutcomeModel("response", measurement=True, n_jobs=1).fit(train, strict)
    assert not other.measurement_
    assert "C" in other.linear_
    # remission as MADRS below 10 (not at most 10): its ties differ, so not this measurement
    below = endpoint_scores(train) < 10
    with pytest.warns(UserWarning, match="not 'remission' as its measurement defines it"):
        tied = OutcomeModel("remission", measurement=True, n_jobs=1).fit(train, below)
    assert not tied.measurement_
    # a table without the visit columns: the outcome alone
    visits = [c for c in train.columns if c.startswith("madrs_d")]
    with pytest.warns(UserWarning, match="missing for most rows"):
        bare = OutcomeModel("response", measurement=True, n_jobs=1).fit(train.drop(columns=visits))
    assert not bare.measurement_
    p = bare.predict_proba(train)[:, 1]
    assert ((p > 0) & (p < 1)).all()
    # replicates need the measurement too, and share the penalty
    (_, _, linear), *_ = measured.replicates(train, n_replicates=2)
    assert linear["alpha"] == measured.linear_["alpha"]
    with pytest.raises(ValueError, match="measurement"):
        measured.replicates(train.drop(columns=visits), n_replicates=2)


def test_tree_constraints_of_many_modifiers_are_computed_without_enumerating_them(train):
    """A model file's linear component may list any number of modifiers: the constraints
    come from per-modifier bounds (here 200 modifiers of zero weight change nothing)."""
    rows = train[train["cognitive_decline"].notna()]
    model = OutcomeModel("cognitive_decline", n_jobs=1).fit(rows)
    assert model.measurement_
    expected = model._monotone()
    column = list(model.feature_names_).index("endpoint_day")
    spec = {"column": column, "low": 1.0, "high": 29.0, "log": True, "active": False}
    model.linear_ = {
        **model.linear_,
        "modifiers": [spec] * 200,
        "coef_modifiers": [[0.0] * len(model.feature_names_)] * 200,
    }
    assert model._monotone() == expected  # 2**200 corners would never end


def test_the_ridge_penalty_is_chosen_by_leaving_each_patient_out_exactly():
    """The leave-one-out error of the measurement's ridge, computed without refitting,
    equals refitting without each patient: one row at a time, and a crossover patient's
    periods together (with weights, an intercept, and patients of one, two and three
    rows). Without groups the chosen penalty is RidgeCV's."""
    from sklearn.linear_model import Ridge, RidgeCV

    from ketapredict.models import _leave_one_out_errors

    rng = np.random.default_rng(0)
    patient = np.repeat(np.arange(40), [1, 2, 3, 2] * 10).astype(str)  # 80 rows
    X = rng.normal(size=(80, 6))
    weight = rng.uniform(0.5, 2.0, 80)
    shared = dict(zip(np.unique(patient), rng.normal(size=40), strict=True))
    y = X @ rng.normal(size=6) + np.array([shared[g] for g in patient]) + rng.normal(size=80)
    alphas = (0.1, 3.0, 100.0)

    def refitted(groups):
        errors = []
        for alpha in alphas:
            error = 0.0
            for g in np.unique(groups):
                out = groups == g
                fit = Ridge(alpha=alpha).fit(X[~out], y[~out], sample_weight=weight[~out])
                error += (weight[out] * (y[out] - fit.predict(X[out])) ** 2).sum()
            errors.append(error)
        return np.array(errors)

    grouped = _leave_one_out_errors(X, y, weight, patient, alphas)
    np.testing.assert_allclose(grouped, refitted(patient), rtol=1e-10)
    by_row = _leave_one_out_errors(X, y, weight, None, alphas)
    np.testing.assert_allclose(by_row, refitted(np.arange(80)), rtol=1e-10)
    assert not np.allclose(grouped, by_row)  # the groups are used
    best = alphas[int(np.argmin(by_row))]
    assert best == RidgeCV(alphas=alphas).fit(X, y, sample_weight=weight).alpha_


def test_fitting_leaves_a_crossover_patient_out_whole_when_choosing_the_penalty(
    train, monkeypatch
):
    """The penalty of a measurement is chosen with the crossover patients as groups: the
    rows handed to the leave-one-out error are the measured ones, each with its patient."""
    import ketapredict.models as models
    from ketapredict.schema import crossover_patients, outcome_measure

    seen = []

    def watched(design, y, weight, groups, alphas):
        seen.append((len(y), groups))
        return models._leave_one_out_errors.__wrapped__(design, y, weight, groups, alphas)

    watched.__wrapped__ = models._leave_one_out_errors
    monkeypatch.setattr(models, "_leave_one_out_errors", watched)
    rows = train[train["cognitive_decline"].notna()].reset_index(drop=True)
    model = OutcomeModel("cognitive_decline", n_jobs=1).fit(rows)
    assert model.measurement_
    ((n, groups),) = seen
    known = ~np.isnan(outcome_measure(rows, "cognitive_decline"))
    assert n == known.sum()
    assert groups is not None
    np.testing.assert_array_equal(groups, crossover_patients(rows)[known])
    assert len(set(groups)) < len(groups)  # some patients left out with both periods


def test_crossover_periods_stay_together_in_folds_and_bootstrap_resamples(train):
    """A crossover patient's periods share the patient's response: the cross-fitting folds
    never split them between training and held-out parts, and a bootstrap replicate draws
    the patient with all their periods."""
    from ketapredict.models import _bootstrap_counts
    from ketapredict.schema import crossover_patients

    groups = crossover_patients(train)
    assert groups is not None
    assert len(set(groups)) < len(groups)
    target = train["response"].astype(int).to_numpy()
    folds = OutcomeModel("response", calibration_folds=3)._folds(target, groups, seed=0)
    assert len(folds) == 3
    for fitted, held_out in folds:
        assert not set(groups[fitted]) & set(groups[held_out])
        assert set(target[fitted]) == {0, 1}
    assert sorted(np.concatenate([h for _, h in folds]).tolist()) == list(range(len(target)))
    # a table of one course per patient: plain stratified folds
    assert crossover_patients(train.drop_duplicates("patient_id")) is None
    # pooled trials may reuse subject numbers: a patient is an id within a trial
    reused = pd.DataFrame({"trial_id": ["t1", "t2", "t2"], "patient_id": ["001", "001", "002"]})
    assert crossover_patients(reused) is None
    # fit and replicates use them: the same rows with every period its own patient differ
    rows = train.head(1200)
    assert crossover_patients(rows) is not None
    apart = rows.assign(patient_id=rows["patient_id"] + "-" + rows["period"].astype(str))
    together = OutcomeModel("response", n_jobs=1).fit(rows)
    separate = OutcomeModel("response", n_jobs=1).fit(apart)
    assert not np.allclose(together.predict_proba(rows), separate.predict_proba(rows))
    (_, calibrator, _), *_ = together.replicates(rows, n_replicates=1)
    (_, other, _), *_ = separate.replicates(apart, n_replicates=1)
    assert calibrator != other
    counts = _bootstrap_counts(len(groups), groups, np.random.default_rng(0))
    by_patient = pd.Series(counts).groupby(groups).nunique()
    assert (by_patient == 1).all()  # every period of a patient drawn as often
    assert counts.sum() > 0.9 * len(groups)
    # both events in one patient's two periods: no grouped fold can hold out a patient of
    # each class, so the plain stratified folds are used
    tiny = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    pairs = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    assert len(OutcomeModel(calibration_folds=3)._folds(tiny, pairs, seed=0)) == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"age": "x"}, "age='x' is not a number"),
        ({"age": -5.0}, "age=-5.0 is outside 12-100"),
        ({"age": np.nan}, "age is missing; it is required"),
        ({"sex": "F"}, "sex='F' is not one of"),
        ({"dose": -1.0}, "dose=-1.0 is outside"),
    ],
)
def test_a_bad_cell_is_a_validation_error_in_fit_predict_and_explain(
    response_model, train, bad, message
):
    """The estimator checks the patient table against the data contract, as the clinician
    path does: a bad value is named, never scored silently or met with a bare traceback."""
    from ketapredict import explain

    rows = pd.concat([train.head(1).assign(**bad), train.iloc[1:5]])
    for call in (
        lambda: response_model.predict_proba(rows),
        lambda: explain(response_model, rows),
        lambda: OutcomeModel("response", n_estimators=5).fit(pd.concat([rows, train.head(200)])),
    ):
        with pytest.raises(ValidationError, match=re.escape(message)):
            call()


def test_a_feature_set_reading_few_columns_needs_only_those(tmp_path, train):
    """The patient table is checked against the contract, but of its required columns only
    those the feature set reads must be there."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        'description = "tiny"\n[groups.severity]\nlabel = "depression severity"\n'
        'steps = [{ encoder = "numeric", columns = ["madrs_baseline"] }]\n'
        '[groups.demographics]\nlabel = "demographics"\n'
        'steps = [{ encoder = "numeric", columns = ["age"] }]\n'
    )
    rows = train[["madrs_baseline", "age", "response"]].dropna()
    model = OutcomeModel("response", features=str(spec), n_estimators=10).fit(rows)
    assert list(model.feature_names_in_) == ["madrs_baseline", "age"]
    assert model.predict_proba(rows).shape == (len(rows), 2)
    with pytest.raises(ValidationError, match="required column 'age' is missing"):
        model.predict_proba(rows.drop(columns="age"))


def test_fit_refuses_what_would_train_on_the_wrong_thing():
    """A baseline field as the outcome (input and target at once), a y Series in another
    row order (matched by position it trained on other patients' outcomes), and weights
    that leave a class nothing; the weights' scale does not change the model."""
    from ketapredict import ValidationError

    cohort = simulate_cohort(n=600, seed=1)
    with pytest.raises(ValidationError, match="'anxious_distress' is a baseline column"):
        OutcomeModel("anxious_distress").fit(cohort)
    shuffled = cohort["response"].sample(frac=1, random_state=0)
    with pytest.raises(ValidationError, match="y is a Series whose index differs from X's"):
        OutcomeModel("response").fit(cohort, shuffled)
    no_events = np.where(cohort["response"], 0.0, 1.0)
    with pytest.raises(ValidationError, match=r"one class \(the events\) a total weight of 0"):
        OutcomeModel("response").fit(cohort, sample_weight=no_events)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(cohort))
    model = OutcomeModel("response", n_estimators=30, random_state=0)
    one = model.fit(cohort, sample_weight=weights).predict_proba(cohort)[:, 1]
    hundred = clone(model).fit(cohort, sample_weight=100 * weights).predict_proba(cohort)[:, 1]
    np.testing.assert_allclose(one, hundred, atol=1e-6)


def test_a_monotone_dict_applies_to_columns_of_ones_own():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x0": rng.normal(size=400), "x1": rng.normal(size=400)})
    y = (rng.random(400) < 1 / (1 + np.exp(-X["x0"]))).astype(int)
    model = OutcomeModel(features=None, monotone={"x0": 1}, n_estimators=20).fit(X, y)
    assert model.monotone_ == {"x0": 1}  # it was silently {}
    with pytest.raises(ValidationError, match=re.escape("does not read: ['foo']")):
        OutcomeModel(features=None, monotone={"foo": 1}, n_estimators=20).fit(X, y)


def test_the_repr_says_what_the_model_predicts():
    """scikit-learn leaves defaults out: the response model printed as "OutcomeModel()"."""
    from ketapredict import OutcomeModel

    assert repr(OutcomeModel()) == "OutcomeModel(outcome='response')"
    assert repr(OutcomeModel(max_depth=3)) == "OutcomeModel(outcome='response', max_depth=3)"
    assert repr(OutcomeModel("remission")) == "OutcomeModel(outcome='remission')"

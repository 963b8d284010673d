import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ketapredict import OutcomeModel, ValidationError, cross_validate
from ketapredict.evaluate import (
    _grid_search,
    _tied,
    _weighted_auc,
    active_drug,
    arm_labels,
    check_design,
    expected_calibration_error,
    net_benefit,
    peer_models,
    score_predictions,
    tune_parameters,
)

RNG = np.random.default_rng(0)
TRUE_P = RNG.beta(2, 3, 20_000)
Y = (RNG.random(20_000) < TRUE_P).astype(int)


def test_auc_and_pr_auc_match_scikit_learn_and_the_interval_covers_it():
    p = np.round(TRUE_P, 2)  # ties
    scores = score_predictions(Y, p, n_bootstraps=300)
    assert scores["auc"] == pytest.approx(roc_auc_score(Y, p))
    assert scores["pr_auc"] == pytest.approx(average_precision_score(Y, p))
    assert scores["auc_low"] < scores["auc"] < scores["auc_high"]
    assert scores["auc_high"] - scores["auc_low"] < 0.03
    assert score_predictions(Y, p, n_bootstraps=300)["auc_low"] == scores["auc_low"]


def test_weighted_auc_equals_the_plain_auc_with_unit_weights():
    p = np.round(TRUE_P[:500], 1)
    assert _weighted_auc(p, Y[:500].astype(float), np.ones((1, 500)))[0] == pytest.approx(
        roc_auc_score(Y[:500], p)
    )


def test_calibration_metrics_on_calibrated_and_overconfident_predictions():
    calibrated = score_predictions(Y, TRUE_P, n_bootstraps=0)
    assert calibrated["ece"] < 0.015
    assert abs(calibrated["calibration_intercept"]) < 0.05
    assert calibrated["calibration_slope"] == pytest.approx(1, abs=0.08)
    logit = np.log(TRUE_P / (1 - TRUE_P))
    overconfident = 1 / (1 + np.exp(-2 * logit))
    sharp = score_predictions(Y, overconfident, n_bootstraps=0)
    assert sharp["calibration_slope"] == pytest.approx(0.5, abs=0.05)
    assert sharp["ece"] > 0.05
    shifted = score_predictions(Y, np.clip(TRUE_P + 0.1, 0, 1), n_bootstraps=0)
    assert shifted["calibration_intercept"] < -0.3


def test_expected_calibration_error_by_hand():
    # equal widths: [0.1, 0.1] with outcomes [0, 1] -> |0.5 - 0.1|; [0.9] with outcome [1]
    y, p = [0, 1, 1], [0.1, 0.1, 0.9]
    assert expected_calibration_error(y, p, strategy="uniform") == pytest.approx(0.9 / 3)
    # equal counts: tied predictions share a bin, so the same split however many bins
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.9 / 3)
    assert expected_calibration_error(y, p) == pytest.approx(0.9 / 3)
    # and the row order does not matter: a constant, calibrated prediction has no error
    assert expected_calibration_error([0] * 50 + [1] * 50, [0.5] * 100) == 0
    with pytest.raises(ValueError, match="strategy"):
        expected_calibration_error(y, p, strategy="width")


def test_quantile_bins_see_miscalibration_of_a_rare_outcome():
    """For a 3% outcome nearly everyone falls in the first equal-width bin, which averages
    the errors away: a model that squeezes every risk towards the base rate (half the true
    log-odds, the same mean) looks as calibrated as the truth with equal widths, and ten
    times worse with equal counts."""
    from scipy.optimize import brentq

    rng = np.random.default_rng(1)
    truth = rng.beta(0.6, 20, 50_000)
    y = rng.random(50_000) < truth
    logit = np.log(truth / (1 - truth))

    def squeezed(shift):
        return 1 / (1 + np.exp(-(0.5 * logit + shift)))

    flat = squeezed(brentq(lambda c: squeezed(c).mean() - truth.mean(), -20, 20))
    uniform = expected_calibration_error(y, flat, strategy="uniform")
    assert uniform < 2 * expected_calibration_error(y, truth, strategy="uniform")
    assert expected_calibration_error(y, flat) > 5 * expected_calibration_error(y, truth)


def test_within_arm_auc_is_the_size_weighted_mean_of_each_arms_auc():
    arm = np.repeat(["a", "b", "c", "tiny"], [8000, 6000, 5000, 1000])
    y, p = Y.copy(), TRUE_P.copy()
    y[arm == "tiny"] = 0
    y[np.flatnonzero(arm == "tiny")[:4]] = 1  # 4 events: too few to take part
    scores = score_predictions(y, p, arm=arm, n_bootstraps=0)
    by_arm = [roc_auc_score(y[arm == a], p[arm == a]) for a in "abc"]
    assert scores["within_arm_auc"] == pytest.approx(np.average(by_arm, weights=[8, 6, 5]))
    assert scores["within_arm_arms"] == 3
    assert scores["within_arm_n"] == 19_000


def test_within_arm_metrics_leave_comparator_arms_out():
    arm = np.repeat(["ketamine", "saline"], 10_000)
    active = arm == "ketamine"
    p = TRUE_P.copy()
    p[~active] = 1 - p[~active]  # backwards among the comparator patients
    scores = score_predictions(Y, p, arm=arm, active=active, n_bootstraps=0)
    assert scores["within_arm_auc"] == pytest.approx(roc_auc_score(Y[active], p[active]))
    assert scores["active_n"] == 10_000
    assert abs(scores["active_calibration_intercept"]) < 0.1
    assert scores["calibration_slope"] < 0.5  # over all rows the comparators spoil it


def test_trial_clusters_widen_the_interval_when_trials_differ():
    """Twenty trials, each with its own shift of the model's ranking: resampling trials sees
    that spread, resampling patients does not."""
    rng = np.random.default_rng(3)
    trial = np.repeat(np.arange(20), 1000)
    quality = rng.normal(0, 1.5, 20)[trial]  # how well the model ranks in each trial
    p = 1 / (1 + np.exp(-(quality * (TRUE_P - 0.4) * 4)))
    by_row = score_predictions(Y, p, arm=trial, n_bootstraps=300)
    by_trial = score_predictions(Y, p, arm=trial, cluster=trial, n_bootstraps=300)
    row_width = by_row["within_arm_auc_high"] - by_row["within_arm_auc_low"]
    trial_width = by_trial["within_arm_auc_high"] - by_trial["within_arm_auc_low"]
    assert trial_width > 3 * row_width
    # each copy of a trial drawn twice resamples its patients anew: Poisson(2), not 2 x
    # Poisson(1), whose values are even
    from ketapredict.evaluate import _bootstrap_weights

    codes = np.repeat(np.arange(20), 1000).astype(np.int64)
    weights = _bootstrap_weights(20_000, 50, 0, codes.tobytes())
    assert weights.mean() == pytest.approx(1, abs=0.05)
    assert (weights % 2 == 1).any()
    per_row = weights.var(axis=0).mean()  # Var of Poisson(multinomial count) = 1 + 0.95
    assert per_row == pytest.approx(1.95, rel=0.1)
    assert by_trial["within_arm_auc_low"] < by_trial["within_arm_auc"]
    assert by_trial["within_arm_auc"] < by_trial["within_arm_auc_high"]


def test_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1, 0.2])
    curve = net_benefit(y, p, thresholds=[0.5])
    # at 0.5: TP = 1, FP = 1, odds 1 -> (1 - 1) / 5
    assert curve.loc[0.5, "model"] == pytest.approx(0.0)
    assert curve.loc[0.5, "treat_all"] == pytest.approx((2 - 3) / 5)
    assert curve.loc[0.5, "treat_none"] == 0
    # by default, thresholds around the base rate (40%): from a third of it
    assert net_benefit(y, p).index.min() == pytest.approx(0.4 / 3, abs=1e-4)
    # a sample without events still has a curve: acting only ever costs
    none = net_benefit(np.zeros(5), p)
    assert len(none) > 0
    assert (none["model"] <= 0).all()
    assert (none["treat_all"] < 0).all()


def test_probabilities_outside_the_unit_interval_are_refused():
    with pytest.raises(ValueError, match="must lie in"):
        score_predictions([0, 1], [0.2, 1.2])


@pytest.fixture(scope="module")
def loto(cohort):
    return cross_validate(
        OutcomeModel("response", n_estimators=120),
        cohort,
        scheme="leave_one_trial_out",
        n_bootstraps=200,
    )


def test_leave_one_trial_out_holds_out_one_trial_per_fold(cohort, loto):
    predictions = loto.predictions
    trials = cohort["trial_id"].to_numpy()[predictions["row"]]
    assert pd.Series(trials).groupby(predictions["fold"].to_numpy()).nunique().max() == 1
    assert predictions["fold"].nunique() == cohort["trial_id"].nunique()
    assert predictions[["p_OutcomeModel", "p_logistic_regression", "p_oracle"]].notna().all().all()


def test_result_holds_model_peers_and_oracle(loto):
    assert list(loto.metrics.index) == [
        "OutcomeModel",
        "logistic_regression",
        "hist_gradient_boosting",
        "xgboost_default",
        "logistic_regression_encoded",
        "hist_gradient_boosting_encoded",
        "xgboost_default_encoded",
        "oracle",
    ]
    # the pooled cross-trial AUC: the model learns, and stays below what the truth allows
    assert loto.metrics.loc["oracle", "auc"] > 0.7
    assert 0.6 < loto.metrics.loc["OutcomeModel", "auc"] < loto.metrics.loc["oracle", "auc"]
    assert set(loto.fold_metrics["model"]) == set(loto.metrics.index)
    assert {"treat_all", "treat_none", "OutcomeModel", "oracle"} <= set(loto.decision_curve)
    # the decision curve spans the thresholds a clinician could choose for this outcome's
    # base rate (from a third of it), not a fixed 0.05-0.95 grid
    base = loto.predictions["response"].mean()
    thresholds = loto.decision_curve.index.to_numpy()
    assert thresholds.min() < base < thresholds.max() <= min(0.9, 3 * base + 0.1) + 1e-9
    assert set(loto.subgroups["variable"]) == {
        "sex",
        "age band",
        "diagnosis",
        "drug",
        "route",
        "trial",
        "arm",
        "active drug",
    }


def test_the_headline_is_within_arm_among_active_drug_patients(cohort, loto):
    ours, oracle = loto.metrics.loc["OutcomeModel"], loto.metrics.loc["oracle"]
    # knowing the arm is worth a lot over all rows and nothing within arm
    assert oracle["within_arm_auc"] < oracle["auc"] - 0.02
    assert 0.6 < oracle["within_arm_auc"] < 0.85
    assert ours["within_arm_auc_low"] < ours["within_arm_auc"] < ours["within_arm_auc_high"]
    assert ours["active_n"] == cohort["drug"].isin(["ketamine", "esketamine"]).sum()
    assert ours["within_arm_arms"] >= 10
    folds = loto.fold_metrics
    assert set(folds["trial"]) == set(cohort["trial_id"].astype(str))
    assert folds["within_arm_auc"].notna().sum() >= 5


def test_predictions_carry_no_identifiers(loto):
    assert not {"patient_id", "trial_id", "arm"} & set(loto.predictions.columns)


def test_grouped_kfold_keeps_trials_together(cohort):
    result = cross_validate(
        OutcomeModel("dissociation", n_estimators=60),
        cohort,
        scheme="grouped_kfold",
        n_splits=3,
        peers=False,
        n_bootstraps=0,
    )
    trials = cohort["trial_id"].to_numpy()[result.predictions["row"]]
    assert pd.Series(result.predictions["fold"].to_numpy()).groupby(trials).nunique().max() == 1
    assert list(result.metrics.index) == ["OutcomeModel", "oracle"]
    # counts are whole numbers, the scores floats
    counts = ["n", "events", "active_n", "active_events", "within_arm_n", "within_arm_arms"]
    assert (result.metrics[counts].dtypes == "int64").all()
    assert result.metrics.loc["OutcomeModel", "n"] == len(cohort)
    assert result.metrics["auc"].dtype == "float64"
    # no bootstrap: no interval named in the table either
    assert "95%" not in str(result)
    assert "within-arm AUC" in str(result)


def test_rows_without_the_outcome_are_left_out_and_counted(cohort):
    result = cross_validate(
        OutcomeModel("cognitive_decline", n_estimators=60),
        cohort,
        scheme="stratified_kfold",
        n_splits=3,
        peers=False,
        n_bootstraps=0,
    )
    assert result.rows_left_out == int(cohort["cognitive_decline"].isna().sum()) > 0
    assert len(result.predictions) == int(cohort["cognitive_decline"].notna().sum())


def _nested(cohort, scheme, n_estimators):
    """Three outer folds of ``scheme``, tuning the depth inside each."""
    return cross_validate(
        OutcomeModel("response", n_estimators=n_estimators),
        cohort,
        scheme=scheme,
        n_splits=3,
        peers=False,
        n_bootstraps=0,
        tuning={"max_depth": [2, 3]},
    )


def test_within_arm_ranking_uses_one_model_per_group(cohort):
    """Stratified folds split arms: their patients are ranked within arm and fold, each
    group scored by one model; trial-wise folds keep arms whole."""
    model = OutcomeModel("response", n_estimators=30)
    split = cross_validate(
        model, cohort, scheme="stratified_kfold", n_splits=3, peers=False, n_bootstraps=0
    )
    assert split.ranked_within == "arm and fold"
    pred = split.predictions
    kept = cohort.iloc[pred["row"]]
    by_fold = [f"{a} / fold {k}" for a, k in zip(arm_labels(kept), pred["fold"], strict=True)]
    expected = score_predictions(
        pred["response"], pred["p_OutcomeModel"], arm=by_fold, active=active_drug(kept)
    )
    assert split.metrics.loc["OutcomeModel", "within_arm_auc"] == expected["within_arm_auc"]
    # the subgroups rank the same way: all active-drug rows give the headline
    subgroups = split.subgroups.set_index(["model", "variable", "level"])
    assert subgroups.loc[("OutcomeModel", "active drug", "active drug"), "within_arm_auc"] == (
        pytest.approx(expected["within_arm_auc"])
    )
    whole = cross_validate(
        model, cohort, scheme="grouped_kfold", n_splits=3, peers=False, n_bootstraps=0
    )
    assert whole.ranked_within == "arm"


def test_nested_cross_validation_reports_the_chosen_parameters(cohort):
    result = _nested(cohort, "stratified_kfold", n_estimators=60)
    chosen = result.extras["tuned_parameters"]
    assert len(chosen) == 3
    assert all(c["max_depth"] in (2, 3) for c in chosen)


def test_a_tuning_grid_that_changes_nothing_is_said_to(cohort):
    """With too few events for trees, every depth scored the same, and the grid's first was
    reported as "chosen" with no word of the tie (a review)."""
    result = _nested(cohort.iloc[:900], "stratified_kfold", n_estimators=60)
    assert result.extras["folds_tied"] == 3
    assert "in 3 of 3 folds every candidate of the tuning grid scored the same" in " ".join(
        str(result).split()
    )
    searched = _grid_search(OutcomeModel("response", n_estimators=60), {"max_depth": [2, 3]}, 0)
    big = cohort.iloc[:3000]
    searched.fit(big, big["response"].astype(int))
    assert not _tied(searched)  # enough events: the trees differ, and so do the scores


def test_nested_tuning_is_grouped_when_the_outer_folds_are(cohort):
    """Grouped outer folds get a grouped inner split: tuning never scores on a trial it
    trained on."""
    result = _nested(cohort, "grouped_kfold", n_estimators=40)
    assert len(result.extras["tuned_parameters"]) == 3
    groups = cohort["trial_id"].astype(str).to_numpy()
    search = _grid_search(OutcomeModel("response"), {"max_depth": [2]}, 0, groups)
    y = cohort["response"].astype(int).to_numpy()
    for train, test in search.cv.split(cohort, y, groups):
        assert not set(groups[train]) & set(groups[test])


def test_the_kept_model_is_tuned_as_each_fold_was(cohort):
    """tune_parameters: the same grouped inner search on all courses; a scheme it does not
    know, or trial-wise folds without trials, is a ValidationError."""
    model = OutcomeModel("response", n_estimators=20)
    chosen = tune_parameters(model, cohort, {"max_depth": [1, 2]}, scheme="grouped_kfold")
    assert set(chosen) == {"max_depth"}
    assert type(chosen["max_depth"]) is int
    with pytest.raises(ValidationError, match="scheme='bogus' is not one of"):
        tune_parameters(model, cohort, {"max_depth": [1, 2]}, scheme="bogus")
    with pytest.raises(ValidationError, match="scheme='leave_one_trial_out' groups by trial_id"):
        tune_parameters(
            model,
            cohort.drop(columns="trial_id"),
            {"max_depth": [1, 2]},
            scheme="leave_one_trial_out",
        )


def test_nested_tuning_needs_three_groups_in_every_training_fold(cohort):
    two_trials = cohort[cohort["trial_id"].isin(cohort["trial_id"].unique()[:2])]
    with pytest.raises(ValidationError, match="only 1"):
        cross_validate(
            OutcomeModel("response", n_estimators=20),
            two_trials,
            scheme="leave_one_trial_out",
            peers=False,
            tuning={"max_depth": [2, 3]},
        )


def test_design_problems_are_found_before_training(cohort):
    with pytest.raises(
        ValidationError,
        match=re.escape("outcome column 'respons' is not in the data; outcomes present:"),
    ):
        check_design(cohort, "respons", "stratified_kfold")
    single = cohort.assign(response=False)
    with pytest.raises(ValidationError, match=re.escape("(only one class)")):
        check_design(single, "response", "stratified_kfold")
    rare = cohort.assign(response=False)
    rare.loc[rare.index[:20], "response"] = True
    trials = cohort["trial_id"].nunique()
    with pytest.raises(
        ValidationError,
        match=re.escape(
            f"response has 20 events and {len(cohort) - 20:,} non-events (class counts); at "
            f"least {5 * trials} of each are needed: leave_one_trial_out over {trials} folds"
        ),
    ):
        check_design(rare, "response", "leave_one_trial_out")
    with pytest.raises(ValidationError, match="groups by trial_id"):
        check_design(cohort.drop(columns="trial_id"), "response", "grouped_kfold")
    for n_splits in (1, 21, 2.5, True, "5"):
        with pytest.raises(ValidationError, match=r"n_splits=.* is not a whole number from 2"):
            check_design(cohort, "response", "stratified_kfold", n_splits)


def test_peers_fit_the_raw_table(cohort):
    y = cohort["response"].astype(int)
    for name, peer in peer_models(cohort).items():
        p = peer.fit(cohort, y).predict_proba(cohort)[:, 1]
        assert np.isfinite(p).all(), name


def test_raw_peers_see_only_the_columns_the_feature_set_reads(cohort):
    """A set that leaves cognition out is compared with peers that do not see it either."""
    y = cohort["response"].astype(int)
    for features, sees in (("core", True), ("no_cognition", False)):
        peer = peer_models(cohort, features=features)["logistic_regression"].fit(cohort, y)
        names = peer[:-1].get_feature_names_out()
        assert any("processing_speed_z" in name for name in names) == sees, features


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (([0, 1], [0.1]), "y has 2 values and p 1"),
        (([], []), "y has 0 values and p 0"),
        (([0, 2], [0.1, 0.2]), "y must hold 0 or 1"),
        (([0, float("nan")], [0.1, 0.2]), "y must hold 0 or 1"),
        (([0, 1], [0.1, 1.2]), "predicted probabilities must lie in [0, 1]"),
        (
            ([0, 1, 1, 0, 1], [0.1, 1.2, -1, np.nan, 2]),
            "4 do not: p[1]=1.2, p[2]=-1, p[3]=nan, ...",
        ),
        (([0, 1], [[0.1, 0.2]]), "p must be a list of numbers"),
    ],
)
def test_score_predictions_names_what_is_wrong_with_its_input(arguments, message):
    from ketapredict import ValidationError, score_predictions

    with pytest.raises(ValidationError, match=re.escape(message)):
        score_predictions(*arguments, n_bootstraps=0)
    with pytest.raises(ValidationError, match="arm has 1 values for 2 rows"):
        score_predictions([0, 1], [0.2, 0.8], arm=["a"], n_bootstraps=0)
    # the bootstrap's count and seed, before any work (numpy's own errors before)
    with pytest.raises(ValidationError) as caught:
        score_predictions([0, 1], [0.2, 0.8], n_bootstraps=-2, seed="x")
    assert [p.message for p in caught.value.problems] == [
        "n_bootstraps=-2 is not a whole number from 0 to 100,000 (0: no confidence intervals)",
        "seed='x' is not a whole number from 0 to 4,294,967,295",
    ]
    # 10**12 resamples asked numpy for 7 TiB; a seed of 10**12 is beyond numpy's
    with pytest.raises(ValidationError) as caught:
        score_predictions([0, 1], [0.2, 0.8], n_bootstraps=10**12, seed=10**12)
    assert len(caught.value.problems) == 2


def test_cross_validate_refuses_arguments_of_the_wrong_kind_before_any_fit():
    from ketapredict import OutcomeModel, ValidationError, cross_validate, simulate_cohort

    cohort = simulate_cohort(n=300, seed=0)
    for model, data, options, message in (
        ("xgb", cohort, {}, "model must be an unfitted estimator such as OutcomeModel"),
        (OutcomeModel(), cohort.to_dict("records"), {}, "data must be a DataFrame"),
        (OutcomeModel(), cohort, {"n_bootstraps": -1}, "n_bootstraps=-1 is not a whole"),
        # each was a bare TypeError, AttributeError or joblib's error, some after fitting
        (OutcomeModel(), cohort, {"n_jobs": 0}, "n_jobs=0 is not None or a whole number"),
        (OutcomeModel(), cohort, {"tuning": "max_depth"}, "tuning must map a parameter"),
        (OutcomeModel(), cohort, {"tuning": {"max_depth": 2}}, "must list the values to try"),
        (OutcomeModel(), cohort, {"tuning": {"max_dept": [2]}}, "(did you mean 'max_depth'?)"),
        (OutcomeModel(), cohort, {"peers": "yes"}, "peers='yes' is not True or False"),
        (
            OutcomeModel(),
            cohort,
            {"outcome": 0},
            "name the outcome: outcome='response', or a model's; got 0",
        ),
    ):
        with pytest.raises(ValidationError, match=re.escape(message)):
            cross_validate(model, data, **options)


def test_a_field_one_training_fold_never_recorded_is_no_crash_and_no_warning():
    """Leave-one-trial-out over two trials, one of which did not record BMI: the other
    trial's fold trains on a column of NaN only (HistGradientBoosting could not bin it,
    and numpy warned of an all-NaN slice)."""
    import warnings

    from ketapredict import simulate_cohort

    cohort = simulate_cohort(n=3000, seed=1)
    two = cohort[cohort["trial_id"].isin(["fava2020", "loo2016"])].copy()
    two.loc[two["trial_id"] == "fava2020", "bmi"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = cross_validate(
            OutcomeModel("response", n_estimators=40), two, scheme="leave_one_trial_out"
        )
    auc = result.metrics["within_arm_auc"]
    assert auc.notna().all()
    assert auc.between(0, 1).all()


# -- the recalibration line, fitted to convergence (a statistical audit's findings) ------------
def _expit(x):
    return 1 / (1 + np.exp(-x))


def test_calibration_intercept_and_slope_are_the_maximum_likelihood_values_far_from_ideal():
    """Newton steps clipped at 5 cycled for miscalibration of 3 log-odds or more: the
    intercept came back 0 (perfect in the large) and the slope was lost. Checked against
    scikit-learn's unpenalised fit to a tight tolerance."""
    from sklearn.linear_model import LogisticRegression

    from ketapredict.updating import choose_update, fit_intercept, fit_line

    y = np.r_[np.ones(10), np.zeros(10)]  # predicted 92%, observed 50%
    assert fit_intercept(y, np.full(20, 2.5)).intercept == pytest.approx(-2.5)
    scores = score_predictions(y, np.full(20, _expit(2.5)), n_bootstraps=0)
    assert scores["calibration_intercept"] == pytest.approx(-2.5, abs=1e-6)

    rng = np.random.default_rng(0)
    z = rng.normal(-0.5, 1.5, 2000)
    y = (rng.random(2000) < _expit(z)).astype(float)
    for shift, scale in ((-5, 1.0), (-4, 0.5), (3, 0.2), (6, 1.5)):
        x = scale * z + shift
        reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x[:, None], y)
        fit = fit_line(y, x)
        assert fit.converged
        assert fit.slope == pytest.approx(reference.coef_[0, 0], rel=1e-5)
        assert fit.intercept == pytest.approx(reference.intercept_[0], rel=1e-5, abs=1e-6)
        slope = score_predictions(y, _expit(x), n_bootstraps=0)["calibration_slope"]
        assert slope == pytest.approx(reference.coef_[0, 0], rel=1e-5)
    # predicted 98-99.99% where 10% respond (and the mirror): a first Newton step of
    # hundreds of log-odds saturated every probability; a level step swung back and forth
    tenth = np.r_[np.ones(10), np.zeros(90)]
    for predicted in (0.98, 0.999, 0.9999, 0.0001):
        x = np.full(100, np.log(predicted / (1 - predicted)))
        assert fit_intercept(tenth, x).intercept == pytest.approx(np.log(1 / 9) - x[0])
        assert fit_intercept(1 - tenth, -x).intercept == pytest.approx(np.log(9) + x[0])
    far = np.full(100, np.log(999.0))
    assert choose_update(tenth, far, "intercept")["method"] == "intercept"
    # a model far too low and too flat is updated by intercept and slope, not "separates"
    update = choose_update(y, 0.5 * z - 4)
    assert update["method"] == "intercept_slope"
    assert update["slope"] == pytest.approx(2.08, abs=0.01)


def test_fit_line_agrees_with_scikit_learn_and_refuses_exactly_the_separated_samples():
    from sklearn.linear_model import LogisticRegression

    from ketapredict.updating import fit_line

    rng = np.random.default_rng(1)
    separated_seen = 0
    for _ in range(300):
        n = int(rng.choice([20, 30, 100, 1000]))
        z = rng.normal(rng.normal(0, 2), rng.uniform(0.1, 2), n)
        y = (rng.random(n) < _expit(z)).astype(float)
        if y.sum() in (0, n):
            continue
        x = rng.uniform(0.2, 3) * z + rng.uniform(-8, 8)
        events, others = x[y == 1], x[y == 0]
        separated = events.min() >= others.max() or events.max() <= others.min()
        separated_seen += separated
        fit = fit_line(y, x)
        assert fit.converged is not separated
        if fit.converged:
            reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000)
            slope = reference.fit(x[:, None], y).coef_[0, 0]
            assert fit.slope == pytest.approx(slope, rel=1e-4, abs=1e-6)
    assert separated_seen > 0  # the sweep reaches separation


def test_a_calibration_slope_that_does_not_exist_is_nan():
    y = np.r_[np.zeros(20), np.ones(20)]
    separated = score_predictions(y, np.linspace(0.1, 0.9, 40), n_bootstraps=0)
    assert np.isnan(separated["calibration_slope"])
    alike = score_predictions(np.tile([0.0, 1.0], 50), np.full(100, 0.3), n_bootstraps=0)
    assert np.isnan(alike["calibration_slope"])
    assert alike["calibration_intercept"] == pytest.approx(np.log(0.5 / 0.5) - np.log(0.3 / 0.7))


def test_rows_without_an_arm_are_grouped_by_their_regimen_not_pooled(cohort):
    """An arm column empty for some trials pooled those trials' arms into one 'arm': the
    oracle's within-arm AUC rose and arm membership predicted within 'arm'."""
    from ketapredict.evaluate import active_drug, arm_labels

    y, truth = cohort["response"].astype(float), cohort["p_response"]
    design = {"arm": arm_labels(cohort), "active": active_drug(cohort)}
    full = score_predictions(y, truth, **design, n_bootstraps=0)
    partial = cohort.assign(arm=cohort["arm"].astype(object))
    loo = partial["trial_id"] == "loo2016"
    partial.loc[loo, "arm"] = None
    labels = arm_labels(partial)
    assert len(set(labels[loo.to_numpy()])) == cohort.loc[loo, "arm"].nunique() == 4
    assert all(label.startswith("(no arm) ") for label in labels[loo.to_numpy()])
    again = score_predictions(y, truth, arm=labels, active=design["active"], n_bootstraps=0)
    assert again["within_arm_auc"] == pytest.approx(full["within_arm_auc"])


def test_metric_inputs_are_checked_not_silently_read():
    from ketapredict.evaluate import calibration_bins

    y = np.r_[np.zeros(20), np.ones(20)]
    p = np.linspace(0.05, 0.95, 40)
    bad = {
        "a NaN prediction in the calibration table": (
            lambda: calibration_bins(y[:6], [0.2, 0.3, 0.5, 0.7, 0.8, np.nan], n_bins=3),
            "predicted probabilities must lie in [0, 1], none missing",
        ),
        "a missing outcome in the ECE": (
            lambda: expected_calibration_error(np.r_[y[:-1], np.nan], p),
            "y must hold 0 or 1",
        ),
        "no bins": (lambda: expected_calibration_error(y, p, n_bins=0), "n_bins must be"),
        "a threshold of 1": (lambda: net_benefit(y, p, [0.5, 1.0]), "thresholds must lie in"),
        "active as NaN": (
            lambda: score_predictions(y, p, active=np.r_[np.ones(20), np.full(20, np.nan)]),
            "active must hold True or False",
        ),
        "active as labels": (
            lambda: score_predictions(y, p, active=np.array(["active drug", "comparator"] * 20)),
            "active must hold True or False",
        ),
    }
    for case, (call, message) in bad.items():
        with pytest.raises(ValidationError, match=re.escape(message)):
            call()
        assert case
    assert score_predictions(y, p, active=[1] * 20 + [0] * 20, n_bootstraps=0)["active_n"] == 20


def test_a_cluster_bootstrap_over_one_trial_says_it_resamples_patients_only():
    y = np.r_[np.zeros(20), np.ones(20)]
    p = np.linspace(0.05, 0.95, 40)
    with pytest.warns(UserWarning, match="cluster names one trial"):
        score_predictions(y, p, cluster=np.zeros(40), n_bootstraps=20)


def test_one_trials_validation_resamples_patients_and_says_so(cohort):
    """No warning (the package's own warnings fail the tests): with one trial the intervals
    resample patients, and the result says which."""
    one = cohort[cohort["trial_id"] == cohort["trial_id"].value_counts().index[0]]
    model = OutcomeModel("response", n_estimators=20, linear=False)
    result = cross_validate(model, one, scheme="stratified_kfold", n_splits=2, peers=False,
                            n_bootstraps=20)  # fmt: skip
    assert result.resampled == "patients"
    assert np.isfinite(result.metrics.loc["OutcomeModel", "auc_low"])


def test_a_crossover_patients_courses_count_once_in_what_is_published(cohort, loto):
    """The cohort's crossover patients give two courses: every published group (subgroup,
    fold; the calibration bins logged and drawn read the same count) must hold 11 patients,
    so 22 courses (a privacy review)."""
    from ketapredict.schema import MIN_CELL, courses_per_patient

    assert courses_per_patient(cohort) == 2
    assert loto.courses_per_patient == 2
    assert (loto.subgroups["n"] >= 2 * MIN_CELL).all()
    shown = loto.fold_metrics[~loto.fold_metrics["withheld"]]
    assert (shown["n"] >= 2 * MIN_CELL).all()


def test_a_learning_curve_holds_out_whole_crossover_patients(cohort):
    """A crossover patient's two periods were split between the training and held-out
    rows (a statistical review): one period's outcome tells the other's."""
    from ketapredict import simulate_cohort
    from ketapredict.evaluate import _held_out
    from ketapredict.schema import crossover_patients

    patients = crossover_patients(cohort)
    y = cohort["response"].to_numpy(dtype=int)
    train, test = _held_out(cohort, y, 0.3, seed=0)
    assert not set(patients[train]) & set(patients[test])
    assert len(test) == pytest.approx(len(cohort) / 3, rel=0.05)  # one of 3 folds
    assert abs(y[train].mean() - y[test].mean()) < 0.02  # stratified as patients allow
    # a rare outcome keeps events on both sides (an unstratified split had held out none)
    rare = simulate_cohort(n=400, seed=11)
    rare = rare[rare["cognitive_decline"].notna()]
    events = rare["cognitive_decline"].to_numpy(dtype=int)
    train, test = _held_out(rare, events, 0.25, seed=0)
    assert events[train].sum() > 0
    assert events[test].sum() > 0
    alone = cohort.drop(columns="patient_id")  # no patient has two rows: stratified
    train, test = _held_out(alone, y, 0.3, seed=0)
    assert abs(y[train].mean() - y[test].mean()) < 0.005


def test_a_validation_prints_its_table_with_the_clinicians_question_first():
    """print(result) dumped every frame's first rows; it is now the table `ketapredict
    train` prints, in a notebook too."""
    from ketapredict import OutcomeModel, cross_validate, simulate_cohort

    cohort = simulate_cohort(n=1500, seed=3)
    result = cross_validate(
        OutcomeModel("response", n_estimators=20),
        cohort,
        scheme="leave_one_trial_out",
        peers=False,
    )
    text = str(result)
    assert text.startswith("response: 1,500 courses, ")
    assert text.index("within-arm AUC [95% CI]") < text.index("all courses, every arm")
    assert [
        line.split()[0] for line in text.splitlines() if line.startswith(("Outc", "orac"))
    ] == [
        "OutcomeModel",
        "oracle",
        "OutcomeModel",
        "oracle",
    ]
    assert repr(result) == text
    assert "fold_metrics=" not in text


def test_an_extreme_calibration_intercept_is_explained_not_left_to_be_read():
    """-15 is no offset to correct but probabilities at 0 and 1: the table says so, for the
    models that have one, and for no other."""
    from ketapredict.evaluate import _separation_notes

    metrics = pd.DataFrame(
        {
            "active_calibration_intercept": [0.04, -15.03, 3.0],
            "calibration_intercept": [-0.02, -14.92, 2.9],
        },
        index=["OutcomeModel", "logistic_regression", "hist_gradient_boosting"],
    )
    (note,) = _separation_notes(metrics)
    assert note.startswith("logistic_regression: a calibration intercept of 5 or more")
    assert "OutcomeModel" not in note
    assert "hist_gradient_boosting" not in note
    assert _separation_notes(metrics.drop("logistic_regression")) == []

import re

import numpy as np
import pandas as pd
import pytest

import ketapredict
from ketapredict import (
    Population,
    Regimen,
    ValidationError,
    published_trials,
    simulate_arm,
    simulate_cohort,
    simulate_trial,
    validate,
)

IV = {"route": "iv", "dose_unit": "mg/kg", "infusion_minutes": 40}
KETAMINE = Regimen(drug="ketamine", dose=0.5, **IV)
SALINE = Regimen(drug="saline", dose=0, **IV)
TRUTH = {
    "response": "p_response",
    "remission": "p_remission",
    "cognitive_decline": "p_cognitive_decline",
    "dissociation": "p_dissociation",
}


def test_same_seed_same_frame_other_seed_other_frame():
    first = simulate_cohort(n=1300, seed=5)
    pd.testing.assert_frame_equal(first, simulate_cohort(n=1300, seed=5))
    assert not first["madrs_baseline"].equals(simulate_cohort(n=1300, seed=6)["madrs_baseline"])


def test_simulated_frames_obey_the_contract(cohort):
    validated = validate(cohort)
    pd.testing.assert_frame_equal(validated, cohort)
    assert cohort["patient_id"].is_unique


def test_cohort_holds_every_published_design(cohort):
    designs = {name for name, d in published_trials().items() if d.in_cohort}
    assert set(cohort["trial_id"]) == designs
    for name, design in published_trials().items():
        trial = cohort[cohort["trial_id"] == name]
        assert set(trial["arm"]) == set(design.arms)
        assert (trial["endpoint_day"] == design.visit_days[-1]).all()
        assert trial[f"madrs_d{design.visit_days[-1]}"].notna().all()
    # arms are balanced
    sizes = cohort.groupby(["trial_id", "arm"], observed=True).size()
    assert (sizes == sizes.iloc[0]).all()


@pytest.mark.parametrize("outcome", list(TRUTH))
def test_true_probabilities_match_observed_rates(large_cohort, outcome):
    """The truth columns are exact probabilities of the observed outcomes.

    Overall rate, calibration slope (1 for exact probabilities; 0.88-0.95 when p is
    distorted to p**1.15) and the rate in each decile of p must all agree.
    """
    from sklearn.linear_model import LogisticRegression

    rows = large_cohort[large_cohort[outcome].notna()]
    truth = rows[TRUTH[outcome]].to_numpy()
    observed = rows[outcome].astype(float).to_numpy()
    assert np.all((truth >= 0) & (truth <= 1))
    z = (observed.sum() - truth.sum()) / np.sqrt((truth * (1 - truth)).sum())
    assert abs(z) < 4
    clipped = np.clip(truth, 1e-9, 1 - 1e-9)
    logit = np.log(clipped / (1 - clipped)).reshape(-1, 1)
    slope = LogisticRegression(C=1e6).fit(logit, observed.astype(bool)).coef_[0, 0]
    assert 0.96 < slope < 1.04
    bins = np.quantile(truth, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(bins, truth, side="right") - 1, 0, 9)
    for b in range(10):
        inside = which == b
        if inside.sum() < 500:
            continue
        gap = observed[inside].mean() - truth[inside].mean()
        standard_error = np.sqrt(truth[inside].mean() * (1 - truth[inside].mean()) / inside.sum())
        assert abs(gap) < 4 * standard_error + 0.005, (b, gap)


def test_outcomes_follow_their_definitions(cohort):
    last = cohort.apply(lambda row: row[f"madrs_d{int(row['endpoint_day'])}"], axis=1)
    np.testing.assert_array_equal(cohort["response"], last <= cohort["madrs_baseline"] / 2)
    np.testing.assert_array_equal(cohort["remission"], last <= 10)
    np.testing.assert_array_equal(cohort["dissociation"], cohort["cadss_peak"] > 4)
    tested = cohort["cognition_change"].notna()
    np.testing.assert_array_equal(
        cohort.loc[tested, "cognitive_decline"], cohort.loc[tested, "cognition_change"] <= -0.5
    )


def test_a_visit_sees_only_the_sessions_given_so_far():
    """Before the second session, a two-session course is a single session, draw for draw."""
    population = Population(diagnosis="TRD")
    single = simulate_arm(population, KETAMINE, n=300, seed=3, visit_days=(0.5, 6, 8))
    two = Regimen(drug="ketamine", dose=0.5, sessions_per_week=1, n_sessions=2, **IV)
    course = simulate_arm(population, two, n=300, seed=3, visit_days=(0.5, 6, 8))
    pd.testing.assert_series_equal(single["madrs_h12"], course["madrs_h12"])
    pd.testing.assert_series_equal(single["madrs_d6"], course["madrs_d6"])
    # the second session (day 7) restores the effect the first had lost by day 8
    assert course["madrs_d8"].mean() < single["madrs_d8"].mean() - 1


def test_saline_improves_a_few_points_ketamine_much_more():
    trial = simulate_trial(
        Population(),
        {"ketamine": KETAMINE, "saline": SALINE},
        n_per_arm=3000,
        seed=2,
        visit_days=(1,),
    )
    change = (trial["madrs_d1"] - trial["madrs_baseline"]).groupby(trial["arm"]).mean()
    assert -6 < change["saline"] < 0
    assert change["ketamine"] < change["saline"] - 8


def test_dose_response_is_emax_shaped():
    doses = [0.1, 0.2, 0.5, 1.0, 1.5]
    arms = {f"{d}": Regimen(drug="ketamine", dose=d, **IV) for d in doses}
    trial = simulate_trial(Population(), arms, n_per_arm=3000, seed=4, visit_days=(1,))
    improvement = (trial["madrs_baseline"] - trial["madrs_d1"]).groupby(trial["arm"]).mean()
    gains = np.diff([improvement[f"{d}"] for d in doses])
    assert gains[0] > 0
    assert gains[1] > 2  # steep between 0.2 and 0.5 mg/kg
    assert abs(gains[-1]) < 1  # a plateau above 1 mg/kg


def test_untested_cognition_leaves_cognitive_outcomes_missing():
    population = Population(cognition_tested=0.5, hamd17_rated=0.0)
    arm = simulate_arm(population, KETAMINE, n=2000, seed=1, visit_days=(1,))
    untested = arm["processing_speed_z"].isna()
    assert 0.4 < untested.mean() < 0.6
    assert arm.loc[untested, ["working_memory_z", "verbal_memory_z"]].isna().all().all()
    assert arm.loc[untested, "cognition_change"].isna().all()
    assert arm.loc[untested, "cognitive_decline"].isna().all()
    assert arm.loc[untested, "p_cognitive_decline"].isna().all()
    assert arm["p_response"].between(0, 1).all()
    assert arm["hamd17_baseline"].isna().all()
    assert arm["hamd17_d1"].isna().all()


def test_truth_for_untested_patients_integrates_over_cognition():
    """Untested patients' p_response is calibrated too, although their cognition is hidden."""
    population = Population(cognition_tested=0.0)
    arm = simulate_arm(population, KETAMINE, n=40_000, seed=8, visit_days=(1,))
    assert abs(arm["response"].mean() - arm["p_response"].mean()) < 0.01


def test_realistic_joint_distributions(cohort):
    trd = cohort[cohort["diagnosis"] == "TRD"]
    assert (trd["n_failed_treatments"] >= 2).all()
    mdd = cohort[cohort["diagnosis"] == "MDD"]
    assert (mdd["n_failed_treatments"] <= 1).all()
    assert cohort["age"].between(18, 80).all()
    assert (
        np.corrcoef(
            cohort["madrs_baseline"],
            cohort["hamd17_baseline"].fillna(cohort["hamd17_baseline"].mean()),
        )[0, 1]
        > 0.6
    )
    assert cohort.groupby("sex", observed=True)["weight_kg"].mean().diff().iloc[-1] > 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"diagnosis": "dysthymia"}, "diagnosis='dysthymia' is not one of"),
        ({"madrs_mean": 75}, "madrs_mean=75 is not a number in 0-60"),
        ({"female_fraction": 1.5}, "female_fraction=1.5 is not a number in 0-1"),
        (
            {"diagnosis": "TRD", "failed_treatments_mean": 1},
            "failed_treatments_mean must be at least 2 for TRD",
        ),
        ({"madrs_min": 58}, "madrs_min=58 leaves almost no one eligible"),
    ],
)
def test_impossible_populations_are_refused(arguments, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        Population(**arguments)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: simulate_arm(Population(), KETAMINE, n=0), "n_per_arm=0 is not a positive"),
        (
            lambda: simulate_arm(Population(), KETAMINE, n=10, visit_days=(7, 1)),
            "must be distinct and increasing",
        ),
        (
            lambda: simulate_arm(Population(), KETAMINE, n=10, visit_days=(0,)),
            "is not a sequence of positive days",
        ),
        (lambda: simulate_cohort(n=-5), "n=-5 is not a positive whole number"),
    ],
)
def test_bad_simulation_requests_are_refused(call, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        call()


def test_simulate_arm_wants_a_regimen():
    with pytest.raises(TypeError, match="regimen must be a Regimen"):
        simulate_arm(Population(), {"drug": "ketamine"}, n=10)


def test_import_stays_light():
    """`import ketapredict` and simulating do not load the heavy libraries."""
    import subprocess
    import sys

    code = (
        "import sys, ketapredict; ketapredict.simulate_cohort(n=200); "
        "print(sorted(m for m in ('mlflow', 'shap', 'xgboost', 'sklearn', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert ketapredict.__version__

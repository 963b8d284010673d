"""The virtual cohort: simulated trials, crossovers, the pooled cohort, and its exact truth."""

import re

import numpy as np
import pandas as pd
import pytest

import ketapredict
from ketapredict import (
    Population,
    Regimen,
    TrialEffect,
    ValidationError,
    published_trials,
    simulate_arm,
    simulate_cohort,
    simulate_crossover,
    simulate_trial,
    validate,
)

IV = {"route": "iv", "dose_unit": "mg/kg", "infusion_minutes": 40}
KETAMINE = Regimen(drug="ketamine", dose=0.5, **IV)
SALINE = Regimen(drug="saline", dose=0, **IV)
MIDAZOLAM = Regimen(drug="midazolam", dose=0.045, **IV)
OUTCOMES = ("response", "remission", "cognitive_decline", "dissociation")


def test_same_seed_same_frame_other_seed_other_frame():
    first = simulate_cohort(n=1300, seed=5)
    pd.testing.assert_frame_equal(first, simulate_cohort(n=1300, seed=5))
    assert not first["madrs_baseline"].equals(simulate_cohort(n=1300, seed=6)["madrs_baseline"])


@pytest.mark.parametrize("n", [1, 2, 7, 29, 1001, 4983, 5000])
def test_cohort_has_exactly_n_rows(n):
    cohort = simulate_cohort(n=n, seed=1)
    assert len(cohort) == n
    assert not cohort.duplicated(["patient_id", "period"]).any()


def test_simulated_frames_obey_the_contract(cohort):
    validated = validate(cohort)
    pd.testing.assert_frame_equal(validated, cohort)


def test_cohort_holds_every_published_design(cohort):
    designs = published_trials()
    assert set(cohort["trial_id"]) == {name for name, d in designs.items() if d.in_cohort}
    for name, design in designs.items():
        trial = cohort[cohort["trial_id"] == name]
        assert set(trial["arm"]) == set(design.arms)
        assert (trial["endpoint_day"] == design.visit_days[-1]).all()
        assert trial[f"madrs_d{design.visit_days[-1]}"].notna().all()
    # rows per arm differ by at most one
    sizes = cohort.groupby(["trial_id", "arm"], observed=True).size()
    assert sizes.max() - sizes.min() <= 1


def test_crossover_designs_give_each_patient_both_arms(cohort):
    for name, design in published_trials().items():
        trial = cohort[cohort["trial_id"] == name]
        if design.crossover:
            periods = trial.groupby("patient_id")["period"].agg(["min", "max", "size"])
            complete = periods["size"] == 2
            assert complete.mean() > 0.99  # at most one patient left after period 1
            assert (periods.loc[complete, ["min", "max"]].to_numpy() == [1, 2]).all()
            arms = trial.groupby("patient_id")["arm"].nunique()
            assert (arms[complete] == 2).all()
        else:
            assert (trial["period"] == 1).all()
            assert trial["patient_id"].is_unique


def test_crossover_shares_the_patient_between_periods():
    """The same patient's latent terms act in both periods: the change on the same regimen
    correlates within patients, and the re-rated baseline follows the first."""
    population = Population(diagnosis="TRD")
    again = Regimen(drug="ketamine", dose=0.5, route="iv", infusion_minutes=41)
    trial = simulate_crossover(population, {"a": KETAMINE, "b": again}, n=4000, seed=2)
    change = trial["madrs_d7"] - trial["madrs_baseline"]
    wide = trial.assign(change=change).pivot_table(
        index="patient_id", columns="period", values="change"
    )
    assert np.corrcoef(wide[1], wide[2])[0, 1] > 0.25

    def baseline_correlation(washout_days):
        rows = simulate_crossover(
            population, [KETAMINE, SALINE], n=4000, seed=3, washout_days=washout_days
        )
        wide = rows.pivot_table(index="patient_id", columns="period", values="madrs_baseline")
        return np.corrcoef(wide[1], wide[2])[0, 1]

    # the re-rated baseline tracks the first, less so the longer the patient drifts between
    assert baseline_correlation(1) > baseline_correlation(60) > 0.2
    # recorded baseline fields are the patient's own, the same in both periods
    for name in ("age", "sex", "bmi", "processing_speed_z"):
        per_patient = trial.groupby("patient_id")[name].nunique(dropna=False)
        assert (per_patient == 1).all(), name


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_true_probabilities_match_observed_rates(large_cohort, outcome):
    """The truth columns are exact probabilities of the observed outcomes.

    Overall rate, calibration slope (1 for exact probabilities; 0.88-0.95 when p is
    distorted to p**1.15) and the rate in each decile of p must all agree.
    """
    from sklearn.linear_model import LogisticRegression

    rows = large_cohort[large_cohort[outcome].notna()]
    truth = rows[f"p_{outcome}"].to_numpy()
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


@pytest.mark.parametrize(
    "field", ["bmi", "episode_months", "family_history_aud", "prior_suicide_attempt"]
)
def test_truth_integrates_missing_fields_out(large_cohort, field):
    """Patients with a missing field keep calibrated truths: the simulator integrates the
    field over its distribution given what was recorded (not at random for histories)."""
    rows = large_cohort[large_cohort[field].isna() & large_cohort["drug"].isin(["ketamine"])]
    assert len(rows) > 1000
    for outcome in ("response", "remission"):
        truth = rows[f"p_{outcome}"].to_numpy()
        observed = rows[outcome].astype(float).to_numpy()
        z = (observed.sum() - truth.sum()) / np.sqrt((truth * (1 - truth)).sum())
        assert abs(z) < 4, (field, outcome, z)


def test_marginal_truth_is_calibrated_over_random_trials():
    """p_*_marginal is a new trial's probability: calibrated over many random trials, while
    p_* is calibrated within each trial."""
    frames = [
        simulate_arm(Population(), KETAMINE, n=100, seed=k, visit_days=(1,), trial_effect="random")
        for k in range(300)
    ]
    pooled = pd.concat(frames, ignore_index=True)
    observed = pooled["response"].astype(float)
    for column in ("p_response", "p_response_marginal"):
        truth = pooled[column]
        z = (observed.sum() - truth.sum()) / np.sqrt((truth * (1 - truth)).sum())
        assert abs(z) < 4, column
    # trials differ: the given-trial truth varies between trials more than the marginal one
    by_trial = [f["p_response"].mean() - f["p_response_marginal"].mean() for f in frames]
    assert np.std(by_trial) > 0.03


def test_trial_effects_move_the_arm():
    weak = simulate_arm(Population(), KETAMINE, 4000, seed=1, visit_days=(1,),
                        trial_effect=TrialEffect(drug=-2.0))  # fmt: skip
    typical = simulate_arm(Population(), KETAMINE, 4000, seed=1, visit_days=(1,))
    assert weak["p_response"].mean() < typical["p_response"].mean() - 0.05
    assert weak["p_response_marginal"].mean() == pytest.approx(
        typical["p_response_marginal"].mean(), abs=0.01
    )


def test_outcomes_follow_their_definitions(cohort):
    last = cohort.apply(lambda row: row[f"madrs_d{int(row['endpoint_day'])}"], axis=1)
    np.testing.assert_array_equal(cohort["response"], last <= cohort["madrs_baseline"] / 2)
    np.testing.assert_array_equal(cohort["remission"], last <= 10)
    np.testing.assert_array_equal(cohort["dissociation"], cohort["cadss_peak"] > 4)
    tested = cohort["cognition_change"].notna()
    np.testing.assert_array_equal(
        cohort.loc[tested, "cognitive_decline"], cohort.loc[tested, "cognition_change"] <= -0.5
    )
    assert (cohort["cognition_change"].isna() == cohort["processing_speed_z"].isna()).all()


def test_a_visit_sees_only_the_sessions_given_so_far():
    """Before the second session, a two-session course is a single session, draw for draw."""
    population = Population(diagnosis="TRD")
    single = simulate_arm(population, KETAMINE, n=300, seed=3, visit_days=(0.5, 6, 8))
    two = Regimen(drug="ketamine", dose=0.5, sessions_per_week=1, n_sessions=2, **IV)
    course = simulate_arm(population, two, n=300, seed=3, visit_days=(0.5, 6, 8))
    pd.testing.assert_series_equal(single["madrs_h12"], course["madrs_h12"])
    pd.testing.assert_series_equal(single["madrs_d6"], course["madrs_d6"])
    # the second session (day 7) restores the effect the first had lost by day 8
    assert course["madrs_d8"].mean() < single["madrs_d8"].mean() - 0.5


def test_dose_response_is_emax_shaped():
    doses = [0.05, 0.1, 0.2, 0.5, 1.0, 1.5]
    arms = {f"{d}": Regimen(drug="ketamine", dose=d, **IV) for d in doses}
    trial = simulate_trial(Population(), arms, n_per_arm=6000, seed=4, visit_days=(1,))
    improvement = trial["p_response"].groupby(trial["arm"]).mean()
    gains = np.diff([improvement[f"{d}"] for d in doses])
    assert (gains[:3] > 0).all()
    assert gains[-1] < gains[2] / 3  # a plateau above 1 mg/kg


def test_exposure_varies_around_the_published_pharmacology():
    """Within a fixed-dose arm the true exposure differs between patients: dissociation
    varies beyond rating noise, and the arm's risk is not the nominal exposure's."""
    from ketapredict.cohort.parameters import load_parameters
    from ketapredict.cohort.simulate import TrialEffect as Effect
    from ketapredict.cohort.simulate import _simulate_parallel

    spray = Regimen(drug="esketamine", route="intranasal", dose=28, dose_unit="mg")
    arm = simulate_arm(Population(), spray, n=5000, seed=2, visit_days=(1,))
    assert arm["cadss_peak"].std() > 3 * load_parameters().cadss_noise
    params = load_parameters()
    fixed = params.replace(exposure_sd_intranasal=0.0)
    rng = np.random.default_rng(0)
    nominal = _simulate_parallel(
        Population(), ["spray"], [spray], [5000], rng, (1.0,), "t", Effect(), fixed
    )
    assert abs(nominal["p_dissociation"].mean() - arm["p_dissociation"].mean()) > 0.02


def test_family_history_predicts_less_dissociation_within_a_fixed_dose_arm():
    """A recorded baseline field predicts dissociation (Petrakis 2004): within one mg/kg
    arm the true risk differs by family history, and ranks the observed dissociation."""
    from sklearn.metrics import roc_auc_score

    arm = simulate_arm(Population(), KETAMINE, n=20_000, seed=3, visit_days=(1,))
    risk = arm["p_dissociation"].groupby(arm["family_history_aud"]).mean()
    assert risk[True] < risk[False] - 0.05
    known = arm["dissociation"].notna()
    auc = roc_auc_score(
        arm.loc[known, "dissociation"].astype(int), arm.loc[known, "p_dissociation"]
    )
    assert auc > 0.53
    rate = arm["dissociation"].astype(float).groupby(arm["family_history_aud"]).mean()
    assert rate[True] < rate[False] - 0.05


def test_saline_improves_a_few_points_ketamine_more():
    trial = simulate_trial(
        Population(madrs_mean=32, madrs_sd=6),
        {"ketamine": KETAMINE, "saline": SALINE},
        n_per_arm=5000,
        seed=2,
        visit_days=(1,),
    )
    change = (trial["madrs_d1"] - trial["madrs_baseline"]).groupby(trial["arm"]).mean()
    assert -7 < change["saline"] < 0
    assert change["ketamine"] < change["saline"] - 5


# ------------------------------------------------------------------------------------------
# Spreads and comparators (issue: "Done when"), measured on simulated trials
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def single_infusion():
    """A typical single-infusion trial against saline and midazolam, 20,000 per arm."""
    trial = simulate_trial(
        Population(madrs_mean=32, madrs_sd=6, madrs_min=20),
        {"ketamine": KETAMINE, "saline": SALINE, "midazolam": MIDAZOLAM},
        n_per_arm=20_000,
        seed=31,
        visit_days=(1, 2),
    )
    return {str(k): v for k, v in trial.groupby("arm", observed=True)}


def test_sd_of_change_in_active_and_comparator_arms(single_infusion):
    """SD of MADRS change: 9-12 points in single-infusion active arms at 24-48 h, and
    saline arms spread as published ones (5.7-10.2 at day 15; CALIBRATION.md D1)."""
    change = {a: f["madrs_d2"] - f["madrs_baseline"] for a, f in single_infusion.items()}
    assert 9 <= change["ketamine"].std() <= 12
    assert 5.7 <= change["saline"].std() <= 12
    singh = published_trials()["singh2016_ajp"]
    course = simulate_trial(singh.population, singh.arms, 5000, seed=3, visit_days=(15,))
    for arm, rows in course.groupby("arm", observed=True):
        sd = (rows["madrs_d15"] - rows["madrs_baseline"]).std()
        assert 5.7 - 2 <= sd <= 12.0 + 2, (arm, sd)  # published 5.7-12.0, n of about 17


def test_comparators_respond_at_published_levels(single_infusion):
    """Saline about 9% response and 2% remission at 24 h; midazolam about 26% and 18%
    (CALIBRATION.md A2, A3): comparator arms are not flat."""
    rates = {
        a: (f["madrs_d1"] <= f["madrs_baseline"] / 2).mean() for a, f in single_infusion.items()
    }
    remission = {a: (f["madrs_d1"] <= 10).mean() for a, f in single_infusion.items()}
    assert 0.03 <= rates["saline"] <= 0.17
    assert 0.0 < remission["saline"] <= 0.08
    assert 0.16 <= rates["midazolam"] <= 0.36
    assert 0.08 <= remission["midazolam"] <= 0.28


def test_a_minority_of_active_patients_gets_worse(single_infusion):
    worse = single_infusion["ketamine"]["madrs_d2"] > single_infusion["ketamine"]["madrs_baseline"]
    assert 0.04 <= worse.mean() <= 0.35


def test_single_infusion_effect_over_saline_is_realistic(single_infusion):
    """Standardised effect (SMD of severity) of one infusion over saline at 24 h: 0.5-1.3
    (Cochrane 2021: 0.87, 95% CI 0.48-1.26)."""
    ketamine, saline = (
        single_infusion["ketamine"]["madrs_d1"],
        single_infusion["saline"]["madrs_d1"],
    )
    pooled = np.sqrt((ketamine.var() + saline.var()) / 2)
    assert 0.5 <= (saline.mean() - ketamine.mean()) / pooled <= 1.3


def test_drug_advantage_over_placebo_and_antidepressant_at_day_28():
    """About 4 MADRS points at day 28 in TRANSFORM-2 (CALIBRATION.md C3): the n-based
    range of the published difference (4.4, SE 1.74, between-trial SD 2)."""
    design = published_trials()["popova2019"]
    trial = simulate_trial(design.population, design.arms, 10_000, seed=8, visit_days=(28,))
    change = trial["madrs_d28"] - trial["madrs_baseline"]
    active = trial["drug"] == "esketamine"
    advantage = change[~active].mean() - change[active].mean()
    assert 4.4 - 5.3 <= advantage <= 4.4 + 5.3


def test_oracle_auc_within_active_arms(large_cohort):
    """Within one active arm, the AUC of the true probabilities lies in 0.68-0.82 on average
    (CALIBRATION.md F), and no standard-dose arm is near-perfectly predictable."""
    from sklearn.metrics import roc_auc_score

    active = large_cohort[large_cohort["drug"].isin(["ketamine", "esketamine"])]
    aucs, sizes = [], []
    for _, arm in active.groupby(["trial_id", "arm"], observed=True):
        y = arm["response"].astype(bool)
        aucs.append(roc_auc_score(y, arm["p_response"]))
        sizes.append(len(arm))
    assert 0.68 <= np.average(aucs, weights=sizes) <= 0.82
    assert max(aucs) < 0.88


def test_missing_values_do_not_identify_the_trial(large_cohort):
    """A classifier on missingness indicators predicts the trial no better than one on the
    design columns (the regimen and its assessment day)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    sample = large_cohort.sample(20_000, random_state=0)
    baseline = ketapredict.columns("baseline")
    missing = sample[baseline].isna().astype(float)
    design = pd.DataFrame(
        {
            "drug": sample["drug"].cat.codes,
            "route": sample["route"].cat.codes,
            "dose": sample["dose"],
            "unit": sample["dose_unit"].cat.codes,
            "infusion": sample["infusion_minutes"].fillna(0),
            "per_week": sample["sessions_per_week"],
            "sessions": sample["n_sessions"].astype(float),
            "new_ad": sample["new_oral_antidepressant"].astype(float),
            "endpoint": sample["endpoint_day"],
        }
    )
    y = sample["trial_id"].astype(str)

    def accuracy(x):
        model = HistGradientBoostingClassifier(max_iter=50, random_state=0)
        return cross_val_score(model, x, y, cv=3).mean()

    assert accuracy(missing) <= accuracy(design)
    # within a trial, every field that can go missing does, for some patients
    for trial, rows in sample.groupby("trial_id"):
        assert rows["bmi"].isna().any(), trial
        assert rows["bmi"].notna().any(), trial


def test_histories_are_missing_not_at_random(large_cohort):
    """A family history is written down more often when it is positive, so the recorded
    rate exceeds the population's (0.3 by default)."""
    default = large_cohort[large_cohort["trial_id"] == "singh2016_ajp"]
    recorded = default["family_history_aud"].dropna().astype(float)
    assert recorded.mean() > 0.33
    assert 0.08 < default["family_history_aud"].isna().mean() < 0.25


def test_untested_cognition_leaves_cognitive_outcomes_missing():
    population = Population(cognition_tested=0.5, hamd17_rated=0.0)
    arm = simulate_arm(population, KETAMINE, n=2000, seed=1, visit_days=(1,))
    untested = arm["processing_speed_z"].isna()
    assert 0.45 < untested.mean() < 0.65
    assert arm.loc[untested, ["working_memory_z", "verbal_memory_z"]].isna().all().all()
    assert arm.loc[untested, "cognition_change"].isna().all()
    assert arm.loc[untested, "cognitive_decline"].isna().all()
    assert arm.loc[untested, "p_cognitive_decline"].isna().all()
    assert arm["p_response"].between(0, 1).all()
    assert arm["hamd17_baseline"].isna().all()
    assert arm["hamd17_d1"].isna().all()


def test_realistic_joint_distributions(cohort):
    trd = cohort[cohort["diagnosis"] == "TRD"]
    assert (trd["n_failed_treatments"] >= 2).all()
    mdd = cohort[cohort["diagnosis"] == "MDD"]
    assert (mdd["n_failed_treatments"] <= 1).all()
    assert cohort["age"].between(18, 80).all()
    rated = cohort["hamd17_baseline"].notna()
    assert (
        np.corrcoef(cohort.loc[rated, "madrs_baseline"], cohort.loc[rated, "hamd17_baseline"])[
            0, 1
        ]
        > 0.6
    )
    assert cohort.groupby("sex", observed=True)["weight_kg"].mean().diff().iloc[-1] > 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"diagnosis": "dysthymia"}, "diagnosis='dysthymia' is not one of"),
        ({"madrs_mean": 75}, "madrs_mean=75 is not a number from 0 to 60"),
        ({"female_fraction": 1.5}, "female_fraction=1.5 is not a number from 0 to 1"),
        ({"ssi_mean": -30}, "ssi_mean=-30 is not a number from -20 to 38"),
        # None is no number: it failed later, inside the simulation, with a TypeError
        ({"age_mean": None}, "age_mean=None is not a number from 18 to 80"),
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
    # None stays "the diagnosis's default" where there is one
    assert Population(diagnosis="MDD", suicide_attempt_rate=None).suicide_attempt_rate == 0.2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: simulate_arm(Population(), KETAMINE, n=0), "n=0 is not a positive"),
        (
            lambda: simulate_arm(Population(), KETAMINE, n=10, visit_days=(7, 1)),
            "must be distinct and increasing",
        ),
        (
            lambda: simulate_arm(Population(), KETAMINE, n=10, visit_days=(0,)),
            "is not a sequence of positive days",
        ),
        (lambda: simulate_cohort(n=-5), "n=-5 is not a positive whole number"),
        (lambda: simulate_cohort(n=10**12), "n=1000000000000 is more than 1,000,000"),
        (
            lambda: simulate_arm(Population(), KETAMINE, n=10, trial_effect="big"),
            "trial_effect='big' is not None (a typical trial), 'random' or a TrialEffect",
        ),
        (lambda: TrialEffect(drug=float("nan")), "TrialEffect drug=nan is not a number"),
        (
            lambda: simulate_crossover(Population(), [KETAMINE], n=10),
            "a crossover compares two regimens; got 1",
        ),
        (
            lambda: simulate_crossover(Population(), [KETAMINE, SALINE], n=10, washout_days=-1),
            "washout_days=-1 is not a number of days in 0-365",
        ),
        # None gave patient ids "None-000000" and a missing trial_id
        *(
            (
                lambda trial_id=trial_id, simulate=simulate: simulate(trial_id),
                f"trial_id must be text on one line of 1 to 100 characters; got {shown}",
            )
            for trial_id, shown in ((None, "None"), ("", "''"), ("a\nb", "'a\\nb'"))
            for simulate in (
                lambda t: simulate_trial(Population(), {"k": KETAMINE}, 10, trial_id=t),
                lambda t: simulate_crossover(Population(), [KETAMINE, SALINE], 10, trial_id=t),
            )
        ),
    ],
)
def test_bad_simulation_requests_are_refused(call, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        call()


def test_simulate_arm_wants_a_regimen():
    saline = Regimen(drug="saline", route="iv", dose=0, infusion_minutes=40)
    with pytest.raises(ValidationError, match="regimen must be a Regimen"):
        simulate_arm(Population(), {"drug": "ketamine"}, n=10)
    with pytest.raises(ValidationError, match="population must be a Population"):
        simulate_arm({"diagnosis": "TRD"}, saline, n=10)
    # the arm that is no Regimen is named, not the mapping called empty
    with pytest.raises(ValidationError, match="arm 'b' is a str, not a Regimen"):
        simulate_trial(Population(), {"a": saline, "b": "saline"}, n_per_arm=10)


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


@pytest.mark.parametrize("seed", [-1, "a", 1.5, True])
def test_a_bad_seed_is_named(seed):
    from ketapredict import ValidationError

    with pytest.raises(ValidationError, match="seed="):
        simulate_cohort(n=50, seed=seed)
    assert simulate_cohort(n=50, seed=np.int64(3)).equals(simulate_cohort(n=50, seed=3))


def test_simulation_arguments_are_read_as_written_or_refused():
    """visit_days "17" was read as days 1 and 7, day 400 made a frame the contract refuses,
    1e-9 days was named madrs_d0; numpy numbers and a padded diagnosis are a population's
    values as they are a patient's; simulate_arm names its own argument."""
    import numpy as np

    from ketapredict import Population, Regimen, ValidationError, simulate_arm

    regimen = Regimen(drug="ketamine", route="iv", dose=0.5, dose_unit="mg/kg",
                      infusion_minutes=40)  # fmt: skip
    for days, said in (
        ("17", "is not a sequence of positive days"),
        ((1, 400), "goes beyond day 365"),
        ((1e-9,), "whole number of minutes"),
    ):
        with pytest.raises(ValidationError, match=re.escape(said)):
            simulate_arm(Population(), regimen, 5, visit_days=days)
    with pytest.raises(ValidationError, match=re.escape("n=0 is not a positive whole number")):
        simulate_arm(Population(), regimen, 0)
    population = Population(madrs_mean=np.int64(32), age_mean=np.float32(40), diagnosis=" TRD ")
    assert (population.madrs_mean, population.age_mean, population.diagnosis) == (32, 40.0, "TRD")
    assert population == Population(madrs_mean=32, age_mean=40.0, diagnosis="TRD")
    with pytest.raises(ValidationError, match=re.escape("madrs_mean=np.True_ is not a number")):
        Population(madrs_mean=np.bool_(True))


def test_cohort_helpers_name_a_bad_argument():
    from ketapredict.cohort.simulate import TrialEffect

    with pytest.raises(ValidationError, match="'bmi' has no population rate"):
        Population().rate("bmi")
    with pytest.raises(ValidationError, match="rng must be a numpy Generator"):
        TrialEffect.draw(0)


def test_a_cohort_of_several_trials_a_design():
    """Interval calibration needs many draws of a trial's effect, not 14."""
    from ketapredict import ValidationError, simulate_cohort

    cohort = simulate_cohort(n=700, seed=3, trials_per_design=3)
    assert len(cohort) == 700
    assert cohort["trial_id"].nunique() == 3 * simulate_cohort(n=700, seed=3)["trial_id"].nunique()
    assert cohort["trial_id"].str.endswith((".1", ".2", ".3")).all()
    # a patient belongs to one trial; a crossover patient's periods stay together
    assert (cohort["patient_id"].str.rsplit("-", n=1).str[0] == cohort["trial_id"]).all()
    periods = cohort.groupby("patient_id")["trial_id"].agg(["size", "nunique"])
    assert periods["size"].max() == 2
    assert periods["nunique"].max() == 1
    # rows are dealt to the arms in turn across the draws: a small cohort holds every design
    designs = simulate_cohort(n=700, seed=3)["trial_id"].nunique()
    small = simulate_cohort(n=100, seed=3, trials_per_design=8)
    assert small["trial_id"].str.rsplit(".", n=1).str[0].nunique() == designs
    assert cohort.equals(simulate_cohort(n=700, seed=3, trials_per_design=3))
    with pytest.raises(ValidationError, match="trials_per_design=0 is not a positive whole"):
        simulate_cohort(n=700, trials_per_design=0)

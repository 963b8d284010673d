"""The virtual cohort against published evidence (CALIBRATION.md), and its fitting procedure.

Published values come from the package data (``cohort/targets.toml``); every simulated value
is computed here, from the simulator, never stored.
"""

import dataclasses
import math
import re

import numpy as np
import pytest

from ketapredict import calibration_report, published_trials, simulate_trial
from ketapredict.cohort import fit
from ketapredict.cohort import targets as targets_module
from ketapredict.cohort.parameters import load_parameters
from ketapredict.cohort.targets import load_targets

EXPRESSED = [t.id for t in load_targets() if t.expressed]

# Fit targets the fitted cohort misses, each by 2.0-2.4 standard errors (issue 9 stays open on
# them; see docs/virtual-cohort.md). With 49 fit targets judged at two
# standard errors, a true model would miss about two or three by chance. Forcing them inside
# (``fit_cohort.py --margin 2``) breaks two validation targets. Strict: a change that makes
# them pass, or makes another target miss, fails these tests.
KNOWN_MISSES = {
    "A1.remission_d1": "Han 2016's 20.6% remission beside its 52.2% response needs an SD of "
    "change under 6 points (D1: 9-12); the Cochrane pool gives 32.7%",
    "A5.saline_3_per_week_sd": "Singh 2016's 17-patient saline arm (SD 5.7) against its twin "
    "arm's 10.2 and TRANSFORM-2's 13.9",
    "B1.response_d1": "Zarate 2006's 71% is 2.1 SE above the typical trial for its population",
}


def test_every_target_is_simulated_or_says_why_not(report):
    assert report["id"].tolist() == EXPRESSED
    not_expressed = report.attrs["not_expressed"]
    assert {row["id"] for row in not_expressed} | set(EXPRESSED) == {t.id for t in load_targets()}
    assert all(row["not_expressed"] for row in not_expressed)
    assert set(report["role"]) == {"fit", "validation", "check"}
    assert report["passed"].dtype == bool
    assert report["simulated"].notna().all()


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(t, marks=pytest.mark.xfail(reason=KNOWN_MISSES[t], strict=True))
        if t in KNOWN_MISSES
        else t
        for t in EXPRESSED
    ],
)
def test_target_is_reproduced(report, target):
    row = report.set_index("id").loc[target]
    assert row["passed"], f"{target}: simulated {row['simulated']:.3f}, needs {row['check']}"


def test_the_oracle_auc_is_reported_per_active_arm(report):
    by_arm = report.attrs["oracle_auc_by_arm"]
    assert len(by_arm) >= 15
    assert all(0.5 < auc < 0.95 for auc in by_arm.values())


def test_tolerances_follow_the_sample_size():
    """rate: 2 sqrt(p(1-p)/n + tau^2/trials), tau 0.07 (CALIBRATION.md)."""
    by_id = {t.id: t for t in load_targets()}
    han = by_id["A1.response_d1"]  # 9 trials, n=368
    assert han.tolerance == pytest.approx(2 * math.sqrt(0.522 * 0.478 / 368 + 0.07**2 / 9))
    zarate = by_id["B1.response_d1"]  # one trial of 18
    assert zarate.tolerance == pytest.approx(2 * math.sqrt(0.71 * 0.29 / 18 + 0.07**2))
    assert zarate.tolerance > 3 * han.tolerance
    singh = by_id["A5.saline_3_per_week"]  # mean change, SD 5.7, n=17
    assert singh.tolerance == pytest.approx(2 * math.sqrt(5.7**2 / 17 + 2.0**2))


# ------------------------------------------------------------------------------------------
# The fitting procedure
# ------------------------------------------------------------------------------------------
def test_fit_and_validation_targets_are_apart():
    roles = {t.role for t in load_targets()}
    assert roles == {"fit", "validation", "check"}
    fit_ids = {t.id for t in fit.fit_targets()}
    assert fit_ids == {t.id for t in load_targets() if t.role == "fit"}
    assert len(fit_ids) >= 30
    assert sum(t.role == "validation" and t.expressed for t in load_targets()) >= 10
    assert sum(t.role == "check" for t in load_targets()) >= 20


def test_validation_targets_never_reach_the_fit(monkeypatch):
    """The fit's objective is a function of the fit targets only: changing every validation
    and check target (its published value, and how it is measured) changes nothing."""
    before = fit.residuals(n=300)
    assert set(before) == {t.id for t in fit.fit_targets()} | {
        f"prior.{name}" for name in fit.priors(load_parameters())
    }
    scrambled = tuple(
        t
        if t.role == "fit"
        else dataclasses.replace(
            t, published=-99.0, spec={**t.spec, "statistic": "no such statistic"}
        )
        for t in load_targets()
    )
    assert any(t.role == "check" for t in scrambled)
    monkeypatch.setattr(fit, "load_targets", lambda: scrambled)
    monkeypatch.setattr(targets_module, "load_targets", lambda: scrambled)
    after = fit.residuals(n=300)
    assert after == before


def test_the_parameter_file_holds_the_fit():
    """The values in parameters.toml are the fitting script's output: its recorded objective
    is reproduced, and no fitted parameter sits at a bound it was not forced to."""
    params = load_parameters()
    summary = params.fit
    residuals = fit.residuals(params, n=summary["patients_per_arm"], seed=summary["seed"])
    objective = sum(v**2 for v in residuals.values())
    assert objective == pytest.approx(summary["objective"], abs=1e-2)
    assert summary["targets"] == len(fit.fit_targets())
    assert summary["parameters"] == len(params.fitted())
    # every fit target within its tolerance in the exact calculation too, but the known misses
    beyond = {k for k, v in residuals.items() if abs(v) > 2 and not k.startswith("prior.")}
    assert beyond == set(KNOWN_MISSES)


def test_exact_fit_statistics_agree_with_simulation():
    """The fit's exact expectations and the simulator's Monte Carlo agree."""
    values = fit.simulated_values(n=3000, seed=4)
    design = published_trials()["popova2019"]
    trial = simulate_trial(design.population, design.arms, 20_000, seed=9, visit_days=(28,))
    placebo = trial[trial["arm"] == "placebo"]
    change = placebo["madrs_d28"] - placebo["madrs_baseline"]
    assert change.mean() == pytest.approx(values["A4.placebo_change"], abs=0.5)
    assert change.std() == pytest.approx(values["A4.placebo_sd"], abs=0.4)
    responding = (placebo["madrs_d28"] <= placebo["madrs_baseline"] / 2).mean()
    assert responding == pytest.approx(values["A4.placebo_response"], abs=0.02)


# ------------------------------------------------------------------------------------------
# Negative controls: the report catches a wrong simulator
# ------------------------------------------------------------------------------------------
def _missed(**changes):
    params = load_parameters().replace(**changes)
    report = calibration_report(seed=0, n_per_arm=2000, parameters=params)
    return set(report.loc[~report["passed"], "id"])


def test_the_checks_fail_for_a_simulator_without_drug_effect():
    # no specific effect at any exposure, and nothing to perceive beyond an inert comparator
    missed = _missed(ed50=1e6, expectancy_perceived=load_parameters().expectancy_inert)
    for target in ("A1.response_d1", "A2.ketamine_response", "A4.esketamine_change",
                   "A6.esketamine_0.40", "A3.smd", "C4.peak_24h"):  # fmt: skip
        assert target in missed, target


def test_the_checks_fail_for_a_simulator_that_ignores_a_predictor():
    missed = _missed(drug_family_history_aud=0.0)
    assert {"F.family_history_d1", "F.family_history_d7"} <= missed


def test_the_checks_fail_for_a_simulator_without_spread():
    missed = _missed(nonspecific_sd=0.05, drift_sd=0.0, drug_sd=0.0)
    assert "A3.saline_response" in missed
    assert "D1.single_infusion_sd" in missed or "D2.saline_both_sides" in missed


# ------------------------------------------------------------------------------------------
# Numeric A rows recomputed from the public API alone, with another seed
# ------------------------------------------------------------------------------------------
def _arm(name, arms, day, seed=123):
    design = published_trials()[name]
    chosen = {k: v for k, v in design.arms.items() if k in arms}
    frame = simulate_trial(design.population, chosen, 20_000, seed, visit_days=(day,))
    return frame


@pytest.mark.parametrize(
    ("target", "trial", "arms", "day", "statistic"),
    [
        ("A4.esketamine_response", "popova2019", ("esketamine_56mg", "esketamine_84mg"), 28,
         lambda f: (f["madrs_d28"] <= f["madrs_baseline"] / 2).mean()),
        ("A4.placebo_remission", "popova2019", ("placebo",), 28,
         lambda f: (f["madrs_d28"] <= 12).mean()),
        ("A5.ketamine_2_per_week", "singh2016_ajp", ("ketamine_2_per_week",), 15,
         lambda f: (f["madrs_d15"] - f["madrs_baseline"]).mean()),
        ("A6.esketamine_0.20", "singh2016_biol", ("esketamine_0_20",), 2,
         lambda f: (f["madrs_d2"] - f["madrs_baseline"]).mean()),
        ("B1.response_d7", "zarate2006", ("ketamine",), 7,
         lambda f: (f["madrs_d7"] <= f["madrs_baseline"] / 2).mean()),
    ],
)  # fmt: skip
def test_a_rows_recomputed_from_the_public_api(target, trial, arms, day, statistic):
    published = next(t for t in load_targets() if t.id == target)
    simulated = float(statistic(_arm(trial, arms, day)))
    assert abs(simulated - published.published) <= published.tolerance, simulated
    assert np.isfinite(simulated)


@pytest.mark.parametrize(
    ("argument", "said"),
    [
        ({"n_per_arm": 5}, "n_per_arm=5 is not a whole number >= 100"),
        ({"n_per_arm": 2.5}, "n_per_arm=2.5 is not a whole number >= 100"),
        ({"n_per_arm": True}, "n_per_arm=True is not a whole number >= 100"),
        ({"n_per_arm": 10**6}, "is more than 100,000, about 2.4 GB of simulated arms"),
        ({"seed": -1}, "seed=-1 is not a whole number >= 0"),
        ({"seed": np.random.default_rng(0)}, "is not a whole number >= 0"),
    ],
)
def test_calibration_report_checks_its_arguments_before_simulating(argument, said):
    from ketapredict import ValidationError

    with pytest.raises(ValidationError, match=re.escape(said)):
        calibration_report(**argument)

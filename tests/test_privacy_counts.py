"""What leaves the machine about small groups besides the subgroup table: the summaries
over folds, the header's counts among active-drug patients and the calibration bins (each
found by an attack on the logged and printed output)."""

import numpy as np
import pandas as pd
import pytest

from ketapredict.evaluate import ValidationResult, calibration_bins
from ketapredict.schema import MIN_CELL
from ketapredict.tracking import METRIC_KEYS, outcome_metrics


def _result(subgroup_levels=("active drug", "comparator")):
    metrics = pd.DataFrame(
        {
            "n": [123],
            "events": [37],
            "active_n": [116],
            "active_events": [36],
            "within_arm_arms": [2],
            **{name: [0.7] for name in METRIC_KEYS},
        },
        index=["OutcomeModel"],
    )
    folds = pd.DataFrame(
        {
            "model": "OutcomeModel",
            "fold": [0, 1, 2],
            "trial": ["a", "b", "c"],
            "within_arm_auc": [0.6, 0.9, np.nan],
            "auc": [0.6, 0.9, np.nan],
            "brier": [0.2, 0.05, 0.23],
            "withheld": [False, True, True],
        }
    )
    subgroups = pd.DataFrame(
        {"model": "OutcomeModel", "variable": "active drug", "level": list(subgroup_levels)}
    )
    return ValidationResult(
        "response", "leave_one_trial_out", metrics, folds, None, subgroups, None
    )


def test_summaries_over_folds_leave_the_withheld_folds_out():
    """With the number of folds, a mean and an SD over all three gave both withheld
    folds' Brier scores back, and a missing AUC told that one trial had one outcome."""
    logged = outcome_metrics(_result())
    assert logged["response/folds/brier_mean"] == pytest.approx(0.2)
    assert np.isnan(logged["response/folds/brier_sd"])  # one fold shown: no SD
    assert logged["response/folds/within_arm_auc_mean"] == pytest.approx(0.6)
    text = " ".join(str(_result()).split())  # as read, whatever the line breaks
    assert "3 folds (2 withheld for privacy, and left out of the fold mean and SD)" in text
    assert "0.600 (n/a)" in text


def test_the_active_drug_counts_go_with_their_subgroup_rows():
    """123 courses with 37 events, 116 and 36 among active-drug patients: the 7 comparator
    courses and their 1 event by one subtraction, though their row was withheld."""
    shown = " ".join(str(_result()).split())
    assert "among active-drug patients (116 courses, 36 events)" in shown
    withheld = " ".join(str(_result(())).split())
    assert "116 courses" not in withheld
    assert "courses and events withheld with their subgroup rows" in withheld


def test_a_validation_whose_every_fold_is_withheld_prints_no_fold_summary():
    """Two trials of 570 and 10 courses: both folds withheld (a KeyError before)."""
    result = _result()
    result.fold_metrics["withheld"] = True
    text = str(result)
    assert "3 folds (3 withheld for privacy" in text
    assert "n/a (n/a)" in text
    assert np.isnan(outcome_metrics(result)["response/folds/brier_mean"])


def test_calibration_bins_that_leave_the_machine_hold_at_least_11_courses():
    """Tied predictions cut at the quantiles gave bins of 33 and 7 courses."""
    p = [0.2] * 33 + [0.5] * 3 + [0.9] * 4
    y = [0] * 30 + [1] * 3 + [0] * 3 + [1] * 4
    assert calibration_bins(y, p, 3)["n"].tolist() == [33, 7]
    joined = calibration_bins(y, p, 3, min_courses=MIN_CELL)
    assert joined["n"].tolist() == [40]
    assert joined["events"].tolist() == [7]
    spread = calibration_bins([0, 1] * 30, np.linspace(0, 1, 60), 5, min_courses=MIN_CELL)
    assert spread["n"].tolist() == [12] * 5  # equal bins are left alone


def test_a_group_of_crossover_courses_must_hold_eleven_patients_not_courses():
    """Training on a crossover study showed 'bipolar, 12 courses': 6 patients (a review)."""
    from ketapredict.evaluate import subgroup_metrics

    patients = np.repeat([f"p{i}" for i in range(40)], 2)  # two periods each
    diagnosis = np.where(np.arange(80) < 12, "bipolar", "MDD")  # 12 courses, 6 patients
    table = pd.DataFrame(
        {
            "patient_id": patients,
            "diagnosis": diagnosis,
            "drug": np.tile(["ketamine", "saline"], 40),
            "route": "iv",
        }
    )
    y = np.tile([1.0, 0.0, 0.0, 1.0], 20)
    rows = subgroup_metrics(table, y, {"oracle": np.full(80, 0.4)})
    assert "bipolar" not in set(rows.loc[rows["variable"] == "diagnosis", "level"])
    # without identifiers a course is a patient: 12 courses are shown
    alone = subgroup_metrics(table.drop(columns="patient_id"), y, {"oracle": np.full(80, 0.4)})
    assert "bipolar" in set(alone.loc[alone["variable"] == "diagnosis", "level"])

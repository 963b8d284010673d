import numpy as np
import pandas as pd
import pytest

from ketapredict import OutcomeModel
from ketapredict.imputation import BaselineImputer

FIELDS = [
    "bmi",
    "episode_months",
    "n_failed_treatments",
    "family_history_aud",
    "prior_suicide_attempt",
    "hamd17_baseline",
    "ssi_baseline",
    "processing_speed_z",
    "working_memory_z",
    "verbal_memory_z",
]


@pytest.fixture(scope="module")
def imputer(cohort):
    return BaselineImputer(FIELDS).fit(cohort)


def test_one_draw_fills_every_missing_value_within_the_contract(cohort, imputer):
    filled = imputer.draw_once(cohort, random_state=0)
    for name in FIELDS:
        recorded = cohort[name].notna()
        assert filled[name].notna().all(), name
        pd.testing.assert_series_equal(
            filled.loc[recorded, name].astype(float), cohort.loc[recorded, name].astype(float)
        )
    assert set(filled["family_history_aud"].astype(int)) <= {0, 1}
    counts = filled["n_failed_treatments"].astype(float)
    assert (counts == counts.round()).all()
    assert (counts >= 0).all()
    assert filled["bmi"].between(10, 80).all()


def test_draws_follow_the_recorded_fields(cohort, imputer):
    # HAMD-17 and MADRS rate the same depression: a missing HAMD-17 is drawn higher for a
    # patient with a higher MADRS, as among patients with both
    filled = imputer.draw_once(cohort, random_state=0)
    missing = cohort["hamd17_baseline"].isna()
    recorded_r = cohort.loc[~missing, ["hamd17_baseline", "madrs_baseline"]].corr().iloc[0, 1]
    drawn_r = np.corrcoef(
        filled.loc[missing, "hamd17_baseline"].astype(float),
        cohort.loc[missing, "madrs_baseline"].astype(float),
    )[0, 1]
    assert recorded_r > 0.3
    assert drawn_r == pytest.approx(recorded_r, abs=0.15)
    # and the draws spread like the recorded values, not at one conditional mean
    assert filled.loc[missing, "hamd17_baseline"].std() > 0.5 * cohort["hamd17_baseline"].std()


def test_a_patients_draws_do_not_depend_on_the_batch(cohort, imputer):
    batch = cohort.head(40)
    lacking = np.flatnonzero(batch["hamd17_baseline"].isna())
    assert len(lacking)
    i = lacking[-1]
    together, owner = imputer.expand(batch)
    alone, alone_owner = imputer.expand(batch.iloc[[i]])
    assert len(alone) == imputer.n_draws
    assert (alone_owner == 0).all()
    np.testing.assert_array_equal(
        together.loc[owner == i, "hamd17_baseline"].to_numpy(dtype=float),
        alone["hamd17_baseline"].to_numpy(dtype=float),
    )
    complete = batch[FIELDS].notna().all(axis=1).to_numpy()
    assert (np.bincount(owner, minlength=len(batch))[complete] == 1).all()


def test_saved_and_read_back_it_draws_the_same(cohort, imputer):
    again = BaselineImputer.from_dict(imputer.to_dict())
    first, _ = imputer.expand(cohort.head(30))
    second, _ = again.expand(cohort.head(30))
    pd.testing.assert_frame_equal(first, second)


def test_a_missing_field_is_integrated_not_read_as_a_trial(cohort):
    model = OutcomeModel("response", random_state=0).fit(cohort)
    assert not any("missing" in name for name in model.feature_names_)
    patients = cohort[cohort["drug"] == "ketamine"].head(30).copy()
    p = {}
    for value in (np.nan, False, True):
        table = patients.copy()
        table["family_history_aud"] = pd.array([value] * len(table), dtype="boolean")
        p[value] = model.predict_proba(table)[:, 1]
    low, high = np.minimum(p[False], p[True]), np.maximum(p[False], p[True])
    # the average over "no" and "yes" lies between them, for every patient
    assert ((p[np.nan] >= low - 1e-9) & (p[np.nan] <= high + 1e-9)).all()


def test_a_field_recorded_once_is_left_out_without_shifting_the_others(cohort):
    table = cohort.copy()
    table["bmi"] = np.nan
    table.loc[table.index[0], "bmi"] = 27.0  # one value: no variance to draw from
    imputer = BaselineImputer(["bmi", "hamd17_baseline"]).fit(table)
    assert imputer.fields_ == ["hamd17_baseline"]
    filled = imputer.draw_once(table, random_state=0)
    hamd = filled["hamd17_baseline"].astype(float)
    assert hamd.notna().all()
    assert hamd.between(0, 52).all()  # HAMD-17 values, not another column's
    assert filled["bmi"].isna().sum() == table["bmi"].isna().sum()

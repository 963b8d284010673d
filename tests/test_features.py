import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from ketapredict import Regimen, ValidationError, load_feature_set, simulate_cohort
from ketapredict.features import FeatureEncoder


@pytest.fixture(scope="module")
def encoded(cohort):
    encoder = load_feature_set("core").fit(cohort)
    return encoder, encoder.transform(cohort)


def test_core_set_covers_the_five_groups(encoded):
    encoder, table = encoded
    groups = set(encoder.feature_map_["group"])
    assert groups == {"severity", "cognition", "diagnosis", "dose_schedule", "demographics"}
    assert list(table.columns) == list(encoder.get_feature_names_out())
    assert all(pd.api.types.is_float_dtype(dtype) for dtype in table.dtypes)


def test_every_feature_maps_back_to_a_clinical_predictor(encoded):
    encoder, table = encoded
    mapping = encoder.feature_map_
    assert set(mapping.index) == set(table.columns)
    assert mapping[["predictor", "label", "group", "group_label"]].notna().all().all()
    assert encoder.predictor_of("diagnosis_bipolar") == "diagnosis"
    assert encoder.predictor_of("cognition_composite") == "baseline cognition"
    assert encoder.predictor_of("madrs_band") == "madrs_baseline"
    assert mapping.loc["cumulative_exposure_mg_per_kg", "group"] == "dose_schedule"
    assert mapping.loc["madrs_baseline", "label"] == "baseline MADRS"


def test_no_outcome_truth_or_identifier_reaches_the_features(encoded):
    encoder, table = encoded
    forbidden = {
        "patient_id",
        "trial_id",
        "arm",
        "response",
        "remission",
        "cognitive_decline",
        "dissociation",
        "p_response",
        "cadss_peak",
    }
    assert not forbidden & set(table.columns)
    assert not forbidden & set(encoder.feature_names_in_)


def test_dose_schedule_features_follow_the_pharmacology(cohort, encoded):
    _, table = encoded
    spray = Regimen(
        drug="esketamine",
        route="intranasal",
        dose=84,
        dose_unit="mg",
        sessions_per_week=2,
        n_sessions=8,
    )
    rows = cohort["arm"] == "esketamine_84mg"
    weights = cohort.loc[rows, "weight_kg"]
    expected = [spray.racemic_iv_equivalent(w) for w in weights]
    np.testing.assert_allclose(table.loc[rows, "racemic_iv_equivalent_mg_per_kg"], expected)
    saline = cohort["drug"] == "saline"
    assert (table.loc[saline, "comparator_saline"] == 1).all()
    assert (table.loc[saline, "racemic_iv_equivalent_mg_per_kg"] == 0).all()
    # sessions by the endpoint: Singh 2016 twice weekly for 4 weeks, assessed on day 15
    # (sessions on days 0, 3.5, 7, 10.5 and 14)
    singh = cohort["arm"] == "ketamine_2_per_week"
    assert (table.loc[singh, "sessions_by_endpoint"] == 5).all()
    assert (table.loc[singh, "days_after_last_session"] == 1).all()


def test_cognition_encoder_leaves_missing_batteries_missing(cohort, encoded):
    _, table = encoded
    untested = cohort["processing_speed_z"].isna()
    assert untested.any()
    assert not any("missing" in name for name in table.columns)
    assert table.loc[untested, "cognition_composite"].isna().all()
    composite = cohort.loc[
        ~untested, ["processing_speed_z", "working_memory_z", "verbal_memory_z"]
    ].mean(axis=1)
    np.testing.assert_allclose(table.loc[~untested, "cognition_composite"], composite)
    np.testing.assert_array_equal(table.loc[~untested, "cognitive_deficit"], composite <= -1)


def test_severity_band_uses_published_cut_offs(tmp_path):
    frame = pd.DataFrame({"madrs_baseline": [5, 7, 19, 20, 34, 35, np.nan]})
    encoder = load_feature_set(
        _write_set(
            tmp_path,
            '[groups.s]\nsteps = [{ encoder = "severity_band", columns = ["madrs_baseline"] }]',
        )
    )
    band = encoder.fit(frame).transform(frame)["madrs_band"]
    np.testing.assert_array_equal(band.to_numpy()[:6], [0, 1, 1, 2, 2, 3])
    assert np.isnan(band.iloc[6])


def test_optional_columns_absent_from_the_table_become_missing_features(cohort):
    slim = cohort.drop(columns=["hamd17_baseline", "ssi_baseline", "bmi", "weight_kg"])
    encoder = load_feature_set("core").fit(slim)
    table = encoder.transform(slim)
    assert table[["hamd17_baseline", "ssi_baseline", "bmi"]].isna().all().all()


def test_required_columns_must_be_present(cohort):
    with pytest.raises(ValidationError, match=re.escape("column 'madrs_baseline' is missing")):
        load_feature_set("core").fit(cohort.drop(columns="madrs_baseline"))


def test_variant_set_extends_core_without_cognition(cohort):
    encoder = load_feature_set("no_cognition").fit(cohort)
    assert "cognition" not in set(encoder.feature_map_["group"])
    assert "processing_speed_z" not in encoder.get_feature_names_out()
    core = load_feature_set("core").fit(cohort)
    assert set(encoder.get_feature_names_out()) < set(core.get_feature_names_out())


_SET = '[groups.g]\nsteps = [{{ encoder = "numeric", columns = ["{column}"] }}]'


@pytest.mark.parametrize(
    ("column", "role"),
    [
        ("response", "outcome"),
        ("p_response", "truth"),
        ("patient_id", "identifier"),
        ("trial_id", "group"),
        ("madrs_d7", "outcome"),
    ],
)
def test_outcome_truth_identifier_or_group_columns_cannot_be_features(tmp_path, column, role):
    path = _write_set(tmp_path, _SET.format(column=column))
    with pytest.raises(
        ValidationError, match=re.escape(f"{column!r} is a {role} column and cannot be a feature")
    ):
        load_feature_set(path)


def test_bad_feature_sets_name_file_and_key(tmp_path):
    path = _write_set(
        tmp_path,
        'colour = "blue"\n[groups.g]\nlabel = "x"\nsteps = [{ encoder = '
        '"magic", columns = ["age"] }, { encoder = "numeric", columns = '
        '["agee"] }]',
    )
    with pytest.raises(ValidationError) as caught:
        load_feature_set(path)
    message = str(caught.value)
    assert f"{path}: unknown key 'colour'" in message
    assert "groups.g.steps[0].encoder='magic' is not one of" in message
    assert "Did you mean 'age'?" in message
    with pytest.raises(ValidationError, match="no feature set named 'nonexistent'; available"):
        load_feature_set("nonexistent")


def test_encoder_is_a_scikit_learn_transformer(cohort):
    encoder = FeatureEncoder("core")
    assert clone(encoder).get_params() == {"feature_set": "core", "assessed_day": None}
    table = encoder.fit_transform(cohort)
    assert isinstance(table, pd.DataFrame)
    assert table.index.equals(cohort.index)
    with pytest.raises(ValidationError, match="needs a patient table"):
        FeatureEncoder().fit(cohort.to_numpy())


def _write_set(tmp_path, text: str) -> str:
    path = tmp_path / "set.toml"
    path.write_text(text)
    return str(path)


def test_every_file_a_user_names_refuses_a_pipe_before_opening_it(tmp_path):
    """A feature set, an experiment, an experiment's data source and a validation table
    given as a pipe are refused by name (reading one would wait forever); a feature set at
    a pipe used to be reported as a file that does not exist."""
    import os

    from ketapredict.experiment import load_experiment
    from ketapredict.io import read_patient_table

    for name in ("set.toml", "runs.toml", "table.csv"):
        os.mkfifo(tmp_path / name)
    experiment = tmp_path / "study.toml"
    experiment.write_text('[data]\nsource = "table.csv"\n[outcomes]\nnames = ["response"]\n')
    calls = {
        "feature-set file": lambda: load_feature_set(str(tmp_path / "set.toml")),
        "experiment file": lambda: load_experiment(tmp_path / "runs.toml"),
        "data.source='table.csv'": lambda: load_experiment(experiment),
        "table.csv'": lambda: read_patient_table(tmp_path / "table.csv"),
    }
    for said, call in calls.items():
        with pytest.raises(ValidationError) as caught:
            call()
        text = str(caught.value)
        assert said in text, text
        assert "is not a regular file (a device or a pipe)" in text, text


def test_an_encoder_given_a_column_it_cannot_read_is_refused_when_the_set_is_read(tmp_path):
    """numeric on a category made an all-NaN feature, one_hot on a number failed in
    fitting, and a dose_schedule step listing some regimen fields read the others as their
    defaults (56 mg of esketamine as 56 mg/kg, every course assessed at day 1)."""
    steps = {
        'encoder = "numeric", columns = ["sex", "age"]': "numeric reads float or int or bool "
        "columns; got sex (category)",
        'encoder = "flag", columns = ["diagnosis"]': "flag reads bool columns; got diagnosis",
        'encoder = "one_hot", columns = ["age"]': "one_hot reads category columns; got age",
        'encoder = "cognition", columns = ["age"]': "cognition reads cognitive z-scores",
        'encoder = "dose_schedule", columns = ["drug", "route", "dose"]': "dose_schedule reads "
        "every regimen field; add ['dose_unit', 'infusion_minutes'",
    }
    for i, (step, said) in enumerate(steps.items()):
        path = tmp_path / f"set{i}.toml"
        path.write_text(f"[groups.g]\nsteps = [{{ {step} }}]\n")
        with pytest.raises(ValidationError, match=re.escape(said)):
            load_feature_set(str(path))


def test_extends_takes_a_path_from_the_extending_files_directory(tmp_path, monkeypatch):
    folder = tmp_path / "sets"
    folder.mkdir()
    (folder / "parent.toml").write_text(
        '[groups.a]\nsteps = [{ encoder = "numeric", columns = ["age"] }]\n'
    )
    (folder / "child.toml").write_text(
        'extends = "parent.toml"\n'
        '[groups.b]\nsteps = [{ encoder = "numeric", columns = ["bmi"] }]\n'
    )
    monkeypatch.chdir(tmp_path)  # not the sets' directory
    encoder = load_feature_set("sets/child.toml")
    assert encoder.fit(
        pd.DataFrame({"age": [40.0], "bmi": [25.0]})
    ).get_feature_names_out().tolist() == ["age", "bmi"]


def test_more_readers_refuse_a_pipe_or_a_device_by_name(tmp_path):
    """A key file at /dev/zero filled the memory; a mapping file or an ADaM dataset at a
    pipe was reported as missing."""
    import os

    from ketapredict import ModelFileError, load_model
    from ketapredict.io import load_mapping, read_dataset

    os.mkfifo(tmp_path / "mapping.toml")
    os.mkfifo(tmp_path / "adsl.xpt")
    with pytest.raises(ModelFileError, match=re.escape("is not a regular file")):
        load_model(public_key="/dev/zero")
    for call in (lambda: load_mapping(tmp_path / "mapping.toml"),
                 lambda: read_dataset(tmp_path / "adsl.xpt")):  # fmt: skip
        with pytest.raises(ValidationError, match=re.escape("is not a regular file")):
            call()


def test_numeric_reads_a_yes_no_column_as_one_or_zero(tmp_path):
    path = tmp_path / "set.toml"
    path.write_text(
        '[groups.g]\nsteps = [{ encoder = "numeric", columns = ["anxious_distress"] }]\n'
    )
    table = pd.DataFrame({"anxious_distress": [True, False, None]})
    encoded = load_feature_set(str(path)).fit(table).transform(table)
    assert encoded["anxious_distress"].tolist()[:2] == [1.0, 0.0]
    assert np.isnan(encoded["anxious_distress"].iloc[2])


def test_an_outcome_with_its_own_time_is_encoded_as_of_then(cohort):
    """Dissociation is rated in the first session: its features describe the course as of
    then, whatever day each course was assessed at."""
    from ketapredict.schema import assessment_day

    day = assessment_day("dissociation")
    first = FeatureEncoder("core", assessed_day=day).fit(cohort).transform(cohort)
    assert (first["sessions_by_endpoint"] == 1).all()
    assert (first["course_weeks"] == 0).all()
    np.testing.assert_allclose(first["endpoint_day"], day)
    np.testing.assert_allclose(
        first["cumulative_exposure_mg_per_kg"], first["racemic_iv_equivalent_mg_per_kg"]
    )
    later = cohort.assign(endpoint_day=cohort["endpoint_day"] + 30)
    pd.testing.assert_frame_equal(
        FeatureEncoder("core", assessed_day=day).fit(later).transform(later), first
    )
    assert assessment_day("response") is None
    for bad in (0, -1, "1", float("nan"), True, 10_000):
        with pytest.raises(ValidationError, match="assessed_day"):
            FeatureEncoder("core", assessed_day=bad).fit(cohort)


def test_predictor_of_an_unknown_feature_names_the_features():
    from ketapredict import simulate_cohort

    encoder = load_feature_set("core").fit(simulate_cohort(n=200, seed=0))
    with pytest.raises(ValidationError, match="'madrs' is no encoded feature of this set"):
        encoder.predictor_of("madrs")
    assert encoder.predictor_of("madrs_baseline") == "madrs_baseline"


@pytest.mark.parametrize(("name", "said"), [(None, "must be text or a path; got NoneType"),
                                            ("", "the feature set is empty")])  # fmt: skip
def test_a_feature_set_that_is_no_name_is_refused(name, said):
    """None gave a bare TypeError; "" was the current directory, "a directory"."""
    from ketapredict import ValidationError
    from ketapredict.features import load_feature_set

    with pytest.raises(ValidationError, match=re.escape(said)):
        load_feature_set(name)


def test_a_column_given_twice_or_an_output_not_pandas_is_refused():
    """A repeated column gave pandas' AttributeError ("no attribute 'dtype'")."""
    from ketapredict import simulate_cohort

    table = simulate_cohort(n=200, seed=0)
    encoder = FeatureEncoder().fit(table)
    twice = table.head(3).loc[:, [*table.columns, "age"]]
    with pytest.raises(ValidationError, match="column 'age' appears more than once"):
        encoder.transform(twice)
    with pytest.raises(ValidationError, match="transform must be 'default' or 'pandas'"):
        encoder.set_output(transform="polars")


def test_a_feature_set_a_saved_model_could_not_carry_is_refused_when_read(tmp_path):
    """A 2,500-character description trained and saved, then the model would not load."""
    from ketapredict.encoding import parse_feature_set, spec_from_dict, spec_to_dict

    (tmp_path / "long.toml").write_text(f'extends = "core"\ndescription = "{"x" * 2500}"\n')
    with pytest.raises(ValidationError, match="description is over 2,000 characters"):
        parse_feature_set(tmp_path / "long.toml")
    (tmp_path / "fine.toml").write_text(f'extends = "core"\ndescription = "{"x" * 2000}"\n')
    spec = parse_feature_set(tmp_path / "fine.toml")
    assert spec_from_dict(spec_to_dict(spec)) == spec


def test_a_model_saved_before_the_antidepressant_rule_is_scored_as_it_was_trained():
    """The first session reads no new antidepressant since the rule was saved with the
    feature set; a set saved without it (an older model file) keeps reading the flag, as
    its trees were fitted on it (a diff review)."""
    from ketapredict.encoding import encode, spec_from_dict, spec_to_dict
    from ketapredict.features import FeatureEncoder

    courses = simulate_cohort(n=200, seed=0).assign(new_oral_antidepressant=True)
    fitted = FeatureEncoder("core", assessed_day=40 / 1440).fit(courses).spec_
    saved = spec_to_dict(fitted)
    assert saved["antidepressant_from_day"] == 14.0
    now = encode(spec_from_dict(saved), courses)["new_oral_antidepressant"]
    older = {k: v for k, v in saved.items() if k != "antidepressant_from_day"}
    before = encode(spec_from_dict(older), courses)["new_oral_antidepressant"]
    assert (now == 0).all()
    assert (before == 1).all()

"""External validation and recalibration to a local population."""

import json
import re

import numpy as np
import pandas as pd
import pytest

import ketapredict
from ketapredict import (
    ModelFileError,
    OutcomeModel,
    Population,
    Regimen,
    RiskModel,
    TrialEffect,
    ValidationError,
    fit_risk_model,
    simulate_cohort,
    simulate_trial,
)
from ketapredict.cli import main
from ketapredict.external import auc_interval, evaluate_model
from ketapredict.io import example_study, read_study
from ketapredict.updating import choose_update, fit_line

IV = {"route": "iv", "infusion_minutes": 40}
ARMS = {
    "ketamine": Regimen(drug="ketamine", dose=0.5, **IV),
    "saline": Regimen(drug="saline", dose=0, **IV),
}
# a population unlike the training cohort: milder, less resistant depression, in a trial
# whose patients improve less with or without the drug
LOCAL = Population(diagnosis="MDD", madrs_mean=28)
LOCAL_TRIAL = TrialEffect(nonspecific=-1.5, drug=-1.0)


@pytest.fixture(scope="module")
def model():
    return fit_risk_model(simulate_cohort(n=3000, seed=0), outcomes=["response"], replicates=5)


def _local(n_per_arm, seed):
    return simulate_trial(
        LOCAL, ARMS, n_per_arm=n_per_arm, seed=seed, visit_days=(1,), trial_effect=LOCAL_TRIAL
    )


def test_recalibration_brings_a_new_population_into_calibration_in_the_large(model, tmp_path):
    local, held_out = _local(2500, seed=11), _local(5000, seed=12)
    observed = held_out["response"].mean()
    before = model.predict_proba(held_out)["response"].mean()
    assert abs(before - observed) > 0.1  # the new population's rate differs
    updated = model.recalibrate(local)
    after = updated.predict_proba(held_out)["response"].mean()
    assert abs(after - observed) < 0.02, (observed, before, after)
    record = updated.provenance["recalibration"]
    assert record["outcomes"]["response"]["method"] in ("intercept", "intercept_slope")
    assert len(record["data_sha256"]) == 16
    assert record["n_patients"] == len(local)
    assert "patient_id" not in json.dumps(record)
    # the original model is unchanged
    assert model.predict_proba(held_out)["response"].mean() == before
    # it saves and loads like any model, without pickle, to the same predictions
    updated.save(tmp_path / "local")
    loaded = RiskModel.load(tmp_path / "local")
    pd.testing.assert_frame_equal(
        loaded.predict_interval(held_out.head(50)), updated.predict_interval(held_out.head(50))
    )
    assert loaded.provenance["recalibration"] == json.loads(json.dumps(record))
    # its external validation says which model it judges
    assert evaluate_model(loaded, held_out.head(300)).model.endswith(
        f"(simulated training data, recalibrated {record['date']})"
    )
    assert evaluate_model(model, held_out.head(300)).model.endswith("(simulated training data)")


def test_recalibrated_intervals_hold_the_estimate_and_widen_with_the_update_error(model):
    small = _local(30, seed=13)
    updated = model.recalibrate(small, "intercept")
    patients = _local(20, seed=14)
    before = model.predict_interval(patients)
    after = updated.predict_interval(patients)
    assert ((after["low"] <= after["probability"]) & (after["probability"] <= after["high"])).all()
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    width_before = logit(before["high"]) - logit(before["low"])
    width_after = logit(after["high"]) - logit(after["low"])
    assert (width_after > width_before + 1e-9).all()


def test_recalibrating_twice_composes_the_updates(model):
    first = model.recalibrate(_local(1000, seed=15), "intercept_slope")
    second = first.recalibrate(_local(1000, seed=16), "intercept_slope")
    update = second._outcomes["response"].update
    assert update["method"] == "intercept_slope"
    patients = _local(10, seed=17)
    # one update on the original log-odds does both
    p0 = model.predict_proba(patients)["response"].to_numpy()
    log_odds = np.clip(
        update["intercept"] + update["slope"] * (np.log(p0) - np.log1p(-p0)), -9.21, 9.21
    )
    np.testing.assert_allclose(
        second.predict_proba(patients)["response"], 1 / (1 + np.exp(-log_odds)), rtol=1e-9
    )


def test_the_closed_test_keeps_a_calibrated_model_and_updates_a_shifted_one():
    rng = np.random.default_rng(5)
    log_odds = rng.normal(-0.5, 1.0, size=300)
    calibrated = rng.random(300) < 1 / (1 + np.exp(-log_odds))
    assert choose_update(calibrated, log_odds)["method"] == "none"
    shifted = rng.random(300) < 1 / (1 + np.exp(-(log_odds + 1.2)))
    assert choose_update(shifted, log_odds)["method"] == "intercept"
    flat = rng.random(300) < 1 / (1 + np.exp(-(0.2 * log_odds)))  # predictions too extreme
    assert choose_update(flat, log_odds)["method"] == "intercept_slope"


def test_a_separating_outcome_is_never_fitted():
    log_odds = np.linspace(-2, 2, 20)
    y = log_odds > 0  # perfect separation: the slope runs off to infinity
    assert not fit_line(y, log_odds).converged
    update = choose_update(y, log_odds, "intercept_slope")
    assert update["method"] == "intercept"
    assert np.isfinite(update["intercept"])


def test_a_reversed_slope_is_never_applied_and_the_update_says_why():
    """Outcomes running against the predictions: a negative slope would turn the drug's
    benefit into harm; recalibration keeps the slope at 1 and says the model needs
    refitting."""
    rng = np.random.default_rng(7)
    log_odds = rng.normal(-0.3, 1.2, size=600)
    reversed_ = rng.random(600) < 1 / (1 + np.exp(1.5 * log_odds))
    for method in ("closed_test", "intercept_slope"):
        update = choose_update(reversed_, log_odds, method)
        assert update["method"] in ("none", "intercept"), method
        assert update["slope"] == 1.0
        assert "the wrong way round, which recalibration cannot repair" in update["note"]
    separated = choose_update(log_odds > 0, log_odds, "intercept_slope")
    assert "could not be estimated" in separated["note"]
    calibrated = rng.random(600) < 1 / (1 + np.exp(-log_odds))
    assert choose_update(calibrated, log_odds)["note"] is None


def test_a_reversed_slope_is_said_in_the_record_the_card_and_the_command(model, tmp_path, capsys):
    local = _local(300, seed=23)
    reversed_ = local.assign(response=~local["response"].astype(bool))  # ranks the wrong way
    updated = model.recalibrate(reversed_, "intercept_slope")
    record = updated.provenance["recalibration"]["outcomes"]["response"]
    assert record["slope"] == 1.0
    assert "the wrong way round" in record["note"]
    assert "Note: the fitted calibration slope is -" in updated.model_card()
    path = tmp_path / "reversed.csv"
    reversed_.to_csv(path, index=False)
    assert main(["recalibrate", "demo", str(path), "--out", str(tmp_path / "model")]) == 0
    assert "note: the fitted calibration slope is -" in capsys.readouterr().out


def test_the_recalibrate_command_updates_the_outcomes_named(tmp_path, capsys):
    path = tmp_path / "local.csv"
    _local(100, seed=29).to_csv(path, index=False)
    out = tmp_path / "model"
    assert (
        main(["recalibrate", "demo", str(path), "--out", str(out), "--outcomes", "response"]) == 0
    )
    record = RiskModel.load(out).provenance["recalibration"]
    assert list(record["outcomes"]) == ["response"]
    assert "  response: " in capsys.readouterr().out
    code = main(
        ["recalibrate", "demo", str(path), "--out", str(tmp_path / "x"), "--outcomes", "x"]
    )
    assert code == 2
    assert "'x' is not an outcome of this model" in capsys.readouterr().err


def test_recalibration_leaves_an_outcome_with_one_class_as_it_was(model):
    two = fit_risk_model(
        simulate_cohort(n=1500, seed=3), ["response", "dissociation"], replicates=0
    )
    patients = _local(30, seed=19).assign(dissociation=False)  # 2 arms: 60 courses
    updated = two.recalibrate(patients)
    record = updated.provenance["recalibration"]
    assert list(record["outcomes"]) == ["response"]
    assert record["skipped"] == {
        "dissociation": "kept as it was: 0 events in 60 courses, no evidence for an update"
    }
    assert "- `dissociation`: kept as it was: 0 events in 60 courses" in updated.model_card()
    # a column that is there but empty is said too, never skipped in silence
    blank = patients.assign(dissociation=None)
    assert two.recalibrate(blank).provenance["recalibration"]["skipped"] == {
        "dissociation": "kept as it was: its column holds no value"
    }
    assert "dissociation: its column holds no value, so it is not evaluated" in (
        evaluate_model(two, blank).warnings
    )
    with pytest.raises(ValidationError, match="only one class"):
        two.recalibrate(patients, outcomes=["response", "dissociation"])
    for alpha in (float("nan"), 2, 0, "0.05"):
        with pytest.raises(ValueError, match="is not a level between 0 and 1"):
            model.recalibrate(patients, alpha=alpha)


def test_recalibration_refuses_data_without_outcomes_or_with_one_class(model):
    patients = _local(20, seed=18)
    with pytest.raises(ValidationError, match="record none of the outcomes"):
        model.recalibrate(patients.drop(columns=["response"]))
    with pytest.raises(ValidationError, match=r"only one class"):
        model.recalibrate(patients.assign(response=True))
    with pytest.raises(ValueError, match="method='platt'"):
        model.recalibrate(patients, "platt")


def test_a_table_pasted_into_itself_is_refused_by_recalibration_and_validation(model):
    """Twenty copies of 40 courses counted as 800 (the closed test then chose an update
    from p < 0.001 that the 40 could not show); the command line refused such a file, Python
    did not (a review)."""
    patients = _local(20, seed=18)
    pasted = pd.concat([patients] * 20)
    for attempt in (lambda: model.recalibrate(pasted), lambda: evaluate_model(model, pasted)):
        with pytest.raises(ValidationError, match="repeats an earlier row exactly"):
            attempt()
    # two patients alike but not the same patient are two courses
    twins = pd.concat([patients, patients.assign(patient_id=patients["patient_id"] + "-b")])
    assert model.recalibrate(twins).outcomes == model.outcomes


def test_a_tampered_recalibration_is_refused(model, tmp_path):
    updated = model.recalibrate(_local(500, seed=19), "intercept")
    updated.save(tmp_path / "m")
    path = tmp_path / "m" / "response.json"
    state = json.loads(path.read_text())
    state["recalibration"]["intercept"] = float("nan")
    path.write_text(json.dumps(state))
    with pytest.raises(ModelFileError):
        RiskModel.load(tmp_path / "m")


@pytest.mark.parametrize(("events", "non_events"), [(3, 22), (10, 15), (40, 60)])
def test_the_auc_interval_stays_in_range_and_narrows_with_more_patients(events, non_events):
    for auc in (0.0, 0.3, 0.5, 0.8, 1.0):
        low, high = auc_interval(auc, events, non_events)
        assert 0.0 <= low <= auc <= high <= 1.0
    wide = np.subtract(*auc_interval(0.7, events, non_events)[::-1])
    narrow = np.subtract(*auc_interval(0.7, events * 4, non_events * 4)[::-1])
    assert narrow < wide


def test_the_auc_interval_covers_about_95_percent():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(400):
        y = np.r_[np.ones(10), np.zeros(15)].astype(int)
        score = rng.normal(size=25) + 1.0 * y  # true AUC: P(N(1, 2) > 0) = 0.760
        p = 1 / (1 + np.exp(-score))
        from ketapredict.external import _auc

        low, high = auc_interval(_auc(y, p), 10, 15)
        covered += low <= 0.7602 <= high
    assert 0.90 <= covered / 400 <= 0.99


def test_external_validation_reports_each_arm_with_small_sample_warnings():
    study = read_study(example_study("bids") / "mapping.toml")
    result = evaluate_model(ketapredict.load_model(), study, source="example")
    table = result.table.set_index(["outcome", "group"])
    assert table.loc[("response", "ketamine"), "n"] == 25
    ketamine = study[study["arm"] == "ketamine"]
    assert table.loc[("response", "ketamine"), "observed"] == ketamine["response"].mean()
    assert table.loc[("response", "all"), "events"] == study["response"].sum()
    assert (table["brier"].between(0, 1)).all()
    assert (table["auc_low"].dropna() <= table["auc"].dropna()).all()
    text = " ".join(str(result).split())  # as read, whatever the line breaks
    assert "precise external validation needs at least 100 of each" in text
    assert "Not for clinical decisions" in text
    assert "response  (assessed at day 7 in ketamine, saline)" in str(result)
    assert set(result.metrics) >= {"response/ketamine/auc", "response/all/brier"}
    # named as the cross-validated metrics are (tracking.METRIC_KEYS)
    assert "response/all/calibration_intercept" in result.metrics
    assert not any(key.endswith("/intercept") for key in result.metrics)
    assert "sub-01" not in text


def test_the_report_keeps_its_columns_apart_whatever_the_widths():
    """A wide interval (a slope of -14.13 on 25 courses) ran into the next column."""
    study = read_study(example_study("bids") / "mapping.toml")
    result = evaluate_model(ketapredict.load_model(), study)
    wide = {"slope": -14.13, "slope_low": -36.69, "slope_high": 8.43, "group": "g" * 80}
    for column, value in wide.items():
        result.table.loc[result.table.index[0], column] = value
    lines = [line for line in str(result).splitlines() if line.startswith("  ")]
    header = next(line for line in lines if line.lstrip().startswith("group"))
    for line in lines[lines.index(header) : lines.index(header) + 4]:
        cells = [cell for cell in line.strip().split("  ") if cell]
        assert len(cells) == 9, line
    assert "-14.13 [-36.69, 8.43]  " in str(result)
    assert "g" * 61 not in str(result)  # a group name is cut at 60 characters


def test_external_validation_keeps_arms_of_different_trials_and_their_metric_keys_apart():
    """An arm is a trial's; arm names that are the pooled rows' names, or that make the same
    MLflow key, stay apart; a course without its assessment day is refused, not predicted
    for a day of the model's choosing."""
    model, cohort = ketapredict.load_model(), simulate_cohort(n=3000, seed=4)
    two = cohort[cohort["trial_id"].isin(["zarate2006", "berman2000"])]
    result = evaluate_model(model, two, outcomes="response")
    assert set(result.table["group"]) == {
        "berman2000 / ketamine",
        "berman2000 / saline",
        "zarate2006 / ketamine",
        "zarate2006 / saline",
        "active drug",
        "all",
    }
    one = cohort[cohort["trial_id"] == "zarate2006"].reset_index(drop=True)
    one = one[one["drug"] == "ketamine"].reset_index(drop=True)  # "active drug" pools them
    names = ("all", "ket/iv", "ket_iv", "x" * 300, "active_drug")
    one["arm"] = [names[i % 5] for i in range(len(one))]
    result = evaluate_model(model, one, outcomes=["response"])
    assert list(result.table["group"]) == [
        "active_drug",
        "arm all",
        "ket/iv",
        "ket_iv",
        "x" * 300,
        "active drug",
        "all",
    ]
    observed = {k.split("/")[1]: v for k, v in result.metrics.items() if k.endswith("/observed")}
    assert set(observed) == {
        "active_drug",  # the pooled row's key, reserved before any arm's
        "active_drug_2",
        "arm_all",
        "all",
        "ket_iv",
        "ket_iv_2",
        "x" * 100,
    }
    assert observed["all"] == observed["active_drug"] == one["response"].mean()
    with pytest.raises(ValidationError, match=r"endpoint_day .* is missing for 3 of \d+ courses"):
        evaluate_model(model, one.assign(endpoint_day=one["endpoint_day"].mask(one.index < 3)))
    with pytest.raises(ValidationError, match=r"endpoint_day .* is missing"):
        model.recalibrate(one.drop(columns=["endpoint_day"]))


def test_evaluate_command_prints_the_report_and_logs_a_linked_run(tmp_path, monkeypatch, capsys):
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mapping = example_study("adam") / "mapping.toml"
    assert main(["evaluate", "demo", str(mapping)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("External validation of ketapredict demo model")
    assert "Warnings:" in out
    run_id = re.search(r"Logged MLflow run (\w+)", out).group(1)
    store = tmp_path.resolve() / "mlruns" / "mlflow.db"
    # the store named as train names it: its absolute path, not the relative default
    assert f"(experiment external-validation) to sqlite:///{store}." in " ".join(out.split())
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    run = mlflow.get_run(run_id)
    model = ketapredict.load_model()
    assert run.data.tags["model_source"] == "demo"
    assert run.data.tags["model_sha256"] == model.content_sha256
    assert run.data.metrics["response/all/observed"] == pytest.approx(0.3)
    assert "patient_id" not in json.dumps(run.data.params)


def test_first_session_dissociation_needs_no_assessment_day():
    """Dissociation is rated in the first session: courses that record only it are
    evaluated without an endpoint_day, and said to be assessed at the first session."""
    courses = simulate_cohort(n=1500, seed=5).drop(
        columns=["response", "remission", "cognitive_decline", "endpoint_day"]
    )
    result = evaluate_model(ketapredict.load_model(), courses)
    assert set(result.table["outcome"]) == {"dissociation"}
    assert "(assessed at the first session in " in str(result)
    with pytest.raises(ValidationError, match="endpoint_day"):
        evaluate_model(
            ketapredict.load_model(), simulate_cohort(n=400, seed=5).drop(columns="endpoint_day")
        )


def test_a_bad_cell_of_a_table_file_is_named_by_its_row_and_line(tmp_path):
    from ketapredict.io import read_patient_table

    table = simulate_cohort(n=12, seed=0).drop(columns="patient_id")
    table.loc[5, "age"] = 300
    table.to_csv(tmp_path / "t.csv", index=False)
    table.to_parquet(tmp_path / "t.parquet")
    for name, where in (("t.csv", "row 6 (line 7): age=300.0"), ("t.parquet", "row 6: age=300.0")):
        with pytest.raises(ValidationError, match=re.escape(where)):
            read_patient_table(tmp_path / name)
    table.loc[5, "age"] = 30
    table.to_csv(tmp_path / "t.csv", index=False)
    assert read_patient_table(tmp_path / "t.csv").index.equals(pd.RangeIndex(12))


def test_evaluate_command_names_a_bad_data_file(tmp_path, capsys):
    (tmp_path / "table.xlsx").write_text("x")
    assert main(["evaluate", "demo", str(tmp_path / "table.xlsx"), "--no-track"]) == 2
    err = capsys.readouterr().err
    assert "expected a mapping file (.toml) or a patient table" in err


def test_recalibrate_command_saves_an_updated_model(tmp_path, capsys):
    out = tmp_path / "local"
    mapping = example_study("bids") / "mapping.toml"
    assert (
        main(["recalibrate", "demo", str(mapping), "--out", str(out), "--method", "intercept"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "response: intercept updated" in printed
    assert "observed 30.0%" in printed
    loaded = RiskModel.load(out)
    assert loaded.provenance["recalibration"]["method"] == "intercept"
    study = read_study(mapping)
    predicted = loaded.predict_proba(study)["response"].mean()
    assert predicted == pytest.approx(study["response"].mean(), abs=1e-6)


def test_a_declined_second_update_keeps_the_first_and_its_record():
    study = read_study(example_study("bids") / "mapping.toml")
    demo = ketapredict.load_model()
    first = demo.recalibrate(study, "intercept_slope", outcomes=["response"])
    second = first.recalibrate(study, outcomes=["response"])  # nothing left to correct
    assert second.provenance["recalibration"]["outcomes"]["response"]["method"] != "none"
    pd.testing.assert_frame_equal(
        second.predict_interval(study.head(3)), first.predict_interval(study.head(3))
    )
    third = first.recalibrate(study, "intercept", outcomes=["remission"])
    record = third.provenance["recalibration"]
    assert set(record["outcomes"]) == {"response", "remission"}
    assert record["earlier"][0]["outcomes"]["response"]["method"] == "intercept_slope"


def test_an_outcome_with_one_class_is_still_evaluated():
    study = read_study(example_study("bids") / "mapping.toml").assign(remission=False)
    table = evaluate_model(ketapredict.load_model(), study).table.set_index(["outcome", "group"])
    assert table.loc[("remission", "all"), "events"] == 0
    assert np.isnan(table.loc[("remission", "all"), "auc"])
    assert table.loc[("response", "all"), "auc"] > 0


def test_an_empty_table_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    assert main(["evaluate", "demo", str(tmp_path / "empty.csv"), "--no-track"]) == 2
    assert "empty.csv cannot be read as csv" in capsys.readouterr().err


def test_rows_of_fewer_than_eleven_courses_are_withheld():
    """A row of one patient told their outcome (and an evaluation of one patient, logged to
    MLflow, too): such rows are withheld, said, and a table too small for any is refused."""
    from ketapredict.io import example_study
    from ketapredict.schema import MIN_CELL

    study = ketapredict.read_study(example_study("bids") / "mapping.toml")
    study["arm"] = study["arm"].astype(object)
    study.loc[study.index[:10], "arm"] = None  # two groups of 5 courses without an arm
    result = evaluate_model(ketapredict.load_model(), study)
    # a crossover patient gives two courses: a row must hold 22 courses to hold 11 patients
    assert (result.table["n"] >= 2 * MIN_CELL).all()
    assert not any(g.startswith("(no arm)") for g in result.table["group"])
    assert any(
        "not shown (fewer than 11 patients (22 courses, as a patient gives up to 2)" in w
        for w in result.warnings
    )
    assert not any("(no arm)" in key for key in result.metrics)
    with pytest.raises(ValidationError, match="needs at least 11 courses"):
        evaluate_model(ketapredict.load_model(), study.head(4))


def test_subgroups_of_fewer_than_eleven_courses_are_left_out():
    from ketapredict.evaluate import subgroup_metrics
    from ketapredict.schema import MIN_CELL

    cohort = simulate_cohort(n=400, seed=2)
    cohort["age"] = cohort["age"].clip(upper=60.0)
    cohort.loc[cohort.index[:3], "age"] = 90.0  # the only patients aged 65 or over
    y = cohort["response"].astype(float).to_numpy()
    rows = subgroup_metrics(cohort, y, {"oracle": cohort["p_response"].to_numpy()})
    assert (rows["n"] >= MIN_CELL).all()
    assert ">=65" not in set(rows.loc[rows["variable"] == "age band", "level"])
    # nor can the 3 be worked out as the total less the age bands shown
    for variable, shown in rows.groupby("variable")["n"]:
        hidden = len(cohort) - shown.sum()
        assert hidden == 0 or hidden >= MIN_CELL, (variable, hidden)


def test_a_small_arm_is_not_given_away_by_the_rows_pooling_it():
    """Complementary suppression: an arm of 5 courses withheld while its trial, its drug and
    its sibling arm were shown could be worked out by subtraction."""
    from ketapredict.evaluate import subgroup_metrics
    from ketapredict.schema import MIN_CELL

    cohort = simulate_cohort(n=600, seed=3).drop(columns="patient_id")  # a course a patient
    arm = cohort["trial_id"].astype(str) + "/" + cohort["arm"].astype(str)
    small = arm.value_counts().index[-1]
    keep = arm != small
    keep[np.flatnonzero(~keep)[:5]] = True  # an arm of 5 courses
    cohort = cohort[keep.to_numpy()].reset_index(drop=True)
    y = cohort["response"].astype(float).to_numpy()
    rows = subgroup_metrics(cohort, y, {"oracle": cohort["p_response"].to_numpy()})
    shown = rows.set_index(["variable", "level"])["n"]
    arms = shown.loc["arm"]
    assert small not in arms.index
    # every row of a variable the arm decides, less the arms shown within it, is 0 or >= 11
    from ketapredict.evaluate import arm_labels

    labels = pd.Series(arm_labels(cohort))
    for variable, column in (("trial", "trial_id"), ("drug", "drug"), ("route", "route")):
        for level, n in shown.loc[variable].items():
            inside = labels[(cohort[column].astype(str) == level).to_numpy()]
            rest = n - sum(arms.get(a, 0) for a in inside.unique())
            assert rest == 0 or rest >= MIN_CELL, (variable, level, rest)
    assert len(cohort) - arms.sum() == 0 or len(cohort) - arms.sum() >= MIN_CELL


def test_a_small_group_is_not_a_row_less_another_variables_row():
    """Four bipolar courses in a trial of depression: "bipolar" less the bipolar trial
    told their outcomes."""
    from ketapredict.evaluate import subgroup_metrics

    cohort = simulate_cohort(n=2000, seed=0)
    fava = cohort.index[cohort["trial_id"] == "fava2020"][:4]
    cohort.loc[fava, "diagnosis"] = "bipolar"
    y = cohort["response"].astype(float).to_numpy()
    rows = subgroup_metrics(cohort, y, {"oracle": cohort["p_response"].to_numpy()})
    shown = rows.set_index(["variable", "level"])["n"]
    bipolar = shown.get(("diagnosis", "bipolar"))
    trial = shown.get(("trial", "diazgranados2010"))
    assert bipolar is None or trial is None or not 0 < bipolar - trial < 11


def test_a_small_trials_fold_is_not_logged():
    """Under leave-one-trial-out a fold is a trial: the fold table showed the trial that the
    subgroups withheld."""
    from ketapredict.evaluate import cross_validate
    from ketapredict.tracking import fold_table

    cohort = simulate_cohort(n=1500, seed=4)
    trials = ["zarate2006", "berman2000", "lara2013", "fava2020"]
    cohort = cohort[cohort["trial_id"].isin(trials)]
    lara = cohort.index[cohort["trial_id"] == "lara2013"]
    cohort = cohort.drop(lara[8:]).reset_index(drop=True)
    result = cross_validate(
        OutcomeModel("response", n_estimators=20), cohort, scheme="leave_one_trial_out",
        n_bootstraps=0, peers=False, n_jobs=1,
    )  # fmt: skip
    logged = fold_table(result)
    assert "lara2013" not in set(logged["held_out_trial"])
    assert "withheld" not in logged.columns
    assert "lara2013" not in set(result.subgroups["level"])
    # the other trials' folds together are not the total less lara's 8
    assert (len(cohort) - logged.groupby("fold")["n"].first().sum()) >= 11


def test_the_comparators_of_a_mixed_arm_are_not_all_less_active():
    """An arm that mixes drugs: "all" less "active drug" was its 5 midazolam courses."""
    from ketapredict.io import example_study

    study = ketapredict.read_study(example_study("bids") / "mapping.toml")
    ketamine = study[study["arm"] == "ketamine"]
    mixed = pd.concat([ketamine, ketamine.head(20), study[study["arm"] == "saline"].head(5)])
    mixed = mixed.reset_index(drop=True)
    mixed["arm"] = mixed["arm"].astype(object)
    mixed.loc[len(ketamine) :, "arm"] = "mixed"
    mixed.loc[: len(ketamine) // 2, "arm"] = "A"
    result = evaluate_model(ketapredict.load_model(), mixed)
    table = result.table[result.table["outcome"] == "response"].set_index("group")["n"]
    assert "active drug" not in table.index  # "all" less it: the 5 midazolam courses
    assert any("active drug not shown either" in w for w in result.warnings)


def test_an_outcome_too_small_to_show_says_no_counts():
    from ketapredict.io import example_study

    study = ketapredict.read_study(example_study("bids") / "mapping.toml")
    study["response"] = study["response"].astype(object)
    study.loc[study.index[5:], "response"] = None
    result = evaluate_model(ketapredict.load_model(), study, outcomes=["remission", "response"])
    assert not any(w.startswith("response:") and "events" in w for w in result.warnings)


def test_an_arm_withheld_is_not_the_total_less_the_others():
    """With one arm of 3 courses withheld, the "all" row less the other arm told their
    outcomes: the other arm is withheld too, and said."""
    from ketapredict.io import example_study

    study = ketapredict.read_study(example_study("bids") / "mapping.toml")
    ketamine = study[study["arm"] == "ketamine"]
    some = pd.concat([ketamine, study[study["arm"] == "saline"].iloc[:3]])
    result = evaluate_model(ketapredict.load_model(), some)
    assert set(result.table["group"]) == {"all"}
    assert any("saline not shown (fewer than 11" in w for w in result.warnings)
    assert any("ketamine not shown either" in w for w in result.warnings)


def test_courses_without_an_arm_are_grouped_by_their_schedule():
    from ketapredict.io import example_study

    study = ketapredict.read_study(example_study("bids") / "mapping.toml")
    study = study.drop(columns="patient_id")  # a course a patient: rows of 11 are shown
    study["arm"] = study["arm"].astype(object)
    study.loc[study.index[:24], "arm"] = None
    groups = evaluate_model(ketapredict.load_model(), study).table
    groups = groups[groups["outcome"] == "response"].set_index("group")["n"]
    assert groups["(no arm) ketamine 0.5 mg/kg IV over 40 min"] + groups["ketamine"] == 25
    assert "(no arm)" not in groups.index  # never one group of every schedule


def test_evaluate_model_refuses_what_is_no_model():
    study = read_study(example_study("bids") / "mapping.toml")
    with pytest.raises(ValidationError, match=re.escape("model must be a RiskModel")):
        evaluate_model("demo", study)


def test_courses_outside_the_training_data_are_never_counted_as_a_few():
    """A row's count of courses beyond the training data named 1 to 10 of them, outright,
    as the row's size less it (81 of 86), or across outcomes (a row of 83 for remission)."""
    study = read_study(example_study("bids") / "mapping.toml")
    model = ketapredict.load_model()
    assert "outside" not in evaluate_model(model, study).table.columns
    # a crossover: two courses a patient, so 11 patients are 22 courses (a diff review)
    cases = ((24, "24 of 50 courses"), (14, "fewer than 22 of 50"), (45, "all but fewer"))
    for aged, said in cases:
        changed = study.copy()
        changed.loc[changed.index[:aged], "age"] = 85.0  # beyond the training range
        result = evaluate_model(model, changed)
        warning = next(w for w in result.warnings if "outside the training distribution" in w)
        assert warning.startswith(said), warning
        # the reason is named when it holds for 11 patients or more, never with its count
        assert ("chiefly age beyond its training range" in warning) is (aged >= 22), warning


def test_a_table_file_that_gives_a_course_twice_is_refused(tmp_path):
    """A table pasted into itself trained on 313 courses without a word (a review); two
    unidentified rows alike may be two patients, and are kept."""
    from ketapredict.io import read_patient_table

    courses = simulate_cohort(n=50, seed=0)
    doubled = pd.concat([courses, courses.iloc[[3]]], ignore_index=True)
    doubled.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValidationError, match=r"row 51 \(line 52\): repeats an earlier row"):
        read_patient_table(tmp_path / "t.csv")
    doubled.assign(patient_id=None).to_csv(tmp_path / "u.csv", index=False)
    assert len(read_patient_table(tmp_path / "u.csv")) == 51

import copy
import html
import itertools
import json
import math
import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketapredict import (
    Regimen,
    ValidationError,
    fit_risk_model,
    load_model,
    regimen_grid,
    simulate_cohort,
)
from ketapredict.schema import column, columns, example_course

COURSE = Regimen(
    drug="ketamine",
    route="iv",
    dose=0.5,
    infusion_minutes=40,
    sessions_per_week=2,
    n_sessions=8,
)
PATIENT = {k: v for k, v in example_course().items() if k in columns("baseline")}


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_the_demo_model_says_what_it_is(model):
    assert model.outcomes == ["response", "remission", "cognitive_decline", "dissociation"]
    assert model.provenance["data_kind"] == "simulated"
    assert "Not for clinical decisions" in model.provenance["notes"]
    text = str(model.score(PATIENT, COURSE))
    assert "virtual cohort" in text
    assert "Not for clinical decisions" in text


def test_a_blank_schedule_field_in_a_record_is_refused_not_read_as_its_default(model):
    """A blank n_sessions read as one session moved response from 69% to 54% unsaid; a
    table refuses it, and so does a record (a field left out still takes its default)."""
    record = {**PATIENT, **COURSE.to_dict()}
    with pytest.raises(ValidationError, match="n_sessions is missing") as caught:
        model.score({**record, "n_sessions": None}, horizon_day=28)
    assert [p.column for p in caught.value.problems] == ["n_sessions"]
    left_out = {k: v for k, v in record.items() if k != "n_sessions"}
    assert model.score(left_out, horizon_day=28).regimen == str(
        Regimen(**{**COURSE.to_dict(), "n_sessions": 1})
    )


def test_a_table_of_patients_is_refused_with_every_bad_row_named(model):
    """By position where the labels could identify patients (as every table entry point
    names rows); an argument's problem once, not once a row; a site's columns left out."""
    rows = [PATIENT, {**PATIENT, "age": 200}, {**PATIENT, "madrs_baseline": 99}]
    with pytest.raises(ValidationError) as caught:
        model.score(pd.DataFrame(rows), COURSE, horizon_day=1)
    assert [(p.row, p.column) for p in caught.value.problems] == [
        (1, "age"),
        (2, "madrs_baseline"),
    ]
    assert str(caught.value).startswith("2 problems in the patient table:\n  row 1: age=200")
    for index in (["MRN-123456", "MRN-2", "MRN-3"], pd.Index([7, 8, 9], name="patient_id")):
        with pytest.raises(ValidationError) as caught:
            model.score(pd.DataFrame(rows, index=index), COURSE, horizon_day=1)
        assert "MRN" not in str(caught.value)
        assert "rows by position" in str(caught.value)
        assert [p.row for p in caught.value.problems] == [1, 2]
    with pytest.raises(ValidationError) as caught:
        model.score(pd.DataFrame([PATIENT] * 5), COURSE, horizon_day=0)
    assert len(caught.value.problems) == 1
    assert caught.value.what == "horizon"
    with pytest.raises(ValidationError) as caught:
        model.score(pd.DataFrame([PATIENT] * 3), COURSE, horizon_day=1, drivers="x")
    assert len(caught.value.problems) == 1
    assert caught.value.what == "arguments"
    site = pd.DataFrame([{**PATIENT, "site": "Leeds"}] * 2)
    assert len(model.score(site, COURSE, horizon_day=1)) == 2
    # a comparison reads a one-row table as score does
    assert len(model.compare_regimens(site.head(1), [COURSE], horizon_day=1).table) == 1
    without = site.head(1).drop(columns="weight_kg").assign(weight=80)
    with pytest.raises(ValidationError, match="did you mean 'weight_kg'"):
        model.compare_regimens(without, [COURSE], horizon_day=1)


def test_an_error_is_headed_by_what_was_wrong(model):
    with pytest.raises(ValidationError, match=r"^1 problem in the horizon:"):
        model.score(PATIENT, COURSE, horizon_day=-1)
    with pytest.raises(ValidationError, match=r"^2 problems in the patient and regimen:"):
        model.score({**PATIENT, "age": 300}, {**COURSE.to_dict(), "dosee": 1})
    # a record that carries its own regimen: "the patient and patient's ..." read badly
    own = {**PATIENT, **COURSE.to_dict(), "age": 300, "dose": -1}
    with pytest.raises(ValidationError, match=r"^2 problems in the patient and its regimen "):
        model.score(own, horizon_day=1)
    with pytest.raises(ValidationError, match=r"^1 problem in the patient's regimen fields:"):
        model.score({**own, "age": 40}, horizon_day=1)


@pytest.mark.parametrize("source", ["", "  ", 123, b"demo"])
def test_load_model_refuses_what_names_no_model(source):
    """Empty text was the current directory; a number or bytes a TypeError."""
    from ketapredict import ModelFileError

    with pytest.raises(ModelFileError, match=r"no model given|a model is named by"):
        load_model(source)


def test_a_dose_below_any_studied_is_warned_as_a_likely_unit_mix_up(model):
    """0.5 mg of ketamine IV (for 0.5 mg/kg) scored as a plan, without a word."""
    patient = {**PATIENT, "weight_kg": 80}

    def warned(**regimen):
        report = model.score(patient, Regimen(**regimen), horizon_day=1)
        return any("check the dose and its unit" in w for w in report.warnings)

    assert warned(drug="ketamine", route="iv", dose=0.5, dose_unit="mg", infusion_minutes=40)
    assert warned(drug="ketamine", route="iv", dose=1e-300, infusion_minutes=40)
    assert not warned(drug="ketamine", route="sublingual", dose=10, dose_unit="mg")  # Lara 2013
    patient["weight_kg"] = 170  # Lara's fixed dose is Lara's dose for a heavier patient too
    assert not warned(drug="ketamine", route="sublingual", dose=10, dose_unit="mg")
    patient["weight_kg"] = 80
    assert not warned(drug="ketamine", route="iv", dose=0.1, infusion_minutes=40)
    assert not warned(drug="saline", route="iv", dose=0, infusion_minutes=40)


def test_a_horizon_that_replaces_the_records_own_day_says_so(model):
    record = {**PATIENT, **COURSE.to_dict(), "endpoint_day": 7}
    replaced = "the record's own endpoint_day was replaced by the horizon given"
    assert replaced in model.score(record, horizon_day=28).warnings
    assert replaced not in model.score(record, horizon_day=7).warnings
    assert model.score(record).horizon_day == 7
    # with a regimen and a horizon, the day is the horizon's, the schedule the regimen's
    both = model.score(record, COURSE, horizon_day=28).warnings
    assert replaced in both
    assert any("(drug, route, dose," in w and "the regimen given" in w for w in both)
    assert not any("endpoint_day" in w and "the regimen given" in w for w in both)
    alone = model.score(record, COURSE).warnings
    assert any("endpoint_day was replaced by the regimen's end point" in w for w in alone)
    same = {**record, "endpoint_day": COURSE.endpoint_day}  # nothing replaced
    assert not any("endpoint_day" in w for w in model.score(same, COURSE).warnings)
    # a record's own day that is no day is the patient's fault, not a horizon's
    with pytest.raises(ValidationError, match=r"^1 problem in the patient:"):
        model.score({**record, "endpoint_day": 0})


def test_without_drivers_no_reference_risk_is_made_up(model):
    """It was the patient's own probability, under the name of the reference risk."""
    bare = model.score(PATIENT, COURSE, horizon_day=28, drivers=False)
    assert all(r.reference is None and r.drivers == () for r in bare.risks.values())
    assert json.loads(json.dumps(bare.to_dict()))["risks"]["response"]["reference"] is None
    assert "reference risk" not in str(bare)
    full = model.score(PATIENT, COURSE, horizon_day=28)
    assert full["response"].reference != full["response"].probability


def test_a_report_annotated_by_its_reader_leaves_the_model_as_it_was(model):
    report = model.score(PATIENT, COURSE, horizon_day=28)
    nested = next(k for k, v in report.provenance.items() if isinstance(v, dict))
    report.provenance[nested]["added by a reader"] = 1
    report.provenance["notes"] = "redacted"
    assert "added by a reader" not in model.provenance[nested]
    assert "Not for clinical decisions" in model.provenance["notes"]
    assert "added by a reader" not in json.dumps(model.score(PATIENT, COURSE).to_dict())


def test_a_report_has_every_outcome_with_interval_band_and_drivers(model):
    report = model.score(PATIENT, COURSE)
    assert list(report.risks) == model.outcomes
    for risk in report.risks.values():
        assert 0 < risk.low <= risk.probability <= risk.high < 1
        assert risk.band in ("low", "moderate", "high")
        assert len(risk.drivers) == 5
        points = [abs(d.points) for d in risk.drivers]
        assert points == sorted(points, reverse=True)
    assert report.missing == []
    assert report.regimen == str(COURSE)


def test_drivers_add_up_to_the_distance_from_the_average_patient(model):
    from ketapredict.clinic import _drivers, _prepare

    report = model.score(PATIENT, COURSE)
    for outcome, risk in report.risks.items():
        # every predictor (not only the top 5) together: exactly p - average, in points
        arrays, values, *_ = _prepare(model, PATIENT, COURSE)
        x = model._encoded(arrays)[outcome][0]
        state = model._outcomes[outcome]
        every, none, average = _drivers(
            model, state, x[None, :], x, values, n=1000, everything=True
        )
        assert none is None
        assert sum(e.points for e in every) == pytest.approx(
            100 * (risk.probability - average), abs=0.05
        )
        # the patient's own, with the schedule and horizon in one figure: the same total
        own, schedule, _ = _drivers(model, state, x[None, :], x, values, n=1000)
        assert sum(e.points for e in own) + schedule == pytest.approx(
            100 * (risk.probability - average), abs=0.05
        )
        assert average == pytest.approx(risk.reference)
        assert own[:5] == risk.drivers
        assert schedule == risk.schedule_points


def test_drivers_speak_clinical_words(model):
    report = model.score(PATIENT, COURSE)
    labels = {d.predictor: d for r in report.risks.values() for d in r.drivers}
    assert labels, "no drivers"
    for driver in labels.values():
        assert "_" not in driver.label, driver.label
    if "madrs_baseline" in labels:
        assert labels["madrs_baseline"].value.startswith("34")


def test_a_report_serialises_and_renders(model):
    report = model.score({**PATIENT, "patient_id": "SECRET-123"}, COURSE)
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data["risks"]) == set(model.outcomes)
    html = report._repr_html_()
    assert html.startswith("<div")
    assert html.endswith("</div>")
    assert "<table" in html
    # an identifier never reaches a report
    for text in (json.dumps(data), str(report), html):
        assert "SECRET-123" not in text


def test_missing_optional_fields_are_allowed_and_listed(model):
    sparse = {"age": 50, "sex": "male", "diagnosis": "MDD", "madrs_baseline": 30}
    report = model.score(sparse, COURSE)
    for risk in report.risks.values():
        assert 0 < risk.probability < 1
        assert not math.isnan(risk.probability)
    assert "processing speed (z)" in report.missing or any(
        "processing" in m for m in report.missing
    )
    assert any("HAM-D" in m or "hamd" in m.lower() for m in report.missing)


def test_patients_outside_the_training_data_are_warned_about(model):
    usual = model.score(PATIENT, COURSE)
    assert usual.warnings == []
    odd = model.score(
        {**PATIENT, "madrs_baseline": 60, "age": 89, "bmi": 55},
        Regimen(drug="ketamine", route="iv", dose=3.0, infusion_minutes=5),
    )
    text = " ".join(odd.warnings)
    assert "outside the training range" in text
    assert "unusual" in text


def test_missing_values_are_not_unusual_and_never_a_driver(model):
    sparse = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    report = model.score(sparse, COURSE, drivers="all")
    assert not any("unusual" in w for w in report.warnings)
    for risk in report.risks.values():
        assert risk.drivers
        assert all(d.value != "missing" for d in risk.drivers)
    assert "Not recorded (integrated over" in str(report)


# The README's clinician example (README.md, "For clinicians: one call").
README_PATIENT = {
    "age": 46,
    "sex": "female",
    "diagnosis": "TRD",
    "madrs_baseline": 34,
    "n_failed_treatments": 3,
    "processing_speed_z": -0.9,
}


def test_the_readme_example_barely_moves_when_omitted_fields_are_filled(model):
    omitted = model.score(README_PATIENT, COURSE, horizon_day=28)
    assert omitted.horizon == "day 28 after the first session (as given)"
    for risk in omitted.risks.values():
        assert all(d.value != "missing" for d in risk.drivers)
    # typical values of continuous fields: within 5 points
    typical = model.score(
        {**README_PATIENT, "bmi": 27, "hamd17_baseline": 24}, COURSE, horizon_day=28
    )
    for outcome in model.outcomes:
        moved = abs(typical[outcome].probability - omitted[outcome].probability)
        assert moved < 0.05, (outcome, moved)
    # a yes/no field is integrated over both answers: the estimate lies between them
    no, yes = (
        model.score({**README_PATIENT, "family_history_aud": value}, COURSE, horizon_day=28)
        for value in (False, True)
    )
    for outcome in model.outcomes:
        low, high = sorted((no[outcome].probability, yes[outcome].probability))
        assert low - 1e-9 <= omitted[outcome].probability <= high + 1e-9


def test_joint_distance_uses_only_the_values_given():
    from ketapredict.risk import joint_distance

    covariance = np.array([[1.0, 0.9], [0.9, 1.0]])
    both = joint_distance(np.array([[2.0, -2.0]]), covariance)[0]
    one = joint_distance(np.array([[2.0, np.nan]]), covariance)[0]
    assert one == pytest.approx(2.0)
    assert both > 8  # opposite signs of two correlated features: unusual
    rows = joint_distance(np.array([[2.0, -2.0], [2.0, np.nan], [np.nan, np.nan]]), covariance)
    np.testing.assert_allclose(rows, [both, one, 0.0])


@pytest.mark.parametrize(
    ("patient", "regimen", "fields"),
    [
        ({**PATIENT, "madrs_baseline": 75}, COURSE, ["madrs_baseline"]),
        ({**PATIENT, "sex": "unknown", "age": -3}, COURSE, ["sex", "age"]),
        ({**PATIENT, "madrs_basline": 30}, COURSE, ["madrs_basline"]),
        (PATIENT, None, ["drug"]),
        (PATIENT, {"drug": "ketamine", "route": "iv", "dose": 0.5, "colour": 1}, ["colour"]),
        (
            PATIENT,
            {"drug": "ketamine", "route": "oral", "dose": 0.5, "infusion_minutes": 40},
            ["infusion_minutes"],
        ),
        ("not a patient", COURSE, [None]),
    ],
)
def test_bad_input_names_the_field_and_value(model, patient, regimen, fields):
    with pytest.raises(ValidationError) as error:
        model.score(patient, regimen)
    named = [p.column for p in error.value.problems]
    for field in fields:
        assert field in named
    assert str(error.value)


def test_a_table_gives_one_report_per_row_and_its_own_regimens(model):
    cohort = simulate_cohort(n=300, seed=5).head(4)
    reports = model.score(cohort)
    assert len(reports) == 4
    assert reports[0].regimen == str(Regimen.from_record(cohort.iloc[0]))
    # a regimen given replaces the rows' own, and the report says so
    replaced = model.score(cohort.iloc[0], COURSE)
    assert replaced.regimen == str(COURSE)
    assert any("replaced by the regimen given" in w for w in replaced.warnings)


def test_compare_regimens_takes_named_single_and_no_regimens(model):
    comparison = model.compare_regimens(PATIENT)
    assert len(comparison) == len(regimen_grid())
    for outcome in ("response", "cognitive_decline"):
        assert (comparison[f"{outcome}_low"] <= comparison[outcome]).all()
        assert (comparison[outcome] <= comparison[f"{outcome}_high"]).all()
    named = model.compare_regimens(
        PATIENT, {"usual": COURSE, "weekly": {**COURSE.to_dict(), "sessions_per_week": 1}}
    )
    assert set(named["regimen"]) == {"usual", "weekly"}
    assert len(model.compare_regimens(PATIENT, COURSE)) == 1
    assert len(model.compare_regimens(PATIENT, COURSE.to_dict())) == 1
    with pytest.raises(ValidationError, match="at least one regimen"):
        model.compare_regimens(PATIENT, [])


@pytest.mark.parametrize(
    "regimens",
    [
        itertools.repeat(COURSE),  # without end: refused, not run forever
        [COURSE] * 1_001,
        pd.DataFrame([COURSE.to_dict()] * 1_001),
        {f"s{i}": COURSE for i in range(1_001)},
    ],
    ids=["endless", "list", "table", "mapping"],
)
def test_a_comparison_of_more_than_a_thousand_schedules_is_refused(model, regimens):
    """Each schedule takes about 10 ms and the dominance check compares every pair."""
    with pytest.raises(ValidationError, match="at most 1,000 schedules"):
        model.compare_regimens(PATIENT, regimens, horizon_day=28)


@pytest.mark.parametrize("name", ["a\x1b[2J\nresponse 99%", "x\u2028y", "n" * 101, " "])
def test_a_schedule_name_that_would_not_print_on_one_line_is_refused(model, name):
    """A name with a terminal escape and a line break forged a line of the table."""
    with pytest.raises(ValidationError, match="text on one line, not empty, of at most 100"):
        model.compare_regimens(PATIENT, {name: COURSE}, horizon_day=28)


@pytest.mark.parametrize("horizon_day", [None, 28])
def test_a_comparison_names_every_bad_schedule_and_the_patients_problems(model, horizon_day):
    """One error lists everything wrong, each schedule's problems under its number or
    name, the patient's beside them, whether or not a horizon was given."""
    course = COURSE.to_dict()
    schedules = [course, course, {**course, "dose": -1}, {**course, "n_sessions": 0}]
    with pytest.raises(ValidationError) as error:
        model.compare_regimens(PATIENT, schedules, horizon_day=horizon_day)
    assert [str(p) for p in error.value.problems] == [
        "schedule 3: dose=-1 is outside 0-1000 (mg/kg or mg, per dose_unit)",
        "schedule 4: n_sessions=0 is not a whole number in 1-104 (count)",
    ]
    with pytest.raises(ValidationError) as error:
        model.compare_regimens({**PATIENT, "age": "x"}, {"a": course, "b": {**course, "dose": -1}})
    found = [str(p) for p in error.value.problems]
    assert found[0].startswith("age='x' is not a number")
    assert found[-1].startswith("schedule 'b': dose=-1")
    assert error.value.what == "comparison"
    with pytest.raises(ValidationError) as error:  # a bad horizon too, not after the rest
        model.compare_regimens(PATIENT, [{**course, "dose": "x"}], horizon_day="x")
    assert [p.column for p in error.value.problems] == ["horizon_day", "dose"]


def test_a_schedule_of_none_is_the_patients_own(model):
    own = {**PATIENT, **COURSE.to_dict()}
    spray = Regimen(drug="esketamine", route="intranasal", dose=56, dose_unit="mg")
    comparison = model.compare_regimens(own, [None, spray], horizon_day=28)
    assert sorted(comparison["regimen"]) == sorted([str(COURSE), str(spray)])


def test_a_report_states_its_horizon(model):
    stated = model.score(PATIENT, COURSE, horizon_day=28)
    assert stated.horizon_day == 28
    assert "Horizon: day 28 after the first session (as given)" in str(stated)
    assert "day 28" in stated._repr_html_()
    assert stated.to_dict()["horizon_day"] == 28
    default = model.score(PATIENT, COURSE)
    assert default.horizon_day == pytest.approx(COURSE.endpoint_day)
    assert "24 h after the last session; give a horizon day to choose another" in default.horizon
    early = model.score(PATIENT, COURSE, horizon_day=2)
    assert early["response"].probability != stated["response"].probability
    for bad in (-3, "soon", 10**400, float("nan"), True):
        with pytest.raises(ValidationError, match="horizon_day"):
            model.score(PATIENT, COURSE, horizon_day=bad)


def test_first_session_dissociation_does_not_move_with_the_horizon_or_the_course(model):
    """Dissociation is rated in the first session: neither the day asked about nor the
    sessions that follow can change it (the other outcomes do move)."""
    weekly = Regimen(**{**COURSE.to_dict(), "sessions_per_week": 1, "n_sessions": 4})
    seen = {
        (day, str(course)): model.score(PATIENT, course, horizon_day=day)
        for day in (1, 7, 28, 90)
        for course in (COURSE, weekly)
    }
    first = {(r["dissociation"].probability, r["dissociation"].unrecorded) for r in seen.values()}
    assert len(first) == 1
    assert len({r["response"].probability for r in seen.values()}) > 4
    # in a batch too, where a missing weight is drawn and the schedule re-encoded with it
    course = {**PATIENT, **COURSE.to_dict(), "weight_kg": 80}
    table = pd.DataFrame(
        [{**course, "endpoint_day": day, "weight_kg": w} for day in (1, 28) for w in (80, None)]
    )
    batch = model.predict_proba(table)["dissociation"].to_numpy()
    np.testing.assert_allclose(batch[[0, 2]], batch[0])  # weighed: day 1 and day 28
    np.testing.assert_allclose(batch[[1, 3]], batch[1])  # weight drawn
    assert batch[0] == pytest.approx(
        model.score(course, horizon_day=28)["dissociation"].probability
    )


def test_a_records_own_assessment_day_is_its_horizon(model):
    record = {**PATIENT, **COURSE.to_dict(), "endpoint_day": 14.0}
    assert (
        model.score(record).horizon == "day 14 after the first session (the record's "
        "assessment day)"
    )
    assert model.score(record, horizon_day=3).horizon_day == 3


def test_drivers_are_the_patients_reasons_unless_all_are_asked(model):
    from ketapredict.encoding import feature_map

    report = model.score(PATIENT, COURSE, horizon_day=28)
    everything = model.score(PATIENT, COURSE, horizon_day=28, drivers="all")
    for outcome, risk in report.risks.items():
        fmap = feature_map(model._outcomes[outcome].spec)
        schedule = set(fmap.loc[fmap["encoder"] == "dose_schedule", "predictor"])
        assert schedule, "the feature set has a dose schedule"
        assert not {d.predictor for d in risk.drivers} & schedule
        assert risk.schedule_points is not None
        chosen = "the regimen" + (" and the horizon" if outcome != "dissociation" else "")
        line = f"{risk.schedule_points:+6.1f} pp  {chosen} (chosen"
        assert line in str(report)
        html = report._repr_html_()
        points = f"{risk.schedule_points:+.1f}".replace("-", "\u2212")
        assert re.search(
            rf"{chosen} \(chosen, not the patient&#x27;s\)</td><td[^>]*>"
            rf"{re.escape(points)}</td>",
            html,
        ), outcome
        assert everything[outcome].schedule_points is None
    listed = {d.predictor for r in everything.risks.values() for d in r.drivers}
    assert listed & {"cumulative exposure", "dose", "assessment timing", "sessions given"}
    with pytest.raises(ValidationError, match="drivers"):
        model.score(PATIENT, COURSE, drivers="some")


def test_the_regimen_is_told_apart_by_its_encoder_not_its_group_name(tmp_path):
    """A user's feature set may call the dose-schedule group anything."""
    from importlib import resources

    text = (resources.files("ketapredict.feature_sets") / "core.toml").read_text("utf-8")
    renamed = tmp_path / "renamed.toml"
    renamed.write_text(text.replace("[groups.dose_schedule]", "[groups.treatment]"))
    cohort = simulate_cohort(n=1500, seed=3)
    model = fit_risk_model(
        cohort, ["response"], features=str(renamed), replicates=0, n_estimators=60
    )
    report = model.score(PATIENT, COURSE, horizon_day=28)
    predictors = {d.predictor for d in report["response"].drivers}
    assert not predictors & {"dose", "cumulative exposure", "assessment timing", "route"}
    assert report["response"].schedule_points != 0


def test_compare_regimens_assesses_every_schedule_on_one_day(model):
    single = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
    assert single.endpoint_day == 1 < COURSE.endpoint_day
    both = {"single": single, "course": COURSE}
    table = model.compare_regimens(PATIENT, both)
    assert (table["horizon_day"] == COURSE.endpoint_day).all()
    assert table.horizon_day == COURSE.endpoint_day
    assert table.horizon.startswith(f"day {COURSE.endpoint_day:.1f}".removesuffix(".0"))
    assert "longest schedule" in table.horizon
    single_row = table.table.set_index("regimen").loc["single"]
    alone = model.score(PATIENT, single, horizon_day=COURSE.endpoint_day, drivers=False)
    assert single_row["response"] == pytest.approx(alone["response"].probability)
    assert single_row["response"] != model.score(PATIENT, single)["response"].probability
    at_7 = model.compare_regimens(PATIENT, both, horizon_day=7)
    assert (at_7["horizon_day"] == 7).all()
    assert at_7.horizon == "day 7 after the first session (as given)"
    assert "all judged at day 7 after the first session (as given)" in str(at_7)


def test_the_clinician_path_imports_no_heavy_library():
    code = (
        "import sys\n"
        "import ketapredict as kp\n"
        "model = kp.load_model()\n"
        "course = kp.Regimen(drug='esketamine', route='intranasal', dose=84, dose_unit='mg',\n"
        "                    sessions_per_week=2, n_sessions=8)\n"
        f"report = model.score({PATIENT!r}, course)\n"
        "table = model.compare_regimens(\n"
        "    {'age': 40, 'sex': 'male', 'diagnosis': 'MDD', 'madrs_baseline': 30}\n"
        ")\n"
        "print(table)\n"
        "heavy = ('mlflow', 'shap', 'xgboost', 'sklearn', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "dose schedules for one patient, all judged at day" in out.stdout


# -- thousands of generated patients: a report or a ValidationError, never NaN -----------------
def _field_values(name):
    spec = column(name)
    wrong = st.sampled_from([None, "", "abc", -1e9, 1e9, float("nan"), True, [1]])
    if spec.kind == "category":
        right = st.sampled_from(list(spec.categories) + [c.upper() for c in spec.categories])
    elif spec.kind == "bool":
        right = st.booleans()
    elif spec.kind in ("float", "int"):
        right = st.floats(spec.low, spec.high, allow_nan=False)
        if spec.kind == "int":
            right = st.integers(int(spec.low), int(spec.high))
    else:
        right = st.text(max_size=5)
    return st.one_of(right, right, right, wrong)


PATIENTS = st.fixed_dictionaries(
    {},
    optional={name: _field_values(name) for name in columns("baseline")},
)
REGIMENS = st.fixed_dictionaries(
    {
        "drug": st.sampled_from(["ketamine", "esketamine", "saline", "placebo", "midazolam"]),
        "route": st.sampled_from(["iv", "intranasal", "im", "oral"]),
        "dose": st.one_of(st.floats(0, 2), st.floats(0, 120), st.just(-1.0)),
        "dose_unit": st.sampled_from(["mg/kg", "mg"]),
    },
    optional={
        "infusion_minutes": st.floats(1, 120),
        "sessions_per_week": st.sampled_from([1, 2, 3]),
        "n_sessions": st.integers(1, 12),
    },
)


# plausible patients here; hostile values and containers are fuzzed in tests/test_fuzz.py
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patient=PATIENTS, regimen=REGIMENS)
def test_any_patient_gets_a_sound_report_or_a_validation_error(model, patient, regimen):
    try:
        report = model.score(patient, regimen, drivers=False)
    except ValidationError as error:
        problems = error.problems
        assert problems, "a ValidationError names its problems"
        return
    for risk in report.risks.values():
        values = np.array([risk.probability, risk.low, risk.high])
        assert np.isfinite(values).all()
        assert ((values > 0) & (values < 1)).all()
        assert risk.low <= risk.probability <= risk.high
    assert isinstance(pd.Series(report.to_dict()), pd.Series)


def test_a_partly_recorded_battery_is_not_a_driver(model):
    # verbal memory alone: the composite rests on two imputed domains
    patient = {**README_PATIENT, "processing_speed_z": None, "verbal_memory_z": -0.4}
    report = model.score(patient, COURSE, horizon_day=28, drivers="all")
    for risk in report.risks.values():
        assert all("cognition" not in d.predictor for d in risk.drivers), risk.drivers


# -- what the clinician sees: reports and comparisons ------------------------------------------
ODD = {**PATIENT, "madrs_baseline": 60, "age": 89, "bmi": 55}
ODD_COURSE = Regimen(drug="ketamine", route="iv", dose=3.0, infusion_minutes=5)


class _Sections(HTMLParser):
    """List items, by the ``data-outcome`` of the innermost section around them; and the
    band badges' styles and words, by outcome section."""

    def __init__(self):
        super().__init__()
        self.stack, self.items, self.badges = [], {}, {}
        self._text = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.stack.append(attrs.get("data-outcome"))
        elif tag == "li" or (tag == "span" and "kp-band" in (attrs.get("class") or "")):
            self._text = [tag, attrs.get("style"), ""]

    def handle_endtag(self, tag):
        if tag == "section":
            self.stack.pop()
        elif self._text is not None and tag == self._text[0]:
            where = self.stack[-1] if self.stack else None
            if tag == "li":
                self.items.setdefault(where, []).append(self._text[2])
            else:
                self.badges.setdefault(where, (self._text[1], self._text[2]))
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text[2] += data


def _sections(html):
    parser = _Sections()
    parser.feed(html)
    assert parser.stack == [], "every section is closed"
    return parser


def test_the_html_report_lists_each_warning_under_its_outcome(model):
    for report in (
        model.score(ODD, ODD_COURSE),
        model.score(README_PATIENT, COURSE, horizon_day=28),
    ):
        parsed = _sections(report._repr_html_())
        assert parsed.items.get("all", []) == report.warnings
        for outcome, risk in report.risks.items():
            assert parsed.items.get(outcome, []) == list(risk.warnings), outcome
        assert not set(parsed.items) - {"all", *report.risks}
    # both kinds are there, so the test could fail: the odd patient's inputs are outside the
    # training data (every outcome); its response interval spans the bands (one outcome)
    odd = model.score(ODD, ODD_COURSE)
    assert any("outside the training range" in w for w in odd.warnings)
    assert any("from the low band into the high band" in w for w in odd["response"].warnings)
    assert not any("band" in w for w in odd.warnings)
    assert odd.all_warnings[: len(odd.warnings)] == odd.warnings
    assert "response: its 90% interval reaches from the low band" in " ".join(odd.all_warnings)
    # the text report puts them in the same places (as read: whatever the line breaks)
    text = " ".join(str(odd).split())
    general = text.index("Warnings (every outcome")
    assert all(text.index(w) > general for w in odd.warnings)
    own = text.index("Warnings for response:")
    assert text.index(odd["response"].warnings[0], own) > own
    assert max(len(line) for line in str(odd).splitlines()) <= 100


def test_a_course_beyond_the_training_data_does_not_concern_the_first_sessions_dissociation(
    model,
):
    """Dissociation is assessed in the first session: the course by the horizon being
    beyond the training data is said of the other outcomes only, and by name."""
    long = Regimen(
        drug="ketamine",
        route="iv",
        dose=1.0,
        infusion_minutes=40,
        sessions_per_week=3,
        n_sessions=12,
    )
    report = model.score({**PATIENT, "weight_kg": None}, long, horizon_day=28)
    others = "response, remission, cognitive decline: "
    beyond = [w for w in report.warnings if "outside the training range" in w]
    assert any("sessions given by the assessment = 12" in w for w in beyond)
    assert all(w.startswith(others) for w in beyond)
    # the joint distance weighs the patient's own values too: it concerns every outcome
    assert any(w.startswith("this combination of values is unusual") for w in report.warnings)
    # what concerns every outcome is not prefixed: a fixed dose converted at a reference weight
    fixed = model.score(
        {**PATIENT, "weight_kg": None},
        Regimen(drug="ketamine", route="im", dose=35, dose_unit="mg"),
        horizon_day=1,
    )
    assert any(w.startswith("the dose in mg was converted") for w in fixed.warnings)
    text = str(report)
    assert "Warnings (every outcome unless named):" in text
    assert "Warnings (every outcome):" in str(fixed)
    # the first session of the long course is the first session of a single one
    single = Regimen(drug="ketamine", route="iv", dose=1.0, infusion_minutes=40)
    first = model.score({**PATIENT, "weight_kg": None}, single, horizon_day=1)
    assert report["dissociation"].probability == pytest.approx(first["dissociation"].probability)


def test_fields_not_recorded_that_could_change_a_band_are_a_warning(model):
    from ketapredict.clinic import _UNRECORDED_RANGES, MISSING_SPREAD, _band

    sparse = model.score(README_PATIENT, COURSE, horizon_day=28)
    warned = [o for o, r in sparse.risks.items() if any("not recorded" in w for w in r.warnings)]
    assert warned, "ten fields missing move at least one outcome across a band"
    for outcome, risk in sparse.risks.items():
        low, high = risk.unrecorded
        assert 0 < low <= risk.probability <= high < 1
        crosses = _band(outcome, low) != _band(outcome, high) and high - low >= MISSING_SPREAD
        assert crosses == (outcome in warned), outcome
    # the ranges are in the report beside the fields not recorded
    ranges = str(sparse).split(f"{_UNRECORDED_RANGES}: ")[1]
    response = sparse["response"].unrecorded
    assert f"response {response[0]:.0%} to {response[1]:.0%}" in ranges
    complete = model.score(PATIENT, COURSE, horizon_day=28)
    assert complete.missing == []
    assert all(r.unrecorded is None for r in complete.risks.values())
    assert not any("not recorded" in w for w in complete.all_warnings)
    assert _UNRECORDED_RANGES not in str(complete)
    assert not any("not recorded" in w for w in sparse.warnings)  # each outcome's own


def test_a_band_agrees_with_the_percentage_printed():
    """29.6% prints as 30%, which must not read as "low" (below 30%)."""
    from ketapredict.clinic import _band, _percent

    assert (_percent(0.2962), _band("remission", 0.2962)) == ("30%", "moderate")
    assert (_percent(0.5965), _band("remission", 0.5965)) == ("60%", "high")
    assert (_percent(0.0496), _band("dissociation", 0.0496)) == ("5.0%", "moderate")
    assert (_percent(0.0494), _band("dissociation", 0.0494)) == ("4.9%", "low")


def test_the_band_colour_says_whether_a_high_risk_is_good_or_bad():
    from ketapredict.clinic import DriverEffect, OutcomeRisk, RiskReport

    def risk(outcome, p):
        age = DriverEffect("age", "age", "46 years", 2.0)
        return OutcomeRisk(outcome, p, p - 0.05, p + 0.05, "high", 0.3, drivers=(age,))

    report = RiskReport(
        regimen="a schedule",
        risks={
            "response": risk("response", 0.8),
            "cognitive_decline": risk("cognitive_decline", 0.3),
        },
        provenance={"data_kind": "simulated"},
    )
    assert report["response"].reading == "favourable"
    assert report["cognitive_decline"].reading == "unfavourable"
    badges = _sections(report._repr_html_()).badges
    (good_style, good_words), (bad_style, bad_words) = (
        badges["response"],
        badges["cognitive_decline"],
    )
    assert good_style != bad_style, "the same colour for a good and a bad high band"
    # said in words too, not only by colour
    assert good_words == "high: favourable"
    assert bad_words == "high: unfavourable"
    assert "high: favourable" in str(report)
    assert "high: unfavourable" in str(report)
    assert report.to_dict()["risks"]["cognitive_decline"]["reading"] == "unfavourable"
    # where the bands fall is said for the report's own outcomes only
    legend = " ".join(str(report).split())
    assert (
        "response low below 30%, high from 60%, a high chance favourable; cognitive "
        "decline low below 5%, high from 20%, a high risk unfavourable." in legend
    )
    assert "remission" not in legend
    assert "dissociation" not in legend
    assert "cognitive decline low below 5%" in report._repr_html_()
    with pytest.raises(KeyError, match="no outcome 'respons'; it has response, cognitive_dec"):
        report["respons"]
    # a model of simulated data says it is not for clinical decisions even without notes
    assert "Not for clinical decisions" in report._repr_html_()
    assert "Not for clinical decisions" in str(report)


def test_a_model_of_simulated_data_keeps_its_notice_whatever_its_notes_say(model):
    noted = copy.copy(model)
    noted.provenance = {**model.provenance, "notes": "Retrained at site A."}
    report = str(noted.score(PATIENT, COURSE, horizon_day=28))
    assert "Not for clinical decisions. Retrained at site A." in report
    assert str(model.score(PATIENT, COURSE, horizon_day=28)).count("Not for clinical") == 1


def test_the_notice_of_the_demo_model_leads_every_output(model):
    report = model.score(PATIENT, COURSE)
    comparison = model.compare_regimens(PATIENT, horizon_day=28)
    for text in (str(report), report._repr_html_(), str(comparison), comparison._repr_html_()):
        notice = text.index("Not for clinical decisions")
        assert notice < text.index("cognitive decline"), "the notice comes before the figures"


# Two schedules of the demo model for PATIENT at day 28: esketamine 84 mg weekly has the better
# point estimates of both response and cognitive decline than 56 mg weekly, but their 90%
# intervals overlap on both; IV ketamine 1 mg/kg three times a week has a cognitive-decline
# interval wholly above 84 mg weekly's.
STRONG = Regimen(drug="esketamine", route="intranasal", dose=84, dose_unit="mg",
                 sessions_per_week=1, n_sessions=4)  # fmt: skip
WEAKER = Regimen(drug="esketamine", route="intranasal", dose=56, dose_unit="mg",
                 sessions_per_week=1, n_sessions=4)  # fmt: skip
HARSH = Regimen(drug="ketamine", route="iv", dose=1.0, infusion_minutes=40,
                sessions_per_week=3, n_sessions=12)  # fmt: skip


def test_dominance_is_not_claimed_within_overlapping_intervals(model):
    both = model.compare_regimens(PATIENT, {"84 mg": STRONG, "56 mg": WEAKER}, horizon_day=28)
    rows = both.table.set_index("regimen")
    strong, weaker = rows.loc["84 mg"], rows.loc["56 mg"]
    # better on both point estimates: the old rule called 56 mg dominated
    assert strong["response"] > weaker["response"]
    assert strong["cognitive_decline"] < weaker["cognitive_decline"]
    # ... but within the uncertainty on both
    assert strong["response_low"] < weaker["response_high"]
    assert strong["cognitive_decline_high"] > weaker["cognitive_decline_low"]
    assert not both.table["dominated"].any()
    assert both.front == ["84 mg", "56 mg"]
    # an interval wholly on the better side, and no worse on the other: dominated
    three = model.compare_regimens(
        PATIENT, {"84 mg": STRONG, "56 mg": WEAKER, "harsh": HARSH}, horizon_day=28
    )
    rows = three.table.set_index("regimen")
    assert rows.loc["harsh", "cognitive_decline_low"] > rows.loc["84 mg", "cognitive_decline_high"]
    assert rows.loc["harsh", "dominated"]
    assert "84 mg" in rows.loc["harsh", "dominated_by"]
    assert three.front == ["84 mg", "56 mg"]
    assert three.table["regimen"].iloc[-1] == "harsh"  # the front first


def test_without_intervals_dominance_needs_two_points():
    from ketapredict.clinic import MIN_DIFFERENCE, _dominance

    assert MIN_DIFFERENCE == 0.02
    table = pd.DataFrame(
        {
            "regimen": ["a", "b", "c"],
            "response": [0.600, 0.597, 0.570],
            "cognitive_decline": [0.050, 0.051, 0.050],
        }
    )
    beaten = _dominance(table, "response", "cognitive_decline")
    # a beats b by 0.3 points only: no; a beats c by 3 points at equal harm: yes
    assert beaten == [[], [], [0]]


def _printed_rows(text):
    """Each printed row's first line, and its schedule as one text: a schedule that does
    not fit continues on the next lines, in its own column. A comparison too wide for one
    table prints a second of the other outcomes: a row's first lines are joined."""
    rows: dict[int, list[str]] = {}
    start = None
    for line in text.splitlines():
        if re.match(r"^ *#  schedule ", line):
            start, number = line.index("schedule"), None
        elif start is None or line[start:] in ("The front:", "Dominated:"):
            continue
        elif re.match(r"^\s*\d+  \S", line):
            number = int(line.split()[0])
            first = rows.get(number, [""])[0]
            rows[number] = [first + line, line[start:].split("  ")[0]]
        elif not line.strip():  # a table ends
            start = None
        elif line[start] != " ":
            rows[number][1] += " " + line[start:].split("  ")[0]
    return [tuple(rows[k]) for k in sorted(rows)]


def test_a_printed_comparison_of_four_outcomes_fits_100_columns_in_two_tables(model):
    """The outcomes dominance is judged on, with the verdicts; then the others; the front
    and the dominated headed apart in both."""
    comparison = model.compare_regimens(PATIENT, horizon_day=28)
    text = str(comparison)
    assert max(len(line) for line in text.splitlines()) <= 100
    first, _, second = text.partition("The other outcomes of the same schedules:")
    assert "remission" not in first.split("\n #  ")[1].splitlines()[0]
    assert re.search(r"^ #  schedule +remission +dissociation$", second, flags=re.M)
    assert first.count("The front:") == second.count("The front:") == 1
    front = (~comparison.table["dominated"]).sum()
    dominated_at = first.index("    Dominated:")
    assert re.search(rf"^ ?{front + 1}  ", first[dominated_at:], flags=re.M)
    assert not re.search(rf"^ ?{front + 1}  ", first[:dominated_at], flags=re.M)


def test_a_printed_comparison_of_named_schedules_fits_and_keeps_each_name_whole(model):
    """A caller's name ("arm 19: ...") stays with its drug, and the notes' columns are
    printed only when some schedule has a note."""
    from ketapredict import RiskModel
    from ketapredict.clinic import regimen_grid

    two = RiskModel(
        {o: model._outcomes[o] for o in ("response", "cognitive_decline")},
        model.provenance,
        reference=model.reference,
    )
    named = {f"arm {i + 1}": r for i, r in enumerate(regimen_grid())}
    text = str(two.compare_regimens(PATIENT, named, horizon_day=28))
    assert max(len(line) for line in text.splitlines()) <= 100
    assert re.search(r"^ ?\d+  arm \d+: (es)?ketamine ", text, flags=re.M)
    single = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
    one = model.compare_regimens(PATIENT, [single], horizon_day=28)
    header = next(line for line in str(one).splitlines() if "#  schedule" in line)
    assert "dominated" not in str(one).split("#  schedule")[0].splitlines()[-1]
    assert "by" not in header.split()
    assert "The other outcomes" not in str(one)


def test_a_printed_comparison_of_two_outcomes_fits_100_columns(model):
    """A schedule wraps in its cell, its drug above its sessions, rather than make a row
    wider than a terminal of 100 columns; the warnings' marks wrap after it."""
    from ketapredict import RiskModel

    two = RiskModel(
        {o: model._outcomes[o] for o in ("response", "cognitive_decline")},
        model.provenance,
        reference=model.reference,
    )
    comparison = two.compare_regimens(ODD, horizon_day=28)
    text = str(comparison)
    assert max(len(line) for line in text.splitlines()) <= 100
    rows = _printed_rows(text)
    assert [schedule for _, schedule in rows] == list(comparison["regimen"])
    assert any(len(schedule) > 60 for _, schedule in rows)  # wrapped, not short
    # the marks of every row, wrapped or not, each name a footnote, and every footnote is used
    marks = re.findall(r"^ {2}([a-z]+)\. ", text, flags=re.M)
    table = text[text.index("\n #  ") + 1 :].split("\n\n")[0].splitlines()
    column = table[0].index("warnings")
    shown = {m for line in table[1:] for m in re.findall(r"[a-z]+", line[column:])}
    assert shown == set(marks)


def test_a_printed_comparison_is_rounded_percent_in_the_stated_order(model):
    comparison = model.compare_regimens(PATIENT, horizon_day=28)
    text = str(comparison)
    assert repr(comparison) == text
    assert "Sorted: the front first (the schedules no other dominates), then by response, " in (
        " ".join(text.split())
    )
    assert "all judged at day 28 after the first session (as given)" in text
    rows = _printed_rows(text)
    assert len(rows) == len(comparison)
    percent = r"(<0\.1|\d\.\d|\d\d|>99)"
    cell = re.compile(rf"{percent}% \[{percent}-{percent}\]")
    for k, ((line, schedule), name) in enumerate(zip(rows, comparison["regimen"], strict=True)):
        assert schedule == name
        assert int(line.split()[0]) == k + 1
        assert len(cell.findall(line)) == len(comparison.outcomes), line
        assert not re.search(r"\d\.\d\d", line), f"more than one decimal: {line}"
    # the stated order: the front first, then response highest first within each part
    table = comparison.table
    assert table["dominated"].is_monotonic_increasing
    for _, part in table.groupby("dominated"):
        assert part["response"].is_monotonic_decreasing
    assert 1 <= (~table["dominated"]).sum() < len(table)
    # the most harmful schedule is not listed first
    assert table["cognitive_decline"].idxmax() != 0


def test_each_warning_of_a_comparison_can_be_read_once(model):
    comparison = model.compare_regimens(ODD, horizon_day=28)
    flat = " ".join(str(comparison).split())
    texts = {w for ws in comparison["warnings"] for w in ws}
    assert texts, "the odd patient has warnings"
    common = [w for w in texts if all(w in ws for ws in comparison["warnings"])]
    assert any("age = 89 years is outside the training range" in w for w in common)
    assert "Warnings for every schedule:" in str(comparison)
    for warning in common:
        assert flat.count(" ".join(warning.split())) == 1, warning
    # the others are footnotes, marked in their rows; warnings that differ only in their
    # numbers (one field out of range at two doses) share one, which gives their range
    html = comparison._repr_html_()
    parsed = _sections(html)
    assert sorted(parsed.items["all"]) == sorted(common)
    footnotes = [re.sub(r"^[a-z]+\. ", "", f) for f in parsed.items.get(None, [])]
    others = [w for w in texts if w not in common]
    assert len(footnotes) < len(others)  # some share one
    for warning in others:
        assert sum(_lists(f, warning) for f in footnotes) == 1, warning
    # the odd patient's three-times-weekly courses exceed the weekly exposure seen in
    # training, each by its own amount: one footnote lists them
    assert any(
        re.search(
            r"weekly exposure \(racemic IV equivalent\) = [\d.]+(, [\d.]+)* or [\d.]+ "
            r"mg/kg per week is outside",
            f,
        )
        for f in footnotes
    )
    frame = comparison.to_frame()
    frame.loc[0, "regimen"] = "changed"
    assert comparison["regimen"].iloc[0] != "changed", "to_frame() is a copy"


_NUM = r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])"


def _lists(note, warning):
    """Whether a footnote is this warning, with its numbers among the values it lists."""
    listed = rf"{_NUM}(?:(?:, | or ){_NUM})*"
    if re.split(listed, note) != re.split(_NUM, warning):
        return False
    values = [[float(v) for v in re.findall(_NUM, found)] for found in re.findall(listed, note)]
    return all(float(n) in v for n, v in zip(re.findall(_NUM, warning), values, strict=True))


@pytest.mark.parametrize(
    ("warnings", "footnotes"),
    [
        (["x = 3.12 is outside 0 to 2.79", "x = 3 is outside 0 to 2.79"],
         ["x = 3 or 3.12 is outside 0 to 2.79"]),
        # values on both sides of a range are listed, never given as a range
        (["days = 0.5 is outside 1 to 8", "days = 25 is outside 1 to 8"],
         ["days = 0.5 or 25 is outside 1 to 8"]),
        (["x = -3.5 is outside -3 to 3", "x = -4 is outside -3 to 3"],
         ["x = -4 or -3.5 is outside -3 to 3"]),
        (["x = 6e+03 is outside 0 to 10", "x = 1.2e+04 is outside 0 to 10"],
         ["x = 6e+03 or 1.2e+04 is outside 0 to 10"]),
        (["HAMD-17 = 50 is above the 99.5th", "HAMD-17 = 52 is above the 99.5th"],
         ["HAMD-17 = 50 or 52 is above the 99.5th"]),
        (["x = 3 is odd", "x = 3.0 is odd"], ["x = 3 is odd"]),
        # two numbers differ: two fields, not one
        (["item 3 = 5 is odd", "item 4 = 7 is odd"], ["item 3 = 5 is odd", "item 4 = 7 is odd"]),
        (["a = 1 b 5", "a = 2 b 5", "a = 3 b 5", "c = 1 d", "a = 1 b 6"],
         ["a = 1, 2 or 3 b 5", "c = 1 d", "a = 1 b 6"]),
    ],
)  # fmt: skip
def test_warnings_differing_in_one_number_share_a_footnote_listing_its_values(warnings, footnotes):
    from ketapredict.clinic import _footnotes, _merged

    assert [_merged(group) for group in _footnotes(warnings)] == footnotes
    for warning in warnings:
        assert sum(_lists(note, warning) for note in footnotes) == 1, warning


def test_a_name_with_dollar_signs_is_drawn_as_text(model):
    course = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
    fig = model.compare_regimens(PATIENT, {"$5 vs $10 plan": course}, horizon_day=1).plot()
    fig.canvas.draw()  # mathematics would render "5vs10 plan"
    (listed,) = [t for t in fig.axes[0].texts if t.get_gid() == "front names"]
    assert "$5 vs $10 plan" in listed.get_text()
    assert not listed.get_parse_math()


def test_a_comparator_driver_names_its_comparator_and_the_active_drug_says_yes_or_no(model):
    saline = Regimen(drug="saline", route="iv", dose=0, infusion_minutes=40)
    report = model.score(PATIENT, saline, horizon_day=1, drivers="all")
    said = {d.label: d.value for risk in report.risks.values() for d in risk.drivers}
    assert said["comparator"] == "saline"
    assert said["active drug (not a comparator)"] == "no"
    assert not any(label.startswith("comparator:") for label in said)


def test_a_default_horizon_beyond_a_year_is_refused_with_what_to_do(model):
    weekly = {"drug": "ketamine", "route": "iv", "dose": 0.5, "infusion_minutes": 40,
              "sessions_per_week": 1}  # fmt: skip
    long = Regimen(**weekly, n_sessions=104)  # its end point: day 722
    expected = "its last session) is day 722, beyond the 365 days a horizon may reach"
    with pytest.raises(ValidationError, match=re.escape(expected)):
        model.score(PATIENT, long)
    with pytest.raises(ValidationError, match=re.escape(expected)):
        model.compare_regimens(PATIENT, [Regimen(**weekly, n_sessions=4), long])
    assert model.score(PATIENT, long, horizon_day=365).horizon_day == 365


def test_the_comparison_plot_marks_the_front(model, tmp_path):
    from matplotlib.figure import Figure

    comparison = model.compare_regimens(PATIENT, horizon_day=28)
    fig = comparison.plot()
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    lines = {line.get_gid(): line for line in ax.lines if line.get_gid()}
    front = ~comparison.table["dominated"].to_numpy()
    np.testing.assert_allclose(
        lines["front"].get_xdata(), 100 * comparison["cognitive_decline"][front]
    )
    np.testing.assert_allclose(lines["front"].get_ydata(), 100 * comparison["response"][front])
    assert len(lines["dominated"].get_xdata()) == (~front).sum()
    assert lines["front"].get_color() != lines["dominated"].get_color()
    # each name in full, a long one over lines of its own (the end tells schedules apart)
    names = {t.get_gid(): " ".join(t.get_text().split()) for t in ax.texts if t.get_gid()}
    for k, name in enumerate(comparison["regimen"]):
        assert f"{k + 1} {name}" in names["front names" if front[k] else "dominated names"]
    assert "front" in ax.get_legend().get_texts()[-1].get_text()
    assert "cognitive decline" in ax.get_xlabel()
    assert "response" in ax.get_ylabel()
    # 90% intervals in both directions: one bar per schedule on each axis
    assert sum(len(c.get_segments()) for c in ax.collections) == 2 * len(comparison)
    fig.savefig(tmp_path / "comparison.png", dpi=40)  # it draws; small to stay fast
    assert (tmp_path / "comparison.png").stat().st_size > 5_000


def test_a_comparison_is_strict_json_in_its_table_order(model):
    comparison = model.compare_regimens(PATIENT, horizon_day=28)
    data = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert data["horizon_day"] == 28.0
    assert data["horizon"] == comparison.horizon
    assert [r["regimen"] for r in data["regimens"]] == comparison.table["regimen"].tolist()
    for record, (_, row) in zip(data["regimens"], comparison.table.iterrows(), strict=True):
        assert record["response"] == pytest.approx(row["response"], abs=1e-12)
        assert record["dominated_by"] == list(row["dominated_by"])
        assert 0 <= record["cognitive_decline_low"] <= record["cognitive_decline"] <= 1


def test_a_horizon_before_the_last_session_reads_the_course_so_far(model):
    """The features describe the course given by the horizon: at day 7 a 24-session course
    and a 3-session one have given the same sessions, so they get the same estimate (as in
    the virtual cohort), and the report says which sessions count."""
    patient = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    course = {"drug": "ketamine", "route": "iv", "dose": 0.5, "infusion_minutes": 40,
              "sessions_per_week": 3}  # fmt: skip
    early = model.score(patient, Regimen(**course, n_sessions=24), horizon_day=7)
    said = [w for w in early.warnings if w.startswith("the horizon (day 7) comes before")]
    assert said == [
        "the horizon (day 7) comes before the last of the 24 planned sessions: the estimate "
        "is for the 3 given by then, and the sessions still to come do not count"
    ]
    done = model.score(patient, Regimen(**course, n_sessions=3), horizon_day=7)
    assert not any("comes before the last" in w for w in done.warnings)
    for outcome in ("response", "remission", "cognitive_decline", "dissociation"):
        assert early[outcome].probability == done[outcome].probability
        assert (early[outcome].low, early[outcome].high) == (done[outcome].low, done[outcome].high)


def test_a_feature_set_reading_the_planned_sessions_is_warned_mid_course(tmp_path):
    """A set that reads n_sessions as a number lets the sessions still to come move the
    estimate, so the report must not say they do not count."""
    from ketapredict import simulate_cohort

    (tmp_path / "planned.toml").write_text(
        'extends = "core"\n'
        '[groups.planned]\nsteps = [{ encoder = "numeric", columns = ["n_sessions"] }]\n'
    )
    data = simulate_cohort(n=1500, seed=5)
    model = fit_risk_model(
        data, ["response"], features=tmp_path / "planned.toml", n_estimators=20, replicates=0
    )
    patient = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    course = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40,
                     sessions_per_week=3, n_sessions=24)  # fmt: skip
    said = [w for w in model.score(patient, course, horizon_day=7).warnings if "planned" in w]
    assert said == [
        "the horizon (day 7) comes before the last of the 24 planned sessions: the estimate "
        "is for the 3 given by then, but this model's feature set also reads the planned "
        "number of sessions, so the sessions still to come move it: read it with care"
    ]


def test_a_horizon_at_the_first_session_is_refused(model):
    patient = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    course = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
    with pytest.raises(ValidationError, match=r"horizon_day=0 is not a day after the first"):
        model.score(patient, course, horizon_day=0)
    assert model.score(patient, course, horizon_day=0.1).horizon_day == 0.1


def test_the_json_forms_carry_the_interval_level_and_the_notice(model):
    patient = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    course = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
    report = model.score(patient, course, horizon_day=28).to_dict()
    comparison = model.compare_regimens(patient, horizon_day=28).to_dict()
    for data in (report, comparison):
        assert data["interval_level"] == 0.9
        assert "virtual cohort" in data["notice"]


def test_a_named_schedule_keeps_what_it_is(model):
    patient = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    course = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
    comparison = model.compare_regimens(patient, {"mine": course}, horizon_day=1)
    assert comparison.table.loc[0, ["regimen", "schedule"]].tolist() == ["mine", str(course)]
    assert _printed_rows(str(comparison))[0][1] == f"mine: {course}"
    assert f"mine: {course}" in comparison._repr_html_()
    assert comparison.to_dict()["regimens"][0]["schedule"] == str(course)


def test_an_antidepressant_started_with_the_course_leaves_the_first_session_alone(model):
    """The trials start one only with esketamine, so the flag stood for the route and moved
    first-session dissociation by 4 points (a clinician's review); the schedule it belongs
    to is new to the model without it, and the report says so for the outcomes it concerns."""
    single = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
    started = Regimen(**{**single.to_dict(), "new_oral_antidepressant": True})
    alone, with_one = (model.score(PATIENT, r, horizon_day=1) for r in (single, started))
    assert alone["dissociation"].probability == with_one["dissociation"].probability
    assert not any("never occurs" in w for w in alone.warnings)
    assert [w for w in with_one.warnings if "never occurs" in w] == [
        "response, remission, cognitive decline: the schedule ketamine IV, one session, with a "
        "new oral antidepressant never occurs in the training data: the estimate is an "
        "extrapolation"
    ]


def test_a_report_says_what_its_outcomes_and_intervals_are(model):
    report = model.score(PATIENT, COURSE, horizon_day=28)
    text = " ".join(str(report).split())
    assert "dissociation: CADSS above 4 in the first session" in text
    assert "90% interval: widened until it held the true probability" in text
    assert html.escape(report.interval_meaning) in " ".join(report._repr_html_().split())
    assert repr(report).startswith(f"<RiskReport: {report.regimen}, day 28: response=")
    assert "\n" not in repr(report)


def test_a_report_saved_as_a_page_says_its_encoding(model):
    """A file saved from _repr_html_ alone had none: a browser showed the minus signs of
    the drivers as mojibake (a clinician's review)."""
    for shown in (model.score(PATIENT, COURSE, horizon_day=28), model.compare_regimens(PATIENT)):
        page = shown.to_html()
        assert page.startswith('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">')
        assert shown._repr_html_() in page


def test_a_bad_row_of_a_table_of_schedules_is_named_by_its_position(model):
    """'schedule 2' was the table's row 1 (a clinician's review): both are said."""
    table = pd.DataFrame(
        [
            {"drug": "ketamine", "route": "iv", "dose": 0.5, "infusion_minutes": 40},
            {"drug": "ketamine", "route": "iv", "dose": 50, "infusion_minutes": 40},
        ]
    )
    with pytest.raises(ValidationError, match=r"row 1 \(schedule 2\): dose=50 mg/kg"):
        model.compare_regimens(PATIENT, table, horizon_day=7)


def test_a_figure_of_many_schedules_lists_some_and_says_how_many_more(model):
    """Wrapped names of 300 schedules made a figure 141 inches tall (a diff review)."""
    doses = {"iv": list(np.round(np.linspace(0.1, 1.0, 40), 3))}
    comparison = model.compare_regimens(PATIENT, regimen_grid(doses=doses), horizon_day=28)
    figure = comparison.plot()
    assert figure.get_size_inches()[1] < 13
    listed = " ".join(t.get_text() for t in figure.axes[0].texts if "names" in str(t.get_gid()))
    assert "more (comparison.table)" in listed

import copy
import dataclasses
import inspect
import re

import numpy as np
import pandas as pd
import pytest

from ketapredict import Regimen, ValidationError, exposure
from ketapredict.regimen import BIOAVAILABILITY, EXPOSURE_COLUMNS, REFERENCE_WEIGHT_KG

IV = {"route": "iv", "dose_unit": "mg/kg", "infusion_minutes": 40}


def test_iv_ketamine_exposure():
    course = Regimen(drug="ketamine", dose=0.5, sessions_per_week=2, n_sessions=8, **IV)
    x = course.exposure()
    assert x["systemic_dose_mg_per_kg"] == 0.5
    assert x["racemic_iv_equivalent_mg_per_kg"] == 0.5
    assert x["peak_exposure_mg_per_kg_per_h"] == pytest.approx(0.75)  # 0.5 mg/kg over 2/3 h
    assert x["weekly_exposure_mg_per_kg"] == 1.0
    assert x["cumulative_exposure_mg_per_kg"] == 4.0
    assert x["course_weeks"] == 3.5
    assert x["active_drug"]
    assert x["comparator"] == "none"
    # plain Python values, as a user prints them (not np.float64(0.5), np.True_)
    assert {type(v) for v in x.values()} == {float, bool, str}
    assert course.endpoint_day == 25.5
    np.testing.assert_allclose(course.session_days(), np.arange(8) * 3.5)


def test_exposure_is_the_course_given_by_the_assessment():
    """Assessed mid-course (day 15 of 2/week x 8: sessions on days 0, 3.5, 7, 10.5 and 14),
    the course so far counts, as a course of 5 sessions would."""
    planned = {"drug": "ketamine", "dose": 0.5, "sessions_per_week": 2, **IV}
    early = exposure(pd.DataFrame([{**planned, "n_sessions": 8, "endpoint_day": 15}]))
    short = exposure(pd.DataFrame([{**planned, "n_sessions": 5, "endpoint_day": 15}]))
    assert early["sessions_by_endpoint"][0] == 5
    assert early["cumulative_exposure_mg_per_kg"][0] == 2.5
    assert early["course_weeks"][0] == 2.0
    assert early["days_after_last_session"][0] == 1.0
    for name in EXPOSURE_COLUMNS:
        np.testing.assert_array_equal(early[name], short[name])
    whole = Regimen(**planned, n_sessions=8).exposure()  # no day given: 24 h after the last
    assert whole["cumulative_exposure_mg_per_kg"] == 4.0


def test_esketamine_at_half_dose_matches_racemic():
    racemic = Regimen(drug="ketamine", dose=0.5, **IV)
    esketamine = Regimen(drug="esketamine", dose=0.25, **IV)
    assert esketamine.racemic_iv_equivalent() == racemic.racemic_iv_equivalent()


def test_fixed_intranasal_dose_uses_weight_and_bioavailability():
    spray = Regimen(drug="esketamine", route="intranasal", dose=84, dose_unit="mg")
    light = spray.racemic_iv_equivalent(weight_kg=60)
    heavy = spray.racemic_iv_equivalent(weight_kg=120)
    assert light == pytest.approx(84 / 60 * BIOAVAILABILITY["intranasal"] * 2.0)
    assert light == pytest.approx(2 * heavy)
    # without a weight, the reference adult weight of fixed-dose trials
    assert spray.racemic_iv_equivalent() == pytest.approx(
        84 / REFERENCE_WEIGHT_KG * BIOAVAILABILITY["intranasal"] * 2.0
    )


def test_routes_order_by_bioavailability():
    routes = ["iv", "im", "intranasal", "sublingual", "oral"]
    table = pd.DataFrame(
        {
            "drug": "ketamine",
            "route": routes,
            "dose": 0.5,
            "dose_unit": "mg/kg",
            "infusion_minutes": [40, *[np.nan] * 4],
        }
    )
    systemic = exposure(table)["systemic_dose_mg_per_kg"]
    assert np.all(np.diff(systemic) < 0)


def test_comparators_have_no_exposure():
    saline = Regimen(drug="saline", dose=0, sessions_per_week=2, n_sessions=4, **IV)
    midazolam = Regimen(drug="midazolam", dose=0.045, **IV)
    placebo = Regimen(
        drug="placebo",
        route="intranasal",
        dose=0,
        dose_unit="mg",
        sessions_per_week=2,
        n_sessions=8,
    )
    for comparator in (saline, midazolam, placebo):
        x = comparator.exposure()
        assert x["racemic_iv_equivalent_mg_per_kg"] == 0
        assert x["cumulative_exposure_mg_per_kg"] == 0
        assert not x["active_drug"]
        assert x["comparator"] == comparator.drug
    assert placebo.course_weeks == 3.5


def test_exposure_of_a_table_matches_single_regimens():
    regimens = [
        Regimen(drug="ketamine", dose=0.5, **IV),
        Regimen(
            drug="esketamine",
            route="intranasal",
            dose=56,
            dose_unit="mg",
            sessions_per_week=2,
            n_sessions=8,
        ),
        Regimen(drug="ketamine", route="oral", dose=1.0, sessions_per_week=3, n_sessions=9),
    ]
    table = pd.DataFrame([r.to_dict() for r in regimens])
    table["weight_kg"] = [70.0, np.nan, 90.0]
    columns = exposure(table)
    assert set(columns) == set(EXPOSURE_COLUMNS)
    for i, regimen in enumerate(regimens):
        weight = table["weight_kg"][i]
        single = regimen.exposure(None if np.isnan(weight) else weight)
        for name in EXPOSURE_COLUMNS:
            assert columns[name][i] == single[name], name


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"drug": "ketamine", "route": "oral", "dose": 1.0, "infusion_minutes": 40},
            "infusion_minutes=40 but route='oral' is not an infusion",
        ),
        (
            {"drug": "ketamine", "route": "iv", "dose": 0.5},
            "infusion_minutes is missing; route='iv' needs an infusion time in minutes (1-240)",
        ),
        (
            {"drug": "ketamine", "route": "iv", "dose": -0.5, "infusion_minutes": 40},
            "dose=-0.5 is outside 0-1000 (mg/kg or mg, per dose_unit)",
        ),
        (
            {"drug": "esketamine", "route": "intranasal", "dose": 84, "dose_unit": "mg/kg"},
            "dose=84 mg/kg is above 2.5 mg/kg, the highest dose allowed for esketamine",
        ),
        (  # as potent at half the dose: 5 mg/kg would be 10 mg/kg of ketamine
            {"drug": "esketamine", "route": "iv", "dose": 5, "infusion_minutes": 40},
            "dose=5 mg/kg is above 2.5 mg/kg, the highest dose allowed for esketamine (half the",
        ),
        (
            {"drug": "saline", "route": "iv", "dose": 0.5, "infusion_minutes": 40},
            "dose=0.5 but drug='saline' is an inert comparator; its dose must be 0",
        ),
        (
            {"drug": "ketamine", "route": "iv", "dose": 0, "infusion_minutes": 40},
            "dose=0 but drug='ketamine' needs a positive dose",
        ),
        (
            {"drug": "placebo", "route": "iv", "dose": 0, "infusion_minutes": 40},
            "route='iv' but an injected inert comparator is drug='saline', not 'placebo'",
        ),
        (
            {"drug": "saline", "route": "oral", "dose": 0},
            "use drug='placebo' for an inert oral comparator",
        ),
        (
            {"drug": "midazolam", "route": "iv", "dose": 2, "infusion_minutes": 40},
            "dose=2 mg/kg is above 0.1 mg/kg, the highest dose allowed for midazolam",
        ),
        (
            {
                "drug": "ketamine",
                "route": "iv",
                "dose": 0.5,
                "infusion_minutes": 40,
                "n_sessions": 2.5,
            },
            "n_sessions=2.5 is not a whole number in 1-104 (count)",
        ),
        (
            {
                "drug": "ketamine",
                "route": "iv",
                "dose": 0.5,
                "infusion_minutes": 40,
                "sessions_per_week": 10,
            },
            "sessions_per_week=10 is outside 0.25-7 (sessions/week)",
        ),
        (
            {"drug": "ketamine", "route": "rectal", "dose": 0.5},
            "route='rectal' is not one of 'iv', 'intranasal', 'im', 'sc', 'oral', 'sublingual'",
        ),
        ({"drug": "LSD", "route": "oral", "dose": 0.5}, "drug='LSD' is not one of"),
    ],
)
def test_impossible_regimens_are_refused(arguments, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        Regimen(**arguments)


def test_every_problem_of_a_regimen_is_reported():
    with pytest.raises(ValidationError) as caught:
        Regimen(drug="ketamine", route="teleport", dose="lots", n_sessions=0)
    fields = {p.column for p in caught.value.problems}
    assert fields == {"route", "dose", "n_sessions"}


def test_categories_are_case_normalised_and_regimens_are_frozen():
    regimen = Regimen(
        drug="Ketamine", route="IV", dose=0.5, dose_unit="MG/KG", infusion_minutes=40
    )
    assert (regimen.drug, regimen.route, regimen.dose_unit) == ("ketamine", "iv", "mg/kg")
    assert regimen == Regimen(drug="ketamine", dose=0.5, **IV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        regimen.dose = 1.0


def test_a_required_field_left_out_is_a_validation_error_naming_it():
    """As Regimen(**row) meets a row without a drug: not Python's TypeError."""
    with pytest.raises(ValidationError) as caught:
        Regimen(route="iv", dose=0.5, infusion_minutes=40)
    assert [p.column for p in caught.value.problems] == ["drug"]
    with pytest.raises(ValidationError) as caught:
        Regimen()
    assert [p.column for p in caught.value.problems] == ["drug", "route", "dose"]


def test_a_field_regimen_lacks_or_one_by_position_is_a_validation_error_naming_it():
    """Regimen(n_session=3) would be Python's TypeError, which lists no field there is."""
    with pytest.raises(ValidationError) as caught:
        Regimen(drug="ketamine", dose=0.5, n_session=3, **IV)
    (problem,) = caught.value.problems
    assert problem.column == "n_session"
    assert "did you mean 'n_sessions'?" in problem.message
    assert "expected one of drug, route, dose, dose_unit" in problem.message
    with pytest.raises(ValidationError, match="takes its fields by name"):
        Regimen("ketamine", route="iv", dose=0.5)
    # with the known fields' own faults too, every one named at once
    with pytest.raises(ValidationError) as caught:
        Regimen(drug="ketamin", dose=0.5, n_session=3, **IV)
    assert [p.column for p in caught.value.problems] == ["n_session", "drug"]
    # copies and replacements still construct it by name
    course = Regimen(drug="ketamine", dose=0.5, **IV)
    assert copy.deepcopy(course) == course
    assert dataclasses.replace(course, n_sessions=3).n_sessions == 3
    # help() and editors show the fields, and a subclass may add its own
    assert list(inspect.signature(Regimen).parameters)[:3] == ["drug", "route", "dose"]

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Labelled(Regimen):
        label: str = ""

    assert Labelled(drug="ketamine", dose=0.5, label="arm A", **IV).label == "arm A"


def test_from_record_ignores_other_columns_and_reads_blanks_as_a_table_does():
    row = pd.Series(
        {
            "drug": "ketamine",
            "route": "iv",
            "dose": 0.5,
            "dose_unit": "mg/kg",
            "infusion_minutes": 40.0,
            "sessions_per_week": 1,
            "n_sessions": 1,
            "new_oral_antidepressant": pd.NA,  # the contract allows a blank: False
            "age": 50,
            "response": True,
        }
    )
    assert Regimen.from_record(row) == Regimen(drug="ketamine", dose=0.5, **IV)
    # a blank is not a default where a table refuses it: an unknown rate, or an unknown
    # number of sessions (read as one, it moved a response from 69% to 54%)
    for blank in ({"sessions_per_week": np.nan}, {"sessions_per_week": 2, "n_sessions": None}):
        with pytest.raises(ValidationError, match="is missing; it is required") as caught:
            Regimen.from_record(row.to_dict() | blank)
        assert "leave the field out for its default" in str(caught.value)
    assert Regimen.from_record(row.drop(["sessions_per_week", "n_sessions"])).n_sessions == 1
    # a blank required field is said once
    with pytest.raises(ValidationError) as caught:
        Regimen.from_record(row.to_dict() | {"drug": None})
    assert [p.column for p in caught.value.problems] == ["drug"]


def test_from_record_refuses_a_misspelt_field_rather_than_take_its_default():
    """`n_session` read as a field left out made an 8-session course one session."""
    record = {"drug": "ketamine", "dose": 0.5, **IV, "n_session": 8, "sessions_per_wk": 2}
    with pytest.raises(ValidationError) as caught:
        Regimen.from_record(record | {"site": "Leeds"})  # a site's own field is no problem
    assert {p.column: p.message for p in caught.value.problems} == {
        "n_session": "field 'n_session' is not in the data contract (did you mean "
        "'n_sessions'?); rename it, or drop it to leave the value out",
        "sessions_per_wk": "field 'sessions_per_wk' is not in the data contract (did you "
        "mean 'sessions_per_week'?); rename it, or drop it to leave the value out",
    }
    # beside another fault, both are said
    with pytest.raises(ValidationError) as caught:
        Regimen.from_record(record | {"dose": -1})
    assert {p.column for p in caught.value.problems} == {"n_session", "sessions_per_wk", "dose"}


def test_readable_description():
    course = Regimen(
        drug="ketamine",
        dose=0.5,
        sessions_per_week=2,
        n_sessions=8,
        new_oral_antidepressant=True,
        **IV,
    )
    assert str(course) == (
        "ketamine 0.5 mg/kg IV over 40 min, 2/week x 8 + new oral antidepressant"
    )


@pytest.mark.parametrize("weight", [0, -5, "abc", 400])
def test_a_weight_outside_the_contract_is_refused_not_divided_by(weight):
    spray = Regimen(drug="esketamine", route="intranasal", dose=84, dose_unit="mg",
                    sessions_per_week=2, n_sessions=8)  # fmt: skip
    with pytest.raises(ValidationError, match="weight_kg"):
        spray.exposure(weight_kg=weight)
    # missing: the reference weight, as documented
    assert spray.racemic_iv_equivalent(None) == spray.racemic_iv_equivalent(REFERENCE_WEIGHT_KG)


@pytest.mark.parametrize(
    ("regimens", "message"),
    [(None, "a DataFrame or a mapping"), ({"drug": ["ketamine"]}, "'route' is missing")],
)
def test_exposure_refuses_what_is_not_a_regimen_table(regimens, message):
    with pytest.raises(ValidationError, match=message):
        exposure(regimens)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"doses": [1, 2]}, "doses must map routes to lists of doses"),
        ({"doses": {}}, "doses must map routes"),
        ({"doses": {"iv": []}}, "doses['iv'] must be a non-empty list of numbers"),
        ({"doses": {"respnse": [1]}}, "doses names the route 'respnse', which is not one of"),
        ({"weeks": "four"}, "weeks must be a positive number"),
        ({"weeks": float("inf")}, "weeks must be a positive number"),
        ({"weeks": 0}, "weeks must be a positive number"),
        ({"weeks": 0.2}, "weeks=0.2 at 1 a week gives 0 sessions; a course has 1 to 104"),
        ({"sessions_per_week": [0.5], "weeks": 1}, "at 0.5 a week gives 0 sessions"),
        ({"weeks": 100}, "weeks=100 at 2 a week gives 200 sessions"),
        ({"sessions_per_week": "2"}, "sessions_per_week must be a non-empty list"),
    ],
)
def test_regimen_grid_names_a_bad_argument(arguments, message):
    from ketapredict import regimen_grid

    with pytest.raises(ValidationError, match=re.escape(message)):
        regimen_grid(**arguments)

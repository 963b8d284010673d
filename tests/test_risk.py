import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ketapredict import build_risk_model, fit_risk_model, simulate_cohort
from ketapredict.models import outcome_models


@pytest.fixture(scope="module")
def train():
    return simulate_cohort(n=2500, seed=21)


# -- RiskModel and its files -------------------------------------------------------------------
@pytest.fixture(scope="module")
def risk_model(train):

    return fit_risk_model(
        train,
        ["response", "cognitive_decline"],
        n_estimators=80,
        replicates=4,
        provenance={"name": "test", "data_kind": "simulated"},
    )


def test_a_provenance_a_saved_model_could_not_carry_is_refused_before_any_work(
    tmp_path, risk_model, train
):
    """A name every report would print at a megabyte is refused when given (fit, the
    constructor) and at save when set afterwards, not only by load."""
    from ketapredict import ValidationError

    long = {"name": "x" * 10_000, "notes": 5}
    expected = r"provenance name must be text of at most 200 characters; got 10,000 char"
    with pytest.raises(ValidationError, match=expected) as caught:
        fit_risk_model(train.head(0), ["response"], provenance=long)  # no rows: not reached
    assert (
        "provenance notes must be text of at most 2,000 characters; got a value of type int"
        in str(caught.value)
    )
    with pytest.raises(ValidationError, match=expected):
        build_risk_model(outcome_models(risk_model), long)
    copy = build_risk_model(outcome_models(risk_model), risk_model.provenance)
    copy.provenance["name"] = "x" * 10_000
    with pytest.raises(ValidationError, match=expected):
        copy.save(tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_risk_model_round_trips_through_its_files(tmp_path, risk_model, train):
    from ketapredict import RiskModel

    saved = risk_model.save(tmp_path / "model")
    assert sorted(p.name for p in saved.iterdir()) == [
        "cognitive_decline.json",
        "cognitive_decline.trees.json",
        "cognitive_decline.ubj",
        "manifest.json",
        "model_card.md",
        "response.json",
        "response.trees.json",
        "response.ubj",
    ]
    loaded = RiskModel.load(saved)
    assert loaded.card == risk_model.model_card()
    assert loaded.card.startswith("# Model card: test")
    pd.testing.assert_frame_equal(loaded.predict_proba(train), risk_model.predict_proba(train))
    pd.testing.assert_frame_equal(
        loaded.predict_interval(train.head(50)), risk_model.predict_interval(train.head(50))
    )
    assert loaded.provenance["name"] == "test"
    assert loaded.provenance["n_patients"] == len(train)
    assert (
        outcome_models(loaded)["response"].get_params()
        == outcome_models(risk_model)["response"].get_params()
    )
    # cognitive decline learned from the change in cognition: a loaded model says so and
    # rebuilds its trees' constraints, so it can train replicates like the fitted one
    fitted, restored = (
        outcome_models(risk_model)["cognitive_decline"],
        outcome_models(loaded)["cognitive_decline"],
    )
    assert restored.measurement_
    assert fitted.measurement_
    assert restored.monotone_ == fitted.monotone_
    rows = train[train["cognitive_decline"].notna()]
    assert len(restored.replicates(rows, n_replicates=2)) == 2


def test_the_cards_model_section_shows_only_short_texts_of_the_models_outcomes():
    """A saved model's provenance is untrusted: what the card prints of it is bounded."""
    from ketapredict.card import model_card

    structure = {
        "response": "trees",
        "other": "x",
        "remission": {"a": 1},
        "dissociation": "y" * 5000,
    }
    card = model_card({"name": "x", "structure": structure},
                      ["response", "remission", "dissociation"], ["age"])  # fmt: skip
    section = card.split("## Model")[1].split("##")[0]
    assert section.strip().splitlines()[-1] == "- `response`: trees."
    for unshown in ("other", "yyy", "'a'"):
        assert unshown not in section


def test_the_model_card_is_checked_and_follows_recalibration(tmp_path, risk_model, train):
    from ketapredict import ModelFileError, RiskModel

    saved = risk_model.save(tmp_path / "model")
    card = (saved / "model_card.md").read_text()
    for heading in (
        "Intended use",
        "Data",
        "Outcomes and horizon",
        "Predictors",
        "Model",
        "Missing data",
        "Validation",
        "Limitations",
    ):
        assert f"## {heading}" in card, heading
    assert "Not for clinical decisions" in card
    # what was fitted, per outcome: cognitive decline (few events) took the measurement
    # and no trees; both said, and the same from the loaded model's own fitted parts
    said = dict(re.findall(r"^- `(\w+)`: (.+)\.$", card.split("## Model")[1], re.M)[:2])
    assert "no boosted trees (too few events for them)" in said["cognitive_decline"]
    assert "ridge regression of the outcome's measurement" in said["cognitive_decline"]
    assert "from a logistic regression of the outcome;" in said["response"]
    loaded = RiskModel.load(saved)
    for outcome, text in said.items():
        assert outcome_models(loaded)[outcome].describe() == text
    updated = risk_model.recalibrate(train.head(400), "intercept", outcomes=["response"])
    assert "## Recalibration" in updated.model_card()
    assert updated.model_card().count("## Recalibration") == 1
    (saved / "model_card.md").write_text(card.replace("Not for clinical", "Fine for clinical"))
    with pytest.raises(ModelFileError, match=r"model_card\.md is not the file saved"):
        RiskModel.load(saved)


def test_saved_files_are_not_pickles(tmp_path, risk_model):
    saved = risk_model.save(tmp_path / "model")
    for file in saved.iterdir():
        head = file.read_bytes()[:2]
        assert head[:1] != b"\x80", f"{file.name} looks like a pickle"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda p: (p / "response.ubj").write_bytes((p / "response.ubj").read_bytes() + b"x"),
            "response.ubj is not the file saved",
        ),
        (lambda p: (p / "response.json").unlink(), "response.json is not the file saved"),
        (
            lambda p: (p / "response.trees.json").write_text(
                (p / "response.trees.json").read_text().replace("[", "[0,", 1)
            ),
            "response.trees.json is not the file saved",
        ),
        (lambda p: (p / "manifest.json").unlink(), "manifest.json is missing"),
        (
            lambda p: (p / "manifest.json").write_text(
                (p / "manifest.json")
                .read_text()
                .replace('"format_version": 6', '"format_version": 3')
            ),
            "format version 3 is not 5 or 6",
        ),
        (lambda p: (p / "manifest.json").write_text("{not json"), "not valid JSON"),
        (
            lambda p: (p / "manifest.json").write_text(
                (p / "manifest.json").read_text().replace('"simulated"', '"real"')
            ),
            "manifest.json was changed after the model was saved",
        ),
    ],
)
def test_tampered_or_incompatible_models_are_refused(tmp_path, risk_model, damage, message):
    from ketapredict import ModelFileError, RiskModel

    saved = risk_model.save(tmp_path / "model")
    damage(saved)
    with pytest.raises(ModelFileError, match=re.escape(message)):
        RiskModel.load(saved)


def test_saving_refuses_to_mix_with_other_files(tmp_path, risk_model):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "other.txt").write_text("x")
    with pytest.raises(FileExistsError, match="is not empty"):
        risk_model.save(tmp_path / "model")


def test_probabilities_are_the_outcome_models(risk_model, train):
    # the compiled trees score exactly as the OutcomeModels (XGBoost) do
    proba = risk_model.predict_proba(train)
    for outcome, model in outcome_models(risk_model).items():
        np.testing.assert_allclose(proba[outcome], model.predict_proba(train)[:, 1], atol=1e-6)


def test_a_batch_walks_fewer_trees_to_the_same_margins(risk_model):
    """Draws of missing fields change only the trees and linear terms that read them: the
    batch path's margins equal walking every tree of every member on every draw, plus each
    member's whole linear margin (ketapredict.trees.linear_margin) on every draw."""
    from ketapredict import validate
    from ketapredict.risk import _Batch
    from ketapredict.trees import linear_margin

    table = validate(simulate_cohort(n=400, seed=5))
    # more missingness patterns, a missing weight (the dose schedule's mg/kg) among them
    rng = np.random.default_rng(0)
    for name in ("weight_kg", "bmi", "hamd17_baseline", "family_history_aud"):
        table.loc[rng.random(len(table)) < 0.2, name] = pd.NA
    batch = _Batch(risk_model, table)
    filled, owner = risk_model._expand(table)
    assert len(batch._groups) > 10
    np.testing.assert_array_equal(batch.owner, owner)
    for outcome, state in risk_model._outcomes.items():
        every = risk_model._encoded(filled)[outcome]
        np.testing.assert_array_equal(batch.matrix(state), every)
        linear = np.column_stack([linear_margin(every, member) for member in state.linear])
        assert np.abs(linear).max() > 0.1  # the linear component is there to check
        np.testing.assert_allclose(
            batch.margins(state, members=None),
            state.trees.margins(every) + linear,
            rtol=0,
            atol=1e-9,
        )


def test_blocks_of_a_batch_score_as_the_whole(risk_model, monkeypatch):
    import ketapredict.risk

    table = simulate_cohort(n=300, seed=6)
    whole = risk_model.predict_proba(table), risk_model.predict_interval(table)
    monkeypatch.setattr(ketapredict.risk, "_BATCH_PATIENTS", 70)
    pd.testing.assert_frame_equal(risk_model.predict_proba(table), whole[0])
    pd.testing.assert_frame_equal(risk_model.predict_interval(table), whole[1])


def test_intervals_hold_the_estimate_and_extrapolation_is_flagged(risk_model, train):
    intervals = risk_model.predict_interval(train)
    assert intervals.shape[0] == 2 * len(train)
    assert (
        (intervals["low"] <= intervals["probability"])
        & (intervals["probability"] <= intervals["high"])
    ).all()
    assert ((intervals["low"] > 0) & (intervals["high"] < 1)).all()
    assert (intervals["high"] - intervals["low"]).gt(0).mean() > 0.99
    # a dose far beyond the training data: the replicates extrapolate alike (trees are flat
    # there, the linear part is clipped at the rounded training range), so the interval is
    # about as wide as for the usual 0.5 mg/kg, on the log-odds scale the intervals are
    # built on; what says "extrapolation" is the out-of-training flag, which reports print
    usual = train[(train["drug"] == "ketamine") & (train["route"] == "iv")].head(200).copy()
    extreme = usual.assign(dose=4.0, infusion_minutes=5.0)

    def log_odds_width(frame):
        found = risk_model.predict_interval(frame).query("outcome == 'response'")
        low, high = found["low"], found["high"]
        return (np.log(high / (1 - high)) - np.log(low / (1 - low))).mean()

    width = {"usual": log_odds_width(usual), "extreme": log_odds_width(extreme)}
    assert width["extreme"] > 0.9 * width["usual"]
    assert risk_model.outside_training(extreme).all()
    assert not risk_model.outside_training(usual).all()


def test_replicates_are_calibrated_on_rows_they_did_not_train_on(train):
    from ketapredict import OutcomeModel

    model = OutcomeModel("response", n_estimators=60).fit(train)
    replicates = model.replicates(train, n_replicates=3, random_state=1)
    assert len(replicates) == 3
    slopes = [calibrator["a"] for _, calibrator, _ in replicates]
    assert len(set(slopes)) == 3  # each its own calibration
    again = model.replicates(train, n_replicates=3, random_state=1)
    assert [c["a"] for _, c, _ in again] == slopes  # seeded


def test_intervals_calibrated_against_the_truth(tmp_path, train):
    from ketapredict import load_model

    # new patients whose true probabilities are another patient's: the model's errors are
    # large, so the multiplier must grow well beyond Student's t, and the intervals with it
    fresh = simulate_cohort(n=1500, seed=99)
    fresh["p_response"] = fresh["p_response"].sample(frac=1.0, random_state=0).to_numpy()
    model = fit_risk_model(train, ["response"], n_estimators=40, replicates=4, interval_data=fresh)
    state = model._outcomes["response"]
    assert set(state.scale) == {"active", "comparator"}
    assert min(state.scale.values()) > state.z
    assert "1,500 new virtual courses" in model.provenance["intervals"]
    calibrated = model.predict_interval(train.head(200))
    state.scale, scale = None, state.scale
    bootstrap = model.predict_interval(train.head(200))
    state.scale = scale
    assert (calibrated["high"] - calibrated["low"]).mean() > (
        bootstrap["high"] - bootstrap["low"]
    ).mean()
    np.testing.assert_allclose(calibrated["probability"], bootstrap["probability"])
    again = load_model(model.save(tmp_path / "calibrated"))
    pd.testing.assert_frame_equal(again.predict_interval(train.head(200)), calibrated)


def test_a_model_without_replicates_has_no_intervals(train):
    from ketapredict import ValidationError

    model = fit_risk_model(train, ["dissociation"], n_estimators=40, replicates=0)
    assert not model.has_intervals
    # an interval that is the estimate itself would say nothing of its uncertainty
    with pytest.raises(ValidationError, match="no bootstrap replicates for dissociation"):
        model.predict_interval(train.head(5))
    for replicates, said in ((1, "replicates=1 is not 0"), (2.5, "replicates=2.5 is not 0")):
        with pytest.raises(ValidationError, match=re.escape(said)):
            fit_risk_model(train, "dissociation", replicates=replicates)


def test_fit_refuses_arguments_it_would_ignore_or_trip_over(train):
    from ketapredict import ValidationError

    with pytest.raises(ValidationError, match="outcome_params names 'respons', which is not"):
        fit_risk_model(train, ["response"], outcome_params={"respons": {"max_depth": 3}})
    with pytest.raises(ValidationError, match="data must be a DataFrame of patient courses"):
        fit_risk_model(train.to_dict("records"), ["response"])
    # sizes and seeds numpy cannot take, before any fitting (10**12 asked for 7 TiB)
    for argument, value, said in (
        ("replicates", 10**12, "from 2 to 1,000"),
        ("random_state", np.random.RandomState(0), "random_state=RandomState"),
        ("random_state", 2**32, "is not a whole number from 0 to 4,294,967,295"),
    ):
        with pytest.raises(ValidationError, match=re.escape(said)):
            fit_risk_model(train, ["response"], **{argument: value})


def test_the_constructor_refuses_a_model_under_another_outcomes_name(risk_model):
    """{"respnse": model} labelled the response's risks "respnse"."""
    from ketapredict import ValidationError

    model = outcome_models(risk_model)["response"]
    for models, said in (
        (
            {"respnse": model},
            "models['respnse'] must be an OutcomeModel of that outcome; got one of 'response'",
        ),
        ({"response": "x"}, "got str"),
        ("response", "models must be a mapping (a dict); got str"),
        (None, "models must be a mapping (a dict); got NoneType"),  # was an AttributeError
    ):
        with pytest.raises(ValidationError, match=re.escape(said)):
            build_risk_model(models)
    with pytest.raises(ValidationError, match="provenance must be a mapping"):
        build_risk_model({"response": model}, "my model")
    # the serving artifact's own constructor takes scoring states, and checks them alike
    from ketapredict import RiskModel

    state = risk_model.outcome_state("response")
    for outcomes, said in (
        (None, "outcomes must be a mapping (a dict); got NoneType"),
        ({}, "a RiskModel needs at least one OutcomeState; outcomes is empty"),
        ({"respnse": state}, "outcomes['respnse'] must be an OutcomeState of that outcome"),
    ):
        with pytest.raises(ValidationError, match=re.escape(said)):
            RiskModel(outcomes)
    with pytest.raises(ValidationError, match="the model has no 'remission' outcome"):
        risk_model.outcome_state("remission")
    with pytest.raises(ValidationError, match="outcome_models needs a RiskModel; got dict"):
        outcome_models({"response": model})


def test_a_loaded_model_saves_its_files_as_they_were_read(tmp_path):
    """Saving no longer rebuilds the OutcomeModels: the demo model's files come back byte
    for byte (the manifest too, but for the day it was saved)."""
    import json

    import ketapredict
    from ketapredict import load_model

    saved = load_model().save(tmp_path / "again")
    for original in (Path(ketapredict.__file__).parent / "data" / "demo_model").iterdir():
        again = saved / original.name
        if original.name == "manifest.json":
            first, second = json.loads(original.read_text()), json.loads(again.read_text())
            for manifest in (first, second):
                del manifest["saved"], manifest["content_sha256"]
            assert first == second
        else:
            assert again.read_bytes() == original.read_bytes(), original.name


def test_a_scoring_state_without_its_fitted_fields_is_refused_before_saving(tmp_path, risk_model):
    """A public OutcomeState built by hand saved a model that loading then refused."""
    from dataclasses import replace

    from ketapredict import RiskModel, ValidationError

    state = risk_model.outcome_state("response")
    for broken in (replace(state, booster_file=b""), replace(state, record={})):
        model = RiskModel({"response": broken})
        with pytest.raises(ValidationError, match="build it from a fitted OutcomeModel"):
            model.save(tmp_path / "model")
        assert not (tmp_path / "model").exists()
    with pytest.raises(ValidationError, match="data must be a DataFrame"):
        risk_model.calibrate_intervals([{"p_response": 0.5}])


def test_a_model_of_numeric_labels_loads_as_it_was_fitted(tmp_path, train):
    """Labels 2.0 and 3.0 fitted and saved, and loading refused the file's classes."""
    from ketapredict import OutcomeModel, RiskModel

    rows = train.head(600)
    labels = np.where(rows["response"].astype(bool), 3.0, 2.0)
    fitted = OutcomeModel("response", n_estimators=20).fit(rows, labels)
    saved = build_risk_model({"response": fitted}).save(tmp_path / "model")
    restored = outcome_models(RiskModel.load(saved))["response"]
    assert restored.classes_.tolist() == [2.0, 3.0]


def test_replicates_refuse_counts_and_seeds_numpy_cannot_take(risk_model, train):
    from ketapredict import ValidationError

    model = outcome_models(risk_model)["response"]
    for arguments, said in (
        ({"n_replicates": 10**12}, "n_replicates=1000000000000 is not a whole number from 1"),
        ({"n_replicates": -1}, "n_replicates=-1"),
        ({"random_state": -1}, "random_state=-1 is not a whole number from 0 to 4,294,967,295"),
    ):
        with pytest.raises(ValidationError, match=re.escape(said)):
            model.replicates(train, **arguments)


def test_validated_must_be_true_or_false(risk_model, train):
    """ "no" is truthy: the checks were skipped, and pyarrow's error came out."""
    from ketapredict import ValidationError

    with pytest.raises(ValidationError, match="validated='no' is not True or False"):
        risk_model.predict_proba(train.head(3).assign(age="old"), validated="no")


def test_loading_scoring_recalibrating_and_saving_import_neither_xgboost_nor_sklearn(
    tmp_path, risk_model, train
):
    """The clinician path, a local update included: a saved model's booster files are
    written as they were read, not re-encoded by XGBoost."""
    from ketapredict import RiskModel

    saved = risk_model.save(tmp_path / "model")
    local = tmp_path / "local.csv"
    simulate_cohort(n=400, seed=5).to_csv(local, index=False)
    patient = train.iloc[0][["age", "sex", "diagnosis", "madrs_baseline"]].to_dict()
    code = (
        "import sys\n"
        "import pandas as pd\n"
        "from ketapredict import RiskModel, Regimen\n"
        f"model = RiskModel.load({str(saved)!r})\n"
        "course = Regimen(drug='ketamine', route='iv', dose=0.5, infusion_minutes=40)\n"
        f"report = model.score({patient!r}, course)\n"
        f"updated = model.recalibrate(pd.read_csv({str(local)!r}))\n"
        f"updated.save({str(tmp_path / 'updated')!r})\n"
        "heavy = [m for m in ('xgboost', 'sklearn', 'mlflow', 'shap', 'scipy')\n"
        "         if m in sys.modules]\n"
        "print(heavy, report['response'].probability)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, probability = out.stdout.rsplit("]", 1)
    assert heavy == "["
    assert 0 < float(probability) < 1
    booster = "response.ubj"
    assert (tmp_path / "updated" / booster).read_bytes() == (saved / booster).read_bytes()
    assert "recalibration" in RiskModel.load(tmp_path / "updated").provenance


def test_tables_are_validated_before_scoring(risk_model, train):
    from ketapredict import ValidationError

    shouting = train.head(20).copy()
    shouting["route"] = shouting["route"].astype(str).str.upper()
    shouting["sex"] = shouting["sex"].astype(str).str.title()
    pd.testing.assert_frame_equal(
        risk_model.predict_proba(shouting), risk_model.predict_proba(train.head(20))
    )
    broken = train.head(20).copy()
    broken["madrs_baseline"] = broken["madrs_baseline"].astype(float)
    broken.loc[broken.index[3], "madrs_baseline"] = 75.0
    with pytest.raises(ValidationError, match="madrs_baseline=75"):
        risk_model.predict_interval(broken)


def test_patients_that_are_no_table_are_a_validation_error(risk_model, train):
    from ketapredict import ValidationError

    record = train.iloc[0].to_dict()
    for given in (record, train.iloc[0], [record]):
        for call in (risk_model.predict_proba, risk_model.predict_interval):
            with pytest.raises(ValidationError, match="expected a patient table"):
                call(given)
            with pytest.raises(ValidationError, match="expected a patient table"):
                call(given, validated=True)  # it was an AttributeError
    with pytest.raises(ValidationError, match="expected a patient table"):
        risk_model.recalibrate(record)


def test_a_table_is_scored_only_at_days_a_clinician_could_ask_for(risk_model, train):
    """As ``score`` refuses: day 0 (the moment of the first session), and no day at all for
    a schedule whose own end point lies beyond the 365 days a horizon may reach."""
    from ketapredict import ValidationError

    rows = train.head(3).copy()
    rows["endpoint_day"] = [0.0, 1.0, 28.0]
    with pytest.raises(ValidationError) as caught:
        risk_model.predict_proba(rows)
    assert [p.row for p in caught.value.problems] == [rows.index[0]]
    assert "endpoint_day=0.0 is not above 0 and at most 365" in str(caught.value)
    long = rows.assign(endpoint_day=np.nan, sessions_per_week=0.25, n_sessions=104)
    long.loc[long.index[1], "n_sessions"] = 8  # its own end point, day 197, is within reach
    for call in (risk_model.predict_proba, risk_model.predict_interval):
        with pytest.raises(ValidationError) as caught:
            call(long)
        assert [p.row for p in caught.value.problems] == [long.index[0], long.index[2]]
        assert "is day 2885, beyond the 365 days" in str(caught.value)
    dated = long.assign(endpoint_day=28.0)
    assert np.isfinite(risk_model.predict_proba(dated).to_numpy()).all()
    # a validated table too (MLflow's serving path), its rows never named by an identifier
    named = long.set_axis(["MRN-1", "MRN-2", "MRN-3"])
    for validated in (False, True):
        with pytest.raises(ValidationError) as caught:
            risk_model.predict_proba(named, validated=validated)
        assert "MRN" not in str(caught.value)
        assert [p.row for p in caught.value.problems] == [0, 2]


def test_a_model_that_has_scored_saves_and_loads_cleanly(tmp_path, risk_model, train):
    from ketapredict import RiskModel

    patient = train.iloc[0]
    before = risk_model.score(patient)
    loaded = RiskModel.load(risk_model.save(tmp_path / "model"))
    after = loaded.score(patient)
    assert after["response"].probability == pytest.approx(before["response"].probability)
    assert after.warnings == before.warnings


def test_replicates_of_a_rare_outcome_keep_a_linear_component(train):

    rows = train.head(140).copy()
    rows["response"] = False
    rows.loc[rows.index[:2], "response"] = True  # two events: some resamples have none
    model = fit_risk_model(rows, ["response"], n_estimators=20, replicates=20)
    assert all(linear is not None for linear in model._outcomes["response"].linear)
    found = model.predict_interval(rows.head(20))
    assert np.isfinite(found[["probability", "low", "high"]].to_numpy()).all()


def test_a_misspelt_contract_column_is_refused_not_read_as_missing(risk_model, train):
    """A site's own columns are left out of every Python entry point, but ``BMI`` for
    ``bmi`` would turn a recorded value into a missing one that the model integrates out:
    prediction, external validation, recalibration and fitting refuse it by name."""
    from ketapredict import OutcomeModel, ValidationError, evaluate_model

    table = train.head(300).assign(site="Leeds", notes="free text")
    expected = risk_model.predict_proba(table.drop(columns=["site", "notes"]))
    pd.testing.assert_frame_equal(risk_model.predict_proba(table), expected)

    misspelt = table.rename(columns={"bmi": "BMI", "madrs_baseline": "madrs_basline"})
    entry_points = {
        "predict_proba": lambda: risk_model.predict_proba(misspelt),
        "evaluate_model": lambda: evaluate_model(risk_model, misspelt),
        "recalibrate": lambda: risk_model.recalibrate(misspelt),
        "OutcomeModel.fit": lambda: OutcomeModel("response").fit(misspelt, misspelt.response),
    }
    for name, call in entry_points.items():
        with pytest.raises(ValidationError) as caught:
            call()
        said = {p.column: p.message for p in caught.value.problems}
        assert "did you mean 'bmi'?" in said["BMI"], name
        assert "did you mean 'madrs_baseline'?" in said["madrs_basline"], name


def test_a_drug_by_a_route_never_trained_on_is_warned_and_outside_training(risk_model, train):
    """Arketamine is encoded as half a dose of ketamine, so every encoded feature looked
    familiar and it was scored without a word."""
    from ketapredict import Regimen

    assert "ketamine iv" in risk_model.reference["drug_routes"]
    assert "arketamine iv" not in risk_model.reference["drug_routes"]
    patient = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    course = {"route": "iv", "dose": 0.5, "infusion_minutes": 40}
    new = risk_model.score(patient, Regimen(drug="arketamine", **course), horizon_day=1)
    known = risk_model.score(patient, Regimen(drug="ketamine", **course), horizon_day=1)
    assert any(w.startswith("arketamine by the IV route never occurs") for w in new.warnings)
    assert not any("never occurs" in w for w in known.warnings)
    table = train[train["drug"] == "ketamine"].head(20)
    assert not risk_model.outside_training(table).all()
    assert risk_model.outside_training(table.assign(drug="arketamine")).all()


def test_a_yes_the_training_data_never_had_is_outside_it_in_reports_and_counts(train):
    """A yes/no field whose "yes" the training data never had was flagged by
    outside_training but not by the report (a maintainer's review): one rule serves both."""

    never = train.assign(prior_suicide_attempt=train["prior_suicide_attempt"] * 0)
    model = fit_risk_model(never, ["response"], n_estimators=20, replicates=0)
    patient = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    course = {"drug": "ketamine", "route": "iv", "dose": 0.5, "infusion_minutes": 40}
    warned = model.score({**patient, "prior_suicide_attempt": 1}, course, horizon_day=1)
    assert any("past suicide attempt never occurs in the training" in w for w in warned.warnings)
    plain = model.score({**patient, "prior_suicide_attempt": 0}, course, horizon_day=1)
    assert not any("never occurs" in w for w in plain.warnings)
    rows = train.head(40).assign(prior_suicide_attempt=1)
    assert model.outside_training(rows).all()


def test_a_schedule_or_a_diagnosis_on_it_never_trained_on_is_warned(risk_model, train):
    """The published trials give esketamine only with a new oral antidepressant and bipolar
    depression only one infusion: every encoded feature of either otherwise looked familiar,
    and the top schedule of a comparison was one the model had never seen (a clinician's
    review)."""
    from ketapredict import Regimen

    patient = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    spray = {"drug": "esketamine", "route": "intranasal", "dose": 56, "dose_unit": "mg"}
    course = {**spray, "sessions_per_week": 2, "n_sessions": 8}
    licensed = Regimen(**course, new_oral_antidepressant=True)
    alone = Regimen(**course)
    assert not any("never occurs" in w for w in risk_model.score(patient, licensed).warnings)
    assert (
        "the schedule esketamine intranasal, repeated sessions, without a new oral "
        "antidepressant never occurs in the training data: the estimate is an extrapolation"
    ) in risk_model.score(patient, alone).warnings
    infusions = Regimen(
        drug="ketamine",
        route="iv",
        dose=0.5,
        infusion_minutes=40,
        sessions_per_week=2,
        n_sessions=8,
    )
    bipolar = {**patient, "diagnosis": "bipolar", "n_failed_treatments": 1}
    assert any(
        w.startswith("diagnosis bipolar with ketamine IV, repeated sessions never occurs")
        for w in risk_model.score(bipolar, infusions).warnings
    )
    assert not any("never occurs" in w for w in risk_model.score(patient, infusions).warnings)
    # the same reasons make a table's rows outside the training data
    sprays = train[(train["drug"] == "esketamine") & (train["route"] == "intranasal")].head(5)
    assert len(sprays)
    assert not risk_model.outside_training(sprays).any()
    assert risk_model.outside_training(sprays.assign(new_oral_antidepressant=False)).all()


def test_arguments_of_the_wrong_kind_are_named_not_a_bare_error(risk_model, train):
    """Each gave a TypeError, AttributeError, KeyError or a plain ValueError (a fuzz of the
    public API)."""
    from ketapredict import Population, Regimen, ValidationError, simulate_trial
    from ketapredict.external import evaluate_model

    course = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
    patient = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    for call, said in (
        (lambda: fit_risk_model(train, None), "outcomes must be an outcome's name or a list"),
        (lambda: risk_model.recalibrate(train, outcomes=1), "got 1"),
        (lambda: evaluate_model(risk_model, train, outcomes=1), "got 1"),
        (lambda: fit_risk_model(train, ["response"], provenance="my model"),
         "provenance must be a mapping"),
        (lambda: fit_risk_model(train, ["response"], interval_data=[{}]),
         "interval_data must be a DataFrame"),
        (lambda: risk_model.recalibrate(train, method="intercpt"),
         "method='intercpt' is not one of closed_test, intercept, intercept_slope (did you "
         "mean 'intercept'?)"),
        (lambda: risk_model.recalibrate(train, alpha=True), "alpha=True is not a level"),
        (lambda: simulate_trial(Population(), None, 10), "arms must map a label to each"),
        (lambda: risk_model.model_card(sample="x"), "sample must be a mapping"),
        (lambda: risk_model.model_card(description=5), "description must be text; got int"),
    ):  # fmt: skip
        with pytest.raises(ValidationError, match=re.escape(said)):
            call()
    comparison = risk_model.compare_regimens(patient, [course], horizon_day=28)
    with pytest.raises(KeyError, match="the comparison has no column 'respnse'; it has regimen"):
        comparison["respnse"]
    # any spelling of missing is the reference weight, as for a patient record
    assert course.exposure(weight_kg="") == course.exposure() == course.exposure(weight_kg="NA")


def test_a_model_a_save_would_refuse_is_refused_before_the_work(train):
    """The scoring bound and the provenance limit were met at save, after every replicate
    (1,000 of them) was fitted, or at the end of fit."""
    from ketapredict import ValidationError

    slow = {"n_estimators": 300, "max_depth": 12, "early_stopping_rounds": 300}
    with pytest.raises(ValidationError, match="with 1000 replicates, scoring one patient"):
        fit_risk_model(train, "response", replicates=1000, learning_rate=0.005, **slow)
    with pytest.raises(ValidationError, match="at most 49,152 may be the caller's"):
        fit_risk_model(train.head(0), "response", provenance={"notes_log": "x" * 60_000})


def test_the_training_ranges_a_model_keeps_are_no_patients_exact_values(risk_model):
    """With few patients the 0.5th and 99.5th percentiles are the youngest and oldest
    patients' ages, whole numbers that rounding keeps, and a report printed them (privacy
    reviews): each end leaves at least 11 patients beyond it, and is rounded outward."""
    from ketapredict.trees import rounded_outward

    low, high = (np.asarray(risk_model.reference[k]) for k in ("low", "high"))
    np.testing.assert_array_equal(rounded_outward(low, np.floor), low)
    np.testing.assert_array_equal(rounded_outward(high, np.ceil), high)
    small = simulate_cohort(n=60, seed=3).drop(columns="patient_id")
    small["age"] = np.r_[np.linspace(30, 59, 56), 19, 20, 82, 83]
    model = fit_risk_model(small, "response", replicates=2, n_estimators=20)
    age = model.reference["continuous"].index("age")
    youngest, oldest = model.reference["low"][age], model.reference["high"][age]
    ages = np.sort(small["age"].to_numpy())
    assert youngest > ages[9]  # not among the ten youngest, nor the ten oldest
    assert oldest < ages[-10]


def test_a_model_fitted_on_the_virtual_cohort_says_so_in_every_report(train):
    """Fitted from Python without a provenance, a model of simulated courses read "trained ?
    on unknown data" with no notice that it is not for clinical decisions."""
    from ketapredict import Regimen
    from ketapredict.card import VIRTUAL_COHORT_NOTICE
    from ketapredict.schema import columns

    course = Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40)
    patient = {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34}
    simulated = fit_risk_model(train, ["response"], n_estimators=20, replicates=0)

    def said(model):  # the report as read, whatever its line breaks
        return " ".join(str(model.score(patient, course, horizon_day=1)).split())

    text = said(simulated)
    assert VIRTUAL_COHORT_NOTICE in text
    assert f"trained {time.strftime('%Y-%m-%d')} on simulated data" in text
    # without true probabilities nothing says where the courses came from
    bare = train.drop(columns=[c for c in columns("truth") if c in train.columns])
    unknown = fit_risk_model(bare, ["response"], n_estimators=20, replicates=0)
    assert "data_kind" not in unknown.provenance
    assert VIRTUAL_COHORT_NOTICE not in said(unknown)
    told = fit_risk_model(
        bare, ["response"], n_estimators=20, replicates=0, provenance={"data_kind": "simulated"}
    )
    assert VIRTUAL_COHORT_NOTICE in said(told)

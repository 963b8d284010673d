import re
from pathlib import Path

import pytest

from ketapredict import ValidationError
from ketapredict.cli import main
from ketapredict.experiment import load_experiment, run_experiment
from ketapredict.models import outcome_models

SMALL = """
description = "small"
[data]
source = "simulated"
n = 1400
seed = 3
[features]
set = "core"
[outcomes]
names = ["response", "dissociation"]
[model]
n_estimators = 80
[validation]
scheme = "stratified_kfold"
n_splits = 3
bootstraps = 100
"""


def write(tmp_path, text, name="experiment.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_experiments_load():
    for name in ("baseline", "no_cognition", "tuned"):
        experiment = load_experiment(f"experiments/{name}.toml")
        assert experiment.name == name
        assert experiment.text.strip()
    baseline = load_experiment("baseline")
    assert baseline.spec.validation.scheme == "leave_one_trial_out"
    assert baseline.spec.outcomes.names == ["response", "cognitive_decline"]
    assert load_experiment("no_cognition").spec.features.set == "no_cognition"


def test_a_small_experiment_runs_end_to_end(tmp_path):
    experiment = load_experiment(write(tmp_path, SMALL))
    result = run_experiment(experiment)
    assert set(result.results) == {"response", "dissociation"}
    table = result.table()
    assert set(table["outcome"]) == {"response", "dissociation"}
    assert {"OutcomeModel", "logistic_regression", "oracle"} <= set(table["model"])
    assert result.data_kind == "simulated"
    assert experiment.parameters()["model.n_estimators"] == 80


def test_train_command_prints_the_metrics_table(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = write(tmp_path, SMALL.replace('"response", "dissociation"', '"response"'))
    assert main(["train", str(path), "--quiet"]) == 0
    captured = capfd.readouterr()
    printed = captured.out
    # MLflow's own INFO lines and its artifact progress bar stay out of the output
    for noise in ("INFO mlflow", "Downloading artifacts", "Creating initial MLflow"):
        assert noise not in captured.err + captured.out, noise
    assert "Virtual cohort" in printed
    assert "response: " in printed
    for column in ("within-arm AUC [95% CI]", "AUC [95% CI]", "PR AUC", "Brier", "ECE"):
        assert column in printed
    assert "so the AUC within arm is n/a" not in printed  # arms with enough events
    for model in (
        "OutcomeModel",
        "logistic_regression",
        "hist_gradient_boosting",
        "xgboost_default",
        "oracle",
    ):
        assert model in printed


def test_a_small_study_is_told_what_its_table_cannot_say(tmp_path):
    """50 courses in 3 folds: no arm within a fold had 5 events and 5 non-events, and the
    table printed n/a with no word of why or what to change."""

    text = SMALL.replace("n = 1400", "n = 60").replace('"response", "dissociation"', '"response"')
    result = run_experiment(load_experiment(write(tmp_path, text)))
    events = int(result.results["response"].metrics.iloc[0]["events"])
    table = " ".join(str(result).split())  # as read, whatever the line breaks
    assert "so the AUC within arm is n/a; fewer, larger folds (a smaller n_splits" in table
    assert f"note: {events} events and {60 - events} non-events: estimates" in table
    assert "Collins 2016" in table
    # a notebook shows what it is, never the patient table a dataclass's repr would print
    shown = repr(result)
    assert shown.startswith("ExperimentResult('experiment': response; 60 simulated courses")
    assert str(result.data["age"].iloc[0]) not in shown.replace("60 simulated", "")


def test_a_tuned_experiment_keeps_a_model_made_the_same_way(tmp_path):
    """Nested cross-validation scores "tune, then fit": the model kept is tuned on all the
    data by the same grid search, and says what it chose."""
    text = (
        SMALL.replace('"response", "dissociation"', '"response"')
        + "[tuning]\nmax_depth = [1, 3]\n[intervals]\nreplicates = 2\n"
    )
    result = run_experiment(load_experiment(write(tmp_path, text)))
    model = result.fit_model()
    assert repr(model).startswith("RiskModel('experiment': response; trained ")
    assert repr(model).endswith("simulated data; 90% intervals calibrated on new virtual trials)")
    chosen = model.provenance["tuned_parameters"]["response"]
    assert set(chosen) == {"max_depth"}
    assert outcome_models(model)["response"].max_depth == chosen["max_depth"] in (1, 3)
    assert "tuning" in result.timings


def test_experiment_from_a_csv_file(tmp_path, cohort):
    cohort.drop(columns=[c for c in cohort.columns if c.startswith("p_")]).to_csv(
        tmp_path / "trial.csv", index=False
    )
    text = (
        SMALL.replace('source = "simulated"', 'source = "trial.csv"')
        .replace("n = 1400\nseed = 3\n", "")
        .replace('"response", "dissociation"', '"response"')
    )
    result = run_experiment(load_experiment(write(tmp_path, text)))
    assert result.data_kind == "real"
    assert "oracle" not in result.results["response"].metrics.index
    # the same table with the simulator's truth columns is the virtual cohort, saved
    cohort.to_csv(tmp_path / "trial.csv", index=False)
    result = run_experiment(load_experiment(write(tmp_path, text)))
    assert result.data_kind == "simulated"  # so its model says "not for clinical decisions"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("[validation]", "[validation]\ncolour = 1"),
            "unknown key 'validation.colour'; expected scheme, n_splits, bootstraps, seed",
        ),
        (("[data]", "[daata]"), "unknown key 'daata'; expected description, data, features"),
        (('set = "core"', 'set = "core2"'), "features.set='core2': no feature set named"),
        (("n_estimators = 80", "n_estimator = 80"), "unknown key model.n_estimator"),
        (("n_estimators = 80", "max_depth = 0"), "model: The 'max_depth' parameter"),
        (('scheme = "stratified_kfold"', 'scheme = "random"'), "validation.scheme='random'"),
        (("n = 1400", "n = -4"), "data.n=-4"),
        (("n = 1400", 'n = "many"'), "data.n='many': Input should be a valid integer"),
        (
            ("n = 1400", "n = 1_000_000_000_000"),
            "data.n=1000000000000: Input should be less than or equal to 1000000 (the "
            "simulated cohort is held in memory",
        ),
        (("bootstraps = 100", "bootstraps = 100\nlearning_curve = [0]"), "learning_curve.0=0"),
        (
            ('"response", "dissociation"', '"response", "madrs_d7"'),
            "outcomes.names: 'madrs_d7' is not a binary outcome of the data contract; expected "
            "some of response, remission, cognitive_decline, dissociation",
        ),
        (
            ('source = "simulated"\nn = 1400\nseed = 3', 'source = "trial.xlsx"'),
            'expected "simulated" or a',
        ),
        (
            ("n_estimators = 80", "n_estimators = 80\n[tuning]\ndepth = [2, 3]"),
            "unknown key tuning.depth",
        ),
        (  # named where it was written: [model] was blamed (a review)
            ("n_estimators = 80", "n_estimators = 80\n[tuning]\nmax_depth = [2, 0]"),
            "tuning.max_depth=0: The 'max_depth' parameter",
        ),
        (  # the source is the mistake, not the n and seed a simulated cohort takes
            ('source = "simulated"', 'source = "simulate"'),
            "data.source='simulate': expected \"simulated\" or a patient table",
        ),
        (
            ('"response", "dissociation"', '"response", "response"'),
            "outcomes.names lists response more than once",
        ),
        (
            ("n_estimators = 80", "n_estimators = 80\n[tuning]\nmax_depth = []"),
            "tuning.max_depth is empty; give the values to try",
        ),
        (  # a grid of hours, refused before it starts (a review ran one for 13 minutes)
            (
                "n_estimators = 80",
                "n_estimators = 80\n[tuning]\nmax_depth = [1, 2, 3, 4, 5]\n"
                "learning_rate = [0.01, 0.02, 0.05, 0.1, 0.2]\nsubsample = [0.6, 0.8, 1.0]",
            ),
            "the [tuning] grid has 75 combinations",
        ),
        (
            ("n_estimators = 80", "n_estimators = 80\n[intervals]\nreplicates = 1"),
            "intervals.replicates=1: Input should be greater than or equal to 2",
        ),
        # values of another type are refused, not converted
        (("n = 1400", "n = true"), "data.n=True: Input should be a valid integer"),
        (("n = 1400", 'n = "1400"'), "data.n='1400': Input should be a valid integer"),
        (("bootstraps = 100", 'bootstraps = 100\npeers = "off"'), "validation.peers='off'"),
        # values that passed the file and failed once the work had started
        (("seed = 3", "seed = 4294967296"), "data.seed=4294967296: Input should be less than"),
        (("n_estimators = 80", "n_jobs = 0"), "The 'n_jobs' parameter of OutcomeModel"),
        (("n_estimators = 80", "reg_alpha = 1e308"), "The 'reg_alpha' parameter of Outcome"),
        (("n_estimators = 80", 'monotone = {age = "up"}'), "monotone['age']='up': expected -1"),
        (("n_estimators = 80", "monotone = {age = 5}"), "monotone['age']=5: expected -1"),
        (("n_estimators = 80", "monotone = {age = 1.0}"), "monotone['age']=1.0: expected -1"),
        # keys that would have been ignored
        (
            ('source = "simulated"', 'source = "trial.csv"'),
            "[data]: n, seed would be ignored: the data",
        ),
        (("seed = 3", 'seed = 3\npath = "study"'), "path would be ignored: the virtual cohort"),
        (
            (
                'source = "simulated"\nn = 1400\nseed = 3',
                'format = "bids"\nmapping = "m.toml"\nadsl = "a.xpt"',
            ),
            "adsl would be ignored: a bids study is read through its mapping",
        ),
        (
            ('scheme = "stratified_kfold"', 'scheme = "leave_one_trial_out"'),
            "n_splits would be ignored: leave_one_trial_out has one fold per trial",
        ),
    ],
)
def test_bad_experiment_files_name_the_file_and_key(tmp_path, change, message):
    path = write(tmp_path, SMALL.replace(*change))
    with pytest.raises(ValidationError, match=re.escape(message)) as caught:
        load_experiment(path)
    assert str(path) in str(caught.value)


def test_data_problems_are_reported_before_training(tmp_path, cohort):
    missing = SMALL.replace(
        'source = "simulated"\nn = 1400\nseed = 3', 'source = "nowhere.parquet"'
    )
    with pytest.raises(ValidationError, match=re.escape("data.source='nowhere.parquet': no such")):
        load_experiment(write(tmp_path, missing))  # at load: before the cohort is made
    # an outcome the contract declares but the table does not record
    cohort.drop(columns=["dissociation"]).head(600).to_csv(tmp_path / "trial.csv", index=False)
    text = SMALL.replace('source = "simulated"\nn = 1400\nseed = 3', 'source = "trial.csv"')
    experiment = load_experiment(write(tmp_path, text))
    with pytest.raises(
        ValidationError, match=re.escape("outcome column 'dissociation' is not in the data")
    ):
        run_experiment(experiment)
    curve = SMALL.replace("bootstraps = 100", "bootstraps = 100\nlearning_curve = [1000]")
    with pytest.raises(
        ValidationError,
        match=re.escape("learning_curve sizes [1000] exceed the 980 training courses of response"),
    ):
        run_experiment(load_experiment(write(tmp_path, curve)))  # not after the folds


@pytest.mark.parametrize("name", ["...toml", ".hidden.toml", "my run.toml", "a;b.toml"])
def test_an_experiment_name_must_be_a_plain_file_name(tmp_path, name):
    """The name files the MLflow runs and names their directory under mlruns/: refused, not
    cleaned, when it is not letters, digits, '-', '_' and '.' (no leading dot)."""
    with pytest.raises(ValidationError, match="rename the file") as caught:
        load_experiment(write(tmp_path, SMALL, name))
    assert repr(name.removesuffix(".toml")) in str(caught.value)


def test_a_plain_experiment_name_is_kept(tmp_path):
    assert load_experiment(write(tmp_path, SMALL, "run-2_v1.2.toml")).name == "run-2_v1.2"


def test_missing_experiment_file():
    with pytest.raises(ValidationError, match="does not exist"):
        load_experiment("experiments/nothing.toml")


def test_a_byte_order_mark_is_read_past_and_odd_paths_are_named_for_what_they_are(tmp_path):
    """A Windows editor's byte-order mark is no part of the TOML; a pipe is not a missing
    file; an empty name is not a directory."""
    import os

    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff".encode() + SMALL.encode())
    experiment = load_experiment(path)
    assert experiment.spec.data.n == 1400
    assert experiment.text.startswith("\ufeff")  # the file as written
    os.mkfifo(tmp_path / "pipe.csv")
    text = SMALL.replace('source = "simulated"\nn = 1400\nseed = 3', 'source = "pipe.csv"')
    with pytest.raises(ValidationError, match="is not a regular file \\(a device or a pipe\\)"):
        load_experiment(write(tmp_path, text))
    with pytest.raises(ValidationError, match="no experiment file given"):
        load_experiment("")


def test_a_feature_set_file_is_found_next_to_the_experiment_as_its_data_are(tmp_path, monkeypatch):
    from ketapredict.experiment import load_experiment

    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "mine.toml").write_text(
        '[groups.a]\nsteps = [{ encoder = "numeric", columns = ["age"] }]\n'
    )
    (folder / "runs.toml").write_text('[features]\nset = "mine.toml"\n')
    monkeypatch.chdir(tmp_path)  # not the experiment's directory
    experiment = load_experiment("study/runs.toml")
    assert experiment.spec.features.set == str(Path("study") / "mine.toml")


def test_a_peer_that_learnt_nothing_is_said_to_say_nothing(tmp_path):
    """HistGradientBoosting on 25 courses a fold gave each course of a fold one probability:
    "0.500 [0.500, 0.500]" looked certain."""
    from ketapredict.io import example_study

    (tmp_path / "study.toml").write_text(
        f'[data]\nformat = "bids"\nmapping = "{example_study("bids") / "mapping.toml"}"\n'
        '[outcomes]\nnames = ["response"]\n'
        '[validation]\nscheme = "stratified_kfold"\nn_splits = 2\nbootstraps = 50\n'
    )
    table = " ".join(str(run_experiment(load_experiment(tmp_path / "study.toml"))).split())
    assert (
        "note: hist_gradient_boosting, hist_gradient_boosting_encoded gave every course of a "
        "fold the same probability (nothing learnt from so few courses): their AUCs in such a "
        "fold (0.500, with no spread) say nothing of how they rank" in table
    )
    assert "OutcomeModel gave every" not in table


def test_the_example_studys_experiment_runs_where_the_study_is_installed(tmp_path):
    """The README's step 5 trains on the shipped example; its mapping path is relative to
    the experiment file, so a copied folder (or an installed wheel) reads it too."""
    import shutil

    from ketapredict.io import example_study

    folder = shutil.copytree(example_study("bids"), tmp_path / "my_study")
    result = run_experiment(load_experiment(folder / "example_bids.toml"))
    assert result.experiment.name == "example_bids"
    assert list(result.results) == ["response"]
    assert len(result.data) == 50
    # its patients are simulated, and its model says so (a newcomer's review: "real data")
    assert result.data_kind == "simulated"

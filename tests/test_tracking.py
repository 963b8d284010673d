"""MLflow tracking against real stores: SQLite files, the MLflow UI and server on loopback."""

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from servers import free_port, post, wait_for

from ketapredict import RiskModel, tracking
from ketapredict.cli import main
from ketapredict.models import outcome_models
from ketapredict.tracking import TrackingError, input_example, log_experiment, tracking_uri
from ketapredict.tracking import _store as tracking_store

EXPERIMENT = """
description = "tracking test"
[data]
source = "simulated"
n = 1300
seed = 2
[features]
set = "{features}"
[outcomes]
names = ["response", "dissociation"]
[model]
n_estimators = {n_estimators}
[intervals]
replicates = 4
[validation]
scheme = "stratified_kfold"
n_splits = 3
bootstraps = 100
{extra}
"""


def write_experiment(
    folder: Path,
    name: str = "small",
    n_estimators: int = 60,
    extra: str = "",
    features: str = "core",
) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(EXPERIMENT.format(n_estimators=n_estimators, extra=extra, features=features))
    return path


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh directory with the default local store (sqlite:///mlruns/mlflow.db)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two `ketapredict train` runs into one store: experiments `small` (core features, 60
    trees, a learning curve) and `small_no_cognition` (no cognition, 20 trees, registered)."""
    folder = tmp_path_factory.mktemp("runs")
    previous = os.getcwd()
    saved_uri = os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.chdir(folder)
    try:
        path = write_experiment(folder, extra="learning_curve = [200]")
        assert main(["train", str(path), "--quiet"]) == 0
        path = write_experiment(
            folder, "small_no_cognition", n_estimators=20, features="no_cognition"
        )
        assert main(["train", str(path), "--quiet", "--register", "ketapredict-small"]) == 0
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
        runs = mlflow.search_runs(experiment_names=["small", "small_no_cognition"])
        yield folder, runs
    finally:
        os.chdir(previous)
        if saved_uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved_uri


def test_default_store_is_sqlite_under_mlruns(store):
    assert tracking_uri() == "sqlite:///mlruns/mlflow.db"


def test_two_experiments_compare_in_one_store(two_runs):
    """What the MLflow UI's comparison needs: names that say which experiment, params that
    differ where the runs differ, the same metric keys, folds as a table, one dataset."""
    from mlflow.tracking import MlflowClient

    folder, runs = two_runs
    client = MlflowClient()
    assert (folder / "mlruns" / "mlflow.db").is_file()
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(parents) == 2
    assert sorted(children["tags.mlflow.runName"]) == [
        "small / dissociation",
        "small / response",
        "small_no_cognition / dissociation",
        "small_no_cognition / response",
    ]
    # every effective hyperparameter, defaults included, and what was fitted
    for column in (
        "model.n_estimators",
        "model.learning_rate",
        "model.max_depth",
        "features.set",
        "validation.scheme",
    ):
        assert runs[f"params.{column}"].notna().all(), column
    assert children["params.model.n_rounds_fitted"].notna().all()
    assert parents["params.response.n_rounds_fitted"].notna().all()
    assert set(parents["params.model.n_estimators"]) == {"60", "20"}
    assert set(children["params.features.set"]) == {"core", "no_cognition"}
    assert set(children["params.model.learning_rate"]) == {"0.05"}
    # the primary outcome is the experiment's (the parent's); a child is one outcome's
    assert parents["tags.primary_outcome"].notna().all()
    assert children.get("tags.primary_outcome", pd.Series(dtype=object)).isna().all()
    # the same metric keys on both experiments' parents, and on their children by outcome
    metric_columns = [c for c in runs.columns if c.startswith("metrics.")]
    for group in (
        parents,
        *[children[children["tags.outcome"] == o] for o in ("response", "dissociation")],
    ):
        keys = [{c for c in metric_columns if pd.notna(row[c])} for _, row in group.iterrows()]
        assert keys[0] == keys[1]
        assert "metrics.response/within_arm/auc" in keys[0] or (
            "metrics.dissociation/within_arm/auc" in keys[0]
        )
    # a number has one name: the parent's response/all/auc is its child's
    for _, parent in parents.iterrows():
        child = children[
            (children["tags.mlflow.parentRunId"] == parent["run_id"])
            & (children["tags.outcome"] == "response")
        ].iloc[0]
        assert parent["metrics.response/all/auc"] == child["metrics.response/all/auc"]
    # per-fold results as a table naming the held-out fold, not as steps
    child = children.iloc[0]
    folds = pd.read_csv(
        client.download_artifacts(child["run_id"], "tables/folds.csv", str(folder))
    )
    assert {"model", "fold", "within_arm_auc", "auc"} <= set(folds.columns)
    assert folds["fold"].nunique() == 3
    # one dataset, under one name, in both experiments
    names = set()
    for run_id in runs["run_id"]:
        for entry in client.get_run(run_id).inputs.dataset_inputs:
            names.add((entry.dataset.name, entry.dataset.digest))
    assert len(names) == 1
    name, _ = names.pop()
    assert name == "ketapredict.simulate_cohort(n=1300, seed=2)"


def test_a_run_logs_what_was_promised(two_runs):
    import mlflow
    from mlflow.tracking import MlflowClient

    _, runs = two_runs
    client = MlflowClient()
    child = runs[runs["tags.mlflow.runName"] == "small / response"].iloc[0]
    run = client.get_run(child["run_id"])
    metrics = run.data.metrics
    for key in (
        "response/within_arm/auc",
        "response/within_arm/auc_low",
        "response/within_arm/auc_high",
        "response/active/ece",
        "response/active/calibration_slope",
        "response/folds/within_arm_auc_mean",
        "response/logistic_regression_encoded/within_arm/auc",
        "response/all/auc",
        "response/all/auc_low",
        "response/all/pr_auc",
        "response/all/brier",
        "response/all/ece",
        "response/all/calibration_slope",
        "response/folds/auc_mean",
        "response/folds/auc_sd",
        "response/logistic_regression/all/auc",
        "response/xgboost_default/all/brier",
        "response/oracle/all/auc",
        "response/time/validation_s",
    ):
        assert key in metrics, key
    assert not client.get_metric_history(run.info.run_id, "fold_auc")
    tags = run.data.tags
    assert tags["data_kind"] == "simulated"
    assert tags["not_for_clinical_decisions"]
    # ketapredict's own source commit, from this checkout
    assert re.fullmatch(r"[0-9a-f]{40}", tags["ketapredict.git_commit"])
    assert tags["ketapredict.version"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {
        "plots/roc.png",
        "plots/calibration.png",
        "plots/decision_curve.png",
        "plots/learning_curve.png",
    } <= artifacts
    assert any("shap" in path for path in artifacts)
    tables = {a.path for a in client.list_artifacts(run.info.run_id, "tables")}
    assert tables == {"tables/folds.csv", "tables/subgroups.csv", "tables/calibration.csv"}
    bins = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/tables/calibration.csv")
    )
    ours = bins[bins["model"] == "OutcomeModel"]
    assert ours["n"].sum() == int(run.data.params["rows"])
    assert ours["n"].max() - ours["n"].min() <= 0.1 * ours["n"].max()  # equal counts
    text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/experiment.toml")
    assert "tracking test" in text
    dataset = run.inputs.dataset_inputs[0].dataset
    assert dataset.digest
    assert dataset.source_type == "code"
    assert "patient_id" not in dataset.schema
    assert "madrs_baseline" in dataset.schema
    assert json.loads(dataset.profile)["courses"] == 1300
    # the parent spans the whole job, and carries the experiment's description and card
    parent = client.get_run(child["tags.mlflow.parentRunId"])
    assert parent.info.end_time - parent.info.start_time >= (
        run.info.end_time - run.info.start_time
    )
    assert parent.data.metrics["time/final_model_s"] > 0
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.note.content"] == "tracking test"
    card = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/model_card.md")
    assert "Not for clinical decisions" in card
    assert "## Subgroups" in card


def test_no_identifier_or_patient_row_reaches_mlflow(two_runs):
    folder, runs = two_runs
    text = runs.astype(str).to_csv()
    assert "patient_id" not in text
    assert not re.search(r"\w+-\d{6}", text), "a simulated patient id was logged"
    for file in (folder / "mlruns").rglob("*"):
        if (
            file.suffix in (".json", ".yaml", ".toml", ".txt", ".csv", ".MLmodel")
            or file.name == "MLmodel"
        ):
            content = file.read_text(errors="ignore")
            assert "patient_id" not in content, file
            assert not re.search(r"small-\d{6}|zarate2006-\d{6}", content), file
    assert not list((folder / "mlruns").rglob("*.pkl")), "a pickle was logged"


@pytest.fixture(scope="module")
def pyfunc(two_runs):
    import mlflow

    folder, runs = two_runs
    # other tests point MLflow elsewhere (a server, their own store) in between
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    parent = runs[runs["tags.mlflow.runName"].str.startswith("small ")].iloc[0]
    model_uri = mlflow.search_logged_models(
        experiment_ids=[parent["experiment_id"]], output_format="list"
    )[0].model_uri
    return model_uri, mlflow.pyfunc.load_model(model_uri)


def test_logged_model_loads_as_pyfunc_and_predicts_each_outcome(pyfunc):
    _, model = pyfunc
    risk_model = model.get_raw_model()
    assert isinstance(risk_model, RiskModel)
    example = input_example(risk_model)
    predictions = model.predict(example)
    assert list(predictions.columns) == ["response", "dissociation"]
    assert ((predictions > 0) & (predictions < 1)).all().all()
    signature = model.metadata.get_input_schema().input_names()
    assert "madrs_baseline" in signature
    assert "patient_id" not in signature


def test_the_logged_model_carries_no_code_and_no_path_of_this_machine(pyfunc, two_runs, tmp_path):
    """MLflow loads the model with the installed package's loader; nothing executable
    travels in the artifact, and MLmodel names no folder of the training machine."""
    import mlflow
    import yaml

    import ketapredict

    folder, _ = two_runs
    model_uri, _ = pyfunc
    local = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path)))
    described = yaml.safe_load((local / "MLmodel").read_text())
    flavor = described["flavors"]["python_function"]
    assert flavor["loader_module"] == "ketapredict._mlflow_pyfunc"
    assert flavor["data"] == "data/risk_model"
    assert flavor.get("code") is None
    assert "python_model" not in flavor
    assert described["artifact_path"] == model_uri
    assert not [p for p in local.rglob("*") if p.suffix in (".py", ".pyc", ".pkl", ".so")]
    assert (local / "data" / "risk_model" / "manifest.json").is_file()
    requirements = (local / "requirements.txt").read_text().splitlines()
    assert f"ketapredict=={ketapredict.__version__}" in requirements
    source = Path(ketapredict.__file__).resolve().parents[1]
    for name in ("MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml"):
        text = (local / name).read_text()
        for path in (str(folder), str(source), str(Path.home()), "/tmp/"):
            assert path not in text, (name, path)


def test_the_pyfunc_refuses_an_edited_model(pyfunc, tmp_path):
    """``mlflow.pyfunc.load_model`` verifies the model's files as ``load_model`` does."""
    import mlflow

    from ketapredict import ModelFileError

    model_uri, _ = pyfunc
    local = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path)))
    calibrator = local / "data" / "risk_model" / "response.json"
    calibrator.write_bytes(calibrator.read_bytes() + b" ")
    with pytest.raises(ModelFileError, match=re.escape("response.json")):
        mlflow.pyfunc.load_model(str(local))


def test_the_pyfunc_takes_our_own_tables(pyfunc):
    """The contract's dtypes (categories, nullable integers and booleans) and plain ones."""
    from ketapredict import simulate_cohort, validate

    _, model = pyfunc
    table = validate(simulate_cohort(200, seed=1))
    assert {"category", "Int64", "boolean"} <= {str(t) for t in table.dtypes}
    ours = model.predict(table)
    assert ours.shape == (len(table), 2)
    assert ours.notna().all().all()
    assert ((ours >= 0) & (ours <= 1)).all().all()
    plain = table.astype({c: object for c in table.columns if str(table[c].dtype) != "float64"})
    pd.testing.assert_frame_equal(model.predict(plain), ours)
    alone = model.predict(table, params={"outcome": "dissociation"})
    assert list(alone.columns) == ["dissociation"]
    from ketapredict import ValidationError

    with pytest.raises(ValidationError, match="outcome='remission'"):
        model.predict(table, params={"outcome": "remission"})


def test_mlflow_evaluate_scores_one_outcome(pyfunc):
    import mlflow

    from ketapredict import simulate_cohort, validate
    from ketapredict.tracking import risk_metrics

    model_uri, _ = pyfunc
    data = validate(simulate_cohort(300, seed=5)).dropna(subset=["response"])
    data["response"] = data["response"].astype(int)
    with mlflow.start_run(experiment_id=mlflow.create_experiment("evaluated")):
        result = mlflow.models.evaluate(
            model_uri,
            data,
            targets="response",
            predictions="response",
            extra_metrics=risk_metrics(),
        )
    assert 0.5 < result.metrics["auc"] < 1
    assert 0 < result.metrics["brier"] < 0.25
    assert result.metrics["observed"] == pytest.approx(data["response"].mean())


def test_registration_names_a_champion_and_a_challenger(two_runs):
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    versions = client.search_model_versions("name='ketapredict-small'")
    assert len(versions) == 1
    version = client.get_model_version_by_alias("ketapredict-small", "champion")
    assert str(version.version) == "1"
    # what the registry shows: a description and tags on the model and the version
    assert "Not for clinical decisions" in version.description
    assert version.tags["data_kind"] == "simulated"
    assert version.tags["feature_set"] == "no_cognition"
    assert version.tags["alias_reason"] == "champion: no champion yet"
    assert float(version.tags["response/within_arm/auc"]) > 0.5
    assert client.get_registered_model("ketapredict-small").description


def test_a_registered_model_loads_for_the_clinic(two_runs, capfd, monkeypatch):
    from ketapredict import load_model
    from ketapredict.schema import columns, example_course

    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    model = load_model("models:/ketapredict-small@champion")
    assert "Downloading artifacts" not in capfd.readouterr().err  # MLflow's bars
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")  # the user's choice
    load_model("models:/ketapredict-small@champion")
    assert "Downloading artifacts" in capfd.readouterr().err
    assert model.provenance["name"] == "small_no_cognition"
    patient = {k: v for k, v in example_course().items() if k in columns("baseline")}
    report = model.score(patient, {"drug": "ketamine", "route": "im", "dose": 0.5})
    assert set(report.risks) == set(model.outcomes)
    assert all(0 < r.probability < 1 for r in report.risks.values())


def test_loading_a_logged_model_leaves_no_temporary_directory(two_runs, tmp_path, monkeypatch):
    import tempfile

    from ketapredict import load_model
    from ketapredict.schema import columns, example_course

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = load_model("models:/ketapredict-small@champion")
    assert list(tmp_path.iterdir()) == []
    # every byte was read at load: the model scores with its files gone
    patient = {k: v for k, v in example_course().items() if k in columns("baseline")}
    report = model.score(patient, {"drug": "ketamine", "route": "im", "dose": 0.5})
    assert all(0 < r.probability < 1 for r in report.risks.values())


@pytest.mark.parametrize(
    "uri",
    [
        "models:/no-such-model@champion",
        "models:/ketapredict-small/99",
        "models:/ketapredict-small@no-such-alias",
        "runs:/0123456789abcdef0123456789abcdef/risk_model",
    ],
)
def test_a_missing_logged_model_is_a_model_file_error(two_runs, uri):
    from ketapredict import ModelFileError, load_model

    with pytest.raises(ModelFileError, match=re.escape(f"no ketapredict model at {uri!r}")):
        load_model(uri)


def test_reading_a_store_never_creates_one(store):
    from ketapredict import ModelFileError, load_model

    with pytest.raises(ModelFileError, match="no MLflow store at"):
        load_model("models:/ketapredict-small@champion")
    assert list(store.iterdir()) == []
    (store / "mlruns").mkdir()
    (store / "mlruns" / "mlflow.db").touch()  # an empty file MLflow would fill with tables
    with pytest.raises(ModelFileError, match="is not an MLflow store"):
        load_model("models:/ketapredict-small@champion")
    assert (store / "mlruns" / "mlflow.db").stat().st_size == 0
    assert [p.name for p in (store / "mlruns").iterdir()] == ["mlflow.db"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One small experiment run and its fitted model, shared by the registry tests."""
    from ketapredict.experiment import load_experiment, run_experiment

    folder = tmp_path_factory.mktemp("fitted")
    path = write_experiment(folder, "registry", n_estimators=30, extra="peers = false")
    result = run_experiment(load_experiment(path))
    return path, result, result.fit_model()


def test_register_keeps_the_better_model_as_champion(store, fitted):
    import copy

    from mlflow.tracking import MlflowClient

    _, good, model = fitted
    assert model.provenance["replicates"] == 4  # the experiment file's [intervals]
    first = log_experiment(good, good.data, model, register="registry-model")
    assert first.registered["alias"] == "champion"
    assert np.isfinite(first.registered["within_arm_auc"])
    worse = copy.deepcopy(good)
    for result in worse.results.values():  # the same model, reported 0.2 AUC worse within arm
        result.metrics.loc["OutcomeModel", "within_arm_auc"] -= 0.2
    second = log_experiment(worse, worse.data, model, register="registry-model")
    assert second.registered["alias"] == "challenger"
    assert second.registered["reason"].startswith("does not beat version 1 (")
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("registry-model", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("registry-model", "challenger").version) == "2"
    # far better on the primary outcome, but without the champion's dissociation
    narrower = copy.deepcopy(good)
    del narrower.results["dissociation"]
    narrower.results["response"].metrics.loc["OutcomeModel", "within_arm_auc"] += 0.2
    third = log_experiment(narrower, narrower.data, model, register="registry-model")
    assert third.registered["alias"] == "challenger"
    assert third.registered["reason"] == (
        "predicts no dissociation, which champion version 1 predicts"
    )
    # the version that was challenger says until when
    second_tags = client.get_model_version("registry-model", "2").tags
    assert second_tags["alias_reason"].startswith("was challenger until version 3 (")
    # better by a hair: promoted, and said to be possibly chance
    hair = copy.deepcopy(good)
    hair.results["response"].metrics.loc["OutcomeModel", "within_arm_auc"] += 0.001
    fourth = log_experiment(hair, hair.data, model, register="registry-model")
    assert fourth.registered["alias"] == "champion"
    assert fourth.registered["reason"].endswith("the gain may be chance")
    first_tags = client.get_model_version("registry-model", "1").tags
    assert first_tags["alias_reason"].startswith("was champion until version 4 (beats")


def test_run_parameters_are_what_each_run_fitted(fitted):
    """An outcome's child says its own folds (leave-one-trial-out drops the trials that did
    not measure it), and the parent's model.* are the model kept, tuned values included."""
    import copy

    from ketapredict.tracking import run_parameters

    _, result, model = fitted
    result = copy.deepcopy(result)
    folds = result.results["dissociation"].fold_metrics
    result.results["dissociation"].fold_metrics = folds[folds["fold"] != folds["fold"].max()]
    assert run_parameters(result, "response")["validation.folds"] == 3
    assert run_parameters(result, "dissociation")["validation.folds"] == 2
    assert run_parameters(result)["validation.folds"] == "3 response, 2 dissociation"
    model = copy.deepcopy(model)
    outcome_models(model)["response"].set_params(max_depth=3)  # as a grid search would have chosen
    parent = run_parameters(result, None, model)
    assert parent["model.max_depth"] == 3
    assert parent["dissociation.min_child_weight_fitted"] == round(
        float(outcome_models(model)["dissociation"].min_child_weight_), 4
    )
    assert "model.n_rounds_fitted" not in parent  # by outcome on the parent


def test_champion_rule_compares_only_like_with_like(store, fitted):
    """A run on other data, or validated another way, never takes the champion's place on
    its AUC, however much higher it is."""
    from ketapredict.experiment import load_experiment, run_experiment

    path, first, model = fitted
    tracked = log_experiment(first, first.data, model, register="like-model")
    assert tracked.registered["alias"] == "champion"
    other_path = store / "like.toml"
    other_path.write_text(
        path.read_text().replace('scheme = "stratified_kfold"', 'scheme = "grouped_kfold"')
    )
    other = run_experiment(load_experiment(other_path))
    for result in other.results.values():
        result.metrics.loc["OutcomeModel", "within_arm_auc"] += 0.2
    second = log_experiment(other, other.data, model, register="like-model")
    assert second.registered["alias"] == "challenger"
    assert second.registered["reason"] == (
        "not comparable with champion version 1: other validation scheme"
    )
    # the same data and scheme, other folds: an AUC on other folds is not like for like
    reseeded = store / "reseeded.toml"
    text = path.read_text()
    assert "[validation]\n" in text
    reseeded.write_text(text.replace("[validation]\n", "[validation]\nseed = 9\n", 1))
    third = run_experiment(load_experiment(reseeded))
    for result in third.results.values():
        result.metrics.loc["OutcomeModel", "within_arm_auc"] += 0.2
    tracked = log_experiment(third, third.data, model, register="like-model")
    assert tracked.registered["reason"] == (
        "not comparable with champion version 1: other validation folds"
    )
    # a champion logged before the folds were tagged: its folds come from its parameters
    import copy

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    champion = client.get_model_version_by_alias("like-model", "champion")
    client.delete_tag(champion.run_id, "validation_folds")
    better = copy.deepcopy(first)
    for result in better.results.values():
        result.metrics.loc["OutcomeModel", "within_arm_auc"] += 0.2
    fourth = log_experiment(better, better.data, model, register="like-model")
    assert fourth.registered["alias"] == "champion"
    assert fourth.registered["reason"].startswith("beats version 1")


def test_an_unreachable_server_is_refused_before_training(store, monkeypatch, capsys):
    """Reachability is checked first (tests/test_tracking_faults.py: a server that fails
    only after training, and the model saved locally then)."""
    import time

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    path = write_experiment(store, "offline")
    began = time.perf_counter()
    assert main(["train", str(path), "--quiet"]) == 1
    assert time.perf_counter() - began < 10
    error = capsys.readouterr().err
    assert "is unreachable" in error
    assert "nothing was trained" in error
    assert not (store / "models").exists()


def test_the_file_store_is_refused(store, monkeypatch, fitted):
    _, result, _ = fitted
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:./mlruns")
    with pytest.raises(TrackingError, match="deprecated file store"):
        log_experiment(result, result.data)


@pytest.mark.slow  # a server; test_cli.py's test_ui_stops_with_its_server starts one by default
def test_the_ui_serves_the_runs_over_http(two_runs):
    folder, _ = two_runs
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ketapredict.cli", "ui", "--port", str(port)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    )
    try:
        first_line = process.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+)", first_line).group(1)
        assert url == f"http://127.0.0.1:{port}"
        wait_for(port)
        found = post(f"{url}/api/2.0/mlflow/experiments/search", {"max_results": 10})
        ids = [
            e["experiment_id"]
            for e in found["experiments"]
            if e["name"] in ("small", "small_no_cognition")
        ]
        runs = post(f"{url}/api/2.0/mlflow/runs/search", {"experiment_ids": ids})["runs"]
        assert len(runs) == 6
        names = [
            {m["key"] for m in r["data"].get("metrics", [])}
            for r in runs
            if not any(t["key"] == "mlflow.parentRunId" for t in r["data"].get("tags", []))
        ]
        assert names[0] == names[1]
        with urllib.request.urlopen(f"{url}/", timeout=10) as page:
            assert page.status == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


# -- real MLflow server and scoring server (slow) ----------------------------------------------
@pytest.mark.slow
def test_train_against_a_real_tracking_server(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/server.db",
            "--artifacts-destination",
            (tmp_path / "artifacts").as_uri(),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(port, timeout=120)
        uri = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.chdir(tmp_path)
        assert main(["train", str(write_experiment(tmp_path, "served")), "--quiet"]) == 0
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("served")
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) == 3
        child = next(r for r in runs if r.data.tags.get("outcome") == "response")
        assert 0.5 < child.data.metrics["response/all/auc"] <= 1
        paths = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        assert "plots/roc.png" in paths
        assert not list(tmp_path.glob("mlruns")), "logged locally instead of to the server"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_logged_model_is_served_over_http(store):
    import mlflow

    from ketapredict.experiment import load_experiment, run_experiment

    result = run_experiment(load_experiment(write_experiment(store, "serving")))
    model = result.fit_model()
    tracked = log_experiment(result, result.data, model)
    port = free_port()
    serving = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            tracked.model_uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--env-manager",
            "local",
        ],
        cwd=store,
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
            # the scoring server starts the uvicorn script that sits beside this Python
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(port, timeout=120)
        patient = input_example(model).replace({np.nan: None}).to_dict(orient="split")
        patient.pop("index", None)
        answer = post(f"http://127.0.0.1:{port}/invocations", {"dataframe_split": patient})
        predictions = pd.DataFrame(answer["predictions"])
        assert list(predictions.columns) == ["response", "dissociation"]
        assert predictions.iloc[0].between(0, 1).all()
    finally:
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(timeout=30)


@pytest.mark.slow
def test_a_logged_model_serves_from_a_fresh_environment(store, tmp_path_factory):
    """What the logged model names is enough: a new virtualenv with its requirements.txt
    installed serves it with `mlflow models serve`. No code travels with the model: the
    requirements pin ketapredict, installed here from a wheel of this checkout that pip
    finds through PIP_FIND_LINKS (as a team would point pip at its own index)."""
    import mlflow

    import ketapredict
    from ketapredict import load_model

    model = load_model()
    with tracking_store():
        with mlflow.start_run():
            uri = tracking._log_model(model)
        local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(store / "model")))
    # the files land in the directory itself, as the README's `-r model/requirements.txt` says
    assert (store / "model" / "requirements.txt").is_file()
    assert not (local / "code").exists()
    requirements = (local / "requirements.txt").read_text()
    assert f"ketapredict=={ketapredict.__version__}" in requirements.splitlines()
    wheels = tmp_path_factory.mktemp("wheels")
    checkout = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), checkout],
        check=True,
        timeout=600,
    )
    env = tmp_path_factory.mktemp("env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", str(local / "requirements.txt")],
        check=True,
        timeout=1800,
        env={**os.environ, "PIP_FIND_LINKS": str(wheels)},
    )
    found = subprocess.run(
        [str(python), "-c", "import ketapredict._mlflow_pyfunc as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=store,
    )
    assert found.stdout.strip().startswith(str(env))  # the installed wheel, not this checkout
    port = free_port()
    serving = subprocess.Popen(
        [
            str(python),
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            str(local),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--env-manager",
            "local",
        ],
        cwd=store,
        env={**os.environ, "PATH": f"{env / 'bin'}{os.pathsep}{os.environ['PATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(port, timeout=180)
        patient = input_example(model).replace({np.nan: None}).to_dict(orient="split")
        patient.pop("index", None)
        answer = post(f"http://127.0.0.1:{port}/invocations", {"dataframe_split": patient})
        predictions = pd.DataFrame(answer["predictions"])
        assert list(predictions.columns) == model.outcomes
        assert predictions.iloc[0].between(0, 1).all()
        one = post(
            f"http://127.0.0.1:{port}/invocations",
            {"dataframe_split": patient, "params": {"outcome": "response"}},
        )
        assert list(pd.DataFrame(one["predictions"]).columns) == ["response"]
    finally:
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(timeout=30)


@pytest.mark.slow
def test_code_planted_in_a_logged_model_does_not_run(pyfunc, tmp_path):
    """An attacker who can write the artifact adds a ketapredict package and loader files
    beside the model: a fresh process that loads it with MLflow runs none of them (the
    models logged before this issue put ``code/`` first on ``sys.path``)."""
    import mlflow

    model_uri, _ = pyfunc
    local = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path / "m")))
    marker = tmp_path / "planted-code-ran"
    payload = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for planted in (
        "code/ketapredict/__init__.py",
        "code/ketapredict/_mlflow_pyfunc.py",
        "code/_mlflow_pyfunc.py",
        "_mlflow_pyfunc.py",
        "python_model.py",
    ):
        (local / planted).parent.mkdir(parents=True, exist_ok=True)
        (local / planted).write_text(payload)
    script = (
        "import sys, mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model({str(local)!r})\n"
        "print(model.predict(model.input_example).shape)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), marker.read_text()


def test_the_store_follows_the_current_directory(tmp_path, monkeypatch, fitted):
    """MLflow caches stores by URI; the relative default must not stick to its first folder."""
    import mlflow

    _, result, _ = fitted
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        log_experiment(result, result.data)
    for folder in ("first", "second"):
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path / folder / 'mlruns' / 'mlflow.db'}")
        runs = mlflow.search_runs(experiment_names=["registry"])
        assert len(runs) == 3, folder  # one parent, two outcomes

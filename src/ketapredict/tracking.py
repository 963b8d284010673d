"""MLflow tracking: where runs go, what a run logs, the model registry and the UI.

Runs go to ``sqlite:///mlruns/mlflow.db`` with artifacts under ``mlruns/``, relative to the
current directory, unless ``MLFLOW_TRACKING_URI`` names another store (a team's MLflow
server). MLflow's file-store backend is deprecated and never used.

``ketapredict train`` logs one parent run per experiment file (the MLflow experiment is named
after the file) and one child run per outcome. Each run carries the experiment file, every
parameter, the cross-validated metrics (mean, SD and each fold as a step) of the model, its
peers and the oracle, a digest and schema of the data (never its rows, never identifiers),
tags (git commit, package version, data kind) and plots. The parent run logs the fitted
RiskModel as an MLflow pyfunc from code (no pickle).
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_TRACKING_URI",
    "TrackingError",
    "log_evaluation",
    "log_experiment",
    "tracking_uri",
]

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
# MLflow's usage telemetry would send events off the machine: a clinical tool does not.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
ARTIFACT_ROOT = "mlruns"
# Rows of the data used for the SHAP summary plots; enough for a stable picture.
SHAP_SAMPLE = 1000


class TrackingError(RuntimeError):
    """The tracking store could not be reached or written; says where the model was saved."""


def tracking_uri() -> str:
    """The tracking URI in use: ``MLFLOW_TRACKING_URI`` or the local SQLite default.

    Examples
    --------
    >>> import os
    >>> from ketapredict.tracking import tracking_uri
    >>> tracking_uri() == os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlruns/mlflow.db")
    True
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


@contextmanager
def _store() -> Iterator[str]:
    """Point MLflow at the store for the length of a logging session.

    Creates the local store if needed, and fails fast if a server is unreachable. MLflow's
    ``set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment; it is put
    back afterwards, so that the user's choice (or its absence) still decides the next store.
    """
    import mlflow

    uri = tracking_uri()
    if uri.startswith("file:") or "://" not in uri:
        raise TrackingError(
            f"MLFLOW_TRACKING_URI={uri!r} is MLflow's deprecated file store; "
            f"use a database (the default is {DEFAULT_TRACKING_URI!r}) or a "
            "tracking server URL."
        )
    if uri.startswith("sqlite:///"):
        # resolve against the current directory now: MLflow caches stores by URI, so a
        # relative path would keep pointing at the directory of its first use
        database = Path(uri.removeprefix("sqlite:///")).resolve()
        database.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{database}"
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    # MLflow's INFO lines (creating tables, validating the input example) and its
    # "Downloading artifacts" bar (it reloads the model it just logged) are noise in our
    # command line output; warnings and errors still show
    logger = logging.getLogger("mlflow")
    level = logger.level
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    logger.setLevel(max(level, logging.WARNING))
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        yield uri
    finally:
        logger.setLevel(level)
        for name, value in (
            ("MLFLOW_TRACKING_URI", previous),
            ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", bar),
        ):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check_server(uri: str, timeout: float = 5.0) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise TrackingError(
            f"the MLflow tracking server at {uri} is unreachable ({error})"
        ) from None


def _experiment_id(name: str) -> str:
    import mlflow

    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifact_location = None
    if mlflow.get_tracking_uri().startswith("sqlite:///"):
        artifact_location = (Path(ARTIFACT_ROOT).resolve() / name).as_uri()
    return mlflow.create_experiment(name, artifact_location=artifact_location)


def git_commit() -> str:
    """The current git commit, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- what a run logs --------------------------------------------------------------------------
def _dataset(data: pd.DataFrame, experiment) -> Any:
    """The data as MLflow sees it: a digest and schema, never rows or identifiers."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    from .schema import columns, table_digest

    kept = data.drop(columns=columns("identifier", frame=data))
    digest = table_digest(data)
    spec = experiment.spec.data
    source = CodeDatasetSource(
        {
            "kind": "simulated" if spec.simulated else (spec.format or "file"),
            "source": spec.describe(),
        }
    )
    return MetaDataset(
        source=source, name=f"{experiment.name}-data", digest=digest, schema=_schema(kept.columns)
    )


def _schema(names) -> Any:
    from mlflow.types import ColSpec, Schema

    from .schema import column

    kinds = {
        "float": "double",
        "int": "double",
        "bool": "boolean",
        "category": "string",
        "string": "string",
    }
    return Schema([ColSpec(kinds[column(n).kind], n, required=column(n).required) for n in names])


def signature(model) -> Any:
    """The pyfunc signature: the contract's baseline and regimen columns the model reads in,
    one probability per outcome out."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from .schema import columns

    read = set().union(*(m.feature_names_in_ for m in model.models.values()))
    names = [c for c in columns("baseline") + columns("regimen") if c in read]
    return ModelSignature(
        inputs=_schema(names), outputs=Schema([ColSpec("double", o) for o in model.outcomes])
    )


def input_example(model) -> pd.DataFrame:
    """An invented patient (never a real one) with the columns the model reads."""
    from .schema import column, example_course

    names = signature(model).inputs.input_names()
    # whole-number columns are doubles in the signature: they may be missing
    return pd.DataFrame(
        [
            {
                k: float(v) if column(k).kind == "int" else v
                for k, v in example_course().items()
                if k in names
            }
        ]
    )


_SUMMARY = (
    "within_arm_auc",
    "within_arm_auc_low",
    "within_arm_auc_high",
    "active_ece",
    "active_calibration_intercept",
    "active_calibration_slope",
    "auc",
    "auc_low",
    "auc_high",
    "pr_auc",
    "brier",
    "ece",
    "calibration_intercept",
    "calibration_slope",
)


def _log_validation(result) -> None:
    """Metrics of one outcome, in one batch: the model's, each fold's as a step (fold
    number), mean and SD over folds, the peers' and the oracle's (prefixed by their name)."""
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = []

    def add(key: str, value: float, step: int = 0) -> None:
        if np.isfinite(value):
            batch.append(Metric(key, float(value), now, step))

    for name in result.metrics.index:
        prefix = "" if name == "OutcomeModel" else f"{name}."
        for metric in _SUMMARY:
            add(f"{prefix}{metric}", result.metrics.loc[name, metric])
    for name, group in result.fold_metrics.groupby("model", sort=False):
        prefix = "" if name == "OutcomeModel" else f"{name}."
        for metric in ("within_arm_auc", "active_ece", "auc", "pr_auc", "brier", "ece"):
            series = group[metric].dropna()
            if len(series):
                add(f"{prefix}fold_{metric}_mean", series.mean())
                add(f"{prefix}fold_{metric}_std", series.std(ddof=1) if len(series) > 1 else 0)
            if name == "OutcomeModel" and metric in ("within_arm_auc", "auc", "brier", "ece"):
                for row in group.itertuples():
                    add(f"fold_{metric}", getattr(row, metric), int(row.fold))
    mlflow.tracking.MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=batch)


# -- plots ------------------------------------------------------------------------------------
def _figures(result, explanation=None, learning_curve: pd.DataFrame | None = None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    from .explanation import plot_beeswarm, plot_importance

    figures = {}
    predictions = result.predictions
    y = predictions[result.outcome].to_numpy()
    models = [c.removeprefix("p_") for c in predictions.columns if c.startswith("p_")]

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name in models:
        fpr, tpr, _ = roc_curve(y, predictions[f"p_{name}"])
        ax.plot(
            fpr,
            tpr,
            label=f"{name} (AUC {result.metrics.loc[name, 'auc']:.3f})",
            lw=2.5 if name == "OutcomeModel" else 1,
            ls="--" if name == "oracle" else "-",
        )
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
    ax.set(
        xlabel="1 - specificity",
        ylabel="sensitivity",
        title=f"{result.outcome}: ROC, out of fold ({result.scheme})",
    )
    ax.legend(fontsize=7, loc="lower right")
    figures["roc.png"] = fig

    fig, ax = plt.subplots(figsize=(5.5, 5))
    edges = np.linspace(0, 1, 11)
    for name in models:
        p = predictions[f"p_{name}"].to_numpy()
        which = np.clip(np.digitize(p, edges) - 1, 0, 9)
        counts = np.bincount(which, minlength=10)
        shown = counts > 0
        mean_p = np.bincount(which, weights=p, minlength=10)[shown] / counts[shown]
        rate = np.bincount(which, weights=y, minlength=10)[shown] / counts[shown]
        ax.plot(mean_p, rate, marker="o", label=name, lw=2.5 if name == "OutcomeModel" else 1)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
    ax.set(
        xlabel="predicted probability",
        ylabel="observed rate",
        title=f"{result.outcome}: calibration (10 bins)",
    )
    ax.legend(fontsize=7, loc="upper left")
    figures["calibration.png"] = fig

    fig, ax = plt.subplots(figsize=(5.5, 5))
    curve = result.decision_curve
    for name in [*models, "treat_all", "treat_none"]:
        ax.plot(
            curve.index,
            curve[name],
            label=name,
            lw=2.5 if name == "OutcomeModel" else 1,
            ls=":" if name.startswith("treat") else "-",
        )
    low = min(-0.05, float(curve["treat_all"].min()) * 0.2)
    ax.set(
        xlabel="risk threshold",
        ylabel="net benefit",
        ylim=(low, None),
        title=f"{result.outcome}: decision curve",
    )
    ax.legend(fontsize=7, loc="upper right")
    figures["decision_curve.png"] = fig

    if explanation is not None:
        figures["shap_beeswarm.png"] = plot_beeswarm(explanation)
        figures["shap_by_predictor.png"] = plot_importance(explanation, "predictor")
    if learning_curve is not None:
        fig, ax = plt.subplots(figsize=(6.5, 5))
        colours = {"logistic_regression": "C0", "hist_gradient_boosting": "C1"}
        for name, group in learning_curve.groupby("model", sort=False):
            mean = group.groupby("n_train")["within_arm_auc"].mean()
            if name == "OutcomeModel":
                style = {"lw": 2.5, "color": "C3"}
            elif name == "oracle":
                style = {"lw": 1.5, "ls": "--", "color": "k"}
            else:  # a learner keeps its colour; dotted on the encoded features
                learner = name.removesuffix("_encoded")
                style = {
                    "lw": 1,
                    "color": colours.get(learner, "C2"),
                    "ls": ":" if name.endswith("_encoded") else "-",
                }
            ax.plot(mean.index, mean.values, marker="o", label=name, **style)
        sizes = sorted(learning_curve["n_train"].unique())
        ax.set_xscale("log")
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
        ax.minorticks_off()
        ax.set(
            xlabel="training courses",
            ylabel="AUC within arm, active-drug patients",
            title=f"{result.outcome.replace('_', ' ')}: learning curve (held-out part)",
        )
        ax.legend(fontsize=7, loc="best")
        figures["learning_curve.png"] = fig
    return figures


# -- the whole experiment ---------------------------------------------------------------------
@dataclass
class TrackedRun:
    """Where an experiment was logged."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    child_run_ids: dict[str, str]
    model_uri: str | None
    registered: dict[str, Any] | None = None
    seconds: float = 0.0


def log_experiment(
    result,
    data: pd.DataFrame,
    risk_model=None,
    *,
    register: str | None = None,
    learning_curves: Mapping[str, pd.DataFrame] | None = None,
) -> TrackedRun:
    """Log an experiment's results (and its fitted RiskModel) to MLflow.

    Parameters
    ----------
    result : ExperimentResult
        From :func:`ketapredict.experiment.run_experiment`.
    data : DataFrame
        The experiment's data; only its digest and schema are logged, and a sample of its
        rows is explained for the SHAP plots (the plots show no identifiers).
    risk_model : RiskModel, optional
        Logged as an MLflow pyfunc from the parent run.
    register : str, optional
        Register the model under this name; alias ``champion`` if its primary metric (the
        first outcome's AUC) beats the current champion's, else ``challenger``.
    learning_curves : mapping of outcome to DataFrame, optional
        Learning-curve results to plot in the outcome's run.

    Returns
    -------
    TrackedRun

    Raises
    ------
    TrackingError
        The store cannot be reached or written.
    """

    start = time.perf_counter()
    with _store() as uri:
        return _log(result, data, risk_model, register, learning_curves, uri, start)


def _log(result, data, risk_model, register, learning_curves, uri, start) -> TrackedRun:
    import mlflow

    from . import __version__
    from .explanation import explain

    experiment = result.experiment
    try:
        experiment_id = _experiment_id(experiment.name)
        dataset = _dataset(data, experiment)
        tags = {
            "git_commit": git_commit(),
            "ketapredict_version": __version__,
            "data_kind": result.data_kind,
            "feature_set": experiment.spec.features.set,
            "validation_scheme": experiment.spec.validation.scheme,
            "data_digest": dataset.digest,
        }
        children = {}
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"{experiment.name} {time.strftime('%Y-%m-%d %H:%M')}",
            tags=tags,
        ) as parent:
            mlflow.log_params({k: _param(v) for k, v in experiment.parameters().items()})
            mlflow.log_text(experiment.text, "experiment.toml")
            mlflow.log_input(dataset, context="training")
            outcomes = list(result.results)
            mlflow.set_tag("primary_outcome", outcomes[0])
            for outcome, validation in result.results.items():
                with mlflow.start_run(
                    experiment_id=experiment_id,
                    run_name=outcome,
                    nested=True,
                    tags={**tags, "outcome": outcome},
                ) as child:
                    mlflow.log_params(
                        {
                            "outcome": outcome,
                            "scheme": validation.scheme,
                            "rows": len(validation.predictions),
                            "events": int(validation.predictions[outcome].sum()),
                            "rows_left_out": validation.rows_left_out,
                        }
                    )
                    mlflow.log_text(experiment.text, "experiment.toml")
                    mlflow.log_input(dataset, context="training")
                    _log_validation(validation)
                    explanation = None
                    if risk_model is not None and outcome in risk_model.models:
                        rows = data[data[outcome].notna()]
                        sample = rows.sample(min(SHAP_SAMPLE, len(rows)), random_state=0)
                        explanation = explain(risk_model, sample, outcome)
                    curve = (learning_curves or {}).get(outcome)
                    for name, figure in _figures(validation, explanation, curve).items():
                        mlflow.log_figure(figure, f"plots/{name}")
                        import matplotlib.pyplot as plt

                        plt.close(figure)
                    children[outcome] = child.info.run_id
                ours = validation.metrics.loc["OutcomeModel"]
                for metric in ("within_arm_auc", "auc"):
                    if np.isfinite(ours[metric]):
                        mlflow.log_metric(f"{outcome}.{metric}", float(ours[metric]))
            primary = result.results[outcomes[0]].metrics.loc["OutcomeModel", PRIMARY_METRIC]
            if np.isfinite(primary):
                mlflow.log_metric(f"primary.{PRIMARY_METRIC}", float(primary))
            model_uri = None
            if risk_model is not None:
                model_uri = _log_model(risk_model)
            registered = _register(model_uri, register) if register else None
        return TrackedRun(
            uri,
            experiment_id,
            parent.info.run_id,
            children,
            model_uri,
            registered,
            time.perf_counter() - start,
        )
    except TrackingError:
        raise
    except Exception as error:  # the store failed mid-way: say so, with the cause
        raise TrackingError(f"logging to {uri} failed: {type(error).__name__}: {error}") from error


def _param(value: Any) -> Any:
    if isinstance(value, list | dict | tuple):
        return str(value)
    return value


def _log_model(risk_model) -> str:
    import mlflow

    from . import __version__

    code = Path(__file__).with_name("_mlflow_pyfunc.py")
    with tempfile.TemporaryDirectory() as folder:
        saved = risk_model.save(Path(folder) / "risk_model")
        info = mlflow.pyfunc.log_model(
            name="risk_model",
            python_model=str(code),
            artifacts={"risk_model": str(saved)},
            signature=signature(risk_model),
            input_example=input_example(risk_model),
            pip_requirements=[f"ketapredict=={__version__}"],
        )
    return info.model_uri


def log_evaluation(result, model, model_source: str) -> str:
    """Log an external validation (:func:`ketapredict.evaluate_model`) as an MLflow run.

    The run sits in the experiment ``external-validation``, is named after the model and
    the data, and is linked to the model by tags: ``model_source`` (the MLflow URI, or the
    model directory's name) and ``model_sha256`` (the saved model's content checksum). It
    logs every figure of the report as a metric (``response/ketamine/auc``...), the data's
    digest, and the report and its table (aggregates only, never a patient row).

    Returns
    -------
    str
        The run's id.
    """
    import mlflow

    from . import __version__

    source = model_source
    if not source.startswith(("models:/", "runs:/")):
        source = Path(source).name or source  # a directory's name, not this machine's path
    with _store():
        experiment_id = _experiment_id("external-validation")
        name = f"{model.provenance.get('name', 'model')} on {result.source or result.data_digest}"
        with mlflow.start_run(experiment_id=experiment_id, run_name=name[:200]) as run:
            mlflow.set_tags(
                {
                    "model_source": source,
                    "model_sha256": getattr(model, "content_sha256", "unsaved"),
                    "model_data_kind": model.provenance.get("data_kind", "unknown"),
                    "data_digest": result.data_digest,
                    "ketapredict_version": __version__,
                    "git_commit": git_commit(),
                    "mlflow.note.content": (
                        f"External validation of {result.model} on {result.n_courses} courses."
                    ),
                }
            )
            mlflow.log_params(
                {
                    "n_courses": result.n_courses,
                    "outcomes": ",".join(pd.unique(result.table["outcome"])),
                }
            )
            mlflow.log_metrics(result.metrics)
            mlflow.log_text(str(result), "external_validation.txt")
            mlflow.log_text(result.table.to_csv(index=False), "external_validation.csv")
            return run.info.run_id


def load_logged_model(uri: str):
    """The RiskModel logged at an MLflow model URI (``models:/name@alias``, ``runs:/...``).

    The model's files are downloaded from the store of :func:`tracking_uri` into a new
    temporary directory and verified against their checksums like any saved model.
    """
    import mlflow

    from .risk import RiskModel

    with _store():
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=tempfile.mkdtemp(prefix="ketapredict-")
            )
        except Exception as error:
            raise TrackingError(
                f"could not read the model {uri!r} from {tracking_uri()}: "
                f"{type(error).__name__}: {error}"
            ) from error
    folder = Path(local)
    saved = folder / "artifacts" / "risk_model"
    return RiskModel.load(saved if saved.is_dir() else folder)


# The champion rule compares like with like: the same data, validation scheme and primary
# outcome, judged on the clinician's question (AUC within arm among active-drug patients).
PRIMARY_METRIC = "within_arm_auc"
_COMPARABLE = {
    "data_digest": "data",
    "validation_scheme": "validation scheme",
    "primary_outcome": "primary outcome",
}


def _register(model_uri: str | None, name: str) -> dict[str, Any]:
    """Register the model; alias it champion if it beats the current champion on a like-for-
    like comparison, else challenger, saying why."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if model_uri is None:
        raise TrackingError("--register needs a fitted model to register")
    client = MlflowClient()
    version = mlflow.register_model(model_uri, name)
    ours_run = client.get_run(mlflow.active_run().info.run_id)
    key = f"primary.{PRIMARY_METRIC}"
    ours = ours_run.data.metrics.get(key, np.nan)
    try:
        champion = client.get_model_version_by_alias(name, "champion")
        theirs_run = client.get_run(champion.run_id)
        theirs = theirs_run.data.metrics.get(key, np.nan)
    except MlflowException:
        champion, theirs_run, theirs = None, None, np.nan
    if champion is None:
        alias, reason = "champion", "no champion yet"
    else:
        differ = [
            label
            for tag, label in _COMPARABLE.items()
            if ours_run.data.tags.get(tag) != theirs_run.data.tags.get(tag)
        ]
        if differ:
            alias = "challenger"
            reason = (
                f"not comparable with champion version {champion.version}: other "
                + ", ".join(differ)
            )
        elif not np.isfinite(ours) or not np.isfinite(theirs):
            alias, reason = "challenger", "no within-arm AUC to compare"
        elif ours > theirs:
            alias, reason = "champion", f"beats version {champion.version}"
        else:
            alias, reason = "challenger", f"does not beat version {champion.version}"
    client.set_registered_model_alias(name, alias, version.version)
    return {
        "name": name,
        "version": version.version,
        "alias": alias,
        "reason": reason,
        "within_arm_auc": ours,
        "champion_within_arm_auc": None if champion is None else theirs,
    }


def ui_command(port: int = 5000) -> list[str]:
    """The command that serves the MLflow UI for the current store on 127.0.0.1."""
    import sys

    uri = tracking_uri()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        uri,
    ]
    if uri.startswith("sqlite:///"):
        command += ["--default-artifact-root", Path(ARTIFACT_ROOT).resolve().as_uri()]
    return command

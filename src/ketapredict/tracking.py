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

import contextlib
import io
import json
import logging
import os
import shutil
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
# Rows of the data used for the SHAP figures: 500 dots per feature already give a stable
# beeswarm and bar chart, and each row costs its TreeSHAP over the draws of its missing fields.
SHAP_SAMPLE = 500


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
    try:
        yield uri
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


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


def git_commit() -> dict[str, str]:
    """The git commit of ketapredict's own source, when it runs from a git checkout.

    The commit of the package's directory, not of the directory the command runs in (that
    is MLflow's own ``mlflow.source.git.commit``); empty when the package was installed
    from a wheel. ``dirty`` says whether the package's files differ from the commit.
    """
    package = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(package), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()

    try:
        # a package installed inside some other checkout (a virtualenv in a repository)
        # is not that repository's source: the file must be tracked
        git("ls-files", "--error-unmatch", Path(__file__).name)
        return {
            "commit": git("rev-parse", "HEAD"),
            "dirty": "true" if git("status", "--porcelain", "--", ".") else "false",
        }
    except (OSError, subprocess.SubprocessError):
        return {}


# -- what a run logs --------------------------------------------------------------------------
def dataset_name(spec) -> str:
    """The name a dataset is logged under: its source in words (the same for every
    experiment on the same data, so MLflow shows one dataset, told apart by digest)."""
    return spec.describe()


def _dataset(data: pd.DataFrame, experiment) -> Any:
    """The data as MLflow sees it: name, digest, schema and a profile of counts; never rows
    or identifiers."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    from .schema import columns, table_digest

    kept = data.drop(columns=columns("identifier", frame=data))
    spec = experiment.spec.data
    source = CodeDatasetSource(
        {"kind": "simulated" if spec.simulated else (spec.format or "file")}
    )
    profile = {"courses": len(data)}
    if "trial_id" in data.columns:
        profile["trials"] = int(data["trial_id"].nunique())
    if "arm" in data.columns:
        profile["arms"] = int(data.groupby(["trial_id", "arm"], observed=True).ngroups)
    for outcome in columns("outcome", frame=data):
        if data[outcome].dtype == "boolean":
            profile[f"{outcome}_events"] = int(data[outcome].sum())
            profile[f"{outcome}_missing"] = int(data[outcome].isna().sum())

    class _Profiled(MetaDataset):  # MetaDataset logs no profile; the UI shows this one
        @property
        def profile(self) -> Any:
            return profile

        def to_dict(self) -> dict[str, str]:
            return {**super().to_dict(), "profile": json.dumps(profile)}

    return _Profiled(
        source=source,
        name=dataset_name(spec),
        digest=table_digest(data),
        schema=_schema(kept.columns),
    )


def _schema(names, *, loose: bool = False) -> Any:
    """An MLflow schema of contract columns; ``loose`` leaves all but decimal columns
    untyped, for the pyfunc (see :func:`signature`)."""
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    from .schema import column

    kinds = {
        "float": "double",
        "int": "double",
        "bool": "boolean",
        "category": "string",
        "string": "string",
    }
    specs = []
    for name in names:
        kind = column(name).kind
        dtype = AnyType() if loose and kind != "float" else kinds[kind]
        specs.append(ColSpec(dtype, name, required=column(name).required))
    return Schema(specs)


def signature(model) -> Any:
    """The pyfunc signature: the contract's baseline and regimen columns the model reads in,
    one probability per outcome out, and the ``outcome`` parameter.

    Decimal columns are typed ``double``; categories, whole numbers and yes/no fields are
    left untyped (``Any``) because MLflow's schema enforcement refuses pandas' categorical,
    nullable-integer and nullable-boolean columns, the contract's own dtypes. The model
    validates every column against the data contract itself (allowed categories, ranges),
    with a ValidationError that names them.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    from .schema import columns

    read = set().union(*(m.feature_names_in_ for m in model.models.values()))
    names = [c for c in columns("baseline") + columns("regimen") if c in read]
    return ModelSignature(
        inputs=_schema(names, loose=True),
        outputs=Schema([ColSpec("double", o) for o in model.outcomes]),
        params=ParamSchema([ParamSpec("outcome", "string", ALL_OUTCOMES)]),
    )


# the pyfunc's ``outcome`` parameter that asks for every outcome's column
ALL_OUTCOMES = "all"


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


# How ValidationResult.metrics columns are named in MLflow: one scheme on parent and child
# runs, grouped by outcome, then by population (the MLflow UI groups keys on "/").
METRIC_KEYS = {
    "within_arm_auc": "within_arm/auc",
    "within_arm_auc_low": "within_arm/auc_low",
    "within_arm_auc_high": "within_arm/auc_high",
    "active_ece": "active/ece",
    "active_calibration_intercept": "active/calibration_intercept",
    "active_calibration_slope": "active/calibration_slope",
    "auc": "all/auc",
    "auc_low": "all/auc_low",
    "auc_high": "all/auc_high",
    "pr_auc": "all/pr_auc",
    "brier": "all/brier",
    "ece": "all/ece",
    "calibration_intercept": "all/calibration_intercept",
    "calibration_slope": "all/calibration_slope",
}
_FOLD_METRICS = ("within_arm_auc", "auc", "brier")


def metric_key(outcome: str, metric: str, model: str = "OutcomeModel") -> str:
    """The MLflow key of a metric: ``response/within_arm/auc`` for the model,
    ``response/oracle/within_arm/auc`` for a peer or the oracle.

    Examples
    --------
    >>> from ketapredict.tracking import metric_key
    >>> metric_key("response", "within_arm_auc")
    'response/within_arm/auc'
    >>> metric_key("cognitive_decline", "brier", "oracle")
    'cognitive_decline/oracle/all/brier'
    """
    name = METRIC_KEYS.get(metric, metric)
    return f"{outcome}/{name}" if model == "OutcomeModel" else f"{outcome}/{model}/{name}"


def outcome_metrics(result, seconds: float | None = None) -> dict[str, float]:
    """Every metric of one outcome's validation under its MLflow key.

    The model's, each peer's and the oracle's (:data:`METRIC_KEYS`), the mean and SD over
    folds of the model's within-arm AUC, AUC and Brier score (``response/folds/auc_mean``;
    each fold is in the run's ``tables/folds.csv``), and the validation's wall time. A
    metric that cannot be computed (an AUC with one class) is logged as NaN, so runs of
    different experiments carry the same keys.
    """
    outcome = result.outcome
    out: dict[str, float] = {}
    for model in result.metrics.index:
        for metric in METRIC_KEYS:
            out[metric_key(outcome, metric, model)] = float(result.metrics.loc[model, metric])
    ours = result.fold_metrics[result.fold_metrics["model"] == "OutcomeModel"]
    for metric in _FOLD_METRICS:
        values = ours[metric].dropna()
        out[f"{outcome}/folds/{metric}_mean"] = float(values.mean()) if len(values) else np.nan
        out[f"{outcome}/folds/{metric}_sd"] = (
            float(values.std(ddof=1)) if len(values) > 1 else np.nan
        )
    if seconds is not None:
        out[f"{outcome}/time/validation_s"] = float(seconds)
    return out


def fold_table(result) -> pd.DataFrame:
    """One row per model and fold, naming the held-out trial (or fold) first."""
    table = result.fold_metrics.copy()
    table.insert(0, "outcome", result.outcome)
    if "trial" in table.columns:
        table = table.rename(columns={"trial": "held_out_trial"})
    return table


def model_parameters(experiment, outcome: str, fitted=None) -> dict[str, Any]:
    """Every effective hyperparameter of an outcome's model (defaults included), and, for
    a fitted model, the boosting rounds early stopping chose and the leaf weight used."""
    params = experiment.model(outcome).get_params()
    out = {f"model.{k}": v for k, v in params.items() if k not in ("outcome", "features")}
    if fitted is not None:
        out["model.n_rounds_fitted"] = int(fitted.n_rounds_)
        out["model.min_child_weight_fitted"] = round(float(fitted.min_child_weight_), 4)
    return out


def run_parameters(result, outcome: str | None = None, risk_model=None) -> dict[str, Any]:
    """The params of a run: the experiment's data, feature set, validation scheme and
    tuning grid, and the effective model hyperparameters (for the parent run, the first
    outcome's, with each outcome's fitted rounds as ``response.n_rounds_fitted``)."""
    experiment = result.experiment
    spec = experiment.spec
    params: dict[str, Any] = {
        "data.source": spec.data.describe(),
        "data.kind": result.data_kind,
        "data.courses": result.n_rows,
        "features.set": spec.features.set,
        "validation.scheme": spec.validation.scheme,
        "validation.folds": max(r.fold_metrics["fold"].nunique() for r in result.results.values()),
        "validation.bootstraps": spec.validation.bootstraps,
        "validation.seed": spec.validation.seed,
        "validation.peers": spec.validation.peers,
        "outcomes": ",".join(result.results),
    }
    if spec.tuning:
        params["tuning.grid"] = str(spec.tuning)
    models = risk_model.models if risk_model is not None else {}
    if outcome is not None:
        validation = result.results[outcome]
        params.update(
            {
                "outcome": outcome,
                "rows": len(validation.predictions),
                "events": int(validation.predictions[outcome].sum()),
                "rows_left_out": validation.rows_left_out,
            }
        )
        params.update(model_parameters(experiment, outcome, models.get(outcome)))
    else:
        params.update(model_parameters(experiment, next(iter(result.results))))
        for name, fitted in models.items():
            params[f"{name}.n_rounds_fitted"] = int(fitted.n_rounds_)
    return {k: _param(v) for k, v in params.items()}


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

    One parent run per experiment (named ``<experiment> <date>``) and one child run per
    outcome (``<experiment> / <outcome>``), built for comparison in the MLflow UI:

    - params: the data source, feature set, validation scheme, every effective model
      hyperparameter (defaults included) and the boosting rounds early stopping chose;
    - metrics under one scheme on parent and child (:func:`metric_key`), with each run's
      validation time; the parent run spans the whole job;
    - tables: each fold with its held-out trial (``tables/folds.csv``), the subgroups
      (``tables/subgroups.csv``) and the quantile calibration bins
      (``tables/calibration.csv``);
    - the data through ``mlflow.data`` under one name per source, with its digest, schema
      and a profile of counts (never rows, never identifiers);
    - plots, the experiment file, the model card and tags (ketapredict's version and source
      commit, data kind, feature set, scheme, data digest);
    - the RiskModel as an MLflow pyfunc (parent run), optionally registered.

    Parameters
    ----------
    result : ExperimentResult
        From :func:`ketapredict.experiment.run_experiment`.
    data : DataFrame
        The experiment's data; only its digest, schema and counts are logged, and a sample
        of its rows is explained for the SHAP plots (the plots show no identifiers).
    risk_model : RiskModel, optional
        Logged as an MLflow pyfunc from the parent run.
    register : str, optional
        Register the model under this name; alias ``champion`` if it beats the current
        champion on a like-for-like comparison (same data digest, validation scheme and
        primary outcome; see :data:`PRIMARY_METRIC`), else ``challenger``, with the reason
        as a tag of the model version and of the run.
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


def _milliseconds(seconds: float) -> int:
    return int(seconds * 1000)


def _log(result, data, risk_model, register, learning_curves, uri, start) -> TrackedRun:
    import matplotlib.pyplot as plt
    import mlflow
    from mlflow.tracking import MlflowClient

    from . import __version__

    client = MlflowClient()
    experiment = result.experiment
    spec = experiment.spec
    try:
        experiment_id = _experiment_id(experiment.name)
        if spec.description:  # the MLflow UI shows this tag as the experiment's description
            client.set_experiment_tag(experiment_id, "mlflow.note.content", spec.description)
        dataset = _dataset(data, experiment)
        source = git_commit()
        tags = {
            "ketapredict.version": __version__,
            "data_kind": result.data_kind,
            "feature_set": spec.features.set,
            "validation_scheme": spec.validation.scheme,
            "data_digest": dataset.digest,
            "primary_outcome": next(iter(result.results)),
            **{f"ketapredict.git_{k}": v for k, v in source.items()},
        }
        if result.data_kind == "simulated":
            tags["not_for_clinical_decisions"] = "trained on the virtual cohort"
        parent = client.create_run(
            experiment_id,
            start_time=_milliseconds(result.started),
            tags={**tags, "mlflow.note.content": spec.description},
            run_name=f"{experiment.name} {time.strftime('%Y-%m-%d %H:%M')}",
        )
        parent_id = parent.info.run_id
        children, all_metrics = {}, {}
        with mlflow.start_run(run_id=parent_id):
            mlflow.log_params(run_parameters(result, risk_model=risk_model))
            mlflow.log_text(experiment.text, "experiment.toml")
            mlflow.log_input(dataset, context="training")
            # each outcome's run spans its own validation inside the parent's time
            began = (
                result.started
                + result.seconds
                - sum(result.timings.get(o, 0.0) for o in result.results)
            )
            for outcome, validation in result.results.items():
                seconds = result.timings.get(outcome)
                child = client.create_run(
                    experiment_id,
                    start_time=_milliseconds(began),
                    tags={**tags, "outcome": outcome, "mlflow.parentRunId": parent_id},
                    run_name=f"{experiment.name} / {outcome}",
                )
                child_id = child.info.run_id
                metrics = outcome_metrics(validation, seconds)
                all_metrics.update(metrics)
                with mlflow.start_run(run_id=child_id, nested=True):
                    mlflow.log_params(run_parameters(result, outcome, risk_model))
                    mlflow.log_text(experiment.text, "experiment.toml")
                    mlflow.log_input(dataset, context="training")
                    mlflow.log_metrics(metrics)
                    _log_tables(validation)
                    figures = _outcome_figures(
                        experiment, validation, data, risk_model, (learning_curves or {})
                    )
                    for name, figure in figures.items():
                        mlflow.log_figure(figure, f"plots/{name}")
                        plt.close(figure)
                if seconds is not None:
                    began += seconds
                    client.set_terminated(child_id, end_time=_milliseconds(began))
                children[outcome] = child_id
            if "final_model" in result.timings:
                all_metrics["time/final_model_s"] = result.timings["final_model"]
            mlflow.log_metrics(all_metrics)
            model_uri = None
            if risk_model is not None:
                mlflow.log_text(risk_model.model_card(), "model_card.md")
                model_uri = _log_model(risk_model)
            registered = _register(model_uri, register, risk_model) if register else None
        return TrackedRun(
            uri,
            experiment_id,
            parent_id,
            children,
            model_uri,
            registered,
            time.perf_counter() - start,
        )
    except TrackingError:
        raise
    except Exception as error:  # the store failed mid-way: say so, with the cause
        raise TrackingError(f"logging to {uri} failed: {type(error).__name__}: {error}") from error


def _log_tables(validation) -> None:
    """The run's tables: folds, subgroups and calibration bins (aggregates, no rows)."""
    import mlflow

    from .evaluate import calibration_bins

    mlflow.log_text(fold_table(validation).to_csv(index=False), "tables/folds.csv")
    mlflow.log_text(validation.subgroups.to_csv(index=False), "tables/subgroups.csv")
    predictions = validation.predictions
    y = predictions[validation.outcome].to_numpy(dtype=float)
    bins = [
        calibration_bins(y, predictions[column].to_numpy()).assign(model=column.removeprefix("p_"))
        for column in predictions.columns
        if column.startswith("p_")
    ]
    mlflow.log_text(pd.concat(bins).to_csv(index=False), "tables/calibration.csv")


def _outcome_figures(experiment, validation, data, risk_model, learning_curves) -> dict:
    """The plots of one outcome's run: ROC, calibration, decision curve, learning curve
    (:func:`ketapredict.plots.validation_figures`) and, when the model was fitted, shap's
    beeswarm, bar and waterfall (:func:`ketapredict.explanation.shap_figures`)."""
    from .explanation import shap_figures
    from .plots import outcome_words, validation_figures

    outcome = validation.outcome
    feature_set = experiment.spec.features.set
    figures = validation_figures(
        validation,
        experiment=experiment.name,
        feature_set=feature_set,
        learning_curve=learning_curves.get(outcome),
    )
    if risk_model is not None and outcome in risk_model.models:
        rows = data[data[outcome].notna()]
        sample = rows.sample(min(SHAP_SAMPLE, len(rows)), random_state=0)
        title = (
            f"{outcome_words(outcome)}: experiment {experiment.name}, feature set {feature_set}"
        )
        figures.update(shap_figures(risk_model, sample, outcome, title=title))
    return figures


def _param(value: Any) -> Any:
    if isinstance(value, list | dict | tuple):
        return str(value)
    return value


_NOT_SERVED = ("shap", "matplotlib", "tqdm")


def requirements() -> list[str]:
    """The pip requirements of the logged pyfunc: ketapredict's own dependencies at the
    versions installed here (ketapredict itself travels as code with the model)."""
    from importlib.metadata import PackageNotFoundError, requires, version

    from packaging.requirements import Requirement

    pinned = []
    for text in requires("ketapredict") or []:
        requirement = Requirement(text)
        # extras (tests) and the training side's plotting and explanation libraries are
        # never imported by the pyfunc (shap alone would add numba and LLVM to the image)
        if requirement.marker is not None or requirement.name in _NOT_SERVED:
            continue
        try:
            pinned.append(f"{requirement.name}=={version(requirement.name)}")
        except PackageNotFoundError:
            pinned.append(str(requirement))
    return pinned


def _log_model(risk_model) -> str:
    """Log the RiskModel as a pyfunc that installs in a fresh environment: the model's
    files as an artifact, the package's source as code (``code_paths``), and its
    dependencies pinned to the versions it was trained with (no index serves
    ketapredict)."""
    import mlflow

    code = Path(__file__).with_name("_mlflow_pyfunc.py")
    with tempfile.TemporaryDirectory() as folder:
        saved = risk_model.save(Path(folder) / "risk_model")
        # the package's code, not its data: the demo model is not this model, and the
        # example studies hold (invented) patient identifiers, which never go to MLflow
        package = Path(folder) / "code" / "ketapredict"
        shutil.copytree(
            Path(__file__).resolve().parent,
            package,
            ignore=shutil.ignore_patterns("data", "__pycache__", "*.pyc"),
        )
        info = mlflow.pyfunc.log_model(
            name="risk_model",
            python_model=str(code),
            artifacts={"risk_model": str(saved)},
            code_paths=[str(package)],
            signature=signature(risk_model),
            input_example=input_example(risk_model),
            pip_requirements=requirements(),
        )
    return info.model_uri


def risk_metrics() -> list:
    """Metrics of predicted risks for ``mlflow.models.evaluate``: AUC, Brier score,
    calibration intercept and slope, observed rate and mean predicted risk.

    MLflow's built-in ``classifier`` evaluation scores labels (and probabilities only of
    scikit-learn and XGBoost flavors), not the risks a pyfunc returns; these metrics score
    the risk of one outcome, chosen with ``predictions=<outcome>``::

        mlflow.models.evaluate(
            model_uri, data, targets="response", predictions="response",
            extra_metrics=ketapredict.tracking.risk_metrics(),
        )

    ``data`` holds the patients and the observed outcome (0/1, no missing values).

    Returns
    -------
    list of mlflow.models.EvaluationMetric
    """
    from mlflow.metrics import MetricValue, make_metric

    from .evaluate import _calibration_line

    def scored(name: str, compute) -> Any:
        def eval_fn(predictions, targets, metrics=None):
            y = np.asarray(targets, dtype=float)
            p = np.asarray(predictions, dtype=float)
            both = min(y.sum(), len(y) - y.sum()) > 0
            value = (
                compute(y, p)
                if both or name in ("brier", "observed", "mean_predicted")
                else np.nan
            )
            return MetricValue(aggregate_results={name: float(value)})

        return eval_fn

    def auc(y, p):
        from sklearn.metrics import roc_auc_score

        return roc_auc_score(y, p)

    computed = {
        "auc": (auc, True),
        "brier": (lambda y, p: np.mean((p - y) ** 2), False),
        "calibration_intercept": (lambda y, p: _calibration_line(y, p)[0], True),
        "calibration_slope": (lambda y, p: _calibration_line(y, p)[1], True),
        "observed": (lambda y, p: y.mean(), True),
        "mean_predicted": (lambda y, p: p.mean(), True),
    }
    return [
        make_metric(eval_fn=scored(name, compute), greater_is_better=better, name=name)
        for name, (compute, better) in computed.items()
    ]


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
                    "ketapredict.version": __version__,
                    **{f"ketapredict.git_{k}": v for k, v in git_commit().items()},
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

    Raises
    ------
    TrackingError
        If the store is a local SQLite file that does not exist (MLflow would silently
        create an empty one; the message says where it looked and how to point elsewhere),
        or the model cannot be read from it.
    """
    _require_store(f"read the model {uri!r}")
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


def _register(model_uri: str | None, name: str, risk_model=None) -> dict[str, Any]:
    """Register the model; alias it champion if it beats the current champion on a like-for-
    like comparison, else challenger, saying why (a tag of the version and of the run).

    The registered model and the version carry a description and tags: the training
    data's kind (and "not for clinical decisions" for the virtual cohort), the experiment,
    feature set, validation scheme, data digest and the primary metric."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if model_uri is None:
        raise TrackingError("--register needs a fitted model to register")
    client = MlflowClient()
    # MLflow prints "Successfully registered model ..." on stderr, outside its logger: route
    # it through the logger, which the command line keeps quiet unless --verbose
    with contextlib.redirect_stderr(io.StringIO()) as said:
        version = mlflow.register_model(model_uri, name)
    for line in said.getvalue().splitlines():
        logging.getLogger("mlflow").info(line)
    ours_run = client.get_run(mlflow.active_run().info.run_id)
    primary = ours_run.data.tags.get("primary_outcome", "")
    key = metric_key(primary, PRIMARY_METRIC)
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
            alias, reason = "champion", f"beats version {champion.version} ({theirs:.3f})"
        else:
            alias, reason = (
                "challenger",
                f"does not beat version {champion.version} ({theirs:.3f})",
            )
    client.set_registered_model_alias(name, alias, version.version)
    tags = ours_run.data.tags
    simulated = tags.get("data_kind") == "simulated"
    described = {
        "data_kind": tags.get("data_kind", "unknown"),
        "experiment": ours_run.info.run_name.rsplit(" ", 2)[0],
        "feature_set": tags.get("feature_set", ""),
        "validation_scheme": tags.get("validation_scheme", ""),
        "data_digest": tags.get("data_digest", ""),
        "primary_outcome": primary,
        key: f"{ours:.4f}",
        "alias_reason": f"{alias}: {reason}",
    }
    if simulated:
        described["not_for_clinical_decisions"] = "trained on the virtual cohort"
    for tag, value in described.items():
        client.set_model_version_tag(name, version.version, tag, value)
    notice = "Trained on the virtual cohort: not for clinical decisions. " if simulated else ""
    client.update_model_version(
        name,
        version.version,
        description=(
            f"{notice}Experiment {described['experiment']!r}, feature set "
            f"{described['feature_set']!r}, {described['validation_scheme']}; within-arm AUC "
            f"of {primary} {ours:.3f}. Registered as {alias}: {reason}. The model card is "
            "the run's model_card.md."
        ),
    )
    registered = client.get_registered_model(name)
    if not registered.description:
        client.update_registered_model(
            name,
            description=(
                "ketapredict RiskModel: calibrated probabilities of ketamine and esketamine "
                "outcomes for one patient, dose schedule and day. Load it with "
                f"ketapredict.load_model('models:/{name}@champion')."
            ),
        )
    client.set_registered_model_tag(name, "ketapredict", "RiskModel")
    mlflow.set_tag("registry_decision", f"{name} version {version.version}: {alias}, {reason}")
    return {
        "name": name,
        "version": version.version,
        "alias": alias,
        "reason": reason,
        "within_arm_auc": ours,
        "champion_within_arm_auc": None if champion is None else theirs,
    }


def ui_command(port: int = 5000, *, verbose: bool = False) -> list[str]:
    """The command that serves the MLflow UI for the current store on 127.0.0.1.

    One worker: the UI serves one person on this machine, and each worker imports MLflow
    anew (four, MLflow's default, take about a minute to start on two cores). Without
    ``verbose``, the web server logs warnings and errors only, not every request.

    Examples
    --------
    >>> from ketapredict.tracking import ui_command
    >>> command = ui_command(5001)
    >>> command[command.index("--port") + 1], command[command.index("--workers") + 1]
    ('5001', '1')
    """
    import sys

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        # absolute: the message, the server and the store agree on one file
        uri = f"sqlite:///{_sqlite_path(uri)}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        uri,
        "--registry-store-uri",
        uri,
    ]
    if not verbose:
        command += ["--uvicorn-opts", "--log-level warning"]
    if uri.startswith("sqlite:///"):
        command += ["--default-artifact-root", Path(ARTIFACT_ROOT).resolve().as_uri()]
    return command


def _sqlite_path(uri: str) -> Path:
    """The absolute path of the database file of a ``sqlite:///`` URI (relative to the
    current directory, as MLflow reads it)."""
    return Path(uri.removeprefix("sqlite:///")).resolve()


def _require_store(action: str) -> None:
    """Refuse to read a local SQLite store that does not exist.

    MLflow creates an empty database wherever a ``sqlite:///`` URI points, so reading the
    relative default from the wrong directory would silently show nothing (and leave an
    empty ``mlruns/`` behind). Servers and other databases are left to MLflow.

    Raises
    ------
    TrackingError
        Saying which file was looked for and how to point at the right store.
    """
    uri = tracking_uri()
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return
    database = _sqlite_path(uri)
    if database.is_file():
        return
    where = (
        "MLFLOW_TRACKING_URI is not set, so the store is mlruns/mlflow.db under the current "
        "directory"
        if uri == DEFAULT_TRACKING_URI and not os.environ.get("MLFLOW_TRACKING_URI")
        else f"MLFLOW_TRACKING_URI is {uri!r}"
    )
    raise TrackingError(
        f"cannot {action}: no MLflow store at {database} ({where}). Run from the project "
        "directory whose mlruns/ holds your runs (ketapredict train creates it), or set "
        "MLFLOW_TRACKING_URI to the store: sqlite:////absolute/path/to/mlflow.db or a "
        "tracking server URL."
    )

"""Declarative experiments: a TOML file says what to train and how to validate it.

An experiment file (``experiments/<name>.toml``)::

    description = "..."
    [data]                    # the simulated cohort, a CSV/Parquet table, or a study
    source = "simulated"      # or a path, e.g. "data/trial.parquet" (near this file)
    n = 5000                  # simulated only; at most 1,000,000 (simulate.MAX_COURSES)
    seed = 0                  # simulated only
    # or a BIDS or ADaM study read through a mapping file (ketapredict.io), instead:
    # format = "bids"         # or "adam"
    # mapping = "study/mapping.toml"
    # path = "study"          # bids: the dataset root (default: the mapping's)
    # adsl = "adsl.xpt"       # adam: the datasets (default: the mapping's)
    # efficacy = "adeff.xpt"
    # virtual = true          # the patients are simulated (the shipped example studies)
    [features]
    set = "core"              # a name in features/, or a .toml path (as data.source is found)
    [outcomes]
    names = ["response", "cognitive_decline"]
    [model]                   # OutcomeModel parameters (defaults when absent)
    max_depth = 3
    [validation]
    scheme = "leave_one_trial_out"   # or stratified_kfold, grouped_kfold
    # n_splits = 5            # stratified_kfold and grouped_kfold only
    bootstraps = 1000
    seed = 0
    peers = true
    learning_curve = [250, 500, 1000]   # optional: training sizes for a learning curve
    [tuning]                  # optional: nested cross-validation over this grid
    max_depth = [2, 3]
    [intervals]               # the saved model's 90% intervals
    replicates = 20           # bootstrap replicates per outcome (2-200)

:func:`load_experiment` checks everything (unknown keys, the feature set, model
parameters, that the data files exist, that no key would be ignored, that each value has
its type: ``n = "300"`` is refused, not read as 300) before any data is read;
:func:`run_experiment` validates each outcome before any training. The experiment's name
is its file's name without ``.toml``: letters, digits, ``-``, ``_`` and ``.``, not
starting with a dot.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import pydantic

from ._files import not_a_file
from ._toml import allowed_keys, read_toml
from .card import VIRTUAL_COHORT_NOTICE
from .cohort.simulate import MAX_COURSES
from .evaluate import MAX_SPLITS, SCHEMES, ValidationResult, check_design, cross_validate
from .exceptions import Problem, ValidationError, short_repr
from .features import load_feature_set
from .models import OutcomeModel
from .risk import MAX_SCORING_NODES, REPLICATES, RiskModel
from .schema import OUTCOMES, column, columns, outcome_names

__all__ = [
    "Experiment",
    "ExperimentResult",
    "build_risk_model",
    "fit_risk_model",
    "load_experiment",
    "run_experiment",
]

# Trials of each design in the fresh cohort that calibrates a simulated experiment's
# intervals: the multiplier is a quantile over trials as much as over patients, and one
# trial a design (14 draws of a trial's effect) let it swing. For one model, over six
# calibration cohorts, comparator coverage of response ranged 85-99% with one trial a design
# and 91-94% with 8 (python benchmarks/coverage.py --stability, 2026-12-07).
INTERVAL_TRIALS_PER_DESIGN = 8

# The most combinations a [tuning] grid may hold: nested cross-validation fits each in every
# inner fold of every outer fold (64 combinations under 5 x 3 folds are 960 fits): a review
# stopped a grid of 10 x 10 x 10 after 13 minutes; sizes are checked before a run starts.
MAX_TUNING_CANDIDATES = 64

# The cross-validated metrics a model file's provenance keeps: the clinician's question
# first (see ketapredict.evaluate.score_predictions), then the pooled ones.
_PROVENANCE_METRICS = [
    "within_arm_auc",
    "within_arm_auc_low",
    "within_arm_auc_high",
    "active_ece",
    "active_calibration_slope",
    "auc",
    "auc_low",
    "auc_high",
    "brier",
    "ece",
]


# The patient tables an experiment reads (ketapredict.io.read_patient_table)
_TABLE_SUFFIXES = (".csv", ".parquet")


class _Strict(pydantic.BaseModel):
    # strict: a value of another type is refused, not converted (n = true is not 1,
    # peers = "off" is not False); TOML has its own integers, floats and booleans
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)


# numpy's seeds are 32-bit (a larger one fails only when the work starts)
_Seed = Annotated[int, pydantic.Field(ge=0, le=2**32 - 1)]


class _Data(_Strict):
    # "simulated" (the virtual cohort), or a CSV or Parquet patient table
    source: str = "simulated"
    # a bound (as simulate_cohort's) so that a typo such as n = 10**12 is refused with the
    # file's other mistakes, not by a failed 450 GiB allocation
    n: int = pydantic.Field(default=5000, ge=1, le=MAX_COURSES)
    seed: _Seed = 0
    # a study read through a mapping file (ketapredict.io): format "bids" or "adam"
    format: Literal["bids", "adam"] | None = None
    mapping: str | None = None
    path: str | None = None  # bids: the dataset root (default: the mapping's path)
    adsl: str | None = None  # adam: the datasets (default: the mapping's adsl, efficacy)
    efficacy: str | None = None
    # a study or table of simulated patients (the shipped example studies): its model says
    # in every report that it was trained on simulated data, not for clinical decisions
    virtual: bool = False

    @pydantic.model_validator(mode="after")
    def _study(self) -> _Data:
        if self.format is not None and self.mapping is None:
            raise ValueError(f"format = {self.format!r} needs mapping = <mapping file>")
        if self.format is None and self.mapping is not None:
            raise ValueError('a mapping file needs format = "bids" or "adam"')
        if (
            self.format is None
            and self.source != "simulated"
            and Path(self.source).suffix.lower() not in _TABLE_SUFFIXES
        ):
            # neither the virtual cohort nor a table ("simulate"): the source is the mistake,
            # and the file's checks say so, not that n and seed would be ignored
            return self
        # a key that would be ignored is refused: the file must say what was done
        unused = {
            "bids": {"source", "n", "seed", "adsl", "efficacy"},
            "adam": {"source", "n", "seed", "path"},
        }.get(self.format) or (
            {"n", "seed", "path", "adsl", "efficacy"}
            if self.source != "simulated"
            else {"path", "adsl", "efficacy", "virtual"}
        )
        ignored = sorted(self.model_fields_set & unused)
        if ignored:
            used = (
                f"a {self.format} study is read through its mapping"
                if self.format is not None
                else f"the data are read from {self.source!r}"
                if self.source != "simulated"
                else "the virtual cohort is simulated"
            )
            raise ValueError(f"{', '.join(ignored)} would be ignored: {used}; leave them out")
        return self

    @property
    def simulated(self) -> bool:
        return self.format is None and self.source == "simulated"

    def describe(self) -> str:
        """Where the data come from, in a few words (no path beyond a file name)."""
        if self.simulated:
            return f"ketapredict.simulate_cohort(n={self.n}, seed={self.seed})"
        if self.format is not None:
            return f"{self.format} study read with {Path(self.mapping).name}"
        return Path(self.source).name


class _Features(_Strict):
    set: str = "core"


class _Outcomes(_Strict):
    names: list[str] = pydantic.Field(default_factory=lambda: ["response"], min_length=1)


class _Validation(_Strict):
    scheme: Literal[SCHEMES] = "leave_one_trial_out"  # type: ignore[valid-type]
    n_splits: int = pydantic.Field(default=5, ge=2, le=MAX_SPLITS)
    bootstraps: int = pydantic.Field(default=1000, ge=0, le=10_000)
    seed: _Seed = 0
    peers: bool = True
    learning_curve: list[Annotated[int, pydantic.Field(ge=1, le=MAX_COURSES)]] = pydantic.Field(
        default_factory=list
    )

    @pydantic.model_validator(mode="after")
    def _used(self) -> _Validation:
        if self.scheme == "leave_one_trial_out" and "n_splits" in self.model_fields_set:
            raise ValueError(
                "n_splits would be ignored: leave_one_trial_out has one fold per trial; "
                "leave it out"
            )
        return self


class _Intervals(_Strict):
    # the saved RiskModel's bootstrap replicates per outcome (ketapredict.risk.REPLICATES
    # explains the default); fewer fit faster and estimate the spread more coarsely
    replicates: int = pydantic.Field(default=20, ge=2, le=200)


class _Spec(_Strict):
    description: str = ""
    data: _Data = _Data()
    features: _Features = _Features()
    outcomes: _Outcomes = _Outcomes()
    model: dict[str, Any] = pydantic.Field(default_factory=dict)
    validation: _Validation = _Validation()
    tuning: dict[str, list[Any]] = pydantic.Field(default_factory=dict)
    intervals: _Intervals = _Intervals()


@dataclass(frozen=True)
class Experiment:
    """A loaded, checked experiment file.

    Attributes
    ----------
    name : str
        The file name without ``.toml``; MLflow runs are filed under it. Letters, digits,
        ``-``, ``_`` and ``.``, not starting with a dot (a file named otherwise is refused).
    path : Path
    text : str
        The file as written (logged with every run).
    spec : pydantic model
        ``data``, ``features``, ``outcomes``, ``model``, ``validation``, ``tuning``,
        ``intervals``.
    """

    name: str
    path: Path
    text: str
    spec: _Spec

    def model(self, outcome: str) -> OutcomeModel:
        """The OutcomeModel this experiment trains for ``outcome``."""
        return OutcomeModel(outcome=outcome, features=self.spec.features.set, **self.spec.model)

    def load_data(self) -> pd.DataFrame:
        """The experiment's patient table: simulated, or read from a file and validated."""
        data = self.spec.data
        if data.format is not None:
            from .io import read_study

            def near(name: str | None) -> Path | None:  # relative to the experiment file
                return None if name is None else self.path.parent / name

            return read_study(
                near(data.mapping),
                path=near(data.path),
                adsl=near(data.adsl),
                efficacy=near(data.efficacy),
            )
        if data.simulated:
            from .cohort.simulate import simulate_cohort

            return simulate_cohort(n=data.n, seed=data.seed)
        from .io import read_patient_table

        _check_files(self.path, data)  # again: they may have gone since the file was loaded
        return read_patient_table(_source_path(self.path, data.source))

    def parameters(self) -> dict[str, Any]:
        """Every setting, flattened (``model.max_depth``, ``validation.scheme``, ...)."""
        flat: dict[str, Any] = {}
        for section, values in self.spec.model_dump().items():
            if isinstance(values, dict):
                for key, value in values.items():
                    flat[f"{section}.{key}"] = value
            else:
                flat[section] = values
        return flat


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file.

    Parameters
    ----------
    path : str or path-like
        A ``.toml`` file, or the name of one in ``experiments/`` (``"baseline"``).

    Returns
    -------
    Experiment

    Raises
    ------
    ValidationError
        Naming the file and key of every problem: a file that is missing, not UTF-8 or not
        TOML, a name that is not a plain file name, unknown keys, values of the wrong type
        or out of range (``data.n`` at most 1,000,000), a missing feature set or data file,
        unknown or invalid model parameters.

    Examples
    --------
    >>> from ketapredict.experiment import load_experiment
    >>> experiment = load_experiment("baseline")
    >>> experiment.spec.outcomes.names
    ['response', 'cognitive_decline']
    """
    path = _find(path)
    where = str(path)
    name = _name(path)
    raw, text = read_toml(path, where, "experiment")
    try:
        spec = _Spec.model_validate(raw)
    except pydantic.ValidationError as error:
        raise ValidationError([_problem(where, e) for e in error.errors()], "experiment") from None
    problems: list[Problem] = []
    try:
        _check_files(path, spec.data)
    except ValidationError as error:
        problems += error.problems
    if spec.features.set.lower().endswith(".toml"):  # a file, found as data.source is
        found = str(_source_path(path, spec.features.set))
        spec = spec.model_copy(update={"features": _Features(set=found)})
    try:
        load_feature_set(spec.features.set)
    except ValidationError as error:
        problems += [
            Problem(
                "features.set",
                spec.features.set,
                f"{where}: features.set={spec.features.set!r}: {p.message}",
            )
            for p in error.problems
        ]
    # an outcome the contract does not declare is a typo, found before the data is made
    binary = [c for c in columns("outcome") if column(c).kind == "bool"]
    for outcome in spec.outcomes.names:
        if outcome not in binary:
            problems.append(
                Problem(
                    "outcomes.names",
                    outcome,
                    f"{where}: outcomes.names: {outcome!r} is not a binary outcome of the data "
                    f"contract; expected some of {', '.join(binary)}",
                )
            )
    repeated = sorted({o for o in spec.outcomes.names if spec.outcomes.names.count(o) > 1})
    if repeated:
        problems.append(
            Problem(
                "outcomes.names",
                repeated,
                f"{where}: outcomes.names lists {', '.join(repeated)} more than once; "
                "name each outcome once",
            )
        )
    valid = set(OutcomeModel().get_params()) - {"outcome", "features"}
    for key, values in spec.tuning.items():
        if not values:
            problems.append(
                Problem(
                    f"tuning.{key}",
                    values,
                    f"{where}: tuning.{key} is empty; give the values to try, e.g. "
                    f"{key} = [2, 3], or leave it out",
                )
            )
    grid = math.prod(len(values) for values in spec.tuning.values()) if spec.tuning else 0
    if grid > MAX_TUNING_CANDIDATES:
        problems.append(
            Problem(
                "tuning",
                grid,
                f"{where}: the [tuning] grid has {grid:,} combinations, each fitted in every "
                f"inner fold of every outer fold; at most {MAX_TUNING_CANDIDATES} are tried "
                "(a review ran 1,000 for 13 minutes before stopping it): try fewer values",
            )
        )
    for section, keys in (("model", spec.model), ("tuning", spec.tuning)):
        for key in keys:
            if key not in valid:
                problems.append(
                    Problem(
                        f"{section}.{key}",
                        keys[key],
                        f"{where}: unknown "
                        f"key {section}.{key}; OutcomeModel parameters are "
                        f"{', '.join(sorted(valid))}",
                    )
                )
    if not problems:
        # [model] as given, then each value of the grid in it: a bad value is named where
        # it was written ("tuning.max_depth=0"), not blamed on [model]
        candidates = [("model", None, spec.model)] + [
            ("tuning", (k, v), {**spec.model, k: v})
            for k, values in spec.tuning.items()
            for v in values
        ]
        for section, tried, params in candidates:
            said = (
                f"{where}: model:"
                if tried is None
                else f"{where}: tuning.{tried[0]}={tried[1]!r}:"
            )
            try:
                OutcomeModel(**params)._validate_params()
            except ValidationError as error:  # each of its problems, under the file's name
                problems += [
                    Problem(section, params, f"{said} {p.message}") for p in error.problems
                ]
                break
            except (ValueError, TypeError) as error:
                problems.append(Problem(section, params, f"{said} {error}"))
                break
    if problems:
        raise ValidationError(problems, "experiment")
    return Experiment(name=name, path=path, text=text, spec=spec)


# An experiment's name: MLflow files its runs under it and the local store keeps their
# artifacts in a directory of that name in the store's mlruns/, so it must be a plain file name on
# every system (a file named "...toml" would be named "..", and its artifacts would land
# outside mlruns/). 100 characters keep it readable in the MLflow UI.
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")


def _name(path: Path) -> str:
    """The experiment's name: the file's name without ``.toml``.

    A name outside the rule (letters, digits, ``-``, ``_`` and ``.``, not starting with a
    dot, at most 100 characters) is refused, not cleaned: a cleaned name would file the runs
    under a name the user never wrote, and two files could share one.
    """
    name = path.name.removesuffix(".toml")
    if not _NAME.fullmatch(name):
        raise ValidationError(
            [
                Problem(
                    "experiment",
                    name,
                    f"experiment file {str(path)!r}: its name {name!r} names the MLflow "
                    "experiment and its artifact directory, so it may use letters, "
                    "digits, '-', '_' and '.', not start with '.', and have at most 100 "
                    "characters; rename the file",
                )
            ],
            "experiment",
        )
    return name


def _find(path: str | Path) -> Path:
    candidate = Path(path)
    # os.path: False for a name too long or with a NUL, where pathlib raises
    if os.path.isfile(candidate):
        return candidate
    if candidate.suffix != ".toml" and _NAME.fullmatch(str(path)):  # a shipped one's name
        from importlib import resources

        packaged = resources.files("ketapredict.experiment_files").joinpath(f"{path}.toml")
        if packaged.is_file():
            return Path(str(packaged))
    if not str(path):
        message = "no experiment file given (an empty name); expected a .toml file"
    else:
        message = f"experiment file {str(path)!r} {not_a_file(candidate, 'a .toml file')}"
    from importlib import resources

    shipped = sorted(
        entry.name.removesuffix(".toml")
        for entry in resources.files("ketapredict.experiment_files").iterdir()
        if entry.name.endswith(".toml")
    )
    message += f"; the shipped experiments are {', '.join(shipped)} (by name, or a path)"
    raise ValidationError([Problem("experiment", str(path), message)], "experiment")


def _source_path(experiment: Path, source: str) -> Path:
    """A data file named in an experiment: next to the experiment file if it is there, else
    as given (relative to the current directory)."""
    path = Path(source)
    if not path.is_absolute() and os.path.exists(experiment.parent / path):
        return experiment.parent / path
    return path


def _check_files(experiment: Path, data: _Data) -> None:
    """The data files an experiment names exist (checked at load, before any training)."""
    where = str(experiment)
    problems = []
    if data.format is not None:
        named = {"data.mapping": data.mapping, "data.adsl": data.adsl}
        named |= {"data.path": data.path, "data.efficacy": data.efficacy}
        for key, name in named.items():
            target = experiment.parent / name if name is not None else None
            if (
                target is not None
                and os.path.exists(target)
                and key != "data.path"  # the BIDS dataset: a directory
                and (fault := not_a_file(target, "a file")) is not None
            ):
                problems.append(Problem(key, name, f"{where}: {key}={name!r} {fault}"))
            elif name is not None and not os.path.exists(target):
                problems.append(
                    Problem(
                        key,
                        name,
                        f"{where}: {key}={name!r}: no such file or directory next to the "
                        f"experiment file ({experiment.parent / name})",
                    )
                )
    elif not data.simulated:
        path = _source_path(experiment, data.source)
        if path.suffix.lower() not in _TABLE_SUFFIXES:
            message = (
                f'{where}: data.source={data.source!r}: expected "simulated" or a patient '
                "table (.csv or .parquet); for a BIDS or ADaM study give format and mapping"
            )
        elif (fault := not_a_file(path, "a file")) is None:
            message = None
        elif fault == "does not exist":
            message = (
                f"{where}: data.source={data.source!r}: no such file (looked next to the "
                "experiment file and in the current directory)"
            )
        else:
            message = f"{where}: data.source={data.source!r} {fault}"
        if message is not None:
            problems.append(Problem("data.source", data.source, message))
    if problems:
        raise ValidationError(problems, "experiment")


# Why a bound is there, said after pydantic's "Input should be less than or equal to ...".
_WHY = {
    "data.n": "the simulated cohort is held in memory, about half a gigabyte at 1,000,000",
}


def _problem(where: str, error: dict[str, Any]) -> Problem:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        known = allowed_keys(_Spec, error["loc"])
        return Problem(key, error.get("input"), f"{where}: unknown key {key!r}{known}")
    value = repr(error.get("input"))
    value = value if len(value) <= 60 else value[:57] + "..."
    if isinstance(error.get("input"), dict):  # a whole section's check: its words say all
        message = f"{where}: [{key}]: {error['msg'].removeprefix('Value error, ')}"
    else:
        message = f"{where}: {key}={value}: {error['msg']}"
    if key in _WHY and error["type"] == "less_than_equal":
        message += f" ({_WHY[key]})"
    return Problem(key, error.get("input"), message)


@dataclass
class ExperimentResult:
    """The outcome of running an experiment.

    Attributes
    ----------
    experiment : Experiment
    results : dict of str to ValidationResult
        By outcome.
    data : DataFrame
        The experiment's patient table.
    learning_curves : dict of str to DataFrame
        By outcome, when the experiment asks for one.
    data_kind : {"simulated", "real"}
    n_rows : int
    seconds : float
        Wall time of data loading and validation of every outcome.
    timings : dict of str to float
        Wall time in seconds of each outcome's validation, and ``final_model`` once
        :meth:`fit_model` has run.
    started : float
        When the experiment began (seconds since the epoch), for the MLflow run's start.
    """

    experiment: Experiment
    results: dict[str, ValidationResult]
    data_kind: str
    n_rows: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    data: pd.DataFrame | None = field(default=None, repr=False)
    learning_curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def __str__(self) -> str:
        """The metrics of every outcome as ``ketapredict train`` prints them."""
        return "\n\n".join(str(validation) for validation in self.results.values())

    def __repr__(self) -> str:
        # never the patient table's rows, which a dataclass's repr would show
        return (
            f"ExperimentResult({self.experiment.name!r}: {', '.join(self.results)}; "
            f"{self.n_rows:,} {self.data_kind} courses, {self.seconds:.0f} s; print() it for "
            "the metrics)"
        )

    def fit_model(self, name: str | None = None):
        """The RiskModel of this experiment's outcomes, fitted on all its data.

        Its provenance records the experiment, the data kind, the date and the
        cross-validated metrics; a model trained on simulated data says so.

        Parameters
        ----------
        name : str, optional
            The model's name in its provenance and model card (default: the experiment's).
        """
        spec = self.experiment.spec
        metrics = {
            outcome: {
                k: round(float(v), 4)
                for k, v in result.metrics.loc["OutcomeModel", _PROVENANCE_METRICS].items()
                if math.isfinite(v)  # a model file's JSON has no NaN
            }
            for outcome, result in self.results.items()
        }
        from . import __version__

        provenance = {
            "name": name or self.experiment.name,
            "data_kind": self.data_kind,
            "data_source": spec.data.describe(),
            "trained": time.strftime("%Y-%m-%d"),
            "ketapredict_version": __version__,
            "validation": self.scheme_text(),
            "metrics": metrics,
        }
        if "trial_id" in self.data.columns:
            provenance["n_trials"] = int(self.data["trial_id"].nunique())
        days = self.data["endpoint_day"].dropna()
        if len(days):
            provenance["horizon_days"] = [float(days.min()), float(days.max())]
        if self.data_kind == "simulated":
            provenance["notes"] = VIRTUAL_COHORT_NOTICE
        # nested cross-validation scored "tune, then fit": the model kept is made the same
        # way, tuned on all its data (ketapredict.evaluate.tune_parameters)
        tuned = {}
        if spec.tuning:
            from .evaluate import tune_parameters

            began = time.perf_counter()
            for outcome in self.results:
                tuned[outcome] = tune_parameters(
                    self.experiment.model(outcome),
                    self.data,
                    spec.tuning,
                    scheme=spec.validation.scheme,
                    seed=spec.validation.seed,
                )
            self.timings["tuning"] = time.perf_counter() - began
            provenance["tuned_parameters"] = tuned
        # on the virtual cohort, a fresh cohort (new patients, new trials) calibrates the
        # intervals against the true probabilities; real data have none
        interval_data = None
        if spec.data.simulated:
            from .cohort.simulate import simulate_cohort

            seed = int(np.random.SeedSequence([spec.data.seed, 1]).generate_state(1)[0])
            interval_data = simulate_cohort(
                n=spec.data.n, seed=seed, trials_per_design=INTERVAL_TRIALS_PER_DESIGN
            )
        began = time.perf_counter()
        model = fit_risk_model(
            self.data,
            list(self.results),
            features=spec.features.set,
            provenance=provenance,
            interval_data=interval_data,
            replicates=spec.intervals.replicates,
            outcome_params=tuned,
            **spec.model,
        )
        self.timings["final_model"] = time.perf_counter() - began
        model.card = model.model_card(
            sample={
                outcome: {
                    "n": int(r.metrics.loc["OutcomeModel", "n"]),
                    "events": int(r.metrics.loc["OutcomeModel", "events"]),
                }
                for outcome, r in self.results.items()
            },
            subgroups=self.subgroup_rows(),
            description=spec.description,
        )
        return model

    def scheme_text(self) -> str:
        """The validation scheme in words: scheme, folds and bootstrap resamples."""
        spec = self.experiment.spec.validation
        folds = {o: r.fold_metrics["fold"].nunique() for o, r in self.results.items()}
        usual = max(set(folds.values()), key=list(folds.values()).count)
        text = f"{spec.scheme}, {usual} folds"
        other = [f"{n} for {o}" for o, n in folds.items() if n != usual]
        if other:  # an outcome some trials did not record has fewer trials to hold out
            text += f" ({', '.join(other)})"
        if spec.bootstraps:
            resampled = next(iter(self.results.values())).resampled
            text += f", {spec.bootstraps} bootstrap resamples of {resampled} for the intervals"
        if self.experiment.spec.tuning:
            text += ", nested grid search in every fold"
        return text

    def subgroup_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Out-of-fold subgroup metrics of the model by outcome, for its card: by sex, age
        band, diagnosis, drug, route, active drug against comparator, and trial."""
        shown = ("sex", "age band", "diagnosis", "drug", "route", "active drug", "trial")
        rows = {}
        for outcome, result in self.results.items():
            table = result.subgroups
            table = table[(table["model"] == "OutcomeModel") & table["variable"].isin(shown)]
            rows[outcome] = table.drop(columns="model").to_dict("records")
        return rows

    def table(self) -> pd.DataFrame:
        """The metrics of every outcome and model, one row each."""
        frames = []
        for outcome, result in self.results.items():
            metrics = result.metrics.copy()
            folds = result.shown_folds.groupby("model")["within_arm_auc"]
            metrics["fold_within_arm_auc_mean"] = folds.mean()
            metrics["fold_within_arm_auc_sd"] = folds.std()
            metrics.insert(0, "outcome", outcome)
            frames.append(metrics.rename_axis("model").reset_index())
        return pd.concat(frames, ignore_index=True)


def run_experiment(experiment: Experiment, *, progress: bool = False) -> ExperimentResult:
    """Validate every outcome of an experiment.

    All outcomes are checked (present, enough events for the scheme) before any training.

    Parameters
    ----------
    experiment : Experiment
        From :func:`load_experiment`.
    progress : bool, default=False
        Show a progress bar over folds (on stderr).

    Returns
    -------
    ExperimentResult
    """
    started, start = time.time(), time.perf_counter()
    data = experiment.load_data()
    spec = experiment.spec.validation
    problems = []
    for outcome in experiment.spec.outcomes.names:
        try:
            check_design(data, outcome, spec.scheme, spec.n_splits)
        except ValidationError as error:
            problems += error.problems
        if spec.learning_curve:
            problems += _learning_curve_problems(data, outcome, spec.learning_curve)
    if problems:
        raise ValidationError(problems, f"data for experiment {experiment.name!r}")
    results, timings = {}, {}
    for outcome in experiment.spec.outcomes.names:
        began = time.perf_counter()
        results[outcome] = cross_validate(
            experiment.model(outcome),
            data,
            outcome=outcome,
            scheme=spec.scheme,
            n_splits=spec.n_splits,
            tuning=experiment.spec.tuning or None,
            peers=spec.peers,
            n_bootstraps=spec.bootstraps,
            seed=spec.seed,
            progress=f"{experiment.name}: {outcome}" if progress else False,
        )
        timings[outcome] = time.perf_counter() - began
    curves = {}
    if spec.learning_curve:
        from .evaluate import learning_curve

        for outcome in experiment.spec.outcomes.names:
            curves[outcome] = learning_curve(
                experiment.model(outcome),
                data,
                spec.learning_curve,
                outcome=outcome,
                peers=spec.peers,
                seed=spec.seed,
            )
    # a table holding the simulator's true probabilities was simulated, whoever saved it
    # (ketapredict simulate --out cohort.parquet): its model says so in every report
    truth = [c for c in columns("truth") if c in data.columns and data[c].notna().any()]
    source = experiment.spec.data
    kind = "simulated" if source.simulated or source.virtual or truth else "real"
    return ExperimentResult(
        experiment,
        results,
        kind,
        len(data),
        time.perf_counter() - start,
        timings,
        data,
        curves,
        started,
    )


def _learning_curve_problems(data: pd.DataFrame, outcome: str, sizes: list[int]) -> list:
    """Training sizes larger than the learning curve's training part (the courses with the
    outcome less the part :func:`ketapredict.evaluate.learning_curve` holds out), found
    before any training rather than after the cross-validation."""
    if outcome not in data.columns:
        return []  # check_design has said so
    import inspect

    from .evaluate import learning_curve

    held_out = inspect.signature(learning_curve).parameters["test_fraction"].default
    n = int(data[outcome].notna().sum())
    training = n - math.ceil(held_out * n)
    too_big = [size for size in sizes if size > training]
    if not too_big:
        return []
    return [
        Problem(
            "validation.learning_curve",
            too_big,
            f"validation.learning_curve sizes {too_big} exceed the {training:,} training "
            f"courses of {outcome} ({1 - held_out:.0%} of the {n:,} with it)",
        )
    ]


# -- the RiskModel: the learning side builds the clinician's artifact ------------------------

# What fit_risk_model adds to the caller's provenance, at most (the demo model's whole
# provenance is 3 kB): the caller's may take the rest of the limit.
_FIT_RECORD_BYTES = 16_384


def build_risk_model(
    models: Mapping[str, OutcomeModel],
    provenance: Mapping | None = None,
    *,
    replicates: Mapping[str, Sequence[tuple[Any, ...]]] | None = None,
    reference: Mapping[str, Any] | None = None,
) -> RiskModel:
    """Bundle fitted OutcomeModels into a :class:`~ketapredict.RiskModel`.

    Each model's trees are compiled for scoring with numpy, with its bootstrap replicates
    (for intervals); the fitted models stay with the bundle for the learning side
    (:func:`ketapredict.models.outcome_models`).

    Parameters
    ----------
    models : mapping of str to OutcomeModel
        Fitted models by outcome, each fitted with a feature set.
    provenance : mapping, optional
        Where the model comes from (see :class:`~ketapredict.RiskModel`).
    replicates : mapping of str to list, optional
        Per outcome, bootstrap replicates from :meth:`OutcomeModel.replicates`. Without
        them the model gives no intervals.
    reference : mapping, optional
        The training-distribution summary (:meth:`RiskModel.training_summary`).

    Returns
    -------
    RiskModel

    Examples
    --------
    >>> from ketapredict import OutcomeModel, build_risk_model, simulate_cohort
    >>> cohort = simulate_cohort(n=1000, seed=0)
    >>> fitted = OutcomeModel("response").fit(cohort)
    >>> build_risk_model({"response": fitted}).outcomes
    ['response']
    """
    from sklearn.utils.validation import check_is_fitted

    from .risk import OutcomeState, RiskModel, outcome_mapping_problems, t_quantile
    from .trees import TreeEnsemble

    problems = outcome_mapping_problems("models", models, OutcomeModel)
    if replicates is not None and not isinstance(replicates, Mapping):
        problems.append(
            Problem(
                "replicates",
                None,
                f"replicates must be a mapping (a dict); got {type(replicates).__name__}",
            )
        )
    if problems:
        raise ValidationError(problems, "arguments")
    states = {}
    for outcome, model in models.items():
        check_is_fitted(model, "booster_")
        if model.features is None:
            raise ValidationError(
                [
                    Problem(
                        "models",
                        None,
                        f"the {outcome!r} model was fitted without a feature set; a "
                        "RiskModel scores patient tables",
                    )
                ],
                "arguments",
            )
        extra = list((replicates or {}).get(outcome, []))
        linear = [
            getattr(model, "linear_", None),
            *(r[2] if len(r) > 2 else None for r in extra),
        ]
        trees = TreeEnsemble.from_xgboost([model.booster_, *(r[0] for r in extra)])
        if linear[0] is not None:
            # boosted from the linear margin: XGBoost ignores its base score then
            trees = replace(trees, base_margins=np.zeros(trees.n_members))
        record = {
            "params": {
                k: (str(v) if isinstance(v, Path) else v) for k, v in model.get_params().items()
            },
            "classes": [v.item() if hasattr(v, "item") else v for v in model.classes_],
            "n_rounds": model.n_rounds_,
            "min_child_weight": model.min_child_weight_,
        }
        if hasattr(model, "few_events_"):  # unknown for a model read from a version 5
            record["few_events"] = bool(model.few_events_)
        states[outcome] = OutcomeState(
            outcome=outcome,
            spec=model.encoder_.spec_,
            feature_names=list(model.feature_names_),
            feature_names_in=list(model.feature_names_in_),
            trees=trees,
            linear=linear,
            calibrators=[model.calibrator_, *(r[1] for r in extra)],
            z=t_quantile(len(extra) - 1) if len(extra) >= 2 else None,
            imputer=getattr(model, "imputer_", None),
            record=record,
            booster_file=_booster_file(model.booster_),
            model=model,
        )
    return RiskModel(states, provenance, reference=reference)


def _booster_file(booster: Any) -> bytes:
    """The booster as XGBoost saves it (UBJSON, with its scikit-learn fields)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "booster.ubj"
        booster.save_model(path)
        return path.read_bytes()


def fit_risk_model(
    data: pd.DataFrame,
    outcomes: Sequence[str] = OUTCOMES,
    *,
    features: str | Path = "core",
    provenance: Mapping | None = None,
    replicates: int = REPLICATES,
    random_state: int = 0,
    interval_data: pd.DataFrame | None = None,
    outcome_params: Mapping[str, Mapping[str, Any]] | None = None,
    **params: Any,
) -> RiskModel:
    """A :class:`~ketapredict.RiskModel` of ``data``: one OutcomeModel per outcome,
    with bootstrap replicates.

    Rows without an outcome (e.g. untested cognition) are left out of that outcome's
    model only.

    Parameters
    ----------
    data : DataFrame
        A validated patient table with the outcome columns.
    outcomes : sequence of str
        Outcome columns to model, by default the four of :data:`ketapredict.OUTCOMES`.
    features : str or path-like, default="core"
        Feature set shared by the models.
    provenance : mapping, optional
        Added to the model's provenance, over what fitting sets: ``trained`` (today),
        ``ketapredict_version``, ``n_patients``, ``feature_set``, ``structure``,
        ``replicates``, ``intervals``, and ``data_kind="simulated"`` when ``data`` holds
        true probabilities (``p_<outcome>``: only the virtual cohort has them), so that
        every report of the model says it is not for clinical decisions.
    replicates : int, default=20
        Bootstrap replicates per outcome for the 90% intervals (0: no intervals; at
        most 1,000).
    random_state : int, default=0
        Seed of the models and the bootstrap.
    interval_data : DataFrame, optional
        Patients the model never saw, with their true probabilities ``p_<outcome>``:
        a fresh virtual cohort (new patients from new trials). They calibrate the
        intervals: the multiplier of the bootstrap SD is the one that puts 90% of their
        true probabilities inside (:meth:`RiskModel.calibrate_intervals`), for active-drug and
        comparator patients apart, so the intervals cover the model's bias and an
        unknown trial too. Without them the intervals are the bootstrap's alone:
        sampling uncertainty, not the model's bias (the provenance says which). Real
        data have no true probabilities, so only a model of the virtual cohort can be
        calibrated so.
    outcome_params : mapping of str to mapping, optional
        OutcomeModel parameters of one outcome, over ``params`` (e.g. chosen for it by
        :func:`ketapredict.evaluate.tune_parameters`).
    **params
        OutcomeModel parameters shared by all outcomes.

    Returns
    -------
    RiskModel

    Examples
    --------
    >>> from ketapredict import fit_risk_model, simulate_cohort
    >>> model = fit_risk_model(simulate_cohort(n=2000, seed=0), ["response"], replicates=5)
    >>> model.provenance["replicates"], model.has_intervals
    (5, True)
    >>> model.provenance["data_kind"]  # the virtual cohort's true probabilities say so
    'simulated'
    """
    from .modelfile import MAX_PROVENANCE_BYTES, provenance_problems
    from .models import MAX_REPLICATES
    from .schema import courses_table_problems, whole_number_problem

    if provenance is not None and not isinstance(provenance, Mapping):
        raise ValidationError(
            [
                Problem(
                    "provenance",
                    None,
                    "provenance must be a mapping (a dict of what to record with the "
                    f"model); got {type(provenance).__name__}",
                )
            ],
            "arguments",
        )
    # before the work, not at save: a saved model with a longer one would be refused
    long = provenance_problems(dict(provenance or {}))
    if long:
        raise ValidationError([Problem("provenance", None, text) for text in long], "model")
    # fit adds its own record (structure, intervals: a few kB) to the caller's, and the
    # whole must stay within the limit: checked now, not after every model is fitted
    size = len(json.dumps(dict(provenance or {}), default=str).encode())
    if size > MAX_PROVENANCE_BYTES - _FIT_RECORD_BYTES:
        raise ValidationError(
            [
                Problem(
                    "provenance",
                    None,
                    f"provenance takes {size:,} bytes as JSON; fit adds up to "
                    f"{_FIT_RECORD_BYTES:,} of its own within the limit of "
                    f"{MAX_PROVENANCE_BYTES:,}, so at most "
                    f"{MAX_PROVENANCE_BYTES - _FIT_RECORD_BYTES:,} may be the caller's",
                )
            ],
            "arguments",
        )
    outcomes = outcome_names(outcomes)
    problems = []
    if interval_data is not None and not isinstance(interval_data, pd.DataFrame):
        problems.append(
            Problem(
                "interval_data",
                None,
                "interval_data must be a DataFrame of simulated courses with their true "
                f"probabilities; got {type(interval_data).__name__}",
            )
        )
    problems += courses_table_problems(data)
    if not outcomes:
        problems.append(Problem("outcomes", [], "outcomes lists no outcome"))
    if outcome_params is not None and not isinstance(outcome_params, Mapping):
        problems.append(
            Problem(
                "outcome_params",
                None,
                "outcome_params must map an outcome to its OutcomeModel parameters; got "
                f"{type(outcome_params).__name__}",
            )
        )
    else:  # a misspelt outcome's parameters would go unused, silently
        problems += [
            Problem(
                "outcome_params",
                short_repr(name),
                f"outcome_params names {short_repr(name)}, which is not among the outcomes "
                f"fitted ({', '.join(map(str, outcomes))})",
            )
            for name in (outcome_params or {})
            if name not in outcomes
        ]
    if isinstance(replicates, bool) or not (
        isinstance(replicates, int | np.integer)
        and (replicates == 0 or 2 <= replicates <= MAX_REPLICATES)
    ):
        # one replicate has no spread: its interval would be the estimate itself
        problems.append(
            Problem(
                "replicates",
                replicates,
                f"replicates={short_repr(replicates)} is not 0 (no intervals) or a whole "
                f"number from 2 to {MAX_REPLICATES:,}",
            )
        )
    # before any fitting: the replicates' resamples need a seed numpy takes
    seeded = whole_number_problem("random_state", random_state, 0, 2**32 - 1, none=True)
    problems += [seeded] if seeded else []
    if problems:
        raise ValidationError(problems, "arguments")
    models, extra = {}, {}
    for outcome in outcomes:
        if outcome not in data.columns:
            raise ValidationError(
                [Problem(outcome, None, f"outcome column {outcome!r} is not in the data")],
                "data",
            )
        rows = data[data[outcome].notna()]
        own = {**params, **(outcome_params or {}).get(outcome, {})}
        model = OutcomeModel(outcome, features=features, random_state=random_state, **own)
        models[outcome] = model.fit(rows)
        # the model a save would refuse as too slow to score: said before the replicates,
        # which take most of the time (each member as many trees as the model, or so)
        nodes = sum(
            # a model of no rounds still holds one tree (XGBoost's base score)
            max(m.n_rounds_, 1) * m.max_depth * (replicates + 1)
            for m in models.values()
        ) * max((m.imputer_.n_draws for m in models.values() if m.imputer_), default=1)
        if nodes > MAX_SCORING_NODES:
            raise ValidationError(
                [
                    Problem(
                        "replicates",
                        replicates,
                        f"with {replicates} replicates, scoring one patient would visit "
                        f"about {nodes:,} tree nodes, over the limit of "
                        f"{MAX_SCORING_NODES:,} a saved model may take; fewer trees "
                        "(n_estimators), shallower ones (max_depth) or fewer replicates "
                        "make it faster",
                    )
                ],
                "arguments",
            )
        if replicates:
            extra[outcome] = model.replicates(
                rows, n_replicates=replicates, random_state=random_state
            )
    # the outcomes share the imputer of the model fitted on the most patients, so a
    # missing field is integrated over one distribution, by each model and by the
    # clinician path (RiskModel._expand)
    shared = max(models.values(), key=lambda m: m.imputer_n_).imputer_
    for fitted in models.values():
        fitted.imputer_ = shared
    from . import __version__

    record = {
        "trained": time.strftime("%Y-%m-%d"),
        "ketapredict_version": __version__,
        # only simulated courses carry their true probabilities: a model of them says it
        # was trained on a virtual cohort, and every report leads with the notice
        **(
            {"data_kind": "simulated"}
            if any(name in data.columns for name in columns("truth"))
            else {}
        ),
        "n_patients": len(data),
        "feature_set": str(features),
        "structure": {outcome: model.describe() for outcome, model in models.items()},
        "replicates": replicates,
        "intervals": (
            f"90% intervals from {replicates} bootstrap replicates per outcome (logit "
            "scale, Student t): how much the estimate would move with another training "
            "sample of this size; they leave out the model's own bias"
            if replicates
            else "none"
        ),
        **(provenance or {}),
    }
    risk = build_risk_model(models, record, replicates=extra)
    risk.reference = risk.training_summary(data)
    if interval_data is not None:
        risk.calibrate_intervals(interval_data, random_state=random_state)
    return risk

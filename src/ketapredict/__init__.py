"""ketapredict: how will a patient with depression fare on ketamine or esketamine?

Predicts, for one patient and one dose schedule, the chance of antidepressant response (and
remission) and of cognitive adverse effects (and acute dissociation), with calibrated
gradient-boosted models, their explanations and their uncertainty.

The public names are listed in ``__all__``. Heavy dependencies (scikit-learn, XGBoost,
MLflow, SHAP, matplotlib) load only when a name that needs them is first used, so
``import ketapredict`` stays fast.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ketapredict")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

# public name -> module that defines it
_PUBLIC = {
    "ValidationError": "exceptions",
    "ModelFileError": "exceptions",
    "Problem": "exceptions",
    "Patient": "schema",
    "check_outcome": "schema",
    "columns": "schema",
    "validate": "schema",
    "validate_patient": "schema",
    "Regimen": "regimen",
    "exposure": "regimen",
    "Population": "cohort.population",
    "TrialEffect": "cohort.simulate",
    "published_trials": "cohort.simulate",
    "simulate_arm": "cohort.simulate",
    "simulate_cohort": "cohort.simulate",
    "simulate_crossover": "cohort.simulate",
    "simulate_trial": "cohort.simulate",
    "calibration_report": "cohort.calibration",
    "load_mapping": "io",
    "read_adam": "io",
    "read_bids": "io",
    "read_study": "io",
    "FeatureEncoder": "features",
    "load_feature_set": "features",
    "OutcomeModel": "models",
    "RiskModel": "risk",
    "build_risk_model": "experiment",
    "fit_risk_model": "experiment",
    "generate_keys": "modelfile",
    "RiskReport": "clinic",
    "RegimenComparison": "clinic",
    "load_model": "clinic",
    "regimen_grid": "clinic",
    "cross_validate": "evaluate",
    "ExternalValidation": "external",
    "evaluate_model": "external",
    "explain": "explanation",
    "score_predictions": "evaluate",
}

__all__ = ["__version__", *_PUBLIC]


# The sub-modules the documentation names (``ketapredict.io.example_study``,
# ``ketapredict.schema.MIN_CELL``): reachable after a plain ``import ketapredict``, imported
# when first used.
_MODULES = frozenset(
    {
        "card", "cli", "clinic", "cohort", "encoding", "evaluate", "exceptions", "experiment",
        "explanation", "external", "features", "imputation", "io", "modelfile", "models",
        "plots", "regimen", "risk", "schema", "tracking", "trees", "updating",
    }
)  # fmt: skip


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _MODULES:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ketapredict' has no attribute {name!r}")


def __dir__():
    return sorted({*__all__, *_MODULES})

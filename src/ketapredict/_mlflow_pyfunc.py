"""The RiskModel as an MLflow pyfunc: the loader MLflow imports from the installed package.

A model logged by :func:`ketapredict.tracking.log_experiment` names this module as its
``loader_module`` and carries no code: its ``MLmodel`` says ``loader_module:
ketapredict._mlflow_pyfunc`` and ``data: risk_model``, the RiskModel directory with its
checksums (and signature, when signed). ``mlflow.pyfunc.load_model`` imports this module
from the ketapredict installed where it runs (the model's requirements pin it) and calls
:func:`_load_pyfunc`, which reads the directory with ``RiskModel.load``: every file verified,
nothing pickled, no code from the artifact imported. (``MLmodel`` is MLflow's own file and
decides what MLflow imports: whoever can write the artifact can change it.
``ketapredict.load_model`` reads the RiskModel's files alone.)

``predict`` takes a patient table with the contract's own dtypes (categories, nullable
integers and booleans) or plain ones (strings, numbers, JSON values), validates it against
the data contract and returns one probability column per outcome; the parameter
``outcome`` (``params={"outcome": "response"}``) returns that outcome's column alone, which
is what ``mlflow.models.evaluate`` scores.
"""

from __future__ import annotations

from typing import Any


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> RiskModelPyfunc:
    """MLflow's entry point: the flavor's data directory -> the model to predict with.

    ``model_config={"public_key": ...}`` (``mlflow.pyfunc.load_model(uri,
    model_config=...)``) refuses a model that is not signed with the matching private key.
    """
    from ketapredict.risk import RiskModel

    public_key = (model_config or {}).get("public_key")
    return RiskModelPyfunc(RiskModel.load(path, public_key=public_key))


class RiskModelPyfunc:
    """A loaded RiskModel with the pyfunc's ``predict``.

    Parameters
    ----------
    model : RiskModel
        The model loaded and verified.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def get_raw_model(self) -> Any:
        """The RiskModel (``PyFuncModel.get_raw_model()``)."""
        return self.model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """One probability column per outcome (or the one ``params["outcome"]`` names)."""
        import pandas as pd

        from ketapredict.exceptions import Problem, ValidationError
        from ketapredict.schema import validate

        outcome = (params or {}).get("outcome", "all")
        if outcome != "all" and outcome not in self.model.outcomes:
            raise ValidationError(
                [
                    Problem(
                        "outcome",
                        outcome,
                        f"params outcome={outcome!r}: expected 'all' or one of "
                        f"{self.model.outcomes}",
                    )
                ],
                "pyfunc params",
            )
        table = validate(pd.DataFrame(model_input), what="model input")
        probabilities = self.model.predict_proba(table, validated=True)
        return probabilities if outcome == "all" else probabilities[[outcome]]

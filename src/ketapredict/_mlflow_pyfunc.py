"""The RiskModel as an MLflow pyfunc, logged as code (MLflow's "models from code").

MLflow stores this file with the model and runs it when loading, so no Python object is
pickled: the RiskModel itself is read from its JSON/UBJSON files with checksums
(``RiskModel.load``), and ketapredict's source travels with the model (``code_paths``), so a
fresh environment built from the model's requirements can serve it.

``predict`` takes a patient table with the contract's own dtypes (categories, nullable
integers and booleans) or plain ones (strings, numbers, JSON values), validates it against
the data contract and returns one probability column per outcome; the parameter
``outcome`` (``params={"outcome": "response"}``) returns that outcome's column alone, which
is what ``mlflow.models.evaluate`` scores.
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class RiskModelPyfunc(PythonModel):
    def load_context(self, context):
        from ketapredict.risk import RiskModel

        self.model = RiskModel.load(context.artifacts["risk_model"])

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
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


mlflow.models.set_model(RiskModelPyfunc())

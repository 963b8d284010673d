"""The RiskModel as an MLflow pyfunc, logged as code (MLflow's "models from code").

MLflow stores this file with the model and runs it when loading, so no Python object is
pickled: the RiskModel itself is read from its JSON/UBJSON files with checksums
(``RiskModel.load``). ``predict`` validates the input against the data contract and returns
one probability column per outcome.
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
        from ketapredict.schema import validate

        table = validate(pd.DataFrame(model_input), what="model input")
        return self.model.predict_proba(table, validated=True)


mlflow.models.set_model(RiskModelPyfunc())

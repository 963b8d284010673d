"""The flow of data in DESIGN.md, as imports: no module reaches back up the chain.

io and cohort -> schema -> features -> models -> evaluate -> explanation -> tracking, and
the RiskModel the learning side builds (experiment) -> clinic. The clinician path (risk,
trees, clinic) must load and score without the learning side, so its modules never import
it, even inside a function.
"""

import ast
from pathlib import Path

import pytest

import ketapredict

PACKAGE = Path(ketapredict.__file__).parent
LEARNING = {"models", "features", "evaluate", "explanation", "experiment", "tracking"}
# Upstream of the RiskModel: they never know the serving artifact or the clinic.
UPSTREAM = ["schema", "regimen", "encoding", "features", "imputation", "models", "evaluate"]
UPSTREAM += ["explanation", "trees", "updating", "modelfile"]


def _imports(module):
    """(imported sibling module, enclosing function or "" at module level) of ``module``."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = []

    def visit(node, where):
        for child in ast.iter_child_nodes(node):
            inner = where
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = f"{where}.{child.name}" if where else child.name
            if isinstance(child, ast.ImportFrom) and child.level == 1:
                if child.module:
                    found.append((child.module.split(".")[0], where))
                else:  # from . import x
                    found.extend((alias.name, where) for alias in child.names)
            visit(child, inner)

    visit(tree, "")
    return found


@pytest.mark.parametrize("module", ["risk", "trees"])
def test_the_serving_artifact_never_imports_the_learning_side(module):
    """DESIGN.md: neither risk nor trees imports models or tracking, even lazily. The one
    import of the clinic is the pair of methods DESIGN.md asks for (``model.score``,
    ``model.compare_regimens``), whose reports are the clinic's."""
    imported = _imports(module)
    assert not [(name, where) for name, where in imported if name in LEARNING]
    clinic = sorted(where for name, where in imported if name == "clinic")
    assert clinic in ([], ["RiskModel.compare_regimens", "RiskModel.score"])


def test_the_clinic_imports_tracking_only_when_a_model_comes_from_mlflow():
    imported = _imports("clinic")
    assert not [name for name, where in imported if name in LEARNING - {"tracking"}]
    assert all(where for name, where in imported if name == "tracking")


@pytest.mark.parametrize("module", UPSTREAM)
def test_modules_upstream_of_the_risk_model_never_import_it_or_the_clinic(module):
    downstream = {"risk", "clinic", "experiment", "tracking", "cli", "external"}
    assert not [(name, where) for name, where in _imports(module) if name in downstream]


def test_the_checker_sees_imports_inside_functions():
    """The checks above would pass vacuously if lazy imports went unseen."""
    assert ("clinic", "RiskModel.score") in _imports("risk")
    assert ("tracking", "load_model") in [(n, w.split(".")[-1]) for n, w in _imports("clinic")]

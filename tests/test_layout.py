"""The flow of data in DESIGN.md, as imports: no module reaches back up the chain.

io and cohort -> schema -> features -> models -> evaluate -> explanation -> tracking, and
the RiskModel the learning side builds (experiment) -> clinic. The clinician path (risk,
trees, clinic) must load and score without the learning side, so its modules never import
it, even inside a function.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ketapredict

PACKAGE = Path(ketapredict.__file__).parent
LEARNING = {"models", "features", "evaluate", "explanation", "experiment", "tracking", "plots"}
# Upstream of the RiskModel: they never know the serving artifact or the clinic.
UPSTREAM = ["schema", "regimen", "encoding", "features", "imputation", "models", "evaluate"]
UPSTREAM += ["explanation", "plots", "trees", "updating", "modelfile"]


def _imports(module, package=PACKAGE):
    """(imported module of the package, enclosing function or "" at module level) of
    ``module``: relative imports and absolute ones (``from ketapredict.models import``,
    ``import ketapredict.tracking``)."""
    tree = ast.parse((package / f"{module}.py").read_text(encoding="utf-8"))
    found = []

    def ours(name):
        parts = name.split(".")
        return parts[1] if parts[0] == "ketapredict" and len(parts) > 1 else None

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
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module == "ketapredict":  # from ketapredict import models
                    found.extend((alias.name, where) for alias in child.names)
                elif ours(child.module):
                    found.append((ours(child.module), where))
            elif isinstance(child, ast.Import):
                found.extend((ours(a.name), where) for a in child.names if ours(a.name))
            visit(child, inner)

    visit(tree, "")
    return found


@pytest.mark.parametrize("module", ["risk", "trees"])
def test_the_serving_artifact_never_imports_the_learning_side(module):
    """DESIGN.md: neither risk nor trees imports models or tracking, even lazily.

    One import of the clinic remains, and is asserted here so that no other joins it:
    DESIGN.md also asks for ``model.score(...)`` and ``model.compare_regimens(...)`` on
    the RiskModel, whose reports are the clinic's. A RiskModel built by the learning side
    must have them too, so the alternatives (a subclass in the clinic, which the learning
    side would then have to import, or no such methods) break one rule or the other.
    """
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


def test_the_clinician_path_loads_none_of_the_learning_side():
    """What the modules import in turn: importing the clinician path's modules loads no
    learning-side module and no heavy library."""
    code = (
        "import sys\n"
        "import ketapredict.clinic, ketapredict.risk, ketapredict.trees\n"
        f"learning = {sorted(LEARNING)!r}\n"
        "loaded = [m for m in learning if 'ketapredict.' + m in sys.modules]\n"
        "heavy = ('xgboost', 'sklearn', 'mlflow', 'shap', 'matplotlib', 'scipy')\n"
        "print(loaded + [m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_checker_sees_every_kind_of_import(tmp_path):
    """The checks above would pass vacuously if an import went unseen."""
    assert ("clinic", "RiskModel.score") in _imports("risk")
    assert ("tracking", "load_model") in [(n, w.split(".")[-1]) for n, w in _imports("clinic")]
    (tmp_path / "sample.py").write_text(
        "import ketapredict.tracking\n"
        "from ketapredict.models import OutcomeModel\n"
        "from ketapredict import plots\n"
        "def f():\n"
        "    from . import evaluate\n"
        "    from .features import FeatureEncoder\n"
    )
    assert sorted(_imports("sample", tmp_path)) == [
        ("evaluate", "f"),
        ("features", "f"),
        ("models", ""),
        ("plots", ""),
        ("tracking", ""),
    ]

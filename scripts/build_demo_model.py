"""Build the demo model shipped in the package: ``src/ketapredict/data/demo_model``.

The demo model is trained on ketapredict's virtual cohort, never on real patients, and is
not for clinical decisions; its provenance and every report say so. Reproducible: the same
experiment file gives the same model.

    python scripts/build_demo_model.py

runs ``experiments/demo.toml`` (all four outcomes, leave-one-trial-out validation, whose
metrics go into the model's provenance), fits the RiskModel with its bootstrap replicates
on the whole cohort, and replaces the saved model.
"""

import shutil
import sys
import time
from pathlib import Path

from ketapredict.experiment import load_experiment, run_experiment

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "ketapredict" / "data" / "demo_model"


def main() -> int:
    began = time.perf_counter()
    experiment = load_experiment(ROOT / "experiments" / "demo.toml")
    result = run_experiment(experiment, progress=True)
    model = result.fit_model(name="ketapredict demo model")
    if TARGET.exists():
        shutil.rmtree(TARGET)
    model.save(TARGET)
    print(f"Saved the demo model to {TARGET} in {time.perf_counter() - began:.0f} s.")
    for outcome, metrics in model.provenance["metrics"].items():
        print(
            f"  {outcome}: cross-trial AUC within arm among active-drug patients "
            f"{metrics.get('within_arm_auc', float('nan')):.3f}, their ECE "
            f"{metrics['active_ece']:.3f}; over all courses AUC {metrics['auc']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Choosing OutcomeModel's defaults by experiment, at clinical sample sizes.

Each configuration is trained on n in {300, 1000, 3000} patients drawn from
``simulate_cohort`` and scored on an independent cohort of 20,000 (another seed), three
repeats. Prints mean AUC, log-loss, ECE and fit time per configuration, size and outcome,
and writes ``benchmarks/results/model_defaults.csv``.

``leaf_patients=k`` sets min_child_weight to k * ybar * (1 - ybar): the Hessian weight of
about k patients at the outcome's base rate (what ``min_child_weight="auto"`` does with
k = 20). A fixed min_child_weight of 5 stops a rare outcome (3.5% cognitive decline) from
splitting at all: 5 / (0.035 * 0.965) is about 150 patients per leaf.

Run: ``python benchmarks/model_defaults.py`` (about 25 minutes on 2 cores). Measured
results and the choice they led to are in docs/validation.md (Choosing the defaults).
"""

import itertools
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from ketapredict import OutcomeModel, simulate_cohort
from ketapredict.evaluate import expected_calibration_error

# Every configuration states the parameters it varies; the rest are OutcomeModel's defaults
# (learning_rate 0.05, reg_lambda 5, sigmoid calibration on 3 folds). The first round
# compared fixed leaf weights; the second, leaf weights scaled to the base rate.
CONFIGS = {
    # first round: a fixed min_child_weight
    "depth3_mcw5": {"max_depth": 3, "min_child_weight": 5.0},
    "depth2_mcw5": {"max_depth": 2, "min_child_weight": 5.0},
    "depth4_mcw5": {"max_depth": 4, "min_child_weight": 5.0},
    "depth3_mcw1_lambda1": {"max_depth": 3, "min_child_weight": 1.0, "reg_lambda": 1.0},
    "depth3_mcw10_lambda10": {"max_depth": 3, "min_child_weight": 10.0, "reg_lambda": 10.0},
    # second round: min_child_weight = k patients at the base rate
    "depth3_leaf20": {"max_depth": 3, "leaf_patients": 20},
    "depth3_leaf10": {"max_depth": 3, "leaf_patients": 10},
    "depth2_leaf20 (the defaults)": {"max_depth": 2, "leaf_patients": 20},
    "depth4_leaf20": {"max_depth": 4, "leaf_patients": 20},
    "depth2_leaf20_lambda1": {"max_depth": 2, "leaf_patients": 20, "reg_lambda": 1.0},
    "depth2_leaf20_lr10": {"max_depth": 2, "leaf_patients": 20, "learning_rate": 0.1},
    "depth2_leaf20_5folds": {"max_depth": 2, "leaf_patients": 20, "calibration_folds": 5},
    "depth2_leaf20_isotonic": {"max_depth": 2, "leaf_patients": 20, "calibration": "isotonic"},
    "depth2_leaf20_uncalibrated": {"max_depth": 2, "leaf_patients": 20, "calibration": "none"},
    "depth2_leaf20_no_monotone": {"max_depth": 2, "leaf_patients": 20, "monotone": False},
}
SIZES = (300, 1000, 3000)
OUTCOMES = ("response", "cognitive_decline")
REPEATS = 3


def main() -> None:
    test = simulate_cohort(n=20_000, seed=1000)
    rows = []
    for outcome, n, repeat in itertools.product(OUTCOMES, SIZES, range(REPEATS)):
        train = simulate_cohort(n=n, seed=repeat)
        train = train[train[outcome].notna()]
        scored = test[test[outcome].notna()]
        y = scored[outcome].astype(int).to_numpy()
        rate = train[outcome].astype(float).mean()
        for name, params in CONFIGS.items():
            params = dict(params)
            if "leaf_patients" in params:
                params["min_child_weight"] = params.pop("leaf_patients") * rate * (1 - rate)
            model = OutcomeModel(outcome, random_state=repeat, **params)
            start = time.perf_counter()
            try:
                model.fit(train)
            except ValueError as error:  # too few events at the smallest sizes
                print(f"{outcome} n={n} {name}: {error}")
                continue
            seconds = time.perf_counter() - start
            p = model.predict_proba(scored)[:, 1]
            rows.append(
                {
                    "outcome": outcome,
                    "n": n,
                    "repeat": repeat,
                    "config": name,
                    "auc": roc_auc_score(y, p),
                    "log_loss": log_loss(y, p),
                    "ece": expected_calibration_error(y, p),
                    "fit_s": seconds,
                    "oracle_auc": roc_auc_score(y, scored[f"p_{outcome}"]),
                }
            )
    results = pd.DataFrame(rows)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    results.to_csv(out / "model_defaults.csv", index=False)
    summary = (
        results.groupby(["outcome", "n", "config"])[
            ["auc", "oracle_auc", "log_loss", "ece", "fit_s"]
        ]
        .mean()
        .round(4)
    )
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(summary.to_string())


if __name__ == "__main__":
    from _options import options

    options(__doc__).parse_args()
    main()

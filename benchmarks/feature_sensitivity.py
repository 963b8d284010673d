"""How much do the features' pharmacology constants matter?

    python benchmarks/feature_sensitivity.py

The dose-schedule features use published point values (``ketapredict.regimen``): each
route's bioavailability and esketamine's potency relative to racemic ketamine. The published
ranges are wider than the points (CALIBRATION.md, pharmacology): intranasal 45-50%,
sublingual 25-30%, oral 15-20%, and esketamine 1.6-2.0 times racemic ketamine (2.0 from "half
the dose gives the same effect"; 1.6 if S-ketamine is 4 times R-ketamine, since racemic
ketamine is half of each). Here the virtual cohort is simulated once with its own
pharmacology, then OutcomeModel is trained and scored with the features' constants set to
each end of those ranges. A large change would mean the models lean on constants nobody knows
that well.

Training: 3,000 courses (seeds 0-2); test: 20,000 independent courses (seed 10000). Prints,
per outcome and scenario, the AUC within arm among active-drug patients, their ECE (equal-count
bins) and calibration slope (mean over the 3 seeds), and the change from the published
constants. Under a minute on 2 cores.
"""

import contextlib
import time

import pandas as pd

from ketapredict import OutcomeModel, regimen, simulate_cohort
from ketapredict.evaluate import active_drug, arm_labels, score_predictions

OUTCOMES = ("response", "cognitive_decline")
SEEDS = (0, 1, 2)
N_TRAIN = 3000
LOW = {"intranasal": 0.45, "sublingual": 0.25, "oral": 0.15}
HIGH = {"intranasal": 0.50, "sublingual": 0.30, "oral": 0.20}
SCENARIOS = {
    "published point values": ({}, {}),
    "bioavailability, low end": (LOW, {}),
    "bioavailability, high end": (HIGH, {}),
    "esketamine potency 1.6": ({}, {"esketamine": 1.6}),
    "low end and potency 1.6": (LOW, {"esketamine": 1.6}),
}


@contextlib.contextmanager
def constants(bioavailability: dict, potency: dict):
    """The features' constants set for one scenario, restored afterwards."""
    saved = dict(regimen.BIOAVAILABILITY), dict(regimen.POTENCY)
    regimen.BIOAVAILABILITY.update(bioavailability)
    regimen.POTENCY.update(potency)
    try:
        yield
    finally:
        regimen.BIOAVAILABILITY.clear()
        regimen.BIOAVAILABILITY.update(saved[0])
        regimen.POTENCY.clear()
        regimen.POTENCY.update(saved[1])


def main() -> None:
    began = time.perf_counter()
    # simulated first, with the cohort's own pharmacology, before any constant changes
    test = simulate_cohort(n=20_000, seed=10_000)
    trains = {seed: simulate_cohort(n=N_TRAIN, seed=seed) for seed in SEEDS}
    rows = []
    for scenario, (bioavailability, potency) in SCENARIOS.items():
        with constants(bioavailability, potency):
            for outcome in OUTCOMES:
                held_out = test[test[outcome].notna()]
                y = held_out[outcome].astype(int).to_numpy()
                for seed, train in trains.items():
                    train = train[train[outcome].notna()]
                    model = OutcomeModel(outcome, random_state=seed).fit(train)
                    scores = score_predictions(
                        y,
                        model.predict_proba(held_out)[:, 1],
                        arm=arm_labels(held_out),
                        active=active_drug(held_out),
                        n_bootstraps=0,
                    )
                    rows.append(
                        {
                            "outcome": outcome,
                            "scenario": scenario,
                            "seed": seed,
                            "within_arm_auc": scores["within_arm_auc"],
                            "active_ece": scores["active_ece"],
                            "active_slope": scores["active_calibration_slope"],
                        }
                    )
    results = pd.DataFrame(rows)
    table = results.groupby(["outcome", "scenario"], sort=False)[
        ["within_arm_auc", "active_ece", "active_slope"]
    ].mean()
    table = table.sort_index(level="outcome", sort_remaining=False)
    reference = table.xs("published point values", level="scenario")
    change = table - reference.reindex(table.index, level="outcome").to_numpy()
    shown = table.join(change.add_prefix("change in "))
    with pd.option_context("display.width", 200, "display.float_format", "{:+.4f}".format):
        print(shown.to_string())
    print(f"\n{len(results)} models in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    from _options import options

    options(__doc__).parse_args()
    main()

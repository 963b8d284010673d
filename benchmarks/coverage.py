"""Do the clinician's 90% intervals hold? Coverage of the true risk on 3 cohorts.

    python benchmarks/coverage.py              # 3 training cohorts of 8,000 courses
    python benchmarks/coverage.py --quick      # 1 cohort (a smoke run)
    python benchmarks/coverage.py --stability  # how much the calibration cohort matters

For each of 3 independently simulated training cohorts (seeds 0, 1, 2; 8,000 courses, as the
demo model), ``fit_risk_model`` fits every outcome with 20 bootstrap replicates and, as the
demo experiment does, calibrates the interval multiplier on a second fresh cohort of 8,000
(seed 500 + cohort; new patients from new trials, 8 of each design:
``ketapredict.experiment.INTERVAL_TRIALS_PER_DESIGN``) against the simulator's true
probabilities (see ``RiskModel.calibrate_intervals``). Each model is then judged on a
third: 20,000 new courses from 10 new trials of each design (seed 1000 + cohort), so that a
cohort's coverage is an average over 140 trials rather than the luck of 14: the share whose
true probability ``p_<outcome>`` (given their trial) lies inside the 90% interval, and the
interval's mean width, by outcome and by active drug against comparator. The bootstrap-only
interval (Student t on the replicates' SD) is shown beside it, and the share of true
probabilities below the point estimate's floor of 1e-4 (which only an interval can reach).

Writes ``benchmarks/results/coverage.csv``.
"""

import time
from pathlib import Path

import numpy as np
import pandas as pd

from ketapredict import RiskModel, fit_risk_model, simulate_cohort
from ketapredict.evaluate import active_drug
from ketapredict.experiment import INTERVAL_TRIALS_PER_DESIGN
from ketapredict.schema import OUTCOMES

RESULTS = Path(__file__).parent / "results"
# Trials of each design in a test cohort (20,000 courses: about 140 courses a trial).
TEST_TRIALS = 10


def coverage(model: RiskModel, test: pd.DataFrame, cohort: int, method: str) -> list[dict]:
    intervals = model.predict_interval(test)
    active = active_drug(test)
    rows = []
    for outcome, block in intervals.groupby("outcome", sort=False):
        truth = test[f"p_{outcome}"].to_numpy(dtype=float, na_value=np.nan)
        known = ~np.isnan(truth)
        low, high = block["low"].to_numpy(), block["high"].to_numpy()
        inside = (low <= truth) & (truth <= high)
        for name, group in (("active drug", active), ("comparator", ~active)):
            chosen = known & group
            rows.append(
                {
                    "cohort": cohort,
                    "method": method,
                    "outcome": outcome,
                    "arm": name,
                    "n": int(chosen.sum()),
                    "coverage": inside[chosen].mean(),
                    "mean_width": (high - low)[chosen].mean(),
                    "median_width": np.median((high - low)[chosen]),
                    "truth_below_1e-4": (truth[chosen] < 1e-4).mean(),
                }
            )
    return rows


def main(quick: bool = False) -> None:
    cohorts, n_train = ((0,), 8000) if quick else ((0, 1, 2), 8000)
    rows = []
    began = time.perf_counter()
    for cohort in cohorts:
        data = simulate_cohort(n=n_train, seed=cohort)
        fresh = simulate_cohort(
            n=n_train, seed=500 + cohort, trials_per_design=INTERVAL_TRIALS_PER_DESIGN
        )
        calibrated = fit_risk_model(data, OUTCOMES, interval_data=fresh, random_state=cohort)
        test = simulate_cohort(n=20_000, seed=1000 + cohort, trials_per_design=TEST_TRIALS)
        rows += coverage(calibrated, test, cohort, "calibrated")
        # the same replicates without the calibrated multiplier: the bootstrap alone
        for state in calibrated._outcomes.values():
            state.scale = None
        rows += coverage(calibrated, test, cohort, "bootstrap only")
        print(f"cohort {cohort}: {time.perf_counter() - began:.0f} s", flush=True)
        print(calibrated.provenance["intervals"], flush=True)
    table = pd.DataFrame(rows)
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "coverage.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        shown = table.set_index(["method", "outcome", "arm", "cohort"])[
            ["n", "coverage", "mean_width", "median_width", "truth_below_1e-4"]
        ].round(3)
        print(shown.sort_index(level=[0, 1, 2], sort_remaining=False).to_string())
        summary = table.groupby(["method", "outcome", "arm"], sort=False).agg(
            coverage_min=("coverage", "min"),
            coverage_mean=("coverage", "mean"),
            mean_width=("mean_width", "mean"),
        )
        print("\nover the cohorts:\n" + summary.round(3).to_string())
    target = table[(table["method"] == "calibrated") & (table["arm"] == "active drug")]
    short = target[target["coverage"] < 0.85]
    print(
        "\nactive-drug coverage >= 85% for every outcome and cohort: "
        + ("yes" if short.empty else f"NO ({len(short)} of {len(target)} short)")
    )


def stability(draws: int = 6) -> None:
    """One model (training cohort 0), its multipliers calibrated on ``draws`` fresh cohorts
    of 8,000 with one trial of each design and with INTERVAL_TRIALS_PER_DESIGN: the range of
    coverage over the calibration cohorts, by outcome and arm (judged as in main)."""
    began = time.perf_counter()
    model = fit_risk_model(simulate_cohort(n=8000, seed=0), OUTCOMES, random_state=0)
    test = simulate_cohort(n=20_000, seed=1000, trials_per_design=TEST_TRIALS)
    rows = []
    for trials in (1, INTERVAL_TRIALS_PER_DESIGN):
        for draw in range(draws):
            fresh = simulate_cohort(n=8000, seed=500 + draw, trials_per_design=trials)
            model.calibrate_intervals(fresh, random_state=0)
            rows += [
                {**row, "trials_per_design": trials}
                for row in coverage(model, test, draw, "calibrated")
            ]
        print(f"{trials} trial(s) a design: {time.perf_counter() - began:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby(["trials_per_design", "outcome", "arm"], sort=False)["coverage"]
    shown = summary.agg(["min", "max"]).round(3)
    print(f"\ncoverage over {draws} calibration cohorts:\n" + shown.to_string())


if __name__ == "__main__":
    from _options import options

    parser = options(__doc__)
    parser.add_argument("--quick", action="store_true", help="1 cohort (a smoke run)")
    parser.add_argument("--stability", action="store_true", help="the calibration cohort's effect")
    arguments = parser.parse_args()
    if arguments.stability:
        stability()
    else:
        main(quick=arguments.quick)

"""How fast is the clinician path?

    python benchmarks/latency.py

Measures, with the demo model shipped in the package:

- cold start: a new Python process imports ketapredict, loads the demo model and scores
  its first patient (best and median of 5 processes);
- one patient's report: p50 and p99 over 1,000 calls, without and with drivers;
- the README's patient at day 28, complete and with ten fields missing: one report and the
  standard 21-schedule comparison (medians);
- a batch of 100,000 patients: probabilities of the four outcomes (with and without
  validating the table first), and probabilities with 90% intervals;
- the batch path against walking every tree on every draw of the missing fields (the same
  margins), on 20,000 patients;
- the Monte Carlo error of integrating missing fields out (the model's draws against 256);
- the interval's coverage of the true probability on 20,000 new virtual patients (only a
  simulation knows it), and how many true probabilities lie below the 1e-4 floor of the
  point estimate (an interval may reach below it).

Targets (2 cores): cold start < 1.5 s; p50 < 2 ms without drivers and < 5 ms with;
100,000 patients < 5 s.
"""

import statistics
import subprocess
import sys
import time

import numpy as np

from ketapredict import Regimen, load_model, simulate_cohort, validate
from ketapredict.evaluate import active_drug
from ketapredict.imputation import BaselineImputer
from ketapredict.schema import columns, example_course

COLD = """
import time
began = time.perf_counter()
import ketapredict as kp
model = kp.load_model()
course = kp.Regimen(drug="ketamine", route="iv", dose=0.5, infusion_minutes=40,
                    sessions_per_week=2, n_sessions=8)
report = model.score({"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34},
                     course)
print(time.perf_counter() - began)
"""


def cold_start(runs: int = 5) -> list[float]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", COLD], check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return times


def per_call(function, calls: int = 1000) -> np.ndarray:
    function()
    times = np.empty(calls)
    for i in range(calls):
        began = time.perf_counter()
        function()
        times[i] = time.perf_counter() - began
    return times * 1e3


def every_tree_on_every_draw(model, table) -> None:
    """Probabilities the plain way: every tree of every outcome on every draw."""
    filled, owner = model._expand(table)
    encoded = model._encoded(filled)
    for outcome, state in model._outcomes.items():
        log_odds = model._log_odds(state, encoded[outcome], members=False)[:, 0]
        if owner is not None:
            BaselineImputer.average(1.0 / (1.0 + np.exp(-log_odds)), owner, len(table))


def main() -> None:
    cold = cold_start()
    print(
        f"cold start (process start, import, load demo model, first report): "
        f"best {min(cold):.2f} s, median {statistics.median(cold):.2f} s"
    )

    model = load_model()
    patient = {k: v for k, v in example_course().items() if k in columns("baseline")}
    course = Regimen(
        drug="ketamine",
        route="iv",
        dose=0.5,
        infusion_minutes=40,
        sessions_per_week=2,
        n_sessions=8,
    )
    for drivers in (False, True):
        ms = per_call(lambda d=drivers: model.score(patient, course, drivers=d))
        print(
            f"one report, drivers={drivers}: p50 {np.percentile(ms, 50):.2f} ms, "
            f"p99 {np.percentile(ms, 99):.2f} ms"
        )

    # the README's patient and schedule at day 28, drivers on: a complete record and one
    # with ten fields missing (scored on the imputer's draws), a report and the standard
    # 21-schedule comparison (median of 15 reports and of 5 comparisons, after a first call)
    sparse = {
        "age": 46,
        "sex": "female",
        "diagnosis": "TRD",
        "madrs_baseline": 34,
        "n_failed_treatments": 3,
        "processing_speed_z": -0.9,
    }
    for label, record in (("complete record", patient), ("ten fields missing", sparse)):
        report = np.median(per_call(lambda r=record: model.score(r, course, horizon_day=28), 15))
        compare = np.median(
            per_call(lambda r=record: model.compare_regimens(r, horizon_day=28), 5)
        )
        print(
            f"the README's patient at day 28, {label}: one report {report:.1f} ms, "
            f"a 21-schedule comparison {compare / 1e3:.3f} s (medians)"
        )

    batch = simulate_cohort(n=100_000, seed=1)
    clean = validate(batch)
    # the machine is shared: best and median of 3 runs each
    for label, run in (
        ("validated and scored", lambda: model.predict_proba(batch)),
        ("already validated, scored", lambda: model.predict_proba(clean, validated=True)),
    ):
        seconds = []
        for _ in range(3):
            began = time.perf_counter()
            probabilities = run()
            seconds.append(time.perf_counter() - began)
        assert probabilities.notna().all().all()
        print(
            f"100,000 patients, {label} (4 outcomes): best {min(seconds):.2f} s, "
            f"median {statistics.median(seconds):.2f} s"
        )
    # the batch path (RiskModel's _Batch) against walking every tree on every draw, which
    # gives the same margins: best of 3 each, alternating, on 20,000 patients
    part = clean.head(20_000)
    best = {"every tree on every draw": [], "batch path": []}
    for _ in range(3):
        for name, run in (
            ("every tree on every draw", lambda: every_tree_on_every_draw(model, part)),
            ("batch path", lambda: model.predict_proba(part, validated=True)),
        ):
            began = time.perf_counter()
            run()
            best[name].append(time.perf_counter() - began)
    every, batch_path = min(best["every tree on every draw"]), min(best["batch path"])
    print(
        f"20,000 validated patients (4 outcomes): every tree on every draw {every:.2f} s, "
        f"the batch path {batch_path:.2f} s ({every / batch_path:.1f} times faster)"
    )
    sample = clean.head(10_000)
    seconds = []
    for _ in range(3):
        began = time.perf_counter()
        model.predict_interval(sample, validated=True)
        seconds.append(time.perf_counter() - began)
    print(
        f"10,000 validated patients, probabilities with 90% intervals: best {min(seconds):.2f} s, "
        f"median {statistics.median(seconds):.2f} s (100,000: about {10 * min(seconds):.0f} s)"
    )

    # the Monte Carlo error of integrating missing fields out: the model's draws against 256
    imputer = next(iter(model._outcomes.values())).imputer
    few = simulate_cohort(n=2000, seed=5)
    usual = model.predict_proba(few).to_numpy()
    shipped, imputer.n_draws = imputer.n_draws, 256
    many = model.predict_proba(few).to_numpy()
    imputer.n_draws = shipped
    change = 100 * (usual - many)
    print(
        f"\nmissing fields integrated over {shipped} draws against 256 (2,000 courses), "
        "SD / largest change in points: "
        + ", ".join(
            f"{outcome} {change[:, j].std():.2f} / {np.abs(change[:, j]).max():.2f}"
            for j, outcome in enumerate(model.outcomes)
        )
    )

    test = simulate_cohort(n=20_000, seed=77)
    intervals = model.predict_interval(test)
    active = active_drug(test)
    print(
        "\ncoverage of the true probability by the 90% interval (20,000 new courses; only "
        "courses with a true probability count):"
    )
    for outcome, rows in intervals.groupby("outcome", sort=False):
        truth = test[f"p_{outcome}"].to_numpy(dtype=float, na_value=np.nan)
        known = ~np.isnan(truth)
        inside = (rows["low"].to_numpy() <= truth) & (truth <= rows["high"].to_numpy())
        width = (rows["high"] - rows["low"]).to_numpy()
        parts = []
        for name, group in (("active drug", active), ("comparator", ~active)):
            chosen = known & group
            tiny = chosen & (truth < 1e-4)
            floor = (
                f"; truth below the 1e-4 floor {tiny.sum() / chosen.sum():.1%}, "
                f"{inside[tiny].mean():.0%} of them covered"
                if tiny.any()
                else ""
            )
            parts.append(
                f"{name} {inside[chosen].mean():.1%} (width {width[chosen].mean():.3f}, "
                f"n {chosen.sum():,}{floor})"
            )
        print(f"  {outcome:<18} " + "; ".join(parts))


if __name__ == "__main__":
    from _options import options

    options(__doc__).parse_args()
    main()

"""How long the simulator takes for 100,000 patients.

Run: ``python benchmarks/simulate_speed.py`` (target: under 5 s on 2 cores).
Prints the best and median of several repeats for the pooled cohort and for one arm, and
the memory 100,000 simulated courses hold.
"""

import statistics
import time

from ketapredict import Population, Regimen, simulate_arm, simulate_cohort, simulate_crossover


def timed(function, repeats: int = 5) -> tuple[float, float]:
    seconds = []
    for seed in range(repeats):
        start = time.perf_counter()
        function(seed)
        seconds.append(time.perf_counter() - start)
    return min(seconds), statistics.median(seconds)


def main() -> None:
    simulate_cohort(n=1000)  # warm-up: imports, trial designs
    course = Regimen(
        drug="ketamine",
        route="iv",
        dose=0.5,
        dose_unit="mg/kg",
        infusion_minutes=40,
        sessions_per_week=2,
        n_sessions=8,
    )
    saline = Regimen(drug="saline", route="iv", dose=0, dose_unit="mg/kg", infusion_minutes=40)
    cases = {
        "simulate_cohort(n=100_000)": lambda seed: simulate_cohort(n=100_000, seed=seed),
        "simulate_arm(n=100_000), 8 sessions, 4 visits": lambda seed: simulate_arm(
            Population(), course, n=100_000, seed=seed
        ),
        "simulate_crossover(n=50_000), 2 periods": lambda seed: simulate_crossover(
            Population(), [course, saline], n=50_000, seed=seed
        ),
    }
    print(f"{'case':48s} {'best s':>8s} {'median s':>9s}")
    for name, function in cases.items():
        best, median = timed(function)
        print(f"{name:48s} {best:8.2f} {median:9.2f}")
    # memory: what a million courses (ketapredict.cohort.simulate.MAX_COURSES) would hold
    size = simulate_cohort(n=100_000, seed=0).memory_usage(deep=True).sum()
    print(
        f"100,000 courses hold {size / 1e6:.0f} MB ({size / 100_000:.0f} bytes a course; "
        f"a million: about {size * 10 / 1e9:.1f} GB)"
    )


if __name__ == "__main__":
    from _options import options

    options(__doc__).parse_args()
    main()

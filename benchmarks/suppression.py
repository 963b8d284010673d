"""Complementary suppression on small studies: what is withheld, how long it takes, and
whether any group of 1 to 10 courses can still be worked out from what is shown.

Run: ``python benchmarks/suppression.py`` (about a minute on 2 cores).

Draws 300 small studies from the virtual cohort (2 to 5 trials, each arm cut to 3 to 29
courses), builds the rows the subgroup table and the folds of leave-one-trial-out would
show (``evaluate.subgroup_variables`` and the folds, as ``cross_validate`` judges them), and
runs ``evaluate.withheld_subgroups`` twice: as shipped, and with the exact search of longer
chains switched off (the one-step checks alone, as before it was added). The tests'
attacker (``tests/test_schema.py``, ``smallest_derivable``), built otherwise than the code,
then looks for a group of 1 to 10 courses in the span of the rows shown and the total: a
0/1 choice of the groups of courses sharing their shown rows that the span's left null
space annihilates (an integer program, SciPy's HiGHS), each hit checked by an exact
least-squares fit. Prints, for each way: the share of rows withheld, the seconds in
``withheld_subgroups``, and the studies that still give a small group away; then the
rows withheld and the time for the pooled virtual cohort of 2,000 and 30,000 courses.
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _options import options

from ketapredict import schema, simulate_cohort
from ketapredict.evaluate import subgroup_variables, withheld_subgroups

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_schema import smallest_derivable


def small_study(base: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    trials = rng.choice(base["trial_id"].unique(), size=rng.integers(2, 6), replace=False)
    return pd.concat(
        arm.sample(min(len(arm), int(rng.integers(3, 30))), random_state=int(rng.integers(2**30)))
        for trial in trials
        for _, arm in base[base["trial_id"] == trial].groupby("arm")
    ).reset_index(drop=True)


def main(studies: int = 300) -> None:
    base = simulate_cohort(n=3000, seed=0)
    rng = np.random.default_rng(0)
    exact = schema._derivable
    ways = {"shipped (exact search)": exact, "one-step checks only": lambda *args: None}
    totals = {way: [0, 0.0, 0] for way in ways}  # rows withheld, seconds, studies leaking
    rows = 0
    try:
        for _ in range(studies):
            study = small_study(base, rng)
            variables = {
                name: pd.Series(np.asarray(values, dtype=object))
                for name, values in {
                    **subgroup_variables(study),
                    "fold": pd.factorize(study["trial_id"])[0],
                }.items()
            }
            rows += sum(values.dropna().nunique() for values in variables.values())
            for way, search in ways.items():
                schema._derivable = search
                began = time.perf_counter()
                withheld = withheld_subgroups(variables)
                totals[way][1] += time.perf_counter() - began
                totals[way][0] += len(withheld)
                totals[way][2] += smallest_derivable(variables, withheld) is not None
    finally:
        schema._derivable = exact
    print(f"{studies} small studies, {rows:,} rows in all")
    for way, (withheld, seconds, leaking) in totals.items():
        print(
            f"  {way:<24} withheld {withheld / rows:6.1%} of rows, {seconds:5.1f} s, "
            f"{leaking} studies give a group of 1-10 courses away"
        )
    for n in (2000, 30_000):  # the pooled cohort: large groups, nothing to withhold
        cohort = simulate_cohort(n=n, seed=0)
        variables = {**subgroup_variables(cohort), "fold": pd.factorize(cohort["trial_id"])[0]}
        began = time.perf_counter()
        withheld = withheld_subgroups(variables)
        print(
            f"virtual cohort of {n:,} courses: {len(withheld)} rows withheld, "
            f"{time.perf_counter() - began:.2f} s"
        )


if __name__ == "__main__":
    options(__doc__).parse_args()
    main()

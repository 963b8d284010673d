"""What the virtual cohort looks like from outside: spreads, comparators, predictability, and
what its missing values reveal.

    python benchmarks/cohort_properties.py

Prints, from simulations only (20,000 patients per arm, a typical trial):

- SD of MADRS change in active and comparator arms (single infusion at 24-48 h; Singh
  2016's designs at day 15; TRANSFORM-2 at day 28), comparator response and remission at
  24 h, the share of active-arm patients worse than baseline at day 2, the standardised
  effect of one infusion over saline at 24 h, and the drug's advantage over placebo + a new
  oral antidepressant at day 28;
- the oracle AUC of response within each active arm of a 100,000-course pooled cohort;
- how well a classifier predicts the trial from the missingness indicators alone, from the
  design columns alone, and from both (3-fold cross-validated accuracy on 20,000 courses;
  chance is the largest trial's share).

Takes about a minute on 2 cores.
"""

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score

from ketapredict import (
    Population,
    Regimen,
    columns,
    published_trials,
    simulate_cohort,
    simulate_trial,
)

IV = {"route": "iv", "dose_unit": "mg/kg", "infusion_minutes": 40}


def _change(frame, day):
    return frame[f"madrs_d{day}"] - frame["madrs_baseline"]


def spreads() -> None:
    single = simulate_trial(
        Population(madrs_mean=32, madrs_sd=6, madrs_min=20),
        {
            "ketamine": Regimen(drug="ketamine", dose=0.5, **IV),
            "saline": Regimen(drug="saline", dose=0, **IV),
            "midazolam": Regimen(drug="midazolam", dose=0.045, **IV),
        },
        n_per_arm=20_000,
        seed=101,
        visit_days=(1, 2),
    )
    arms = {str(k): v for k, v in single.groupby("arm", observed=True)}
    print("Single IV infusion (a typical trial, baseline MADRS 32):")
    for arm, rows in arms.items():
        response = (rows["madrs_d1"] <= rows["madrs_baseline"] / 2).mean()
        remission = (rows["madrs_d1"] <= 10).mean()
        print(
            f"  {arm:10s} SD of change day 1 {_change(rows, 1).std():5.1f}, day 2 "
            f"{_change(rows, 2).std():5.1f}; response {response:.1%}, remission "
            f"{remission:.1%} at 24 h; worse than baseline at day 2 "
            f"{(_change(rows, 2) > 0).mean():.1%}"
        )
    ketamine, saline = arms["ketamine"]["madrs_d1"], arms["saline"]["madrs_d1"]
    smd = (saline.mean() - ketamine.mean()) / np.sqrt((ketamine.var() + saline.var()) / 2)
    print(f"  SMD of severity, ketamine over saline at 24 h: {smd:.2f}")

    for name, day in (("singh2016_ajp", 15), ("popova2019", 28)):
        design = published_trials()[name]
        trial = simulate_trial(design.population, design.arms, 20_000, seed=102, visit_days=(day,))
        print(f"{name} at day {day}: SD of MADRS change by arm")
        for arm, rows in trial.groupby("arm", observed=True):
            change = _change(rows, day)
            print(f"  {arm:22s} {change.std():5.1f}  (mean {change.mean():6.1f})")
        if name == "popova2019":
            change = _change(trial, day)
            active = trial["drug"] == "esketamine"
            print(
                f"  advantage of esketamine over placebo + new antidepressant: "
                f"{change[~active].mean() - change[active].mean():.1f} MADRS points"
            )


def oracle_auc(cohort: pd.DataFrame) -> None:
    active = cohort[cohort["drug"].isin(["ketamine", "esketamine"])]
    rows = []
    for (trial, arm), group in active.groupby(["trial_id", "arm"], observed=True):
        rows.append(
            (
                f"{trial}/{arm}",
                roc_auc_score(group["response"].astype(bool), group["p_response"]),
                len(group),
            )
        )
    table = pd.DataFrame(rows, columns=["arm", "auc", "courses"])
    print("\nOracle AUC of response within each active arm (100,000-course cohort, seed 0):")
    print(table.round(3).to_string(index=False))
    print(
        f"  n-weighted mean {np.average(table['auc'], weights=table['courses']):.3f}; "
        f"range {table['auc'].min():.3f}-{table['auc'].max():.3f}"
    )


def missingness(cohort: pd.DataFrame) -> None:
    sample = cohort.sample(20_000, random_state=0)
    missing = sample[columns("baseline")].isna().astype(float)
    design = pd.DataFrame(
        {
            "drug": sample["drug"].cat.codes,
            "route": sample["route"].cat.codes,
            "dose": sample["dose"],
            "unit": sample["dose_unit"].cat.codes,
            "infusion": sample["infusion_minutes"].fillna(0),
            "per_week": sample["sessions_per_week"],
            "sessions": sample["n_sessions"].astype(float),
            "new_ad": sample["new_oral_antidepressant"].astype(float),
            "endpoint": sample["endpoint_day"],
        }
    )
    y = sample["trial_id"].astype(str)

    def accuracy(x):
        model = HistGradientBoostingClassifier(max_iter=50, random_state=0)
        return cross_val_score(model, x, y, cv=3).mean()

    print("\nPredicting the trial (3-fold accuracy, 20,000 courses):")
    print(f"  chance (largest trial)         {y.value_counts(normalize=True).max():.3f}")
    print(f"  missingness indicators alone   {accuracy(missing):.3f}")
    print(f"  design columns alone           {accuracy(design):.3f}")
    print(f"  design columns + missingness   {accuracy(pd.concat([design, missing], axis=1)):.3f}")
    rates = sample[columns("baseline")].isna().mean()
    print(
        "  missing share by field: "
        + ", ".join(f"{k} {v:.1%}" for k, v in rates[rates > 0].items())
    )


def main() -> None:
    spreads()
    cohort = simulate_cohort(n=100_000, seed=0)
    oracle_auc(cohort)
    missingness(cohort)


if __name__ == "__main__":
    from _options import options

    options(__doc__).parse_args()
    main()

"""Does recalibration bring a new population into calibration, and from how few patients?

    python benchmarks/recalibration.py

A RiskModel of response is fitted on the virtual cohort (3,000 courses). Three "new
populations" unlike it (a population and a trial with its own random effects) each give a
recalibration sample of a given size (single ketamine or saline infusions, 24 h endpoint)
and 10,000 held-out courses. For each, the held-out observed response rate, the mean
predicted risk before and after :meth:`RiskModel.recalibrate` (closed test), the update the
closed test chose, and the held-out AUC (unchanged by an update that keeps the ranking).

Target (issue "real trial data"): the mean predicted risk after recalibration within 0.02 of
the observed rate on held-out patients of the new population.
"""

import time

from ketapredict import (
    Population,
    Regimen,
    TrialEffect,
    fit_risk_model,
    simulate_cohort,
    simulate_trial,
)
from ketapredict.external import _auc

IV = {"route": "iv", "infusion_minutes": 40}
ARMS = {
    "ketamine": Regimen(drug="ketamine", dose=0.5, **IV),
    "saline": Regimen(drug="saline", dose=0, **IV),
}
POPULATIONS = {
    "milder MDD, less improvement": (
        Population(diagnosis="MDD", madrs_mean=28),
        TrialEffect(nonspecific=-1.5, drug=-1.0),
    ),
    "TRD, much less improvement": (Population(), TrialEffect(nonspecific=-2, drug=-2)),
    "bipolar, more improvement": (
        Population(diagnosis="bipolar"),
        TrialEffect(nonspecific=1.0, drug=1.0),
    ),
}
SIZES = (50, 200, 1000, 5000)  # recalibration courses (half per arm)


def main() -> None:
    began = time.perf_counter()
    model = fit_risk_model(simulate_cohort(n=3000, seed=0), outcomes=["response"], replicates=0)
    print(
        f"{'population':<30}{'n recal':>8}{'observed':>10}{'before':>8}{'after':>7}"
        f"  {'update':<16}pooled AUC"
    )
    for i, (name, (population, effect)) in enumerate(POPULATIONS.items()):
        held = simulate_trial(
            population, ARMS, 5000, seed=100 + i, visit_days=(1,), trial_effect=effect
        )
        observed = held["response"].mean()
        before = model.predict_proba(held)["response"]
        auc = _auc(held["response"].to_numpy(int), before.to_numpy())
        for size in SIZES:
            local = simulate_trial(
                population,
                ARMS,
                size // 2,
                seed=200 + 10 * i + size,
                visit_days=(1,),
                trial_effect=effect,
            )
            updated = model.recalibrate(local)
            after = updated.predict_proba(held)["response"]
            chosen = updated.provenance["recalibration"]["outcomes"]["response"]["method"]
            print(
                f"{name:<30}{size:>8}{observed:>10.3f}{before.mean():>8.3f}{after.mean():>7.3f}"
                f"  {chosen:<16}{_auc(held['response'].to_numpy(int), after.to_numpy()):.3f}"
                f" (before {auc:.3f})"
            )
    print(f"\n{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    from _options import options

    options(__doc__).parse_args()
    main()

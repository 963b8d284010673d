"""Fit the virtual cohort's parameters to the fit targets of CALIBRATION.md.

    python scripts/fit_cohort.py            # fit and print, change nothing
    python scripts/fit_cohort.py --write    # fit and write the values into parameters.toml
    python scripts/fit_cohort.py --profile drug_sd=1.0,1.4,1.8
                                            # refit the others with drug_sd held at each value

Simulated method of moments with exact expectations on fixed virtual patients (seed 0,
2,000 per arm): see ketapredict/cohort/fit.py. Only targets with role = "fit" are used; the
validation targets are judged afterwards by `ketapredict calibrate`. Reproducible: the same
parameter file and seed give the same fit.
"""

import argparse
import sys
import time
from pathlib import Path

from ketapredict.cohort.fit import fit, fit_targets, summary
from ketapredict.cohort.parameters import load_parameters, write_fitted

ROOT = Path(__file__).resolve().parents[1]
PARAMETERS = ROOT / "src" / "ketapredict" / "cohort" / "parameters.toml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the fitted values")
    parser.add_argument("--n", type=int, default=2000, help="virtual patients per arm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-evaluations", type=int, default=1500)
    parser.add_argument(
        "--margin",
        type=float,
        default=0.0,
        help="penalise residuals beyond this many SE steeply (default 0: plain least "
        "squares; see ketapredict.cohort.fit.fit)",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME=V1,V2,...",
        help="profile the objective along one fitted parameter (writes nothing)",
    )
    args = parser.parse_args()
    if args.profile:
        return profile(args)

    began = time.perf_counter()
    params = load_parameters()
    targets = {t.id: t for t in fit_targets()}
    print(
        f"Fitting {len(params.fitted())} parameters to {len(targets)} fit targets "
        f"({args.n:,} virtual patients per arm, seed {args.seed})."
    )
    result = fit(
        params,
        n=args.n,
        seed=args.seed,
        max_evaluations=args.max_evaluations,
        margin=args.margin or None,
        progress=lambda line: print("  " + line, flush=True),
    )
    print(
        f"\n{result.message} after {result.evaluations} evaluations, "
        f"{time.perf_counter() - began:.0f} s; objective {result.objective:.2f}.\n"
    )
    print(f"{'parameter':28s} {'start':>9s} {'fitted':>9s}  bounds")
    for name, value in result.values.items():
        low, high = params.fitted()[name]
        flag = "  at a bound" if name in result.at_bounds else ""
        print(f"{name:28s} {result.start[name]:9.4g} {value:9.4g}  [{low:g}, {high:g}]{flag}")
    print(f"\n{'fit target':28s} {'published':>10s} {'residual (SE)':>14s}")
    for target_id, residual in result.residuals.items():
        published = targets[target_id].published if target_id in targets else float("nan")
        print(f"{target_id:28s} {published:10.3f} {residual:14.2f}")
    if args.write:
        write_fitted(
            result.values,
            summary(result, n=args.n, seed=args.seed, margin=args.margin or None),
            PARAMETERS,
        )
        print(f"\nWrote the fitted values to {PARAMETERS}.")
    return 0


def profile(args) -> int:
    """Refit every other parameter with one held at each value; print the objective."""
    name, _, values = args.profile.partition("=")
    params = load_parameters()
    if name not in params.fitted():
        print(f"--profile: {name!r} is not a fitted parameter; fitted: {list(params.fitted())}")
        return 2
    rows = []
    for value in (float(v) for v in values.split(",")):
        began = time.perf_counter()
        result = fit(
            params,
            n=args.n,
            seed=args.seed,
            max_evaluations=args.max_evaluations,
            fixed={name: value},
        )
        rows.append((value, result))
        print(
            f"{name} = {value:g}: objective {result.objective:.2f} "
            f"({result.evaluations} evaluations, {time.perf_counter() - began:.0f} s)",
            flush=True,
        )
    others = sorted({k for _, r in rows for k in r.values}, key=list(params.fitted()).index)
    print(f"\n{name:>10s} {'objective':>9s}  " + " ".join(f"{k[:12]:>12s}" for k in others))
    for value, r in rows:
        print(
            f"{value:10.3g} {r.objective:9.2f}  "
            + " ".join(f"{r.values.get(k, float('nan')):12.4g}" for k in others)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

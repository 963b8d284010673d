"""Write the shipped example studies (virtual patients) in BIDS and ADaM layouts.

    python scripts/make_example_studies.py

Rewrites src/ketapredict/data/examples/{bids/dataset,adam/*.xpt,adam/*.json}; the mapping
files beside them (and bids/example_bids.toml, an experiment on the BIDS study) are written
by hand and kept.
"""

import shutil

from ketapredict.io.examples import crossover_study, example_study, write_adam, write_bids


def main() -> None:
    study = crossover_study()
    bids = example_study("bids") / "dataset"
    shutil.rmtree(bids, ignore_errors=True)
    write_bids(study, bids)
    write_adam(study, example_study("adam"))
    print(f"wrote {study['patient_id'].nunique()} patients to {bids} and {example_study('adam')}")


if __name__ == "__main__":
    main()

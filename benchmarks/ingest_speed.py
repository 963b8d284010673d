"""How long reading a study takes, by its size.

    python benchmarks/ingest_speed.py

Writes the example study's design (a crossover of ketamine and saline, two follow-ups a
period, two scales; :func:`ketapredict.io.examples.crossover_study`) at 2,500, 5,000 and
10,000 participants, as BIDS and as ADaM (SAS transport), and times ``read_study`` with the
shipped mappings (best of 3). Reading should grow linearly with the study's size.
"""

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ketapredict import read_study
from ketapredict.io.examples import crossover_study, example_study, write_adam, write_bids


def best_of(function, repeats: int = 3) -> tuple[float, float]:
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - began)
    return min(seconds), statistics.median(seconds)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for participants in (2500, 5000, 10_000):
            study = crossover_study(n_mdd=participants // 2, n_bipolar=participants // 2)
            for kind in ("bids", "adam"):
                where = root / f"{kind}-{participants}"
                shutil.copytree(example_study(kind), where)
                if kind == "bids":
                    shutil.rmtree(where / "dataset")
                    write_bids(study, where / "dataset")
                else:
                    write_adam(study, where, formats=("xpt",))
                mapping = where / "mapping.toml"
                best, median = best_of(lambda m=mapping: read_study(m))
                courses = len(read_study(mapping))
                print(
                    f"{kind:<4} {participants:>6,} participants ({courses:,} courses): "
                    f"best {best:.2f} s, median {median:.2f} s"
                )


if __name__ == "__main__":
    from _options import options

    options(__doc__).parse_args()
    main()

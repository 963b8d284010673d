"""Real trial data in: mapping files, and BIDS and CDISC ADaM readers.

:func:`read_bids` and :func:`read_adam` turn a study's own files into the data contract's
patient-course table, as a mapping file (:func:`load_mapping`) says; :func:`example_study`
gives the shipped example studies (virtual patients) in both layouts.
"""

from pathlib import Path

import pandas as pd

from ..exceptions import Problem, ValidationError
from .adam import read_adam, read_dataset
from .bids import read_bids
from .courses import IngestSummary
from .examples import example_study
from .mapping import StudyMapping, load_mapping
from .tables import read_patient_table

__all__ = [
    "IngestSummary",
    "StudyMapping",
    "example_study",
    "load_mapping",
    "read_adam",
    "read_bids",
    "read_dataset",
    "read_patient_table",
    "read_study",
]


def read_study(
    mapping: str | Path | StudyMapping,
    *,
    path: str | Path | None = None,
    adsl: str | Path | None = None,
    efficacy: str | Path | None = None,
) -> pd.DataFrame:
    """Read the study a mapping file describes, in whichever format it names.

    Parameters
    ----------
    mapping : str, path-like or StudyMapping
        The mapping file; its ``format`` chooses the reader.
    path : str or path-like, optional
        BIDS only: the dataset root (default: the mapping's ``path``).
    adsl, efficacy : str or path-like, optional
        ADaM only: the datasets (default: the mapping's ``adsl`` and ``efficacy``).

    Returns
    -------
    DataFrame
        As :func:`read_bids` or :func:`read_adam`.

    Examples
    --------
    >>> from ketapredict.io import example_study, read_study
    >>> len(read_study(example_study("adam") / "mapping.toml"))
    50
    """
    if not isinstance(mapping, StudyMapping):
        mapping = load_mapping(mapping)
    # a file given for the other format would be ignored: refused, as an experiment file's is
    other = {"adsl": adsl, "efficacy": efficacy} if mapping.format == "bids" else {"path": path}
    given = [name for name, value in other.items() if value is not None]
    if given:
        raise ValidationError(
            [
                Problem(
                    name,
                    str(other[name]),
                    f"{name}={str(other[name])!r}{' (--data)' if name == 'path' else ''} is "
                    f"for {'an ADaM' if mapping.format == 'bids' else 'a BIDS'} study; this "
                    f"mapping reads {'a BIDS' if mapping.format == 'bids' else 'an ADaM'} one",
                )
                for name in given
            ],
            "study",
        )
    if mapping.format == "bids":
        return read_bids(path, mapping)
    return read_adam(adsl, efficacy, mapping)

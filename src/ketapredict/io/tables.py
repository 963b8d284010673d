"""Patient tables from CSV or Parquet files: a study already in the data contract's columns
(training data, external validation, recalibration), read as untrusted input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .._files import not_a_file
from ..exceptions import Problem, ValidationError
from ..schema import column, columns, repeated_courses, validate

__all__ = ["read_patient_table"]


# The errors pandas raises for a file it cannot parse: its parser errors are ValueErrors,
# pyarrow's are ValueError (ArrowInvalid), TypeError (ArrowTypeError), NotImplementedError
# (a Parquet type it does not read) or OSError.
_READ_ERRORS = (ValueError, TypeError, NotImplementedError, OSError)


def read_patient_table(path: str | Path) -> pd.DataFrame:
    r"""A patient table from a CSV or Parquet file, checked against the data contract.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` (UTF-8, a header row) or ``.parquet`` file of patient courses.

    Returns
    -------
    DataFrame
        As :func:`ketapredict.validate` returns it.

    Raises
    ------
    ValidationError
        Naming the file, with one problem when the file is not a patient table at all (no
        such file, a directory, another suffix, not UTF-8, not CSV or Parquet, no rows,
        none of the contract's columns), or every cell and column that breaks the
        contract.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ketapredict.io import read_patient_table
    >>> path = Path(tempfile.mkdtemp()) / "study.csv"
    >>> _ = path.write_text("shoe_size,colour\n44,blue\n")
    >>> try:
    ...     read_patient_table(path)
    ... except ValueError as error:
    ...     message = str(error)
    >>> "study.csv has none of the data contract's columns (it has 'shoe_size'," in message
    True
    """
    path = Path(path)
    name = str(path)
    kind = {".csv": "CSV", ".parquet": "Parquet"}.get(path.suffix.lower())
    message = None
    if kind is None:
        message = (
            f"{name!r}: expected a patient table (.csv or .parquet); got suffix {path.suffix!r}"
        )
    elif (fault := not_a_file(path, f"a {kind} file")) is not None:
        message = f"{name!r}: no such file" if fault == "does not exist" else f"{name!r} {fault}"
    if message is None:
        try:
            table = pd.read_parquet(path) if kind == "Parquet" else pd.read_csv(path)
        except UnicodeDecodeError as error:
            message = f"{name} is not UTF-8 text ({error.reason} at byte {error.start})"
        except _READ_ERRORS as error:
            reason = " ".join(str(error).split())
            reason = reason if len(reason) <= 200 else reason[:197] + "..."
            fmt = path.suffix.lower()[1:]
            message = f"{name} cannot be read as {fmt}: {reason or type(error).__name__}"
        else:
            message = _not_a_table(table, name)
    if message is not None:
        raise ValidationError([Problem(None, name, message)], "patient table")
    # a bad cell is named where the user finds it: its row counted from 1, and a CSV's
    # line (the header is line 1; a quoted cell spanning lines would shift it)
    table.index = [
        f"{i + 1} (line {i + 2})" if kind == "CSV" else str(i + 1) for i in range(len(table))
    ]
    labels = table.index
    table = validate(table, what=f"patient table {name}", row_labels=True)
    repeated = repeated_courses(table, labels)
    if repeated:
        raise ValidationError(repeated, f"patient table {name}")
    return table.reset_index(drop=True)


def _not_a_table(table: pd.DataFrame, name: str) -> str | None:
    """Why a parsed file is no patient table at all (one reason, not a problem per column)."""

    def known(label: Any) -> bool:
        try:
            column(str(label))
        except KeyError:
            return False
        return True

    if not any(known(label) for label in table.columns):
        found = ", ".join(repr(str(label))[:40] for label in table.columns[:5])
        more = f" and {len(table.columns) - 5} more" if len(table.columns) > 5 else ""
        required = ", ".join(c for c in columns() if column(c).required)
        return (
            f"{name} has none of the data contract's columns (it has {found or 'none'}{more}); "
            f"expected a patient table with {required} and optional fields"
        )
    if table.empty:
        return f"{name} has no rows; expected one row per patient course"
    return None

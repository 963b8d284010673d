"""Exceptions raised by ketapredict.

Every exception subclasses a builtin, so callers that already catch ``ValueError`` keep
working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ModelFileError", "Problem", "ValidationError"]

# An error message lists at most this many problems; all of them stay on ``.problems``.
_MAX_LISTED = 40


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input.

    Parameters
    ----------
    column : str or None
        The column or field at fault, or None for a problem with the table as a whole.
    value : object
        The offending value (None when the problem is a missing value or column).
    message : str
        What is wrong and what is allowed, without the row prefix.
    row : object, optional
        The index label of the offending row in a table, or None for a single record.

    Examples
    --------
    >>> import ketapredict
    >>> try:
    ...     ketapredict.validate_patient({"age": 45, "sex": "female", "diagnosis": "TRD",
    ...                                   "madrs_baseline": 61})
    ... except ketapredict.ValidationError as error:
    ...     problem = error.problems[0]
    >>> problem.column, problem.value
    ('madrs_baseline', 61)
    """

    column: str | None
    value: Any
    message: str
    row: Any = None

    def __str__(self) -> str:
        return self.message if self.row is None else f"row {self.row}: {self.message}"


class ValidationError(ValueError):
    """Input that breaks the data contract, with every problem listed at once.

    Parameters
    ----------
    problems : list of Problem
        Everything found wrong; the message lists the first few dozen.
    what : str, default="input"
        What was checked, for the first line of the message ("patient table", "regimen").

    Attributes
    ----------
    problems : list of Problem
        All problems found, in the order they were found.

    Examples
    --------
    >>> import ketapredict
    >>> try:
    ...     ketapredict.Regimen(drug="ketamine", route="oral", dose=84, dose_unit="mg/kg")
    ... except ketapredict.ValidationError as error:
    ...     print(error)
    1 problem in the regimen:
      dose=84 mg/kg is above 5 mg/kg, the highest dose allowed for ketamine (...)
    """

    def __init__(self, problems: list[Problem], what: str = "input"):
        self.problems = list(problems)
        self.what = what
        super().__init__(self._render())

    def _render(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the {self.what}:"
        lines = [f"  {problem}" for problem in self.problems[:_MAX_LISTED]]
        if n > _MAX_LISTED:
            lines.append(f"  ... and {n - _MAX_LISTED} more (see the error's .problems)")
        return "\n".join([head, *lines])


class ModelFileError(ValueError):
    """A saved model that cannot be trusted: missing, tampered with, or of another format.

    The message names the file and what is wrong with it.

    Examples
    --------
    >>> import ketapredict
    >>> try:
    ...     ketapredict.RiskModel.load("no/such/model")
    ... except ketapredict.ModelFileError as error:
    ...     print(error)
    no ketapredict model at 'no/such/model': manifest.json is missing
    """

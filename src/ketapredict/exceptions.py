"""Exceptions raised by ketapredict.

Every exception subclasses a builtin, so callers that already catch ``ValueError`` keep
working.
"""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_VALUE_CHARS",
    "ModelFileError",
    "Problem",
    "ValidationError",
    "one_line",
    "short_repr",
]

# A ValidationError's message is read by a person: in a terminal, a notebook cell or one
# record of a log. 4,000 characters is about one screen (50 lines of 80), enough for every
# problem of a record and the first few dozen of a table, while a table with a bad column
# in 100,000 rows, or a pasted document as a value, cannot flood the screen or the log. Past
# the cap the message says how many problems it left out; ``error.problems`` keeps them all,
# with the values as they came, for programs.
MAX_MESSAGE_CHARS = 4000
# A value is shown by its repr cut to this many characters: enough to recognise a typo, a
# unit or a type (``np.float32(46.0)``, ``Decimal('46')``), never the whole of a long text.
MAX_VALUE_CHARS = 60
# At most this many problems are listed, however short: a list longer than a screenful is
# not read, and the count of the others says how big the damage is.
_MAX_LISTED = 40
# No one problem takes more than a tenth of the message.
_MAX_LINE_CHARS = MAX_MESSAGE_CHARS // 10
# Integers up to this many bits (about 1,200 digits) are written out, then cut; larger ones
# are described (Python refuses to write out integers of more than 4,300 digits at all).
_MAX_INT_BITS = 4000


class _Short(reprlib.Repr):
    """``reprlib`` bounded in every direction: nesting, items, text and digits."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 2
        self.maxtuple = self.maxlist = self.maxarray = self.maxdict = 4
        self.maxset = self.maxfrozenset = self.maxdeque = 4
        self.maxstring = self.maxother = self.maxlong = MAX_VALUE_CHARS

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > _MAX_INT_BITS:
            digits = int(x.bit_length() * 0.30103) + 1
            return f"<{'a negative' if x < 0 else 'an'} integer of about {digits} digits>"
        text = repr(x)
        if len(text) > MAX_VALUE_CHARS:
            return f"{text[: MAX_VALUE_CHARS - 20]}...({len(text.lstrip('-'))} digits)"
        return text

    def repr_bytes(self, x: bytes, level: int) -> str:
        return repr(x[: self.maxstring]) + ("..." if len(x) > self.maxstring else "")

    repr_bytearray = repr_bytes


_SHORT = _Short()


# Control characters (line breaks, carriage returns, terminal escapes), Unicode's line and
# paragraph separators (str.splitlines breaks at them) and its bidirectional overrides and
# isolates (which reorder how the rest of a line reads: CVE-2021-42574): in text from
# elsewhere printed into a report, they would let that text write lines of its own.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")


def one_line(text: Any) -> str:
    r"""Text from elsewhere (a model file's name or notes) as one printed line: each run of
    control characters becomes a space.

    Examples
    --------
    >>> one_line("Trained on simulated patients.\nresponse  99%")
    'Trained on simulated patients. response  99%'
    >>> one_line("name\u2028response  99%\u202e")
    'name response  99% '
    """
    return _CONTROL.sub(" ", str(text))


def short_repr(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """The repr of a value for an error message, at most ``limit`` characters.

    Safe for any value: long text, deep or long containers and huge integers are cut, and a
    value whose repr fails is described by its type.

    Parameters
    ----------
    value : object
        What to show.
    limit : int, default=MAX_VALUE_CHARS
        The most characters returned.

    Returns
    -------
    str

    Examples
    --------
    >>> short_repr("a" * 1000)
    "'aaaaaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaaaaaaaaaaaaaaaaaa'"
    >>> short_repr(10**400)
    '1000000000000000000000000000000000000000...(401 digits)'
    >>> short_repr([[[1]], 2, 3, 4, 5, 6])
    '[[[...]], 2, 3, 4, ...]'
    >>> import pandas as pd
    >>> short_repr(pd.Series([1.0, 2.0]))
    'a Series of 2 values'
    """
    # A Series, table or array where one value belongs is described, not printed: its
    # repr spans lines of index and values (a patient's, perhaps) and says less than its size
    try:  # any object's shape may fail, or be no shape; the message must not
        shape = getattr(value, "shape", None)
    except Exception:
        shape = None
    if not (isinstance(shape, tuple) and all(isinstance(n, int) for n in shape)):
        shape = None
    if shape is not None and (len(shape) > 1 or sum(shape) > 1):
        kind = {"ndarray": "numpy array"}.get(type(value).__name__, type(value).__name__)
        kind = f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"
        if len(shape) == 1:
            return f"{kind} of {shape[0]:,} values"
        return f"{kind} of shape {' x '.join(f'{n:,}' for n in shape)}"[:limit]
    try:
        text = _SHORT.repr(value)
    except Exception:  # any object's __repr__ may fail; the message must not
        text = f"<{type(value).__name__} object>"
    # a value may still print on several lines: one problem is one line
    text = one_line(re.sub(r"\s*\n\s*", " ", text))
    if len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        if self.row is None:
            return self.message
        return f"row {_row_label(self.row)}: {self.message}"


def _row_label(row: Any) -> str:
    """A row's index label as people read it: ``7``, ``p12``; odd labels by their repr."""
    if isinstance(row, str) and row.isprintable() and len(row) <= MAX_VALUE_CHARS:
        return row
    if isinstance(row, str):
        return short_repr(row)
    try:
        text = str(row)
    except Exception:  # as in short_repr: a label's __str__ may fail
        return short_repr(row)
    return text if text.isprintable() and len(text) <= MAX_VALUE_CHARS else short_repr(row)


# Where a problem is, in its text: a file's line, a dataset's record, a table's row
_PLACE = re.compile(r"\b(?:line|record|row) \d+\b")


def _alike(problems: list[Problem]) -> list[list[Problem]]:
    """The problems grouped by their text with its place taken out, in the order each
    first came: one cause in 50 lines of a file is one line of the message, not 40 lines
    that push every other cause out of it."""
    groups: dict[str, list[Problem]] = {}
    for problem in problems:
        # the place is in the text's head ("row 5: ", "madrs.tsv line 4: "), never taken
        # from a value ("sex='row 5'" and "sex='row 7'" are two problems)
        head, colon, rest = str(problem).partition(": ")
        place = _PLACE.search(head) if colon else None
        key = _PLACE.sub("#", head) + colon + rest if place else f"{id(problem)}"
        groups.setdefault(key, []).append(problem)
    return list(groups.values())


class ValidationError(ValueError):
    """Input that breaks the data contract, with every problem listed at once.

    Parameters
    ----------
    problems : list of Problem
        Everything found wrong. The message lists the first few dozen, within
        :data:`MAX_MESSAGE_CHARS` characters, and says how many it left out.
    what : str, default="input"
        What was checked, for the first line of the message ("patient table", "regimen").

    Attributes
    ----------
    problems : list of Problem
        All problems found, in the order they were found, with the values as they came.

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

    def __reduce__(self) -> tuple:
        # pickled (by joblib or multiprocessing) with its problems, not its message
        return (type(self), (self.problems, self.what))

    def _render(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the {_clip(str(self.what), 80)}:"
        tail = f"  ... and {n} more problems not shown (in Python: the error's .problems)"
        budget = MAX_MESSAGE_CHARS - len(head) - len(tail) - 2
        lines: list[str] = []
        shown = 0
        for group in _alike(self.problems)[:_MAX_LISTED]:
            line = "  " + _clip(str(group[0]), _MAX_LINE_CHARS)
            if len(group) > 1:
                places = [_PLACE.search(str(p).partition(": ")[0]) for p in group[1:]]
                where = ", ".join(m.group(0) for m in places[:5] if m)
                line += (
                    f" [and {len(group) - 1} more like it: {where}{', ...' * (len(group) > 6)}]"
                )
            budget -= len(line) + 1
            if budget < 0:
                break
            lines.append(line)
            shown += len(group)
        left = n - shown
        if left:
            lines.append(
                f"  ... and {left} more problem{'s' if left != 1 else ''} not shown "
                "(in Python: the error's .problems)"
            )
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
    no ketapredict model at 'no/such/model': ...
    """

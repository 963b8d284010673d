"""Why a path users name is no file to read.

A directory, a pipe or a device where a file is expected: a pipe would make a reader wait
forever and a device (``/dev/zero``) never end, so each is refused by name before it is
opened. One wording for every file a user names (experiment, feature set, patient table,
record).
"""

from __future__ import annotations

import os
from pathlib import Path

from .exceptions import Problem, ValidationError

__all__ = ["checked_path", "not_a_file", "not_a_path"]


def not_a_file(path: str | Path, expected: str) -> str | None:
    """What is wrong with ``path`` as a file to read, or None for a regular file.

    Parameters
    ----------
    path : str or Path
        The path as the user gave it.
    expected : str
        What a file there should be, e.g. ``"a .toml file"``.

    Returns
    -------
    str or None
        The end of a message, to follow the path's name: ``"is a directory; expected a
        .toml file"``, ``"is not a regular file (a device or a pipe); expected ..."`` or
        ``"does not exist"``.

    Examples
    --------
    >>> not_a_file("/", "a .toml file")
    'is a directory; expected a .toml file'
    >>> not_a_file("/no/such/experiment.toml", "a .toml file")
    'does not exist'
    """
    # os.path, not pathlib: False (never an error) for a name too long or with a NUL
    if os.path.isfile(path):
        return None
    if os.path.isdir(path):
        return f"is a directory; expected {expected}"
    if os.path.exists(path):
        return f"is not a regular file (a device or a pipe); expected {expected}"
    return "does not exist"


def not_a_path(path: object, what: str) -> str | None:
    """Why ``path`` names no place to write ``what``, or None: it is no path (text or a
    path-like), or it is empty (``Path("")`` is the current directory, where a model or a
    key would land among other files unasked).

    Examples
    --------
    >>> not_a_path("", "the model")
    'the path for the model is empty; name a directory'
    >>> not_a_path(3, "the keys") is None
    False
    """
    if not isinstance(path, str | os.PathLike):
        return f"the path for {what} must be text or a path; got {type(path).__name__}"
    if not os.fspath(path):
        return f"the path for {what} is empty; name a directory"
    return None


def checked_path(value: object, argument: str, what: str) -> Path:
    """``value`` as a Path to read, or a ValidationError naming ``argument``: it is no path
    (None, a number), or it is empty (``Path("")`` is the current directory, which was then
    "a directory" with no word of the argument)."""
    if isinstance(value, str | os.PathLike) and os.fspath(value):
        return Path(value)
    said = "an empty path" if isinstance(value, str | os.PathLike) else type(value).__name__
    raise ValidationError(
        [Problem(argument, None, f"{argument} must be the path of {what}; got {said}")],
        "arguments",
    )

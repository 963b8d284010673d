"""JSON objects read strictly: a key given twice is refused, for patient files and model
files alike (JSON readers differ on which copy counts: Python's keeps the last, so what a
person reads in the file could differ from what is loaded)."""

from __future__ import annotations

from typing import Any

__all__ = ["DuplicateKeyError", "unique_keys"]


class DuplicateKeyError(ValueError):
    """A JSON object that gives the key :attr:`key` twice."""

    def __init__(self, key: str):
        super().__init__(f"the key {key[:40]!r} is given twice in one object")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: the object as a dict, refusing a key given
    twice (:class:`DuplicateKeyError`).

    Examples
    --------
    >>> import json
    >>> json.loads('{"age": 46, "age": 80}', object_pairs_hook=unique_keys)
    Traceback (most recent call last):
    ...
    ketapredict._json.DuplicateKeyError: the key 'age' is given twice in one object
    """
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise DuplicateKeyError(twice)
    return found

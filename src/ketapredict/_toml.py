"""Reading the TOML files users write (feature sets, experiments, mapping files).

They come from elsewhere, so every way one can fail to be read is one ``ValidationError``
naming the file, never a traceback: not UTF-8, not TOML, nested too deeply for
``tomllib`` (which recurses once per level), or unreadable.
"""

from __future__ import annotations

import tomllib
import typing
from collections.abc import Sequence
from typing import Any

from .exceptions import Problem, ValidationError


def read_toml(
    file: Any, source: str, what: str, field: str | None = None
) -> tuple[dict[str, Any], str]:
    """The table in a TOML file (a path or an ``importlib.resources`` file), and its text.

    Raises
    ------
    ValidationError
        One problem, on ``field``, naming ``source`` and the fault; ``what`` heads it.
    """
    try:
        text = file.read_text("utf-8")
        # a byte-order mark (Windows editors write one) is not TOML, but it is no part of
        # the text either: read past it, keep the text as written
        return tomllib.loads(text.removeprefix("\ufeff")), text
    except UnicodeDecodeError as error:
        message = f"{source} is not UTF-8 text ({error.reason} at byte {error.start})"
    except tomllib.TOMLDecodeError as error:
        message = f"{source} is not valid TOML: {error}"
    except RecursionError:
        message = f"{source} nests arrays or tables too deeply to read"
    except OSError as error:
        message = f"{source} cannot be read: {error.strerror}"
    raise ValidationError([Problem(field, source, message)], what)


def allowed_keys(model: Any, loc: Sequence[Any], hidden: Sequence[str] = ()) -> str:
    """The keys allowed where pydantic met an unknown one (``loc``: its place in the file,
    the unknown key last), as text to end the message with ("" where the place holds no
    model of known keys). ``hidden``: fields the reader sets, not the file."""
    parts = list(loc[:-1])
    while parts:
        fields = getattr(model, "model_fields", None) or {}
        field = fields.get(parts.pop(0))
        if field is None:
            return ""
        model = field.annotation
        if typing.get_origin(model) is dict:  # a table of named entries (arms, sessions)
            model = typing.get_args(model)[-1]
            if parts:
                parts.pop(0)  # the entry's name
        # an optional section, or a value that may be text or a table: its table's model
        model = next((a for a in typing.get_args(model) if hasattr(a, "model_fields")), model)
    fields = getattr(model, "model_fields", None)
    if not fields:
        return ""
    names = [f.alias or name for name, f in fields.items() if name not in hidden]
    return "; expected " + ", ".join(names)

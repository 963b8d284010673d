"""Reading the TOML files users write (feature sets, experiments, mapping files).

They come from elsewhere, so every way one can fail to be read is one ``ValidationError``
naming the file, never a traceback: not UTF-8, not TOML, nested too deeply for
``tomllib`` (which recurses once per level), or unreadable.
"""

from __future__ import annotations

import tomllib
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

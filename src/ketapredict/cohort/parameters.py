"""The virtual cohort's parameters: ``cohort/parameters.toml``, one table per parameter.

Each table holds the ``value``, what it measures (``unit``), what it does (``mechanism``) and
its ``source``; fitted parameters also hold ``fit = [low, high]``, the bounds within which
``python scripts/fit_cohort.py`` fits them. :func:`load_parameters` reads the file;
:func:`write_fitted` puts fitted values back into it, leaving everything else as written.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["Parameters", "load_parameters", "parameters_path", "write_fitted"]

_FILE = "parameters.toml"


@dataclass(frozen=True)
class Parameters:
    """Parameter values by name, read as attributes (``params.drug_max``).

    Attributes
    ----------
    values : mapping of str to float
    specs : mapping of str to dict
        Each parameter's table as written (unit, mechanism, source, fit bounds).
    fit : mapping
        The ``[fit]`` table the fitting script wrote (seed, objective, ...).
    """

    values: Mapping[str, float]
    specs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    fit: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __getattr__(self, name: str) -> float:
        # only called for names that are not attributes; guard the dataclass's own fields so
        # that copy and pickle, which probe a fresh object, do not recurse
        if name.startswith("__") or name in ("values", "specs", "fit"):
            raise AttributeError(name)
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(f"no cohort parameter named {name!r}") from None

    def replace(self, **changes: float) -> Parameters:
        """A copy with some values changed (for fitting and sensitivity analyses).

        Raises
        ------
        KeyError
            For a name that is not a parameter.
        """
        unknown = sorted(set(changes) - set(self.values))
        if unknown:
            raise KeyError(f"unknown cohort parameters: {unknown}")
        return Parameters({**self.values, **changes}, self.specs, self.fit)

    def fitted(self) -> dict[str, tuple[float, float]]:
        """The fitted parameters and their bounds, in file order."""
        return {name: tuple(spec["fit"]) for name, spec in self.specs.items() if "fit" in spec}


def parameters_path() -> Path:
    """Where the parameter file lives (inside the installed package)."""
    return Path(str(resources.files("ketapredict.cohort").joinpath(_FILE)))


def _parse(text: str) -> Parameters:
    data = tomllib.loads(text)
    fit = data.pop("fit", {})
    values = {}
    for name, spec in data.items():
        value = spec["value"]
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"cohort parameter {name}: value={value!r} is not a finite number")
        values[name] = float(value)
    return Parameters(values, data, fit)


@cache
def load_parameters() -> Parameters:
    """The parameters in ``cohort/parameters.toml``."""
    return _parse(parameters_path().read_text("utf-8"))


def write_fitted(values: Mapping[str, float], summary: Mapping[str, Any], path: Path) -> None:
    """Put fitted ``values`` and the ``[fit]`` ``summary`` into the parameter file at ``path``.

    Only each fitted table's ``value = ...`` line and the ``[fit]`` table change; comments,
    sources and order stay as written.
    """
    text = path.read_text("utf-8")
    for name, value in values.items():
        pattern = re.compile(rf"(^\[{re.escape(name)}\]\nvalue = )([^\n]*)", re.MULTILINE)
        text, count = pattern.subn(lambda m, v=value: m.group(1) + _number(v), text)
        if count != 1:
            raise ValueError(f"{path}: no table [{name}] starting with a value line")
    text = re.sub(r"\n\[fit\]\n.*\Z", "\n", text, flags=re.DOTALL).rstrip("\n") + "\n"
    lines = ["", "[fit]", "# written by scripts/fit_cohort.py"]
    lines += [f"{key} = {_toml(value)}" for key, value in summary.items()]
    path.write_text(text + "\n".join(lines) + "\n", "utf-8")
    load_parameters.cache_clear()
    _parse(path.read_text("utf-8"))  # the file still reads


def _number(value: float) -> str:
    return f"{value:.6g}" if "e" not in f"{value:.6g}" else repr(float(value))


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")

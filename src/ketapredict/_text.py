"""Printed text: the prose of every command and printed report is wrapped here, to fit a
terminal of 100 columns, and so are the cells of the comparison of schedules (a table is
otherwise as wide as its columns: the external validation's can be wider)."""

from __future__ import annotations

import re
import textwrap

__all__ = ["cell", "listed", "paragraph"]


def paragraph(text: str, *, width: int = 96, indent: str = "", first_indent: str = "") -> str:
    """``text`` in lines of at most ``width`` characters, the first starting with
    ``first_indent`` and the others with ``indent``; words are never broken at hyphens
    (a schedule's "2/week" or a day range stays whole).

    Examples
    --------
    >>> from ketapredict._text import paragraph
    >>> print(paragraph("one two three four", width=9, indent="  "))
    one two
      three
      four
    """
    return textwrap.fill(
        text,
        width,
        initial_indent=first_indent,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=False,
    )


# A table cell breaks first after a comma and before a "+" (between a schedule's drug, its
# sessions and its add-ons), then between words; not after a colon, which ends the name a
# caller gave a schedule ("mine: ketamine ..."): the name stays with its drug.
_CELL_BREAKS = re.compile(r"(?<=,) (?=\S)| (?=\+ )")


def cell(text: str, width: int, *, head_apart: bool = False) -> list[str]:
    """A table cell in lines of at most ``width`` characters (a longer word stays whole),
    broken first between its phrases: after a comma, before a "+". With
    ``head_apart``, a text that needs more than one line has its first phrase on a line of
    its own (a schedule's drug, dose and route above its sessions, row after row).

    Examples
    --------
    >>> from ketapredict._text import cell
    >>> text = "esketamine 84 mg intranasal, 1/week x 4 + new oral antidepressant"
    >>> cell(text, 40)
    ['esketamine 84 mg intranasal, 1/week x 4', '+ new oral antidepressant']
    >>> cell(text, 40, head_apart=True)
    ['esketamine 84 mg intranasal,', '1/week x 4 + new oral antidepressant']
    >>> cell("a, b, c, d", 6)
    ['a, b,', 'c, d']
    """
    phrases = _CELL_BREAKS.split(text)
    lines: list[str] = []
    for k, phrase in enumerate(phrases):
        apart = head_apart and k == 1 and len(text) > width
        if lines and not apart and len(lines[-1]) + 1 + len(phrase) <= width:
            lines[-1] += " " + phrase
        else:
            lines += textwrap.wrap(
                phrase, width, break_on_hyphens=False, break_long_words=False
            ) or [""]
    return lines or [""]


def listed(values: list[str], word: str = "and") -> str:
    """Items in a sentence: ``"a"``, ``"a and b"``, ``"a, b and c"`` (``word``: "or").

    Examples
    --------
    >>> from ketapredict._text import listed
    >>> listed(["response", "cognitive decline"]), listed(["3", "3.12", "4"], "or")
    ('response and cognitive decline', '3, 3.12 or 4')
    """
    values = list(values)
    if len(values) < 2:
        return "".join(values)
    return f"{', '.join(values[:-1])} {word} {values[-1]}"

"""Printed paragraphs: the prose of every command and printed report is wrapped here, to fit
a terminal of 100 columns (a table is as wide as its columns: the comparison of schedules
and the external validation's can be wider)."""

from __future__ import annotations

import textwrap

__all__ = ["paragraph"]


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

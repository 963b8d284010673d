"""The Python examples of README.md and docs/ run as written.

Each page's ```python blocks run in order, as one script, in a fresh process and an empty
directory, as a reader pasting them would. A block the tests cannot run (it needs a model
logged to MLflow first) says so in a comment just above it:
``<!-- not run by the tests: why -->``.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"(<!-- not run by the tests: [^>]*-->\n)?^```python\n(.*?)^```", re.S | re.M)


def _blocks(page):
    """(code, run) of each Python block of a page."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return [(code, not skip) for skip, code in _BLOCK.findall(text)]


def test_the_pages_have_examples_to_run():
    """The check below would pass vacuously if no block were found."""
    found = {page: len(_blocks(page)) for page in PAGES}
    assert found["README.md"] >= 1
    assert sum(found.values()) >= 8


@pytest.mark.parametrize("page", [p for p in PAGES if any(run for _, run in _blocks(p))])
def test_a_pages_python_examples_run(page, tmp_path):
    code = "\n".join(code for code, run in _blocks(page) if run)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, f"{page}: {out.stderr[-2000:]}"

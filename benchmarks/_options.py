"""The benchmarks' command line: ``--help`` prints the benchmark's docstring, and an argument
it does not declare is refused rather than ignored (a typo would run the long default)."""

import argparse


def options(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose help is ``doc`` (the benchmark module's docstring), as written."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )

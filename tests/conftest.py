"""Shared fixtures: simulated data built once per test session."""

import pytest

import ketapredict


@pytest.fixture(scope="session")
def cohort():
    """A small pooled virtual cohort (every published design)."""
    return ketapredict.simulate_cohort(n=4000, seed=0)


@pytest.fixture(scope="session")
def large_cohort():
    """A pooled virtual cohort large enough to check probabilities against rates."""
    return ketapredict.simulate_cohort(n=60_000, seed=11)


@pytest.fixture(scope="session")
def report():
    """The calibration report at the size the issue asks for: 20,000 patients per arm."""
    return ketapredict.calibration_report(seed=0, n_per_arm=20_000)

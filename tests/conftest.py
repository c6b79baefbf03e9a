"""Fixtures for every test. Tests that need the lab PBX fail (never skip) when it is down."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from dialer.logs import configure_logging
from tests.support import lab_pbx

# Hypothesis: the normal run tries each property's default number of examples (100, seconds);
# `make fuzz` (HYPOTHESIS_PROFILE=fuzz) many more. A property that sets max_examples keeps it.
settings.register_profile("fuzz", max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def lab_pbx_running() -> None:
    """Fail (never skip) when the lab PBX is not running."""
    status = lab_pbx("status", check=False)
    if status.returncode != 0:
        pytest.fail(
            "the lab PBX is not running; start it with `lab/pbx start` (make test does this)\n"
            + status.stdout
            + status.stderr
        )


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The JSON log lines written while the test runs (the logging set up as the daemon's)."""
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    yield stream
    logging.getLogger().handlers.clear()

"""Shared test configuration: the hypothesis profiles, and the `sandboxes` fixture.

    default   hypothesis's usual 100 examples per property, no deadline (a shared CI
              runner's timings vary too much for one); tests that set max_examples keep it
    fuzz      5,000 examples per property, for a long run on demand:
                  HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/test_fuzz_*.py

The fuzz tests (tests/test_fuzz_*.py) take their number of examples from the profile; the
environment variable HYPOTHESIS_PROFILE selects it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings
from sandboxproc import SandboxProcess

settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("fuzz", max_examples=5_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def sandboxes() -> Iterator[list[SandboxProcess]]:
    """Sandbox processes a test starts (append each); all stopped when the test ends."""
    started: list[SandboxProcess] = []
    yield started
    for sandbox in started:
        sandbox.stop()

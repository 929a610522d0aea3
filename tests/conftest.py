"""Shared test configuration: the hypothesis profiles.

    default   hypothesis's usual 100 examples per property, no deadline (a shared CI
              runner's timings vary too much for one); tests that set max_examples keep it
    fuzz      5,000 examples per property, for a long run on demand:
                  HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/test_fuzz_*.py

The fuzz tests (tests/test_fuzz_*.py) take their number of examples from the profile; the
environment variable HYPOTHESIS_PROFILE selects it.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("fuzz", max_examples=5_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

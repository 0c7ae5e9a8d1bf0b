"""Hypothesis profiles (deterministic `ci` by default, `dev` for local exploration); a private
cache directory for the session."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=100, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="session")
def _include_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Verdicts on included files (engine/policy/includes.py) go to a session directory, never
    to the user's cache; subprocesses inherit it through the environment."""
    os.environ["LIQPOLICY_CACHE_DIR"] = str(tmp_path_factory.mktemp("liqpolicy-cache"))

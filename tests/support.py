"""Helpers shared by the tests (``pythonpath = tests`` in pyproject)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need_server(reason: str) -> None:
    """Skip on a laptop that lacks a server; with CI=true a missing server is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} -- CI=true, so a missing server fails the test instead of skipping it")
    pytest.skip(reason)

"""Fixtures of the scoring tests: a tiny student saved the way a user's model is."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory, build_tiny_llama):
    return build_tiny_llama(tmp_path_factory.mktemp("student"),
                            "The ferry leaves Pier 3 at 7:15. Fees are 12 crowns.")

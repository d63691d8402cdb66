"""Shared fixtures: tiny data made on the fly; nothing from the network or outside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture
def ws(tmp_path):
    from loop.workspace import Workspace

    w = Workspace(tmp_path / "ws")
    yield w
    w.close()


@pytest.fixture
def example_dir() -> Path:
    return EXAMPLES / "marrowick"

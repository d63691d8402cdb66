"""Fixtures of the generation tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def example_ws(tmp_path, example_dir):
    """A workspace holding the bundled example's corpus."""
    from loop.ingest import ingest
    from loop.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ingest(ws, [example_dir])
    yield ws
    ws.close()

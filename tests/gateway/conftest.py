from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.storage import Storage

# The gateway judges windows' times against its clock (gateway/plausible.py): tests that
# ingest windows of fixed dates (2026-11-20..24) pin it just after them, so they do not
# start failing when the real date moves on.
PINNED_NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    """A real SQLite file (WAL) with the gateway's migrations applied, its clock pinned."""
    s = Storage(tmp_path / "gateway.db", clock=lambda: PINNED_NOW)
    yield s
    s.close()

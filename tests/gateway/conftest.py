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
def storage(database: str | Path) -> Iterator[Storage]:
    """The gateway's storage on each engine (a real SQLite file in WAL mode, and a real
    PostgreSQL: gateway/pg_local.py), migrations applied, its clock pinned."""
    s = Storage(database, clock=lambda: PINNED_NOW)
    yield s
    s.close()

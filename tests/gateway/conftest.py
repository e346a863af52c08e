from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.storage import Storage


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    """A real SQLite file (WAL) with the gateway's migrations applied."""
    s = Storage(tmp_path / "gateway.db")
    yield s
    s.close()

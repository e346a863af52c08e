from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import Mosquitto

# Mosquitto started as root drops to user "mosquitto", which cannot write pytest's private
# tmp dirs: its log and its persistence file (persistent sessions across a restart) would
# silently fail. "user root" keeps the test's user; ignored when not running as root.
RUN_AS = "user root\n"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """The shared fixture, with persistence that really works when tests run as root."""
    with Mosquitto(tmp_path / "broker", extra=RUN_AS) as b:
        yield b

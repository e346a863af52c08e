"""systemd's notify protocol (READY, WATCHDOG, STOPPING), spoken without a dependency."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def sd_notify(state: str) -> bool:
    """Tell systemd READY=1 / WATCHDOG=1 / STOPPING=1 via $NOTIFY_SOCKET (no dependency)."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace socket
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(state.encode())
    except OSError as e:
        log.warning("sd_notify %s failed: %s", state, e)
        return False
    return True


def watchdog_interval_s() -> float | None:
    """Half of systemd's WatchdogSec (as it recommends), or None when not supervised."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit():
        return None
    return int(usec) / 2e6

"""One message must never stall a batch.

A batch is one transaction: if any message in it makes the write raise (once, a window from
the year 9999 overflowed its store's local hour in the rollup), the whole batch used to be
retried for ever, valid windows included, across restarts. ``ingest_isolating`` splits a
failing batch in halves until the failing messages stand alone, stores the rest, and
dead-letters each culprit with the exception's text (whole, so it can be looked at and
stored later by hand if the gateway was wrong).

Failures of the database itself (disk full, locked, I/O, a lost PostgreSQL connection:
``OperationalError`` of either engine) are
no message's fault: they propagate, and the caller keeps the batch unacknowledged and
retries it as before, so nothing valid is dead-lettered for them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

import psycopg

from gateway.storage import IngestResult, Storage

log = logging.getLogger(__name__)


def environmental(e: BaseException) -> bool:
    """True when the database or the process failed, not the message."""
    return (isinstance(e, sqlite3.OperationalError | psycopg.OperationalError
                       | psycopg.InterfaceError | MemoryError)
            or type(e) is sqlite3.DatabaseError)  # e.g. a corrupt file


def ingest_isolating(storage: Storage, items: Sequence[tuple[str, bytes]]) -> IngestResult:
    """``storage.ingest``, with messages that make it fail dead-lettered, not retried."""
    try:
        return storage.ingest(items)
    except Exception as e:
        if environmental(e):
            raise
        if len(items) == 1:
            topic, payload = items[0]
            log.warning("message on %s could not be stored: %r; dead-lettered", topic, e)
            storage.dead_letter(topic, payload, f"could not be stored: {type(e).__name__}: "
                                f"{e}"[:1000], whole=True)
            return IngestResult(dead=1)
        half = len(items) // 2
        # halves that commit are stored (a retry of the whole batch later collapses them on
        # message_id); a failing half is split again
        return (ingest_isolating(storage, items[:half])
                + ingest_isolating(storage, items[half:]))

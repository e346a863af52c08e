"""What the evaluation's caches know an input file by: its bytes, not its modification time.

Evaluation data is copied, checked out and restored between machines and sessions, which
touches every file without changing a byte. Keyed by modification time, the suite's caches
were thrown away each time: its mosaics rebuilt and every detector frame run again (minutes).
A sha256 of the suite's largest video takes about 0.1 s, and is remembered per process while
the file's size and modification time stay the same.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any


def content_stamp(path: Path) -> dict[str, Any]:
    """{"size", "sha256"} of the file's content."""
    st = path.stat()
    return {"size": st.st_size, "sha256": _sha256(str(path.resolve()), st.st_size, st.st_mtime_ns)}


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """The file's sha256; size and mtime are part of the memo's key, so a file rewritten
    during the process is read again."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()

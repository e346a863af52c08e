"""A one-line terminal progress display for long runs (seeding history, analysing video).

Draws only on a TTY so logs and CI output stay clean; elsewhere it prints nothing until done.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self, label: str, total: int | None,
        stream: TextIO | None = None, enabled: bool | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.count = 0
        self.started = time.monotonic()
        self._last_draw = 0.0

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.enabled and now - self._last_draw > 0.1:
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.count / max(now - self.started, 1e-9)
        if self.total:
            frac = min(1.0, self.count / self.total)
            bar = "#" * int(frac * 30)
            eta = (self.total - self.count) / rate if rate > 0 else 0.0
            text = (f"\r{self.label} [{bar:<30}] {self.count}/{self.total} "
                    f"{rate:,.0f}/s eta {eta:,.0f}s ")
        else:
            text = f"\r{self.label} {self.count} {rate:,.0f}/s "
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        elapsed = time.monotonic() - self.started
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
        self.stream.write(f"{self.label}: {self.count} in {elapsed:.1f}s\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

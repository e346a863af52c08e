"""HQ and merchandiser dashboards: static HTML, ES modules and ECharts, served by the gateway.

The gateway mounts ``STATIC_DIR`` at ``/static`` and serves the three pages at ``/``,
``/store.html`` and ``/heatmap.html`` (see docs/api.md). Nothing here needs a build step or
the internet: ECharts is vendored under ``static/vendor``.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
PAGES: tuple[str, ...] = ("index.html", "store.html", "heatmap.html")

__all__ = ["PAGES", "STATIC_DIR"]

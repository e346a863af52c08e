"""The FastAPI app factory: settings and storage are handed in (no globals), the API lives
under /api/v1 (docs/api.md), OpenAPI at /docs, and the dashboards are served as static files
after the API routes so they can never shadow it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from gateway import errors
from gateway.alerts_routes import router as alerts_router
from gateway.config import GatewaySettings
from gateway.config_routes import router as config_router
from gateway.http_limits import HttpLimits
from gateway.live_routes import router as live_router
from gateway.members_routes import router as members_router
from gateway.model_routes import router as model_router
from gateway.retail_routes import router as retail_router
from gateway.routes import router
from gateway.storage import Storage
from gateway.weather_routes import router as weather_router
from storesense import __version__
from storesense.schema import utcnow

log = logging.getLogger(__name__)
DOCS_STATIC = "/docs/static"  # Swagger UI's files


def static_dir() -> Path:
    """The dashboards' static files: ``dashboards.STATIC_DIR`` when the package defines it."""
    try:
        from dashboards import STATIC_DIR

        return Path(STATIC_DIR)
    except (ImportError, AttributeError):
        return Path(__file__).resolve().parent.parent / "dashboards" / "static"


def create_app(settings: GatewaySettings, storage: Storage,
               clock: Callable[[], datetime] = utcnow,
               ingest: Callable[[], dict[str, Any]] | None = None) -> FastAPI:
    """``clock`` is injectable so tests can pin "today" and the online cut-off. ``ingest``:
    the ingest's own health (``Ingestor.health``), which /api/v1/health reports."""
    # FastAPIOffline: /docs with Swagger UI served from this gateway (fastapi-offline's copy),
    # not from a CDN: HQ's network and a store's may reach no CDN, and the page was blank.
    app = FastAPIOffline(title="storesense gateway", version=__version__,
                         description="Foot traffic, dwell, heatmaps and device health; see "
                         "docs/api.md", docs_url="/docs", redoc_url=None,
                         static_url=DOCS_STATIC)
    app.state.settings = settings
    app.state.storage = storage
    app.state.clock = clock
    app.state.ingest = ingest
    errors.install(app)
    app.include_router(router, prefix="/api/v1")
    app.include_router(live_router, prefix="/api/v1")
    app.include_router(config_router, prefix="/api/v1")
    app.include_router(alerts_router, prefix="/api/v1")
    app.include_router(model_router, prefix="/api/v1")
    app.include_router(members_router, prefix="/api/v1")
    app.include_router(weather_router, prefix="/api/v1")
    app.include_router(retail_router, prefix="/api/v1")
    if settings.api.serve_dashboards:
        _mount_dashboards(app)
    # outermost of the app's own middleware: bounds bodies before anything reads them
    app.add_middleware(HttpLimits, api=settings.api)
    return app


def _mount_dashboards(app: FastAPI) -> None:
    root = static_dir()
    if not root.is_dir():
        log.warning("dashboards not found at %s; serving the API only", root)
        return
    # pages load assets as static/js/..., and are themselves at /, /store.html, ...
    app.mount("/static", StaticFiles(directory=root), name="static")
    app.mount("/", StaticFiles(directory=root, html=True), name="dashboards")

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from gateway.pg_local import PostgresServer
from storesense.broker import Mosquitto

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("STORESENSE_SHARED", REPO.parent / "shared"))
MODELS_DIR = Path(os.environ.get("STORESENSE_MODELS_DIR", SHARED / "models"))
EVAL_DIR = SHARED / "data" / "eval"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto on a free port, anonymous access, persistence on."""
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session: Playwright's sync API allows one instance
    per thread, so every browser test (dashboards, the edge's installer page) shares it."""
    from dashboards.browser import CHROMIUM, chromium

    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with chromium() as b:
        yield b


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not (MODELS_DIR / "yolox_nano.onnx").exists():
        pytest.fail(f"model weights not found in {MODELS_DIR}; set STORESENSE_MODELS_DIR")
    return MODELS_DIR


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    if not (EVAL_DIR / "MOT17-09" / "video.mp4").exists():
        pytest.fail(f"evaluation sequences not found in {EVAL_DIR}")
    return EVAL_DIR


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session (gateway/pg_local.py); each test gets a schema."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a gateway keeps its data, once per engine: a SQLite file, or a PostgreSQL URL
    of an empty schema. Pass it wherever a gateway takes a database (Storage, --db, db =)."""
    if request.param == "sqlite":
        return tmp_path / "gateway.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database_url()

"""API tokens: they can expire, their scope must name something real, they print safely."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.auth import authenticate, create_token, list_tokens, new_token
from gateway.config import GatewaySettings
from gateway.storage import Storage
from storesense.cli import main
from storesense.schema import utcnow
from tests.gateway.helpers import store


def test_an_expired_token_is_refused_like_a_revoked_one(storage: Storage) -> None:
    storage.upsert_stores([store("a1")])
    soon = create_token(storage, "contractor", "hq", utcnow() + timedelta(hours=1))
    gone = create_token(storage, "last-year", "hq", utcnow() - timedelta(seconds=1))
    with TestClient(create_app(GatewaySettings(), storage)) as client:
        ok = client.get("/api/v1/stores", headers={"Authorization": f"Bearer {soon}"})
        refused = client.get("/api/v1/stores", headers={"Authorization": f"Bearer {gone}"})
    assert ok.status_code == 200 and refused.status_code == 401
    assert authenticate(storage, gone) is None
    listed = {t["name"]: t for t in list_tokens(storage)}
    assert listed["contractor"]["expires_at"] and listed["last-year"]["expires_at"]


def test_printed_tokens_never_start_like_an_option() -> None:
    # about one urlsafe token in 32 starts with - or _; 3,000 would show some
    assert not any(new_token()[0] in "-_" for _ in range(3000))


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--scope", "franchisee:nobody"], 2, "no registered store has franchisee 'nobody'"),
        (["--scope", "region:Atlantis"], 2, "no registered store has region 'Atlantis'"),
        (["--scope", "franchisee:nobody", "--allow-unknown-scope"], 0, ""),
        (["--scope", "franchisee:f1"], 0, ""),
        (["--scope", "hq", "--expires-days", "0"], 2, "--expires-days"),
        (["--scope", "hq", "--expires-days", "30"], 0, ""),
    ],
)
def test_token_create_checks_the_scope_against_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, says: str
) -> None:
    db = tmp_path / "gw.db"
    storage = Storage(db)
    storage.upsert_stores([store("a1", franchisee="f1", region="Europe")])
    storage.close()
    assert main(["gateway", "token", "create", "--db", str(db), "--name", "t", *args]) == code
    out = capsys.readouterr()
    assert says in out.err
    if code == 0:
        token = out.out.strip()
        assert len(token) >= 40 and token[0].isalnum()

"""API tokens and scopes.

A token is 32 random bytes (urlsafe text, never starting with "-" or "_", which shells and
option parsers take for an option) shown once; only its sha256 is stored, so a copy of the
database does not hand out access. A token may expire (``expires_at``); an expired one is
refused like a revoked one. A scope is ``hq``, ``region:<name>``, ``franchisee:<id>`` or
``weather`` (a weather feed: may push daily weather, sees no store); the stores a principal
may see are resolved from the registry.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gateway.rollups import utc_text
from gateway.storage import Registry, Storage
from storesense.schema import utcnow

ScopeKind = Literal["hq", "region", "franchisee", "weather"]


@dataclass(frozen=True)
class Principal:
    name: str
    kind: ScopeKind
    value: str

    @property
    def is_hq(self) -> bool:
        return self.kind == "hq"

    def store_ids(self, registry: Registry) -> list[str]:
        """The stores this principal may see, sorted."""
        return sorted(
            s.store_id for s in registry.stores.values()
            if self.kind == "hq"
            or (self.kind == "region" and s.region == self.value)
            or (self.kind == "franchisee" and s.franchisee == self.value)
        )


def parse_scope(scope: str) -> tuple[ScopeKind, str]:
    if scope in ("hq", "weather"):
        return ("hq" if scope == "hq" else "weather"), ""
    kind, sep, value = scope.partition(":")
    if sep and value and kind in ("region", "franchisee"):
        return ("region" if kind == "region" else "franchisee"), value
    raise ValueError(f"scope {scope!r}: expected hq, region:<name>, franchisee:<id> or "
                     f"weather")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def unknown_scope(registry: Registry, scope: str) -> str | None:
    """Why a scope names no registered store's region or franchisee (None: it does, or hq)."""
    kind, value = parse_scope(scope)
    if kind in ("hq", "weather"):
        return None
    known = {getattr(s, kind) for s in registry.stores.values()}
    if value in known:
        return None
    return (f"no registered store has {kind} {value!r} (known: {sorted(known)[:10]}); a typo "
            f"here would give a token that sees nothing")


def new_token() -> str:
    while not (token := secrets.token_urlsafe(32))[0].isalnum():
        pass  # about one in 32 starts with - or _: draw again
    return token


def create_token(
    storage: Storage, name: str, scope: str, expires_at: datetime | None = None
) -> str:
    """Store a new token's hash; returns the token (the only time it is visible)."""
    parse_scope(scope)
    token = new_token()
    with storage.transaction() as conn:
        conn.execute(
            "INSERT INTO tokens (name, scope, token_sha256, created_at, expires_at) "
            "VALUES (?,?,?,?,?)",
            (name, scope, hash_token(token), utc_text(utcnow()),
             utc_text(expires_at) if expires_at is not None else None),
        )
    return token


def list_tokens(storage: Storage) -> list[dict[str, object]]:
    rows = storage.read().execute(
        "SELECT id, name, scope, created_at, expires_at, revoked_at FROM tokens ORDER BY id")
    return [dict(r) for r in rows]


def revoke_token(storage: Storage, name_or_id: str) -> int:
    """Revoke by name or id; returns how many tokens were revoked."""
    with storage.transaction() as conn:
        cur = conn.execute(
            "UPDATE tokens SET revoked_at=? WHERE revoked_at IS NULL AND "
            "(name=? OR CAST(id AS TEXT)=?)", (utc_text(utcnow()), name_or_id, name_or_id))
    return cur.rowcount


def authenticate(storage: Storage, token: str) -> Principal | None:
    row = storage.read().execute(
        "SELECT name, scope FROM tokens WHERE token_sha256=? AND revoked_at IS NULL "
        "AND (expires_at IS NULL OR expires_at > ?)",
        (hash_token(token), utc_text(utcnow())),
    ).fetchone()
    if row is None:
        return None
    kind, value = parse_scope(row[1])
    return Principal(row[0], kind, value)

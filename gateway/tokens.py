"""`storesense gateway token create|list|revoke --db PATH`."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

from gateway.auth import create_token, list_tokens, parse_scope, revoke_token, unknown_scope
from gateway.db import DB_HELP
from gateway.db import target as db_target
from gateway.storage import Storage
from storesense.errors import ConfigError
from storesense.schema import utcnow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("create", "list", "revoke"))
    parser.add_argument("--db", type=db_target, required=True, help=DB_HELP)
    parser.add_argument("--name", help="token name (create; revoke by name or id)")
    parser.add_argument("--scope", help="hq | region:<name> | franchisee:<id> | weather "
                        "(create; weather: may only push daily weather)")
    parser.add_argument("--expires-days", type=float, default=None,
                        help="create: the token stops working this many days from now")
    parser.add_argument("--allow-unknown-scope", action="store_true",
                        help="create: a region or franchisee no registered store has yet")


def run(args: argparse.Namespace) -> int:
    if args.action in ("create", "revoke") and not args.name:
        raise ConfigError(f"token {args.action}: --name is required")
    if args.action == "create":
        try:
            parse_scope(args.scope or "")
        except ValueError as e:
            raise ConfigError(f"--scope: {e}") from e
        if args.expires_days is not None and not 0 < args.expires_days <= 3650:
            raise ConfigError(f"--expires-days: expected 0 < days <= 3650, got {args.expires_days}")
    storage = Storage(args.db)
    try:
        if args.action == "create":
            why = unknown_scope(storage.registry, args.scope)
            if why and not args.allow_unknown_scope:
                raise ConfigError(f"--scope: {why} (--allow-unknown-scope to issue it anyway)")
            expires = (utcnow() + timedelta(days=args.expires_days)
                       if args.expires_days is not None else None)
            # printed once: only its sha256 is kept
            print(create_token(storage, args.name, args.scope, expires))
        elif args.action == "list":
            print(json.dumps(list_tokens(storage), indent=2))
        else:
            n = revoke_token(storage, args.name)
            print(json.dumps({"revoked": n}))
            return 0 if n else 1
    finally:
        storage.close()
    return 0

"""`storesense gateway token create|list|revoke --db PATH`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gateway.auth import create_token, list_tokens, parse_scope, revoke_token
from gateway.storage import Storage
from storesense.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("create", "list", "revoke"))
    parser.add_argument("--db", type=Path, required=True, help="gateway SQLite database")
    parser.add_argument("--name", help="token name (create; revoke by name or id)")
    parser.add_argument("--scope", help="hq | region:<name> | franchisee:<id> (create)")


def run(args: argparse.Namespace) -> int:
    if args.action in ("create", "revoke") and not args.name:
        raise ConfigError(f"token {args.action}: --name is required")
    if args.action == "create":
        try:
            parse_scope(args.scope or "")
        except ValueError as e:
            raise ConfigError(f"--scope: {e}") from e
    storage = Storage(args.db)
    try:
        if args.action == "create":
            # printed once: only its sha256 is kept
            print(create_token(storage, args.name, args.scope))
        elif args.action == "list":
            print(json.dumps(list_tokens(storage), indent=2))
        else:
            n = revoke_token(storage, args.name)
            print(json.dumps({"revoked": n}))
            return 0 if n else 1
    finally:
        storage.close()
    return 0

"""`storesense gateway replay-dead-letters --db DB [--store S]`

Windows that arrived before their store was registered are dead-lettered whole, marked with
their store. Registering the store (import-stores, PUT /api/v1/stores) replays them at once;
this command does the same for stores registered otherwise, or after a replay that failed.
Safe to repeat: a replayed letter is deleted as its window is stored, and a window stored
already collapses on its message_id.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gateway.db import DB_HELP
from gateway.db import target as db_target
from storesense.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=db_target, required=True, help=DB_HELP)
    parser.add_argument("--store", action="append", default=None, metavar="STORE_ID",
                        help="only this store's windows (repeatable); default every "
                        "registered store")


def run(args: argparse.Namespace) -> int:
    from gateway.storage import Storage

    if isinstance(args.db, Path) and not args.db.exists():  # Storage would create one
        raise ConfigError(f"--db {args.db}: no such file")
    storage = Storage(args.db)
    try:
        unknown = sorted(set(args.store or ()) - storage.registry.stores.keys())
        if unknown:
            raise ConfigError(f"--store {', '.join(unknown)}: not registered (import it first)")
        r = storage.replay_dead_letters(args.store)
    finally:
        storage.close()
    print(json.dumps({"stored": r.stored, "duplicates": r.duplicates, "dead": r.dead}))
    return 0

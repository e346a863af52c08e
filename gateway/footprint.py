"""Bytes on disk per table (its indexes included), on either engine: what storage per
store-day and store-year is computed from (`storesense bench query`, docs/gateway.md)."""

from __future__ import annotations

from gateway.db import Database


def table_bytes(conn: Database) -> dict[str, int]:
    """Table name -> bytes of the table and its indexes (SQLite's dbstat pages; PostgreSQL's
    pg_total_relation_size, TOAST included), for the gateway's own tables."""
    if conn.engine == "sqlite":
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
        out: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            if not table.startswith("sqlite_"):
                out[table] = out.get(table, 0) + int(size)
        return out
    return {str(t): int(n) for t, n in conn.execute(
        "SELECT tablename, pg_total_relation_size(quote_ident(schemaname) || '.' || "
        "quote_ident(tablename)) FROM pg_tables WHERE schemaname = current_schema()")}

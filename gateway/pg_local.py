"""A throwaway PostgreSQL server for the tests and benchmarks: initdb in a temporary
directory, pg_ctl on a unix socket of its own (no TCP port), a schema per database wanted.

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user that
Debian's ``postgresql`` package creates (``runuser``); otherwise as the caller. ``./run test``
installs the package. ``durable=False`` (tests) turns fsync off: the cluster is thrown away.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

SERVER_USER = "postgres"


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/<v>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


class PostgresServer:
    """``with PostgresServer() as pg: pg.new_database_url()``."""

    def __init__(self, durable: bool = False, root: Path | None = None) -> None:
        binaries = bin_dir()
        if binaries is None:
            raise RuntimeError("PostgreSQL not found: apt-get install postgresql "
                               "(./run test does it)")
        self.bin = binaries
        self.durable = durable
        self.root = root or Path(tempfile.mkdtemp(prefix="storesense-pg-"))
        self.data = self.root / "data"
        self.port = 5432  # only names the socket file: TCP is off
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        if self._as_root:
            shutil.chown(self.root, SERVER_USER)
        # byte-order text (C collation) as SQLite compares: the gateway checks for it
        self._run("initdb", "-D", str(self.data), "-U", "storesense", "--no-locale",
                  "-E", "UTF8", "--auth=trust")
        opts = (f"-c listen_addresses='' -c unix_socket_directories='{self.root}' "
                f"-c port={self.port} -c max_connections=300 -c shared_buffers=256MB")
        if not self.durable:
            opts += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-w", "-t", "60",
                  "-l", str(self.root / "server.log"), "start")
        self._run("createdb", "-h", str(self.root), "-p", str(self.port), "-U", "storesense",
                  "storesense")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def pid(self) -> int:
        """The postmaster's process id."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, schema: str | None = None) -> str:
        url = f"postgresql://storesense@/storesense?host={quote(str(self.root))}&port={self.port}"
        if schema:
            url += "&options=" + quote(f"-csearch_path={schema}")
        return url

    def new_database_url(self) -> str:
        """A fresh, empty schema: a database of its own to the gateway, made in a millisecond
        (a CREATE DATABASE copies a template: ~0.3 s)."""
        import psycopg

        schema = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        return self.url(schema)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

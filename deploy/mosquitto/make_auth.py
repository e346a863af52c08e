#!/usr/bin/env python3
"""Generate Mosquitto's password file and ACL for storesense devices from a CSV.

    python3 make_auth.py devices.csv OUTDIR [--prefix storesense/v1] [--gateway-workers N]

devices.csv has a header with at least ``store_id,device_id``; optional columns:
``password`` (else the one in OUTDIR/secrets.csv from a previous run, else a new one) and
``cameras`` (camera ids separated by ``;``; empty means any camera id of the device's
store). Writes to OUTDIR:

    passwd          hashed with mosquitto_passwd -U (Debian package "mosquitto")
    acl             one block per user
    secrets.csv     user,password for provisioning each device's edge.toml (mode 600)

Users: ``<device_id>@<store_id>`` per device, may write only its store's aggregates and its
own status and its cameras' installer-saved configs (``.../reported``), and read only its
cameras' config and confirmations (``.../ack``) and its own model updates (``.../model``).
``@`` cannot occur in an id (``IDENT``), so two devices never share a user: with ``.`` as
separator (up to 2026-12) store ``a.b`` device ``c`` and store ``a`` device ``b.c`` were both
``a.b.c``.
``gateway`` (and ``gateway-1`` ... for ``--gateway-workers N``: each ingest process needs its
own user, as mosquitto.conf binds client ids to user names) reads everything and writes
confirmations; ``hq`` writes config and reads status; ``models`` (the gateway's model update
publisher) writes model updates. Stdlib only, so it runs on the broker
host as is.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import secrets
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Same as storesense.schema.IDENT_PATTERN (this script must run without the package).
IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SEPARATOR = "@"  # not in IDENT's alphabet: user names cannot collide
assert not IDENT.match(f"a{SEPARATOR}b")


def device_user(store: str, device: str) -> str:
    return f"{device}{SEPARATOR}{store}"


def legacy_user(store: str, device: str) -> str:
    """The user name make_auth.py gave a device before 2026-12 (ambiguous, see above)."""
    return f"{store}.{device}"


def gateway_users(workers: int) -> list[str]:
    """Ingest process i > 0 of a gateway logs in as ``<username>-<i>`` (gateway/service.py)."""
    return ["gateway"] + [f"gateway-{i}" for i in range(1, workers)]


def device_acl(prefix: str, store: str, device: str, cameras: list[str]) -> list[str]:
    cams = cameras or ["+"]
    lines = [f"user {device_user(store, device)}"]
    lines += [f"topic write {prefix}/{store}/{cam}/agg" for cam in cams]
    lines.append(f"topic write {prefix}/{store}/{device}/status")
    # the config an installer saved on the edge's own page, reported to HQ (never an image)
    lines += [f"topic write {prefix}/{store}/{cam}/reported" for cam in cams]
    lines.append(f"topic read {prefix}/{store}/{device}/model")
    lines += [f"topic read {prefix}/{store}/{cam}/config" for cam in cams]
    lines += [f"topic read {prefix}/{store}/{cam}/ack" for cam in cams]
    return lines


def service_acl(prefix: str, workers: int = 1) -> list[str]:
    lines: list[str] = []
    for user in gateway_users(workers):
        lines += [f"user {user}", f"topic read {prefix}/#", f"topic write {prefix}/+/+/ack", ""]
    # models: the gateway's model update publisher (gateway/model_routes.py), its own user
    # because mosquitto.conf binds a client id to its user name
    return [*lines, "user hq", f"topic write {prefix}/+/+/config",
            f"topic read {prefix}/+/+/status", "", "user models",
            f"topic write {prefix}/+/+/model"]


def read_devices(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for n, row in enumerate(rows, start=2):
        for key in ("store_id", "device_id"):
            value = (row.get(key) or "").strip()
            if not IDENT.match(value):
                sys.exit(f"{path}:{n}: {key} {value!r} must match {IDENT.pattern}")
            row[key] = value
    twice = [u for u, k in Counter(device_user(r["store_id"], r["device_id"])
                                   for r in rows).items() if k > 1]
    if twice:
        sys.exit(f"{path}: device listed more than once: {', '.join(sorted(twice))}")
    return rows


def previous_secrets(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["user"]: r["password"] for r in csv.DictReader(f)}


def device_passwords(rows: list[dict[str, str]], known: dict[str, str]) -> list[tuple[str, str]]:
    """(user, password) per device: the CSV's, else the previous run's. A device provisioned
    under its legacy name keeps that password (only its user name changes) unless the
    legacy name was ambiguous in this CSV."""
    legacy = Counter(legacy_user(r["store_id"], r["device_id"]) for r in rows)
    creds = []
    for row in rows:
        user, old = device_user(row["store_id"], row["device_id"]), \
            legacy_user(row["store_id"], row["device_id"])
        previous = known.get(user) or (known.get(old) if legacy[old] == 1 else None)
        creds.append((user, (row.get("password") or "").strip() or previous
                      or secrets.token_urlsafe(24)))
    return creds


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("devices", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--prefix", default="storesense/v1")
    ap.add_argument("--gateway-workers", type=int, default=1,
                    help="the gateway's [ingest] workers: users gateway, gateway-1, ...")
    ap.add_argument("--mosquitto-passwd", default="mosquitto_passwd")
    args = ap.parse_args(argv)
    if args.gateway_workers < 1:
        sys.exit("--gateway-workers must be >= 1")
    args.outdir.mkdir(parents=True, exist_ok=True)
    rows = read_devices(args.devices)
    known = previous_secrets(args.outdir / "secrets.csv")
    # Rerunning (to add a device) must not rotate anyone's password. One gateway.toml serves
    # all its ingest processes, so the worker users share the gateway's password.
    gateway_pw = known.get("gateway") or secrets.token_urlsafe(24)
    creds = [(u, gateway_pw) for u in gateway_users(args.gateway_workers)]
    creds += [("hq", known.get("hq") or secrets.token_urlsafe(24))]
    creds += [("models", known.get("models") or secrets.token_urlsafe(24))]
    creds += device_passwords(rows, known)
    acl = service_acl(args.prefix, args.gateway_workers)
    for row in rows:
        cams = [c.strip() for c in (row.get("cameras") or "").split(";") if c.strip()]
        acl += ["", *device_acl(args.prefix, row["store_id"], row["device_id"], cams)]
    (args.outdir / "acl").write_text("\n".join(acl) + "\n", encoding="utf-8")
    passwd = args.outdir / "passwd"
    write_private(passwd, "".join(f"{u}:{p}\n" for u, p in creds))
    write_private(args.outdir / "secrets.csv",
                  "user,password\n" + "".join(f"{u},{p}\n" for u, p in creds))
    # -U hashes a plain "user:password" file in place (PBKDF2-SHA512 in Mosquitto 2).
    subprocess.run([args.mosquitto_passwd, "-U", str(passwd)], check=True)
    print(f"wrote {len(creds)} users to {passwd}, ACL to {args.outdir / 'acl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

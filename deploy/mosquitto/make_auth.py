#!/usr/bin/env python3
"""Generate Mosquitto's password file and ACL for storesense devices from a CSV.

    python3 make_auth.py devices.csv OUTDIR [--prefix storesense/v1]

devices.csv has a header with at least ``store_id,device_id``; optional columns:
``password`` (else the one in OUTDIR/secrets.csv from a previous run, else a new one) and
``cameras`` (camera ids separated by ``;``; empty means any camera id of the device's
store). Writes to OUTDIR:

    passwd          hashed with mosquitto_passwd -U (Debian package "mosquitto")
    acl             one block per user
    secrets.csv     user,password for provisioning each device's edge.toml (mode 600)

Users: ``<store_id>.<device_id>`` per device, may write only its store's aggregates and its
own status and read only its cameras' config; ``gateway`` reads everything; ``hq`` writes
config and reads status. Stdlib only, so it runs on the broker host as is.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def device_acl(prefix: str, store: str, device: str, cameras: list[str]) -> list[str]:
    cams = cameras or ["+"]
    lines = [f"user {store}.{device}"]
    lines += [f"topic write {prefix}/{store}/{cam}/agg" for cam in cams]
    lines.append(f"topic write {prefix}/{store}/{device}/status")
    lines += [f"topic read {prefix}/{store}/{cam}/config" for cam in cams]
    return lines


def service_acl(prefix: str) -> list[str]:
    return [
        "user gateway", f"topic read {prefix}/#", "",
        "user hq", f"topic write {prefix}/+/+/config", f"topic read {prefix}/+/+/status",
    ]


def read_devices(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for n, row in enumerate(rows, start=2):
        for key in ("store_id", "device_id"):
            value = (row.get(key) or "").strip()
            if not IDENT.match(value):
                sys.exit(f"{path}:{n}: {key} {value!r} must match {IDENT.pattern}")
            row[key] = value
    return rows


def previous_secrets(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["user"]: r["password"] for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("devices", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--prefix", default="storesense/v1")
    ap.add_argument("--mosquitto-passwd", default="mosquitto_passwd")
    args = ap.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    acl = service_acl(args.prefix)
    known = previous_secrets(args.outdir / "secrets.csv")

    def password(user: str, given: str = "") -> str:
        # Rerunning (to add a device) must not rotate everyone else's password.
        return given.strip() or known.get(user) or secrets.token_urlsafe(24)

    creds = [("gateway", password("gateway")), ("hq", password("hq"))]
    for row in read_devices(args.devices):
        cams = [c.strip() for c in (row.get("cameras") or "").split(";") if c.strip()]
        acl += ["", *device_acl(args.prefix, row["store_id"], row["device_id"], cams)]
        user = f"{row['store_id']}.{row['device_id']}"
        creds.append((user, password(user, row.get("password") or "")))
    (args.outdir / "acl").write_text("\n".join(acl) + "\n", encoding="utf-8")
    passwd = args.outdir / "passwd"
    secrets_csv = args.outdir / "secrets.csv"
    for path, text in (
        (passwd, "".join(f"{u}:{p}\n" for u, p in creds)),
        (secrets_csv, "user,password\n" + "".join(f"{u},{p}\n" for u, p in creds)),
    ):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    # -U hashes a plain "user:password" file in place (PBKDF2-SHA512 in Mosquitto 2).
    subprocess.run([args.mosquitto_passwd, "-U", str(passwd)], check=True)
    print(f"wrote {len(creds)} users to {passwd}, ACL to {args.outdir / 'acl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

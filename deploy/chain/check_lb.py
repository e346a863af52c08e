"""Check deploy/chain/haproxy.cfg: two real gateways on one PostgreSQL behind HAProxy.

    python deploy/chain/check_lb.py      (needs haproxy, mosquitto and postgresql installed)

Starts a throwaway PostgreSQL (gateway/pg_local.py) and Mosquitto, registers a store and an
hq token, starts two `storesense gateway run` processes (API on, one shared subscription
group), then HAProxy with the file as written (ports from the environment). Asks the
store list through the load balancer, kills one gateway with SIGKILL, and asks again: every
answer must be 200 and the same. Prints JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from gateway.auth import create_token
from gateway.pg_local import PostgresServer
from gateway.storage import Storage
from storesense.broker import Mosquitto, free_port

HERE = Path(__file__).resolve().parent


def _wait(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as pg, \
            Mosquitto(Path(tmp) / "broker") as broker:
        url = pg.new_database_url()
        s = Storage(url)
        s.upsert_stores([{"store_id": "s1", "name": "S1", "timezone": "UTC"}])
        token = create_token(s, "hq", "hq")
        s.close()
        ports = [free_port(), free_port()]
        gateways = []
        for i, port in enumerate(ports):
            conf = Path(tmp) / f"gw{i}.toml"
            conf.write_text(f'database_url = "{url}"\n[mqtt]\nport = {broker.port}\n'
                            f'client_id = "lb-gw{i}"\nshared_group = "lb"\n[api]\n'
                            f'port = {port}\n')
            gateways.append(subprocess.Popen(
                [sys.executable, "-m", "storesense.cli", "gateway", "run", "--config",
                 str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        lb_port = free_port()
        env = {**os.environ, "LB_PORT": str(lb_port), "GW1_PORT": str(ports[0]),
               "GW2_PORT": str(ports[1])}
        lb = subprocess.Popen(["haproxy", "-f", str(HERE / "haproxy.cfg")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for port in ports:
                _wait(f"http://127.0.0.1:{port}/api/v1/health")
            base = f"http://127.0.0.1:{lb_port}/api/v1"
            _wait(f"{base}/health")
            h = {"Authorization": f"Bearer {token}"}
            before = [httpx.get(f"{base}/stores", headers=h, timeout=5) for _ in range(10)]
            gateways[0].send_signal(signal.SIGKILL)
            gateways[0].wait(10)
            # at once, before the health checks noticed: redispatch sends these to gw2
            after = [httpx.get(f"{base}/stores", headers=h, timeout=5) for _ in range(10)]
            codes = [r.status_code for r in before + after]
            bodies = {r.text for r in before + after}
            print(json.dumps({"answers": len(codes), "status": sorted(set(codes)),
                              "distinct_bodies": len(bodies),
                              "ok": set(codes) == {200} and len(bodies) == 1}))
            return 0 if set(codes) == {200} and len(bodies) == 1 else 1
        finally:
            lb.terminate()
            for g in gateways:
                if g.poll() is None:
                    g.terminate()
                g.wait(15)


if __name__ == "__main__":
    raise SystemExit(main())

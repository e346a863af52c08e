"""How long the HQ overview takes to render for many stores in headless Chromium.

    python -m dashboards.bench --stores 200 --days 8 --runs 5

Seeds a real gateway (SQLite, uvicorn) with ``--stores`` stores cloned from the demo stores
and ``--days`` of hourly simulated windows, signs in with an HQ token and loads the overview
``--runs`` times. The figure is navigation start to the first complete render (all API calls
answered, KPIs, trend chart, ranking table and device health drawn), read from the page's
own ``performance.now()``; the overview API call alone is timed with httpx for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dashboards.browser import chromium, signed_in_context
from dashboards.demo import demo_gateway, many_stores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="time the HQ overview render")
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--days", type=int, default=8, help="days of simulated history")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, \
            demo_gateway(Path(tmp) / "gateway.db", stores=many_stores(args.stores),
                         days=args.days) as gw, chromium() as browser:
        print(f"seeded {args.stores} stores x {args.days} days in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        api_ms = []
        with gw.client(gw.hq_token) as api:
            for _ in range(args.runs):
                t = time.perf_counter()
                ov = api.get("/overview").raise_for_status().json()
                api_ms.append((time.perf_counter() - t) * 1000)
        assert len(ov["stores"]) == args.stores, len(ov["stores"])
        render_ms = []
        ctx = signed_in_context(browser, gw.hq_token, "en")
        page = ctx.new_page()
        page.goto(gw.base_url + "/")  # warm-up: first load of the static files
        page.wait_for_selector("body[data-state=ready]", timeout=60_000)
        first_ms = float(page.evaluate("document.body.dataset.readyMs"))
        for _ in range(args.runs):
            page.reload()
            page.wait_for_selector("body[data-state=ready]", timeout=60_000)
            rows = page.locator("#ranking tbody tr").count()
            assert rows == args.stores, rows
            render_ms.append(float(page.evaluate("document.body.dataset.readyMs")))
        ctx.close()
    print(f"overview, {args.stores} stores: render median {statistics.median(render_ms):.0f} ms, "
          f"max {max(render_ms):.0f} ms over {args.runs} runs (navigation start to complete "
          f"render, headless Chromium); /api/v1/overview alone median "
          f"{statistics.median(api_ms):.0f} ms; first (cold) load {first_ms:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

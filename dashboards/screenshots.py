"""Screenshots of every page in English and Chinese, from a real gateway with demo data.

    python -m dashboards.screenshots docs/screenshots

Writes overview-en.png, overview-zh.png, store-en.png, ... heatmap-zh.png, signin-en.png and
signin-zh.png.
Chinese text needs a CJK font installed (Debian: fonts-noto-cjk).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from dashboards.browser import READY, chromium, signed_in_context
from dashboards.demo import FLOORPLAN_STORE, demo_gateway

PAGES = (("overview", "/"), ("store", f"/store.html?store={FLOORPLAN_STORE}"),
         ("heatmap", f"/heatmap.html?store={FLOORPLAN_STORE}"))
LANGS = (("en", "en"), ("zh", "zh-CN"))


def take(out: Path, days: int = 21) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp, \
            demo_gateway(Path(tmp) / "gateway.db", days=days) as gw, chromium() as browser:
        for suffix, lang in LANGS:
            ctx = signed_in_context(browser, gw.hq_token, lang)
            page = ctx.new_page()
            for name, path in PAGES:
                page.goto(gw.base_url + path)
                page.wait_for_selector(READY, timeout=20_000)
                target = out / f"{name}-{suffix}.png"
                page.screenshot(path=str(target), full_page=True)
                written.append(target)
            ctx.close()
        for suffix, lang in LANGS:
            ctx = signed_in_context(browser, None, lang, height=700)
            page = ctx.new_page()
            page.goto(gw.base_url + "/")
            page.wait_for_selector(READY)
            target = out / f"signin-{suffix}.png"
            page.screenshot(path=str(target))
            written.append(target)
            ctx.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path, help="directory for the PNG files")
    parser.add_argument("--days", type=int, default=21, help="days of simulated history")
    args = parser.parse_args(argv)
    for p in take(args.out, args.days):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())

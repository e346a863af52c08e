"""The ``storesense`` console script.

Each command lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only for the command being run, so
``storesense --help`` is instant and a gateway host never imports OpenCV.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from storesense import __version__
from storesense.errors import StoresenseError

# command path -> (module, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("analyze",): ("edge.evaluation.analyze",
                   "run the pipeline over a video file, write line crossings"),
    ("eval",): ("edge.evaluation.evaluate", "score the pipeline on a MOT-format sequence"),
    ("mosaic",): ("edge.evaluation.mosaic",
                  "a denser MOT sequence of smaller people, tiled from a real one"),
    ("edge", "run"): ("edge.node.service", "run an edge node (cameras -> analytics -> MQTT)"),
    ("gateway", "run"): ("gateway.service", "run the gateway (MQTT ingest, API, dashboards)"),
    ("gateway", "token"): ("gateway.tokens", "create, list or revoke API tokens"),
    ("gateway", "import-stores"): ("gateway.registry", "import the stores registry from CSV/JSON"),
    ("gateway", "import-pos"): ("gateway.pos", "import POS hours (transactions, members) from CSV"),
    ("gateway", "import-weather"): ("gateway.weather", "import daily weather per store from CSV"),
    ("gateway", "replay-dead-letters"): ("gateway.replay",
                                         "store windows dead-lettered before their store "
                                         "was registered"),
    ("gateway", "homography"): ("gateway.homography",
                                "a camera's image -> floor-plan matrix from four point pairs"),
    ("demo",): ("storesense.demo", "broker + gateway + dashboards + edge nodes on one machine"),
    ("bench", "edge"): ("edge.evaluation.bench", "edge frames per second per core and memory"),
    ("bench", "live"): ("edge.evaluation.bench_live",
                        "the pipeline as a node runs it on a sequence sent live: lag, frames "
                        "analysed, counts against the truth"),
    ("bench", "gateway"): ("gateway.bench", "messages per second through broker and gateway"),
    ("bench", "query"): ("gateway.bench_query", "HQ overview query latency at chain scale"),
    ("models",): ("models.registry", "fetch or verify the pinned ONNX models"),
}


def _groups() -> dict[str, list[tuple[str, ...]]]:
    groups: dict[str, list[tuple[str, ...]]] = {}
    for path in COMMANDS:
        groups.setdefault(path[0], []).append(path)
    return groups


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {' '.join(p):16} {h}" for p, (_, h) in COMMANDS.items()]
    return argparse.ArgumentParser(
        prog="storesense",
        description="In-store edge sensing and foot-traffic service.",
        epilog="commands:\n" + "\n".join(lines) + "\n\n`storesense COMMAND --help` for details.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _find_command(argv: Sequence[str]) -> tuple[tuple[str, ...], list[str]] | None:
    for n in (2, 1):
        key = tuple(argv[:n])
        if key in COMMANDS:
            return key, list(argv[n:])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    top.add_argument("--version", action="version", version=f"storesense {__version__}")
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbose = "-v" in argv or "--verbose" in argv
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    found = _find_command(argv)
    if found is None:
        if argv and argv[0] in _groups():
            subs = ", ".join(" ".join(p) for p in _groups()[argv[0]])
            top.error(f"{argv[0]!r} needs a subcommand: {subs}")
        top.parse_args(argv or ["--help"])
        top.error(f"unknown command {' '.join(argv[:2])!r}")
    path, rest = found
    module_name, help_text = COMMANDS[path]
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog="storesense " + " ".join(path), description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except StoresenseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

"""edge.toml validation: the shipped example loads; mistakes stop `storesense edge run` with
exit code 2 and one line naming the field and value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.node.config import load_edge_config
from storesense.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "edge.example.toml"

MINIMAL = """
store_id = "s1"
device_id = "d1"
[broker]
host = "localhost"
[[cameras]]
camera_id = "cam1"
source = "video.mp4"
"""


def test_shipped_example_is_valid() -> None:
    cfg = load_edge_config(EXAMPLE)
    assert [c.camera_id for c in cfg.cameras] == ["entrance", "checkout"]
    assert cfg.broker.tls is not None


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("[outbox]\nmax_mesages = 5\n", "outbox.max_mesages"),
        ("[outbox]\nreplay_rate = -1\n", "outbox.replay_rate"),
        ("[[cameras]]\ncamera_id = \"cam1\"\nsource = \"b.mp4\"\n", "camera_id must be unique"),
        ("[[cameras]]\ncamera_id = \"bad id\"\nsource = 0\n", "cameras.1.camera_id"),
    ],
)
def test_mistakes_name_the_field(tmp_path: Path, extra: str, named: str) -> None:
    p = tmp_path / "edge.toml"
    p.write_text(MINIMAL + extra)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_edge_config(p)


@pytest.mark.parametrize(
    ("broker_lines", "named"),
    [
        ("port = 70000", ["broker.port", "70000"]),
        ('username = "u"\npassword_file = "{tmp}/nope"', ["broker.password_file", "nope"]),
        ('[broker.tls]\nca_file = "{tmp}/ca.crt"', ["broker.tls.ca_file", "ca.crt"]),
    ],
)
def test_edge_run_exits_2_with_one_line(
    tmp_path: Path, broker_lines: str, named: list[str]
) -> None:
    p = tmp_path / "edge.toml"
    broker = 'host = "localhost"\n' + broker_lines.format(tmp=tmp_path)
    text = MINIMAL.replace('store_id = "s1"', f'store_id = "s1"\nstate_dir = "{tmp_path}"')
    p.write_text(text.replace('host = "localhost"', broker))
    proc = subprocess.run(
        [sys.executable, "-m", "storesense.cli", "edge", "run", "--config", str(p)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(n in lines[0] for n in named), lines

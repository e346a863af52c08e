"""Status building from real parts: a real frame source, a real outbox, this process."""

from __future__ import annotations

from pathlib import Path

from edge.node.outbox import Outbox
from edge.node.status import ProcessProbe, camera_status, device_status, offline_status
from edge.vision.sources import open_source
from tests.edge_node.helpers import window


def test_full_outbox_and_missing_camera_show_in_status(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", max_messages=2)
    for i in range(5):
        ob.put("t", window("s1", "cam1", i))
    src = open_source(str(tmp_path / "gone.mp4"))
    assert src.read(timeout=0.3) is None  # the source tries to open and reports why not
    try:
        cam = camera_status("cam1", src, lag_s=float("nan"), config_version="v3")
        st = device_status("s1", "d1", probe=ProcessProbe(), outbox=ob.stats(),
                           cameras=[cam], models=[])
    finally:
        src.close()
    assert (st.outbox_depth, st.outbox_dropped, st.outbox_full) == (2, 3, True)
    c = st.cameras[0]
    assert c.state == "reconnecting" and "gone.mp4" in (c.last_error or "")
    assert c.lag_s == 0.0 and c.config_version == "v3"  # NaN lag is not sent as NaN
    assert st.state == "online" and st.rss_mb > 1 and st.uptime_s >= 0


def test_offline_status_claims_nothing_but_offline() -> None:
    st = offline_status("s1", "d1")
    assert st.state == "offline" and st.cameras == [] and st.outbox_depth == 0

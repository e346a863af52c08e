"""A camera for benchmarks and tests: a video file sent as MPEG-TS over TCP, paced in real time.

``replay(video, seconds)`` starts ``python -m edge.evaluation.live_replay VIDEO PORT SECONDS``
and yields its URL. The server listens on 127.0.0.1, and once a reader connects sends the
file's packets (looping it), each when it is due, as a camera sends frames whether or not
anyone keeps up; it stops after SECONDS of video. Packets are copied, not re-encoded: the
reader decodes the file's own H.264.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av

from storesense.broker import free_port


def serve(video: str, port: int, seconds: float) -> None:
    out = av.open(f"tcp://127.0.0.1:{port}?listen=1", "w", format="mpegts")
    src = av.open(video)
    stream = src.streams.video[0]
    sent = out.add_stream_from_template(stream)
    tb, sent_tb = stream.time_base, sent.time_base
    if stream.duration is None or tb is None or sent_tb is None:
        raise ValueError(f"{video}: no duration or time base to pace and loop it by")
    loop_s = float(stream.duration * tb)
    start: float | None = None
    loops = 0
    while True:
        src.seek(0)
        for packet in src.demux(stream):
            if packet.pts is None:
                continue
            media = loops * loop_s + float(packet.pts * tb)
            if media > seconds:
                out.close()
                return
            start = time.monotonic() - media if start is None else start
            time.sleep(max(0.0, start + media - time.monotonic()))
            shift = round(loops * loop_s / float(sent_tb))
            packet.stream = sent
            packet.pts += shift
            packet.dts = None if packet.dts is None else packet.dts + shift
            out.mux(packet)
        loops += 1


@contextmanager
def replay(video: str | Path, seconds: float) -> Iterator[str]:
    """The URL of ``video`` sent live for ``seconds``; the sender is stopped on exit."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edge.evaluation.live_replay", str(video),
                             str(port), str(seconds)])
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))

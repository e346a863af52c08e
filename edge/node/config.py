"""The edge node's configuration file (edge.toml), validated once at start.

Every section forbids unknown keys so a typo fails at start with the field named, instead of
a node silently running for months with a default. Loading reads the file and nothing else;
relative paths are kept as written and resolved by the node against the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.registry import AUTO_DETECTORS, REID_MODEL
from storesense.config import load_toml
from storesense.errors import ConfigError
from storesense.schema import AnalyticsConfig, Ident
from storesense.topics import DEFAULT_PREFIX


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Section):
    ca_file: Path = Field(description="CA certificate that signed the broker's certificate")
    cert_file: Path | None = Field(None, description="client certificate (mutual TLS)")
    key_file: Path | None = Field(None, description="client private key (mutual TLS)")
    insecure: bool = Field(
        False, description="skip the broker host name check; only for lab setups"
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file must be given together")
        return self


class BrokerConfig(_Section):
    host: str = Field(min_length=1, description="broker host name or address")
    port: int = Field(8883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT 5, whose PUBACK says when the broker refuses a window (it is "
        "then kept); 3.1.1 only for brokers without 5, such as the demo's embedded fallback "
        "broker: a refused window then looks delivered and is lost")
    username: str | None = Field(None, min_length=1, max_length=128)
    password: str | None = Field(None, max_length=256, description="prefer password_file")
    password_file: Path | None = Field(
        None, description="file holding the password (first line), readable by the service only"
    )
    tls: TlsConfig | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    reconnect_min_s: float = Field(1.0, ge=0.1, le=60.0)
    reconnect_max_s: float = Field(60.0, ge=1.0, le=3600.0)
    topic_prefix: str = Field(DEFAULT_PREFIX, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _one_password_source(self) -> BrokerConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give broker.password or broker.password_file, not both")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(
                f"broker.reconnect_max_s {self.reconnect_max_s} is below "
                f"reconnect_min_s {self.reconnect_min_s}"
            )
        return self


class OutboxConfig(_Section):
    path: Path | None = Field(None, description="SQLite file; default <state_dir>/outbox.sqlite")
    max_messages: int = Field(
        50_000, ge=10, le=10_000_000,
        description="size bound; when reached the oldest windows are dropped and counted",
    )
    max_mb: float = Field(
        1024.0, ge=1.0, le=1_000_000.0,
        description="size bound on stored payloads in MB (a busy 60 s window is ~25 kB)",
    )
    replay_rate: float = Field(
        50.0, ge=0.0, le=100_000.0,
        description="messages per second sent from the outbox; 0 = unthrottled",
    )
    max_inflight: int = Field(20, ge=1, le=1000, description="unacknowledged publishes at once")
    confirm: bool = Field(
        True, description="keep each window until the gateway confirms it committed it "
        "(.../ack, docs/mqtt.md); false: delete it at the broker's PUBACK (a broker crash "
        "can then lose it). Needs a gateway that confirms and an ACL that lets the device "
        "read its cameras' ack topics (deploy/mosquitto/make_auth.py)")
    confirm_timeout_s: float = Field(
        300.0, ge=1.0, le=86_400.0,
        description="send an unconfirmed window again after this long (doubling while "
        "nothing is confirmed); sooner once a later window is confirmed")
    heatmap_packed: bool = Field(
        False, description="send heatmaps packed (4 bytes a cell, base64; schema "
        "WindowAggregatePacked): less gateway CPU a window, more bytes stored on PostgreSQL "
        "(docs/gateway.md). Only once every gateway reads them (from 2026-12-06 on): an older "
        "gateway dead-letters a packed window")




class DetectorConfig(_Section):
    model: str = Field(
        "auto", min_length=1, max_length=64,
        description="auto: each camera runs yolox_nano, or bytetrack_nano_mot17 where people "
        "are dense or small (chosen from what it sees); a model name pins it (yolox_nano keeps "
        "to the detector trained on open data: bytetrack's training data are non-commercial)",
    )
    threads: int = Field(1, ge=1, le=64, description="onnxruntime intra-op threads")

    def model_names(self) -> list[str]:
        """The models a camera loads: its detector(s) and the re-identification model."""
        return [*(AUTO_DETECTORS if self.model == "auto" else (self.model,)), REID_MODEL]


class InstallerConfig(_Section):
    """The installer's page on the edge box (edge/node/installer.py): store LAN only."""

    host: str = Field(
        min_length=1, max_length=255,
        description="address to listen on: the box's address on the store LAN, never one "
        "reachable from outside the store (the page shows live camera pictures)")
    port: int = Field(8090, ge=0, le=65535, description="0 picks a free port (tests)")
    username: str = Field("installer", min_length=1, max_length=64, pattern=r"^[^:\s]+$")
    password_hash_file: Path = Field(
        description="file with the password's scrypt hash, written by `python -m "
        "edge.node.installer hash-password FILE`; there is no default password")
    snapshot_width: int = Field(960, ge=160, le=3840,
                                description="widest snapshot sent to the page, in pixels")
    cert_file: Path | None = Field(
        None, description="TLS certificate: the page over https (the password then never "
        "crosses the LAN in clear); e.g. from deploy/mosquitto/make_tls.sh")
    key_file: Path | None = Field(None, description="its private key")

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> InstallerConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("installer.cert_file and installer.key_file must be given together")
        return self


class ModelUpdateConfig(_Section):
    """Detector models HQ sends (edge/node/model_update.py)."""

    gateway_url: str = Field(
        min_length=8, max_length=512, pattern=r"^https?://[^/?#\s]+/?$",
        description="the gateway a model is fetched from; a model message names only a "
        "path on it, so the broker cannot send the box to another host")
    ca_file: Path | None = Field(None, description="CA for an https gateway")
    max_bytes: int = Field(100 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024,
                           description="largest model file accepted")
    timeout_s: float = Field(60.0, ge=1.0, le=3600.0, description="download timeout")
    check_frames: int = Field(
        30, ge=5, le=10_000,
        description="detector frames a new model is judged on before it is kept")
    collapse_ratio: float = Field(
        0.25, ge=0.0, le=1.0,
        description="rolled back if its detections per frame fall below this share of the "
        "previous model's (docs/operations.md says on which data this was chosen)")
    min_rate: float = Field(
        0.5, ge=0.0, le=1000.0,
        description="the previous model's detections per frame needed to judge at all: "
        "an empty store cannot tell a blind model from a quiet hour")


class CameraConfig(_Section):
    camera_id: Ident
    source: str | int = Field(description="RTSP URL, video file path or USB camera index")
    loop: bool = Field(False, description="restart a video file at its end (demo, tests)")
    # A file not read in real time is dated from its recording start (modification time
    # minus duration), see edge/vision/sources.py.
    realtime: bool = Field(False, description="pace a video file at its frame rate")
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)


class EdgeConfig(_Section):
    store_id: Ident
    device_id: Ident
    state_dir: Path = Field(
        Path("/var/lib/storesense"),
        description="outbox and last applied remote configs live here",
    )
    models_dir: Path | None = None
    status_interval_s: float = Field(30.0, ge=0.2, le=3600.0)
    demographics: bool = Field(True, description="load the face and age/gender models")
    broker: BrokerConfig
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    installer: InstallerConfig | None = Field(
        None, description="the installer's local page; off unless configured")
    model_update: ModelUpdateConfig | None = Field(
        None, description="accept detector models from HQ; off unless configured")
    cameras: Annotated[list[CameraConfig], Field(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _unique_camera_ids(self) -> EdgeConfig:
        ids = [c.camera_id for c in self.cameras]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"cameras: camera_id must be unique, repeated: {dup}")
        return self

    @property
    def outbox_path(self) -> Path:
        return self.outbox.path or self.state_dir / "outbox.sqlite"

    @property
    def remote_config_dir(self) -> Path:
        return self.state_dir / "remote_config"

    @property
    def model_dir(self) -> Path:
        return self.state_dir / "models"


def load_edge_config(path: str | Path) -> EdgeConfig:
    """Parse and validate edge.toml; raises ConfigError naming the field and value."""
    return load_toml(path, EdgeConfig)


def read_password(broker: BrokerConfig) -> str | None:
    """The broker password from the config or its file (read when the client is built)."""
    if broker.password_file is None:
        return broker.password
    try:
        lines = broker.password_file.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"broker.password_file: cannot read {broker.password_file}: {e}") from e
    if not lines or not lines[0].strip():
        raise ConfigError(f"broker.password_file: {broker.password_file} is empty")
    return lines[0].strip()

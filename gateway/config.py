"""gateway.toml: validated at start, every field ranged and described (see
deploy/gateway.example.toml). Loading reads the file and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.alerts import AlertSettings
from gateway.config_publisher import ConfigPublishSettings
from gateway.db import check_dsn
from gateway.deadletters import DeadLetterSettings
from gateway.feed import FeedConfig
from gateway.plausible import CheckSettings
from gateway.retention import RetentionSettings
from storesense.config import load_toml
from storesense.topics import DEFAULT_PREFIX


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(Section):
    host: str = Field("127.0.0.1", description="broker host")
    port: int = Field(1883, ge=1, le=65535)
    client_id: str = Field(
        "storesense-gateway", min_length=1, max_length=128,
        description="fixed id: the broker keeps this persistent session and its queued "
        "messages while the gateway is down; each gateway process needs its own")
    protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT 5 (session expiry, receive maximum) or 3.1.1 for brokers "
        "without 5, such as the demo's embedded fallback broker")
    username: str | None = None
    password: str | None = None
    topic_prefix: str = Field(DEFAULT_PREFIX, min_length=1)
    shared_group: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="subscribe via $share/<group>/... so gateways in the group split the load")
    session_expiry_s: int = Field(
        7 * 86400, ge=0, le=0xFFFFFFFF,
        description="how long the broker keeps the session (and queues) while disconnected")
    keepalive_s: int = Field(30, ge=5, le=3600)
    receive_maximum: int = Field(
        65535, ge=1, le=65535,
        description="unacknowledged QoS 1 messages the broker may send at once; acks wait "
        "for the SQLite commit, so this must exceed a batch")


class IngestSettings(Section):
    batch_max: int = Field(
        20_000, ge=1, le=100_000,
        description="messages per transaction at most; a backlog fills it, a trickle commits "
        "every batch_ms. Big batches touch each store's index and rollup pages once for many "
        "windows (docs/gateway.md)")
    batch_ms: float = Field(50.0, ge=1.0, le=5000.0,
                            description="longest wait to fill a batch before committing")
    workers: int = Field(
        1, ge=1, le=64,
        description="ingest processes (validation is CPU-bound, one core each); more than 1 "
        "needs mqtt.shared_group; worker i uses client id '<client_id>-w<i>'")
    gil_switch_ms: float = Field(
        1.0, ge=0.1, le=50.0,
        description="Python's thread switch interval in each ingest process. SQLite lets go "
        "of the GIL at every row it writes, and with the default 5 ms the commit thread then "
        "waits behind paho's parsing; 1 ms drained a backlog ~20 % faster (docs/gateway.md)")


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port")
    serve_dashboards: bool = True
    # request bounds, enforced before a body is read (gateway/http_limits.py)
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024,
                                description="largest JSON request body (413 beyond)")
    max_upload_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024,
        description="largest file upload: floor plan, store or POS import (413 beyond)")
    body_timeout_s: float = Field(
        30.0, gt=0.0, le=3600.0, description="a request's headers, then its body, must each "
        "arrive within this: a late body is answered 408, late headers close the connection")
    max_header_bytes: int = Field(16 * 1024, ge=4096, le=1024 * 1024,
                                  description="request line and headers, at most")
    timeout_keep_alive_s: int = Field(5, ge=1, le=600,
                                      description="idle keep-alive connections close after")
    limit_concurrency: int = Field(1000, ge=1, le=100_000,
                                   description="connections and requests at once (503 beyond)")


class ModelSettings(Section):
    """Detector models HQ uploads and sends to devices (gateway/model_routes.py)."""

    dir: Path | None = Field(None, description="where uploaded models are kept; default "
                             "<directory of db>/models")
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024,
                           description="largest model file accepted (api.max_upload_bytes "
                           "bounds the request too)")
    mqtt_username: str | None = Field(
        None, min_length=1, max_length=128, description="broker user that publishes model "
        "updates ('models' in deploy/mosquitto); default: [mqtt]'s")
    mqtt_password: str | None = Field(None, max_length=256)
    client_id: str = Field("storesense-gateway-models", min_length=1, max_length=128)


class GatewaySettings(Section):
    db: Path = Field(Path("var/gateway.db"), description="SQLite database file (the "
                     "embedded engine; unused when database_url is set)")
    database_url: str | None = Field(
        None, description="PostgreSQL instead of SQLite: postgresql://user[:password]@host"
        "[:port]/dbname (or ?host=/unix/socket/dir). Several gateways may share it "
        "(deploy/postgresql/README.md)")
    synchronous: Literal["NORMAL", "FULL"] = Field(
        "FULL", description="FULL syncs every commit (one fsync per batch) before the batch "
        "is acknowledged to the broker. NORMAL in WAL mode: a power cut may lose the last "
        "commits, already acknowledged, so never redelivered; a process crash loses nothing.")
    status_interval_s: float = Field(
        30.0, ge=0.2, le=3600.0,
        description="the edge status interval; a device silent for 3 intervals is offline")
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    feed: FeedConfig = Field(
        default_factory=FeedConfig,
        description="push to the central data platform and/or lake export; off when neither "
        "push_url nor export_dir is set")
    checks: CheckSettings = Field(
        default_factory=CheckSettings,
        description="what a window must meet to be stored: its time against the gateway's "
        "clock, its counts against what a camera can see (gateway/plausible.py)")
    dead_letters: DeadLetterSettings = Field(
        default_factory=DeadLetterSettings,
        description="how much of what is refused is kept, and for how long")
    config_publish: ConfigPublishSettings = Field(
        default_factory=ConfigPublishSettings,
        description="the connection that publishes camera configurations from HQ "
        "(gateway/config_publisher.py)")
    alerts: AlertSettings = Field(
        default_factory=AlertSettings,
        description="offline devices and cameras, outbox backlog, low traffic, occupancy "
        "over a store's limit; webhook (gateway/alerts.py)")
    models: ModelSettings = Field(default_factory=ModelSettings,
                                  description="models HQ sends to devices")

    retention: RetentionSettings = Field(
        default_factory=RetentionSettings,
        description="how long raw windows and hourly rollups are kept (gateway/retention.py)")

    @field_validator("database_url")
    @classmethod
    def _dsn(cls, v: str | None) -> str | None:
        return None if v is None else check_dsn(v)

    @property
    def database(self) -> str | Path:
        """Where the gateway's data lives: the PostgreSQL URL, else the SQLite file."""
        return self.database_url or self.db

    @model_validator(mode="after")
    def _workers_share(self) -> GatewaySettings:
        if self.ingest.workers > 1 and not self.mqtt.shared_group:
            raise ValueError("ingest.workers > 1 needs mqtt.shared_group (else every worker "
                             "would receive every message)")
        return self


def load(path: str | Path) -> GatewaySettings:
    return load_toml(path, GatewaySettings)

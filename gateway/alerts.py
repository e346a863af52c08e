"""Which alerts hold, from stored facts and a clock: pure, no database, no wall clock.

``evaluate(facts, rules, now, open_keys)`` returns the alerts to raise (hold now, not open)
and the keys to resolve (open, no longer hold). The facts are read by
gateway/alerts_facts.py; gateway/alerts_runner.py runs both every ``interval_s``.

What holds (docs/operations.md, "Alerts", says why):

- ``device_offline``: nothing heard from the device for ``offline_minutes`` (its last status,
  "online" or the broker's last will "offline", arrived that long ago by the gateway's clock),
  counted from ``Facts.hearing_since`` at the earliest: a gateway that was stopped, or cut off
  from the broker, heard nothing either, and gives every device that long to speak again
  rather than paging for the whole chain.
- ``camera_offline``: a device heard from recently says a camera has not been "ok" for
  ``offline_minutes``. The time comes from the device's own report as a duration
  (sent_at - since), plus the age of the report by the gateway's clock, so a device clock
  that is off by hours cannot raise or hide it.
- ``outbox_backlog``: a device heard from recently holds more than ``outbox_backlog``
  windows it could not send.
- ``traffic_low``: by the store's local time, today's visitors in the complete hours so far
  are below ``traffic_fraction`` x the median of the same hours on the last
  ``traffic_weeks`` same weekdays that had any windows, when that median is at least
  ``traffic_min_baseline`` (fewer visitors say nothing) and at least two such days exist.
- ``occupancy_high``: the store's occupancy now (today's visitors - exits, as the overview's
  "in store now") above the store's limit.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

KINDS = ("device_offline", "camera_offline", "outbox_backlog", "traffic_low", "occupancy_high")


class AlertSettings(BaseModel):
    """[alerts] in gateway.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    interval_s: float = Field(30.0, ge=0.1, le=3600.0, description="evaluation period")
    offline_minutes: float = Field(
        10.0, gt=0.0, le=7 * 1440.0,
        description="a device or camera silent or down this long raises an alert; at least "
        "a few status intervals (30 s by default), so one lost status does not")
    outbox_backlog: int = Field(1000, ge=1, le=10_000_000,
                                description="windows waiting in a device's outbox")
    traffic_fraction: float = Field(0.3, gt=0.0, lt=1.0,
                                    description="today below this share of the usual")
    traffic_weeks: int = Field(4, ge=2, le=12, description="same weekdays the usual is from")
    traffic_min_baseline: int = Field(
        20, ge=1, le=1_000_000, description="the usual must be at least this many visitors")
    webhook_url: str | None = Field(
        None, pattern=r"^https?://\S+$", max_length=2048,
        description="POST each raise and resolve here as JSON; none: alerts show on the page")
    webhook_timeout_s: float = Field(5.0, gt=0.0, le=120.0)
    retry_initial_s: float = Field(5.0, gt=0.0, le=3600.0,
                                   description="first retry of a failed delivery")
    retry_max_s: float = Field(600.0, gt=0.0, le=86_400.0,
                               description="retries double up to this")

    @model_validator(mode="after")
    def _retry_order(self) -> AlertSettings:
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be >= retry_initial_s")
        return self


@dataclass(frozen=True)
class CameraFact:
    camera_id: str
    state: str
    since: datetime  # device clock


@dataclass(frozen=True)
class DeviceFact:
    store_id: str
    device_id: str
    state: str
    received_at: datetime  # gateway clock
    sent_at: datetime  # device clock
    outbox_depth: int = 0
    cameras: tuple[CameraFact, ...] = ()


@dataclass(frozen=True)
class TrafficFact:
    """Visitors in the same complete local hours of today and of earlier same weekdays."""

    store_id: str
    local_day: str
    hours: int  # complete local hours counted (0..24)
    today: int
    usual: tuple[int, ...]  # one per earlier same weekday that had windows, newest first


@dataclass(frozen=True)
class OccupancyFact:
    store_id: str
    occupancy: int
    limit: int


@dataclass(frozen=True)
class Facts:
    devices: tuple[DeviceFact, ...] = ()
    traffic: tuple[TrafficFact, ...] = ()
    occupancy: tuple[OccupancyFact, ...] = ()
    # since when the gateway has been connected to the broker without a break (None: unknown)
    hearing_since: datetime | None = None


@dataclass(frozen=True)
class Alert:
    kind: str
    store_id: str
    subject: str  # device, device/camera, or the store itself
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.store_id}:{self.subject}"


@dataclass(frozen=True)
class Changes:
    raised: tuple[Alert, ...] = ()
    resolved: tuple[str, ...] = ()


def evaluate(facts: Facts, rules: AlertSettings, now: datetime,
             open_keys: set[str]) -> Changes:
    holding = {a.key: a for a in holds(facts, rules, now)}
    return Changes(tuple(a for k, a in holding.items() if k not in open_keys),
                   tuple(sorted(k for k in open_keys if k not in holding)))


def holds(facts: Facts, rules: AlertSettings, now: datetime) -> list[Alert]:
    out: list[Alert] = []
    for d in facts.devices:
        out += device_alerts(d, rules, now, facts.hearing_since)
    out += [a for t in facts.traffic if (a := traffic_alert(t, rules)) is not None]
    out += [Alert("occupancy_high", o.store_id, o.store_id,
                  {"occupancy": o.occupancy, "limit": o.limit})
            for o in facts.occupancy if o.occupancy > o.limit]
    return out


def device_alerts(d: DeviceFact, rules: AlertSettings, now: datetime,
                  hearing_since: datetime | None = None) -> list[Alert]:
    limit = timedelta(minutes=rules.offline_minutes)
    age = now - d.received_at  # of the device's last status
    silent = now - max(d.received_at, hearing_since or d.received_at)
    if silent >= limit:
        return [Alert("device_offline", d.store_id, d.device_id,
                      {"last_seen": _text(d.received_at), "state": d.state,
                       "minutes": round(silent.total_seconds() / 60, 1)})]
    out = []
    if d.outbox_depth > rules.outbox_backlog:
        out.append(Alert("outbox_backlog", d.store_id, d.device_id,
                         {"outbox_depth": d.outbox_depth, "threshold": rules.outbox_backlog}))
    for c in d.cameras:
        # a duration on the device's clock, aged by the gateway's: immune to a clock offset
        down = max(d.sent_at - c.since, timedelta(0)) + max(age, timedelta(0))
        if c.state != "ok" and down >= limit:
            out.append(Alert("camera_offline", d.store_id, f"{d.device_id}/{c.camera_id}",
                             {"state": c.state, "minutes": round(down.total_seconds() / 60, 1)}))
    return out


def traffic_alert(t: TrafficFact, rules: AlertSettings) -> Alert | None:
    if t.hours == 0 or len(t.usual) < 2:
        return None
    usual = statistics.median(t.usual)
    if usual < rules.traffic_min_baseline or t.today >= rules.traffic_fraction * usual:
        return None
    # one alert per store and day: a new day starts a new comparison
    return Alert("traffic_low", t.store_id, t.local_day,
                 {"today": t.today, "usual": usual, "hours": t.hours,
                  "fraction": rules.traffic_fraction, "weeks": len(t.usual)})


def _text(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")

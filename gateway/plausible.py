"""Is a schema-valid window physically possible, and is its time believable?

The schema (storesense/schema.py) says what a window may look like; this says what a camera
can have seen, judged against the gateway's own clock, since a device's clock may be wrong
and a device may be hostile. A window outside these bounds is dead-lettered with the reason:
one from the year 9999 once stopped every store's ingest (its local hour overflowed in the
rollup), and a million visitors a minute would poison every report it is summed into.

Cheap on purpose: a few comparisons per window on the ingest hot path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from gateway import heat_cells
from storesense.schema import AnalyticsConfig, DeviceStatus, WindowAggregate


def _schema_max_window_s() -> int:
    """The longest window an edge can be configured for (AnalyticsConfig.window_s's bound)."""
    for rule in AnalyticsConfig.model_fields["window_s"].metadata:
        le = getattr(rule, "le", None)
        if le is not None:
            return int(le)
    raise RuntimeError("AnalyticsConfig.window_s has no upper bound")


MAX_WINDOW_S = _schema_max_window_s()


class CheckSettings(BaseModel):
    """[checks] in gateway.toml: bounds every window must meet to be stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_future_s: float = Field(
        300.0, ge=0.0, le=86_400.0,
        description="a window may end at most this far ahead of the gateway's clock (edge "
        "clocks drift; NTP keeps them within seconds)")
    max_age_days: float = Field(
        30.0, ge=1.0, le=3650.0,
        description="a window may start at most this long before the gateway's clock; older "
        "is a wrong clock (an edge outbox holds days, not months)")
    max_crossings_per_s: float = Field(
        10.0, gt=0.0, le=1000.0,
        description="people per second that can cross one counting line (or enter one zone)")
    max_occupancy: int = Field(
        500, ge=1, le=100_000, description="people one camera can see at once")
    max_fps: float = Field(
        240.0, gt=0.0, le=10_000.0, description="frames per second a camera can deliver")
    max_visit_s: float = Field(
        86_400.0, gt=0.0, le=86_400.0 * 31,
        description="longest believable single visit of a zone, for the dwell bound (a visit "
        "that ends in a window may have started long before it)")


class Checker:
    """Applies CheckSettings to windows against a clock reading passed per batch."""

    def __init__(self, settings: CheckSettings | None = None) -> None:
        s = self.settings = settings or CheckSettings()
        self.future = timedelta(seconds=s.max_future_s)
        self.age = timedelta(days=s.max_age_days)

    def window(self, w: WindowAggregate, now: datetime) -> str | None:
        """None if believable, else the dead-letter reason."""
        if w.window_end > now + self.future:
            return (f"implausible time: window_end {w.window_end.isoformat()} is more than "
                    f"{self.settings.max_future_s:g} s after the gateway's clock "
                    f"{now.isoformat()}")
        if w.window_start < now - self.age:
            return (f"implausible time: window_start {w.window_start.isoformat()} is more "
                    f"than {self.settings.max_age_days:g} days before the gateway's clock "
                    f"{now.isoformat()}")
        span = (w.window_end - w.window_start).total_seconds()
        if span > MAX_WINDOW_S:
            return (f"implausible window: {span:g} s long, the longest an edge can be "
                    f"configured for is {MAX_WINDOW_S} s")
        return self._counts(w, span)

    def _counts(self, w: WindowAggregate, span: float) -> str | None:
        s = self.settings
        flow = s.max_crossings_per_s * span  # people through one line in this window
        people = s.max_occupancy + flow  # anyone in view at the start, plus all who came
        if w.frames > s.max_fps * span:
            return f"implausible count: {w.frames} frames in {span:g} s (> {s.max_fps:g}/s)"
        for x in w.lines:
            if x.in_count + x.out_count > flow:
                return (f"implausible count: line {x.line!r} {x.in_count} in + {x.out_count} "
                        f"out in {span:g} s (> {s.max_crossings_per_s:g} people/s)")
        if w.occupancy.max > s.max_occupancy:
            return (f"implausible count: occupancy max {w.occupancy.max} "
                    f"(> {s.max_occupancy} people in one camera's view)")
        for z in w.zones:
            reason = self._zone(z.zone, z.entries, z.visits, z.occupancy.max,
                                z.dwell_total_s, flow, people)
            if reason:
                return reason
        for q in w.queues:  # issue 16: a queue's visits and length, like a zone's
            ended = q.served + q.abandoned + q.lost
            if ended > people or q.length.max > s.max_occupancy:
                return (f"implausible count: queue {q.zone!r} {ended} visits, length max "
                        f"{q.length.max} (bounds {people:g}, {s.max_occupancy})")
        if w.staff is not None and w.staff.in_count + w.staff.out_count > flow * len(w.lines):
            return (f"implausible count: {w.staff.in_count + w.staff.out_count} staff "
                    f"crossings in {span:g} s (> {s.max_crossings_per_s:g} people/s a line)")
        return self._extras(w, span, people)

    def _zone(self, name: str, entries: int, visits: int, occ_max: int, dwell_s: float,
              flow: float, people: float) -> str | None:
        s = self.settings
        if entries > flow or visits > people or occ_max > s.max_occupancy:
            return (f"implausible count: zone {name!r} entries {entries}, visits {visits}, "
                    f"occupancy max {occ_max} (bounds {flow:g}, {people:g}, "
                    f"{s.max_occupancy})")
        if dwell_s > visits * s.max_visit_s:
            return (f"implausible dwell: zone {name!r} {dwell_s:g} s over {visits} visits "
                    f"(> {s.max_visit_s:g} s a visit)")
        return None

    def _extras(self, w: WindowAggregate, span: float, people: float) -> str | None:
        """Transitions, demographics and the heatmap: sums bounded by people and time."""
        if w.transitions:
            # a person moves between the camera's zones: at most one transition per zone each
            bound = people * max(1, len(w.zones))
            moves = sum(t.count for t in w.transitions)
            if moves > bound:
                return f"implausible count: {moves} zone transitions (> {bound:g})"
        d = w.demographics
        for dim, counts in (("age_bands", d.age_bands), ("genders", d.genders)):
            if counts and sum(counts.values()) > people:
                return (f"implausible count: demographics {dim} sum to "
                        f"{sum(counts.values())} (> {people:g} people in {span:g} s)")
        if w.heatmap is not None:
            # cells are seconds spent per cell: at most everyone in view for the whole window
            person_s = self.settings.max_occupancy * span
            total = float(heat_cells.grid(w.heatmap.cells).sum())
            if total > person_s:
                return f"implausible heatmap: {total:g} person-seconds"
        return None


def status_reason(s: DeviceStatus) -> str | None:
    """A status's time is informational (HQ judges freshness by arrival), so any clock is
    accepted; but it must be storable as a UTC instant, or the commit would raise."""
    try:
        s.sent_at.astimezone(UTC)
    except OverflowError:
        return f"implausible time: sent_at {s.sent_at.isoformat()} has no UTC equivalent"
    return None

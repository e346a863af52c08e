"""The demo simulator: valid schema messages, labelled simulated, closed stores silent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from storesense.simulate import DEMO_STORES, history, hourly_rate


def test_history_is_simulated_consistent_and_respects_opening_hours() -> None:
    end = datetime(2026, 11, 23, tzinfo=UTC)
    windows = list(history(DEMO_STORES, end, days=2))
    assert windows and all(w.simulated for w in windows)
    assert len({w.message_id for w in windows}) == len(windows)
    stores = {s.store_id: s for s in DEMO_STORES}
    for w in windows:
        s = stores[w.store_id]
        local = w.window_start.astimezone(ZoneInfo(s.timezone))
        assert s.open_hour <= local.hour < s.close_hour
        assert w.window_end - w.window_start == timedelta(hours=1)
        d = w.demographics
        if d.genders:
            assert sum(d.genders.values()) == sum(d.age_bands.values())


def test_closed_hours_have_no_traffic() -> None:
    s = DEMO_STORES[0]
    night = datetime(2026, 11, 23, 3, tzinfo=ZoneInfo(s.timezone))
    assert hourly_rate(s, night) == 0.0
    assert hourly_rate(s, night.replace(hour=18)) > hourly_rate(s, night.replace(hour=10))

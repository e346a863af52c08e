"""Simulated loyalty members for the demo's POS hours, and simulated daily weather.

The demo's weather is drawn at random, independently of its traffic (storesense/simulate.py
knows nothing of it): a rainy-against-dry comparison on demo data shows noise, not an effect.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from storesense.simulate import DemoStore

MEMBER_SHARE = 0.4    # of a simulated hour's transactions, by customers already members
JOIN_RATE = 0.08      # of the others, the share who join at the till
# condition -> (probability, mean precipitation mm)
WEATHER = {"dry": (0.6, 0.0), "rain": (0.25, 6.0), "heavy_rain": (0.06, 30.0),
           "storm": (0.04, 45.0), "snow": (0.05, 4.0)}


def members(transactions: int, rng: np.random.Generator) -> tuple[int, int]:
    """(members, new members) of an hour's transactions; new members are members too."""
    existing = int(rng.binomial(transactions, MEMBER_SHARE))
    joined = int(rng.binomial(transactions - existing, JOIN_RATE))
    return existing + joined, joined


def weather_days(stores: tuple[DemoStore, ...], end: datetime, days: int,
                 seed: int = 5) -> Iterator[dict[str, object]]:
    """A weather record per store and local day, the ``days`` days before each store's local
    day of ``end`` (that day itself not yet over: left out). A store's day always gets the
    same weather, however the days are split into calls (the demo seeds a day at a time)."""
    names = list(WEATHER)
    p = [WEATHER[c][0] for c in names]
    for i, s in enumerate(stores):
        last: date = end.astimezone(ZoneInfo(s.timezone)).date() - timedelta(days=1)
        for k in range(days):
            day = last - timedelta(days=k)
            rng = np.random.default_rng([seed, i, day.toordinal()])
            condition = str(rng.choice(names, p=p))
            mean_mm = WEATHER[condition][1]
            mm = 0.0 if not mean_mm else round(float(rng.gamma(2.0, mean_mm / 2.0)) + 1.0, 1)
            yield {"store_id": s.store_id, "date": day.isoformat(),
                   "condition": condition, "precipitation_mm": mm,
                   "temperature_c": round(float(rng.normal(12.0, 6.0)), 1)}

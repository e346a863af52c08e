"""Member figures from the POS hours (gateway/pos.py): member share of transactions and the
join rate of non-members, per local period and over a span.

Definitions (docs/api.md):

- ``member_share`` = members / transactions: the share of transactions made by loyalty
  members, those who joined in that transaction included.
- ``join_rate`` = new_members / (transactions - members + new_members): of the transactions by
  customers who were *not* members when they came to the till, the share in which they joined.
  New members are counted in ``members`` (the import checks new_members <= members), so
  ``transactions - members`` alone would leave the joiners out of their own denominator.

Only hours whose import reported members count, in numerator and denominator alike: an hour
without member data is unknown, not "no members". ``hours`` says how many hours that is.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from gateway.db import Database
from gateway.queries import StoreIds, store_filter


def member_share(transactions: int, members: int) -> float | None:
    return round(members / transactions, 4) if transactions > 0 else None


def join_rate(transactions: int, members: int, new_members: int) -> float | None:
    came_as_non_members = transactions - members + new_members
    return round(new_members / came_as_non_members, 4) if came_as_non_members > 0 else None


def figures(transactions: int, members: int, new_members: int, hours: int) -> dict[str, Any]:
    return {"transactions": transactions, "members": members, "new_members": new_members,
            "non_member_transactions": transactions - members + new_members,
            "member_share": member_share(transactions, members),
            "join_rate": join_rate(transactions, members, new_members), "hours": hours}


def _rows(conn: Database, ids: StoreIds, group: str, start: date,
          end: date) -> list[tuple[Any, ...]]:
    where, params = store_filter(ids)
    return conn.execute(
        f"SELECT {group}, SUM(transactions), SUM(members), SUM(COALESCE(new_members, 0)), "
        f"COUNT(*) FROM pos WHERE local_date BETWEEN ? AND ? AND members IS NOT NULL "
        f"AND {where} GROUP BY {group} ORDER BY {group}",
        [start.isoformat(), end.isoformat(), *params]).fetchall()


def members(conn: Database, ids: StoreIds, granularity: Literal["hour", "day"],
            start: date, end: date) -> dict[str, Any]:
    """Totals over [start, end], a series per local period (summed by label over stores) and
    one row per store; periods and stores without member data are left out."""
    label = "local_hour" if granularity == "hour" else "local_date"
    series = [{"period": r[0], **figures(int(r[1]), int(r[2]), int(r[3]), int(r[4]))}
              for r in _rows(conn, ids, label, start, end)]
    stores = [{"store_id": r[0], **figures(int(r[1]), int(r[2]), int(r[3]), int(r[4]))}
              for r in _rows(conn, ids, "store_id", start, end)]
    totals = figures(*(sum(s[k] for s in stores)
                       for k in ("transactions", "members", "new_members", "hours")))
    return {"granularity": granularity, "start": start.isoformat(), "end": end.isoformat(),
            "totals": totals, "series": series, "stores": stores}

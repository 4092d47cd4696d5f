"""One way to write a moment: ISO 8601 in UTC with a Z, as every payload, record and report shows it."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_iso(when: float | datetime, timespec: str = "auto") -> str:
    """Epoch seconds or an aware datetime as e.g. `2026-11-23T10:00:01.250Z`.

    `timespec` is `datetime.isoformat`'s: events to HQ carry milliseconds, the K9 log whole seconds.
    """
    moment = datetime.fromtimestamp(when, UTC) if isinstance(when, int | float) else when.astimezone(UTC)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def event_iso(ts: float) -> str:
    """An event's time stamp as every payload to HQ carries it: milliseconds."""
    return utc_iso(ts, "milliseconds")

"""What the console reads from HQ's store: frozen dataclasses, one per thing an operator looks at."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

ROLES = ("operator", "supervisor", "auditor")
LANGUAGES = ("ro", "ru", "en")


@dataclass(frozen=True)
class Vehicle:
    """One car of the fleet as its last status and position left it."""

    id: str
    online: bool
    last_seen: dt.datetime | None
    status_time: dt.datetime | None
    watchlist_version: int | None
    backlog: int | None
    last_lat: float | None
    last_lon: float | None
    last_position_time: dt.datetime | None
    status: dict[str, Any] | None


@dataclass(frozen=True)
class ImageRef:
    """An evidence image of a hit, without its bytes (`queries.image` fetches them)."""

    event_id: str
    hit_event_id: str
    role: str  # "crop" (the plate) or "frame" (the context)
    content_type: str
    bytes: int
    time: dt.datetime


@dataclass(frozen=True)
class Image:
    ref: ImageRef
    data: bytes


@dataclass(frozen=True)
class Disposition:
    """The officer's decision on a hit, from the car."""

    event_id: str
    hit_event_id: str
    vehicle: str
    decision: str  # "accept" or "reject"
    reason: str | None
    note: str | None
    time: dt.datetime


@dataclass(frozen=True)
class Hit:
    """A watchlist hit with its evidence and the last disposition, as HQ stored it."""

    event_id: str
    vehicle: str
    camera: str | None
    time: dt.datetime
    received_at: dt.datetime
    plate: str
    read_text: str | None
    read_top: str | None
    confidence: float | None
    list: str
    region: str | None
    priority: int | None
    covert: bool
    reason: str | None
    match_kind: str | None
    match: dict[str, Any] | None
    lat: float | None
    lon: float | None
    repeat_of: str | None
    recheck: bool
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    payload: dict[str, Any]
    images: tuple[ImageRef, ...] = ()
    disposition: Disposition | None = None


@dataclass(frozen=True)
class Read:
    """One plate read as the search finds it."""

    event_id: str
    time: dt.datetime
    vehicle: str
    camera: str | None
    plate: str
    confidence: float | None
    region: str | None
    lat: float | None
    lon: float | None
    series: str | None = None


@dataclass(frozen=True)
class Area:
    """A box on the map, in degrees (WGS 84)."""

    south: float
    west: float
    north: float
    east: float

    def __post_init__(self) -> None:
        if not (-90 <= self.south <= self.north <= 90):
            raise ValueError(f"area: need -90 <= south ({self.south}) <= north ({self.north}) <= 90")
        if not (-180 <= self.west <= self.east <= 180):
            raise ValueError(f"area: need -180 <= west ({self.west}) <= east ({self.east}) <= 180")


@dataclass(frozen=True)
class ReadQuery:
    """An investigative search of the reads. ``plate``: letters and digits with ``*`` and ``?``
    (picar.hq.store.plates); ``confusable`` also finds look-alikes. Times are aware datetimes."""

    plate: str | None = None
    confusable: bool = False
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    area: Area | None = None
    vehicle: str | None = None
    limit: int = 1000

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name}: give a time with its time zone")
        if self.since and self.until and self.since >= self.until:
            raise ValueError(f"since ({self.since.isoformat()}) must be before until ({self.until.isoformat()})")
        if not 1 <= self.limit <= 100_000:
            raise ValueError(f"limit {self.limit}: allowed 1..100000")
        if self.plate is None and self.area is None and self.vehicle is None and self.since is None:
            raise ValueError("give a plate, an area, a car or a start time: a search of every read is refused")

    def as_json(self) -> dict[str, Any]:
        """The query as the audit trail records it."""
        return {
            "plate": self.plate, "confusable": self.confusable,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "area": None if self.area is None else [self.area.south, self.area.west, self.area.north, self.area.east],
            "vehicle": self.vehicle, "limit": self.limit,
        }


@dataclass(frozen=True)
class Searcher:
    """Who searches, for which case and why: all three are required and go to the audit trail."""

    username: str
    case_number: str
    reason: str
    account_id: int | None = None

    def __post_init__(self) -> None:
        for name in ("username", "case_number", "reason"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name.replace('_', ' ')} is required for a search of the reads")


@dataclass(frozen=True)
class SearchResult:
    reads: list[Read]
    audit_id: int
    truncated: bool  # the limit was reached: there may be more


@dataclass(frozen=True)
class SearchAuditEntry:
    id: int
    at: dt.datetime
    account_id: int | None
    username: str
    case_number: str
    reason: str
    query: dict[str, Any]
    result_count: int


@dataclass(frozen=True)
class K9Deployment:
    vehicle: str
    deployment_id: str
    dog: str | None
    handler: str | None
    type: str | None
    case_number: str | None
    notes: str | None
    trigger: str | None
    started_at: dt.datetime | None
    start_lat: float | None
    start_lon: float | None
    ended_at: dt.datetime | None
    outcome: str | None
    end_notes: str | None
    duration_s: float | None
    track_length_m: float | None
    track: list[dict[str, Any]] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Account:
    """An operator's account, without its password hash."""

    id: int
    username: str
    role: str
    language: str
    disabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None


@dataclass(frozen=True)
class WatchlistVersion:
    id: int
    version: int
    target: str
    kind: str
    entries: int
    sha256: str
    published_at: dt.datetime
    published_by: str
    note: str | None


@dataclass(frozen=True)
class HeatAlarm:
    event_id: str
    vehicle: str
    state: str  # "warning" or "alarm"
    temp_c: float | None
    reason: str | None
    time: dt.datetime
    received_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    payload: dict[str, Any] | None = field(default=None, repr=False)  # the car's whole heat snapshot


@dataclass(frozen=True)
class Position:
    vehicle: str
    time: dt.datetime
    lat: float
    lon: float
    speed_kmh: float | None
    heading_deg: float | None

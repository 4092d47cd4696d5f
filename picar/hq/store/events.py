"""What a car's message becomes at HQ: one typed record per kind, parsed from the payloads of
picar/pipeline/events.py and docs/mqtt.md. A payload that cannot be parsed raises BadEvent naming the field;
ingest keeps it in `rejected_events` and acknowledges it, so one bad message neither blocks nor loops.

The vehicle always comes from the topic (the broker ACL lets a car write only under its own id), never from
the payload.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from picar.hq.store.plates import plate_key
from picar.link.topics import EVENT_KINDS, POSITION, STATUS

MAX_AHEAD = dt.timedelta(days=1)  # an event time further ahead of HQ's clock is refused (a car's bad clock)
IMAGE_ROLES = ("crop", "frame")


class BadEvent(ValueError):
    """A message HQ cannot store; the text names the field."""


@dataclass(frozen=True)
class ReadEvent:
    event_id: str
    vehicle: str
    time: dt.datetime
    plate: str
    camera: str | None
    confidence: float | None
    candidates: list[dict[str, Any]] | None
    first_seen: dt.datetime | None
    frames: int | None
    box: list[int] | None
    region: str | None
    lat: float | None
    lon: float | None
    position: dict[str, Any] | None
    series: str | None = None  # the grammar series the read fitted (picar/vision/grammar_data.py); None: free text

    @property
    def plate_key(self) -> str:
        return plate_key(self.plate)


@dataclass(frozen=True)
class HitEvent:
    event_id: str
    vehicle: str
    time: dt.datetime
    plate: str
    list: str
    payload: dict[str, Any]

    @property
    def plate_key(self) -> str:
        return plate_key(self.plate)


@dataclass(frozen=True)
class ImageEvent:
    event_id: str
    vehicle: str
    time: dt.datetime
    hit_event_id: str
    role: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class DispositionEvent:
    event_id: str
    vehicle: str
    time: dt.datetime
    hit_event_id: str
    decision: str
    reason: str | None
    note: str | None


@dataclass(frozen=True)
class K9Event:
    event_id: str
    vehicle: str
    deployment_id: str
    end: bool  # k9_end (else k9_start)
    payload: dict[str, Any]


@dataclass(frozen=True)
class HeatEvent:
    event_id: str
    vehicle: str
    time: dt.datetime
    state: str
    temp_c: float | None
    reason: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class PositionEvent:
    vehicle: str
    time: dt.datetime
    lat: float
    lon: float
    fix: str | None
    speed_kmh: float | None
    heading_deg: float | None
    sats: int | None
    hdop: float | None


@dataclass(frozen=True)
class StatusEvent:
    vehicle: str
    online: bool
    time: dt.datetime | None
    watchlist_version: int | None
    backlog: int | None
    payload: dict[str, Any]


Event = (ReadEvent | HitEvent | ImageEvent | DispositionEvent | K9Event | HeatEvent | PositionEvent
         | StatusEvent)
KINDS = (*EVENT_KINDS, STATUS, POSITION)


def parse(vehicle: str, kind: str, payload: bytes, now: dt.datetime | None = None) -> Event:
    """The record for one message of ``kind`` from ``vehicle``; BadEvent when it cannot be stored."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadEvent(f"{kind} from {vehicle}: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadEvent(f"{kind} from {vehicle}: not a JSON object")
    f = _Fields(body, f"{kind} from {vehicle}", now or dt.datetime.now(dt.UTC))
    if kind == "read":
        return _read(vehicle, f)
    if kind == "hit":
        return HitEvent(f.event_id(), vehicle, f.time("time"), f.text("plate"), f.text("list"), body)
    if kind == "image":
        return _image(vehicle, f)
    if kind == "disposition":
        return DispositionEvent(f.event_id(), vehicle, f.time("time"), f.text("hit_event_id"), f.text("decision"),
                                f.opt_text("reason"), f.opt_text("note"))
    if kind == "k9":
        which = f.text("event")
        if which not in ("k9_start", "k9_end"):
            raise BadEvent(f"{f.where}: event {which!r} is neither k9_start nor k9_end")
        return K9Event(f.event_id(), vehicle, f.text("deployment_id"), which == "k9_end", body)
    if kind == "heat":
        when = f.opt_time("time") or f.epoch("since")
        return HeatEvent(f.event_id(), vehicle, when, f.text("state"), f.opt_number("temp_c"), f.opt_text("reason"),
                         body)
    if kind == POSITION:
        return PositionEvent(vehicle, f.time("time"), f.number("lat"), f.number("lon"), f.opt_text("fix"),
                             f.opt_number("speed_kmh"), f.opt_number("heading_deg"), f.opt_int("sats"),
                             f.opt_number("hdop"))
    if kind == STATUS:
        state = f.text("state")
        return StatusEvent(vehicle, state == "online", f.opt_time("time"), f.opt_int("watchlist_version"),
                           f.opt_int("backlog"), body)
    raise BadEvent(f"{kind} from {vehicle}: unknown kind (known: {', '.join(KINDS)})")


def _read(vehicle: str, f: _Fields) -> ReadEvent:
    pos = f.body.get("position")
    if pos is not None and not isinstance(pos, dict):
        raise BadEvent(f"{f.where}: position must be an object or null")
    lat = lon = None
    if pos:
        lat, lon = _Fields(pos, f.where + " position", f.now).opt_number("lat"), \
            _Fields(pos, f.where + " position", f.now).opt_number("lon")
    candidates = f.body.get("candidates")
    if candidates is not None and not isinstance(candidates, list):
        raise BadEvent(f"{f.where}: candidates must be a list")
    box = f.body.get("box")
    if box is not None and not (isinstance(box, list) and all(isinstance(v, int) for v in box)):
        raise BadEvent(f"{f.where}: box must be a list of integers")
    return ReadEvent(f.event_id(), vehicle, f.time("time"), f.text("plate"), f.opt_text("camera"),
                     f.opt_number("confidence"), candidates, f.opt_time("first_seen"), f.opt_int("frames"), box,
                     f.opt_text("region"), lat, lon, pos, f.opt_text("series"))


def _image(vehicle: str, f: _Fields) -> ImageEvent:
    role = f.text("role")
    if role not in IMAGE_ROLES:
        raise BadEvent(f"{f.where}: role {role!r} must be one of {', '.join(IMAGE_ROLES)}")
    try:
        data = base64.b64decode(f.text("data"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadEvent(f"{f.where}: data is not base64 ({exc})") from None
    return ImageEvent(f.event_id(), vehicle, f.time("time"), f.text("hit_event_id"), role,
                      f.text("content_type"), data)


@dataclass(frozen=True)
class _Fields:
    body: dict[str, Any]
    where: str
    now: dt.datetime

    def event_id(self) -> str:
        value = self.text("event_id")
        if len(value) > 128:
            raise BadEvent(f"{self.where}: event_id longer than 128 characters")
        return value

    def text(self, key: str) -> str:
        value = self.body.get(key)
        if not isinstance(value, str) or not value:
            raise BadEvent(f"{self.where}: {key} must be a non-empty string, not {value!r}")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise BadEvent(f"{self.where}: {key} must be a string or null, not {value!r}")
        return value

    def number(self, key: str) -> float:
        value = self.opt_number(key)
        if value is None:
            raise BadEvent(f"{self.where}: {key} is missing")
        return value

    def opt_number(self, key: str) -> float | None:
        value = self.body.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadEvent(f"{self.where}: {key} must be a number or null, not {value!r}")
        return float(value)

    def opt_int(self, key: str) -> int | None:
        value = self.body.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadEvent(f"{self.where}: {key} must be an integer or null, not {value!r}")
        return value

    def time(self, key: str) -> dt.datetime:
        value = self.opt_time(key)
        if value is None:
            raise BadEvent(f"{self.where}: {key} is missing")
        return value

    def opt_time(self, key: str) -> dt.datetime | None:
        value = self.body.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise BadEvent(f"{self.where}: {key} must be an ISO 8601 time, not {value!r}")
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            raise BadEvent(f"{self.where}: {key} {value!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise BadEvent(f"{self.where}: {key} {value!r} has no time zone (PiCAR writes UTC with a Z)")
        return self._not_ahead(key, when)

    def epoch(self, key: str) -> dt.datetime:
        value = self.number(key)
        try:
            when = dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise BadEvent(f"{self.where}: {key} {value!r} is not a moment") from None
        return self._not_ahead(key, when)

    def _not_ahead(self, key: str, when: dt.datetime) -> dt.datetime:
        if when - self.now > MAX_AHEAD:
            raise BadEvent(f"{self.where}: {key} {when.isoformat()} is more than a day ahead of HQ's clock "
                           f"({self.now.isoformat()}): check the car's clock")
        return when

"""JSON payloads of the events the car sends to HQ and to the in-car page (see docs/mqtt.md)."""

from __future__ import annotations

import base64
from typing import Any

from picar.isotime import event_iso
from picar.types import Fix, Hit, PlateRead

IMAGE_ROLES = ("crop", "frame")  # the plate crop and the context frame of a hit
# An evidence image larger than this is not sent to HQ (it stays on the car): it travels through the outbox and
# the broker as one base64 message. A context frame at the car's JPEG quality is about 50-200 KB.
MAX_IMAGE_BYTES = 1024 * 1024


def position_json(fix: Fix | None) -> dict[str, Any] | None:
    return fix.to_json() if fix is not None else None


def read_payload(read: PlateRead, crop: str | None = None) -> dict[str, Any]:
    return {
        "event_id": read.event_id,
        "vehicle": read.vehicle_id,
        "camera": read.camera,
        "plate": read.text,
        "confidence": read.confidence,
        "candidates": [{"text": t, "confidence": round(float(c), 4)} for t, c in read.candidates],
        "time": event_iso(read.captured_at),
        "first_seen": event_iso(read.first_seen),
        "frames": read.frames,
        "box": list(read.box),
        "region": read.region,
        "series": read.series,
        "position": position_json(read.fix),
        "crop": crop,
    }


def hit_payload(hit: Hit, crop: str | None = None, frame: str | None = None,
                repeat_of: str | None = None, recheck: bool = False) -> dict[str, Any]:
    e, m, r = hit.entry, hit.match, hit.read
    pos = position_json(r.fix)
    return {
        "event_id": hit.event_id,
        "read_event_id": r.event_id,
        "vehicle": r.vehicle_id,
        "camera": r.camera,
        "plate": e.plate,
        "read_text": m.read_text,
        "read_top": r.text,
        "read_series": r.series,
        "confidence": r.confidence,
        "list": e.list,
        "region": e.region,
        "priority": e.priority,
        "covert": e.covert,
        "reason": e.reason,
        "description": e.description,
        "notes": e.notes,
        "source": e.source,
        "match": {
            "kind": m.kind,
            "distance": m.distance,
            "differences": [{"position": i + 1, "read": a, "listed": b} for i, a, b in m.differences],
            "text": m.describe(),
        },
        "time": event_iso(r.captured_at),
        "raised_at": event_iso(hit.raised_at),
        "position": pos,
        "lat": pos["lat"] if pos else None,
        "lon": pos["lon"] if pos else None,
        "crop": crop,
        "frame": frame,
        "repeat_of": repeat_of,
        "recheck": recheck,
    }


def image_payload(hit: Hit, role: str, jpeg: bytes) -> dict[str, Any]:
    """One evidence image of a hit for HQ (its own event, sent after the hit). The event id is derived from
    the hit's, so the same image is always the same event."""
    if role not in IMAGE_ROLES:
        raise ValueError(f"image role {role!r}: one of {', '.join(IMAGE_ROLES)}")
    if len(jpeg) > MAX_IMAGE_BYTES:
        raise ValueError(f"{role} image of hit {hit.event_id}: {len(jpeg)} bytes, more than {MAX_IMAGE_BYTES}")
    return {
        "event_id": f"{hit.event_id}-{role}",
        "hit_event_id": hit.event_id,
        "vehicle": hit.read.vehicle_id,
        "role": role,
        "time": event_iso(hit.read.captured_at),
        "content_type": "image/jpeg",
        "data": base64.b64encode(jpeg).decode("ascii"),
    }

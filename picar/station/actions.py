"""What the officer decides about a hit, from the in-car page: stored, audited and sent to HQ."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from picar.i18n import N_, Message
from picar.isotime import event_iso
from picar.pipeline.store import Store
from picar.types import REJECT_REASONS

DECISIONS = ("accept", "reject")


class OfficerActions:
    def __init__(self, store: Store, publish: Callable[[str, dict[str, Any]], str],
                 audit: Callable[[str, str, dict[str, Any]], None], vehicle_id: str) -> None:
        self.store = store
        self.publish = publish
        self.audit = audit
        self.vehicle_id = vehicle_id

    def dispose(self, hit_event_id: str, decision: str, reason: str | None, note: str | None) -> dict[str, Any]:
        """The officer accepted or rejected a hit: store it, audit it, tell HQ. Raises on bad input."""
        if decision not in DECISIONS:
            raise ValueError(Message.of(N_("decision {decision!r} must be 'accept' or 'reject'"), decision=decision))
        if decision == "reject" and reason not in REJECT_REASONS:
            raise ValueError(Message.of(N_("reject reason {reason!r} must be one of {allowed}"), reason=reason,
                                        allowed=", ".join(REJECT_REASONS)))
        if not self.store.set_disposition(hit_event_id, decision, reason, note):
            raise KeyError(Message.of(N_("no hit with event id {event_id}"), event_id=hit_event_id))
        payload = {"hit_event_id": hit_event_id, "decision": decision, "reason": reason, "note": note,
                   "vehicle": self.vehicle_id, "time": event_iso(time.time())}
        self.publish("disposition", payload)
        self.audit("officer", f"hit {decision}", payload)
        return payload

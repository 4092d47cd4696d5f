"""The link's send window: which outbox events paho holds (by message id) and which the broker has
acknowledged but the outbox has not yet recorded. Not thread-safe: HqLink calls it under its condition."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SendWindow:
    inflight: dict[int, str] = field(default_factory=dict)  # mid -> event_id, kept across reconnects
    inflight_ids: set[str] = field(default_factory=set)
    acked: list[str] = field(default_factory=list)  # acknowledged, not yet written to the outbox
    # A PUBACK can beat publish() returning its mid. Such mids are collected only while the sender is
    # inside publish() and cleared right after, so a stale one can never match a reused mid.
    publishing: bool = False
    early_acks: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.inflight)

    def empty(self) -> bool:
        return not self.inflight and not self.acked

    def held(self) -> set[str]:
        """Events not to hand to paho again: in flight (paho retransmits them itself) or acknowledged."""
        return self.inflight_ids | set(self.acked)

    def begin_publish(self) -> None:
        self.publishing = True

    def abort_publish(self) -> None:
        self.publishing = False
        self.early_acks.clear()

    def end_publish(self, mid: int, event_id: str, queued: bool) -> bool:
        """Record what publish() returned; True when its PUBACK had already arrived."""
        self.publishing = False
        early = mid in self.early_acks
        self.early_acks.clear()
        if queued and early:
            self.acked.append(event_id)
        elif queued:
            self.inflight[mid] = event_id
            self.inflight_ids.add(event_id)
        return queued and early

    def on_puback(self, mid: int, failed: bool) -> str | None:
        """A PUBACK: the event it acknowledges (None for status, positions or an early PUBACK)."""
        event_id = self.inflight.pop(mid, None)
        if event_id is None:
            if self.publishing:
                self.early_acks.add(mid)
            return None
        self.inflight_ids.discard(event_id)
        if not failed:
            self.acked.append(event_id)
        return event_id

    def take_acked(self) -> list[str]:
        acked, self.acked = self.acked, []
        return acked

    def give_back(self, acked: list[str]) -> None:
        """Acknowledgements the outbox could not record: kept to be written again."""
        self.acked[:0] = acked

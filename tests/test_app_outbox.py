"""A full disk delays events instead of losing them: the publisher keeps what the outbox refused."""

from pathlib import Path

from picar.link.outbox import Outbox
from picar.link.publisher import EventPublisher


def test_events_refused_by_a_full_outbox_are_kept_and_stored_later(tmp_path: Path) -> None:
    publisher = EventPublisher(Outbox(tmp_path / "outbox.db", max_size_bytes=64 * 1024), None, "picar/v1", "car1")
    ids = [publisher.publish("read", {"plate": f"AB{i:04d}", "pad": "x" * 2000}) for i in range(100)]
    stored = publisher.outbox.backlog()
    assert 0 < stored < 100
    assert publisher.waiting == 100 - stored
    publisher.outbox.close()
    publisher.outbox = Outbox(tmp_path / "outbox.db")  # space freed: the same file, no cap
    publisher.retry_waiting()
    assert publisher.waiting == 0
    assert publisher.outbox.backlog() == 100
    assert [i.event_id for i in publisher.outbox.pending(limit=200)] == ids  # in order, none lost
    assert {i.topic for i in publisher.outbox.pending(limit=200)} == {"picar/v1/car1/read"}

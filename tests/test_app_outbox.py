"""A full disk delays events instead of losing them: the publisher keeps what the outbox refused."""

import logging
from pathlib import Path

import pytest

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


def test_a_full_outbox_is_logged_once_and_later_events_wait_behind_earlier_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = EventPublisher(Outbox(tmp_path / "outbox.db", max_size_bytes=64 * 1024), None, "picar/v1", "car1")
    with caplog.at_level(logging.DEBUG, logger="picar"):
        ids = [publisher.publish("read", {"plate": f"AB{i:04d}", "pad": "x" * 2000}) for i in range(100)]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "outbox" in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in errors]  # one line for the outage, not one per event
    # a later event, whether it would fit or not, waits behind the ones already waiting
    waiting = publisher.waiting
    assert waiting > 0
    small = publisher.publish("read", {"plate": "ZZ1"})
    assert publisher.waiting == waiting + 1
    publisher.outbox.close()
    publisher.outbox = Outbox(tmp_path / "outbox.db")
    publisher.retry_waiting()
    assert [i.event_id for i in publisher.outbox.pending(limit=200)] == [*ids, small]

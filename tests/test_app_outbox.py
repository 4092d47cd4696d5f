"""A full disk delays events instead of losing them: the daemon keeps what the outbox refused."""

from pathlib import Path

from picar.app import Daemon
from picar.config import parse_config
from picar.link.outbox import Outbox


def test_events_refused_by_a_full_outbox_are_kept_and_stored_later(tmp_path: Path) -> None:
    cfg = parse_config({"vehicle": {"id": "car1"}, "cameras": [{"name": "f", "source": "0"}],
                        "mqtt": {"enabled": False, "tls": False}, "storage": {"data_dir": str(tmp_path / "d")}},
                       tmp_path)
    daemon = Daemon(cfg)
    daemon.outbox = Outbox(tmp_path / "outbox.db", max_size_bytes=64 * 1024)
    ids = [daemon._publish("read", {"plate": f"AB{i:04d}", "pad": "x" * 2000}) for i in range(100)]
    stored = daemon.outbox.backlog()
    assert 0 < stored < 100
    assert len(daemon._pending_events) == 100 - stored
    daemon.outbox.close()
    daemon.outbox = Outbox(tmp_path / "outbox.db")  # space freed: the same file, no cap
    daemon._retry_pending_events()
    assert daemon._pending_events == []
    assert daemon.outbox.backlog() == 100
    assert [i.event_id for i in daemon.outbox.pending(limit=200)] == ids  # in order, none lost

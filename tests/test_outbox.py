"""The on-disk outbox: order, durability across processes, full disk, concurrency. Real SQLite files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from picar.link.outbox import Outbox, OutboxFullError
from tests.tinyfs import tiny_tmpfs


def test_put_then_pending_in_order_with_event_id_inside_json(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        ids = [ob.put("picar/v1/car/read", {"plate": f"AB{i}"}) for i in range(5)]
        raw = ob.put("picar/v1/car/raw", b"\x00\x01", qos=0, event_id="raw-1")
        items = ob.pending(10)
        assert [i.event_id for i in items] == [*ids, raw]
        assert [i.seq for i in items] == sorted(i.seq for i in items)
        assert json.loads(items[0].payload) == {"plate": "AB0", "event_id": ids[0]}
        assert items[-1].payload == b"\x00\x01" and items[-1].qos == 0
        assert len(set(ids)) == 5
        assert ob.pending(2) == items[:2]
        assert [i.event_id for i in ob.pending(10, after_seq=items[2].seq)] == [ids[3], ids[4], raw]


def test_ack_backlog_and_purge(tmp_path: Path) -> None:
    now = [1000.0]
    with Outbox(tmp_path / "o.db", clock=lambda: now[0]) as ob:
        a = ob.put("t/a", {"n": 1})
        b = ob.put("t/b", {"n": 2})
        assert ob.backlog() == 2
        ob.mark_sent([a])
        ob.mark_acked(a)
        ob.mark_acked(a)  # a second PUBACK after a resend changes nothing
        assert ob.backlog() == 1
        assert [i.event_id for i in ob.pending(10)] == [b]
        stored = ob.get(a)
        assert stored is not None and stored.sent_at == 1000.0 and stored.acked_at == 1000.0
        now[0] = 1050.0
        assert ob.purge_acked(older_than_s=60) == 0
        now[0] = 1061.0
        assert ob.purge_acked(older_than_s=60) == 1
        assert ob.get(a) is None and ob.get(b) is not None


def test_same_event_id_is_idempotent_but_conflicting_content_is_an_error(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        assert ob.put("t/hit", {"plate": "X1"}, event_id="e1") == "e1"
        assert ob.put("t/hit", {"plate": "X1"}, event_id="e1") == "e1"
        assert ob.backlog() == 1
        with pytest.raises(ValueError, match="e1"):
            ob.put("t/hit", {"plate": "X2"}, event_id="e1")
        # event_id taken from the payload itself
        assert ob.put("t/hit", {"plate": "X3", "event_id": "e3"}) == "e3"
        with pytest.raises(ValueError, match="differs"):
            ob.put("t/hit", {"event_id": "e4"}, event_id="e5")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", {"a": 1}), "topic"),
        (("t/+", {"a": 1}), "topic"),
        (("t/x", {"a": 1}, 3), "qos"),
        (("t/x", {"a": float("nan")}), "JSON"),
        (("t/x", {"a": object()}), "JSON"),
    ],
)
def test_bad_input_is_rejected_with_the_field_named(tmp_path: Path, args: tuple, message: str) -> None:
    with Outbox(tmp_path / "o.db") as ob, pytest.raises(ValueError, match=message):
        ob.put(*args)


def test_full_disk_raises_clear_error_and_keeps_what_was_stored(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, max_size_bytes=64 * 1024) as ob:
        stored: list[str] = []
        blob = os.urandom(2000)
        with pytest.raises(OutboxFullError, match="full"):
            for i in range(1000):
                stored.append(ob.put("t/big", blob, event_id=f"e{i}"))
        assert 5 < len(stored) < 1000
        assert ob.backlog() == len(stored)
        # acknowledging and purging frees room; the outbox keeps working
        for e in stored[:10]:
            ob.mark_acked(e)
        assert ob.purge_acked(older_than_s=-1) == 10
        ob.put("t/big", blob, event_id="after")
    with Outbox(path) as again:
        assert [i.event_id for i in again.pending(10_000)] == [*stored[10:], "after"]
        assert all(i.payload == blob for i in again.pending(10_000))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs, so the disk really fills up (needs root / CAP_SYS_ADMIN)."""
    with tiny_tmpfs(tmp_path / "tiny", "256k") as mnt:
        yield mnt


def test_a_really_full_disk_raises_outbox_full_and_keeps_what_was_stored(tiny_filesystem: Path) -> None:
    path = tiny_filesystem / "o.db"
    blob = os.urandom(1500)
    stored: list[str] = []
    with Outbox(path) as ob:
        with pytest.raises(OutboxFullError, match="disk is full"):
            for i in range(10_000):
                stored.append(ob.put("t/read", blob, event_id=f"e{i}"))
        assert stored and ob.backlog() == len(stored)
        with pytest.raises(OutboxFullError):  # (a few bytes may still fit in a page SQLite holds)
            ob.put("t/read", blob, event_id="still-full")
    with Outbox(path) as again:
        assert [i.event_id for i in again.pending(10_000)] == stored
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def test_put_is_durable_when_it_returns_even_if_the_process_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from picar.link.outbox import Outbox\n"
        "ob = Outbox(Path(sys.argv[1]))\n"
        "for i in range(40):\n"
        "    ob.put('t/read', {'i': i}, event_id=f'k{i}')\n"
        "    print(f'k{i}', flush=True)\n"
        "sys.stdin.read()\n"  # stay alive until killed
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent,
    )
    assert proc.stdout is not None
    confirmed = [proc.stdout.readline().strip() for _ in range(40)]
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    with Outbox(path) as ob:
        assert [i.event_id for i in ob.pending(100)] == confirmed == [f"k{i}" for i in range(40)]


def test_concurrent_writers_and_ackers(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        errors: list[BaseException] = []

        def writer(w: int) -> None:
            try:
                for i in range(25):
                    ob.put("t/read", {"w": w, "i": i}, event_id=f"w{w}-{i}")
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads) and not errors
        items = ob.pending(1000)
        assert len(items) == 100 and len({i.seq for i in items}) == 100
        for w in range(4):  # each writer's events keep their own order
            mine = [json.loads(i.payload)["i"] for i in items if json.loads(i.payload)["w"] == w]
            assert mine == list(range(25))
        ackers = [
            threading.Thread(target=ob.mark_acked_many, args=([i.event_id for i in items[k::2]],))
            for k in range(2)
        ]
        for t in ackers:
            t.start()
        for t in ackers:
            t.join(60)
        assert not any(t.is_alive() for t in ackers)
        assert ob.backlog() == 0


def test_outbox_uses_a_wal_journal(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        ob.put("t/x", {"a": 1})
        assert (tmp_path / "o.db-wal").exists()
    db = sqlite3.connect(tmp_path / "o.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_a_damaged_outbox_is_kept_for_inspection_and_a_new_one_started(tmp_path: Path) -> None:
    """A car must keep reading plates: a damaged outbox.db is renamed aside (not deleted) and replaced."""
    junk = bytes(range(256)) * 32
    (tmp_path / "outbox.db").write_bytes(junk)
    with Outbox(tmp_path / "outbox.db") as ob:
        ob.put("picar/v1/car1/read", {"plate": "NEW1"})
        assert ob.backlog() == 1
    (kept,) = tmp_path.glob("outbox.db.damaged-*")
    assert kept.read_bytes() == junk


def test_hq_acknowledgements_backlog_resend_schedule_and_purge(tmp_path: Path) -> None:
    now = [1000.0]
    with Outbox(tmp_path / "o.db", clock=lambda: now[0]) as ob:
        old = ob.put("t/read", {"n": 0})
        ob.mark_acked(old)  # delivered by the broker before HQ's acknowledgements were awaited
        assert ob.hq_acks_from() is None and ob.resend_unconfirmed(1.0, 8.0) == 0
        ob.await_hq_acks(ob.next_seq())
        a, b = ob.put("t/read", {"n": 1}), ob.put("t/read", {"n": 2})
        ob.mark_acked_many([a, b])
        assert ob.backlog() == 2 and ob.awaiting_hq() == 2 and ob.pending(10) == []
        ob.mark_hq_acked([a])
        assert ob.backlog() == 1
        now[0] += 9.9
        assert ob.resend_unconfirmed(10.0, 40.0) == 0  # not yet due
        now[0] += 0.2
        assert ob.resend_unconfirmed(10.0, 40.0) == 1
        (again,) = ob.pending(10)
        assert again.event_id == b and again.resends == 1
        ob.mark_acked(b)
        now[0] += 19.0
        assert ob.resend_unconfirmed(10.0, 40.0) == 0  # the wait doubled: 20 s after this acknowledgement
        now[0] += 1.1
        assert ob.resend_unconfirmed(10.0, 40.0) == 1
        ob.mark_acked(b)
        # After a reconnect, what the broker acknowledged since the cutoff goes again at once.
        assert ob.resend_unconfirmed(10.0, 40.0, broker_acked_since=now[0] - 1) == 1
        ob.mark_acked(b)
        # Retention: an event HQ has not confirmed is kept however old; a confirmed one goes.
        now[0] += 100.0
        assert ob.purge_acked(50.0) == 2  # `old` (before the wait began) and `a` (confirmed)
        assert ob.get(b) is not None and ob.backlog() == 1
        ob.mark_hq_acked([b])
        assert ob.backlog() == 0
        now[0] += 100.0
        assert ob.purge_acked(50.0) == 1
        ob.await_hq_acks(None)
        assert ob.hq_acks_from() is None
    with Outbox(tmp_path / "o.db") as reopened:  # ending the wait is remembered too
        assert reopened.hq_acks_from() is None


def test_an_outbox_from_before_hq_acknowledgements_opens_with_its_events(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, created_at REAL NOT NULL, sent_at REAL,
        acked_at REAL);
        INSERT INTO events (event_id, topic, payload, qos, created_at) VALUES ('e1', 't/read', x'7b7d', 1, 1.0);""")
    db.close()
    with Outbox(path) as ob:
        (item,) = ob.pending(10)
        assert item.event_id == "e1" and item.hq_acked_at is None and item.resends == 0
        ob.await_hq_acks(1)
        ob.mark_hq_acked(["e1"])
        assert ob.backlog() == 0
    with Outbox(path) as ob:
        assert ob.hq_acks_from() == 1 and ob.get("e1").hq_acked_at is not None  # type: ignore[union-attr]

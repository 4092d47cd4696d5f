"""HQ's store on a real PostgreSQL: the migrations, what ingest writes (each event once), the console's queries
(the search always audited), accounts, retention by partition."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import psycopg
import pytest

from hw_sim.postgres import Postgres
from picar.hq.store import connect, migrate, partitions
from picar.hq.store.accounts import (
    AccountError,
    authenticate,
    create_account,
    delete_account,
    list_accounts,
    set_password,
    update_account,
)
from picar.hq.store.events import BadEvent, parse
from picar.hq.store.plates import plate_key, plate_pattern
from picar.hq.store.queries import (
    acknowledge_hit,
    fleet,
    hit,
    image,
    k9_report,
    positions,
    recent_hits,
    record_watchlist,
    search_audit,
    search_reads,
    watchlist_versions,
)
from picar.hq.store.records import Area, ReadQuery, Searcher
from picar.hq.store.retention import Retention, purge, purge_log
from picar.hq.store.writes import partitions_for, store_batch, write_batch
from picar.pipeline.events import hit_payload, image_payload, read_payload
from picar.types import Fix, Hit, Match, PlateRead, WatchEntry
from picar.watchlist.entries import DEFAULT_CONFUSABLES
from picar.watchlist.matching import Alphabet

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SEARCHER = Searcher("ana", "CASE-2026-17", "stolen car enquiry")


@pytest.fixture
def db(hq_dsn: str) -> Iterator[psycopg.Connection]:
    with connect(hq_dsn) as conn:
        yield conn


def a_read(event_id: str, text: str, t: dt.datetime, vehicle: str = "car1", lat: float = 47.02,
           lon: float = 28.83) -> PlateRead:
    fix = Fix(time=t.timestamp(), lat=lat, lon=lon, fix="3d")
    return PlateRead(event_id, vehicle, "front", text, 0.91, ((text, 0.91),), t.timestamp(), t.timestamp() - 0.4,
                     t.timestamp(), 5, (10, 20, 90, 22), fix, region="md")


def a_hit(read: PlateRead, listed: str, kind: str = "exact") -> Hit:
    entry = WatchEntry(listed, "stolen_vehicle", priority=1, reason="stolen 2026-11-01")
    return Hit(f"hit-{read.event_id}", read, entry, Match(kind, read.text), raised_at=read.captured_at + 0.2)


def message(kind: str, payload: dict, vehicle: str = "car1"):  # type: ignore[no-untyped-def]
    return parse(vehicle, kind, json.dumps(payload).encode())


def store(conn: psycopg.Connection, events: list) -> object:  # type: ignore[type-arg]
    return store_batch(conn, events)


def test_migrations_go_up_down_and_up_again(postgres_server: Postgres) -> None:
    dsn = postgres_server.create_database("migrations_roundtrip")
    assert migrate.current(dsn) is None
    assert migrate.upgrade(dsn) == migrate.head()
    assert migrate.upgrade(dsn) == migrate.head()  # nothing left to do
    assert migrate.downgrade(dsn, "base") is None
    with psycopg.connect(dsn) as conn:
        left = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert left == {"alembic_version"}
    assert migrate.upgrade(dsn) == migrate.head()
    postgres_server.drop_database("migrations_roundtrip")


def test_each_event_is_stored_once_however_often_it_arrives(db: psycopg.Connection) -> None:
    r1 = a_read("r1", "AB123CD", NOW - dt.timedelta(minutes=5))
    r2 = a_read("r2", "XY999ZZ", NOW - dt.timedelta(days=1, minutes=5), vehicle="car2")
    h = a_hit(r1, "AB123CD")
    events = [message("read", read_payload(r1)), message("read", read_payload(r2), "car2"),
              message("hit", hit_payload(h, "a/crop.jpg", "a/frame.jpg")),
              message("image", image_payload(h, "crop", b"\xff\xd8crop\xff\xd9")),
              message("image", image_payload(h, "frame", b"\xff\xd8frame\xff\xd9"))]
    first = store(db, events)
    again = store(db, events + events)
    assert first.stored == {"read": 2, "hit": 1, "image": 2}  # type: ignore[attr-defined]
    assert not again.stored and again.duplicates == {"read": 4, "hit": 2, "image": 4}  # type: ignore[attr-defined]
    assert db.execute("SELECT count(*) FROM reads").fetchone() == (2,)
    # Two days, two partitions: the read's own time decides where it lives.
    days = {p.day for p in partitions.existing(db, "reads")}
    assert {r1.captured_at, r2.captured_at} and len(days) == 2
    (found,) = recent_hits(db)
    assert found.plate == "AB123CD" and found.priority == 1 and found.list == "stolen_vehicle"
    assert [i.role for i in found.images] == ["crop", "frame"]
    img = image(db, found.images[0].event_id)
    assert img is not None and img.data == b"\xff\xd8crop\xff\xd9" and img.ref.content_type == "image/jpeg"
    assert {v.id for v in fleet(db)} == {"car1", "car2"}


def test_a_bad_payload_is_refused_naming_the_field() -> None:
    with pytest.raises(BadEvent, match="plate"):
        message("read", {"event_id": "x", "time": "2026-11-23T10:00:00Z"})
    with pytest.raises(BadEvent, match="time"):
        message("read", {"event_id": "x", "plate": "AB1", "time": "yesterday"})
    with pytest.raises(BadEvent, match="ahead"):
        message("read", {"event_id": "x", "plate": "AB1", "time": (NOW + dt.timedelta(days=3)).isoformat()})
    with pytest.raises(BadEvent, match="not JSON"):
        parse("car1", "hit", b"{nope")
    with pytest.raises(BadEvent, match="base64"):
        message("image", {"event_id": "i", "hit_event_id": "h", "role": "crop", "time": NOW.isoformat(),
                          "content_type": "image/jpeg", "data": "***"})


def test_dispositions_status_positions_and_heat(db: psycopg.Connection) -> None:
    r = a_read("r1", "AB123CD", NOW - dt.timedelta(minutes=3))
    h = a_hit(r, "AB123CD")
    disp = {"event_id": "d1", "hit_event_id": h.event_id, "decision": "accept", "reason": None, "note": "stopped",
            "vehicle": "car1", "time": (NOW - dt.timedelta(minutes=2)).isoformat()}
    status = {"state": "online", "vehicle": "car1", "time": NOW.isoformat(), "version": "0.1.0", "backlog": 3,
              "watchlist_version": 7}
    pos = Fix(time=(NOW - dt.timedelta(seconds=30)).timestamp(), lat=47.1, lon=28.9, fix="3d").to_json()
    heat = {"event_id": "heat1", "state": "alarm", "temp_c": 31.5, "reason": "above 30", "since": NOW.timestamp()}
    store(db, [message("hit", hit_payload(h)), message("disposition", disp), message("status", status),
               message("position", pos), message("position", pos), message("heat", heat)])
    found = hit(db, h.event_id)
    assert found is not None and found.disposition is not None and found.disposition.note == "stopped"
    (car,) = fleet(db)
    assert car.online and car.watchlist_version == 7 and car.backlog == 3
    assert (car.last_lat, car.last_lon) == (47.1, 28.9)
    track = positions(db, "car1", NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1))
    assert len(track) == 1
    offline = {"state": "offline", "vehicle": "car1", "version": "0.1.0", "reason": "connection lost"}
    store(db, [message("status", offline)])
    (car,) = fleet(db)
    assert not car.online and car.watchlist_version == 7  # the last will does not forget the list in force
    assert acknowledge_hit(db, h.event_id, "ana") and not acknowledge_hit(db, h.event_id, "ana")
    assert db.execute("SELECT state, temp_c FROM heat_alarms").fetchall() == [("alarm", 31.5)]


def test_k9_deployment_from_start_and_end_in_either_order(db: psycopg.Connection) -> None:
    start = {"event_id": "k9-d1-start", "event": "k9_start", "deployment_id": "d1", "dog": "Rex", "handler": "Ion",
             "type": "search", "case_number": "C-9", "notes": None, "trigger": "manual",
             "started_at": (NOW - dt.timedelta(hours=2)).isoformat(), "start_lat": 47.0, "start_lon": 28.8}
    end = {**start, "event_id": "k9-d1-end", "event": "k9_end", "ended_at": (NOW - dt.timedelta(hours=1)).isoformat(),
           "outcome": "found", "end_notes": "", "duration_s": 3600.0, "track_length_m": 950.0,
           "track": [{"time": NOW.isoformat(), "lat": 47.0, "lon": 28.8}]}
    store(db, [message("k9", end)])  # the end first (two workers, either order)
    res = store(db, [message("k9", start), message("k9", end)])
    assert res.stored == {"k9": 1} and res.duplicates == {"k9": 1}  # type: ignore[attr-defined]
    (dep,) = k9_report(db, NOW - dt.timedelta(days=1), NOW, dog="Rex", with_track=True)
    assert dep.outcome == "found" and dep.duration_s == 3600.0 and dep.track and dep.case_number == "C-9"
    assert k9_report(db, NOW - dt.timedelta(days=1), NOW, dog="Max") == []


def test_plate_key_is_the_watchlist_matchers_fold() -> None:
    abc = Alphabet(DEFAULT_CONFUSABLES)
    for cls in DEFAULT_CONFUSABLES:
        for a in cls:
            for b in cls:
                assert plate_key(f"X{a}7") == plate_key(f"X{b}7") and abc.same_class(a, b)
    assert plate_key("AB8") != plate_key("AB9")
    assert plate_pattern("ab 12*").prefix and plate_pattern("ab 12*").value == "AB12%"
    with pytest.raises(ValueError, match="plate"):
        plate_pattern("AB%")


def test_search_finds_exact_prefix_wildcard_confusable_area_and_car_and_audits_it(db: psycopg.Connection) -> None:
    t = NOW - dt.timedelta(hours=1)
    reads = [a_read("r1", "AB123CD", t), a_read("r2", "A8I23CD", t, lat=46.0, lon=27.0),
             a_read("r3", "AB124CD", t, vehicle="car2"), a_read("r4", "ZZ999ZZ", t - dt.timedelta(days=2))]
    store(db, [message("read", read_payload(r), r.vehicle_id) for r in reads])

    def ids(query: ReadQuery) -> set[str]:
        return {r.event_id for r in search_reads(db, query, SEARCHER).reads}

    assert ids(ReadQuery(plate="AB123CD")) == {"r1"}
    assert ids(ReadQuery(plate="AB123CD", confusable=True)) == {"r1", "r2"}
    assert ids(ReadQuery(plate="AB12*")) == {"r1", "r3"}
    assert ids(ReadQuery(plate="AB12?CD")) == {"r1", "r3"}
    assert ids(ReadQuery(plate="*CD", vehicle="car2")) == {"r3"}
    assert ids(ReadQuery(area=Area(46.9, 28.7, 47.1, 28.9), since=NOW - dt.timedelta(days=1))) == {"r1", "r3"}
    assert ids(ReadQuery(plate="ZZ999ZZ", since=NOW - dt.timedelta(days=1))) == set()
    res = search_reads(db, ReadQuery(since=NOW - dt.timedelta(days=3), limit=2), SEARCHER)
    assert res.truncated and len(res.reads) == 2
    audit = search_audit(db)
    assert len(audit) == 8 and audit[0].id == res.audit_id and audit[0].result_count == 2
    assert audit[-1].query["plate"] == "AB123CD" and audit[-1].case_number == "CASE-2026-17"
    assert audit[-1].username == "ana" and audit[-1].reason == "stolen car enquiry"
    with pytest.raises(ValueError, match="case number"):
        Searcher("ana", " ", "curious")
    with pytest.raises(ValueError, match="refused"):
        ReadQuery()
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        db.execute("DELETE FROM search_audit")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        db.execute("UPDATE search_audit SET reason = 'nothing'")


def test_accounts_with_argon2_hashes(db: psycopg.Connection) -> None:
    acc = create_account(db, "ana", "correct horse battery", "operator", "ro")
    assert acc.role == "operator" and acc.language == "ro"
    stored = db.execute("SELECT password_hash FROM accounts").fetchone()
    assert stored is not None and stored[0].startswith("$argon2id$") and "correct" not in stored[0]
    assert authenticate(db, "ana", "correct horse battery") is not None
    assert authenticate(db, "ana", "wrong password!") is None
    assert authenticate(db, "nobody", "correct horse battery") is None
    with pytest.raises(AccountError, match="taken"):
        create_account(db, "ana", "another password", "auditor")
    with pytest.raises(AccountError, match="role"):
        create_account(db, "bob", "a long password", "admin")
    with pytest.raises(AccountError, match="password"):
        create_account(db, "bob", "short", "auditor")
    update_account(db, "ana", role="supervisor", language="ru")
    set_password(db, "ana", "a new long password")
    assert authenticate(db, "ana", "correct horse battery") is None
    assert authenticate(db, "ana", "a new long password").role == "supervisor"  # type: ignore[union-attr]
    update_account(db, "ana", disabled=True)
    assert authenticate(db, "ana", "a new long password") is None
    assert [a.username for a in list_accounts(db)] == ["ana"]
    assert delete_account(db, "ana") and list_accounts(db) == []


def test_published_watchlists_are_recorded(db: psycopg.Connection) -> None:
    rec = record_watchlist(db, version=3, kind="snapshot", entries=120, document=b"signed", published_by="ana")
    assert rec.sha256 and watchlist_versions(db)[0].version == 3
    with pytest.raises(psycopg.errors.UniqueViolation):
        record_watchlist(db, version=3, kind="snapshot", entries=1, document=b"x", published_by="bob")


def test_retention_drops_old_partitions_deletes_old_hits_and_logs_each_purge(db: psycopg.Connection) -> None:
    old = NOW - dt.timedelta(days=40)
    r_old, r_new = a_read("old", "AB123CD", old), a_read("new", "AB123CD", NOW - dt.timedelta(hours=1))
    h_old = a_hit(r_old, "AB123CD")
    pos_old = Fix(time=old.timestamp(), lat=47.0, lon=28.8, fix="3d").to_json()
    store(db, [message("read", read_payload(r_old)), message("read", read_payload(r_new)),
               message("hit", hit_payload(h_old)), message("image", image_payload(h_old, "crop", b"jpeg")),
               message("position", pos_old)])
    done = purge(db, Retention(reads_days=30, positions_days=30, hits_days=35, images_days=35), now=NOW)
    kinds = {(p.kind, p.action): p.rows for p in done}
    assert kinds[("reads", "drop partition")] == 1 and kinds[("positions", "drop partition")] == 1
    assert kinds[("hits", "delete")] == 1
    assert db.execute("SELECT event_id FROM reads").fetchall() == [("new",)]
    assert db.execute("SELECT count(*) FROM images").fetchone() == (0,)
    assert {(p.kind, p.action) for p in purge_log(db)} == set(kinds)
    assert purge(db, Retention(), now=NOW) == []  # nothing left to purge, nothing logged
    # An event older than retention when it arrives is acknowledged but not kept, and the purge log says so.
    partitions_for(db, [message("read", read_payload(r_old))])
    with db.transaction():
        res = write_batch(db, [message("read", read_payload(r_old))],
                          oldest={"reads": NOW - dt.timedelta(days=30), "positions": NOW})
    assert res.too_old == {"reads": 1} and not res.stored
    assert purge_log(db, 1)[0].action == "refused on arrival"


def test_picar_hq_db_upgrade_on_the_command_line(postgres_server: Postgres, capsys: pytest.CaptureFixture[str]) -> None:
    from picar.cli import main

    dsn = postgres_server.create_database("cli_upgrade")
    assert main(["hq", "db", "current", "--dsn", dsn]) == 0 and "never migrated" in capsys.readouterr().out
    assert main(["hq", "db", "upgrade", "--dsn", dsn]) == 0
    assert f"revision {migrate.head()}" in capsys.readouterr().out
    assert migrate.current(dsn) == migrate.head()
    assert main(["hq", "db", "upgrade", "--dsn", postgres_server.dsn("no_such_db")]) == 1
    assert "no_such_db" in capsys.readouterr().err
    postgres_server.drop_database("cli_upgrade")


def test_two_workers_needing_the_same_new_partition_create_it_once(hq_dsn: str) -> None:
    import threading

    from psycopg import sql

    from tests.waiting import wait_until

    day = dt.date(2031, 1, 1)
    name = partitions.partition_name("reads", day)
    with connect(hq_dsn) as a, connect(hq_dsn) as b:
        outcome: list[object] = []
        with a.transaction():  # A creates it, holding the partition lock, while B comes for the same day
            a.execute("SELECT pg_advisory_xact_lock(%s)", (partitions._LOCK,))
            a.execute(sql.SQL("CREATE TABLE {} PARTITION OF reads FOR VALUES FROM ('2031-01-01 00:00+00') "
                              "TO ('2031-01-02 00:00+00')").format(sql.Identifier(name)))

            def second() -> None:
                try:
                    outcome.append(partitions.ensure(b, "reads", [day]))
                except Exception as exc:
                    outcome.append(exc)

            t = threading.Thread(target=second)
            t.start()
            assert wait_until(lambda: a.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                                "AND NOT granted").fetchone() == (1,), 10)
        t.join(10)
        assert outcome == [[]]  # B found it made, and made nothing
        assert [p.name for p in partitions.existing(b, "reads")] == [name]

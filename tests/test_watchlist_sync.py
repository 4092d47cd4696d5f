"""Signed watchlist updates on the car: verify before use, atomic apply, survive restarts."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from picar.watchlist.signing import generate_keypair, load_private_key, open_envelope, sign
from picar.watchlist.sync import STATE_FILE, UpdateResult, WatchlistStore
from picar.watchlist.update import delta_payload, snapshot_payload

AT = datetime(2026, 6, 1, tzinfo=UTC)
V1 = [{"plate": "ABC1234", "list": "stolen_vehicle"}, {"plate": "XYZ987", "list": "amber", "priority": 1}]


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "hq")


def signed(payload: bytes, key: Path) -> bytes:
    return sign(payload, load_private_key(key))


def store(tmp_path: Path, pub: Path, audit: list[UpdateResult] | None = None) -> WatchlistStore:
    s = WatchlistStore(tmp_path / "car", pub, audit=None if audit is None else audit.append)
    s.load()
    return s


def plates(s: WatchlistStore) -> set[str]:
    return {e.plate for e in s.current.entries()}


def accepted_v1(tmp_path: Path, keys: tuple[Path, Path], audit: list[UpdateResult] | None = None
                ) -> WatchlistStore:
    s = store(tmp_path, keys[1], audit)
    r = s.apply_update(signed(snapshot_payload(V1, version=1, list_id="fleet-a"), keys[0]), "test")
    assert r.accepted, r.reason
    return s


def assert_still_v1(tmp_path: Path, keys: tuple[Path, Path], s: WatchlistStore) -> None:
    """The old list stays in force and is what a fresh store on the same directory loads."""
    for st in (s, store(tmp_path, keys[1])):
        assert st.version == 1
        assert plates(st) == {"ABC1234", "XYZ987"}
        assert [e.plate for e, _ in st.current.match([("A8C1234", 0.9)], at=AT)] == ["ABC1234"]


def test_keygen_writes_private_key_0600(keys: tuple[Path, Path]) -> None:
    key, pub = keys
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PUBLIC KEY" in pub.read_bytes()
    with pytest.raises(FileExistsError):
        generate_keypair(key.with_suffix(""))


def test_signed_snapshot_accepted_and_survives_restart(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    audit: list[UpdateResult] = []
    s = accepted_v1(tmp_path, keys, audit)
    assert s.version == 1
    assert audit[-1].accepted and audit[-1].signed and audit[-1].version == 1 and audit[-1].entries == 2
    assert (tmp_path / "car" / STATE_FILE).exists()
    again = store(tmp_path, keys[1])
    assert again.version == 1 and again.current.list_id == "fleet-a"
    [(e, m)] = again.current.match([("XYZ987", 0.9)], at=AT)
    assert (e.list, e.priority, m.kind) == ("amber", 1, "exact")


def test_tampered_payload_rejected(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    audit: list[UpdateResult] = []
    s = accepted_v1(tmp_path, keys, audit)
    env = json.loads(signed(snapshot_payload([{"plate": "EVIL1"}], version=2), keys[0]))
    payload = bytearray(base64.b64decode(env["payload"]))
    payload[payload.index(b"EVIL1")] = ord("F")  # one byte changed after signing
    env["payload"] = base64.b64encode(bytes(payload)).decode()
    r = s.apply_update(json.dumps(env).encode(), "test")
    assert not r.accepted and "bad signature" in r.reason
    assert audit[-1] == r
    assert json.loads(json.dumps(r.to_json()))["accepted"] is False
    assert_still_v1(tmp_path, keys, s)


def test_unsigned_rejected(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    s = accepted_v1(tmp_path, keys)
    r = s.apply_update(snapshot_payload([{"plate": "EVIL1"}], version=2), "test")
    assert not r.accepted and "unsigned" in r.reason
    env = json.loads(signed(snapshot_payload([{"plate": "EVIL1"}], version=2), keys[0]))
    del env["signature"]
    r = s.apply_update(json.dumps(env).encode(), "test")
    assert not r.accepted and "unsigned" in r.reason
    assert_still_v1(tmp_path, keys, s)


def test_wrong_key_rejected(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    s = accepted_v1(tmp_path, keys)
    other_key, _ = generate_keypair(tmp_path / "rogue")
    r = s.apply_update(signed(snapshot_payload([{"plate": "EVIL1"}], version=2), other_key), "test")
    assert not r.accepted and "trusts key" in r.reason
    assert_still_v1(tmp_path, keys, s)


def test_out_of_order_snapshot_rejected(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    s = accepted_v1(tmp_path, keys)
    r = s.apply_update(signed(snapshot_payload([{"plate": "SAME1"}], version=1), keys[0]), "t")
    assert not r.accepted and "out of order" in r.reason and "version in force 1" in r.reason
    assert_still_v1(tmp_path, keys, s)
    replay = signed(snapshot_payload([{"plate": "OLD1111"}], version=2), keys[0])
    assert s.apply_update(signed(snapshot_payload([{"plate": "NEW3333"}], version=3), keys[0]), "t").accepted
    r = s.apply_update(replay, "t")  # an older, validly signed list replayed later
    assert not r.accepted and "version 2 is not newer" in r.reason
    assert store(tmp_path, keys[1]).version == 3 and plates(s) == {"NEW3333"}


def test_delta_applied_and_wrong_base_rejected(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    s = accepted_v1(tmp_path, keys)
    bad = delta_payload([{"plate": "NEW5555"}], [], version=3, base_version=2, list_id="fleet-a")
    r = s.apply_update(signed(bad, keys[0]), "t")
    assert not r.accepted and "base_version 2" in r.reason
    assert_still_v1(tmp_path, keys, s)
    good = delta_payload([{"plate": "NEW 5555", "list": "wanted", "priority": 1},
                          {"plate": "XYZ987", "list": "amber", "priority": 1, "notes": "updated"}],
                         [{"plate": "ABC1234", "list": "stolen_vehicle"}], version=2, base_version=1,
                         list_id="fleet-a", compress=True)
    r = s.apply_update(signed(good, keys[0]), "t")
    assert r.accepted, r.reason
    assert (r.version, r.added, r.removed, r.replaced, r.entries) == (2, 1, 1, 1, 2)
    again = store(tmp_path, keys[1])
    assert again.version == 2 and plates(again) == {"NEW5555", "XYZ987"}
    assert [e.notes for e in again.current.entries() if e.plate == "XYZ987"] == ["updated"]
    assert again.current.match([("ABC1234", 0.9)], at=AT) == []


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "not valid JSON"),
    (b'{"format": "picar-watchlist/1", "version": 2}', "created_at"),
    (b'{"format": "other", "version": 2}', "format"),
    (json.dumps({"format": "picar-watchlist/1", "type": "snapshot", "version": "2",
                 "created_at": "2026-01-01T00:00:00Z", "entries": []}).encode(), "version '2'"),
    (json.dumps({"format": "picar-watchlist/1", "type": "snapshot", "version": 2,
                 "created_at": "2026-01-01T00:00:00Z",
                 "entries": [{"plate": "OK1"}, {"plate": "B@D"}]}).encode(), "entries[1], field 'plate'"),
    (gzip.compress(b"\x00garbage")[:-4], "gzip"),
    (snapshot_payload([{"plate": f"W{i:04d}*"} for i in range(1001)], version=2), "at most 1000"),
])
def test_malformed_rejected(tmp_path: Path, keys: tuple[Path, Path], payload: bytes, reason: str) -> None:
    s = accepted_v1(tmp_path, keys)
    r = s.apply_update(signed(payload, keys[0]), "t")
    assert not r.accepted and reason in r.reason, r.reason
    r = s.apply_update(b"\x00\x01 not an envelope", "t")
    assert not r.accepted
    assert_still_v1(tmp_path, keys, s)


def test_corrupt_state_falls_back_to_previous(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    s = accepted_v1(tmp_path, keys)
    r = s.apply_update(signed(snapshot_payload([{"plate": "TWO2222"}], version=2), keys[0]), "t")
    assert r.accepted
    state = tmp_path / "car" / STATE_FILE
    state.write_bytes(state.read_bytes()[:100])  # e.g. a damaged SD card
    again = store(tmp_path, keys[1])
    assert again.version == 1 and plates(again) == {"ABC1234", "XYZ987"}


def test_without_required_signatures_an_unsigned_update_is_accepted(tmp_path: Path) -> None:
    # (A missing key with require_signature: test_a_car_without_its_public_key_starts_and_refuses_every_update.)
    s = WatchlistStore(tmp_path / "car", None, require_signature=False)
    r = s.apply_update(snapshot_payload(V1, version=5), "usb")
    assert r.accepted and not r.signed and s.version == 5


def test_readers_see_old_or_new_list_never_partial(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    s = accepted_v1(tmp_path, keys)
    big = [{"plate": f"N{i:06d}"} for i in range(20000)]
    update = signed(snapshot_payload(big, version=2), keys[0])
    seen: set[tuple[int, int]] = set()
    reading = threading.Event()
    done = threading.Event()

    def reader() -> None:
        # Reads before, during and after the update: it stops only after one look once it is applied.
        while True:
            finished = done.is_set()
            wl = s.current
            seen.add((wl.version, len(wl)))
            reading.set()
            if finished:
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        assert reading.wait(30), "the reader never ran"
        assert s.apply_update(update, "t").accepted
    finally:
        done.set()
        t.join(timeout=30)
    assert not t.is_alive()
    assert seen == {(1, 2), (2, 20000)}, seen  # the old list, then the new one, nothing in between
    assert s.current.match([("N012345", 0.9)], at=AT)[0][1].kind == "exact"


def test_open_envelope_without_requirement_accepts_raw_payload() -> None:
    opened = open_envelope(b'{"format": "picar-watchlist/1"}', None, require_signature=False)
    assert not opened.signed and opened.payload.startswith(b"{")


# --- item 6 of issue 20: nothing raises out of apply_update; every rejection is logged and audited ---


def rejected_logged_and_audited(s: WatchlistStore, audit: list[UpdateResult], data: bytes,
                                caplog: pytest.LogCaptureFixture) -> UpdateResult:
    audit.clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="picar.watchlist"):
        r = s.apply_update(data, "t")
    assert not r.accepted
    assert audit == [r]
    assert any("rejected update from t" in rec.getMessage() for rec in caplog.records), caplog.text
    return r


def test_deeply_nested_json_is_rejected_logged_and_audited(tmp_path: Path, keys: tuple[Path, Path],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    audit: list[UpdateResult] = []
    unsigned = WatchlistStore(tmp_path / "u", None, require_signature=False, audit=audit.append)
    deep = b"[" * 100_000 + b"]" * 100_000
    r = rejected_logged_and_audited(unsigned, audit, deep, caplog)
    assert "nested" in r.reason, r.reason
    deep_obj = b'{"payload": ' + deep + b"}"
    rejected_logged_and_audited(unsigned, audit, deep_obj, caplog)
    s = accepted_v1(tmp_path, keys, audit)
    comment = b'{"format": "picar-watchlist/1", "version": 2, "comment": ' + deep + b"}"
    r = rejected_logged_and_audited(s, audit, signed(comment, keys[0]), caplog)
    assert "nested" in r.reason, r.reason
    rejected_logged_and_audited(s, audit, deep, caplog)  # unsigned: refused before any JSON is parsed
    assert_still_v1(tmp_path, keys, s)


def test_seventy_thousand_regions_are_rejected_logged_and_audited(tmp_path: Path, keys: tuple[Path, Path],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    audit: list[UpdateResult] = []
    s = accepted_v1(tmp_path, keys, audit)
    many = [{"plate": "ABC123", "region": f"R{i:05d}"} for i in range(70_000)]
    r = rejected_logged_and_audited(s, audit, signed(snapshot_payload(many, version=2), keys[0]), caplog)
    assert "field 'region'" in r.reason and "distinct regions" in r.reason, r.reason
    assert_still_v1(tmp_path, keys, s)


def test_an_oversized_update_is_rejected_before_it_is_parsed(tmp_path: Path, keys: tuple[Path, Path],
                                                             caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from picar.watchlist import signing, update

    audit: list[UpdateResult] = []
    s = accepted_v1(tmp_path, keys, audit)
    data = signed(snapshot_payload([{"plate": f"NEW{i:04d}"} for i in range(300)], version=2), keys[0])
    monkeypatch.setattr(update, "MAX_UPDATE_BYTES", 1000)
    parsed: list[bytes] = []
    real_loads = json.loads
    monkeypatch.setattr(signing.json, "loads", lambda b, **kw: parsed.append(b) or real_loads(b, **kw))
    assert len(data) > 4 * 1000
    r = rejected_logged_and_audited(s, audit, data, caplog)
    assert "bytes" in r.reason and parsed == [], r.reason
    assert_still_v1(tmp_path, keys, s)


def test_an_unexpected_error_inside_is_a_logged_and_audited_rejection(
        tmp_path: Path, keys: tuple[Path, Path], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from picar.watchlist.builder import WatchlistBuilder

    audit: list[UpdateResult] = []
    s = accepted_v1(tmp_path, keys, audit)

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(WatchlistBuilder, "build", broken)
    r = rejected_logged_and_audited(s, audit, signed(snapshot_payload([{"plate": "NEW1234"}], version=2),
                                                     keys[0]), caplog)
    assert "RuntimeError: boom" in r.reason, r.reason
    monkeypatch.undo()
    assert_still_v1(tmp_path, keys, s)


def test_an_unreadable_saved_list_is_reported_not_passed_off_as_an_empty_one(tmp_path: Path) -> None:
    """Both saved copies damaged: the car starts, says it has no list, and an accepted update clears that."""
    from picar.status import StatusReport
    from picar.watchlist.sync import PREVIOUS_FILE, STATE_FILE

    store = WatchlistStore(tmp_path / "wl", public_key=None, require_signature=False)
    store.load()
    assert store.problem is None  # a new car: empty, and nothing wrong
    for name in (STATE_FILE, PREVIOUS_FILE):
        (tmp_path / "wl" / name).write_bytes(b"PK\x03\x04 not a zip")
    again = WatchlistStore(tmp_path / "wl", public_key=None, require_signature=False)
    assert again.load() is False
    assert again.problem is not None and "unreadable" in again.problem and STATE_FILE in again.problem
    status = StatusReport("car1", lambda: again.version, lambda: again.problem).summary()
    assert status["watchlist_problem"] == again.problem  # what HQ and the page see
    from picar.watchlist.update import snapshot_payload

    assert again.apply_update(snapshot_payload([{"plate": "AB123CD"}], version=2), origin="test").accepted
    assert again.problem is None


def test_a_car_without_its_public_key_starts_and_refuses_every_update(tmp_path: Path) -> None:
    """check-config warns 'every watchlist will be rejected'; the daemon agrees instead of refusing to start."""
    from picar.watchlist.update import snapshot_payload

    store = WatchlistStore(tmp_path / "wl", public_key=None, require_signature=True)
    store.load()
    assert store.problem is not None and "no public key" in store.problem
    result = store.apply_update(snapshot_payload([{"plate": "AB123CD"}], version=2), origin="test")
    assert not result.accepted and store.version == 0

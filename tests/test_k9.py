"""K9 log: SQLite records, HQ events, GPS track, door input on a real pty, and the `picar k9` CLI."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hw_sim.door import DoorSim
from picar.station.k9 import DoorInput, K9Error, K9Log, PublishDeferred, defer_publish
from picar.station.k9_cli import k9_main


class Clock:
    def __init__(self, t: float = 1_795_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Hq:
    """Records what was published, like HqLink.publish_event's caller sees it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail = False

    def publish(self, kind: str, payload: dict[str, Any]) -> str:
        if self.fail:
            raise ConnectionError("outbox full")
        self.sent.append((kind, payload))
        return f"msg-{len(self.sent)}"


@pytest.fixture()
def gps() -> dict[str, Any]:
    return {"pos": {"lat": 52.3700, "lon": 4.8900, "fix": "3d"}}


def make_log(tmp_path: Path, hq: Hq, gps: dict[str, Any], clock: Clock) -> K9Log:
    return K9Log(tmp_path / "k9.sqlite", hq.publish, lambda: gps["pos"], clock)


def test_start_track_end_report(tmp_path: Path, gps: dict[str, Any]) -> None:
    hq, clock = Hq(), Clock()
    k9 = make_log(tmp_path, hq, gps, clock)
    dep = k9.start("Rex", "Sgt Jansen", "track", case_number="2026-1234", notes="suspect fled north")
    assert hq.sent[0][0] == "k9"
    start = hq.sent[0][1]
    assert start["event"] == "k9_start" and start["dog"] == "Rex" and start["type"] == "track"
    assert start["start_lat"] == pytest.approx(52.37) and start["trigger"] == "manual"
    assert start["event_id"] == f"k9-{dep['deployment_id']}-start" and "outcome" not in start
    assert [d["deployment_id"] for d in k9.active()] == [dep["deployment_id"]]

    for i in range(1, 6):  # the dog goes north, one fix a second
        clock.t += 1.0
        gps["pos"] = {"lat": 52.3700 + i * 0.0001, "lon": 4.8900}
        assert k9.record_position() == 1
    clock.t += 0.2  # faster than the minimum interval: not stored
    gps["pos"] = {"lat": 52.3710, "lon": 4.8900}
    assert k9.record_position() == 0
    gps["pos"] = None  # no fix: nothing stored, nothing crashes
    clock.t += 5
    assert k9.record_position() == 0

    gps["pos"] = {"lat": 52.3706, "lon": 4.8901}
    ended = k9.end(dep["deployment_id"], "apprehended", "suspect found in shed")
    assert ended["duration_s"] == pytest.approx(10.2) and not ended["active"]
    end = hq.sent[1][1]
    assert end["event"] == "k9_end" and end["outcome"] == "apprehended"
    assert end["event_id"] == f"k9-{dep['deployment_id']}-end"
    assert len(end["track"]) == 7 and end["track"][0]["lat"] == pytest.approx(52.37)
    assert 60 < end["track_length_m"] < 80  # ~0.0005 deg of latitude plus a short hop east
    assert k9.active() == []
    assert k9.record_position() == 0  # no deployment active: no track kept

    (rep,) = k9.report(clock.t - 3600, clock.t + 1)
    assert rep["track_points"] == 7 and rep["published"] is True
    assert k9.report(clock.t + 10, clock.t + 20) == []


def test_bad_input_names_field_and_allowed_values(tmp_path: Path, gps: dict[str, Any]) -> None:
    hq = Hq()
    k9 = make_log(tmp_path, hq, gps, Clock())
    with pytest.raises(K9Error, match=r"type 'sniffing' is not allowed; use one of: track, area_search"):
        k9.start("Rex", "Jansen", "sniffing")
    with pytest.raises(K9Error, match="dog is required"):
        k9.start("  ", "Jansen", "track")
    with pytest.raises(K9Error, match="trigger"):
        k9.start("Rex", "Jansen", "track", trigger="radio")
    dep = k9.start("Rex", "Jansen", "narcotics")
    with pytest.raises(K9Error, match="outcome 'won'"):
        k9.end(dep["deployment_id"], "won")
    k9.end(dep["deployment_id"], "found")
    with pytest.raises(K9Error, match="already ended"):
        k9.end(dep["deployment_id"], "found")
    with pytest.raises(KeyError):
        k9.end("nope", "found")
    assert len(hq.sent) == 2  # the rejected calls published nothing


def test_failed_publish_is_kept_and_sent_later(tmp_path: Path, gps: dict[str, Any]) -> None:
    hq, clock = Hq(), Clock()
    k9 = make_log(tmp_path, hq, gps, clock)
    hq.fail = True
    dep = k9.start("Rex", "Jansen", "explosives")
    assert dep["published"] is False and hq.sent == []
    hq.fail = False
    assert k9.publish_pending() == 1
    assert hq.sent[0][1]["deployment_id"] == dep["deployment_id"]
    assert k9.publish_pending() == 0  # nothing sent twice
    k9.close()
    # A reopened log still knows the deployment is active.
    again = make_log(tmp_path, hq, gps, clock)
    assert [d["deployment_id"] for d in again.active()] == [dep["deployment_id"]]


def test_defer_publish_raises_deferred() -> None:
    with pytest.raises(PublishDeferred):
        defer_publish("k9", {})


def test_door_edges_start_only_when_idle(tmp_path: Path, gps: dict[str, Any]) -> None:
    hq = Hq()
    k9 = make_log(tmp_path, hq, gps, Clock())
    door = DoorInput("/dev/null", 9600, k9, "Rex", "Jansen")
    started = door.feed(b"DOOR OPEN")
    assert started is not None and started["trigger"] == "door" and started["type"] == "officer_protection"
    assert door.feed(b"DOOR OPEN") is None  # same edge
    assert door.feed(b"DOOR CLOSED") is None
    assert door.feed(b"DOOR OPEN") is None  # a deployment is active
    k9.end(started["deployment_id"], "called_off")
    assert door.feed(b"DOOR OPEN") is None  # still open since the last edge
    assert door.feed(b"DOOR CLOSED*37") is None  # wrong checksum: ignored and counted
    assert door.lines_bad == 1
    assert door.feed(b"DOOR CLOSED") is None
    assert door.feed(b"door open") is not None
    assert door.feed(b"DOOR AJAR") is None and door.lines_bad == 2


def test_door_pop_on_a_real_pty_starts_a_deployment(tmp_path: Path, gps: dict[str, Any]) -> None:
    hq = Hq()
    k9 = make_log(tmp_path, hq, gps, Clock())
    started = threading.Event()
    deployments: list[dict[str, Any]] = []
    k9.add_listener(lambda d: (deployments.append(d), started.set()))
    sim = DoorSim()
    door = DoorInput(sim.path, 9600, k9, "Rex", "Jansen", kind="apprehension")
    door.start()
    try:
        assert door._reader.connected.wait(30)
        sim.send("bad")
        sim.send("closed")
        sim.send("open")
        assert started.wait(30), "door OPEN did not start a deployment"
    finally:
        door.stop()
        sim.close()
    (dep,) = deployments
    assert dep["trigger"] == "door" and dep["type"] == "apprehension" and dep["dog"] == "Rex"
    assert door.lines_bad == 1  # the garbled line came first and was counted
    assert hq.sent[0][1]["trigger"] == "door"


def test_cli_start_end_list_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "k9.sqlite")
    assert k9_main(["start", "--db", db, "--dog", "Rex", "--handler", "Jansen", "--type", "building_search",
                    "--case", "C-77", "--notes", "=cmd|' /C calc'!A0"]) == 0
    dep_id = capsys.readouterr().out.split()[0]
    assert k9_main(["list", "--db", db]) == 0
    assert dep_id in capsys.readouterr().out
    # Add a track the way the daemon would, then end from the CLI.
    pos = iter([{"lat": 51.0, "lon": 4.0}, {"lat": 51.001, "lon": 4.0005}])
    clock = Clock(2_000_000_000.0)
    daemon_log = K9Log(Path(db), defer_publish, lambda: next(pos), clock)
    daemon_log.record_position()
    clock.t += 5
    daemon_log.record_position()
    daemon_log.close()
    assert k9_main(["end", "--db", db, dep_id, "--outcome", "found"]) == 0
    capsys.readouterr()

    out_html, out_csv = tmp_path / "r.html", tmp_path / "r.csv"
    assert k9_main(["report", "--db", db, "--from", "2020-01-01", "--to", "2035-12-31",
                    "--html", str(out_html), "--csv", str(out_csv)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 deployment"  # English by default, its plural rule
    page = out_html.read_text()
    assert "<polyline points=" in page and "51.001000" in page and "building_search" in page
    assert "C-77" in page and "&#x27; /C calc&#x27;" in page  # escaped, not markup
    (row,) = list(csv.DictReader(out_csv.open()))
    assert row["deployment_id"] == dep_id and row["outcome"] == "found" and row["track_points"] == "2"
    assert row["notes"].startswith("'=")  # no formula in a spreadsheet
    assert row["published"] == "False"  # the CLI has no HQ link: the daemon sends it


def test_cli_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "k9.sqlite")
    assert k9_main(["start", "--db", db, "--dog", "Rex", "--handler", "J", "--type", "sniff"]) == 2
    assert "type 'sniff' is not allowed" in capsys.readouterr().err
    assert k9_main(["report", "--db", db, "--from", "yesterday", "--to", "2026-01-01"]) == 2
    assert "--from 'yesterday' is not a date" in capsys.readouterr().err
    assert k9_main(["end", "--db", db, "abc", "--outcome", "found"]) == 2
    assert "no K9 deployment 'abc'" in capsys.readouterr().err
    assert k9_main(["list", "--db", str(tmp_path / "missing.sqlite")]) == 2


def test_door_simulator_cli_drives_the_door_input(tmp_path: Path, gps: dict[str, Any]) -> None:
    hq = Hq()
    k9 = make_log(tmp_path, hq, gps, Clock())
    started = threading.Event()
    k9.add_listener(lambda d: started.set())
    sim = subprocess.Popen([sys.executable, "-m", "hw_sim.door"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True, cwd=Path(__file__).resolve().parents[1])
    door: DoorInput | None = None
    try:
        assert sim.stdout is not None and sim.stdin is not None
        word, path = sim.stdout.readline().split()
        assert word == "PTY"
        door = DoorInput(path, 9600, k9, "Rex", "Jansen")
        door.start()
        assert door._reader.connected.wait(30)
        sim.stdin.write("closed\nopen\n")
        sim.stdin.flush()
        assert started.wait(30), "the simulated door pop started nothing"
    finally:
        if door is not None:
            door.stop()
        sim.terminate()
        assert sim.wait(30) == 0
    (dep,) = k9.active()
    assert dep["trigger"] == "door" and door.state == "OPEN"


def test_retention_deletes_old_ended_deployments_with_their_tracks_but_never_unsent_ones(
    tmp_path: Path, gps: dict[str, Any]
) -> None:
    """retention.k9_days is read by housekeeping and K9 records older than it leave the car's database."""
    from picar.config import parse_config
    from picar.housekeeping import Housekeeping
    from picar.link.outbox import Outbox
    from picar.link.publisher import EventPublisher
    from picar.pipeline.store import Store

    hq, clock = Hq(), Clock()
    k9 = make_log(tmp_path, hq, gps, clock)
    old = k9.start("Rex", "Sgt Jansen", "track")
    clock.t += 60
    k9.record_position()
    k9.end(old["deployment_id"], "found")
    hq.fail = True  # this one's end never reached the outbox: it must stay whatever its age
    unsent = k9.start("Ace", "Sgt Popa", "area_search")
    clock.t += 60
    k9.end(unsent["deployment_id"], "not_found")  # kept as pending for HQ
    hq.fail = False
    clock.t += 40 * 86400
    recent = k9.start("Max", "Sgt Rusu", "narcotics")
    k9.end(recent["deployment_id"], "other")
    cfg = parse_config({"vehicle": {"id": "car1"}, "cameras": [{"name": "f", "source": "0"}],
                        "mqtt": {"enabled": False, "tls": False}, "storage": {"data_dir": str(tmp_path / "d")},
                        "retention": {"k9_days": 30}}, tmp_path)
    store = Store(tmp_path / "d", min_free_mb=0)
    outbox = Outbox(tmp_path / "d" / "outbox.db")
    try:
        Housekeeping(lambda: cfg, store, EventPublisher(outbox, None, "picar/v1", "car1"), dict, k9=k9).purge()
        with pytest.raises(KeyError):
            k9.get(old["deployment_id"])
        assert k9.get(unsent["deployment_id"])["deployment_id"] == unsent["deployment_id"]
        assert k9.get(recent["deployment_id"])["deployment_id"] == recent["deployment_id"]
        db = sqlite3.connect(tmp_path / "k9.sqlite")
        assert db.execute("SELECT COUNT(*) FROM k9_track WHERE deployment_id = ?",
                          (old["deployment_id"],)).fetchone()[0] == 0
        db.close()
        assert any(a[2] == "purge k9" and '"deployments": 1' in a[3] for a in store.audit_entries())
    finally:
        outbox.close()
        store.close()


def test_a_damaged_k9_database_is_kept_for_inspection_and_a_new_one_started(
    tmp_path: Path, gps: dict[str, Any]
) -> None:
    junk = bytes(range(256)) * 32
    (tmp_path / "k9.sqlite").write_bytes(junk)
    k9 = make_log(tmp_path, Hq(), gps, Clock())
    dep = k9.start("Rex", "Sgt Jansen", "track")
    assert k9.get(dep["deployment_id"])["dog"] == "Rex"
    (kept,) = tmp_path.glob("k9.sqlite.damaged-*")
    assert kept.read_bytes() == junk

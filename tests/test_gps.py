"""GPS input: NMEA assembly, fix_at, serial and gpsd sources, and the `picar gps` contract."""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from functools import reduce
from pathlib import Path

import pytest

from hw_sim.track import TrackPoint, track_at
from hw_sim.virtual_gps import Faults, VirtualGps, nmea_for_point
from picar.sources.gps import FixHistory, NoGps, SerialGps, interpolate, open_gps
from picar.sources.gps_cli import gps_main
from picar.sources.gpsd import GpsdDecoder, GpsdGps
from picar.sources.nmea import Epoch, NmeaAssembler
from picar.types import Fix

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
JSON_KEYS = {"time", "lat", "lon", "fix", "speed_kmh", "heading_deg", "sats", "hdop"}

# Published example sentences (independent of our generator), checksums as printed.
RMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
GSA = "$GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1*39"


def sentence(body: str) -> str:
    return f"${body}*{reduce(lambda a, c: a ^ ord(c), body, 0):02X}"


class Clock:
    """A clock the test steps: monotonic and wall time 1,000,000 s apart."""

    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t + 1_000_000.0


def drive(n: int, step_s: float = 1.0) -> list[TrackPoint]:
    return [TrackPoint(i * step_s, 52.52 + i * 0.0001, 13.405 + i * 0.0002, 36.0, 45.0) for i in range(n)]


# -- NMEA assembly ------------------------------------------------------------------------------------


def test_one_epoch_merges_rmc_gga_gsa() -> None:
    asm = NmeaAssembler()
    for line in (RMC, GGA, GSA):
        assert asm.feed_line(line) is None  # first epoch: layout unknown, ends at the next one
    (epoch,) = asm.flush()
    fix = epoch.fix
    assert fix is not None
    assert fix.time == datetime(2094, 3, 23, 12, 35, 19, tzinfo=UTC)  # two-digit years are 2000-2099
    assert fix.lat == pytest.approx(48 + 7.038 / 60)
    assert fix.lon == pytest.approx(11 + 31.0 / 60)
    assert (fix.fix, fix.sats, fix.hdop, fix.alt_m) == ("3d", 8, 0.9, 545.4)
    assert fix.speed_kmh == pytest.approx(22.4 * 1.852)
    assert fix.heading_deg == 84.4
    assert asm.counters.sentences == 3 and asm.counters.fixes == 1


def test_learned_layout_emits_on_last_sentence_of_epoch() -> None:
    asm = NmeaAssembler()
    pts = drive(3)
    lines = [nmea_for_point(p, T0 + timedelta(seconds=p.t_s), talker="GN") for p in pts]
    for line in lines[0]:
        assert asm.feed_line(line) is None
    got = [asm.feed_line(line) for line in lines[1]]
    # Epoch 0 ends when epoch 1 starts; epoch 1 is complete at its last sentence (GSA), not a period later.
    assert got[0] is not None and got[0].time == T0
    assert got[1] is None and got[2] is None
    assert got[3] is not None and got[3].time == T0 + timedelta(seconds=1)
    assert got[3].lat == pytest.approx(pts[1].lat, abs=1e-7)


@pytest.mark.parametrize(
    "lines",
    [
        ["GPRMC,123519,V,,,,,,,230394,,,N", "GPGGA,123519,,,,,0,00,99.99,,,,,,"],
        ["GPRMC,123519,V,4807.038,N,01131.000,E,0.0,,230394,,,N"],  # stale position, status V
        ["GNRMC,123519,A,4807.038,N,01131.000,E,0.0,,230394,,,A", "GNGGA,123519,,,,,0,00,,,,,,,"],
        ["GNRMC,123519,A,4807.038,N,01131.000,E,0.0,,230394,,,A", "GNGSA,A,1,,,,,,,,,,,,,,,"],
        ["GNGGA,123519,0000.000,N,00000.000,E,0,00,,,,,,,"],
    ],
)
def test_no_fix_gives_no_position(lines: list[str]) -> None:
    asm = NmeaAssembler()
    assert all(asm.feed_line(sentence(body)) is None for body in lines)
    (epoch,) = asm.flush()
    assert epoch.fix is None
    assert epoch.to_json()["lat"] is None and epoch.to_json()["fix"] == "none"


def test_malformed_mix_is_counted_and_survived() -> None:
    asm = NmeaAssembler()
    t = "100000.00"
    good_rmc = sentence(f"GPRMC,{t},A,5231.20000,N,01324.30000,E,10.000,90.00,231126,,,A")
    good_gga = sentence(f"GPGGA,{t},5231.20000,N,01324.30000,E,1,07,1.10,40.0,M,47.0,M,,")
    inputs: list[bytes | str] = [
        b"\xb5\x62\x01\x07\x00\x00\xff\xfe",  # UBX binary, no sentence at all -> unparsed
        good_rmc[:-2] + "00",  # wrong checksum -> bad_checksum
        good_rmc.split("*")[0],  # no checksum -> bad_checksum
        "$GPRMC,1000" + good_rmc,  # partial line glued to a good one -> bad_checksum + sentence
        sentence("PUBX,00,100000.00,5231.2,N"),  # proprietary -> ignored
        sentence("GPGSV,1,1,01,05,40,083,46"),  # valid, unused -> ignored
        sentence("IIRMC,100000.00,A,5231.20000,N,01324.30000,E,1,1,231126,,,A"),  # other talker -> ignored
        "$GPGGA," + "9" * 400,  # over-long -> overlong
        sentence(f"GPGGA,{t},52x1.2,N,01324.30000,E,1,07,1.10,40.0,M,47.0,M,,"),  # bad field -> unparsed
        b"\x00\x00" + good_gga.encode() + b"\r\n",  # NULs before a good sentence -> unparsed + sentence
        b"$\x00\x01",  # a '$' that starts nothing -> unparsed
    ]
    fixes = [f for line in inputs if (f := asm.feed_line(line)) is not None]
    fixes += [e.fix for e in asm.flush() if e.fix is not None]
    c = asm.counters
    assert (c.bad_checksum, c.ignored, c.overlong, c.unparsed) == (3, 3, 1, 4)
    assert c.sentences == 2
    assert len(fixes) == 1
    assert (fixes[0].lat, fixes[0].sats) == (pytest.approx(52.52), 7)


def fix_key(e: Epoch) -> tuple[object, ...]:
    f = e.fix
    return (e.time, None) if f is None else (e.time, f.lat, f.lon, f.fix, f.speed_kmh, f.heading_deg, f.sats)


def test_bytes_split_anywhere_give_the_same_fixes_and_junk_is_bounded() -> None:
    stream = b"".join(
        b"".join(s.encode() + b"\r\n" for s in nmea_for_point(p, T0 + timedelta(seconds=p.t_s))) for p in drive(5)
    )
    whole = NmeaAssembler()
    expected = [fix_key(e) for e in whole.feed_bytes(stream) + whole.flush()]
    assert len(expected) == 5 and all(k[1] is not None for k in expected)
    for step in (1, 7, 64):
        asm = NmeaAssembler()
        assert [fix_key(e) for e in asm.feed_bytes(stream[:0])] == []
        got = []
        for i in range(0, len(stream), step):
            got += asm.feed_bytes(stream[i : i + step])
        assert [fix_key(e) for e in got + asm.flush()] == expected
    # 10 KB of binary with no line end: dropped, counted, and the line it ran into is given up too.
    asm = NmeaAssembler()
    got = asm.feed_bytes(bytes(range(256)).replace(b"\n", b"") * 40) + asm.feed_bytes(stream) + asm.flush()
    assert asm.counters.overlong == 1
    assert [fix_key(e) for e in got][1:] == expected[1:]
    assert got[0].fix is not None and got[0].fix.speed_kmh is None  # its RMC (and so its VTG) was lost


def test_date_rolls_over_midnight_for_gga_only_epochs() -> None:
    asm = NmeaAssembler()
    asm.feed_line(sentence("GPRMC,235959.00,A,5231.20000,N,01324.30000,E,0.0,,231126,,,A"))
    asm.feed_line(sentence("GPGGA,235959.00,5231.20000,N,01324.30000,E,1,07,1.1,40.0,M,47.0,M,,"))
    asm.feed_line(sentence("GPGGA,000000.00,5231.20000,N,01324.30000,E,1,07,1.1,40.0,M,47.0,M,,"))
    (epoch,) = asm.flush()
    assert epoch.time == datetime(2026, 11, 24, 0, 0, 0, tzinfo=UTC)


def test_gga_only_receiver_takes_the_date_from_the_clock() -> None:
    wall = datetime(2026, 11, 24, 0, 0, 2, tzinfo=UTC).timestamp()  # just after midnight
    asm = NmeaAssembler(wall=lambda: wall)
    asm.feed_line(sentence("GPGGA,235959.00,5231.20000,N,01324.30000,E,1,07,1.1,40.0,M,47.0,M,,"))
    (epoch,) = asm.flush()
    assert epoch.time == datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC)


# -- history: where was the car when the frame was taken ------------------------------------------------


def epoch_at(clock_t: float, lat: float, lon: float, when: datetime, heading: float = 10.0) -> Epoch:
    fix = Fix(when, lat, lon, "3d", 36.0, heading, 8, 0.9, 40.0, received_monotonic=clock_t)
    return Epoch(when, fix, 8, 0.9, clock_t)


def test_fix_at_interpolates_between_epochs_and_refuses_stale() -> None:
    clock = Clock()
    hist = FixHistory(2.0, monotonic=clock.monotonic, wall=clock.wall)
    hist.add(epoch_at(100.0, 52.0, 13.0, T0, heading=350.0))
    hist.add(epoch_at(101.0, 52.001, 13.002, T0 + timedelta(seconds=1), heading=10.0))
    clock.t = 101.2
    mid = hist.fix_at(100.25 + 1_000_000.0)  # a frame captured a quarter into the interval
    assert mid is not None
    assert (mid.lat, mid.lon) == (pytest.approx(52.00025), pytest.approx(13.0005))
    assert mid.time == T0 + timedelta(seconds=0.25)
    assert mid.heading_deg == pytest.approx(355.0)  # through north, not through south
    after = hist.fix_at(102.5 + 1_000_000.0)
    assert after is not None and after.lat == 52.001  # nearest, 1.5 s old
    assert hist.fix_at(103.5 + 1_000_000.0) is None  # 2.5 s after the last fix: stale
    assert hist.fix_at(97.0 + 1_000_000.0) is None  # before the history
    assert hist.latest() is not None
    clock.t = 103.1
    assert hist.latest() is None  # no epoch for 2.1 s


def test_fix_at_respects_a_no_fix_epoch_and_gaps() -> None:
    clock = Clock()
    hist = FixHistory(2.0, monotonic=clock.monotonic, wall=clock.wall)
    hist.add(epoch_at(100.0, 52.0, 13.0, T0))
    hist.add(Epoch(T0 + timedelta(seconds=1), None, 2, 9.9, 101.0))
    clock.t = 101.5
    assert hist.latest() is None
    assert hist.fix_at(101.5 + 1_000_000.0) is None  # the receiver said no fix at 101
    near = hist.fix_at(100.4 + 1_000_000.0)
    assert near is not None and near.lat == 52.0
    hist.add(epoch_at(104.0, 52.01, 13.01, T0 + timedelta(seconds=4)))
    # 3 s between fixes is more than max_fix_age_s: no straight line across the gap
    assert hist.fix_at(103.9 + 1_000_000.0) == hist.fix_at(104.0 + 1_000_000.0)


def test_interpolation_across_the_antimeridian() -> None:
    a = Fix(T0, 0.0, 179.9, "2d", received_monotonic=0.0)
    b = Fix(T0 + timedelta(seconds=1), 0.0, -179.9, "2d", received_monotonic=1.0)
    assert abs(interpolate(a, b, 0.5).lon) == pytest.approx(180.0)
    assert interpolate(a, b, 0.75).lon == pytest.approx(-179.95)


# -- serial source through a real pty ------------------------------------------------------------------------


def test_serial_gps_reads_a_pty_and_reopens_after_unplug(tmp_path: Path) -> None:
    link = tmp_path / "gps0"
    points = drive(400)
    vg = VirtualGps(points, realtime=True, speed=25.0, link=link, start_time=T0)
    fixes: queue.Queue[Fix] = queue.Queue()
    vg.start()
    gps = SerialGps(str(link), 9600, reopen_initial_s=0.02, reopen_max_s=0.1, on_fix=fixes.put)
    gps.start()
    try:
        assert gps.wait_connected(30)
        first = [fixes.get(timeout=30) for _ in range(3)]
        assert [f.time for f in first] == sorted(f.time for f in first)
        for f in first:
            expected = track_at(points, (f.time - T0).total_seconds())
            assert expected is not None
            assert (f.lat, f.lon) == (pytest.approx(expected.lat, abs=1e-6), pytest.approx(expected.lon, abs=1e-6))
        status = gps.status()
        assert status["connected"] is True and status["fix"] == "3d" and status["opens"] == 1
        vg.unplug()
        vg.replug()  # new pty, the link re-pointed: what udev does after a USB reconnect
        while True:
            f = fixes.get(timeout=30)
            if gps.opens == 2:
                break
        later = fixes.get(timeout=30)
        assert later.time > first[-1].time
        assert gps.status()["opens"] == 2
        assert "lost" in str(gps.status()["last_error"]) or "open" in str(gps.status()["last_error"])
    finally:
        gps.stop()
        vg.stop()
    assert gps.status()["connected"] is False


def test_serial_gps_keeps_retrying_a_missing_device(tmp_path: Path) -> None:
    link = tmp_path / "gps0"
    fixes: queue.Queue[Fix] = queue.Queue()
    failed = threading.Event()

    class Signal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "cannot open" in record.getMessage():
                failed.set()

    handler = Signal()
    logging.getLogger("picar.gps").addHandler(handler)
    gps = SerialGps(str(link), reopen_initial_s=0.02, reopen_max_s=0.05, on_fix=fixes.put)
    gps.start()
    vg = VirtualGps(drive(5), realtime=False, link=link, start_time=T0)
    try:
        assert failed.wait(30)
        assert gps.status()["connected"] is False and gps.latest() is None
        vg.start()  # the receiver appears after PiCAR started
        assert gps.wait_connected(30)
        assert fixes.get(timeout=30).time == T0
        assert "cannot open" in str(gps.status()["last_error"])
    finally:
        logging.getLogger("picar.gps").removeHandler(handler)
        gps.stop()
        vg.stop()


def test_serial_gps_reopens_when_the_device_node_disappears_and_returns(tmp_path: Path) -> None:
    link = tmp_path / "gps0"
    lost = threading.Event()

    class Signal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "disappeared" in record.getMessage():
                lost.set()

    handler = Signal()
    logging.getLogger("picar.gps").addHandler(handler)
    vg = VirtualGps(drive(600), realtime=True, speed=20.0, link=link, start_time=T0)
    fixes: queue.Queue[Fix] = queue.Queue()
    gps = SerialGps(str(link), reopen_initial_s=0.02, reopen_max_s=0.05, on_fix=fixes.put)
    vg.start()
    gps.start()
    try:
        first = fixes.get(timeout=30)
        link.unlink()
        assert lost.wait(30)
        os.symlink(vg.path, link)  # the same receiver comes back
        while gps.opens < 2:
            fixes.get(timeout=30)
        assert fixes.get(timeout=30).time > first.time
    finally:
        logging.getLogger("picar.gps").removeHandler(handler)
        gps.stop()
        vg.stop()


def test_reopen_back_off_doubles_up_to_the_maximum(tmp_path: Path) -> None:
    retries: list[str] = []
    at_max = threading.Event()

    class Record(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if "retry in" in msg:
                retries.append(msg.rsplit("retry in ", 1)[1])
                if msg.endswith("retry in 0.2 s"):
                    at_max.set()

    handler = Record()
    logging.getLogger("picar.gps").addHandler(handler)
    gps = SerialGps(str(tmp_path / "gps0"), reopen_initial_s=0.05, reopen_max_s=0.2)
    gps.start()
    try:
        assert at_max.wait(30)
    finally:
        gps.stop()
        logging.getLogger("picar.gps").removeHandler(handler)
    # Doubling up to the maximum, then staying there (more waits at the maximum may come before the stop).
    assert retries[:3] == ["0.05 s", "0.1 s", "0.2 s"] and set(retries[3:]) <= {"0.2 s"}, retries
    assert gps.status()["opens"] == 0


def test_open_gps_factory_and_none() -> None:
    none = open_gps("none", "", 9600, "", 0, 3.0, 1.0, 30.0)
    assert isinstance(none, NoGps) and none.fix_at(0.0) is None and none.latest() is None
    assert isinstance(open_gps("serial", "/dev/x", 9600, "", 0, 3.0, 1.0, 30.0), SerialGps)
    assert isinstance(open_gps("gpsd", "", 9600, "h", 2947, 3.0, 1.0, 30.0), GpsdGps)
    with pytest.raises(ValueError, match="gps.source"):
        open_gps("bluetooth", "", 9600, "", 0, 3.0, 1.0, 30.0)


# -- gpsd ------------------------------------------------------------------------------------------------------


class TinyGpsd:
    """A TCP server speaking gpsd's JSON protocol: one scripted session per connection."""

    def __init__(self, sessions: list[list[dict[str, object]]]) -> None:
        self.sessions = sessions
        self.commands: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for session in self.sessions:
            conn, _ = self.sock.accept()
            with conn:
                conn.sendall(b'{"class":"VERSION","release":"3.25","proto_major":3,"proto_minor":15}\n')
                buf = b""
                while not buf.endswith(b"\n"):
                    buf += conn.recv(1024)
                self.commands.append(buf)
                conn.sendall(b'{"class":"DEVICES","devices":[{"path":"/dev/ttyACM0"}]}\n')
                conn.sendall(b"not json at all\n")
                for msg in session:
                    conn.sendall(json.dumps(msg).encode() + b"\n")
        self.sock.close()


def tpv(t: str, mode: int = 3, lat: float = 52.52, lon: float = 13.405) -> dict[str, object]:
    return {"class": "TPV", "mode": mode, "time": t, "lat": lat, "lon": lon, "speed": 10.0, "track": 90.5,
            "altMSL": 40.0}  # fmt: skip


def test_gpsd_source_reads_tpv_and_sky_and_reconnects() -> None:
    sky = {"class": "SKY", "hdop": 0.8, "satellites": [{"PRN": i, "used": i % 2 == 0} for i in range(10)]}
    server = TinyGpsd(
        [
            [sky, tpv("2026-11-23T10:00:00.000Z"), {"class": "TPV", "mode": 1, "time": "2026-11-23T10:00:01.000Z"}],
            [tpv("2026-11-23T10:00:05.000Z", lat=52.53)],
        ]
    )
    fixes: queue.Queue[Fix] = queue.Queue()
    gps = GpsdGps("127.0.0.1", server.port, reopen_initial_s=0.02, reopen_max_s=0.1, on_fix=fixes.put)
    gps.start()
    try:
        a = fixes.get(timeout=30)
        assert (a.time, a.lat, a.fix, a.sats, a.hdop, a.alt_m) == (T0, 52.52, "3d", 5, 0.8, 40.0)
        assert a.speed_kmh == pytest.approx(36.0) and a.heading_deg == 90.5
        b = fixes.get(timeout=30)  # from the second connection
        assert b.lat == 52.53 and b.time == T0 + timedelta(seconds=5)
        assert server.commands[0].startswith(b"?WATCH=") and json.loads(server.commands[0][7:])["json"] is True
        counters = gps.status()["counters"]
        assert isinstance(counters, dict) and counters["bad_json"] >= 1 and counters["epochs"] == 3
    finally:
        gps.stop()


def test_picar_gps_gpsd_exits_0_when_gpsd_closes(capsys: pytest.CaptureFixture[str]) -> None:
    server = TinyGpsd([[tpv("2026-11-23T10:00:00Z"), {"class": "TPV", "mode": 0}]])
    assert gps_main(["--gpsd", f"127.0.0.1:{server.port}", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [set(obj) for obj in lines] == [JSON_KEYS, JSON_KEYS]
    assert lines[0]["time"] == "2026-11-23T10:00:00Z" and lines[0]["fix"] == "3d"
    assert lines[1]["lat"] is None and lines[1]["fix"] == "none"


# -- picar gps contract ----------------------------------------------------------------------------------------


def run_picar_gps(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "picar.sources.gps_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def test_picar_gps_json_contract_against_the_virtual_receiver(tmp_path: Path) -> None:
    points = [*drive(6), TrackPoint(6.0, None, None), TrackPoint(8.0, 52.53, 13.41, 20.0, 180.0),
              TrackPoint(9.0, 52.5301, 13.41, 20.0, 180.0)]  # fmt: skip
    link = tmp_path / "gps0"
    vg = VirtualGps(points, realtime=False, link=link, start_time=T0, faults=Faults(garbage_every=3))
    vg.start()
    proc = run_picar_gps("--device", str(link), "--json")
    try:
        assert vg.wait_done(30)
        vg.stop()  # the device goes away
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    objs = [json.loads(line) for line in out.splitlines()]
    assert all(set(o) == JSON_KEYS for o in objs)
    assert [o["time"] for o in objs] == [f"2026-11-23T10:00:0{i}Z" for i in range(10)]
    for o in objs:
        expected = track_at(points, float(o["time"][-3:-1]))
        assert expected is not None
        if expected.has_fix:
            assert o["fix"] == "3d" and o["lat"] == pytest.approx(expected.lat, abs=1e-6)
            assert o["lon"] == pytest.approx(expected.lon, abs=1e-6)
            assert o["speed_kmh"] == pytest.approx(expected.speed_kmh, abs=0.01)
            assert (o["sats"], o["hdop"]) == (9, 0.9)
        else:
            assert (o["fix"], o["lat"], o["lon"]) == ("none", None, None)
    assert "unparsed" in err  # the junk was noticed and reported


def test_picar_gps_exits_0_when_the_device_node_disappears(tmp_path: Path) -> None:
    link = tmp_path / "gps0"
    vg = VirtualGps(drive(600), realtime=True, speed=20.0, link=link, start_time=T0)
    vg.start()
    proc = run_picar_gps("--device", str(link), "--json")
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["fix"] == "3d"
        link.unlink()  # udev removes the node; the open descriptor just goes quiet
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
        vg.stop()
    assert "disappeared" in err


def test_picar_gps_exits_2_when_the_device_cannot_be_opened(tmp_path: Path) -> None:
    proc = run_picar_gps("--device", str(tmp_path / "nothing"), "--json")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert out == "" and "cannot open" in err and "nothing" in err


def test_picar_gps_readable_output_from_a_recorded_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "drive.nmea"
    log.write_text("\r\n".join([RMC, GGA, GSA]) + "\r\n")
    assert gps_main(["--device", str(log)]) == 0
    out = capsys.readouterr().out
    assert "2094-03-23T12:35:19Z  48.1173000,11.5166667  3d" in out  # RMC's 94: 2000-2099


# -- real receivers: which sentence carries the position, and what it is worth (issue 20) --------------------

POS_RMC = "5231.20000,N,01324.30000,E"  # 52.52, 13.405
POS_GGA = "5231.26000,N,01324.36000,E"  # 52.521, 13.406
POS_GLL = "5231.32000,N,01324.42000,E"  # 52.522, 13.407


def rmc(t: str, pos: str = POS_RMC, day: str = "231126", status: str = "A", mode: str = "A") -> str:
    return sentence(f"GPRMC,{t},{status},{pos},10.0,90.0,{day},,,{mode}")


def gga(t: str, pos: str = POS_GGA, quality: int = 1) -> str:
    return sentence(f"GPGGA,{t},{pos},{quality},07,1.1,40.0,M,47.0,M,,")


def gll(t: str, pos: str = POS_GLL, status: str = "A", mode: str = "A") -> str:
    return sentence(f"GPGLL,{pos},{t},{status},{mode}")


def epochs_of(lines: list[str], asm: NmeaAssembler | None = None) -> list[Epoch]:
    asm = asm or NmeaAssembler()
    return [e for line in lines for e in asm.feed_epochs(line)] + asm.flush()


def test_rmc_once_then_gga_and_gll_keeps_a_position_and_the_date_per_epoch() -> None:
    """A receiver that sends one RMC, then only GGA and GLL, for longer than a morning and past midnight."""
    clock = Clock()
    asm = NmeaAssembler(monotonic=clock.monotonic, wall=clock.wall)
    epochs = asm.feed_epochs(rmc("100000.00"))
    # Hours pass between some epochs (not fed one by one: the clock steps as the receiver's time does).
    for since_s, t in ((0.0, "100000.00"), (1.0, "100001.00"), (50399.0, "235959.00"), (50401.0, "000001.00"),
                       (93601.0, "120001.00"), (136799.5, "235959.50"), (136800.5, "000000.50")):  # fmt: skip
        clock.t = 100.0 + since_s
        epochs += asm.feed_epochs(gga(t)) + asm.feed_epochs(gll(t))
    got = [(e.time, e.fix is not None) for e in epochs + asm.flush()]
    d1, d2, d3 = (datetime(2026, 11, day, tzinfo=UTC) for day in (23, 24, 25))
    assert got == [
        (d1 + timedelta(hours=10), True),
        (d1 + timedelta(hours=10, seconds=1), True),
        (d1 + timedelta(hours=23, minutes=59, seconds=59), True),
        (d2 + timedelta(seconds=1), True),
        (d2 + timedelta(hours=12, seconds=1), True),
        (d2 + timedelta(hours=23, minutes=59, seconds=59.5), True),
        (d3 + timedelta(seconds=0.5), True),
    ]


def test_zda_gives_the_date_when_rmc_does_not() -> None:
    wall = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()  # the Pi's clock is wrong
    asm = NmeaAssembler(wall=lambda: wall)
    lines = [sentence("GPZDA,235959.00,23,11,2026,00,00"), gga("235959.00"), gga("000000.00")]
    assert [e.time for e in epochs_of(lines, asm)] == [
        datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 24, 0, 0, 0, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([rmc("100000.00"), gga("100000.00"), gll("100000.00")], (52.521, 13.406)),  # GGA wins
        ([gll("100000.00"), rmc("100000.00"), gga("100000.00")], (52.521, 13.406)),  # whatever the order
        ([gll("100000.00"), rmc("100000.00")], (52.52, 13.405)),  # then RMC
        ([gga("100000.00", ",,,"), gll("100000.00"), rmc("100000.00", ",,,")], (52.522, 13.407)),  # then GLL
    ],
)
def test_sentences_that_disagree_give_one_position_by_rule(lines: list[str], expected: tuple[float, float]) -> None:
    (epoch,) = epochs_of(lines)
    assert epoch.fix is not None
    assert (epoch.fix.lat, epoch.fix.lon) == (pytest.approx(expected[0]), pytest.approx(expected[1]))


@pytest.mark.parametrize(
    "lines",
    [
        [gll("100000.00", mode="S")],  # simulator
        [rmc("100000.00", mode="S")],
        [rmc("100000.00", mode="S"), gga("100000.00")],  # one sentence says simulator: the epoch is simulated
        [rmc("100000.00"), gga("100000.00", quality=8)],
        [gga("100000.00", quality=8), gll("100000.00")],
        [rmc("100000.00", mode="M")],  # manual input: a typed-in position, not where the car is
        [gll("100000.00", mode="N"), gga("100000.00")],  # not valid
        [gll("100000.00", status="V"), rmc("100000.00")],
    ],
)
def test_simulated_manual_or_not_valid_never_gives_a_position(lines: list[str]) -> None:
    (epoch,) = epochs_of(lines)
    assert epoch.fix is None and epoch.to_json()["fix"] == "none"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([gga("100000.00", "0000.00000,N,00000.00000,E")], None),
        ([rmc("100000.00", "0000.00000,S,00000.00000,W")], None),
        ([gll("100000.00", "0000.00000,N,00000.00000,E")], None),
        ([rmc("100000.00"), gga("100000.00", "0000.00000,N,00000.00000,E")], (52.52, 13.405)),  # next by rule
        ([gga("100000.00", "0000.00000,N,00000.00600,E")], (0.0, 0.0001)),  # near 0,0 is a place (the Gulf of Guinea)
    ],
)
def test_a_position_of_exactly_0_0_is_no_position(lines: list[str], expected: tuple[float, float] | None) -> None:
    (epoch,) = epochs_of(lines)
    if expected is None:
        assert epoch.fix is None
    else:
        assert epoch.fix is not None
        assert (epoch.fix.lat, epoch.fix.lon) == (pytest.approx(expected[0]), pytest.approx(expected[1]))


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("231126", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ("220899", datetime(2099, 8, 22, 10, tzinfo=UTC)),  # two digits are 2000-2099, never 1999
        ("010100", datetime(2000, 1, 1, 10, tzinfo=UTC) + timedelta(weeks=2 * 1024)),  # 2000: two rollovers ago
        ("090407", datetime(2026, 11, 23, 10, tzinfo=UTC)),  # 1024 weeks back: the week-rollover bug
        ("060419", datetime(2038, 11, 20, 10, tzinfo=UTC)),  # the last day before the April 2019 rollover
        ("010120", datetime(2020, 1, 1, 10, tzinfo=UTC)),  # the floor itself
    ],
)
def test_rmc_two_digit_year_and_gps_week_rollover(day: str, expected: datetime) -> None:
    (epoch,) = epochs_of([rmc("100000.00", day=day)])
    assert epoch.time == expected and epoch.fix is not None and epoch.fix.time == expected


def test_zda_before_the_floor_is_a_week_rollover_too() -> None:
    (epoch,) = epochs_of([sentence("GPZDA,100000.00,09,04,2007,00,00"), gga("100000.00")])
    assert epoch.time == datetime(2026, 11, 23, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "extra",
    [
        {"lat": 0.0, "lon": 0.0},  # exactly 0,0: a receiver's empty position, not a place
        {"status": 8},  # gpsd's STATUS_SIM: a simulated fix
    ],
)
def test_gpsd_never_gives_0_0_or_a_simulated_fix(extra: dict[str, object]) -> None:
    decoder = GpsdDecoder()
    good = decoder.feed_line(json.dumps(tpv("2026-11-23T10:00:00.000Z")))
    assert good is not None and good.fix is not None
    epoch = decoder.feed_line(json.dumps({**tpv("2026-11-23T10:00:01.000Z"), **extra}))
    assert epoch is not None and epoch.fix is None and epoch.time == T0 + timedelta(seconds=1)

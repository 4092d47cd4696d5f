"""The virtual GPS receiver: sentence generation, track handling, and a real pty read by pyserial."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import reduce
from pathlib import Path

import pynmea2
import pytest
import serial

from hw_sim.track import TrackError, TrackPoint, parse_track, track_at
from hw_sim.virtual_gps import Faults, VirtualGps, nmea_for_point, nmea_log_epochs
from picar.sources.nmea import Epoch, NmeaAssembler

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
TRACK_CSV = """t_s,lat,lon,speed_kmh,heading_deg
0,52.5200,13.4050,36,90
4,52.5200,13.4090,40,90
5,,,0,0
7,-33.8688,151.2093,30,180
8,-33.8698,151.2093,30,180
"""


def checksum_ok(line: str) -> bool:
    body, cs = line[1:].split("*")
    return reduce(lambda a, c: a ^ ord(c), body, 0) == int(cs, 16)


def read_all(port: serial.Serial, vg: VirtualGps, timeout: float = 30.0) -> bytes:
    """Read until the receiver is done and the pty is empty (or it went away)."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = port.read(max(1, port.in_waiting))
        except serial.SerialException:
            break
        data += chunk
        if not chunk and vg.wait_done(0):
            break
    return data


# -- pure parts ------------------------------------------------------------------------------------------


def test_nmea_for_point_is_valid_nmea_that_pynmea2_reads_back() -> None:
    point = TrackPoint(0.0, -33.8688, 151.2093, 54.0, 271.5)
    lines = nmea_for_point(point, T0 + timedelta(seconds=1.5), talker="GN")
    assert [line[3:6] for line in lines] == ["RMC", "VTG", "GGA", "GSA"]
    assert all(checksum_ok(line) and line.startswith("$GN") for line in lines)
    rmc, vtg, gga, gsa = (pynmea2.parse(line, check=True) for line in lines)
    assert rmc.status == "A" and rmc.datestamp == T0.date()
    assert rmc.timestamp.replace(tzinfo=None) == (T0 + timedelta(seconds=1.5)).time()
    assert rmc.latitude == pytest.approx(-33.8688, abs=1e-6)
    assert rmc.longitude == pytest.approx(151.2093, abs=1e-6)
    assert rmc.spd_over_grnd * 1.852 == pytest.approx(54.0, abs=0.01)
    assert vtg.spd_over_grnd_kmph == pytest.approx(54.0) and vtg.true_track == 271.5
    assert gga.gps_qual == 1 and int(gga.num_sats) == 9
    assert gsa.mode_fix_type == "3"


def test_minutes_never_round_up_to_sixty() -> None:
    line = nmea_for_point(TrackPoint(0.0, 52.99999999, -0.000000001, 0.0, 0.0), T0)[0]
    assert ",5300.00000,N," in line and ",00000.00000,W," in line


def test_nmea_for_a_point_without_fix_says_no_fix() -> None:
    lines = nmea_for_point(TrackPoint(0.0, None, None), T0)
    assert all(checksum_ok(line) for line in lines)
    rmc, _, gga, gsa = (pynmea2.parse(line, check=True) for line in lines)
    assert rmc.status == "V" and rmc.lat == "" and gga.gps_qual == 0 and gsa.mode_fix_type == "1"


def test_track_parsing_and_interpolation() -> None:
    pts = parse_track(TRACK_CSV)
    assert len(pts) == 5 and not pts[2].has_fix
    mid = track_at(pts, 2.0)
    assert mid is not None and mid.lat == pytest.approx(52.52) and mid.lon == pytest.approx(13.407)
    assert mid.speed_kmh == pytest.approx(38.0)
    gap = track_at(pts, 6.0)
    assert gap is not None and not gap.has_fix  # no fix from t=5 until the next position
    assert track_at(pts, 8.5) is None and track_at(pts, -1.0) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t,lat,lon\n", "header must be"),
        ("t_s,lat,lon,speed_kmh,heading_deg\n0,91,13,0,0\n", "line 2|:2: lat '91' outside"),
        ("t_s,lat,lon,speed_kmh,heading_deg\n0,52,13,0,0\n0,52,13,0,0\n", ":3: t_s '0' must be greater"),
        ("t_s,lat,lon,speed_kmh,heading_deg\n0,52,,0,0\n", ":2: lat and lon must both"),
        ("t_s,lat,lon,speed_kmh,heading_deg\n0,52,13,fast,0\n", ":2: speed_kmh 'fast' is not a number"),
    ],
)
def test_track_errors_name_the_line_and_field(text: str, message: str) -> None:
    with pytest.raises(TrackError, match=message):
        parse_track(text, name="drive.csv")


def test_nmea_log_epochs_group_by_time_and_keep_pacing() -> None:
    lines = [
        b"$GPRMC,235959.00,A,...*00\r\n",
        b"$GPGGA,235959.00,...*00\r\n",
        b"$GPGSA,A,3*00\r\n",
        b"$GPRMC,000001.00,A,...*00\r\n",  # two seconds later, across midnight
        b"$GPGLL,5231.2,N,01324.3,E,000002.00,A,A*00",
    ]
    epochs = nmea_log_epochs(lines)
    assert [at for at, _ in epochs] == [0.0, 2.0, 3.0]
    assert [len(ls) for _, ls in epochs] == [3, 1, 1]
    assert epochs[2][1][0].endswith(b"\r\n")


# -- through a real pty ----------------------------------------------------------------------------------------


def test_track_through_a_pty_read_by_pyserial_gives_the_track() -> None:
    pts = parse_track(TRACK_CSV)
    vg = VirtualGps(pts, realtime=False, start_time=T0)
    path = vg.start()
    try:
        with serial.Serial(path, 9600, timeout=0.2) as port:
            data = read_all(port, vg)
    finally:
        vg.stop()
    asm = NmeaAssembler()
    epochs: list[Epoch] = asm.feed_bytes(data) + asm.flush()
    assert [e.time for e in epochs] == [T0 + timedelta(seconds=s) for s in range(9)]
    assert asm.counters.bad_checksum == asm.counters.unparsed == 0
    for e in epochs:
        assert e.time is not None
        expected = track_at(pts, (e.time - T0).total_seconds())
        assert expected is not None
        if not expected.has_fix:
            assert e.fix is None
            continue
        assert e.fix is not None
        assert (e.fix.lat, e.fix.lon) == (pytest.approx(expected.lat, abs=1e-6), pytest.approx(expected.lon, abs=1e-6))


def test_faults_are_injected_and_survived() -> None:
    pts = [TrackPoint(float(i), 52.52 + i * 1e-4, 13.405, 36.0, 0.0) for i in range(12)]
    faults = Faults(bad_checksum_every=5, partial_every=0, garbage_every=2, no_fix=(3.0, 5.0))
    vg = VirtualGps(pts, realtime=False, start_time=T0, faults=faults)
    path = vg.start()
    try:
        with serial.Serial(path, 9600, timeout=0.2) as port:
            data = read_all(port, vg)
    finally:
        vg.stop()
    asm = NmeaAssembler()
    epochs = asm.feed_bytes(data) + asm.flush()
    c = asm.counters
    assert c.bad_checksum >= 48 // 5  # 4 sentences x 12 epochs, every 5th damaged (+ '$' inside junk)
    assert c.unparsed >= 6  # junk before every 2nd epoch
    # every fifth sentence damaged never takes both RMC and GGA of one epoch: all 12 epochs survive
    assert len(epochs) == 12
    for e in epochs:
        assert e.time is not None
        s = (e.time - T0).total_seconds()
        if 3.0 <= s < 5.0:
            assert e.fix is None
        else:
            assert e.fix is not None and e.fix.lat == pytest.approx(52.52 + s * 1e-4, abs=1e-7)


def test_unplug_fault_closes_the_device() -> None:
    vg = VirtualGps([TrackPoint(float(i), 52.5, 13.4) for i in range(10)], realtime=False,
                    faults=Faults(unplug_after=3))  # fmt: skip
    path = vg.start()
    try:
        with serial.Serial(path, 9600, timeout=0.2) as port:
            data = read_all(port, vg)
            assert vg.wait_done(30)
            with pytest.raises(serial.SerialException):
                port.read(1)
    finally:
        vg.stop()
    assert data.count(b"RMC") == 3
    assert not os.path.exists(path)


def test_recorded_log_is_replayed_byte_for_byte_with_its_pacing(tmp_path: Path) -> None:
    pts = [TrackPoint(float(i), 52.5, 13.4 + i * 1e-4, 20.0, 90.0) for i in range(3)]
    text = (
        b"".join((s + "\r\n").encode() for p in pts for s in nmea_for_point(p, T0 + timedelta(seconds=p.t_s)))
        + b"$PUBX,00*33\r\n"
    )
    log = tmp_path / "drive.nmea"
    log.write_bytes(text)
    vg = VirtualGps(log, realtime=True, speed=10.0)  # 1 s apart in the log, 0.1 s apart at 10x
    path = vg.start()
    try:
        with serial.Serial(path, 9600, timeout=0.2) as port:
            begin = time.monotonic()
            data = read_all(port, vg)
            took = time.monotonic() - begin
    finally:
        vg.stop()
    assert data == text
    assert took >= 0.18  # two gaps of 0.1 s were kept


def test_cli_prints_the_link_and_exits_0_when_done(tmp_path: Path) -> None:
    track = tmp_path / "drive.csv"
    track.write_text(TRACK_CSV)
    link = tmp_path / "gps0"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hw_sim.virtual_gps", "--track", str(track), "--fast", "--link", str(link),
         "--start", "2026-11-23T10:00:00"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == str(link)
        with serial.Serial(str(link), 9600, timeout=0.2) as port:
            data = b""
            while proc.poll() is None or port.in_waiting:
                try:
                    data += port.read(max(1, port.in_waiting))
                except serial.SerialException:
                    break
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert data.count(b"GGA") == 9 and b"$GPRMC,100008.00,A,3352.18800,S,15112.55800,E" in data
    assert not link.exists()


def test_cli_rejects_a_bad_track_with_the_line(tmp_path: Path) -> None:
    track = tmp_path / "drive.csv"
    track.write_text("t_s,lat,lon,speed_kmh,heading_deg\n0,52,13,0,0\n1,52,200,0,0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "hw_sim.virtual_gps", "--track", str(track)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=20,
    )  # fmt: skip
    assert proc.returncode == 2 and "drive.csv:3: lon '200' outside" in proc.stderr

"""A simulated patrol car and HQ on one machine: broker, signed watchlist, virtual GPS, camera replay,
and the real daemon in a subprocess. Used by `picar demo` and by the end-to-end tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2

from picar.paths import DEMO_DIR

if TYPE_CHECKING:
    from hw_sim.broker import Mosquitto

VEHICLE_ID = "demo-car-1"
CAR_USER, CAR_PASSWORD = VEHICLE_ID, "car-demo-password"  # the broker ACL needs username = vehicle id
HQ_USER, HQ_PASSWORD = "hq", "hq-demo-password"


def demo_broker(work: Path, users: dict[str, str], extra_config: tuple[str, ...] = ()) -> Mosquitto:
    """The broker the demo and the simulator run, not yet started: persistence, TLS with one client
    certificate per user, a password per user and the per-vehicle ACL (cars' usernames = vehicle ids)."""
    from hw_sim.broker import Mosquitto

    return Mosquitto(work, persistence=True, tls=True, users=users, extra_config=extra_config)


def _recorded_fps(video: Path) -> float:
    cap = cv2.VideoCapture(str(video))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    if not fps or fps <= 0:
        raise ValueError(f"{video}: no frame rate in the file")
    return float(fps)


def _q(p: Path | str) -> str:
    return json.dumps(str(p))


@dataclass
class SimOptions:
    demo_dir: Path = DEMO_DIR
    realtime: bool = True
    # With realtime off: None replays as fast as the daemon's camera thread takes frames (which drops what the
    # inference thread cannot keep up with, as a live stream does); a number replays at that multiple of the
    # recorded pace instead, so a pass is seen in as many frames on a busy machine as on an idle one.
    replay_speed: float | None = None
    use_mjpeg: bool = True  # serve the drive over HTTP MJPEG (the network-camera path) or read the file
    loop_gps: bool = True
    extra_config: str = ""
    mqtt_extra: str = ""  # lines added to the car's [mqtt] table (e.g. hq_ack_timeout_s = 3.0)
    broker_config: tuple[str, ...] = ()  # lines added to the broker's config (e.g. "autosave_interval 60")
    ui: bool = True
    language: str | None = None  # the page's [ui] language; None: the car's default (from its regions)
    gps_faults: Any = None
    # How to start the daemon: this Python by default; an installed `picar` script to test a wheel.
    daemon_command: tuple[str, ...] = (sys.executable, "-m", "picar.cli")


@dataclass
class Simulation:
    """Everything around the daemon. `start_world()`, then `start_daemon()`; `stop()` at the end."""

    work: Path
    options: SimOptions = field(default_factory=SimOptions)
    broker: Any = None
    gps: Any = None
    replay: Any = None
    daemon: subprocess.Popen[bytes] | None = None
    key: Path | None = None
    config_path: Path | None = None
    camera_source: str = ""
    gps_device: str = ""
    ui_port: int = 0
    log_path: Path | None = None
    postgres: Any = None
    ingest: Any = None
    hq_dsn: str = ""

    # --- the world around the car -------------------------------------------------------------

    def start_world(self) -> None:
        from hw_sim.broker import free_port

        self.work.mkdir(parents=True, exist_ok=True)
        self.broker = demo_broker(self.work, {CAR_USER: CAR_PASSWORD, HQ_USER: HQ_PASSWORD},
                                  self.options.broker_config).start()
        self._write_credentials()
        self.key = self.work / "hq-signing"
        from picar.hq.cli import hq_main

        if hq_main(["keygen", "--out", str(self.key)]) != 0:
            raise RuntimeError("HQ key generation failed")
        self.ui_port = free_port()
        self.start_gps()
        self.start_camera()

    def _write_credentials(self) -> None:
        for name, user, pw in (("car", CAR_USER, CAR_PASSWORD), ("hq", HQ_USER, HQ_PASSWORD)):
            path = self.work / f"{name}.credentials"
            path.write_text(f"username={user}\npassword={pw}\n")
            path.chmod(0o600)

    def start_gps(self) -> None:
        from hw_sim.track import load_track
        from hw_sim.virtual_gps import VirtualGps

        kwargs: dict[str, Any] = {}
        if self.options.gps_faults is not None:
            kwargs["faults"] = self.options.gps_faults
        self.gps = VirtualGps(load_track(self.options.demo_dir / "track.csv"), realtime=True,
                              loop=self.options.loop_gps, link=self.work / "gps", wait_for_reader=False, rate_hz=5.0,
                              **kwargs)
        self.gps_device = self.gps.start()

    def start_camera(self) -> None:
        drive = self.options.demo_dir / "drive.mp4"
        if self.options.use_mjpeg:
            from hw_sim.camera_replay import MjpegReplay

            speed = None if self.options.realtime else self.options.replay_speed
            fps = None if speed is None else _recorded_fps(drive) * speed
            self.replay = MjpegReplay(drive, realtime=self.options.realtime or speed is not None, fps=fps,
                                      loop=False, wait_for_client=True)
            self.replay.start()
            self.camera_source = self.replay.url
        else:
            self.camera_source = str(drive)

    def hq_tls_args(self) -> list[str]:
        """Connection arguments for HQ's tools: HQ's own certificate and credentials."""
        tls = self.broker.tls
        hq = tls.client(HQ_USER)
        return ["--host", "127.0.0.1", "--port", str(self.broker.port), "--ca", str(tls.ca_file),
                "--cert", str(hq.cert_file), "--keyfile", str(hq.key_file),
                "--credentials", str(self.work / "hq.credentials")]

    def publish_watchlist(self, csv_path: Path | None = None, version: int = 1) -> Path:
        """HQ imports a CSV, signs the snapshot and publishes it retained to the fleet topic."""
        from picar.hq.cli import hq_main
        from picar.watchlist.cli import watchlist_main

        assert self.key is not None
        snapshot = self.work / f"watchlist-v{version}.json"
        src = csv_path or self.options.demo_dir / "watchlist.csv"
        if watchlist_main(["import", str(src), "--format", "csv", "--out", str(snapshot),
                           "--version", str(version)]) != 0:
            raise RuntimeError(f"watchlist import of {src} failed")
        if hq_main(["watchlist", "publish", str(snapshot), "--key", f"{self.key}.key", *self.hq_tls_args()]) != 0:
            raise RuntimeError("watchlist publish failed")
        return snapshot

    def subscriber(self, topics: list[str], client_id: str = "", clean_session: bool = True) -> Any:
        from hw_sim.broker import Subscriber

        return Subscriber(self.broker, topics, client_id=client_id, clean_session=clean_session,
                          identity=HQ_USER).start()

    def start_hq(self, fsync: bool = True) -> str:
        """HQ's PostgreSQL and one ingest worker (in this process), configured by an hq.toml as HQ would be;
        returns the database's DSN."""
        from hw_sim.postgres import Postgres

        self.postgres = Postgres(fsync=fsync).start()
        self.hq_dsn = self.postgres.create_database("picar_hq")
        tls = self.broker.tls
        hq = tls.client(HQ_USER)
        config = self.work / "hq.toml"
        config.write_text(f"""# Written by the simulator (hw_sim/sim.py): HQ's ingest for one run.
[database]
dsn = {_q(self.hq_dsn)}

[mqtt]
host = "127.0.0.1"
port = {self.broker.port}
tls = true
ca_file = {_q(tls.ca_file)}
cert_file = {_q(hq.cert_file)}
key_file = {_q(hq.key_file)}
credentials_file = {_q(self.work / "hq.credentials")}
""")
        self.start_ingest()
        return self.hq_dsn

    def start_ingest(self) -> None:
        """(Re)start HQ's ingest worker from the run's hq.toml (the same worker: the same broker session)."""
        from picar.hq.config import load_hq_config
        from picar.hq.ingest.worker import IngestWorker

        self.ingest = IngestWorker(load_hq_config(self.work / "hq.toml"), username=HQ_USER, password=HQ_PASSWORD)
        self.ingest.start()

    def stop_ingest(self) -> None:
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest = None

    # --- the car --------------------------------------------------------------------------------

    def write_config(self) -> Path:
        tls = self.broker.tls
        car = tls.client(CAR_USER)
        self.config_path = self.work / "picar.toml"
        self.config_path.write_text(f"""# Written by the simulator (hw_sim/sim.py) for one run.
[vehicle]
id = "{VEHICLE_ID}"
description = "simulator"

[[cameras]]
name = "front"
source = {_q(self.camera_source)}
realtime = {str(self.options.realtime).lower()}
reconnect_initial_s = 0.2
reconnect_max_s = 2.0

[gps]
source = "serial"
device = {_q(self.gps_device)}
baud = 9600
max_fix_age_s = 5.0
reopen_initial_s = 0.2
reopen_max_s = 1.0

[watchlist]
public_key = {_q(f"{self.key}.pub")}
require_signature = true

[mqtt]
host = "127.0.0.1"
port = {self.broker.port}
tls = true
ca_file = {_q(tls.ca_file)}
cert_file = {_q(car.cert_file)}
key_file = {_q(car.key_file)}
credentials_file = {_q(self.work / "car.credentials")}
position_interval_s = 2.0
{self.options.mqtt_extra}

[storage]
data_dir = {_q(self.work / "data")}
min_free_mb = 20

[ui]
enabled = {str(self.options.ui).lower()}
bind = "127.0.0.1"
port = {self.ui_port}
{f'language = "{self.options.language}"' if self.options.language else ""}

[logging]
level = "info"
{self.options.extra_config}
""")
        return self.config_path

    def start_daemon(self, extra_args: tuple[str, ...] = (), env_extra: dict[str, str] | None = None
                     ) -> subprocess.Popen[bytes]:
        config = self.config_path or self.write_config()
        self.log_path = self.work / "daemon.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
        with open(self.log_path, "ab") as log_file:
            self.daemon = subprocess.Popen(
                [*self.options.daemon_command, "run", "--config", str(config), *extra_args],
                stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=self.work,
            )
        return self.daemon

    def daemon_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop_daemon(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        d = self.daemon
        if d is None:
            return None
        if d.poll() is None:
            d.send_signal(sig)
            try:
                d.wait(timeout)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait(5)
        return d.returncode

    def stop(self) -> None:
        self.stop_daemon()
        for part in (self.replay, self.gps, self.ingest, self.broker, self.postgres):
            if part is not None:
                try:
                    part.stop()
                except Exception as exc:  # best effort on the way out
                    print(f"sim: stopping {type(part).__name__}: {exc}", file=sys.stderr)


def expected_hits(demo_dir: Path = DEMO_DIR) -> dict[str, dict[str, Any]]:
    """Listed plate -> what expected.json says about the vehicle that should hit it."""
    expected = json.loads((demo_dir / "expected.json").read_text())
    out: dict[str, dict[str, Any]] = {}
    for v in expected.get("vehicles", []):
        hit = v.get("hit") or v.get("watchlist")
        if hit:
            listed = hit.get("plate") if isinstance(hit, dict) else str(hit)
            out[str(listed)] = {"drive_plate": v.get("plate") or v.get("text"),
                                **(hit if isinstance(hit, dict) else {})}
    return out

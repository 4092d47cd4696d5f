"""Composition root: config -> store, HQ link, watchlist, models, GPS, cameras, page -> the loop.

The Daemon builds the parts in dependency order, wires them, starts them and stops them in reverse; the
parts do the work (pipeline.sink, link.publisher, link.commands, watchlist.recheck, station.actions,
status, housekeeping). READY is sent to systemd only once the models are warm and the sources are open;
the watchdog is pinged only while the loop is healthy. SIGTERM stops cleanly (the outbox keeps whatever
HQ has not acknowledged); SIGHUP reloads the config file and the watchlist.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from picar import __version__
from picar.config import Config, ConfigError, load_config, read_credentials
from picar.i18n.message import N_
from picar.link.outbox import Outbox
from picar.link.publisher import EventPublisher
from picar.pipeline.audit_file import AuditFileHandler
from picar.pipeline.loop import Pipeline
from picar.pipeline.metrics import StageTimes
from picar.pipeline.sink import ReadSink
from picar.pipeline.store import Store
from picar.pipeline.tracker import PlateTracker, TrackerSettings
from picar.status import StatusReport
from picar.systemd import Notifier
from picar.types import Fix, Match, PlateRead, WatchEntry

if TYPE_CHECKING:
    from picar.housekeeping import Housekeeping
    from picar.link.mqtt import HqLink
    from picar.sources.camera import Camera
    from picar.sources.gps import GpsSource
    from picar.station.heat import HeatMonitor
    from picar.station.k9 import DoorInput, K9Log
    from picar.station.server import StationServer
    from picar.vision.detector import PlateDetector
    from picar.vision.ocr import PlateOcr
    from picar.watchlist.recheck import Recheck
    from picar.watchlist.sync import UpdateResult, WatchlistStore

log = logging.getLogger("picar")
audit_log = logging.getLogger("picar.audit")

VERSION = __version__
HEALTHY_LOOP_AGE_S = 30.0  # the loop is unhealthy when it has not gone round its cameras for this long
RESTART_SECTIONS = ("cameras", "gps", "mqtt", "models", "storage", "ui", "k9")  # not applied by SIGHUP


def tracker_settings(cfg: Config) -> TrackerSettings:
    t = cfg.tracker
    return TrackerSettings(iou=t.iou, max_gap_s=t.max_gap_s, min_frames=t.min_frames,
                           cooldown_s=t.cooldown_s, max_tracks=t.max_tracks)


class Daemon:
    """The vehicle daemon. `run()` blocks until stopped; signals arrive through a queue."""

    def __init__(self, config: Config, notifier: Notifier | None = None, exit_when_done: bool = False) -> None:
        self.cfg = config
        self.notifier = notifier or Notifier()
        self.exit_when_done = exit_when_done
        # SimpleQueue.put is reentrant: the signal handler may run while the main thread is inside get().
        self.signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.stop_event = threading.Event()
        self.times = StageTimes()
        self.started_monotonic = time.monotonic()
        self.ready_after_s: float | None = None
        self.store: Store | None = None
        self.outbox: Outbox | None = None
        self.hq: HqLink | None = None
        self.publisher: EventPublisher | None = None
        self.watchlist: WatchlistStore | None = None
        self.gps: GpsSource | None = None
        self.cameras: list[Camera] = []
        self.sink: ReadSink | None = None
        self.recheck: Recheck | None = None
        self.pipeline: Pipeline | None = None
        self.ui: StationServer | None = None
        self.k9: K9Log | None = None
        self.heat: HeatMonitor | None = None
        self.door: DoorInput | None = None
        self.status = StatusReport(config.vehicle.id, self._watchlist_version, self._watchlist_problem)
        self._threads: list[threading.Thread] = []

    # --- build and start, in dependency order ---------------------------------------------------

    def start(self) -> None:
        import cv2

        from picar.watchlist.recheck import Recheck

        cv2.setNumThreads(1)  # one decode thread per camera plus one inference thread: no oversubscription
        cfg = self.cfg
        store = self.store = Store(cfg.storage.data_dir, min_free_mb=cfg.storage.min_free_mb)
        self._audit("daemon", "start", {"vehicle": cfg.vehicle.id, "config": str(cfg.source_path)})
        self.watchlist = self._start_watchlist()
        self.outbox = self._open_outbox(store)
        self.hq = self._start_hq(self.outbox)
        publisher = self.publisher = EventPublisher(self.outbox, self.hq, cfg.mqtt.topic_prefix, cfg.vehicle.id)
        s = cfg.storage
        self.sink = ReadSink(store, publisher.publish, self._audit, save_read_crops=s.save_read_crops,
                             save_hit_images=s.save_hit_images, hit_cooldown_s=cfg.watchlist.hit_cooldown_s)
        self.recheck = Recheck(store, self._match, self.sink.on_hit, self._position_at, cfg.vehicle.id,
                               cfg.watchlist.recheck_hours)
        detector, reader = self._load_models()
        self.gps = self._start_gps()
        self._wait_first_fix(2.0)
        self.cameras = self._start_cameras()
        self.pipeline = Pipeline(
            vehicle_id=cfg.vehicle.id, detector=detector, reader=reader,
            tracker=PlateTracker(tracker_settings(cfg)), sink=self.sink, matcher=self._match,
            position_at=self._position_at, region_of=self._region_of,
            min_read_confidence=cfg.models.min_read_confidence, times=self.times,
        )
        self._start_station(store, publisher)
        self.status = StatusReport(cfg.vehicle.id, self._watchlist_version, self._watchlist_problem,
                                   cameras=self.cameras, gps=self.gps, hq=self.hq, outbox=self.outbox,
                                   pipeline=self.pipeline, sink=self.sink, store=store)
        self._spawn("loop", self._loop)
        self._spawn("housekeeping", self._housekeeping().run, self.stop_event)
        self.ready_after_s = time.monotonic() - self.started_monotonic
        log.info("ready in %.2f s: vehicle %s, %d camera(s), watchlist v%s", self.ready_after_s, cfg.vehicle.id,
                 len(self.cameras), self._watchlist_version())
        self.notifier.ready(f"reading {len(self.cameras)} camera(s)")

    def _spawn(self, name: str, target: Callable[..., object], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _start_watchlist(self) -> WatchlistStore:
        from picar.watchlist.sync import WatchlistStore

        w = self.cfg.watchlist
        store = WatchlistStore(
            w.dir, public_key=w.public_key, require_signature=w.require_signature,
            max_substitutions=w.max_substitutions, max_edit_distance=w.max_edit_distance,
            confusables=w.confusables, audit=self._audit_update,
        )
        store.load()
        return store

    def _open_outbox(self, store: Store) -> Outbox:
        return Outbox(store.data_dir / "outbox.db", max_size_bytes=self.cfg.storage.outbox_max_mb * 2**20)

    def _start_hq(self, outbox: Outbox) -> HqLink | None:
        from picar.link.commands import HqCommands
        from picar.link.mqtt import HqLink

        m = self.cfg.mqtt
        if not m.enabled:
            log.warning("mqtt.enabled = false: events are kept in the outbox and not sent to HQ")
            return None
        assert self.watchlist is not None
        commands = HqCommands(self.watchlist, on_new_list=self._on_new_list)
        user, password = read_credentials(m.credentials_file) if m.credentials_file else (None, None)
        hq = HqLink(
            vehicle_id=self.cfg.vehicle.id, host=m.host, port=m.port, outbox=outbox, tls=m.tls,
            ca_file=m.ca_file, cert_file=m.cert_file, key_file=m.key_file, username=user, password=password,
            keepalive_s=m.keepalive_s, topic_prefix=m.topic_prefix, client_id=m.client_id,
            max_inflight=m.max_inflight, status_provider=self.status_summary,
            on_command=commands.on_command, hq_ack=m.hq_ack, hq_ack_timeout_s=m.hq_ack_timeout_s,
            hq_ack_max_s=m.hq_ack_max_s,
        )
        hq.start()
        return hq

    def _load_models(self) -> tuple[PlateDetector, PlateOcr]:
        from picar.vision.detector import PlateDetector
        from picar.vision.ocr import PlateOcr

        m = self.cfg.models
        detector = PlateDetector(m.detector, threads=m.threads, score_threshold=m.detector_threshold)
        reader = PlateOcr(m.ocr, threads=m.threads)
        detector.warm_up()
        reader.warm_up([self._region_of(c.name) for c in self.cfg.cameras])
        return detector, reader

    def _start_gps(self) -> GpsSource:
        from picar.sources.gps import open_gps

        g = self.cfg.gps
        gps = open_gps(g.source, g.device, g.baud, g.gpsd_host, g.gpsd_port, g.max_fix_age_s,
                       g.reopen_initial_s, g.reopen_max_s)
        gps.start()
        return gps

    def _wait_first_fix(self, timeout_s: float) -> None:
        """Give a receiver that is already talking a moment to report its fix, so the first plates of a
        shift carry a position. Never longer than `timeout_s`: a car in a garage still starts."""
        if self.cfg.gps.source == "none" or self.gps is None:
            return
        deadline = time.monotonic() + timeout_s
        while self.gps.latest() is None and time.monotonic() < deadline:
            self.stop_event.wait(0.05)
        if self.gps.latest() is None:
            log.warning("GPS: no fix yet after %.1f s; reads carry no position until one arrives", timeout_s)

    def _start_cameras(self) -> list[Camera]:
        from picar.sources.camera import open_camera

        cameras = []
        for c in self.cfg.cameras:
            if not c.enabled:
                continue
            cam = open_camera(c.name, c.source, realtime=c.realtime, loop=c.loop, fps_cap=c.fps,
                              width=c.width, height=c.height, reconnect_initial_s=c.reconnect_initial_s,
                              reconnect_max_s=c.reconnect_max_s)
            cam.start()
            cameras.append(cam)
        return cameras

    def _start_station(self, store: Store, publisher: EventPublisher) -> None:
        u = self.cfg.ui
        if self.cfg.k9.enabled:
            self._start_k9(store, publisher)
        if not u.enabled:
            return
        from picar.station.actions import OfficerActions
        from picar.station.server import StationServer

        officer = OfficerActions(store, publisher.publish, self._audit, self.cfg.vehicle.id)
        token = u.token_file.read_text().strip() if u.token_file else None
        self.ui = StationServer(u.bind, u.port, token, status=self.status_summary,
                                on_disposition=officer.dispose, k9=self.k9, image_dir=store.image_dir,
                                language=u.language)
        url = self.ui.start()
        assert self.sink is not None
        self.sink.push = self.ui.push
        log.info("in-car page at %s", url)

    def _start_k9(self, store: Store, publisher: EventPublisher) -> None:
        from picar.station.heat import HeatMonitor
        from picar.station.k9 import K9Log

        k = self.cfg.k9
        self.k9 = K9Log(store.data_dir / "k9.db", publish=publisher.publish,
                        position=lambda: (f.to_json() if self.gps and (f := self.gps.latest()) else None))
        self.k9.publish_pending()  # starts and ends logged from the CLI while the daemon was down
        if k.door_device:
            from picar.station.k9 import DoorInput

            self.door = DoorInput(k.door_device, 9600, self.k9, dog=k.dogs[0] if k.dogs else "unknown",
                                  handler=k.handlers[0] if k.handlers else "unknown")
            self.door.start()
        if k.heat_device:
            self.heat = HeatMonitor(k.heat_device, k.heat_baud, k.heat_warn_c, k.heat_alarm_c,
                                    on_state=self._on_heat, alarm_command=k.alarm_command)
            self.heat.start()

    def _housekeeping(self) -> Housekeeping:
        from picar.housekeeping import Housekeeping

        assert self.store is not None and self.publisher is not None
        return Housekeeping(lambda: self.cfg, self.store, self.publisher, self.status.summary, hq=self.hq,
                            gps=self.gps, k9=self.k9, page=self.ui)

    # --- wiring: small adapters between the parts -----------------------------------------------

    def _loop(self) -> None:
        assert self.pipeline is not None
        idle = self._all_finished if self.exit_when_done else None
        try:
            self.pipeline.run(self.cameras, self.stop_event, idle=idle)
        except Exception:
            log.exception("the loop failed")
        if self.exit_when_done and not self.stop_event.is_set():
            log.info("all recorded sources finished")
            self.signals.put(signal.SIGTERM)

    def _all_finished(self) -> bool:
        return all(getattr(c, "finished", False) for c in self.cameras)

    def _region_of(self, camera: str) -> tuple[str, ...]:
        for c in self.cfg.cameras:
            if c.name == camera and c.region != ("auto",):
                return c.region
        return self.cfg.models.region

    def _match(self, read: PlateRead) -> list[tuple[WatchEntry, Match]]:
        # The camera's region is a plate-format hint, not where the car is registered: a foreign car
        # on the list must still hit, so entries are not filtered by it.
        assert self.watchlist is not None
        return list(self.watchlist.current.match(read.candidates))

    def _position_at(self, t: float) -> Fix | None:
        return self.gps.fix_at(t) if self.gps is not None else None

    def _on_new_list(self) -> None:
        """A watchlist update was accepted: tell HQ which version is in force, then recheck past reads."""
        if self.hq is not None:
            self.hq.publish_status()
        if self.recheck is not None:
            self._spawn("recheck", self.recheck.run)  # joined by stop()

    def _on_heat(self, state: dict[str, Any]) -> None:
        payload = dict(state)
        if state.get("state") in ("warning", "alarm") and self.publisher is not None:
            self.publisher.publish("heat", payload)
        if self.ui is not None:
            self.ui.push("heat", payload)

    def _audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        if self.store is not None:
            self.store.audit(actor, action, detail)

    def _audit_update(self, event: UpdateResult) -> None:
        self._audit("hq", "watchlist update", event.to_json())

    def _watchlist_version(self) -> int | None:
        return self.watchlist.version if self.watchlist is not None else None

    def _watchlist_problem(self) -> str | None:
        return self.watchlist.problem if self.watchlist is not None else N_("watchlist not loaded yet")

    def status_summary(self) -> dict[str, Any]:
        """The status as it is now; the parts built before the loop hold this, not the report (replaced at start)."""
        return self.status.summary()

    def healthy(self) -> bool:
        """The loop is alive and still going round (or every recording has ended).

        A camera without frames is not a reason for systemd to restart the daemon: the camera worker
        reconnects on its own and the status says so. A loop stuck on a frame (a hung model) is.
        """
        if self.pipeline is None or not any(t.name == "loop" and t.is_alive() for t in self._threads):
            return self.exit_when_done and self._all_finished()
        last = self.pipeline.counters.last_pass_monotonic
        return last == 0.0 or time.monotonic() - last < HEALTHY_LOOP_AGE_S or self._all_finished()

    # --- run, reload, stop ----------------------------------------------------------------------

    def run(self) -> int:
        """Handle signals and the watchdog until SIGTERM/SIGINT."""
        interval = self.notifier.watchdog_s / 2 if self.notifier.watchdog_s else 1.0
        unhealthy_logged = False
        while True:
            try:
                sig = self.signals.get(timeout=interval)
            except queue.Empty:
                sig = None
            if sig in (signal.SIGTERM, signal.SIGINT):
                break
            if sig == signal.SIGHUP:
                self.reload()
            if self.healthy():
                self.notifier.watchdog()
                unhealthy_logged = False
            elif not unhealthy_logged:  # once, not at every ping: systemd restarts the daemon soon
                log.error("loop stuck for %.0f s: withholding the watchdog ping", HEALTHY_LOOP_AGE_S)
                unhealthy_logged = True
        self.stop()
        return 0

    def reload(self) -> None:
        """SIGHUP: a valid new config replaces the running one where that needs no restart."""
        self.notifier.reloading()
        path = self.cfg.source_path
        try:
            if path is None:
                raise ConfigError(["no config file to reload"])
            new = load_config(path)
        except ConfigError as exc:
            log.error("SIGHUP: config %s not reloaded, keeping the running one:\n%s", path, exc)
            self.notifier.ready()
            return
        restart_needed = [s for s in RESTART_SECTIONS if getattr(new, s) != getattr(self.cfg, s)]
        if restart_needed:
            log.warning("SIGHUP: changes to [%s] take effect at the next restart", ", ".join(restart_needed))
        self.cfg = new
        if self.pipeline is not None:
            self.pipeline.tracker.settings = tracker_settings(new)
            self.pipeline.min_read_confidence = new.models.min_read_confidence
        if self.sink is not None:
            self.sink.groups.cooldown_s = new.watchlist.hit_cooldown_s
        if self.recheck is not None:
            self.recheck.hours = new.watchlist.recheck_hours
        logging.getLogger().setLevel(new.logging.level.upper())
        if self.watchlist is not None:
            self.watchlist.load()
        self._audit("daemon", "reload", {"config": str(path), "watchlist_version": self._watchlist_version()})
        log.info("SIGHUP: config and watchlist reloaded (watchlist v%s)", self._watchlist_version())
        self.notifier.ready()

    def stop(self) -> None:
        """Stop in reverse: sources and the loop, the station, the GPS, the link; the store last."""
        self.notifier.stopping()
        log.info("stopping")
        self.stop_event.set()
        for cam in self.cameras:
            cam.stop()
        for t in self._threads:
            t.join(timeout=10)
        for part in (self.door, self.heat, self.ui, self.gps):
            if part is not None:
                part.stop()
        if self.hq is not None:
            self.hq.stop(timeout=5.0)
        backlog = self.outbox.backlog() if self.outbox is not None else 0
        self._audit("daemon", "stop", {"backlog": backlog})
        if backlog:
            log.info("%d event(s) not yet acknowledged by HQ stay in the outbox for the next start", backlog)
        if self.store is not None:
            self.store.close()


def install_signal_handlers(daemon: Daemon) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: daemon.signals.put(s))


def setup_logging(level: str, audit_file: Path | None) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if audit_file is not None:
        try:
            audit_file.parent.mkdir(parents=True, exist_ok=True)
            logging.getLogger("picar.store").addHandler(AuditFileHandler(audit_file))
        except OSError as exc:
            log.error("audit file %s cannot be opened: %s (audit stays in the database)", audit_file, exc)

"""Composition root: config -> store, HQ link, watchlist, models, GPS, cameras, page -> the loop.

Components start in dependency order and stop in reverse. READY is sent to systemd only once the
models are warm and the sources are open; the watchdog is pinged only while the loop is healthy.
SIGTERM stops cleanly (the outbox keeps whatever HQ has not acknowledged); SIGHUP reloads the config
file and the watchlist.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picar import __version__
from picar.config import Config, ConfigError, load_config, read_credentials
from picar.isotime import event_iso
from picar.link.topics import WATCHLIST, vehicle_topic
from picar.pipeline.events import hit_payload, read_payload
from picar.pipeline.loop import Pipeline
from picar.pipeline.metrics import StageTimes
from picar.pipeline.store import Store
from picar.pipeline.tracker import PlateTracker, TrackerSettings, VotedRead
from picar.systemd import Notifier
from picar.types import REJECT_REASONS, Hit, Match, PlateRead, WatchEntry

log = logging.getLogger("picar")
audit_log = logging.getLogger("picar.audit")

VERSION = __version__


def tracker_settings(cfg: Config) -> TrackerSettings:
    t = cfg.tracker
    return TrackerSettings(iou=t.iou, max_gap_s=t.max_gap_s, min_frames=t.min_frames,
                           cooldown_s=t.cooldown_s, max_tracks=t.max_tracks)


@dataclass
class HitGroups:
    """Repeated hits on the same plate and list within the cooldown are one group (one alarm)."""

    cooldown_s: float
    _first: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)

    def group(self, hit: Hit) -> str | None:
        key = (hit.entry.plate, hit.entry.list)
        prev = self._first.get(key)
        if prev is not None and hit.read.captured_at - prev[1] < self.cooldown_s:
            return prev[0]
        self._first[key] = (hit.event_id, hit.read.captured_at)
        return None


class Daemon:
    """The vehicle daemon. `run()` blocks until stopped; signals arrive through a queue."""

    def __init__(self, config: Config, notifier: Notifier | None = None, exit_when_done: bool = False) -> None:
        self.cfg = config
        self.notifier = notifier or Notifier()
        self.exit_when_done = exit_when_done
        self.signals: queue.Queue[int] = queue.Queue()
        self.stop_event = threading.Event()
        self.times = StageTimes()
        self.started_monotonic = time.monotonic()
        self.ready_after_s: float | None = None
        self.store: Store | None = None
        self.outbox: Any = None
        self.hq: Any = None
        self.watchlist: Any = None
        self.gps: Any = None
        self.cameras: list[Any] = []
        self.ui: Any = None
        self.k9: Any = None
        self.heat: Any = None
        self.door: Any = None
        self._watchlist_lock = threading.Lock()
        self._pending_events: list[tuple[str, dict[str, Any]]] = []
        self._pending_lock = threading.Lock()
        self.pipeline: Pipeline | None = None
        self._threads: list[threading.Thread] = []
        self._groups = HitGroups(config.watchlist.hit_cooldown_s)
        self._recent_hits: list[dict[str, Any]] = []
        self._recent_reads: list[dict[str, Any]] = []
        self._read_times: list[float] = []

    # --- start ----------------------------------------------------------------------------------

    def start(self) -> None:
        import cv2

        cv2.setNumThreads(1)  # one decode thread per camera plus one inference thread: no oversubscription
        cfg = self.cfg
        data = cfg.storage.data_dir
        self.store = Store(data, min_free_mb=cfg.storage.min_free_mb)
        self._audit("daemon", "start", {"vehicle": cfg.vehicle.id, "config": str(cfg.source_path)})
        self._start_watchlist()
        self._start_hq()
        detector, reader = self._load_models()
        self._start_gps()
        self._wait_first_fix(2.0)
        self._start_cameras()
        self.pipeline = Pipeline(
            vehicle_id=cfg.vehicle.id,
            detector=detector,
            reader=reader,
            tracker=PlateTracker(tracker_settings(cfg)),
            sink=self,
            matcher=self._match,
            position_at=self._position_at,
            region_of=self._region_of,
            min_read_confidence=cfg.models.min_read_confidence,
            times=self.times,
        )
        self._start_station()
        self._spawn("loop", self._loop)
        self._spawn("housekeeping", self._housekeeping)
        self.ready_after_s = time.monotonic() - self.started_monotonic
        log.info("ready in %.2f s: vehicle %s, %d camera(s), watchlist v%s", self.ready_after_s, cfg.vehicle.id,
                 len(self.cameras), self._watchlist_version())
        self.notifier.ready(f"reading {len(self.cameras)} camera(s)")

    def _spawn(self, name: str, target: Any) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _load_models(self) -> tuple[Any, Any]:
        from picar.vision.detector import PlateDetector
        from picar.vision.ocr import PlateOcr

        m = self.cfg.models
        detector = PlateDetector(m.detector, threads=m.threads, score_threshold=m.detector_threshold)
        reader = PlateOcr(m.ocr, threads=m.threads)
        detector.warm_up()
        reader.warm_up()
        return detector, reader

    def _region_of(self, camera: str) -> str:
        for c in self.cfg.cameras:
            if c.name == camera and c.region != "auto":
                return c.region
        return self.cfg.models.region

    def _start_watchlist(self) -> None:
        from picar.watchlist.sync import WatchlistStore

        w = self.cfg.watchlist
        self.watchlist = WatchlistStore(
            w.dir, public_key=w.public_key, require_signature=w.require_signature,
            max_substitutions=w.max_substitutions, max_edit_distance=w.max_edit_distance,
            confusables=w.confusables, audit=self._audit_update,
        )
        self.watchlist.load()

    def _start_hq(self) -> None:
        from picar.link.mqtt import HqLink
        from picar.link.outbox import Outbox

        assert self.store is not None
        self.outbox = Outbox(self.store.data_dir / "outbox.db")
        m = self.cfg.mqtt
        if not m.enabled:
            log.warning("mqtt.enabled = false: events are kept in the outbox and not sent to HQ")
            return
        user, password = read_credentials(m.credentials_file) if m.credentials_file else (None, None)
        self.hq = HqLink(
            vehicle_id=self.cfg.vehicle.id, host=m.host, port=m.port, outbox=self.outbox, tls=m.tls,
            ca_file=m.ca_file, cert_file=m.cert_file, key_file=m.key_file, username=user, password=password,
            keepalive_s=m.keepalive_s, topic_prefix=m.topic_prefix, client_id=m.client_id,
            max_inflight=m.max_inflight, status_provider=self.status_summary, on_command=self._on_command,
        )
        self.hq.start()

    def _start_gps(self) -> None:
        from picar.sources.gps import open_gps

        g = self.cfg.gps
        self.gps = open_gps(g.source, g.device, g.baud, g.gpsd_host, g.gpsd_port, g.max_fix_age_s,
                            g.reopen_initial_s, g.reopen_max_s)
        self.gps.start()

    def _wait_first_fix(self, timeout_s: float) -> None:
        """Give a receiver that is already talking a moment to report its fix, so the first plates of a
        shift carry a position. Never longer than `timeout_s`: a car in a garage still starts."""
        if self.cfg.gps.source == "none":
            return
        deadline = time.monotonic() + timeout_s
        while self.gps.latest() is None and time.monotonic() < deadline:
            self.stop_event.wait(0.05)
        if self.gps.latest() is None:
            log.warning("GPS: no fix yet after %.1f s; reads carry no position until one arrives", timeout_s)

    def _start_cameras(self) -> None:
        from picar.sources.camera import open_camera

        for c in self.cfg.cameras:
            if not c.enabled:
                continue
            cam = open_camera(c.name, c.source, realtime=c.realtime, loop=c.loop, fps_cap=c.fps,
                              width=c.width, height=c.height, reconnect_initial_s=c.reconnect_initial_s,
                              reconnect_max_s=c.reconnect_max_s)
            cam.start()
            self.cameras.append(cam)

    def _start_station(self) -> None:
        u = self.cfg.ui
        if self.cfg.k9.enabled:
            self._start_k9()
        if not u.enabled:
            return
        from picar.station.server import StationServer

        assert self.store is not None
        token = u.token_file.read_text().strip() if u.token_file else None
        self.ui = StationServer(u.bind, u.port, token, status=self.status_summary,
                                on_disposition=self.dispose, k9=self.k9, image_dir=self.store.image_dir)
        url = self.ui.start()
        log.info("in-car page at %s", url)

    def _start_k9(self) -> None:
        from picar.station.heat import HeatMonitor
        from picar.station.k9 import K9Log

        assert self.store is not None
        k = self.cfg.k9
        self.k9 = K9Log(self.store.data_dir / "k9.db", publish=self._publish,
                        position=lambda: (f.to_json() if (f := self.gps.latest()) else None))
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

    # --- the loop and housekeeping --------------------------------------------------------------

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

    def _housekeeping(self) -> None:
        next_purge = 0.0
        next_position = 0.0
        next_status = time.monotonic() + 60.0
        while not self.stop_event.wait(0.5):
            now = time.monotonic()
            self._retry_pending_events()
            if now >= next_status and self.hq is not None:
                next_status = now + 60.0
                self.hq.publish_status()
            if now >= next_purge:
                next_purge = now + self.cfg.retention.purge_interval_s
                self._purge()
            if now >= next_position:
                next_position = now + self.cfg.mqtt.position_interval_s
                fix = self.gps.latest() if self.gps else None
                if fix is not None and self.hq is not None:
                    self.hq.publish_position(fix.to_json())
                if fix is not None and self.k9 is not None:
                    self.k9.record_position()
                if self.ui is not None:
                    self.ui.push("status", self.status_summary())

    def _purge(self) -> None:
        assert self.store is not None
        r = self.cfg.retention
        try:
            res = self.store.purge(r.reads_days, r.hits_days)
            if res.reads or res.hits:
                log.info("retention: purged %d reads, %d hits, %d images", res.reads, res.hits, res.files)
        except Exception:
            log.exception("retention purge failed")

    def healthy(self) -> bool:
        """The loop is alive and has looked at a frame recently (or every recording has ended)."""
        if self.pipeline is None or not any(t.name == "loop" and t.is_alive() for t in self._threads):
            return self.exit_when_done and self._all_finished()
        last = self.pipeline.counters.last_frame_monotonic
        return last == 0.0 or time.monotonic() - last < 30.0 or self._all_finished()

    # --- the sink: reads and hits ---------------------------------------------------------------

    def on_read(self, read: PlateRead, voted: VotedRead) -> None:
        assert self.store is not None
        crop = None
        if self.cfg.storage.save_read_crops:
            crop = self.store.save_image(voted.crop, f"{read.event_id}-crop")
        self.store.add_read(read, crop)
        self._publish("read", read_payload(read, crop))
        now = time.time()
        self._read_times = [t for t in self._read_times if now - t < 60] + [now]
        summary = {"event_id": read.event_id, "plate": read.text, "confidence": read.confidence,
                   "camera": read.camera, "time": event_iso(read.captured_at),
                   "lat": read.fix.lat if read.fix else None, "lon": read.fix.lon if read.fix else None}
        self._recent_reads = ([summary] + self._recent_reads)[:50]
        if self.ui is not None:
            self.ui.push("read", summary)

    def on_hit(self, hit: Hit, voted: VotedRead, recheck: bool = False) -> None:
        assert self.store is not None
        crop = frame = None
        if self.cfg.storage.save_hit_images:
            crop = self.store.save_image(voted.crop, f"{hit.event_id}-crop", quality=92)
            frame = self.store.save_image(voted.frame, f"{hit.event_id}-frame", quality=80)
        repeat_of = self._groups.group(hit)
        self.store.add_hit(hit, crop, frame)
        payload = hit_payload(hit, crop, frame, repeat_of=repeat_of, recheck=recheck)
        self._publish("hit", payload)
        self._audit("daemon", "hit", {"event_id": hit.event_id, "plate": hit.entry.plate, "list": hit.entry.list,
                                      "match": hit.match.describe(), "covert": hit.entry.covert})
        if hit.entry.covert or repeat_of is not None:
            return  # covert hits go to HQ only; repeats do not sound the alarm again
        log.warning("HIT %s (%s, priority %d) read %s: %s", hit.entry.plate, hit.entry.list, hit.entry.priority,
                    hit.match.read_text, hit.match.describe())
        self._recent_hits = ([payload] + self._recent_hits)[:20]
        if self.ui is not None:
            self.ui.push("hit", payload)

    def _publish(self, kind: str, payload: dict[str, Any]) -> str:
        """Every event goes through the on-disk outbox; with MQTT off it simply waits there.

        When the outbox cannot take it (disk full), the event waits in memory (bounded) and is retried
        by housekeeping, so a full disk delays events instead of losing them.
        """
        from picar.link.outbox import OutboxError

        event_id = str(payload.setdefault("event_id", str(uuid.uuid4())))
        try:
            self._queue_event(kind, payload)
        except OutboxError as exc:
            with self._pending_lock:
                if len(self._pending_events) < 10000:
                    self._pending_events.append((kind, payload))
                else:
                    log.critical("event %s (%s) lost: outbox unavailable and 10000 events already waiting",
                                 event_id, kind)
            log.error("outbox: cannot store %s event %s (%s); kept in memory and retried", kind, event_id, exc)
        return event_id

    def _queue_event(self, kind: str, payload: dict[str, Any]) -> None:
        if self.hq is not None:
            self.hq.publish_event(kind, payload, event_id=payload["event_id"])
        else:
            topic = vehicle_topic(self.cfg.mqtt.topic_prefix, self.cfg.vehicle.id, kind)
            self.outbox.put(topic, payload, qos=1, event_id=payload["event_id"])

    def _retry_pending_events(self) -> None:
        from picar.link.outbox import OutboxError

        with self._pending_lock:
            waiting, self._pending_events = self._pending_events, []
        for i, (kind, payload) in enumerate(waiting):
            try:
                self._queue_event(kind, payload)
            except OutboxError:
                with self._pending_lock:
                    self._pending_events[:0] = waiting[i:]
                return
        if waiting:
            log.info("outbox: %d waiting event(s) stored", len(waiting))

    def _match(self, read: PlateRead) -> list[tuple[WatchEntry, Match]]:
        # The camera's region is a plate-format hint, not where the car is registered: a foreign car
        # on the list must still hit, so entries are not filtered by it.
        return list(self.watchlist.current.match(read.candidates))

    def _position_at(self, t: float) -> Any:
        return self.gps.fix_at(t) if self.gps is not None else None

    # --- officer and HQ actions -----------------------------------------------------------------

    def dispose(self, hit_event_id: str, decision: str, reason: str | None, note: str | None) -> dict[str, Any]:
        """The officer accepted or rejected a hit: store it, audit it, tell HQ."""
        assert self.store is not None
        if decision not in ("accept", "reject"):
            raise ValueError(f"decision {decision!r} must be 'accept' or 'reject'")
        if decision == "reject" and reason not in REJECT_REASONS:
            raise ValueError(f"reject reason {reason!r} must be one of {', '.join(REJECT_REASONS)}")
        if not self.store.set_disposition(hit_event_id, decision, reason, note):
            raise KeyError(f"no hit with event id {hit_event_id}")
        payload = {"hit_event_id": hit_event_id, "decision": decision, "reason": reason, "note": note,
                   "vehicle": self.cfg.vehicle.id, "time": event_iso(time.time())}
        self._publish("disposition", payload)
        self._audit("officer", f"hit {decision}", payload)
        return payload

    def _on_command(self, topic: str, body: bytes) -> None:
        if topic.endswith("/" + WATCHLIST):
            # A national list takes seconds to verify and index: not on the MQTT network thread.
            threading.Thread(target=self._apply_watchlist, args=(body, topic), name="watchlist", daemon=True).start()
        else:
            log.warning("HQ message on %s ignored: this car does not handle it", topic)

    def _apply_watchlist(self, body: bytes, origin: str) -> None:
        with self._watchlist_lock:
            result = self.watchlist.apply_update(body, origin=origin)
        if not getattr(result, "accepted", False):
            return
        if self.hq is not None:
            self.hq.publish_status()
        threading.Thread(target=self.recheck_past_reads, name="recheck", daemon=True).start()

    def recheck_past_reads(self) -> int:
        """A new list arrived: check the reads of the last `recheck_hours` again and raise hits."""
        assert self.store is not None
        since = time.time() - self.cfg.watchlist.recheck_hours * 3600
        raised = 0
        for r in self.store.recent_reads(since):
            read = PlateRead(r["event_id"], self.cfg.vehicle.id, r["camera"], r["text"], r["confidence"],
                             tuple(r["candidates"]), r["captured_at"], r["captured_at"], r["captured_at"], 0,
                             (0, 0, 0, 0), self._position_at(r["captured_at"]))
            for entry, match in self._match(read):
                if self.store.has_hit(read.event_id, entry.plate, entry.list):
                    continue
                hit = Hit(str(uuid.uuid4()), read, entry, match, raised_at=time.time())
                empty = VotedRead(read.camera, read.text, read.confidence, read.candidates, (), read.captured_at,
                                  0.0, read.captured_at, read.captured_at, 0, read.box)
                self.on_hit(hit, empty, recheck=True)
                raised += 1
        if raised:
            log.warning("watchlist recheck: %d hit(s) among past reads", raised)
        return raised

    def _on_heat(self, state: dict[str, Any]) -> None:
        payload = dict(state)
        if state.get("state") in ("warning", "alarm"):
            self._publish("heat", payload)
        if self.ui is not None:
            self.ui.push("heat", payload)

    def _audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        if self.store is not None:
            self.store.audit(actor, action, detail)

    def _audit_update(self, event: Any) -> None:
        detail = event.to_json() if hasattr(event, "to_json") else event
        self._audit("hq", "watchlist update", detail if isinstance(detail, dict) else {"event": str(detail)})

    # --- status ---------------------------------------------------------------------------------

    def _watchlist_version(self) -> Any:
        return getattr(self.watchlist, "version", None) if self.watchlist is not None else None

    def status_summary(self) -> dict[str, Any]:
        c = self.pipeline.counters if self.pipeline else None
        fix = self.gps.latest() if self.gps else None
        return {
            "vehicle": self.cfg.vehicle.id,
            "version": VERSION,
            "watchlist_version": self._watchlist_version(),
            "cameras": [cam.status() for cam in self.cameras],
            "gps": {"fix": fix.fix if fix else "none", "lat": fix.lat if fix else None,
                    "lon": fix.lon if fix else None,
                    "age_s": round(time.monotonic() - fix.received_monotonic, 1) if fix else None},
            "hq": {"connected": bool(self.hq and self.hq.connected),
                   "backlog": self.outbox.backlog() if self.outbox else 0},
            "reads": c.reads if c else 0,
            "hits": c.hits if c else 0,
            "reads_per_min": len(self._read_times),
            "frames": c.frames if c else 0,
            "recent_hits": self._recent_hits[:5],
            "recent_reads": self._recent_reads[:10],
        }

    # --- run, reload, stop ----------------------------------------------------------------------

    def run(self) -> int:
        """Handle signals and the watchdog until SIGTERM/SIGINT."""
        interval = self.notifier.watchdog_s / 2 if self.notifier.watchdog_s else 1.0
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
            else:
                log.error("loop unhealthy: no frame processed for 30 s; withholding the watchdog ping")
        self.stop()
        return 0

    def reload(self) -> None:
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
        restart_needed = [s for s in ("cameras", "gps", "mqtt", "models", "storage", "ui", "k9")
                          if getattr(new, s) != getattr(self.cfg, s)]
        if restart_needed:
            log.warning("SIGHUP: changes to [%s] take effect at the next restart", ", ".join(restart_needed))
        self.cfg = new
        if self.pipeline is not None:
            self.pipeline.tracker.settings = tracker_settings(new)
            self.pipeline.min_read_confidence = new.models.min_read_confidence
        self._groups.cooldown_s = new.watchlist.hit_cooldown_s
        logging.getLogger().setLevel(new.logging.level.upper())
        self.watchlist.load()
        self._audit("daemon", "reload", {"config": str(path), "watchlist_version": self._watchlist_version()})
        log.info("SIGHUP: config and watchlist reloaded (watchlist v%s)", self._watchlist_version())
        self.notifier.ready()

    def stop(self) -> None:
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
            handler = logging.FileHandler(audit_file)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            logging.getLogger("picar.store").addHandler(handler)
        except OSError as exc:
            log.error("audit file %s cannot be opened: %s (audit stays in the database)", audit_file, exc)

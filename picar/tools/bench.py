"""`picar bench --clip FILE`: the real pipeline on a recorded clip, measured per stage.

Frames are decoded by the camera worker (as in the car), detected, read, tracked and matched on the
loop thread, and every read and hit goes through the car's own sink (store, images, outbox). With a broker
(`--broker HOST:PORT` or PICAR_BENCH_BROKER; plain MQTT, e.g. `mosquitto -p 18830`) the outbox is delivered
to it and an HQ subscriber stamps each hit's arrival: hit latency is frame capture -> arrival at HQ.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from picar.link.mqtt import HqLink
from picar.link.outbox import Outbox
from picar.link.publisher import EventPublisher
from picar.link.topics import DEFAULT_PREFIX, every_vehicle
from picar.paths import DEFAULT_DETECTOR, DEFAULT_OCR, DEMO_DIR
from picar.pipeline.metrics import StageTimes
from picar.pipeline.sink import ReadSink
from picar.pipeline.store import Store
from picar.pipeline.tracker import PlateTracker, TrackerSettings, VotedRead
from picar.tools.stats import percentiles
from picar.types import Hit, Match, PlateRead, WatchEntry


class TimedSource:
    """Wraps a FrameSource to time each decode on the camera thread."""

    def __init__(self, inner: Any, times: StageTimes) -> None:
        self._inner = inner
        self._times = times
        self.description = inner.description
        self.live = inner.live

    def open(self) -> None:
        self._inner.open()

    def read(self) -> np.ndarray | None:
        t0 = time.perf_counter()
        img = self._inner.read()
        self._times.add("decode", (time.perf_counter() - t0) * 1000)
        return img

    def frame_time(self) -> float | None:
        return self._inner.frame_time()

    def close(self) -> None:
        self._inner.close()


class HitArrivals:
    """HQ's side for the benchmark: a plain subscriber that stamps when each hit arrives."""

    def __init__(self, host: str, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.arrivals: dict[str, float] = {}
        self._changed = threading.Condition()
        subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="picar-bench-hq")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, *_: c.subscribe(every_vehicle(DEFAULT_PREFIX, "hit"), qos=1)
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.connect(host, port)
        self._client.loop_start()
        if not subscribed.wait(10.0):
            self.stop()
            raise ConnectionError(f"broker {host}:{port}: no subscription acknowledged within 10 s")

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self._changed:
            self.arrivals.setdefault(json.loads(message.payload)["event_id"], time.monotonic())
            self._changed.notify_all()

    def wait_for(self, event_ids: set[str], timeout_s: float) -> dict[str, float]:
        """The arrival stamps once every id has arrived, or what arrived by the timeout."""
        with self._changed:
            self._changed.wait_for(lambda: event_ids <= set(self.arrivals), timeout_s)
            return dict(self.arrivals)

    def stop(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


class CountingSink(ReadSink):
    """The car's sink, remembering each hit's capture time for the latency figure."""

    capture_mono: dict[str, float]

    def on_hit(self, hit: Hit, voted: VotedRead | None, recheck: bool = False) -> None:
        self.capture_mono[hit.event_id] = hit.read.capture_monotonic
        super().on_hit(hit, voted, recheck)


def _broker_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"broker {text!r}: want HOST:PORT, e.g. 127.0.0.1:18830")
    return host, int(port)


def _every_read_matcher(read: PlateRead) -> list[tuple[WatchEntry, Match]]:
    """Benchmark mode for clips without a watchlist: treat every read as a hit to time the hit path."""
    return [(WatchEntry(read.text, list="bench", reason="benchmark: every read is a hit"),
             Match("exact", read.text))]


def _watchlist_matcher(path: Path) -> Any:
    from picar.watchlist.index import Watchlist
    from picar.watchlist.io import read_csv

    wl = Watchlist.from_records(read_csv(path))
    return lambda read: list(wl.match(read.candidates))


def run_bench(clip: Path, realtime: bool, threads: int, watchlist: Path | None, broker: str | None,
              detector_path: Path = DEFAULT_DETECTOR, ocr_path: Path = DEFAULT_OCR) -> dict[str, Any]:
    import cv2

    from picar.pipeline.loop import DEFAULT_REGION, Pipeline
    from picar.sources.camera import Camera
    from picar.sources.frame_sources import make_source
    from picar.vision.detector import PlateDetector
    from picar.vision.ocr import PlateOcr

    cv2.setNumThreads(1)
    times = StageTimes(capacity=100_000)
    t_start = time.monotonic()
    detector = PlateDetector(detector_path, threads=threads)
    reader = PlateOcr(ocr_path, threads=threads)
    detector.warm_up()
    reader.warm_up([DEFAULT_REGION])  # the loop's region for every camera here
    startup_s = time.monotonic() - t_start

    work = Path(tempfile.mkdtemp(prefix="picar-bench-"))
    store = Store(work, min_free_mb=0)
    outbox = Outbox(work / "outbox.db")
    hq: HqLink | None = None
    sub: HitArrivals | None = None
    if broker is not None:
        host, port = _broker_address(broker)
        sub = HitArrivals(host, port)
        hq = HqLink(vehicle_id="bench", host=host, port=port, outbox=outbox, tls=False, keepalive_s=30,
                    topic_prefix=DEFAULT_PREFIX, client_id="picar-bench")
        hq.start()
    publisher = EventPublisher(outbox, hq, DEFAULT_PREFIX, "bench")

    def publish(kind: str, payload: dict[str, Any]) -> str:
        with times.time("publish"):
            return publisher.publish(kind, payload)

    matcher = _watchlist_matcher(watchlist) if watchlist else _every_read_matcher
    sink = CountingSink(store, publish, store.audit, save_read_crops=False, save_hit_images=True,
                        hit_cooldown_s=60.0)
    sink.capture_mono = {}
    pipeline = Pipeline("bench", detector, reader, PlateTracker(TrackerSettings()), sink, matcher,
                        position_at=lambda t: None, times=times)
    camera = Camera("bench", TimedSource(make_source(str(clip)), times), realtime=realtime, loop=False)
    stop = threading.Event()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.monotonic()
    camera.start()
    pipeline.run([camera], stop, idle=lambda: camera.finished)
    wall = time.monotonic() - w0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    status: dict[str, Any] = dict(camera.status())
    camera.stop()
    arrivals = sub.wait_for(set(sink.capture_mono), timeout_s=10.0) if sub is not None else {}
    latencies = [(arrivals[e] - c) * 1000 for e, c in sink.capture_mono.items() if e in arrivals and c > 0]
    for part in (hq, sub):
        if part is not None:
            part.stop()
    outbox.close()
    store.close()
    frames = pipeline.counters.frames
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    stages = {k: {"p50": v["p50"], "p95": v["p95"], "p99": v["p99"], "n": v["n"]}
              for k, v in times.summary().items()}
    return {
        "clip": str(clip),
        "realtime": realtime,
        "threads": threads,
        "frames": frames,
        "dropped": int(status.get("dropped", 0)),
        "broken": int(status.get("broken", 0)),
        "seconds": round(wall, 3),
        "fps": round(frames / wall, 2) if wall > 0 else 0.0,
        "stages": stages,
        "reads": pipeline.counters.reads,
        "boxes": pipeline.counters.detections,
        "boxes_not_read_again": pipeline.counters.settled,  # their plate's pass already reported
        "hits": len(sink.capture_mono),
        "hit_mode": "watchlist" if watchlist else "every read is a hit",
        "hit_latency_ms": percentiles(latencies),
        "hits_delivered": len(latencies),
        "cpu_percent": round(100 * cpu / wall, 1) if wall > 0 else 0.0,
        "peak_rss_mb": round(ru1.ru_maxrss / 1024, 1),
        "startup_s": round(startup_s, 3),
    }


def _table(r: dict[str, Any]) -> str:
    lines = [
        f"clip {r['clip']}  ({'real time' if r['realtime'] else 'as fast as possible'}, {r['threads']} thread(s))",
        f"frames {r['frames']}  dropped {r['dropped']}  broken {r['broken']}  in {r['seconds']} s  "
        f"=> {r['fps']} frames/s",
        f"cpu {r['cpu_percent']} % of one core   peak RSS {r['peak_rss_mb']} MB   models ready in {r['startup_s']} s",
        f"reads {r['reads']}  hits {r['hits']} ({r['hit_mode']})   plate boxes {r['boxes']}, "
        f"{r['boxes_not_read_again']} not read again (pass already reported)",
        "",
        f"{'stage':<14}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'samples':>10}",
    ]
    for name in ("decode", "preprocess", "detect", "ocr", "track_match", "publish"):
        s = r["stages"].get(name)
        if s:
            lines.append(f"{name:<14}{s['p50']:>10.2f}{s['p95']:>10.2f}{s['p99']:>10.2f}{s['n']:>10}")
    h = r["hit_latency_ms"]
    lines.append(f"{'hit capture->HQ':<14}{h['p50']:>10}{h['p95']:>10}{h['p99']:>10}{h['n']:>10}")
    return "\n".join(lines)


def bench_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="picar bench", description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--clip", type=Path, default=DEMO_DIR / "drive.mp4", help="video file or folder of frames")
    ap.add_argument("--realtime", action="store_true", help="feed frames at the clip's own pace (else max speed)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    ap.add_argument("--watchlist", type=Path, help="watchlist CSV (default: the demo's for the demo drive, "
                    "else every read counts as a hit)")
    ap.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR)
    ap.add_argument("--ocr", type=Path, default=DEFAULT_OCR)
    ap.add_argument("--broker", metavar="HOST:PORT", default=os.environ.get("PICAR_BENCH_BROKER"),
                    help="plain-MQTT broker to deliver to and time hits at (default: $PICAR_BENCH_BROKER; "
                    "without one there is no hit latency)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = ap.parse_args(argv)
    if not args.clip.exists():
        print(f"picar bench: clip {args.clip} not found", file=sys.stderr)
        return 2
    watchlist = args.watchlist
    if watchlist is None and args.clip.resolve() == (DEMO_DIR / "drive.mp4").resolve():
        watchlist = DEMO_DIR / "watchlist.csv"
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    try:
        if args.broker:
            _broker_address(args.broker)
    except ValueError as exc:
        print(f"picar bench: {exc}", file=sys.stderr)
        return 2
    result = run_bench(args.clip, args.realtime, args.threads, watchlist, broker=args.broker or None,
                       detector_path=args.detector, ocr_path=args.ocr)
    print(_table(result))
    if args.json:
        print(json.dumps(result))
    return 0

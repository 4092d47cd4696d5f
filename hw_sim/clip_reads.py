"""The reads a clip gives, frame by frame at the clip's own timing: to compare two versions of the code.

`python -m hw_sim.clip_reads hw_sim/demo/drive.mp4 [--region R[,R...]] [--frames N] [--every N]`

The real detector, OCR and tracker (`picar.pipeline.loop.Pipeline.process`) see every frame in turn on
this thread, stamped with the clip's own time, so the output does not depend on this machine's speed
(`picar bench` drops and times frames as a car would; `--every N` keeps one frame in N, as a loop that has
fallen behind). One JSON line per emitted read on stdout; what the
loop did on stderr (frames, boxes, boxes not read again because their pass was already reported).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from picar.paths import DEFAULT_DETECTOR, DEFAULT_OCR
from picar.pipeline.loop import DEFAULT_REGION, Pipeline
from picar.pipeline.tracker import PlateTracker, TrackerSettings, VotedRead
from picar.tools.read import region_names
from picar.types import Frame, Hit, PlateRead
from picar.vision.detector import PlateDetector
from picar.vision.ocr import PlateOcr

START = 1000.0  # the first frame's timestamp: any fixed value keeps the output the same run to run


class ReadsSink:
    """A pipeline sink that keeps the reads (hits are the watchlist's business, not a clip's)."""

    def __init__(self) -> None:
        self.reads: list[PlateRead] = []

    def on_read(self, read: PlateRead, voted: VotedRead) -> None:
        self.reads.append(read)

    def on_hit(self, hit: Hit, voted: VotedRead) -> None:
        pass


def clip_reads(clip: Path, region: tuple[str, ...], frames: int | None = None,
               every: int = 1) -> tuple[list[PlateRead], dict[str, int]]:
    """Every read the pipeline emits for `clip` (at most `frames` frames, of them each `every`-th: a car whose
    loop keeps up with one frame in `every`), and its counters."""
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    cap = cv2.VideoCapture(str(clip))
    if not cap.isOpened():
        raise ValueError(f"cannot open {clip} as a video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    detector, ocr = PlateDetector(DEFAULT_DETECTOR), PlateOcr(DEFAULT_OCR)
    sink = ReadsSink()
    pipeline = Pipeline("clip", detector, ocr, PlateTracker(TrackerSettings()), sink, lambda read: [],
                        position_at=lambda t: None, region_of=lambda camera: region)
    index = 0
    try:
        while frames is None or index < frames:
            ok, image = cap.read()
            if not ok:
                break
            t = START + index / fps
            if index % every == 0:
                pipeline.process(Frame("clip", index, t, t, image))
            index += 1
    finally:
        cap.release()
    pipeline.flush(final=True)
    c = pipeline.counters
    return sink.reads, {"frames": c.frames, "boxes": c.detections, "not_read_again": c.settled}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw_sim.clip_reads", description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--region", type=region_names, default=DEFAULT_REGION, metavar="R[,R...]",
                    help=f"plate grammars (default {','.join(DEFAULT_REGION)})")
    ap.add_argument("--frames", type=int, help="stop after this many frames")
    ap.add_argument("--every", type=int, default=1, metavar="N",
                    help="process one frame in N, as a loop that falls behind real time would (default 1)")
    args = ap.parse_args(argv)
    try:
        reads, counts = clip_reads(args.clip, args.region, args.frames, args.every)
    except ValueError as exc:
        print(f"clip_reads: {exc}", file=sys.stderr)
        return 2
    for r in reads:
        print(json.dumps({"text": r.text, "confidence": r.confidence, "first_seen": round(r.first_seen - START, 3),
                          "captured_at": round(r.captured_at - START, 3),
                          "candidates": [t for t, _ in r.candidates]}))
    print(json.dumps(counts), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

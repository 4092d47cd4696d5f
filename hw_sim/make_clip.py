"""Re-time and rescale a recorded clip, e.g. the 720p15 demo drive into a 1080p30 benchmark clip.

`python -m hw_sim.make_clip hw_sim/demo/drive.mp4 --size 1920x1080 --fps 30 --out /tmp/drive-1080p30.mp4`

Each output frame shows the source frame at the same moment (frames repeat when the output rate is
higher), scaled with area/linear interpolation. The plates keep their relative size, so the clip
measures throughput and latency at the camera format a car really has; it adds no new scenes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must look like 1920x1080") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"size {text!r} is out of range")
    return w, h


def make_clip(src: Path, out: Path, size: tuple[int, int], fps: float) -> int:
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise ValueError(f"cannot open {src} as a video")
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise ValueError(f"cannot write {out}")
    written = 0
    src_index = -1
    frame = None
    try:
        while True:
            want = int(written * src_fps / fps)
            while src_index < want:
                ok, frame = cap.read()
                if not ok:
                    return written
                src_index += 1
            assert frame is not None
            interp = cv2.INTER_AREA if size[0] < frame.shape[1] else cv2.INTER_LINEAR
            writer.write(cv2.resize(frame, size, interpolation=interp))
            written += 1
    finally:
        cap.release()
        writer.release()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw_sim.make_clip", description=__doc__.splitlines()[0] if __doc__
                                 else None)
    ap.add_argument("src", type=Path)
    ap.add_argument("--size", type=_size, default=(1920, 1080), help="WIDTHxHEIGHT (default 1920x1080)")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        n = make_clip(args.src, args.out, args.size, args.fps)
    except ValueError as exc:
        print(f"make_clip: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {n} frames, {args.size[0]}x{args.size[1]} at {args.fps:g} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())

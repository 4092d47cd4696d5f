from pathlib import Path

import cv2
import numpy as np

from hw_sim.make_clip import make_clip


def test_make_clip_retimes_and_rescales(tmp_path: Path) -> None:
    src = tmp_path / "src.avi"
    w = cv2.VideoWriter(str(src), cv2.VideoWriter.fourcc(*"MJPG"), 10, (160, 90))
    for i in range(20):
        w.write(np.full((90, 160, 3), i * 12, np.uint8))
    w.release()
    out = tmp_path / "out.mp4"
    n = make_clip(src, out, (320, 180), 20.0)
    assert n == 40
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    assert len(frames) == 40 and frames[0].shape == (180, 320, 3)
    # The same moment of the source: output frames 2k and 2k+1 both show source frame k.
    assert abs(int(frames[10].mean()) - 5 * 12) <= 5 and abs(int(frames[11].mean()) - 5 * 12) <= 5

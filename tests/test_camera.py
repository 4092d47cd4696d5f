"""picar.sources.camera against real OpenCV: image folders, video files, pacing and newest-frame drops."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from picar.sources.camera import Camera, open_camera
from picar.sources.frame_sources import FolderSource, OpenCvSource, check_image, list_folder, make_source, redact_url
from picar.types import Frame

SHADE_STEP = 5


def shaded(i: int, w: int = 64, h: int = 48) -> np.ndarray:
    """A frame whose mean brightness encodes its number, robust to JPEG loss."""
    return np.full((h, w, 3), (i * SHADE_STEP) % 250, dtype=np.uint8)


def shade_of(image: np.ndarray) -> int:
    return round(float(image.mean()) / SHADE_STEP)


def write_folder(folder: Path, count: int, fps: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        assert cv2.imwrite(str(folder / f"{i:06d}.jpg"), shaded(i))
    if fps is not None:
        (folder / "fps.txt").write_text(f"{fps}\n")
    return folder


def drain(cam: Camera, timeout: float = 30.0) -> list[Frame]:
    """Take every frame until the camera reports finished."""
    frames: list[Frame] = []
    while True:
        frame = cam.get(timeout)
        if frame is None:
            assert cam.finished, f"camera stalled: {cam.status()}"
            return frames
        frames.append(frame)


def test_folder_skips_corrupt_and_truncated_files_and_names_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_folder(tmp_path / "frames", 10)
    (folder / "000004.jpg").write_bytes(b"this is not a jpeg at all")
    whole = (folder / "000007.jpg").read_bytes()
    (folder / "000007.jpg").write_bytes(whole[: len(whole) // 2])  # cut off, as by a crash mid-write
    cam = Camera("front", str(folder), realtime=False)
    with caplog.at_level(logging.WARNING, logger="picar.camera"):
        cam.start()
        frames = drain(cam)
        cam.stop()
    assert [shade_of(f.image) for f in frames] == [0, 1, 2, 3, 5, 6, 8, 9]
    assert [f.index for f in frames] == list(range(8))
    status = cam.status()
    assert status["broken"] == 2 and status["dropped"] == 0 and status["frames"] == 8
    assert isinstance(cam.source, FolderSource) and cam.source.skipped_files == 2
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "000004.jpg" in messages and "000007.jpg" in messages
    assert "000005.jpg" not in messages


def test_video_file_read_fully_without_drops_when_not_realtime(tmp_path: Path) -> None:
    path = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (64, 48))
    assert writer.isOpened()
    count = 40
    for i in range(count):
        writer.write(shaded(i))
    writer.release()
    cam = open_camera("front", str(path), realtime=False)
    assert isinstance(cam.source, OpenCvSource) and cam.source.kind == "file"
    cam.start()
    frames = []
    while (frame := cam.get(30.0)) is not None:
        frames.append(frame)
        # A consumer slower than the decoder: the worker must wait for it, not overwrite.
        cv2.GaussianBlur(frame.image, (31, 31), 0)
    assert cam.finished
    cam.stop()
    assert [f.index for f in frames] == list(range(count))
    assert [shade_of(f.image) for f in frames] == list(range(count))
    assert cam.status()["dropped"] == 0
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    stamps = [f.monotonic for f in frames]
    assert stamps == sorted(stamps)


def test_video_file_with_a_corrupt_frame_skips_it_and_reads_on(tmp_path: Path) -> None:
    path = tmp_path / "damaged.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(20):
        writer.write(shaded(i))
    writer.release()
    data = bytearray(path.read_bytes())
    starts = [m for m in range(len(data) - 2) if data[m : m + 3] == b"\xff\xd8\xff"]
    assert len(starts) == 20
    # Overwrite frame 10's JPEG bytes but leave the AVI chunk structure intact.
    chunk_header = 8  # "00dc" and a 4-byte size precede each JPEG
    data[starts[10] : starts[11] - chunk_header] = b"\x55" * (starts[11] - chunk_header - starts[10])
    path.write_bytes(bytes(data))
    cam = open_camera("front", str(path), realtime=False)
    cam.start()
    frames = drain(cam)
    cam.stop()
    assert [shade_of(f.image) for f in frames] == [*range(10), *range(11, 20)]
    assert cam.status()["broken"] == 1


def test_video_file_loops_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(5):
        writer.write(shaded(i))
    writer.release()
    cam = open_camera("front", str(path), realtime=False, loop=True)
    cam.start()
    shades = []
    for _ in range(12):
        frame = cam.get(30.0)
        assert frame is not None
        shades.append(shade_of(frame.image))
    cam.stop()
    assert shades == [0, 1, 2, 3, 4] * 2 + [0, 1]
    assert cam.state == "stopped"


def test_realtime_source_keeps_newest_frame_and_counts_drops(tmp_path: Path) -> None:
    count, fps = 50, 100.0
    folder = write_folder(tmp_path / "fast", count, fps=fps)
    cam = Camera("front", str(folder), realtime=True)
    cam.start()
    first = cam.get(30.0)
    assert first is not None
    # The consumer is busy until the recording is over: all but the newest two frames are dropped.
    assert cam.wait_state("finished", 30.0)
    second_last = cam.get(1.0)
    last = cam.get(1.0)
    assert cam.get(0.1) is None
    cam.stop()
    assert second_last is not None and second_last.index == count - 2
    assert last is not None and last.index == count - 1 and shade_of(last.image) == count - 1
    status = cam.status()
    assert status["frames"] == count
    assert status["dropped"] == count - 3
    # Played at recorded pace (100 fps), not as fast as the disk allows: a frame is stamped when it is due,
    # never before, so the camera's own stamps are at least the recording's time apart. A loaded machine
    # only stretches them, so there is no upper bound here.
    span = last.monotonic - first.monotonic
    due = (last.index - first.index) / fps
    assert span >= 0.8 * due, f"frames {first.index}..{last.index} stamped {span:.3f} s apart, due {due:.3f} s"
    # The status reports the rate the frames came at: some, and not faster than recorded.
    assert 0 < float(status["fps"]) <= 1.5 * fps, status  # type: ignore[arg-type]


def test_folder_timing_comes_from_frames_csv(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "rec", 3)
    (folder / "frames.csv").write_text(
        "index,file,captured_at\n0,000002.jpg,100.0\n1,000000.jpg,100.5\n2,000001.jpg,101.25\n"
    )
    entries = list_folder(folder)
    assert [(e.path.name, e.time) for e in entries] == [
        ("000002.jpg", 0.0), ("000000.jpg", 0.5), ("000001.jpg", 1.25)
    ]
    # An explicit fps overrides the recording's timing and plays files in name order.
    assert [(e.path.name, e.time) for e in list_folder(folder, fps=4.0)] == [
        ("000000.jpg", 0.0), ("000001.jpg", 0.25), ("000002.jpg", 0.5)
    ]
    (folder / "frames.csv").write_text("index,file,captured_at\n0,000000.jpg,100.0\n1,000001.jpg,soon\n")
    with pytest.raises(ValueError, match=r"line 3: captured_at 'soon'"):
        list_folder(folder)


def test_fps_txt_is_validated(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "f", 2)
    (folder / "fps.txt").write_text("fast\n")
    with pytest.raises(ValueError, match=r"fps.txt.*'fast'"):
        list_folder(folder)


def test_source_string_picks_backend_or_names_bad_value(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "f", 1)
    assert isinstance(make_source(str(folder)), FolderSource)
    device = make_source("/dev/video7")
    assert isinstance(device, OpenCvSource) and device.kind == "device" and device.live
    index = make_source("0")
    assert isinstance(index, OpenCvSource) and index.target == 0
    stream = make_source("rtsp://10.0.0.5:554/stream1")
    assert isinstance(stream, OpenCvSource) and stream.kind == "stream"
    missing = str(tmp_path / "nope.mp4")
    with pytest.raises(ValueError, match=r"camera 'rear': camera source '.*nope\.mp4' is neither"):
        open_camera("rear", missing)


def test_unopenable_source_backs_off_instead_of_spinning(tmp_path: Path) -> None:
    gone = tmp_path / "later"
    cam = Camera("front", FolderSource(gone), reconnect_initial_s=0.02, reconnect_max_s=0.08)
    cam.start()
    assert cam.wait_state("reconnecting", 30.0)
    assert "does not exist" in str(cam.status()["reason"])
    # The folder appears (a USB stick mounted late): the camera picks it up on a later attempt.
    write_folder(gone, 3)
    assert cam.wait_state(("streaming", "finished"), 30.0)
    frame = cam.get(30.0)
    cam.stop()
    assert frame is not None
    assert int(cam.status()["reconnects"]) >= 1  # type: ignore[call-overload]


def test_looping_an_unusable_recording_backs_off_instead_of_spinning(tmp_path: Path) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i:06d}.jpg").write_bytes(b"not an image")
    cam = Camera("front", str(folder), realtime=False, loop=True, reconnect_initial_s=0.05, reconnect_max_s=0.1)
    cam.start()
    try:
        assert cam.wait_state("reconnecting", 30.0)
        assert "no usable frame" in str(cam.status()["reason"])
    finally:
        cam.stop()
    # Each attempt reads the three files once, then waits out the back-off.
    status = cam.status()
    assert int(status["broken"]) <= 3 * (int(status["reconnects"]) + 1)  # type: ignore[call-overload]


def test_missing_device_is_retried_not_fatal() -> None:
    cam = open_camera("front", "/dev/video99", reconnect_initial_s=0.05, reconnect_max_s=0.1)
    cam.start()
    try:
        assert cam.wait_state("reconnecting", 30.0)
        assert "/dev/video99" in str(cam.status()["reason"])
    finally:
        cam.stop()
    assert cam.state == "stopped"


def test_stream_credentials_stay_out_of_logs_and_status() -> None:
    assert redact_url("rtsp://admin:secret@10.0.0.5:554/s1") == "rtsp://admin:***@10.0.0.5:554/s1"
    assert redact_url("http://10.0.0.5/front.mjpg") == "http://10.0.0.5/front.mjpg"
    source = make_source("rtsp://admin:secret@10.0.0.5:554/s1")
    assert "secret" not in source.description


def test_frames_are_stamped_with_the_injected_clocks(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "f", 3)
    ticks = iter(range(1000))
    cam = Camera(
        "front", str(folder), realtime=False,
        wall_clock=lambda: 1_700_000_000.0 + next(ticks), monotonic=lambda: 42.0,
    )
    cam.start()
    frames = drain(cam)
    cam.stop()
    walls = [f.captured_at for f in frames]
    assert len(walls) == 3 and walls == sorted(walls) and walls[0] >= 1_700_000_000.0
    assert all(f.monotonic == 42.0 and f.camera == "front" for f in frames)
    assert cam.status()["last_frame_age_s"] == 0.0


def test_check_image_rejects_broken_frames() -> None:
    assert check_image(np.zeros((4, 4, 3), np.uint8)) is None
    assert check_image(None) == "no image"
    assert "empty" in str(check_image(np.zeros((0, 4, 3), np.uint8)))
    assert "wrong shape" in str(check_image(np.zeros((4, 4), np.uint8)))
    assert "dtype" in str(check_image(np.zeros((4, 4, 3), np.float32)))


def test_bad_backoff_settings_are_rejected(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "f", 1)
    with pytest.raises(ValueError, match="initial=5.0 max=1.0"):
        Camera("front", str(folder), reconnect_initial_s=5.0, reconnect_max_s=1.0)

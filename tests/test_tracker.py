from picar.pipeline.tracker import PlateTracker, TrackerSettings, vote
from picar.types import CharRead, Detection, OcrResult, PlateObservation


def ocr(text: str, conf: float = 0.9, weak: dict[int, tuple[str, float]] | None = None) -> OcrResult:
    weak = weak or {}
    chars = []
    for i, c in enumerate(text):
        if i in weak:
            alt, p = weak[i]
            chars.append(CharRead(c, conf - p, ((alt, p),)))
        else:
            chars.append(CharRead(c, conf, ()))
    return OcrResult(text=text, confidence=conf ** len(text), chars=tuple(chars), candidates=((text, conf),))


def obs(text: str, t: float, x: int = 100, conf: float = 0.9, camera: str = "front", **kw) -> PlateObservation:
    return PlateObservation(camera, int(t * 30), t, t, Detection(x, 200, 80, 20, 0.9), ocr(text, conf, **kw))


def test_vote_fixes_a_single_frame_misread() -> None:
    frames = [obs("B123ABC", 0.0), obs("B123A8C", 0.1, conf=0.6), obs("B123ABC", 0.2)]
    text, conf, chars, cands = vote(frames)
    assert text == "B123ABC"
    assert 0 < conf <= 1
    assert cands[0][0] == "B123ABC"
    assert "B123A8C" in [c for c, _ in cands]


def test_vote_prefers_the_majority_length() -> None:
    frames = [obs("CCLVN3", 0.0), obs("CCLV3", 0.1, conf=0.5), obs("CCLVN3", 0.2)]
    assert vote(frames)[0] == "CCLVN3"


def test_alternatives_become_candidates() -> None:
    frames = [obs("AB0123", 0.0, weak={2: ("O", 0.4)}), obs("AB0123", 0.1, weak={2: ("O", 0.4)})]
    _, _, chars, cands = vote(frames)
    assert chars[2].alternatives[0][0] == "O"
    assert "ABO123" in [c for c, _ in cands]


def test_one_read_per_pass_emitted_early_and_not_again() -> None:
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.3, max_gap_s=0.5))
    out = []
    for i in range(10):
        out += tr.update("front", [obs("MD123", i * 0.033, x=100 + i * 5)], now=i * 0.033)
    out += tr.flush(5.0)
    assert [r.text for r in out] == ["MD123"]
    assert out[0].frames == 2  # emitted as soon as two frames agreed
    assert tr.emitted == 1


def test_two_plates_in_one_frame_are_two_tracks() -> None:
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.3))
    out = []
    for i in range(3):
        t = i * 0.05
        out += tr.update("front", [obs("AAA111", t, x=100), obs("BBB222", t, x=900)], now=t)
    assert sorted(r.text for r in out) == ["AAA111", "BBB222"]


def test_cooldown_suppresses_a_parked_car_but_not_after_it_expires() -> None:
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.3, max_gap_s=0.5, cooldown_s=60))
    out = []
    for start in (0.0, 10.0, 100.0):  # three passes of the same plate
        for i in range(3):
            out += tr.update("front", [obs("PARK1", start + i * 0.1)], now=start + i * 0.1)
        out += tr.flush(start + 5)
    assert len(out) == 2
    assert tr.suppressed == 1


def test_low_confidence_track_is_emitted_when_it_ends() -> None:
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.99, max_gap_s=0.5))
    out = []
    for i in range(3):
        out += tr.update("front", [obs("XYZ789", i * 0.1, conf=0.7)], now=i * 0.1)
    assert out == []
    out += tr.flush(2.0)
    assert [r.text for r in out] == ["XYZ789"]
    assert out[0].frames == 3


def test_single_frame_glimpse_is_not_a_read() -> None:
    tr = PlateTracker(TrackerSettings(min_frames=2))
    tr.update("front", [obs("GHOST1", 0.0)], now=0.0)
    assert tr.flush(10.0) == []


def test_an_uncertain_track_on_the_watchlist_is_emitted_at_once() -> None:
    listed = {"XYZ789"}
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.99, max_gap_s=0.5),
                      urgent=lambda v: any(t in listed for t, _ in v.candidates))
    out = []
    for i in range(3):
        out += tr.update("front", [obs("XYZ789", i * 0.1, conf=0.7)], now=i * 0.1)
    assert [(r.text, r.frames) for r in out] == [("XYZ789", 2)]
    assert tr.flush(5.0) == []

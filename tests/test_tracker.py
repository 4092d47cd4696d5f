from picar.pipeline.tracker import PlateTracker, TrackerSettings, vote
from picar.types import Detection, OcrResult, PlateObservation
from tests.ctc_frames import read, spelled


def ocr(text: str, conf: float = 0.9, weak: dict[int, tuple[str, float]] | None = None,
        region: str | None = None, faint: dict[int, tuple[str, float]] | None = None) -> OcrResult:
    """What the decode reads from frames that spell `text` (each character at `conf`)."""
    got = read(spelled(text, conf, weak, faint), region)
    assert got.text == text
    return got


def obs(text: str, t: float, x: int = 100, conf: float = 0.9, camera: str = "front", **kw) -> PlateObservation:
    return PlateObservation(camera, int(t * 30), t, t, Detection(x, 200, 80, 20, 0.9), ocr(text, conf, **kw))


def test_vote_fixes_a_single_frame_misread() -> None:
    frames = [obs("B123ABC", 0.0, region="ro"), obs("B123A8C", 0.1, conf=0.8), obs("B123ABC", 0.2, region="ro")]
    voted = vote(frames)
    assert voted.text == "B123ABC" and voted.series == "ro.bucharest"
    assert 0 < voted.confidence <= 1
    assert voted.candidates[0][0] == "B123ABC"
    assert "B123A8C" in [c for c, _ in voted.candidates]


def test_vote_prefers_the_majority_length() -> None:
    frames = [obs("CCLVN3", 0.0), obs("CCLV3", 0.1, conf=0.8, faint={4: ("N", 0.3)}), obs("CCLVN3", 0.2)]
    assert vote(frames).text == "CCLVN3"


def test_the_vote_is_a_text_some_frame_read_whole() -> None:
    # per character, ABC1234 + ABC1234 + 1ABC234 would give 1BC1234, a text no frame read and no format has
    frames = [obs("ABC1234", 0.0, region="us"), obs("1ABC234", 0.1, region="us", faint={4: ("1", 0.3)}),
              obs("ABC1234", 0.2, region="us")]
    voted = vote(frames)
    assert voted.text == "ABC1234" and voted.series == "us.llldddd"
    assert "1BC1234" not in {r.text for r in voted.readings}
    tracker = PlateTracker(TrackerSettings(min_frames=3, emit_confidence=0.0))
    out = []
    for o in frames:
        out += tracker.update("front", [o], now=o.captured_at)
    assert [(r.text, r.series) for r in out] == [("ABC1234", "us.llldddd")]


def test_alternatives_become_candidates() -> None:
    frames = [obs("AB0123", 0.0, weak={2: ("O", 0.4)}), obs("AB0123", 0.1, weak={2: ("O", 0.4)})]
    voted = vote(frames)
    assert voted.chars[2].alternatives[0][0] == "O"
    assert "ABO123" in [c for c, _ in voted.candidates]


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


def test_a_long_track_votes_over_a_bounded_set_of_reads() -> None:
    # a car stopped behind the patrol car: read every frame for a minute, never confident enough to go early
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=1.1, max_gap_s=0.5, max_reads=10))
    texts = ["B123ABC", "B123A8C", "8123ABC"]
    for i in range(300):
        conf = 0.99 if i == 7 else 0.9
        tr.update("front", [obs(texts[i % 3] if i != 7 else "B123ABC", i / 30, conf=conf)], now=i / 30)
    track = tr._tracks["front"][0]
    assert len(track.observations) == 10 and len(track.scored) <= 10
    assert track.observations[-1].captured_at == 299 / 30  # the newest read is always kept
    assert max(o.ocr.confidence for o in track.observations) > 0.9 > 0.9 ** 7  # and the clearest one
    (read,) = tr.flush(20.0)
    assert read.frames == 300 and read.first_seen == 0.0 and read.last_seen == 299 / 30
    assert read.text == "B123ABC"


def test_a_reported_plate_is_not_read_again_its_boxes_keep_its_track_alive() -> None:
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.3, max_gap_s=0.5))
    out = tr.update("front", [obs("MD123", 0.0)], now=0.0)
    assert tr.settled("front", [obs("MD123", 0.033).detection], 0.033) == [None]  # not reported yet: read it
    out += tr.update("front", [obs("MD123", 0.033)], now=0.033)
    assert [r.text for r in out] == ["MD123"]
    unread = OcrResult("", 0.0, ())
    for i in range(2, 40):  # 1.3 s of frames, longer than max_gap_s: only the unread boxes keep the track
        t = i * 0.033
        moved = PlateObservation("front", i, t, t, Detection(100 + i, 200, 80, 20, 0.9), unread)
        far = Detection(900, 200, 80, 20, 0.9)  # another plate, never seen: always read
        follows = tr.settled("front", [moved.detection, far], t)
        assert follows[1] is None and follows[0] == tr._tracks["front"][0].track_id
        out += tr.update("front", [moved], now=t, follows=follows[:1])
    (track,) = tr._tracks["front"]
    assert track.frames == 40 and track.last.ocr.text == "MD123"  # the unread boxes carry the track's read
    assert tr.settled("front", [Detection(300, 200, 80, 20, 0.9)], 40 * 0.033) == [None]  # no overlap
    assert tr.settled("front", [moved.detection], 40 * 0.033 + 0.6) == [None]  # the track has ended
    out += tr.flush(10.0)
    assert [r.text for r in out] == ["MD123"] and tr.emitted == 1


def test_an_unread_box_whose_track_is_gone_is_let_go() -> None:
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.3, max_gap_s=0.5))
    for i in range(2):
        tr.update("front", [obs("MD123", i * 0.033)], now=i * 0.033)
    follows = tr.settled("front", [obs("MD123", 0.066).detection], 0.066)
    tr.close()
    out = tr.update("front", [obs("MD123", 0.1)], now=0.1, follows=follows)
    assert out == [] and tr.active_tracks() == 0  # not a new track with another track's read


def test_a_plate_that_gains_a_character_is_still_the_same_plate() -> None:
    # the early read misses the first character, a later frame reads it, the boxes no longer overlap
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.3, max_gap_s=0.5))
    out = []
    for i, (text, x) in enumerate([("KTR214", 100), ("KTR214", 104), ("7KTR214", 230), ("7KTR214", 234)]):
        out += tr.update("front", [obs(text, i * 0.033, x=x)], now=i * 0.033)
    out += tr.flush(5.0)
    assert [r.text for r in out] == ["KTR214"] and tr.emitted == 1


def test_a_track_that_votes_a_text_shorter_than_any_plate_is_settled_not_reported() -> None:
    # the demo drive's building facades (windows in rows) voted `II` and `HH` at 0.6-0.8 and reached HQ
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.3, max_gap_s=0.5))
    stripe = OcrResult(text="II", confidence=0.9, chars=(), candidates=(("II", 0.9),))
    box = Detection(100, 200, 80, 20, 0.9)
    out = []
    for i in range(3):
        t = i * 0.033
        out += tr.update("front", [PlateObservation("front", i, t, t, box, stripe), obs("MD123", t, x=900)], now=t)
    assert [r.text for r in out] == ["MD123"]
    assert tr.not_plates == 1
    # like a reported plate, its box is only tracked from now on, not read again
    assert tr.settled("front", [box], 0.1) != [None]
    assert tr.flush(5.0) == [] and tr.emitted == 1


def test_a_short_vote_whose_candidate_is_on_the_watchlist_is_still_reported() -> None:
    listed = {"KBA257"}
    tr = PlateTracker(TrackerSettings(min_frames=2, emit_confidence=0.99, max_gap_s=0.5),
                      urgent=lambda v: any(t in listed for t, _ in v.candidates))
    partial = OcrResult(text="KB", confidence=0.9, chars=(), candidates=(("KB", 0.9), ("KBA257", 0.2)))
    out = []
    for i in range(3):
        t = i * 0.033
        out += tr.update("front", [PlateObservation("front", i, t, t, Detection(100, 200, 80, 20, 0.9), partial)],
                         now=t)
    assert [r.text for r in out] == ["KB"] and "KBA257" in [t for t, _ in out[0].candidates]
    assert tr.not_plates == 0

import json

from picar.hq.monitor import FleetView


def test_fleet_view_tracks_state_positions_hits_and_dispositions() -> None:
    v = FleetView("picar/v1")
    v.feed("picar/v1/car1/status", json.dumps({"state": "online", "watchlist_version": 3,
                                                "hq": {"backlog": 0}}).encode(), now=100)
    v.feed("picar/v1/car2/status", json.dumps({"state": "offline", "watchlist_version": 2}).encode(), now=100)
    v.feed("picar/v1/car1/position", json.dumps({"lat": 47.0, "lon": 28.8}).encode(), now=101)
    for i in range(5):
        v.feed("picar/v1/car1/read", json.dumps({"event_id": f"r{i}"}).encode(), now=110 + i)
    hit = {"event_id": "h1", "plate": "ABC123", "read_text": "ABC123", "list": "stolen_vehicle",
           "match": {"text": "exact"}, "time": "t"}
    v.feed("picar/v1/car1/hit", json.dumps(hit).encode(), now=115)
    v.feed("picar/v1/car1/hit", json.dumps(hit).encode(), now=116)  # redelivered duplicate
    v.feed("picar/v1/car1/disposition", json.dumps({"hit_event_id": "h1", "decision": "reject",
                                                     "reason": "misread"}).encode(), now=120)
    v.feed("picar/v1/fleet/watchlist", b"{}", now=120)  # HQ's own topic is not a vehicle
    v.feed("picar/v1/car1/read", b"not json", now=121)  # ignored, not a crash
    snap = v.snapshot(now=130)
    assert set(snap) == {"car1", "car2"}
    assert snap["car1"]["state"] == "online" and snap["car2"]["state"] == "offline"
    assert snap["car1"]["watchlist_version"] == 3
    assert snap["car1"]["reads_per_min"] == 5
    assert snap["car1"]["position"] == {"lat": 47.0, "lon": 28.8}
    assert [(h["plate"], h["disposition"], h["reason"]) for h in snap["car1"]["hits"]] == [
        ("ABC123", "reject", "misread")]
    assert v.snapshot(now=300)["car1"]["reads_per_min"] == 0
    text = v.render(now=130)
    assert "car1" in text and "reject (misread)" in text


def test_hqs_own_messages_to_a_car_are_not_signs_of_the_car() -> None:
    v = FleetView("picar/v1")
    for kind in ("ack", "cmd", "watchlist"):
        v.feed(f"picar/v1/car9/{kind}", b'{"events": ["e1"]}', now=100.0)
    assert v.snapshot(now=101.0) == {}
    v.feed("picar/v1/car9/read", b'{"event_id": "e1"}', now=100.0)
    assert list(v.snapshot(now=101.0)) == ["car9"]

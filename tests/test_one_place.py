"""One place for each fact: the reject reasons, the link's limits, the way a time is written."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from picar.config import ConfigError, parse_config
from picar.isotime import event_iso, utc_iso
from picar.link import MAX_INFLIGHT
from picar.link.mqtt import HqLink
from picar.link.outbox import Outbox
from picar.types import REJECT_REASONS

ROOT = Path(__file__).resolve().parents[1]


def test_the_page_offers_exactly_the_reject_reasons_the_daemon_takes() -> None:
    page = (ROOT / "picar" / "station" / "static" / "index.html").read_text()
    assert tuple(re.findall(r'data-reason="([a-z_]+)"', page)) == REJECT_REASONS


def _mqtt_config(max_inflight: int) -> str:
    return (f'[vehicle]\nid = "car-1"\n[[cameras]]\nname = "front"\nsource = "rtsp://10.0.0.2/stream"\n'
            f"[mqtt]\ntls = false\nmax_inflight = {max_inflight}\n")


def test_check_config_refuses_what_the_link_refuses(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(tomllib.loads(_mqtt_config(MAX_INFLIGHT + 1)), base_dir=tmp_path)
    assert "mqtt.max_inflight" in str(err.value) and str(MAX_INFLIGHT) in str(err.value)
    cfg = parse_config(tomllib.loads(_mqtt_config(MAX_INFLIGHT)), base_dir=tmp_path)
    outbox = Outbox(tmp_path / "outbox.db")
    try:  # the largest value check-config accepts, the link takes too
        link = HqLink("car-1", "127.0.0.1", 1883, outbox, tls=False, max_inflight=cfg.mqtt.max_inflight)
        assert link.max_inflight == MAX_INFLIGHT
        with pytest.raises(ValueError, match="max_inflight"):
            HqLink("car-1", "127.0.0.1", 1883, outbox, tls=False, max_inflight=MAX_INFLIGHT + 1)
    finally:
        outbox.close()


def test_one_time_format_at_each_precision() -> None:
    ts = datetime(2026, 11, 23, 10, 0, 1, 250000, tzinfo=UTC).timestamp()
    assert event_iso(ts) == "2026-11-23T10:00:01.250Z"
    assert utc_iso(ts, "seconds") == "2026-11-23T10:00:01Z"
    chisinau = datetime(2026, 11, 23, 12, 0, 1, tzinfo=timezone(timedelta(hours=2)))
    assert utc_iso(chisinau) == "2026-11-23T10:00:01Z"

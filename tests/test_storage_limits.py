"""The car's disk limits: an absurd free-space floor is refused at start, the outbox gets its size cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from picar.app import Daemon
from picar.config import ConfigError, parse_config
from picar.pipeline.store import Store


def _cfg(tmp_path: Path, **storage: object) -> dict[str, object]:
    return {"vehicle": {"id": "car1"}, "cameras": [{"name": "f", "source": "0"}],
            "mqtt": {"enabled": False, "tls": False}, "storage": {"data_dir": str(tmp_path / "d"), **storage}}


def test_a_free_space_floor_beyond_any_disk_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg(tmp_path, min_free_mb=200_000_000), tmp_path)
    assert "storage.min_free_mb = 200000000" in str(err.value) and "at most 1048576" in str(err.value)
    assert parse_config(_cfg(tmp_path, min_free_mb=2**20), tmp_path).storage.min_free_mb == 2**20


def test_the_daemon_caps_its_outbox_at_outbox_max_mb(tmp_path: Path) -> None:
    cfg = parse_config(_cfg(tmp_path, outbox_max_mb=16), tmp_path)
    store = Store(cfg.storage.data_dir, min_free_mb=0)
    outbox = Daemon(cfg)._open_outbox(store)
    try:
        pages, size = (outbox._db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("max_page_count", "page_size"))
        assert pages * size == 16 * 2**20
    finally:
        outbox.close()
        store.close()

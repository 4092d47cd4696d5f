"""pytest fixtures around the simulator's real Mosquitto (hw_sim/broker.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hw_sim.broker import MOSQUITTO, Mosquitto, Received, Subscriber, TlsFiles, free_port, make_tls_files

__all__ = ["MOSQUITTO", "Mosquitto", "Received", "Subscriber", "TlsFiles", "free_port", "make_tls_files",
           "mosquitto", "mosquitto_persistent"]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A plain (no TLS) broker for one test with users car1, car2 and hq and the per-vehicle ACL:
    ``from tests.broker import mosquitto`` then take ``mosquitto``."""
    with Mosquitto(tmp_path) as broker:
        yield broker


@pytest.fixture
def mosquitto_persistent(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker whose retained messages and persistent sessions survive restart()."""
    with Mosquitto(tmp_path, persistence=True) as broker:
        yield broker

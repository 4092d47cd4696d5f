"""Secrets and data on the car are the picar user's: a readable secret is warned about, data files are 0640."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from picar.config import config_warnings, parse_config


def _config(tmp_path: Path, token: Path) -> dict[str, object]:
    return {"vehicle": {"id": "car1"}, "cameras": [{"name": "f", "source": "0"}],
            "mqtt": {"enabled": False, "tls": False}, "storage": {"data_dir": str(tmp_path / "d")},
            "ui": {"bind": "0.0.0.0", "token_file": str(token)}}


def test_a_token_file_others_can_read_is_warned_about(tmp_path: Path) -> None:
    token = tmp_path / "station.token"
    token.write_text("0123456789abcdef")
    token.chmod(0o644)
    warnings = config_warnings(parse_config(_config(tmp_path, token), tmp_path))
    assert any(w.startswith("ui.token_file:") and "mode 644" in w and "chmod 600" in w for w in warnings), warnings
    token.chmod(0o600)
    assert not any("token_file" in w for w in config_warnings(parse_config(_config(tmp_path, token), tmp_path)))


def test_the_daemon_writes_its_data_for_owner_and_group_only(tmp_path: Path) -> None:
    """`picar run` sets its own umask, so a start by hand (no systemd UMask) keeps data private too."""
    import signal
    import subprocess
    import sys

    from tests.waiting import wait_until

    cfg = tmp_path / "picar.toml"
    cfg.write_text(f'[vehicle]\nid = "car1"\n[[cameras]]\nname = "f"\nsource = "{tmp_path / "none.mp4"}"\n'
                   f'[mqtt]\nenabled = false\ntls = false\n[storage]\ndata_dir = "{tmp_path / "d"}"\n'
                   '[ui]\nenabled = false\n[gps]\nsource = "none"\n')
    (tmp_path / "none.mp4").write_bytes(b"")  # no frames: the daemon runs on, its data already open
    old = os.umask(0o022)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "picar.cli", "run", "--config", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        os.umask(old)
    try:
        assert wait_until(lambda: (tmp_path / "d" / "outbox.db").exists(), 60), "the daemon opened no data"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0  # a clean stop on SIGTERM
    files = [p for p in (tmp_path / "d").rglob("*") if p.is_file()]
    assert files, "the daemon wrote nothing to its data directory"
    loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in files if p.stat().st_mode & 0o007}
    assert loose == {}, loose

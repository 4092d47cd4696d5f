"""The release: `python -m build` makes a wheel and an sdist that carry the models, the page and the demo;
the wheel installs into a clean venv from the runtime lock and reads, checks configs and runs with no
checkout; the locks pin what ships; every font the renderer uses comes from a package bootstrap installs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from hw_sim.sim import SimOptions, Simulation, expected_hits
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
# Source folders that install under another name (pyproject.toml [tool.setuptools.package-dir]).
INSTALLED_AS = {"models": "picar/models", "config": "picar/examples"}


def _pins(lock: Path) -> dict[str, str]:
    """name -> version of every `name==version` line in a lock file (environment markers kept apart)."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^ ;\\]+)( ;[^\\]*)?", line)
        if m:
            pins[f"{m.group(1).lower()} {(m.group(3) or '').strip(' ;')}".strip()] = m.group(2)
    return pins


def test_locks_pin_every_dependency_with_hashes_and_the_car_gets_what_ci_tests() -> None:
    dev, runtime = _pins(REPO / "requirements" / "dev.lock"), _pins(REPO / "requirements" / "runtime.lock")
    names = {k.split(" ")[0] for k in dev}
    for dep in ("numpy", "opencv-python-headless", "onnxruntime", "pyserial", "pynmea2", "paho-mqtt",
                "cryptography", "pytest", "ruff", "mypy", "build", "setuptools"):
        assert dep in names, f"{dep} is not pinned in requirements/dev.lock"
    # A runtime (or HQ) pin under an environment marker (only some Pythons need it) is what CI tested when
    # the dev lock pins the same version, with no marker or another one (the dev lock's markers are the union
    # of why its packages need it, e.g. pycparser for argon2-cffi's cffi as well as cryptography's).
    def untested(pins: dict[str, str]) -> dict[str, tuple[str, set[str]]]:
        out = {}
        for key, version in pins.items():
            tested = {v for k, v in dev.items() if k.split(" ")[0] == key.split(" ")[0]}
            if version not in tested:
                out[key] = (version, tested)
        return out

    hq = _pins(REPO / "requirements" / "hq.lock")
    assert runtime and not untested(runtime), untested(runtime)
    assert hq and not untested(hq), untested(hq)
    assert "psycopg" in {k.split(" ")[0] for k in hq} and "psycopg" not in {k.split(" ")[0] for k in runtime}
    assert not {"pytest", "ruff", "mypy"} & {k.split(" ")[0] for k in runtime}, "dev tools in the vehicle's lock"
    for lock in ("dev.lock", "runtime.lock", "hq.lock"):
        blocks = re.split(r"\n(?=[A-Za-z0-9])", (REPO / "requirements" / lock).read_text())
        unhashed = [b.split()[0] for b in blocks if "==" in b.split("\n")[0] and "--hash=sha256:" not in b]
        assert not unhashed, f"{lock}: no hash for {unhashed}"


def test_every_font_the_renderer_uses_names_a_package_that_bootstrap_installs() -> None:
    from picar.train.plates import DECOR_FONTS, FONT_PACKAGES, PLATE_FONTS, PLATE_LIKE_FONTS

    listed = {line.split()[0] for line in (REPO / "scripts" / "system-packages.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert set(PLATE_FONTS + PLATE_LIKE_FONTS + DECOR_FONTS) == set(FONT_PACKAGES)
    assert set(FONT_PACKAGES.values()) <= listed, set(FONT_PACKAGES.values()) - listed


# --------------------------------------------------------------------------- the built package


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _shipped_sources() -> set[str]:
    """Every file the package must carry, as its path inside the wheel."""
    want = {str(p.relative_to(REPO)) for top in ("picar", "hw_sim") for p in (REPO / top).rglob("*.py")}
    want |= {str(p.relative_to(REPO)) for p in (REPO / "picar" / "station" / "static").iterdir()}
    want |= {str(p.relative_to(REPO)) for p in (REPO / "picar" / "i18n" / "static").iterdir()}
    want |= {str(p.relative_to(REPO)) for p in (REPO / "picar" / "i18n" / "locale").rglob("*") if p.is_file()}
    want |= {str(p.relative_to(REPO)) for p in (REPO / "hw_sim" / "demo").iterdir()}
    for src, dst in INSTALLED_AS.items():
        for p in (REPO / src).rglob("*"):
            if p.is_file() and p.suffix in (".onnx", ".json", ".md", ".csv", ".toml", ".py"):
                want.add(f"{dst}/{p.relative_to(REPO / src)}")
    return {w for w in want if "__pycache__" not in w}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wheel_and_sdist_carry_the_models_the_page_and_the_demo(dist: Path) -> None:
    (wheel,) = dist.glob("picar-*.whl")
    (sdist,) = dist.glob("picar-*.tar.gz")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = _shipped_sources() - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    for f in ("models/plate_ocr.onnx", "models/plate_ocr.json", "models/plate_detector.onnx", "models/README.md",
              "picar/station/static/index.html", "picar/i18n/locale/ro/LC_MESSAGES/picar.mo", "babel.cfg",
              "hw_sim/demo/drive.mp4", "config/picar.example.toml",
              "requirements/runtime.lock", "systemd/picar.service", "systemd/picar-hq-ingest@.service",
              "systemd/picar-hq-console.service", "LICENSE"):
        assert f in members, f"{f} is not in the sdist"


@pytest.fixture(scope="module")
def clean_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new venv with the runtime lock and the wheel: no dev tools, no checkout on its path."""
    venv = tmp_path_factory.mktemp("venv") / "picar"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps"]
    for args in (["--require-hashes", "-r", str(REPO / "requirements" / "runtime.lock")],
                 [str(next(dist.glob("picar-*.whl")))]):
        proc = subprocess.run([*pip, *args], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    check = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    yield venv


def _outside(venv: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `picar` from a folder outside the checkout, with nothing of the checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / "picar"), *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=300)


def _plate_scene(text: str) -> np.ndarray:
    """A rendered Romanian plate on a car-coloured block in a 1280x720 road frame."""
    from picar.train.plates import render_plate

    plate = render_plate(np.random.default_rng(11), "ro", text=text).image
    plate = cv2.resize(plate, (220, round(220 * plate.shape[0] / plate.shape[1])), interpolation=cv2.INTER_AREA)
    img = np.full((720, 1280, 3), 95, np.uint8)
    img[:360] = (200, 170, 140)
    cv2.rectangle(img, (420, 260), (860, 560), (40, 40, 160), -1)
    y, x = 470, 530
    img[y:y + plate.shape[0], x:x + plate.shape[1]] = plate
    return img


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_wheel_reads_checks_configs_and_runs_with_no_checkout(clean_venv: Path, tmp_path: Path) -> None:
    # The installed package holds its own models and page: nothing resolves into the checkout.
    where = subprocess.run([str(clean_venv / "bin" / "python"), "-c",
                            "import picar.paths as p, picar.station.server as s, picar.i18n.catalogue as c; "
                            "print(p.DEFAULT_OCR, p.DEFAULT_DETECTOR, p.DEMO_DIR, s.STATIC_DIR, "
                            "c.po_path('ro').with_suffix('.mo'), sep='\\n'); "
                            "import picar.i18n as i; assert i.translator('ro')._('NO LIST') == 'FĂRĂ LISTĂ'"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).exists() and str(clean_venv) in line and str(REPO) not in line, line

    scene = tmp_path / "plate.jpg"
    cv2.imwrite(str(scene), _plate_scene("CJ07XYZ"))
    proc = _outside(clean_venv, tmp_path, "read", "--json", "--region", "eu", str(scene))
    assert proc.returncode == 0, proc.stderr
    (line,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [p["text"] for p in line["plates"]] == ["CJ07XYZ"], line

    example = _outside(clean_venv, tmp_path, "check-config", "--example")
    assert example.returncode == 0 and "[vehicle]" in example.stdout, example.stderr
    (tmp_path / "picar.toml").write_text(example.stdout)
    checked = _outside(clean_venv, tmp_path, "check-config", "picar.toml")
    assert checked.returncode == 0 and checked.stdout.startswith("OK:"), checked.stdout + checked.stderr
    (tmp_path / "bad.toml").write_text(example.stdout.replace("[vehicle]", "[vehicle]\nbogus = 1", 1))
    bad = _outside(clean_venv, tmp_path, "check-config", "bad.toml")
    assert bad.returncode == 2 and "vehicle.bogus" in bad.stderr, bad.stderr

    # `picar run` from the wheel: the demo drive's hits reach HQ through a real broker.
    sim = Simulation(tmp_path / "sim", SimOptions(realtime=False, use_mjpeg=False, ui=False,
                                                  daemon_command=(str(clean_venv / "bin" / "picar"),)))
    sim.start_world()
    try:
        hq = sim.subscriber(["picar/v1/+/hit"])
        sim.publish_watchlist()
        daemon = sim.start_daemon(("--exit-when-done",))
        assert daemon.wait(300) == 0, sim.daemon_log()[-4000:]
        assert "ready in" in sim.daemon_log()
        want = set(expected_hits())
        assert wait_until(lambda: {m.json()["plate"] for m in hq.messages} >= want, 30), \
            ({m.json()["plate"] for m in hq.messages}, want)
        hq.stop()
    finally:
        sim.stop()

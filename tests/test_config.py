"""picar.config: the schema, its error messages, path handling and `picar check-config`."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from picar import paths
from picar.config import (
    SECTIONS,
    Config,
    ConfigError,
    check_config_main,
    config_warnings,
    load_config,
    parse_config,
    read_credentials,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "picar.example.toml"
DEMO = REPO / "config" / "picar.demo.toml"

MINIMAL: dict[str, Any] = {
    "vehicle": {"id": "car-1"},
    "cameras": [{"name": "front", "source": "rtsp://10.0.0.2/stream"}],
}
MINIMAL_TOML = '[vehicle]\nid = "car-1"\n\n[[cameras]]\nname = "front"\nsource = "rtsp://10.0.0.2/stream"\n'


def with_keys(section: str, **keys: Any) -> dict[str, Any]:
    """MINIMAL with keys set in one section (for "cameras": in the first camera)."""
    data = copy.deepcopy(MINIMAL)
    target = data["cameras"][0] if section == "cameras" else data.setdefault(section, {})
    target.update(keys)
    return data


def problems_of(data: dict[str, Any], base_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, base_dir)
    return info.value.problems


def the_problem(problems: list[str], key_path: str) -> str:
    """The one problem about `key_path` (messages start with the key path)."""
    found = [p for p in problems if p.startswith(key_path + " ") or p.startswith(key_path + ":")]
    assert len(found) == 1, f"expected one problem about {key_path}, got {problems}"
    return found[0]


# --- shipped files ---------------------------------------------------------------------------------


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.vehicle.id == "unit-0000"
    assert config.source_path == EXAMPLE
    assert [c.name for c in config.cameras] == ["front"]


def test_demo_config_loads() -> None:
    config = load_config(DEMO)
    assert config.cameras[0].source_kind == "url"
    assert config.mqtt.tls is False and config.mqtt.port == 1883


def _section_blocks(text: str) -> dict[str, str]:
    """Section name -> its text; [[cameras]] blocks are joined under "cameras"."""
    blocks: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[\[?([a-z0-9_]+)\]\]?\s*", line)
        if header:
            current = header.group(1)
            blocks.setdefault(current, "")
        elif current:
            blocks[current] += line + "\n"
    return blocks


def test_example_lists_every_key_of_the_schema() -> None:
    blocks = _section_blocks(EXAMPLE.read_text())
    assert set(blocks) == set(SECTIONS), "the example must have a block for every section"
    missing = []
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            # Set, or shown commented out ("# key = ...") for keys unset by default.
            if not re.search(rf"^(# )?{f.name} = ", blocks[name], re.MULTILINE):
                missing.append(f"{name}.{f.name}")
    assert not missing, f"keys missing from {EXAMPLE.name}: {missing}"


def test_config_sections_match_the_section_table() -> None:
    config_fields = [f.name for f in dataclasses.fields(Config) if f.name != "source_path"]
    assert config_fields == list(SECTIONS)


# --- defaults and derived values --------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    config = parse_config(MINIMAL, tmp_path)
    cam = config.cameras[0]
    assert (cam.position, cam.enabled, cam.realtime, cam.loop, cam.fps, cam.width, cam.region) == (
        "front", True, True, False, 0.0, 0, ("auto",),
    )
    assert (config.gps.source, config.gps.device, config.gps.baud) == ("serial", "/dev/ttyACM0", 9600)
    assert config.models.detector == paths.DEFAULT_DETECTOR
    assert config.models.ocr == paths.DEFAULT_OCR
    assert config.models.detector_threshold is None
    assert config.mqtt.tls is True and config.mqtt.port == 8883
    assert config.mqtt.client_id == "picar-car-1"
    assert config.storage.data_dir == Path("/var/lib/picar")
    assert config.watchlist.dir == Path("/var/lib/picar/watchlist")
    assert config.watchlist.confusables == ("0ODQ", "1I", "2Z", "5S", "8B", "6G")
    assert config.logging.audit_file == Path("/var/lib/picar/audit.log")
    assert config.retention.hits_days >= config.retention.reads_days
    assert config.k9.dogs == () and config.k9.enabled is False
    assert config.source_path is None


def test_derived_defaults_follow_the_keys_they_depend_on(tmp_path: Path) -> None:
    data = with_keys("mqtt", tls=False)
    data["storage"] = {"data_dir": "/srv/picar"}
    config = parse_config(data, tmp_path)
    assert config.mqtt.port == 1883
    assert config.watchlist.dir == Path("/srv/picar/watchlist")
    assert config.logging.audit_file == Path("/srv/picar/audit.log")


def test_explicit_values_override_derived_defaults(tmp_path: Path) -> None:
    data = with_keys("mqtt", tls=False, port=8884, client_id="custom")
    config = parse_config(data, tmp_path)
    assert (config.mqtt.port, config.mqtt.client_id) == (8884, "custom")


def test_config_is_frozen(tmp_path: Path) -> None:
    config = parse_config(MINIMAL, tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mqtt.port = 1  # type: ignore[misc]
    assert isinstance(config.cameras, tuple)


def test_integer_accepted_where_a_number_is_expected(tmp_path: Path) -> None:
    config = parse_config(with_keys("tracker", max_gap_s=2), tmp_path)
    assert config.tracker.max_gap_s == 2.0 and isinstance(config.tracker.max_gap_s, float)


# --- paths --------------------------------------------------------------------------------------------


def test_relative_paths_are_taken_from_the_config_file_folder(tmp_path: Path, monkeypatch: Any) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    (conf_dir / "keys").mkdir()
    (conf_dir / "keys" / "hq.pub").write_text("key\n")
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "drive.mp4").write_bytes(b"\0")
    text = MINIMAL_TOML.replace('"rtsp://10.0.0.2/stream"', '"../clips/drive.mp4"') + (
        '\n[storage]\ndata_dir = "data"\n\n[watchlist]\npublic_key = "keys/hq.pub"\n'
    )
    (conf_dir / "picar.toml").write_text(text)
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    config = load_config(conf_dir / "picar.toml")
    assert config.storage.data_dir == conf_dir / "data"
    assert config.watchlist.dir == conf_dir / "data" / "watchlist"
    assert config.watchlist.public_key == conf_dir / "keys" / "hq.pub"
    assert config.cameras[0].source == str(tmp_path / "clips" / "drive.mp4")
    assert config.cameras[0].source_kind == "file"


def test_home_is_expanded(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = parse_config(with_keys("storage", data_dir="~/picar-data"), Path("/elsewhere"))
    assert config.storage.data_dir == tmp_path / "picar-data"


@pytest.mark.parametrize(
    ("source", "stored", "kind"),
    [
        (0, "0", "index"),
        ("2", "2", "index"),
        ("/dev/video1", "/dev/video1", "device"),
        ("rtsps://cam.local:322/main", "rtsps://cam.local:322/main", "url"),
        ("http://127.0.0.1:8554/front.mjpg", "http://127.0.0.1:8554/front.mjpg", "url"),
    ],
)
def test_camera_source_forms(tmp_path: Path, source: Any, stored: str, kind: str) -> None:
    config = parse_config(with_keys("cameras", source=source), tmp_path)
    assert config.cameras[0].source == stored
    assert config.cameras[0].source_kind == kind


def test_camera_source_image_folder(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    config = parse_config(with_keys("cameras", source="frames"), tmp_path)
    assert config.cameras[0].source == str(tmp_path / "frames")
    assert config.cameras[0].source_kind == "folder"


# --- bad values: each message names the key path, the value and what is allowed ---------------------

BAD_CASES = [
    # (section, key, value, fragments the message must contain besides the key path)
    ("vehicle", "id", "car 1", ['"car 1"', "letters, digits"]),
    ("vehicle", "id", "x" * 65, ["1-64"]),
    ("vehicle", "id", 12, ["12", "a string"]),
    ("cameras", "name", "Front", ['"Front"', "lower-case"]),
    ("cameras", "source", "udp://10.0.0.2:5000", ['"udp://10.0.0.2:5000"', "rtsp://", "scheme"]),
    ("cameras", "source", "missing.mp4", ['"missing.mp4"', "no such file", "video file"]),
    ("cameras", "source", -1, ["-1", ">= 0"]),
    ("cameras", "source", "http://", ['"http://"', "no host"]),
    ("cameras", "position", "top", ['"top"', '"front", "rear", "left", "right"']),
    ("cameras", "enabled", "yes", ['"yes"', "true or false"]),
    ("cameras", "fps", -5, ["-5", "from 0 to 240"]),
    ("cameras", "width", 640.0, ["640.0", "an integer"]),
    ("cameras", "reconnect_initial_s", 0, ["0", "> 0"]),
    ("cameras", "region", "mars", ['"mars"', '"auto", "us", "eu", "br", "ar", "de", "md", "pl", "ro", "tr", "ua"',
                                   '"transnistria"', 'not a region: "mars"']),
    ("cameras", "region", ["md", "xx"], ['["md", "xx"]', 'not a region: "xx"']),
    ("models", "region", [], ["[]", "a non-empty list"]),
    ("gps", "source", "usb", ['"usb"', '"serial", "gpsd", "none"']),
    ("gps", "baud", 14400, ["14400", "4800, 9600, 19200, 38400, 57600, 115200"]),
    ("gps", "gpsd_port", 0, ["0", "from 1 to 65535"]),
    ("gps", "max_fix_age_s", float("nan"), ["nan", "finite"]),
    ("gps", "gpsd_host", "gpsd://host", ['"gpsd://host"', "host name or IP"]),
    ("models", "threads", 9, ["9", "from 1 to 8"]),
    ("models", "threads", True, ["true", "an integer"]),
    ("models", "detector_threshold", 1.5, ["1.5", "from 0 to 1"]),
    ("models", "min_read_confidence", "high", ['"high"', "a number"]),
    ("models", "detector", "nets/det.onnx", ['"nets/det.onnx"', "file not found", "existing file"]),
    ("tracker", "iou", 0.0, ["0.0", "> 0"]),
    ("tracker", "min_frames", 0, ["0", "from 1 to 100"]),
    ("watchlist", "max_substitutions", 4, ["4", "from 0 to 3"]),
    ("watchlist", "max_edit_distance", 2, ["2", "from 0 to 1"]),
    ("watchlist", "confusables", ["0O", "1"], ['["0O", "1"]', 'bad group: "1"']),
    ("watchlist", "confusables", "0ODQ", ['"0ODQ"', "a list"]),
    ("watchlist", "public_key", "hq.pub", ['"hq.pub"', "file not found"]),
    ("watchlist", "public_key", "", ['""', "leave the key out"]),
    ("mqtt", "port", 70000, ["70000", "from 1 to 65535"]),
    ("mqtt", "host", "mqtts://hq.example", ['"mqtts://hq.example"', "no scheme"]),
    ("mqtt", "keepalive_s", 2, ["2", "from 5 to 600"]),
    ("mqtt", "topic_prefix", "picar/+/x", ['"picar/+/x"', "without wildcards"]),
    ("mqtt", "topic_prefix", "/picar", ['"/picar"', "leading/trailing"]),
    ("mqtt", "credentials_file", "creds", ['"creds"', "file not found"]),
    ("mqtt", "client_id", "has space", ['"has space"', "printable characters without spaces"]),
    ("storage", "min_free_mb", -1, ["-1", ">= 0"]),
    ("retention", "reads_days", 0, ["0", "> 0"]),
    ("ui", "bind", "everywhere", ['"everywhere"', "IP address"]),
    ("ui", "port", 0, ["0", "from 1 to 65535"]),
    ("k9", "heat_baud", 300, ["300", "9600"]),
    ("k9", "dogs", ["Rex", "Rex"], ['["Rex", "Rex"]', "without repeats"]),
    ("k9", "handlers", ["ok", 3], ['["ok", 3]', "list of non-empty strings"]),
    ("logging", "level", "verbose", ['"verbose"', '"debug", "info", "warning", "error"']),
]


@pytest.mark.parametrize(("section", "key", "value", "fragments"), BAD_CASES, ids=lambda x: str(x)[:30])
def test_bad_value_message(tmp_path: Path, section: str, key: str, value: Any, fragments: list[str]) -> None:
    key_path = f"cameras[0].{key}" if section == "cameras" else f"{section}.{key}"
    problem = the_problem(problems_of(with_keys(section, **{key: value}), tmp_path), key_path)
    for fragment in fragments:
        assert fragment in problem, f"{fragment!r} not in {problem!r}"
    assert "allowed" in problem


def test_all_problems_are_collected(tmp_path: Path) -> None:
    data = with_keys("mqtt", port=0, keepalive_s=1)
    data["gps"] = {"baud": 1}
    data["vehicle"] = {"id": ""}
    data["cameras"].append({"name": "rear"})
    problems = problems_of(data, tmp_path)
    for key_path in ("mqtt.port", "mqtt.keepalive_s", "gps.baud", "vehicle.id", "cameras[1].source"):
        the_problem(problems, key_path)
    assert len(problems) == 5


def test_error_str_lists_one_problem_per_line(tmp_path: Path) -> None:
    data = with_keys("mqtt", port=0, keepalive_s=1)
    with pytest.raises(ConfigError) as info:
        parse_config(data, tmp_path)
    assert str(info.value).splitlines() == info.value.problems


# --- unknown and missing keys -------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    data = copy.deepcopy(MINIMAL)
    data["mqqt"] = {"host": "hq"}
    problem = the_problem(problems_of(data, tmp_path), "mqqt")
    assert "unknown key" in problem and "did you mean 'mqtt'" in problem
    assert "vehicle, cameras, gps" in problem


def test_unknown_nested_key(tmp_path: Path) -> None:
    problem = the_problem(problems_of(with_keys("mqtt", hots="hq"), tmp_path), "mqtt.hots")
    assert "did you mean 'host'" in problem and "allowed keys: enabled, host, port" in problem


def test_unknown_key_in_second_camera(tmp_path: Path) -> None:
    data = copy.deepcopy(MINIMAL)
    data["cameras"].append({"name": "rear", "source": 1, "framerate": 10})
    problem = the_problem(problems_of(data, tmp_path), "cameras[1].framerate")
    assert "unknown key" in problem and "fps" in problem


def test_missing_required_keys(tmp_path: Path) -> None:
    problems = problems_of({"cameras": [{"source": 0}]}, tmp_path)
    assert "vehicle: required table is missing" in the_problem(problems, "vehicle")
    assert "required key is missing" in the_problem(problems, "cameras[0].name")
    problems = problems_of({"vehicle": {"description": "x"}, "cameras": [{"name": "a"}]}, tmp_path)
    assert "letters, digits" in the_problem(problems, "vehicle.id")
    assert "rtsp://" in the_problem(problems, "cameras[0].source")


@pytest.mark.parametrize(
    ("cameras", "fragment"),
    [(None, "required key is missing"), ([], "one or more [[cameras]]"), ({"name": "a"}, "write each camera")],
)
def test_cameras_must_be_a_non_empty_array_of_tables(tmp_path: Path, cameras: Any, fragment: str) -> None:
    data: dict[str, Any] = {"vehicle": {"id": "car-1"}}
    if cameras is not None:
        data["cameras"] = cameras
    assert fragment in the_problem(problems_of(data, tmp_path), "cameras")


def test_section_must_be_a_table(tmp_path: Path) -> None:
    data = copy.deepcopy(MINIMAL)
    data["gps"] = "serial"
    assert "expected a table" in the_problem(problems_of(data, tmp_path), "gps")


def test_camera_entry_must_be_a_table(tmp_path: Path) -> None:
    data = copy.deepcopy(MINIMAL)
    data["cameras"].append("rear")
    assert '([[cameras]]), got "rear"' in the_problem(problems_of(data, tmp_path), "cameras[1]")


def test_duplicate_camera_names(tmp_path: Path) -> None:
    data = copy.deepcopy(MINIMAL)
    data["cameras"].append({"name": "front", "source": 1})
    problem = the_problem(problems_of(data, tmp_path), "cameras[1].name")
    assert '"front"' in problem and "already used by cameras[0]" in problem


# --- cross-key rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "keys", "key_path", "fragment"),
    [
        ("cameras", {"reconnect_initial_s": 10, "reconnect_max_s": 5}, "cameras[0].reconnect_max_s",
         ">= cameras[0].reconnect_initial_s (10.0)"),
        ("gps", {"reopen_initial_s": 40.0}, "gps.reopen_max_s", ">= gps.reopen_initial_s (40.0)"),
        ("retention", {"reads_days": 30, "hits_days": 10}, "retention.hits_days", ">= retention.reads_days"),
        ("k9", {"heat_warn_c": 32.0}, "k9.heat_alarm_c", "> k9.heat_warn_c (32.0)"),
        ("ui", {"bind": "0.0.0.0"}, "ui.token_file", 'bind = "0.0.0.0" is not loopback'),
    ],
)
def test_cross_key_rules(tmp_path: Path, section: str, keys: dict[str, Any], key_path: str, fragment: str) -> None:
    problem = the_problem(problems_of(with_keys(section, **keys), tmp_path), key_path)
    assert fragment in problem and "allowed" in problem


def test_ui_on_all_interfaces_with_token_file(tmp_path: Path) -> None:
    (tmp_path / "ui.token").write_text("secret\n")
    config = parse_config(with_keys("ui", bind="0.0.0.0", token_file="ui.token"), tmp_path)
    assert config.ui.token_file == tmp_path / "ui.token"
    assert parse_config(with_keys("ui", bind="::1"), tmp_path).ui.bind == "::1"


def test_tls_files_must_exist_only_when_tls_is_on(tmp_path: Path) -> None:
    problems = problems_of(with_keys("mqtt", tls=True, ca_file="ca.pem"), tmp_path)
    problem = the_problem(problems, "mqtt.ca_file")
    assert str(tmp_path / "ca.pem") in problem and "tls = true" in problem
    config = parse_config(with_keys("mqtt", tls=False, ca_file="ca.pem"), tmp_path)
    assert config.mqtt.ca_file == tmp_path / "ca.pem"


def test_client_certificate_needs_its_key(tmp_path: Path) -> None:
    (tmp_path / "car.crt").write_text("cert")
    problem = the_problem(problems_of(with_keys("mqtt", cert_file="car.crt"), tmp_path), "mqtt.key_file")
    assert "mqtt.cert_file is set" in problem and "both" in problem
    (tmp_path / "car.key").write_text("key")
    config = parse_config(with_keys("mqtt", cert_file="car.crt", key_file="car.key"), tmp_path)
    assert config.mqtt.key_file == tmp_path / "car.key"


# --- credentials file -----------------------------------------------------------------------------------


def test_read_credentials(tmp_path: Path) -> None:
    path = tmp_path / "mqtt.credentials"
    path.write_text("# HQ broker\nusername = car-1\n\npassword=s3cr=t \n")
    assert read_credentials(path) == ("car-1", "s3cr=t")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("username=a\n", ["missing line password"]),
        ("username=a\npassword=b\nuser=c\n", [":3:", "unknown key 'user'", "username, password"]),
        ("username=a\njust text\npassword=b\n", [":2:", "expected key=value"]),
        ("username=a\npassword=b\nusername=c\n", [":3:", "username given again (first on line 1)"]),
        ("username=\npassword=b\n", [":1:", "username is empty"]),
    ],
)
def test_bad_credentials_file(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "creds"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_credentials(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_bad_credentials_file_is_a_config_problem(tmp_path: Path) -> None:
    (tmp_path / "creds").write_text("username=a\npasswd=b\n")
    problems = problems_of(with_keys("mqtt", credentials_file="creds"), tmp_path)
    assert any(p.startswith("mqtt.credentials_file: ") and ":2: unknown key 'passwd'" in p for p in problems)


# --- files ----------------------------------------------------------------------------------------------


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "picar.toml"
    path.write_text('[vehicle]\nid = "car-1"\n\n[mqtt]\nport = 18 83\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert str(path) in problem and "TOML syntax error" in problem and "line 5" in problem
    assert "column" in problem


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "config file not found" in str(info.value)


def test_load_config_problems_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "picar.toml"
    path.write_text(MINIMAL_TOML + "\n[mqtt]\nport = 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [f"{path}: mqtt.port = 0: out of range; allowed: an integer from 1 to 65535"]


# --- warnings and check-config -----------------------------------------------------------------------------


def test_warnings(tmp_path: Path) -> None:
    data = with_keys("mqtt", tls=False)
    data["cameras"][0]["enabled"] = False
    data["watchlist"] = {"require_signature": True}
    warnings = "\n".join(config_warnings(parse_config(data, tmp_path)))
    assert "every camera has enabled = false" in warnings
    assert "mqtt.tls = false" in warnings
    assert "every watchlist will be rejected" in warnings


def test_readable_credentials_file_is_warned_about(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.write_text("username=car-1\npassword=b\n")
    creds.chmod(0o600)
    config = parse_config(with_keys("mqtt", credentials_file="creds"), tmp_path)
    assert not any("credentials_file" in w for w in config_warnings(config))
    creds.chmod(0o644)
    assert any("chmod 600" in w for w in config_warnings(config))


def test_a_username_other_than_the_vehicle_id_is_warned_about(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.write_text("username=car-2\npassword=b\n")
    creds.chmod(0o600)
    config = parse_config(with_keys("mqtt", credentials_file="creds"), tmp_path)
    assert config.vehicle.id == "car-1"
    assert any("username 'car-2' is not vehicle.id 'car-1'" in w for w in config_warnings(config))


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "picar.toml"
    path.write_text(MINIMAL_TOML + '\n[storage]\ndata_dir = "/srv/picar"\n\n[gps]\nsource = "gpsd"\n')
    assert check_config_main([str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ")
    for fragment in ("car-1", "front=rtsp://10.0.0.2/stream", "gpsd 127.0.0.1:2947", "127.0.0.1:8883", "/srv/picar"):
        assert fragment in out


def test_check_config_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "picar.toml"
    path.write_text(MINIMAL_TOML + '\n[mqtt]\nport = 0\nhots = "x"\n')
    assert check_config_main([str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "2 problems" in captured.err
    assert "mqtt.port = 0" in captured.err and "mqtt.hots: unknown key" in captured.err


def test_check_config_on_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_config_main([str(EXAMPLE)]) == 0
    assert "OK: vehicle unit-0000" in capsys.readouterr().out


def test_config_regions_are_the_plate_format_regions() -> None:
    from typing import get_args

    from picar.config import RegionName
    from picar.vision.grammar import REGIONS

    assert sorted(get_args(RegionName)) == sorted(REGIONS)

"""`picar check-config --schema`, and the shipped example against that schema: every key, with its default."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from picar.cli import main
from picar.config import SECTIONS

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "picar.example.toml"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """What `picar check-config --schema` prints, parsed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["check-config", "--schema"]) == 0
    return json.loads(out.getvalue())


def _tables(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Section name -> its table's schema ($ref followed; for cameras, the schema of one camera)."""
    tables = {}
    for name, prop in schema["properties"].items():
        ref = prop["items"]["$ref"] if prop.get("type") == "array" else prop["$ref"]
        tables[name] = schema["$defs"][ref.removeprefix("#/$defs/")]
    return tables


def test_schema_is_a_json_schema_of_every_section_and_key(schema: dict[str, Any]) -> None:
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert list(schema["properties"]) == list(SECTIONS)
    assert schema["required"] == ["vehicle", "cameras"]
    assert schema["properties"]["cameras"]["type"] == "array"
    for name, table in _tables(schema).items():
        assert table["type"] == "object"
        assert table["additionalProperties"] is False, f"{name}: unknown keys must be refused"
        assert list(table["properties"]) == [f.name for f in dataclasses.fields(SECTIONS[name])]


def test_schema_carries_bounds_choices_and_derived_defaults(schema: dict[str, Any]) -> None:
    tables = _tables(schema)
    port = tables["mqtt"]["properties"]["port"]
    assert (port["minimum"], port["maximum"]) == (1, 65535)
    assert "default" not in port and "tls" in port["description"]  # derived, not a fixed default
    assert tables["gps"]["properties"]["baud"]["enum"] == [4800, 9600, 19200, 38400, 57600, 115200]
    assert tables["tracker"]["properties"]["iou"]["exclusiveMinimum"] == 0
    assert tables["vehicle"]["properties"]["id"]["pattern"]


def _example_keys(example: Path) -> dict[str, dict[str, tuple[bool, Any]]]:
    """Section -> key -> (set, value) for every key the example names: set ones as TOML reads them, and
    those shown commented out (`# key = value`, the example's way to name an optional key) with their value.
    A comment counts only if what follows "# " is itself a TOML key = value line: prose such as
    "# false = keep the block ..." does not."""
    text = example.read_text()
    data = tomllib.loads(text)
    keys: dict[str, dict[str, tuple[bool, Any]]] = {}
    section = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[\[?([a-z0-9_]+)\]\]?\s*", line)
        if header:
            section = header.group(1)
            table = data[section][0] if isinstance(data[section], list) else data[section]
            keys[section] = {k: (True, v) for k, v in table.items()}
        elif section and re.match(r"# [a-z0-9_]+ = ", line):
            try:
                ((key, value),) = tomllib.loads(line.removeprefix("# ")).items()
            except tomllib.TOMLDecodeError:
                continue
            keys[section].setdefault(key, (False, value))
    return keys


def _example_problems(schema: dict[str, Any], example_path: Path) -> list[str]:
    """Each key of the schema is in the example; one that is set there is set to its default. A key may be
    shown only commented out when it has no fixed default: unset (null), derived from other keys, or a path
    that depends on where PiCAR is installed (the models)."""
    example = _example_keys(example_path)
    problems = []
    for section, table in _tables(schema).items():
        for key, prop in table["properties"].items():
            where = f"{section}.{key}"
            if key not in example.get(section, {}):
                problems.append(f"{where}: not in the example")
                continue
            is_set, value = example[section][key]
            if "default" not in prop:
                continue  # required (vehicle.id, cameras' name and source) or derived (mqtt.port): any value shows it
            if is_set and value != prop["default"]:
                problems.append(f"{where} = {value!r} in the example, but the default is {prop['default']!r}")
            if not is_set and prop["default"] is not None and prop.get("format") != "path":
                problems.append(f"{where}: only commented out, but it has a default: {prop['default']!r}")
    return problems


def test_example_names_every_key_of_the_schema_with_its_default(schema: dict[str, Any]) -> None:
    problems = _example_problems(schema, EXAMPLE)
    assert not problems, "\n".join(problems)


def test_the_example_rule_can_fail(tmp_path: Path, schema: dict[str, Any]) -> None:
    """A wrong default, a missing key and a commented-out key with a default are each caught."""
    text = EXAMPLE.read_text()
    broken = (text.replace("keepalive_s = 30", "keepalive_s = 31")
                  .replace("max_tracks = 64\n", "")
                  .replace('\nlevel = "info"', '\n# level = "info"'))
    assert broken.count("\n") == text.count("\n") - 1
    (tmp_path / "picar.example.toml").write_text(broken)
    problems = "\n".join(_example_problems(schema, tmp_path / "picar.example.toml"))
    for fragment in ("mqtt.keepalive_s = 31", "tracker.max_tracks: not in the example",
                     "logging.level: only commented"):
        assert fragment in problems

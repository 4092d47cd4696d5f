"""One watchlist language: the importer, the signer (`picar hq watchlist sign`) and the car accept and
refuse exactly the same entries and lists, with errors naming file, line and field (issue 20, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from picar.hq.cli import hq_main
from picar.watchlist import entries as language
from picar.watchlist import update
from picar.watchlist.cli import watchlist_main
from picar.watchlist.index import Watchlist
from picar.watchlist.io import WatchlistImportError, read_csv, read_file, read_ncic
from picar.watchlist.sync import WatchlistStore
from picar.watchlist.update import UpdateError, delta_payload, parse_update, snapshot_payload


def ncic_line(code: str, plate: str, state: str = "", desc: str = "") -> str:
    return f"{code:<4}{plate:<10}{state:<2}{'':<2}{'':<8}{'':<20}{'':<1}{desc}"


@pytest.fixture()
def hq(tmp_path: Path) -> Path:
    assert hq_main(["keygen", "--out", str(tmp_path / "hq")]) == 0
    return tmp_path


def sign_rc(hq: Path, payload: bytes) -> int:
    path = hq / "payload.json"
    path.write_bytes(payload)
    return hq_main(["watchlist", "sign", str(path), "--key", str(hq / "hq.key"), "--out", str(hq / "signed")])


def car_applies(hq: Path, payload: bytes) -> tuple[bool, str]:
    store = WatchlistStore(hq / "car", None, require_signature=False)
    store.load()
    r = store.apply_update(payload, "test")
    return r.accepted, r.reason


# --- parse_record kept only two fields ---------------------------------------------------------------


def test_an_entry_with_two_fields_keeps_its_reason_or_description() -> None:
    wl = Watchlist.from_records([{"plate": "ABC123", "reason": "stolen 2026-05-02"},
                                 {"plate": "XYZ987", "description": "red van"}])
    assert [(e.plate, e.reason, e.description) for e in wl.entries()] == [
        ("ABC123", "stolen 2026-05-02", ""), ("XYZ987", "", "red van")]
    assert list(wl.records()) == [{"plate": "ABC123", "list": "stolen_vehicle", "reason": "stolen 2026-05-02"},
                                  {"plate": "XYZ987", "list": "stolen_vehicle", "description": "red van"}]


# --- import without a list column ---------------------------------------------------------------------


def test_cli_import_without_a_list_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plates.csv").write_text("plate\nABC123\nXYZ987\n")
    out = tmp_path / "snap.json"
    assert watchlist_main(["import", str(tmp_path / "plates.csv"), "--out", str(out), "--version", "3"]) == 0
    assert "2 entries (stolen_vehicle 2)" in capsys.readouterr().out
    assert [e["plate"] for e in json.loads(out.read_bytes())["entries"]] == ["ABC123", "XYZ987"]


# --- wildcard shapes: one rule for import, sign and the car ------------------------------------------


@pytest.mark.parametrize(("plate", "message"), [
    ("*****", "at least 3 literal"),
    ("A?*", "at least 3 literal"),
    ("A*B*C*D", r"at most 2 '\*'"),
])
def test_a_wildcard_the_car_refuses_is_refused_at_import_and_sign(
        hq: Path, plate: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(WatchlistImportError, match=rf"list.csv line 3, field 'plate': .*{message}"):
        read_csv(hq / "list.csv", f"plate\nOK1234\n{plate}\n")
    with pytest.raises(WatchlistImportError, match=rf"x.txt line 1, field 'plate': .*{message}"):
        read_ncic(hq / "x.txt", ncic_line("BOLO", plate) + "\n")
    payload = snapshot_payload([{"plate": "OK1234"}, {"plate": plate}], version=5)
    assert sign_rc(hq, payload) == 1
    assert "entries[1], field 'plate'" in capsys.readouterr().err
    accepted, reason = car_applies(hq, payload)
    assert not accepted and "entries[1], field 'plate'" in reason, reason
    good = snapshot_payload([{"plate": "AB1*"}, {"plate": "7?X9*"}], version=5)
    assert sign_rc(hq, good) == 0 and car_applies(hq, good)[0]


def test_more_wildcards_than_a_list_may_hold_are_refused_at_sign(hq: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    n = 1001  # language.MAX_WILDCARDS + 1
    payload = snapshot_payload([{"plate": f"W{i:04d}*"} for i in range(n)], version=5)
    assert sign_rc(hq, payload) == 1
    assert f"entries[{n - 1}]" in capsys.readouterr().err
    assert not car_applies(hq, payload)[0]
    assert language.MAX_WILDCARDS == 1000


# --- the same (plate, list, region) twice -------------------------------------------------------------


def test_a_repeated_plate_list_and_region_is_refused_naming_both(
        hq: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "plate,list,state\nABC-123,SV,ca\nABC123,wanted,CA\nXYZ987,,\nabc123,stolen_vehicle,CA\n"
    with pytest.raises(WatchlistImportError, match=r"list.csv line 5: .*same plate, list and region as "
                                                   r"list.csv line 2 \(ABC123, stolen_vehicle, CA\)"):
        read_csv(hq / "list.csv", text)
    records = [{"plate": "ABC123", "region": "CA"}, {"plate": "ABC123", "region": "NV"},
               {"plate": "abc 123", "region": "ca"}]
    payload = snapshot_payload(records, version=5)
    assert sign_rc(hq, payload) == 1
    assert "entries[2]: same plate, list and region as entries[0]" in capsys.readouterr().err
    accepted, reason = car_applies(hq, payload)
    assert not accepted and "entries[2]: same plate, list and region as entries[0]" in reason, reason
    # a delta adding the same entry twice is refused too; adding one that exists replaces it
    assert car_applies(hq, snapshot_payload(records[:2], version=5))[0]
    twice = delta_payload([{"plate": "NEW111"}, {"plate": "NEW111"}], [], version=6, base_version=5)
    assert sign_rc(hq, twice) == 1
    accepted, reason = car_applies(hq, twice)
    assert not accepted and "add[1]: same plate, list and region as add[0]" in reason, reason
    replace = delta_payload([{"plate": "ABC123", "region": "CA", "priority": 1}], [], version=6, base_version=5)
    assert sign_rc(hq, replace) == 0 and car_applies(hq, replace)[0]


# --- text that is not UTF-8, a BOM, and fields over the csv module's limit ------------------------------


def test_ncic_with_a_bom_imports_and_latin1_names_the_line(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    lines = [ncic_line("SV", "ABC1234", "CA", "RED HONDA"), ncic_line("SV", "XYZ987", "NV", "BLUE")]
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    assert [r["plate"] for r in read_file(bom, "ncic")] == ["ABC1234", "XYZ987"]
    latin = tmp_path / "latin.txt"
    latin.write_bytes("\n".join([*lines, ncic_line("SV", "JKL555", "", "CITRO\xcbN")]).encode("latin-1"))
    with pytest.raises(WatchlistImportError, match=r"latin.txt line 3, column 53: byte 0xCB is not ASCII"):
        read_file(latin, "ncic")
    assert watchlist_main(["import", str(latin), "--out", str(tmp_path / "o.json")]) == 1
    assert "latin.txt line 3" in capsys.readouterr().err


def test_csv_in_latin1_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes("plate,description\nABC123,red\nXYZ987,Citro\xebn\n".encode("latin-1"))
    with pytest.raises(WatchlistImportError, match=r"l.csv line 3, column 13: byte 0xEB is not UTF-8"):
        read_file(path)
    assert watchlist_main(["import", str(path), "--out", str(tmp_path / "o.json")]) == 1
    assert "l.csv line 3" in capsys.readouterr().err


def test_csv_field_over_the_csv_module_limit_names_the_line(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.csv"
    path.write_text(f'plate,description\nABC123,red\nXYZ987,"{"x" * 131_073}"\n')
    with pytest.raises(WatchlistImportError, match=r"big.csv line 3: .*longer than"):
        read_file(path)
    assert watchlist_main(["import", str(path), "--out", str(tmp_path / "o.json")]) == 1
    assert "big.csv line 3" in capsys.readouterr().err


# --- text fields, regions and versions have stated limits ---------------------------------------------


def test_text_longer_than_the_limit_is_refused_everywhere(hq: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = "x" * 10_000
    with pytest.raises(WatchlistImportError, match=r"l.csv line 2, field 'notes': .*at most"):
        read_csv(hq / "l.csv", f"plate,notes\nABC123,{long}\n")
    payload = snapshot_payload([{"plate": "ABC123", "notes": long}], version=5)
    assert sign_rc(hq, payload) == 1
    assert "entries[0], field 'notes'" in capsys.readouterr().err
    accepted, reason = car_applies(hq, payload)
    assert not accepted and "entries[0], field 'notes'" in reason, reason
    ok = "y" * language.MAX_TEXT_LEN
    assert language.MAX_TEXT_LEN == 500
    with pytest.raises(WatchlistImportError, match="at most 500"):
        read_csv(hq / "l.csv", f"plate,notes\nABC123,{ok}z\n")
    assert car_applies(hq, snapshot_payload([{"plate": "ABC123", "notes": ok}], version=5))[0]


@pytest.mark.parametrize("region", ["C A$", "CALIFORNIA", "A\u00c9", "-CA"])
def test_a_region_outside_its_format_is_refused(hq: Path, region: str) -> None:
    payload = snapshot_payload([{"plate": "ABC123", "region": region}], version=5)
    assert sign_rc(hq, payload) == 1
    accepted, reason = car_applies(hq, payload)
    assert not accepted and "entries[0], field 'region'" in reason, reason


def test_too_many_distinct_regions_or_lists_are_refused_at_sign(hq: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    n = 1025  # language.MAX_REGIONS + 1
    payload = snapshot_payload([{"plate": f"P{i:05d}", "region": f"R{i:04d}"} for i in range(n)], version=5)
    assert sign_rc(hq, payload) == 1
    assert f"entries[{n - 1}], field 'region'" in capsys.readouterr().err
    n = 257  # language.MAX_LISTS + 1
    payload = snapshot_payload([{"plate": f"P{i:05d}", "list": f"l{i}"} for i in range(n)], version=5)
    assert sign_rc(hq, payload) == 1
    assert f"entries[{n - 1}], field 'list'" in capsys.readouterr().err
    assert (language.MAX_REGIONS, language.MAX_LISTS) == (1024, 256)


def test_a_version_beyond_the_limit_is_refused(hq: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = 2**70
    raw = json.dumps({"format": "picar-watchlist/1", "type": "snapshot", "version": huge,
                      "created_at": "2026-01-01T00:00:00Z", "entries": [{"plate": "ABC123"}]}).encode()
    with pytest.raises(UpdateError, match=r"version 1180591620717411303424 must be an integer 1 \.\. "):
        parse_update(raw)
    assert sign_rc(hq, raw) == 1
    assert "version 1180591620717411303424" in capsys.readouterr().err
    accepted, reason = car_applies(hq, raw)
    assert not accepted and "version" in reason
    (hq / "l.csv").write_text("plate\nABC123\n")
    assert watchlist_main(["import", str(hq / "l.csv"), "--out", str(hq / "o.json"), "--version", str(huge)]) == 1
    assert "version" in capsys.readouterr().err and not (hq / "o.json").exists()
    assert update.MAX_VERSION == 2**53 - 1
    assert car_applies(hq, snapshot_payload([{"plate": "ABC123"}], version=update.MAX_VERSION))[0]
    with pytest.raises(UpdateError, match="version"):
        snapshot_payload([{"plate": "ABC123"}], version=update.MAX_VERSION + 1)


_HEAD = '"format": "picar-watchlist/1", "version": 3, "created_at": "2026-01-01T00:00:00Z"'


@pytest.mark.parametrize("text", [
    "{" + _HEAD + ', "entries": [{"plate": "ABC123"}, {"plate": "XY12", "list": "wanted"}]}',
    ' \n{ ' + _HEAD.replace(", ", " ,\n ") + ' , "entries" : [ {"plate":"A1B"} ,\t{"plate":"C2D"} ] } \r\n',
    "{" + _HEAD + ', "entries": []}',
    "{" + _HEAD + ', "type": "delta", "base_version": 2, "add": [{"plate": "A1B"}], "remove": [{"plate": "Q"}]}',
    "{" + _HEAD + ', "entries": [{"plate": "A1B"}], "entries": [{"plate": "C2D"}, 1]}',  # json keeps the last
    "{" + _HEAD + ', "entries": [1, "x", null, [], {"plate": {"a": [1]}}]}',
    "{" + _HEAD + ', "entries": {"plate": "A1B"}}',
    "{" + _HEAD + ', "entries": [{"plate": "A1B"},]}',
    "{" + _HEAD + ', "entries": [{"plate": "A1B"}] ]',
    "{" + _HEAD + ', "entries": [{"plate": "A1B"}]} x',
    "{" + _HEAD + ', "entries": [' + "[" * 100_000 + "]" * 100_000 + "]}",
    "{" + _HEAD + ', "entries": [{"plate": "A1B"}, {"plate": "C2D"', "{}", "[]", "", "  ", '"x"',
    "{" + _HEAD + ', "entries": [{"plate": "A1B"}], "format": "other"}',
    '{"format": "picar-watchlist/1", "version": 0, "entries": [{"plate": "A1B"}, {]}',
])
def test_read_update_streams_what_parse_update_parses(text: str) -> None:
    """The streaming reader the car applies updates with agrees with parse_update: result and error."""
    for raw in (text.encode(), update.gzip.compress(text.encode())):
        try:
            want = parse_update(raw)
        except UpdateError as exc:
            with pytest.raises(UpdateError) as got:
                update.read_update(update.payload_text(raw))
            assert str(got.value) == str(exc)
            continue
        got_upd = update.read_update(update.payload_text(raw))
        assert (got_upd.kind, got_upd.list_id, got_upd.version, got_upd.base_version, got_upd.created_at) == (
            want.kind, want.list_id, want.version, want.base_version, want.created_at)
        assert list(got_upd.entries) == list(want.entries) and list(got_upd.remove) == list(want.remove)
        assert len(got_upd.entries) == len(want.entries)


def test_read_update_keeps_offsets_not_records() -> None:
    raw = snapshot_payload([{"plate": f"P{i:05d}"} for i in range(3)], version=4, compress=True)
    upd = update.read_update(update.payload_text(raw))
    assert isinstance(upd.entries, update.Records) and len(upd.entries) == 3
    assert [r["plate"] for r in upd.entries] == ["P00000", "P00001", "P00002"]

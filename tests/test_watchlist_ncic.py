"""NCIC hotlist exports (tagged and delimited) and the HQ import review that lists every invalid row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from picar.hq.watchlists import diff, review_import
from picar.watchlist.io import WatchlistImportError
from picar.watchlist.ncic import read_ncic_any, shape

TAGGED = (
    "# hotlist export 2026-11-23\n"
    "MKE/STOLEN VEHICLE.ORI/MD1012600.LIC/ABC123.LIS/MD.LIY/2027.LIT/PC.VYR/2019.VMA/HOND.VMO/CIV.VST/4D."
    "VCO/RED.VIN/1HGCM82633A004352.OCA/2026-0457.DOT/20261101.NIC/V123456789.MIS/ARMED. CALL 112\n"
    "\n"
    "MKE/FELONY VEHICLE;LIC/XY-987;LIS/ro\n"
    "MKE/SP|LIC/KLM 42|LIY/NX\n"
)


def test_a_tagged_export_maps_every_field(tmp_path: Path) -> None:
    f = tmp_path / "hot.txt"
    f.write_text(TAGGED)
    assert shape(TAGGED) == "tagged"
    first, felony, plate = read_ncic_any(f)
    assert first == {
        "plate": "ABC123", "list": "stolen_vehicle", "priority": 2, "region": "MD",
        "description": "2019 HOND CIV 4D RED", "reason": "stolen vehicle, case 2026-0457, taken 2026-11-01",
        "notes": "plate type PC; plate year 2027; VIN 1HGCM82633A004352; NIC V123456789; ARMED. CALL 112",
        "source": "NCIC export hot.txt, ORI MD1012600"}
    assert (felony["plate"], felony["list"], felony["priority"], felony["region"]) == ("XY987", "felony_vehicle", 1,
                                                                                      "RO")
    assert (plate["plate"], plate["list"], plate["notes"]) == ("KLM42", "stolen_plate", "plate year NX")


def test_a_delimited_export_with_a_header_of_codes(tmp_path: Path) -> None:
    f = tmp_path / "hot.csv"
    f.write_text("MKE|LIC|LIS|VMA|OCA\nSTOLEN VEHICLE|ABC123|MD|FORD|C-1\nSV|ZZZ999||BMW|\n")
    assert [(r["plate"], r.get("region"), r["description"], r["reason"]) for r in read_ncic_any(f)] == [
        ("ABC123", "MD", "FORD", "stolen vehicle, case C-1"), ("ZZZ999", None, "BMW", "stolen vehicle")]


@pytest.mark.parametrize(("text", "message"), [
    ("MKE/SV.LIC/ABC123.LIS/MDA\n", "hot.txt line 1, field LIS: 'MDA' is not a two-letter state code"),
    ("MKE/SV.LIC/AB1\nMKE/SV.LIC/UNK\n", "hot.txt line 2, field LIC: 'UNK' is a word for an unknown plate"),
    ("MKE/SV.LIC/AB1\nMKE/WHATEVER.LIC/AB2\n", "hot.txt line 2, field MKE: 'WHATEVER' is not one of"),
    ("MKE/SV.LIC/AB1.DOT/20261340\n", "hot.txt line 1, field DOT: '20261340' is not a date YYYYMMDD"),
    ("MKE/SV.LIC/AB1.LIY/27\n", "hot.txt line 1, field LIY: '27' is not a year YYYY (or NX)"),
    ("MKE/SV.LIC/AB1.XYZ/1\n", "hot.txt line 1, field XYZ: unknown field code"),
    ("MKE/SV.LIC/AB1.LIC/AB2\n", "hot.txt line 1, field LIC: given twice"),
    ("MKE/SV.LIS/MD\n", "hot.txt line 1, field LIC: missing"),
    ("LIC/AB1\n", "hot.txt line 1, field MKE: missing"),
    ("MKE/SV.LIC/AB$1\n", "hot.txt line 1, field 'plate': plate 'AB$1' is not a valid plate"),
    ("MKE/SV.LIC/AB1\nMKE/SV.LIC/AB-1\n", "hot.txt line 2: same plate, list and region as hot.txt line 1"),
    ("MKE,LIC\nSV,AB1,extra\n", "hot.txt line 2: 3 fields, the header has 2"),
])
def test_errors_name_the_line_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "hot.txt"
    f.write_text(text)
    with pytest.raises(WatchlistImportError) as err:
        read_ncic_any(f)
    assert message in str(err.value)


def test_a_fixed_width_extract_still_reads_and_must_be_ascii(tmp_path: Path) -> None:
    f = tmp_path / "fixed.txt"
    f.write_text("SV  ABC123    CAPC20271231CASE-1              Y2019 HOND CIV RED\n")
    assert shape(f.read_text()) == "fixed"
    (rec,) = read_ncic_any(f)
    assert (rec["plate"], rec["region"], rec["covert"], rec["expires"]) == ("ABC123", "CA", True, "2027-12-31")
    f.write_text("SV  ABC123    CAPC20271231CASE-1              Y2019 HOND CIV ROŞU\n")
    with pytest.raises(WatchlistImportError, match="fixed.txt line 1, column 64: byte 0xC5 is not ASCII"):
        read_ncic_any(f)


def test_review_lists_every_invalid_row_and_keeps_the_valid_ones() -> None:
    data = ("plate,list,priority,description\n"
            "AB123CD,SV,,Dacia Logan\n"
            "B@D,SV,,\n"
            "XY999ZZ,wanted,high,\n"
            "MD 777 AAA,SV,1,Логан голубой\n"
            "ab123cd,SV,,duplicate of line 2\n").encode()
    review = review_import(data, "list.csv", "csv")
    assert [r["plate"] for r in review.records] == ["AB123CD", "MD777AAA"]
    assert [(row.line, row.message.split(":")[0]) for row in review.invalid] == [
        (3, "list.csv line 3, field 'plate'"), (4, "list.csv line 4, column 'priority'"), (6, "list.csv line 6")]
    assert "same plate, list and region as list.csv line 2" in review.invalid[2].message
    assert review.by_list == {"stolen_vehicle": 2} and review.publishable
    assert review.records[1]["description"] == "Логан голубой"


def test_review_refuses_a_bad_header_or_a_file_that_is_not_a_list() -> None:
    bad_header = review_import(b"plate,colour\nAB1,red\n", "x.csv", "csv")
    assert not bad_header.records and not bad_header.publishable
    assert bad_header.invalid[-1].line is None and "unknown column 'colour'" in bad_header.invalid[-1].message
    blank_first = review_import(b"\n\nplate\nAB1\n", "x.csv", "csv")  # the csv reader's header is line 1
    assert not blank_first.publishable and blank_first.invalid[-1].line is None
    junk = review_import(b"".join(b"%d\n" % i for i in range(200)), "junk.txt", "ncic")
    assert junk.gave_up and not junk.publishable and len(junk.invalid) == 50


def test_diff_against_the_list_in_force() -> None:
    old = [{"plate": "AB1", "list": "stolen_vehicle", "priority": 2}, {"plate": "CD2", "list": "wanted"},
           {"plate": "EF3", "list": "stolen_vehicle", "notes": "x"}]
    new = [{"plate": "AB1"}, {"plate": "CD2", "list": "wanted", "priority": 1}, {"plate": "GH4", "list": "bolo"}]
    d = diff(old, new)
    assert [r["plate"] for r in d.added] == ["GH4"] and [r["plate"] for r in d.removed] == ["EF3"]
    assert [(a.get("priority"), b.get("priority")) for a, b in d.changed] == [(None, 1)] and d.unchanged == 1


def test_the_command_line_imports_an_ncic_export(tmp_path: Path) -> None:
    from picar.watchlist.cli import watchlist_main

    f, out = tmp_path / "hot.txt", tmp_path / "snap.json"
    f.write_text(TAGGED)
    assert watchlist_main(["import", str(f), "--format", "ncic", "--out", str(out), "--version", "3"]) == 0
    snapshot = json.loads(out.read_text())
    assert snapshot["version"] == 3 and [e["plate"] for e in snapshot["entries"]] == ["ABC123", "XY987", "KLM42"]

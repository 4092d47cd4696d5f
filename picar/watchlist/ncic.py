"""NCIC hotlist exports: records tagged with NCIC message field codes, one record per line.

NCIC messages name every field by a three-letter code, a slash and the data (``LIC/ABC123``). A state's
hotlist export for plate readers comes in two shapes, both read here:

- tagged: ``MKE/STOLEN VEHICLE.ORI/MD1012600.LIC/ABC123.LIS/MD.LIY/2027.LIT/PC.VMA/HOND`` (fields separated
  by ``.``, ``;``, ``|`` or a tab; a separator ends a field only when a code and ``/`` follow it, so remarks
  may hold periods);
- delimited: a header row of field codes (``MKE,LIC,LIS,...``; comma, semicolon, pipe or tab), then one
  row per record.

The fixed-width layout of picar's own extract stays in picar.watchlist.io (`read_ncic`); `read_ncic_any`
picks the reader by the file's content.

What was used (facts, looked up for this module):
- the vehicle field codes and their meaning: Wisconsin DOJ TIME system, "Glossary of NCIC Vehicle Field
  Codes" (doj.state.wi.us/dles/cibmanuals/files/TIME/HTML/glossaryofncicvehiclefieldcodes.htm): DOT date
  of theft, LIC plate number, LIS plate state, LIT plate type, LIY plate year of expiration, MIS
  miscellaneous, MKE message key, NIC NCIC number, OAN owner-applied number, OCA originating agency case
  number, ORI originating agency identifier, VCO colour, VIN, VMA make, VMO model, VST style, VYR year;
- the plate edits: same manual, "License Plate Number Edits" (licenseplatenumberedits.htm): spaces,
  hyphens and symbols omitted, never a word such as NONE or UNK for an unknown plate;
- the record categories (stolen vehicle, felony vehicle, stolen/missing plate): same manual,
  "Vehicle File Categories" (vehiclefilecategories.htm);
- plate type codes are two characters (NIEM 4.1 ncic:LITCodeSimpleType, e.g. PC, MC, TL).
MKE is matched by the category it names (``STOLEN VEHICLE`` as a hit response spells it) or by picar's
list codes (SV, SP, WP, MP, BOLO, as in the fixed-width extract).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from picar.watchlist.io import LIST_CODES, WatchlistImportError, _Checked, decode_text, read_ncic, read_text

# field code -> what it holds (the glossary above)
FIELD_CODES: dict[str, str] = {
    "MKE": "message key", "ORI": "originating agency", "LIC": "plate number", "LIS": "plate state",
    "LIY": "plate year of expiration", "LIT": "plate type", "VIN": "vehicle identification number",
    "VYR": "vehicle year", "VMA": "vehicle make", "VMO": "vehicle model", "VST": "vehicle style",
    "VCO": "vehicle colour", "OCA": "agency case number", "NIC": "NCIC number", "DOT": "date of theft",
    "OAN": "owner-applied number", "MIS": "remarks",
}
# MKE as the category it names -> picar list code (LIST_CODES), plus the felony vehicle list
FELONY = ("felony_vehicle", 1, "felony vehicle")
CATEGORIES: dict[str, tuple[str, int, str]] = {
    "STOLEN VEHICLE": LIST_CODES["SV"], "FELONY VEHICLE": FELONY, "STOLEN LICENSE PLATE": LIST_CODES["SP"],
    "STOLEN PLATE": LIST_CODES["SP"], "MISSING LICENSE PLATE": LIST_CODES["SP"],
    "STOLEN/MISSING LICENSE PLATE": LIST_CODES["SP"], **LIST_CODES,
}
UNKNOWN_PLATE_WORDS = frozenset({"NONE", "UNK", "UNKN", "UNKNOWN", "NA", "N/A"})
_BOUNDARY = re.compile(r"(?:^|[.;|\t])\s*([A-Z]{3})/")
_DELIMITERS = ",;|\t"
_STATE = re.compile(r"[A-Z]{2}")
_LIT = re.compile(r"[A-Z0-9]{2}")
_YEAR = re.compile(r"\d{4}")
_CODE_TEXT = re.compile(r"[A-Z0-9 /-]{1,40}")


def split_tagged(line: str, where: str) -> dict[str, str]:
    """The fields of one tagged record, by code; errors name the line and the field."""
    marks = list(_BOUNDARY.finditer(line))
    if not marks or line[:marks[0].start()].strip(" .;|\t"):
        raise WatchlistImportError(f"{where}: not an NCIC record (fields are CODE/value, e.g. LIC/ABC123)")
    fields: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(line)
        code = m.group(1)
        if code in fields:
            raise WatchlistImportError(f"{where}, field {code}: given twice")
        fields[code] = line[m.end():end].strip().rstrip(".").strip()
    return fields


def record_of(fields: dict[str, str], where: str, source: str) -> dict[str, Any]:
    """An NCIC record's fields as a watchlist entry record (checked later by the builder)."""
    for code in fields:
        if code not in FIELD_CODES:
            raise WatchlistImportError(f"{where}, field {code}: unknown field code; known: "
                                       f"{', '.join(FIELD_CODES)}")
    f = {code: value.strip() for code, value in fields.items() if value.strip()}
    mke = f.get("MKE")
    if mke is None:
        raise WatchlistImportError(f"{where}, field MKE: missing (the record's category, e.g. STOLEN VEHICLE)")
    category = CATEGORIES.get(" ".join(mke.upper().split()))
    if category is None:
        raise WatchlistImportError(f"{where}, field MKE: {mke!r} is not one of "
                                   f"{', '.join(sorted(CATEGORIES))}")
    list_name, priority, label = category
    plate = f.get("LIC")
    if plate is None:
        raise WatchlistImportError(f"{where}, field LIC: missing (the plate number)")
    if plate.upper() in UNKNOWN_PLATE_WORDS:
        raise WatchlistImportError(f"{where}, field LIC: {plate!r} is a word for an unknown plate, not a plate")
    rec: dict[str, Any] = {"plate": plate, "list": list_name, "priority": priority}
    if "LIS" in f:
        if not _STATE.fullmatch(f["LIS"].upper()):
            raise WatchlistImportError(f"{where}, field LIS: {f['LIS']!r} is not a two-letter state code")
        rec["region"] = f["LIS"].upper()
    notes: list[str] = []
    if "LIT" in f:
        if not _LIT.fullmatch(f["LIT"].upper()):
            raise WatchlistImportError(f"{where}, field LIT: {f['LIT']!r} is not a two-character plate type")
        notes.append(f"plate type {f['LIT'].upper()}")
    if "LIY" in f:
        if not (_YEAR.fullmatch(f["LIY"]) or f["LIY"].upper() == "NX"):
            raise WatchlistImportError(f"{where}, field LIY: {f['LIY']!r} is not a year YYYY (or NX)")
        notes.append(f"plate year {f['LIY'].upper()}")
    if "VYR" in f and not _YEAR.fullmatch(f["VYR"]):
        raise WatchlistImportError(f"{where}, field VYR: {f['VYR']!r} is not a year YYYY")
    for code in ("VMA", "VMO", "VST", "VCO"):
        if code in f and not _CODE_TEXT.fullmatch(f[code].upper()):
            raise WatchlistImportError(f"{where}, field {code}: {f[code]!r} is not a {FIELD_CODES[code]} code")
    vehicle = " ".join(f[c].upper() for c in ("VYR", "VMA", "VMO", "VST", "VCO") if c in f)
    if vehicle:
        rec["description"] = vehicle
    reason = label
    if "OCA" in f:
        reason += f", case {f['OCA']}"
    if "DOT" in f:
        reason += f", taken {_date(f['DOT'], where)}"
    rec["reason"] = reason
    notes += [f"{name} {f[code]}" for code, name in (("VIN", "VIN"), ("NIC", "NIC"), ("OAN", "OAN"))
              if code in f]
    if "MIS" in f:
        notes.append(f["MIS"])
    if notes:
        rec["notes"] = "; ".join(notes)
    rec["source"] = f"{source}, ORI {f['ORI']}" if "ORI" in f else source
    return rec


def _date(value: str, where: str) -> str:
    try:
        return datetime.strptime(value, "%Y%m%d").date().isoformat()
    except ValueError:
        raise WatchlistImportError(f"{where}, field DOT: {value!r} is not a date YYYYMMDD") from None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of the records: blank lines and '#' comments skipped."""
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield n, line


def read_tagged(path: Path, text: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
    """Parse a tagged NCIC export (one record a line); raises on the first bad line, naming line and field."""
    name = Path(path).name
    text = read_text(path, "utf-8") if text is None else text
    checked = _Checked()
    for n, line in _lines(text):
        where = f"{name} line {n}"
        checked.add(record_of(split_tagged(line, where), where, source or f"NCIC export {name}"), where)
    return checked.done()


def read_delimited(path: Path, text: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
    """Parse a delimited NCIC export: a header row of field codes, then one record a row."""
    name = Path(path).name
    text = read_text(path, "utf-8") if text is None else text
    lines = list(_lines(text))
    if not lines:
        raise WatchlistImportError(f"{name}: no header row (field codes such as MKE,LIC,LIS)")
    header_line, header = lines[0]
    delimiter = _delimiter(header, f"{name} line {header_line}")
    checked = _Checked()
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    codes: list[str] | None = None
    for row in reader:
        n = reader.line_num
        if not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if codes is None:
            codes = [c.strip().upper() for c in row]
            for i, code in enumerate(codes):
                if code not in FIELD_CODES:
                    raise WatchlistImportError(f"{name} line {n}, column {i + 1}: {row[i]!r} is not an NCIC "
                                               f"field code; known: {', '.join(FIELD_CODES)}")
            if len(set(codes)) != len(codes):
                raise WatchlistImportError(f"{name} line {n}: a field code is given twice in the header")
            continue
        where = f"{name} line {n}"
        if len(row) != len(codes):
            raise WatchlistImportError(f"{where}: {len(row)} fields, the header has {len(codes)}")
        fields = dict(zip(codes, row, strict=True))
        checked.add(record_of(fields, where, source or f"NCIC export {name}"), where)
    return checked.done()


def _delimiter(header: str, where: str) -> str:
    for d in _DELIMITERS:
        cells = [c.strip().upper() for c in header.split(d)]
        if len(cells) > 1 and all(c in FIELD_CODES for c in cells):
            return d
    raise WatchlistImportError(f"{where}: the header must be NCIC field codes separated by one of "
                               "comma, semicolon, | or tab (e.g. MKE,LIC,LIS)")


def shape(text: str) -> str:
    """'tagged', 'delimited' or 'fixed': which NCIC export `text` is, from its first record line."""
    first = next(_lines(text), (0, ""))[1]
    if _BOUNDARY.match(first.lstrip()):
        return "tagged"
    cells = re.split(r"[,;|\t]", first)
    if len(cells) > 1 and all(c.strip().upper() in FIELD_CODES for c in cells):
        return "delimited"
    return "fixed"


def read_ncic_any(path: Path, data: bytes | None = None) -> list[dict[str, Any]]:
    """Any NCIC export (the file at `path`, or its bytes `data`): tagged, delimited (a header of codes) or
    picar's fixed-width extract, which must be ASCII (a wider character would shift its columns)."""
    name = Path(path).name
    data = Path(path).read_bytes() if data is None else data
    kind = shape(data.decode("utf-8", "replace"))  # only to tell the shape: each reads the bytes its own way
    if kind == "fixed":
        return read_ncic(path, decode_text(data, name, "ascii"))
    text = decode_text(data, name, "utf-8")
    return read_tagged(path, text) if kind == "tagged" else read_delimited(path, text)

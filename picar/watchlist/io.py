"""Watchlist import and export: CSV and an NCIC-style fixed-width extract.

Imports return JSON-ready entry records (the snapshot entry format), each already validated, so a
bad line stops the import with its line number and column before anything is published.
The fixed-width layout is documented in docs/watchlist.md and in `NCIC_COLUMNS` below.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from picar.vision.grammar import to_latin
from picar.vision.grammar_data import CYRILLIC_TO_LATIN
from picar.watchlist.builder import WatchlistBuilder
from picar.watchlist.entries import ENTRY_FIELDS, MAX_TEXT_LEN, WatchlistError

# List codes used by both importers: code -> (list name, default priority, reason text).
LIST_CODES: dict[str, tuple[str, int, str]] = {
    "SV": ("stolen_vehicle", 2, "stolen vehicle"),
    "SP": ("stolen_plate", 2, "stolen plate"),
    "WP": ("wanted", 1, "wanted person"),
    "MP": ("amber", 1, "missing person / AMBER alert"),
    "BOLO": ("bolo", 3, "be on the lookout"),
}

# NCIC-style fixed-width columns, 1-based inclusive (start, end, field).
NCIC_COLUMNS: tuple[tuple[int, int, str], ...] = (
    (1, 4, "list code"),
    (5, 14, "plate"),
    (15, 16, "state"),
    (17, 18, "plate type"),
    (19, 26, "expiry date"),
    (27, 46, "case number"),
    (47, 47, "covert flag"),
    (48, 127, "description"),
)
NCIC_MIN_LENGTH = 14  # a line must reach the end of the plate field

CSV_COLUMNS = ENTRY_FIELDS + ("state",)
# The column names of lists a Moldovan HQ holds, in Romanian and Russian -> the field they fill. A header
# is compared by `_header_key`: case, diacritics (ă â î ș ț), dots, spaces and a final colon ignored.
HEADER_ALIASES: dict[str, str] = {
    **dict.fromkeys(("număr de înmatriculare", "numărul de înmatriculare", "număr înmatriculare",
                     "nr. înmatriculare", "nr. de înmatriculare", "nr. auto", "număr auto", "număr", "nr."), "plate"),
    **dict.fromkeys(("listă", "categorie"), "list"),
    **dict.fromkeys(("regiune", "țara", "țară"), "region"),
    **dict.fromkeys(("prioritate", "prioritatea"), "priority"),
    **dict.fromkeys(("secret", "confidențial"), "covert"),
    **dict.fromkeys(("valabil de la", "în vigoare de la"), "effective"),
    **dict.fromkeys(("valabil până la", "expiră", "data expirării"), "expires"),
    **dict.fromkeys(("descriere", "descrierea", "descriere vehicul", "vehicul"), "description"),
    **dict.fromkeys(("motiv", "motivul"), "reason"),
    **dict.fromkeys(("note", "observații", "mențiuni"), "notes"),
    **dict.fromkeys(("sursa", "sursă"), "source"),
    **dict.fromkeys(("номер", "госномер", "гос. номер", "государственный номер", "номерной знак",
                     "рег. номер", "регистрационный номер"), "plate"),
    **dict.fromkeys(("список", "категория"), "list"),
    **dict.fromkeys(("регион", "страна"), "region"),
    **dict.fromkeys(("приоритет",), "priority"),
    **dict.fromkeys(("скрытно", "секретно"), "covert"),
    **dict.fromkeys(("действует с",), "effective"),
    **dict.fromkeys(("действует до", "срок действия"), "expires"),
    **dict.fromkeys(("описание", "описание тс", "транспортное средство"), "description"),
    **dict.fromkeys(("причина", "основание"), "reason"),
    **dict.fromkeys(("примечание", "примечания"), "notes"),
    **dict.fromkeys(("источник",), "source"),
}
_TRUE = {"1", "y", "yes", "true", "t", "da", "да"}
_FALSE = {"", "0", "n", "no", "false", "f", "nu", "нет"}
# Spaces and dashes of every kind inside a listed plate (a non-breaking space, an en dash ...).
_PLATE_GAPS = re.compile(r"[\s\-\u2010-\u2015\u2212.]+")


def _header_key(text: str) -> str:
    """A header for matching: no diacritics (NFKD, marks dropped, so й is и), lower case, dots as spaces,
    single spaces, no final colon."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace(".", " ").split()).rstrip(":").strip()


_ALIASES = {_header_key(k): v for k, v in HEADER_ALIASES.items()}


def column_field(header: str) -> str | None:
    """The entry field a CSV header names: an English field name (`CSV_COLUMNS`) or a Romanian or
    Russian column name (`HEADER_ALIASES`); None for a header that names none."""
    key = _header_key(header)
    if key in CSV_COLUMNS:
        return key
    return _ALIASES.get(key)


def latin_plate(raw: str, where: str) -> str:
    """A listed plate in the form the OCR reads: Cyrillic letters that look Latin (Ukrainian,
    Transnistrian, Russian plates) as their Latin twins, spaces and dashes removed, upper case. A letter
    with no Latin twin (Ж, Д, Ц ...) is an error naming `where`: no read could ever match it."""
    text = to_latin(_PLATE_GAPS.sub("", raw.strip()))
    foreign = sorted({c for c in text if c.isalpha() and not c.isascii()})
    if foreign:
        twins = " ".join(CYRILLIC_TO_LATIN)
        raise WatchlistImportError(f"{where}: plate {raw!r} has {', '.join(foreign)}: letters with no Latin "
                                   f"look-alike, which the OCR never reads (only {twins} are read as Latin)")
    return text


class WatchlistImportError(WatchlistError):
    """A line that cannot be imported; the message names file, line and column."""


def read_text(path: Path, encoding: str) -> str:
    """The file as text ('utf-8' or 'ascii'), a UTF-8 byte order mark dropped; a byte that is not
    text in that encoding is an error naming its line and column."""
    return decode_text(Path(path).read_bytes(), Path(path).name, encoding)


def decode_text(data: bytes, name: str, encoding: str) -> str:
    """`read_text` for bytes already read (an upload): `name` names the file in the error."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        what = "not ASCII (the extract is fixed-width ASCII text)" if encoding == "ascii" else (
            "not UTF-8; save the file as UTF-8")
        raise WatchlistImportError(f"{name} line {line}, column {exc.start - line_start + 1}: "
                                   f"byte 0x{data[exc.start]:02X} is {what}") from None


class _Checked:
    """Validates records one by one as the car will (`WatchlistBuilder.parse_record`), then the whole
    list (`WatchlistBuilder.check`: duplicates, counts), naming the file line of every error."""

    def __init__(self) -> None:
        self.builder = WatchlistBuilder()
        self.wheres: list[str] = []
        self.records: list[dict[str, Any]] = []

    def add(self, rec: dict[str, Any], where: str) -> None:
        try:
            row = self.builder.parse_record(rec, where)
        except WatchlistError as exc:
            raise WatchlistImportError(str(exc)) from None
        self.builder.add_row(row)
        self.wheres.append(where)
        rec["plate"] = row[0]
        if row[2]:
            rec["region"] = row[2]
        self.records.append(rec)

    def done(self) -> list[dict[str, Any]]:
        try:
            self.builder.check(self.wheres.__getitem__)
        except WatchlistError as exc:
            raise WatchlistImportError(str(exc)) from None
        return self.records


def _list_name(value: str) -> tuple[str, int | None]:
    code = LIST_CODES.get(value.strip().upper())
    if code is not None:
        return code[0], code[1]
    return value.strip().lower().replace(" ", "_").replace("-", "_"), None


def _delimiter(text: str) -> str:
    """The header's separator: ',' unless the header holds more ';' (Excel where a comma is the decimal
    mark, as in Romanian and Russian) or tabs."""
    head = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=lambda d: (head.count(d), d == ","))


def read_csv(path: Path, text: str | None = None) -> list[dict[str, Any]]:
    """Parse a CSV watchlist with a header row, separated by ',', ';' or tabs; columns as in `CSV_COLUMNS`
    (state = region) or their Romanian or Russian names (`HEADER_ALIASES`)."""
    name = Path(path).name
    if text is None:
        text = read_text(path, "utf-8")
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text))
    try:
        header = next(reader)
    except StopIteration:
        raise WatchlistImportError(f"{name}: empty file, expected a header row") from None
    except csv.Error as exc:
        raise _csv_error(name, reader.line_num, exc) from None
    cols: list[str] = []
    for i, head in enumerate(header):
        col = column_field(head)
        if col is None:
            raise WatchlistImportError(f"{name} line 1, column {i + 1}: unknown column {head!r}; allowed "
                                       f"{', '.join(CSV_COLUMNS)} or their Romanian or Russian names "
                                       "(docs/watchlist.md, 'CSV')")
        cols.append(col)
    if "plate" not in cols:
        raise WatchlistImportError(f"{name} line 1: no 'plate' column in header {header!r}")
    if len(set(cols)) != len(cols) or ("state" in cols and "region" in cols):
        raise WatchlistImportError(f"{name} line 1: duplicate column in header {header!r}")
    checked = _Checked()
    for row in _rows(reader, name):
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        where = f"{name} line {line}"
        if len(row) != len(cols):
            raise WatchlistImportError(f"{where}: {len(row)} columns, the header has {len(cols)}")
        rec: dict[str, Any] = {}
        default_prio = None
        for col, head, raw in zip(cols, header, row, strict=True):
            value = raw.strip()
            if col == "state":
                col = "region"
            if value == "":
                continue
            if col == "plate":
                rec["plate"] = latin_plate(value, f"{where}, column {head.strip()!r}")
            elif col == "list":
                rec["list"], default_prio = _list_name(value)
            elif col == "priority":
                try:
                    rec["priority"] = int(value)
                except ValueError:
                    raise WatchlistImportError(f"{where}, column {head.strip()!r}: {value!r} is not an integer "
                                       "1 (highest) .. 9") from None
            elif col == "covert":
                if value.lower() not in _TRUE | _FALSE:
                    raise WatchlistImportError(f"{where}, column {head.strip()!r}: {value!r} is not yes/no "
                                               "(da/nu, да/нет)")
                if value.lower() in _TRUE:
                    rec["covert"] = True
            else:
                rec[col] = value
        if "priority" not in rec and default_prio is not None:
            rec["priority"] = default_prio
        checked.add(rec, where)
    return checked.done()


def _csv_error(name: str, line: int, exc: csv.Error) -> WatchlistImportError:
    if "field limit" in str(exc):
        return WatchlistImportError(
            f"{name} line {line}: a field is longer than {csv.field_size_limit()} characters, which the "
            f"CSV reader refuses (a text field holds at most {MAX_TEXT_LEN}); is a quote left open?")
    return WatchlistImportError(f"{name} line {line}: not valid CSV ({exc})")


def _rows(reader: Any, name: str) -> Iterator[list[str]]:
    """The reader's rows, its errors named by file and line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _csv_error(name, reader.line_num, exc) from None
        yield row


def read_ncic(path: Path, text: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
    """Parse the NCIC-style fixed-width extract (layout in `NCIC_COLUMNS`); '#' lines are comments."""
    name = Path(path).name
    if text is None:
        text = read_text(path, "ascii")
    checked = _Checked()
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{name} line {n}"
        if len(line) < NCIC_MIN_LENGTH:
            raise WatchlistImportError(f"{where}: {len(line)} characters; a record needs at least columns 1-14 "
                               "(list code and plate)")
        f = {label: line[a - 1:b].strip() for a, b, label in NCIC_COLUMNS}
        code = f["list code"].upper()
        if code not in LIST_CODES:
            raise WatchlistImportError(f"{where}, columns 1-4 (list code): {f['list code']!r} is not one of "
                               f"{', '.join(LIST_CODES)}")
        list_name, prio, label = LIST_CODES[code]
        if not f["plate"]:
            raise WatchlistImportError(f"{where}, columns 5-14 (plate): empty")
        rec: dict[str, Any] = {"plate": f["plate"], "list": list_name, "priority": prio}
        if f["state"]:
            if not f["state"].isalpha():
                raise WatchlistImportError(f"{where}, columns 15-16 (state): {f['state']!r} is not a state code")
            rec["region"] = f["state"].upper()
        if f["expiry date"]:
            try:
                day = datetime.strptime(f["expiry date"], "%Y%m%d").date()
            except ValueError:
                raise WatchlistImportError(f"{where}, columns 19-26 (expiry date): {f['expiry date']!r} is not "
                                   "a date YYYYMMDD") from None
            rec["expires"] = day.isoformat()
        covert = f["covert flag"].upper()
        if covert not in ("", "Y", "N"):
            raise WatchlistImportError(f"{where}, column 47 (covert flag): {f['covert flag']!r} is not Y, N or blank")
        if covert == "Y":
            rec["covert"] = True
        rec["reason"] = label + (f", case {f['case number']}" if f["case number"] else "")
        if f["plate type"]:
            rec["notes"] = f"plate type {f['plate type'].upper()}"
        if f["description"]:
            rec["description"] = f["description"]
        rec["source"] = source or f"NCIC extract {name}"
        checked.add(rec, where)
    return checked.done()


def read_file(path: Path, fmt: str | None = None) -> list[dict[str, Any]]:
    """Import by format name ('csv' or 'ncic'); by default `.csv` files are CSV, others NCIC (any shape)."""
    fmt = fmt or ("csv" if Path(path).suffix.lower() == ".csv" else "ncic")
    if fmt == "csv":
        return read_csv(path)
    if fmt == "ncic":  # the fixed-width extract, or an NCIC export tagged or delimited (picar.watchlist.ncic)
        from picar.watchlist.ncic import read_ncic_any

        return read_ncic_any(path)
    raise ValueError(f"format {fmt!r}: expected csv or ncic")


def write_csv(records: Iterable[Mapping[str, Any]], out: io.TextIOBase | Any) -> int:
    """Write records as CSV with the full header; returns the number of rows."""
    w = csv.DictWriter(out, fieldnames=list(ENTRY_FIELDS), extrasaction="raise")
    w.writeheader()
    n = 0
    for rec in records:
        w.writerow({k: ("yes" if v is True else v) for k, v in rec.items()})
        n += 1
    return n


def iter_ncic_layout() -> Iterator[str]:
    """The fixed-width layout as text lines, for --help and docs."""
    for a, b, label in NCIC_COLUMNS:
        yield f"  {a:>3}-{b:<3} {label}"


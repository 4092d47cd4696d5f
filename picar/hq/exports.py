"""CSV the console exports: reads for i2 Analyst's Notebook, and K9 deployment reports.

Analyst's Notebook imports a text file in which each line is one complete item, separated by commas, with
column headings in the first row; an import specification then maps columns to entities (their identity)
and links, and needs the format and time zone of each date/time column (i2 ANB documentation, "Import data
formats" and "Setting date and time formats", docs.i2group.com/anb). So the reads export is one row per read,
a fixed header (an import specification saved once matches it by its headings), date-times in ISO 8601 UTC
(and the same instant split into a date and a time column, for specifications that take the two apart), and
plain decimal numbers. docs/hq.md gives the import steps.

Both files are UTF-8 with a byte order mark (Windows programs then read Cyrillic case notes right) and CRLF
line ends, as the `csv` module writes them. Text cells that a spreadsheet would run as a formula are
prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence

from picar.hq.store.records import K9Deployment, Read

BOM = "\ufeff"
ANB_COLUMNS = ("Event ID", "Date Time", "Date", "Time", "Plate", "Car", "Camera", "Latitude", "Longitude",
               "Confidence", "Region", "Series", "Case Number")
K9_COLUMNS = ("Car", "Deployment", "Dog", "Handler", "Type", "Case Number", "Trigger", "Started", "Ended",
              "Duration (s)", "Outcome", "Track Length (m)", "Start Latitude", "Start Longitude", "Notes",
              "End Notes")
ANB_DATE_TIME_FORMAT = "yyyy-MM-ddTHH:mm:ssZ"  # as ANB's custom format notation spells ours; time zone UTC


def iso_utc(t: dt.datetime | None) -> str:
    """``2026-06-01T10:20:30Z`` (whole seconds, UTC); empty for None."""
    if t is None:
        return ""
    return t.astimezone(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _text(value: str | None) -> str:
    """A text cell: a leading = + - @ (a formula to a spreadsheet) is neutralised with an apostrophe."""
    if not value:
        return ""
    return "'" + value if value[0] in "=+-@\t\r" else value


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _write(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def reads_csv(reads: Iterable[Read], case_number: str) -> str:
    """The reads as an Analyst's Notebook import file (ANB_COLUMNS), the case number on every row."""
    def row(r: Read) -> list[str]:
        t = r.time.astimezone(dt.UTC)
        return [r.event_id, iso_utc(t), t.date().isoformat(), t.time().replace(microsecond=0).isoformat(),
                _text(r.plate), _text(r.vehicle), _text(r.camera), _number(r.lat, 6), _number(r.lon, 6),
                _number(r.confidence, 3), _text(r.region), _text(r.series), _text(case_number)]

    return _write(ANB_COLUMNS, (row(r) for r in reads))


def k9_csv(deployments: Iterable[K9Deployment]) -> str:
    """A K9 deployment report (K9_COLUMNS), one row per deployment."""
    def row(d: K9Deployment) -> list[str]:
        return [_text(d.vehicle), _text(d.deployment_id), _text(d.dog), _text(d.handler), _text(d.type),
                _text(d.case_number), _text(d.trigger), iso_utc(d.started_at), iso_utc(d.ended_at),
                _number(d.duration_s, 0), _text(d.outcome), _number(d.track_length_m, 0),
                _number(d.start_lat, 6), _number(d.start_lon, 6), _text(d.notes), _text(d.end_notes)]

    return _write(K9_COLUMNS, (row(d) for d in deployments))

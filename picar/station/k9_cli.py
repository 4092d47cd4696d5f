"""`picar k9 start|end|list|report --db PATH [--lang ro|ru|en] ...`: the K9 log from the command line.

Starts and ends recorded here cannot reach HQ (this process has no HQ link): they are stored as
pending and the daemon sends them (`K9Log.publish_pending()`). The HTML report is for people: in the
chosen language, with dates and numbers written the locale's way. The printed lines and the CSV keep the
codes the database and HQ use (`building_search`, `not_found`, ISO times), so they can be matched.
"""

from __future__ import annotations

import argparse
import csv
import html
import math
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from picar.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_, Translator, message_of, translator
from picar.i18n.terms import term
from picar.station.k9 import KINDS, OUTCOMES, K9Error, K9Log, defer_publish

CSV_FIELDS = [
    "deployment_id", "dog", "handler", "type", "case_number", "trigger", "started_at", "ended_at",
    "duration_s", "outcome", "notes", "end_notes", "start_lat", "start_lon", "track_points",
    "track_length_m", "published",
]


def parse_when(field: str, text: str, *, end_of_day: bool) -> float:
    """'2026-11-23' (a UTC day; the whole day when `end_of_day`) or an ISO 8601 time, as epoch seconds."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return (start + timedelta(days=1 if end_of_day else 0)).timestamp()
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise K9Error(N_("{field} {text!r} is not a date (YYYY-MM-DD) or ISO 8601 time"), field=field,
                      text=text) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _duration(seconds: float | None, tr: Translator) -> str:
    if seconds is None:
        return tr._("active")
    minutes, s = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h}:{m:02d}:{s:02d}"


def track_svg(points: list[dict[str, Any]], tr: Translator, width: int = 420, height: int = 280,
              pad: int = 16) -> str:
    """The track as an inline SVG polyline (north up, equal scale in both directions)."""
    e = html.escape
    if not points:
        none = tr._("No GPS track recorded.")
        return f'<p class="muted">{e(none)}</p>'
    lat0 = sum(p["lat"] for p in points) / len(points)
    k = math.cos(math.radians(lat0))
    xs = [p["lon"] * k for p in points]
    ys = [-p["lat"] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    scale = min(width - 2 * pad, height - 2 * pad) / span
    coords = [(pad + (x - min(xs)) * scale, pad + (y - min(ys)) * scale) for x, y in zip(xs, ys, strict=True)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    (sx, sy), (ex, ey) = coords[0], coords[-1]
    metres = 100 / scale * 111_320  # what 100 px of the drawing are on the ground
    scale_text = tr._("N up · 100 px ≈ {metres} m", metres=tr.integer(round(metres)))
    label, start, end = tr._("GPS track"), tr._("start"), tr._("end")
    return (
        f'<svg class="track" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{e(label)}">'
        f'<rect width="{width}" height="{height}" fill="#fff" stroke="#999"/>'
        f'<polyline points="{line}" fill="none" stroke="#c00" stroke-width="2.5" stroke-linejoin="round"/>'
        f'<circle cx="{sx:.1f}" cy="{sy:.1f}" r="6" fill="#080"><title>{e(start)}</title></circle>'
        f'<rect x="{ex - 5:.1f}" y="{ey - 5:.1f}" width="10" height="10" fill="#000">'
        f'<title>{e(end)}</title></rect>'
        f'<text x="{pad}" y="{height - 4}" font-size="11">{e(scale_text)}</text></svg>'
    )


STYLE = (
    "body{font:14px/1.4 sans-serif;margin:24px;color:#000}h1{font-size:22px}h2{font-size:18px;"
    "border-top:2px solid #000;padding-top:10px}table{border-collapse:collapse;margin:8px 0}"
    "td,th{border:1px solid #999;padding:3px 8px;text-align:left;vertical-align:top}"
    ".muted{color:#555}.points{font-size:12px}.dep{page-break-inside:avoid}"
    "@media print{body{margin:0}.dep{page-break-after:always}}"
)


def _when(ts: float | None, tr: Translator) -> str:
    return "" if ts is None else tr.datetime(ts)


def _coded(text: str, code: str | None) -> str:
    """A table cell with the fleet's word, the stored code kept in `data-code` (as the CSV and HQ have it)."""
    attr = f' data-code="{html.escape(code)}"' if code else ""
    return f"<td{attr}>{html.escape(text)}</td>"


def _facts(d: dict[str, Any], tr: Translator) -> list[tuple[str, str, str | None]]:
    """One deployment's facts for people: (label, the fleet's words, the stored code where there is one)."""
    _ = tr._
    track = tr.ngettext("{n} point", "{n} points", d["track_points"]) + ", " + _(
        "{metres} m", metres=tr.integer(round(d["track_length_m"])))
    outcome = _(term("k9_outcome", d["outcome"])) if d["outcome"] else ""
    return [
        (_("Deployment"), d["deployment_id"], None), (_("Dog"), d["dog"], None), (_("Handler"), d["handler"], None),
        (_("Type"), _(term("k9_type", d["type"])), d["type"]), (_("Case number"), d["case_number"] or "", None),
        (_("Trigger"), _(term("k9_trigger", d["trigger"])), d["trigger"]),
        (_("Started (UTC)"), _when(d["started_ts"], tr), None),
        (_("Ended (UTC)"), _when(d["ended_ts"], tr) if d["ended_ts"] is not None else _("still active"), None),
        (_("Duration"), _duration(d["duration_s"], tr), None),
        (_("Outcome"), outcome, d["outcome"]),
        (_("Notes at start"), d["notes"], None), (_("Notes at end"), d["end_notes"], None),
        (_("Track"), track, None), (_("Sent to HQ"), _("yes") if d["published"] else _("pending"), None),
    ]


def report_html(deployments: list[dict[str, Any]], since: float, until: float,
                tr: Translator | None = None) -> str:
    """A printable HTML report in `tr`'s language: one section per deployment with its track as a list and a drawing."""
    tr = tr or translator(DEFAULT_LANGUAGE)
    _, e = tr._, html.escape
    period = _("{start} to {end} UTC", start=tr.datetime(since), end=tr.datetime(until))
    count = tr.ngettext("{n} deployment", "{n} deployments", len(deployments))
    title, heading = _("K9 deployments"), _("K9 deployment report")
    out = [
        f"<!doctype html><html lang='{tr.language}'><head><meta charset='utf-8'>",
        f"<title>{e(title)} {e(period)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(heading)}</h1><p>{e(period)} · {e(count)}</p>",
    ]
    if deployments:
        heads = [_("Start (UTC)"), _("Dog"), _("Handler"), _("Type"), _("Case"), _("Duration"), _("Outcome")]
        out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in heads) + "</tr>")
        for d in deployments:
            outcome = _(term("k9_outcome", d["outcome"])) if d["outcome"] else _("active")
            cells = [(_when(d["started_ts"], tr), None), (d["dog"], None), (d["handler"], None),
                     (_(term("k9_type", d["type"])), d["type"]), (d["case_number"] or "", None),
                     (_duration(d["duration_s"], tr), None), (outcome, d["outcome"])]
            out.append("<tr>" + "".join(_coded(text, code) for text, code in cells) + "</tr>")
        out.append("</table>")
    for d in deployments:
        title = f"{d['dog']}: {_(term('k9_type', d['type']))} · {_when(d['started_ts'], tr)}"
        out.append(f"<section class='dep'><h2>{e(title)}</h2>")
        rows = (f"<tr><th>{e(k)}</th>{_coded(str(v), code)}</tr>" for k, v, code in _facts(d, tr))
        out.append("<table>" + "".join(rows) + "</table>")
        out.append(track_svg(d["track"], tr))
        if d["track"]:
            # Coordinates keep the decimal point in every language: they are typed into maps as they are.
            heads = ["#", _("Time (UTC)"), _("Latitude"), _("Longitude")]
            out.append("<table class='points'><tr>" + "".join(f"<th>{e(h)}</th>" for h in heads) + "</tr>")
            out.extend(f"<tr><td>{i}</td><td>{e(tr.datetime(p['t']))}</td><td>{p['lat']:.6f}</td>"
                       f"<td>{p['lon']:.6f}</td></tr>" for i, p in enumerate(d["track"], 1))
            out.append("</table>")
        out.append("</section>")
    out.append("</body></html>\n")
    return "\n".join(out)


def _cell(value: Any) -> Any:
    # A spreadsheet must not run an officer's note as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def write_csv(deployments: list[dict[str, Any]], path: Path) -> None:
    """One row per deployment."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for d in deployments:
            w.writerow({k: _cell(d.get(k)) for k in CSV_FIELDS})


def _line(d: dict[str, Any], tr: Translator) -> str:
    """One deployment on one line: codes and ISO times as stored (for grep and the CSV), words translated."""
    outcome = d["outcome"] or tr._("ACTIVE")
    return (f"{d['deployment_id']}  {d['started_at']}  {d['dog']} / {d['handler']}  {d['type']}"
            f"  {outcome}  {_duration(d['duration_s'], tr)}  "
            + tr.ngettext("track {n} point", "track {n} points", d["track_points"])
            + ("" if d["published"] else "  " + tr._("(HQ pending)")))


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="picar k9", description="K9 deployment log")
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("start", help="record the start of a deployment")
    s.add_argument("--dog", required=True)
    s.add_argument("--handler", required=True)
    s.add_argument("--type", required=True, help=", ".join(KINDS))
    s.add_argument("--case", default=None, help="case number")
    s.add_argument("--notes", default="")
    e = sub.add_parser("end", help="record the end of a deployment")
    e.add_argument("deployment_id")
    e.add_argument("--outcome", required=True, help=", ".join(OUTCOMES))
    e.add_argument("--notes", default="")
    sub.add_parser("list", help="active deployments")
    r = sub.add_parser("report", help="deployments in a period, as text, HTML and/or CSV")
    r.add_argument("--from", dest="since", required=True, help="YYYY-MM-DD (UTC) or ISO 8601 time")
    r.add_argument("--to", dest="until", required=True, help="YYYY-MM-DD (inclusive) or ISO 8601 time")
    r.add_argument("--html", type=Path, default=None, help="write a printable HTML report here")
    r.add_argument("--csv", type=Path, default=None, help="write a CSV export here")
    for p in (s, e, sub.choices["list"], r):
        p.add_argument("--db", type=Path, required=True, help="the K9 SQLite database")
        p.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE,
                       help="language of the report and messages (default %(default)s)")
    return ap


def k9_main(argv: list[str]) -> int:
    """Entry point for `picar k9 ...`; returns the exit status."""
    args = _parser().parse_args(argv)
    tr = translator(args.lang)
    if args.command != "start" and not args.db.exists():
        print("picar k9: " + tr._("no database at {path}", path=args.db), file=sys.stderr)
        return 2
    log = K9Log(args.db, publish=defer_publish, position=lambda: None)
    try:
        if args.command == "start":
            d = log.start(args.dog, args.handler, args.type, case_number=args.case, notes=args.notes)
            print(_line(d, tr))
        elif args.command == "end":
            print(_line(log.end(args.deployment_id, args.outcome, args.notes), tr))
        elif args.command == "list":
            for d in log.active():
                print(_line(d, tr))
        else:
            since = parse_when("--from", args.since, end_of_day=False)
            until = parse_when("--to", args.until, end_of_day=True)
            if until <= since:
                raise K9Error(N_("--to {until} is not after --from {since}"), until=args.until, since=args.since)
            deployments = log.report(since, until)
            if args.html:
                args.html.write_text(report_html(deployments, since, until, tr), encoding="utf-8")
            if args.csv:
                write_csv(deployments, args.csv)
            for d in deployments:
                print(_line(d, tr))
            print(tr.ngettext("{n} deployment", "{n} deployments", len(deployments)))
    except (K9Error, KeyError) as exc:
        print("picar k9: " + tr.message(message_of(exc)), file=sys.stderr)
        return 2
    finally:
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(k9_main(sys.argv[1:]))

"""Decoding one NMEA field: pynmea2 returns the raw string when its own conversion fails, so each value is
checked here and a bad one raises FieldError naming the sentence and field.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from datetime import time as dtime

import pynmea2

LAT_RE = re.compile(r"(\d{2})(\d{2}(?:\.\d+)?)")
LON_RE = re.compile(r"(\d{3})(\d{2}(?:\.\d+)?)")
# GPS week rollover: the GPS week count is 10 bits, so a receiver whose firmware misjudges the
# 1024-week era reports a date 1024 weeks (19.6 years) too early (many did after 6 April 2019, giving
# August 1999). No PiCAR ran before GPS_DATE_FLOOR, so an earlier date gets 1024 weeks added until it
# is not earlier. Right until GPS_DATE_FLOOR + 1024 weeks (August 2039): move the floor on before then.
GPS_DATE_FLOOR = date(2020, 1, 1)
GPS_ROLLOVER = timedelta(weeks=1024)
DDMMYY_RE = re.compile(r"(\d{2})(\d{2})(\d{2})")


class FieldError(ValueError):
    """A sentence whose checksum is right but whose field holds a value that makes no sense."""





def field_raw(msg: pynmea2.TalkerSentence, name: str) -> str:
    i = type(msg).name_to_idx[name]
    return msg.data[i].strip() if i < len(msg.data) else ""


def field_time(msg: pynmea2.TalkerSentence) -> dtime | None:
    raw = field_raw(msg, "timestamp")
    if not raw:
        return None
    value = msg.timestamp
    if not isinstance(value, dtime):
        raise FieldError(f"{msg.sentence_type} timestamp {raw!r} is not hhmmss[.ss]")
    return value


def field_float(msg: pynmea2.TalkerSentence, name: str, lo: float, hi: float) -> float | None:
    raw = field_raw(msg, name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise FieldError(f"{msg.sentence_type} {name} {raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise FieldError(f"{msg.sentence_type} {name} {raw!r} outside {lo}..{hi}")
    return value


def field_int(msg: pynmea2.TalkerSentence, name: str, lo: int, hi: int) -> int | None:
    value = field_float(msg, name, lo, hi)
    if value is None:
        return None
    if value != int(value):
        raise FieldError(f"{msg.sentence_type} {name} {field_raw(msg, name)!r} is not a whole number")
    return int(value)


def field_coord(msg: pynmea2.TalkerSentence, key: str, hemis: str, limit: float) -> float | None:
    raw, hemi = field_raw(msg, key), field_raw(msg, key + "_dir").upper()
    if not raw and not hemi:
        return None
    m = (LAT_RE if key == "lat" else LON_RE).fullmatch(raw)
    if m is None or hemi not in hemis:
        raise FieldError(f"{msg.sentence_type} {key} {raw!r} {hemi!r} is not d(d)dmm.mmmm with {hemis}")
    degrees, minutes = int(m.group(1)), float(m.group(2))
    value = degrees + minutes / 60
    if minutes >= 60 or value > limit:
        raise FieldError(f"{msg.sentence_type} {key} {raw!r} is out of range")
    return -value if hemi == hemis[1] else value


def field_position(msg: pynmea2.TalkerSentence) -> tuple[float, float] | None:
    lat, lon = field_coord(msg, "lat", "NS", 90), field_coord(msg, "lon", "EW", 180)
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None  # exactly 0,0 is a receiver's empty position (zeros, even flagged valid), not a place
    return lat, lon


def gps_date(day: date) -> date:
    """A receiver's date with GPS week rollovers undone (see GPS_DATE_FLOOR)."""
    while day < GPS_DATE_FLOOR:
        day += GPS_ROLLOVER
    return day


def rmc_date(msg: pynmea2.TalkerSentence) -> date | None:
    # RMC's year has two digits. They are read as 2000-2099, not with Python's %y pivot (69-99 as 19xx):
    # no PiCAR ran in the 1900s, and a receiver saying 99 means 2099 or a week rollover, which
    # gps_date then undoes. Not pivoted on the Pi's clock, which may be unset (no RTC, no network).
    raw = field_raw(msg, "datestamp")
    if not raw:
        return None
    m = DDMMYY_RE.fullmatch(raw)
    try:
        if m is None:
            raise ValueError
        return gps_date(date(2000 + int(m.group(3)), int(m.group(2)), int(m.group(1))))
    except ValueError:
        raise FieldError(f"RMC datestamp {raw!r} is not ddmmyy") from None


def field_status(msg: pynmea2.TalkerSentence, name: str) -> bool:
    raw = field_raw(msg, name).upper()
    if raw not in ("A", "V"):
        raise FieldError(f"{msg.sentence_type} {name} {raw!r} is not A or V")
    return raw == "A"


def zda_date(msg: pynmea2.TalkerSentence) -> date | None:
    day, month, year = (field_int(msg, name, 0, 9999) for name in ("day", "month", "year"))
    if day is None or month is None or year is None:
        return None
    try:
        return gps_date(date(year, month, day))
    except ValueError:
        raise FieldError(f"ZDA date {day}.{month}.{year} does not exist") from None

"""The basemap that ships with HQ (picar/hq/basemap, Natural Earth, public domain), labelled in the operator's
language: each feature gets a `label` from Babel's CLDR data, countries by their ISO code, capitals by the
time-zone city names CLDR translates; a name CLDR does not know keeps Natural Earth's English."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from babel import Locale
from babel.core import get_global

from picar.i18n import Language, translator

BASEMAP = Path(__file__).resolve().parents[1] / "basemap"
FILES = ("countries.geojson", "capitals.geojson")
_UNKNOWN_CHAR = re.compile(r"[?\ufffd]")  # a letter lost in Natural Earth's encoding


@functools.cache
def labelled(name: str, lang: Language) -> bytes:
    """The basemap file `name` (one of FILES) with a `label` in `lang` on every feature, as JSON bytes."""
    if name not in FILES:
        raise KeyError(name)
    data = json.loads((BASEMAP / name).read_text("utf-8"))
    locale = translator(lang).locale
    cities = _city_names(locale)
    for feature in data.get("features", []):
        props = feature.setdefault("properties", {})
        english = str(props.get("name") or "")
        if name == "countries.geojson":
            code = _alpha2(str(props.get("iso_a3") or ""))
            props["label"] = locale.territories.get(code, english) if code else english
        else:
            props["label"] = _city(english, cities)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _alpha2(alpha3: str) -> str | None:
    aliases = get_global("territory_aliases").get(alpha3.upper())
    return aliases[0] if aliases else None


@functools.cache
def _city_names(locale: Locale) -> dict[str, str]:
    """English city name -> the locale's, for every city CLDR names in a time zone."""
    english = Locale.parse("en")
    names: dict[str, str] = {}
    for zone in get_global("zone_territories"):
        default = zone.rsplit("/", 1)[-1].replace("_", " ")
        en = english.time_zones.get(zone, {}).get("city") or default
        names[en] = locale.time_zones.get(zone, {}).get("city") or en
    return names


def _city(english: str, cities: dict[str, str]) -> str:
    if english in cities:
        return cities[english]
    if _UNKNOWN_CHAR.search(english):  # "Chi?in?u": match CLDR's "Chișinău" letter for letter
        pattern = re.compile("".join("." if _UNKNOWN_CHAR.match(c) else re.escape(c) for c in english))
        for en, local in cities.items():
            if pattern.fullmatch(en):
                return local
    return english

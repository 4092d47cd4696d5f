"""The languages PiCAR speaks, the CLDR locale each formats with, and how a page or a car picks one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

Language = Literal["en", "ro", "ru"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
DEFAULT_LANGUAGE: Language = "en"

# The CLDR locale whose dates, times and numbers a language uses. English is written the European way
# (24-hour clock, day before month), as the rest of the fleet's paperwork is.
LOCALES: dict[Language, str] = {"en": "en_GB", "ro": "ro", "ru": "ru"}

# A car whose plates are Moldovan or Romanian is crewed by officers who work in Romanian.
REGION_LANGUAGE: dict[str, Language] = {"md": "ro", "ro": "ro"}

# The cookie a page keeps the officer's choice in (read by the server for its own answers, e.g. errors).
LANGUAGE_COOKIE = "picar_lang"


def parse_language(value: object) -> Language | None:
    """`value` as one of LANGUAGES (case and a region suffix ignored: "RO", "ru-MD"), else None."""
    if not isinstance(value, str):
        return None
    code = value.strip().lower().replace("_", "-").split("-")[0]
    for lang in LANGUAGES:
        if code == lang:
            return lang
    return None


def language_for_regions(regions: Iterable[str]) -> Language:
    """The default language of a car that reads plates of these regions: Romanian for Moldova or Romania."""
    for region in regions:
        if region in REGION_LANGUAGE:
            return REGION_LANGUAGE[region]
    return DEFAULT_LANGUAGE


def cookie_language(cookie_header: str | None) -> Language | None:
    """The language the officer chose on the page, from a Cookie header; None when there is none or it is odd."""
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == LANGUAGE_COOKIE:
            return parse_language(value)
    return None

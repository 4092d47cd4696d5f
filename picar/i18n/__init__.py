"""Languages: the gettext catalogues of what an officer (or an HQ operator) reads, and locale formatting.

One gettext domain, `picar`: picar/i18n/locale/<lang>/LC_MESSAGES/picar.po, compiled to .mo beside it
(both committed; `scripts/i18n extract|update|compile`, README "Languages"). msgids are English.
Python marks text with `_()`/`ngettext()` on a Translator, or `N_()` where it is translated later
(Message, TranslatableError); pages mark their HTML with `data-i18n` and use `_()`/`ngettext()` from
picar/i18n/static/i18n.js, fed by `page.page_catalogue`. Dates, times and numbers go through Babel's
CLDR data for the language's locale. Shared by the in-car page, `picar k9 report` and the HQ console.
"""

from pathlib import Path

from picar.i18n.catalogue import Translator, translator
from picar.i18n.languages import (
    DEFAULT_LANGUAGE,
    LANGUAGE_COOKIE,
    LANGUAGES,
    Language,
    cookie_language,
    language_for_regions,
    parse_language,
)
from picar.i18n.message import N_, Message, TranslatableError, message_of

STATIC_DIR = Path(__file__).with_name("static")  # i18n.js, for any page that speaks the fleet's languages

__all__ = [
    "DEFAULT_LANGUAGE", "LANGUAGES", "LANGUAGE_COOKIE", "STATIC_DIR", "Language", "Message", "N_",
    "TranslatableError", "Translator", "cookie_language", "language_for_regions", "message_of",
    "parse_language", "translator",
]

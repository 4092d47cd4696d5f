"""The compiled catalogues (picar/i18n/locale/<lang>/LC_MESSAGES/picar.mo) and a Translator per language.

A Translator turns msgids and Messages into the language's text and formats dates, times and numbers with
Babel's CLDR data for the language's locale (languages.LOCALES).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations
from babel.units import format_unit

from picar.i18n.languages import DEFAULT_LANGUAGE, LANGUAGES, LOCALES, Language, parse_language
from picar.i18n.message import Message

DOMAIN = "picar"
LOCALE_DIR = Path(__file__).with_name("locale")


def po_path(lang: Language) -> Path:
    """The language's source catalogue."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: Language) -> NullTranslations:
    """The language's compiled catalogue; a missing .mo is an error (the package ships every one)."""
    mo = po_path(lang).with_suffix(".mo")
    if not mo.is_file():
        raise FileNotFoundError(f"no compiled catalogue {mo} (run scripts/i18n compile)")
    return Translations.load(str(LOCALE_DIR), [lang], DOMAIN)


class Translator:
    """One language's text and formats. Placeholders are `{name}`: `_("LIST {version}", version=7)`."""

    def __init__(self, lang: Language) -> None:
        self.language: Language = lang
        self.locale = Locale.parse(LOCALES[lang])
        self._t = translations(lang)

    def _(self, msgid: str, **params: Any) -> str:
        text = self._t.gettext(msgid)
        return text.format(**params) if params else text

    gettext = _

    def ngettext(self, singular: str, plural: str, n: int, **params: Any) -> str:
        """The form for `n` (also available to the text as {n}, written for the locale)."""
        return self.plural_form(singular, plural, n).format(**{"n": self.integer(n), **params})

    def plural_form(self, singular: str, plural: str, n: int) -> str:
        """The translated form for `n`, placeholders not yet filled."""
        return self._t.ngettext(singular, plural, n)

    def message(self, message: Message | str) -> str:
        """A Message in this language; plain text (already final) as it is."""
        return message.render(self._t.gettext) if isinstance(message, Message) else message

    # numbers

    def integer(self, n: int) -> str:
        return format_decimal(n, format="#,##0", locale=self.locale)

    def number(self, x: float, digits: int = 1) -> str:
        """`x` with exactly `digits` decimals, the locale's decimal sign and grouping."""
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        return format_decimal(x, format=pattern, locale=self.locale, decimal_quantization=True)

    def percent(self, fraction: float) -> str:
        return format_percent(fraction, locale=self.locale)

    def celsius(self, value: float) -> str:
        return format_unit(round(value, 1), "temperature-celsius", length="short", format="#,##0.0",
                           locale=self.locale)

    # moments (epoch seconds; UTC unless a zone is given)

    def datetime(self, ts: float, width: str = "medium", tz: tzinfo = UTC) -> str:
        return format_datetime(datetime.fromtimestamp(ts, tz), width, tzinfo=tz, locale=self.locale)

    def date(self, ts: float, width: str = "medium", tz: tzinfo = UTC) -> str:
        return format_date(datetime.fromtimestamp(ts, tz).date(), width, locale=self.locale)

    def time(self, ts: float, tz: tzinfo = UTC) -> str:
        """Hours, minutes and seconds, the locale's way (24-hour in every language shipped)."""
        pattern = self.locale.datetime_skeletons["Hms"].pattern
        return format_time(datetime.fromtimestamp(ts, tz), pattern, tzinfo=tz, locale=self.locale)


@functools.cache
def translator(lang: str | None = None) -> Translator:
    """The Translator for `lang` (any spelling parse_language takes; unknown or None: the default)."""
    return Translator(parse_language(lang) or DEFAULT_LANGUAGE)


def all_translators() -> list[Translator]:
    return [translator(lang) for lang in LANGUAGES]

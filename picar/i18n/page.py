"""What a page's script needs to speak a language: its catalogue, plural forms, the fleet's terms and the
locale's number and time formats, all from the compiled catalogue and Babel's CLDR data.

Served as JSON (the station's `/api/i18n`); picar/i18n/static/i18n.js applies it. Plural forms are given
by CLDR category ("one", "few", "many", "other"), which the browser's Intl.PluralRules picks for a number:
the catalogue's own Plural-Forms rule is mapped onto those categories here, once, with Babel.
"""

from __future__ import annotations

import functools
import gettext
from typing import Any

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from babel.numbers import get_decimal_symbol, get_group_symbol, get_minus_sign_symbol

from picar.i18n.catalogue import po_path, translator
from picar.i18n.languages import LANGUAGES, LOCALES, Language
from picar.i18n.terms import TERMS

PLURAL_SAMPLES = range(0, 1000)  # integers: the page counts records, hits and deployments


def compiled_catalogue(lang: Language) -> Catalog:
    """The language's .mo as a Babel Catalog."""
    with po_path(lang).with_suffix(".mo").open("rb") as f:
        return read_mo(f)


def plural_categories(lang: Language, catalog: Catalog) -> dict[str, int]:
    """CLDR plural category -> the index of the catalogue's plural form used for it."""
    rule = Locale.parse(LOCALES[lang]).plural_form
    index = gettext.c2py(catalog.plural_expr)
    found: dict[str, int] = {}
    for n in PLURAL_SAMPLES:
        category, i = rule(n), index(n)
        if found.setdefault(category, i) != i:
            raise ValueError(f"{lang}: the catalogue's Plural-Forms ({catalog.plural_expr}) splits CLDR "
                             f"category {category!r} (n={n} takes form {i}, an earlier n form {found[category]})")
    found.setdefault("other", catalog.num_plurals - 1)  # fractions, which the page never counts
    return found


def affixes(formatted: str, number: str) -> list[str]:
    """What a locale writes before and after `number` in `formatted` (e.g. the percent sign)."""
    before, found, after = formatted.partition(number)
    if not found:
        raise ValueError(f"{number!r} not in {formatted!r}")
    return [before, after]


def formats(lang: Language) -> dict[str, Any]:
    """The locale's number symbols, percent and degree affixes and time pattern, for the page's formatter."""
    tr = translator(lang)
    locale = tr.locale
    return {
        "locale": LOCALES[lang],
        "decimal": get_decimal_symbol(locale),
        "group": get_group_symbol(locale),
        "minus": get_minus_sign_symbol(locale),
        "percent": affixes(tr.percent(0.42), "42"),
        "celsius": affixes(tr.celsius(12.5), tr.number(12.5, 1)),
        "time": locale.datetime_skeletons["Hms"].pattern,
    }


def endonyms() -> dict[str, str]:
    """Each language's name in itself: what a language switch shows, whatever the page's language."""
    names: dict[str, str] = {}
    for lang in LANGUAGES:
        name = Locale.parse(LOCALES[lang]).get_language_name(lang) or lang
        names[lang] = name[:1].upper() + name[1:]
    return names


@functools.cache
def page_catalogue(lang: Language) -> dict[str, Any]:
    """Everything a page's script needs for `lang`, ready for JSON."""
    catalog = compiled_catalogue(lang)
    categories = plural_categories(lang, catalog)
    messages: dict[str, str] = {}
    plurals: dict[str, dict[str, str]] = {}
    for m in catalog:
        if not m.id:
            continue  # the header
        if isinstance(m.id, str):
            messages[m.id] = str(m.string)
        else:
            forms = [str(f) for f in m.string] if isinstance(m.string, tuple | list) else [str(m.string)]
            plurals[str(m.id[0])] = {cat: forms[min(i, len(forms) - 1)] for cat, i in categories.items()}
    tr = translator(lang)
    return {
        "language": lang,
        "languages": endonyms(),
        "messages": messages,
        "plurals": plurals,
        "terms": {group: {code: tr._(msgid) for code, msgid in table.items()} for group, table in TERMS.items()},
        "formats": formats(lang),
    }

"""Finds English left in text that should be in another language, by the catalogue's own msgids.

For every message whose translation differs from its English msgid, each literal stretch of the msgid
(the parts between `{placeholders}`, of at least two letters) is searched as a whole word, ignoring case, in
the text shown. A stretch that the language's own catalogue uses (as "GPS" or "OK", or Romanian "camera")
is a word of that language too and is not searched. A hit is a text the page or report shows in English
although the catalogue has it in the language under test.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from babel.messages.pofile import read_po

from picar.i18n.catalogue import po_path
from picar.i18n.languages import Language

PLACEHOLDER = re.compile(r"\{[^{}]*\}")
EDGE = " \t\n.,:;()?!·–-"


@dataclass(frozen=True)
class Leftover:
    text: str      # what was shown
    english: str   # the English stretch found in it
    msgid: str     # the message it belongs to


def _word(stretch: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(stretch) + r"(?!\w)", re.IGNORECASE)


def _stretches(msgid: str, language_text: str) -> list[str]:
    out = []
    for part in PLACEHOLDER.split(msgid):
        part = part.strip(EDGE)
        if sum(c.isalpha() for c in part) < 2:
            continue
        if _word(part).search(language_text):
            continue  # the language writes it too (a name, an abbreviation, a shared word)
        out.append(part)
    return out


@functools.cache
def english_patterns(lang: Language) -> list[tuple[re.Pattern[str], str, str]]:
    """(pattern, English stretch, msgid) for every translated message of `lang`'s catalogue."""
    with po_path(lang).open("rb") as f:
        catalog = read_po(f)
    strings_of = [(m, (m.string,) if isinstance(m.string, str) else tuple(m.string)) for m in catalog if m.id]
    language_text = "\n".join(t for _, strings in strings_of for t in strings)
    patterns = []
    for m, strings in strings_of:
        ids = (m.id,) if isinstance(m.id, str) else tuple(m.id)
        if set(ids) <= set(strings):
            continue  # the same in both languages
        for msgid in ids:
            for stretch in _stretches(msgid, language_text):
                patterns.append((_word(stretch), stretch, ids[0]))
    return patterns


def english_left(texts: Iterable[str], lang: Language) -> list[Leftover]:
    """Every English stretch of the catalogue found in `texts`."""
    found = []
    for text in texts:
        for pattern, stretch, msgid in english_patterns(lang):
            if pattern.search(text):
                found.append(Leftover(text, stretch, msgid))
    return found

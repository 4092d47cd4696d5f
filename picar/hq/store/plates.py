"""How HQ searches plates: the look-alike fold stored beside every plate, and an operator's pattern as SQL.

The fold is the watchlist matcher's (picar.watchlist.matching.Alphabet over DEFAULT_CONFUSABLES: 0/O/D/Q,
1/I, 2/Z, 5/S, 8/B, 6/G), so a plate the car would call a look-alike hit is one HQ finds by its folded
form. Changing those classes changes every stored key: a migration must then recompute `plate_key`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from picar.watchlist.entries import DEFAULT_CONFUSABLES
from picar.watchlist.matching import Alphabet

_FOLD = Alphabet(DEFAULT_CONFUSABLES).canon
_SEPARATORS = re.compile(r"[\s\-.]+")
_PATTERN = re.compile(r"^[A-Z0-9*?]{1,16}$")
MAX_PATTERN_LEN = 16


def plate_key(text: str) -> str:
    """``text`` with every look-alike replaced by its class's first character (``B0S1`` -> ``8051``)."""
    return text.upper().translate(_FOLD)


@dataclass(frozen=True)
class PlatePattern:
    """An operator's plate search: letters and digits, ``*`` for any run, ``?`` for one character.

    ``column`` is the column to compare, ``op`` ``=`` or ``LIKE``, ``value`` its argument; a pattern whose
    only wildcard is a final ``*`` is a prefix search that the btree indexes serve.
    """

    text: str
    confusable: bool
    column: str
    op: str
    value: str

    @property
    def prefix(self) -> bool:
        return self.op == "LIKE" and self.value.endswith("%") and not any(c in self.value[:-1] for c in "%_")


def plate_pattern(text: str, confusable: bool = False) -> PlatePattern:
    """Parse an operator's plate search; ValueError names what is wrong (for the search form)."""
    cleaned = _SEPARATORS.sub("", text.strip().upper())
    if not _PATTERN.match(cleaned):
        raise ValueError(f"plate {text!r}: use 1-{MAX_PATTERN_LEN} letters and digits, with * for any run "
                         "of characters and ? for one")
    if not cleaned.strip("*?"):
        raise ValueError(f"plate {text!r}: give at least one letter or digit")
    folded = plate_key(cleaned) if confusable else cleaned
    column = "plate_key" if confusable else "plate"
    if "*" not in folded and "?" not in folded:
        return PlatePattern(cleaned, confusable, column, "=", folded)
    like = folded.replace("*", "%").replace("?", "_")  # no LIKE metacharacter survives the check above
    return PlatePattern(cleaned, confusable, column, "LIKE", like)

"""The decode's priors: how likely each character, series and free-text shape is, fitted to labelled texts.

Stored as data beside the OCR model (`models/plate_ocr.grammar.json`, written by
`python -m picar.tools.grammar_priors`), with the sets that fitted them and the command. Without the
file the decode uses `GrammarPriors.uninformed()`: every character alike, series by their `share`.
"""

from __future__ import annotations

import json
import math
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picar.vision.grammar_data import GRAMMARS

CLASSES = ("L", "D")  # the free-text branch follows letters and digits, one step back
DEFAULT_FREE_SHARE = 0.05  # P(a plate fits none of the region's series) where no labels say otherwise
DEFAULT_SCALE = 0.5
DEFAULT_CHAR_BONUS = 1.5


class PriorsError(ValueError):
    """A priors file that is missing a field or holds a value out of range; the message names it."""


def char_class(c: str) -> str:
    return "D" if c.isdigit() else "L"


@dataclass(frozen=True)
class GrammarPriors:
    """Everything the automaton weighs paths by, besides the model's own frame probabilities."""

    scale: float  # how much the prior counts against the model's log probabilities (fitted)
    char_bonus: float  # added for every character read: the model's own scores already weigh length (fitted)
    chars: dict[str, float]  # P(character) over A-Z0-9 in plate texts
    free_start: dict[str, float]  # free text: P(first class), classes L and D
    free_next: dict[str, dict[str, float]]  # free text: P(next class or "end" | class)
    free_share: dict[str, float]  # P(a text fits no series) per region name; key "default" for the rest
    series: dict[str, float]  # P(series | its grammar); a grammar's series sum to 1
    fitted_on: tuple[str, ...] = ()
    command: str = ""
    notes: dict[str, Any] = field(default_factory=dict)
    # P(character) in the labelled plates of one region (US plates write a round glyph as 0, European ones
    # have letter Os); a camera reading only regions listed here weighs characters by them, others by `chars`
    region_chars: dict[str, dict[str, float]] = field(default_factory=dict)

    def chars_for(self, regions: tuple[str, ...]) -> dict[str, float]:
        """The character frequencies for a camera whose region list names `regions`: the mean of their own
        where every one has labelled plates, else those of all plates."""
        own = [self.region_chars[r] for r in regions if r in self.region_chars]
        if not regions or len(own) != len(regions):
            return self.chars
        return {c: sum(d.get(c, 1e-6) for d in own) / len(own) for c in self.chars}

    def free_share_of(self, regions: tuple[str, ...]) -> float:
        """P(free text) for a camera whose region list names `regions`: the mean of their shares."""
        shares = [self.free_share.get(r, self.free_share.get("default", DEFAULT_FREE_SHARE)) for r in regions]
        return sum(shares) / len(shares)

    @classmethod
    def uninformed(cls) -> GrammarPriors:
        """Flat priors: characters alike, series by their `share`, free text 5% of plates."""
        chars = {c: 1 / 36 for c in string.ascii_uppercase + string.digits}
        series: dict[str, float] = {}
        for g in GRAMMARS.values():
            total = sum(s.share for s in g.series)
            series.update({s.name: s.share / total for s in g.series})
        step = {"L": 0.45, "D": 0.45, "end": 0.1}
        return cls(DEFAULT_SCALE, DEFAULT_CHAR_BONUS, chars, {"L": 0.5, "D": 0.5}, {"L": dict(step), "D": dict(step)},
                   {"default": DEFAULT_FREE_SHARE}, series)

    def to_json(self) -> dict[str, Any]:
        return {"scale": self.scale, "char_bonus": self.char_bonus, "chars": self.chars, "free_start": self.free_start,
                "free_next": self.free_next, "free_share": self.free_share, "series": self.series,
                "fitted_on": list(self.fitted_on), "command": self.command, "notes": self.notes,
                "region_chars": self.region_chars}

    @classmethod
    def from_json(cls, data: Any, where: str) -> GrammarPriors:
        """Priors from their JSON form; PriorsError names the file and field at fault."""
        if not isinstance(data, dict):
            raise PriorsError(f"{where}: expected a JSON object")

        def probs(value: Any, name: str, keys: tuple[str, ...] | None = None) -> dict[str, float]:
            if not isinstance(value, dict) or not value:
                raise PriorsError(f"{where}: field {name!r} must be a non-empty object of probabilities")
            out = {}
            for k, v in value.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                    raise PriorsError(f"{where}: {name}[{k!r}] must be a probability above 0, got {v!r}")
                out[str(k)] = float(v)
            if keys is not None and set(out) != set(keys):
                raise PriorsError(f"{where}: field {name!r} must have exactly the keys {list(keys)}")
            return out

        for key in ("scale", "chars", "free_start", "free_next", "free_share", "series"):
            if key not in data:
                raise PriorsError(f"{where}: missing field {key!r}")
        scale = data["scale"]
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 10:
            raise PriorsError(f"{where}: field 'scale' must be a number from 0 to 10, got {scale!r}")
        bonus = data.get("char_bonus", 0.0)
        if isinstance(bonus, bool) or not isinstance(bonus, (int, float)) or not -10 <= bonus <= 10:
            raise PriorsError(f"{where}: field 'char_bonus' must be a number from -10 to 10, got {bonus!r}")
        region_chars = data.get("region_chars", {})
        if not isinstance(region_chars, dict):
            raise PriorsError(f"{where}: field 'region_chars' must be an object of region -> probabilities")
        nxt = data["free_next"]
        if not isinstance(nxt, dict) or set(nxt) != set(CLASSES):
            raise PriorsError(f"{where}: field 'free_next' must have exactly the keys {list(CLASSES)}")
        return cls(float(scale), float(bonus), probs(data["chars"], "chars"),
                   probs(data["free_start"], "free_start", CLASSES),
                   {k: probs(nxt[k], f"free_next.{k}", (*CLASSES, "end")) for k in CLASSES},
                   probs(data["free_share"], "free_share"), probs(data["series"], "series"),
                   tuple(str(s) for s in data.get("fitted_on", [])), str(data.get("command", "")),
                   dict(data.get("notes", {})),
                   {str(r): probs(v, f"region_chars.{r}") for r, v in region_chars.items()})

    def char_logp(self, c: str, allowed: frozenset[str] | str, chars: dict[str, float] | None = None) -> float:
        """log P(c | the character is one of `allowed`), by the fitted character frequencies (`chars`, by
        default those of all plates)."""
        freq = self.chars if chars is None else chars
        total = math.fsum(freq.get(a, 1e-6) for a in allowed)  # exact: the same whatever the set's order
        return math.log(freq.get(c, 1e-6) / total)


def priors_path(model_path: Path) -> Path:
    """Where the priors of an OCR model live: `<model>.grammar.json` beside it."""
    return model_path.with_suffix(".grammar.json")


def load_priors(model_path: Path) -> GrammarPriors:
    """The priors stored beside `model_path`, or the uninformed ones if there is no such file."""
    path = priors_path(model_path)
    if not path.is_file():
        return GrammarPriors.uninformed()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PriorsError(f"{path}: cannot read: {exc}") from exc
    return GrammarPriors.from_json(data, str(path))

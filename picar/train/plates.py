"""Synthetic licence plates rendered with real TTF fonts, and a degradation chain that makes them look real.

Used two ways: the OCR trainer reads the plate crops, the detector trainer pastes them into scenes.
Every plate is drawn at a nominal size, with its registration, the separators and the furniture that
must not be read (EU band, state names, slogans, city strips, seals, stacked small characters).
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

LETTERS = string.ascii_uppercase
DIGITS = string.digits
ALPHANUM = DIGITS + LETTERS

FONT_ROOT = Path("/usr/share/fonts/truetype")
# Bold, plain sans faces look most like plate typefaces (DIN, FE-Schrift, Mandatory); mono and
# condensed faces widen the spread of character shapes the OCR sees.
PLATE_FONTS = (
    "dejavu/DejaVuSansCondensed-Bold.ttf",
    "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSansMono-Bold.ttf",
    "dejavu/DejaVuSansCondensed.ttf",
    "liberation/LiberationSansNarrow-Bold.ttf",
    "liberation/LiberationSans-Bold.ttf",
    "liberation/LiberationMono-Bold.ttf",
    "liberation/LiberationSansNarrow-Regular.ttf",
    "freefont/FreeSansBold.ttf",
    "freefont/FreeMonoBold.ttf",
    "freefont/FreeSans.ttf",
    "noto/NotoSans-Bold.ttf",
    "noto/NotoSansDisplay-Bold.ttf",
    "noto/NotoSans-Regular.ttf",
)
# Narrow DIN 1451-style faces, as on German, Brazilian and many other real plates: their O and 0, D and
# Q differ by little more than the plate's format tells. Training only (`ocr_cache --plate-like-fonts`),
# from the Debian packages fonts-opendin and fonts-roboto-unhinted; the demo and tests never use them.
PLATE_LIKE_FONTS = (
    "opendin/OSP-DIN.ttf",
    "roboto/unhinted/RobotoCondensed-Bold.ttf",
    "roboto/unhinted/RobotoCondensed-Medium.ttf",
)
DECOR_FONTS = (
    "dejavu/DejaVuSerif-Bold.ttf",
    "dejavu/DejaVuSerif-Italic.ttf",
    "dejavu/DejaVuSans.ttf",
    "liberation/LiberationSerif-BoldItalic.ttf",
    "liberation/LiberationSerif-Regular.ttf",
    "liberation/LiberationSans-Italic.ttf",
    "freefont/FreeSerifBoldItalic.ttf",
    "freefont/FreeSerif.ttf",
    "noto/NotoSerif-Bold.ttf",
    "noto/NotoSerif-Italic.ttf",
)

# The Debian package that ships each face under FONT_ROOT. scripts/system-packages.txt installs them all
# (tests/test_release.py keeps the two in step), and a missing face is reported with its package.
FONT_PACKAGES: dict[str, str] = {
    **{f"dejavu/{name}.ttf": "fonts-dejavu-core"
       for name in ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono-Bold", "DejaVuSerif-Bold")},
    **{f"dejavu/{name}.ttf": "fonts-dejavu-extra"
       for name in ("DejaVuSansCondensed", "DejaVuSansCondensed-Bold", "DejaVuSerif-Italic")},
    **{f: "fonts-liberation" for f in PLATE_FONTS + DECOR_FONTS if f.startswith("liberation/")},
    **{f: "fonts-freefont-ttf" for f in PLATE_FONTS + DECOR_FONTS if f.startswith("freefont/")},
    **{f: "fonts-noto-core" for f in PLATE_FONTS + DECOR_FONTS if f.startswith("noto/")},
    **{f: "fonts-opendin" for f in PLATE_LIKE_FONTS if f.startswith("opendin/")},
    **{f: "fonts-roboto-unhinted" for f in PLATE_LIKE_FONTS if f.startswith("roboto/")},
}
# Where a face not in FONT_PACKAGES would come from, by its folder: for the error message only.
_FOLDER_PACKAGES = {"dejavu/": "fonts-dejavu-core or fonts-dejavu-extra", "liberation/": "fonts-liberation",
                    "freefont/": "fonts-freefont-ttf", "noto/": "fonts-noto-core", "opendin/": "fonts-opendin",
                    "roboto/": "fonts-roboto-unhinted"}

STYLES: tuple[str, ...] = (
    "md",  # Moldova: ABC 123, EU-like band "MD"
    "ro",  # Romania: B 123 ABC / CJ 07 XYZ
    "ro_temp",  # Romania temporary: county + 6 digits, red characters
    "ua",  # Ukraine: AA 1234 BB, flag band
    "pl",  # Poland: WX 12345 / KR 1A234
    "de",  # Germany: B AB 1234 with seals
    "eu",  # other EU one-row formats with a blue band
    "eu_square",  # EU two-row (square rear plates)
    "moto",  # small two-row motorbike plates
    "us",  # US 2:1 with state name and slogan
    "us_frame",  # the same in a dealer frame with bolts (plates_frames.py)
    "md_series",  # Moldova, every series of the plate grammar (plates_grammar.py)
    "tn_series",  # Transnistria (plates_grammar.py)
    "ro_series",  # Romania, every series of the plate grammar (plates_grammar.py)
    "ua_series",  # Ukraine, every series of the plate grammar (plates_grammar.py)
    "br_old",  # Brazil grey ABC-1234 with city strip
    "br_old_red",  # Brazil commercial and taxi: the same in white on red (light on dark in gray)
    "br_mercosur",  # Brazil Mercosur ABC1D23 with blue band
    "ar_mercosur",  # Argentina Mercosur AB 123 CD
    "ar_old",  # Argentina black LLL NNN
)

US_STATES = (
    "ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "California", "COLORADO", "CONNECTICUT", "DELAWARE",
    "Florida", "GEORGIA", "HAWAII", "IDAHO", "ILLINOIS", "INDIANA", "IOWA", "KANSAS", "KENTUCKY",
    "LOUISIANA", "MAINE", "MARYLAND", "MASSACHUSETTS", "MICHIGAN", "MINNESOTA", "MISSISSIPPI",
    "MISSOURI", "MONTANA", "NEBRASKA", "NEVADA", "NEW HAMPSHIRE", "NEW JERSEY", "NEW MEXICO",
    "NEW YORK", "NORTH CAROLINA", "NORTH DAKOTA", "OHIO", "OKLAHOMA", "OREGON", "PENNSYLVANIA",
    "RHODE ISLAND", "SOUTH CAROLINA", "SOUTH DAKOTA", "TENNESSEE", "TEXAS", "UTAH", "VERMONT",
    "VIRGINIA", "WASHINGTON", "WEST VIRGINIA", "WISCONSIN", "WYOMING", "Puerto Rico", "D.C.",
)
US_SLOGANS = (
    "Sweet Home Alabama", "The Last Frontier", "Grand Canyon State", "The Natural State", "dmv.ca.gov",
    "Colorful Colorado", "Constitution State", "The First State", "Sunshine State", "Peach State",
    "Aloha State", "Famous Potatoes", "Land of Lincoln", "Crossroads of America", "Fields of Opportunity",
    "In God We Trust", "Bluegrass State", "Sportsman's Paradise", "Vacationland", "Great Lakes",
    "10,000 Lakes", "Birthplace of America", "Show Me State", "Big Sky Country", "Battle Born",
    "Live Free or Die", "Garden State", "Land of Enchantment", "Empire State", "First in Flight",
    "Peace Garden State", "Birthplace of Aviation", "Native America", "Pacific Wonderland",
    "visitPA.com", "Ocean State", "Great Faces Great Places", "Volunteer State", "Lone Star State",
    "Life Elevated", "Green Mountains", "Virginia is for Lovers", "Evergreen State", "Wild Wonderful",
    "America's Dairyland", "Like No Place on Earth", "JUN 2027", "COUNTY", "Taxation without Representation",
)
BR_CITIES = ("SP - SAO PAULO", "RJ - RIO DE JANEIRO", "MG - BELO HORIZONTE", "PR - CURITIBA",
             "RS - PORTO ALEGRE", "BA - SALVADOR", "SC - JOINVILLE", "GO - GOIANIA", "PE - RECIFE",
             "SP - CAMPINAS", "MG - UBERLANDIA", "CE - FORTALEZA")
RO_COUNTIES = ("AB", "AG", "AR", "B", "BC", "BH", "BN", "BR", "BT", "BV", "BZ", "CJ", "CL", "CS", "CT", "CV",
               "DB", "DJ", "GJ", "GL", "GR", "HD", "HR", "IF", "IL", "IS", "MH", "MM", "MS", "NT", "OT",
               "PH", "SB", "SJ", "SM", "SV", "TL", "TM", "TR", "VL", "VN", "VS")
UA_LETTERS = "ABCEHIKMOPTX"  # Cyrillic letters that look Latin; only these appear on Ukrainian plates
EU_CODES = ("F", "I", "E", "NL", "B", "CZ", "SK", "BG", "H", "A", "S", "FIN", "DK", "LT", "LV", "EST",
            "P", "IRL", "SLO", "HR", "GR", "L", "CH", "N", "GB", "SRB", "MNE", "BIH", "AL", "RSM", "TR")

Color = tuple[int, int, int]  # RGB while drawing; converted to BGR at the end
EU_BLUE: Color = (0, 51, 153)


@dataclass(frozen=True)
class RenderedPlate:
    """One synthetic plate: BGR crop of the whole plate, undamaged, and its registration text."""

    image: np.ndarray  # BGR uint8, tight crop of the whole plate, undamaged
    text: str  # registration only, A-Z0-9, no separators
    style: str
    rows: int
    series: str = ""  # the plate grammar's series (picar.vision.grammar) for the *_series styles


# --------------------------------------------------------------------------- text generators


def _pick(rng: np.random.Generator, chars: str | Sequence[str], n: int = 1) -> str:
    return "".join(str(chars[int(rng.integers(len(chars)))]) for _ in range(n))


def _groups_for(style: str, rng: np.random.Generator) -> list[list[str]]:
    """Rows of character groups (separators between groups are drawn, never read)."""
    r = rng.random()
    if style == "md":
        if r < 0.75:
            return [[_pick(rng, LETTERS, 3), _pick(rng, DIGITS, 3)]]
        region = _pick(rng, LETTERS, 1 + int(rng.integers(2)))
        return [[region, _pick(rng, LETTERS, 2), _pick(rng, DIGITS, 3)]]
    if style == "ro":
        county = _pick(rng, RO_COUNTIES)
        ndig = 2 + int(rng.integers(2)) if county == "B" else 2
        return [[county, _pick(rng, DIGITS, ndig), _pick(rng, LETTERS.replace("Q", ""), 3)]]
    if style == "ro_temp":
        return [[_pick(rng, RO_COUNTIES), _pick(rng, DIGITS, 6)]]
    if style == "ua":
        return [[_pick(rng, UA_LETTERS, 2), _pick(rng, DIGITS, 4), _pick(rng, UA_LETTERS, 2)]]
    if style == "pl":
        head = _pick(rng, LETTERS, 2 + int(rng.integers(2)))
        if r < 0.5:
            tail = _pick(rng, DIGITS, 7 - len(head) + 1)
        else:
            tail = _pick(rng, DIGITS, 1) + _pick(rng, LETTERS + DIGITS, 7 - len(head) - 1)
        return [[head, tail[:5]]]
    if style == "de":
        city = _pick(rng, LETTERS, 1 + int(rng.integers(3)))
        letters = _pick(rng, LETTERS, 1 + int(rng.integers(2)))
        digits = str(int(rng.integers(1, 10_000 if len(city) + len(letters) < 5 else 1000)))
        return [[city, letters, digits]]
    if style in ("eu", "eu_square", "moto"):
        pattern = _EU_PATTERNS[int(rng.integers(len(_EU_PATTERNS)))]
        groups = [_pick(rng, DIGITS if c == "N" else LETTERS if c == "L" else ALPHANUM, 1) for c in pattern]
        tokens = "".join(groups)
        parts = [tokens[a:b] for a, b in _split_points(pattern)]
        if style == "eu":
            return [parts]
        cut = max(1, len(parts) // 2) if len(parts) > 1 else 0
        if cut == 0:  # one group: split the characters
            s = parts[0]
            return [[s[: len(s) // 2]], [s[len(s) // 2:]]]
        return [parts[:cut], parts[cut:]]
    if style == "us":
        pats = ("LLLNNNN", "NLLLNNN", "LLLNNN", "NNNLLL", "LLNNNNN", "NNNNLL", "LLLLNNN", "NLLNNN",
                "LLNLNNN", "NNLLNN", "LNNLLL", "AAAAAA", "AAAAAAA")
        pat = pats[int(rng.integers(len(pats)))]
        # Most US states draw O and 0 alike and record the character as 0 (so do the real US labels, 314
        # zeros to 16 letter Os): synthetic US plates never show a letter O.
        us_letters = LETTERS.replace("O", "")
        chars = "".join(_pick(rng, DIGITS if c == "N" else us_letters if c == "L" else DIGITS + us_letters)
                        for c in pat)
        if rng.random() < 0.45:
            k = len(chars) // 2 + int(rng.integers(-1, 2))
            return [[chars[:k], chars[k:]]]
        return [[chars]]
    if style in ("br_old", "br_old_red"):
        return [[_pick(rng, LETTERS, 3), _pick(rng, DIGITS, 4)]]
    if style == "br_mercosur":
        return [[_pick(rng, LETTERS, 3) + _pick(rng, DIGITS) + _pick(rng, LETTERS) + _pick(rng, DIGITS, 2)]]
    if style == "ar_mercosur":
        return [[_pick(rng, LETTERS, 2), _pick(rng, DIGITS, 3), _pick(rng, LETTERS, 2)]]
    if style == "ar_old":
        return [[_pick(rng, LETTERS, 3), _pick(rng, DIGITS, 3)]]
    raise ValueError(f"unknown plate style {style!r}; known: {', '.join(STYLES)}")


# pattern letters: L letter, N digit, A any; spaces split groups
_EU_PATTERNS = ("LL NNN LL", "NNNN LLL", "LL NN LL", "LL NNN L", "L NNN LL", "NLL NNNN", "LL NNNN LL",
                "LLL NNN", "LL NNNNN", "NN LLL N", "LL NNNN", "NNN LLL", "LL LL NNN", "L NNNN", "LLL NNNN",
                "LL NNN AA", "LLLL NN", "NNN LL NN", "LL AAA", "A NNNNN",
                # digits first after the band (Turkey 34 AB 123, Spain 1234 ABC above): a band is not a 1
                "NN L NNNN", "NN LL NNN", "NN LLL NN", "NN LL NNNN")


def _split_points(pattern: str) -> list[tuple[int, int]]:
    out, start = [], 0
    for part in pattern.split(" "):
        out.append((start, start + len(part)))
        start += len(part)
    return out


def _groups_from_text(text: str, rows: int) -> list[list[str]]:
    """Split a caller's registration into groups at letter/digit changes, over one or two rows."""
    groups: list[str] = []
    for ch in text:
        if groups and groups[-1][-1].isdigit() == ch.isdigit():
            groups[-1] += ch
        else:
            groups.append(ch)
    if len(groups) > 3:  # keep the plate readable: merge the smallest neighbours
        groups = [groups[0], "".join(groups[1:-1]), groups[-1]]
    if rows == 1:
        return [groups]
    if len(groups) == 1:
        s = groups[0]
        return [[s[: len(s) // 2]], [s[len(s) // 2:]]]
    cut = max(1, len(groups) // 2)
    return [groups[:cut], groups[cut:]]


# --------------------------------------------------------------------------- glyph rendering


def font_package(font: str) -> str:
    """The Debian package that ships `font` (a path under FONT_ROOT), or what to look for."""
    if font in FONT_PACKAGES:
        return FONT_PACKAGES[font]
    folder = next((p for prefix, p in _FOLDER_PACKAGES.items() if font.startswith(prefix)), None)
    return folder or f"the package that ships {Path(font).name} (not one PiCAR knows)"


def require_fonts(fonts: Sequence[str]) -> None:
    """Raise FileNotFoundError naming every font of `fonts` not installed and the Debian package with it."""
    missing = [f"{FONT_ROOT / f} (apt install {font_package(f)}; scripts/bootstrap.sh installs it)"
               for f in fonts if not (FONT_ROOT / f).is_file()]
    if missing:
        raise FileNotFoundError("fonts not installed: " + "; ".join(missing))


@functools.lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    require_fonts([path])  # every face the renderer opens, decor included, names its package when missing
    return ImageFont.truetype(str(FONT_ROOT / path), size)


@functools.lru_cache(maxsize=4096)
def _glyph(font_path: str, ch: str) -> np.ndarray:
    """Tight float mask (0..1) of one glyph drawn at 96 px."""
    font = _font(font_path, 96)
    left, top, right, bottom = font.getbbox(ch)
    img = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(img).text((4 - left, 4 - top), ch, fill=255, font=font)
    a = np.asarray(img, dtype=np.float32) / 255.0
    ys, xs = np.nonzero(a > 0.05)
    return a[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def _text_mask(text: str, font_path: str, height: int) -> np.ndarray:
    """Free text (slogans, state names) as a float mask of the given height."""
    font = _font(font_path, 64)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (max(1, right - left + 4), max(1, bottom - top + 4)), 0)
    ImageDraw.Draw(img).text((2 - left, 2 - top), text, fill=255, font=font)
    a = np.asarray(img, dtype=np.float32) / 255.0
    scale = height / a.shape[0]
    return cv2.resize(a, (max(1, int(a.shape[1] * scale)), max(1, height)), interpolation=cv2.INTER_AREA)


def _blend(canvas: np.ndarray, mask: np.ndarray, x: int, y: int, color: Color) -> None:
    """Alpha-blend a solid colour through `mask` at (x, y), clipped to the canvas."""
    h, w = mask.shape
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(canvas.shape[1], x + w), min(canvas.shape[0], y + h)
    if x1 <= x0 or y1 <= y0:
        return
    m = mask[y0 - y: y1 - y, x0 - x: x1 - x, None]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (region * (1 - m) + np.array(color, np.float32) * m).astype(np.uint8)


def _draw_fitted_text(canvas: np.ndarray, text: str, font_path: str, box: tuple[int, int, int, int],
                      color: Color, align: str = "center") -> None:
    x, y, w, h = box
    if w <= 2 or h <= 2 or not text.strip():
        return
    mask = _text_mask(text, font_path, h)
    if mask.shape[1] > w:
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)
    dx = (w - mask.shape[1]) // 2 if align == "center" else 0
    _blend(canvas, mask, x + dx, y, color)


def _draw_row(canvas: np.ndarray, groups: Sequence[str], font_path: str, box: tuple[int, int, int, int],
              color: Color, rng: np.random.Generator, separator: str, stroke: float) -> None:
    """Lay out groups of glyphs in `box`: same cap height, tracking, gaps, then fit to the box width."""
    x, y, w, h = box
    track = h * rng.uniform(0.04, 0.14)
    gap = h * rng.uniform(0.25, 0.6)
    squeeze = rng.uniform(0.75, 1.1)  # condensed or wide plate typefaces
    items: list[tuple[str, np.ndarray | None, float]] = []
    for gi, group in enumerate(groups):
        if gi:
            items.append((separator, None, gap))
        for ch in group:
            g = _glyph(font_path, ch)
            gw = max(1.0, g.shape[1] * h / g.shape[0] * squeeze)
            items.append(("c", g, gw))
    total = sum(width for _, _, width in items) + track * sum(1 for k, _, _ in items if k == "c")
    scale = min(1.0, w / total)
    cx = x + (w - total * scale) / 2
    ch_h = h
    if scale < 0.7:  # too wide: shrink height too, rather than distort the glyphs too much
        ch_h = int(h * max(0.7, scale / 0.7 * 0.85))
    top = y + (h - ch_h) // 2
    for kind, g, width in items:
        ww = width * scale
        if kind == "c" and g is not None:
            m = cv2.resize(g, (max(1, int(round(ww))), max(1, ch_h)), interpolation=cv2.INTER_AREA)
            if stroke > 0:
                k = max(1, int(round(stroke * ch_h / 20)))
                m = cv2.dilate(m, np.ones((k, k), np.uint8))
            _blend(canvas, m, int(round(cx)), top, color)
            cx += ww + track * scale
        else:
            _draw_separator(canvas, kind, int(round(cx)), top, int(round(ww)), ch_h, color, rng)
            cx += ww


def _draw_separator(canvas: np.ndarray, kind: str, x: int, y: int, w: int, h: int, color: Color,
                    rng: np.random.Generator) -> None:
    if w < 3:
        return
    if kind == "dash":
        t = max(1, h // 10)
        cv2.rectangle(canvas, (x + w // 5, y + h // 2 - t), (x + w - w // 5, y + h // 2 + t), color, -1)
    elif kind == "dot":
        cv2.circle(canvas, (x + w // 2, y + h // 2), max(1, h // 14), color, -1)
    elif kind == "seal":  # German registration seals: two coloured discs stacked
        r = max(2, min(w, h) // 4)
        cv2.circle(canvas, (x + w // 2, y + h // 2 - r - 1), r, (190, 40, 40), -1)
        lower = tuple(int(v) for v in rng.integers(60, 200, 3))
        cv2.circle(canvas, (x + w // 2, y + h // 2 + r + 1), r, lower, -1)
    elif kind == "badge":  # a current Moldovan plate's inspection badge between letters and digits
        side = max(3, min(w, h * 2 // 3))
        bx, by = x + (w - side) // 2, y + (h - side) // 2
        cv2.rectangle(canvas, (bx, by), (bx + side, by + side), tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
        cv2.circle(canvas, (bx + side // 2, by + side // 2), max(1, side // 3),
                   tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
        if rng.random() < 0.5:  # the year or month printed on it, too small to read
            cv2.line(canvas, (bx + side // 4, by + side * 3 // 4), (bx + side * 3 // 4, by + side * 3 // 4), color, 1)
    elif kind == "emblem":  # a coat of arms / flag between groups (Moldova, Ukraine regions, Slovakia)
        r = max(2, min(w, h) // 3)
        col = tuple(int(v) for v in rng.integers(0, 230, 3))
        cv2.ellipse(canvas, (x + w // 2, y + h // 2), (max(1, r * 2 // 3), r), 0, 0, 360, col, -1)


# --------------------------------------------------------------------------- plate layouts


@dataclass(frozen=True)
class _Look:
    size: tuple[int, int]  # (w, h) px
    bg: Color
    fg: Color
    band: str  # "", "eu_left", "ua_left", "top_blue", "top_strip"; with badges "flag_left", "low_left"
    band_text: str
    rows: int
    separator: str


def _random_eu_bg(rng: np.random.Generator) -> Color:
    if rng.random() < 0.15:  # yellow rear plates (NL, GB, LU)
        return (int(rng.integers(230, 256)), int(rng.integers(195, 225)), int(rng.integers(0, 60)))
    v = int(rng.integers(225, 256))
    return (v, v, int(v - rng.integers(0, 15)))


def _look(style: str, rng: np.random.Generator) -> _Look:
    """Size, colours and furniture of a style (with random variation)."""
    if style in ("md", "ro", "ro_temp", "pl", "de", "eu"):
        codes = {"md": "MD", "ro": "RO", "ro_temp": "RO", "pl": "PL", "de": "D"}
        code = codes.get(style) or _pick(rng, EU_CODES)
        h = int(rng.integers(90, 120))
        w = int(h * rng.uniform(4.2, 5.0))
        fg: Color = (200, 20, 20) if style == "ro_temp" else (int(rng.integers(0, 40)),) * 3  # type: ignore[assignment]
        seps = ["gap", "gap", "dash", "dot", "emblem"]
        sep = {"de": "seal", "md": "emblem"}.get(style) or seps[int(rng.integers(5))]
        band = "eu_left" if rng.random() < 0.95 else ""
        return _Look((w, h), _random_eu_bg(rng), fg, band, code, 1, sep)
    if style == "ua":
        h = int(rng.integers(90, 120))
        w = int(h * rng.uniform(4.3, 4.9))
        return _Look((w, h), (245, 245, 245), (10, 10, 10), "ua_left", "UA", 1, "gap")
    if style in ("eu_square", "moto"):
        if style == "eu_square":
            w = int(rng.integers(200, 300))
            h = int(w * rng.uniform(0.62, 0.8))
        else:
            w = int(rng.integers(150, 220))
            h = int(w * rng.uniform(0.7, 0.95))
        band = ["eu_left", "eu_left", ""][int(rng.integers(3))]
        sep = ["gap", "gap", "dash", "dot"][int(rng.integers(4))]
        return _Look((w, h), _random_eu_bg(rng), (int(rng.integers(0, 40)),) * 3, band, _pick(rng, EU_CODES),  # type: ignore[arg-type]
                     2, sep)
    if style == "us":
        w = int(rng.integers(240, 340))
        h = int(w * rng.uniform(0.48, 0.56))
        bg = tuple(int(v) for v in rng.integers(150, 256, 3)) if rng.random() < 0.35 else (
            int(rng.integers(225, 256)),) * 3
        fg = tuple(int(v) for v in rng.integers(0, 120, 3)) if rng.random() < 0.5 else (
            int(rng.integers(0, 50)),) * 3
        if rng.random() < 0.12:  # dark plates with light characters
            bg, fg = (int(rng.integers(10, 70)),) * 3, (int(rng.integers(200, 256)),) * 3
        return _Look((w, h), bg, fg, "us", _pick(rng, US_STATES), 1, "gap")  # type: ignore[arg-type]
    if style == "br_old_red":
        w = int(rng.integers(220, 320))
        red = (int(rng.integers(140, 230)), int(rng.integers(10, 70)), int(rng.integers(10, 70)))
        v = int(rng.integers(215, 256))
        return _Look((w, int(w * rng.uniform(0.3, 0.38))), red, (v, v, v), "top_strip", _pick(rng, BR_CITIES), 1,
                     "dash")
    if style == "br_old":
        w = int(rng.integers(220, 320))
        v = int(rng.integers(150, 215))
        return _Look((w, int(w * rng.uniform(0.3, 0.38))), (v, v, v + 3 if v < 250 else v),
                     (int(rng.integers(0, 40)),) * 3, "top_strip", _pick(rng, BR_CITIES), 1, "dash")  # type: ignore[arg-type]
    if style in ("br_mercosur", "ar_mercosur"):
        w = int(rng.integers(220, 320))
        label = "BRASIL" if style == "br_mercosur" else "REPUBLICA ARGENTINA"
        return _Look((w, int(w * rng.uniform(0.3, 0.36))), (245, 245, 245), (int(rng.integers(0, 40)),) * 3,  # type: ignore[arg-type]
                     "top_blue", label, 1, "gap")
    if style == "ar_old":
        w = int(rng.integers(220, 300))
        return _Look((w, int(w * rng.uniform(0.3, 0.36))), (int(rng.integers(5, 40)),) * 3,  # type: ignore[arg-type]
                     (int(rng.integers(215, 256)),) * 3, "top_strip", "ARGENTINA", 1, "gap")  # type: ignore[arg-type]
    raise ValueError(f"unknown plate style {style!r}; known: {', '.join(STYLES)}")


def _draw_furniture(canvas: np.ndarray, look: _Look, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Band, header, footer and border; returns the free box (x, y, w, h) for the registration."""
    h, w = canvas.shape[:2]
    pad = max(2, int(min(w, h) * 0.05))
    x0, y0, x1, y1 = pad, pad, w - pad, h - pad
    decor = DECOR_FONTS[int(rng.integers(len(DECOR_FONTS)))]
    if look.band in ("eu_left", "ua_left"):
        bw = int(w * rng.uniform(0.08, 0.11)) if look.rows == 1 else int(w * rng.uniform(0.11, 0.15))
        if look.band == "ua_left":
            canvas[: h // 2, :bw] = (0, 87, 183)
            canvas[h // 2:, :bw] = (255, 215, 0)
        else:
            canvas[:, :bw] = EU_BLUE
            cy, cx, r = int(h * 0.3), bw // 2, max(2, int(bw * 0.32))
            for k in range(12):  # ring of stars, drawn as dots
                a = 2 * np.pi * k / 12
                cv2.circle(canvas, (int(cx + r * np.cos(a)), int(cy + r * np.sin(a))), max(1, bw // 18),
                           (255, 204, 0), -1)
        _draw_fitted_text(canvas, look.band_text, "dejavu/DejaVuSans-Bold.ttf",
                          (2, int(h * 0.62), bw - 4, int(h * 0.26)), (255, 255, 255))
        x0 = bw + pad
    elif look.band in ("flag_left", "low_left"):  # two-row bands: a national flag over its code, or
        bw = int(w * rng.uniform(0.11, 0.15))  # the EU band beside the lower row only
        if look.band == "flag_left":
            fh = int(h * rng.uniform(0.15, 0.3))
            stripes = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(3)]
            for k, col in enumerate(stripes):
                canvas[pad + k * fh // 3: pad + (k + 1) * fh // 3, pad: pad + bw] = col
            _draw_fitted_text(canvas, look.band_text, "dejavu/DejaVuSans-Bold.ttf",
                              (pad, int(h * rng.uniform(0.5, 0.65)), bw, int(h * rng.uniform(0.15, 0.3))),
                              look.fg if rng.random() < 0.5 else (128, 128, 128))
        else:
            canvas[h // 2:, :bw] = EU_BLUE
            _draw_fitted_text(canvas, look.band_text, "dejavu/DejaVuSans-Bold.ttf",
                              (2, int(h * 0.72), bw - 4, int(h * 0.2)), (255, 255, 255))
        x0 = bw + pad
    elif look.band == "top_blue":
        bh = int(h * rng.uniform(0.18, 0.24))
        canvas[:bh] = (0, 56, 168)
        _draw_fitted_text(canvas, look.band_text, "dejavu/DejaVuSans-Bold.ttf",
                          (int(w * 0.2), int(bh * 0.18), int(w * 0.6), int(bh * 0.64)), (255, 255, 255))
        if rng.random() < 0.7:  # flag/emblem corners
            cv2.rectangle(canvas, (w - int(w * 0.08), int(bh * 0.2)), (w - int(w * 0.02), int(bh * 0.8)),
                          (0, 150, 60), -1)
        y0 = bh + pad
    elif look.band == "top_strip":
        sh = int(h * rng.uniform(0.16, 0.22))
        font = decor if rng.random() < 0.3 else "dejavu/DejaVuSans-Bold.ttf"
        _draw_fitted_text(canvas, look.band_text, font, (int(w * 0.15), pad, int(w * 0.7), sh), look.fg)
        y0 = pad + sh + pad
    elif look.band == "us":
        sh = int(h * rng.uniform(0.14, 0.22))
        col = tuple(int(v) for v in rng.integers(0, 200, 3))
        _draw_fitted_text(canvas, look.band_text, decor, (int(w * 0.1), pad, int(w * 0.8), sh), col)  # type: ignore[arg-type]
        y0 = pad + sh + pad
        if rng.random() < 0.85:
            fh = int(h * rng.uniform(0.1, 0.16))
            slogan = US_SLOGANS[int(rng.integers(len(US_SLOGANS)))]
            _draw_fitted_text(canvas, slogan, DECOR_FONTS[int(rng.integers(len(DECOR_FONTS)))],
                              (int(w * 0.1), h - pad - fh, int(w * 0.8), fh), col)  # type: ignore[arg-type]
            y1 = h - pad - fh - pad // 2
        if rng.random() < 0.4:  # registration stickers in the corners
            for cx in (pad, w - pad - int(w * 0.12)):
                if rng.random() < 0.6:
                    c = tuple(int(v) for v in rng.integers(0, 256, 3))
                    cv2.rectangle(canvas, (cx, pad), (cx + int(w * 0.12), pad + int(h * 0.16)), c, -1)
        if rng.random() < 0.4:  # scenery / logo graphic behind or beside the text
            c = tuple(int(v) for v in rng.integers(100, 256, 3))
            cx, cy = int(rng.integers(0, w)), int(rng.integers(h // 3, h))
            cv2.ellipse(canvas, (cx, cy), (int(w * rng.uniform(0.1, 0.5)), int(h * rng.uniform(0.1, 0.3))),
                        0, 0, 360, c, -1)
        if rng.random() < 0.2:  # stacked small characters at the side, not part of the registration
            sx = pad if rng.random() < 0.5 else w - pad - int(w * 0.07)
            for k in range(2):
                g = _glyph("dejavu/DejaVuSans-Bold.ttf", _pick(rng, LETTERS))
                gh = int((y1 - y0) * 0.3)
                m = cv2.resize(g, (max(1, int(w * 0.05)), max(1, gh)), interpolation=cv2.INTER_AREA)
                _blend(canvas, m, sx, y0 + int((y1 - y0) * 0.15) + k * (gh + 2), look.fg)
            if sx == pad:
                x0 = pad + int(w * 0.08)
            else:
                x1 = w - pad - int(w * 0.08)
    # frame / border stroke
    if rng.random() < 0.8:
        t = max(1, int(min(w, h) * rng.uniform(0.01, 0.03)))
        col = look.fg if rng.random() < 0.7 else tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.rectangle(canvas, (t // 2, t // 2), (w - 1 - t // 2, h - 1 - t // 2), col, t)  # type: ignore[arg-type]
    return x0, y0, max(4, x1 - x0), max(4, y1 - y0)


BADGES = ("shield", "hexagon", "disc", "seals", "flag_code", "digit_box")


def _draw_badge(canvas: np.ndarray, kind: str, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """One badge that is not part of the registration: a district coat of arms (Austria, Switzerland),
    an inspection hexagon (Czechia), a round sticker, German seals, a flag with its country code
    (Latvia), or a sticker with a small digit on it (Sweden)."""
    x, y, w, h = box
    if w < 4 or h < 4:
        return
    col = tuple(int(v) for v in rng.integers(0, 256, 3))
    red = (int(rng.integers(170, 230)), int(rng.integers(0, 50)), int(rng.integers(0, 50)))
    if kind == "shield":
        pts = np.array([(x, y), (x + w, y), (x + w, y + h * 2 // 3), (x + w // 2, y + h), (x, y + h * 2 // 3)],
                       np.int32)
        cv2.fillPoly(canvas, [pts], col)
        if rng.random() < 0.6:  # a white cross or bar on red, as on many arms
            cv2.fillPoly(canvas, [pts], red)
            t = max(1, w // 6)
            cv2.rectangle(canvas, (x + w // 2 - t, y + h // 6), (x + w // 2 + t, y + h * 2 // 3), (245, 245, 245), -1)
            if rng.random() < 0.5:
                cv2.rectangle(canvas, (x + w // 6, y + h // 3 - t), (x + w - w // 6, y + h // 3 + t),
                              (245, 245, 245), -1)
        cv2.polylines(canvas, [pts], True, (20, 20, 20), max(1, w // 20))
    elif kind == "hexagon":
        cx, cy, r = x + w // 2, y + h // 2, max(2, min(w, h) // 2)
        pts = np.array([(cx + r * np.cos(a), cy + r * np.sin(a)) for a in np.arange(6) * np.pi / 3 + np.pi / 6],
                       np.int32)
        cv2.fillPoly(canvas, [pts], red)
        cv2.circle(canvas, (cx, cy), max(1, r * 11 // 20), (240, 240, 240), -1)
        if rng.random() < 0.5:
            cv2.circle(canvas, (cx, cy), max(1, r // 4), col, -1)
    elif kind == "disc":
        cx, cy, r = x + w // 2, y + h // 2, max(2, min(w, h) // 2)
        cv2.circle(canvas, (cx, cy), r, col, -1)
        cv2.circle(canvas, (cx, cy), max(1, r * 2 // 3), tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
        for _ in range(int(rng.integers(0, 4))):  # sector marks of an inspection sticker
            a = rng.uniform(0, 2 * np.pi)
            cv2.line(canvas, (cx, cy), (int(cx + r * np.cos(a)), int(cy + r * np.sin(a))), (30, 30, 30), 1)
    elif kind == "seals":
        r = max(2, min(w, h // 2) // 2 - 1)
        cv2.circle(canvas, (x + w // 2, y + h // 4), r, col, -1)
        cv2.circle(canvas, (x + w // 2, y + 3 * h // 4), r, red, -1)
    elif kind == "flag_code":  # a flag over its small country code, in the plate's ink
        fh = h // 3
        cv2.rectangle(canvas, (x, y), (x + w, y + fh), red, -1)
        cv2.rectangle(canvas, (x, y + fh // 3), (x + w, y + 2 * fh // 3), (245, 245, 245), -1)
        _draw_fitted_text(canvas, _pick(rng, EU_CODES), "dejavu/DejaVuSans-Bold.ttf",
                          (x, y + fh + h // 8, w, h // 2), (int(rng.integers(0, 90)),) * 3)
    elif kind == "digit_box":
        cv2.rectangle(canvas, (x, y), (x + w, y + h), col, -1)
        ink = (250, 250, 250) if sum(col) < 380 else (15, 15, 15)
        cv2.rectangle(canvas, (x + w // 8, y + h // 8), (x + w - w // 8, y + h - h // 8), ink, max(1, w // 14))
        _draw_fitted_text(canvas, _pick(rng, DIGITS), "dejavu/DejaVuSans-Bold.ttf",
                          (x + w // 4, y + h // 4, w // 2, h // 2), ink)
    else:
        raise ValueError(f"unknown badge {kind!r}; known: {', '.join(BADGES)}")


def _draw_badges(canvas: np.ndarray, boxes: list[tuple[int, int, int, int]],
                 rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """Draw badges beside a two-row plate's rows, mostly the top one; return the rows' narrowed boxes."""
    out: list[tuple[int, int, int, int]] = []
    for i, (x, y, w, h) in enumerate(boxes):
        if rng.random() >= (0.85 if i == 0 else 0.2):
            out.append((x, y, w, h))
            continue
        sides = ("right",) if rng.random() < 0.5 else ("left",) if rng.random() < 0.4 else ("left", "right")
        for side in sides:
            bh = int(h * rng.uniform(0.5, 0.95))
            bw = min(int(bh * rng.uniform(0.6, 1.1)), w // 4)
            by = y + (h - bh) // 2 + int(rng.integers(-2, 3))
            margin = int(h * rng.uniform(0.05, 0.2))
            bx = x + w - bw if side == "right" else x
            kind = BADGES[int(rng.integers(len(BADGES)))]
            _draw_badge(canvas, kind, (bx, by, bw, bh), rng)
            w -= bw + margin
            if side == "left":
                x += bw + margin
        out.append((x, y, max(4, w), h))
    return out


def _texture(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """Gentle gradient and paper noise, so backgrounds are not perfectly flat."""
    h, w = canvas.shape[:2]
    if rng.random() < 0.6:
        gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * rng.uniform(-18, 18)
        gy = np.linspace(-1, 1, h, dtype=np.float32)[:, None] * rng.uniform(-18, 18)
        canvas[:] = np.clip(canvas.astype(np.float32) + (gx + gy)[..., None], 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        n = rng.normal(0, rng.uniform(1, 5), canvas.shape[:2]).astype(np.float32)[..., None]
        canvas[:] = np.clip(canvas.astype(np.float32) + n, 0, 255).astype(np.uint8)


def render_plate(
    rng: np.random.Generator, style: str | None = None, text: str | None = None,
    fonts: Sequence[str] = PLATE_FONTS, badges: float = 0.0,
) -> RenderedPlate:
    """Render one synthetic plate. `style` from STYLES (random if None); `text` A-Z0-9 overrides the
    random registration (laid out in the style's rows, split into groups at letter/digit changes);
    the registration is drawn in one of `fonts` (paths under FONT_ROOT). With probability `badges`, a
    two-row plate also carries the badges real ones do beside its rows (`_draw_badges`), never read,
    and sometimes a national flag band or an EU band beside its lower row only."""
    if not 0.0 <= badges <= 1.0:
        raise ValueError(f"badges is a probability in 0..1, got {badges}")
    if style is None:
        style = STYLES[int(rng.integers(len(STYLES)))]
    if style not in STYLES:
        raise ValueError(f"unknown plate style {style!r}; known: {', '.join(STYLES)}")
    if style == "us_frame":
        from picar.train.plates_frames import render_us_frame  # it draws on this module's plates

        return render_us_frame(rng, text, tuple(fonts))
    if style.endswith("_series"):
        from picar.train.plates_grammar import render_grammar_style  # it draws on this module's plates

        return render_grammar_style(rng, style, text, fonts)
    look = _look(style, rng)
    if badges and look.rows == 2 and rng.random() < badges * 0.3:
        look = replace(look, band=("flag_left", "low_left")[int(rng.integers(2))])
    if text is not None:
        text = text.upper()
        if not text or any(c not in ALPHANUM for c in text):
            raise ValueError(f"plate text must be non-empty A-Z0-9, got {text!r}")
        rows = _groups_from_text(text, look.rows)
    else:
        rows = _groups_for(style, rng)
    w, h = look.size
    canvas = np.empty((h, w, 3), np.uint8)
    canvas[:] = look.bg
    _texture(canvas, rng)
    x, y, bw, bh = _draw_furniture(canvas, look, rng)
    font = fonts[int(rng.integers(len(fonts)))]
    stroke = float(rng.uniform(0, 1.2)) if rng.random() < 0.3 else 0.0
    if len(rows) == 1:
        ch = int(bh * rng.uniform(0.72, 0.92))
        cy = y + (bh - ch) // 2 + int(rng.integers(-2, 3))
        _draw_row(canvas, rows[0], font, (x, cy, bw, ch), look.fg, rng, look.separator, stroke)
    else:
        top_share = rng.uniform(0.45, 0.55)
        gap = int(bh * rng.uniform(0.05, 0.1))
        h1 = int((bh - gap) * top_share)
        h2 = bh - gap - h1
        boxes = [(x, y, bw, h1), (x, y + h1 + gap, bw, h2)]
        if badges and rng.random() < badges:
            boxes = _draw_badges(canvas, boxes, rng)
        for row, (rx, ry, rw, rh) in zip(rows, boxes, strict=True):
            _draw_row(canvas, row, font, (rx, ry, rw, int(rh * 0.92)), look.fg, rng, look.separator, stroke)
    plate_text = "".join("".join(r) for r in rows)
    return RenderedPlate(image=np.ascontiguousarray(canvas[..., ::-1]), text=plate_text, style=style,
                         rows=len(rows))


# --------------------------------------------------------------------------- degradation


def _perspective(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    h, w = img.shape[:2]
    d = 0.08 * s
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = rng.uniform(-d, d, (4, 2)) * np.float32([w, h])
    shear = rng.uniform(-0.12, 0.12) * s * h  # horizontal shear, typical of an off-axis camera
    dst = src + jitter.astype(np.float32) + np.float32([[shear, 0], [shear, 0], [-shear, 0], [-shear, 0]])
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    return cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _motion_blur(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    k = int(rng.integers(3, 3 + max(1, int(8 * s))))
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(-30, 30)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    kernel /= max(kernel.sum(), 1e-6)
    return cv2.filter2D(img, -1, kernel)


def _night(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    f = img.astype(np.float32)
    if rng.random() < 0.4:  # IR camera: grey, bright retro-reflective plate, crushed blacks
        g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
        g = np.clip((g - 40) * rng.uniform(1.0, 1.6), 0, 255)
        return cv2.cvtColor(g.astype(np.uint8), cv2.COLOR_GRAY2BGR)
    gain = rng.uniform(0.25, 0.8) if s > 0 else 1.0
    cast = rng.uniform(0.6, 1.3, 3).astype(np.float32)  # dashcams at dusk: magenta / orange casts
    return np.clip(f * gain * cast, 0, 255).astype(np.uint8)


def _glare(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    r = rng.uniform(0.15, 0.6) * max(w, h)
    spot = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)) * rng.uniform(60, 200) * s
    return np.clip(img.astype(np.float32) + spot[..., None], 0, 255).astype(np.uint8)


def _dirt(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    out = img.copy()
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(1, 2 + int(10 * s)))):
        c = tuple(int(v) for v in rng.integers(30, 140, 3))
        cv2.circle(out, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                   max(1, int(rng.uniform(0.005, 0.03) * w)), c, -1)
    alpha = rng.uniform(0.3, 0.8)
    return cv2.addWeighted(out, alpha, img, 1 - alpha, 0)


def _low_res(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    h, w = img.shape[:2]
    target_w = int(rng.uniform(max(24, 80 - 50 * s), 140))
    if target_w >= w:
        return img
    th = max(8, int(h * target_w / w))
    small = cv2.resize(img, (target_w, th), interpolation=cv2.INTER_AREA)
    interp = cv2.INTER_LINEAR if rng.random() < 0.7 else cv2.INTER_NEAREST
    return cv2.resize(small, (w, h), interpolation=interp)


def _jpeg(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    q = int(rng.uniform(max(10, 90 - 70 * s), 95))
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img


def _noise(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    n = rng.normal(0, rng.uniform(2, 14) * s, img.shape).astype(np.float32)
    return np.clip(img.astype(np.float32) + n, 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    sigma = rng.uniform(0.3, 0.5 + 1.8 * s) * max(img.shape[:2]) / 200
    return cv2.GaussianBlur(img, (0, 0), sigmaX=float(max(0.3, sigma)))


def _contrast(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    a = rng.uniform(1 - 0.5 * s, 1 + 0.3 * s)
    b = rng.uniform(-50, 50) * s
    return np.clip(img.astype(np.float32) * a + b, 0, 255).astype(np.uint8)


_STEPS: tuple[tuple[Callable[[np.ndarray, np.random.Generator, float], np.ndarray], float], ...] = (
    (_perspective, 0.6),
    (_dirt, 0.15),
    (_glare, 0.15),
    (_night, 0.2),
    (_contrast, 0.5),
    (_blur, 0.35),
    (_motion_blur, 0.2),
    (_low_res, 0.35),
    (_noise, 0.4),
    (_jpeg, 0.5),
)


def degrade(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Camera-like damage to a BGR uint8 plate image (same shape out): perspective, blur, motion blur,
    noise, JPEG, night/IR, glare, dirt, low resolution. `strength` 0 returns a copy; 1 is typical;
    each step fires with a probability that grows with strength."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"degrade expects an HxWx3 uint8 BGR image, got {image.shape} {image.dtype}")
    out = image.copy()
    if strength <= 0:
        return out
    p_scale = min(1.5, strength)
    for step, p in _STEPS:
        if rng.random() < p * p_scale:
            out = step(out, rng, strength)
    return out

"""The plate formats PiCAR knows: one grammar per country (or plate system), each a list of named series.

This module is data only; `picar.vision.grammar` parses it, samples texts from it (for the synthetic plate
renderer) and compiles it into the automaton the OCR decode searches.

Pattern syntax (one series, in reading order: top row first, left to right):
- `L` a letter of the grammar's letter set, `D` a digit, `A` a letter or a digit;
- `[ABC]` or `[A-HJ-Z]` one character of a set; `(MAI|POL)` one of a few fixed strings;
- `{n}` or `{m,n}` after an element repeats it (`D{1,3}`: one to three digits);
- a space separates printed groups (a gap, a dash, a badge: never read), `/` starts the next row.

Texts are what the OCR reads: A-Z and 0-9, no separators. Ukrainian and Transnistrian plates use only
Cyrillic letters that look Latin; they are written with their Latin look-alikes (`CYRILLIC_TO_LATIN`).
`style` tells the renderer the plate's colours where a series has its own (`white` black on white,
`yellow`, `red` red characters or a red plate, `blue` blue characters, `black` white on black, `grey`).
`share` is a rough guess of how common a series is on the road in its country, for sampling before the
decode's priors are fitted from labelled texts (`models/plate_ocr.grammar.json`); it is not a measurement.

Sources (looked up for issue 19; what each says is quoted in short beside the series it backs):
- [md-en] https://en.wikipedia.org/wiki/Vehicle_registration_plates_of_Moldova (via the IPFS mirror
  bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq.ipfs.dweb.link and
  https://iiab.live/kiwix/content/wikipedia_en_top1m_maxi_2024-05/A/Vehicle_registration_plates_of_Moldova):
  current plates "three letters and three numbers", FE-Schrift, since 2015; pre-2015 "two letters for the
  region (except for Chișinău, which only has the letters C and K), two letters for the series and three
  digits", DIN 1451, owners "could request to have only one or two digits instead of three"; the district
  code table (AN Anenii Noi ... UN Ungheni).
- [md-special] https://www.liquisearch.com/vehicle_registration_plates_of_moldova/special_plates:
  government "RM" + one letter (P Parliament, G Government, A Chancellery) + three digits; president "RM"
  + four digits; diplomatic "CD", "TC", "TS", "CA" + three digits + one or two letters; police "MAI" +
  three or four digits, carabinieri "MIC" + three or four digits, before them "POL" and road police "PR"
  + three or four digits; state security "SP" + three digits; army "FA" + four digits; border "DG" + four
  digits.
- [md-it] https://it.wikipedia.org/wiki/Targhe_automobilistiche_moldave: trailers one row "L 000 LL" or
  two rows "LLL/000"; on motorcycles the digits are on the upper row and the letters on the lower; taxis
  (from March 2015) and buses (from March 2014) yellow with black characters; "La prima lettera H indica
  una targa assegnata ad un cittadino straniero" (a first letter H: a foreign citizen's plate).
- [md-de] https://de.wikipedia.org/wiki/Kfz-Kennzeichen_(Republik_Moldau) (via deit.xcv.wiki): temporary
  plates have red characters and a validity date; diplomats' plates dark blue characters.
- [md-neutral] https://motors.md/news/vehiculele-cu-numere-de-inmatriculare-neutre-pot-traversa-de-astazi-frontiera-de-stat-20181012.html:
  the "neutral" plates for vehicles registered on the left bank "contain three letters and three digits".
- [tn-en] https://en.wikipedia.org/wiki/Vehicle_registration_plates_of_Transnistria: "one letter, three
  numbers and two more letters", DIN 1451; "Government plates only have 5 embossed characters - three
  numbers and two letters"; only letters common to Cyrillic and Latin (A B C E H K M P T X Y); the first
  letter is the district: A Bender, B Grigoriopol, E Dubăsari, H Tiraspol (mopeds), K Camenca, P Rîbnița,
  C Slobozia, T Tiraspol.
- [tn-memim] https://memim.com/vehicle-registration-plates-of-transnistria.html: two-row plates carry the
  two series letters on the lower row; motorcycles two rows with two letters and three digits; mopeds one
  letter and three digits; government plates until 2012 without the first letter and ending in CA; foreign
  ministry "CD" followed by three and two more digits.
- [ro-en] https://en.wikipedia.org/wiki/Vehicle_registration_plates_of_Romania (and wikimili.com,
  wikihq.org copies): "CC 12 ABC"; Bucharest "B 12 ABC or B 123 ABC"; "The letter Q is not used"; "the
  three-letter code cannot start with I or O".
- [ro-codes] http://kennzeichen-guide.de/international/ro-system.htm: the county codes (AB ... VS, B).
- [ro-special] https://liquisearch.com/vehicle_registration_plates_of_romania/current_license_plates:
  red temporary plates "the county code and three to six digits, of which the first is always zero, and the
  2nd is always non-zero"; black long-term plates the same with a red date strip; diplomatic "CO, CD ... or
  TC ... and 6 numbers"; yellow plates for public transport ([ro-2007]:
  https://wikipedia2007.classicistranieri.com/r/o/m/Romanian_car_number_plates.html).
- [ua-en] https://en.wikipedia.org/wiki/Vehicle_registration_plates_of_Ukraine: "AB 1234 BC (AB being the
  regional code)"; the 12 letters А В Е І К М Н О Р С Т Х; 1995-2004: "five digits, with a dash between
  the third and fourth digit, combined with a two letter suffix" and the region's two-digit code under the
  flag (not part of the read text).
- [ua-codes] https://kennzeichen-guide.de/schilder-europas/ukraine/: region codes AA/KA Kyiv ... CH/IH
  Sevastopol, II state-wide (AH/KH Donetsk is in [ua-en]'s table).
- [ua-types] https://dca.scrieunblog.com/articles/placute-de-inmatriculare-din-ucraina.html: tractors and
  trailers have their own plate type; yellow for buses and taxis; and [ua-moto]
  https://5632.com.ua/list/87284: motorcycle plates in three rows, the top row the region code.
  The tractor plates of `../shared/data/ocr/ua_nomeroff_examples` read 10922/BX and 6808/XO (two rows).
- [eu-mix] the formats of the existing `REGION_TEMPLATES` (picar/vision/formats.py before issue 18), kept
  with their one-line notes: the project's earlier reading of Wikipedia's national plate pages.

Not modelled (no source agreed on a text format): Moldovan and Ukrainian transit plates, Romanian army and
interior ministry plates ("a special format which does not fall under normal regulations", [ro-special]),
Ukrainian diplomatic plates.
"""

from __future__ import annotations

import string
from dataclasses import dataclass


@dataclass(frozen=True)
class SeriesSpec:
    """One named plate series: its pattern (syntax above), colours and rough share in its grammar."""

    name: str
    pattern: str
    style: str = "white"
    share: float = 1.0
    note: str = ""


@dataclass(frozen=True)
class GrammarSpec:
    """A country's (or plate system's) series and the letters its `L` stands for."""

    name: str
    letters: str
    series: tuple[SeriesSpec, ...]
    description: str


LATIN = string.ascii_uppercase
# Cyrillic letters on Ukrainian, Transnistrian (and Russian) plates that the OCR reads as Latin letters.
CYRILLIC_TO_LATIN = {"А": "A", "В": "B", "Е": "E", "І": "I", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
                     "С": "C", "Т": "T", "Х": "X", "У": "Y"}
UA_LETTERS = "ABCEHIKMOPTX"  # [ua-en]: А В Е І К М Н О Р С Т Х
TN_LETTERS = "ABCEHKMPTXY"  # [tn-en]: A B C E H K M P T X Y

# [md-en]: pre-2015 district codes (C and K Chișinău; CU, CN, CG, CO and BE older, TG from 1999, GE Gagauzia).
MD_DISTRICTS = ("AN", "BE", "BL", "BR", "BS", "C", "CC", "CG", "CH", "CL", "CM", "CN", "CO", "CR", "CS", "CT",
                "CU", "DB", "DN", "DR", "ED", "FL", "FR", "GE", "GL", "GR", "HN", "IL", "K", "LV", "NS", "OC",
                "OR", "RB", "RS", "SD", "SG", "SL", "SR", "ST", "SV", "TG", "TR", "TL", "UN")
TN_DISTRICTS = "ABEHKPCT"  # [tn-en]
# [ro-codes]: 41 counties and B (Bucharest).
RO_COUNTIES = ("AB", "AG", "AR", "BC", "BH", "BN", "BR", "BT", "BV", "BZ", "CJ", "CL", "CS", "CT", "CV", "DB",
               "DJ", "GJ", "GL", "GR", "HD", "HR", "IF", "IL", "IS", "MH", "MM", "MS", "NT", "OT", "PH", "SB",
               "SJ", "SM", "SV", "TL", "TM", "TR", "VL", "VN", "VS")
# [ua-codes] + [ua-en]: 2004 codes and their 2013 twins (A->K, B->H, C->I), II state-wide.
UA_REGIONS = ("AA", "AB", "AC", "AE", "AH", "AI", "AK", "AM", "AO", "AP", "AT", "AX", "BA", "BB", "BC", "BE",
              "BH", "BI", "BK", "BM", "BO", "BT", "BX", "CA", "CB", "CE", "CH", "KA", "KB", "KC", "KE", "KH",
              "KI", "KK", "KM", "KO", "KP", "KT", "KX", "HA", "HB", "HC", "HE", "HH", "HI", "HK", "HM", "HO",
              "HT", "HX", "IA", "IB", "IE", "IH", "II")


def _alt(codes: tuple[str, ...] | str) -> str:
    return "(" + "|".join(codes) + ")"


_RO_SERIAL = "[A-HJ-NPR-Z][A-PR-Z]{2}"  # [ro-en]: no Q; the three letters never start with I or O
_RO_COUNTY = _alt(RO_COUNTIES)

GRAMMARS: dict[str, GrammarSpec] = {g.name: g for g in (
    GrammarSpec("md", LATIN, (
        SeriesSpec("md.current", "L{3} D{3}", share=60.0, note="[md-en] since 2015, FE-Schrift"),
        SeriesSpec("md.pre2015", f"{_alt(MD_DISTRICTS)} L{{2}} D{{1,3}}", share=25.0,
                   note="[md-en] 1992-2015, DIN 1451; district code, two series letters, 1-3 digits"),
        SeriesSpec("md.trailer", "L D{3} L{2}", share=2.0, note="[md-it] trailers, one row"),
        SeriesSpec("md.trailer_two_row", "L{3}/D{3}", share=1.0, note="[md-it] trailers, two rows"),
        SeriesSpec("md.moto", "D{3}/L{3}", share=1.0, note="[md-it] motorcycles: digits above, letters below"),
        SeriesSpec("md.public_transport", "L{3} D{3}", style="yellow", share=3.0,
                   note="[md-it] taxis from 2015, buses from 2014: yellow"),
        SeriesSpec("md.public_transport_pre2015", f"{_alt(MD_DISTRICTS)} L{{2}} D{{3}}", style="yellow", share=1.0,
                   note="[md-it] a Chișinău bus plate of 2014 in the pre-2015 format, yellow"),
        SeriesSpec("md.temporary", "L{3} D{3}", style="red", share=1.0,
                   note="[md-de] red characters and a validity date (combination assumed as md.current)"),
        SeriesSpec("md.gov", "(RM) [PGA] D{3}", share=0.3, note="[md-special] Parliament, Government, Chancellery"),
        SeriesSpec("md.president", "(RM) D{4}", share=0.05, note="[md-special] RM 0001: the president"),
        SeriesSpec("md.police", "(MAI) D{3,4}", share=0.5, note="[md-special] Ministry of Internal Affairs"),
        SeriesSpec("md.carabinieri", "(MIC) D{3,4}", share=0.2, note="[md-special] carabinieri"),
        SeriesSpec("md.police_old", "(POL|PR) D{3,4}", share=0.1, note="[md-special] before MAI"),
        SeriesSpec("md.security", "(SP) D{3}", share=0.05, note="[md-special] state protection service"),
        SeriesSpec("md.army", "(FA) D{4}", share=0.3, note="[md-special] armed forces"),
        SeriesSpec("md.border", "(DG) D{4}", share=0.3, note="[md-special] border police"),
        SeriesSpec("md.diplomatic", "(CD|TC|TS|CA) D{3} L{1,2}", style="blue", share=0.3,
                   note="[md-special] embassy number, then A/AA for the ambassador; [md-de] dark blue"),
        SeriesSpec("md.foreign", "(H) L{2} D{1,3}", share=0.5,
                   note="[md-it] a first letter H: a foreign citizen's plate (rest as md.pre2015)"),
    ), "Republic of Moldova"),
    GrammarSpec("transnistria", TN_LETTERS, (
        SeriesSpec("transnistria.current", f"[{TN_DISTRICTS}] D{{3}} L{{2}}", share=80.0,
                   note="[tn-en] district letter, three digits, two letters"),
        SeriesSpec("transnistria.two_row", f"[{TN_DISTRICTS}] D{{3}}/L{{2}}", share=5.0,
                   note="[tn-memim] the two series letters on the lower row"),
        SeriesSpec("transnistria.moto", "L{2}/D{3}", share=2.0,
                   note="[tn-memim] two letters and three digits in two rows (row order assumed)"),
        SeriesSpec("transnistria.moped", f"[{TN_DISTRICTS}] D{{3}}", share=1.0, note="[tn-memim] mopeds"),
        SeriesSpec("transnistria.gov_old", "D{3} (CA)", share=1.0, note="[tn-en], [tn-memim] until 2012"),
        SeriesSpec("transnistria.diplomatic", "(CD) D{3} D{2}", style="blue", share=0.2, note="[tn-memim]"),
    ), "Transnistria (left bank of the Dniester); Cyrillic letters that look Latin"),
    GrammarSpec("ro", LATIN, (
        SeriesSpec("ro.bucharest", f"(B) D{{2,3}} {_RO_SERIAL}", share=30.0, note="[ro-en] B 12 ABC, B 123 ABC"),
        SeriesSpec("ro.county", f"{_RO_COUNTY} D{{2}} {_RO_SERIAL}", share=65.0, note="[ro-en] CJ 07 XYZ"),
        SeriesSpec("ro.temporary", f"{_alt(('B', *RO_COUNTIES))} (0)[1-9]D{{1,4}}", style="red", share=2.0,
                   note="[ro-special] county and 3-6 digits, the first 0, the second not"),
        SeriesSpec("ro.long_term", f"{_alt(('B', *RO_COUNTIES))} (0)[1-9]D{{1,4}}", share=1.0,
                   note="[ro-special] leasing and temporary residents: as the red plate, black, red date strip"),
        SeriesSpec("ro.public_transport", f"{_alt(('B', *RO_COUNTIES))} D{{2,3}} {_RO_SERIAL}", style="yellow",
                   share=1.0, note="[ro-2007] yellow plates for municipal public transport"),
        SeriesSpec("ro.diplomatic", "(CD|TC|CO) D{3} D{3}", style="blue", share=0.3,
                   note="[ro-special] country or organisation, then rank"),
    ), "Romania"),
    GrammarSpec("ua", UA_LETTERS, (
        SeriesSpec("ua.current", f"{_alt(UA_REGIONS)} D{{4}} L{{2}}", share=90.0,
                   note="[ua-en] AB 1234 BC since 2004"),
        SeriesSpec("ua.public_transport", f"{_alt(UA_REGIONS)} D{{4}} L{{2}}", style="yellow", share=3.0,
                   note="[ua-types] buses and taxis"),
        SeriesSpec("ua.moto", f"{_alt(UA_REGIONS)}/D{{4}}/L{{2}}", share=1.0,
                   note="[ua-moto] three rows, the region code on top"),
        SeriesSpec("ua.1995", "D{3} D{2} L{2}", share=3.0,
                   note="[ua-en] 1995-2004: 123-45 AB (region number under the flag, not read)"),
        SeriesSpec("ua.tractor", "D{4,5}/L{2}", share=1.0,
                   note="[ua-types] tractors and trailers; 10922/BX and 6808/XO in ua_nomeroff_examples"),
    ), "Ukraine; Cyrillic letters that look Latin"),
    GrammarSpec("pl", LATIN, tuple(
        SeriesSpec(f"pl.{t.lower()}", t, note="[eu-mix] district, then digits / letters")
        for t in ("LLDDDDD", "LLDDDLL", "LLDLDDD", "LLLDDDD", "LLLDDLL", "LLLDLDD", "LLLLDDD", "LLDDDDL")),
        "Poland"),
    GrammarSpec("de", LATIN, (
        SeriesSpec("de.standard", "L{1,3} L{1,2} D{1,4}",
                   note="[eu-mix] district 1-3, 1-2 letters, 1-4 digits (the split is not read)"),
    ), "Germany"),
    GrammarSpec("tr", LATIN, (
        SeriesSpec("tr.standard", "D{2} L{1,3} D{2,5}",
                   note="[eu-mix] province 01-81, 1-3 letters, 2-5 digits (34 A 1234, 07 ABC 12)"),
    ), "Turkey"),
    GrammarSpec("eu", LATIN, tuple(
        SeriesSpec(f"eu.{key}", pattern, note=f"[eu-mix] {note}") for key, pattern, note in (
            ("fr_it", "L{2} D{3} L{2}", "FR AB-123-CD, IT AB 123 CD"),
            ("es", "D{4} L{3}", "ES 1234 ABC"),
            ("bg", "L{1,2} D{4} L{1,2}", "BG CA 1234 AB"),
            ("hu_se_lt", "L{3} D{3}", "HU ABC-123, SE ABC 123, LT"),
            ("se", "L{3} D{2} L", "SE ABC 12A"),
            ("cz", "D L{2} D{4}", "CZ 1AB 2345"),
            ("sk_no", "L{2} D{5}", "NO AB 12345"),
            ("gb", "L{2} D{2} L{3}", "GB AB12 CDE"),
            ("hr", "L{2} D{2} L{2}", "HR"),
            ("nl_dd", "L{2} D{4}", "NL sidecode"),
            ("nl_ddd_lll", "D{3} L{3}", "NL sidecode"),
            ("nl_llll_dd", "L{4} D{2}", "NL sidecode"),
            ("nl_dd_lll_d", "D{2} L{3} D", "NL sidecode"),
            ("nl_l_ddd_ll", "L D{3} L{2}", "NL sidecode"),
            ("nl_ll_dd_l_d", "L{2} D{2} L D", "NL sidecode"),
        )), "other European one-row formats"),
    GrammarSpec("br", LATIN, (
        SeriesSpec("br.old", "L{3} D{4}", style="grey", share=60.0, note="[eu-mix] ABC-1234"),
        SeriesSpec("br.mercosur", "L{3} D L D{2}", share=40.0, note="[eu-mix] ABC1D23"),
    ), "Brazil"),
    GrammarSpec("ar", LATIN, (
        SeriesSpec("ar.old", "L{3} D{3}", style="black", note="[eu-mix] ABC 123"),
        SeriesSpec("ar.mercosur", "L{2} D{3} L{2}", note="[eu-mix] AB 123 CD"),
        SeriesSpec("ar.moto", "L D{3} L{3}", note="[eu-mix] A 123 BCD"),
    ), "Argentina"),
    GrammarSpec("us", LATIN, tuple(
        SeriesSpec(f"us.{t.lower()}", t, note="[eu-mix] a common issued pattern; vanity plates fit none")
        for t in ("LLLDDDD", "DLLLDDD", "LLLDDD", "DDDLLL", "LLDDDDD", "DDDDLL", "LLLLDDD", "DLLDDD", "LLDLDDD",
                  "DDLLDD", "LDDLLL", "DDDDDD", "LLDDDD", "DDDLDD", "LLLDDDL", "DLDDDD")), "United States"),
)}

# What a camera's `region` names: the grammars its decode chooses among (the most probable wins).
REGION_GRAMMARS: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in GRAMMARS},
    "md": ("md", "transnistria", "ro", "ua"),  # a Moldovan car: its own plates and its neighbours'
    "eu": ("eu", "de", "pl", "ro", "md", "ua", "tr"),
    "auto": ("eu", "de", "pl", "ro", "md", "ua", "tr", "us", "br", "ar"),
}

"""The plate grammar data: every series parses, samples its own texts, and names the series a text fits."""

from __future__ import annotations

import numpy as np
import pytest

from picar.vision import grammar
from picar.vision.grammar_data import GRAMMARS, REGION_GRAMMARS


def test_every_series_samples_texts_that_fit_it() -> None:
    rng = np.random.default_rng(7)
    names = [s.name for s in grammar.all_series()]
    assert len(names) == len(set(names))
    for s in grammar.all_series():
        assert s.name.startswith(s.grammar + ".")
        for _ in range(20):
            layout = grammar.sample_layout(s, rng)
            assert len(layout) == len(s.rows)
            text = "".join("".join(row) for row in layout)
            assert text.isalnum() and text == text.upper()
            assert grammar.fits(text, [s.grammar]) is not None, (s.name, text)


@pytest.mark.parametrize(("text", "region", "name"), [
    ("ABC123", "md", "md.current"),
    ("CAB123", "md", "md.current"),
    ("CAB12", "md", "md.pre2015"),
    ("BLAC002", "md", "md.pre2015"),
    ("MAI1234", "md", "md.police"),
    ("MIC123", "md", "md.carabinieri"),
    ("DG1234", "md", "md.border"),
    ("FA1234", "md", "md.army"),
    ("RMP001", "md", "md.gov"),
    ("RM0001", "md", "md.president"),
    ("CD123AA", "md", "md.diplomatic"),
    ("T123AB", "md", "transnistria.current"),
    ("B123ABC", "md", "ro.bucharest"),
    ("CJ07XYZ", "md", "ro.county"),
    ("B012345", "ro", "ro.temporary"),
    ("AA1234BB", "md", "ua.current"),
    ("KA1234BB", "ua", "ua.current"),
    ("ABC1D23", "br", "br.mercosur"),
    ("34A1234", "tr", "tr.standard"),
])
def test_fits_names_the_most_specific_series(text: str, region: str, name: str) -> None:
    assert grammar.fits(text, region) == name


def test_texts_outside_every_series_fit_none() -> None:
    assert grammar.fits("BQ12ABC", "ro") is None  # Romania issues no Q
    assert grammar.fits("B12IAB", "ro") is None  # nor a letter group starting with I
    assert grammar.fits("ZZ1234BB", "ua") is None  # no such Ukrainian region
    assert grammar.fits("AA1234BD", "ua") is None  # D is no Cyrillic look-alike
    assert grammar.fits("ABC1234", "md") is None


def test_regions_expand_to_grammars() -> None:
    assert grammar.grammars_for("md") == ("md", "transnistria", "ro", "ua")
    assert grammar.grammars_for(["ro", "MD"]) == ("ro", "md", "transnistria", "ua")
    assert set(grammar.grammars_for("auto")) <= set(GRAMMARS)
    assert all(set(gs) <= set(GRAMMARS) for gs in REGION_GRAMMARS.values())
    with pytest.raises(grammar.GrammarError, match="unknown plate region 'xx'.*allowed regions"):
        grammar.grammars_for("xx")
    with pytest.raises(grammar.GrammarError, match="at least one"):
        grammar.grammars_for([])


def test_two_row_series_sample_rows() -> None:
    rng = np.random.default_rng(1)
    moto = next(s for s in grammar.series("ua") if s.name == "ua.moto")
    assert moto.two_row
    top, middle, bottom = grammar.sample_layout(moto, rng)
    assert len(top[0]) == 2 and middle[0].isdigit() and len(bottom[0]) == 2


def test_pick_series_and_cyrillic() -> None:
    rng = np.random.default_rng(3)
    picked = {grammar.pick_series("md", rng).grammar for _ in range(400)}
    assert picked == {"md", "transnistria", "ro", "ua"}
    assert grammar.to_latin("вх 1234 ах") == "BX 1234 AX"


def test_a_bad_pattern_names_its_series() -> None:
    from picar.vision.grammar_data import GrammarSpec, SeriesSpec

    spec = GrammarSpec("x", "AB", (SeriesSpec("x.bad", "L{3,1}"),), "")
    with pytest.raises(grammar.GrammarError, match="series x.bad: bad repetition"):
        grammar.parse(spec.series[0], spec)
    with pytest.raises(grammar.GrammarError, match="series x.bad: cannot parse"):
        grammar.parse(SeriesSpec("x.bad", "L?"), spec)

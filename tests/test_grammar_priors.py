from picar.tools.grammar_priors import fit_counts
from picar.vision.grammar import fits
from picar.vision.priors import GrammarPriors
from tests.ctc_frames import read, spelled


def test_a_region_list_without_labels_gets_its_free_share_from_the_countries_it_names() -> None:
    ro = ["B123ABC", "CJ07XYZ", "B12XYZ", "AB123CD"]  # the last is no Romanian plate (and no Moldovan one)
    ua = ["AA1234BB"]
    us = ["ABC1234"]
    assert fits("AB123CD", "md") is None and all(fits(t, "md") for t in [*ro[:3], *ua])
    p = fit_counts({"ro": ro, "ua": ua, "us": us})
    assert p.free_share["md"] == (1 + 1) / (5 + 2)  # Romania's and Ukraine's texts read as md, smoothed
    assert p.free_share["ro"] == (1 + 1) / (4 + 2)
    assert p.notes["fit_none"]["md"] == 1
    assert p.free_share["eu"] == (0 + 1) / (5 + 2)  # no European labels here: eu's list covers ro and ua too
    assert p.free_share["auto"] == (0 + 1) / (6 + 2)  # every labelled text, as before
    assert fit_counts({"eu": ["AB123CD"], "ro": ro}).free_share["eu"] == (0 + 1) / (1 + 2)  # its own labels win


def test_a_camera_reading_us_plates_weighs_characters_by_us_labels() -> None:
    p = fit_counts({"us": ["CUST0M", "ABC1000", "X0X0"], "eu": ["HO422D", "OW8791", "KOS461"]})
    assert p.chars_for(("us",))["0"] > p.chars["0"] > p.chars_for(("eu",))["0"]
    assert p.chars_for(("us",))["O"] < p.chars["O"] < p.chars_for(("eu",))["O"]
    assert p.chars_for(("md",)) is p.chars and p.chars_for(("us", "md")) is p.chars  # md has no labels
    mixed = p.chars_for(("us", "eu"))
    assert abs(mixed["O"] - (p.region_chars["us"]["O"] + p.region_chars["eu"]["O"]) / 2) < 1e-12
    assert GrammarPriors.from_json(p.to_json(), "t").region_chars == p.region_chars


def test_the_region_decides_a_glyph_the_model_finds_round() -> None:
    # a glyph the model cannot tell: 0 or O at even odds; US labels write it 0, European ones O
    p = fit_counts({"us": ["CUST0M", "N0G0DS", "IR0NY", "X0X0"] * 5, "eu": ["HOTEL", "OSLO", "KOKO"] * 5})
    priors = GrammarPriors(0.5, 0.5, p.chars, p.free_start, p.free_next, p.free_share, p.series,
                           region_chars=p.region_chars)
    frames = spelled("W0RD", 0.9, weak={1: ("O", 0.45)})  # 0 and O at 0.45 each
    assert read(frames, "us", priors=priors).text == "W0RD"
    assert read(frames, "eu", priors=priors).text == "WORD"

from picar.tools.grammar_priors import fit_counts
from picar.vision.grammar import fits


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

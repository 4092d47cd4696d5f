"""Watchlist matching: exact, confusable, edit distance, wildcards, limits, expiry, regions."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from picar.types import WatchEntry
from picar.watchlist.builder import WatchlistBuilder
from picar.watchlist.entries import WatchlistError
from picar.watchlist.index import Watchlist
from picar.watchlist.matching import MatchOptions

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def make(entries: list[WatchEntry], **opts: object) -> Watchlist:
    return Watchlist.from_entries(entries, MatchOptions(**opts))  # type: ignore[arg-type]


def hits(wl: Watchlist, *texts: str, region: str | None = None, at: datetime = AT) -> list[tuple[str, str]]:
    cands = [(t, 0.9 - 0.1 * i) for i, t in enumerate(texts)]
    return [(e.plate, m.describe()) for e, m in wl.match(cands, region=region, at=at)]


def test_exact_match_and_normalisation() -> None:
    wl = make([WatchEntry("abc-12 34", list="stolen_vehicle")])
    [(entry, m)] = wl.match([("ABC 1234", 0.9)], at=AT)
    assert entry.plate == "ABC1234"
    assert (m.kind, m.read_text, m.distance, m.differences) == ("exact", "ABC1234", 0, ())
    assert hits(wl, "ABC1235") != [] and hits(wl, "XYZ999") == []


def test_confusable_reports_position_and_chars() -> None:
    wl = make([WatchEntry("AB01234")])
    [(_, m)] = wl.match([("A801234", 0.8)], at=AT)
    assert m.kind == "confusable"
    assert m.differences == ((1, "8", "B"),)
    assert m.describe() == "confusable (pos 2: read 8 listed B)"


def test_substitution_limit_per_list() -> None:
    entries = [WatchEntry("BOB5512", list="stolen_vehicle"), WatchEntry("BOB5513", list="amber")]
    wl = make(entries, max_substitutions={"amber": 2, "default": 1}, max_edit={"default": 0})
    # Two confusable substitutions: allowed on amber, not on the default list.
    assert hits(wl, "8O85512") == []
    assert hits(wl, "8OB5513") == [("BOB5513", "confusable (pos 1: read 8 listed B)")]
    [(e, m)] = wl.match([("8O85513", 0.9)], at=AT)
    assert e.list == "amber" and m.kind == "confusable"
    assert m.differences == ((0, "8", "B"), (2, "8", "B"))
    assert hits(wl, "8OB5512") == [("BOB5512", "confusable (pos 1: read 8 listed B)")]


def test_loose_match_must_not_hit() -> None:
    wl = make([WatchEntry("ZZS1234")], max_substitutions={"default": 1})
    # Two confusable swaps (Z->2, S->5) on a list that allows one, plus no edit budget used up:
    # edit distance in canonical space is 0, so only the confusable rule applies and it refuses.
    assert hits(wl, "2Z51234") == []
    # One real error plus one confusable swap is an edit match (1 edit, 1 substitution) ...
    assert [k for k, _ in hits(wl, "2ZS1239")] == ["ZZS1234"]
    # ... but two real errors are not.
    assert hits(wl, "ZZS1299") == []


def test_edit_distance_insert_delete_substitute() -> None:
    wl = make([WatchEntry("KLM4567")])
    assert hits(wl, "KLM4577") == [("KLM4567", "edit (pos 6: read 7 listed 6)")]
    assert hits(wl, "KLM457") == [("KLM4567", "edit (pos 6: read - listed 6)")]
    assert hits(wl, "KLMX4567") == [("KLM4567", "edit (pos 4: read X listed -)")]
    [(_, m)] = wl.match([("KLM457", 0.9)], at=AT)
    assert m.kind == "edit" and m.distance == 1 and m.differences == ((5, "", "6"),)


def test_edit_disabled_per_list() -> None:
    wl = make([WatchEntry("KLM4567", list="wanted"), WatchEntry("KLM4568", list="bolo")],
              max_edit={"wanted": 0, "default": 1})
    assert [p for p, _ in hits(wl, "KLM4560")] == ["KLM4568"]
    with pytest.raises(WatchlistError, match="max_edit"):
        MatchOptions(max_edit={"default": 2})


def test_candidate_beyond_top_one_hits() -> None:
    wl = make([WatchEntry("QRT7788")], max_edit={"default": 0}, max_substitutions={"default": 0})
    assert hits(wl, "QRT7786", "ORT7788") == []
    [(entry, m)] = wl.match([("QRT7786", 0.9), ("XRT7788", 0.5), ("QRT7788", 0.3)], at=AT)
    assert m.kind == "exact" and m.read_text == "QRT7788"


def test_best_match_per_entry_is_the_best_read_among_look_alikes_then_edits() -> None:
    wl = make([WatchEntry("BD51234")], max_substitutions={"default": 2})
    # the top read differs from the listing only by look-alikes: it is what the officer must check
    [(_, m)] = wl.match([("8D51234", 0.9), ("B051234", 0.8), ("BD51234", 0.2)], at=AT)
    assert m.kind == "confusable" and m.read_text == "8D51234" and m.differences == ((0, "8", "B"),)
    [(_, m)] = wl.match([("XD51234", 0.9), ("BD51234", 0.2)], at=AT)
    assert m.kind == "exact" and m.read_text == "BD51234"  # a look-alike match beats an edit of a better read
    # 80S1234 is three look-alikes away (the limit is two): the next candidate, two away, matches
    [(_, m)] = wl.match([("BD5123", 0.95), ("80S1234", 0.9), ("B0S1234", 0.5)], at=AT)
    assert m.kind == "confusable" and m.read_text == "B0S1234"


def test_wildcards_and_limits() -> None:
    wl = make([WatchEntry("AB*12?", list="bolo"), WatchEntry("7?X9*", list="bolo")])
    assert [p for p, _ in hits(wl, "ABQQ129")] == ["AB*12?"]
    assert [p for p, _ in hits(wl, "AB121")] == ["AB*12?"]
    assert hits(wl, "ABQQQQ129") == []  # '*' covers at most 3 characters
    assert hits(wl, "A8Q129") == [("AB*12?", "wildcard (pos 2: read 8 listed B)")]
    assert [p for p, _ in hits(wl, "7KX9")] == ["7?X9*"]
    with pytest.raises(WatchlistError, match="entry 1: .*literal"):
        make([WatchEntry("A*?")])
    with pytest.raises(WatchlistError, match=r"entry 1: .*at most 2 '\*'"):
        make([WatchEntry("A*B*C*D")])
    with pytest.raises(WatchlistError, match=r"entry 1002: .*at most 1000 wildcard entries"):
        make([WatchEntry("PLAIN1")] + [WatchEntry(f"AB{i:04d}*") for i in range(1001)])


def test_expiry_effective_and_region() -> None:
    wl = make([
        WatchEntry("OLD1111", expires=datetime(2026, 5, 1, tzinfo=UTC)),
        WatchEntry("NEW2222", effective=datetime(2026, 7, 1, tzinfo=UTC)),
        WatchEntry("CAL3333", region="CA"),
    ])
    assert hits(wl, "OLD1111") == [] and hits(wl, "NEW2222") == []
    assert hits(wl, "OLD1111", at=datetime(2026, 4, 30, tzinfo=UTC)) != []
    assert hits(wl, "NEW2222", at=datetime(2026, 7, 2, tzinfo=UTC)) != []
    assert hits(wl, "CAL3333", region="NV") == []
    assert hits(wl, "CAL3333", region="ca") != [] and hits(wl, "CAL3333") != []


def test_results_in_priority_order_and_duplicates_across_lists() -> None:
    wl = make([WatchEntry("DUP1234", list="bolo", priority=3), WatchEntry("DUP1234", list="amber", priority=1)])
    assert [e.list for e, _ in wl.match([("DUP1234", 0.9)], at=AT)] == ["amber", "bolo"]


def test_invalid_plate_names_entry() -> None:
    with pytest.raises(WatchlistError, match=r"entry 2: plate 'AB\$12'"):
        make([WatchEntry("GOOD1"), WatchEntry("AB$12")])
    b = WatchlistBuilder()
    with pytest.raises(WatchlistError, match=r"entries\[0\], field 'priority'"):
        b.add_record({"plate": "ABC123", "priority": "high"}, "entries[0]")
    with pytest.raises(WatchlistError, match="unknown field"):
        b.add_record({"plate": "ABC123", "colour": "red"}, "entries[0]")


def test_confusable_classes_configurable() -> None:
    wl = make([WatchEntry("UVW1234")], confusables=("UV",), max_edit={"default": 0})
    assert [m for _, m in hits(wl, "VVW1234")] == ["confusable (pos 1: read V listed U)"]
    assert hits(wl, "UVW1Z34") == []  # 2/Z no longer confusable
    with pytest.raises(WatchlistError, match="both"):
        MatchOptions(confusables=("0O", "O8"))


def test_matches_agree_with_brute_force_on_random_list() -> None:
    """Index lookups find exactly what a direct scan with the same rules finds."""
    rng = random.Random(3)
    abc = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789OIQ"
    plates = {"".join(rng.choice(abc) for _ in range(rng.choice((5, 6, 7)))) for _ in range(1500)}
    wl = make([WatchEntry(p) for p in sorted(plates)])
    canon = str.maketrans("ODQIZSBG", "00012586")

    def close(read: str, plate: str) -> bool:
        a, b = read.translate(canon), plate.translate(canon)
        if len(a) == len(b):
            hard = sum(x != y for x, y in zip(a, b, strict=True))
            soft = sum(x != y for x, y in zip(read, plate, strict=True)) - hard
            return hard + soft <= 1 or (hard == 1 and soft <= 1)
        if abs(len(a) - len(b)) != 1:
            return False
        long_, short = (read, plate) if len(read) > len(plate) else (plate, read)
        for k in range(len(long_)):
            rest = long_[:k] + long_[k + 1:]
            same = rest.translate(canon) == short.translate(canon)
            if same and sum(x != y for x, y in zip(rest, short, strict=True)) <= 1:
                return True
        return False

    sample = sorted(plates)[::40]
    for p in sample:
        for read in (p, p[:-1], p + "7", "X" + p[1:], p.replace("0", "O"), p[:2] + "8" + p[3:]):
            got = {e.plate for e, _ in wl.match([(read, 0.9)], at=AT)}
            want = {q for q in plates if close(read, q)}
            assert got == want, read


def test_small_scale_speed_sanity() -> None:
    """Runs the benchmark machinery on a small list; checks results, not timings."""
    from picar.tools.bench_watchlist import run

    res = run(entries=5000, reads=50, n_cand=8, seed=1)
    for kind in ("exact", "confusable", "edit"):
        assert res["match_ms"][kind]["reads_with_hit"] == 50
    assert res["match_ms"]["miss"]["reads_with_hit"] <= 5
    assert res["load"]["total_s"] > 0 and res["index_mb"] > 0


def test_key_index_agrees_with_plain_search() -> None:
    """The blocked directory finds the same rows as a plain search, including long runs of one hash."""
    import numpy as np

    from picar.watchlist.index import _KeyIndex
    from picar.watchlist.matching import HASH_BITS as _HASH_BITS

    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 2**63, 3000, dtype=np.uint64) << np.uint64(1)
    hashes[100:180] = hashes[99]  # 81 rows share one hash: longer than a block
    keys = np.sort((hashes & _HASH_BITS) | np.arange(len(hashes), dtype=np.uint64))
    index = _KeyIndex(keys)
    queries = np.concatenate((hashes[[0, 99, 2999, 1500]], rng.integers(0, 2**63, 50, dtype=np.uint64)))
    q = queries & _HASH_BITS
    got = sorted(index.lookup(*np.unique(q, return_inverse=True)))
    want = sorted((j, int(r)) for j, h in enumerate(q) for r in np.nonzero((hashes & _HASH_BITS) == h)[0])
    assert got == want and len(want) >= 84
    assert list(_KeyIndex(keys[:0]).lookup(*np.unique(q, return_inverse=True))) == []

"""The catalogues (complete, current with the code, compiled), the fleet's terms, locale formatting, the language
a car gets from its config, and translated answers from the page's server and `picar k9 report`.

`scripts/i18n check` runs this file.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tomllib
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from picar.config import ConfigError, parse_config
from picar.i18n import LANGUAGES, N_, Message, cookie_language, language_for_regions, parse_language, translator
from picar.i18n.catalogue import po_path
from picar.i18n.extract import extract_html
from picar.i18n.page import page_catalogue, plural_categories
from picar.i18n.terms import TERMS, term
from picar.sources.camera import CameraState
from picar.station.k9 import KINDS, OUTCOMES, TRIGGERS, K9Error, K9Log, defer_publish
from picar.station.k9_cli import k9_main
from picar.station.server import StationServer
from picar.types import REJECT_REASONS, Match
from tests.untranslated import english_left

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
MARKERS = {"_", "gettext", "ngettext", "N_"}


def _po(lang: str) -> Catalog:
    with po_path(lang).open("rb") as f:  # type: ignore[arg-type]
        return read_po(f)


def _ids(catalog: Catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


@pytest.fixture(scope="module")
def extracted() -> set[str]:
    """What `pybabel extract` with babel.cfg finds in the code today."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    return {msg if isinstance(msg, str) else msg[0]
            for _, _, msg, _, _ in extract_from_dir(str(ROOT), method_map, options_map)}


def test_every_message_is_translated_in_every_language_with_its_placeholders() -> None:
    counts = {}
    for lang in LANGUAGES:
        catalog = _po(lang)
        problems = []
        for m in catalog:
            if not m.id:
                continue
            ids = (m.id,) if isinstance(m.id, str) else tuple(m.id)
            strings = (m.string,) if isinstance(m.string, str) else tuple(m.string)
            if m.fuzzy or not all(s.strip() for s in strings) or len(strings) != (1 if len(ids) == 1 else
                                                                                  catalog.num_plurals):
                problems.append(f"{ids[0]!r}: untranslated, fuzzy or missing a plural form")
            wanted = set(PLACEHOLDER.findall(ids[-1]))
            for s in strings:
                got = set(PLACEHOLDER.findall(s))
                # A plural form may leave out {n} (Russian "ЕЩЁ {n}" keeps it; "one" forms may spell it out).
                if got - wanted or wanted - got - {"{n}"}:
                    problems.append(f"{ids[0]!r} -> {s!r}: placeholders {sorted(got)} against {sorted(wanted)}")
        assert not problems, f"{lang}:\n" + "\n".join(problems)
        counts[lang] = len(_ids(catalog))
    print("messages per language:", counts)
    assert len(set(counts.values())) == 1 and counts["en"] > 200


def test_the_catalogues_hold_exactly_what_the_code_marks(extracted: set[str]) -> None:
    with (po_path("en").parent.parent.parent / "picar.pot").open("rb") as f:
        template = read_po(f)
    assert _ids(template) == extracted, "run scripts/i18n update: picar.pot is not what the code marks"
    for lang in LANGUAGES:
        ids = _ids(_po(lang))
        assert ids == extracted, (f"{lang}: missing {sorted(extracted - ids)[:10]}, "
                                  f"obsolete {sorted(ids - extracted)[:10]} (scripts/i18n update)")


def _marked_literals(source: str) -> set[str]:
    """Every string literal passed first to _(), gettext(), ngettext() or N_(), also inside f-strings."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        first = node.args[0]
        if name in MARKERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.add(first.value)
    return found


def test_no_marked_text_escapes_extraction(extracted: set[str]) -> None:
    """Babel's Python extractor does not look inside f-strings; the code must not hide marked text there."""
    assert _marked_literals("f'<b>{tr._(\"inside\")}</b>'") == {"inside"}  # the check sees what Babel misses
    missed = {}
    for path in (ROOT / "picar").rglob("*.py"):
        lost = _marked_literals(path.read_text()) - extracted
        if lost:
            missed[str(path.relative_to(ROOT))] = sorted(lost)
    assert not missed, f"marked but not extracted (take them out of f-strings): {missed}"


def test_the_compiled_catalogues_are_the_sources_compiled() -> None:
    for lang in LANGUAGES:
        catalog = _po(lang)
        fresh = io.BytesIO()
        write_mo(fresh, catalog)
        with po_path(lang).with_suffix(".mo").open("rb") as f:
            shipped = read_mo(f)
        fresh.seek(0)
        def messages(catalog: Catalog) -> dict[Any, Any]:
            return {m.id if isinstance(m.id, str) else tuple(m.id):
                    m.string if isinstance(m.string, str) else tuple(m.string) for m in catalog if m.id}

        want, got = messages(read_mo(fresh)), messages(shipped)
        assert got == want, f"{lang}: picar.mo is older than picar.po (scripts/i18n compile)"


def test_the_html_extractor_reads_marked_text_and_refuses_markup_inside() -> None:
    page = b'<p data-i18n>  Two\n words </p><img alt="a photo" data-i18n-attr="alt"><b>not marked</b>'
    found = [(line, text) for line, _, text, _ in extract_html(io.BytesIO(page), None, None, {})]
    assert found == [(1, "Two words"), (2, "a photo")]
    with pytest.raises(ValueError, match="line 2: <b> inside the data-i18n element of line 1"):
        list(extract_html(io.BytesIO(b"<p data-i18n>PLATE\n<b>X</b></p>"), None, None, {}))


def test_the_terms_name_exactly_the_codes_the_car_uses() -> None:
    assert tuple(TERMS["k9_type"]) == KINDS
    assert tuple(TERMS["k9_outcome"]) == OUTCOMES
    assert tuple(TERMS["k9_trigger"]) == TRIGGERS
    assert tuple(TERMS["reject_reason"]) == REJECT_REASONS
    assert tuple(TERMS["camera_state"]) == get_args(CameraState)
    assert tuple(TERMS["match_kind"]) == get_args(get_type_hints(Match)["kind"])
    assert term("priority", 7) == "low" and term("list", "fleet_special") == "fleet special"
    ro = translator("ro")
    assert ro._(term("k9_type", "building_search")) == "căutare în clădire"
    assert translator("ru")._(term("reject_reason", "not_the_vehicle")) == "не тот автомобиль"


def test_numbers_dates_and_plurals_follow_the_locale() -> None:
    ts = 1795000000.0  # 2026-11-18 11:06:40 UTC
    en, ro, ru = translator("en"), translator("ro"), translator("ru")
    assert [t.number(12345.67, 1) for t in (en, ro, ru)] == ["12,345.7", "12.345,7", "12\xa0345,7"]
    assert [t.percent(0.91) for t in (en, ro, ru)] == ["91%", "91\xa0%", "91\xa0%"]
    assert [t.celsius(36.44) for t in (en, ro)] == ["36.4°C", "36,4 °C"] and ru.celsius(-5).startswith("-5,0")
    assert en.datetime(ts) == "18 Nov 2026, 11:06:40"  # English the European way: 24 hours, day first
    assert ro.datetime(ts) == "18 nov. 2026, 11:06:40"
    assert ru.datetime(ts) == "18 нояб. 2026\u202fг., 11:06:40"
    assert [t.time(ts) for t in (en, ro, ru)] == ["11:06:40"] * 3
    forms = [ru.ngettext("{n} deployment", "{n} deployments", n) for n in (1, 3, 5, 21, 1000)]
    assert forms == ["1 применение", "3 применения", "5 применений", "21 применение", "1\xa0000 применений"]
    assert [ro.ngettext("{n} deployment", "{n} deployments", n) for n in (1, 2, 20)] == [
        "1 intervenție", "2 intervenții", "20 de intervenții"]
    assert en.ngettext("{n} deployment", "{n} deployments", 1) == "1 deployment"


def test_the_page_gets_plural_forms_by_cldr_category_and_the_locale_formats() -> None:
    ru = page_catalogue("ru")
    forms = ru["plurals"]["Storage full: {n} record kept in memory"]
    assert forms["one"].endswith("запись хранится в памяти") and forms["few"].endswith("записи хранятся в памяти")
    assert forms["many"].endswith("записей хранятся в памяти")
    assert ru["formats"] == {"locale": "ru", "decimal": ",", "group": "\xa0", "minus": "-", "percent": ["", "\xa0%"],
                             "celsius": ["", " °C"], "time": "HH:mm:ss"}
    assert ru["languages"] == {"en": "English", "ro": "Română", "ru": "Русский"}
    assert ru["terms"]["k9_outcome"]["found"] == "обнаружено" and ru["messages"]["NO LIST"] == "НЕТ СПИСКА"
    for lang in LANGUAGES:  # the page's clock writes only H, m and s
        assert set(page_catalogue(lang)["formats"]["time"]) <= set("Hms:"), lang
    # A catalogue whose Plural-Forms split a CLDR category is refused rather than shown wrong.
    odd = Catalog(locale="ru")
    odd._num_plurals, odd._plural_expr = 2, "(n != 1)"
    with pytest.raises(ValueError, match="splits CLDR category"):
        plural_categories("ru", odd)


def test_the_untranslated_check_finds_english_and_passes_the_language() -> None:
    assert english_left(["FĂRĂ LISTĂ", "acum 5 s", "Rex · CĂUTARE ÎN CLĂDIRE", "camera a citit ABC"], "ro") == []
    left = english_left(["LIST 7", "Rex · AREA SEARCH", "5 s ago"], "ro")
    # Each text is caught by its own message; other messages may catch a word of it too ("List", "Search").
    assert {("LIST", "LIST 7"), ("area search", "Rex · AREA SEARCH"), ("s ago", "5 s ago")} <= {
        (x.english, x.text) for x in left}
    assert {x.english for x in english_left(["НЕТ СПИСКА", "NO LIST"], "ru")} >= {"NO LIST", "LIST"}
    assert not english_left(["НЕТ СПИСКА"], "ru")


def test_language_names_and_the_cookie() -> None:
    assert [parse_language(x) for x in ("RO", "ru-MD", "en_GB", "de", None, 3)] == ["ro", "ru", "en", None, None,
                                                                                    None]
    assert cookie_language("picar_station=abc; picar_lang=ru") == "ru"
    assert cookie_language("picar_lang=<script>") is None and cookie_language(None) is None
    assert language_for_regions(["auto", "md"]) == "ro" and language_for_regions(["eu", "us"]) == "en"


def _config(extra: str, region: str = "auto") -> str:
    return (f'[vehicle]\nid = "car-1"\n[[cameras]]\nname = "front"\nsource = "rtsp://10.0.0.2/stream"\n'
            f'region = "{region}"\n{extra}')


def test_a_moldovan_car_speaks_romanian_unless_its_config_says_otherwise(tmp_path: Path) -> None:
    def language(text: str) -> str:
        return str(parse_config(tomllib.loads(text), base_dir=tmp_path).ui.language)

    assert language(_config("")) == "en"
    assert language(_config("", region="md")) == "ro"
    assert language(_config('[models]\nregion = "ro"\n')) == "ro"
    assert language(_config('[ui]\nlanguage = "ru"\n', region="md")) == "ru"
    with pytest.raises(ConfigError) as err:
        parse_config(tomllib.loads(_config('[ui]\nlanguage = "de"\n')), base_dir=tmp_path)
    assert 'ui.language = "de": allowed: "en", "ro", "ru"' in str(err.value)


def test_errors_are_messages_english_by_default_translated_on_request(tmp_path: Path) -> None:
    k9 = K9Log(tmp_path / "k9.sqlite", defer_publish, lambda: None)
    try:
        with pytest.raises(K9Error) as err:
            k9.start("", "Popescu", "track")
        assert str(err.value) == "dog is required"
        assert translator("ro").message(err.value.message) == "câinele: câmp obligatoriu"
        assert translator("ru").message(err.value.message) == "собака: обязательное поле"
    finally:
        k9.close()
    # A translation that lost a placeholder still says something, in English.
    broken = Message.of(N_("{field} is required"), field="x")
    assert broken.render(lambda s: "{missing} lipsește") == "x is required"


def _request(url: str, path: str, cookie: str = "", body: Any = None) -> tuple[int, dict[str, Any]]:
    import http.client

    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=5)
    headers = {"Authorization": "Bearer car-17-station-token", "Cookie": cookie}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request("POST" if body is not None else "GET", path, json.dumps(body) if body is not None else None, headers)
    res = conn.getresponse()
    out = res.status, json.loads(res.read())
    conn.close()
    return out


def test_the_page_server_answers_in_the_cars_or_the_officers_language(tmp_path: Path) -> None:
    k9 = K9Log(tmp_path / "k9.sqlite", defer_publish, lambda: None)
    srv = StationServer("127.0.0.1", 0, "car-17-station-token", dict, lambda *a: {}, k9, tmp_path, language="ro")
    url = srv.start()
    try:
        bad = {"dog": "Rex", "handler": "Popescu", "type": "sniff"}
        code, answer = _request(url, "/api/k9/start", body=bad)
        assert code == 400 and answer["error"].startswith("tipul: 'sniff' nu este permis; folosiți unul dintre: track")
        code, answer = _request(url, "/api/k9/start", cookie="picar_lang=ru", body=bad)
        assert code == 400 and answer["error"].startswith("вид работы: значение 'sniff' недопустимо")
        code, answer = _request(url, "/api/k9/start", cookie="picar_lang=en", body=bad)
        assert answer["error"].startswith("type 'sniff' is not allowed; use one of: track")
        code, answer = _request(url, "/api/i18n")
        assert code == 200 and answer["language"] == "ro" and answer["default"] == "ro"
        assert answer["messages"]["ACCEPT HIT"] == "CONFIRMĂ ALERTA"
        assert _request(url, "/api/i18n?lang=ru")[1]["language"] == "ru"
        assert _request(url, "/api/i18n?lang=xx", cookie="picar_lang=en")[1]["language"] == "en"
        code, answer = _request(url, "/api/hits/h-1/disposition", cookie="picar_lang=ru",
                                body={"decision": "reject", "reason": "other"})
        assert code == 400 and answer["error"] == "для причины 'other' (другое) нужно примечание"
    finally:
        srv.stop()
        k9.close()
    with pytest.raises(ValueError, match="station language 'de'"):
        StationServer("127.0.0.1", 0, None, dict, lambda *a: {}, None, tmp_path, language="de")


def test_the_k9_report_in_romanian_and_russian(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "k9.sqlite")
    assert k9_main(["start", "--db", db, "--dog", "Rex", "--handler", "plt. Popescu", "--type", "building_search",
                    "--case", "CH-2026-118", "--lang", "ro"]) == 0
    dep_id = capsys.readouterr().out.split()[0]
    assert k9_main(["end", "--db", db, dep_id, "--outcome", "found", "--lang", "ro"]) == 0
    capsys.readouterr()
    for lang, words in (("ro", ("Raportul intervențiilor echipei canine", "căutare în clădire",
                                "Niciun traseu GPS înregistrat.", "1 intervenție")),
                        ("ru", ("Отчёт о применении служебных собак", "поиск в здании",
                                "GPS-маршрут не записан.", "1 применение"))):
        out = tmp_path / f"k9-{lang}.html"
        assert k9_main(["report", "--db", db, "--from", "2020-01-01", "--to", "2035-12-31", "--html", str(out),
                        "--lang", lang]) == 0
        printed = capsys.readouterr().out
        assert printed.splitlines()[-1] == words[3] and "building_search" in printed  # codes kept for grep
        page = out.read_text()
        assert f"<html lang='{lang}'>" in page and all(w in page for w in words[:3]), page
        assert 'data-code="building_search"' in page and 'data-code="found"' in page  # the CSV's codes
        texts = [t for t in re.split(r"<[^>]+>", re.sub(r"<style>.*?</style>", "", page)) if t.strip()]
        assert not english_left(texts, lang), english_left(texts, lang)
    assert k9_main(["end", "--db", db, "nope", "--outcome", "found", "--lang", "ru"]) == 2
    assert "нет записи о применении служебной собаки 'nope'" in capsys.readouterr().err


def test_server_rendered_pages_share_the_catalogue_and_escape_what_they_insert(tmp_path: Path) -> None:
    """The HQ console's way (picar/i18n/jinja.py): Jinja2 templates, extracted by babel.cfg's jinja2 section."""
    from jinja2 import FileSystemLoader

    from picar.i18n.jinja import environment

    folder = tmp_path / "picar" / "hq" / "templates"
    folder.mkdir(parents=True)
    (folder / "fleet.html").write_text(
        '<h1>{{ _("NO LIST") }}</h1><p>{{ _("camera {name}", name=camera) }} · '
        '{{ ngettext("{n} deployment", "{n} deployments", n) }} · {{ term("k9_outcome", "found") }} · '
        '{{ x|number(1) }}</p>')
    loader = FileSystemLoader(folder)
    page = environment(loader, "ru").get_template("fleet.html").render(camera="<script>", n=3, x=1234.5)
    assert page == ("<h1>НЕТ СПИСКА</h1><p>камера &lt;script&gt; · 3 применения · обнаружено · 1\xa0234,5</p>")
    assert "LISTA" not in environment(loader, "en").get_template("fleet.html").render(camera="c", n=1, x=0)
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = {m[2] if isinstance(m[2], str) else m[2][0] for m in extract_from_dir(str(tmp_path), method_map,
                                                                                  options_map)}
    assert found == {"NO LIST", "camera {name}", "{n} deployment"}

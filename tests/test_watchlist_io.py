"""Watchlist import (CSV, NCIC-style fixed width), the CLI, and publishing to a real Mosquitto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from picar.hq.cli import hq_main
from picar.watchlist.cli import watchlist_main
from picar.watchlist.index import Watchlist
from picar.watchlist.io import WatchlistImportError, read_csv, read_ncic
from picar.watchlist.sync import WatchlistStore
from picar.watchlist.update import snapshot_payload
from tests.broker import Mosquitto, Subscriber

AT = datetime(2026, 6, 1, tzinfo=UTC)

CSV_OK = """plate,state,list,priority,covert,effective,expires,description,reason,notes,source
abc-1234,ca,SV,,no,,2026-12-31,red Honda Civic,stolen 2026-05-02,,CHP
7XYZ 99,,amber,1,yes,2026-05-01,,white van,AMBER alert,child 6y,
"""


def ncic_line(code: str, plate: str, state: str = "", ptype: str = "", expiry: str = "", case: str = "",
              covert: str = "", desc: str = "") -> str:
    return f"{code:<4}{plate:<10}{state:<2}{ptype:<2}{expiry:<8}{case:<20}{covert:<1}{desc}"


def test_csv_import(tmp_path: Path) -> None:
    recs = read_csv(tmp_path / "l.csv", CSV_OK)
    wl = Watchlist.from_records(recs)
    assert [(e.plate, m.kind) for e, m in wl.match([("7XYZ99", 0.9)], region="NV", at=AT)] == [("7XYZ99", "exact")]
    assert recs[0] == {"plate": "ABC1234", "region": "CA", "list": "stolen_vehicle", "priority": 2,
                       "expires": "2026-12-31", "description": "red Honda Civic",
                       "reason": "stolen 2026-05-02", "source": "CHP"}
    assert recs[1]["plate"] == "7XYZ99" and recs[1]["covert"] is True and recs[1]["priority"] == 1


@pytest.mark.parametrize(("text", "message"), [
    ("plate,list\nABC123,stolen_vehicle\nAB#12,stolen_vehicle\n", r"line 3, field 'plate': plate 'AB#12'"),
    ("plate,priority\nABC123,1\nXYZ123,high\n", r"line 3, column 'priority': 'high'"),
    ("plate,covert\nABC123,maybe\n", r"line 2, column 'covert'"),
    ("plate,expires\nABC123,31/12/2026\n", r"line 2, field 'expires': '31/12/2026'"),
    ("plate,colour\nABC123,red\n", r"line 1, column 2: unknown column 'colour'"),
    ("list\nstolen_vehicle\n", r"line 1: no 'plate' column"),
    ("plate,list\nABC123\n", r"line 2: 1 columns, the header has 2"),
])
def test_csv_bad_line_names_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WatchlistImportError, match=message):
        read_csv(tmp_path / "bad.csv", text)


def test_ncic_import(tmp_path: Path) -> None:
    text = "\n".join([
        "# extract 2026-06-01",
        ncic_line("SV", "ABC1234", "CA", "PC", "20261231", "CHP-2026-000123", "", "2019 HOND CIV RED"),
        ncic_line("MP", "7XYZ99", "NV", "", "", "NV-77", "Y", "WHI FORD TRANSIT"),
        ncic_line("BOLO", "AB*12?"),
        "",
    ])
    recs = read_ncic(tmp_path / "x.txt", text)
    assert recs[0] == {"plate": "ABC1234", "list": "stolen_vehicle", "priority": 2, "region": "CA",
                       "expires": "2026-12-31", "reason": "stolen vehicle, case CHP-2026-000123",
                       "notes": "plate type PC", "description": "2019 HOND CIV RED",
                       "source": "NCIC extract x.txt"}
    assert (recs[1]["list"], recs[1]["priority"], recs[1]["covert"]) == ("amber", 1, True)
    assert recs[2]["plate"] == "AB*12?" and recs[2]["list"] == "bolo"


@pytest.mark.parametrize(("line", "message"), [
    (ncic_line("XX", "ABC123"), r"line 2, columns 1-4 \(list code\): 'XX'"),
    (ncic_line("SV", "AB%123"), r"line 2, field 'plate': plate 'AB%123'"),
    (ncic_line("SV", "ABC123", "CA", "PC", "20261340"), r"line 2, columns 19-26 \(expiry date\)"),
    (ncic_line("SV", "ABC123", "CA", "PC", "", "", "Q"), r"line 2, column 47 \(covert flag\)"),
    ("SV  AB", r"line 2: 6 characters"),
])
def test_ncic_bad_line_names_line(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(WatchlistImportError, match=message):
        read_ncic(tmp_path / "x.txt", ncic_line("SV", "GOOD123") + "\n" + line + "\n")


def test_cli_import_sign_apply_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "list.csv").write_text(CSV_OK)
    assert hq_main(["keygen", "--out", str(tmp_path / "hq")]) == 0
    snap, signed = tmp_path / "snap.json", tmp_path / "snap.signed"
    assert watchlist_main(["import", str(tmp_path / "list.csv"), "--out", str(snap), "--version", "7",
                           "--list-id", "north"]) == 0
    assert json.loads(snap.read_bytes())["version"] == 7
    assert hq_main(["watchlist", "sign", str(snap), "--key", str(tmp_path / "hq.key"), "--out", str(signed)]) == 0
    car = tmp_path / "car"
    args = ["apply", str(signed), "--dir", str(car), "--key", str(tmp_path / "hq.pub")]
    assert watchlist_main(args) == 0
    assert watchlist_main(args) == 1  # the same version again is out of order
    assert "REJECTED: out of order" in capsys.readouterr().out
    assert watchlist_main(["apply", str(snap), "--dir", str(car), "--key", str(tmp_path / "hq.pub")]) == 1
    assert "unsigned" in capsys.readouterr().out
    assert watchlist_main(["show", "--dir", str(car)]) == 0
    out = capsys.readouterr().out
    assert "version 7" in out and "ABC1234" in out and "7XYZ99" in out
    assert watchlist_main(["stats", str(signed), "--key", str(tmp_path / "hq.pub")]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] == 2 and stats["lists"] == {"stolen_vehicle": 1, "amber": 1} and stats["covert"] == 1
    assert watchlist_main(["match", "A8C1234", "--dir", str(car)]) == 0
    assert "confusable (pos 2: read 8 listed B)" in capsys.readouterr().out
    assert watchlist_main(["match", "QQQ999", "--dir", str(car)]) == 3


def test_cli_import_error_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.csv").write_text("plate\nOK123\nNOT OK!\n")
    assert watchlist_main(["import", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o.json")]) == 1
    assert "bad.csv line 3" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()


def test_sign_refuses_malformed_payload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hq_main(["keygen", "--out", str(tmp_path / "hq")])
    bad = tmp_path / "bad.json"
    bad.write_bytes(snapshot_payload([{"plate": "AB$"}], version=1))
    assert hq_main(["watchlist", "sign", str(bad), "--key", str(tmp_path / "hq.key"),
                    "--out", str(tmp_path / "s")]) == 1
    assert "entries[0], field 'plate'" in capsys.readouterr().err


def test_publish_retained_reaches_a_car_that_connects_later(tmp_path: Path) -> None:
    hq_main(["keygen", "--out", str(tmp_path / "hq")])
    snap = tmp_path / "snap.json"
    snap.write_bytes(snapshot_payload([{"plate": "RET1234", "list": "wanted", "priority": 1}], version=3))
    creds = tmp_path / "creds"
    creds.write_text("username=hq\npassword=s3cret\n")
    with Mosquitto(tmp_path, tls=True, users={"hq": "s3cret", "car1": "pw"}) as broker:
        assert broker.tls is not None
        rc = hq_main(["watchlist", "publish", str(snap), "--key", str(tmp_path / "hq.key"),
                      "--host", broker.host, "--port", str(broker.port), "--tls",
                      "--ca", str(broker.tls.ca_file), "--cert", str(broker.tls.client("hq").cert_file),
                      "--keyfile", str(broker.tls.client("hq").key_file), "--credentials", str(creds),
                      "--vehicle", "car1"])
        assert rc == 0
        # The car was offline while HQ published; it subscribes afterwards and gets the retained update.
        with Subscriber(broker, ["picar/v1/car1/watchlist"], username="car1", password="pw") as car:
            assert car.wait_for(lambda m: len(m) >= 1, timeout=30)
            msg = car.messages[0]
    assert msg.retain and msg.qos == 1
    store = WatchlistStore(tmp_path / "car", tmp_path / "hq.pub")
    store.load()
    r = store.apply_update(msg.payload, origin=msg.topic)
    assert r.accepted and r.signed and store.version == 3
    [(entry, m)] = store.current.match([("RET1234", 0.9)], at=AT)
    assert entry.list == "wanted" and m.kind == "exact"


def test_publish_to_missing_broker_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.broker import free_port

    hq_main(["keygen", "--out", str(tmp_path / "hq")])
    snap = tmp_path / "snap.json"
    snap.write_bytes(snapshot_payload([{"plate": "X12345"}], version=1))
    rc = hq_main(["watchlist", "publish", str(snap), "--key", str(tmp_path / "hq.key"), "--host", "127.0.0.1",
                  "--port", str(free_port()), "--timeout", "2"])
    assert rc == 1 and "refused" in capsys.readouterr().err.lower()


# A Moldovan HQ's lists: Romanian or Russian headers, Cyrillic descriptions, plates typed in Cyrillic.
CSV_RO = ("Număr de înmatriculare,Motiv,Prioritate,Descriere,Secret\n"
          "ABC 123,furt,1,Dacia Logan albă,nu\n"
          "C AB 123,căutat,2,Автомобиль ВАЗ-2107 синий,da\n")
CSV_RU = ("Госномер;Причина;Приоритет;Описание\n"
          "ВХ 1234 АХ;угон;1;Тойота Камри, чёрная\n"
          "Т 123 ЕК;розыск;3;грузовик МАЗ\n")


def test_csv_with_romanian_headers_imports_and_matches(tmp_path: Path) -> None:
    path = tmp_path / "lista.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV_RO.encode())  # UTF-8 with a byte order mark, as Excel saves it
    recs = read_csv(path)
    assert recs[0] == {"plate": "ABC123", "reason": "furt", "priority": 1, "description": "Dacia Logan albă"}
    assert recs[1]["plate"] == "CAB123" and recs[1]["covert"] is True
    assert recs[1]["description"] == "Автомобиль ВАЗ-2107 синий"
    wl = Watchlist.from_records(recs)
    assert [e.description for e, _ in wl.match([("CAB123", 0.9)], at=AT)] == ["Автомобиль ВАЗ-2107 синий"]


def test_csv_with_russian_headers_reads_cyrillic_plates_as_latin(tmp_path: Path) -> None:
    path = tmp_path / "spisok.csv"
    path.write_text(CSV_RU, encoding="utf-8")  # no BOM; ';' as Excel saves it where ',' is the decimal mark
    recs = read_csv(path)
    # В Х А Т Е К are Cyrillic on the list: the OCR reads their Latin look-alikes
    assert [r["plate"] for r in recs] == ["BX1234AX", "T123EK"]
    assert recs[0] == {"plate": "BX1234AX", "reason": "угон", "priority": 1, "description": "Тойота Камри, чёрная"}
    wl = Watchlist.from_records(recs)
    assert [(e.plate, m.kind) for e, m in wl.match([("BX1234AX", 0.9)], at=AT)] == [("BX1234AX", "exact")]


def test_csv_russian_quoted_description_keeps_its_comma(tmp_path: Path) -> None:
    text = 'Номер,Причина,Описание\n"ВХ-1234-АХ",угон,"Тойота Камри, чёрная"\n'
    recs = read_csv(tmp_path / "l.csv", text)
    assert recs == [{"plate": "BX1234AX", "reason": "угон", "description": "Тойота Камри, чёрная"}]


@pytest.mark.parametrize(("text", "message"), [
    # Ж and Ц have no Latin twin: the line and the column are named, and the letters
    ("Номер,Причина\nВХ1234АХ,угон\n7686ЖЦ,угон\n", r"line 3, column 'Номер': plate '7686ЖЦ' has Ж, Ц"),
    ("Număr de înmatriculare,Prioritate\nABC123,înaltă\n", r"line 2, column 'Prioritate': 'înaltă' is not an integer"),
    ("Număr de înmatriculare,Culoare\nABC123,roșu\n", r"line 1, column 2: unknown column 'Culoare'"),
])
def test_csv_localised_errors_name_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WatchlistImportError, match=message):
        read_csv(tmp_path / "bad.csv", text)

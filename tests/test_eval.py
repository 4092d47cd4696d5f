"""`picar eval` on tiny folders the test draws: detection counts, splits, end-to-end and OCR plumbing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from picar.paths import DEFAULT_DETECTOR, DEFAULT_OCR
from picar.pipeline.loop import crop_plate
from picar.tools.eval import eval_main, first_plate_right, iou_matrix, match_boxes
from picar.tools.eval_data import EvalError, hash_split, load_detect_folder, load_texts, read_yolo
from picar.vision.detector import PlateDetector
from picar.vision.ocr import PlateOcr
from tests.test_detector import draw_scene, paste_plate

W, H = 1280, 720
# per image: (name, split, plates as (cx, cy, width)); plate boxes are labelled in this order
IMAGES = [
    ("drive_a_t001", "val", [(400, 520, 200)]),
    ("drive_a_t002", "val", [(800, 450, 150), (300, 600, 230)]),
    ("drive_b_t001", "val", []),
    ("drive_c_t001", "train", [(640, 500, 180)]),
]
TEXT = "B123ABC"  # what draw_scene writes on every plate (spaces dropped)


def write_folder(root: Path, phantom: bool = True) -> tuple[Path, int]:
    """A detect folder; with `phantom`, one extra val label where nothing is drawn (a sure miss).
    Returns (folder, number of drawn val plates)."""
    folder = root / "ro_test"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    rng = np.random.default_rng(3)
    drawn = 0
    with (folder / "index.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["file", "n_plates", "suggested_split"])
        for name, split, plates in IMAGES:
            img, boxes = draw_scene(rng, W, H, plates)
            cv2.imwrite(str(folder / "images" / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if phantom and name == "drive_b_t001":
                boxes = [(100, 100, 120, 26)]
            lines = [f"0 {(x + w / 2) / W:.6f} {(y + h / 2) / H:.6f} {w / W:.6f} {h / H:.6f}" for x, y, w, h in boxes]
            (folder / "labels" / f"{name}.txt").write_text("\n".join(lines) + "\n")
            wr.writerow([name, len(boxes), split])
            drawn += len(plates) if split == "val" else 0
    return folder, drawn


def test_eval_scores_detection_writes_json_and_failure_sheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, drawn = write_folder(tmp_path)
    out, png = tmp_path / "scores.json", tmp_path / "fail.png"
    assert eval_main(["--data", str(folder), "--json", str(out), "--failures", str(png)]) == 0
    report = json.loads(out.read_text())
    c = report["detection"]["ro_test"]
    assert c["images"] == 3  # the train image is not scored
    assert c["tp"] + c["fn"] == drawn + 1
    assert c["tp"] == drawn, f"drawn plates missed: {c}"
    assert c["fn"] == 1  # the phantom label
    assert c["recall"] == pytest.approx(drawn / (drawn + 1))
    assert report["failures_total"] >= 1
    sheet = cv2.imread(str(png))
    assert sheet is not None and sheet.shape[1] == 4 * 320
    printed = capsys.readouterr().out
    assert "ro_test" in printed and "recall" in printed


def test_eval_split_all_and_folder_of_folders(tmp_path: Path) -> None:
    write_folder(tmp_path, phantom=False)
    out = tmp_path / "all.json"
    assert eval_main(["--data", str(tmp_path), "--split", "all", "--json", str(out)]) == 0
    c = json.loads(out.read_text())["detection"]["ro_test"]
    assert c["images"] == 4 and c["tp"] + c["fn"] == 4


def test_load_detect_folder_uses_index_or_hash_split(tmp_path: Path) -> None:
    folder, _ = write_folder(tmp_path)
    val, how = load_detect_folder(folder, "val")
    assert [p.path.stem for p in val] == ["drive_a_t001", "drive_a_t002", "drive_b_t001"]
    assert "index.csv" in how
    (folder / "index.csv").unlink()
    val2, how2 = load_detect_folder(folder, "val")
    assert "SHA-1" in how2
    assert [p.path.stem for p in val2] == [n for n, _, _ in IMAGES if hash_split(n) == "val"]
    assert len(load_detect_folder(folder, "all")[0]) == 4


def test_match_boxes_greedy_by_score() -> None:
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float64)
    pred = np.array([[0, 0, 10, 9], [1, 0, 10, 10], [50, 50, 60, 60]], np.float64)
    tp, owner = match_boxes(pred, np.array([0.5, 0.9, 0.8]), gt)
    assert tp.tolist() == [False, True, False]
    assert owner.tolist() == [1, -1]
    assert iou_matrix(pred[:1], gt[:1])[0, 0] == pytest.approx(0.9)


def test_bad_inputs_name_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.txt"
    bad.write_text("0 0.5 0.5 0.1 0.1\n0 0.5 oops 0.1 0.1\n")
    with pytest.raises(EvalError, match=r"x.txt:2"):
        read_yolo(bad)
    texts = tmp_path / "t.csv"
    texts.write_text("source_image,box_index,text\nimg1,0,B1ABC\nimg2,first,B2ABC\n")
    with pytest.raises(EvalError, match=r"t.csv:3.*'first'"):
        load_texts(texts)
    assert eval_main(["--data", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().out


GOLDEN = {p.stem.split("_")[-1]: p for p in (Path(__file__).parent / "data" / "ocr").glob("*.jpg")}
WRONG = "ZZZ999"  # a label no plate in these tests shows: that plate can never count as read


def paste_golden(img: np.ndarray, box: tuple[int, int, int, int], plate: str) -> tuple[int, int, int, int]:
    """The golden crop of `plate` (tests/data/ocr) over a blank drawn plate; returns the new plate box."""
    return paste_plate(img, box, cv2.imread(str(GOLDEN[plate]), cv2.IMREAD_COLOR))


def test_end_to_end_and_ocr_folder_counts(tmp_path: Path) -> None:
    """The counts add up on plates any sane model reads (golden crops) and labels no read can match. The
    shipped models are not pinned to their exact reads: a floor with a margin of one plate is asserted."""
    # Detection folder: the val plates are golden crops on drawn cars; one plate's label is wrong.
    golden = {"drive_a_t001": ["AG71XZP"], "drive_a_t002": ["HQQ9249", "GQA4D93"], "drive_c_t001": ["IF878FK"]}
    labels = {"drive_a_t001": ["AG71XZP"], "drive_a_t002": ["HQQ9249", WRONG], "drive_c_t001": ["IF878FK"]}
    folder = tmp_path / "ro_test"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    rng = np.random.default_rng(3)
    with (folder / "index.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["file", "n_plates", "suggested_split"])
        for name, split, plates in IMAGES:
            img, blank = draw_scene(rng, W, H, plates, text="")
            boxes = [paste_golden(img, b, plate) for b, plate in zip(blank, golden.get(name, []), strict=True)]
            cv2.imwrite(str(folder / "images" / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            (folder / "labels" / f"{name}.txt").write_text("".join(
                f"0 {(x + w / 2) / W:.6f} {(y + h / 2) / H:.6f} {w / W:.6f} {h / H:.6f}\n" for x, y, w, h in boxes))
            wr.writerow([name, len(boxes), split])
    texts = tmp_path / "texts.csv"
    texts.write_text("source_image,box_index,text\n" + "".join(
        f"{name},{j},{text}\n" for name, plates in labels.items() for j, text in enumerate(plates)))
    # OCR folder: three val crops labelled with their plate, one val crop labelled wrong, one train crop.
    ocr_dir = tmp_path / "ocr"
    (ocr_dir / "images").mkdir(parents=True)
    rows = ["file,text,suggested_split"]
    for plate, label, split in [("AG71XZP", "AG71XZP", "val"), ("HQQ9249", "HQQ9249", "val"),
                                ("IE2552HX", "IE2552HX", "val"), ("A45MCS", WRONG, "val"),
                                ("IF878FK", "IF878FK", "train")]:
        (ocr_dir / "images" / f"{plate}.jpg").write_bytes(GOLDEN[plate].read_bytes())
        rows.append(f"images/{plate}.jpg,{label},{split}")
    (ocr_dir / "labels.csv").write_text("\n".join(rows) + "\n")

    out, sheet = tmp_path / "e2e.json", tmp_path / "fail.png"
    misses = tmp_path / "misses.csv"
    rc = eval_main(["--data", str(folder), "--texts", str(texts), "--ocr-data", str(ocr_dir), "--json", str(out),
                    "--failures", str(sheet), "--misses", str(misses)])
    assert rc == 0
    report = json.loads(out.read_text())
    # every plate not read right, one row each: the two wrong labels among them, with what was read instead
    with misses.open() as fh:
        rows_missed = list(csv.DictReader(fh))
    c = report["detection"]["ro_test"]
    assert len(rows_missed) == report["misses"] == (3 - c["e2e_correct"]) + (4 - report["ocr"]["correct"])
    wrong = [r for r in rows_missed if r["text"] == WRONG]
    assert len(wrong) == 2 and all(r["outcome"] == "misread" and r["read"] and r["rank"] == "0" for r in wrong)
    assert {Path(r["file"]).stem for r in wrong} == {"drive_a_t002", "A45MCS"}
    c = report["detection"]["ro_test"]
    assert (c["images"], c["e2e_total"], c["e2e_detected"]) == (3, 3, 3), c  # the train image is not scored
    assert 1 <= c["e2e_correct"] <= 2, c  # two golden plates (a margin of one); the wrong label never counts
    assert c["photos_with_text"] == 2 and 1 <= c["first_plate_right"] <= 2, c
    assert report["ocr"]["crops"] == 4
    assert 2 <= report["ocr"]["correct"] <= 3, report["ocr"]  # three golden crops (margin one); never WRONG
    assert report["failures_total"] >= 2  # the two wrong labels are listed as misreads
    # Names relative to images/ (as ar_cnn_ocr_lp lists them) resolve too, and --vote reads two cuts.
    (ocr_dir / "labels.csv").write_text("\n".join(r.replace("images/", "") for r in rows) + "\n")
    rc = eval_main(["--ocr-data", str(ocr_dir), "--vote", "--json", str(out)])
    assert rc == 0
    voted = json.loads(out.read_text())
    assert voted["ocr_vote"] is True and voted["ocr"]["crops"] == 4
    assert 2 <= voted["ocr"]["correct"] <= 3, voted["ocr"]


def test_region_fits_reads_and_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golden = sorted(GOLDEN.values())
    ocr_dir = tmp_path / "ocr"
    (ocr_dir / "images").mkdir(parents=True)
    rows = ["file,text"]
    for path in golden:
        (ocr_dir / "images" / path.name).write_bytes(path.read_bytes())
        rows.append(f"images/{path.name},{path.stem.split('_')[-1]}")
    (ocr_dir / "labels.csv").write_text("\n".join(rows) + "\n")
    for region in (None, "auto", "eu"):
        out = tmp_path / f"{region}.json"
        flags = ["--region", region] if region else []
        assert eval_main(["--ocr-data", str(ocr_dir), "--json", str(out), *flags]) == 0
        report = json.loads(out.read_text())
        assert report["ocr_region"] == region
        # every golden plate is a valid plate: fitting reads to formats must not lose one
        assert report["ocr"]["correct"] == report["ocr"]["crops"] == len(golden) >= 8, region
    with pytest.raises(SystemExit):
        eval_main(["--ocr-data", str(ocr_dir), "--region", "mars"])
    assert "invalid choice: 'mars'" in capsys.readouterr().err


def test_texts_take_an_image_column_and_a_split(tmp_path: Path) -> None:
    texts = tmp_path / "t.csv"
    texts.write_text("image,box_index,text,suggested_split\na.jpg,0,ab12cd,val\nb.jpg,1,XY99ZZ,train\n")
    assert load_texts(texts) == {("a", 0): "AB12CD", ("b", 1): "XY99ZZ"}
    assert load_texts(texts, "val") == {("a", 0): "AB12CD"}
    plain = tmp_path / "p.csv"
    plain.write_text("source_image,box_index,text\na,0,AB12CD\n")
    with pytest.raises(EvalError, match="no suggested_split column"):
        load_texts(plain, "val")


def test_the_first_plate_of_a_photo_counts_only_if_it_spells_a_label() -> None:
    img, blank = draw_scene(np.random.default_rng(5), 1280, 720, [(300, 420, 220)], text="")
    paste_golden(img, blank[0], "AG71XZP")
    detector = PlateDetector(DEFAULT_DETECTOR)
    reader = PlateOcr(DEFAULT_OCR)
    dets = detector.detect(img)
    assert dets
    reads = reader.read([crop_plate(img, d) for d in dets])
    assert first_plate_right(dets, reads, {"AG71XZP", WRONG})
    assert not first_plate_right(dets, reads, {WRONG})
    assert not first_plate_right([], [], {"AG71XZP"})

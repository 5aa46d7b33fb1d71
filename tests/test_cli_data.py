"""Bring your own data from the command line: a multi-class split folder trains, evaluates and
predicts with flags only; `segnas data check`; bad input is one line, never a traceback."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from segnas_lite.cli import main
from test_data_layouts import VOID, broken_folder, split_folder

CLASSES = ["--num-classes", "3", "--ignore-index", str(VOID), "--class-names", "sky,road,car"]


@pytest.fixture(scope="module")
def camvid_like(tmp_path_factory):
    return split_folder(tmp_path_factory.mktemp("camvid"), counts={"train": 8, "val": 4, "test": 3})


@pytest.fixture(scope="module")
def trained(camvid_like, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--model", "lraspp_mobilenetv3_small", "--data", str(camvid_like),
                 *CLASSES, "--image-size", "32", "--epochs", "1", "--batch-size", "4",
                 "--out", str(out), "--quiet"]) == 0
    return out


def test_train_saves_the_class_set_with_the_run(trained, camvid_like):
    config = json.loads((trained / "config.json").read_text())
    assert config["data"]["data"] == str(camvid_like.resolve())
    assert config["data"]["class_names"] == ["sky", "road", "car"]
    assert config["data"]["ignore_index"] == VOID and config["data"]["image_size"] == 32
    metrics = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert set(metrics[-1]["val_per_class_iou"]) == {"sky", "road", "car"}


@pytest.mark.parametrize("split, images", [("val", 4), ("test", 3), ("all", 15)])
def test_evaluate_needs_no_repeated_flags(trained, split, images, capsys):
    out = trained / f"eval_{split}.json"
    assert main(["evaluate", "--checkpoint", str(trained / "checkpoint.pt"), "--split", split,
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"({split}, {images} images at 32 px)" in printed and "road:" in printed
    metrics = json.loads(out.read_text())
    assert metrics["images"] == images and set(metrics["per_class_iou"]) == {"sky", "road", "car"}


def test_predict_names_the_classes(trained, camvid_like, tmp_path, capsys):
    photo = camvid_like / "test" / "test_0.png"
    assert main(["predict", "--checkpoint", str(trained / "checkpoint.pt"), str(photo),
                 "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert any(name in printed for name in ("sky", "road", "car"))
    assert Image.open(tmp_path / "test_0_mask.png").size == (20, 16)


def test_val_data_folder(camvid_like, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--model", "fast_scnn", "--data", str(camvid_like / "test"), *CLASSES,
                 "--image-size", "32", "--epochs", "1", "--batch-size", "2", "--out", str(out),
                 "--val-data", str(camvid_like), "--quiet"]) == 2  # a bare image folder: no layout
    assert main(["train", "--model", "fast_scnn", "--data", str(camvid_like), *CLASSES,
                 "--image-size", "32", "--epochs", "1", "--batch-size", "4", "--out", str(out),
                 "--val-data", str(camvid_like), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["val_data"] == str(camvid_like.resolve())


def test_data_check_reports_and_exits_non_zero_on_errors(tmp_path, capsys):
    assert main(["data", "check", str(broken_folder(tmp_path / "broken")), "--quiet",
                 "--json", str(tmp_path / "report.json")]) == 1
    printed = capsys.readouterr().out
    for kind in ("unreadable", "image without mask", "mask values", "size mismatch"):
        assert kind in printed
    assert json.loads((tmp_path / "report.json").read_text())["errors"] == 5
    clean = split_folder(tmp_path / "clean", counts={"train": 2})
    assert main(["data", "check", str(clean), *CLASSES, "--quiet"]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_train_stops_before_the_first_step_on_a_bad_mask(camvid_like, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path / "cache"))
    root = split_folder(tmp_path / "data", counts={"train": 6, "val": 2})
    mask = np.asarray(Image.open(root / "trainannot" / "train_5.png")).copy()
    mask[0, 0] = 99
    Image.fromarray(mask).save(root / "trainannot" / "train_5.png")
    out = tmp_path / "run"
    assert main(["train", "--data", str(root), *CLASSES, "--image-size", "32", "--epochs", "1",
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "train_5.png" in err and "[99]" in err and len(err.strip().splitlines()) == 1
    assert not (out / "checkpoint.pt").exists()


BAD_INPUTS = [
    (["train", "--epochs", "-1", "--out", "x"], "--epochs: must be an integer >= 1, got -1"),
    (["train", "--image-size", "0", "--out", "x"], "--image-size: must be a side in pixels"),
    (["train", "--batch-size", "0", "--out", "x"], "--batch-size"),
    (["train", "--lr", "-0.1", "--out", "x"], "--lr: must be a number > 0"),
    (["train", "--lr", "nan", "--out", "x"], "--lr: must be a number > 0"),
    (["train", "--epochs", "two", "--out", "x"], "got 'two'"),
    (["train", "--seed", "-3", "--out", "x"], "--seed"),
    (["train", "--num-classes", "0", "--out", "x"], "--num-classes: must be a number of classes"),
    (["train", "--mask-mapping", "0-1", "--out", "x"], "--mask-mapping"),
    (["train", "--class-names", "a,,b", "--out", "x"], "--class-names"),
    (["train", "--ignore-index", "70000", "--out", "x"], "--ignore-index"),
    (["export", "--model", "fast_scnn", "--image-size", "-5", "--out", "x.xml"], "--image-size"),
    (["evaluate", "--checkpoint", "c.pt", "--num-images", "0"], "--num-images"),
    (["search", "--budget-frac", "1.5", "--out", "x"], "--budget-frac: must be a number in 0..1"),
    (["search", "--budget-ms", "0", "--out", "x"], "--budget-ms"),
    (["latency", "--threads", "0", "--out", "x"], "--threads"),
    (["notebooks", "x", "--cell-timeout", "0"], "--cell-timeout"),
    (["demo", "--epochs", "0"], "--epochs"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(a[:3]) for a, _ in BAD_INPUTS])
def test_bad_numbers_are_refused_at_parse_time(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err


def test_class_set_mistakes_are_one_line_errors(camvid_like, tmp_path, capsys):
    base = ["train", "--data", str(camvid_like), "--image-size", "32", "--epochs", "1",
            "--out", str(tmp_path / "r"), "--quiet"]
    assert main([*base, "--num-classes", "3", "--class-names", "a,b"]) == 2
    assert "one name per class" in capsys.readouterr().err
    assert main([*base, "--mask-mapping", "0:0,1:5", "--num-classes", "2"]) == 2
    assert "outside 0..1" in capsys.readouterr().err
    assert main([*base]) == 2  # 2 classes by default: the values 2 and 11 are refused, named
    err = capsys.readouterr().err
    assert "train_0.png" in err and "--num-classes" in err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--data", "synthetic",
                 "--split", "test"]) == 2


def test_class_set_flags_on_synthetic_data_are_refused(tmp_path, capsys):
    assert main(["train", "--data", "synthetic", "--num-classes", "3", "--out",
                 str(tmp_path / "r"), "--quiet"]) == 2
    assert "has its own classes: --num-classes" in capsys.readouterr().err


def test_jpeg_masks_are_named_as_the_cause_of_stray_values(tmp_path, capsys):
    """A two-class people folder whose masks were saved as JPEG: compression noise puts values
    between 0 and 255 along every edge; both data check and train say to save the masks as PNG,
    and the allowed values do not call the person value 255 "ignore"."""
    root = tmp_path / "people_jpeg"
    (root / "Training_Images").mkdir(parents=True)
    (root / "Ground_Truth").mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 5):
        Image.fromarray(rng.integers(0, 256, (48, 32, 3), dtype=np.uint8)).save(
            root / "Training_Images" / f"{i}.jpg")
        mask = np.zeros((48, 32), np.uint8)
        mask[10:40, 8:24] = 255
        Image.fromarray(mask).save(root / "Ground_Truth" / f"{i}.jpg", quality=75)
    assert main(["data", "check", str(root), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "a JPEG: save the masks as PNG" in printed and "255 = ignore" not in printed
    assert main(["train", "--data", str(root), "--epochs", "1", "--model", "fast_scnn",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "save the masks as PNG" in error and "Ground_Truth/1.jpg" in error


def _binary_folder(root, save_mask, count=6, seed=1):
    """An images/ + masks/ pool of ``count`` photos (random pixels drawn with ``seed``) whose
    person mask ``save_mask(person, path)`` writes (``person``: (24, 32) bool)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(
            root / "images" / f"p{i}.jpg")
        person = np.zeros((24, 32), bool)
        person[4:20, 8 + i % 3:24] = True
        save_mask(person, root / "masks" / f"p{i}.png")
    return root


def test_binary_0_255_masks_in_a_plain_folder_are_an_error_not_a_silent_ignore(tmp_path, capsys,
                                                                             monkeypatch):
    """In a plain images/masks folder 255 means "no label": binary 0/255 masks (here 1-bit PNGs)
    would train on background alone. data check and train both stop and name the mapping that
    reads them; with it, the check is clean."""
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path / "cache"))
    root = _binary_folder(tmp_path / "binary",
                          lambda person, path: Image.fromarray(person).convert("1").save(path))
    assert main(["data", "check", str(root), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "only class 0" in printed and "--mask-mapping 0:0,255:1" in printed
    assert main(["train", "--data", str(root), "--epochs", "1", "--image-size", "32",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "training would learn class 0 alone" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    assert main(["data", "check", str(root), "--mask-mapping", "0:0,255:1", "--quiet"]) == 0


@pytest.mark.parametrize("value", [128, 65535])
def test_binary_masks_of_another_value_get_the_mapping_that_reads_them(tmp_path, capsys, value):
    dtype = np.uint16 if value > 255 else np.uint8
    root = _binary_folder(tmp_path / "binary", lambda person, path: Image.fromarray(
        (person * value).astype(dtype)).save(path))
    assert main(["data", "check", str(root), "--quiet"]) == 1
    assert f"--mask-mapping 0:0,{value}:1" in capsys.readouterr().out
    assert main(["data", "check", str(root), "--quiet", "--mask-mapping", f"0:0,{value}:1"]) == 0


def test_a_cut_out_png_as_mask_is_named(tmp_path, capsys):
    """A transparent cut-out (the shape in the alpha channel, the colour the same everywhere) is
    not read as an all-background mask: the check names it and says how to save the alpha."""
    def cut_out(person, path):
        rgba = np.zeros(person.shape + (4,), np.uint8)
        rgba[..., 3] = person * 255
        Image.fromarray(rgba, "RGBA").save(path)
    root = _binary_folder(tmp_path / "cutouts", cut_out)
    assert main(["data", "check", str(root), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "is a cut-out" in printed and "getchannel('A')" in printed and "p0.png" in printed


def test_data_check_takes_several_folders_and_their_class_sets_must_agree(tmp_path, capsys):
    """`segnas data check A B` checks each folder and, as `train --data A --data B` would, refuses
    class sets that differ and a folder given twice; with agreeing folders it exits 0."""
    mapping = ["--mask-mapping", "0:0,255:1"]
    a = _binary_folder(tmp_path / "a", lambda p, path: Image.fromarray(p.astype(np.uint8) * 255).save(path))
    b = _binary_folder(tmp_path / "b", lambda p, path: Image.fromarray(p.astype(np.uint8) * 255).save(path),
                       seed=2)
    out = tmp_path / "report.json"
    assert main(["data", "check", str(a), str(b), *mapping, "--quiet", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["root"] for r in report["folders"]] == [str(a), str(b)] and report["between"] == []
    assert main(["data", "check", str(a), str(a), *mapping, "--quiet"]) == 1
    assert "is given twice" in capsys.readouterr().out
    people = tmp_path / "people"  # the people layout: its own class set (background, person)
    _binary_folder(people, lambda p, path: Image.fromarray(p.astype(np.uint8) * 255).save(path))
    (people / "images").rename(people / "Training_Images")
    (people / "masks").rename(people / "Ground_Truth")
    c = _binary_folder(tmp_path / "c", lambda p, path: Image.fromarray(p.astype(np.uint8)).save(path),
                       seed=3)
    assert main(["data", "check", str(people), str(c), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "class sets differ" in printed and "('background', 'person')" in printed
    assert "0 errors" in printed  # each folder alone is fine


def test_hidden_files_of_macos_and_jupyter_are_not_photos(tmp_path, capsys):
    """A folder copied from a Mac holds ``._p0.jpg`` (AppleDouble metadata, not a JPEG) and
    ``.DS_Store``; one opened in Jupyter gains ``.ipynb_checkpoints/``. None of them is a photo
    or a mask: the check is clean and counts only the six pairs."""
    root = _binary_folder(tmp_path / "copied",
                          lambda p, path: Image.fromarray(p.astype(np.uint8) * 255).save(path))
    for folder in ("images", "masks"):
        (root / folder / "._p0.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (root / folder / "._p0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (root / folder / ".DS_Store").write_bytes(b"Bud1")
        (root / folder / ".ipynb_checkpoints").mkdir()
    out = tmp_path / "report.json"
    assert main(["data", "check", str(root), "--mask-mapping", "0:0,255:1", "--quiet",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert sum(report["pairs"].values()) == 6 and report["errors"] == report["warnings"] == 0


@pytest.mark.parametrize("suffix, ext", [("_mask", "gif"), ("-gt", "png")])
def test_masks_named_with_a_suffix_are_paired_with_their_photos(tmp_path, capsys, suffix, ext):
    """Masks saved as photo_mask.gif (Carvana's naming) or photo-gt.png beside photo.jpg: paired
    by the one ending they add, with a warning that names it; a stray mask stays a stray."""
    root = _binary_folder(tmp_path / "suffixed", lambda p, path: Image.fromarray(
        p.astype(np.uint8)).save(path.with_name(f"{path.stem}{suffix}.{ext}")))
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(root / "masks" / f"other{suffix}.{ext}")
    out = tmp_path / "report.json"
    with pytest.warns(UserWarning, match=f"add '{suffix}' to it .*paired that way"):
        assert main(["data", "check", str(root), "--quiet", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert sum(report["pairs"].values()) == 6 and report["errors"] == 0
    assert report["problems"]["mask without image"] == [str(root / "masks" / f"other{suffix}.{ext}")]


def _plain(p, path):
    Image.fromarray(p.astype(np.uint8)).save(path)


def test_two_photos_sharing_a_name_are_an_error_in_check_and_train(tmp_path, capsys):
    """``p0.jpg`` and ``p0.png`` in one folder: the mask ``p0.png`` would label both (or one photo
    counts twice). data check names them; training refuses with a one-line named error."""
    root = _binary_folder(tmp_path / "shared", _plain)
    Image.open(root / "images" / "p1.jpg").save(root / "images" / "p0.png")
    assert main(["data", "check", str(root), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "shared name" in printed and "p0.jpg, p0.png" in printed
    assert main(["train", "--data", str(root), "--epochs", "1", "--image-size", "32",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "share the name 'p0'" in error and "Traceback" not in error


def test_the_same_photo_in_train_and_val_is_an_error_and_twice_in_one_split_a_warning(tmp_path,
                                                                                      capsys):
    root = tmp_path / "split"
    for split in ("train", "val"):
        _binary_folder(root / split, _plain, count=3, seed=7)  # val holds copies of train's
    for folder in ("images", "masks"):  # train/images ... -> images/train ...
        for split in ("train", "val"):
            (root / folder / split).parent.mkdir(exist_ok=True)
            (root / split / folder).rename(root / folder / split)
    for split in ("train", "val"):
        (root / split).rmdir()
    assert main(["data", "check", str(root), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "photo in two splits" in printed and "includes a photo the model trained on" in printed
    for i in range(3):  # val gets photos of its own: clean, then one copied inside train
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(
            root / "images" / "val" / f"p{i}.jpg")
    assert main(["data", "check", str(root), "--quiet"]) == 0
    capsys.readouterr()
    (root / "images" / "train" / "p9.jpg").write_bytes(
        (root / "images" / "train" / "p0.jpg").read_bytes())
    (root / "masks" / "train" / "p9.png").write_bytes(
        (root / "masks" / "train" / "p0.png").read_bytes())
    assert main(["data", "check", str(root), "--quiet"]) == 0  # a warning only
    assert "duplicate photo" in capsys.readouterr().out


def test_photos_copied_between_two_folders_are_named(tmp_path, capsys):
    a = _binary_folder(tmp_path / "a", _plain, seed=4)
    b = _binary_folder(tmp_path / "b", _plain, seed=5)
    assert main(["data", "check", str(a), str(b), "--quiet"]) == 0
    capsys.readouterr()
    (b / "images" / "p3.jpg").write_bytes((a / "images" / "p1.jpg").read_bytes())
    assert main(["data", "check", str(a), str(b), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "1 photos of" in printed and "p3.jpg" in printed and "p1.jpg" in printed

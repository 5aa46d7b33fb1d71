"""`segnas train --data A --data B` reads both folders as one; `--split-seed` fixes the val cut."""
from __future__ import annotations

import json

from segnas_lite.cli import main
from test_data_concat import write_pool, write_split_folder


def _train(tmp_path, out, *extra):
    return main(["train", "--model", "fast_scnn", "--image-size", "32", "--epochs", "1",
                 "--batch-size", "4", "--recipe", "classic", "--quiet", "--device", "cpu",
                 "--out", str(tmp_path / out), *extra])


def test_two_folders_train_as_one_and_the_run_remembers_both(tmp_path, capsys):
    pool = write_pool(tmp_path / "pool", 10)
    split = write_split_folder(tmp_path / "split", {"train": 6, "val": 3})
    assert _train(tmp_path, "run", "--data", str(pool), "--data", str(split),
                  "--split-seed", "7") == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["data"] == [str(pool.resolve()), str(split.resolve())]
    assert config["data"]["split_seed"] == 7
    # evaluate reads both folders' val splits back without repeated flags: 2 (pool) + 3 (split)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "checkpoint.pt"),
                 "--quiet"]) == 0
    assert "5 images" in capsys.readouterr().out


def test_split_seed_keeps_the_val_images_when_the_seed_changes(tmp_path):
    pool = write_pool(tmp_path / "pool", 20)
    for seed in ("0", "1"):
        assert _train(tmp_path, f"run{seed}", "--data", str(pool), "--seed", seed,
                      "--split-seed", "3") == 0
    seen = []
    for seed in ("0", "1"):
        assert main(["evaluate", "--checkpoint", str(tmp_path / f"run{seed}" / "checkpoint.pt"),
                     "--quiet", "--out", str(tmp_path / f"eval{seed}.json")]) == 0
        seen.append(json.loads((tmp_path / f"eval{seed}.json").read_text())["images"])
    assert seen[0] == seen[1] == 4
    saved = [json.loads((tmp_path / f"run{s}" / "config.json").read_text())["data"] for s in "01"]
    assert saved[0]["split_seed"] == saved[1]["split_seed"] == 3


def test_class_set_flags_with_synthetic_among_several_sources_are_a_one_line_error(tmp_path,
                                                                                  capsys):
    pool = write_pool(tmp_path / "pool", 10)
    code = main(["train", "--model", "fast_scnn", "--data", str(pool), "--data", "synthetic",
                 "--num-classes", "2", "--out", str(tmp_path / "bad"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "synthetic data has its own classes" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()

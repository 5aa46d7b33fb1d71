"""Soft masks saved as files, used as a teacher (data/soft_targets.py, PairedAugment(soft=),
distill.logits_from_probability, `segnas train --soft-teacher`)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from segnas_lite.cli import main
from segnas_lite.data import PairedAugment, open_dataset, open_datasets
from segnas_lite.data.soft_targets import SoftTargetError, SoftTargets, soft_mask_path
from segnas_lite.train.distill import (DistillationError, distillation_loss,
                                       logits_from_probability)
from segnas_lite.train.engine import TrainConfig, train
from segnas_lite.zoo import build_model
from test_data_concat import write_pool


def write_soft(soft_dir, source, value=None):
    """A soft mask per photo of ``source``: its own mask x 255 (or a constant ``value``),
    written at twice the photo's size so that reading must resize it."""
    for image in sorted((source / "images").glob("*.png")):
        mask = np.array(Image.open(source / "masks" / image.name)) * 255
        grey = np.full_like(mask, value) if value is not None else mask
        path = soft_mask_path(soft_dir, source, image)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grey.astype(np.uint8)).resize((32, 32), Image.NEAREST).save(path)


def test_the_soft_map_moves_with_the_geometry_and_changes_no_draw():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    mask = np.zeros((40, 40), np.int64)
    mask[10:30, 5:20] = 1
    augment = PairedAugment(scale_prob=1.0, flip_prob=1.0, crop=24)
    for seed in range(5):
        plain = augment(image, mask, np.random.default_rng(seed))
        image2, mask2, soft = augment(image, mask, np.random.default_rng(seed),
                                      soft=(mask * 255).astype(np.uint8))
        assert np.array_equal(plain[0], image2) and np.array_equal(plain[1], mask2)
        assert soft.shape == mask2.shape and soft.dtype == np.uint8
        labelled = mask2 != 255  # outside: a zoom-out's fill (ignore in the mask, 0 in soft)
        agree = (soft[labelled] >= 128) == (mask2[labelled] == 1)
        assert agree.mean() > 0.97  # bilinear against nearest: only edge pixels may differ


def test_items_carry_their_soft_mask_and_the_same_augmentation(tmp_path):
    pool = write_pool(tmp_path / "pool", 8)
    write_soft(tmp_path / "soft", pool)
    base = open_dataset(str(pool), image_size=16, split="train", seed=3,
                        augment=PairedAugment(scale_prob=1.0))
    data = SoftTargets(base, tmp_path / "soft", sources=[pool])
    assert len(data) == len(base)
    for epoch in (0, 1):
        data.set_epoch(epoch)
        for index in range(len(data)):
            image, mask, soft = data[index]
            ref_image, ref_mask = base[index]
            assert torch.equal(image, ref_image) and torch.equal(mask, ref_mask)
            assert soft.dtype == torch.float32 and 0.0 <= soft.min() and soft.max() <= 1.0
            labelled = mask != 255
            assert ((soft[labelled] >= 0.5) == (mask[labelled] == 1)).float().mean() > 0.9


def test_two_folders_find_their_own_sub_folder_and_missing_files_are_named(tmp_path):
    a, b = write_pool(tmp_path / "a", 6), write_pool(tmp_path / "b", 6, seed=1)
    write_soft(tmp_path / "soft", a, value=0)
    write_soft(tmp_path / "soft", b, value=255)
    both = open_datasets([str(a), str(b)], image_size=16, split="train", seed=0)
    data = SoftTargets(both, tmp_path / "soft", sources=[a, b])
    sums = sorted(float(data[i][2].mean()) for i in range(len(data)))
    half = len(data) // 2
    assert sums[:half] == [0.0] * half and sums[half:] == [1.0] * (len(data) - half)
    assert data.paths[-1].parts[-4:-2] == ("soft", "b")  # soft/<folder name>/images/<stem>.png
    data.paths[-1].unlink()
    with pytest.raises(SoftTargetError, match="1 of .* soft masks are missing"):
        SoftTargets(both, tmp_path / "soft", sources=[a, b])


def test_bad_inputs_are_named_errors(tmp_path):
    a = write_pool(tmp_path / "x" / "same", 4)
    b = write_pool(tmp_path / "y" / "same", 4)
    both = open_datasets([str(a), str(b)], image_size=16, split="all")
    with pytest.raises(SoftTargetError, match="share a name"):
        SoftTargets(both, tmp_path / "soft", sources=[a, b])
    synthetic = open_dataset("synthetic", image_size=16, split="train", length=4)
    with pytest.raises(SoftTargetError, match="photos read from files"):
        SoftTargets(synthetic, tmp_path / "soft", sources=[])
    write_soft(tmp_path / "soft", a)
    data = SoftTargets(open_dataset(str(a), image_size=16, split="all"), tmp_path / "soft",
                       sources=[a])
    data.paths[0].write_bytes(b"not a png")
    with pytest.raises(SoftTargetError, match="cannot read the soft mask"):
        data[0]


def test_probability_logits_give_back_the_probability_and_stay_finite():
    p = torch.tensor([[[0.0, 0.25], [0.5, 1.0]]])
    logits = logits_from_probability(p)
    assert logits.shape == (1, 2, 2, 2) and torch.isfinite(logits).all()
    back = logits.softmax(dim=1)[:, 1]
    assert torch.allclose(back, p.clamp(1e-4, 1 - 1e-4), atol=1e-6)
    # a student that already predicts p has nothing left to learn from it
    assert distillation_loss(logits.clone(), logits, temperature=2.0).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(DistillationError):
        logits_from_probability(p[0])


def test_training_distils_the_saved_masks(tmp_path):
    """The labels say "background everywhere", the soft masks "person everywhere": without the
    saved masks the model learns the labels; with a heavy distillation term, the saved masks win.
    A teacher model beside the saved masks is refused, and so are saved masks with weight 0 (they
    would be ignored without a word)."""
    pool = write_pool(tmp_path / "pool", 8)
    for mask in (pool / "masks").glob("*.png"):
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(mask)
    write_soft(tmp_path / "soft", pool, value=255)
    data = SoftTargets(open_dataset(str(pool), image_size=32, split="all"), tmp_path / "soft",
                       sources=[pool])
    images = torch.stack([data[i][0] for i in range(4)])
    person = {}
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        model = build_model("fast_scnn", num_classes=2)
        config = TrainConfig(epochs=4, batch_size=4, lr=0.05, seed=0, quiet=True,
                             distill_weight=weight)
        train(model, data if weight else data.dataset, config=config, num_classes=2)
        with torch.no_grad():
            person[weight] = model.eval()(images).softmax(dim=1)[:, 1].mean().item()
    assert person[0.0] < 0.3 < 0.5 < person[10.0]
    with pytest.raises(DistillationError, match="one teacher at a time"):
        train(model, data, config=config, num_classes=2, teacher=model)
    silent = TrainConfig(epochs=1, batch_size=4, quiet=True, distill_weight=0.0)
    with pytest.raises(DistillationError, match="distill_weight=0.0"):
        train(model, data, config=silent, num_classes=2)
    with pytest.raises(DistillationError, match="a teacher model given"):
        train(model, data.dataset, config=silent, num_classes=2, teacher=model)


def test_cli_soft_teacher(tmp_path, capsys):
    pool = write_pool(tmp_path / "pool", 10)
    write_soft(tmp_path / "soft", pool)
    args = ["train", "--model", "fast_scnn", "--image-size", "32", "--epochs", "1",
            "--batch-size", "4", "--recipe", "classic", "--device", "cpu", "--quiet",
            "--data", str(pool)]
    assert main([*args, "--soft-teacher", str(tmp_path / "soft"), "--out",
                 str(tmp_path / "run")]) == 0
    assert "distilled from" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["distill_weight"] == 0.5
    code = main([*args, "--soft-teacher", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code != 0 and "soft masks are missing" in err and "Traceback" not in err
    code = main([*args, "--soft-teacher", str(tmp_path / "soft"), "--distill-weight", "0",
                 "--out", str(tmp_path / "zero")])
    err = capsys.readouterr().err
    assert code != 0 and "would ignore the teacher" in err and "Traceback" not in err
    assert not (tmp_path / "zero").exists()  # refused before any work

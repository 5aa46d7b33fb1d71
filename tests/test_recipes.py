"""Training recipes: the loss options (OHEM, boundary), the crop and strength presets of the
augmentation, and which recipe a data source gets."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segnas_lite.data import IGNORE_INDEX, PairedAugment
from segnas_lite.data.synthetic import write_scene_folder
from segnas_lite.train.engine import TrainConfig, train
from segnas_lite.train.losses import boundary_band, pixel_loss, segmentation_loss
from segnas_lite.zoo import build_model
from segnas_lite.train.recipes import RECIPES, Recipe, UnknownRecipeError, get_recipe, is_people_like, recipe_for


def _square_mask(size: int = 16) -> torch.Tensor:
    mask = torch.zeros(1, size, size, dtype=torch.int64)
    mask[:, 4:12, 4:12] = 1
    return mask


# --------------------------------------------------------------------------- boundary band
def test_boundary_band_is_the_ring_around_the_edge():
    mask = _square_mask()
    band = boundary_band(mask, width=1)
    # width 1: the pixels with another class among their 8 neighbours: the inner and outer ring
    inner = torch.zeros(16, 16, dtype=torch.bool)
    inner[3:13, 3:13] = True
    inner[5:11, 5:11] = False
    assert torch.equal(band[0], inner)
    assert boundary_band(torch.zeros(1, 8, 8, dtype=torch.int64), width=2).sum() == 0


def test_boundary_band_leaves_ignored_pixels_out_and_ignores_them_as_a_class():
    mask = torch.zeros(1, 9, 9, dtype=torch.int64)
    mask[:, :, 6:] = IGNORE_INDEX  # an ignored strip next to background is no edge
    assert boundary_band(mask, width=1).sum() == 0
    mask[:, 4, 2] = 1
    band = boundary_band(mask, width=1)
    assert band[0, 4, 2] and band[0, 3, 1] and not band[0, :, 6:].any()


# --------------------------------------------------------------------------- losses
def test_ce_loss_is_plain_cross_entropy_with_ignore():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    target[0, 0] = IGNORE_INDEX
    expected = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
    assert torch.allclose(pixel_loss(logits, target, config=TrainConfig()), expected)


def test_ohem_averages_only_the_hardest_share():
    torch.manual_seed(1)
    logits = torch.randn(1, 2, 10, 10)
    target = torch.randint(0, 2, (1, 10, 10))
    per_pixel = F.cross_entropy(logits, target, reduction="none").flatten()
    hardest = per_pixel.sort(descending=True).values[:25].mean()
    ohem = pixel_loss(logits, target, config=TrainConfig(loss="ohem", ohem_keep=0.25))
    assert torch.allclose(ohem, hardest)
    assert ohem > pixel_loss(logits, target, config=TrainConfig())
    full = pixel_loss(logits, target, config=TrainConfig(loss="ohem", ohem_keep=1.0))
    assert torch.allclose(full, per_pixel.mean())


def test_boundary_loss_weighs_the_edge_band():
    mask = _square_mask()
    logits = torch.zeros(1, 2, 16, 16)
    logits[:, 1] = 4.0 * (mask.float() * 2 - 1)  # right everywhere ...
    band = boundary_band(mask, width=1)
    logits[:, 1][band] *= -1  # ... but wrong on the band
    config = TrainConfig(loss="boundary", boundary_weight=4.0, boundary_width=1)
    per_pixel = F.cross_entropy(logits, mask, reduction="none")
    weight = 1 + 4.0 * band.float()
    expected = (per_pixel * weight).sum() / weight.sum()
    loss = pixel_loss(logits, mask, config=config)
    assert torch.allclose(loss, expected)
    assert loss > pixel_loss(logits, mask, config=TrainConfig())  # errors on the edge cost more
    assert torch.allclose(pixel_loss(logits, mask, config=TrainConfig(
        loss="boundary", boundary_weight=0.0)), pixel_loss(logits, mask, config=TrainConfig()))


@pytest.mark.parametrize("loss", ["ohem", "boundary"])
def test_losses_with_nothing_labelled_give_zero_with_a_graph(loss):
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), IGNORE_INDEX)
    value = pixel_loss(logits, target, config=TrainConfig(loss=loss))
    value.backward()
    assert value.item() == 0.0 and logits.grad is not None


def test_aux_outputs_use_the_same_loss():
    torch.manual_seed(2)
    main, aux = torch.randn(1, 2, 8, 8), [torch.randn(1, 2, 8, 8)]
    target = torch.randint(0, 2, (1, 8, 8))
    config = TrainConfig(loss="ohem", aux_weight=0.4)
    total = segmentation_loss((main, aux), target, config=config)
    expected = pixel_loss(main, target, config=config) + 0.4 * pixel_loss(aux[0], target, config=config)
    assert torch.allclose(total, expected)


@pytest.mark.parametrize("bad", [dict(loss="focal"), dict(ohem_keep=0.0), dict(ohem_keep=1.5),
                                 dict(boundary_width=0), dict(boundary_weight=-1.0)])
def test_bad_loss_settings_are_refused(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


@pytest.mark.parametrize("loss", ["ohem", "boundary"])
def test_training_with_each_loss_lowers_it(loss):
    """Two epochs on a tiny synthetic folder: the loss goes down with OHEM and boundary weighting."""
    from segnas_lite.data import open_dataset
    data = open_dataset("synthetic", image_size=32, split="train", length=16, seed=0)
    torch.manual_seed(0)
    model = build_model("fast_scnn", num_classes=2)
    config = TrainConfig(epochs=3, batch_size=4, lr=0.05, loss=loss, quiet=True, seed=0)
    history = train(model, data, config=config, num_classes=2).history
    assert history[-1]["train_loss"] < history[0]["train_loss"]


# --------------------------------------------------------------------------- augmentation
def test_crop_keeps_a_window_of_image_and_mask_alike():
    rng_image = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    mask = (np.arange(32 * 32) % 7).reshape(32, 32)
    plain = PairedAugment(scale_prob=0, flip_prob=0, color_prob=0, blur_prob=0, sharpen_prob=0,
                          cutout_prob=0, crop=12)
    image, out = plain(rng_image, mask, np.random.default_rng(3))
    assert image.shape == (12, 12, 3) and out.shape == (12, 12)
    # the window is a true window: find its corner in the mask by the image values
    top, left = np.argwhere((rng_image[..., 0] == image[0, 0, 0]))[0]
    assert np.array_equal(rng_image[top:top + 12, left:left + 12], image)
    assert np.array_equal(mask[top:top + 12, left:left + 12], out)


def test_crop_larger_than_the_image_is_refused():
    with pytest.raises(ValueError, match="crop 40 is larger"):
        PairedAugment(crop=40)(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.int64),
                               np.random.default_rng(0))


def test_crop_does_not_change_the_other_draws():
    """The crop draws last, so the rest of the augmentation is what it was without it."""
    image = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    mask = np.zeros((48, 48), np.int64)
    mask[10:30, 12:40] = 1
    whole, whole_mask = PairedAugment()(image, mask, np.random.default_rng(7))
    part, part_mask = PairedAugment(crop=20)(image, mask, np.random.default_rng(7))
    found = [(t, l) for t in range(29) for l in range(29)
             if np.array_equal(whole[t:t + 20, l:l + 20], part)]
    assert found and np.array_equal(whole_mask[found[0][0]:found[0][0] + 20,
                                               found[0][1]:found[0][1] + 20], part_mask)


def test_presets_order_the_strength():
    light, default, strong = (PairedAugment.preset(s) for s in ("light", "default", "strong"))
    assert default == PairedAugment()
    spread = [a.scale_range[1] / a.scale_range[0] for a in (light, default, strong)]
    assert spread == sorted(spread) and len(set(spread)) == 3
    assert light.cutout_prob < default.cutout_prob < strong.cutout_prob
    assert PairedAugment.preset("strong", crop=64).crop == 64
    with pytest.raises(ValueError, match="light, default, strong"):
        PairedAugment.preset("extreme")


# --------------------------------------------------------------------------- recipes
def test_recipe_makes_the_engine_config_and_augmentation():
    recipe = Recipe("x", crop=96, augment="strong", epochs=7, lr=0.1, loss="ohem", warmup_steps=5)
    config = recipe.train_config(seed=3, quiet=True, epochs=2)
    assert (config.epochs, config.lr, config.loss, config.warmup_steps, config.seed) == (2, 0.1, "ohem", 5, 3)
    augment = recipe.augmentation()
    assert augment.crop == 96 and augment == PairedAugment.preset("strong", crop=96)


def test_a_budget_of_batches_sets_the_epochs_by_the_training_set_size():
    """The people recipe was measured as 210 epochs of 184 photos; with its budget of batches a
    folder of 824 photos gets about the same number of batches (47 epochs), not 4.5 times the
    minutes. Without a budget, a recipe's epochs stay whatever the size."""
    people = RECIPES["people"]
    assert people.epochs_for(184) == 210
    assert people.epochs_for(824) == 47
    assert abs(people.epochs_for(824) * math.ceil(824 / 8) - people.steps) < math.ceil(824 / 8)
    assert people.epochs_for(10_000) == 4 and people.epochs_for(1) == people.steps
    assert people.epochs_for(824, steps_per_epoch=10) == 483  # a cap on batches: more epochs
    assert people.train_config(train_size=824).epochs == 47
    assert people.train_config().epochs == people.epochs  # size unknown: the recipe's epochs
    assert people.train_config(train_size=824, epochs=3).epochs == 3  # a change wins
    assert RECIPES["classic"].epochs_for(824) == RECIPES["classic"].epochs


def test_get_recipe_names_the_choices():
    assert get_recipe("people") is RECIPES["people"]
    with pytest.raises(UnknownRecipeError, match="classic"):
        get_recipe("fast")


def test_people_folders_get_the_people_recipe(tmp_path):
    people = tmp_path / "people"
    (people / "Training_Images").mkdir(parents=True)
    (people / "Ground_Truth").mkdir()
    from PIL import Image
    for i in range(1, 4):
        Image.new("RGB", (20, 20)).save(people / "Training_Images" / f"{i}.jpg")
        Image.new("L", (20, 20)).save(people / "Ground_Truth" / f"{i}.png")
    assert is_people_like(str(people), None, 2)
    assert recipe_for(str(people)).name == "people"
    assert recipe_for("synthetic").name == "classic"
    scenes = tmp_path / "scenes"
    write_scene_folder(scenes, counts={"train": 2}, image_size=32, seed=0)
    assert not is_people_like(str(scenes), None, 2)
    assert recipe_for(str(scenes), class_names=("background", "person"), num_classes=2).name == "people"
    assert recipe_for(str(scenes), class_names=("background", "person", "car"), num_classes=3).name == "classic"


# --------------------------------------------------------------------------- segnas train
def _fake_people(root, n: int = 12, size: int = 40):
    from PIL import Image
    (root / "Training_Images").mkdir(parents=True)
    (root / "Ground_Truth").mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, n + 1):
        mask = np.zeros((size, size), np.uint8)
        mask[8:32, 10 + i % 5:28] = 255
        photo = rng.integers(0, 80, (size, size, 3)).astype(np.uint8)
        photo[mask > 0] += 120
        Image.fromarray(photo).save(root / "Training_Images" / f"{i}.jpg")
        Image.fromarray(mask).save(root / "Ground_Truth" / f"{i}.png")
    return root


def test_train_picks_the_people_recipe_and_flags_override_it(tmp_path, capsys):
    from segnas_lite.cli import main
    people = _fake_people(tmp_path / "people")
    out = tmp_path / "run"
    assert main(["train", "--data", str(people), "--image-size", "32", "--batch-size", "4",
                 "--epochs", "1", "--crop", "24", "--loss", "boundary", "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "recipe people: 1 epochs" in printed and "crop 24" in printed  # --epochs wins
    saved = json.loads((out / "config.json").read_text())["train"]
    assert saved["loss"] == "boundary" and saved["lr"] == RECIPES["people"].lr
    # the student: distilled from the run above
    student = tmp_path / "student"
    assert main(["train", "--data", str(people), "--image-size", "32", "--batch-size", "4",
                 "--epochs", "1", "--teacher", str(out / "checkpoint.pt"), "--out", str(student),
                 "--quiet"]) == 0
    assert json.loads((student / "config.json").read_text())["train"]["distill_weight"] == 0.5
    assert "distilled from" in capsys.readouterr().out


def test_train_gives_a_people_folder_the_recipes_budget_of_batches(tmp_path, capsys, monkeypatch):
    """Without --epochs, segnas train turns the recipe's budget of batches into epochs for the
    training set at hand: 8 photos in batches of 4 make 2 batches an epoch, so 6 batches are 3
    epochs; --epochs 1 overrides the budget."""
    from segnas_lite.cli import main
    monkeypatch.setitem(RECIPES, "people", Recipe("people", image_size=32, batch_size=4,
                                                  augment="light", epochs=99, steps=6))
    people = _fake_people(tmp_path / "people")
    args = ["train", "--data", str(people), "--train-size", "8", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "recipe people: 3 epochs" in capsys.readouterr().out
    assert json.loads((tmp_path / "a" / "config.json").read_text())["train"]["epochs"] == 3
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "b")]) == 0
    assert "recipe people: 1 epochs" in capsys.readouterr().out


def test_train_refuses_bad_recipe_flags(tmp_path, capsys):
    from segnas_lite.cli import main
    people = _fake_people(tmp_path / "people")
    assert main(["train", "--data", str(people), "--image-size", "32", "--crop", "48",
                 "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "--crop 48 is larger than --image-size 32" in capsys.readouterr().err
    assert main(["train", "--data", str(people), "--image-size", "32", "--distill-weight", "1",
                 "--epochs", "1", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "--distill-weight needs --teacher" in capsys.readouterr().err
    assert main(["train", "--recipe", "classic", "--image-size", "32", "--train-size", "8",
                 "--batch-size", "4", "--epochs", "1", "--out", str(tmp_path / "c"),
                 "--quiet"]) == 0
    assert "recipe classic" in capsys.readouterr().out


def test_notebook_training_on_a_people_folder_uses_the_recipe(tmp_path, monkeypatch):
    from segnas_lite.teaching import notebook_utils
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path / "cache"))
    people = _fake_people(tmp_path / "people")
    seen = []
    real = notebook_utils.cache_key
    monkeypatch.setattr(notebook_utils, "cache_key", lambda *a, **k: seen.append(k) or real(*a, **k))
    model, history = notebook_utils.trained_model("fast_scnn", source=str(people), image_size=32,
                                                  epochs=1, train_length=8, val_length=4,
                                                  batch_size=4)
    assert len(history) == 1 and not model.training
    assert seen[-1]["recipe"]["name"] == "people"
    notebook_utils.trained_model("fast_scnn", source="synthetic", image_size=32, epochs=1,
                                 train_length=8, val_length=4, batch_size=4)
    assert "recipe" not in seen[-1]  # synthetic runs keep their cache keys


def test_the_people_recipe_is_what_the_benchmark_measured():
    """RECIPES["people"] must be the winner that benchmarks/recipe.py wrote, not a guess."""
    from dataclasses import asdict
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "recipe.json"
    if not path.exists():
        pytest.skip("benchmarks/results/recipe.json not written yet")
    measured = json.loads(path.read_text())["recipe"]
    ours = asdict(RECIPES["people"])
    for key in ("image_size", "crop", "augment", "batch_size", "optimizer", "lr", "schedule",
                "warmup_steps", "loss"):
        assert ours[key] == measured[key], key
    assert (ours["synthetic_steps"] != 0) == (measured["synthetic_steps"] != 0)


# --------------------------------------------------------------------------- image size, pretraining
def test_train_takes_the_image_size_and_pretraining_of_the_recipe(tmp_path, monkeypatch, capsys):
    from segnas_lite.cli import main
    monkeypatch.setitem(RECIPES, "classic", Recipe("classic", image_size=32, batch_size=4,
                                                   epochs=1, synthetic_steps=2))
    out = tmp_path / "run"
    assert main(["train", "--recipe", "classic", "--train-size", "8", "--out", str(out),
                 "--quiet"]) == 0
    assert "2 synthetic pretraining steps" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["data"]["image_size"] == 32
    # --image-size wins over the recipe's; a crop is checked against the size in use
    assert main(["train", "--recipe", "classic", "--image-size", "48", "--crop", "40",
                 "--train-size", "8", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert json.loads((tmp_path / "b" / "config.json").read_text())["data"]["image_size"] == 48
    assert main(["train", "--recipe", "classic", "--crop", "40", "--out", str(tmp_path / "c"),
                 "--quiet"]) == 2
    assert "--crop 40 is larger than --image-size 32" in capsys.readouterr().err


def test_synthetic_pretraining_changes_the_weights_and_needs_two_classes():
    from segnas_lite.train.recipes import RecipeError, pretrain_synthetic, train_with_recipe
    torch.manual_seed(0)
    model = build_model("fast_scnn", num_classes=2)
    before = [p.detach().clone() for p in model.parameters()]
    recipe = Recipe("r", image_size=32, batch_size=2, synthetic_steps=2)
    pretrain_synthetic(model, recipe, steps=2, num_classes=2, seed=0)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(RecipeError, match="2-class"):
        pretrain_synthetic(model, recipe, steps=2, num_classes=3, seed=0)
    with pytest.raises(RecipeError, match="number of steps"):  # the benchmark's "share" (-1)
        train_with_recipe(model, [], None, recipe.with_changes(synthetic_steps=-1),
                          config=recipe.train_config(), num_classes=2)


import json

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from segnas_lite.runio import CheckpointError, RunDirectoryError
from segnas_lite.train.engine import (TrainConfig, evaluate,
                                load_checkpoint, lr_factor, train)


class TinySeg(nn.Module):
    """A minimal segmentation model with BatchNorm and Dropout (both touch RNG / running state)."""

    def __init__(self, num_classes=2):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Dropout2d(0.2), nn.Conv2d(8, num_classes, 1))

    def forward(self, x):
        return self.body(x)


class Blobs(Dataset):
    """Bright squares on dark noise; the label is the square. Deterministic per index."""

    def __init__(self, n=16, size=16):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        img = torch.randn(3, self.size, self.size, generator=g) * 0.3
        mask = torch.zeros(self.size, self.size, dtype=torch.long)
        r, c = torch.randint(0, self.size - 6, (2,), generator=g).tolist()
        mask[r:r + 6, c:c + 6] = 1
        img[:, mask == 1] += 1.5
        return img, mask


def make_model(seed=0):
    torch.manual_seed(seed)
    return TinySeg()


CFG = dict(epochs=3, batch_size=4, lr=0.05, quiet=True, seed=7)


def test_training_learns_and_writes_run_files(tmp_path):
    model = make_model()
    before = evaluate(model, Blobs(8), num_classes=2, quiet=True).miou
    result = train(model, Blobs(), Blobs(8), config=TrainConfig(**CFG), num_classes=2,
                   out_dir=tmp_path, model_info={"name": "tiny"})
    assert result.final_metrics["miou"] > max(before, 0.6)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == [1, 2, 3]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == {"name": "tiny"} and config["train"]["epochs"] == 3
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 2 and set(state) >= {"model", "optimizer", "scheduler", "rng"}
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("optimizer,schedule", [("sgd", "poly"), ("adamw", "cosine")])
def test_interrupted_then_resumed_run_matches_uninterrupted(tmp_path, optimizer, schedule):
    cfg = TrainConfig(**CFG, optimizer=optimizer, schedule=schedule)
    reference = make_model()
    train(reference, Blobs(), config=cfg, num_classes=2, out_dir=tmp_path / "a")

    class Stop(Exception):
        pass

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise Stop

    with pytest.raises(Stop):
        train(make_model(), Blobs(), config=cfg, num_classes=2, out_dir=tmp_path / "b",
              on_epoch_end=stop_after_first)
    torch.manual_seed(1234)  # the resumed process starts from a different RNG state
    resumed = make_model(seed=99)  # and different initial weights: the checkpoint must win
    result = train(resumed, Blobs(), config=cfg, num_classes=2, out_dir=tmp_path / "b",
                   resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_existing_run_is_not_overwritten(tmp_path):
    cfg = TrainConfig(**{**CFG, "epochs": 1})
    train(make_model(), Blobs(), config=cfg, num_classes=2, out_dir=tmp_path)
    stamp = (tmp_path / "checkpoint.pt").stat().st_mtime_ns
    with pytest.raises(RunDirectoryError, match="--resume"):
        train(make_model(), Blobs(), config=cfg, num_classes=2, out_dir=tmp_path)
    assert (tmp_path / "checkpoint.pt").stat().st_mtime_ns == stamp
    train(make_model(), Blobs(), config=cfg, num_classes=2, out_dir=tmp_path, overwrite=True)


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_schedules_start_high_and_end_low():
    for schedule in ("poly", "cosine"):
        cfg = TrainConfig(schedule=schedule)
        values = [lr_factor(s, 100, cfg) for s in range(101)]
        assert values[0] == pytest.approx(1.0)
        assert values[-1] == pytest.approx(0.0, abs=1e-9)
        assert all(a >= b for a, b in zip(values, values[1:]))


def test_bad_config_and_tiny_dataset_raise():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(make_model(), Blobs(2), config=TrainConfig(**CFG), num_classes=2)


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os
    from segnas_lite.runio import atomic_write_text
    atomic_write_text(tmp_path / "a.json", "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask

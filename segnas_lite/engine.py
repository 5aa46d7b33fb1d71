"""Training and evaluation loops with atomic checkpoints and exact resume.

A run directory holds three files:

- ``checkpoint.pt``: model, optimizer, scheduler, epoch and RNG states (written atomically every epoch);
- ``metrics.jsonl``: one JSON object per epoch (loss, learning rate, validation metrics, seconds);
- ``config.json``: the training configuration and how to rebuild the model.

Determinism: the batch order of epoch ``e`` is a permutation drawn from a generator seeded with
``(seed, e)``, datasets draw augmentations from ``(seed, epoch, index)`` and the global RNGs are saved
in the checkpoint, so a run that is stopped after any epoch and resumed ends with bit-identical weights
(``tests/test_engine.py`` checks this).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .metrics import ConfusionMeter, SegmentationMetrics

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
CONFIG = "config.json"


class RunDirectoryError(FileExistsError):
    """The output folder already holds a run and neither resume nor overwrite was asked for."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (missing, corrupt, or from a different model)."""


@dataclass
class TrainConfig:
    """Everything that decides a training run (saved to ``config.json``)."""

    epochs: int = 10
    batch_size: int = 8
    optimizer: str = "sgd"          # "sgd" (momentum, Nesterov) or "adamw"
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "poly"          # "poly": lr * (1 - t/T)^power (DeepLab), or "cosine"
    poly_power: float = 0.9
    warmup_steps: int = 0
    ignore_index: int = 255
    aux_weight: float = 0.4         # weight of auxiliary-head losses (Fast-SCNN paper, Sec. 4.1)
    seed: int = 0
    steps_per_epoch: int | None = None  # cap batches per epoch (quick runs); None = whole dataset
    eval_every: int = 1
    quiet: bool = False             # no progress bars (papermill / CI)
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        if self.schedule not in ("poly", "cosine"):
            raise ValueError(f"schedule must be 'poly' or 'cosine', got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    final_metrics: dict | None = None
    out_dir: str | None = None


# --------------------------------------------------------------------------- helpers
def quiet_default() -> bool:
    """Progress bars are off when ``SEGNAS_QUIET`` is set (the notebooks set it under papermill)."""
    return os.environ.get("SEGNAS_QUIET", "") not in ("", "0")


def progress(iterable: Iterable, *, quiet: bool, **kwargs: Any):
    """A tqdm progress bar, or the bare iterable when quiet."""
    if quiet or quiet_default():
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename.

    A crash (or Ctrl-C) inside the ``with`` block leaves the old file whole and removes the
    temporary one, so a reader never sees a half-written checkpoint or JSON file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that leaves either the old file or the new one, whole."""
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers, no code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train first (segnas train ... --out DIR)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file or one holding pickled code
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}. It may be truncated or not a "
                              "segnas_lite checkpoint; delete it and retrain") from exc


def rng_state() -> dict:
    """Global RNG states as tensors and plain values (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def make_optimizer(model: nn.Module, config: TrainConfig,
                   params: Iterable[nn.Parameter] | None = None) -> torch.optim.Optimizer:
    params = list(model.parameters() if params is None else params)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=config.momentum > 0)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(step: int, total: int, config: TrainConfig) -> float:
    """Learning-rate multiplier at ``step`` of ``total``: linear warm-up, then poly or cosine."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    t = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
    if config.schedule == "poly":
        return (1.0 - t) ** config.poly_power
    return 0.5 * (1.0 + math.cos(math.pi * t))


def segmentation_loss(output: torch.Tensor | tuple, target: torch.Tensor, *,
                      ignore_index: int, aux_weight: float) -> torch.Tensor:
    """Cross-entropy with ignore_index; a model may return ``(main, [aux, ...])`` in training."""
    if isinstance(output, tuple):
        main, aux = output
        loss = F.cross_entropy(main, target, ignore_index=ignore_index)
        for a in aux:
            loss = loss + aux_weight * F.cross_entropy(a, target, ignore_index=ignore_index)
        return loss
    return F.cross_entropy(output, target, ignore_index=ignore_index)


def _epoch_loader(dataset: Dataset, config: TrainConfig, epoch: int) -> DataLoader:
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)  # fresh augmentations each epoch, still reproducible
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True,
                      generator=generator, num_workers=config.num_workers)


# --------------------------------------------------------------------------- evaluate
@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, *, num_classes: int, batch_size: int = 8,
             ignore_index: int = 255, quiet: bool = False,
             max_batches: int | None = None) -> SegmentationMetrics:
    """mIoU, per-class IoU and pixel accuracy of ``model`` on ``dataset`` (eval mode, no grad)."""
    was_training = model.training
    model.eval()
    meter = ConfusionMeter(num_classes, ignore_index=ignore_index)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for i, (images, masks) in enumerate(progress(loader, quiet=quiet, desc="evaluate",
                                                 leave=False)):
        if max_batches is not None and i >= max_batches:
            break
        meter.update(model(images), masks)
    model.train(was_training)
    return meter.compute()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Argmax masks (N, H, W) for a batch of normalised images (N, 3, H, W)."""
    was_training = model.training
    model.eval()
    masks = model(images).argmax(dim=1)
    model.train(was_training)
    return masks


# --------------------------------------------------------------------------- train
def train(model: nn.Module, train_set: Dataset, val_set: Dataset | None = None, *,
          config: TrainConfig, num_classes: int, out_dir: str | os.PathLike | None = None,
          resume: bool = False, overwrite: bool = False, model_info: dict | None = None,
          class_names: tuple[str, ...] | None = None,
          on_epoch_end: Callable[[dict], None] | None = None) -> TrainResult:
    """Train ``model`` for ``config.epochs`` epochs, checkpointing into ``out_dir`` after each.

    ``model_info`` (e.g. ``{"name": "fast_scnn", "kwargs": {...}}``) is stored in the checkpoint so
    that ``segnas evaluate`` and ``segnas predict`` can rebuild the model. With ``resume=True`` the run
    continues from ``out_dir/checkpoint.pt``; an existing run is never overwritten unless
    ``overwrite=True``.
    """
    out = Path(out_dir) if out_dir is not None else None
    start_epoch = 0
    history: list[dict] = []
    optimizer = make_optimizer(model, config)
    steps_per_epoch = len(train_set) // config.batch_size
    if config.steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, config.steps_per_epoch)
    if steps_per_epoch < 1:
        raise ValueError(f"the training set has {len(train_set)} samples, fewer than one batch of "
                         f"{config.batch_size}: lower --batch-size or add data")
    total_steps = config.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, config))

    if out is not None:
        ckpt_path = out / CHECKPOINT
        if resume:
            state = load_checkpoint(ckpt_path)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            start_epoch = state["epoch"] + 1
            history = _read_history(out / METRICS)[:start_epoch]
            # the log may be one line short if the run died between checkpoint and log write
            atomic_write_text(out / METRICS, "".join(json.dumps(r) + "\n" for r in history))
        elif ckpt_path.exists() and not overwrite:
            raise RunDirectoryError(f"{out} already holds a run ({CHECKPOINT}); pass resume=True "
                                    "(--resume) to continue it, overwrite=True (--overwrite) to "
                                    "replace it, or choose another folder")
        else:
            seed_everything(config.seed)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / CONFIG, json.dumps(
                {"train": asdict(config), "model": model_info or {}, "num_classes": num_classes},
                indent=2))
            atomic_write_text(out / METRICS, "")
    else:
        seed_everything(config.seed)

    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        model.train()
        loader = _epoch_loader(train_set, config, epoch)
        running, seen = 0.0, 0
        bar = progress(range(steps_per_epoch), quiet=config.quiet,
                       desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
        batches = iter(loader)
        for _ in bar:
            images, masks = next(batches)
            loss = segmentation_loss(model(images), masks, ignore_index=config.ignore_index,
                                     aux_weight=config.aux_weight)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; lower "
                                         "the learning rate (--lr)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item()
            seen += 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{running / seen:.3f}")
        record = {"epoch": epoch + 1, "train_loss": running / seen,
                  "lr": optimizer.param_groups[0]["lr"]}
        last = epoch + 1 == config.epochs
        if val_set is not None and ((epoch + 1) % config.eval_every == 0 or last):
            metrics = evaluate(model, val_set, num_classes=num_classes,
                               batch_size=config.batch_size, ignore_index=config.ignore_index,
                               quiet=config.quiet)
            record.update({"val_" + k: v for k, v in metrics.as_dict(class_names).items()})
        record["seconds"] = round(time.perf_counter() - started, 3)
        history.append(record)
        if out is not None:
            atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "scheduler": scheduler.state_dict(), "epoch": epoch,
                               "rng": rng_state(), "model_info": model_info or {},
                               "num_classes": num_classes, "train_config": asdict(config)},
                              out / CHECKPOINT)
            with open(out / METRICS, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        if on_epoch_end is not None:
            on_epoch_end(record)
    final = {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")} if history else None
    return TrainResult(history=history, final_metrics=final or None,
                       out_dir=str(out) if out else None)


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

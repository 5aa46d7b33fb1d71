"""Training and evaluation loops with atomic checkpoints and exact resume (the losses are in
``losses.py``).

A run directory holds three files:

- ``checkpoint.pt``: model, optimizer, scheduler, epoch and RNG states (written atomically every epoch);
- ``metrics.jsonl``: one JSON object per epoch (loss, learning rate, validation metrics, seconds);
- ``config.json``: the training configuration and how to rebuild the model.

Determinism: the batch order of epoch ``e`` is a permutation drawn from a generator seeded with
``(seed, e)``, datasets draw augmentations from ``(seed, epoch, index)`` and the global RNGs are saved
in the checkpoint, so a run that is stopped after any epoch and resumed ends with bit-identical weights
(``tests/test_engine.py`` checks this).

Several processes: under ``torchrun`` the same loop runs data parallel (``distributed.py``): each
process reads its shard of every epoch, gradients are averaged, and only rank 0 writes the run
folder, which is the same as a single process's. ``device`` and ``amp`` pick where and in which
precision the steps run; without ``torchrun`` on the CPU nothing changes.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segnas_lite.data import IGNORE_INDEX
from segnas_lite.errors import SegnasError
from segnas_lite.train import distributed
from segnas_lite.train.distill import (DistillationError, distillation_loss,
                                       logits_from_probability, main_logits)
from segnas_lite.train.losses import LOSSES, segmentation_loss
from segnas_lite.metrics import ConfusionMeter, SegmentationMetrics
from segnas_lite.runio import (atomic_torch_save, atomic_write_text, guard_run_dir, load_checkpoint,
                               progress, rng_state, seed_everything, set_rng_state, stream_seed,
                               torch_generator)

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
CONFIG = "config.json"


class TrainConfigError(SegnasError, ValueError):
    """A training setting that cannot work (unknown optimizer, epochs < 1, ...)."""


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
    ignore_index: int = IGNORE_INDEX
    aux_weight: float = 0.4         # weight of auxiliary-head losses (Fast-SCNN paper, Sec. 4.1)
    seed: int = 0
    steps_per_epoch: int | None = None  # cap batches per epoch (quick runs); None = whole dataset
    eval_every: int = 1
    quiet: bool = False             # no progress bars (papermill / CI)
    num_workers: int = 0
    distill_weight: float = 0.0     # weight w of the distillation term (distill.py); 0 = off
    distill_temperature: float = 2.0
    loss: str = "ce"                # "ce", "ohem" (hardest pixels only) or "boundary" (edges weigh more)
    ohem_keep: float = 0.25         # "ohem": share of the labelled pixels kept, the hardest ones
    boundary_weight: float = 4.0    # "boundary": extra weight of pixels near a class edge (1 + w)
    boundary_width: int = 3         # "boundary": how near, in pixels of the mask
    device: str = "auto"            # "auto" (CUDA when available), "cpu", "cuda", "cuda:N"
    amp: str | None = None          # autocast: "bf16" (CPU with AMX / AVX-512 BF16, or CUDA), "fp16" (CUDA)
    sync_bn: bool = False           # several processes: BatchNorm over the global batch

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adamw"):
            raise TrainConfigError(f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        if self.schedule not in ("poly", "cosine"):
            raise TrainConfigError(f"schedule must be 'poly' or 'cosine', got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainConfigError("epochs and batch_size must be at least 1")
        if self.loss not in LOSSES:
            raise TrainConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not 0.0 < self.ohem_keep <= 1.0:
            raise TrainConfigError(f"ohem_keep is a share of pixels in (0, 1], got {self.ohem_keep}")
        if self.boundary_weight < 0 or self.boundary_width < 1:
            raise TrainConfigError("boundary_weight must be >= 0 and boundary_width >= 1")
        if self.amp not in (None, "bf16", "fp16"):
            raise TrainConfigError(f"amp must be None, 'bf16' or 'fp16', got {self.amp!r}")


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    final_metrics: dict | None = None
    out_dir: str | None = None


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


def _epoch_loader(dataset: Dataset, config: TrainConfig, epoch: int,
                  ctx: distributed.Context = distributed.Context()) -> DataLoader:
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)  # fresh augmentations each epoch, still reproducible
    if ctx.distributed:  # each process its own shard of one seeded permutation per epoch
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
            seed=stream_seed(config.seed, 0, stream=0) % 2**31, drop_last=True)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, drop_last=True,
                          num_workers=config.num_workers)
    generator = torch_generator(config.seed, epoch, stream=0)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True,
                      generator=generator, num_workers=config.num_workers)


# --------------------------------------------------------------------------- evaluate
@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, *, num_classes: int, batch_size: int = 8,
             ignore_index: int = IGNORE_INDEX, quiet: bool = False,
             max_batches: int | None = None) -> SegmentationMetrics:
    """mIoU, per-class IoU and pixel accuracy of ``model`` on ``dataset`` (eval mode, no grad)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    meter = ConfusionMeter(num_classes, ignore_index=ignore_index)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for i, (images, masks) in enumerate(progress(loader, quiet=quiet, desc="evaluate",
                                                 leave=False)):
        if max_batches is not None and i >= max_batches:
            break
        meter.update(model(images.to(device)).cpu(), masks)
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
def _steps_per_epoch(train_set: Dataset, config: TrainConfig, world_size: int = 1) -> int:
    steps = len(train_set) // (config.batch_size * world_size)
    if config.steps_per_epoch is not None:
        steps = min(steps, config.steps_per_epoch)
    if steps < 1:
        raise TrainConfigError(
            f"the training set has {len(train_set)} samples, fewer than one batch of "
            f"{config.batch_size} per process ({world_size} processes): lower --batch-size or add "
            "data")
    return steps


def _seed(config: TrainConfig, ctx: distributed.Context) -> None:
    """Rank 0 (and a single process) seeds with ``config.seed``; the other ranks get seeds of their
    own, so that their random draws (dropout, ...) are not copies of rank 0's."""
    seed_everything(config.seed if ctx.rank == 0 else stream_seed(config.seed, ctx.rank, stream=5))


def _start_run(out: Path | None, *, model: nn.Module, optimizer, scheduler, config: TrainConfig,
               resume: bool, overwrite: bool, run_info: dict,
               ctx: distributed.Context = distributed.Context()) -> tuple[int, list[dict]]:
    """Resume from ``out/checkpoint.pt`` or start afresh -> (first epoch, history so far).
    Every rank reads; only rank 0 writes."""
    if out is None:
        _seed(config, ctx)
        return 0, []
    guard_run_dir(out, [CHECKPOINT], resume=resume, overwrite=overwrite)
    if resume:
        state = load_checkpoint(out / CHECKPOINT)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        ranks = state.get("rng_ranks")
        set_rng_state(ranks[ctx.rank] if ranks and len(ranks) == ctx.world_size else state["rng"])
        start_epoch = state["epoch"] + 1
        history = _read_history(out / METRICS)[:start_epoch]
        if ctx.is_main:  # the log may be one line short if the run died between checkpoint and log
            atomic_write_text(out / METRICS, "".join(json.dumps(r) + "\n" for r in history))
        return start_epoch, history
    _seed(config, ctx)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / CONFIG, json.dumps({"train": asdict(config), **run_info}, indent=2))
        atomic_write_text(out / METRICS, "")
    distributed.barrier(ctx)
    return 0, []


def _train_epoch(model: nn.Module, train_set: Dataset, *, optimizer, scheduler, config: TrainConfig,
                 epoch: int, steps: int, teacher: nn.Module | None = None,
                 ctx: distributed.Context = distributed.Context(), scaler=None) -> float:
    """One epoch of SGD/AdamW steps -> mean training loss over all processes (with the
    distillation term when ``config.distill_weight`` > 0 and a ``teacher`` is given, or the
    batches carry saved soft masks: ``data.soft_targets.SoftTargets``)."""
    model.train()
    batches = iter(_epoch_loader(train_set, config, epoch, ctx))
    amp_dtype = distributed.check_amp(config.amp, ctx.device)
    running = 0.0
    bar = progress(range(steps), quiet=config.quiet or not ctx.is_main,
                   desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
    for seen, _ in enumerate(bar, start=1):
        batch = next(batches)  # (images, masks), or (images, masks, saved soft masks)
        images, masks = batch[0].to(ctx.device), batch[1].to(ctx.device)
        saved = batch[2].to(ctx.device) if len(batch) > 2 else None
        with torch.autocast(ctx.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            output = model(images)
            loss = segmentation_loss(output, masks, config=config)
            if (teacher is not None or saved is not None) and config.distill_weight > 0:
                with torch.no_grad():
                    soft = (main_logits(teacher(images)) if teacher is not None
                            else logits_from_probability(saved))
                loss = loss + config.distill_weight * distillation_loss(
                    main_logits(output), soft, temperature=config.distill_temperature,
                    target=masks, ignore_index=config.ignore_index)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; lower "
                                     "the learning rate (--lr)")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:  # fp16: scale the loss so small gradients do not underflow
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()  # under DDP this also averages the gradients over the processes
            optimizer.step()
        scheduler.step()
        running += loss.item()
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{running / seen:.3f}")
    return distributed.mean_over_ranks(running / steps, ctx)


def _save_epoch(out: Path, record: dict, *, model: nn.Module, optimizer, scheduler, epoch: int,
                config: TrainConfig, run_info: dict,
                ctx: distributed.Context = distributed.Context()) -> None:
    """Checkpoint (atomically) first, then append the epoch's line to ``metrics.jsonl``. Rank 0
    writes; it also keeps every rank's RNG state, so that a resumed run continues each of them."""
    ranks = distributed.gather(rng_state(), ctx) if ctx.distributed else None
    if ctx.is_main:
        state = {"model": distributed.unwrap(model).state_dict(),
                 "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "epoch": epoch, "rng": rng_state(), "model_info": run_info["model"],
                 "num_classes": run_info["num_classes"], "data_info": run_info.get("data"),
                 "train_config": asdict(config)}
        if ranks is not None:
            state["rng_ranks"] = ranks
        atomic_torch_save(state, out / CHECKPOINT)
        with open(out / METRICS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
    distributed.barrier(ctx)


def train(model: nn.Module, train_set: Dataset, val_set: Dataset | None = None, *,
          config: TrainConfig, num_classes: int, out_dir: str | os.PathLike | None = None,
          resume: bool = False, overwrite: bool = False, model_info: dict | None = None,
          class_names: tuple[str, ...] | None = None,
          on_epoch_end: Callable[[dict], None] | None = None,
          teacher: nn.Module | None = None, data_info: dict | None = None) -> TrainResult:
    """Train ``model`` for ``config.epochs`` epochs, checkpointing into ``out_dir`` after each.

    ``model_info`` (e.g. ``{"name": "fast_scnn", "kwargs": {...}}``) is stored in the checkpoint so
    that ``segnas evaluate`` and ``segnas predict`` can rebuild the model. With ``resume=True`` the run
    continues from ``out_dir/checkpoint.pt``; an existing run is never overwritten unless
    ``overwrite=True``. ``teacher``: a trained model whose soft masks are distilled into ``model``
    with weight ``config.distill_weight`` (``distill.py``; Hinton et al., 2015); a ``train_set``
    of ``data.soft_targets.SoftTargets`` distils another model's saved soft masks instead. ``data_info``:
    what the data was (source, image size, class set; ``segnas train`` writes it) saved in
    ``config.json`` and the checkpoint, so ``segnas evaluate``/``predict`` need no repeated flags.
    """
    ctx = distributed.init(config.device)
    distributed.check_amp(config.amp, ctx.device)  # fail before the first step, not in it
    if teacher is not None and getattr(train_set, "soft_dir", None) is not None:
        raise DistillationError("one teacher at a time: a teacher model and saved soft masks "
                                "(SoftTargets) were both given; drop one of them")
    saved_masks = getattr(train_set, "soft_dir", None) is not None
    if (teacher is not None or saved_masks) and config.distill_weight <= 0:
        given = "a teacher model" if teacher is not None else "saved soft masks (SoftTargets)"
        raise DistillationError(f"{given} given with distill_weight={config.distill_weight}: the "
                                "teacher would be ignored; set TrainConfig(distill_weight=...) "
                                "above 0 (0.5 is the CLI's default), or train without it")
    if teacher is not None:
        teacher.to(ctx.device).eval()
    net = distributed.wrap(model, ctx, sync_bn=config.sync_bn)  # on its device; DDP if several
    inner = distributed.unwrap(net)
    out = Path(out_dir) if out_dir is not None else None
    run_info = {"model": model_info or {}, "num_classes": num_classes}
    if data_info is not None:
        run_info["data"] = data_info
    steps = _steps_per_epoch(train_set, config, ctx.world_size)
    optimizer = make_optimizer(net, config)
    total_steps = config.epochs * steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, config))
    scaler = torch.amp.GradScaler("cuda") if config.amp == "fp16" else None
    start_epoch, history = _start_run(out, model=inner, optimizer=optimizer, scheduler=scheduler,
                                      config=config, resume=resume, overwrite=overwrite,
                                      run_info=run_info, ctx=ctx)
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        loss = _train_epoch(net, train_set, optimizer=optimizer, scheduler=scheduler,
                            config=config, epoch=epoch, steps=steps, teacher=teacher, ctx=ctx,
                            scaler=scaler)
        record = {"epoch": epoch + 1, "train_loss": loss, "lr": optimizer.param_groups[0]["lr"]}
        last = epoch + 1 == config.epochs
        if val_set is not None and ((epoch + 1) % config.eval_every == 0 or last):
            if ctx.is_main:  # the inner model: a DDP forward on one rank alone would wait forever
                metrics = evaluate(inner, val_set, num_classes=num_classes,
                                   batch_size=config.batch_size, ignore_index=config.ignore_index,
                                   quiet=config.quiet)
                record.update({"val_" + k: v for k, v in metrics.as_dict(class_names).items()})
            record = distributed.broadcast(record, ctx)
        record["seconds"] = round(time.perf_counter() - started, 3)
        history.append(record)
        if out is not None:
            _save_epoch(out, record, model=inner, optimizer=optimizer, scheduler=scheduler,
                        epoch=epoch, config=config, run_info=run_info, ctx=ctx)
        if on_epoch_end is not None:
            on_epoch_end(record)
    final = {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")} if history else None
    return TrainResult(history=history, final_metrics=final or None,
                       out_dir=str(out) if out else None)


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

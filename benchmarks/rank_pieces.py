"""The expensive pieces of ``benchmarks/rank.py``: a super-net of the ablation (trained, its weights
saved, its estimate of every subnet) and a subnet trained alone (the truth).

Each returns the record the state keeps and can be stopped at any time: a super-net and a training
checkpoint every epoch into a folder under the benchmark's ``--out`` and resume from it; the folder
is removed once the piece is recorded (a super-net's weights stay, in ``supernet_<name>.pt``).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from segnas_lite.nas import checkpoint
from segnas_lite.nas.config import SearchConfig
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.space import Genotype, get_space
from segnas_lite.runio import atomic_torch_save, load_checkpoint, seed_everything
from segnas_lite.timing import load_average

UNIFORM_WARMUP = {"warmup_sampling": "fair", "sandwich": 0, "inplace_distill": False}
"""The ablation's reference point, spelled out: one uniform path per warm-up step (the package's
default before this study). Every variant's changes apply on top of it, so a variant means the same
whatever ``SearchConfig``'s defaults become."""


def short(key: str) -> str:
    """A file-name-safe tag of a subnet key (its ops joined by commas)."""
    return hashlib.sha1(key.encode()).hexdigest()[:10]


class SupernetVariant:
    """One variant of the ablation: the search that trains its super-net (its warm-up only), the
    weights file, and the search's own fitness score (``strategies.SupernetScore``)."""

    def __init__(self, settings, name: str, selection: dict, out: Path) -> None:
        self.settings, self.name, self.selection = settings, name, selection
        self.weights = out / f"supernet_{name}.pt"
        self.folder = out / f"supernet_{name}"  # its checkpoint while it trains
        self._search = None

    def config(self) -> SearchConfig:
        s = self.settings
        base = dict(image_size=s.image_size, target=s.target, search_epochs=0,
                    warmup_epochs=s.supernet_epochs, steps_per_epoch=s.supernet_steps,
                    budget_ms=max(self.selection["budgets_ms"].values()),
                    bn_recalibration=s.bn_images, calibrate=s.calibrate, num_fit=s.num_fit,
                    measure_child=False, seed=s.seed, quiet=True)
        return SearchConfig(**{**base, **UNIFORM_WARMUP, **s.variants()[self.name]})

    def search(self):
        """The ``ProxylessSearch`` with this variant's config on the training split (built once)."""
        if self._search is None:
            from segnas_lite.data.concat import open_datasets
            from segnas_lite.nas.search import ProxylessSearch
            from segnas_lite.nas.supernet import SegSuperNet
            s, config = self.settings, self.config()
            train_set = open_datasets(list(s.data), image_size=s.image_size, split="train",
                                      seed=s.seed, split_seed=s.split_seed, length=s.train_length)
            seed_everything(config.seed)
            net = SegSuperNet(get_space(s.space), num_classes=2, estimator=config.estimator)
            table = LatencyTable.from_json(json.dumps(self.selection["table"]))
            self._search = ProxylessSearch(net, table, train_set, config=config, num_classes=2,
                                           out_dir=self.folder)
        return self._search

    def train(self) -> dict:
        """The warm-up, one checkpoint per epoch (a stopped run resumes), then the weights file."""
        search = self.search()
        resume = (self.folder / checkpoint.CHECKPOINT).exists()
        checkpoint.prepare_out_dir(self.folder, search.table, resume=resume, overwrite=True)
        start = checkpoint.load(search) if resume else 0
        if not resume:
            seed_everything(search.config.seed)  # as ProxylessSearch.run does
        started, load = time.perf_counter(), load_average()
        for epoch in range(start, search.config.total_epochs):
            search.run_epoch(epoch)
            checkpoint.save(search, epoch)
        atomic_torch_save(search.net.state_dict(), self.weights)
        history = search.history
        shutil.rmtree(self.folder)
        return {"weights": self.weights.name, "epochs": search.config.total_epochs,
                "steps": len(history.weight_steps),
                "paths": sum(len(step.samples) for step in history.weight_steps),
                "last_epoch_loss": history.epochs[-1].mean_weight_loss if history.epochs else None,
                "resumed_at_epoch": start, "seconds": round(time.perf_counter() - started, 1),
                "load_average": [load, load_average()]}

    def estimate(self, state) -> dict:
        """The estimate of every subnet (shared and recalibrated BN), each recorded in ``state`` at
        once; returns the time it took."""
        from segnas_lite.nas.strategies import SupernetScore
        search, started_all = self.search(), time.perf_counter()
        search.net.load_state_dict(load_checkpoint(self.weights))
        recal = SupernetScore.of_search(search)  # held-out train images, BN on bn_images
        plain = SupernetScore(search.net, recal.held_out, num_classes=2, calibration=None,
                              batch_size=recal.batch_size, ignore_index=recal.ignore_index)
        for key, subnet in self.selection["subnets"].items():
            if state.get("estimate", f"{self.name}/{key}") is None:
                genotype = Genotype(self.settings.space, tuple(subnet["ops"]))
                started = time.perf_counter()
                values = {"plain": plain(genotype), "recal": recal(genotype)}
                state.put("estimate", f"{self.name}/{key}", {
                    **values, "held_out": len(recal.held_out),
                    "seconds": round(time.perf_counter() - started, 1)})
        return {"seconds": round(time.perf_counter() - started_all, 1)}


# --------------------------------------------------------------------------- stand-alone training
def train_standalone(settings, key: str, subnet: dict, seed: int, out: Path) -> dict:
    """``segnas train --genotype G --recipe people --epochs 15 --image-size 160 --split-seed 0
    --seed S`` on the benchmark's folders, in process (a stopped one resumes from its epoch)."""
    import torch
    from segnas_lite.data.splits import training_splits
    from segnas_lite.train.engine import CHECKPOINT
    from segnas_lite.train.recipes import get_recipe, train_with_recipe
    from segnas_lite.zoo import build_model
    recipe = get_recipe(settings.recipe).with_changes(image_size=settings.image_size,
                                                      epochs=settings.epochs)
    train_set, val_set, data_info = training_splits(
        list(settings.data), image_size=recipe.image_size, seed=seed, augment=recipe.augmentation(),
        split_seed=settings.split_seed, train_size=settings.train_length)
    genotype = Genotype(settings.space, tuple(subnet["ops"]))
    info = {"name": "nas_child", "kwargs": {"genotype": genotype.to_json()}}
    torch.manual_seed(seed)
    model = build_model(info["name"], num_classes=2, **info["kwargs"])
    config = recipe.train_config(seed=seed, quiet=True, eval_every=recipe.epochs)
    folder = out / "standalone" / f"{short(key)}_s{seed}"
    resume = (folder / CHECKPOINT).exists()
    started, load = time.perf_counter(), load_average()
    result = train_with_recipe(model, train_set, val_set, recipe, config=config, num_classes=2,
                               out_dir=folder, resume=resume, overwrite=not resume,
                               model_info=info, data_info=data_info)
    shutil.rmtree(folder)
    final = result.final_metrics
    return {"miou": final["miou"], "pixel_accuracy": final["pixel_accuracy"],
            "train_images": len(train_set), "val_images": len(val_set),
            "seconds": round(time.perf_counter() - started, 1),
            "load_average": [load, load_average()], "resumed": resume}

"""Small helpers shared by the benchmark scripts: printing a table and writing JSON atomically."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from segnas_lite.flags import cpu_name
from segnas_lite.runio import atomic_write_text
from segnas_lite.timing import load_average

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict:
    """What the numbers were measured on."""
    import openvino
    return {"cpu": cpu_name(), "torch": torch.__version__, "openvino": openvino.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
            "load_average": load_average()}


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """``columns`` = [(key, header, format)], e.g. ("latency_ms", "ms", ".1f"). Returns the text."""
    widths = [max(len(h), *(len(format(r.get(k, ""), f)) if r.get(k) is not None else 3
                          for r in rows)) for k, h, f in columns]
    lines = [" | ".join(h.rjust(w) for (_, h, _), w in zip(columns, widths)),
             "-|-".join("-" * w for w in widths)]
    for r in rows:
        cells = [("n/a" if r.get(k) is None else format(r[k], f)).rjust(w)
                 for (k, _, f), w in zip(columns, widths)]
        lines.append(" | ".join(cells))
    text = "\n".join(lines)
    print(text)
    return text


def write_json(path: str | Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2))
    print(f"\nwrote {path}")


def short_training_miou(model_info: dict, source: str, *, size: int, steps: int, seed: int = 0) -> float:
    """mIoU on the validation split after ``steps`` SGD steps from scratch: the one short recipe
    every benchmark uses (batch 8, lr 0.05, poly schedule, PairedAugment), so models compare fairly.

    ``model_info`` is ``{"name": ..., "kwargs": {...}}`` as stored in checkpoints.
    """
    from segnas_lite.data import PairedAugment, open_dataset
    from segnas_lite.engine import TrainConfig, evaluate, train
    from segnas_lite.models import build_model
    synthetic = source.startswith("synthetic")
    train_set = open_dataset(source, image_size=size, split="train", seed=seed,
                             augment=PairedAugment(), length=steps * 8 if synthetic else None)
    val_set = open_dataset(source, image_size=size, split="val", seed=seed,
                           length=64 if synthetic else None)
    epochs = max(1, -(-steps * 8 // len(train_set)))  # ceil
    torch.manual_seed(seed)
    model = build_model(model_info["name"], num_classes=2, **model_info.get("kwargs", {}))
    config = TrainConfig(epochs=epochs, batch_size=8, lr=0.05, seed=seed, quiet=True,
                         steps_per_epoch=-(-steps // epochs), eval_every=epochs)
    train(model, train_set, config=config, num_classes=2)
    return evaluate(model, val_set, num_classes=2, quiet=True).miou

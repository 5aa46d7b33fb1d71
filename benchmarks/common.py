"""Small helpers shared by the benchmark scripts: printing a table, writing JSON atomically, the
short training recipe, and a resumable state for long runs."""
from __future__ import annotations

import argparse
import json
import platform
import time
from contextlib import contextmanager
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
    widths = [max([len(h), *(len(format(r.get(k, ""), f)) if r.get(k) is not None else 3
                           for r in rows)]) for k, h, f in columns]  # no rows: the headers
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
    from segnas_lite.train.engine import TrainConfig, evaluate, train
    from segnas_lite.zoo import build_model
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


def people_training(model_info: dict, people_dir: str | Path, *, size: int, steps: int,
                    seed: int = 0, split_seed: int = 0, lr: float = 0.05,
                    batch_size: int = 8) -> dict:
    """``short_training_miou``'s recipe on the people set, with the 80/20 split fixed by
    ``split_seed`` whatever the training ``seed`` is. Returns the people-val mIoU, pixel accuracy,
    the steps actually run and the wall time in seconds."""
    from segnas_lite.data import PairedAugment, open_dataset
    from segnas_lite.train.engine import TrainConfig, evaluate, train
    from segnas_lite.zoo import build_model
    started = time.perf_counter()
    train_set = open_dataset(people_dir, image_size=size, split="train", seed=split_seed,
                             augment=PairedAugment())
    val_set = open_dataset(people_dir, image_size=size, split="val", seed=split_seed)
    epochs = max(1, -(-steps * batch_size // len(train_set)))  # ceil
    per_epoch = min(len(train_set) // batch_size, -(-steps // epochs))
    torch.manual_seed(seed)
    model = build_model(model_info["name"], num_classes=2, **model_info.get("kwargs", {}))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, quiet=True,
                         steps_per_epoch=per_epoch, eval_every=epochs)
    train(model, train_set, config=config, num_classes=2)
    metrics = evaluate(model, val_set, num_classes=2, quiet=True)
    return {"miou": metrics.miou, "pixel_accuracy": metrics.pixel_accuracy,
            "steps": epochs * per_epoch, "train_images": len(train_set),
            "val_images": len(val_set), "seconds": round(time.perf_counter() - started, 1)}


# --------------------------------------------------------------------------- resumable runs
class StateMismatchError(RuntimeError):
    """A saved benchmark state was made with another recipe than the one asked for now."""


class ResumableState:
    """A long benchmark's finished pieces in one JSON file, rewritten atomically after each piece.

    ``put(section, key, value)`` records a piece as soon as it is done; ``get`` finds it on the next
    run, which skips it. ``recipe`` holds the settings every piece depends on (image sizes, steps,
    timing settings): a saved state with another recipe is refused (``StateMismatchError``) rather
    than mixed with new pieces. ``fresh=True`` starts over (the old state file is replaced).
    ``stage(name)`` adds the wall time of a ``with`` block to ``stages[name]``, summed over runs.
    """

    def __init__(self, path: str | Path, *, recipe: dict, fresh: bool = False) -> None:
        self.path = Path(path)
        recipe = json.loads(json.dumps(recipe))  # tuples -> lists, as they will be read back
        if self.path.exists() and not fresh:
            self.data = json.loads(self.path.read_text())
            saved = self.data.get("recipe", {})
            if saved != recipe:
                changed = ", ".join(f"{k}: saved {saved.get(k)!r}, now {recipe.get(k)!r}"
                                    for k in sorted(set(saved) | set(recipe))
                                    if saved.get(k) != recipe.get(k))
                raise StateMismatchError(
                    f"{self.path} holds a run with other settings ({changed}); re-run with the "
                    "saved settings to resume it, or pass --fresh to start over (this discards it)")
            self.data["runs"] = self.data.get("runs", 0) + 1
        else:
            self.data = {"recipe": recipe, "pieces": {}, "stages": {}, "load": [], "runs": 1,
                         "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.save()

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=1))

    def get(self, section: str, key: str, default=None):
        return self.data["pieces"].get(section, {}).get(key, default)

    def put(self, section: str, key: str, value):
        self.data["pieces"].setdefault(section, {})[key] = value
        self.save()
        return value

    def add_load(self, what: str, report: dict) -> None:
        """Keep a ``timing.LoadMonitor`` report (``report.to_dict()``) of the latencies ``what``."""
        self.data["load"].append({"what": what, **report})
        self.save()

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            stages = self.data["stages"]
            stages[name] = round(stages.get(name, 0.0) + time.perf_counter() - started, 1)
            self.save()


def add_resumable_args(parser: argparse.ArgumentParser, *, only: tuple[str, ...],
                       bootstrap: int, smoke_help: str) -> None:
    """The options every resumable benchmark shares: which pieces, how many, the report's
    bootstrap, ``--smoke``, ``--fresh`` and ``--refresh-latency``. ``--report`` is turned into
    ``--only report`` by ``finish_resumable_args``."""
    add = parser.add_argument
    add("--only", choices=only, default=None,
        help="run only these pieces (report: run nothing, print and write the report)")
    add("--report", action="store_true", help="the same as --only report")
    add("--max-pieces", type=int, default=None, metavar="N", help="stop after N pieces")
    add("--bootstrap", type=int, default=bootstrap, help="bootstrap resamples of each interval")
    add("--smoke", action="store_true", help=smoke_help)
    add("--fresh", action="store_true", help="discard the saved state and its folders, start over")
    add("--refresh-latency", action="store_true", help="with --fresh: measure the latency "
        "predictor again instead of taking the cached one (e.g. one measured on a busy machine)")


def finish_resumable_args(args: argparse.Namespace, *, name: str) -> argparse.Namespace:
    """Fill the defaults of ``--out`` and ``--json``: ``results/<name>/`` and ``results/<name>.json``
    (``--smoke``: ``bench_<name>_smoke`` in the cache, the report inside it)."""
    from segnas_lite import flags
    if args.report:
        args.only = "report"
    smoke_out = flags.cache_dir() / f"bench_{name}_smoke"
    args.out = Path(args.out or (smoke_out if args.smoke else RESULTS / name))
    args.json = Path(args.json or (args.out / f"{name}.json" if args.smoke
                                   else RESULTS / f"{name}.json"))
    return args


def log(text: str) -> None:
    """Print at once (a long run's progress lines reach a log file as they happen)."""
    print(text, flush=True)

"""Helpers every notebook shares: quick mode, seeding, a result cache and an environment report.

A notebook's ``parameters`` cell holds plain assignments (papermill overrides them), e.g.
``QUICK = False``; the next cell calls ``settings = setup(quick=QUICK, seed=SEED)``, which

* turns quick mode on when the environment variable ``CI`` is set (so CI never runs a full workshop),
* sets ``SEGNAS_QUIET=1`` in quick mode (no progress bars in executed notebooks),
* seeds Python, NumPy and PyTorch.

Notebooks reuse each other's results through :func:`cached`: notebook 02 trains Fast-SCNN and stores
the weights under a name built from its settings; notebook 07 asks for the same name and gets the
stored weights instead of training again, or trains them itself when the cache is empty. The folder
is ``$SEGNAS_CACHE`` (default ``~/.cache/segnas_lite``); delete it to start from scratch.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from segnas_lite.errors import SegnasError
from segnas_lite.train.engine import TrainConfig, train
from segnas_lite.flags import cache_dir, cpu_name, quick_forced
from segnas_lite.zoo import build_model
from segnas_lite.runio import atomic_torch_save, atomic_write_text, seed_everything


class CacheError(SegnasError, RuntimeError):
    """A cached result that cannot be read; delete the file named in the message and run again."""


# --------------------------------------------------------------------------- quick mode and seeds
def short_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as a notebook reader needs it: its kind and message, not the library file that
    raised it (``warnings.formatwarning`` signature)."""
    return f"{category.__name__}: {message}\n"



def quick_mode(quick: bool) -> bool:
    """The effective quick flag: the notebook's ``QUICK`` parameter, forced on under CI or when
    ``SEGNAS_QUICK=1`` (the test suite sets it, so ``pytest`` never starts a full-size run)."""
    return bool(quick) or quick_forced()


@dataclass(frozen=True)
class Settings:
    """What :func:`setup` decided; notebooks read ``settings.quick``."""

    quick: bool
    seed: int
    threads: int
    cache: Path


def setup(*, quick: bool, seed: int = 0, threads: int | None = None) -> Settings:
    """Prepare a notebook run: quick mode (forced on under CI), quiet progress bars, seeds, threads.

    ``threads=None`` keeps PyTorch's default (one per core).
    """
    asked = quick
    quick = quick_mode(quick)
    if quick and not asked:  # say why the reader sees a quick run although the cell says False
        print("note: QUICK = False in the parameters cell, but CI or SEGNAS_QUICK=1 is set: every "
              "number below comes from the quick (CI-sized) run; unset it for the workshop run")
    if quick:
        os.environ["SEGNAS_QUIET"] = "1"  # runio.progress() then shows no tqdm bars
    warnings.formatwarning = short_warning  # "UserWarning: ..." without the library's file and line
    if threads is not None:
        torch.set_num_threads(threads)
    seed_everything(seed)
    return Settings(quick=quick, seed=seed, threads=torch.get_num_threads(), cache=cache_dir())


# --------------------------------------------------------------------------- the cache
def cache_key(name: str, **params: Any) -> str:
    """A readable, file-safe key: ``name`` plus a short hash of ``params`` (JSON, sorted keys).

    Two runs with the same name and parameters share the key; change any parameter and the key
    changes, so a quick-mode result is never mistaken for a full one.
    """
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    if not params:
        return safe
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    return f"{safe}-{digest[:10]}"


def cached(name: str, compute_fn: Callable[[], Any], *, refresh: bool = False) -> Any:
    """Return the result stored under ``name``, or call ``compute_fn()``, store and return it.

    Results are saved with ``torch.save`` (atomically) and loaded with ``weights_only=True``, so they
    must be tensors, numbers, strings and lists/dicts of them (state dicts, histories, metrics).
    ``refresh=True`` recomputes and overwrites.
    """
    path = cache_dir() / "results" / f"{name}.pt"
    if path.is_file() and not refresh:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CacheError(f"cannot read the cached result {path}: {exc}. Delete the file and "
                             "run the cell again") from exc
    value = compute_fn()
    atomic_torch_save(value, path)
    return value


def is_cached(name: str) -> bool:
    """Whether :func:`cached` would load ``name`` instead of computing it."""
    return (cache_dir() / "results" / f"{name}.pt").is_file()


# --------------------------------------------------------------------------- a trained model
def trained_model(name: str, *, source: str = "synthetic", image_size: int = 64, epochs: int = 2,
                  train_length: int = 64, val_length: int = 16, batch_size: int = 8,
                  lr: float = 0.05, seed: int = 0, refresh: bool = False,
                  **model_kwargs: Any) -> tuple[torch.nn.Module, list[dict]]:
    """``(model, history)``: the model called ``name`` trained on ``source``, from the cache if an
    earlier notebook trained it with the same settings.

    ``source`` is what :func:`segnas_lite.data.open_dataset` accepts ("synthetic",
    "synthetic-scenes" or a folder). A people-like photo folder is trained with the people recipe's
    augmentation, schedule and loss (``recipes.recipe_for``; ``epochs`` and ``lr`` stay as given).
    The model is in eval mode; ``history`` is the engine's per-epoch list of dicts (train loss,
    validation mIoU, ...).
    """
    from segnas_lite.data import open_dataset
    from segnas_lite.train.recipes import recipe_for
    settings = dict(source=str(source), image_size=image_size, epochs=epochs,
                    train_length=train_length, val_length=val_length, batch_size=batch_size,
                    lr=lr, seed=seed, model_kwargs=model_kwargs)
    recipe = None if str(source).startswith("synthetic") else recipe_for(str(source))
    if recipe is not None and recipe.name != "classic":
        settings["recipe"] = asdict(recipe)
    else:
        recipe = None
    train_set = open_dataset(source, image_size=image_size, split="train", seed=seed,
                             length=train_length,
                             augment=recipe.augmentation() if recipe is not None else None)
    num_classes = train_set.num_classes

    def compute() -> dict:
        val_set = open_dataset(source, image_size=image_size, split="val", seed=seed,
                               length=val_length)
        torch.manual_seed(seed)
        model = build_model(name, num_classes=num_classes, **model_kwargs)
        # Progress bars follow SEGNAS_QUIET (set by setup() in quick mode).
        if recipe is not None:
            config = recipe.train_config(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
        else:
            config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
        result = train(model, train_set, val_set, config=config, num_classes=num_classes)
        return {"state_dict": model.state_dict(), "history": result.history}

    stored = cached(cache_key(f"trained_{name}", **settings), compute, refresh=refresh)
    model = build_model(name, num_classes=num_classes, **model_kwargs)
    model.load_state_dict(stored["state_dict"])
    return model.eval(), stored["history"]


# --------------------------------------------------------------------------- shared files
REFERENCE_WEIGHTS = "torchvision_lraspp_mobilenet_v3_large_21.pt"


def default_reference_weights() -> Path:
    """Where a torchvision-format LR-ASPP state dict may lie: ``$SEGNAS_REFERENCE_DIR``, else
    ``../shared/reference`` next to the repository. It is optional: notebook 03 skips when absent."""
    root = os.environ.get("SEGNAS_REFERENCE_DIR")
    folder = Path(root) if root else Path(__file__).resolve().parents[2].parent / "shared" / "reference"
    return folder / REFERENCE_WEIGHTS


# --------------------------------------------------------------------------- environment
def environment_report() -> dict:
    """Versions, CPU, thread counts and OpenVINO devices, as a plain dict (see :func:`format_report`)."""
    import matplotlib
    import numpy
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
        "cache": str(cache_dir()),
    }
    for module in ("ipywidgets", "openvino", "nncf"):
        try:
            report[module] = __import__(module).__version__
        except Exception:  # not installed: the notebooks that need it say so
            report[module] = None
    report["openvino_devices"] = []
    if report["openvino"] is not None:
        try:
            import openvino as ov
            core = ov.Core()
            report["openvino_devices"] = [f"{d}: {core.get_property(d, 'FULL_DEVICE_NAME')}"
                                          for d in core.available_devices]
        except Exception as exc:  # a broken plugin should not stop the welcome notebook
            report["openvino_devices"] = [f"(could not query devices: {exc})"]
    report["executable"] = sys.executable
    return report


def format_report(report: dict) -> str:
    """The report as aligned ``key: value`` lines; missing packages read "not installed"."""
    width = max(len(key) for key in report)
    lines = []
    for key, value in report.items():
        if value is None:
            value = "not installed"
        elif isinstance(value, list):
            value = ", ".join(value) if value else "(none)"
        lines.append(f"{key:<{width}}  {value}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- NAS notebooks (04-07)
def search_key(space: str, config) -> str:
    """The cache key of a notebook search: ``space`` and every field of the ``SearchConfig`` but
    ``quiet``, defaults included (a new default, a new key)."""
    return cache_key("search", space=space,
                     **{k: v for k, v in asdict(config).items() if k != "quiet"})


def search_result(*, space: str = "seed", image_size: int = 64, seed: int = 0,
                  refresh: bool = False, **search_kwargs: Any):
    """A :class:`segnas_lite.nas.history.SearchResult`, from the cache when an earlier notebook ran
    the same search (notebook 06 runs it, notebook 07 reuses it).

    ``search_kwargs`` are :class:`segnas_lite.nas.config.SearchConfig` fields (``budget_ms``,
    ``warmup_epochs``, ``estimator``, ``num_fit``, ...); the search runs on synthetic portraits
    (:func:`segnas_lite.nas.run.run_search`) with latency for the default target at
    ``image_size``. It writes its usual files (``genotype.json``, ``history.json``,
    ``summary.json``, ...) into ``<cache>/search/<key>``; a later call with the same settings reads
    them back instead of searching again. The key hashes every field of the resolved
    ``SearchConfig``, defaults included: a package whose defaults changed never reads a search
    made with the old ones.
    """
    from segnas_lite.deploy.target import Target
    from segnas_lite.nas import Genotype
    from segnas_lite.nas.config import SearchConfig
    from segnas_lite.nas.history import History, SearchResult
    from segnas_lite.nas.run import run_search
    config = SearchConfig(**{"quiet": True, "target": Target(image_size=image_size),
                             **search_kwargs, "image_size": image_size, "seed": seed})
    out_dir = cache_dir() / "search" / search_key(space, config)
    if refresh or not (out_dir / "summary.json").is_file():
        return run_search(space, "synthetic", config, out_dir=out_dir, overwrite=True)
    try:
        summary = json.loads((out_dir / "summary.json").read_text())
        history = History.load(out_dir / "history.json")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CacheError(f"cannot read the cached search in {out_dir}: {exc}. Delete the folder "
                         "or pass refresh=True") from exc
    return SearchResult(Genotype(history.space, tuple(summary["genotype_argmax"])),
                        Genotype(history.space, tuple(summary["genotype_budget"])),
                        summary["budget_ms"], summary["predicted_argmax_ms"],
                        summary["predicted_budget_ms"], summary["measured_budget_ms"], history,
                        str(out_dir), latency={k: summary.get(k) for k in (
                            "backend", "precision", "latency_size", "calibrated", "derive_attempts")})


def saved_activation_mib(model: torch.nn.Module, images: torch.Tensor,
                         masks: torch.Tensor) -> float:
    """MiB of tensors autograd saves for backward in one training step of ``model`` (forward,
    cross-entropy, backward): the activation memory that grows with every path kept in the graph.

    Deterministic (it counts tensor sizes, it does not ask the allocator), so it is a fair way to
    compare the super-net's modes: ``"fixed"``/``"single"`` keep one path, ``"all"`` keeps every one.
    Storage shared by several saved tensors (e.g. a parameter saved by two ops) is counted once.
    """
    import torch.nn.functional as F
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = F.cross_entropy(model(images), masks, ignore_index=255)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values()) / 2 ** 20

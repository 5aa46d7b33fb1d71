"""One call for the CLI: build everything a search needs from a ``SearchConfig`` and search.

``run_search`` opens the data (and checks every mask), builds the super-net and the latency
predictor for ``config.target`` (calibrated unless ``config.calibrate`` is False; cached on disk),
fixes the budget and runs ``ProxylessSearch``. Every setting lives in ``SearchConfig``
(``SearchConfig.quick()`` for the few-minute version); only what is not a setting of the search
(where to write, whether to resume, a teacher model, how to read a data folder) is an argument.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from torch import nn

from segnas_lite.runio import seed_everything
from segnas_lite.train import distributed
from segnas_lite.nas import parallel
from segnas_lite.nas.config import SearchConfig, SearchConfigError
from segnas_lite.nas.history import SearchResult
from segnas_lite.nas.latency import LatencyTable, build_table
from segnas_lite.nas.predictor import build_predictor
from segnas_lite.nas.search import ProxylessSearch
from segnas_lite.nas.space import MacroConfig, SearchSpace, get_space
from segnas_lite.nas.supernet import SegSuperNet


def run_search(space: str | SearchSpace, data: str | list[str], config: SearchConfig, *,
               out_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False,
               teacher: nn.Module | None = None, data_options: dict | None = None,
               budget_frac: float | None = None) -> SearchResult:
    """Build everything and search: ``segnas search`` calls this.

    ``space``: a name in ``SPACES`` or a ``SearchSpace``; ``data``: "synthetic" or a folder (see
    ``data.open_dataset``, with ``config.image_size`` and ``config.train_length``;
    ``data_options``: its class-set keywords, e.g. ``num_classes``, ``mask_mapping``; every mask is
    checked against them before the first step). The budget is ``config.budget_ms``, or
    ``budget_frac`` of the way from the fastest to the slowest predicted architecture (0.25 = a
    quarter), or by default the ``config.budget_quantile`` (0.4) of random architectures
    (``constraint.default_budget``). On resume the table saved in ``out_dir`` is reused.
    ``teacher``: a trained model (``zoo.load_trained(path, frozen=True)``) distilled into the
    warm-up with ``config.distill_weight``.
    """
    from segnas_lite.data.concat import open_datasets
    from segnas_lite.data.check import scan_masks
    if config.budget_ms is not None and budget_frac is not None:
        raise SearchConfigError("give budget_ms or budget_frac, not both")
    if budget_frac is not None and not 0.0 <= budget_frac <= 1.0:
        raise SearchConfigError(f"budget_frac must be in [0, 1], got {budget_frac}")
    space = get_space(space) if isinstance(space, str) else space
    ctx = distributed.init(config.device)  # under torchrun: one of several processes
    sources = [data] if isinstance(data, str) else list(data)  # several folders: read as one
    train_set = open_datasets(sources, image_size=config.image_size, split="train",
                              seed=config.seed, length=config.train_length, **(data_options or {}))
    scan_masks(train_set, quiet=config.quiet or not ctx.is_main)
    num_classes = int(getattr(train_set, "num_classes", 2))
    seed_everything(config.seed)
    supernet = SegSuperNet(space, num_classes=num_classes, estimator=config.estimator)
    saved = Path(out_dir) / "latency_table.json"
    # latency is measured on config.target (the CPU), whatever trains; by rank 0 alone (the
    # others wait, so the CPU is quiet), and every rank gets the same table
    table = parallel.from_rank0(
        lambda: LatencyTable.load(saved) if resume and saved.exists() else latency_table(
            space, config, num_classes=num_classes, macro_config=supernet.macro_config), ctx)
    if budget_frac is not None:
        fastest, slowest = table.fastest()[1], table.slowest()[1]
        config = dataclasses.replace(config, budget_ms=fastest + budget_frac * (slowest - fastest))
    seed_everything(config.seed)  # building the predictor drew random numbers
    search = ProxylessSearch(supernet, table, train_set, config=config, num_classes=num_classes,
                             out_dir=out_dir, teacher=teacher)
    if not config.quiet and ctx.is_main:
        print(f"search on {space.name!r} at {config.image_size}px, latency for "
              f"{config.target.describe()}: budget {search.budget_ms:.2f} ms (fastest "
              f"{search.fastest_ms:.2f}, slowest {table.slowest()[1]:.2f} ms predicted)")
    return search.run(resume=resume, overwrite=overwrite)


def latency_table(space: SearchSpace, config: SearchConfig, *, num_classes: int,
                  macro_config: MacroConfig) -> LatencyTable:
    """The latency table for ``config.target``, calibrated on ``config.num_fit`` end-to-end
    measurements unless ``config.calibrate`` is False (then the plain in-place table)."""
    common = dict(target=config.target, num_classes=num_classes, macro_config=macro_config,
                  quiet=config.quiet)
    if config.calibrate:
        return build_predictor(space, num_fit=config.num_fit, seed=config.seed, **common)
    return build_table(space, **common)

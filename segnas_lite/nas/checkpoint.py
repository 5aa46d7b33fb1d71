"""What a search keeps on disk: a checkpoint after every epoch (to resume) and its output files.

``save`` writes everything ``ProxylessSearch`` needs to continue after an epoch (super-net, both
optimisers, the schedule, the History, every random state and the measured-latency cache) in one
atomic file; ``load`` puts it back, so a resumed search ends exactly like an uninterrupted one.
``write_outputs`` writes what a finished search leaves behind.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from segnas_lite.runio import (atomic_torch_save, atomic_write_text, guard_run_dir, load_checkpoint,
                               rng_state, set_rng_state)
from segnas_lite.train import distributed
from segnas_lite.nas.config import SearchConfigError
from segnas_lite.nas.history import History, SearchResult
from segnas_lite.nas.latency import LatencyTable

if TYPE_CHECKING:  # only for the annotations: search.py imports this module
    from segnas_lite.nas.search import ProxylessSearch

CHECKPOINT = "search_checkpoint.pt"
OUTPUTS = ("genotype.json", "genotype_over_budget.json", "genotype_argmax.json", "history.json",
           "latency_table.json", "summary.json")


def prepare_out_dir(out_dir: str | os.PathLike, table: LatencyTable, *, resume: bool,
                    overwrite: bool, ctx: distributed.Context = distributed.Context()) -> None:
    """Refuse a folder that holds a search unless ``resume`` or ``overwrite`` (``RunDirectoryError``,
    the same error as a training run's); clear it for a new search; save the latency table.
    Under torchrun every rank checks (so all of them stop), then rank 0 alone writes."""
    out = Path(out_dir)
    existing = guard_run_dir(out, (CHECKPOINT, *OUTPUTS), resume=resume, overwrite=overwrite,
                             what="search")
    distributed.barrier(ctx)  # every rank has looked before rank 0 changes anything
    if ctx.is_main:
        if not resume:
            for path in existing:
                path.unlink()
        out.mkdir(parents=True, exist_ok=True)
        table.save(out / "latency_table.json")
    distributed.barrier(ctx)


def save(search: "ProxylessSearch", epoch: int) -> None:
    """Everything needed to continue after ``epoch`` (0-based), written atomically by rank 0, with
    every rank's global RNG state under torchrun (``rng_ranks``)."""
    ranks = distributed.gather(rng_state(), search.ctx) if search.ctx.distributed else None
    if search.ctx.is_main:
        _write(search, epoch, ranks)
    distributed.barrier(search.ctx)


def _write(search: "ProxylessSearch", epoch: int, ranks: list | None) -> None:
    cache = getattr(search.latency_fn, "cache", None)
    atomic_torch_save({
        "supernet": search.net.state_dict(), "weight_opt": search.weight_opt.state_dict(),
        "arch_opt": search.arch_opt.state_dict(), "scheduler": search.scheduler.state_dict(),
        "history": search.history.to_json(), "epoch": epoch,
        "phase": search.history.epochs[-1].phase if search.history.epochs else "warmup",
        "rng": rng_state(), "generator": search.generator.get_state(),
        "warmup_paths": search.warmup_paths.state_dict() if search.warmup_paths else None,
        "measured_cache": [[list(k), v] for k, v in cache.items()] if cache else [],
        **({"rng_ranks": ranks} if ranks is not None else {}),
    }, search.out_dir / CHECKPOINT)


def load(search: "ProxylessSearch") -> int:
    """Restore the state ``save`` wrote into ``search``; returns the first epoch still to run."""
    state = load_checkpoint(search.out_dir / CHECKPOINT)
    history = History.from_json(state["history"])
    budget_ms = search.config.budget_ms
    if budget_ms is not None and abs(history.budget_ms - budget_ms) > 1e-9:
        raise SearchConfigError(f"the checkpoint in {search.out_dir} searched under "
                                f"{history.budget_ms} ms, not {budget_ms} ms; "
                                "resume with the same budget or start a new search")
    search.net.load_state_dict(state["supernet"])
    search.weight_opt.load_state_dict(state["weight_opt"])
    search.arch_opt.load_state_dict(state["arch_opt"])
    search.scheduler.load_state_dict(state["scheduler"])
    search.history, search.budget_ms = history, history.budget_ms
    ranks, ctx = state.get("rng_ranks"), search.ctx
    set_rng_state(ranks[ctx.rank] if ranks and len(ranks) == ctx.world_size else state["rng"])
    search.generator.set_state(state["generator"])
    if search.warmup_paths is not None:  # where the FairNAS cycle stands
        search.warmup_paths.load_state_dict(state["warmup_paths"])
    cache = getattr(search.latency_fn, "cache", None)
    if cache is not None:
        cache.update({tuple(ops): ms for ops, ms in state["measured_cache"]})
    return int(state["epoch"]) + 1


def write_outputs(out_dir: str | os.PathLike, result: SearchResult) -> None:
    """``genotype.json`` (only when the derived net was measured within the budget, else
    ``genotype_over_budget.json``), ``genotype_argmax.json``, ``history.json``, ``summary.json``."""
    out = Path(out_dir)
    within = result.within_budget is not False
    result.genotype_budget.save(out / ("genotype.json" if within else "genotype_over_budget.json"))
    result.genotype_argmax.save(out / "genotype_argmax.json")
    result.history.save(out / "history.json")
    atomic_write_text(out / "summary.json", json.dumps(result.summary(), indent=2))

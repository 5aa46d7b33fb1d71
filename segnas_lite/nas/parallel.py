"""The super-net under ``torchrun``: every process trains the SAME path, on its own data.

Data parallelism (``train/distributed.py``) rests on one invariant: all processes hold the same
network, each computes the gradient of its own share of the batch, and the average of those
gradients is the gradient of the whole batch. A super-net step trains one sampled path (ProxylessNAS
Sec. 3.2). If every process drew its own path, the average would mix gradients of *different*
networks: a layer's op that ran on one process only would get half its gradient (the others add
nothing), the shared stem and head would be pulled towards several subnets at once, and the step
would be the step of no network at all. So, per step:

1. rank 0 draws the path (through the hard constraint, measuring latency if the constraint is
   ``"measured"``: one process times, the others wait) and sends it to the others (``same_path``);
2. each process reads its own shard of the epoch's batches (``batches``);
3. the weight gradients are averaged over the processes (``distributed.average_gradients``) before
   the optimizer step, and so are the alpha gradients of an architecture step: weights and alphas
   stay identical on every process.

Why a manual all-reduce and not DDP: DDP expects one forward and one backward per step on a fixed
set of trainable parameters. The super-net changes path every step, freezes its weights for alpha
steps and (sandwich rule, ``warmup.py``) runs several paths before one optimizer step; DDP would
need ``find_unused_parameters=True``, ``no_sync()`` around all but the last path, and a second
wrapper for the alphas. One all-reduce of the gradients that exist, after all backward passes of
the step, is the same arithmetic and fits every case.

Without ``torchrun`` every function here is the single-process code path, unchanged.
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterator, TypeVar

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from segnas_lite.train import distributed
from segnas_lite.nas.supernet import SegSuperNet

T = TypeVar("T")


def from_rank0(compute: Callable[[], T], ctx: distributed.Context) -> T:
    """``compute()`` run on rank 0 only, its result on every rank (a latency measurement)."""
    if not ctx.distributed:
        return compute()
    return distributed.broadcast(compute() if ctx.is_main else None, ctx)


def same_path(net: SegSuperNet, draw: Callable[[], T], ctx: distributed.Context) -> T:
    """``draw()`` (which leaves ``net`` on a sampled path) on rank 0; every other rank gets its
    result and is put on the same path, "two" mode pairs included (``SegSuperNet.set_paths``)."""
    if not ctx.distributed:
        return draw()
    result, paths = distributed.broadcast((draw(), net.paths()) if ctx.is_main else None, ctx)
    net.set_paths(paths)
    return result


def batches(dataset: Dataset, *, batch_size: int, generator: torch.Generator,
            ctx: distributed.Context) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(images, masks)`` batches of ``dataset`` on ``ctx.device``, forever, in an order drawn from
    ``generator``. Under ``torchrun`` each rank reads its own shard of every pass (a
    ``DistributedSampler`` seeded from ``generator``, the same seed on every rank)."""
    sampler = None
    if ctx.distributed:
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                     shuffle=True, seed=seed, drop_last=True)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)
    else:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                            generator=generator)
    for rounds in itertools.count():
        if sampler is not None:
            sampler.set_epoch(rounds)  # a fresh shard order for every pass over the data
        for images, masks in loader:
            yield images.to(ctx.device), masks.to(ctx.device)

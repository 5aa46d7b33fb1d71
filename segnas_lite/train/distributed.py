"""Beyond one CPU process: the device to train on, and data parallelism under ``torchrun``.

We write no launcher of our own. PyTorch's ``torchrun`` starts N processes and tells each who it
is through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...);
:func:`init` reads them and joins the process group (gloo on the CPU, NCCL on CUDA)::

    torchrun --nproc-per-node 2 -m segnas_lite train --data ../shared/data/people --out runs/ddp

Distributed data parallel (DDP, Li et al., VLDB 2020) in four facts the engine relies on:

1. Every process holds a full copy of the model; DDP broadcasts rank 0's weights at the start.
2. Each process reads a different shard of every epoch (``DistributedSampler``), so N processes
   see N batches per step: the effective batch is ``N * batch_size``.
3. ``loss.backward()`` averages the gradients over the processes (an all-reduce) before the
   optimizer step, so after every step all copies hold the **same** weights.
4. Only rank 0 writes: checkpoint, metrics, progress bar. The others wait at a barrier.

Without ``torchrun`` (``WORLD_SIZE`` unset) everything here is a no-op and a run is exactly the
single-process run it always was.
"""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import nn

from segnas_lite.errors import SegnasError

DEVICES = ("auto", "cpu", "cuda")  # and "cuda:N"
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(SegnasError, ValueError):
    """A device or precision this machine cannot give (``--device cuda`` without a GPU, ...)."""


def resolve_device(spec: str = "auto") -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {spec}: PyTorch sees no CUDA GPU on this machine "
                              "(use --device cpu, or auto)")
        index = spec.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise DeviceError(f"--device {spec}: this machine has {torch.cuda.device_count()} "
                              "CUDA device(s), numbered from 0")
        return torch.device(spec)
    raise DeviceError(f"unknown device {spec!r}; choose auto, cpu, cuda or cuda:N")


def check_amp(amp: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--amp`` (None: full f32). fp16 needs CUDA (on the CPU it is slower
    than f32 and needs loss scaling); bf16 runs on CUDA and on any CPU, fast where the CPU has
    AVX-512 BF16 or AMX."""
    if amp in (None, "", "none", "off"):
        return None
    if amp not in AMP_DTYPES:
        raise DeviceError(f"--amp must be bf16 or fp16, got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise DeviceError("--amp fp16 needs a CUDA device; on the CPU use --amp bf16")
    return AMP_DTYPES[amp]


@dataclass(frozen=True)
class Context:
    """Who this process is: ``rank`` of ``world_size`` processes, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and draws progress bars."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: str = "auto") -> Context:
    """The process's :class:`Context`; under ``torchrun`` also joins the process group (once).

    With CUDA each process takes the GPU of its ``LOCAL_RANK`` (``cuda`` -> ``cuda:LOCAL_RANK``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device)
    if target.type == "cuda" and world > 1 and target.index is None:
        target = torch.device("cuda", local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if target.type == "cuda" else "gloo"
        if target.type == "cuda":
            torch.cuda.set_device(target)
        dist.init_process_group(backend=backend)
        # Leave the group before the interpreter tears down: gloo's threads still alive at exit
        # abort the process ("terminate called without an active exception", seen in CI).
        atexit.register(_leave)
    return Context(rank=rank, world_size=world, local_rank=local, device=target)


def _leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def current() -> Context:
    """The context of an already initialised process group (rank 0 of 1 outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return Context(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    return Context()


def wrap(model: nn.Module, ctx: Context, *, sync_bn: bool = False) -> nn.Module:
    """``model`` on its device, wrapped in DDP when there are several processes.

    ``sync_bn``: BatchNorm statistics over the whole global batch instead of each process's share
    (``nn.SyncBatchNorm``; worth it when a process holds only a few images per step). PyTorch runs
    it on CUDA only, so on the CPU it is refused with a ``DeviceError``."""
    if sync_bn and ctx.device.type != "cuda":
        raise DeviceError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm runs on GPUs only. On the "
                          "CPU, give each process more images per step (--batch-size) instead")
    model = model.to(ctx.device)
    if not ctx.distributed:
        return model  # one process: BatchNorm already sees the whole batch
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (what is saved, evaluated and exported)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def broadcast(obj: Any, ctx: Context, *, src: int = 0) -> Any:
    """``obj`` as rank ``src`` holds it, on every rank (any picklable value)."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather(obj: Any, ctx: Context) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_tensors(tensors: Iterable[torch.Tensor], ctx: Context, *, src: int = 0) -> None:
    """Overwrite ``tensors`` in place with rank ``src``'s values (e.g. a module's
    ``state_dict().values()``: its parameters and buffers; what DDP does when it wraps a model)."""
    if ctx.distributed:
        for tensor in tensors:
            dist.broadcast(tensor, src=src)


def average_gradients(params: Iterable[nn.Parameter], ctx: Context) -> None:
    """Replace each ``.grad`` of ``params`` by its mean over the processes: what DDP does inside
    ``backward()``, done by hand for a network whose graph changes from step to step.

    Parameters without a gradient (a path that did not run) are skipped, so every rank must have
    run the same path: then the same parameters have gradients on every rank, in the same order,
    and one all-reduce of their concatenation averages them all."""
    if not ctx.distributed:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])  # one message instead of one per tensor
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(value: float, ctx: Context) -> float:
    """The mean of ``value`` over all processes (each process's own value alone)."""
    if not ctx.distributed:
        return value
    total = torch.tensor([float(value)], dtype=torch.float64,
                         device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(total)
    return float(total.item()) / ctx.world_size

"""Parameter and FLOP counts of a model, in total and per top-level part.

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode` on one forward pass of a
single image (batch 1) in eval mode without gradients. Convention: **one multiply-add = 2 FLOPs**
(what FlopCounterMode reports), so ``gflops = flops / 1e9`` is about twice the "GMACs" figure many
papers quote. Only the heavy ops are counted (convolutions, matrix products, ...); element-wise ops,
BatchNorm, pooling and interpolation count 0, which is the usual convention.

Example (in a notebook)::

    s = summarize(build_model("fast_scnn", num_classes=19), input_size=(512, 1024))
    print(s.to_text())
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class SummaryRow:
    """One part of a model: its name, parameter count and FLOPs at the summary's input size."""

    name: str
    params: int
    flops: int


@dataclass(frozen=True)
class ModelSummary:
    """What :func:`summarize` measured. ``rows`` holds one :class:`SummaryRow` per part."""

    model: str
    input_size: tuple[int, int]
    total_params: int
    trainable_params: int
    flops: int
    rows: list[SummaryRow] = field(default_factory=list)

    @property
    def gflops(self) -> float:
        """FLOPs / 1e9 (multiply-add = 2 FLOPs)."""
        return self.flops / 1e9

    def as_dict(self) -> dict:
        """Plain dict (JSON-friendly); rows become a list of dicts."""
        out = asdict(self)
        out["input_size"] = list(self.input_size)
        out["gflops"] = self.gflops
        return out

    def to_text(self) -> str:
        """A plain-text table: one line per part, then the total."""
        height, width = self.input_size
        lines = [f"{self.model} at {height}x{width}",
                 f"{'part':<32} {'params':>12} {'GFLOPs':>10}"]
        for row in self.rows:
            lines.append(f"{row.name:<32} {row.params:>12,} {row.flops / 1e9:>10.3f}")
        lines.append(f"{'total':<32} {self.total_params:>12,} {self.gflops:>10.3f}")
        if self.trainable_params != self.total_params:
            lines.append(f"(trainable parameters: {self.trainable_params:,})")
        return "\n".join(lines)


def summarize(model: nn.Module, *, input_size: tuple[int, int] = (256, 256)) -> ModelSummary:
    """Count parameters and FLOPs of ``model`` for one (1, 3, H, W) input.

    The per-part rows are the model's top-level children (e.g. ``learning_to_downsample``,
    ``global_feature_extractor``, ... for Fast-SCNN; ``backbone`` and ``classifier`` for LR-ASPP).
    FLOPs spent outside every child (rare) appear in a final ``(other)`` row; a child that is a
    plain container (``nn.ModuleList``) gets the FLOPs of the modules in it. The model's
    train/eval mode is restored afterwards.
    """
    height, width = input_size
    first_param = next(model.parameters(), None)
    device = first_param.device if first_param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, height, width, device=device))
    finally:
        model.train(was_training)

    # FlopCounterMode names modules "<RootClass>.<child>.<grandchild>..."; keep the children.
    per_module = counter.get_flop_counts()
    root = type(model).__name__
    rows = []
    for name, child in model.named_children():
        flops = _module_flops(per_module, f"{root}.{name}", child)
        rows.append(SummaryRow(name, sum(p.numel() for p in child.parameters()), int(flops)))
    total_flops = int(counter.get_total_flops())
    other_flops = total_flops - sum(row.flops for row in rows)
    if other_flops:
        rows.append(SummaryRow("(other)", 0, other_flops))
    return ModelSummary(
        model=root,
        input_size=(height, width),
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        flops=total_flops,
        rows=rows,
    )


def _module_flops(per_module: dict, path: str, module: nn.Module) -> int:
    """FLOPs the counter booked under ``path``; a container whose ``forward`` is never called (an
    ``nn.ModuleList`` that the parent iterates, as the NAS chain's ``layers``) has no entry of its
    own, so its children's entries are added up instead."""
    if path in per_module:
        return int(sum(per_module[path].values()))
    return sum(_module_flops(per_module, f"{path}.{name}", child)
               for name, child in module.named_children())

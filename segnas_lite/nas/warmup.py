"""Training a super-net that ranks: which paths a warm-up step trains, and how.

ProxylessNAS's warm-up trains one uniformly drawn path per step. Three known fixes make the shared
weights a better stand-in for stand-alone training (see ../shared/DESIGN.md, "Judging a search"):

* **Strict fairness** (FairNAS, Chu et al., ICCV 2021): within each cycle of ``m`` steps every
  candidate of a layer is trained exactly once, so no op gets more updates by luck of the draw
  (:class:`FairCycle`).
* **The sandwich rule** (Yu and Huang, ICCV 2019, universally slimmable networks): every step
  trains the largest subnet, the smallest and ``n`` random ones, and sums their gradients before
  one optimizer step (:func:`sandwich_genotypes`, :func:`multi_path_step`). Here "largest" is the
  slowest subnet by the latency table and "smallest" the fastest.
* **In-place distillation** (BigNAS, Yu et al., ECCV 2020): in the same step, the largest subnet's
  soft prediction teaches the others instead of (or beside) the labels.

:class:`WarmupPaths` picks the paths of each step from ``SearchConfig`` (``warmup_sampling``,
``sandwich``); ``ProxylessSearch.weight_step`` trains them. All of it is written by hand here,
because it is what the course teaches.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from segnas_lite.nas.space import Genotype, SearchSpace
from segnas_lite.nas.supernet import SegSuperNet
from segnas_lite.train.distill import distillation_loss


class FairCycle:
    """Strict-fair paths: each cycle of ``m = max choices`` steps gives every layer a fresh random
    order of its candidates, and step ``k`` of the cycle takes the ``k``-th of every order.

    A layer with ``m`` candidates trains each exactly once per cycle. A layer with fewer (when
    spaces mix layer sizes) trains each at least once: its order is topped up with a second
    shuffled draw."""

    def __init__(self, space: SearchSpace, generator: torch.Generator) -> None:
        self.space = space
        self.generator = generator
        self.cycle_length = max(space.num_choices())
        self._orders: list[list[int]] = []
        self._position = self.cycle_length  # start a cycle on the first call

    def _new_cycle(self) -> None:
        self._orders = []
        for n in self.space.num_choices():
            order: list[int] = []
            while len(order) < self.cycle_length:
                order += torch.randperm(n, generator=self.generator).tolist()
            self._orders.append(order[:self.cycle_length])
        self._position = 0

    def next(self) -> Genotype:
        """The genotype of the next step."""
        if self._position >= self.cycle_length:
            self._new_cycle()
        ops = tuple(spec.ops[order[self._position]]
                    for spec, order in zip(self.space.layers, self._orders))
        self._position += 1
        return Genotype(self.space.name, ops)

    def state_dict(self) -> dict:
        """Where the current cycle stands (a resumed search continues it)."""
        return {"orders": [list(order) for order in self._orders], "position": self._position}

    def load_state_dict(self, state: dict) -> None:
        self._orders = [list(order) for order in state["orders"]]
        self._position = int(state["position"])


def sandwich_genotypes(space: SearchSpace, *, largest: Genotype, smallest: Genotype,
                       num_random: int, generator: torch.Generator) -> list[Genotype]:
    """``[largest, smallest, random_1, ..., random_n]`` for one sandwich step (largest first: with
    in-place distillation its output is the teacher of the rest)."""
    randoms = []
    for _ in range(num_random):
        ops = tuple(spec.ops[int(torch.randint(len(spec.ops), (1,), generator=generator))]
                    for spec in space.layers)
        randoms.append(Genotype(space.name, ops))
    return [largest, smallest, *randoms]


class WarmupPaths:
    """The paths one warm-up step trains, for ``sampling="strict_fair"`` or a sandwich.

    ``sandwich=0``: one path, the next of a :class:`FairCycle`. ``sandwich=n``: ``[largest,
    smallest, n more]`` (:func:`sandwich_genotypes`), the ``n`` drawn uniformly (``"fair"``) or
    from the cycle (``"strict_fair"``). The plain uniform and the budget-constrained single path
    are drawn by the search itself (``ProxylessSearch.sample``)."""

    def __init__(self, space: SearchSpace, *, sampling: str, sandwich: int, largest: Genotype,
                 smallest: Genotype, generator: torch.Generator) -> None:
        if sampling not in ("fair", "strict_fair") or (sampling == "fair" and sandwich < 1):
            raise ValueError(f"WarmupPaths draws strict-fair or sandwich paths, not "
                             f"sampling={sampling!r} with sandwich={sandwich}")
        self.space, self.sandwich, self.generator = space, sandwich, generator
        self.largest, self.smallest = largest, smallest
        self.cycle = FairCycle(space, generator) if sampling == "strict_fair" else None

    def next(self) -> list[Genotype]:
        """The genotypes of the next step, in training order (the teacher first)."""
        if self.cycle is None:
            return sandwich_genotypes(self.space, largest=self.largest, smallest=self.smallest,
                                      num_random=self.sandwich, generator=self.generator)
        fair = [self.cycle.next() for _ in range(max(self.sandwich, 1))]
        return [self.largest, self.smallest, *fair] if self.sandwich else fair

    def state_dict(self) -> dict:
        return self.cycle.state_dict() if self.cycle is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.cycle is not None:
            self.cycle.load_state_dict(state)


def multi_path_step(net: SegSuperNet, images: torch.Tensor, masks: torch.Tensor,
                    genotypes: Sequence[Genotype], *, ignore_index: int = 255,
                    inplace_distill: bool = False, temperature: float = 1.0) -> list[float]:
    """Forward and backward every genotype in turn on the same batch; the gradients add up in the
    weights' ``.grad`` (the caller zeroes them before and steps the optimizer after). Returns each
    path's loss.

    With ``inplace_distill`` the first genotype learns from the labels and every later one from the
    first one's soft prediction (detached: the teacher is not pulled towards its students).
    """
    net.set_mode("fixed")
    net.train()
    losses = []
    teacher = None
    for index, genotype in enumerate(genotypes):
        net.set_genotype(genotype)
        logits = net(images)
        if inplace_distill and index > 0:
            loss = distillation_loss(logits, teacher, temperature=temperature, target=masks,
                                     ignore_index=ignore_index)
        else:
            loss = F.cross_entropy(logits, masks, ignore_index=ignore_index)
        if inplace_distill and index == 0:
            teacher = logits.detach()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss of path {list(genotype.ops)} became "
                                     f"{loss.item()}; lower weight_lr")
        loss.backward()
        losses.append(float(loss.detach()))
    return losses

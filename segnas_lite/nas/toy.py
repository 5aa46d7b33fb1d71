"""ProxylessNAS and the budget knapsack on toys small enough to write by hand (notebooks 06, 07).

Notebook 06 writes the core of a search from scratch on 3 layers x 2 ops (sample a path from
p = softmax(alpha), reject it while it is over the budget, the Eq. 4 gradient through binary gates)
and checks it against the library on the same seed; notebook 07 writes the knapsack DP on 3 layers x
2 ops and checks it against brute force and ``derive_under_budget``. This module is the library side
of both checks, built from the pieces the real search uses:

* ``toy_search`` runs a ``MixedOp`` per layer (supernet.py: sampling from p with ``MixedOp.sample``,
  the binary gate and its Eq. 4 backward in ``gates.binary_gate``) around tiny candidate ops instead
  of conv blocks, and draws every path through ``constraint.sample_under_budget`` (the seed's hard
  constraint). It differs from ``ProxylessSearch.alpha_step`` in two simplifications only: plain
  gradient descent on alpha (the search uses Adam, betas (0, 0.999)) and no latency term in the
  loss (the hard constraint alone keeps latency in check), so that the hand-written version stays
  about 30 lines.
* ``ToySpace`` is a chain of choices with no network around it (it need not reach output stride 32),
  so ``derive.derive_under_budget`` and ``derive_argmax`` run on 3 layers x 2 ops unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from segnas_lite.nas.constraint import sample_under_budget
from segnas_lite.nas.gates import frozen
from segnas_lite.nas.space import Genotype, LayerSpec, SearchSpace
from segnas_lite.nas.supernet import ChainLayer, MixedOp

TOY_OPS = ("linear", "linear_tanh")  # the two candidates of every layer of ``toy_problem``


# ------------------------------------------------------------------- notebook 06: the search
@dataclass
class ToyProblem:
    """A chain of residual layers with two candidate ops each, and data made by one path.

    Layer l computes ``x + ops[l][i](x)`` with candidate i (``TOY_OPS[i]``: a linear map, or a
    linear map then tanh);
    ``latency_ms[l][i]``: its made-up cost; ``x`` (N, width): the inputs; ``target`` (N, width):
    what ``teacher_path`` computes from ``x``, the path a search should find when it fits
    ``budget_ms``.
    """

    ops: list[list[nn.Module]]
    latency_ms: list[list[float]]
    budget_ms: float
    x: torch.Tensor
    target: torch.Tensor
    teacher_path: tuple[int, ...]

    def path_latency(self, path) -> float:
        """``sum_l latency_ms[l][path[l]]`` (no fixed part in the toy)."""
        return sum(self.latency_ms[layer][i] for layer, i in enumerate(path))


def toy_problem(*, latency_ms=((1.0, 2.0), (1.0, 3.0), (1.0, 2.0)), budget_ms: float = 5.0,
                teacher_path=(1, 0, 1), width: int = 4, samples: int = 32, scale: float = 0.2,
                seed: int = 0) -> ToyProblem:
    """The toy of notebook 06: ``len(latency_ms)`` residual layers ``x + o(x)`` (as the
    super-net's ``ChainLayer``), each with the two ``TOY_OPS`` whose weights are seeded
    (``N(0, scale^2 / width)``; the global random state is left alone), ``samples`` random inputs,
    and the target the ``teacher_path`` makes of them. By default 3 of the 8 paths cost more than
    the 5 ms budget, and the teacher path (2 + 1 + 2 = 5 ms) just fits. Small ops keep the layers
    close to the identity, where Eq. 4's first-order estimate of swapping an op is good."""
    if len(teacher_path) != len(latency_ms) or any(len(row) != len(TOY_OPS) for row in latency_ms):
        raise ValueError(f"need one teacher op per layer and {len(TOY_OPS)} latencies per layer, "
                         f"got teacher_path={teacher_path} and latency_ms={latency_ms}")
    generator = torch.Generator().manual_seed(seed)

    def linear() -> nn.Linear:
        layer = nn.Linear(width, width)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(width, width, generator=generator) * scale
                               / math.sqrt(width))
            layer.bias.zero_()
        return layer

    with torch.random.fork_rng(devices=[]):  # nn.Linear's own initialisation draws globally
        ops = [[linear(), nn.Sequential(linear(), nn.Tanh())] for _ in latency_ms]
    x = torch.randn(samples, width, generator=generator)
    with torch.no_grad():
        target = x
        for layer, i in enumerate(teacher_path):
            target = target + ops[layer][i](target)  # a residual layer
    return ToyProblem(ops, [[float(v) for v in row] for row in latency_ms], float(budget_ms), x,
                      target, tuple(teacher_path))


@dataclass
class ToyTrace:
    """What ``toy_search`` did, step by step: every path drawn (the last of a step was accepted),
    alpha after the step (per layer, one value per op) and the step's loss."""

    tries: list[list[tuple[int, ...]]]
    alphas: list[list[list[float]]]
    losses: list[float]

    @property
    def paths(self) -> list[tuple[int, ...]]:
        """The accepted path of every step."""
        return [tries[-1] for tries in self.tries]


def toy_search(problem: ToyProblem, *, steps: int, lr: float, seed: int = 0,
               max_resample: int = 100) -> ToyTrace:
    """ProxylessNAS alpha steps on ``problem`` with the library's own pieces (module docstring).

    alpha starts at 0 (p uniform; the search starts at N(0, 1e-3), as good as uniform). Each step:
    draw one op per layer from p with a ``torch.Generator`` seeded with ``seed`` (layer by layer,
    as ``SegSuperNet.sample_genotype`` does) until the path fits the budget; run it in binary-gate
    mode (each ``MixedOp`` inside a residual ``ChainLayer``) with the op weights frozen; mean
    squared error against the target; backward (Eq. 4 for the gates); ``alpha -= lr * grad``."""
    layers = [MixedOp(TOY_OPS, candidates) for candidates in problem.ops]
    for layer in layers:
        layer.mode, layer.estimator = "single", "full_v2"
        with torch.no_grad():
            layer.alpha.zero_()
    chain = nn.Sequential(*(ChainLayer(layer, residual=True) for layer in layers))
    weights = [p for layer in layers for p in layer.candidates.parameters()]
    optimizer = torch.optim.SGD([layer.alpha for layer in layers], lr=lr)
    generator = torch.Generator().manual_seed(seed)

    def draw() -> Genotype:  # leaves every MixedOp on the drawn path
        return Genotype("toy", tuple(TOY_OPS[layer.sample(generator)] for layer in layers))

    def latency(genotype: Genotype) -> float:
        return problem.path_latency([TOY_OPS.index(name) for name in genotype.ops])

    fastest = sum(min(row) for row in problem.latency_ms)
    trace = ToyTrace([], [], [])
    for _ in range(steps):
        tries = sample_under_budget(draw, latency, problem.budget_ms, max_resample=max_resample,
                                    fastest_ms=fastest)
        with frozen(weights):
            loss = F.mse_loss(chain(problem.x), problem.target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        trace.tries.append([tuple(TOY_OPS.index(name) for name in g.ops) for g, _, _ in tries])
        trace.alphas.append([layer.alpha.detach().tolist() for layer in layers])
        trace.losses.append(float(loss.detach()))
    return trace


# ----------------------------------------------------------------- notebook 07: the knapsack
@dataclass(frozen=True)
class ToySpace(SearchSpace):
    """Only the choices of a search space: layers and their candidate op names, no macro around
    them.

    ``derive.py`` needs nothing more (``num_choices``, ``op_index``, the op names), so a toy of
    3 layers x 2 ops is derived exactly as a search is. A ``SearchSpace`` must reach output stride
    32 because a network is built from it; nothing is ever built from a ``ToySpace``, so that check
    is left out (its ``output_strides`` and ``taps`` mean nothing)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError("a toy space needs at least one layer")


def toy_space(*, num_layers: int = 3, ops=("mbv3_3x3", "sep_3x3"), name: str = "toy") -> ToySpace:
    """``num_layers`` layers with the same candidate ``ops`` (catalogue names, ``nas/ops.py``)."""
    return ToySpace(name, tuple(LayerSpec(16, 16, 1, tuple(ops)) for _ in range(num_layers)))

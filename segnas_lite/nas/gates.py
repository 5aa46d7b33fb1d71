"""Binary gates: the ProxylessNAS gradient estimator for alpha, and the latency loss.

Binary gates (Cai et al., "ProxylessNAS", ICLR 2019, Sec. 3.2)
------------------------------------------------------------
A layer's output is ``sum_j g_j o_j(x)`` with ``g`` one-hot, sampled from ``p = softmax(alpha)``, so
only the active op runs. Treating ``g`` as if it were ``p`` for the backward pass (Eq. 4) gives

    dL/dalpha_i = sum_j dL/dg_j * dp_j/dalpha_i = sum_j dL/dg_j * p_j * (delta_ij - p_i),
    dL/dg_j     = < dL/d(out), o_j(x) >           (inner product over N, C, H, W).

We get exactly this from autograd with one custom ``Function``: in forward it passes the active op's
output through unchanged and takes ``p`` as an extra input; in backward it returns the upstream
gradient untouched for the output (so the active op's weights and ``x`` get their usual gradients)
and ``dL/dg`` for ``p``. Autograd then applies the softmax Jacobian ``p_j (delta_ij - p_i)`` itself.

The two modes of the reference code (``mit-han-lab/proxylessnas``, ``search/modules/mix_op.py``):

* ``"full_v2"``: ``dL/dg_k`` for every candidate; the inactive ones are re-run on the saved input under
  ``no_grad`` inside backward, so no second graph is kept (memory of one path).
* ``"two"``: two candidates are sampled from ``p``; their gates see a 2-way softmax over their two
  alphas, so only those two alphas get a gradient. After the optimizer step both are shifted by
  ``log(sum exp(alpha_new) / sum exp(alpha_old))`` over the pair (``rescale_two_path_``), which keeps
  the softmax denominator, hence the probabilities of all other ops, unchanged.

The reference ``"two"`` mode runs the inactive op in forward (detached); here it is re-run in
backward instead: the same gradient, one output less to keep. Re-running an inactive candidate in
training mode updates its BatchNorm running statistics, as in the reference code.

Latency loss (Sec. 3.3, and the reference ``add_regularization_loss`` in ``search/nas_manager.py``)
--------------------------------------------------------------------------------------------------
``E[LAT] = fixed + sum_l sum_i p_{l,i} LAT(l, i)`` is differentiable in alpha. The reference's two
forms: ``"mul_log"``: ``a * CE * (log E[LAT] / log T) ** b`` (reference ``mul#log``; search defaults
a = 0.2, b = 0.3 from ``imagenet_arch_search.py``); ``"additive"``: ``CE + lam * (E[LAT] - T) / T``
(reference ``add#linear``, lam = 0.1). T is the latency budget.

Both keep pulling E[LAT] down even far below the budget, so a search under a hard constraint tends to
collapse onto the cheapest op. Three forms that do not, for comparison:
``"hinge"``: ``CE + lam * max(0, E[LAT] / T - 1)``, flat inside the budget (the hard constraint does
the rest); ``"target"``: ``CE + lam * |E[LAT] / T - 1|``, pulled towards the budget from both sides
(a target rather than a ceiling, as TF-NAS does); ``"none"``: CE alone, only the hard constraint.
"""
from __future__ import annotations

import contextlib

import math
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from segnas_lite.errors import SegnasError
from segnas_lite.nas.space import pad_rows

LATENCY_FORMS = ("mul_log", "additive", "hinge", "target", "none")

class LatencyTableError(SegnasError, ValueError):
    """The latency table does not match the probabilities (shape, or a missing entry)."""


class LatencyLossError(SegnasError, ValueError):
    """The latency loss cannot be formed with these values (e.g. log of a latency <= 1 ms)."""


class BinaryGateGrad(torch.autograd.Function):
    """Identity on the active output; in backward, ``dL/dg_k = <grad_out, o_k(x)>`` for ``gates``.

    Inputs: ``out`` (the active op's output, in the graph), ``gates`` (the probabilities that stand for
    the binary gates of the ``involved`` candidates, in the graph of alpha), ``x`` (the op input, saved
    to re-run candidates), ``run_candidate(k, x)``, ``involved`` (candidate indices, one per gate) and
    ``active`` (the index whose output is ``out``).
    """

    @staticmethod
    def forward(ctx, out, gates, x, run_candidate, involved, active):
        ctx.save_for_backward(out, x)
        ctx.run_candidate, ctx.involved, ctx.active = run_candidate, involved, active
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad_out):
        out, x = ctx.saved_tensors
        gate_grads = grad_out.new_zeros(len(ctx.involved))
        with torch.no_grad():
            for j, k in enumerate(ctx.involved):
                o_k = out if k == ctx.active else ctx.run_candidate(k, x)
                gate_grads[j] = (o_k * grad_out).sum()  # dL/dg_k, Eq. 4
        return grad_out, gate_grads, None, None, None, None


def binary_gate(out: torch.Tensor, gates: torch.Tensor, x: torch.Tensor,
                run_candidate: Callable[[int, torch.Tensor], torch.Tensor], *,
                involved: Sequence[int], active: int) -> torch.Tensor:
    """Attach the Eq. 4 estimator: returns ``out`` (same values) with ``gates`` in its backward."""
    return BinaryGateGrad.apply(out, gates, x, run_candidate, tuple(involved), active)


@torch.no_grad()
def rescale_two_path_(alpha: torch.Tensor, pair: Sequence[int], old_pair_alpha: torch.Tensor) -> None:
    """After an optimizer step in "two" mode, shift both sampled alphas by the same offset
    ``log(sum_pair exp(alpha_new) / sum_pair exp(alpha_old))`` so that ``sum_i exp(alpha_i)``, and
    thus every unsampled op's probability, is what it was before the step (in place)."""
    index = torch.as_tensor(list(pair), dtype=torch.long, device=alpha.device)
    offset = torch.logsumexp(alpha[index], 0) - torch.logsumexp(old_pair_alpha.to(alpha), 0)
    alpha[index] -= offset


def latency_rows_to_table(rows: Sequence[Sequence[float]]) -> torch.Tensor:
    """Pad per-layer latency lists (ms, layer-local op order) into an ``(L, K_max)`` float64 tensor
    with NaN where a layer has fewer ops; ``lat[l, i]`` is the i-th op of ``space.layers[l].ops``."""
    return torch.from_numpy(pad_rows([[float(v) for v in row] for row in rows]))


def expected_latency(probs: Sequence[torch.Tensor], table: torch.Tensor,
                     fixed: float) -> torch.Tensor:
    """``fixed + sum_l sum_i p_{l,i} * table[l, i]`` as a scalar tensor in the autograd graph.

    ``probs[l]`` has one entry per op of layer l; ``table`` is ``(L, K_max)`` in ms with NaN/inf
    beyond a layer's own ops (those entries are never read). A non-finite entry for an allowed op is
    an error.
    """
    table = torch.as_tensor(table)
    if table.dim() != 2 or table.shape[0] != len(probs):
        raise LatencyTableError(f"latency table of shape {tuple(table.shape)} does not fit "
                                f"{len(probs)} layers; expected (num_layers, max_ops)")
    terms = []
    for layer, p in enumerate(probs):
        if p.numel() > table.shape[1]:
            raise LatencyTableError(f"layer {layer} has {p.numel()} ops but the table only "
                                    f"{table.shape[1]} columns")
        lat = table[layer, :p.numel()].to(p)
        if not torch.isfinite(lat).all():
            raise LatencyTableError(f"layer {layer} has no finite latency for some allowed op: "
                                    f"{lat.tolist()}; re-measure the table")
        terms.append((p * lat).sum())
    return float(fixed) + torch.stack(terms).sum()


def latency_loss(ce: torch.Tensor, expected_lat: torch.Tensor, *, budget: float,
                 form: str = "mul_log", a: float = 0.2, b: float = 0.3,
                 lam: float = 0.1) -> torch.Tensor:
    """Combine the cross-entropy with the expected latency (ProxylessNAS Eq. 5 and reference code).

    ``"mul_log"``: ``a * CE * (log E[LAT] / log T) ** b``; needs T > 1 and E[LAT] > 1 (use ms).
    ``"additive"``: ``CE + lam * (E[LAT] - T) / T``.
    ``"hinge"``: ``CE + lam * max(0, E[LAT] / T - 1)`` (no pull inside the budget).
    ``"target"``: ``CE + lam * |E[LAT] / T - 1|`` (pulled towards the budget).
    ``"none"``: ``CE`` (the hard constraint alone decides latency).
    """
    if budget <= 0:
        raise LatencyLossError(f"the latency budget must be positive, got {budget}")
    if form == "mul_log":
        value = float(expected_lat.detach())
        if budget <= 1.0 or value <= 1.0:
            raise LatencyLossError(
                f"mul_log takes log(latency): budget ({budget}) and E[LAT] ({value:.4g}) must be "
                "> 1; express them in ms (or a smaller unit) or use form='additive'")
        return a * ce * (torch.log(expected_lat) / math.log(budget)) ** b
    if form == "additive":
        return ce + lam * (expected_lat - budget) / budget
    if form == "hinge":
        return ce + lam * torch.relu(expected_lat / budget - 1.0)
    if form == "target":
        return ce + lam * torch.abs(expected_lat / budget - 1.0)
    if form == "none":
        return ce + 0.0 * expected_lat  # keeps E[LAT] in the graph, contributes no gradient
    raise LatencyLossError(f"unknown form {form!r}; choose one of {LATENCY_FORMS}")


@contextlib.contextmanager
def frozen(params: Sequence[nn.Parameter]) -> Iterator[None]:
    """Temporarily ``requires_grad=False``: no gradient is even computed for these parameters."""
    old = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, old):
            p.requires_grad_(flag)

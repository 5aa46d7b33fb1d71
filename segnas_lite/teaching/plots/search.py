"""Figures of the search (lessons 06 and 07): op probabilities as a heatmap and as curves, whether
the search has decided, E[LAT] and the rejections of the hard constraint, the closed-loop
derivation."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from segnas_lite.teaching.plots.common import _label_layer_op_grid, _layer_op_grid


def alpha_heatmap(probs_matrix, op_names, *, title: str = "op probabilities p = softmax(alpha)",
                  genotype=None) -> Figure:
    """Per-layer op probabilities as a heatmap (layers down, ops across).

    ``probs_matrix`` is (layers, K) (NaN where a layer has fewer ops, as ``History.alpha_matrix``
    gives); ``op_names`` is one list of K names or one list per layer. ``genotype`` (a Genotype or a
    list of op names) is outlined: with argmax derivation it is each row's brightest cell.
    """
    columns, grid = _layer_op_grid(np.asarray(probs_matrix, dtype=float), op_names)
    layers = len(grid)
    fig = Figure(figsize=(1.0 * len(columns) + 2.5, 0.32 * layers + 1.6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="magma", vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(image, ax=ax, label="probability", shrink=0.8)
    _label_layer_op_grid(ax, columns, layers, genotype, colour="cyan")
    ax.set_title(title, fontsize=10)
    return fig


def alpha_curves(steps: Sequence[int], probs_over_steps, op_names: Sequence[str], *,
                 title: str = "op probabilities of one layer") -> Figure:
    """Probability of each op of one layer over the search steps (``probs_over_steps``: steps x K)."""
    probs = np.asarray(probs_over_steps, dtype=float)
    fig = Figure(figsize=(6, 3.2), layout="constrained")
    ax = fig.subplots()
    for k, name in enumerate(op_names):
        ax.plot(steps, probs[:, k], label=name)
    if len(op_names):
        ax.axhline(1.0 / len(op_names), color="grey", linestyle=":", linewidth=1, label="uniform")
    ax.set(xlabel="alpha step", ylabel="probability", ylim=(0, 1), title=title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(alpha=0.3)
    return fig


def latency_histogram(latencies: Sequence[float], accepted_flags: Sequence[bool], budget_ms: float,
                      *, bins: int = 30, title: str | None = None) -> Figure:
    """Sampled subnets' latencies: accepted (<= budget) and rejected in two colours, budget line.

    The title reports the rejection rate, the share of samples the hard constraint throws away.
    """
    lat = np.asarray(latencies, dtype=float)
    ok = np.asarray(accepted_flags, dtype=bool)
    fig = Figure(figsize=(6, 3.2), layout="constrained")
    ax = fig.subplots()
    if lat.size:
        edges = np.histogram_bin_edges(np.append(lat, budget_ms), bins=bins)
        ax.hist([lat[ok], lat[~ok]], bins=edges, stacked=True, color=["tab:green", "tab:red"],
                label=[f"accepted ({ok.sum()})", f"rejected ({(~ok).sum()})"])
    ax.axvline(budget_ms, color="black", linestyle="--", label=f"budget {budget_ms:.2f} ms")
    rate = float((~ok).mean()) if lat.size else 0.0
    ax.set(xlabel="predicted latency (ms)", ylabel="sampled subnets",
           title=title or f"rejection rate {rate:.1%} at a {budget_ms:.2f} ms budget")
    ax.legend(fontsize=8)
    return fig


def alpha_stability(entropy: Sequence[float], agreement: Sequence[float], *,
                    title: str = "has the search decided?") -> Figure:
    """Two curves over the alpha steps (step 0 = before the first): the mean normalized entropy of
    p (1 = uniform, 0 = one op per layer certain; ``History.entropy_curve``) and the share of
    layers whose most probable op is already the final one (``History.argmax_agreement_curve``).

    A search that learns drives the entropy down and the agreement up early; an entropy stuck near
    1 means p barely moved, and an agreement that only reaches 1 at the last step means the argmax
    was still changing when the search stopped."""
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax_h, ax_a = fig.subplots(1, 2)
    ax_h.plot(entropy, color="tab:purple")
    ax_h.set(xlabel="alpha step", ylabel="entropy / log K", ylim=(0, 1.05), title="entropy of p")
    ax_a.plot(agreement, color="tab:green")
    ax_a.set(xlabel="alpha step", ylabel="share of layers", ylim=(0, 1.05),
             title="argmax already final")
    for ax in (ax_h, ax_a):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def derive_attempts(attempts: Sequence[dict], budget_ms: float, *,
                    title: str = "derivation, closed on measurement") -> Figure:
    """The closed-loop derivation, one column per try (``SearchResult.latency["derive_attempts"]``).

    Each try derives the most probable architecture under a *target* (a short bar), predicts its
    latency (a hollow circle) and measures it end to end (a filled dot: green within the budget,
    red over it). The dashed line is the budget; a red dot makes the next try lower its target.
    """
    fig = Figure(figsize=(max(3.6, 1.2 * len(attempts) + 2.0), 3.4), layout="constrained")
    ax = fig.subplots()
    tries = np.arange(1, len(attempts) + 1)
    measured = np.array([a["measured_ms"] for a in attempts], dtype=float)
    ax.axhline(budget_ms, color="black", linestyle="--", linewidth=1,
               label=f"budget {budget_ms:.2f} ms")
    ax.scatter(tries, [a["target_ms"] for a in attempts], marker="_", s=500, color="grey",
               label="target of the try")
    ax.scatter(tries, [a["predicted_ms"] for a in attempts], facecolors="none",
               edgecolors="tab:blue", s=60, label="predicted")
    ax.scatter(tries, measured, s=60, zorder=3, label="measured",
               color=["tab:green" if m <= budget_ms else "tab:red" for m in measured])
    ax.set_xticks(tries, [f"try {t}" for t in tries])
    ax.set_xlim(0.4, len(attempts) + 0.6)
    ax.set(ylabel="latency (ms)", title=title)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, axis="y")
    return fig


def search_curves(expected_latency_ms: Sequence[float], rejection_rates: Sequence[float], *,
                  budget_ms: float | None = None) -> Figure:
    """E[LAT] and the rejection rate per alpha step: is the search pulled under the budget?"""
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax_lat, ax_rej = fig.subplots(1, 2)
    ax_lat.plot(expected_latency_ms, color="tab:purple")
    if budget_ms is not None:
        ax_lat.axhline(budget_ms, color="black", linestyle="--", label="budget")
        ax_lat.legend(fontsize=8)
    ax_lat.set(xlabel="alpha step", ylabel="E[LAT] (ms)", title="expected latency")
    ax_rej.plot(rejection_rates, color="tab:red")
    ax_rej.set(xlabel="alpha step", ylabel="rejected share", ylim=(0, 1), title="rejection rate")
    for ax in (ax_lat, ax_rej):
        ax.grid(alpha=0.3)
    return fig


def evolution_curves(generations: Sequence[dict], *, references: dict[str, float] | None = None,
                     ylabel: str = "super-net mIoU (held-out train)",
                     title: str = "evolution on the trained super-net") -> Figure:
    """Fitness per generation of an evolutionary search (``StrategyResult.generations``: per
    generation ``best``, ``mean`` and the ``population`` as ``[ops, fitness, ms]``): every member a
    grey dot, the best and the mean as lines. ``references``: label -> fitness, each a dashed
    horizontal line (e.g. the best of a random search with as many evaluations, the gradient
    search's choice scored the same way)."""
    fig = Figure(figsize=(6, 3.4), layout="constrained")
    ax = fig.subplots()
    numbers = [g["generation"] for g in generations]
    for g in generations:
        scores = [member[1] for member in g["population"]]
        ax.scatter([g["generation"]] * len(scores), scores, s=12, color="grey", alpha=0.5)
    ax.plot(numbers, [g["best"] for g in generations], marker="o", color="tab:green", label="best")
    ax.plot(numbers, [g["mean"] for g in generations], marker=".", color="tab:blue", label="mean")
    for i, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, color=f"C{(i + 3) % 10}", linestyle="--", linewidth=1, label=label)
    ax.set_xticks(numbers)
    ax.set(xlabel="generation", ylabel=ylabel, title=title)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return fig

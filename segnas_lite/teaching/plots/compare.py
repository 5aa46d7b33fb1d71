"""Comparing networks (lesson 07, ``benchmarks/search.py``): accuracy against latency, with the
Pareto front, and the same per latency budget."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure


def _pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower latency AND higher score), by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto(rows: Sequence[dict], *, metric: str = "miou", latency_key: str = "latency_ms",
           spread_key: str | None = None, title: str | None = None) -> Figure:
    """Accuracy versus latency, one labelled point per model (``rows``: dicts with ``name``, the
    metric and the latency); the Pareto front (models nothing else beats on both axes) is joined.

    ``spread_key``: a row's ``(low, high)`` of the metric over repeated runs (e.g. training seeds),
    drawn as a vertical bar around the point; a row without it (or with ``None``) is one run. Two
    models whose bars overlap are not separated by this comparison; the front is still drawn
    through the points (the means), so read it together with the bars."""
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    points = [(float(r[latency_key]), float(r[metric])) for r in rows]
    for i, (row, (x, y)) in enumerate(zip(rows, points)):
        ax.scatter(x, y, s=45, color=f"C{i % 10}", zorder=3)
        spread = row.get(spread_key) if spread_key else None
        if spread is not None:
            low, high = float(spread[0]), float(spread[1])
            ax.errorbar(x, y, yerr=[[max(y - low, 0.0)], [max(high - y, 0.0)]], color=f"C{i % 10}",
                        capsize=3, linewidth=1, zorder=2)
        ax.annotate(row["name"], (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    front = _pareto_front(points)
    if len(front) > 1:
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color="grey",
                linestyle="--", linewidth=1, label="Pareto front", zorder=2)
        ax.legend(fontsize=8)
    if spread_key and any(row.get(spread_key) is not None for row in rows):
        ax.errorbar([], [], yerr=[], color="grey", capsize=3, linewidth=1,
                    label="range over training seeds")
        ax.legend(fontsize=8)
    ax.set(xlabel="latency (ms)", ylabel=metric, title=title or f"{metric} vs latency")
    ax.grid(alpha=0.3)
    return fig


BUDGET_PARETO_MARKERS = {"searched": "*", "random": "o", "mbv3": "s", "mbv3_scaled": "D",
                         "uniform": "^", "reference": "P"}
"""Marker per kind of network in ``budget_pareto`` (any other kind: a small circle)."""


def budget_pareto(rows: Sequence[dict], budgets: dict[str, float], *, metric: str = "miou",
                  latency_key: str = "latency_ms", title: str | None = None) -> Figure:
    """Accuracy versus measured latency at several latency budgets (``benchmarks/search.py``, the
    seed's Table 2 question asked per budget).

    ``rows``: dicts with ``kind`` (its marker: ``BUDGET_PARETO_MARKERS``), ``label``, ``budget`` (a
    key of ``budgets``, drawn in that budget's colour; ``None`` for a network shared by every
    budget, drawn in black), the ``metric`` and the latency. ``budgets``: name -> ms, each drawn as
    a dashed vertical line in its colour. Rows without a metric or latency are left out; random
    subnets are not labelled (there are many).
    """
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    colours = {name: f"C{i % 10}" for i, name in enumerate(budgets)}
    for name, ms in budgets.items():
        ax.axvline(ms, color=colours[name], linestyle="--", linewidth=1,
                   label=f"budget {name}: {ms:.2f} ms")
    kinds = []
    for row in rows:
        x, y = row.get(latency_key), row.get(metric)
        if x is None or y is None:
            continue
        kind = row.get("kind", "")
        kinds += [kind] if kind not in kinds else []
        budget = row.get("budget")
        colour = "black" if budget is None else colours.get(budget, "grey")
        star = kind == "searched"
        ax.scatter(float(x), float(y), marker=BUDGET_PARETO_MARKERS.get(kind, "."), s=140 if star
                   else 40, color=colour, alpha=0.6 if kind == "random" else 0.9, zorder=3,
                   edgecolors="white", linewidths=0.5)
        if kind != "random":
            ax.annotate(str(row.get("label", "")), (float(x), float(y)), fontsize=7,
                        xytext=(4, 3), textcoords="offset points", color=colour)
    for kind in kinds:  # marker legend, in grey
        ax.scatter([], [], marker=BUDGET_PARETO_MARKERS.get(kind, "."), color="grey", label=kind)
    if any(row.get("budget") is None for row in rows):
        ax.scatter([], [], marker="o", color="black", label="black: any budget")
    ax.legend(fontsize=7, loc="best")
    ax.set(xlabel="measured latency (ms)", ylabel=metric,
           title=title or f"{metric} vs latency per budget")
    ax.grid(alpha=0.3)
    return fig

"""Does the search beat random? (lesson 07, ``benchmarks/search.py``): each net's mIoU over its
training seeds against its latency, per budget, beside the super-net's rank correlation.

The fair comparison of ../shared/DESIGN.md ("Judging a search"): at each latency budget the nets of
every search strategy, random subnets drawn near the budget (the same latency spent) and the
width-scaled MobileNetV3 baseline, each retrained with several seeds. A net is a point at its mean
mIoU with a bar of plus or minus one standard deviation over the seeds: two nets whose bars overlap
are not told apart by one training. The dotted line across each budget's window is the random
subnets' mean, the bar a strategy must clear. ``study_figure`` puts the super-net's rank scatter
(``plots.rank.rank_scatter``) beside it: a super-net that ranks subnets badly cannot make a search
beat random (Yu et al., ICLR 2020).
"""
from __future__ import annotations

import statistics
from typing import Sequence

from matplotlib.figure import Figure

from segnas_lite.teaching.plots.rank import rank_scatter

STUDY_MARKERS = {"gradient": "*", "evolution": "P", "random": "X", "random subnet": "o",
                 "mbv3_scaled": "D"}
"""Marker per net: a searched net by its strategy, then the random subnets and the baseline."""


def _marker_name(row: dict) -> str:
    if row.get("kind") == "searched":
        return row.get("strategy", "gradient")
    return "random subnet" if row.get("kind") == "random" else row.get("kind", "")


def study_pareto(rows: Sequence[dict], budgets: dict[str, float], *, metric: str = "miou",
                 spread_key: str = "miou_std", latency_key: str = "latency_ms",
                 window: tuple[float, float] | None = (0.85, 1.0), figure=None,
                 title: str | None = None) -> Figure:
    """Mean metric (y, with a bar of +- ``spread_key``) against latency (x), one colour per budget.

    ``rows``: dicts with ``budget`` (a key of ``budgets``), ``kind`` ("searched", "random",
    "mbv3_scaled"), ``strategy`` for a searched net, ``label``, the metric, its spread and the
    latency; rows without a metric or latency are left out. ``budgets``: name -> ms, each a dashed
    line; ``window``: the part of each budget the random subnets were drawn from (shaded, with
    the random subnets' mean dotted across it). Draws into ``figure`` (a ``Figure`` or
    ``SubFigure``) when given."""
    fig = figure if figure is not None else Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.subplots()
    colours = {name: f"C{i % 10}" for i, name in enumerate(budgets)}
    for name, ms in budgets.items():
        ax.axvline(ms, color=colours[name], linestyle="--", linewidth=1,
                   label=f"budget {name}: {ms:.2f} ms")
        if window is not None:
            ax.axvspan(window[0] * ms, window[1] * ms, color=colours[name], alpha=0.07)
            means = [r[metric] for r in rows if r.get("budget") == name
                     and r.get("kind") == "random" and r.get(metric) is not None]
            if means:
                ax.hlines(statistics.fmean(means), window[0] * ms, window[1] * ms,
                          color=colours[name], linestyle=":", linewidth=1.5)
    kinds = []
    for row in rows:
        x, y = row.get(latency_key), row.get(metric)
        if x is None or y is None:
            continue
        kind = _marker_name(row)
        kinds += [kind] if kind not in kinds else []
        colour = colours.get(row.get("budget"), "grey")
        spread = row.get(spread_key)
        ax.errorbar(float(x), float(y), yerr=None if spread is None else float(spread),
                    fmt=STUDY_MARKERS.get(kind, "."), color=colour, capsize=2, linewidth=0.8,
                    markersize=11 if kind == "gradient" else 6, zorder=3,
                    alpha=0.6 if kind == "random subnet" else 0.95)
        if row.get("kind") != "random":
            ax.annotate(str(row.get("label", "")), (float(x), float(y)), fontsize=6,
                        xytext=(4, 3), textcoords="offset points", color=colour)
    for kind in kinds:  # marker legend, in grey
        ax.errorbar([], [], fmt=STUDY_MARKERS.get(kind, "."), color="grey",
                    label="searched: " + kind if kind in ("gradient", "evolution", "random")
                    else kind)
    if window is not None and budgets:
        ax.hlines([], 0, 1, color="grey", linestyle=":", label="random subnets' mean")
    ax.legend(fontsize=7, loc="best")
    ax.set(xlabel="latency (ms)", ylabel=f"{metric} (mean +- std over training seeds)",
           title=title or f"{metric} vs latency per budget")
    ax.grid(alpha=0.3)
    return fig


def study_figure(rows: Sequence[dict], budgets: dict[str, float], rank_panel: dict | None = None,
                 *, latency_key: str = "latency_ms",
                 window: tuple[float, float] | None = (0.85, 1.0),
                 title: str | None = None) -> Figure:
    """``study_pareto`` beside one ``rank_scatter`` panel (``rank_panel``: the super-net the
    searches used, as ``benchmarks/rank_report.figure_data`` makes it); the Pareto alone when
    ``rank_panel`` is None (``benchmarks/results/search_pareto.png``). ``latency_key`` and
    ``window`` as for ``study_pareto``."""
    if rank_panel is None:
        return study_pareto(rows, budgets, latency_key=latency_key, window=window, title=title)
    fig = Figure(figsize=(12.0, 4.8), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.6, 1.0])
    study_pareto(rows, budgets, latency_key=latency_key, window=window, figure=left,
                 title="the searched nets against random subnets")
    rank_scatter([rank_panel], figure=right)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig

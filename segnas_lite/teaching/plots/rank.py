"""Does the super-net rank? (lesson 07, ``benchmarks/rank.py``): each subnet's super-net estimate
against its stand-alone mIoU, and the Kendall tau that each score reaches, with its interval.

A search trusts the super-net's ranking of subnets (Yu et al., ICLR 2020, "Evaluating the search
phase of neural architecture search"); these two figures show how far that trust is earned. The
data come from ``nas.rank`` (``rank_agreement``) and the benchmark's recorded pieces; every function
takes plain dicts and draws into a new ``Figure``, or into ``figure`` (a ``Figure`` or a
``SubFigure``) when given, so ``rank_figure`` can put both into one picture.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

TAU_COLOURS = {"supernet": "C0", "recalibrated": "C1", "proxy": "C7", "seeds": "C2",
               "ceiling": "C3"}
"""Bar colour per kind of score in ``rank_taus`` (any other kind: grey)."""


def rank_scatter(panels: Sequence[dict], *, figure=None,
                 ylabel: str = "stand-alone mIoU (mean of seeds)") -> Figure:
    """One panel per super-net: its estimate of each subnet (x) against the subnet's stand-alone
    mIoU (y), the spread over training seeds as a vertical error bar.

    ``panels``: dicts with ``title`` and ``series``, a list of dicts with ``label``, ``x``
    (estimates), ``y`` (stand-alone means), ``y_low`` and ``y_high`` (the lowest and highest seed)
    and ``filled`` (False: hollow markers, e.g. the estimates without BN recalibration). Points
    with a missing value (``None``) are left out. A perfect ranker puts the points on a rising
    curve, whatever its shape: Kendall's tau counts only the order.
    """
    fig = figure if figure is not None else Figure(figsize=(3.2 * max(len(panels), 1), 3.4),
                                                   layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(len(panels), 1), sharey=True, squeeze=False)[0])
    for ax, panel in zip(axes, panels):
        for i, series in enumerate(panel["series"]):
            keep = [j for j, (x, y) in enumerate(zip(series["x"], series["y"]))
                    if x is not None and y is not None]
            x = np.array([series["x"][j] for j in keep], dtype=float)
            y = np.array([series["y"][j] for j in keep], dtype=float)
            low = np.array([series["y_low"][j] for j in keep], dtype=float)
            high = np.array([series["y_high"][j] for j in keep], dtype=float)
            colour = f"C{i % 10}"
            spread = np.clip(np.vstack([y - low, high - y]), 0.0, None)  # (2, points)
            ax.errorbar(x, y, yerr=spread if len(keep) else None,
                        fmt="o", color=colour, markersize=5, capsize=2, linewidth=0.8,
                        markerfacecolor=colour if series.get("filled", True) else "white",
                        label=series["label"])
        ax.set_title(panel["title"], fontsize=9)
        ax.set_xlabel("super-net estimate (mIoU)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel(ylabel, fontsize=8)
    if panels and panels[0]["series"]:
        axes[0].legend(fontsize=7, loc="best")
    return fig


def rank_taus(groups: Sequence[dict], *, figure=None) -> Figure:
    """Kendall's tau of each score against the stand-alone mIoU, one panel per group (a budget),
    horizontal bars with the 95% bootstrap interval as an error bar.

    ``groups``: dicts with ``title`` and ``bars``, a list of dicts with ``label``, ``kendall``,
    ``low``, ``high`` (``None``: no interval) and ``kind`` (its colour: ``TAU_COLOURS``;
    "supernet", "recalibrated", "proxy" for #params, FLOPs or latency alone, "seeds" for one
    training seed against the other, "ceiling" for what a perfect score would reach against the
    mean of the seeds, ``nas.rank.noise_ceiling``). A bar without a tau (too few subnets yet) is
    drawn as an empty row.
    """
    fig = figure if figure is not None else Figure(figsize=(4.2 * max(len(groups), 1), 4.2),
                                                   layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(len(groups), 1), sharey=True, squeeze=False)[0])
    for ax, group in zip(axes, groups):
        bars = group["bars"]
        rows = np.arange(len(bars))[::-1]  # the first bar on top
        values = [b["kendall"] if b["kendall"] is not None else 0.0 for b in bars]
        colours = [TAU_COLOURS.get(b.get("kind"), "grey") for b in bars]
        ax.barh(rows, values, color=colours, alpha=0.85)
        for row, bar in zip(rows, bars):  # the interval as drawn: a percentile interval need
            if bar.get("low") is not None and bar["kendall"] is not None:  # not hold the tau
                ax.plot([bar["low"], bar["high"]], [row, row], color="black", linewidth=0.8,
                        marker="|", markersize=6)
        ax.set_yticks(rows, [b["label"] for b in bars], fontsize=7)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlim(-1.0, 1.0)
        ax.set_title(group["title"], fontsize=9)
        ax.set_xlabel("Kendall's tau vs stand-alone mIoU", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7)
    return fig


def rank_figure(panels: Sequence[dict], groups: Sequence[dict], *,
                title: str | None = None) -> Figure:
    """``rank_scatter`` above ``rank_taus`` in one figure (``benchmarks/results/rank.png``)."""
    width = max(3.2 * len(panels), 4.2 * len(groups), 6.0)
    fig = Figure(figsize=(width, 8.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.25])
    rank_scatter(panels, figure=top)
    rank_taus(groups, figure=bottom)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def rank_report_data(report: dict) -> tuple[list[dict], list[dict]]:
    """(scatter panels, tau bar groups) for ``rank_figure`` from a rank report (the JSON that
    ``benchmarks/rank.py`` writes, ``benchmarks/results/rank.json``): one panel per super-net over
    all subnets, its estimates with shared BN (hollow) and recalibrated (filled); one group of
    tau bars per budget, and one over all subnets."""
    rows = report["subnets"]
    taus = {(r["group"], r["score"]): r["kendall"] for r in report["agreements"]}
    panels = []
    for name in rows[0]["estimates"] if rows else []:
        series = []
        for which, label, filled in (("plain", "shared BN", False), ("recal", "+BN", True)):
            x = [(r["estimates"][name] or {}).get(which) for r in rows]
            series.append({"label": label, "x": x, "y": [r["miou"] for r in rows],
                           "y_low": [r["miou_low"] for r in rows],
                           "y_high": [r["miou_high"] for r in rows], "filled": filled})

        def tau(score):
            value = taus.get(("all", score))
            return "n/a" if value is None else f"{value:+.2f}"

        panels.append({"title": f"{name}: tau {tau(name)}, +BN {tau(name + ' +BN')}",
                       "series": series})
    groups = [{"title": f"budget {g}" if g != "all" else "all subnets",
               "bars": [{"label": r["score"], "kendall": r["kendall"], "low": r["kendall_low"],
                         "high": r["kendall_high"], "kind": r["kind"]}
                        for r in report["agreements"] if r["group"] == g]}
              for g in report["groups"]]
    return panels, groups

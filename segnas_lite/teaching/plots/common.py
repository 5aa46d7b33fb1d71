"""What several plot modules share: saving a figure, reading a row, and the (layer, op) grid that
both the alpha heatmap (``plots.search``) and the latency heatmap (``plots.latency``) draw."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from segnas_lite.runio import atomic_open


def save_figure(figure: Figure, path) -> None:
    """Write ``figure`` as a PNG atomically (a reader never sees half a file)."""
    with atomic_open(path, "wb") as fh:
        figure.savefig(fh, format="png", dpi=120)


def _row_value(row, key: str):
    """``row[key]`` for a dict, ``row.key`` for a dataclass (a summary row, a smoothing row)."""
    return row[key] if isinstance(row, dict) else getattr(row, key)


# --------------------------------------------------------------------------- (layer, op) grids
def op_columns(op_names, num_layers: int) -> tuple[list[str], list[list[str]]]:
    """Per-layer op names from either one shared list or one list per layer; plus their union in
    order of first appearance (the heatmap's columns): ``(columns, per_layer)``."""
    if len(op_names) and isinstance(op_names[0], str):
        per_layer = [list(op_names)] * num_layers
    else:
        per_layer = [list(names) for names in op_names]
    columns: list[str] = []
    for names in per_layer:
        columns += [n for n in names if n not in columns]
    return columns, per_layer


def _layer_op_grid(values, op_names) -> tuple[list[str], np.ndarray]:
    """Per-layer values (ragged lists, or a (layers, K) matrix padded with NaN) laid out on the
    union of op names: ``(columns, grid)`` with grid (layers, len(columns)), NaN where a layer
    lacks that op. Each layer's values are matched to its own op names by position."""
    layers = len(values)
    columns, per_layer = op_columns(op_names, layers)
    grid = np.full((layers, len(columns)), np.nan)
    for l, (row, names) in enumerate(zip(values, per_layer)):
        for value, name in zip(row, names):
            grid[l, columns.index(name)] = value
    return columns, grid


def _genotype_ops(genotype) -> list[str] | None:
    if genotype is None:
        return None
    return list(getattr(genotype, "ops", genotype))


def _label_layer_op_grid(ax, columns: list[str], layers: int, genotype, *, colour: str) -> None:
    """Op names across, layer numbers down, and an outline around the genotype's op in each layer."""
    ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(layers), [f"layer {l}" for l in range(layers)], fontsize=7)
    chosen = _genotype_ops(genotype)
    for l, name in enumerate((chosen or [])[:layers]):
        if name in columns:
            ax.add_patch(Rectangle((columns.index(name) - 0.5, l - 0.5), 1, 1, fill=False,
                                   edgecolor=colour, linewidth=1.8))

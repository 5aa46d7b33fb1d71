"""The drawing vocabulary of the architecture diagrams (``diagrams_models``, ``diagrams_search``):
boxes, arrows, operator nodes, shape labels, and a shape tracer that reads tensor shapes off a real
forward pass, so that a diagram says what the code does.

Coordinates are inches on a blank canvas (``canvas``): a box placed at ``x = 2`` is two inches from
the left edge whatever the figure size, which keeps the layouts readable as plain numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from torch import nn

from segnas_lite.errors import SegnasError


class DiagramError(SegnasError, ValueError):
    """A diagram was asked for something it cannot show (an unknown diagram, a layer or a latency
    row that its space does not have)."""


COLOURS = {
    "input": "#eeeeee",    # images, logits, plain tensors
    "detail": "#cfe2f3",   # high resolution: spatial detail
    "context": "#fce5cd",  # low resolution: context
    "fusion": "#d9ead3",   # where branches meet
    "head": "#ead1dc",     # classifiers and decoders
    "search": "#fff2cc",   # what the search chooses
    "idle": "#f7f7f7",     # a candidate that does not run
}
EDGE = "#444444"
SHAPE_COLOUR = "#1f4e79"
LINE_STEP = 0.19  # inches between two detail lines of a box (7.5 pt text)


@dataclass(frozen=True)
class Box:
    """A drawn box: lower-left corner ``(x, y)``, width ``w`` and height ``h`` in inches."""

    x: float
    y: float
    w: float
    h: float

    @property
    def left(self) -> tuple[float, float]:
        return self.x, self.y + self.h / 2

    @property
    def right(self) -> tuple[float, float]:
        return self.x + self.w, self.y + self.h / 2

    @property
    def top(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h

    @property
    def bottom(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y

    def line_y(self, index: int) -> float:
        """The height of detail line ``index`` (as ``box`` writes it), to attach an arrow there."""
        return self.y + self.h - 0.37 - index * LINE_STEP


def lines_height(count: int, *, shape: bool = True) -> float:
    """The height a ``box`` needs for a title, ``count`` detail lines and (``shape``) a shape."""
    return 0.36 + count * LINE_STEP + (0.3 if shape else 0.05)


def canvas(width: float, height: float, *, title: str) -> tuple[Figure, Axes]:
    """A ``width x height`` inch figure with one axes-free drawing area and a title at the top."""
    figure = Figure(figsize=(width, height))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    ax.text(0.2, height - 0.12, title, fontsize=11, fontweight="bold", va="top")
    return figure, ax


def box(ax: Axes, x: float, y: float, w: float, h: float, title: str,
        lines: Sequence[str] = (), *, shape: str | None = None, colour: str = COLOURS["input"],
        dashed: bool = False, bold_edge: bool = False, faint: bool = False) -> Box:
    """A rounded box: a bold ``title``, the ``lines`` below it (key operations) and, at the bottom,
    the output ``shape`` in blue italics (e.g. ``"64 x H/8"``)."""
    edge = "#2e7d32" if bold_edge else EDGE
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.08",
                                facecolor=colour, edgecolor=edge, linewidth=2.2 if bold_edge else 1,
                                linestyle="--" if dashed else "-"))
    text_colour = "#999999" if faint else "black"
    ax.text(x + w / 2, y + h - 0.08, title, ha="center", va="top", fontsize=8.5,
            fontweight="bold", color=text_colour)
    for index, line in enumerate(lines):
        ax.text(x + w / 2, y + h - 0.32 - index * LINE_STEP, line, ha="center", va="top",
                fontsize=7.5, color=text_colour)
    if shape:
        ax.text(x + w / 2, y + 0.07, shape, ha="center", va="bottom", fontsize=8,
                fontstyle="italic", color=SHAPE_COLOUR)
    return Box(x, y, w, h)


def arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], *,
          label: str | None = None, colour: str = "#333333", dashed: bool = False,
          label_offset: tuple[float, float] = (0.0, 0.12), width: float = 1.2) -> None:
    """A straight arrow from ``start`` to ``end``, with an optional label near its middle."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, color=colour,
                                 linewidth=width, linestyle="--" if dashed else "-",
                                 shrinkA=0, shrinkB=0))
    if label:
        _segment_label(ax, start, end, label, label_offset)


def path_arrow(ax: Axes, points: Sequence[tuple[float, float]], *, label: str | None = None,
               label_at: int = 0, colour: str = "#333333", dashed: bool = False,
               label_offset: tuple[float, float] = (0.0, 0.12)) -> None:
    """A right-angled path through ``points`` whose last segment is an arrow; the label sits on
    segment ``label_at``."""
    style = "--" if dashed else "-"
    for a, b in zip(points[:-2], points[1:-1]):
        ax.plot([a[0], b[0]], [a[1], b[1]], color=colour, linewidth=1.2, linestyle=style,
                solid_capstyle="butt")
    arrow(ax, points[-2], points[-1], colour=colour, dashed=dashed)
    if label:
        _segment_label(ax, points[label_at], points[label_at + 1], label, label_offset)


def _segment_label(ax: Axes, start: tuple[float, float], end: tuple[float, float], label: str,
                   offset: tuple[float, float]) -> None:
    """Blue text on a white patch, ``offset`` inches from the middle of a segment."""
    ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], label,
            ha="center", va="center", fontsize=7.5, color=SHAPE_COLOUR,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})


def node(ax: Axes, x: float, y: float, symbol: str, *, radius: float = 0.16) -> Box:
    """A small circle at ``(x, y)`` with an operator (``"+"``, ``"×"`` or ``"Σ"``)."""
    ax.add_patch(Circle((x, y), radius, facecolor="white", edgecolor=EDGE, linewidth=1.1))
    ax.text(x, y, symbol, ha="center", va="center", fontsize=10, fontweight="bold")
    return Box(x - radius, y - radius, 2 * radius, 2 * radius)


def note(ax: Axes, x: float, y: float, text: str, *, size: float = 7.5, **kwargs) -> None:
    """Left-aligned grey text (captions, legends)."""
    ax.text(x, y, text, ha="left", va="top", fontsize=size, color="#555555", **kwargs)


def shape_text(channels: int, stride: int) -> str:
    """``"64 x H/8"``: channels x resolution as a fraction of the input side (stride 1: ``"H"``)."""
    return f"{channels} x H" if stride == 1 else f"{channels} x H/{stride}"


SHAPE_LEGEND = "C x H/s: C channels at 1/s of the input's height (and width)"


def trace_shapes(model: nn.Module, modules: Mapping[str, nn.Module], *,
                 image_size: tuple[int, int] = (256, 256)) -> dict[str, tuple[int, int]]:
    """``{name: (channels, stride)}`` of each module's output, read off one forward pass of
    ``model`` on a zero image of ``image_size`` (eval mode, no gradients; the mode is restored).

    A module that returns a tuple (``MobileNetV3Features``: ``(low, high)``) reports its last
    element. The stride is ``input height / output height`` rounded, so a 1 x 1 map (a global pool)
    reports the input height.
    """
    height = image_size[0]
    shapes: dict[str, tuple[int, int]] = {}

    def record(name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            tensor = output[-1] if isinstance(output, (tuple, list)) else output
            shapes[name] = (int(tensor.shape[1]), max(1, round(height / tensor.shape[-2])))
        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in modules.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, *image_size))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return shapes


def first_conv(module: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` inside ``module`` (or the module itself)."""
    return next(m for m in module.modules() if isinstance(m, nn.Conv2d))


def conv_text(module: nn.Module) -> str:
    """``"conv 3x3 s2 -> 32"``, ``"dw 3x3 dil 4 -> 128"`` or ``"1x1 conv -> 128"`` for a conv
    block (its first conv, and the block's ``out_channels`` when it has one)."""
    conv = first_conv(module)
    k, stride, dilation = conv.kernel_size[0], conv.stride[0], conv.dilation[0]
    out = getattr(module, "out_channels", conv.out_channels)
    if conv.groups > 1 and conv.groups == conv.in_channels:
        text = f"dw {k}x{k}"
    else:
        text = "1x1 conv" if k == 1 else f"conv {k}x{k}"
    text += f" s{stride}" if stride > 1 else ""
    text += f" dil {dilation}" if dilation > 1 else ""
    return f"{text} → {out}"

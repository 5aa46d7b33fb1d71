"""Interactive versions of the ``segnas_lite.teaching.plots`` figures (ipywidgets 8, JupyterLab 4).

Every widget is the same recipe: a few controls, one ``ipywidgets.Output`` and a ``redraw()`` that
calls a plot function with the controls' values and displays the new figure in the Output. The
widget is returned as a ``VBox``; two plain attributes make it testable without a browser:

* ``box.figure``: the figure currently shown (a ``matplotlib.figure.Figure``);
* ``box.redraws``: how many times it was drawn.

Widgets take plain arrays and lists; thin adapters accept a search ``History`` (anything with the
same attribute names) so a notebook can pass the object it has. Sliders whose callback trains or
samples use ``continuous_update=False``: the figure is redrawn when the mouse is released.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import ipywidgets as widgets
from IPython.display import display

from segnas_lite.errors import SegnasError
from segnas_lite.models.summary import summarize
from segnas_lite.nas.calibrate import mape
from segnas_lite.nas.predictor import spearman
from segnas_lite.portrait.composite import check_background
from segnas_lite.portrait.pipeline import cut_out_from
from segnas_lite.portrait.refine import RefineConfig, default_radius
from segnas_lite.teaching import plots
from segnas_lite.teaching.plots.common import op_columns


class WidgetInputError(SegnasError, ValueError):
    """The data given to a widget has inconsistent lengths or shapes; the message says which."""


def _assemble(controls: list, draw: Callable[[], Any]) -> widgets.VBox:
    """Controls on top, an Output below; every control change calls ``draw()`` and shows its figure."""
    output = widgets.Output()
    box = widgets.VBox([*controls, output])
    box.figure = None
    box.redraws = 0

    def redraw(_change=None) -> None:
        figure = draw()
        box.figure = figure
        box.redraws += 1
        output.clear_output(wait=True)
        with output:
            display(figure)

    for control in controls:
        if hasattr(control, "value"):
            control.observe(redraw, names="value")
    box.redraw = redraw
    redraw()
    return box


# --------------------------------------------------------------------------- data
def class_share_viewer(report) -> widgets.VBox:
    """``plots.class_shares`` of a ``data.check`` report, with a dropdown over its splits."""
    splits = ["all splits", *report.split_pixels]
    choice = widgets.Dropdown(options=splits, value="all splits", description="split")
    return _assemble([choice], lambda: plots.class_shares(
        report, split=None if choice.value == "all splits" else choice.value))


# --------------------------------------------------------------------------- masks
def mask_viewer(images: Sequence, masks: Sequence, predictions: dict[str, Sequence] | None = None,
                *, num_classes: int = 2, class_names: Sequence[str] | None = None) -> widgets.VBox:
    """Browse images with their ground truth and each model's prediction.

    ``predictions`` maps a model name to one predicted mask per image. Controls: an image slider, a
    model dropdown (when there are predictions) and a class toggle ("all" or a single class, whose
    IoU is then shown instead of the image's mIoU).
    """
    predictions = dict(predictions or {})
    if len(images) != len(masks) or not len(images):
        raise WidgetInputError(f"need as many masks as images (and at least one): got "
                               f"{len(images)} images and {len(masks)} masks")
    for name, preds in predictions.items():
        if len(preds) != len(images):
            raise WidgetInputError(f"model {name!r} has {len(preds)} predictions for "
                                   f"{len(images)} images")
    names = list(class_names) if class_names is not None else [f"class {c}"
                                                                for c in range(num_classes)]
    index = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image")
    model = widgets.Dropdown(options=list(predictions) or ["(no predictions)"], description="model")
    show = widgets.ToggleButtons(options=[("all", -1)] + [(n, c) for c, n in enumerate(names)],
                                 value=-1, description="classes")

    def draw():
        i = index.value
        preds = predictions.get(model.value)
        title = f"image {i}" + (f", {model.value}" if preds is not None else "")
        return plots.mask_panels(images[i], masks[i], None if preds is None else preds[i],
                                 num_classes=num_classes, class_names=names,
                                 show_class=None if show.value < 0 else show.value, title=title)

    controls = [index, model, show] if predictions else [index, show]
    return _assemble(controls, draw)


# --------------------------------------------------------------------------- alpha evolution
def history_alphas(history) -> tuple[np.ndarray, list[list[str]]]:
    """Adapter: ``(probs (steps + 1, layers, K), op_names)`` from a search History.

    Step 0 is the initial distribution, step s the one after the s-th alpha update. Uses
    ``history.alpha_matrix(step)`` (``None`` = initial) and ``history.op_names``.
    """
    steps = len(history.alpha_steps)
    matrices = [history.alpha_matrix(None)] + [history.alpha_matrix(s) for s in range(steps)]
    return np.stack(matrices), [list(names) for names in history.op_names]


def _argmax_genotype(probs: np.ndarray, per_layer: list[list[str]]) -> list[str]:
    return [names[int(np.nanargmax(row[:len(names)]))] for row, names in zip(probs, per_layer)]


def alpha_evolution(probs_or_history, op_names=None, *, genotypes: Sequence | None = None
                    ) -> widgets.VBox:
    """Slide through the search: the per-layer probability heatmap and the genotype derived at
    that step (argmax unless ``genotypes`` gives one per step); pick a layer to see its curves.

    ``probs_or_history`` is an array (steps, layers, K) with ``op_names`` (one list, or one list per
    layer), or a search History (then ``op_names`` is read from it).
    """
    if hasattr(probs_or_history, "alpha_matrix"):
        probs, op_names = history_alphas(probs_or_history)
    else:
        probs = np.asarray(probs_or_history, dtype=float)
    if probs.ndim != 3:
        raise WidgetInputError(f"probabilities must be (steps, layers, ops), got shape {probs.shape}")
    if op_names is None:
        raise WidgetInputError("give op_names: one list of op names, or one list per layer")
    steps, layers, _ = probs.shape
    _, per_layer = op_columns(op_names, layers)
    if genotypes is not None and len(genotypes) != steps:
        raise WidgetInputError(f"{len(genotypes)} genotypes for {steps} steps")

    step = widgets.IntSlider(value=steps - 1, min=0, max=steps - 1, description="step",
                             continuous_update=False)
    layer = widgets.Dropdown(options=[(f"layer {l}", l) for l in range(layers)], value=0,
                             description="layer")
    view = widgets.ToggleButtons(options=["heatmap", "layer curves"], value="heatmap",
                                 description="view")

    def draw():
        if view.value == "layer curves":
            l = layer.value
            names = per_layer[l]
            return plots.alpha_curves(range(steps), probs[:, l, :len(names)], names,
                                      title=f"layer {l}: op probabilities")
        chosen = (list(getattr(genotypes[step.value], "ops", genotypes[step.value]))
                  if genotypes is not None else _argmax_genotype(probs[step.value], per_layer))
        return plots.alpha_heatmap(probs[step.value], per_layer, genotype=chosen,
                                   title=f"step {step.value}: " + " | ".join(chosen))

    return _assemble([view, step, layer], draw)


# --------------------------------------------------------------------------- latency rejection
def sample_latencies(table_ms: Sequence[Sequence[float]], fixed_ms: float, probs=None, *,
                     num_samples: int = 2000, seed: int = 0) -> np.ndarray:
    """Predicted latencies (ms) of ``num_samples`` genotypes drawn from ``probs`` (one op per layer,
    independently; uniform when ``probs`` is None): ``fixed + sum_l table[l][choice_l]``."""
    rng = np.random.default_rng(seed)
    latency = np.full(num_samples, float(fixed_ms))
    for l, row in enumerate(table_ms):
        row = np.asarray(row, dtype=float)
        if probs is None:
            p = np.full(len(row), 1.0 / len(row))
        else:
            p = np.asarray(probs[l], dtype=float)[:len(row)]
            p = p / p.sum()
        latency += row[rng.choice(len(row), size=num_samples, p=p)]
    return latency


def latency_rejection(table, *, budget_ms: float | None = None, probs=None,
                      num_samples: int = 2000, seed: int = 0) -> widgets.VBox:
    """The hard constraint, live: latencies of genotypes sampled from ``probs`` and predicted with
    the latency table; a budget slider recolours accepted / rejected and updates the rejection rate.

    ``table`` is a LatencyTable (``.ms``, ``.fixed_ms``), a ``(ms rows, fixed_ms)`` pair, or a search
    History (its ``table_ms``, ``fixed_ms``, ``budget_ms`` and final probabilities are used).
    """
    if hasattr(table, "table_ms"):  # a search History
        history = table
        budget_ms = history.budget_ms if budget_ms is None else budget_ms
        if probs is None and history.alpha_steps:
            probs = history.alpha_steps[-1].probs
        rows, fixed = history.table_ms, history.fixed_ms
    elif hasattr(table, "ms"):
        rows, fixed = table.ms, table.fixed_ms
    else:
        rows, fixed = table
    latencies = sample_latencies(rows, fixed, probs, num_samples=num_samples, seed=seed)
    low = float(fixed + sum(min(r) for r in rows))
    high = float(fixed + sum(max(r) for r in rows))
    if budget_ms is None:
        budget_ms = float(np.median(latencies))
    budget = widgets.FloatSlider(value=float(np.clip(budget_ms, low, high)), min=low, max=high,
                                 step=(high - low) / 200 or 0.01, readout_format=".2f",
                                 description="budget (ms)", continuous_update=False)

    def draw():
        return plots.latency_histogram(latencies, latencies <= budget.value, budget.value)

    box = _assemble([budget], draw)
    box.latencies = latencies
    return box


# --------------------------------------------------------------------------- data and models
def augmentation_explorer(dataset, augment, *, count: int = 5) -> widgets.VBox:
    """Pick an image of a synthetic ``dataset`` (anything with ``render(i) -> (image, mask)``) and a
    seed; see the original and ``count`` paired augmentations (``plots.augmentation_grid``)."""
    index = widgets.IntSlider(value=0, min=0, max=max(0, len(dataset) - 1), description="image",
                              continuous_update=False)
    seed = widgets.IntSlider(value=0, min=0, max=99, description="seed", continuous_update=False)

    def draw():
        image, mask = dataset.render(index.value)
        return plots.augmentation_grid(image, mask, augment, count=count, seed=seed.value,
                                       num_classes=dataset.num_classes)

    return _assemble([index, seed], draw)


def model_breakdown(models: dict, *, sizes: Sequence[int] = (128, 256, 512, 1024)) -> widgets.VBox:
    """Parameters and FLOPs per part of each model in ``models`` ({name: nn.Module}) at a chosen
    square input size: the parameters stay, the FLOPs grow with the number of pixels."""
    if not models:
        raise WidgetInputError("give at least one model")
    name = widgets.Dropdown(options=list(models), description="model")
    size = widgets.SelectionSlider(options=list(sizes), value=sizes[0], description="input size",
                                   continuous_update=False)

    def draw():
        summary = summarize(models[name.value], input_size=(size.value, size.value))
        return plots.block_breakdown(
            summary.rows, title=f"{name.value} at {size.value}x{size.value}: "
                                f"{summary.total_params:,} parameters, {summary.gflops:.2f} GFLOPs")

    return _assemble([name, size], draw)


# --------------------------------------------------------------------------- latency tables
def latency_table(table, genotypes: dict | None = None) -> widgets.VBox:
    """A LatencyTable as a heatmap (``plots.latency_heatmap``): toggle ms / relative to the layer's
    slowest op, and pick a genotype to outline (default: the table's fastest and slowest)."""
    genotypes = dict(genotypes or {"fastest": table.fastest()[0], "slowest": table.slowest()[0]})
    scale = widgets.ToggleButtons(options=["ms", "relative"], value="ms", description="colour")
    chosen = widgets.Dropdown(options=list(genotypes), description="outline")

    def draw():
        genotype = genotypes[chosen.value]
        title = f"{chosen.value}: {table.predict(genotype):.2f} ms predicted"
        return plots.latency_heatmap(table.ms, table.ops, relative=scale.value == "relative",
                                     genotype=genotype, title=title)

    return _assemble([scale, chosen], draw)


def predictor_check(predicted_ms: Sequence[float], measured_ms: Sequence[float]) -> widgets.VBox:
    """Predicted vs measured latency of the first k architectures (a slider): Spearman and MAPE
    are recomputed for those k, which shows how uncertain they are when k is small."""
    if len(predicted_ms) != len(measured_ms) or len(predicted_ms) < 3:
        raise WidgetInputError(f"need as many measured as predicted latencies (at least 3): got "
                               f"{len(predicted_ms)} and {len(measured_ms)}")
    pred, meas = np.asarray(predicted_ms, dtype=float), np.asarray(measured_ms, dtype=float)
    count = widgets.IntSlider(value=len(pred), min=3, max=len(pred), description="first k")

    def draw():
        k = count.value
        return plots.predicted_vs_measured(pred[:k], meas[:k],
                                           spearman=spearman(pred[:k], meas[:k]),
                                           mape=mape(pred[:k], meas[:k]),
                                           title=f"{k} random architectures")

    return _assemble([count], draw)


# --------------------------------------------------------------------------- does the super-net rank?
def rank_explorer(report: dict) -> widgets.VBox:
    """``plots.rank_figure`` of a rank report (``benchmarks/results/rank.json``) for one super-net
    and one budget at a time, picked in two dropdowns: its estimates against the stand-alone
    mIoU above, the tau of every score for that budget below."""
    if not report.get("subnets") or not report.get("agreements"):
        raise WidgetInputError("this rank report has no subnets or agreements yet: run "
                               "python benchmarks/rank.py (or --report) first")
    panels, groups = plots.rank_report_data(report)
    supernet = widgets.Dropdown(options=[p["title"].split(":")[0] for p in panels],
                                description="super-net")
    budget = widgets.Dropdown(options=[g["title"] for g in groups], value=groups[-1]["title"],
                              description="taus of")

    def draw():
        panel = panels[supernet.index]
        group = groups[budget.index]
        return plots.rank_figure([panel], [group], title=f"{panel['title']}; {group['title']}")

    return _assemble([supernet, budget], draw)


# --------------------------------------------------------------------------- cut-outs and video
def cutout_explorer(image01: np.ndarray, prob: np.ndarray, *, background: str = "blur"
                    ) -> widgets.VBox:
    """``plots.cutout_panels`` with the refinement's knobs: threshold (or soft), method, radius."""
    image01 = np.asarray(image01, dtype=np.float32)
    if image01.ndim != 3 or image01.shape[2] != 3 or np.asarray(prob).ndim != 2:
        raise WidgetInputError(f"need an (H, W, 3) image and an (h, w) probability map, got "
                               f"{image01.shape} and {np.asarray(prob).shape}")
    check_background(background)
    threshold = widgets.FloatSlider(value=0.5, min=0.05, max=0.95, step=0.05,
                                    description="threshold", continuous_update=False)
    soft = widgets.Checkbox(value=False, description="soft (no threshold)")
    method = widgets.Dropdown(options=["guided", "feather", "none"], value="guided",
                              description="refine")
    radius = widgets.IntSlider(value=default_radius(image01.shape, np.asarray(prob).shape), min=0,
                               max=32, description="radius", continuous_update=False)

    def draw():
        config = RefineConfig(method=method.value, radius=radius.value,
                              threshold=None if soft.value else threshold.value)
        cut = cut_out_from(image01, prob, refine=config, background=background)  # the CLI's chain
        return plots.cutout_panels(image01, prob, cut.alpha, cut.result, threshold=threshold.value)

    return _assemble([threshold, soft, method, radius], draw)


def smoothing_explorer(frames: Sequence[np.ndarray], probs: Sequence[np.ndarray]) -> widgets.VBox:
    """``plots.smoothed_frame``: move through a clip and change the EMA momentum."""
    if len(frames) != len(probs) or len(frames) < 2:
        raise WidgetInputError(f"need one probability map per frame and at least 2 frames, got "
                               f"{len(frames)} frames and {len(probs)} maps")
    momentum = widgets.FloatSlider(value=0.5, min=0.0, max=0.95, step=0.05, description="momentum",
                                   continuous_update=False)
    index = widgets.IntSlider(value=1, min=1, max=len(frames) - 1, description="frame",
                              continuous_update=False)
    return _assemble([momentum, index], lambda: plots.smoothed_frame(
        frames, probs, momentum=momentum.value, index=index.value))

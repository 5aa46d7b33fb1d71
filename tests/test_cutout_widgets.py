"""The cut-out and smoothing figures and their widgets (plots.cutout_panels,
plots.smoothing_tradeoff, plots.smoothed_frame, widgets.cutout_explorer, widgets.smoothing_explorer)."""
import numpy as np
import pytest

from segnas_lite.teaching import plots, widgets
from segnas_lite.portrait.smooth import SmoothingRow


def _scene(size=48):
    yy, xx = np.mgrid[:size, :size]
    disk = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= (size / 3) ** 2
    image = np.where(disk[..., None], [0.9, 0.7, 0.6], [0.2, 0.3, 0.3]).astype(np.float32)
    prob = disk[::8, ::8].astype(np.float32)  # a coarse network-size map
    return image, prob


def test_cutout_panels_with_and_without_zoom():
    image, prob = _scene()
    alpha = np.repeat(np.repeat(prob, 8, 0), 8, 1)
    fig = plots.cutout_panels(image, prob, alpha, image)
    assert len(fig.axes) == 10  # five panels and their zoomed crops
    fig = plots.cutout_panels(image, prob, np.zeros_like(alpha), image)
    assert len(fig.axes) == 5  # no foreground: nothing to zoom on


def test_cutout_explorer_redraws_on_every_knob():
    image, prob = _scene()
    box = widgets.cutout_explorer(image, prob, background="green")
    first = box.figure
    threshold, soft, method, radius = box.children[:4]
    method.value = "feather"
    radius.value = 5
    soft.value = True
    assert box.redraws == 4 and box.figure is not first
    with pytest.raises(widgets.WidgetInputError, match="probability"):
        widgets.cutout_explorer(image, prob[None])


def test_smoothing_figures_and_explorer():
    rows = [SmoothingRow(m, 0.1 - m / 10, 1 - m / 5, lag) for m, lag in ((0, 1), (0.5, 1), (0.8, 4))]
    assert len(plots.smoothing_tradeoff(rows).axes) == 2
    rng = np.random.default_rng(0)
    frames = [(rng.random((32, 32, 3)) * 255).astype(np.uint8) for _ in range(6)]
    probs = [np.clip(0.5 + rng.normal(0, 0.2, (8, 8)), 0, 1).astype(np.float32) for _ in range(6)]
    raw = plots.smoothed_frame(frames, probs, momentum=0.0, index=5)
    steady = plots.smoothed_frame(frames, probs, momentum=0.9, index=5)
    share = lambda fig: float(fig.axes[2].get_title().split(":")[1].split("%")[0])  # noqa: E731
    assert share(steady) < share(raw)  # the smoothed mask flips fewer pixels
    box = widgets.smoothing_explorer(frames, probs)
    box.children[1].value = 3
    assert box.redraws == 2
    with pytest.raises(widgets.WidgetInputError, match="one probability map per frame"):
        widgets.smoothing_explorer(frames, probs[:3])

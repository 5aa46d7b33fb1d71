"""plots figures and the widgets built on them, headless (no browser, no kernel)."""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from segnas_lite.teaching import notebook_utils, plots, widgets
from segnas_lite.teaching.plots.common import _layer_op_grid
from segnas_lite.teaching.plots.compare import _pareto_front
from segnas_lite.data import IGNORE_INDEX, PairedAugment, SyntheticPortraits
from segnas_lite.data.palette import colorize, overlay, palette
from segnas_lite.models.summary import SummaryRow

OPS = ["mbv3_3x3", "mbv3_5x5", "zero"]


def _titles(fig: Figure) -> list[str]:
    texts = [ax.get_title() for ax in fig.axes]
    if fig._suptitle is not None:
        texts.append(fig._suptitle.get_text())
    return texts


@pytest.fixture(scope="module")
def samples():
    data = SyntheticPortraits(length=3, image_size=32, seed=0)
    images, masks = zip(*(data[i] for i in range(3)))
    return list(images), list(masks)


def _fake_history(steps: int = 4, layers: int = 3):
    """A duck-typed search History: probabilities drift towards op 1 in every layer."""
    rng = np.random.default_rng(0)
    alpha_init = rng.normal(0, 1e-3, (layers, len(OPS)))
    step_probs = []
    for s in range(steps):
        logits = alpha_init.copy()
        logits[:, 1] += s
        step_probs.append((np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).tolist())

    def alpha_matrix(step=-1):
        if step is None:
            return np.full((layers, len(OPS)), 1.0 / len(OPS))
        return np.asarray(step_probs[step])

    return SimpleNamespace(
        op_names=[OPS] * layers, alpha_matrix=alpha_matrix, budget_ms=6.0, fixed_ms=1.0,
        table_ms=[[1.0, 2.0, 0.0]] * layers,
        alpha_steps=[SimpleNamespace(probs=p) for p in step_probs])


# --------------------------------------------------------------------------- plots
def test_palette_colorize_overlay():
    colours = palette(21)
    assert colours.shape == (21, 3) and len({tuple(c) for c in colours}) == 21
    assert tuple(colours[0]) == (0, 0, 0)
    mask = np.array([[0, 1], [IGNORE_INDEX, 2]])
    rgb = colorize(mask)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 1]) == tuple(colours[1])
    assert tuple(colorize(mask, colours)[1, 0]) == (255, 255, 255)  # short table: ignore white
    image = np.full((2, 2, 3), 0.5, np.float32)
    blended = overlay(image, mask, alpha=0.5)
    assert np.allclose(blended[0, 0], 0.5) and np.allclose(blended[1, 0], 0.5)  # bg, ignore kept
    assert np.allclose(blended[0, 1], 0.5 * 0.5 + 0.5 * colours[1] / 255)
    assert overlay(torch.from_numpy(image).permute(2, 0, 1), mask).shape == (2, 2, 3)


def test_mask_grid_rows_titles_and_scores(samples):
    images, masks = samples
    fig = plots.mask_grid(images, masks, masks, num_classes=2, titles=["a", "b", "c"], max_rows=2)
    assert len(fig.axes) == 8  # 2 rows x (image, truth, prediction, overlay)
    assert _titles(fig)[:4] == ["a", "ground truth", "prediction (IoU 1.00)", "overlay"]
    assert len(plots.mask_grid(images, masks).axes) == 6  # no predictions: image + truth per row


def test_mask_panels_reports_miou_and_class_iou(samples):
    images, masks = samples
    perfect = plots.mask_panels(images[0], masks[0], masks[0], num_classes=2)
    assert "mIoU 1.00" in " ".join(_titles(perfect))
    empty = torch.zeros_like(masks[0])
    person = plots.mask_panels(images[0], masks[0], empty, num_classes=2, show_class=1,
                             class_names=("background", "person"))
    assert "IoU(person) 0.00" in " ".join(_titles(person))
    assert len(plots.mask_panels(images[0], masks[0]).axes) == 2  # no prediction: image + truth


def test_augmentation_grid_is_deterministic():
    image, mask = SyntheticPortraits(length=1, image_size=32, seed=0).render(0)
    augment = PairedAugment()
    a = plots.augmentation_grid(image, mask, augment, count=3, seed=5)
    b = plots.augmentation_grid(image, mask, augment, count=3, seed=5)
    assert len(a.axes) == 8  # (original + 3 draws) x (image, mask)
    for ax_a, ax_b in zip(a.axes, b.axes):
        np.testing.assert_array_equal(ax_a.images[0].get_array(), ax_b.images[0].get_array())


def test_mask_coverage_mean_share(samples):
    _, masks = samples
    fig = plots.mask_coverage(masks, class_names=("background", "person"))
    expected = np.mean([(m == 1).float().mean().item() for m in masks])
    assert f"person (mean {expected:.2f})" in _titles(fig)


def test_block_breakdown_accepts_rows_and_dicts():
    rows = [SummaryRow("a", 300, 2_000_000_000), SummaryRow("b", 100, 0)]
    fig = plots.block_breakdown(rows)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    shares = [t.get_text() for t in fig.axes[0].texts]
    assert shares == ["75%", "25%"]
    plots.block_breakdown([{"name": "x", "params": 1, "flops": 1}])


def test_feature_maps_labels_shapes():
    fig = plots.feature_maps({"high": torch.zeros(1, 5, 8, 8), "low": torch.zeros(2, 4, 4)},
                           channels=3)
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["high\n5x8x8", "low\n2x4x4"]
    assert len(fig.axes[-1].images) == 0  # channel 2 of a 2-channel map stays empty


def test_alpha_heatmap_union_of_per_layer_ops_and_genotype_boxes():
    probs = np.array([[0.2, 0.8, np.nan], [0.1, 0.3, 0.6]])
    names = [["a", "b"], ["a", "c", "b"]]
    fig = plots.alpha_heatmap(probs, names, genotype=["b", "c"])
    ax = fig.axes[0]
    grid = ax.images[0].get_array()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert grid[1, 1] == pytest.approx(0.6) and grid[1, 2] == pytest.approx(0.3)
    assert np.ma.is_masked(grid[0, 2])  # layer 0 has no op "c"
    assert len(ax.patches) == 2


def test_layer_op_grid_matches_ragged_and_padded_rows():
    names = [["a", "b"], ["a", "c", "b"]]
    columns, ragged = _layer_op_grid([[1.0, 2.0], [3.0, 4.0, 5.0]], names)
    _, padded = _layer_op_grid(np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]]), names)
    assert columns == ["a", "b", "c"]
    np.testing.assert_array_equal(ragged, [[1.0, 2.0, np.nan], [3.0, 5.0, 4.0]])
    np.testing.assert_array_equal(ragged, padded)
    fig = plots.latency_heatmap([[1.0, 2.0], [3.0, 4.0, 5.0]], names, relative=True)
    assert [t.get_text() for t in fig.axes[0].texts] == ["1.00", "2.00", "3.00", "5.00", "4.00"]


def test_alpha_curves_and_latency_histogram():
    fig = plots.alpha_curves(range(4), np.full((4, 3), 1 / 3), OPS)
    assert len(fig.axes[0].lines) == 4  # three ops + the uniform reference
    fig = plots.latency_histogram([1.0, 2.0, 3.0, 4.0], [True, True, False, False], 2.5)
    assert "rejection rate 50.0%" in fig.axes[0].get_title()


def test_predicted_vs_measured_and_search_curves():
    fig = plots.predicted_vs_measured([1, 2, 3], [1.1, 2.2, 2.9], spearman=1.0, mape=5.0)  # percent, as PredictorReport.mape
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "Spearman 1.00, MAPE 5.0%" in legend
    fig = plots.search_curves([5, 4, 3], [0.5, 0.2, 0.1], budget_ms=4)
    assert len(fig.axes) == 2


def test_derive_attempts_colours_each_try_by_the_budget():
    attempts = [{"target_ms": 1.0, "predicted_ms": 0.95, "measured_ms": 1.1, "ops": []},
                {"target_ms": 0.9, "predicted_ms": 0.85, "measured_ms": 0.97, "ops": []}]
    fig = plots.derive_attempts(attempts, 1.0)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["try 1", "try 2"]
    measured = next(c for c in ax.collections if c.get_label() == "measured")
    colours = [tuple(round(v, 3) for v in rgba[:3]) for rgba in measured.get_facecolors()]
    from matplotlib.colors import to_rgb
    assert colours == [tuple(round(v, 3) for v in to_rgb(name)) for name in ("tab:red", "tab:green")]
    assert list(measured.get_offsets()[:, 1]) == [1.1, 0.97]


def test_alpha_stability_draws_both_curves():
    fig = plots.alpha_stability([1.0, 0.9, 0.7], [0.2, 0.6, 1.0])
    left, right = fig.axes
    assert list(left.lines[0].get_ydata()) == [1.0, 0.9, 0.7]
    assert list(right.lines[0].get_ydata()) == [0.2, 0.6, 1.0]


def test_pareto_front_skips_dominated_models():
    rows = [{"name": "fast", "latency_ms": 1, "miou": 0.5},
            {"name": "slow_bad", "latency_ms": 3, "miou": 0.4},
            {"name": "slow_good", "latency_ms": 4, "miou": 0.7}]
    assert _pareto_front([(r["latency_ms"], r["miou"]) for r in rows]) == [0, 2]
    fig = plots.pareto(rows)
    front = [line for line in fig.axes[0].lines if line.get_label() == "Pareto front"]
    assert list(front[0].get_xdata()) == [1.0, 4.0]


# --------------------------------------------------------------------------- widgets
def test_mask_viewer_redraws_on_every_control(samples):
    images, masks = samples
    preds = {"perfect": masks, "empty": [torch.zeros_like(m) for m in masks]}
    box = widgets.mask_viewer(images, masks, preds, num_classes=2,
                              class_names=("background", "person"))
    index, model, show = box.children[:3]
    assert box.redraws == 1 and "image 0, perfect" in _titles(box.figure)
    index.value = 2
    assert "image 2, perfect" in _titles(box.figure)
    model.value = "empty"
    show.value = 1
    assert box.redraws == 4
    assert "IoU(person) 0.00" in " ".join(_titles(box.figure))
    with pytest.raises(widgets.WidgetInputError):
        widgets.mask_viewer(images, masks, {"short": masks[:1]})


def test_alpha_evolution_from_history_and_arrays():
    history = _fake_history(steps=4, layers=3)
    box = widgets.alpha_evolution(history)
    view, step, layer = box.children[:3]
    assert step.max == 4  # initial distribution + 4 steps
    assert "mbv3_5x5 | mbv3_5x5 | mbv3_5x5" in _titles(box.figure)[0]
    step.value = 0
    assert _titles(box.figure)[0].startswith("step 0")
    view.value = "layer curves"
    layer.value = 2
    assert _titles(box.figure) == ["layer 2: op probabilities"]
    probs, names = widgets.history_alphas(history)
    again = widgets.alpha_evolution(probs, names[0])
    assert again.figure.axes[0].images[0].get_array().shape == (3, 3)
    with pytest.raises(widgets.WidgetInputError):
        widgets.alpha_evolution(probs[0], names)


def test_sample_latencies_follow_the_table():
    lat = widgets.sample_latencies([[1.0, 3.0], [0.0, 10.0]], 0.5, [[1.0, 0.0], [0.0, 1.0]],
                                   num_samples=50)
    assert np.all(lat == 11.5)  # one-hot probabilities pick ops 0 and 1 every time
    uniform = widgets.sample_latencies([[1.0, 3.0]], 0.0, num_samples=4000, seed=1)
    assert set(np.unique(uniform)) == {1.0, 3.0}
    assert abs((uniform == 1.0).mean() - 0.5) < 0.05


def test_latency_rejection_budget_slider_updates_rate():
    box = widgets.latency_rejection(([[1.0, 2.0], [1.0, 2.0]], 0.0), budget_ms=4.0, seed=0)
    (budget,) = box.children[:1]
    assert "rejection rate 0.0%" in _titles(box.figure)[0]
    budget.value = 2.0  # only the (1, 1) genotype fits: about 3/4 rejected
    expected = (box.latencies > 2.0).mean()
    assert 0.65 < expected < 0.85
    assert f"rejection rate {expected:.1%}" in _titles(box.figure)[0]
    from_history = widgets.latency_rejection(_fake_history())
    assert from_history.children[0].value == pytest.approx(6.0)


# --------------------------------------------------------------------------- notebook_utils
def test_quick_mode_follows_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SEGNAS_QUICK", raising=False)  # conftest.py sets it for the test session
    assert notebook_utils.quick_mode(False) is False
    monkeypatch.setenv("CI", "true")
    assert notebook_utils.quick_mode(False) is True
    monkeypatch.setenv("CI", "0")
    assert notebook_utils.quick_mode(True) is True
    monkeypatch.setenv("SEGNAS_QUICK", "1")
    assert notebook_utils.quick_mode(False) is True


def test_setup_seeds_and_quiets(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path))
    monkeypatch.delenv("SEGNAS_QUIET", raising=False)
    settings = notebook_utils.setup(quick=True, seed=3)
    first = torch.rand(2)
    notebook_utils.setup(quick=True, seed=3)
    assert torch.equal(first, torch.rand(2))
    assert settings.quick and settings.cache == tmp_path and os.environ["SEGNAS_QUIET"] == "1"


def test_cached_computes_once_and_reloads(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"weights": torch.arange(3), "history": [{"epoch": 1, "loss": 0.5}]}

    key = notebook_utils.cache_key("demo", size=64)
    assert key != notebook_utils.cache_key("demo", size=128)
    assert not notebook_utils.is_cached(key)
    first = notebook_utils.cached(key, compute)
    second = notebook_utils.cached(key, compute)
    assert len(calls) == 1 and notebook_utils.is_cached(key)
    assert torch.equal(second["weights"], first["weights"]) and second["history"][0]["loss"] == 0.5
    notebook_utils.cached(key, compute, refresh=True)
    assert len(calls) == 2
    (tmp_path / "results" / f"{key}.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(notebook_utils.CacheError):
        notebook_utils.cached(key, compute)


def test_a_notebook_search_is_keyed_by_every_setting_defaults_included():
    """A default that changes (the rank study picks the warm-up) must not serve an old search."""
    from segnas_lite.nas.config import SearchConfig
    key = notebook_utils.search_key("seed", SearchConfig(budget_ms=1.0))
    assert key == notebook_utils.search_key("seed", SearchConfig(budget_ms=1.0, quiet=True))
    assert key != notebook_utils.search_key("seed", SearchConfig(budget_ms=1.0, bn_recalibration=8))
    assert key != notebook_utils.search_key("tiny", SearchConfig(budget_ms=1.0))


def test_environment_report_has_versions():
    report = notebook_utils.environment_report()
    assert report["torch"] == torch.__version__ and report["cores"] >= 1
    text = notebook_utils.format_report(report)
    assert "torch_threads" in text


def test_augmentation_explorer_and_model_breakdown():
    data = SyntheticPortraits(length=4, image_size=32, seed=0)
    box = widgets.augmentation_explorer(data, PairedAugment(), count=2)
    index, seed = box.children[:2]
    seed.value = 7
    assert "seed 7" in _titles(box.figure)[-1] and box.redraws == 2
    from segnas_lite.zoo import build_model
    box = widgets.model_breakdown({"fast": build_model("fast_scnn", num_classes=2)}, sizes=(64, 128))
    small = _titles(box.figure)[-1]
    box.children[1].value = 128
    large = _titles(box.figure)[-1]
    assert small.startswith("fast at 64x64") and large.startswith("fast at 128x128")
    assert small.split(":")[1].split(",")[0] == large.split(":")[1].split(",")[0]  # same params


def test_reader_copy_keeps_figures_and_replaces_widgets(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from segnas_lite.teaching import reader_copy
    from nbformat.v4 import new_code_cell, new_notebook, new_output
    cell = new_code_cell("widgets.mask_viewer(...)", outputs=[
        new_output("display_data", data={"image/png": "iVBORw0KGgo="}),
        new_output("execute_result", data={reader_copy.WIDGET_MIME: {"model_id": "x"},
                                           "text/plain": "VBox(...)"}, execution_count=1)])
    notebook = new_notebook(cells=[cell], metadata={"widgets": {"state": {}}})
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, path)
    os.chmod(path, 0o644)
    assert reader_copy.make_reader_copy(path)["widgets"] == 1
    cleaned = nbformat.read(path, as_version=4)
    assert "widgets" not in cleaned.metadata
    outputs = cleaned.cells[0].outputs
    assert "image/png" in outputs[0].data and outputs[1].data == {"text/plain": reader_copy.WIDGET_NOTE}
    assert os.stat(path).st_mode & 0o777 == 0o644

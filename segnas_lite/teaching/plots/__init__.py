"""Matplotlib figures for the CLI, the notebooks and the widgets, one module per lesson topic.

Every function takes plain data (tensors, arrays, lists of dicts), returns a
``matplotlib.figure.Figure`` and never calls ``plt.show()``: a notebook displays the returned
figure, the CLI saves it (``save_figure``), and ``segnas_lite.teaching.widgets`` redraws it with new
arguments. A notebook writes ``from segnas_lite.teaching import plots, widgets`` and calls
``plots.mask_grid(...)``. Mask colours (``palette``, ``colorize``, ``overlay``) live in
``segnas_lite.data.palette``.

* ``data``: masks and predictions, augmentation, class coverage and shares (lesson 01);
* ``training``: training curves (02, 03);
* ``models``: parameters and FLOPs per part, feature maps (02 to 04);
* ``latency``: latency table heatmap, predicted vs measured latency (05);
* ``search``: op probabilities, search curves, rejections, derivation, evolution (06, 07);
* ``compare``: accuracy vs latency, per budget (07);
* ``rank``: does the super-net rank? estimates vs stand-alone mIoU, Kendall's tau (07);
* ``study``: does the search beat random? mIoU +- std vs latency per budget, beside the rank (07);
* ``portrait``: cut-out panels, temporal smoothing and a video frame's time by stage (09);
* ``diagrams_models``, ``diagrams_search``: architecture diagrams, boxes and arrows read off the
  real model / search space: Fast-SCNN, LR-ASPP (02, 03), the seed's macro and the super-net with
  binary gates (04, 06); ``python -m segnas_lite.teaching.plots.diagrams lessons/figures`` writes
  them as the lessons' PNGs;
* ``common``: ``save_figure`` and helpers the modules share.
"""
from segnas_lite.teaching.plots.common import save_figure
from segnas_lite.teaching.plots.compare import BUDGET_PARETO_MARKERS, budget_pareto, pareto
from segnas_lite.teaching.plots.data import (augmentation_grid, class_shares, mask_coverage,
                                             mask_grid, mask_panels)
from segnas_lite.teaching.plots.diagrams_models import fast_scnn_diagram, lraspp_diagram
from segnas_lite.teaching.plots.diagrams_search import macro_diagram, supernet_diagram
from segnas_lite.teaching.plots.latency import (latency_heatmap, latency_report_figure,
                                                predicted_vs_measured)
from segnas_lite.teaching.plots.models import block_breakdown, feature_maps
from segnas_lite.teaching.plots.portrait import (cutout_panels, frame_times, smoothed_frame,
                                                  smoothing_tradeoff)
from segnas_lite.teaching.plots.rank import rank_figure, rank_report_data, rank_scatter, rank_taus
from segnas_lite.teaching.plots.study import STUDY_MARKERS, study_figure, study_pareto
from segnas_lite.teaching.plots.search import (alpha_curves, alpha_heatmap, alpha_stability,
                                               derive_attempts, evolution_curves,
                                               latency_histogram, search_curves)
from segnas_lite.teaching.plots.training import training_curves

__all__ = [
    "save_figure",
    "BUDGET_PARETO_MARKERS", "budget_pareto", "pareto",
    "augmentation_grid", "class_shares", "mask_coverage", "mask_grid", "mask_panels",
    "fast_scnn_diagram", "lraspp_diagram", "macro_diagram", "supernet_diagram",
    "latency_heatmap", "latency_report_figure", "predicted_vs_measured",
    "block_breakdown", "feature_maps",
    "cutout_panels", "frame_times", "smoothed_frame", "smoothing_tradeoff",
    "rank_figure", "rank_report_data", "rank_scatter", "rank_taus",
    "STUDY_MARKERS", "study_figure", "study_pareto",
    "alpha_curves", "alpha_heatmap", "alpha_stability", "derive_attempts", "latency_histogram",
    "evolution_curves", "search_curves",
    "training_curves",
]

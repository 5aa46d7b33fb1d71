"""Notebook 07's figures: error bars over training seeds on the Pareto plot, evolution curves."""
import matplotlib

matplotlib.use("Agg")

from matplotlib.container import ErrorbarContainer  # noqa: E402

from segnas_lite.teaching import plots  # noqa: E402


def test_pareto_draws_the_seed_range_as_error_bars():
    rows = [{"name": "searched", "latency_ms": 1.0, "miou": 0.60, "range": (0.55, 0.64)},
            {"name": "mbv3 w0.5", "latency_ms": 1.1, "miou": 0.58, "range": (0.56, 0.61)},
            {"name": "fast_scnn", "latency_ms": 2.0, "miou": 0.65}]
    fig = plots.pareto(rows, spread_key="range")
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    drawn = [c for c in bars if len(c.lines[0].get_xdata())]  # the legend's entry is empty
    assert len(drawn) == 2
    segments = drawn[0].lines[2][0].get_segments()[0]  # the vertical bar of the first model
    assert [round(y, 6) for _, y in segments] == [0.55, 0.64]
    assert "range over training seeds" in [t.get_text() for t in ax.get_legend().get_texts()]
    front = [line for line in ax.lines if line.get_label() == "Pareto front"]
    assert list(front[0].get_xdata()) == [1.0, 2.0]


def test_pareto_without_spread_draws_no_bars():
    rows = [{"name": "a", "latency_ms": 1.0, "miou": 0.6},
            {"name": "b", "latency_ms": 2.0, "miou": 0.7}]
    ax = plots.pareto(rows).axes[0]
    assert not [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_evolution_curves_plot_best_mean_members_and_references():
    generations = [{"generation": g, "best": 0.5 + 0.01 * g, "mean": 0.45 + 0.01 * g,
                    "population": [[["x"], 0.4 + 0.01 * g + 0.01 * i, 1.0] for i in range(6)]}
                   for g in range(3)]
    fig = plots.evolution_curves(generations, references={"random search, best": 0.51})
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines["best"].get_ydata()) == [g["best"] for g in generations]
    assert list(lines["mean"].get_ydata()) == [g["mean"] for g in generations]
    assert list(lines["random search, best"].get_ydata()) == [0.51, 0.51]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 18  # every member a dot

"""The architecture diagrams (plots.fast_scnn_diagram, lraspp_diagram, macro_diagram,
supernet_diagram) say what the code does, and the lessons' PNGs exist and can be regenerated."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from segnas_lite.models import fast_scnn, lraspp_mobilenetv3_small
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.space import MacroConfig, seed_space, tiny_space
from segnas_lite.teaching import plots
from segnas_lite.teaching.plots.diagram_parts import DiagramError
from segnas_lite.teaching.plots.diagrams import DIAGRAMS, FigureExistsError, main, write_diagrams

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "lessons" / "figures"


def texts(figure: Figure) -> list[str]:
    return [t.get_text() for t in figure.findobj(Text) if t.get_text()]


def joined(figure: Figure) -> str:
    return "\n".join(texts(figure))


def test_fast_scnn_diagram_names_the_four_modules_and_their_shapes():
    figure = plots.fast_scnn_diagram()
    assert isinstance(figure, Figure)
    text = joined(figure)
    for module in ("learning to downsample", "global feature extractor", "feature fusion",
                   "classifier"):
        assert module in text
    for shape in ("64 x H/8", "128 x H/32", "128 x H/8", "19 x H/8", "19 x H"):
        assert shape in text, shape
    assert "bins 1, 2, 3, 6" in text and "dil 4" in text and "upsample x4" in text
    # the bottleneck rows are the paper's (c, t, n, s): (64, 6, 3, 2), (96, 6, 3, 2), (128, 6, 3, 1)
    assert "3 bottlenecks t=6 s2 → 64 x H/16" in text
    assert "3 bottlenecks t=6 s1 → 128 x H/32" in text


def test_fast_scnn_diagram_follows_the_model():
    text = joined(plots.fast_scnn_diagram(fast_scnn(num_classes=2, dropout=0.3)))
    assert "2 x H" in text and "dropout 0.3" in text and "19 x H" not in text


@pytest.mark.parametrize("small", [False, True], ids=["large", "small"])
def test_lraspp_diagram_shows_the_three_branches_and_the_taps(small):
    model = lraspp_mobilenetv3_small(num_classes=2) if small else None
    figure = plots.lraspp_diagram(model)
    text = joined(figure)
    for part in ("F1 = cbr", "F2 = scale", "F3 = high_classifier", "F4 = low_classifier",
                 "global avg pool", "sigmoid", "128 x 1 x 1", "output stride 16"):
        assert part in text, part
    low, high, classes, tap = (("24", "576", "2", 2) if small else ("40", "960", "21", 4))
    assert f"low: {low} x H/8" in text and f"high: {high} x H/16" in text
    assert f"{classes} x H" in text and "bneck dil 2" in text
    assert f"tap: layer {tap}" in text


def test_macro_diagram_reads_the_space_and_the_macro():
    space = seed_space()
    text = joined(plots.macro_diagram())
    for stride, last in space.taps().items():
        assert f"S{stride}: layers" in text and f"{space.layers[last].out_ch} x H/{stride}" in text
    assert "ASPP (on S32)" in text
    assert "sep 3x3 rate 2 → 64" in text and "sep 3x3 rate 4 → 64" in text
    assert "concat 256, 1x1 → 48" in text and "each: 1 of 7 ops" in text
    for stride in (16, 8, 4):
        assert f"decoder S{stride}" in text and f"48 x H/{stride}" in text
    assert "16 x H/2" in text and "2 x H" in text

    other = joined(plots.macro_diagram(tiny_space(), num_classes=5,
                                       macro_config=MacroConfig(aspp_channels=16,
                                                                decoder_channels=32,
                                                                aspp_rates=(3,))))
    assert "sep 3x3 rate 3 → 16" in other and "concat 48, 1x1 → 32" in other
    assert "32 x H/16" in other and "5 x H" in other and "each: 1 of 3-4 ops" in other
    assert "rate 2" not in other


def test_supernet_diagram_has_every_op_and_one_gate_set():
    space = seed_space()
    state = torch.random.get_rng_state()
    figure = plots.supernet_diagram()
    assert torch.equal(state, torch.random.get_rng_state()), "the diagram must not move the RNG"
    found = texts(figure)
    names = space.layers[3].ops
    assert len(names) == 7
    for name in names:
        assert any(name in t for t in found), name
    assert found.count("g=1") == 1 and found.count("g=0") == len(names) - 1
    running = [t for t in found if re.fullmatch(r"\d+  \w+", t)]  # no "(not run)": it runs
    assert len(running) == 1
    assert "p = softmax(α)" in found and "softmax" in found and "0.143" in found
    assert any(t.startswith("latency table, layer 3") for t in found)
    assert "LAT(3, 0)" in found  # no table given: symbols, not numbers
    assert "shortcut x (stride 1, in = out)" in found  # layer 3 is 40 -> 40, stride 1


def test_supernet_diagram_samples_from_alpha_and_shows_the_latency_row():
    space = tiny_space()
    layer = 0  # 8 -> 8 channels at stride 2: 3 ops, no shortcut
    spec = space.layers[layer]
    alpha = [-20.0] * len(spec.ops)
    alpha[1] = 20.0  # p ~ one-hot on op 1: the gate must pick it
    ms = [1.0, 2.0, 4.0]
    found = texts(plots.supernet_diagram(space, layer=layer, alpha=alpha, latency=ms))
    assert f"1  {spec.ops[1]}" in found and "g=1" in found
    assert "2.000 ms" in found and "4.000 ms" in found
    assert any("= 2.000 ms" in t for t in found)  # E[LAT] with p ~ (0, 1, 0)
    assert not any(t.startswith("shortcut") for t in found)

    table = LatencyTable(space.name, [list(s.ops) for s in space.layers],
                         [[0.5] * len(s.ops) for s in space.layers], fixed_ms=1.0)
    assert "0.500 ms" in texts(plots.supernet_diagram(space, layer=2, latency=table))


@pytest.mark.parametrize("kwargs, words", [
    ({"layer": 10}, "has layers 0 to 9"),
    ({"alpha": [0.0, 1.0]}, "alpha has 2 values"),
    ({"latency": [1.0, 2.0]}, "2 latencies for layer 3"),
    ({"latency": LatencyTable("tiny", [], [[1.0]] * 4, 0.0)}, "build the table for this space"),
])
def test_supernet_diagram_explains_what_does_not_fit(kwargs, words):
    with pytest.raises(DiagramError, match=words):
        plots.supernet_diagram(**kwargs)


def test_the_lessons_png_exist_small_and_linked():
    lessons = "\n".join(path.read_text() for path in (ROOT / "lessons").glob("*.md"))
    for name in DIAGRAMS:
        png = FIGURES / f"{name}.png"
        assert png.is_file(), "run python -m segnas_lite.teaching.plots.diagrams lessons/figures"
        assert png.stat().st_size < 150_000, f"{png.name} is too big for the repository"
        assert f"(figures/{name}.png)" in lessons, f"no lesson shows {png.name}"


def test_regenerating_into_a_folder(tmp_path):
    status = write_diagrams(tmp_path)
    assert sorted(Path(p).name for p in status) == sorted(f"{n}.png" for n in DIAGRAMS)
    assert set(status.values()) == {"written"}
    for name in DIAGRAMS:  # same picture size as the lessons' copy
        with Image.open(tmp_path / f"{name}.png") as new:
            with Image.open(FIGURES / f"{name}.png") as old:
                assert new.size == old.size

    assert set(write_diagrams(tmp_path, names=["macro"]).values()) == {"unchanged"}
    target = tmp_path / "macro.png"
    target.write_bytes(b"edited by hand")
    with pytest.raises(FigureExistsError, match="--overwrite"):
        write_diagrams(tmp_path, names=["macro"])
    assert target.read_bytes() == b"edited by hand"  # refused: nothing written
    assert main([str(tmp_path), "--only", "macro"]) == 1
    assert main([str(tmp_path), "--only", "macro", "--overwrite"]) == 0
    assert target.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(DiagramError, match="unknown diagrams"):
        write_diagrams(tmp_path, names=["nope"])

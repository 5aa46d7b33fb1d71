"""Architecture diagrams of the search (lessons 04 and 06): the seed's macro network (its Figure 3,
which the seed describes only in words) and one super-net layer with ProxylessNAS binary gates.

Both read the search space (``nas.space.SearchSpace``) and the macro widths (``MacroConfig``) that
``nas.supernet.SegMacro`` is built from, and the super-net layer samples its gate with the library's
own ``MixedOp``: the picture shows what the code runs.
"""
from __future__ import annotations

from typing import Sequence

import torch
from matplotlib.figure import Figure

from segnas_lite.nas.space import MacroConfig, SearchSpace, seed_space
from segnas_lite.nas.supernet import MixedOp
from segnas_lite.teaching.plots.diagram_parts import (COLOURS, SHAPE_LEGEND, DiagramError, arrow,
                                                      box, canvas, node, note, path_arrow,
                                                      shape_text)


def macro_diagram(space: SearchSpace | None = None, *, macro_config: MacroConfig | None = None,
                  num_classes: int = 2) -> Figure:
    """The seed's macro (its Figure 3, "DeepLabV3+-style"): stem, the searchable chain through
    S4, S8, S16, S32, ASPP on S32 and a decoder that upsamples and ADDS the 1x1-projected S16, S8
    and S4 features (seed Sec. 2.1), then a 1x1 classifier and bilinear upsampling.

    ``space`` (default ``seed_space()``) gives the stem width, the layers of each stage, their
    channels and the number of candidate ops; ``macro_config`` (default ``MacroConfig()``) the ASPP
    and decoder widths and the atrous rates, exactly what ``SegMacro`` builds from.
    """
    space = space if space is not None else seed_space()
    macro = MacroConfig.coerce(macro_config)
    strides = space.output_strides()
    taps = space.taps()
    fig, ax = canvas(13.3, 5.6, title=f"The seed's macro (Figure 3): searchable chain "
                                      f"({space.name!r} space), ASPP on S32, additive decoder")
    width, gap, top_y, top_h, low_y, low_h = 1.85, 0.3, 3.05, 1.7, 0.45, 1.7

    def column(index: int) -> float:
        return 0.2 + index * (width + gap)

    image = box(ax, column(0), top_y + 0.35, width, 1.0, "image", ["RGB"], shape=shape_text(3, 1))
    stem = box(ax, column(1), top_y, width, top_h, "stem (seed: \"head\")",
               ["conv 3x3 s2, BN, h-swish", f"→ {space.stem_channels}"],
               shape=shape_text(space.stem_channels, 2), colour=COLOURS["detail"])
    arrow(ax, image.right, stem.left)
    stages, previous, start = {}, stem, 0
    for position, stride in enumerate((4, 8, 16, 32)):
        last = taps[stride]
        layers = range(start, last + 1)
        lines = []
        for index in layers:
            spec = space.layers[index]
            shortcut = ", + x" if spec.residual else ""
            lines.append(f"{index}: {spec.in_ch}→{spec.out_ch} s{spec.stride}{shortcut}")
        choices = sorted({len(space.layers[index].ops) for index in layers})
        count = f"{choices[0]}" if len(choices) == 1 else f"{choices[0]}-{choices[-1]}"
        lines.append(f"each: 1 of {count} ops")
        stage = box(ax, column(2 + position), top_y, width, top_h,
                    f"S{stride}: layer{'s' if len(layers) > 1 else ''} "
                    f"{start}{'-' + str(last) if len(layers) > 1 else ''}", lines,
                    shape=shape_text(space.layers[last].out_ch, stride), colour=COLOURS["search"])
        arrow(ax, previous.right, stage.left)
        stages[stride], previous, start = stage, stage, last + 1
    assert strides[-1] == 32  # SearchSpace guarantees it: the chain ends at S32

    rates = macro.aspp_rates
    branch = macro.aspp_channels
    aspp = box(ax, column(5), low_y, width, low_h, "ASPP (on S32)",
               [f"1x1 → {branch}"] + [f"sep 3x3 rate {r} → {branch}" for r in rates]
               + [f"image pool, 1x1 → {branch}",
                  f"concat {branch * (2 + len(rates))}, 1x1 → {macro.decoder_channels}"],
               shape=shape_text(macro.decoder_channels, 32), colour=COLOURS["context"])
    arrow(ax, stages[32].bottom, aspp.top,
          label=shape_text(space.layers[taps[32]].out_ch, 32), label_offset=(0.0, 0.0))
    previous = aspp
    for position, stride in zip((4, 3, 2), (16, 8, 4)):
        skip = space.layers[taps[stride]].out_ch
        step = box(ax, column(position), low_y, width, low_h, f"decoder S{stride}",
                   ["upsample x2", f"+ 1x1 conv ({skip} → {macro.decoder_channels})",
                    f"DSConv 3x3 → {macro.decoder_channels}"],
                   shape=shape_text(macro.decoder_channels, stride), colour=COLOURS["fusion"])
        arrow(ax, stages[stride].bottom, step.top, label=f"add: {shape_text(skip, stride)}",
              label_offset=(0.0, 0.0))
        arrow(ax, previous.left, step.right)
        previous = step
    head = box(ax, column(1), low_y, width, low_h, "classifier",
               [f"1x1 conv → {num_classes}"], shape=shape_text(num_classes, 4),
               colour=COLOURS["head"])
    arrow(ax, previous.left, head.right)
    logits = box(ax, column(0), low_y + 0.35, width, 1.0, "logits", ["bilinear upsample x4"],
                 shape=shape_text(num_classes, 1))
    arrow(ax, head.left, logits.right)
    note(ax, 0.2, top_y - 0.12, f"{SHAPE_LEGEND}.\nSkips are added, never\n"
                                "concatenated: the decoder\nstays narrow (seed Sec. 2.1).",
         size=7)
    note(ax, column(2), 0.33, "Yellow: searchable layers, one op per layer chosen among the "
                              "candidates (a MixedOp in the super-net); + x: the layer keeps a "
                              "shortcut (stride 1, in = out).", size=7)
    return fig


def supernet_diagram(space: SearchSpace | None = None, *, layer: int = 3,
                     alpha: Sequence[float] | None = None, latency=None,
                     seed: int = 0) -> Figure:
    """One searchable layer of the super-net with ProxylessNAS binary gates (Cai et al., ICLR 2019,
    Sec. 3.2): alpha -> p = softmax(alpha) -> a one-hot gate g sampled from p -> only that
    candidate runs; beside it the latency table row of the layer.

    ``space`` (default ``seed_space()``) and ``layer`` choose the layer; its candidate ops are the
    space's, by name. The gate is drawn by the library: a ``MixedOp`` of that layer (initialised as
    the search initialises it, or with ``alpha``) calls ``sample`` with a generator seeded by
    ``seed``. ``latency``: a ``LatencyTable`` (its row ``layer``) or one value in ms per candidate;
    without it the table shows the symbols LAT(l, i).
    """
    space = space if space is not None else seed_space()
    if not 0 <= layer < len(space):
        raise DiagramError(f"layer {layer} does not exist: space {space.name!r} has layers "
                           f"0 to {len(space) - 1}")
    spec = space.layers[layer]
    names = spec.ops
    with torch.random.fork_rng(devices=[]):  # the caller's random stream stays untouched
        torch.manual_seed(seed)
        mixed = MixedOp.from_spec(spec)
    if alpha is not None:
        if len(alpha) != len(names):
            raise DiagramError(f"alpha has {len(alpha)} values but layer {layer} has "
                               f"{len(names)} candidate ops {names}")
        mixed.alpha.data = torch.as_tensor(alpha, dtype=torch.float32).clone()
    active = mixed.sample(torch.Generator().manual_seed(seed))
    alphas = mixed.alpha.detach().tolist()
    p = mixed.probabilities().detach().tolist()
    row = _latency_row(latency, space, layer)

    k = len(names)
    step = min(0.52, 3.6 / k)  # inches per candidate row
    tops = [1.5 + (k - 0.2) * step - i * step for i in range(k)]  # top edge of each row
    vec_y, cell, gap = tops[0] + 0.75, 0.45, 1.1
    fig, ax = canvas(13.0, vec_y + 1.2, title=f"The super-net, one layer: binary gates "
                                              f"(layer {layer} of {len(space)}, {k} candidates)")
    # --- alpha -> softmax -> p -> sample -> g, as three vectors (op i in column i)
    vectors = [("α (architecture parameters)", [f"{a:+.3f}" for a in alphas]),
               ("p = softmax(α)", [f"{q:.3f}" for q in p]),
               ("g: one-hot, sampled from p", ["1" if i == active else "0" for i in range(k)])]
    lefts = [0.3 + v * (k * cell + gap) for v in range(3)]
    for (label, values), left in zip(vectors, lefts):
        ax.text(left, vec_y + cell + 0.08, label, fontsize=8, fontweight="bold", va="bottom")
        for i, value in enumerate(values):
            chosen = label.startswith("g") and i == active
            box(ax, left + i * cell, vec_y, cell, cell, "", colour="#c8e6c9" if chosen
                else COLOURS["search"], bold_edge=chosen)
            ax.text(left + (i + 0.5) * cell, vec_y + cell / 2, value, ha="center", va="center",
                    fontsize=6.5 if len(value) > 4 else 8.5, fontweight="bold" if chosen else None)
            ax.text(left + (i + 0.5) * cell, vec_y - 0.04, str(i), ha="center", va="top",
                    fontsize=6.5, color="#777777")
    for v, label in ((0, "softmax"), (1, "sample 1 op")):
        arrow(ax, (lefts[v] + k * cell + 0.1, vec_y + cell / 2),
              (lefts[v + 1] - 0.1, vec_y + cell / 2), label=label, label_offset=(0.0, 0.17))

    # --- the data path: x -> all candidates drawn, only the active one computed
    row_h = step * 0.8
    centre = (tops[0] + tops[-1] - row_h) / 2
    stride = space.output_strides()[layer] // spec.stride
    x_box = box(ax, 0.3, centre - 0.45, 1.5, 0.9, "layer input x", [],
                shape=shape_text(spec.in_ch, stride))
    op_x, op_w, gate_x = 2.6, 2.2, 5.15
    for i, (name, top) in enumerate(zip(names, tops)):
        on = i == active
        y = top - row_h
        op_box = box(ax, op_x, y, op_w, row_h, "", colour="#c8e6c9" if on else COLOURS["idle"],
                     bold_edge=on, dashed=not on)
        ax.text(op_x + op_w / 2, y + row_h / 2, f"{i}  {name}" + ("" if on else "  (not run)"),
                ha="center", va="center", fontsize=8.5, fontweight="bold" if on else None,
                color="black" if on else "#999999")
        green = "#2e7d32" if on else None
        arrow(ax, x_box.right, op_box.left, colour=green or "#bbbbbb", dashed=not on,
              width=1.8 if on else 0.8)
        gate = box(ax, gate_x, y + row_h * 0.12, 0.55, row_h * 0.76, "",
                   colour="#c8e6c9" if on else "white", bold_edge=on)
        ax.text(gate.x + gate.w / 2, gate.y + gate.h / 2, f"g={1 if on else 0}", ha="center",
                va="center", fontsize=7.5, fontweight="bold" if on else None,
                color="black" if on else "#999999")
        arrow(ax, op_box.right, gate.left, colour=green or "#cccccc", dashed=not on,
              width=1.8 if on else 0.8)
        arrow(ax, gate.right, (6.45, centre), colour=green or "#dddddd", width=1.8 if on else 0.6)
    total = node(ax, 6.6, centre, "Σ")
    ax.text(6.6, tops[-1] - row_h - 0.06, f"Σ_i g_i o_i(x) = o_{active}(x):\nonly the sampled "
                                          "op's output", ha="center", va="top", fontsize=7.5)
    source = total
    if spec.residual:  # ChainLayer adds the shortcut around the (mixed) op
        source = node(ax, 7.3, centre, "+")
        arrow(ax, total.right, source.left)
        path_arrow(ax, [x_box.top, (x_box.top[0], tops[0] + 0.22), (7.3, tops[0] + 0.22),
                        source.top], label="shortcut x (stride 1, in = out)", label_at=1)
    out_box = box(ax, source.x + source.w + 0.35, centre - 0.45, 1.3, 0.9, "layer output", [],
                  shape=shape_text(spec.out_ch, stride * spec.stride))
    arrow(ax, source.right, out_box.left)

    # --- the latency table row beside it
    table_x = 9.55
    ax.text(table_x, tops[0] + 0.1, f"latency table, layer {layer}", fontsize=8.5,
            fontweight="bold", va="bottom")
    for i, (name, top) in enumerate(zip(names, tops)):
        value = f"{row[i]:.3f} ms" if row is not None else f"LAT({layer}, {i})"
        on = i == active
        box(ax, table_x, top - row_h, 3.2, row_h, "", colour="#c8e6c9" if on
            else "white", bold_edge=on)
        ax.text(table_x + 0.12, top - row_h / 2, name, va="center", fontsize=8,
                fontweight="bold" if on else None)
        ax.text(table_x + 3.08, top - row_h / 2, value, va="center", ha="right", fontsize=8,
                fontweight="bold" if on else None)
    expected = (f" = {sum(q * t for q, t in zip(p, row)):.3f} ms" if row is not None else "")
    note(ax, table_x, tops[-1] - row_h - 0.1,
         f"sampled path costs LAT({layer}, {active});\nthe loss sees the expectation\n"
         f"E[LAT_{layer}] = Σ_i p_i LAT({layer}, i){expected}", size=7.5)
    start = ("α as the search initialises it, N(0, 0.001), so p starts uniform; "
             if alpha is None else "")
    note(ax, 0.3, 0.5, "Only the sampled op runs forward and backward, so a training step needs "
                       "the memory of one path; α gets its gradient through Eq. 4, which re-runs "
                       "the other ops without gradient\nin the backward pass. "
                       f"{start}gate drawn by MixedOp.sample (seed {seed}). {SHAPE_LEGEND}.",
         size=7.5)
    return fig


def _latency_row(latency, space: SearchSpace, layer: int) -> list[float] | None:
    """The layer's row of ``latency`` (a ``LatencyTable`` or a plain list of ms per op)."""
    if latency is None:
        return None
    table_space = getattr(latency, "space", space.name)
    if table_space != space.name:
        raise DiagramError(f"the latency table is for space {table_space!r}, not {space.name!r}: "
                           "build the table for this space (nas.latency.build_table)")
    row = list(latency.ms[layer]) if hasattr(latency, "ms") else list(latency)
    if len(row) != len(space.layers[layer].ops):
        raise DiagramError(f"{len(row)} latencies for layer {layer}, which has "
                           f"{len(space.layers[layer].ops)} candidate ops "
                           f"{space.layers[layer].ops}")
    return [float(value) for value in row]

"""Architecture diagrams of the hand-designed models (lessons 02 and 03): Fast-SCNN's two branches
and LR-ASPP's three-branch head on MobileNetV3.

Each function takes a built model (default: the one the lesson builds) and reads what it draws from
that object: channel counts, kernels, strides, dilations and block counts from its modules, output
shapes from one forward pass (``diagram_parts.trace_shapes``). Change the model and the picture
changes with it.
"""
from __future__ import annotations

from matplotlib.figure import Figure
from torch import nn

from segnas_lite.models import FastSCNN, LRASPP, fast_scnn, lraspp_mobilenetv3_large
from segnas_lite.models.layers import ConvBNAct, DepthwiseSeparable, InvertedResidual
from segnas_lite.teaching.plots.diagram_parts import (COLOURS, SHAPE_LEGEND, arrow, box, canvas,
                                                      conv_text, first_conv, lines_height, node,
                                                      note,
                                                      path_arrow, shape_text, trace_shapes)


def _block_text(module: nn.Module) -> str:
    """One line for a block of learning-to-downsample or the classifier."""
    if isinstance(module, DepthwiseSeparable):
        conv = first_conv(module)
        stride = f" s{conv.stride[0]}" if conv.stride[0] > 1 else ""
        k = conv.kernel_size[0]
        return f"DSConv {k}x{k}{stride} → {module.out_channels}"
    if isinstance(module, nn.Dropout):
        return f"dropout {module.p:g}"
    return conv_text(module)


def _bottleneck_stages(blocks: nn.Sequential) -> list[tuple[int, int, int, int, int]]:
    """``(count, expansion, out_channels, stride, last_index)`` per run of MobileNetV2 bottlenecks
    with the same output width (Fast-SCNN's global feature extractor: the paper's (c, t, n, s)
    rows); ``last_index`` is the run's last block in ``blocks``."""
    stages: list[list[int]] = []
    for index, block in enumerate(blocks):
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        expansion = convs[0].out_channels // convs[0].in_channels
        stride = max(conv.stride[0] for conv in convs)
        if stages and stages[-1][2] == block.out_channels and stride == 1:
            stages[-1][0] += 1
            stages[-1][4] = index
        else:
            stages.append([1, expansion, block.out_channels, stride, index])
    return [tuple(stage) for stage in stages]


def fast_scnn_diagram(model: FastSCNN | None = None, *,
                      image_size: tuple[int, int] = (256, 256)) -> Figure:
    """Fast-SCNN's four modules (Poudel et al., 2019, Fig. 1 and Table 1) as boxes and arrows.

    ``model``: a ``FastSCNN`` (default ``fast_scnn(num_classes=19)``, the paper's Cityscapes
    model). The 1/8 branch (spatial detail) skips to the feature fusion; the deep branch (context)
    goes down to 1/32 through the bottlenecks and the pyramid pooling module, then is upsampled and
    added.
    """
    model = model if model is not None else fast_scnn(num_classes=19)
    ltd, gfe = model.learning_to_downsample, model.global_feature_extractor
    fusion, classifier = model.feature_fusion, model.classifier
    modules = {f"block {i}": block for i, block in enumerate(gfe.bottlenecks)}
    modules.update({"ltd": ltd, "gfe": gfe, "fusion": fusion, "classifier": classifier,
                    "model": model})
    shapes = trace_shapes(model, modules, image_size=image_size)
    classes = shapes["model"][0]
    fig, ax = canvas(12.75, 4.7, title="Fast-SCNN: two branches that share their first layers")

    image = box(ax, 0.2, 2.6, 1.1, 0.9, "image", ["RGB"], shape=shape_text(3, 1))
    down = box(ax, 1.7, 2.25, 2.5, 1.75, "1. learning to downsample",
               [_block_text(block) for block in ltd], shape=shape_text(*shapes["ltd"]),
               colour=COLOURS["detail"])
    stages = _bottleneck_stages(gfe.bottlenecks)
    ppm = gfe.ppm
    bins = ", ".join(str(b) for b in ppm.bins)
    quarter = ppm.stages[0].out_channels
    deep = box(ax, 4.7, 0.3, 3.1, 1.95, "2. global feature extractor",
               [f"{n} bottlenecks t={t} s{s} → {shape_text(*shapes[f'block {last}'])}"
                for n, t, c, s, last in stages]
               + [f"pyramid pooling: bins {bins}, each 1x1 → {quarter}",
                  f"concat, 1x1 conv → {ppm.project.out_channels}"],
               shape=shape_text(*shapes["gfe"]), colour=COLOURS["context"])
    high_stride, low_stride = shapes["ltd"][1], shapes["gfe"][1]
    fuse = box(ax, 8.3, 2.25, 2.5, 1.75, "3. feature fusion",
               [f"1/{low_stride}: upsample x{low_stride // high_stride}",
                f"  {conv_text(fusion.low_depthwise)}, {conv_text(fusion.low_project)}",
                f"1/{high_stride}: {conv_text(fusion.high_project)}", "add, ReLU"],
               shape=shape_text(*shapes["fusion"]), colour=COLOURS["fusion"])
    blocks = list(classifier)
    convs = [b for b in blocks if isinstance(b, DepthwiseSeparable)]
    lines = [f"{len(convs)} x {_block_text(convs[0])}"] if convs else []
    lines += [_block_text(b) for b in blocks if not isinstance(b, DepthwiseSeparable)]
    head = box(ax, 8.3, 0.3, 2.5, 1.55, "4. classifier", lines,
               shape=shape_text(*shapes["classifier"]), colour=COLOURS["head"])
    logits = box(ax, 11.55, 0.62, 1.0, 0.9, "logits", ["per pixel"], shape=shape_text(classes, 1))

    arrow(ax, image.right, (down.x, image.right[1]))
    arrow(ax, (down.x + down.w, 3.6), (fuse.x, 3.6),
          label=f"1/{high_stride} branch (spatial detail): {shape_text(*shapes['ltd'])}")
    path_arrow(ax, [down.bottom, (down.bottom[0], 1.3), (deep.x, 1.3)],
               label=shape_text(*shapes["ltd"]), label_at=1)
    path_arrow(ax, [(deep.x + deep.w - 0.3, deep.y + deep.h), (deep.x + deep.w - 0.3, 2.65),
                    (fuse.x, 2.65)],
               label=f"context: {shape_text(*shapes['gfe'])}", label_at=1,
               label_offset=(0.05, 0.13))
    arrow(ax, fuse.bottom, head.top)
    arrow(ax, head.right, (logits.x, head.right[1]),
          label=f"bilinear x{shapes['classifier'][1]}", label_offset=(0.0, 0.16))
    note(ax, 0.2, 1.05, f"{SHAPE_LEGEND}.\nShapes traced from FastSCNN.forward on a\n"
                        f"{image_size[0]} x {image_size[1]} image; t = expansion, s = stride.",
         size=7.5)
    return fig


def _backbone_groups(backbone: nn.Sequential, strides: dict[str, tuple[int, int]]
                     ) -> list[tuple[int, int, str]]:
    """``(first, last, text)`` for runs of MobileNetV3 layers with the same output stride and the
    same dilation; ``strides`` maps ``str(index)`` to the traced (channels, stride)."""
    groups: list[list] = []
    for index, layer in enumerate(backbone):
        channels, stride = strides[str(index)]
        dilation = max(m.dilation[0] for m in layer.modules() if isinstance(m, nn.Conv2d))
        kind = "bneck" if isinstance(layer, InvertedResidual) else "conv"
        key = (stride, dilation, kind)
        if groups and groups[-1][2] == key and kind == "bneck":
            groups[-1][1] = index
            if channels not in groups[-1][3]:
                groups[-1][3].append(channels)
        else:
            groups.append([index, index, key, [channels], layer])
    out = []
    for first, last, (stride, dilation, kind), channels, layer in groups:
        width = "/".join(str(c) for c in channels)
        if kind == "conv" and isinstance(layer, ConvBNAct):
            op = conv_text(layer).rsplit(" → ", 1)[0]
        else:
            op = "bneck" + (f" dil {dilation}" if dilation > 1 else "")
        where = f"{first}" if first == last else f"{first}-{last}"
        out.append((first, last, f"{where}: {op} → {width}, H/{stride}"))
    return out


def lraspp_diagram(model: LRASPP | None = None, *,
                   image_size: tuple[int, int] = (256, 256)) -> Figure:
    """LR-ASPP on MobileNetV3 (Howard et al., 2019, Sec. 6.4 and Fig. 10) as boxes and arrows.

    ``model``: an ``LRASPP`` (default ``lraspp_mobilenetv3_large(num_classes=21)``, torchvision's
    layout). Left: the backbone's layers grouped by output stride, with the 1/8 tap
    (``backbone.low_index``) and the dilated tail (output stride 16). Right: the head,
    ``logits = up(W3 up(F1 x F2) + F4)``.
    """
    model = model if model is not None else lraspp_mobilenetv3_large(num_classes=21)
    backbone, head = model.backbone, model.classifier
    modules = {str(i): layer for i, layer in enumerate(backbone)}
    modules.update({"cbr": head.cbr, "scale": head.scale, "low_classifier": head.low_classifier,
                    "high_classifier": head.high_classifier, "model": model})
    shapes = trace_shapes(model, modules, image_size=image_size)
    low_ch, low_stride = shapes[str(backbone.low_index)]
    high_ch, high_stride = shapes[str(len(backbone) - 1)]
    classes = shapes["model"][0]
    fig, ax = canvas(14.0, 5.0, title=f"LR-ASPP: a MobileNetV3 backbone (output stride "
                                      f"{high_stride}) and a three-branch head")

    image = box(ax, 0.2, 3.55, 1.0, 0.85, "image", ["RGB"], shape=shape_text(3, 1))
    groups = _backbone_groups(backbone, shapes)
    lines = [text for _, _, text in groups]
    low_line = next(i for i, (first, last, _) in enumerate(groups)
                    if first <= backbone.low_index <= last)
    height = lines_height(len(lines) + 1)
    spine = box(ax, 1.55, 4.5 - height, 3.25, height, "MobileNetV3 backbone",
                ["layer: op → channels, size"] + lines,
                shape=f"low {shape_text(low_ch, low_stride)}, "
                      f"high {shape_text(high_ch, high_stride)}",
                colour=COLOURS["detail"])
    arrow(ax, image.right, (spine.x, image.right[1]))

    hx = 6.2  # left edge of the head's boxes
    f4 = box(ax, hx, 3.5, 2.7, 0.9, "F4 = low_classifier", [conv_text(head.low_classifier)],
             shape=shape_text(*shapes["low_classifier"]), colour=COLOURS["head"])
    f1 = box(ax, hx, 2.0, 2.7, 0.9, "F1 = cbr", [f"1x1 conv, BN, ReLU → {shapes['cbr'][0]}"],
             shape=shape_text(*shapes["cbr"]), colour=COLOURS["context"])
    f2 = box(ax, hx, 0.35, 2.7, 1.15, "F2 = scale", ["global avg pool (paper: 49x49)",
                                                     "1x1 conv, sigmoid"],
             shape=f"{shapes['scale'][0]} x 1 x 1", colour=COLOURS["context"])
    tap_y = spine.line_y(1 + low_line)
    path_arrow(ax, [(spine.x + spine.w, tap_y), (hx - 0.5, tap_y), (hx - 0.5, f4.left[1]), f4.left],
               label=f"low: {shape_text(low_ch, low_stride)}", label_at=0,
               label_offset=(0.0, 0.13))
    ax.text(spine.x + spine.w - 0.08, tap_y, f"← tap: layer {backbone.low_index}", ha="right",
            va="center", fontsize=7, color="#2e7d32", fontweight="bold")
    high_y = spine.line_y(len(lines))
    path_arrow(ax, [(spine.x + spine.w, high_y), (hx - 0.35, high_y), (hx - 0.35, f1.left[1]),
                    f1.left],
               label=f"high: {shape_text(high_ch, high_stride)}", label_at=0,
               label_offset=(0.0, 0.13))
    path_arrow(ax, [(hx - 0.35, f1.left[1]), (hx - 0.35, f2.left[1]), f2.left])

    times = node(ax, hx + 3.2, 1.7, "×")
    arrow(ax, f1.right, (times.x + 0.03, times.y + times.h - 0.03))
    arrow(ax, f2.right, (times.x + 0.03, times.y + 0.03))
    f3 = box(ax, hx + 3.75, 1.2, 2.05, 1.0, "F3 = high_classifier",
             [f"upsample to H/{shapes['high_classifier'][1]}", conv_text(head.high_classifier)],
             shape=shape_text(*shapes["high_classifier"]), colour=COLOURS["head"])
    arrow(ax, times.right, f3.left)
    plus = node(ax, hx + 6.15, f4.left[1], "+")
    arrow(ax, f4.right, plus.left)
    path_arrow(ax, [f3.right, (plus.x + plus.w / 2, f3.right[1]), plus.bottom])
    logits = box(ax, hx + 6.6, 2.4, 1.0, 0.85, "logits", ["per pixel"],
                 shape=shape_text(classes, 1))
    path_arrow(ax, [plus.top, (plus.x + plus.w / 2, 4.55), (logits.top[0], 4.55), logits.top],
               label=f"bilinear x{shapes['low_classifier'][1]}", label_at=1,
               label_offset=(0.0, 0.13))
    note(ax, hx + 3.3, 0.95, "F2 gates F1 channel by channel\n(one weight per channel, from global "
                        "context).", size=7)
    note(ax, 1.55, spine.y - 0.15, f"{SHAPE_LEGEND}.\nShapes traced from LRASPP.forward on a "
                                   f"{image_size[0]} x {image_size[1]} image;\n"
                                   "dil = dilation (the tail keeps stride 1).", size=7.5)
    return fig

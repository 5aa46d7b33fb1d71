"""Answer key for lesson 03 · MobileNetV3 and LR-ASPP (lessons/03_mobilenetv3_lraspp.md).

Run it from the repository root::

    python lessons/solutions/03_mobilenetv3_lraspp.py          # quick: few timed runs, seconds
    python lessons/solutions/03_mobilenetv3_lraspp.py --full   # the notebook's workshop settings

Each ``exercise_N`` does what exercise N of the lesson asks, with the library, and returns what it
measured as a dict; its docstring restates the question and gives the answer in words. Quick mode is
forced on when ``CI`` or ``SEGNAS_QUICK=1`` is set, as in the notebooks.
"""
from __future__ import annotations

import sys
from pathlib import Path
import copy

import torch
import torch.nn.functional as F
from torch import nn

from segnas_lite.data import open_dataset
from segnas_lite.deploy.bench import benchmark_torch
from segnas_lite.models import mobilenet_v3_large
from segnas_lite.zoo import build_model
from segnas_lite.models.mobilenetv3 import LARGE_TABLE
from segnas_lite.teaching.notebook_utils import default_reference_weights, setup, trained_model
from segnas_lite.models.summary import summarize
from segnas_lite.timing import LoadMonitor

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared report
from report import run  # noqa: E402

SEED = 0
THREADS = 2  # benchmark_torch's default, as in the notebook
# The parameters cell of notebooks/03_mobilenetv3_lraspp.ipynb, and its quick (CI-sized) settings.
NOTEBOOK = dict(image_size=128, epochs=6, train_length=400, val_length=64)
QUICK = dict(image_size=64, epochs=3, train_length=160, val_length=16)


def _train_model_name(quick: bool) -> str:
    """The notebook's TRAIN_MODEL: the Small variant in quick mode, Large in the workshop run."""
    return "lraspp_mobilenetv3_small" if quick else "lraspp_mobilenetv3_large"


def exercise_1(*, quick: bool = True) -> dict:
    """How many parameters does reduced_tail=True (halving the last stage) save in LR-ASPP-Large?

    Answer: nearly half of LR-ASPP-Large's parameters (``saved_share``). The reduced tail halves
    the channels of the last stage (blocks 13-15: 160 -> 80 output channels, expansion 960 -> 480
    after the first block) and of the final 1x1 conv (960 -> 480). Those layers are the widest of
    the network, and a 1x1 conv costs ``C_in * C_out`` weights, so halving both sides of one
    quarters it. The head shrinks too: F1 and F2 are 1x1 convs from the backbone's last map to
    128 channels, so each loses ``480 * 128`` weights (``head_saved_expected``). The rows of
    ``summarize`` show where the savings are (``saved_by_row``). The FLOPs drop by a smaller share
    (``flops_saved_share``): the early layers, cheap in parameters but run at high resolution,
    keep their whole cost. The MobileNetV3 paper (Howard et al., 2019,
    Sec. 6.4) keeps this reduction for segmentation because it costs almost no mIoU.
    """
    setup(quick=quick, seed=SEED)
    torch.manual_seed(SEED)
    full = build_model("lraspp_mobilenetv3_large", num_classes=2)
    reduced = build_model("lraspp_mobilenetv3_large", num_classes=2, reduced_tail=True)
    full_summary = summarize(full, input_size=(64, 64))
    reduced_summary = summarize(reduced, input_size=(64, 64))
    reduced_rows = {row.name: row.params for row in reduced_summary.rows}
    saved_by_row = {row.name: row.params - reduced_rows[row.name] for row in full_summary.rows}
    saved = full_summary.total_params - reduced_summary.total_params
    flops_saved = full_summary.flops - reduced_summary.flops  # at 64 x 64: the share barely
    # depends on the size, because (almost) all FLOPs grow with the pixel count
    channel_drop = full.backbone.out_channels - reduced.backbone.out_channels
    result = {
        "params_full_tail": full_summary.total_params,
        "params_reduced_tail": reduced_summary.total_params,
        "saved": saved,
        "saved_share": saved / full_summary.total_params,
        "saved_by_row": saved_by_row,
        "flops_saved_share": flops_saved / full_summary.flops,
        "last_channels": (full.backbone.out_channels, reduced.backbone.out_channels),
        "head_saved_expected": 2 * channel_drop * 128,  # F1 and F2: two 1x1 convs to 128 channels
    }
    result["summary"] = (f"{full_summary.total_params:,} -> {reduced_summary.total_params:,} "
                         f"parameters: {saved:,} saved ({100 * result['saved_share']:.0f}%), of "
                         f"which {saved_by_row['classifier']:,} in the head")
    return result


class _NoGate(nn.Module):
    """Stands in for the head's ``scale`` branch: F2 = 1 for every channel, whatever the image."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, high: torch.Tensor) -> torch.Tensor:
        return high.new_ones(high.shape[0], self.channels, 1, 1)  # the shape of the real gate


def exercise_2(*, quick: bool = True) -> dict:
    """Replace F2 by ones (no gate): which term of the equation disappears, what is lost with it?

    Answer: with F2 = 1 the product ``F1 * F2`` is just F1, so the multiplicative term (the gate)
    disappears and ``logits = up(W3 * up(F1) + F4)``: the function checks that the gate-less head
    computes exactly this. F2 = sigmoid(W2 * GAP(H)) is the only place where the head sees the
    *whole image at once*: a global average of the 1/16 map turned into one weight per channel
    (squeeze-and-excite style attention, Hu et al., 2018). It lets image-level context (what kind
    of picture this is, its lighting, how much of it the person fills) turn channels up or down
    everywhere. Without it every output pixel depends only on its neighbourhood in H (the
    backbone's receptive field) and on the 1/8 detail of F4. The function takes the notebook's
    trained model (section 6: LR-ASPP-Small in quick mode, -Large in the workshop run; an untrained
    MobileNetV3 in eval mode has near-zero activations and a constant gate of 0.5, which would show
    nothing), copies it and swaps its ``scale`` branch for ones. On 8 validation images the gate
    differs from image to image (``gate_std_across_images``: information the copy no longer gets),
    the logits change, and the copy has ``C_high * 128`` fewer parameters (W2: 960 x 128 for Large,
    576 x 128 for Small). Retraining without the gate would tell how much that context is worth.
    """
    settings = setup(quick=quick, seed=SEED)
    run = QUICK if settings.quick else NOTEBOOK
    model, _ = trained_model(_train_model_name(settings.quick), seed=SEED, **run)
    no_gate = copy.deepcopy(model)  # our own copy of the head: the original stays as it was
    no_gate.classifier.scale = _NoGate(model.classifier.high_classifier.in_channels)

    val_set = open_dataset("synthetic", image_size=run["image_size"], split="val", seed=SEED,
                           length=run["val_length"])
    images = torch.stack([val_set[i][0] for i in range(8)])
    head = model.classifier
    with torch.no_grad():
        low, high = model.backbone(images)
        gate = head.scale(high)  # F2: (8, 128, 1, 1), one weight per channel and image
        with_gate, without_gate = model(images), no_gate(images)
        f1 = head.cbr(high)
        f3 = head.high_classifier(F.interpolate(f1, size=low.shape[-2:], mode="bilinear",
                                                align_corners=False))
        by_hand = F.interpolate(f3 + head.low_classifier(low), size=images.shape[-2:],
                                mode="bilinear", align_corners=False)  # up(W3 up(F1) + F4)
    result = {
        "model": _train_model_name(settings.quick),
        "gate_shape": tuple(gate.shape),
        "gate_range": (float(gate.min()), float(gate.max())),
        "gate_std_across_images": float(gate.std(dim=0).mean()),
        "no_gate_equals_formula_without_F2": bool(torch.allclose(without_gate, by_hand, atol=1e-5)),
        "logit_change_without_gate": float((with_gate - without_gate).abs().max()),
        "high_channels": model.backbone.out_channels,
        "params_removed": (sum(p.numel() for p in model.parameters())
                           - sum(p.numel() for p in no_gate.parameters())),
    }
    result["summary"] = (f"F2 {result['gate_shape']} in [{result['gate_range'][0]:.2f}, "
                         f"{result['gate_range'][1]:.2f}], varies between images (std "
                         f"{result['gate_std_across_images']:.3f} per channel); without it logits ="
                         f" up(W3 up(F1) + F4): {result['no_gate_equals_formula_without_F2']}")
    return result


def exercise_3(*, quick: bool = True) -> dict:
    """Why is the 1/8 tap layer 4 and not layer 6?

    Answer: not because of shapes: layers 4, 5 and 6 all give a (40, 28, 28) map at stride 8 for a
    224 px input, so the head's ``low_classifier`` (a 1x1 conv from 40 channels) fits any of them
    and even loads the same weights without an error. The choice is torchvision's rule:
    ``low_index`` is the block that *enters* stride 8 (the stride-2 row that brings the running
    stride to 8; torchvision takes ``stage_indices[-4]``, where ``stage_indices`` lists the stem,
    the stride-2 blocks and the last layer), which is block 4 of MobileNetV3-Large. Layer 6, the
    end of the stride-8 stage, would be a reasonable design too (two more blocks: deeper, more
    semantic features, as DeepLabV3+ taps the end of a stage), but weights trained with the tap at
    layer 4 expect layer 4's features. The function moves the tap to layer 6 in a copy of the
    model: same parameters, same shapes, and a different output. With the reference file of
    notebook section 4 (when present) the tap at 4 reproduces torchvision's output (difference
    ~0), the tap at 6 does not.
    """
    setup(quick=quick, seed=SEED)
    backbone = mobilenet_v3_large().eval()
    shapes = {}
    with torch.no_grad():
        x = torch.zeros(1, 3, 224, 224)
        for index, layer in enumerate(backbone):
            x = layer(x)
            shapes[index] = tuple(x.shape[1:])
    stride, enters_stride_8 = 2, None  # the stem conv has stride 2
    for index, spec in enumerate(LARGE_TABLE, start=1):  # features index i = table row i
        stride *= spec.stride
        if stride == 8 and enters_stride_8 is None:
            enters_stride_8 = index

    torch.manual_seed(SEED)
    model = build_model("lraspp_mobilenetv3_large", num_classes=21).eval()
    moved = copy.deepcopy(model)
    moved.backbone.low_index = 6  # same weights, the 1/8 features taken two blocks later
    reference_path = default_reference_weights()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(SEED))
    reference = None
    if reference_path.is_file():
        reference = torch.load(reference_path, map_location="cpu", weights_only=True)
        for m in (model, moved):
            m.load_state_dict(reference["state_dict"], strict=True)
        x = reference["input"]
    with torch.no_grad():
        out_4, out_6 = model(x), moved(x)
    result = {
        "low_index": backbone.low_index,
        "block_entering_stride_8": enters_stride_8,
        "shapes_layers_4_5_6": [shapes[i] for i in (4, 5, 6)],
        "output_change_tap_6": float((out_4 - out_6).abs().max()),
        "reference_file": str(reference_path) if reference is not None else None,
        "reference_difference_tap_4": (float((out_4 - reference["output"]).abs().max())
                                       if reference is not None else None),
        "reference_difference_tap_6": (float((out_6 - reference["output"]).abs().max())
                                       if reference is not None else None),
    }
    result["summary"] = (f"layers 4-6 all {shapes[4]}; the tap is layer {backbone.low_index}, the "
                         f"block entering stride 8 ({enters_stride_8}); moving it to 6 changes the "
                         f"output by up to {result['output_change_tap_6']:.3f}"
                         + ("" if reference is None else
                            f"; vs torchvision: {result['reference_difference_tap_4']:.1e} (tap 4),"
                            f" {result['reference_difference_tap_6']:.1e} (tap 6)"))
    return result


def exercise_4(*, quick: bool = True) -> dict:
    """Time LR-ASPP and Fast-SCNN with benchmark_torch at 256 and 512 px: does the ranking stay?

    Answer: look at the FLOPs first (``gflops``): both models' FLOPs grow with the pixel count (x4
    from 256 to 512), so their FLOP ratio is the same at both sizes and a purely compute-bound
    ranking would not change. Latency is not only compute: every layer call has a fixed cost
    (dispatch, memory allocation, waking the threads), and MobileNetV3 has many small layers
    (squeeze-excite branches, hard-swish), so at small inputs that overhead weighs more, while at
    large inputs the FLOPs and the memory traffic of the big early maps decide. LR-ASPP-Large
    (3.2 M parameters, the workshop model) needs more than twice Fast-SCNN's FLOPs and is normally
    the slower one at both sizes, so its ranking stays; LR-ASPP-Small (quick mode, the notebook's
    quick TRAIN_MODEL) has somewhat fewer FLOPs than Fast-SCNN, and such a close pair can swap
    places between sizes, machines or thread counts. The function returns the measured
    ``ranking`` per size and whether it is the same. The lesson to keep: never carry a latency
    ranking from one input size (or one CPU, or one thread count) to another; that is why the
    search of notebooks 05-06 measures latency at the deployment size on the target CPU.
    Quick mode times only a few runs per model (noisy); ``--full`` uses the notebook's 30 runs.
    ``timing.LoadMonitor`` reports whether other programs used the CPU meanwhile
    (``machine_busy``): then the numbers, and often the ranking, mean nothing.
    """
    settings = setup(quick=quick, seed=SEED)
    names = (_train_model_name(settings.quick), "fast_scnn")
    sizes = (256, 512)
    warmup, runs = (1, 3) if settings.quick else (5, 30)
    models = {}
    for name in names:
        torch.manual_seed(SEED)
        models[name] = build_model(name, num_classes=2).eval()  # the weights do not set the speed
    median_ms, gflops = {}, {}
    with LoadMonitor(warn=False, what="the LR-ASPP / Fast-SCNN timing") as monitor:
        for name, model in models.items():
            for size in sizes:
                timing = benchmark_torch(model, input_size=(size, size), threads=THREADS,
                                         warmup=warmup, runs=runs)
                median_ms[f"{name} @ {size}"] = timing.median_ms
    for name, model in models.items():
        for size in sizes:
            gflops[f"{name} @ {size}"] = summarize(model, input_size=(size, size)).gflops
    ranking = {size: sorted(names, key=lambda name: median_ms[f"{name} @ {size}"])
               for size in sizes}  # fastest first
    result = {
        "threads": THREADS,
        "runs": runs,
        "median_ms": median_ms,
        "gflops": gflops,
        "ranking": ranking,
        "same_ranking": ranking[256] == ranking[512],
        "machine_busy": monitor.report.busy,
        "other_processes_cores": monitor.report.other_cores,
    }
    result["summary"] = ("fastest first: " + "; ".join(f"{size} px: {' < '.join(ranking[size])}"
                                                        for size in sizes)
                         + f" (same ranking: {result['same_ranking']})"
                         + ("; the machine was busy: do not trust these" if monitor.report.busy
                            else ""))
    return result


EXERCISES = (exercise_1, exercise_2, exercise_3, exercise_4)


def main(argv=None) -> None:
    run(EXERCISES, lesson="03", argv=argv)


if __name__ == "__main__":
    main()

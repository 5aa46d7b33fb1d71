"""Answer key for lesson 02 · Fast-SCNN, block by block (lessons/02_fast_scnn.md).

Run it from the repository root::

    python lessons/solutions/02_fast_scnn.py          # quick: tiny settings, well under a minute
    python lessons/solutions/02_fast_scnn.py --full   # the workshop-sized settings of the notebook

Each ``exercise_N`` does what exercise N of the lesson asks, with the library, and returns what it
measured as a dict; its docstring restates the question and gives the answer in words. Trained
models go through the notebooks' cache (``$SEGNAS_CACHE``). Quick mode is forced on when ``CI`` or
``SEGNAS_QUICK=1`` is set, as in the notebooks.
"""
from __future__ import annotations

import sys
from pathlib import Path
import copy
import functools
import math

import torch
from torch import nn

from segnas_lite.data import open_dataset
from segnas_lite.train.engine import TrainConfig, train
from segnas_lite.train.losses import segmentation_loss
from segnas_lite.zoo import build_model
from segnas_lite.models.fast_scnn import FeatureFusion
from segnas_lite.teaching.notebook_utils import cache_key, cached, setup, trained_model
from segnas_lite.models.summary import summarize

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared report
from report import run  # noqa: E402

SEED = 0
# The parameters cell of notebooks/02_fast_scnn.ipynb, and its quick (CI-sized) settings: the same
# as notebook 00's, so the quick Fast-SCNN comes from the cache when notebook 00 or 02 ran.
NOTEBOOK = dict(image_size=128, epochs=6, train_length=400, val_length=64)
QUICK = dict(image_size=64, epochs=3, train_length=160, val_length=16)


def exercise_1(*, quick: bool = True) -> dict:
    """What does build_model("fast_scnn", num_classes=2, aux=True) return in train() mode?

    Answer: a pair ``(logits, [aux_1_8, aux_1_32])``: the main logits and a list of two auxiliary
    logits, all three of shape ``(N, 2, H, W)`` (each is upsampled to the input size). The paper
    (Poudel et al., 2019, Sec. 4.1) adds auxiliary losses at the end of learning-to-downsample
    (the 1/8 map, 64 channels) and of the global feature extractor (the 1/32 map, 128 channels),
    weighted 0.4: each aux head (3x3 conv, BN, ReLU, dropout, 1x1 conv to the classes) must
    classify the pixels from its own branch, which sends a direct gradient into the early layers.
    ``losses.segmentation_loss`` unpacks the pair: ``CE(main) + 0.4 * (CE(aux_1_8) + CE(aux_1_32))``
    (the function checks this identity). In ``eval()`` mode the same model returns only the logits
    tensor: the aux heads are training-only, so their parameters (``aux_params``) cost nothing at
    inference and do not appear in a graph exported in eval mode.
    """
    setup(quick=quick, seed=SEED)
    torch.manual_seed(SEED)
    model = build_model("fast_scnn", num_classes=2, aux=True).train()
    images = torch.randn(2, 3, 64, 96)
    masks = torch.randint(0, 2, (2, 64, 96))
    output = model(images)
    logits, aux = output
    loss = segmentation_loss(output, masks, config=TrainConfig(aux_weight=0.4))
    by_hand = (nn.functional.cross_entropy(logits, masks)
               + 0.4 * sum(nn.functional.cross_entropy(a, masks) for a in aux))
    with torch.no_grad():
        eval_output = model.eval()(images)
    result = {
        "train_output_type": f"{type(output).__name__}(tensor, {type(aux).__name__} of {len(aux)})",
        "logits_shape": tuple(logits.shape),
        "aux_shapes": [tuple(a.shape) for a in aux],
        "eval_output_is_tensor": isinstance(eval_output, torch.Tensor),
        "eval_output_shape": tuple(eval_output.shape),
        "loss": loss.item(),
        "loss_by_hand": by_hand.item(),
        "aux_params": sum(p.numel() for p in model.aux_heads.parameters()),
    }
    result["summary"] = (f"train(): (logits {result['logits_shape']}, "
                         f"[aux {result['aux_shapes'][0]}, aux {result['aux_shapes'][1]}]); "
                         f"eval(): one tensor; loss = main + 0.4 * aux: {result['loss']:.4f} = "
                         f"{result['loss_by_hand']:.4f}")
    return result


def exercise_2(*, quick: bool = True) -> dict:
    """FeatureFusion(dilation=1) vs the default dilation 4: why do parameters and FLOPs not change?

    Answer: they are identical. Dilation only changes *where* the 3x3 depthwise kernel reads: the
    9 taps are spread 4 positions apart instead of 1 (padding grows with them, so the map keeps its
    size). The number of weights (9 per channel) and the multiply-adds per output position (9 per
    channel) stay the same, so parameters and FLOPs are equal; the two modules even share one state
    dict layout (the dilation-1 module loads the other's weights). What changes is the receptive
    field: the kernel now spans ``(3 - 1) * d + 1`` positions of the 1/8 map, 9 instead of 3, i.e.
    72 instead of 24 input pixels. This matters because the upsampled 1/32 branch is smooth: a
    3x3 window over it sees almost one value, the dilated one mixes genuinely different context
    (the paper's Table 3 uses dilation 4). With the same weights the outputs therefore differ.
    In the real model it is also cheap: the depthwise conv is a tiny share of the fusion's FLOPs;
    the two 1x1 projections dominate.
    """
    settings = setup(quick=quick, seed=SEED)
    size = (256, 512) if settings.quick else (512, 1024)
    torch.manual_seed(SEED)
    model = build_model("fast_scnn", num_classes=19).eval()
    undilated = copy.deepcopy(model)
    undilated.feature_fusion = FeatureFusion(dilation=1)
    undilated.feature_fusion.load_state_dict(model.feature_fusion.state_dict())  # same weights
    undilated.eval()

    def fusion_row(m: nn.Module):
        """The feature_fusion row of ``summarize``: its parameters and FLOPs."""
        rows = summarize(m, input_size=size).rows
        return next(row for row in rows if row.name == "feature_fusion")

    row_4, row_1 = fusion_row(model), fusion_row(undilated)
    with torch.no_grad():  # the same inputs through both fusion modules
        high = torch.randn(1, 64, size[0] // 8, size[1] // 8)
        low = torch.randn(1, 128, size[0] // 32, size[1] // 32)
        difference = (model.feature_fusion(high, low)
                      - undilated.feature_fusion(high, low)).abs().max().item()
    extent = {d: (3 - 1) * d + 1 for d in (1, 4)}  # positions of the 1/8 map a 3x3 kernel spans
    result = {
        "input_size": size,
        "params_dilation_4": row_4.params,
        "params_dilation_1": row_1.params,
        "flops_dilation_4": row_4.flops,
        "flops_dilation_1": row_1.flops,
        "output_difference_same_weights": difference,
        "kernel_extent_input_pixels": {f"dilation {d}": 8 * e for d, e in extent.items()},
    }
    result["summary"] = (f"feature_fusion: {row_4.params:,} vs {row_1.params:,} parameters, "
                         f"{row_4.flops / 1e6:.1f} vs {row_1.flops / 1e6:.1f} MFLOPs; outputs with "
                         f"the same weights differ by up to {difference:.3f}; the kernel spans "
                         f"{8 * extent[4]} vs {8 * extent[1]} input pixels")
    return result


def exercise_3(*, quick: bool = True) -> dict:
    """At which input size does Fast-SCNN (19 classes, as in the widget) exceed 1 GFLOP?

    Answer: the widget's steps are 128, 256, 512 and 1024 px squares. The parameters stay, the
    FLOPs grow with the number of pixels (x4 per doubling of the side), so Fast-SCNN is well under
    1 GFLOP at 256 x 256 and over it at 512 x 512 (notebook 02 prints 3.36 GFLOPs at 512 x 1024,
    so about half of that at 512 x 512): 512 is the first widget size above 1 GFLOP. Between two
    widget steps the crossing follows from the proportionality,
    side = 256 * sqrt(1 / GFLOPs(256)), roughly 400 px. The function computes that estimate and
    checks it on the multiples of 32 around it (sizes the network divides evenly), giving the first
    square side over 1 GFLOP. FLOPs here count one multiply-add as 2 (``summary.py``); in the GMAC
    convention of many papers the same network crosses "1 G" at sqrt(2) times that side.
    """
    setup(quick=quick, seed=SEED)
    torch.manual_seed(SEED)
    model = build_model("fast_scnn", num_classes=19).eval()

    @functools.cache  # each size is counted once
    def gflops(side: int) -> float:
        return summarize(model, input_size=(side, side)).gflops

    widget_sizes = (128, 256, 512, 1024)
    at_widget = {side: gflops(side) for side in widget_sizes}
    first_widget_over = next((side for side in widget_sizes if at_widget[side] > 1.0), None)
    below = max(side for side in widget_sizes if at_widget[side] <= 1.0)
    estimate = below * math.sqrt(1.0 / at_widget[below])  # FLOPs proportional to pixels
    side = 32 * math.floor(estimate / 32)
    while gflops(side) > 1.0:  # step down if the estimate overshot ...
        side -= 32
    while gflops(side) <= 1.0:  # ... then up to the first multiple of 32 over 1 GFLOP
        side += 32
    result = {
        "gflops_at_widget_sizes": at_widget,
        "first_widget_size_over_1_gflop": first_widget_over,
        "estimated_side": estimate,
        "first_side_over_1_gflop": side,
        "gflops_at_that_side": gflops(side),
        "gflops_one_step_below": gflops(side - 32),
    }
    result["summary"] = (f"widget: {at_widget[below]:.2f} GFLOPs at {below}, "
                         f"{at_widget[first_widget_over]:.2f} at {first_widget_over}; 1 GFLOP is "
                         f"crossed at about {estimate:.0f} px, the first multiple of 32 over it is "
                         f"{side} x {side} ({result['gflops_at_that_side']:.3f} GFLOPs)")
    return result


def _train_without_ppm(seed: int, run: dict) -> list[dict]:
    """Train Fast-SCNN without its PPM exactly as ``trained_model`` trains the original (same seed,
    so the same initial weights; batch 8, SGD, lr 0.05, the same data order) and return the
    history; cached like the notebooks' results."""

    def compute() -> dict:
        torch.manual_seed(seed)
        model = build_model("fast_scnn", num_classes=2)
        model.global_feature_extractor.ppm = nn.Identity()  # 128 -> 128 channels: it fits
        train_set = open_dataset("synthetic", image_size=run["image_size"], split="train",
                                 seed=seed, length=run["train_length"])
        val_set = open_dataset("synthetic", image_size=run["image_size"], split="val", seed=seed,
                               length=run["val_length"])
        config = TrainConfig(epochs=run["epochs"], batch_size=8, lr=0.05, seed=seed)
        return {"history": train(model, train_set, val_set, config=config, num_classes=2).history}

    return cached(cache_key("solution02_fast_scnn_no_ppm", seed=seed, **run), compute)["history"]


def exercise_4(*, quick: bool = True) -> dict:
    """Without the PPM (identity in a copy of the model): how does the mIoU change, same training?

    Answer: replacing ``global_feature_extractor.ppm`` by ``nn.Identity()`` works because the PPM
    maps 128 to 128 channels; it removes the PPM's parameters (``ppm_params``: the four 1x1 branch
    convs and the 256 -> 128 projection, about 4% of the model). Both models start from the same
    weights and train with the same recipe, data order and seed. What the PPM adds is context:
    every 1/32 position gets the average of the whole image, its halves, thirds and sixths
    (PSPNet, Zhao et al., 2017). On the notebook's 128 px portraits the 1/32 map is only 4 x 4 and
    the receptive field of the nine bottlenecks is already larger than the image, so expect a small
    difference; judge it against the seed-to-seed spread, which ``--full`` measures with two seeds
    (``spread_*``). The PPM earns its place on large inputs (1024 x 2048 street scenes, a 32 x 64
    map at 1/32), where a position's receptive field does not cover the image. Quick mode uses the
    notebook's quick settings (60 steps at 64 px, one seed): its numbers are a smoke test, not an
    answer (the lesson's hint: run with ``QUICK = False``, here ``--full``).
    """
    settings = setup(quick=quick, seed=SEED)
    run = QUICK if settings.quick else NOTEBOOK
    seeds = (SEED,) if settings.quick else (SEED, SEED + 1)
    with_ppm, without_ppm = [], []
    for seed in seeds:
        model, history = trained_model("fast_scnn", seed=seed, **run)  # as notebook 02 trains it
        with_ppm.append(history[-1]["val_miou"])
        without_ppm.append(_train_without_ppm(seed, run)[-1]["val_miou"])
    no_ppm = copy.deepcopy(model)  # "a copy of the model" with the identity in place of the PPM
    no_ppm.global_feature_extractor.ppm = nn.Identity()
    mean_with, mean_without = sum(with_ppm) / len(with_ppm), sum(without_ppm) / len(without_ppm)
    result = {
        "settings": run,
        "seeds": seeds,
        "miou_with_ppm": with_ppm,
        "miou_without_ppm": without_ppm,
        "mean_difference": mean_with - mean_without,
        "spread_with_ppm": max(with_ppm) - min(with_ppm),
        "spread_without_ppm": max(without_ppm) - min(without_ppm),
        "params_with_ppm": sum(p.numel() for p in model.parameters()),
        "params_without_ppm": sum(p.numel() for p in no_ppm.parameters()),
        "ppm_params": sum(p.numel() for p in model.global_feature_extractor.ppm.parameters()),
    }
    result["summary"] = (f"mIoU with PPM {mean_with:.3f}, without {mean_without:.3f} (difference "
                         f"{mean_with - mean_without:+.3f}, over {len(seeds)} seed(s)); parameters "
                         f"{result['params_with_ppm']:,} -> {result['params_without_ppm']:,}")
    return result


EXERCISES = (exercise_1, exercise_2, exercise_3, exercise_4)


def main(argv=None) -> None:
    run(EXERCISES, lesson="02", argv=argv)


if __name__ == "__main__":
    main()

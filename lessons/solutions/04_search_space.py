"""Answer key for lesson 04 · The search space and the super-net (lessons/04_search_space.md).

One function per exercise of the lesson, in its order. Each one computes what the exercise asks
with ``segnas_lite``, returns the numbers in a dict, and its docstring gives the answer in words.

Run from the repository root:

    python lessons/solutions/04_search_space.py           # quick: 64 px, a few timed runs (seconds)
    python lessons/solutions/04_search_space.py --full    # the notebook's workshop-sized settings

Quick mode is forced on when ``CI`` or ``SEGNAS_QUICK=1`` is set (``notebook_utils.setup``).
Latencies depend on the machine and on what else runs: read their order, not their digits.
"""
from __future__ import annotations

import sys
from pathlib import Path
import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from segnas_lite.nas import (SEED_OPS, Genotype, MixedOp, SegSuperNet, build_child, build_op,
                             proxyless_space, seed_space)
from segnas_lite.nas.measure import measure
from segnas_lite.nas.predictor import spearman
from segnas_lite.teaching.notebook_utils import saved_activation_mib, setup
from segnas_lite.models.summary import summarize

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared report
from report import run  # noqa: E402

SEED = 0
THREADS = 2


def _sizes(quick: bool) -> dict:
    """The notebook's IMAGE_SIZE and RUNS: workshop values, or its quick (CI-sized) values."""
    if quick:
        return {"image_size": 64, "runs": 5}
    return {"image_size": 128, "runs": 20}


# --------------------------------------------------------------------------- exercise 1
def exercise_1(*, quick: bool = True) -> dict:
    """LAYER = 2 and LAYER = 8: which op is cheapest, and do latencies follow the FLOPs order?

    Answer: no, not in general. Both layers are stride-2 layers (layer 2 goes from S4 to S8,
    24 -> 40 channels; layer 8 from S16 to S32, 80 -> 160 channels; the notebook's layer 3 is a
    stride-1 layer). The "MFLOPs per ms" column is far from constant. Dense 1x1 convolutions do
    many FLOPs per byte they read and run fast; depthwise convolutions, the squeeze-excite block (a
    global pooling and two tiny matrix products), h-swish, and the split / concat / channel shuffle
    of ``shuffle`` do few FLOPs per byte and per kernel call and run at a low FLOP rate. So the
    ``mbv3`` ops, whose FLOPs are mostly their x4 expansion and projection 1x1 convolutions, reach
    the highest rate: they have several times the FLOPs of a ``dil`` op but take only about twice
    its time. ``shuffle`` has the lowest rate: few FLOPs, but not the fastest. The cheapest op by
    time is a DARTS ``dil`` op (one depthwise + one pointwise unit; ``dil_3x3`` and ``dil_5x5`` are
    often within noise of each other). At layer 8 the map is tiny (4x4 at 64 px, 8x8 at 128 px):
    every op costs a few tens of microseconds whatever its FLOPs, because the fixed cost of each
    kernel call dominates, so there the time order follows the number of kernels an op launches
    more than its FLOPs. The returned Spearman correlation between FLOPs and latency says how well
    the two orders agree (1 = the same order). Lesson: measure, do not rank ops by FLOPs (the reason
    ProxylessNAS predicts latency from a table of measurements, not from a FLOP count).
    """
    settings = setup(quick=quick, seed=SEED)
    sizes = _sizes(settings.quick)
    size, runs = sizes["image_size"], sizes["runs"]
    space = seed_space()
    result = {"image_size": size}
    first = True
    for layer in (2, 8):
        spec = space.layers[layer]
        shape = (1, *space.layer_input_shapes(size, size)[layer])
        if first:  # the first call in a process sets up PyTorch's CPU kernels: keep it out
            measure(build_op(spec.ops[0], spec.in_ch, spec.out_ch, spec.stride), shape, runs=1)
            first = False
        rows = []
        for name in spec.ops:
            torch.manual_seed(SEED)
            op = build_op(name, spec.in_ch, spec.out_ch, spec.stride).eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                op(torch.zeros(shape))
            flops = counter.get_total_flops()
            latency = measure(op, shape, threads=THREADS, runs=runs)
            rows.append({"op": name, "params": sum(p.numel() for p in op.parameters()),
                         "mflops": flops / 1e6, "latency_ms": latency,
                         "mflops_per_ms": flops / 1e6 / latency})
        by_flops = [r["op"] for r in sorted(rows, key=lambda r: r["mflops"])]
        by_latency = [r["op"] for r in sorted(rows, key=lambda r: r["latency_ms"])]
        result[f"layer_{layer}"] = {
            "stride": spec.stride, "channels": (spec.in_ch, spec.out_ch), "input_shape": shape,
            "rows": rows, "cheapest_by_latency": by_latency[0], "cheapest_by_flops": by_flops[0],
            "order_by_flops": by_flops, "order_by_latency": by_latency,
            "same_order": by_flops == by_latency,
            "spearman_flops_vs_latency": spearman([r["mflops"] for r in rows],
                                                  [r["latency_ms"] for r in rows])}
    return result


# --------------------------------------------------------------------------- exercise 2
def _memory(image_size: int, batch: int) -> dict:
    """MiB saved for backward in the modes fixed / single / all (the notebook's section 4), and in
    mode fixed for every uniform genotype (one op in all ten layers)."""
    space = seed_space()
    torch.manual_seed(SEED)
    supernet = SegSuperNet(space, num_classes=2)
    generator = torch.Generator().manual_seed(SEED)
    images = torch.randn(batch, 3, image_size, image_size, generator=generator)
    masks = torch.randint(0, 2, (batch, image_size, image_size), generator=generator)
    sampled = supernet.sample_genotype(SEED)
    memory = {}
    for mode in ("fixed", "single", "all"):
        supernet.set_mode(mode)
        memory[mode] = saved_activation_mib(supernet, images, masks)
    supernet.set_mode("fixed")
    per_op = {}
    for name in SEED_OPS:
        supernet.set_genotype(Genotype.uniform(space, name))
        per_op[name] = saved_activation_mib(supernet, images, masks)
    lightest, heaviest = min(per_op, key=per_op.get), max(per_op, key=per_op.get)

    def weights_mib(model: torch.nn.Module) -> float:  # float32: 4 bytes per parameter
        return sum(p.numel() for p in model.parameters()) * 4 / 2 ** 20

    return {"image_size": image_size, "batch": batch, "sampled_genotype": list(sampled.ops),
            "weights_mib_all_candidates": weights_mib(supernet),
            "weights_mib_sampled_path": weights_mib(build_child(sampled, num_classes=2)),
            "mib": memory, "ratio_single": memory["single"] / memory["fixed"],
            "ratio_all": memory["all"] / memory["fixed"],
            "fixed_mib_per_uniform_genotype": per_op, "lightest_op": lightest,
            "heaviest_op": heaviest,
            "ratio_all_vs_lightest_path": memory["all"] / per_op[lightest],
            "ratio_all_vs_heaviest_path": memory["all"] / per_op[heaviest]}


def exercise_2(*, quick: bool = True) -> dict:
    """Why is "all" not exactly 7x "fixed", and does the ratio change at MEMORY_BATCH = 8, 128 px?

    Answer: the ratio compares two different sums, so nothing makes it 7. (1) The stem, ASPP,
    decoder and classifier are the same in every mode and are counted once: they pull the ratio
    below 7. (2) "fixed" keeps the one op sampled in each layer, and the ops differ a lot in size
    (an ``mbv3`` op expands x4 and keeps several times the activations of a ``dil`` op): the ratio
    depends on which path was sampled. The returned ratios against the lightest and the heaviest
    uniform path show the spread: "all" is many more times the ``dil`` path than the ``mbv3`` one.
    (3) "all" keeps more than the seven paths' activations: every candidate's output is saved a
    second time for the product p_i o_i(x) (its gradient with respect to p_i needs o_i(x)), and the
    weights of all 70 candidates are saved by the convolutions that ran, about 9 MiB, against one
    path's weights in "fixed". At 64 px and batch 2 those weights are a large part of the count
    (compare ``weights_mib_all_candidates`` with ``mib["all"]``) and push the ratio above 7
    (7.46 in the notebook's quick copy; its workshop copy, at 128 px and batch 4, prints 6.72, below
    7 as the next paragraph explains). "single" keeps only a little more than "fixed": what Eq. 4
    needs in backward (the layer input x, to re-run the other candidates, and the active op's
    output), most of which the path saves anyway.
    Larger batch or image: yes, it changes. Every activation grows with batch x pixels, the weights
    do not, so the weights' share shrinks and the ratio falls towards the ratio of the activations
    alone, below 7 because of (1). Quick mode compares 64 px batch 2 with 96 px batch 4;
    ``--full`` runs the exercise's 128 px batch 8. (The benchmark's peak memory, 4.7-5.6x, is lower
    still: the peak also holds what is not saved for backward, the same in every mode.)
    """
    settings = setup(quick=quick, seed=SEED)
    small = _memory(64, 2)
    large = _memory(96, 4) if settings.quick else _memory(128, 8)
    return {"small": small, "large": large,
            "ratio_change": large["ratio_all"] - small["ratio_all"]}


# --------------------------------------------------------------------------- exercise 3
def exercise_3(*, quick: bool = True) -> dict:
    """With the loss L = ((layer(x) - w) ** 2).sum(), which of the three gradients still agree?

    Answer: the binary gates of the library and Eq. 4 by hand still agree exactly, the DARTS sum
    does not. Eq. 4 (ProxylessNAS, Cai et al., ICLR 2019) uses dL/dg_j = <dL/d(out), o_j(x)> with
    dL/d(out) = 2 (out - w) taken at the output of the *sampled* op; the library computes exactly
    this (its backward re-runs the other candidates on the saved x), so "by hand" must take
    dL/d(out) at the sampled output too. DARTS differentiates the mixture sum_i p_i o_i(x), so its
    dL/d(out) = 2 (mixture - w) is taken at another point: a different gradient. All three still sum
    to zero (adding a constant to every alpha leaves softmax unchanged).
    Two further checks, computed below: averaged over the sampled op (weights p), the binary-gate
    gradient equals the DARTS gradient here, because dL/d(out) is affine in out for a quadratic
    loss; and neither equals the gradient of what the search wants, the expected loss
    sum_j p_j L_j, whose gradient sum_j L_j p_j (delta_ij - p_i) needs each op's loss itself. That
    is the bias of Eq. 4 (the paper's "approximately"): averaging over samples removes noise, not
    bias. For the linear loss of the notebook all of them coincide.
    """
    setup(quick=quick, seed=SEED)
    space = seed_space()
    torch.manual_seed(SEED)
    # 24 -> 40 channels, stride 2, 7 candidates; float64, so that "agree" means equal formulas and
    # not float32 rounding of inner products over 5,120 values
    layer = MixedOp.from_spec(space.layers[2]).double().eval()
    x = torch.randn(2, 24, 16, 16, dtype=torch.float64)
    w = torch.randn(2, 40, 8, 8, dtype=torch.float64)
    active = 3

    def loss_of(out: torch.Tensor) -> torch.Tensor:
        return ((out - w) ** 2).sum()

    def binary_gate_gradient(op_index: int) -> torch.Tensor:
        layer.alpha.grad = None
        layer.mode = "single"
        layer.set_active(op_index)
        loss_of(layer(x)).backward()
        return layer.alpha.grad.clone()

    binary_gates = binary_gate_gradient(active)

    with torch.no_grad():  # Eq. 4 by hand, dL/d(out) at the sampled op's output
        p = layer.probabilities()
        outputs = [candidate(x) for candidate in layer.candidates]
        upstream = 2 * (outputs[active] - w)
        dL_dg = torch.stack([(upstream * o).sum() for o in outputs])
        eye = torch.eye(len(p), dtype=p.dtype)
        by_hand = torch.stack([(dL_dg * p * (eye[i] - p[i])).sum() for i in range(len(p))])
        losses = torch.stack([loss_of(o) for o in outputs])  # L_j: the loss with op j active
        expected_loss_grad = torch.stack([(losses * p * (eye[i] - p[i])).sum()
                                          for i in range(len(p))])

    layer.alpha.grad = None
    layer.mode = "all"
    loss_of(layer(x)).backward()
    darts_sum = layer.alpha.grad.clone()

    average_binary = sum(p[a] * binary_gate_gradient(a) for a in range(len(p)))
    scale = float(by_hand.abs().max())

    def agree(a: torch.Tensor, b: torch.Tensor) -> bool:
        return bool(torch.allclose(a, b, rtol=1e-4, atol=1e-5 * scale))

    return {"ops": list(layer.names), "sampled_op": layer.names[active],
            "binary_gates": binary_gates.tolist(), "eq4_by_hand": by_hand.tolist(),
            "darts_sum": darts_sum.tolist(), "expected_loss_gradient": expected_loss_grad.tolist(),
            "binary_equals_by_hand": agree(binary_gates, by_hand),
            "binary_equals_darts": agree(binary_gates, darts_sum),
            "sums": {"binary_gates": float(binary_gates.sum()), "by_hand": float(by_hand.sum()),
                     "darts_sum": float(darts_sum.sum())},
            "scale": scale,
            "average_over_sampled_op_equals_darts": agree(average_binary, darts_sum),
            "average_over_sampled_op_equals_expected_loss_gradient":
                agree(average_binary, expected_loss_grad)}


# --------------------------------------------------------------------------- exercise 4
def exercise_4(*, quick: bool = True) -> dict:
    """The widget with ``sep_5x5`` and ``shuffle`` in every layer: which part dominates the FLOPs?

    Answer: it depends on the op, and that is the point. With ``sep_5x5`` (two depthwise-separable
    units per layer) the searched chain (``layers``) is the largest part, about twice the decoder.
    With ``shuffle`` (half the channels pass untouched) the chain becomes so cheap that the fixed
    parts together (stem, ASPP, decoder, classifier) do more than half of the FLOPs, the decoder
    alone about as much as the whole chain: it refines 48-channel maps at S16, S8 and S4 (1/4 of
    the input side: the largest maps of the network). The shares hardly change with the input
    size, since every part's FLOPs grow with the number of pixels. What it tells about search: the
    search can only change the chain; the stem, ASPP and decoder are a floor that no genotype
    removes, so the possible saving shrinks as the chain gets cheaper, and past some point a faster
    network needs a cheaper decoder (a macro change), not a better search. (And FLOPs are not
    latency: the decoder's upsampling and additions count zero FLOPs here but cost time.)
    """
    settings = setup(quick=quick, seed=SEED)
    space = seed_space()
    sizes = (64, 128) if settings.quick else (128, 256, 512)
    result = {}
    for name in ("sep_5x5", "shuffle"):
        torch.manual_seed(SEED)
        child = build_child(Genotype.uniform(space, name), num_classes=2)
        per_size = {}
        for size in sizes:
            summary = summarize(child, input_size=(size, size))
            shares = {row.name: row.flops / summary.flops for row in summary.rows}
            fixed = sum(share for part, share in shares.items() if part != "layers")
            per_size[size] = {"gflops": summary.gflops, "params": summary.total_params,
                              "flops_by_part": {row.name: row.flops for row in summary.rows},
                              "total_flops": summary.flops, "shares": shares,
                              "dominant_part": max(shares, key=shares.get),
                              "fixed_share": fixed, "chain_share": shares["layers"]}
        result[name] = per_size
    return result


# --------------------------------------------------------------------------- exercise 5
def exercise_5(*, quick: bool = True) -> dict:
    """Count the architectures of the proxyless space by hand and compare with section 2.

    Answer: 6 ** 4 * 7 ** 6 = 1,296 * 117,649 = 152,473,104, about 1.5 * 10 ** 8. The four layers
    that open a stage (stride 2, and the channel count changes) cannot be skipped, so they choose
    among the six MBConv ops; the six other layers have a shortcut and may also choose ``zero``
    (x + 0 = x: the layer disappears). ``SearchSpace.size()`` is the product of the candidates per
    layer and prints the same number. The seed's space: 7 ** 10 = 282,475,249 (about 2.8 * 10 ** 8).
    """
    setup(quick=quick, seed=SEED)
    space = proxyless_space()
    strided = sum(spec.stride == 2 for spec in space.layers)
    others = len(space) - strided
    by_hand = 6 ** strided * 7 ** others
    seed_by_hand = 7 ** len(seed_space())
    return {"strided_layers": strided, "other_layers": others,
            "ops_in_strided_layers": sorted({len(s.ops) for s in space.layers if s.stride == 2}),
            "ops_in_other_layers": sorted({len(s.ops) for s in space.layers if s.stride == 1}),
            "by_hand": by_hand, "library": space.size(), "equal": by_hand == space.size(),
            "log10": math.log10(by_hand), "seed_by_hand": seed_by_hand,
            "seed_library": seed_space().size()}


EXERCISES = (exercise_1, exercise_2, exercise_3, exercise_4, exercise_5)


def main(argv=None) -> None:
    run(EXERCISES, lesson="04", argv=argv)


if __name__ == "__main__":
    main()

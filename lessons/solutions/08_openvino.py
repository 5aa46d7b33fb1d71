"""Answer key for lesson 08 · OpenVINO deployment (lessons/08_openvino.md).

One function per exercise of the lesson, in its order. Each one computes what the exercise asks
with ``segnas_lite``, returns the numbers in a dict, and its docstring gives the answer in words.

Run from the repository root:

    python lessons/solutions/08_openvino.py           # quick: the notebook's quick settings
    python lessons/solutions/08_openvino.py --full    # the notebook's workshop settings

Trained models come from ``notebook_utils.trained_model`` (cached by their settings, so the model
of notebook 08 is reused). The int8 exercise needs NNCF (``pip install 'segnas-lite[int8]'``):
without it that part is reported as skipped, as in the notebook, and the rest runs. IR files go to
``$SEGNAS_CACHE/ir/solutions``. Latencies depend on the machine and on what else runs.
"""
from __future__ import annotations

import sys
from pathlib import Path
import functools

import numpy as np
import torch
from torch import nn

from segnas_lite.data import denormalize, normalize
from segnas_lite.deploy.bench import benchmark_openvino, benchmark_torch
from segnas_lite.deploy.export import save_ir, to_openvino
from segnas_lite.deploy.parity import check_parity, sample_images
from segnas_lite.deploy.quantize import quantize_int8
from segnas_lite.flags import cache_dir
from segnas_lite.runio import MissingDependencyError
from segnas_lite.teaching.notebook_utils import search_result, setup, trained_model

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared report
from report import NOTEBOOK_SEARCH, QUICK_SEARCH, run  # noqa: E402

SEED = 0
MODEL = "fast_scnn"
# The parameters cell of notebooks/08_openvino.ipynb, and its quick settings.
FULL = dict(recipe=dict(image_size=128, epochs=6, train_length=256, val_length=64, seed=SEED),
            export_size=256, large_size=512, threads=2, runs=30, calibration_images=64)
QUICK = dict(recipe=dict(image_size=64, epochs=3, train_length=160, val_length=16, seed=SEED),
             export_size=128, large_size=256, threads=2, runs=10, calibration_images=8)
# The search of notebooks 06 and 07: NOTEBOOK_SEARCH / QUICK_SEARCH from report.py.


def _setup(quick: bool) -> tuple[dict, bool]:
    """Seed everything; the settings to use and whether quick mode is on (forced under CI)."""
    quick = setup(quick=quick, seed=SEED).quick
    return (QUICK if quick else FULL), quick


@functools.lru_cache(maxsize=None)
def model_and_ir(name: str, size: int, quick: bool, genotype: str | None = None) -> tuple:
    """(trained model, path of its IR exported at ``size`` x ``size``, training history); the
    model from the cache when a notebook trained it with the same recipe. ``genotype``: the JSON
    text that ``nas_child`` needs."""
    s = QUICK if quick else FULL
    kwargs = {"genotype": genotype} if genotype is not None else {}
    model, history = trained_model(name, **s["recipe"], **kwargs)
    ir_path = cache_dir() / "ir" / "solutions" / f"{name}_{size}.xml"
    to_openvino(model, input_size=(size, size), out_path=ir_path, overwrite=True)
    return model, ir_path, history


def _speed(model: nn.Module, ir_path, size: int, threads: int, runs: int) -> dict:
    """Median ms of PyTorch eager, OpenVINO f32 and OpenVINO default (the notebook's table)."""
    return {"PyTorch eager": benchmark_torch(model, input_size=(size, size), threads=threads,
                                             runs=runs).median_ms,
            "OpenVINO f32": benchmark_openvino(ir_path, precision="f32", threads=threads,
                                               runs=runs).median_ms,
            "OpenVINO default": benchmark_openvino(ir_path, precision="default", threads=threads,
                                                   runs=runs).median_ms}


# --------------------------------------------------------------------------- exercise 1
def exercise_1(*, quick: bool = True) -> dict:
    """EXPORT_SIZE = 512: how do PyTorch and OpenVINO latencies scale with the number of pixels?

    Answer: 512 x 512 has 4 times the pixels of 256 x 256, and a fully convolutional network does
    4 times the FLOPs, but the time grows by less than 4x when the smaller size is small: part of
    each call does not grow with the image (the per-call overhead of PyTorch's Python dispatch, a
    few microseconds per layer times ~100 layers, and OpenVINO's request bookkeeping), and small
    maps cannot keep two threads and the vector units busy. As the size grows the compute
    dominates and the ratio approaches 4; it can exceed 4 when the larger feature maps no longer
    fit in the CPU caches. PyTorch eager usually stays further below 4 (its overhead per layer is
    larger); OpenVINO, with less fixed cost, scales closer to the pixel count. Quick mode compares
    128 with 256 px (also 4x the pixels); ``--full`` compares the exercise's 256 with 512 px.
    """
    s, quick = _setup(quick)
    sizes = (s["export_size"], s["large_size"])
    times = {}
    for size in sizes:
        model, ir_path, _ = model_and_ir(MODEL, size, quick)
        times[size] = _speed(model, ir_path, size, s["threads"], s["runs"])
    small, large = sizes
    return {"sizes": sizes, "pixel_ratio": (large / small) ** 2, "median_ms": times,
            "time_ratio": {backend: times[large][backend] / times[small][backend]
                           for backend in times[small]}}


# --------------------------------------------------------------------------- exercise 2
def exercise_2(*, quick: bool = True) -> dict:
    """THREADS = 1: which backend loses most?

    Answer: the one that used the second thread best. OpenVINO's CPU plugin splits each
    convolution over its threads with little overhead, so going from 2 threads to 1 costs it up to
    a factor of about 2; PyTorch eager also runs its convolutions multi-threaded but loses less,
    because much of its time is per-operator overhead on one thread anyway (Python dispatch, small
    element-wise ops that are not parallelised). So expect OpenVINO (f32 and default alike, they are
    the same precision on a CPU without bf16) to lose most, PyTorch least; the gap between them
    (OpenVINO's speed-up over PyTorch) shrinks with one thread. Always compare backends at the same
    thread count: OpenVINO at 2 threads against PyTorch at all cores is not a fair comparison.
    """
    s, quick = _setup(quick)
    size = s["export_size"]
    model, ir_path, _ = model_and_ir(MODEL, size, quick)
    times = {threads: _speed(model, ir_path, size, threads, s["runs"]) for threads in (2, 1)}
    ratio = {backend: times[1][backend] / times[2][backend] for backend in times[2]}
    return {"size": size, "median_ms": times, "slowdown_1_vs_2_threads": ratio,
            "loses_most": max(ratio, key=ratio.get), "loses_least": min(ratio, key=ratio.get)}


# --------------------------------------------------------------------------- exercise 3
def conv_output_ranges(model: nn.Module, images: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Per convolution, the (min, max) of its output over ``images``: the numbers a min-max int8
    calibration records to place its quantisation grid (NNCF's default then also corrects the
    biases)."""
    ranges: dict[str, tuple[float, float]] = {}

    def recorder(name: str):
        def hook(module, inputs, output):
            low, high = float(output.min()), float(output.max())
            old_low, old_high = ranges.get(name, (low, high))
            ranges[name] = (min(old_low, low), max(old_high, high))
        return hook

    handles = [module.register_forward_hook(recorder(name))
               for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    with torch.no_grad():
        for image in images:
            model(image.unsqueeze(0))
    for handle in handles:
        handle.remove()
    return ranges


def coverage(few: dict, many: dict) -> float:
    """Mean over layers of the share of ``many``'s range that ``few``'s range covers (1 = all)."""
    return float(np.mean([(few[k][1] - few[k][0]) / (many[k][1] - many[k][0])
                          for k in many if many[k][1] > many[k][0]]))


def exercise_3(*, quick: bool = True) -> dict:
    """CALIBRATION_IMAGES = 4: does the int8 agreement drop? Why can few images be enough?

    Answer: usually it drops little or not at all. Post-training calibration does not train
    anything: it runs the images through the network and records, per quantised tensor, the range
    of values (min/max, or a robust statistic of them); the int8 grid is then placed over that
    range. Ranges saturate fast: a few typical images already show nearly the whole range of each
    layer (computed below without NNCF: the share of the range of all calibration images that the
    first 4 of them cover). They are not enough when the deployment sees what calibration did not:
    rare bright or dark scenes, other cameras, unusual colours. Those push activations outside the
    recorded range, where int8 clips them, and masks break exactly on those frames (below, one
    over-exposed frame widens the ranges that the ordinary images recorded). Calibrate on images
    that cover the conditions of use, not on many images of one condition. Without NNCF the int8
    part is skipped (``MissingDependencyError``), as in the notebook.
    """
    s, quick = _setup(quick)
    size = s["export_size"]
    model, ir_path, _ = model_and_ir(MODEL, size, quick)
    many = s["calibration_images"]
    calibration = sample_images(many, input_size=(size, size), seed=SEED + 1)
    result: dict = {"calibration_images": (4, many)}

    agreement, skipped = {}, None
    for count in (4, many):
        try:
            quantized = quantize_int8(ir_path, calibration[:count], subset_size=count)
        except MissingDependencyError as error:
            skipped = str(error)
            break
        int8_path = save_ir(quantized, ir_path.with_name(f"{MODEL}_{size}_int8_{count}.xml"),
                            overwrite=True)
        agreement[count] = check_parity(model, int8_path, precision="default", num_images=4,
                                        seed=SEED, threads=s["threads"]).mask_agreement
    result.update(int8_agreement=agreement or None, int8_skipped=skipped)

    ranges_few = conv_output_ranges(model, calibration[:4])
    ranges_all = conv_output_ranges(model, calibration)
    bright = normalize((denormalize(calibration[0]) * 2.5).clamp(0, 1).permute(1, 2, 0).numpy())
    ranges_bright = conv_output_ranges(model, torch.cat([calibration, bright[None]]))
    result.update(range_coverage_first_4_of_all=coverage(ranges_few, ranges_all),
                  range_coverage_all_with_a_bright_frame=coverage(ranges_all, ranges_bright),
                  layers=len(ranges_all))
    return result


# --------------------------------------------------------------------------- exercise 4
def exercise_4(*, quick: bool = True) -> dict:
    """MODEL = "nas_child": deploy the searched child of notebook 07.

    Answer: ``nas_child`` is not one fixed network: it is built from a genotype, so
    ``trained_model`` needs ``genotype=<the genotype's JSON>`` (notebook 07 passes
    ``result.genotype_budget.to_json()``: the architecture derived under the budget). With it the
    child trains, exports and compiles like any other model (every candidate op converts to
    OpenVINO), passes the f32 parity check, and runs far fewer parameters than Fast-SCNN. Whether
    it is also faster depends on the budget of the search and on the image size: the search
    budgeted its latency on its own backend and size (quick mode: PyTorch at 64 px), not at the
    export size; a fair comparison measures both models here, on the same backend, threads and
    size, as below.
    """
    s, quick = _setup(quick)
    size = s["export_size"]
    found = search_result(space="seed", image_size=64 if quick else 128, seed=SEED,
                          **(QUICK_SEARCH if quick else NOTEBOOK_SEARCH))
    genotype = found.genotype_budget
    out = {"genotype": list(genotype.ops)}
    for name, genotype_json in (("nas_child", genotype.to_json()), (MODEL, None)):
        model, ir_path, history = model_and_ir(name, size, quick, genotype_json)
        parity = check_parity(model, ir_path, precision="f32", num_images=4, seed=SEED,
                              threads=s["threads"])
        out[name] = {"params": sum(p.numel() for p in model.parameters()),
                      "val_miou": history[-1]["val_miou"], "parity_passed": parity.passed,
                      "max_abs_diff": parity.max_abs_diff,
                      "mask_agreement": parity.mask_agreement,
                      "median_ms": _speed(model, ir_path, size, s["threads"], s["runs"])}
    return out


EXERCISES = (exercise_1, exercise_2, exercise_3, exercise_4)


def main(argv=None) -> None:
    run(EXERCISES, lesson="08", argv=argv)


if __name__ == "__main__":
    main()

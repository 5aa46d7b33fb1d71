"""Parity: does the OpenVINO model compute what the PyTorch model computes?

Run the same realistic images through both and compare the raw logits and the argmax masks. Do
this before trusting any speed number: a fast model that computes something else is not a result.

Precision on a modern Intel CPU: when the CPU has AVX-512 BF16 or AMX, OpenVINO's CPU plugin runs
in bfloat16 *by default* (8 mantissa bits, about 2-3 significant digits). Logits then differ from
PyTorch by about 1e-2, so numerical parity must be checked with ``precision="f32"``; the default
precision (and INT8, ``quantize.py``) is judged by how many mask pixels still agree. An IR written
with float16 weights (``compress_to_fp16``, the default of ``export.to_openvino``) gets the looser
tolerances ``FP16_ATOL`` / ``FP16_MIN_AGREEMENT``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import openvino as ov
import torch
from torch import nn

from segnas_lite.data import SyntheticPortraits, synthetic_video
from segnas_lite.deploy.export import compile_ir, load_ir, resolve_input_size
from segnas_lite.deploy.openvino import ran_precision
from segnas_lite.deploy.predictor import resize_batch
from segnas_lite.deploy.target import DEFAULT_THREADS
from segnas_lite.runio import stream_seed

FP16_ATOL = 0.1             # parity tolerances for an IR with float16 weights (see check_parity)
FP16_MIN_AGREEMENT = 0.995


# --------------------------------------------------------------------------- inputs
def sample_images(num_images: int, *, input_size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """(N, 3, H, W) realistic, normalised images for parity checks and INT8 calibration.

    ``SyntheticPortraits`` squares of side max(H, W), bilinearly resized to (H, W); below 16 pixels
    (too small to draw a portrait) frames of ``synthetic_video``, one clip per image.
    """
    height, width = int(input_size[0]), int(input_size[1])
    side = max(height, width)
    if side >= 16:
        dataset = SyntheticPortraits(length=num_images, image_size=side, seed=seed)
        images = torch.stack([dataset[i][0] for i in range(num_images)])  # (N, 3, side, side)
        return resize_batch(images, (height, width))
    clips = [synthetic_video(1, image_size=(height, width), seed=stream_seed(seed, i))
             for i in range(num_images)]
    return torch.stack([clip[0][0] for clip in clips])


# --------------------------------------------------------------------------- parity
@dataclass
class ParityReport:
    """PyTorch vs OpenVINO on the same images.

    ``passed`` is ``True``/``False`` for ``precision="f32"`` (judged against ``atol`` on the logits
    and ``min_agreement`` on the masks) and ``None`` for bf16/default and for an int8 IR, which
    are reported only: bfloat16 logits are expected to differ by ~1e-2, int8 ones by more.
    """

    precision: str
    num_images: int
    input_size: tuple[int, int]
    max_abs_diff: float
    mean_abs_diff: float
    mask_agreement: float  # fraction of pixels whose argmax class agrees
    atol: float
    min_agreement: float
    passed: bool | None
    weights: str = "f32"  # how the IR stores its weights: "f32", "f16" (compress_to_fp16) or "int8"
    runs: str = "unknown"  # what the compiled model really runs (``openvino.ran_precision``)

    def to_text(self) -> str:
        verdict = {True: "PASSED", False: "FAILED", None: "reported only"}[self.passed]
        h, w = self.input_size
        asked = self.precision if self.runs in (self.precision, "unknown") else \
            f"{self.precision} -> runs {self.runs}"
        return (
            f"parity [{asked}, {self.weights} weights] on {self.num_images} images {h}x{w}: "
            f"max|diff|={self.max_abs_diff:.2e}, mean|diff|={self.mean_abs_diff:.2e}, "
            f"mask agreement={100 * self.mask_agreement:.3f}% -> {verdict} "
            f"(atol {self.atol:g}, agreement >= {self.min_agreement:g})"
        )


def check_parity(
    torch_model: nn.Module,
    ov_model_or_path: ov.Model | str | os.PathLike,
    *,
    input_size: tuple[int, int] | None = None,
    num_images: int = 4,
    seed: int = 0,
    precision: str = "f32",
    threads: int | None = DEFAULT_THREADS,
    atol: float | None = None,
    min_agreement: float | None = None,
) -> ParityReport:
    """Compare PyTorch and OpenVINO logits and argmax masks on ``num_images`` realistic images.

    ``input_size`` defaults to the IR's own size for a static IR (raw logits are compared, so
    no resizing is involved) and is required for a dynamic IR. The tolerances default to what the
    IR can promise: ``atol=1e-3``, agreement >= 99.9% for float32 weights; ``atol=0.1``, >= 99.5%
    when the IR stores float16 weights (``compress_to_fp16``, the default of ``to_openvino``:
    rounding every weight to 11 significant bits moves logits by ~1e-2, measured max 0.047).
    An int8 IR (``quantize.quantize_int8``) is reported only, whatever ``precision``: its
    quantised convolutions run in int8 under every hint, and ``runs`` says how many.
    """
    weights = ir_weights(load_ir(ov_model_or_path))
    atol = atol if atol is not None else (1e-3 if weights == "f32" else FP16_ATOL)
    if min_agreement is None:
        min_agreement = 0.999 if weights == "f32" else FP16_MIN_AGREEMENT
    compiled = compile_ir(ov_model_or_path, precision=precision, threads=threads)
    input_size = resolve_input_size(compiled, input_size)

    images = sample_images(num_images, input_size=input_size, seed=seed)  # (N, 3, H, W)
    torch_model = torch_model.eval()
    request = compiled.create_infer_request()
    max_diff, sum_diff, agree, pixels = 0.0, 0.0, 0, 0
    for image in images:
        batch = image.unsqueeze(0)  # (1, 3, H, W)
        with torch.no_grad():
            expected = torch_model(batch).numpy()  # (1, C, H, W)
        got = request.infer({0: batch.numpy()})[0]
        diff = np.abs(expected - got)
        max_diff = max(max_diff, float(diff.max()))
        sum_diff += float(diff.mean())
        agree += int((expected.argmax(1) == got.argmax(1)).sum())
        pixels += expected.shape[0] * expected.shape[2] * expected.shape[3]
    mean_diff = sum_diff / num_images
    agreement = agree / pixels
    judged = precision == "f32" and weights != "int8"  # int8 convolutions run whatever the hint
    passed = (max_diff <= atol and agreement >= min_agreement) if judged else None
    return ParityReport(precision, num_images, input_size, max_diff, mean_diff, agreement, atol,
                        min_agreement, passed, weights, runs=ran_precision(compiled))


def ir_weights(model: ov.Model) -> str:
    """How the graph stores its weights: "int8" for a quantised IR (NNCF's FakeQuantize nodes, or
    8-bit integer constants), "f16" for float16 constants (``compress_to_fp16``), else "f32"."""
    ops = list(model.get_ops())
    types = {op.get_output_element_type(0) for op in ops if op.get_type_name() == "Constant"}
    if types & {ov.Type.i8, ov.Type.u8} or any(op.get_type_name() == "FakeQuantize" for op in ops):
        return "int8"
    return "f16" if ov.Type.f16 in types else "f32"

"""Deploy a segmentation model on the CPU with OpenVINO.

The path from a PyTorch model to a fast CPU predictor has four steps, one function each:

1. ``to_openvino``   - trace the model and convert it to OpenVINO's graph (``openvino.Model``),
                       optionally writing the IR pair ``model.xml`` (graph) + ``model.bin`` (weights).
2. ``compile_ir``    - compile the graph for the CPU plugin with a precision, a thread count and a
                       performance hint.
3. ``check_parity``  - run the same images through PyTorch and OpenVINO and compare the logits and
                       the argmax masks. Do this before trusting any speed number.
4. ``benchmark_*``   - time PyTorch and OpenVINO the same way (``segnas_lite.timing``, the one timer).

Precision on a modern Intel CPU: when the CPU has AVX-512 BF16 or AMX, OpenVINO's CPU plugin runs
in bfloat16 *by default* (8 mantissa bits, about 2-3 significant digits). Logits then differ from
PyTorch by about 1e-2, so numerical parity must be checked with ``precision="f32"``; the default
precision is judged by how many mask pixels still agree.

``quantize_int8`` adds post-training INT8 quantisation with NNCF (optional dependency).

References: Howard et al., "Searching for MobileNetV3" (ICCV 2019) for LR-ASPP; Poudel et al.,
"Fast-SCNN" (BMVC 2019). Both papers report CPU/mobile latency, which is what this module measures.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import openvino as ov
import torch
import torch.nn.functional as F
from torch import nn

from segnas_lite.errors import SegnasError
from segnas_lite.data import SyntheticPortraits, synthetic_video  # notebook 08 imports synthetic_video from here
from segnas_lite.runio import MissingDependencyError, stream_seed  # noqa: F401 (re-exported)
from segnas_lite.timing import (Timing, TimingError, compile_openvino, compiled_precision, ov_core,
                     time_openvino, time_torch)


class ExportError(SegnasError, RuntimeError):
    """The model cannot be exported, compiled or fed with the given shape/precision."""


# ---------------------------------------------------------------------------------------------
# 1. Conversion and (atomic) saving
# ---------------------------------------------------------------------------------------------
def to_openvino(
    model: nn.Module,
    *,
    input_size: tuple[int, int] = (256, 256),
    out_path: str | os.PathLike | None = None,
    compress_to_fp16: bool = True,
    dynamic: bool = False,
    overwrite: bool = False,
) -> ov.Model:
    """Convert a PyTorch segmentation model to an ``openvino.Model``.

    The model is put in eval mode (BatchNorm uses running statistics, dropout is off) and traced
    with one example image of ``input_size`` = (H, W).

    - ``dynamic=False``: the input shape is fixed to [1, 3, H, W]. A fixed shape lets OpenVINO
      pre-plan every buffer; feed other sizes through ``OpenVINOPredictor``, which resizes.
    - ``dynamic=True``: the input shape is [-1, 3, -1, -1] (any batch, any height/width).

    If ``out_path`` (ending in ``.xml``) is given, the IR pair ``.xml`` + ``.bin`` is written
    atomically: both files are first saved into a temporary folder next to the target, then moved
    into place with ``os.replace`` (the ``.bin`` first, the ``.xml`` last, so a visible ``.xml``
    always has its complete weights). An existing file is never overwritten unless
    ``overwrite=True``. ``compress_to_fp16=True`` stores the weights as float16 in the ``.bin``
    (half the size; they are converted back to float32 when compiled for ``precision="f32"``).
    It only affects the written files: the returned in-memory model keeps float32 weights.
    """
    height, width = input_size
    model = model.eval()
    example = torch.zeros(1, 3, height, width)
    shape = [-1, 3, -1, -1] if dynamic else [1, 3, height, width]
    with torch.no_grad():
        ov_model = ov.convert_model(model, example_input=example, input=[shape])
    if out_path is not None:
        save_ir(ov_model, out_path, compress_to_fp16=compress_to_fp16, overwrite=overwrite)
    return ov_model


def _ir_paths(out_path: str | os.PathLike) -> tuple[Path, Path]:
    xml_path = Path(out_path)
    if xml_path.suffix != ".xml":
        raise ExportError(f"IR path {str(xml_path)!r} must end in '.xml' (the '.bin' goes beside it)")
    return xml_path, xml_path.with_suffix(".bin")


def save_ir(
    ov_model: ov.Model,
    out_path: str | os.PathLike,
    *,
    compress_to_fp16: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``ov_model`` to ``out_path`` (.xml) and its .bin atomically; return the .xml path."""
    xml_path, bin_path = _ir_paths(out_path)
    existing = [p for p in (xml_path, bin_path) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(str(p) for p in existing)} already exists; pass overwrite=True to replace it "
            "or choose another out_path"
        )
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target, so os.replace is a rename on one file system (atomic).
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{xml_path.stem}-", dir=xml_path.parent))
    try:
        tmp_xml = tmp_dir / xml_path.name
        ov.save_model(ov_model, tmp_xml, compress_to_fp16=compress_to_fp16)
        os.replace(tmp_xml.with_suffix(".bin"), bin_path)
        os.replace(tmp_xml, xml_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return xml_path


# ---------------------------------------------------------------------------------------------
# 2. Compilation
# ---------------------------------------------------------------------------------------------
def load_ir(model_or_path: ov.Model | str | os.PathLike) -> ov.Model:
    """Return an ``openvino.Model`` as it is, or read it from an ``.xml`` path."""
    if isinstance(model_or_path, ov.Model):
        return model_or_path
    xml_path, bin_path = _ir_paths(model_or_path)
    if not xml_path.exists() or not bin_path.exists():
        raise FileNotFoundError(f"IR pair {xml_path} + {bin_path} not found; write it with to_openvino(..., out_path=...)")
    return ov_core().read_model(xml_path)


def compile_ir(
    model_or_path: ov.Model | str | os.PathLike,
    *,
    precision: str = "f32",
    threads: int | None = 2,
    hint: str | None = "LATENCY",
) -> ov.CompiledModel:
    """Compile a model for the CPU plugin (``timing.compile_openvino``, the package's one way).

    ``precision`` is ``"f32"``, ``"bf16"`` or ``"default"`` (the plugin's choice); ``threads`` sets
    ``INFERENCE_NUM_THREADS``; ``hint`` is ``"LATENCY"``, ``"THROUGHPUT"`` or ``None``.
    """
    try:
        return compile_openvino(load_ir(model_or_path), precision=precision, threads=threads,
                                hint=hint)
    except TimingError as exc:
        raise ExportError(str(exc)) from exc


def static_input_size(compiled_or_model: ov.CompiledModel | ov.Model) -> tuple[int, int] | None:
    """(H, W) of a static-shape model's input, or ``None`` when height/width are dynamic."""
    shape = compiled_or_model.inputs[0].get_partial_shape()
    if shape.is_static:
        return int(shape[2].get_length()), int(shape[3].get_length())
    return None


def _resolve_input_size(compiled: ov.CompiledModel, input_size) -> tuple[int, int]:
    """The (H, W) to feed: the IR's own size for a static IR (``input_size`` None or equal to it),
    ``input_size`` for a dynamic IR (where it is required)."""
    ir_size = static_input_size(compiled)
    if input_size is None:
        if ir_size is None:
            raise ExportError("the IR has a dynamic input shape: pass input_size=(H, W)")
        return ir_size
    input_size = (int(input_size[0]), int(input_size[1]))
    if ir_size is not None and input_size != ir_size:
        raise ExportError(f"the IR is static at {ir_size}, but input_size={input_size}; "
                          "leave input_size=None")
    return input_size


def _is_static_batch_one(compiled_or_model: ov.CompiledModel | ov.Model) -> bool:
    batch = compiled_or_model.inputs[0].get_partial_shape()[0]
    return batch.is_static and batch.get_length() == 1


# ---------------------------------------------------------------------------------------------
# Inputs: realistic images for parity, calibration and the FPS demo
# ---------------------------------------------------------------------------------------------
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
        if (height, width) != (side, side):
            images = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
        return images
    clips = [synthetic_video(1, image_size=(height, width), seed=stream_seed(seed, i))
             for i in range(num_images)]
    return torch.stack([clip[0][0] for clip in clips])


# ---------------------------------------------------------------------------------------------
# 3. Parity
# ---------------------------------------------------------------------------------------------
@dataclass
class ParityReport:
    """PyTorch vs OpenVINO on the same images.

    ``passed`` is ``True``/``False`` for ``precision="f32"`` (judged against ``atol`` on the logits
    and ``min_agreement`` on the masks) and ``None`` for bf16/default, which are reported only:
    bfloat16 logits are expected to differ by ~1e-2.
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
    weights: str = "f32"  # how the IR stores its weights: "f32", or "f16" (compress_to_fp16)
    runs: str = "unknown"  # the precision the compiled model really runs (``timing.compiled_precision``)

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
    threads: int | None = 2,
    atol: float | None = None,
    min_agreement: float | None = None,
) -> ParityReport:
    """Compare PyTorch and OpenVINO logits and argmax masks on ``num_images`` realistic images.

    ``input_size`` defaults to the IR's own size for a static IR (raw logits are compared, so
    no resizing is involved) and is required for a dynamic IR. The tolerances default to what the
    IR can promise: ``atol=1e-3``, agreement >= 99.9% for float32 weights; ``atol=0.1``, >= 99.5%
    when the IR stores float16 weights (``compress_to_fp16``, the default of ``to_openvino``:
    rounding every weight to 11 significant bits moves logits by ~1e-2, measured max 0.047).
    """
    weights = "f16" if has_fp16_weights(load_ir(ov_model_or_path)) else "f32"
    atol = atol if atol is not None else (FP16_ATOL if weights == "f16" else 1e-3)
    if min_agreement is None:
        min_agreement = FP16_MIN_AGREEMENT if weights == "f16" else 0.999
    compiled = compile_ir(ov_model_or_path, precision=precision, threads=threads)
    input_size = _resolve_input_size(compiled, input_size)

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
    passed = (max_diff <= atol and agreement >= min_agreement) if precision == "f32" else None
    return ParityReport(precision, num_images, input_size, max_diff, mean_diff, agreement, atol,
                        min_agreement, passed, weights, runs=compiled_precision(compiled))


FP16_ATOL = 0.1             # parity tolerances for an IR with float16 weights (see check_parity)
FP16_MIN_AGREEMENT = 0.995


def has_fp16_weights(model: ov.Model) -> bool:
    """True when the graph keeps (some of) its weights as float16 constants (compress_to_fp16)."""
    return any(op.get_type_name() == "Constant" and op.get_output_element_type(0) == ov.Type.f16
               for op in model.get_ops())


# ---------------------------------------------------------------------------------------------
# Predictor and streaming
# ---------------------------------------------------------------------------------------------
class OpenVINOPredictor:
    """Callable OpenVINO model: ``predictor(images) -> logits`` and ``predictor.predict_mask(image)``.

    Shapes: a dynamic IR receives the images as they are. A static IR (fixed [1, 3, h, w]) gets each
    image bilinearly resized to (h, w) and its logits bilinearly resized back to the image's size,
    so any image size works; the mask is then as sharp as the IR's resolution, not the image's.
    Batches are run one image at a time when the IR's batch is fixed to 1.
    """

    def __init__(
        self,
        path_or_model: ov.Model | str | os.PathLike,
        *,
        precision: str = "default",
        threads: int | None = None,
    ) -> None:
        self.precision = precision
        self.compiled = compile_ir(path_or_model, precision=precision, threads=threads)
        self.request = self.compiled.create_infer_request()
        self.ir_size = static_input_size(self.compiled)  # (h, w) or None for a dynamic IR
        self.one_at_a_time = _is_static_batch_one(self.compiled)

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        """(n, 3, H, W) -> (n, C, H, W) logits, resizing around a static IR."""
        size = tuple(batch.shape[-2:])
        if self.ir_size is not None and size != self.ir_size:
            batch = F.interpolate(batch, size=self.ir_size, mode="bilinear", align_corners=False)
        logits = torch.from_numpy(self.request.infer({0: batch.numpy()})[0].copy())
        if tuple(logits.shape[-2:]) != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits

    def __call__(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float, ImageNet-normalised -> (N, C, H, W) float32 logits (numpy)."""
        images = torch.as_tensor(images, dtype=torch.float32)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ExportError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
        if self.one_at_a_time:
            logits = torch.cat([self._infer(image.unsqueeze(0)) for image in images])
        else:
            logits = self._infer(images)
        return logits.numpy()

    def predict_mask(self, image: torch.Tensor | np.ndarray) -> np.ndarray:
        """(3, H, W) -> (H, W) int64 class mask; (N, 3, H, W) -> (N, H, W)."""
        image = torch.as_tensor(image, dtype=torch.float32)
        single = image.ndim == 3
        logits = self(image.unsqueeze(0) if single else image)  # (N, C, H, W)
        masks = logits.argmax(axis=1).astype(np.int64)  # (N, H, W)
        return masks[0] if single else masks


def stream(predictor: OpenVINOPredictor, frames: Iterable) -> Iterator[tuple[np.ndarray, float]]:
    """Segment a sequence of frames; yield ``(mask, fps_running)`` after each frame.

    ``frames`` yields (3, H, W) images, or ``(image, anything)`` pairs such as the output of
    ``synthetic_video``. ``fps_running`` = frames done / seconds spent in the predictor so far
    (the time for drawing the result is not counted).
    """
    elapsed, count = 0.0, 0
    for frame in frames:
        image = frame[0] if isinstance(frame, (tuple, list)) else frame
        start = time.perf_counter()
        mask = predictor.predict_mask(image)
        elapsed += time.perf_counter() - start
        count += 1
        yield mask, count / elapsed


# ---------------------------------------------------------------------------------------------
# 4. Benchmarks
# ---------------------------------------------------------------------------------------------
TimingResult = Timing  # the name this module used before the timer moved to segnas_lite.timing


def benchmark_torch(
    model: nn.Module,
    *,
    input_size: tuple[int, int] = (256, 256),
    threads: int = 2,
    warmup: int = 5,
    runs: int = 30,
) -> Timing:
    """Time ``model`` in PyTorch eager mode on one (1, 3, H, W) image with ``threads`` threads."""
    if runs < 1:
        raise ExportError(f"runs must be >= 1, got {runs}")
    return time_torch(model, (1, 3, *input_size), threads=threads, warmup=warmup, runs=runs)


def benchmark_openvino(
    ov_model_or_path: ov.Model | str | os.PathLike,
    *,
    input_size: tuple[int, int] | None = None,
    precision: str = "f32",
    threads: int | None = 2,
    warmup: int = 5,
    runs: int = 30,
) -> Timing:
    """Time a synchronous infer request on one (1, 3, H, W) image (``input_size`` None = IR's).
    ``Timing.precision`` says which precision really ran (bf16 needs CPU support)."""
    if runs < 1:
        raise ExportError(f"runs must be >= 1, got {runs}")
    compiled = compile_ir(ov_model_or_path, precision=precision, threads=threads)
    input_size = _resolve_input_size(compiled, input_size)
    return time_openvino(compiled, (1, 3, *input_size), warmup=warmup, runs=runs, threads=threads)


# ---------------------------------------------------------------------------------------------
# INT8 post-training quantisation (optional: NNCF)
# ---------------------------------------------------------------------------------------------
def quantize_int8(
    ov_model: ov.Model | str | os.PathLike,
    calibration_images: Iterable,
    *,
    subset_size: int = 300,
) -> ov.Model:
    """Post-training INT8 quantisation with NNCF's default (MinMax + fast bias correction).

    NNCF inserts FakeQuantize nodes whose ranges come from running ``calibration_images`` (each
    (3, H, W) or (1, 3, H, W), normalised like training images) through the model; at most
    ``subset_size`` images are used. Images are resized to a static IR's size. The result can be
    saved with ``save_ir`` and compiled like any other model; measure its mask agreement with
    ``check_parity(..., precision="default")``: INT8 is judged by agreement, not by logits.
    """
    try:
        import nncf  # noqa: PLC0415 (optional dependency, heavy import)
    except ImportError as error:
        raise MissingDependencyError("quantize_int8 needs NNCF: pip install 'nncf>=3.4'") from error

    model = load_ir(ov_model)
    ir_size = static_input_size(model)

    def to_input(image) -> np.ndarray:
        image = torch.as_tensor(image, dtype=torch.float32)
        batch = image.unsqueeze(0) if image.ndim == 3 else image  # (1, 3, H, W)
        if ir_size is not None and tuple(batch.shape[-2:]) != ir_size:
            batch = F.interpolate(batch, size=ir_size, mode="bilinear", align_corners=False)
        return batch.numpy()

    images = list(calibration_images)
    if not images:
        raise ExportError("quantize_int8 needs at least one calibration image")
    dataset = nncf.Dataset(images, to_input)
    return nncf.quantize(model, dataset, subset_size=min(subset_size, len(images)))

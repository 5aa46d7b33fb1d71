"""Deploy a segmentation model on the CPU with OpenVINO: from PyTorch to a compiled IR.

The path from a PyTorch model to a fast CPU predictor has four steps:

1. ``to_openvino``   - trace the model and convert it to OpenVINO's graph (``openvino.Model``),
                       optionally writing the IR pair ``model.xml`` (graph) + ``model.bin`` (weights).
2. ``compile_ir``    - compile the graph for the CPU plugin with a precision, a thread count and a
                       performance hint (``openvino.compile_openvino``, the package's one way).
3. ``parity.check_parity`` - run the same images through PyTorch and OpenVINO and compare the
                       logits and the argmax masks. Do this before trusting any speed number.
4. ``bench.benchmark_*`` - time PyTorch and OpenVINO the same way (``segnas_lite.timing``, the one
                       timer).

``quantize.quantize_int8`` adds post-training INT8 quantisation with NNCF (optional dependency).

References: Howard et al., "Searching for MobileNetV3" (ICCV 2019) for LR-ASPP; Poudel et al.,
"Fast-SCNN" (BMVC 2019). Both papers report CPU/mobile latency, which is what this package measures.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import openvino as ov
import torch
from torch import nn

from segnas_lite.deploy.openvino import compile_openvino, convert, ov_core
from segnas_lite.deploy.target import DEFAULT_THREADS
from segnas_lite.errors import SegnasError
from segnas_lite.timing import TimingError


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
      pre-plan every buffer; feed other sizes through ``predictor.OpenVINOPredictor``, which resizes.
    - ``dynamic=True``: the input shape is [-1, 3, -1, -1] (any batch, any height/width).

    If ``out_path`` (ending in ``.xml``) is given, the IR pair ``.xml`` + ``.bin`` is written
    atomically: both files are first saved into a temporary folder next to the target, then moved
    into place with ``os.replace`` (the ``.bin`` first, the ``.xml`` last, so a visible ``.xml``
    always has its complete weights). An existing file is never overwritten unless
    ``overwrite=True``. The destination is checked before the model is traced (``ExportError``
    for a path that does not end in ``.xml``, names a folder, or lies below a file).
    ``compress_to_fp16=True`` stores the weights as float16 in the ``.bin`` (half the size; they
    are converted back to float32 when compiled for ``precision="f32"``).
    It only affects the written files: the returned in-memory model keeps float32 weights.
    """
    if out_path is not None:  # a wrong destination fails now, not after the conversion
        _check_destination(out_path, overwrite=overwrite)
    height, width = input_size
    model = model.eval()
    example = torch.zeros(1, 3, height, width)
    shape = [-1, 3, -1, -1] if dynamic else [1, 3, height, width]
    ov_model = convert(model, example, input=[shape])
    if out_path is not None:
        save_ir(ov_model, out_path, compress_to_fp16=compress_to_fp16, overwrite=overwrite)
    return ov_model


def _ir_paths(out_path: str | os.PathLike) -> tuple[Path, Path]:
    xml_path = Path(out_path)
    if xml_path.suffix != ".xml":
        raise ExportError(f"IR path {str(xml_path)!r} must end in '.xml' (the '.bin' goes beside it)")
    return xml_path, xml_path.with_suffix(".bin")


def _check_destination(out_path: str | os.PathLike, *, overwrite: bool) -> tuple[Path, Path]:
    """The IR pair's paths, if they can be written: checked before any conversion work."""
    xml_path, bin_path = _ir_paths(out_path)
    for path in (xml_path, bin_path):
        if path.is_dir():
            raise ExportError(f"{str(path)!r} is a folder; out_path names the IR file "
                              "(e.g. DIR/model.xml)")
    folder = next((p for p in xml_path.parents if p.exists()), None)  # the nearest existing one
    if folder is not None and not folder.is_dir():
        raise ExportError(f"cannot write {str(xml_path)!r}: {str(folder)!r} is a file, not a folder")
    existing = [p for p in (xml_path, bin_path) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(str(p) for p in existing)} already exists; pass overwrite=True to replace it "
            "or choose another out_path"
        )
    return xml_path, bin_path


def save_ir(
    ov_model: ov.Model,
    out_path: str | os.PathLike,
    *,
    compress_to_fp16: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``ov_model`` to ``out_path`` (.xml) and its .bin atomically; return the .xml path."""
    xml_path, bin_path = _check_destination(out_path, overwrite=overwrite)
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
        raise FileNotFoundError(f"IR pair {xml_path} + {bin_path} not found; write it with "
                                "`segnas export --checkpoint RUN/checkpoint.pt --out MODEL.xml` "
                                "(Python: to_openvino(..., out_path=...))")
    return ov_core().read_model(xml_path)


def compile_ir(
    model_or_path: ov.Model | str | os.PathLike,
    *,
    precision: str = "f32",
    threads: int | None = DEFAULT_THREADS,
    hint: str | None = "LATENCY",
) -> ov.CompiledModel:
    """Compile a model for the CPU plugin (``openvino.compile_openvino``, the package's one way).

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


def resolve_input_size(compiled: ov.CompiledModel, input_size) -> tuple[int, int]:
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


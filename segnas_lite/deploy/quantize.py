"""Post-training INT8 quantisation with NNCF (an optional dependency: ``pip install 'nncf>=3.4'``).

INT8 changes the logits by more than any float tolerance, so a quantised model is judged by mask
agreement: ``parity.check_parity(..., precision="default")``.
"""
from __future__ import annotations

import os
from typing import Iterable

import numpy as np
import openvino as ov
import torch

from segnas_lite.deploy.export import ExportError, load_ir, static_input_size
from segnas_lite.deploy.openvino import no_telemetry
from segnas_lite.deploy.predictor import resize_batch
from segnas_lite.runio import MissingDependencyError


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
    ``parity.check_parity(..., precision="default")``: INT8 is judged by agreement, not by logits.
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
        return resize_batch(batch, ir_size).numpy()  # to a static IR's size

    images = list(calibration_images)
    if not images:
        raise ExportError("quantize_int8 needs at least one calibration image")
    dataset = nncf.Dataset(images, to_input)
    with no_telemetry():  # NNCF reports to OpenVINO's telemetry too
        return nncf.quantize(model, dataset, subset_size=min(subset_size, len(images)))

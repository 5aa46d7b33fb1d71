"""Segmentation models. Every model maps (N, 3, H, W) images to (N, num_classes, H, W) logits.

The hand-designed networks live here; ``segnas_lite.zoo.build_model`` builds any of them, or a
searched child, by name.
"""
from __future__ import annotations

from segnas_lite.models.fast_scnn import FastSCNN, fast_scnn
from segnas_lite.models.lraspp import LRASPP, lraspp_mobilenetv3_large, lraspp_mobilenetv3_small
from segnas_lite.models.mobilenetv3 import MobileNetV3Features, mobilenet_v3_large, mobilenet_v3_small


__all__ = [
    "FastSCNN", "fast_scnn", "LRASPP", "lraspp_mobilenetv3_large", "lraspp_mobilenetv3_small",
    "MobileNetV3Features", "mobilenet_v3_large", "mobilenet_v3_small",
]

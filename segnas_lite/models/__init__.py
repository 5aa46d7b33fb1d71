"""Segmentation models. Every model maps (N, 3, H, W) images to (N, num_classes, H, W) logits.

Build one by name with :func:`build_model`; the table below is a plain dict, so adding a model is
one import and one line.
"""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from segnas_lite.models.fast_scnn import FastSCNN, fast_scnn
from segnas_lite.models.lraspp import LRASPP, lraspp_mobilenetv3_large, lraspp_mobilenetv3_small
from segnas_lite.models.mobilenetv3 import MobileNetV3Features, mobilenet_v3_large, mobilenet_v3_small


def nas_child(*, num_classes: int, genotype: str, space: Any = None, **macro: Any) -> nn.Module:
    """The fixed network of a searched ``genotype`` (its JSON text) in the seed's macro
    (DeepLabV3+-style, ``nas/supernet.py``).

    ``macro``: fields of ``nas.MacroConfig`` (``aspp_channels``, ``decoder_channels``,
    ``aspp_rates``) as plain values, so a checkpoint's JSON model kwargs rebuild the same network.
    """
    from segnas_lite.nas import Genotype, MacroConfig, build_child
    return build_child(Genotype.from_json(genotype), num_classes=num_classes, space=space,
                       macro_config=MacroConfig(**macro))


def mbv3_baseline(*, num_classes: int, space: str = "seed", **macro: Any) -> nn.Module:
    """The seed's Table 2 baseline: the MobileNetV3 block in every layer of the same macro
    (``macro`` as for :func:`nas_child`)."""
    from segnas_lite.nas import Genotype, MacroConfig, build_child, get_space
    genotype = Genotype.uniform(get_space(space), "mbv3_3x3")
    return build_child(genotype, num_classes=num_classes, macro_config=MacroConfig(**macro))


# name -> keyword-only constructor taking ``num_classes`` (and model-specific options).
MODELS: dict[str, Callable[..., nn.Module]] = {
    "fast_scnn": fast_scnn,
    "lraspp_mobilenetv3_large": lraspp_mobilenetv3_large,
    "lraspp_mobilenetv3_small": lraspp_mobilenetv3_small,
    "mbv3_baseline": mbv3_baseline,
    "nas_child": nas_child,  # needs genotype=<JSON text>; `segnas train --genotype FILE` passes it
}


class UnknownModelError(ValueError):
    """Raised by :func:`build_model` for a name that is not in :data:`MODELS`."""


def available_models() -> list[str]:
    """The names :func:`build_model` accepts, sorted."""
    return sorted(MODELS)


def build_model(name: str, *, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build the model called ``name`` with ``num_classes`` output channels.

    Extra keyword arguments go to the constructor (e.g. ``aux=True`` for Fast-SCNN,
    ``width_mult=0.75`` or ``reduced_tail=True`` for LR-ASPP).
    """
    if name not in MODELS:
        raise UnknownModelError(
            f"unknown model {name!r}; choose one of {available_models()} "
            "(or add your constructor to segnas_lite.models.MODELS)")
    return MODELS[name](num_classes=num_classes, **kwargs)


__all__ = [
    "MODELS", "UnknownModelError", "available_models", "build_model", "mbv3_baseline", "nas_child",
    "FastSCNN", "fast_scnn", "LRASPP", "lraspp_mobilenetv3_large", "lraspp_mobilenetv3_small",
    "MobileNetV3Features", "mobilenet_v3_large", "mobilenet_v3_small",
]

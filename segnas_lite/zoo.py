"""Every network the package can build, by name, and the one reader of trained checkpoints.

``build_model`` covers the hand-designed models of ``segnas_lite.models`` and the children of the
NAS macro (``nas.build_child``): that is why it sits above both. ``load_trained`` is the only place
that turns a ``segnas train`` checkpoint back into a network (the CLI, the benchmarks, the notebooks
and distillation's teacher all call it).
"""
from __future__ import annotations

import os
from typing import Any, Callable

from torch import nn

from segnas_lite.errors import SegnasError
from segnas_lite.models import fast_scnn, lraspp_mobilenetv3_large, lraspp_mobilenetv3_small
from segnas_lite.nas import Genotype, MacroConfig, build_child, get_space
from segnas_lite.runio import CheckpointError, load_checkpoint


def nas_child(*, num_classes: int, genotype: str, space: Any = None, **macro: Any) -> nn.Module:
    """The fixed network of a searched ``genotype`` (its JSON text) in the seed's macro
    (DeepLabV3+-style, ``nas/supernet.py``).

    ``macro``: fields of ``nas.MacroConfig`` (``aspp_channels``, ``decoder_channels``,
    ``aspp_rates``) as plain values, so a checkpoint's JSON model kwargs rebuild the same network.
    """
    return build_child(Genotype.from_json(genotype), num_classes=num_classes, space=space,
                       macro_config=MacroConfig(**macro))


def mbv3_baseline(*, num_classes: int, space: str = "seed", **macro: Any) -> nn.Module:
    """The seed's Table 2 baseline: the MobileNetV3 block in every layer of the same macro
    (``macro`` as for :func:`nas_child`)."""
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


class UnknownModelError(SegnasError, ValueError):
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
            "(or add your constructor to segnas_lite.zoo.MODELS)")
    return MODELS[name](num_classes=num_classes, **kwargs)


def build_from_info(info: dict, num_classes: int) -> nn.Module:
    """Rebuild a model from the ``model_info`` a checkpoint stores (``{"name", "kwargs"}``)."""
    return build_model(info["name"], num_classes=num_classes, **info.get("kwargs", {}))


def load_trained(checkpoint: str | os.PathLike, *, frozen: bool = False) -> tuple[nn.Module, dict]:
    """(model in eval mode with its trained weights, the checkpoint's state dict).

    Read with ``weights_only=True`` (``runio.load_checkpoint``): a checkpoint cannot run code.
    ``frozen``: also switch off the weights' gradients (a distillation teacher).
    Raises ``CheckpointError`` for a file that does not say which model it holds."""
    state = load_checkpoint(checkpoint)
    info = state.get("model_info") if isinstance(state, dict) else None
    if not info or "model" not in state:
        raise CheckpointError(f"{checkpoint} does not say which model it holds; was it written by "
                              "`segnas train`?")
    model = build_from_info(info, int(state["num_classes"]))
    model.load_state_dict(state["model"])
    if frozen:
        for p in model.parameters():
            p.requires_grad_(False)
    return model.eval(), state


def saved_data(state: dict) -> dict:
    """The ``data_info`` a checkpoint carries: data path, class set, image size (``segnas train``
    saves it, so ``evaluate`` and ``predict`` need no repeated flags)."""
    return dict(state.get("data_info") or {})

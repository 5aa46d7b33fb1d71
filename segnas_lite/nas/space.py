"""Search spaces (a declarative list of layers) and genotypes (one op name per layer).

A ``SearchSpace`` says *what may be chosen*: for each layer of the chain backbone its input and output
channels, its stride and the tuple of candidate op names. A ``Genotype`` is *one choice*: the space's
name and one op name per layer. Both are plain data: no torch modules live here.

The macro network (``supernet.SegMacro``) puts a stride-2 stem before the chain, so the chain's layers
run at output strides 4, 8, 16 and 32; the last layer at each stride is the feature tap that the
decoder reads (the DeepLabV3+-style layout of the seed's Figure 3: ASPP on S32, additive skips from
S16, S8, S4; not DeepLabV3+'s output stride 16 and single S4 concatenation).
"""
from __future__ import annotations

import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from segnas_lite.errors import SegnasError
from segnas_lite.nas.ops import OPS, PROXYLESS_OPS, SEED_OPS


def pad_rows(rows: Sequence[Sequence[float]], fill: float = float("nan")) -> np.ndarray:
    """Per-layer lists of different lengths -> one ``(layers, max_ops)`` float64 array.

    Layer l's i-th value lands at ``[l, i]``; cells past a layer's last op hold ``fill`` (NaN by
    default, so ``np.nan*`` reductions and masked plots skip them). Used for alpha probabilities and
    latency tables alike, whose layers may offer different numbers of ops.
    """
    width = max(len(row) for row in rows)
    out = np.full((len(rows), width), fill, dtype=np.float64)
    for l, row in enumerate(rows):
        out[l, :len(row)] = row
    return out


class SpaceError(SegnasError, ValueError):
    """A search space is malformed (unknown op, zero op where it cannot be identity, bad strides)."""


class GenotypeError(SegnasError, ValueError):
    """A genotype does not fit its search space (wrong space name, length or op)."""


@dataclass(frozen=True)
class LayerSpec:
    """One searchable layer: ``in_ch -> out_ch`` at ``stride`` with candidate ``ops`` (names in OPS)."""

    in_ch: int
    out_ch: int
    stride: int
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        if self.stride not in (1, 2):
            raise SpaceError(f"stride must be 1 or 2, got {self.stride}")
        if not self.ops:
            raise SpaceError("a layer needs at least one candidate op")
        if len(set(self.ops)) != len(self.ops):
            raise SpaceError(f"duplicate op names in {self.ops}")
        unknown = [name for name in self.ops if name not in OPS]
        if unknown:
            raise SpaceError(f"unknown ops {unknown}; the catalogue (nas/ops.py) has {sorted(OPS)}")
        if "zero" in self.ops and not self.residual:
            raise SpaceError("'zero' is only allowed in a layer with stride 1 and in_ch == out_ch "
                             f"(it means 'skip the layer'); got {self}")

    @property
    def residual(self) -> bool:
        """Whether the layer adds a shortcut ``x + op(x)`` (stride 1 and ``in_ch == out_ch``)."""
        return self.stride == 1 and self.in_ch == self.out_ch


@dataclass(frozen=True)
class SearchSpace:
    """A stem (3x3 conv, stride 2, ``stem_channels``) followed by a chain of searchable layers.

    The chain must pass through output strides 4, 8, 16 and 32 (at least one layer at each) and end at
    32; ``taps()`` names the layer whose output feeds the decoder at each stride.
    """

    name: str
    layers: tuple[LayerSpec, ...]
    stem_channels: int = 16
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        channels = self.stem_channels
        for index, spec in enumerate(self.layers):
            if spec.in_ch != channels:
                raise SpaceError(f"layer {index} expects {spec.in_ch} input channels but the "
                                 f"previous layer gives {channels}")
            channels = spec.out_ch
        strides = self.output_strides()
        if not strides or strides[-1] != 32 or not {4, 8, 16, 32} <= set(strides):
            raise SpaceError(f"the chain must run at output strides 4, 8, 16 and end at 32 "
                             f"(after the stride-2 stem); got {strides}")

    def __len__(self) -> int:
        return len(self.layers)

    def output_strides(self) -> list[int]:
        """Output stride after each layer (the stem already divides by 2)."""
        strides, total = [], 2
        for spec in self.layers:
            total *= spec.stride
            strides.append(total)
        return strides

    def taps(self) -> dict[int, int]:
        """``{output stride: index of the last layer at that stride}`` for strides 4, 8, 16, 32."""
        return {stride: index for index, stride in enumerate(self.output_strides())}

    def num_choices(self) -> tuple[int, ...]:
        """Number of candidate ops per layer."""
        return tuple(len(spec.ops) for spec in self.layers)

    def size(self) -> int:
        """Number of distinct architectures (product of ``num_choices()``)."""
        return math.prod(self.num_choices())

    def layer_input_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """``(C, H, W)`` of each layer's input for an image of ``height x width`` (for timing ops
        in place). Every strided conv here pads ``k // 2`` so a stride-2 layer gives ``ceil(H / 2)``."""
        h, w = math.ceil(height / 2), math.ceil(width / 2)  # after the stride-2 stem
        shapes = []
        for spec in self.layers:
            shapes.append((spec.in_ch, h, w))
            if spec.stride == 2:
                h, w = math.ceil(h / 2), math.ceil(w / 2)
        return shapes

    def validate(self, genotype: "Genotype") -> None:
        """Raise ``GenotypeError`` unless ``genotype`` names this space and an allowed op per layer."""
        if genotype.space != self.name:
            raise GenotypeError(f"genotype is for space {genotype.space!r}, not {self.name!r}")
        if len(genotype.ops) != len(self.layers):
            raise GenotypeError(f"genotype has {len(genotype.ops)} ops but space {self.name!r} has "
                                f"{len(self.layers)} layers")
        for index, (name, spec) in enumerate(zip(genotype.ops, self.layers)):
            if name not in spec.ops:
                raise GenotypeError(f"layer {index} of space {self.name!r} cannot use {name!r}; "
                                    f"allowed: {spec.ops}")

    def random_genotype(self, rng: random.Random | int | None = None) -> "Genotype":
        """A uniformly random genotype; ``rng`` is a ``random.Random`` or an int seed."""
        rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        return Genotype(self.name, tuple(rng.choice(spec.ops) for spec in self.layers))

    def op_index(self, genotype: "Genotype") -> list[int]:
        """Per layer, the index of the genotype's op within ``LayerSpec.ops``."""
        self.validate(genotype)
        return [spec.ops.index(name) for name, spec in zip(genotype.ops, self.layers)]


@dataclass(frozen=True)
class MacroConfig:
    """The widths of the fixed parts around the searched chain (seed Fig. 3, DeepLabV3+-style layout).

    ``aspp_channels``: width of each ASPP branch; ``decoder_channels``: width of the ASPP output and
    of the additive decoder; ``aspp_rates``: one separable atrous branch per rate. The super-net, its
    children, the latency table and end-to-end measurements all take one of these, so the parts that
    are timed are the parts that are trained. (The number of classes belongs to the data, not here.)
    """

    aspp_channels: int = 64
    decoder_channels: int = 48
    aspp_rates: tuple[int, ...] = (2, 4)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aspp_rates", tuple(int(rate) for rate in self.aspp_rates))
        if self.aspp_channels < 1 or self.decoder_channels < 1:
            raise SpaceError(f"macro widths must be positive, got {self}")
        if any(rate < 1 for rate in self.aspp_rates):
            raise SpaceError(f"atrous rates must be >= 1, got {self.aspp_rates}")

    @classmethod
    def coerce(cls, value: MacroConfig | Mapping | None) -> MacroConfig:
        """``value`` itself, the defaults for ``None``, or a MacroConfig from a dict of its fields
        (e.g. ``{"aspp_channels": 64, "decoder_channels": 48}`` as older notebooks pass it)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        unknown = set(value) - {"aspp_channels", "decoder_channels", "aspp_rates"}
        if unknown:
            raise SpaceError(f"unknown macro settings {sorted(unknown)}; MacroConfig has "
                             "aspp_channels, decoder_channels and aspp_rates")
        return cls(**value)


@dataclass(frozen=True)
class Genotype:
    """One architecture: the space's name and one op name per layer (JSON-able)."""

    space: str
    ops: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))

    @classmethod
    def uniform(cls, space: SearchSpace, op: str) -> "Genotype":
        """The same op in every layer; ``uniform(seed_space(), "mbv3_3x3")`` is the MobileNetV3
        baseline of the seed's Table 2."""
        genotype = cls(space.name, (op,) * len(space))
        space.validate(genotype)
        return genotype

    def to_json(self) -> str:
        return json.dumps({"space": self.space, "ops": list(self.ops)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Genotype":
        try:
            data = json.loads(text)
            return cls(str(data["space"]), tuple(str(name) for name in data["ops"]))
        except (ValueError, KeyError, TypeError) as error:
            raise GenotypeError(f"not a genotype JSON ({{'space': ..., 'ops': [...]}}): {error}")

    def save(self, path: str | os.PathLike) -> None:
        """Write the JSON atomically (temporary file in the same folder, then ``os.replace``)."""
        from segnas_lite.runio import atomic_write_text
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Genotype":
        return cls.from_json(Path(path).read_text())


def chain_space(name: str, *, stem_channels: int, stages: Sequence[tuple[int, int]],
                ops: Sequence[str], zero_in_residual_layers: bool = False,
                description: str = "") -> SearchSpace:
    """Build a space from ``stages = [(channels, layers), ...]``, one stage per output stride
    4, 8, 16, 32: the first layer of a stage has stride 2, the others stride 1. Every layer gets
    ``ops``; residual layers also get ``"zero"`` when ``zero_in_residual_layers``."""
    if len(stages) != 4:
        raise SpaceError(f"need 4 stages (strides 4, 8, 16, 32), got {len(stages)}")
    layers, in_ch = [], stem_channels
    for out_ch, count in stages:
        for position in range(count):
            stride = 2 if position == 0 else 1
            layer_ops = tuple(ops)
            if zero_in_residual_layers and stride == 1 and in_ch == out_ch:
                layer_ops += ("zero",)
            layers.append(LayerSpec(in_ch, out_ch, stride, layer_ops))
            in_ch = out_ch
    return SearchSpace(name, tuple(layers), stem_channels, description)


SEED_STAGES = ((24, 2), (40, 3), (80, 3), (160, 2))
"""Channels and layers per stage (strides 4, 8, 16, 32) of the seed and ProxylessNAS spaces: the
MobileNetV3-Large widths 24/40/80/160 with 10 layers instead of 15, small enough to train at
128-256 px on a laptop CPU."""


def seed_space() -> SearchSpace:
    """The seed's space: its 7 ops (mbv3 3x3/5x5, dil 3x3/5x5, sep 3x3/5x5, shuffle) in every layer
    of a 16-channel stem + ``SEED_STAGES`` chain; 7**10 (about 2.8e8) architectures."""
    return chain_space("seed", stem_channels=16, stages=SEED_STAGES, ops=SEED_OPS,
                       description="seed blog post, Sec. 2.1: 7 ops per layer")


def proxyless_space() -> SearchSpace:
    """ProxylessNAS's space on the same chain: MBConv k3/5/7 x e3/6 everywhere, plus ``zero`` in
    the stride-1 layers (Cai et al., ICLR 2019; ``conv_candidates`` of the reference search script)."""
    return chain_space("proxyless", stem_channels=16, stages=SEED_STAGES, ops=PROXYLESS_OPS,
                       zero_in_residual_layers=True,
                       description="ProxylessNAS: MBConv k3/5/7 e3/6 + zero")


def tiny_space() -> SearchSpace:
    """A 5-layer space with narrow layers and 3 ops (+ zero in stride-1 layers) for fast tests."""
    return chain_space("tiny", stem_channels=8, stages=((8, 1), (16, 2), (16, 1), (24, 1)),
                       ops=("mbv3_3x3", "sep_3x3", "shuffle"), zero_in_residual_layers=True,
                       description="for unit tests")


SPACES: dict[str, Callable[[], SearchSpace]] = {
    "seed": seed_space,
    "proxyless": proxyless_space,
    "tiny": tiny_space,
}
"""Space name -> factory, so a saved Genotype can rebuild its space."""


def scaled_space(space: SearchSpace, width: float) -> SearchSpace:
    """``space`` with every channel count (stem and each layer) multiplied by ``width``.

    The width multiplier of MobileNets (Howard et al., 2017, Sec. 3.3): a thinner or wider copy of
    the same chain, with the same strides and candidate ops. Each count is rounded with the
    MobileNetV2/V3 rule (``layers.make_divisible``: nearest multiple of 8, at least 8, never below
    90% of the exact value); the ops derive their inner widths from these. ``width`` is rounded to 4
    decimals and written into the name, ``"seed-w0.75"``, which ``get_space`` parses back, so
    genotypes of a scaled space save, load and build like any other. The macro's ASPP and decoder
    widths (``MacroConfig``) are not part of the space and stay as they are.
    """
    from segnas_lite.models.layers import make_divisible  # here: the rest of this module needs no torch layers
    width = round(float(width), 4)
    if not math.isfinite(width) or width <= 0:
        raise SpaceError(f"width must be a positive number, got {width}")

    def scale(channels: int) -> int:
        return make_divisible(channels * width, 8)

    layers = tuple(LayerSpec(scale(spec.in_ch), scale(spec.out_ch), spec.stride, spec.ops)
                   for spec in space.layers)
    return SearchSpace(f"{space.name}-w{width:g}", layers, scale(space.stem_channels),
                       f"{space.description} (channels x{width:g})".strip())


_SCALED_NAME = re.compile(r"^(?P<base>.+)-w(?P<width>[0-9]+(?:\.[0-9]+)?)$")


def get_space(name: str) -> SearchSpace:
    """The space called ``name``: one of ``SPACES``, or ``"<name>-w<width>"`` for a space made by
    ``scaled_space`` (e.g. ``"seed-w0.75"``)."""
    if name in SPACES:
        return SPACES[name]()
    scaled = _SCALED_NAME.match(name)
    if scaled is not None:
        return scaled_space(get_space(scaled["base"]), float(scaled["width"]))
    raise GenotypeError(f"unknown space {name!r}; known spaces: {sorted(SPACES)}, or one of them "
                        "width-scaled as '<name>-w<width>' (e.g. 'seed-w0.75', see scaled_space); "
                        "for a custom space pass the SearchSpace object itself")

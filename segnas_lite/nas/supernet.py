"""The segmentation super-net (ProxylessNAS binary gates) and its fixed children.

Macro: the seed's Figure 3, a DeepLabV3+-*style* layout. DeepLabV3+ itself (Chen et al., ECCV 2018)
keeps the encoder at output stride 16 (atrous last block), runs ASPP there and concatenates the
upsampled result with the stride-4 features only; the seed's macro runs the chain down to S32, puts
ASPP on S32 and adds three skips (S16, S8, S4):

    image (N,3,H,W) -> stem 3x3 s2 (S2) -> chain of searchable layers (S4, S8, S16, S32)
        -> ASPP on S32 -> decoder: upsample x2 and ADD the 1x1-projected S16, S8, S4 features
        (addition, not concatenation, keeps the decoder narrow: seed Sec. 2.1)
        -> 1x1 classifier (S4) -> bilinear upsample to (H, W) -> logits (N, num_classes, H, W)

``SegMacro`` builds this around one module per chain layer. ``SegSuperNet`` puts a ``MixedOp`` in each
layer; ``ChildNet`` puts the plain op named by a ``Genotype``. Both are the same class underneath, so
the MobileNetV3 baseline of the seed's Table 2 is just ``build_child(Genotype.uniform(seed_space(),
"mbv3_3x3"), ...)``.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from segnas_lite.errors import SegnasError
from segnas_lite.models.layers import ConvBNAct, DepthwiseSeparable
from segnas_lite.nas.gates import binary_gate, rescale_two_path_
from segnas_lite.nas.ops import build_op, is_zero
from segnas_lite.nas.space import Genotype, LayerSpec, MacroConfig, SearchSpace, get_space

MODES = ("fixed", "single", "all")
ESTIMATORS = ("full_v2", "two")
ALPHA_INIT_STD = 1e-3
"""alpha ~ N(0, 1e-3): the reference search default (``--arch_init_type normal --arch_init_ratio
1e-3`` in ``mit-han-lab/proxylessnas/search/imagenet_arch_search.py``): all ops start equally likely."""


class MixedOpStateError(SegnasError, RuntimeError):
    """A MixedOp was asked for something its current mode / sampling state cannot give."""


class MixedOp(nn.Module):
    """The candidates of one layer plus their architecture parameters ``alpha``.

    Modes (``mode`` attribute):
      * ``"fixed"``:  run ``candidates[active]`` only; alpha gets no gradient (weight training with a
        sampled or chosen path, evaluation of a genotype).
      * ``"single"``: binary gates: only ``candidates[active]`` runs forward and backward, and alpha
        receives the ProxylessNAS Eq. 4 gradient (``estimator`` ``"full_v2"`` or ``"two"``, see
        ``gates.py``). Backward re-runs the other candidates without grad (N-1 or 1 extra forward
        passes), so train weights in ``"fixed"`` mode and switch to ``"single"`` for alpha steps.
      * ``"all"``:    DARTS: ``sum_k softmax(alpha)_k * o_k(x)``, every candidate in the graph.
    """

    def __init__(self, names: Sequence[str], candidates: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(names) != len(candidates) or not names:
            raise ValueError("need one name per candidate and at least one candidate")
        self.names = tuple(names)
        self.candidates = nn.ModuleList(candidates)
        self.alpha = nn.Parameter(torch.randn(len(names)) * ALPHA_INIT_STD)
        self.mode, self.estimator = "single", "full_v2"
        self.active = 0
        self.pair: tuple[int, int] | None = None  # "two" mode: (active, inactive)
        self._pair_alpha_before: torch.Tensor | None = None

    @classmethod
    def from_spec(cls, spec: LayerSpec) -> "MixedOp":
        return cls(spec.ops, [build_op(name, spec.in_ch, spec.out_ch, spec.stride)
                              for name in spec.ops])

    def probabilities(self) -> torch.Tensor:
        """``softmax(alpha)``, in the autograd graph (detach it to plot)."""
        return F.softmax(self.alpha, dim=0)

    @property
    def is_zero(self) -> bool:
        """True when the active path is the zero op (the layer is then skipped)."""
        return self.mode != "all" and is_zero(self.candidates[self.active])

    def set_active(self, op: int | str) -> None:
        """Choose the active path by index or name (clears a "two" mode pair)."""
        self.active = self.names.index(op) if isinstance(op, str) else int(op)
        self.pair, self._pair_alpha_before = None, None

    def sample(self, generator: torch.Generator | None = None, *, uniform: bool = False) -> int:
        """Sample the active path from ``p = softmax(alpha)`` (or uniformly) and return its index.

        In ``"two"`` mode (ProxylessNAS ``binarize``): draw two distinct candidates from ``p``, then
        the active one from the 2-way softmax over their alphas; the other is the ``pair`` partner.
        """
        n = len(self.names)
        with torch.no_grad():
            p = torch.full((n,), 1.0 / n) if uniform else self.probabilities().detach().cpu()
            if self.estimator == "two" and n >= 2:
                pair = torch.multinomial(p, 2, replacement=False, generator=generator).tolist()
                q = p.new_full((2,), 0.5) if uniform else F.softmax(self.alpha.detach().cpu()[pair], 0)
                c = int(torch.multinomial(q, 1, generator=generator))
                self.active, self.pair = pair[c], (pair[c], pair[1 - c])
                self._pair_alpha_before = self.alpha.detach()[list(self.pair)].clone()
            else:
                self.set_active(int(torch.multinomial(p, 1, generator=generator)))
        return self.active

    def path(self) -> tuple[int, tuple[int, int] | None]:
        """``(active, pair)``: what another process needs to run the same path (``set_path``)."""
        return self.active, self.pair

    def set_path(self, active: int, pair: Sequence[int] | None) -> None:
        """Run the path ``path()`` returned, in "two" mode with the same pair."""
        self.set_active(active)
        if pair is not None:
            self.pair = (int(pair[0]), int(pair[1]))
            self._pair_alpha_before = self.alpha.detach()[list(self.pair)].clone()

    def rescale_after_step(self) -> None:
        """"two" mode: keep the unsampled ops' probabilities (call once after the alpha step)."""
        if self.pair is not None and self._pair_alpha_before is not None:
            rescale_two_path_(self.alpha.data, self.pair, self._pair_alpha_before)
            self._pair_alpha_before = None

    def _run_candidate(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return self.candidates[index](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "all":
            p = self.probabilities()
            return sum(p[k] * op(x) for k, op in enumerate(self.candidates))
        out = self.candidates[self.active](x)
        if (self.mode == "fixed" or len(self.names) == 1 or self.is_zero
                or not torch.is_grad_enabled()):
            return out
        if self.estimator == "full_v2":
            involved, gates = tuple(range(len(self.names))), self.probabilities()
        else:
            if self.pair is None or self.pair[0] != self.active:
                raise MixedOpStateError("estimator 'two' needs the pair drawn by sample(); call "
                                        "sample() (not set_active) before a search step")
            involved = self.pair
            gates = F.softmax(self.alpha[list(involved)], dim=0)  # 2-way softmax over the pair
        return binary_gate(out, gates, x, self._run_candidate, involved=involved,
                           active=self.active)


class ChainLayer(nn.Module):
    """One backbone layer: ``x + op(x)`` when ``residual`` (stride 1, in == out), else ``op(x)``.

    The shortcut lives here, around the (mixed or fixed) op, as in ProxylessNAS's
    ``MobileInvertedResidualBlock``; a zero op therefore turns the layer into the identity.
    """

    def __init__(self, op: nn.Module, residual: bool) -> None:
        super().__init__()
        self.op, self.residual = op, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.residual:
            return self.op(x)
        if is_zero(self.op):
            return x  # "zero" = skip this layer; nothing runs, no alpha gradient (reference code)
        return x + self.op(x)


class ASPP(nn.Module):
    """A light ASPP (DeepLabV3, Chen et al., 2017, Sec. 3.3; separable as in DeepLabV3+): a 1x1
    branch, one depthwise-separable 3x3 branch per atrous rate and an image-pooling branch,
    concatenated and projected to ``out_ch`` by a 1x1 conv."""

    def __init__(self, in_ch: int, branch_ch: int, out_ch: int, rates: Sequence[int]) -> None:
        super().__init__()
        self.conv1x1 = ConvBNAct(in_ch, branch_ch, 1)
        self.atrous = nn.ModuleList(
            nn.Sequential(ConvBNAct(in_ch, in_ch, 3, groups=in_ch, dilation=rate),
                          ConvBNAct(in_ch, branch_ch, 1))
            for rate in rates)
        # No BN in the pooling branch: its 1x1 map would make BN fail for a batch of one.
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, branch_ch, 1),
                                  nn.ReLU(inplace=True))
        self.project = ConvBNAct(branch_ch * (2 + len(rates)), out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x).expand(-1, -1, *x.shape[-2:])  # (N, branch, 1, 1) -> (N, branch, H, W)
        branches = [self.conv1x1(x), *(branch(x) for branch in self.atrous), pooled]
        return self.project(torch.cat(branches, dim=1))


class AdditiveDecoder(nn.Module):
    """From S32 to S4: upsample x2, ADD the 1x1-projected encoder feature of that stride, refine with
    a depthwise-separable 3x3 (seed Fig. 3: "added" like a UNet, never concatenated)."""

    def __init__(self, skip_channels: dict[int, int], channels: int) -> None:
        super().__init__()
        self.strides = sorted(skip_channels, reverse=True)  # [16, 8, 4]
        self.project = nn.ModuleDict({f"s{s}": ConvBNAct(skip_channels[s], channels, 1, act="none")
                                      for s in self.strides})
        self.refine = nn.ModuleDict({f"s{s}": DepthwiseSeparable(channels, channels)
                                     for s in self.strides})

    def forward(self, x: torch.Tensor, features: dict[int, torch.Tensor]) -> torch.Tensor:
        for s in self.strides:
            skip = self.project[f"s{s}"](features[s])
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.refine[f"s{s}"](x + skip)
        return x


class SegMacro(nn.Module):
    """Stem -> chain of ``ChainLayer(layer_ops[l])`` -> ASPP -> additive decoder -> classifier.

    ``layer_ops`` holds one module per layer of ``space`` (a MixedOp or a fixed op); everything
    else is fixed, with the widths of ``macro_config`` (default ``MacroConfig()``).
    ``forward_backbone`` and ``forward_head`` are split so that the fixed parts can be timed on their
    own (latency tables).
    """

    def __init__(self, space: SearchSpace, layer_ops: Sequence[nn.Module], *, num_classes: int,
                 macro_config: MacroConfig | None = None) -> None:
        super().__init__()
        if len(layer_ops) != len(space.layers):
            raise ValueError(f"need {len(space.layers)} layer ops, got {len(layer_ops)}")
        macro = MacroConfig.coerce(macro_config)
        self.space, self.num_classes, self.macro_config = space, num_classes, macro
        self.stem = ConvBNAct(3, space.stem_channels, 3, stride=2, act="hswish")
        self.layers = nn.ModuleList(ChainLayer(op, spec.residual)
                                    for op, spec in zip(layer_ops, space.layers))
        self.output_strides = space.output_strides()
        tap_channels = {s: space.layers[i].out_ch for s, i in space.taps().items()}
        self.aspp = ASPP(tap_channels[32], macro.aspp_channels, macro.decoder_channels,
                         macro.aspp_rates)
        self.decoder = AdditiveDecoder({s: tap_channels[s] for s in (16, 8, 4)},
                                       macro.decoder_channels)
        self.classifier = nn.Conv2d(macro.decoder_channels, num_classes, 1)

    def forward_backbone(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """``{4: (N,C4,H/4,W/4), 8: ..., 16: ..., 32: ...}``: the last layer output at each stride."""
        features = {}
        x = self.stem(x)
        for layer, stride in zip(self.layers, self.output_strides):
            x = layer(x)
            features[stride] = x
        return features

    def forward_head(self, features: dict[int, torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        y = self.aspp(features[32])  # (N, decoder, H/32, W/32)
        y = self.decoder(y, features)  # (N, decoder, H/4, W/4)
        y = self.classifier(y)  # (N, classes, H/4, W/4)
        return F.interpolate(y, size=tuple(size), mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_backbone(x), x.shape[-2:])


class SegSuperNet(SegMacro):
    """The super-net: a ``MixedOp`` in every chain layer (ProxylessNAS on the seed's macro)."""

    def __init__(self, space: SearchSpace, *, num_classes: int,
                 macro_config: MacroConfig | None = None, mode: str = "single",
                 estimator: str = "full_v2") -> None:
        super().__init__(space, [MixedOp.from_spec(spec) for spec in space.layers],
                         num_classes=num_classes, macro_config=macro_config)
        self.set_mode(mode, estimator=estimator)

    @property
    def mixed_ops(self) -> list[MixedOp]:
        return [layer.op for layer in self.layers]

    def set_mode(self, mode: str, *, estimator: str | None = None) -> None:
        """``"fixed"`` (weights only), ``"single"`` (binary gates) or ``"all"`` (DARTS sum)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
        if estimator is not None and estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; choose one of {ESTIMATORS}")
        for op in self.mixed_ops:
            op.mode = mode
            op.estimator = estimator or op.estimator

    def sample_genotype(self, generator: torch.Generator | int | None = None, *,
                        uniform: bool = False) -> Genotype:
        """Sample every layer's active path from p (or uniformly, for warm-up) and return it."""
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        for op in self.mixed_ops:
            op.sample(generator, uniform=uniform)
        return self.genotype()

    def set_genotype(self, genotype: Genotype) -> None:
        """Make ``genotype``'s ops the active paths (raises ``GenotypeError`` if it does not fit)."""
        for op, index in zip(self.mixed_ops, self.space.op_index(genotype)):
            op.set_active(index)

    def paths(self) -> list[tuple[int, tuple[int, int] | None]]:
        """Every layer's ``MixedOp.path()``: the sampled state, to send to other processes."""
        return [op.path() for op in self.mixed_ops]

    def set_paths(self, paths: Sequence[tuple[int, Sequence[int] | None]]) -> None:
        """Put the state ``paths()`` returned (on another process) into every layer."""
        for op, (active, pair) in zip(self.mixed_ops, paths):
            op.set_path(active, pair)

    def genotype(self) -> Genotype:
        """The currently active paths."""
        return Genotype(self.space.name, tuple(op.names[op.active] for op in self.mixed_ops))

    def arch_parameters(self) -> Iterator[nn.Parameter]:
        for op in self.mixed_ops:
            yield op.alpha

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def probabilities(self) -> list[torch.Tensor]:
        """Per layer ``softmax(alpha_l)``, in the graph (for the expected latency)."""
        return [op.probabilities() for op in self.mixed_ops]

    def rescale_two_path(self) -> None:
        """"two" estimator: call right after ``arch_optimizer.step()``."""
        for op in self.mixed_ops:
            op.rescale_after_step()

    def extract_child(self, genotype: Genotype | None = None) -> "ChildNet":
        """A ``ChildNet`` for ``genotype`` (default: the active paths) that inherits these weights.

        Module by module: each chain layer's chosen candidate gives its weights to the child's op of
        that layer; every other part (stem, ASPP, decoder, classifier) is copied whole. The alphas
        have no place in the child and stay behind.
        """
        genotype = genotype or self.genotype()
        child = ChildNet(genotype, space=self.space, num_classes=self.num_classes,
                         macro_config=self.macro_config)
        chosen = self.space.op_index(genotype)
        for layer, child_layer, index in zip(self.layers, child.layers, chosen):
            child_layer.op.load_state_dict(layer.op.candidates[index].state_dict())
        for name, part in child.named_children():
            if name != "layers":
                part.load_state_dict(getattr(self, name).state_dict())
        return child


class ChildNet(SegMacro):
    """The macro with one fixed op per layer, as named by ``genotype``: plain modules, exportable."""

    def __init__(self, genotype: Genotype, *, num_classes: int, space: SearchSpace | None = None,
                 macro_config: MacroConfig | None = None) -> None:
        space = space or get_space(genotype.space)
        space.validate(genotype)
        ops = [build_op(name, spec.in_ch, spec.out_ch, spec.stride)
               for name, spec in zip(genotype.ops, space.layers)]
        super().__init__(space, ops, num_classes=num_classes, macro_config=macro_config)
        self.genotype = genotype


def build_child(genotype: Genotype, *, num_classes: int, space: SearchSpace | None = None,
                macro_config: MacroConfig | None = None) -> ChildNet:
    """Build the fixed network of ``genotype`` (its space is looked up by name unless given)."""
    return ChildNet(genotype, num_classes=num_classes, space=space, macro_config=macro_config)

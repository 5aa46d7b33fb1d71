"""Latency tables: every (layer, op) of a search space timed in place on this CPU.

ProxylessNAS (Cai et al., ICLR 2019, Sec. 3.3) makes latency differentiable by predicting it from a
table: ``LAT(net) = fixed + sum_l LAT(l, op_l)``. ``build_table`` measures each entry *in place*: the
op is built with its layer's real channels and stride and run on an input of the layer's real shape
for the target's image size; the fixed parts (stem, ASPP, decoder, classifier, upsampling) are one
more entry. ``predictor.build_predictor`` then calibrates the table on end-to-end measurements of
random subnets (``calibrate.py``), which the deployment backend needs: on OpenVINO the plain sum
cannot even rank networks.

Where the network runs is one ``deploy.target.Target`` (backend ``"torch"`` or ``"openvino"``, a
precision, threads, an image side). All timing goes through ``segnas_lite.timing``. Tables are
cached on disk, keyed by CPU model and instruction-set flags (``flags.cpu_id``), backend,
precision, threads, image size, space and macro widths, and by the clock: a table built inside
``timing.pace.pacing`` holds paced ms and has its own key.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from segnas_lite import flags
from segnas_lite.deploy.target import Target
from segnas_lite.errors import SegnasError
from segnas_lite.runio import atomic_write_text, progress
from segnas_lite.deploy.bench import prepare
from segnas_lite.timing import clock_settings, time_runner
from segnas_lite.nas.measure import load_monitor
from segnas_lite.nas.ops import build_op
from segnas_lite.nas.space import Genotype, MacroConfig, SearchSpace, pad_rows
from segnas_lite.nas.supernet import ChainLayer, ChildNet, SegMacro


class LatencyError(SegnasError, RuntimeError):
    """A latency table that cannot be used (another space, no target recorded, ...)."""


# --------------------------------------------------------------------------- the table
@dataclass
class LatencyTable:
    """``ms[l][i]``: latency of op ``space.layers[l].ops[i]`` in layer l; ``fixed_ms``: the rest."""

    space: str
    ops: list[list[str]]
    ms: list[list[float]]
    fixed_ms: float
    meta: dict = field(default_factory=dict)

    def tensor(self) -> torch.Tensor:
        """``(L, K_max)`` float64 tensor, NaN beyond each layer's ops (for ``expected_latency``)."""
        return torch.from_numpy(pad_rows(self.ms))

    def predict(self, genotype: Genotype) -> float:
        """Predicted end-to-end latency (ms) of ``genotype``."""
        if genotype.space != self.space or len(genotype.ops) != len(self.ops):
            raise LatencyError(f"genotype for space {genotype.space!r} with {len(genotype.ops)} "
                               f"layers does not fit this table ({self.space!r}, {len(self.ops)})")
        return self.fixed_ms + sum(row[names.index(op)] for row, names, op
                                   in zip(self.ms, self.ops, genotype.ops))

    def fastest(self) -> tuple[Genotype, float]:
        """The fastest architecture the table allows and its predicted latency."""
        return self._extreme(min)

    def slowest(self) -> tuple[Genotype, float]:
        """The slowest architecture the table allows and its predicted latency."""
        return self._extreme(max)

    def _extreme(self, pick: Callable) -> tuple[Genotype, float]:
        """Per layer the op whose latency ``pick`` (``min`` or ``max``) chooses; the sum is then
        that extreme of the additive model too."""
        ops = tuple(names[pick(range(len(row)), key=row.__getitem__)]
                    for row, names in zip(self.ms, self.ops))
        genotype = Genotype(self.space, ops)
        return genotype, self.predict(genotype)

    @property
    def target(self) -> Target:
        """The target the table was measured for (from ``meta``, as ``build_table`` records it)."""
        try:
            m = self.meta
            return Target(m["backend"], m["precision"], m["threads"], m["image_size"][0])
        except KeyError as exc:
            raise LatencyError(f"this table records no target (missing {exc}): pass one") from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "LatencyTable":
        data = json.loads(text)
        return cls(data["space"], data["ops"], data["ms"], float(data["fixed_ms"]),
                   data.get("meta", {}))

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LatencyTable":
        return cls.from_json(Path(path).read_text())


# --------------------------------------------------------------------------- the cache
def cache_dir() -> Path:
    """``$SEGNAS_CACHE/latency`` (default ``~/.cache/segnas_lite/latency``)."""
    return flags.cache_dir() / "latency"


def table_key(space: SearchSpace, target: Target, *,
              macro_config: MacroConfig | dict | None = None, settings: dict | None = None) -> str:
    """A readable cache key; the space's layers, the macro widths and ``settings`` (the number of
    classes and the timing settings) are folded into a hash, so changing any of them re-measures."""
    macro = asdict(MacroConfig.coerce(macro_config))
    folded = sorted({**macro, **(settings or {})}.items())
    fingerprint = hashlib.sha1(repr((space.layers, space.stem_channels,
                                     folded)).encode()).hexdigest()[:10]
    cpu = "".join(c if c.isalnum() else "-" for c in flags.cpu_id())[:72]
    h, w = target.shape
    return (f"{space.name}_{fingerprint}_{target.backend}-{target.precision}_t{target.threads}_"
            f"{h}x{w}_{cpu}")


# --------------------------------------------------------------------------- measuring it
class _FixedParts(nn.Module):
    """Stem + ASPP + decoder + classifier + upsampling of a macro, on stand-in features.

    ``forward`` runs the real stem on the image, and the real head on zero features of each tap's
    shape, so it costs what the fixed parts of any architecture cost.
    """

    def __init__(self, macro: SegMacro, feature_shapes: dict[int, tuple[int, ...]]) -> None:
        super().__init__()
        self.stem, self.aspp = macro.stem, macro.aspp
        self.decoder, self.classifier = macro.decoder, macro.classifier
        self.head = macro.forward_head
        self.shapes = feature_shapes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        features = {s: stem.new_zeros(shape) for s, shape in self.shapes.items()}
        return self.head(features, x.shape[-2:]) + stem.mean()


def table_blocks(space: SearchSpace, image_size: Sequence[int], *, num_classes: int,
                 macro_config: MacroConfig) -> dict:
    """What a table times: ``{(layer, op name): ChainLayer}`` for every op in place, and
    ``"fixed"``: the stem and head of the macro on stand-in features of the real shapes."""
    h, w = image_size
    blocks: dict = {(l, name): ChainLayer(build_op(name, spec.in_ch, spec.out_ch, spec.stride),
                                          spec.residual)
                    for l, spec in enumerate(space.layers) for name in spec.ops}
    macro = ChildNet(Genotype(space.name, tuple(spec.ops[0] for spec in space.layers)),
                     space=space, num_classes=num_classes, macro_config=macro_config).eval()
    with torch.no_grad():
        features = macro.forward_backbone(torch.zeros(1, 3, h, w))
    blocks["fixed"] = _FixedParts(macro, {s: tuple(f.shape) for s, f in features.items()})
    return blocks


def build_table(space: SearchSpace, *, target: Target, warmup: int = 3, runs: int = 10,
                rounds: int = 2, num_classes: int = 2,
                macro_config: MacroConfig | dict | None = None, use_cache: bool = True,
                refresh: bool = False, quiet: bool = False) -> LatencyTable:
    """Time every (layer, op) of ``space`` in place and the fixed parts on ``target``; cache it.

    ``use_cache=False`` neither reads nor writes the cache; ``refresh=True`` re-measures and
    replaces the cached table (do this when the machine was busy while the cached one was taken:
    timings taken under load can be many times too slow; ``meta["load"]`` says how busy it was).

    ``macro_config`` (a ``MacroConfig``, or a dict of its fields) gives the macro's widths, so the
    fixed part is timed with the widths the super-net will use.
    """
    macro_config = MacroConfig.coerce(macro_config)
    backend, precision, threads = target.backend, target.precision, target.threads
    h, w = target.shape
    key = table_key(space, target, macro_config=macro_config,
                    settings={"num_classes": num_classes, "warmup": warmup, "runs": runs,
                              "rounds": rounds, **clock_settings()})
    path = cache_dir() / f"{key}.json"
    if use_cache and not refresh and path.exists():
        return LatencyTable.load(path)

    torch.manual_seed(0)
    shapes = space.layer_input_shapes(h, w)
    blocks = table_blocks(space, (h, w), num_classes=num_classes, macro_config=macro_config)
    runners = {entry: prepare(block, target.input_shape() if entry == "fixed"
                              else (1, *shapes[entry[0]]),
                              backend=backend, precision=precision, threads=threads)
               for entry, block in progress(blocks.items(), quiet=quiet, total=len(blocks),
                                            desc=f"prepare ({backend} {precision})")}
    # Each entry is the best of ``rounds`` medians taken in separate passes over the whole table,
    # so a burst of load from another program inflates one pass, not the entry.
    best: dict = {}
    jobs = [(r, entry) for r in range(rounds) for entry in runners]
    with load_monitor("the latency table", target) as monitor:
        for _, entry in progress(jobs, quiet=quiet, desc=f"latency table ({backend} {precision})"):
            ms = time_runner(runners[entry], warmup=warmup, runs=runs).median_ms
            best[entry] = min(ms, best.get(entry, math.inf))
    ms = [[best[(l, name)] for name in spec.ops] for l, spec in enumerate(space.layers)]
    ran = next(iter(runners.values())).precision
    table = LatencyTable(space.name, [list(spec.ops) for spec in space.layers], ms, best["fixed"],
                         meta={"backend": backend, "precision": precision, "ran_precision": ran,
                               "threads": threads, "image_size": [h, w], "cpu": flags.cpu_name(),
                               "cpu_id": flags.cpu_id(),
                               "warmup": warmup, "runs": runs, "rounds": rounds,
                               "statistic": f"min over {rounds} rounds of the median of {runs} runs",
                               "key": key, "calibrated": False, "load": monitor.report.to_dict(),
                               "clock": clock_settings() or {"clock": "wall"},
                               "torch": torch.__version__,
                               "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    if use_cache:
        table.save(path)
    return table

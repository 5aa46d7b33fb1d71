"""What decides a search: ``SearchConfig`` (saved in every ``History``) and the ``--quick`` settings.

Reference defaults are those of ProxylessNAS (Cai et al., ICLR 2019) and its code; the seed's two
changes are ``schedule="decoupled"`` and the hard latency ``constraint``.
"""
from __future__ import annotations

from dataclasses import dataclass

from segnas_lite.errors import SegnasError
from segnas_lite.data import IGNORE_INDEX
from segnas_lite.timing import PRECISIONS
from segnas_lite.nas.gates import LATENCY_FORMS
from segnas_lite.nas.latency import BACKENDS


class SearchConfigError(SegnasError, ValueError):
    """A search setting that cannot work (unknown option, too little data, table of another space)."""


# --------------------------------------------------------------------------- configuration
@dataclass
class SearchConfig:
    """Everything that decides a search (saved in ``History.config``).

    Reference defaults (``mit-han-lab/proxylessnas``, ``search/imagenet_arch_search.py``): weights SGD
    momentum 0.9 Nesterov, cosine schedule, weight decay 4e-5; alpha Adam lr 1e-3, betas (0, 0.999),
    eps 1e-8, no weight decay; ``mul#log`` latency loss with a = 0.2, b = 0.3; an alpha step every 5
    weight batches. Two defaults differ from the reference, against the collapse onto the cheapest
    op seen with it: ``latency_form="hinge"`` (no pull once E[LAT] is inside the budget; the hard
    constraint keeps every sample there) and ``warmup_sampling="fair"`` (the warm-up trains every
    op equally, slow ones included, instead of only those that fit). ``weight_lr`` is higher than the reference's 0.025 (batch 256 on ImageNet) because
    our searches are a few hundred steps long.
    """

    image_size: int = 128
    batch_size: int = 8
    warmup_epochs: int = 2
    search_epochs: int = 2
    steps_per_epoch: int | None = 20     # cap on batches per epoch; None = the whole split
    weight_lr: float = 0.05
    weight_momentum: float = 0.9
    weight_decay: float = 4e-5
    arch_lr: float = 1e-3
    arch_betas: tuple[float, float] = (0.0, 0.999)
    arch_eps: float = 1e-8
    budget_ms: float | None = None       # None: median prediction of random architectures
    budget_quantile: float = 0.4         # no budget given: this quantile of random subnets' latency
    latency_form: str = "hinge"          # "hinge", "target", "additive" (lam), "mul_log" (a, b), "none"
    latency_a: float = 0.2
    latency_b: float = 0.3
    latency_lam: float = 0.1
    estimator: str = "full_v2"           # "full_v2" or "two"
    schedule: str = "decoupled"          # "decoupled" (seed) or "interleaved" (ProxylessNAS)
    arch_every: int = 5                  # interleaved: one alpha step every this many weight steps
    warmup_sampling: str = "fair"        # "fair": uniform paths, no budget check (every op trains
                                         # equally); "constrained": uniform under the budget (seed)
    distill_weight: float = 0.0          # weight of the distillation term in weight steps (0 = off)
    distill_temperature: float = 2.0     # softening temperature T of the teacher (Hinton et al.)
    constraint: str = "predicted"        # "predicted" (table) or "measured" (end to end, cached)
    max_resample: int = 100
    arch_fraction: float = 0.5           # share of the training data held out for alpha steps
    alpha_bn: str = "train"              # BatchNorm mode in alpha steps: "train" (reference) or "eval"
    backend: str = "openvino"            # where latency is measured: the deployment target
    precision: str = "f32"               # OpenVINO inference precision ("f32", "bf16", "default")
    latency_size: int | None = None      # image side the latency is for (None: image_size)
    threads: int = 2                     # for measured latencies
    measure_child: bool = True           # derive in a closed loop on measured latency (derive.py)
    max_derive_tries: int = 5            # how often the closed loop may tighten the target
    ignore_index: int = IGNORE_INDEX
    seed: int = 0
    quiet: bool = False

    def __post_init__(self) -> None:
        self.arch_betas = tuple(self.arch_betas)
        choices = {"latency_form": LATENCY_FORMS, "estimator": ("full_v2", "two"),
                   "warmup_sampling": ("fair", "constrained"),
                   "schedule": ("decoupled", "interleaved"), "constraint": ("predicted", "measured"),
                   "alpha_bn": ("train", "eval"), "backend": BACKENDS, "precision": PRECISIONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SearchConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.warmup_epochs < 0 or self.search_epochs < 0 or self.batch_size < 1:
            raise SearchConfigError("epochs must be >= 0 and batch_size >= 1")
        if not 0.0 < self.arch_fraction < 1.0:
            raise SearchConfigError(f"arch_fraction must be in (0, 1), got {self.arch_fraction}")
        if self.max_resample < 1 or self.arch_every < 1 or self.max_derive_tries < 1:
            raise SearchConfigError("max_resample, arch_every and max_derive_tries must be >= 1")
        if not 0.0 < self.budget_quantile < 1.0:
            raise SearchConfigError(f"budget_quantile must be in (0, 1), got {self.budget_quantile}")
        if self.distill_weight < 0 or self.distill_temperature <= 0:
            raise SearchConfigError("distill_weight must be >= 0 and distill_temperature > 0")
        if self.backend == "torch" and self.precision not in ("f32", "default"):
            raise SearchConfigError(f"the torch backend runs f32, not {self.precision!r}")

    @property
    def latency_shape(self) -> tuple[int, int]:
        """(H, W) that latencies are predicted and measured for (the deployment size)."""
        side = self.latency_size or self.image_size
        return side, side

    @property
    def total_epochs(self) -> int:
        return self.warmup_epochs + self.search_epochs


QUICK = dict(batch_size=8, warmup_epochs=2, search_epochs=2, steps_per_epoch=10, arch_lr=0.1)
"""``--quick``: about 40 batches in all on 128x128 SyntheticPortraits. With so few alpha steps the
reference alpha lr (1e-3) would barely move p, so quick mode uses 0.1 to make the trend visible
(20 Adam steps of about 0.1 each move a logit by up to 2: p from 1/7 to about 0.5)."""

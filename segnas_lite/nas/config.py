"""What decides a search: ``SearchConfig`` (saved in every ``History``), its ``quick()`` settings.

Reference defaults are those of ProxylessNAS (Cai et al., ICLR 2019) and its code; the seed's two
changes are ``schedule="decoupled"`` and the hard latency ``constraint``. Where the searched network
will run (backend, precision, threads, deployment image side) is one ``deploy.target.Target``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from segnas_lite.errors import SegnasError
from segnas_lite.data import IGNORE_INDEX
from segnas_lite.deploy.target import Target
from segnas_lite.nas.evolution import EvolutionConfig
from segnas_lite.nas.gates import LATENCY_FORMS
from segnas_lite.nas.predictor import NUM_FIT


class SearchConfigError(SegnasError, ValueError):
    """A search setting that cannot work (unknown option, too little data, table of another space)."""


WARMUP_SAMPLING = ("fair", "strict_fair", "constrained")  # which paths a warm-up step trains
STRATEGIES = ("gradient", "evolution", "random")          # how the trained super-net is searched
SANDWICH = 2  # the default sandwich: the best-ranking warm-up of benchmarks/rank.py (README)


@dataclass
class SearchConfig:
    """Everything that decides a search (saved in ``History.config``).

    Reference defaults (``mit-han-lab/proxylessnas``, ``search/imagenet_arch_search.py``): weights SGD
    momentum 0.9 Nesterov, cosine schedule, weight decay 4e-5; alpha Adam lr 1e-3, betas (0, 0.999),
    eps 1e-8, no weight decay; ``mul#log`` latency loss with a = 0.2, b = 0.3; an alpha step every 5
    weight batches. Two defaults differ from the reference, against the collapse onto the cheapest
    op seen with it: ``latency_form="hinge"`` (no pull once E[LAT] is inside the budget; the hard
    constraint keeps every sample there) and ``warmup_sampling="fair"`` (the warm-up trains every
    op equally, slow ones included, instead of only those that fit). ``weight_lr`` is higher than
    the reference's 0.025 (batch 256 on ImageNet) because our searches are a few hundred steps long.

    ``image_size`` is the side the super-net trains at; ``target.image_size`` the side the latency
    is predicted and measured for (the deployment size; often the same, set both).

    Training a super-net that ranks (``warmup.py``; ../shared/DESIGN.md, "Judging a search"):
    ``warmup_sampling="strict_fair"`` (FairNAS), ``sandwich`` and ``inplace_distill`` (BigNAS),
    ``bn_recalibration`` (once-for-all) before every score with inherited weights. The defaults
    are the best of ``benchmarks/rank.py``'s ablation (the README's table): the sandwich with
    ``SANDWICH`` random paths, in-place distillation, BatchNorm recalibrated on 256 images. The
    sandwich is left out (``sandwich=None`` resolves to 0) where it cannot run: a constrained
    warm-up, or an external teacher (``distill_weight`` > 0). ``strategy`` picks how the super-net
    is searched: alpha steps (``"gradient"``), or ``"evolution"`` / ``"random"`` on its estimates
    after the warm-up (``strategies.py``).
    """

    image_size: int = 256                # training image side
    target: Target = field(default_factory=Target)  # where latency is predicted and measured
    batch_size: int = 8
    warmup_epochs: int = 2
    search_epochs: int = 2
    steps_per_epoch: int | None = 20     # cap on batches per epoch; None = the whole split
    train_length: int | None = None      # training images to draw (synthetic); None = the data's own
    weight_lr: float = 0.05
    weight_momentum: float = 0.9
    weight_decay: float = 4e-5
    arch_lr: float = 1e-3
    arch_betas: tuple[float, float] = (0.0, 0.999)
    arch_eps: float = 1e-8
    budget_ms: float | None = None       # None: the budget_quantile of random architectures
    budget_quantile: float = 0.4         # ... of their predicted latency (constraint.default_budget)
    latency_form: str = "hinge"          # "hinge", "target", "additive" (lam), "mul_log" (a, b), "none"
    latency_a: float = 0.2
    latency_b: float = 0.3
    latency_lam: float = 0.1
    calibrate: bool = True               # fit the table to end-to-end measurements (predictor.py)
    num_fit: int = NUM_FIT               # random subnets measured for that fit
    estimator: str = "full_v2"           # "full_v2" or "two"
    schedule: str = "decoupled"          # "decoupled" (seed) or "interleaved" (ProxylessNAS)
    arch_every: int = 5                  # interleaved: one alpha step every this many weight steps
    warmup_sampling: str = "fair"        # "fair": uniform paths, no budget check (every op trains
                                         # equally); "strict_fair": FairNAS cycles (every op of a
                                         # layer once per cycle); "constrained": uniform under the
                                         # budget (seed)
    sandwich: int | None = None          # warm-up: slowest + fastest + this many random paths per
                                         # step, gradients summed (0 = one path; warmup.py). None:
                                         # SANDWICH, or 0 where a sandwich cannot run (constrained
                                         # warm-up, an external teacher)
    inplace_distill: bool | None = None  # with sandwich: the slowest path teaches the others
                                         # (None: whenever there is a sandwich)
    bn_recalibration: int = 256          # training images to re-estimate BatchNorm statistics with
                                         # before a subnet is scored with inherited weights (0 = off)
    strategy: str = "gradient"           # "gradient" (ProxylessNAS alpha steps), or "evolution" /
                                         # "random" on the super-net after the warm-up (no alpha
                                         # steps: search_epochs do not run; strategies.py)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)  # strategy="evolution"
    evaluations: int | None = None       # random: subnets scored (None: as many as evolution
                                         # scores at most, EvolutionConfig.max_evaluations)
    distill_weight: float = 0.0          # weight of the distillation term in weight steps (0 = off)
    distill_temperature: float = 2.0     # softening temperature T of the teacher (Hinton et al.),
                                         # external or in place
    constraint: str = "predicted"        # "predicted" (table) or "measured" (end to end, cached)
    max_resample: int = 100
    arch_fraction: float = 0.5           # share of the training data held out for alpha steps
    alpha_bn: str = "train"              # BatchNorm mode in alpha steps: "train" (reference) or "eval"
    measure_child: bool = True           # derive in a closed loop on measured latency (derive.py)
    max_derive_tries: int = 5            # how often the closed loop may tighten the target
    ignore_index: int = IGNORE_INDEX
    seed: int = 0
    quiet: bool = False
    device: str = "auto"                 # where the super-net trains: "auto", "cpu", "cuda", "cuda:N"
                                         # (latency is always predicted and measured on ``target``)

    def __post_init__(self) -> None:
        self.arch_betas = tuple(self.arch_betas)
        if not isinstance(self.target, Target):
            raise SearchConfigError(f"target must be a deploy.target.Target, got {self.target!r}")
        if not isinstance(self.evolution, EvolutionConfig):
            raise SearchConfigError(f"evolution must be a nas.evolution.EvolutionConfig, got "
                                    f"{self.evolution!r}")
        choices = {"latency_form": LATENCY_FORMS, "estimator": ("full_v2", "two"),
                   "warmup_sampling": WARMUP_SAMPLING, "strategy": STRATEGIES,
                   "schedule": ("decoupled", "interleaved"), "constraint": ("predicted", "measured"),
                   "alpha_bn": ("train", "eval")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SearchConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.warmup_epochs < 0 or self.search_epochs < 0 or self.batch_size < 1:
            raise SearchConfigError("epochs must be >= 0 and batch_size >= 1")
        if not 0.0 < self.arch_fraction < 1.0:
            raise SearchConfigError(f"arch_fraction must be in (0, 1), got {self.arch_fraction}")
        if self.max_resample < 1 or self.arch_every < 1 or self.max_derive_tries < 1:
            raise SearchConfigError("max_resample, arch_every and max_derive_tries must be >= 1")
        if self.num_fit < 1 or (self.train_length is not None and self.train_length < 1):
            raise SearchConfigError("num_fit and train_length must be >= 1")
        if not 0.0 < self.budget_quantile < 1.0:
            raise SearchConfigError(f"budget_quantile must be in (0, 1), got {self.budget_quantile}")
        if self.distill_weight < 0 or self.distill_temperature <= 0:
            raise SearchConfigError("distill_weight must be >= 0 and distill_temperature > 0")
        self._check_supernet_training()

    def _check_supernet_training(self) -> None:
        """The sandwich, in-place distillation, BN recalibration and strategy settings; resolves
        the defaults of ``sandwich`` and ``inplace_distill`` (None) first."""
        if self.sandwich is None:  # the rank study's warm-up, where it can run
            possible = self.warmup_sampling != "constrained" and self.distill_weight == 0
            self.sandwich = SANDWICH if possible else 0
        if self.inplace_distill is None:
            self.inplace_distill = self.sandwich > 0
        if self.sandwich < 0 or self.bn_recalibration < 0:
            raise SearchConfigError("sandwich and bn_recalibration must be >= 0")
        if self.evaluations is not None and self.evaluations < 1:
            raise SearchConfigError(f"evaluations must be >= 1, got {self.evaluations}")
        if self.inplace_distill and not self.sandwich:
            raise SearchConfigError("inplace_distill needs the sandwich (sandwich >= 1): the "
                                    "slowest path of each step is the teacher")
        if self.sandwich and self.warmup_sampling == "constrained":
            raise SearchConfigError("the sandwich trains the slowest subnet, which the constrained "
                                    "warm-up rejects: use warmup_sampling 'fair' or 'strict_fair', "
                                    "or sandwich=0 (one path per step, as the seed)")
        if self.sandwich and self.distill_weight > 0:
            raise SearchConfigError("the sandwich step distils in place (inplace_distill), not from "
                                    "an external teacher: set distill_weight to 0, or sandwich=0 "
                                    "to distil from the teacher")

    @classmethod
    def quick(cls, **changes) -> "SearchConfig":
        """``--quick``: about 40 batches in all on 128x128 SyntheticPortraits (minutes).

        With so few alpha steps the reference alpha lr (1e-3) would barely move p, so quick mode
        uses 0.1 to make the trend visible (20 Adam steps of about 0.1 each move a logit by up to 2:
        p from 1/7 to about 0.5). The predictor is fitted on 16 subnets, evolution runs 3 generations
        of 16 (at most 40 subnets scored, as many for random search), and ``train_length`` draws
        just enough images for ``steps_per_epoch`` batches in each split (plus 8). ``changes``
        override any field; the target's image side follows ``image_size`` unless ``target`` is
        given."""
        side = changes.get("image_size", 128)
        settings = {"image_size": side, "target": Target(image_size=side), "steps_per_epoch": 10,
                    "arch_lr": 0.1, "num_fit": 16,
                    "evolution": EvolutionConfig(population=16, generations=3), **changes}
        if "train_length" not in changes:
            config = cls(**settings)
            per_split = config.batch_size * (config.steps_per_epoch or 10)
            settings["train_length"] = math.ceil(
                per_split / min(config.arch_fraction, 1 - config.arch_fraction)) + 8
        return cls(**settings)

    @property
    def alpha_epochs(self) -> int:
        """Epochs after the warm-up: ``search_epochs`` for the gradient strategy; none for evolution
        and random search, which score subnets of the warmed-up super-net instead."""
        return self.search_epochs if self.strategy == "gradient" else 0

    @property
    def total_epochs(self) -> int:
        return self.warmup_epochs + self.alpha_epochs

    @property
    def strategy_evaluations(self) -> int:
        """Subnets random search scores: ``evaluations``, or as many as evolution scores at most
        (the same count of evaluations on both sides: Li and Talwalkar, 2019)."""
        return self.evaluations or self.evolution.max_evaluations

    def to_dict(self) -> dict:
        """Plain JSON values (tuples become lists; the target and the evolution settings nested
        dicts): ``History.config``."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> "SearchConfig":
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "target": Target(**data["target"]),
                      "evolution": EvolutionConfig(**data["evolution"])})

"""Where a network will run: one ``Target`` instead of four loose arguments.

Latency is a property of a network *and* of where it runs. The search's latency table, the
calibrated predictor, the closed-loop measurement, the benchmarks and the deployed predictor all
need the same four facts, so they travel together, with their defaults written once, here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from segnas_lite.errors import SegnasError

BACKENDS = ("torch", "openvino")
# OpenVINO's INFERENCE_PRECISION_HINT; "default" = what the CPU plugin picks (bf16 on CPUs with
# AVX-512 BF16 or AMX, else f32). The torch backend always runs f32.
PRECISIONS = ("f32", "bf16", "default")
DEFAULT_THREADS = 2  # the laptop this course is written for: 2 cores, one inference thread each


class TargetError(SegnasError, ValueError):
    """A deployment target that cannot exist (unknown backend or precision, threads < 1, ...)."""


@dataclass(frozen=True)
class Target:
    """A deployment target: ``backend`` ("openvino" or "torch"), ``precision`` (see
    :data:`PRECISIONS`), inference ``threads`` and the square input ``image_size`` in pixels."""

    backend: str = "openvino"
    precision: str = "f32"
    threads: int = DEFAULT_THREADS
    image_size: int = 256

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise TargetError(f"unknown backend {self.backend!r}; choose one of {BACKENDS}")
        if self.precision not in PRECISIONS:
            raise TargetError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.backend == "torch" and self.precision not in ("f32", "default"):
            raise TargetError(f"the torch backend runs f32, not {self.precision!r}")
        if int(self.threads) < 1:
            raise TargetError(f"threads must be >= 1, got {self.threads}")
        if int(self.image_size) < 32:
            raise TargetError(f"image_size must be >= 32 px, got {self.image_size}")

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the network input."""
        return self.image_size, self.image_size

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """(N, 3, H, W), what the timer feeds the network."""
        return batch, 3, self.image_size, self.image_size

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.backend} {self.precision}, {self.threads} threads, {self.image_size} px"

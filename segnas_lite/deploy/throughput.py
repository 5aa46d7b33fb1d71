"""Frames per second of a stream of OpenVINO inferences, one at a time or several in flight.

Latency (``bench``) is the time of one frame; throughput is how many frames a second a video
pipeline gets through. With one request at a time they are each other's inverse; with an
``AsyncInferQueue`` of several requests the cores are split into streams and more frames finish
per second, each a little later.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import openvino as ov

from segnas_lite.deploy.openvino import compile_openvino, compiled_precision
from segnas_lite.deploy.target import DEFAULT_THREADS
from segnas_lite.timing import LoadMonitor, TimingError


@dataclass
class Throughput:
    """Frames per second of a stream of OpenVINO inferences."""

    fps: float
    frames: int
    seconds: float
    mode: str  # "sync": one request at a time; "async": ``requests`` in flight
    requests: int
    threads: int | None
    precision: str  # what really ran
    load: dict | None = None  # ``LoadReport.to_dict()`` of the timed stretch

    @property
    def busy(self) -> bool:
        return bool(self.load and self.load.get("busy"))

    def to_text(self) -> str:
        mark = "  [busy: do not quote]" if self.busy else ""
        return (f"{self.mode:<5} {self.fps:7.1f} FPS ({self.frames} frames in {self.seconds:.2f} s, "
                f"{self.requests} request(s), {self.threads} threads, {self.precision}){mark}")


def time_throughput(model, input_shape: Sequence[int], *, mode: str = "sync", frames: int = 200,
                    warmup: int = 10, precision: str = "f32", threads: int | None = DEFAULT_THREADS,
                    requests: int | None = None) -> Throughput:
    """Frames per second of OpenVINO on a stream of ``frames`` inputs of ``input_shape``.

    ``sync``: one infer request compiled with the LATENCY hint, frames back to back: FPS = 1 /
    latency. ``async``: an ``AsyncInferQueue`` of ``requests`` requests (default: the plugin's
    ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``) compiled with the THROUGHPUT hint, which splits the cores
    into streams that each run a frame: more frames per second, each frame a little later. The input
    is prepared once, so the figure is the network's, not the video decoder's. Other processes'
    CPU use is recorded (``load``) as for latencies."""
    if mode not in ("sync", "async"):
        raise TimingError(f"mode must be 'sync' or 'async', got {mode!r}")
    if frames < 1 or warmup < 0:
        raise TimingError(f"need frames >= 1 and warmup >= 0, got {frames}, {warmup}")
    compiled = compile_openvino(model, precision=precision, threads=threads,
                                hint="LATENCY" if mode == "sync" else "THROUGHPUT")
    x = np.random.default_rng(0).standard_normal(tuple(input_shape), dtype=np.float32)
    if mode == "sync":
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(x))
        count = 1

        def run(n: int) -> None:
            for _ in range(n):
                request.infer()
    else:
        count = int(requests or compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(compiled, count)

        def run(n: int) -> None:
            for _ in range(n):
                queue.start_async({0: x})  # blocks until a request is idle
            queue.wait_all()
    run(warmup)
    with LoadMonitor(warn=True, what=f"the {mode} throughput run") as monitor:
        start = time.perf_counter()
        run(frames)
        seconds = time.perf_counter() - start
    return Throughput(frames / seconds, frames, seconds, mode, count, threads,
                      compiled_precision(compiled), monitor.report.to_dict())

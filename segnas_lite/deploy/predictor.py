"""The one static-IR predictor: any image size in, logits or p(foreground) out, sync or async.

An IR exported with a fixed input shape [1, 3, h, w] (``export.to_openvino(dynamic=False)``, the
default: OpenVINO plans every buffer once) only accepts images of that size. Everything that runs
such a network on real images does the same three things, all of them here:

1. **resize in and out**: ``resize_batch`` is the package's one bilinear resize of (N, C, H, W)
   arrays (``align_corners=False``, as the networks upsample); ``logits_at_size`` runs a network at
   its working size and brings the logits back to the image's size (or not: a cut-out refines the
   probability at the network's size against the full-size photo);
2. **the foreground probability**: ``foreground_probability`` is the softmax over classes, summed
   over the foreground class(es) (p(person) for a portrait model);
3. **sync or async inference**: ``OpenVINOPredictor(mode="sync")`` keeps one infer request
   (LATENCY hint: lowest delay per frame); ``mode="async"`` runs an ``AsyncInferQueue`` of several
   requests (THROUGHPUT hint): the next frames are prepared and started while earlier ones still
   run, so every core stays busy; results come back in frame order, a few frames late.

``network_probability`` gives the same ``prob(image)`` for a PyTorch model (a checkpoint), so a
cut-out can be made by either backend. ``stream`` runs a predictor on a sequence of frames, timed
by the package's one timer (``segnas_lite.timing``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import openvino as ov
import torch
import torch.nn.functional as F

from segnas_lite.deploy.export import ExportError, compile_ir, static_input_size
from segnas_lite.deploy.openvino import ran_precision
from segnas_lite.timing import Timing, time_each


# --------------------------------------------------------------------------- resize in and out
def resize_batch(batch: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) to ``size`` = (h, w); as it is when ``size`` is None or
    already the batch's."""
    if size is None or tuple(batch.shape[-2:]) == tuple(size):
        return batch
    return F.interpolate(batch, size=tuple(size), mode="bilinear", align_corners=False)


def logits_at_size(logits_fn: Callable, batch: torch.Tensor, size: tuple[int, int] | None, *,
                   back: bool = True) -> torch.Tensor:
    """Run ``logits_fn`` (a PyTorch model, or anything mapping (n, 3, h, w) to (n, C, h, w) logits,
    torch or NumPy) at its working ``size`` (None: the batch's own): (N, 3, H, W) images are resized
    to ``size``, and the (N, C, h, w) logits back to (H, W) when ``back``."""
    images = torch.as_tensor(batch, dtype=torch.float32)
    with torch.no_grad():
        logits = logits_fn(resize_batch(images, size))
    logits = torch.as_tensor(np.asarray(logits) if not isinstance(logits, torch.Tensor) else logits)
    return resize_batch(logits, tuple(images.shape[-2:])) if back else logits


# --------------------------------------------------------------------------- probability
def foreground_probability(logits, *, foreground: int | Iterable[int] = 1) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) logits -> (H, W) float32 probability of the ``foreground``
    class(es): the softmax over classes, summed over the foreground ones.

    NumPy, not PyTorch: right after an OpenVINO inference, a multi-threaded PyTorch op waits for
    its threads while OpenVINO's are still spinning on the same cores (measured: 17 ms for a copy
    of 0.5 MB on 2 cores); NumPy's single thread does not wait."""
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim == 4:
        if logits.shape[0] != 1:
            raise ValueError(f"expected one image's logits, got a batch of {logits.shape[0]}")
        logits = logits[0]
    if logits.ndim != 3 or logits.shape[0] < 2:
        raise ValueError(f"expected logits of shape (C >= 2, H, W), got {tuple(logits.shape)}")
    classes = [foreground] if isinstance(foreground, int) else list(foreground)
    if not classes or min(classes) < 0 or max(classes) >= logits.shape[0]:
        raise ValueError(f"foreground classes {classes} outside 0..{logits.shape[0] - 1}")
    exp = np.exp(logits - logits.max(axis=0, keepdims=True))  # (C, H, W), stable softmax
    return (exp[classes].sum(0) / exp.sum(0)).astype(np.float32)


def network_probability(logits_fn: Callable, size: tuple[int, int] | None, *,
                        foreground: int | Iterable[int] = 1) -> Callable[[torch.Tensor], np.ndarray]:
    """``prob(image)``: a normalised (3, H, W) image -> (h, w) foreground probability of a network
    that runs at ``size`` = (h, w) (None: the image's own). ``logits_fn`` maps a (1, 3, h, w) batch
    to (1, C, h, w) logits, e.g. a PyTorch model. The probability stays at the network's size;
    ``portrait.refine.refine_alpha`` brings it to the photo's. (``OpenVINOPredictor.probability``
    is this for an IR.)"""
    def prob(image: torch.Tensor) -> np.ndarray:
        x = torch.as_tensor(image, dtype=torch.float32)[None]  # (1, 3, H, W)
        return foreground_probability(logits_at_size(logits_fn, x, size, back=False),
                                      foreground=foreground)
    return prob


# --------------------------------------------------------------------------- the predictor
MODES = ("sync", "async")


def _is_static_batch_one(compiled_or_model: ov.CompiledModel | ov.Model) -> bool:
    batch = compiled_or_model.inputs[0].get_partial_shape()[0]
    return batch.is_static and batch.get_length() == 1


class OpenVINOPredictor:
    """Callable OpenVINO model: ``predictor(images) -> logits``, ``predict_mask(image)``,
    ``probability(image)`` and, for a stream, ``probabilities(images)``.

    Shapes: a dynamic IR receives the images as they are. A static IR (fixed [1, 3, h, w]) gets each
    image bilinearly resized to (h, w) and its logits bilinearly resized back to the image's size,
    so any image size works; the mask is then as sharp as the IR's resolution, not the image's.
    Batches are run one image at a time when the IR's batch is fixed to 1.

    ``mode="sync"`` compiles with the LATENCY hint, ``mode="async"`` with THROUGHPUT and
    ``requests`` infer requests (default: the plugin's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``), used
    by ``probabilities``. ``foreground``: the class(es) whose probability ``probability`` returns.
    """

    def __init__(
        self,
        path_or_model: ov.Model | str | os.PathLike,
        *,
        precision: str = "default",
        threads: int | None = None,
        mode: str = "sync",
        requests: int | None = None,
        foreground: int | Iterable[int] = 1,
    ) -> None:
        if mode not in MODES:
            raise ExportError(f"mode must be one of {MODES}, got {mode!r}")
        self.precision, self.mode, self.foreground = precision, mode, foreground
        self.threads = threads
        self.compiled = compile_ir(path_or_model, precision=precision, threads=threads,
                                   hint="LATENCY" if mode == "sync" else "THROUGHPUT")
        self.request = self.compiled.create_infer_request()
        self.ir_size = static_input_size(self.compiled)  # (h, w) or None for a dynamic IR
        self.one_at_a_time = _is_static_batch_one(self.compiled)
        self.requests = 1 if mode == "sync" else int(
            requests or self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        """(n, 3, h, w) at the IR's size -> (n, C, h, w) logits, one synchronous request."""
        return torch.from_numpy(self.request.infer({0: batch.numpy()})[0].copy())

    def __call__(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float, ImageNet-normalised -> (N, C, H, W) float32 logits (numpy)."""
        images = torch.as_tensor(images, dtype=torch.float32)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ExportError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
        if self.one_at_a_time:  # NumPy joins the images (see foreground_probability: no waiting)
            return np.concatenate([logits_at_size(self._run, image.unsqueeze(0), self.ir_size).numpy()
                                   for image in images])
        return logits_at_size(self._run, images, self.ir_size).numpy()

    def predict_mask(self, image: torch.Tensor | np.ndarray) -> np.ndarray:
        """(3, H, W) -> (H, W) int64 class mask; (N, 3, H, W) -> (N, H, W)."""
        image = torch.as_tensor(image, dtype=torch.float32)
        single = image.ndim == 3
        logits = self(image.unsqueeze(0) if single else image)  # (N, C, H, W)
        masks = logits.argmax(axis=1).astype(np.int64)  # (N, H, W)
        return masks[0] if single else masks

    def probability(self, image: torch.Tensor | np.ndarray) -> np.ndarray:
        """A normalised (3, H, W) image -> (h, w) foreground probability at the IR's size."""
        x = resize_batch(torch.as_tensor(image, dtype=torch.float32)[None], self.ir_size)
        return foreground_probability(self._run(x), foreground=self.foreground)

    def probabilities(self, images: Iterable) -> Iterator[np.ndarray]:
        """Normalised (3, H, W) images -> one (h, w) foreground probability each, in order.

        ``mode="sync"``: one image at a time. ``mode="async"``: the ``AsyncInferQueue``; each
        image is prepared (resized) in the calling thread while earlier ones run."""
        if self.mode == "sync":
            for image in images:
                yield self.probability(image)
            return
        queue = ov.AsyncInferQueue(self.compiled, self.requests)
        done: dict[int, np.ndarray] = {}

        def finished(request, index: int) -> None:  # runs in OpenVINO's thread
            done[index] = foreground_probability(request.get_output_tensor(0).data.copy(),
                                                 foreground=self.foreground)

        queue.set_callback(finished)
        next_out = 0
        for index, image in enumerate(images):
            x = resize_batch(torch.as_tensor(image, dtype=torch.float32)[None], self.ir_size)
            queue.start_async({0: x.numpy()}, index)  # waits for an idle request
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
        queue.wait_all()
        while next_out in done:
            yield done.pop(next_out)
            next_out += 1


@dataclass
class Streamed:
    """What ``stream`` returns: one (H, W) mask per frame and the time per frame."""

    masks: list[np.ndarray]
    timing: Timing  # per frame, after the warm-up: median, p90, fps = 1000 / median


def stream(predictor: OpenVINOPredictor, frames: Iterable, *, warmup: int = 5) -> Streamed:
    """Segment a sequence of frames, each timed by the package's one timer (``timing.time_each``:
    ``warmup`` untimed calls on the first frame, then every frame once).

    ``frames`` yields (3, H, W) images, or ``(image, anything)`` pairs such as the output of
    ``synthetic_video``. A frame's time is the predictor's whole call, ``predict_mask``: resizing
    in and out (nothing to do when the frame has the IR's size), inference, copying the logits
    out and the argmax; drawing the result is not counted. Next to ``bench.benchmark_openvino``
    (inference alone, on a prepared input) the difference is that work around the request.
    """
    images = [frame[0] if isinstance(frame, (tuple, list)) else frame for frame in frames]
    masks, timing = time_each(predictor.predict_mask, images, backend="openvino",
                              precision=ran_precision(predictor.compiled),
                              threads=predictor.threads, warmup=warmup)
    return Streamed(masks, timing)

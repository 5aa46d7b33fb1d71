"""The one static-IR predictor (segnas_lite.deploy.predictor): resizing in and out, the foreground
probability, sync vs async inference in frame order, and the timed stream."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from segnas_lite.data import normalize, synthetic_video
from segnas_lite.deploy.export import ExportError, to_openvino
from segnas_lite.deploy.predictor import (OpenVINOPredictor, foreground_probability, logits_at_size,
                                          network_probability, resize_batch, stream)

SIZE = (96, 96)


@pytest.fixture(scope="module")
def tiny() -> nn.Module:
    """Two classes from a 3x3 and a 1x1 convolution: logits at the input's size, any size."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1)).eval()


@pytest.fixture(scope="module")
def tiny_static(tiny):
    return to_openvino(tiny, input_size=SIZE)


def _images(n: int, size: tuple[int, int], seed: int) -> torch.Tensor:
    return torch.randn(n, 3, *size, generator=torch.Generator().manual_seed(seed))


def test_predictor_resizes_for_static_ir(tiny, tiny_static):
    predictor = OpenVINOPredictor(tiny_static, precision="f32", threads=1)
    images = _images(2, (80, 120), seed=5)  # not the IR's 96 x 96
    logits = predictor(images)
    assert logits.shape == (2, 2, 80, 120) and logits.dtype == np.float32
    # Same as PyTorch on the resized image, with the logits resized back.
    resize = nn.functional.interpolate
    with torch.no_grad():
        small = tiny(resize(images, size=SIZE, mode="bilinear", align_corners=False))
        expected = resize(small, size=(80, 120), mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    np.testing.assert_allclose(logits_at_size(tiny, images, SIZE).numpy(), expected, atol=1e-6)

    mask = predictor.predict_mask(images[0])
    assert mask.shape == (80, 120) and mask.dtype == np.int64
    np.testing.assert_array_equal(predictor.predict_mask(images), logits.argmax(1))
    with pytest.raises(ExportError, match="N, 3, H, W"):
        predictor(np.zeros((3, 8, 8), dtype=np.float32))


def test_predictor_dynamic_ir_runs_batches_directly(tiny):
    predictor = OpenVINOPredictor(to_openvino(tiny, input_size=SIZE, dynamic=True), precision="f32")
    assert predictor.ir_size is None and not predictor.one_at_a_time
    images = _images(3, (64, 80), seed=2)
    with torch.no_grad():
        expected = tiny(images).numpy()
    np.testing.assert_allclose(predictor(images), expected, atol=1e-4)


def test_foreground_probability_is_the_softmax():
    logits = np.zeros((3, 2, 2), np.float32)
    logits[1] = np.log(2.0)  # p = (1, 2, 1) / 4
    assert np.allclose(foreground_probability(logits), 0.5)
    assert np.allclose(foreground_probability(logits[None], foreground=[1, 2]), 0.75)
    with pytest.raises(ValueError, match="outside"):
        foreground_probability(logits, foreground=3)


def test_probability_stays_at_the_network_size_for_both_backends(tiny, tiny_static):
    """The IR's ``probability`` and ``network_probability`` of the PyTorch model agree: the photo
    is resized to the network's size and the probability is not resized back."""
    image = _images(1, (50, 70), seed=1)[0]
    ir = OpenVINOPredictor(tiny_static, precision="f32", threads=1).probability(image)
    torch_prob = network_probability(tiny, SIZE)(image)
    assert ir.shape == torch_prob.shape == SIZE
    np.testing.assert_allclose(ir, torch_prob, atol=1e-5)
    batch = image[None]  # (1, 3, 50, 70)
    assert resize_batch(batch, None) is batch and resize_batch(batch, (50, 70)) is batch


def test_async_inference_gives_the_sync_results_in_frame_order(tiny):
    from segnas_lite.portrait.clips import still_clip
    ir = to_openvino(tiny, input_size=(64, 64))
    frames = still_clip((np.random.default_rng(2).random((48, 40, 3)) * 255).astype(np.uint8), 7,
                        noise=0.1)
    sync = list(OpenVINOPredictor(ir, mode="sync", precision="f32").probabilities(
        map(normalize, frames)))
    queue = OpenVINOPredictor(ir, mode="async", precision="f32", requests=3)
    assert queue.requests == 3
    both = list(queue.probabilities(map(normalize, frames)))
    assert len(both) == len(sync) == 7
    assert sync[0].shape == (64, 64)
    for a, b in zip(sync, both):
        assert np.allclose(a, b, atol=1e-5)
    assert not np.allclose(sync[0], sync[1])  # the frames differ, so the order is really checked
    with pytest.raises(ExportError, match="mode"):
        OpenVINOPredictor(ir, mode="fast")


def test_stream_times_every_frame_once_after_a_warm_up(tiny_static):
    predictor = OpenVINOPredictor(tiny_static, threads=1)
    clip = synthetic_video(4, image_size=(72, 72), seed=0)
    streamed = stream(predictor, clip, warmup=2)
    assert len(streamed.masks) == 4
    for (image, _), mask in zip(clip, streamed.masks):
        assert mask.shape == (72, 72)
        assert np.array_equal(mask, predictor.predict_mask(image))  # each frame's own mask
    timing = streamed.timing
    assert timing.runs == 4 and len(timing.times_ms) == 4
    assert 0 < timing.median_ms <= timing.p90_ms and timing.fps == 1000 / timing.median_ms
    assert timing.backend == "openvino" and timing.threads == 1

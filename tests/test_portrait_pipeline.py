"""The library pipelines behind `segnas replace-background` and `segnas video`
(segnas_lite.portrait.pipeline), with a stand-in network whose errors are known: the true mask seen
at 1/8 resolution."""
import time

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from segnas_lite.data import normalize
from segnas_lite.portrait.clips import synthetic_clip
from segnas_lite.portrait.composite import (BackgroundError, check_background, make_background,
                                           parse_colour)
from segnas_lite.portrait.evaluate import EdgeMeter
from segnas_lite.portrait.pipeline import cut_out, cut_out_from, process_video
from segnas_lite.portrait.refine import RefineConfig, default_radius, refine_alpha
from segnas_lite.portrait.videoio import VideoError, write_video


def _coarse(mask, factor=8) -> np.ndarray:
    t = torch.as_tensor(np.asarray(mask), dtype=torch.float32)[None, None]
    return torch.nn.functional.avg_pool2d(t, factor)[0, 0].numpy()


class CoarseTruth:
    """Stands in for an ``OpenVINOPredictor``: yields the true masks at 1/8 of their size."""

    def __init__(self, truths):
        self.truths = truths

    def probabilities(self, images):
        for _, truth in zip(images, self.truths):
            yield _coarse(truth == 1)


@pytest.fixture(scope="module")
def clip():
    return synthetic_clip(6, size=64, seed=0)


def test_cut_out_refines_the_edges_and_saves_two_pngs(clip, tmp_path):
    frames, truths = clip
    image, truth = normalize(frames[0]), truths[0] == 1
    cut = cut_out(image, lambda x: _coarse(truth), background="#00b140")
    assert cut.picture.shape == (64, 64, 3) and cut.prob.shape == (8, 8)
    assert cut.alpha.shape == (64, 64) and 0 <= cut.alpha.min() <= cut.alpha.max() <= 1
    assert cut.result.shape == (64, 64, 3)
    assert cut.hard_mask().shape == cut.mask.shape == (64, 64)
    assert cut.foreground_share == pytest.approx(float(cut.mask.mean()))
    far = cut.alpha == 0  # away from the person: the new background alone
    assert far.any() and np.allclose(cut.result[far], (0, 0xb1 / 255, 0x40 / 255))
    path = cut.save(tmp_path, "p0")
    assert path == tmp_path / "p0_composite.png"
    assert np.asarray(Image.open(tmp_path / "p0_alpha.png")).shape == (64, 64)
    # the same once the probability is known; no background: the mask drawn over the photo
    again = cut_out_from(cut.picture, cut.prob, background="#00b140")
    assert np.array_equal(again.alpha, cut.alpha)
    drawn = cut_out_from(cut.picture, cut.prob, background=None)
    assert np.allclose(drawn.result[~drawn.mask], cut.picture[~drawn.mask])
    with pytest.raises(BackgroundError, match="not an image file, a colour"):
        cut_out(image, lambda x: _coarse(truth), background="nonsense")


def test_default_radius_is_one_network_output_pixel():
    rng = np.random.default_rng(0)
    image, prob = rng.random((64, 96, 3)).astype(np.float32), rng.random((16, 24)).astype(np.float32)
    radius = default_radius(image.shape, prob.shape)
    assert radius == 32
    assert np.array_equal(refine_alpha(image, prob, RefineConfig()),
                          refine_alpha(image, prob, RefineConfig(radius=radius)))
    with pytest.raises(ValueError, match="radius"):
        RefineConfig(radius=-1)


def test_colours_are_read_without_matplotlib():
    assert parse_colour("green") == (0.0, 128 / 255, 0.0)  # the CSS (and matplotlib) green
    assert parse_colour("#0f0") == (0.0, 1.0, 0.0)
    assert parse_colour("White") == (1.0, 1.0, 1.0)
    assert parse_colour("0,256,0") is None
    check_background(None)
    check_background("blur:2")
    with pytest.raises(BackgroundError):
        check_background("blur:0")


def test_edge_meter_reduces_the_miou_as_asked():
    true = np.zeros((8, 8), bool)
    true[2:6, 2:6] = True
    missed = np.zeros_like(true)
    pooled, per_image = EdgeMeter(reduction="pooled"), EdgeMeter(reduction="per_image")
    for meter in (pooled, per_image):
        assert meter.update(true, true).miou == 1.0
        assert meter.update(missed, true).miou == pytest.approx(48 / 64 / 2)  # background only
    assert per_image.compute().miou == pytest.approx((1 + 48 / 64 / 2) / 2)
    assert pooled.compute().miou == pytest.approx((96 / 112 + 16 / 32) / 2)
    assert pooled.compute().boundary_f == per_image.compute().boundary_f == 0.5
    text = per_image.update(true, true).versus(per_image.compute())
    assert text.startswith("mIoU 1.000 -> ") and "boundary F" in text and "trimap IoU" in text


def test_process_video_smooths_counts_and_writes(clip, tmp_path):
    frames, truths = clip
    run = process_video(frames, CoarseTruth(truths), smoothing=0.5, background="blur",
                        truths=truths)
    out = write_video(run, tmp_path / "clip.gif", fps=10)
    with Image.open(out) as gif:
        assert gif.n_frames == 6
    assert run.frames_done == 6 and run.fps > 0
    rates = run.flip_rates
    assert 0 <= rates["smoothed"] <= rates["raw"] and rates["raw"] > 0  # the person walks
    assert 0.5 < run.foreground_iou <= 1.0
    stages = ["decode", "preparation", "network", "smoothing", "refinement", "compositing"]
    assert list(run.stage_seconds) == stages and min(run.stage_seconds.values()) >= 0
    ms = run.ms_per_frame()
    assert list(ms) == [*stages, "outside", "total"]
    assert ms["total"] == pytest.approx(1000 / run.fps)
    assert sum(v for k, v in ms.items() if k != "total") == pytest.approx(ms["total"], rel=1e-6)
    assert run.refine == RefineConfig()  # the fast guided filter, as for photos
    from segnas_lite.teaching import plots
    figure = plots.frame_times({"fast": ms, "none": ms})
    assert len(figure.axes[0].patches) == 2 * 7  # two bars of seven stages
    summary = run.summary()
    assert "flip rate raw" in summary and "smoothed (m = 0.5)" in summary
    assert "true masks" in summary and "time per frame" in summary
    plain = list(process_video(frames[:2], CoarseTruth(truths), smoothing=0.0))
    assert plain[0].dtype == np.uint8 and plain[0].shape == (64, 64, 3)
    with pytest.raises(VideoError, match="no frames"):
        write_video(process_video([], CoarseTruth(truths)), tmp_path / "empty.gif", fps=10)
    assert not (tmp_path / "empty.gif").exists()
    with pytest.raises(BackgroundError):
        process_video(frames, CoarseTruth(truths), background="nonsense")


def test_a_blurred_background_follows_the_frames(clip):
    """``blur`` blurs each frame (the background moves with the camera); a colour is made once.
    Where the true mask says background and alpha is 0, the output is that frame's own blur."""
    frames, truths = clip
    outputs = list(process_video(frames, CoarseTruth(truths), smoothing=0.0, background="blur:3",
                                 refine=RefineConfig(method="none")))
    for frame, truth, out in zip(frames, truths, outputs):
        away = ~ndimage.binary_dilation(np.asarray(truth) == 1, iterations=10)  # far from the person
        assert np.array_equal(out[away], make_background("blur:3", frame)[away])
    assert not np.array_equal(outputs[0], outputs[-1])
    red = list(process_video(frames[:2], CoarseTruth(truths), smoothing=0.0, background="#ff0000",
                             refine=RefineConfig(method="none")))
    assert all(o[0, 0].tolist() == [255, 0, 0] for o in red)


def test_video_stages_charge_reading_a_frame_to_decode_not_to_the_network(clip):
    frames, truths = clip

    decode = 0.2  # a video file that takes 200 ms to decode each frame: far more than the rest,
                  # so that the check holds on a loaded machine too

    def slow_reader():
        for frame in frames:
            time.sleep(decode)
            yield frame

    run = process_video(slow_reader(), CoarseTruth(truths), smoothing=0.0)
    assert len(list(run)) == len(frames)
    assert run.stage_seconds["decode"] >= 0.9 * decode * len(frames)
    assert run.stage_seconds["network"] < 0.5 * decode * len(frames)  # the sleep is not in it
    ms = run.ms_per_frame()
    assert sum(v for k, v in ms.items() if k != "total") == pytest.approx(ms["total"], rel=1e-6)

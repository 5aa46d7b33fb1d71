"""Soft edges and compositing (segnas_lite.portrait.refine, .composite, .evaluate): the box filter,
the guided filter, alpha compositing, backgrounds and the refinement's evaluation, each on small
cases with known answers. (The edge metrics themselves: tests/test_metrics.py.)"""
import numpy as np
import pytest
import torch
from PIL import Image

from segnas_lite.metrics import boundary_f_score, trimap_iou
from segnas_lite.portrait.composite import (BackgroundError, blur, composite, composite_uint8,
                                           make_background, parse_colour)
from segnas_lite.portrait.evaluate import evaluate_refinement
from segnas_lite.portrait.refine import (RefineConfig, box_mean, default_radius, fast_step, feather,
                                        guided_filter, refine_alpha, resize, solve_symmetric_3x3,
                                        working_size)


def _brute_box(x, r):
    h, w = x.shape[:2]
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            out[i, j] = x[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean(axis=(0, 1))
    return out


@pytest.mark.parametrize("shape", [(7, 9), (6, 5, 3)])
@pytest.mark.parametrize("r", [0, 1, 3, 10])
def test_box_mean_is_the_clipped_window_mean(shape, r):
    x = np.random.default_rng(0).random(shape)
    assert np.allclose(box_mean(x, r), _brute_box(x, r))


def _disk_scene(size=64, radius=18, dark=(0.2, 0.3, 0.25), bright=(0.9, 0.7, 0.6)):
    yy, xx = np.mgrid[:size, :size]
    disk = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius ** 2  # (S, S) bool
    image = np.where(disk[..., None], np.array(bright), np.array(dark)).astype(np.float32)
    return image, disk


def _person_scene(size=128, tilt=0.3, arm_row=75, seed=0):
    """A head, a tilted body and a thin arm in skin and shirt colours on a darker background, with
    a little noise: a shape with corners and thin parts, where a 1/8-resolution mask goes wrong."""
    yy, xx = np.mgrid[:size, :size]
    c = size / 2
    head = (yy - 0.31 * size) ** 2 + (xx - c) ** 2 <= (0.11 * size) ** 2
    u = (xx - c) * np.cos(tilt) + (yy - 0.7 * size) * np.sin(tilt)
    v = -(xx - c) * np.sin(tilt) + (yy - 0.7 * size) * np.cos(tilt)
    body = (np.abs(u) <= 0.14 * size) & (np.abs(v) <= 0.27 * size)
    arm = (np.abs(yy - arm_row) <= 3) & (xx > 0.23 * size) & (xx < c)
    shape = head | body | arm
    noise = np.random.default_rng(seed).normal(0, 0.02, (size, size, 3))
    image = np.where(shape[..., None], [0.85, 0.6, 0.5], [0.2, 0.35, 0.3]) + noise
    return np.clip(image, 0, 1).astype(np.float32), shape


def _coarse(mask, factor=8):
    """What a network with output stride ``factor`` sees: the mask averaged over factor^2 blocks."""
    t = torch.as_tensor(mask, dtype=torch.float32)[None, None]
    return torch.nn.functional.avg_pool2d(t, factor)[0, 0].numpy()


def test_the_symmetric_3x3_solve_matches_numpy():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(50, 3, 3))
    m = m @ m.transpose(0, 2, 1) + 1e-3 * np.eye(3)  # symmetric, positive definite (a covariance)
    v = rng.normal(size=(50, 3))
    upper = np.stack([m[:, 0, 0], m[:, 0, 1], m[:, 0, 2], m[:, 1, 1], m[:, 1, 2], m[:, 2, 2]], -1)
    x = np.stack(solve_symmetric_3x3(list(upper.T), list(v.T)), axis=-1)  # planes in and out
    assert np.allclose(x, np.linalg.solve(m, v[..., None])[..., 0], rtol=1e-6, atol=1e-8)


def test_a_uint8_guide_is_read_as_value_over_255():
    """A video frame guides the filter as the same frame in [0, 1] does (no float copy made):
    exactly for the full filter; the fast one shrinks the uint8 frame in uint8 (rounded to whole
    levels), which moves alpha by a few thousandths at most."""
    image, disk = _person_scene(size=96)
    frame = (image * 255).round().astype(np.uint8)
    prob = _coarse(disk)
    for config, atol in ((RefineConfig(subsample=1), 1e-5), (RefineConfig(), 0.01),
                         (RefineConfig(threshold=None), 0.01)):
        assert np.allclose(refine_alpha(frame, prob, config),
                           refine_alpha(frame.astype(np.float32) / 255, prob, config), atol=atol)


def test_guided_filter_with_a_flat_guide_is_a_double_box_blur():
    src = np.random.default_rng(1).random((20, 24))
    out = guided_filter(np.full((20, 24), 0.5), src, radius=2, eps=1e-3)
    assert np.allclose(out, box_mean(box_mean(src, 2), 2), atol=1e-5)


@pytest.mark.parametrize("colour", [False, True])
def test_guided_filter_moves_a_coarse_mask_onto_the_image_edges(colour):
    image, shape = _person_scene()
    hard = refine_alpha(image, _coarse(shape), RefineConfig(method="none"))  # the blocky cut
    guide = image if colour else image.mean(-1)
    refined = guided_filter(guide, hard, radius=8, eps=1e-3) >= 0.5
    before, after = boundary_f_score(hard >= 0.5, shape).f, boundary_f_score(refined, shape).f
    assert before < 0.93 and after > before + 0.05
    assert trimap_iou(refined, shape) > trimap_iou(hard >= 0.5, shape) + 0.15


def test_fast_guided_filter_is_close_to_the_full_one():
    image, disk = _disk_scene(size=96, radius=30)
    blurry = refine_alpha(image, _coarse(disk), RefineConfig(method="none", threshold=None))
    full = guided_filter(image, blurry, radius=8, eps=1e-3)
    fast = guided_filter(image, blurry, radius=8, eps=1e-3, subsample=4)
    assert fast.shape == full.shape
    assert np.abs(fast - full).mean() < 0.03


def test_the_default_is_the_fast_guided_filter_and_scores_like_the_full_one():
    """RefineConfig() runs the fast guided filter with a step of an eighth of the radius; on a
    blocky cut it moves the edge as the full filter does: boundary F and trimap IoU within 0.02 of
    the full filter's, far above the hard cut's (the people photos: benchmarks/video.py)."""
    assert RefineConfig().method == "guided" and RefineConfig().subsample is None
    image, shape = _person_scene(size=256)
    coarse = torch.as_tensor(_coarse(shape, factor=16))[None, None]  # a stride-8 network at 128 px
    prob = torch.nn.functional.interpolate(coarse, size=(128, 128), mode="bilinear")[0, 0].numpy()
    default = refine_alpha(image, prob)
    radius = default_radius(image.shape, prob.shape)
    assert radius == 16 and fast_step(radius, RefineConfig().subsample) == 2
    hard = refine_alpha(image, prob, RefineConfig(method="none"))
    # the default thresholds the probability at the filter's working size (half the image's here)
    small_hard = (resize(prob, working_size(image.shape[:2], 2)) >= 0.5).astype(np.float32)
    assert np.array_equal(default, np.clip(guided_filter(image, small_hard, radius=radius,
                                                         subsample=2), 0, 1))
    from_full = np.clip(guided_filter(image, hard, radius=radius, subsample=2), 0, 1)
    assert np.abs(default - from_full).mean() < 0.005  # as if thresholded at full size
    full = refine_alpha(image, prob, RefineConfig(subsample=1)) >= 0.5
    fast = default >= 0.5
    assert abs(boundary_f_score(fast, shape).f - boundary_f_score(full, shape).f) < 0.02
    assert abs(trimap_iou(fast, shape) - trimap_iou(full, shape)) < 0.02
    assert trimap_iou(fast, shape) > trimap_iou(hard >= 0.5, shape) + 0.1


def test_the_fast_step_never_exceeds_half_the_radius():
    assert [fast_step(r, 4) for r in (0, 1, 2, 3, 4, 7, 8, 16)] == [1, 1, 1, 1, 2, 3, 4, 4]
    assert fast_step(16, 1) == 1
    assert [fast_step(r, None) for r in (0, 7, 8, 16, 24, 40)] == [1, 1, 1, 2, 3, 5]  # radius / 8
    image, disk = _disk_scene()
    hard = refine_alpha(image, _coarse(disk), RefineConfig(method="none"))
    assert np.array_equal(guided_filter(image, hard, radius=0, subsample=4), hard)  # the identity
    assert np.allclose(guided_filter(image, hard, radius=2, subsample=4),
                       guided_filter(image, hard, radius=2), atol=1e-6)  # step 1: the full filter


def test_refine_alpha_thresholds_resizes_and_stays_in_range():
    image, disk = _disk_scene()
    prob = _coarse(disk)  # (8, 8): another size than the image
    hard = refine_alpha(image, prob, RefineConfig(method="none", threshold=0.5))
    assert hard.shape == disk.shape and set(np.unique(hard)) <= {0.0, 1.0}
    for method in ("guided", "feather"):
        alpha = refine_alpha(image, prob, RefineConfig(method=method, radius=3))
        assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    with pytest.raises(ValueError, match="method"):
        RefineConfig(method="magic")
    with pytest.raises(ValueError, match="threshold"):
        RefineConfig(threshold=1.5)


def test_feather_softens_without_moving_the_edge():
    _, disk = _disk_scene()
    soft = feather(disk.astype(np.float32), radius=2)
    assert 0 < ((soft > 0) & (soft < 1)).sum()
    assert np.array_equal(soft >= 0.5, disk) or np.mean((soft >= 0.5) != disk) < 0.01


def test_composite_is_the_matting_equation():
    rng = np.random.default_rng(2)
    image, background = rng.random((4, 5, 3)), rng.random((4, 5, 3))
    assert np.allclose(composite(image, background, np.ones((4, 5))), image)
    assert np.allclose(composite(image, background, np.zeros((4, 5))), background)
    half = composite(image, background, np.full((4, 5), 0.5))
    assert np.allclose(half, (image + background) / 2)
    with pytest.raises(ValueError, match="share"):
        composite(image, background, np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        composite(image, background, np.full((4, 5), 1.5))


def test_composite_uint8_is_the_same_equation_rounded():
    rng = np.random.default_rng(4)
    image, background = (rng.integers(0, 256, (6, 7, 3), dtype=np.uint8) for _ in range(2))
    alpha = rng.random((6, 7)).astype(np.float32)
    exact = composite(image / 255.0, background / 255.0, alpha) * 255
    out = composite_uint8(image, background, alpha)
    assert out.dtype == np.uint8 and np.abs(out - exact).max() <= 0.51
    with pytest.raises(ValueError, match="uint8"):
        composite_uint8(image / 255.0, background, alpha)
    with pytest.raises(ValueError, match="share"):
        composite_uint8(image, background, alpha[:5])


@pytest.mark.parametrize("radius", [2, 12, 40])
def test_blur_keeps_the_dtype_and_blurs_a_frame_as_its_float_copy(radius):
    """A wide blur runs on a smaller copy: the result still has the photo's size and dtype, is
    smoother than the photo, and a uint8 frame blurs as its float copy does (to a level or two)."""
    image = np.random.default_rng(5).random((90, 120, 3)).astype(np.float32)
    image[:, 60:] += 0.5  # a step, so that a blur has something to spread
    image = np.clip(image, 0, 1)
    frame = (image * 255).round().astype(np.uint8)
    soft, soft8 = blur(image, radius), blur(frame, radius)
    assert soft.shape == soft8.shape == image.shape
    assert soft.dtype == np.float32 and soft8.dtype == np.uint8
    assert np.abs(np.diff(soft, axis=1)).mean() < 0.5 * np.abs(np.diff(image, axis=1)).mean()
    assert np.abs(soft8 / 255.0 - blur(frame / 255.0, radius)).max() < 2.5 / 255
    assert make_background("blur", frame).dtype == np.uint8
    assert make_background("#ff0000", frame)[0, 0].tolist() == [255, 0, 0]


def test_backgrounds_from_colour_blur_and_file(tmp_path):
    image = np.random.default_rng(3).random((30, 40, 3)).astype(np.float32)
    assert parse_colour("#ff0000") == (1.0, 0.0, 0.0)
    assert parse_colour("0,255,0") == (0.0, 1.0, 0.0)
    assert parse_colour("not-a-colour") is None
    green = make_background("green", image)
    assert green.shape == image.shape and np.allclose(green, green[0, 0])
    blurred = make_background("blur:3", image)
    assert blurred.shape == image.shape and blurred.std() < image.std()
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((10, 80, 3), np.uint8) + 200).save(wide)  # another aspect ratio
    from_file = make_background(str(wide), image)
    assert from_file.shape == image.shape and np.allclose(from_file, 200 / 255, atol=1e-3)
    with pytest.raises(BackgroundError, match="not an image file, a colour"):
        make_background("no/such/file.png", image)
    with pytest.raises(BackgroundError, match="integer"):
        make_background("blur:x", image)


def test_evaluate_refinement_shows_the_guided_filter_helping():
    """A network seeing the scene at 1/8 resolution: guided refinement must beat none at the edge,
    and the mIoU (interior-dominated) must move far less than the edge metrics."""
    from segnas_lite.data.transforms import normalize
    scenes = []
    for tilt, arm in ((0.3, 75), (-0.2, 70), (0.1, 80)):
        image, shape = _person_scene(tilt=tilt, arm_row=arm)
        scenes.append((normalize(image), torch.as_tensor(shape.astype(np.int64))))
    order = iter(mask for _, mask in scenes)  # evaluate_refinement scores the scenes in order

    def prob_fn(image):
        return _coarse(next(order).numpy().astype(np.float32))

    rows = evaluate_refinement(prob_fn, scenes, {
        "none": RefineConfig(method="none"), "guided": RefineConfig(method="guided", radius=8)})
    none, guided = rows
    assert guided.boundary_f > none.boundary_f + 0.05
    assert guided.trimap_iou > none.trimap_iou + 0.1
    assert guided.miou - none.miou < guided.trimap_iou - none.trimap_iou
    assert all(row.seconds_per_image >= 0 for row in rows)


def test_default_radius_spans_one_network_output_pixel():
    from segnas_lite.portrait.refine import default_radius
    assert default_radius((512, 512), (256, 256)) == 16  # 8 px per output pixel, x2 upsampling
    assert default_radius((192, 192, 3), (64, 64)) == 24
    assert default_radius((400, 300)) == 4  # no network size: 1% of the larger side
    assert default_radius((64, 64), (64, 64), stride=1) == 2  # never below 2


@pytest.mark.slow
def test_refine_step_benchmark_runs_and_writes_its_table(tmp_path):
    """``benchmarks/refine_step.py --quick``: the stand-in comparison of the full and the fast guided
    filter on 4 photos of each people folder (skipped without ../shared/data)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from segnas_lite.data import default_people_dir
    people = default_people_dir()
    if not people.is_dir() or not (people.parent / "ccp_people").is_dir():
        pytest.skip("needs ../shared/data/people and ../shared/data/ccp_people")
    out = tmp_path / "refine_step.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "refine_step.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SEGNAS_QUIET": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(out.read_text())
    assert payload["radius"] == 16 and payload["default_step"] == 2
    for folder in ("people", "ccp_people"):
        rows = {row["name"]: row for row in payload["folders"][folder]["rows"]}
        assert set(rows) == {"hard cut", "guided, full", "fast, step 2", "fast, step 4"}
        full, fast = rows["guided, full"], rows["fast, step 2"]
        for key in ("miou", "boundary_f", "trimap_iou"):
            assert abs(full[key] - fast[key]) < 0.01
        assert all(row["ms_per_image"] > 0 for row in rows.values())

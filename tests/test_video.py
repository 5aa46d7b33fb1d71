"""Steady video (segnas_lite.portrait.smooth, .clips, .videoio): EMA smoothing and its lag, still
and panned clips, the writer, the throughput timer and the two CLI commands. (Flip rate and
consecutive IoU: tests/test_metrics.py; sync vs async inference: tests/test_predictor.py.)"""
import numpy as np
import pytest
import torch
from PIL import Image

from segnas_lite.portrait.clips import still_clip
from segnas_lite.portrait.smooth import EMASmoother, ema_lag_frames, smoothing_tradeoff
from segnas_lite.portrait.videoio import VideoError, VideoWriter


def test_ema_off_constant_and_first_frame():
    p = np.random.default_rng(0).random((3, 3)).astype(np.float32)
    assert np.array_equal(EMASmoother(0.0)(p), p)
    ema = EMASmoother(0.8)
    assert np.array_equal(ema(p), p)  # the first frame is taken as it is
    for _ in range(5):
        out = ema(p)
    assert np.allclose(out, p)
    with pytest.raises(ValueError, match="momentum"):
        EMASmoother(1.0)


@pytest.mark.parametrize("m", [0.0, 0.3, 0.5, 0.7, 0.9])
def test_ema_lag_is_the_frames_a_step_needs_to_cross_one_half(m):
    ema = EMASmoother(m)
    ema(np.zeros((1, 1), np.float32))
    frames = 0
    while True:
        frames += 1
        if ema(np.ones((1, 1), np.float32))[0, 0] >= 0.5:
            break
    assert frames == ema_lag_frames(m)


def test_smoothing_trades_jitter_for_lag():
    rng = np.random.default_rng(0)
    size, steps = 32, 24
    # static scene: an edge whose probability hovers around 0.5 with noise
    static = [np.clip(np.tile(np.linspace(0, 1, size), (size, 1)) + rng.normal(0, 0.15, (size, size)),
                      0, 1) for _ in range(steps)]
    # moving scene: a square sliding right by 2 pixels a frame, predicted perfectly
    truth = []
    for t in range(steps):
        mask = np.zeros((size, size), np.int64)
        mask[8:24, 2 * t % 16:2 * t % 16 + 12] = 1
        truth.append(mask)
    moving = [m.astype(np.float32) for m in truth]
    rows = smoothing_tradeoff(static, moving, truth, [0.0, 0.5, 0.8])
    flips = [r.flip_rate_static for r in rows]
    ious = [r.iou_moving for r in rows]
    assert flips[0] > flips[1] > flips[2]  # steadier with more momentum
    assert ious[0] == 1.0 and ious[0] >= ious[1] > ious[2]  # and later
    assert [r.lag_frames for r in rows] == [1, 1, 4]


def test_still_clip_is_deterministic_and_static_without_noise():
    image = (np.random.default_rng(1).random((12, 10, 3)) * 255).astype(np.uint8)
    clean = still_clip(image, 3, noise=0.0, shake=0)
    assert all(np.array_equal(f, image) for f in clean)
    a, b = still_clip(image, 4, seed=5), still_clip(image, 4, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].dtype == np.uint8 and a[0].shape == image.shape
    assert not np.array_equal(a[0], a[1])


def test_gif_writer_appears_only_when_closed(tmp_path):
    out = tmp_path / "clip.gif"
    writer = VideoWriter(out, fps=10)
    for v in (0, 128, 255):
        writer.write(np.full((8, 8, 3), v, np.uint8))
    assert not out.exists()
    writer.close()
    with Image.open(out) as gif:
        assert gif.n_frames == 3
    assert not list(tmp_path.glob(".*partial*"))
    broken = VideoWriter(tmp_path / "broken.gif", fps=10)
    broken.write(np.zeros((8, 8, 3), np.uint8))
    broken.discard()
    assert not (tmp_path / "broken.gif").exists()
    with pytest.raises(VideoError, match=r"\.mp4, \.avi or \.gif"):
        VideoWriter(tmp_path / "clip.mov", fps=10)
    with pytest.raises(VideoError, match="uint8"):
        VideoWriter(tmp_path / "x.gif", fps=10).write(np.zeros((8, 8, 3), np.float32))


def test_mp4_round_trip(tmp_path):
    pytest.importorskip("cv2")
    from segnas_lite.portrait.videoio import read_video
    out = tmp_path / "clip.mp4"
    writer = VideoWriter(out, fps=12)
    for v in range(5):
        writer.write(np.full((32, 48, 3), 40 * v, np.uint8))
    writer.close()
    frames, fps, count = read_video(out)
    frames = list(frames)
    assert len(frames) == 5 and count == 5 and fps == pytest.approx(12)
    assert frames[0].shape == (32, 48, 3)


@pytest.fixture(scope="module")
def tiny_ir(tmp_path_factory):
    pytest.importorskip("openvino")
    from segnas_lite.deploy.export import to_openvino
    from segnas_lite.zoo import build_model
    torch.manual_seed(0)
    model = build_model("fast_scnn", num_classes=2).eval()
    path = tmp_path_factory.mktemp("ir") / "model.xml"
    to_openvino(model, input_size=(64, 64), out_path=path)
    return path


def test_throughput_timer_runs_both_modes(tiny_ir):
    from segnas_lite.deploy.throughput import time_throughput
    from segnas_lite.timing import TimingError
    for mode in ("sync", "async"):
        result = time_throughput(tiny_ir, (1, 3, 64, 64), mode=mode, frames=8, warmup=2)
        assert result.fps > 0 and result.frames == 8 and result.requests >= 1
        assert result.mode == mode and "FPS" in result.to_text()
    with pytest.raises(TimingError, match="mode"):
        time_throughput(tiny_ir, (1, 3, 64, 64), mode="fast")


def test_cli_video_on_the_synthetic_clip(tiny_ir, tmp_path, capsys):
    from segnas_lite.cli import main
    out = tmp_path / "clip.gif"
    args = ["video", "synthetic", "--model", str(tiny_ir), "--out", str(out), "--frames", "6",
            "--size", "64", "--smooth", "0.5", "--quiet"]
    assert main(args) == 0  # no --background: the mask drawn over the frames
    printed = capsys.readouterr().out
    assert "6 frames" in printed and "flip rate raw" in printed and "true masks" in printed
    with Image.open(out) as gif:
        assert gif.n_frames == 6
    assert main(args) == 2  # never overwrites without --overwrite
    assert "exists" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--mode", "async", "--background", "green"]) == 0
    assert "6 frames" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["video", "replace-background"])
def test_cli_refinement_defaults_are_the_library_ones(command):
    """`segnas video` and `segnas replace-background` refine with RefineConfig's defaults (the fast
    guided filter); --subsample 1 asks for the full filter."""
    from segnas_lite.cli import build_parser
    from segnas_lite.cli.options import refine_config
    from segnas_lite.portrait.refine import RefineConfig
    base = [command, "IN", "--model", "m.xml", "--out", "o.gif"]
    assert refine_config(build_parser().parse_args(base)) == RefineConfig()
    full = refine_config(build_parser().parse_args(base + ["--subsample", "1"]))
    assert full.subsample == 1 and full.method == "guided"
    assert refine_config(build_parser().parse_args(base + ["--subsample", "auto"])) == RefineConfig()
    with pytest.raises(SystemExit):
        build_parser().parse_args(base + ["--subsample", "0"])


def test_cli_video_errors_are_one_line(tiny_ir, tmp_path, capsys):
    from segnas_lite.cli import main
    assert main(["video", str(tmp_path / "missing.mp4"), "--model", str(tiny_ir),
                 "--out", str(tmp_path / "o.gif")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("no video file" in err or "OpenCV" in err)
    with pytest.raises(SystemExit):
        main(["video", "synthetic", "--model", str(tiny_ir), "--out", "o.gif", "--smooth", "1"])


def test_cli_replace_background_with_masks(tiny_ir, tmp_path, capsys):
    from segnas_lite.cli import main
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    photos.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(4)
    for i in range(2):
        Image.fromarray((rng.random((50, 70, 3)) * 255).astype(np.uint8)).save(photos / f"p{i}.jpg")
        mask = np.zeros((50, 70), np.uint8)
        mask[10:40, 20:50] = 255
        Image.fromarray(mask).save(masks / f"p{i}.png")
    images = [str(p) for p in sorted(photos.iterdir())]
    args = ["replace-background", *images, "--model", str(tiny_ir), "--background", "#00b140",
            "--masks", str(masks), "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "boundary F" in printed and "trimap IoU" in printed and "mean over 2 photos" in printed
    for i in range(2):
        composite = np.asarray(Image.open(out / f"p{i}_composite.png"))
        alpha = np.asarray(Image.open(out / f"p{i}_alpha.png"))
        assert composite.shape == (50, 70, 3) and alpha.shape == (50, 70)
    assert main(args) == 2 and "exists" in capsys.readouterr().err
    assert main(["replace-background", images[0], "--model", str(tiny_ir), "--background",
                 "nonsense", "--out", str(tmp_path / "o2")]) == 2
    assert "not an image file, a colour" in capsys.readouterr().err
    for i in range(2):  # masks named photo_mask.png are found too
        (masks / f"p{i}.png").rename(masks / f"p{i}_mask.png")
    with pytest.warns(UserWarning, match="add '_mask'"):
        assert main([*args[:-3], "--out", str(tmp_path / "o3"), "--quiet"]) == 0
    assert "mean over 2 photos" in capsys.readouterr().out


def test_panned_clip_moves_image_and_mask_together():
    from segnas_lite.portrait.clips import panned_clip
    image = np.zeros((6, 10, 3), np.uint8)
    image[:, 2] = 255
    mask = (image[..., 0] > 0).astype(np.int64)
    frames, masks = panned_clip(image, mask, 3, step=3, noise=0.0)
    for t, (frame, m) in enumerate(zip(frames, masks)):
        assert np.array_equal(np.nonzero(m[0])[0], [2 + 3 * t])
        assert np.array_equal(frame[..., 0] > 127, m.astype(bool))

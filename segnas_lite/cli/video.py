"""``segnas replace-background`` and ``segnas video``: soft-edged cut-outs of photos and videos.

Both run the same chain (``segnas_lite.portrait.matting``, ``segnas_lite.portrait.video``): the network's foreground
probability -> (video: temporal smoothing) -> edge-aware refinement on the full-size frame -> alpha
composite over a new background.
"""
from __future__ import annotations

import argparse
import time
from collections import deque
from pathlib import Path

import numpy as np

from segnas_lite.cli import (CLIError, add_overwrite_option, add_quiet_option, fraction, image_side,
                  nonnegative_int, positive_float, positive_int)
from segnas_lite.zoo import load_trained, saved_data
from segnas_lite.portrait.matting import REFINE_METHODS, RefineConfig
from segnas_lite.runio import progress
from segnas_lite.timing import PRECISIONS


def momentum(text: str) -> float:
    """A smoothing momentum in [0, 1)."""
    value = fraction(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be a momentum in [0, 1), got {text}")
    return value


def threshold(text: str) -> float | None:
    """A probability threshold in (0, 1), or ``soft`` (refine the probability itself)."""
    if text == "soft":
        return None
    value = fraction(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1) or 'soft', got {text}")
    return value


def add_refine_options(p: argparse.ArgumentParser, *, background: str | None) -> None:
    p.add_argument("--background", default=background,
                   help="an image file, a colour ('#00b140', 'green', '0,177,64') or 'blur[:R]' "
                   "(the photo blurred); default: " + (background or "none: a coloured overlay "
                                                       "of the mask"))
    p.add_argument("--refine", choices=REFINE_METHODS, default="guided",
                   help="edge refinement: guided filter on the image, a plain feather, or none; "
                   "default %(default)s")
    p.add_argument("--threshold", type=threshold, default=0.5,
                   help="binarise the probability at this value before refining, or 'soft' to "
                   "refine the probability itself; default %(default)s")
    p.add_argument("--radius", type=nonnegative_int, default=None,
                   help="refinement radius in pixels (default: one network output pixel, "
                   "8 x image side / network input side)")
    p.add_argument("--eps", type=positive_float, default=RefineConfig.eps,
                   help="guided filter edge threshold (image variance); default %(default)s")
    p.add_argument("--foreground", type=nonnegative_int, default=1,
                   help="the class that is kept (person); default %(default)s")


def refine_config(args, shape: tuple[int, int], network: tuple[int, int] | None, *,
                  subsample: int = 1) -> RefineConfig:
    """The refinement of the command line; the default radius spans the network's coarse steps."""
    from segnas_lite.portrait.matting import default_radius
    radius = args.radius if args.radius is not None else default_radius(shape, network)
    return RefineConfig(method=args.refine, threshold=args.threshold, radius=radius, eps=args.eps,
                        subsample=subsample)


# --------------------------------------------------------------------------- photos
def add_replace_background_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--model", help="OpenVINO IR (model.xml) from `segnas export`")
    p.add_argument("--checkpoint", help="DIR/checkpoint.pt from `segnas train`")
    p.add_argument("--image-size", type=image_side, default=None,
                   help="with --checkpoint: the side photos are resized to for the network "
                   "(default: the training run's); an IR uses its own input size")
    add_refine_options(p, background="blur")
    p.add_argument("--masks", metavar="DIR",
                   help="true masks (same file stems, nonzero = foreground): print mIoU, boundary "
                   "F-score and trimap IoU before and after refinement")
    p.add_argument("--out", required=True,
                   help="folder for IMAGE_composite.png and IMAGE_alpha.png")
    add_overwrite_option(p, what="PNGs that exist in --out")
    add_quiet_option(p)


def probability_source(args):
    """``prob(image)``: (3, H, W) normalised photo -> (h, w) foreground probability at the
    network's own size, from --model (OpenVINO) or --checkpoint (PyTorch)."""
    from segnas_lite.portrait.matting import network_probability
    if bool(args.checkpoint) == bool(args.model):
        raise CLIError("give exactly one of --model MODEL.xml or --checkpoint DIR/checkpoint.pt")
    if args.model:
        from segnas_lite.deploy.export import OpenVINOPredictor
        predictor = OpenVINOPredictor(args.model)
        return network_probability(predictor, predictor.ir_size, foreground=args.foreground)
    model, state = load_trained(args.checkpoint)
    side = args.image_size or saved_data(state).get("image_size")
    return network_probability(model, (side, side) if side else None, foreground=args.foreground)


def _true_mask(masks: dict[str, Path], stem: str, shape: tuple[int, int]) -> np.ndarray:
    """The (H, W) bool foreground (nonzero) of the mask named like the photo, at the photo's size."""
    from PIL import Image
    if stem not in masks:
        raise CLIError(f"no mask named {stem}.* in --masks")
    with Image.open(masks[stem]) as picture:
        mask = picture.convert("L")
        if mask.size != (shape[1], shape[0]):
            mask = mask.resize((shape[1], shape[0]), Image.NEAREST)
        return np.asarray(mask) > 0


def cmd_replace_background(args) -> int:
    from PIL import Image
    from segnas_lite.data import denormalize, load_image
    from segnas_lite.portrait.matting import (boundary_f_score, composite, make_background, refine_alpha, resize,
                          trimap_iou)
    out = Path(args.out)
    masks = None
    if args.masks:
        from segnas_lite.data.folders import masks_by_stem
        if not Path(args.masks).is_dir():
            raise CLIError(f"--masks {args.masks} is not a folder")
        masks = masks_by_stem(Path(args.masks))
    for path in args.images:
        if not Path(path).is_file():
            raise CLIError(f"no image at {path}")
        stem = Path(path).stem
        for target in (out / f"{stem}_composite.png", out / f"{stem}_alpha.png"):
            if target.exists() and not args.overwrite:
                raise CLIError(f"{target} exists; pass --overwrite or choose another --out")
    make_background(args.background, np.zeros((2, 2, 3), np.float32))  # a bad spec fails now
    prob_of = probability_source(args)
    out.mkdir(parents=True, exist_ok=True)
    scores = []
    for path in progress(args.images, quiet=args.quiet or len(args.images) < 2, desc="photos"):
        image = load_image(path)  # (3, H, W) at the photo's own size, normalised
        picture = denormalize(image).permute(1, 2, 0).numpy()  # (H, W, 3) in [0, 1]
        prob = prob_of(image)
        config = refine_config(args, picture.shape[:2], prob.shape)
        alpha = refine_alpha(picture, prob, config)
        background = make_background(args.background, picture)
        result = composite(picture, background, alpha)
        stem = Path(path).stem
        Image.fromarray((result * 255).round().astype(np.uint8)).save(out / f"{stem}_composite.png")
        Image.fromarray((alpha * 255).round().astype(np.uint8)).save(out / f"{stem}_alpha.png")
        line = f"{path}: {100 * (alpha >= 0.5).mean():.1f}% foreground -> {out / (stem + '_composite.png')}"
        if masks is not None:
            true = _true_mask(masks, stem, picture.shape[:2])
            before = resize(prob, picture.shape[:2]) >= 0.5
            after = alpha >= 0.5
            row = []
            for pred in (before, after):
                ious = [(a & b).sum() / max((a | b).sum(), 1) for a, b in ((pred, true), (~pred, ~true))]
                row += [float(np.mean(ious)), boundary_f_score(pred, true).f, trimap_iou(pred, true)]
            scores.append(row)
            line += (f"   mIoU {row[0]:.3f} -> {row[3]:.3f}, boundary F {row[1]:.3f} -> {row[4]:.3f}, "
                     f"trimap IoU {row[2]:.3f} -> {row[5]:.3f}")
        print(line)
    if scores:
        mean = np.mean(scores, axis=0)
        print(f"\nmean over {len(scores)} photos (before -> after {args.refine} refinement):\n"
              f"  mIoU {mean[0]:.3f} -> {mean[3]:.3f}   boundary F {mean[1]:.3f} -> {mean[4]:.3f}   "
              f"trimap IoU {mean[2]:.3f} -> {mean[5]:.3f}")
    return 0


# --------------------------------------------------------------------------- video
def add_video_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN",
                   help="a video file (needs segnas_lite[video]) or 'synthetic' (a built-in clip)")
    p.add_argument("--model", required=True, help="OpenVINO IR (model.xml) from `segnas export`")
    p.add_argument("--out", required=True, help="OUT.mp4, OUT.avi (OpenCV) or OUT.gif")
    add_refine_options(p, background=None)
    p.add_argument("--smooth", type=momentum, default=0.5,
                   help="EMA momentum m of the probabilities (p = m p_prev + (1-m) p_new); 0 = off; "
                   "default %(default)s")
    p.add_argument("--mode", choices=("sync", "async"), default="sync",
                   help="OpenVINO inference: one frame at a time, or an AsyncInferQueue "
                   "(THROUGHPUT hint); default %(default)s")
    p.add_argument("--precision", choices=PRECISIONS, default="default",
                   help="OpenVINO inference precision; default %(default)s (bf16 where supported)")
    p.add_argument("--threads", type=positive_int, default=2, help="default %(default)s")
    p.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many")
    p.add_argument("--frames", type=positive_int, default=60,
                   help="length of the synthetic clip; default %(default)s")
    p.add_argument("--size", type=image_side, default=256,
                   help="side of the synthetic clip; default %(default)s")
    add_overwrite_option(p, what="OUT if it exists")
    add_quiet_option(p)


def cmd_video(args) -> int:
    from segnas_lite.data import denormalize, synthetic_video
    from segnas_lite.portrait.matting import composite, make_background, refine_alpha
    from segnas_lite.portrait.video import EMASmoother, FrameSegmenter, VideoWriter, read_video
    from segnas_lite.data.palette import overlay
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CLIError(f"{out} exists; pass --overwrite or choose another --out")
    if args.background is not None:
        make_background(args.background, np.zeros((2, 2, 3), np.float32))  # a bad spec fails now
    truths = None
    if args.input == "synthetic":
        clip = synthetic_video(args.frames, image_size=(args.size, args.size), seed=0)
        frames = [(denormalize(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                  for image, _ in clip]  # (H, W, 3) uint8
        truths = [mask.numpy() for _, mask in clip]
        frames, fps, total = frames[:args.max_frames], 25.0, min(len(frames), args.max_frames or len(frames))
    else:
        frames, fps, total = read_video(args.input, max_frames=args.max_frames)
    segmenter = FrameSegmenter(args.model, mode=args.mode, precision=args.precision,
                               threads=args.threads, foreground=args.foreground)
    writer = VideoWriter(out, fps=fps)
    smoother = EMASmoother(args.smooth)
    pending: deque = deque()

    def feed():
        for frame in frames:
            pending.append(frame)
            yield frame

    stats = {"raw": [0.0, 0], "smoothed": [0.0, 0]}  # flipped pixels summed, frame pairs
    previous = {"raw": None, "smoothed": None}
    ious, background, config = [], None, None
    start = time.perf_counter()
    bar = progress(segmenter(feed()), quiet=args.quiet, total=total or None, desc="frames",
                   unit="frame")
    count = 0
    try:
        for prob in bar:
            frame = pending.popleft()
            smooth = smoother(prob)
            for name, p in (("raw", prob), ("smoothed", smooth)):
                mask = p >= 0.5
                if previous[name] is not None:
                    stats[name][0] += float((mask != previous[name]).mean())
                    stats[name][1] += 1
                previous[name] = mask
            picture = frame.astype(np.float32) / 255.0
            if config is None:
                config = refine_config(args, picture.shape[:2], prob.shape, subsample=2)
                if args.background is not None:
                    background = make_background(args.background, picture)
            alpha = refine_alpha(picture, smooth, config)
            if background is not None:
                shown = composite(picture, background, alpha)
            else:
                shown = overlay(picture, (alpha >= 0.5).astype(np.int64))
            if truths is not None:
                true = truths[count] == 1
                pred = alpha >= 0.5
                ious.append((pred & true).sum() / max((pred | true).sum(), 1))
            writer.write((np.clip(shown, 0, 1) * 255).round().astype(np.uint8))
            count += 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(fps=f"{count / (time.perf_counter() - start):.1f}")
        if count == 0:
            raise CLIError(f"{args.input} gave no frames")
        writer.close()
    except BaseException:
        writer.discard()
        raise
    seconds = time.perf_counter() - start
    print(f"{count} frames in {seconds:.1f} s: {count / seconds:.1f} FPS end to end "
          f"({args.mode} inference, {args.precision}, {args.threads} threads) -> {out}")
    for name in ("raw", "smoothed"):
        flips, pairs = stats[name]
        if pairs:
            label = "raw" if name == "raw" else f"smoothed (m = {args.smooth})"
            print(f"  flip rate {label}: {100 * flips / pairs:.2f}% of pixels per frame")
    if ious:
        print(f"  foreground IoU against the clip's true masks: {np.mean(ious):.3f}")
    return 0

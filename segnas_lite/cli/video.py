"""``segnas video``: segment a video frame by frame, smoothed, optionally on a new background.

``portrait.pipeline.process_video``: the network's foreground probability (``deploy.predictor``,
sync or async) -> temporal smoothing (EMA) -> edge-aware refinement on the full-size frame ->
composite or overlay; prints FPS, flicker and the time per stage.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from segnas_lite.cli.options import (CLIError, add_overwrite_option, add_quiet_option,
                                     add_refine_options, image_side, momentum, positive_int,
                                     refine_config)
from segnas_lite.deploy.target import DEFAULT_THREADS, PRECISIONS

HELP = ("segment a video frame by frame (smoothed, optionally a new background) and report FPS "
        "and flicker")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN",
                   help="a video file (.mp4, .avi, anything OpenCV reads) or 'synthetic' (a built-in clip)")
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
    p.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                   help="default %(default)s")
    p.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many")
    p.add_argument("--frames", type=positive_int, default=60,
                   help="length of the synthetic clip; default %(default)s")
    p.add_argument("--size", type=image_side, default=256,
                   help="side of the synthetic clip; default %(default)s")
    add_overwrite_option(p, what="OUT if it exists")
    add_quiet_option(p)


def run(args) -> int:
    from segnas_lite.deploy.predictor import OpenVINOPredictor
    from segnas_lite.portrait.clips import synthetic_clip
    from segnas_lite.portrait.composite import check_background
    from segnas_lite.portrait.pipeline import process_video
    from segnas_lite.portrait.videoio import read_video, write_video
    from segnas_lite.runio import progress
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CLIError(f"{out} exists; pass --overwrite or choose another --out")
    check_background(args.background)  # a bad spec fails now
    truths = None
    if args.input == "synthetic":
        frames, truths = synthetic_clip(args.frames, size=args.size, seed=0)
        frames, fps, total = frames[:args.max_frames], 25.0, len(frames[:args.max_frames])
    else:
        frames, fps, total = read_video(args.input, max_frames=args.max_frames)
    predictor = OpenVINOPredictor(args.model, mode=args.mode, precision=args.precision,
                                  threads=args.threads, foreground=args.foreground)
    video = process_video(frames, predictor, smoothing=args.smooth,
                          refine=refine_config(args), background=args.background,
                          truths=truths)
    bar = progress(video, quiet=args.quiet, total=total or None, desc="frames", unit="frame")

    def shown():
        for frame in bar:
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(fps=f"{video.fps:.1f}")
            yield frame
    write_video(shown(), out, fps=fps)
    print(f"{video.frames_done} frames in {video.seconds:.1f} s: {video.fps:.1f} FPS end to end "
          f"({args.mode} inference, {args.precision}, {args.threads} threads) -> {out}")
    print(video.summary())
    return 0

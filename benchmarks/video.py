"""Soft edges and steady video on real photos: edge refinement, temporal smoothing, sync vs async FPS.

    python benchmarks/video.py                 # about 10 min on 2 cores (needs ../shared/data/people)
    python benchmarks/video.py --quick         # a smoke run (tiny training, few photos and frames)
    python benchmarks/video.py --checkpoint runs/people/checkpoint.pt   # your own people model

1. **A people model.** ``--checkpoint`` (from ``segnas train``), or a short training here: ``--model``
   (default Fast-SCNN) for ``--train-steps`` SGD steps at ``--train-size`` px on the people train
   split (80/20, seed 0), kept in ``results/video/`` so a second run reuses it. Exported to an
   OpenVINO IR (f32 weights) at ``--ir-size``.
2. **Refinement** (``segnas_lite.portrait.refine``, ``.evaluate``): every people-val photo judged at ``--eval-size`` px
   (image and mask stretched to that square): two-class mIoU, boundary F-score (tolerance 0.8% of
   the diagonal) and trimap IoU, for the hard upsampled mask and each refinement setting, with the
   refinement's own time per photo.
3. **Stability** (``segnas_lite.portrait.smooth``, ``.clips``): each of ``--clips`` val photos becomes a static clip
   (sensor noise 0.02, 1 px camera shake) and a panned clip (4 px a frame, true mask known); the
   EMA momentum is swept: flip rate on the static clips against foreground IoU on the panned ones.
4. **FPS**: the IR on a stream of frames, one request at a time (LATENCY hint) and through an
   ``AsyncInferQueue`` (THROUGHPUT hint), in f32 and at the default precision (bf16 where the CPU
   has it), measured by ``deploy.throughput.time_throughput`` with the machine's load recorded.
5. **End to end** (``--e2e-sizes``, default 640x480 and 1280x720): what ``segnas video`` does to a
   video file, stage by stage (``portrait.pipeline.VideoRun``): decode, preparation (the uint8
   frame shrunk to ``--ir-size``, then a normalised tensor), network (inference), smoothing (EMA 0.5),
   refinement (the default fast guided filter, and none), compositing over a blurred background,
   encode (``.mp4``). The clip is a people-val photo stretched to the size and panned, written to
   an ``.mp4`` first (not timed). Sync and async inference, f32; the median of ``--e2e-repeats``
   runs after a warm-up run, with the machine's load recorded.

``--e2e-only`` runs sections 1 and 5 alone and writes ``results/video_e2e.json``: the stage
times depend on the architecture and the frame size, not on how long the weights were trained.
A row whose timed runs were marked busy (another process on our cores, or the host's speed moving
between the probes) is measured again, up to ``--busy-retries`` times; every attempt is kept.

Writes ``results/video.json`` and ``results/video_smoothing.png``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, print_table, write_json  # noqa: E402

from segnas_lite.data import PairedAugment, default_people_dir, denormalize, open_dataset  # noqa: E402
from segnas_lite.data.transforms import normalize  # noqa: E402
from segnas_lite.metrics import consecutive_iou, flip_rate  # noqa: E402
from segnas_lite.portrait.clips import panned_clip, still_clip  # noqa: E402
from segnas_lite.portrait.evaluate import evaluate_refinement  # noqa: E402
from segnas_lite.portrait.refine import RefineConfig, default_radius, fast_step  # noqa: E402
from segnas_lite.portrait.smooth import smoothing_tradeoff  # noqa: E402
from segnas_lite.runio import atomic_torch_save, load_checkpoint  # noqa: E402
from segnas_lite.deploy.throughput import time_throughput  # noqa: E402
from segnas_lite.timing import LoadMonitor  # noqa: E402

MOMENTA = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9)
STAGES = ("decode", "preparation", "network", "smoothing", "refinement", "compositing", "encode")


def people_model(args, people: Path):
    """The network under test: a checkpoint, or a short training on the people train split."""
    from segnas_lite.train.engine import TrainConfig, evaluate, train
    from segnas_lite.zoo import build_model
    if args.checkpoint:
        from segnas_lite.zoo import load_trained
        model, _ = load_trained(args.checkpoint)
        return model, {"source": args.checkpoint}
    cache = RESULTS / "video" / f"{args.model}_{args.train_size}px_{args.train_steps}steps.pt"
    model = build_model(args.model, num_classes=2)
    if cache.exists():
        state = load_checkpoint(cache)
        model.load_state_dict(state["model"])
        return model.eval(), state["info"]
    train_set = open_dataset(people, image_size=args.train_size, split="train", seed=0,
                             augment=PairedAugment())
    val_set = open_dataset(people, image_size=args.train_size, split="val", seed=0)
    epochs = max(1, -(-args.train_steps * 8 // len(train_set)))
    per_epoch = min(len(train_set) // 8, -(-args.train_steps // epochs))
    torch.manual_seed(0)
    started = time.perf_counter()
    train(model, train_set, config=TrainConfig(epochs=epochs, batch_size=8, lr=0.05, seed=0,
                                               steps_per_epoch=per_epoch, eval_every=epochs,
                                               quiet=args.quiet), num_classes=2)
    info = {"source": "trained here", "model": args.model, "train_size": args.train_size,
            "steps": epochs * per_epoch, "seconds": round(time.perf_counter() - started, 1),
            "val_miou_at_train_size": evaluate(model, val_set, num_classes=2, quiet=True).miou}
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"model": model.state_dict(), "info": info}, cache)
    return model.eval(), info


def video_size(text: str) -> tuple[int, int]:
    """"1280x720" -> (1280, 720): width, height."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is WIDTHxHEIGHT, e.g. 1280x720, not {text!r}")
    if min(width, height) < 16:
        raise argparse.ArgumentTypeError(f"{text}: at least 16 pixels each way")
    return width, height


def end_to_end(ir: Path, picture: np.ndarray, mask: np.ndarray, args) -> list[dict]:
    """Section 5: one row per (size, mode, refinement): milliseconds per frame of each stage and
    the frames per second end to end, from the median of ``args.e2e_repeats`` timed runs."""
    from segnas_lite.data.io import resize_mask, resize_rgb
    from segnas_lite.deploy.predictor import OpenVINOPredictor
    from segnas_lite.portrait.videoio import write_video
    folder = RESULTS / "video" / "e2e"
    folder.mkdir(parents=True, exist_ok=True)
    chains = {"fast guided (default)": RefineConfig(), "none": RefineConfig(method="none")}
    rows = []
    for width, height in args.e2e_sizes:
        frames, _ = panned_clip(resize_rgb(picture, (height, width)),
                                resize_mask(mask, (height, width)), args.e2e_frames,
                                step=max(1, width // 160), seed=0)
        clip = write_video(frames, folder / f"clip_{width}x{height}.mp4", fps=30.0)
        for mode in ("sync", "async"):
            predictor = OpenVINOPredictor(ir, precision="f32", threads=2, mode=mode)
            for name, refine in chains.items():
                attempts = []
                for _ in range(1 + max(0, args.busy_retries)):
                    attempts.append(timed_runs(clip, predictor, refine, args.e2e_repeats,
                                               folder / "out.mp4", what=f"{width}x{height} {mode}"))
                    if not any(r["busy"] for r in attempts[-1]):
                        break
                runs = sorted(attempts[-1], key=lambda r: r["fps"])
                middle = runs[len(runs) // 2]
                row = {"size": f"{width}x{height}", "mode": mode, "refinement": name,
                       **{f"{stage}_ms": middle["ms"][stage] for stage in STAGES},
                       "total_ms": middle["ms"]["total"], "fps": middle["fps"],
                       "fps_runs": [r["fps"] for r in runs],
                       "busy": any(r["busy"] for r in runs), "attempts": len(attempts),
                       "busy_attempts_fps": [[r["fps"] for r in a] for a in attempts[:-1]]}
                rows.append(row)
                if not args.quiet:
                    print(f"  {row['size']} {mode} {name}: {row['fps']:.1f} FPS"
                          f"{' (busy)' if row['busy'] else ''}, attempt {len(attempts)}", flush=True)
    return rows


def timed_runs(clip: Path, predictor, refine, repeats: int, out: Path, *, what: str) -> list[dict]:
    """One warm-up run, then ``repeats`` timed runs of the whole pipeline on ``clip``, each under
    its own load monitor: per run, ms per frame of each stage, frames per second, busy or not."""
    from segnas_lite.portrait.pipeline import process_video
    from segnas_lite.portrait.videoio import read_video, write_video
    runs = []
    for repeat in range(1 + repeats):  # the first: warm-up, not kept
        with LoadMonitor(what=f"end to end {what}") as monitor:
            decoded, fps, _ = read_video(clip)
            run = process_video(decoded, predictor, smoothing=0.5, refine=refine, background="blur")
            write_video(run, out, fps=fps)
        if repeat:
            ms = run.ms_per_frame()
            ms["encode"] = ms.pop("outside")  # the caller's time: writing the file
            runs.append({"ms": ms, "fps": run.fps, "busy": monitor.report.busy})
    return runs


def quality_and_fps(args, payload: dict, val, prob_fn, ir: Path) -> Path:
    """Sections 2-4: refinement on every val photo, stability on clips, sync/async FPS.
    Fills ``payload`` and returns the path of the smoothing figure."""
    # 2. refinement -------------------------------------------------------------------------------
    r = default_radius((args.eval_size, args.eval_size), (args.ir_size, args.ir_size))
    configs = {
        "hard (upsampled, p >= 0.5)": RefineConfig(method="none"),
        "soft probability": RefineConfig(method="none", threshold=None),
        f"feather r={r}": RefineConfig(method="feather", radius=r),
        f"guided r={r // 2}": RefineConfig(method="guided", radius=r // 2, subsample=1),
        f"guided r={r}, full": RefineConfig(method="guided", radius=r, subsample=1),
        f"guided r={2 * r}": RefineConfig(method="guided", radius=2 * r, subsample=1),
        f"guided r={r} eps=1e-2": RefineConfig(method="guided", radius=r, eps=1e-2, subsample=1),
        f"guided r={r} eps=1e-4": RefineConfig(method="guided", radius=r, eps=1e-4, subsample=1),
        f"guided soft r={r}": RefineConfig(method="guided", radius=r, threshold=None, subsample=1),
        f"fast guided r={r} s=4": RefineConfig(method="guided", radius=r, subsample=4),
        f"fast guided r={r} s={fast_step(r, None)} (default: r/8)": RefineConfig(method="guided",
                                                                              radius=r),
    }
    limit = 8 if args.quick else None
    rows = [vars(r) for r in evaluate_refinement(prob_fn, val, configs, quiet=args.quiet,
                                                 limit=limit)]
    for r in rows:
        r["ms_per_image"] = 1000 * r.pop("seconds_per_image")
    print(f"\nrefinement on {limit or len(val)} people-val photos at {args.eval_size} px "
          f"(network at {args.ir_size} px, OpenVINO f32)")
    print_table(rows, [("name", "setting", "s"), ("miou", "mIoU", ".3f"),
                       ("boundary_f", "boundary F", ".3f"), ("trimap_iou", "trimap IoU", ".3f"),
                       ("ms_per_image", "ms/photo", ".1f")])
    payload["refinement"] = {"photos": limit or len(val), "rows": rows}

    # 3. stability --------------------------------------------------------------------------------
    def frame_prob(frame: np.ndarray) -> np.ndarray:  # (H, W, 3) uint8 -> (ir, ir) probability
        return prob_fn(normalize(frame))

    def at_ir_size(mask: np.ndarray) -> np.ndarray:  # a true mask at the probabilities' size
        t = torch.as_tensor(mask, dtype=torch.float32)[None, None]
        return F.interpolate(t, size=(args.ir_size, args.ir_size), mode="nearest")[0, 0].numpy()

    static_probs, moving_probs, moving_truth, raw = [], [], [], []
    for index in range(min(args.clips, len(val))):
        image, mask = val[index]
        picture = (denormalize(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        probs = [frame_prob(f) for f in still_clip(picture, args.frames, seed=index)]
        masks = np.stack([p >= 0.5 for p in probs]).astype(np.int64)  # (T, h, w)
        raw.append({"flip_rate": flip_rate(masks), "consecutive_iou": consecutive_iou(masks)})
        static_probs.append(probs)
        frames, truths = panned_clip(picture, (np.asarray(mask) == 1).astype(np.int64),
                                     args.frames, step=max(1, args.eval_size // 128), seed=index)
        moving_probs.append([frame_prob(f) for f in frames])
        moving_truth.append([at_ir_size(t) for t in truths])
    per_clip = [smoothing_tradeoff(s, m, tr, MOMENTA)
                for s, m, tr in zip(static_probs, moving_probs, moving_truth)]
    smoothing = [{"momentum": m, "lag_frames": per_clip[0][i].lag_frames,
                  "flip_rate_static": float(np.mean([c[i].flip_rate_static for c in per_clip])),
                  "iou_moving": float(np.mean([c[i].iou_moving for c in per_clip]))}
                 for i, m in enumerate(MOMENTA)]
    print(f"\ntemporal smoothing: {len(per_clip)} photos as static and panned clips of "
          f"{args.frames} frames (masks at {args.ir_size} px)")
    print_table(smoothing, [("momentum", "EMA m", ".1f"), ("lag_frames", "lag (frames)", "d"),
                            ("flip_rate_static", "flips/frame (static)", ".4%"),
                            ("iou_moving", "IoU (panned)", ".3f")])
    payload["stability"] = {"raw_per_clip": raw, "smoothing": smoothing}
    from segnas_lite.teaching import plots
    figure = plots.smoothing_tradeoff(smoothing)
    figure_path = Path(args.out).with_name(Path(args.out).stem + "_smoothing.png")
    figure.savefig(figure_path, dpi=110)

    # 4. frames per second ------------------------------------------------------------------------
    fps_rows = []
    with LoadMonitor(warn=True, what="the FPS runs") as monitor:
        for precision in ("f32", "default"):
            for mode in ("sync", "async"):
                result = time_throughput(ir, (1, 3, args.ir_size, args.ir_size), mode=mode,
                                         frames=args.fps_frames, precision=precision)
                print(result.to_text())
                fps_rows.append({"precision": f"{precision} -> {result.precision}", "mode": mode,
                                 "requests": result.requests, "fps": result.fps,
                                 "busy": result.busy})
    print(f"\nOpenVINO frames per second, {args.model} at {args.ir_size} px, 2 threads")
    print_table(fps_rows, [("precision", "precision", "s"), ("mode", "mode", "s"),
                           ("requests", "requests", "d"), ("fps", "FPS", ".1f"),
                           ("busy", "busy", "")])
    payload["fps"] = {"rows": fps_rows, "load": monitor.report.to_dict()}

    return figure_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default=str(default_people_dir()))
    parser.add_argument("--checkpoint", help="a people model from `segnas train` (else trained here)")
    parser.add_argument("--model", default="fast_scnn")
    parser.add_argument("--train-size", type=int, default=224)
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--ir-size", type=int, default=256)
    parser.add_argument("--eval-size", type=int, default=512)
    parser.add_argument("--clips", type=int, default=8, help="val photos turned into clips")
    parser.add_argument("--frames", type=int, default=30, help="frames per clip")
    parser.add_argument("--fps-frames", type=int, default=300, help="frames per FPS measurement")
    parser.add_argument("--e2e-sizes", type=video_size, nargs="+",
                        default=[(640, 480), (1280, 720)], help="input sizes of the end-to-end "
                        "table, WIDTHxHEIGHT (default 640x480 1280x720)")
    parser.add_argument("--e2e-frames", type=int, default=150, help="frames per end-to-end clip")
    parser.add_argument("--e2e-repeats", type=int, default=3, help="timed end-to-end runs each")
    parser.add_argument("--busy-retries", type=int, default=2,
                        help="measure an end-to-end row again while its runs are busy (default 2)")
    parser.add_argument("--e2e-only", action="store_true",
                        help="the model and the end-to-end table only (writes results/video_e2e.json)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--out", help="the JSON written (default results/video.json, "
                        "results/video_e2e.json with --e2e-only, results/video/quick.json with --quick)")
    args = parser.parse_args()
    if args.quick:
        args.train_steps, args.clips, args.frames, args.fps_frames = 20, 2, 8, 30
        args.e2e_frames, args.e2e_repeats, args.e2e_sizes = 12, 1, [(320, 240)]
        args.eval_size, args.busy_retries = 256, 0
        args.out = args.out or str(RESULTS / "video" / "quick.json")
    if args.out is None:
        args.out = str(RESULTS / ("video_e2e.json" if args.e2e_only else "video.json"))
    people = Path(args.people)
    if not people.is_dir():
        sys.exit(f"no people folder at {people}: pass --people DIR (photos + masks)")
    torch.manual_seed(0)
    payload: dict = {"environment": environment(), "settings": vars(args)}

    # 1. the model and its IR ---------------------------------------------------------------------
    from segnas_lite.deploy.export import to_openvino
    from segnas_lite.deploy.predictor import OpenVINOPredictor
    model, payload["model"] = people_model(args, people)
    ir = RESULTS / "video" / "model.xml"
    ir.parent.mkdir(parents=True, exist_ok=True)
    to_openvino(model, input_size=(args.ir_size, args.ir_size), out_path=ir, compress_to_fp16=False,
                overwrite=True)
    predictor = OpenVINOPredictor(ir, precision="f32")
    prob_fn = predictor.probability  # (3, H, W) image -> (ir, ir) p(person)

    val = open_dataset(people, image_size=args.eval_size, split="val", seed=0)
    figure_path = None if args.e2e_only else quality_and_fps(args, payload, val, prob_fn, ir)

    # 5. end to end -------------------------------------------------------------------------------
    image, mask = val[0]
    picture = (denormalize(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    e2e = end_to_end(ir, picture, (np.asarray(mask) == 1).astype(np.uint8), args)
    print(f"\nend to end, ms per frame ({args.model} at {args.ir_size} px, OpenVINO f32, 2 threads; "
          f"EMA 0.5, blurred background, .mp4 in and out; median of {args.e2e_repeats} runs of "
          f"{args.e2e_frames} frames)")
    print_table(e2e, [("size", "input", "s"), ("mode", "mode", "s"), ("refinement", "refinement", "s"),
                      *[(f"{stage}_ms", stage, ".1f") for stage in STAGES],
                      ("total_ms", "total", ".1f"), ("fps", "FPS", ".1f"), ("busy", "busy", "")])
    payload["end_to_end"] = {"rows": e2e, "stages": list(STAGES), "frames": args.e2e_frames,
                             "repeats": args.e2e_repeats}
    write_json(args.out, payload)
    if figure_path is not None:
        print(f"wrote {figure_path}")


if __name__ == "__main__":
    main()

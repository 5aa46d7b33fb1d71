"""Our people models beside a peer, MediaPipe Selfie Segmentation: parameters, latency, mIoU.

    # in an environment of its own (MediaPipe brings opencv-contrib-python and jax):
    python -m venv .venv-peers && .venv-peers/bin/pip install -e ".[peers]"
    .venv-peers/bin/python benchmarks/peers.py --checkpoint runs/people/checkpoint.pt [...]

The peers are the two Selfie Segmentation models bundled in the ``mediapipe==0.10.14`` wheel, the
general one (square, 256 x 256, ``model_selection=0``) and the landscape one (144 x 256,
``model_selection=1``), each run through its own pipeline (``SelfieSegmentation(...).process``);
MediaPipe is used here only, never by the package. Ours run through OpenVINO at the size each
checkpoint was trained at, in f32 and at the CPU's default precision (bf16 where supported).

Same data, same metrics, same timer for everyone:
- the validation split of every ``--data`` folder (default: ``people`` and ``ccp_people``; each
  folder's own split, or its seeded cut with ``--split-seed``, 0 as in every people benchmark and
  in the search study), every photo and mask stretched to ``--eval-size`` px; a pixel is "person"
  when p(person) >= 0.5; per set: two-class mIoU over all its pixels (``metrics.ConfusionMeter``),
  the person IoU, and the boundary F-score (``metrics.boundary_f_score``, mean over photos);
- latency: ``timing.time_runner`` (warm-up, median of ``--runs`` calls, one image, 2 threads for
  OpenVINO; MediaPipe chooses its own threads), every row in ``--repeats`` interleaved passes after
  the scoring (the best pass counts), with the machine's load recorded; a busy run is marked and
  must not be quoted. ``--clock paced`` (the default) reads every call against a fixed reference
  network called in the same moments (``timing.pace``; the reference: Fast-SCNN with seeded random
  weights, OpenVINO f32, 2 threads, 256 px, allowed to pace MediaPipe's runtime too): a shared
  VM's speed drifts by tens of percent within a minute, which the ratio cancels. ``--clock wall``:
  plain milliseconds.
- parameters: ours counted in PyTorch; MediaPipe's counted from the constant tensors of its
  ``.tflite`` file (weights and biases of every layer) when the ``tflite`` package is installed.

Writes ``results/peers.json``.

**Latency alone** (latency depends on the architecture and the input size, not on the weights):

    .venv-peers/bin/python benchmarks/peers.py --latency-only --architecture fast_scnn:256 \
        --architecture benchmarks/results/recipe_child_genotype.json:256 ... --out FILE

times MediaPipe's two models and each architecture (a zoo name, or a searched genotype's JSON
file, then ``:SIDE``) with seeded random weights, in f32 and the CPU's default precision, on the
same clock and passes as a full run; nothing is scored. A study whose checkpoints are gone (they
are not committed) gets its latency columns this way.

**Soft masks as a teacher** (issue 23: distillation from a model we cannot import):

    .venv-peers/bin/python benchmarks/peers.py --write-soft-masks results/soft_mediapipe

writes MediaPipe's p(person) x 255 (general model, the whole photo at its own size) as a grey PNG
for every photo of the TRAIN split of every ``--data`` folder (the same seeded cut), where
``data.soft_targets`` looks for it; then stops. Files already there are kept (delete the folder
to write them again). ``segnas train --soft-teacher DIR`` and ``benchmarks/recipe.py
--soft-teacher DIR`` distil them. No val photo is ever read for it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, print_table, write_json  # noqa: E402

from segnas_lite.data import default_people_dir, denormalize, open_dataset  # noqa: E402
from segnas_lite.metrics import ConfusionMeter  # noqa: E402
from segnas_lite.timing import LoadMonitor, Pacer, Runner, pacing, time_runner  # noqa: E402


REFERENCE = "Fast-SCNN (seeded random weights), OpenVINO f32, 2 threads, 256 px"


def latencies(runners: list[Runner], *, runs: int, repeats: int, clock: str
              ) -> tuple[list[float], dict, dict]:
    """Every runner timed in ``repeats`` interleaved passes of ``runs`` calls (a slow minute hits
    one pass, not one row), the best pass per runner; on the paced clock every call is read
    against ``REFERENCE`` (``timing.pace``, ``cross_backend``: it paces MediaPipe's runtime too).
    Returns (ms per runner, the clock's description, the load record of all the passes)."""
    from contextlib import nullcontext

    from segnas_lite.deploy.bench import prepare
    from segnas_lite.deploy.target import DEFAULT_THREADS
    from segnas_lite.zoo import build_model
    pacer = None
    if clock == "paced":
        torch.manual_seed(0)
        reference = prepare(build_model("fast_scnn", num_classes=2).eval(), (1, 3, 256, 256),
                            backend="openvino", precision="f32", threads=DEFAULT_THREADS)
        pacer = Pacer.calibrate(reference, name=REFERENCE, cross_backend=True)
    passes = []
    with pacing(pacer) if pacer is not None else nullcontext(), \
            LoadMonitor(warn=True, what="the latency passes") as monitor:
        for _ in range(repeats):
            passes.append([time_runner(r, warmup=5, runs=runs).median_ms for r in runners])
    best = [min(values) for values in zip(*passes)]
    described = pacer.describe() if pacer is not None else {"clock": "wall"}
    return best, {**described, "passes": passes}, monitor.report.to_dict()


def tflite_parameters(path: Path) -> int | None:
    """Elements of the constant (buffer-backed) tensors of a .tflite file, or None without the
    ``tflite`` package. Quantised or float16 models count elements, not bytes."""
    try:
        import tflite  # noqa: PLC0415 (optional, benchmark only)
    except ImportError:
        return None
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    total = 0
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            buffer = model.Buffers(tensor.Buffer())
            if buffer is not None and buffer.DataLength() > 0:
                total += int(np.prod(tensor.ShapeAsNumpy())) if tensor.ShapeLength() else 1
    return total


PEERS = {"general": (0, "selfie_segmentation.tflite", "256x256"),
         "landscape": (1, "selfie_segmentation_landscape.tflite", "144x256")}


def architecture_model(spec: str) -> tuple[str, torch.nn.Module, int]:
    """``"fast_scnn:256"`` or ``"path/genotype.json:256"`` -> (label, model with seeded random
    weights, side)."""
    from segnas_lite.zoo import build_model
    name, _, side = spec.rpartition(":")
    if not name or not side.isdigit():
        sys.exit(f"--architecture {spec!r}: write NAME:SIDE, e.g. fast_scnn:256")
    torch.manual_seed(0)
    if name.endswith(".json"):
        if not Path(name).is_file():
            sys.exit(f"--architecture {spec!r}: no genotype file at {name}")
        model = build_model("nas_child", num_classes=2, genotype=Path(name).read_text())
        return f"nas_child ({Path(name).stem}, {side}px)", model.eval(), int(side)
    return f"{name} ({side}px)", build_model(name, num_classes=2).eval(), int(side)


def latency_only(args, mp, photo: np.ndarray) -> None:
    """``--latency-only``: MediaPipe's two models on ``photo`` and every ``--architecture`` in
    f32 and the default precision, timed on one clock (``latencies``); written to ``--out``."""
    from segnas_lite.deploy.bench import prepare
    from segnas_lite.deploy.target import DEFAULT_THREADS
    if not args.architecture:
        sys.exit("--latency-only needs at least one --architecture NAME:SIDE")
    rows, runners = [], []
    for kind, (selection, tflite_name, shape) in PEERS.items():
        segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=selection)
        tflite_file = Path(mp.__file__).parent / "modules" / "selfie_segmentation" / tflite_name
        runners.append(Runner(lambda s=segmenter: s.process(photo).segmentation_mask,
                              "mediapipe", "tflite", None))
        rows.append({"model": f"MediaPipe Selfie Segmentation ({kind}, {shape})",
                     "runtime": "mediapipe", "params": tflite_parameters(tflite_file)})
    for spec in args.architecture:
        label, model, side = architecture_model(spec)
        for precision in ("f32", "default"):
            runners.append(prepare(model, (1, 3, side, side), backend="openvino",
                                   precision=precision, threads=DEFAULT_THREADS))
            rows.append({"model": label, "runtime": f"openvino {precision} -> "
                                                    f"{runners[-1].precision}",
                         "params": sum(p.numel() for p in model.parameters())})
    ms, clock, load = latencies(runners, runs=args.runs, repeats=args.repeats, clock=args.clock)
    for row, value in zip(rows, ms):
        row.update(latency_ms=value, busy=load["busy"])
    table = print_table(rows, [("model", "model", "s"), ("runtime", "runtime", "s"),
                               ("params", "params", ",d"), ("latency_ms", "ms", ".2f"),
                               ("busy", "busy", "")])
    print(f"clock: {clock['clock']}" + (f" (paced by {clock['reference']}, 1 unit = "
                                        f"{clock['reference_ms']:.3f} ms of it)"
                                        if clock["clock"] == "paced" else ""))
    write_json(args.out, {"environment": environment(), "settings": vars(args), "rows": rows,
                          "clock": clock, "load": [{"what": "latency passes", **load}],
                          "table": table})


def score(prob_fn, photos, masks) -> dict:
    """Two-class mIoU, person IoU and boundary F of ``prob_fn(photo uint8 (H, W, 3)) -> (H, W)``
    over one set (label 255: not judged)."""
    from segnas_lite.metrics import boundary_f_score
    meter, boundary = ConfusionMeter(2), []
    for photo, mask in zip(photos, masks):
        pred = np.asarray(prob_fn(photo)) >= 0.5
        meter.update(torch.as_tensor(pred, dtype=torch.int64)[None], torch.as_tensor(mask)[None])
        boundary.append(boundary_f_score(pred, mask == 1, valid=mask != 255).f)
    metrics = meter.compute()
    return {"miou": float(metrics.miou), "person_iou": float(metrics.per_class_iou[1]),
            "boundary_f": float(np.mean(boundary))}


def score_sets(prob_fn, sets: dict) -> dict:
    """``score`` on every set: {"<set>_miou": ..., "<set>_person_iou": ..., ...}."""
    return {f"{name}_{key}": value for name, (photos, masks) in sets.items()
            for key, value in score(prob_fn, photos, masks).items()}


def val_photos(folder: str, *, size: int, split_seed: int) -> tuple[list, list]:
    """The val split of ``folder`` as (uint8 (size, size, 3) photos, (size, size) int64 masks)."""
    val = open_dataset(folder, image_size=size, split="val", seed=split_seed)
    photos, masks = [], []
    for index in range(len(val)):
        image, mask = val[index]
        photos.append((denormalize(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        masks.append(mask.numpy())
    return photos, masks


def write_soft_masks(mp, folders: list[str], out: Path, *, split_seed: int, kind: str) -> None:
    """MediaPipe's soft mask of every train photo of ``folders`` -> ``out`` (see the docstring)."""
    from PIL import Image
    from segnas_lite.data.io import read_rgb
    from segnas_lite.data.soft_targets import locate, soft_mask_path
    from segnas_lite.runio import atomic_open
    segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(
        model_selection=PEERS[kind][0])
    for folder in folders:
        train = open_dataset(folder, image_size=None, split="train", seed=split_seed)
        written = kept = 0
        for index in range(len(train)):
            base, inner = locate(train, index)
            image = base.pairs[inner][0]
            path = soft_mask_path(out, folder, image)
            if path.exists():
                kept += 1
                continue
            p = np.asarray(segmenter.process(read_rgb(image)).segmentation_mask, dtype=np.float32)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path, "wb") as handle:
                Image.fromarray(np.round(np.clip(p, 0, 1) * 255).astype(np.uint8)).save(
                    handle, format="png")
            written += 1
        print(f"{Path(folder).name}: {written} soft masks written, {kept} kept, under "
              f"{out / Path(folder).resolve().name} (MediaPipe {kind}, train split)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="a people model from `segnas train` (repeat for several)")
    parser.add_argument("--data", action="append", default=None, metavar="DIR",
                        help="a folder whose val split is scored (repeat; default: the people "
                        "and ccp_people folders of ../shared/data)")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="the train/val cut of a folder without its own split")
    parser.add_argument("--eval-size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved latency passes over every row (the best counts)")
    parser.add_argument("--clock", choices=("paced", "wall"), default="paced",
                        help="paced: every call read against a reference network timed in the "
                        "same moments (timing.pace); wall: plain milliseconds")
    parser.add_argument("--out", default=str(RESULTS / "peers.json"))
    parser.add_argument("--write-soft-masks", default=None, metavar="DIR",
                        help="write MediaPipe's soft masks of every train photo under DIR (a "
                        "teacher for `segnas train --soft-teacher DIR`) and stop")
    parser.add_argument("--soft-model", choices=tuple(PEERS), default="general",
                        help="the MediaPipe model whose soft masks are written")
    parser.add_argument("--latency-only", action="store_true",
                        help="time MediaPipe and every --architecture (random weights); no scores")
    parser.add_argument("--architecture", action="append", default=[], metavar="NAME:SIDE",
                        help="with --latency-only: a zoo model or a genotype JSON file, and the "
                        "input side in px (e.g. fast_scnn:256; repeat)")
    args = parser.parse_args()
    try:
        import mediapipe as mp
    except ImportError:
        sys.exit("MediaPipe is missing: in an environment of its own, pip install -e '.[peers]'")
    people = default_people_dir()
    folders = args.data or [str(people), str(people.parent / "ccp_people")]
    if args.write_soft_masks:
        for folder in folders:
            if not Path(folder).is_dir():
                sys.exit(f"no data folder at {folder}: pass --data DIR (photos + masks)")
        write_soft_masks(mp, folders, Path(args.write_soft_masks), split_seed=args.split_seed,
                         kind=args.soft_model)
        return
    sets = {}
    for folder in folders:
        if not Path(folder).is_dir():
            sys.exit(f"no data folder at {folder}: pass --data DIR (photos + masks)")
        sets[Path(folder).name] = val_photos(folder, size=args.eval_size,
                                             split_seed=args.split_seed)
        print(f"{Path(folder).name}: {len(sets[Path(folder).name][0])} val photos at "
              f"{args.eval_size} px", flush=True)
    rows, runners = [], []  # runners[i]: the latency of rows[i], timed after every score
    first_photo = next(iter(sets.values()))[0][0]
    if args.latency_only:
        return latency_only(args, mp, first_photo)

    # the peers ------------------------------------------------------------------------------------
    for kind, (selection, tflite_name, shape) in PEERS.items():
        segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=selection)
        peer = lambda photo, s=segmenter: s.process(photo).segmentation_mask  # noqa: E731 (H, W)
        tflite_file = Path(mp.__file__).parent / "modules" / "selfie_segmentation" / tflite_name
        runners.append(Runner(lambda p=peer: p(first_photo), "mediapipe", "tflite", None))
        rows.append({"model": f"MediaPipe Selfie Segmentation ({kind}, {shape})",
                     "runtime": "mediapipe", "params": tflite_parameters(tflite_file),
                     **score_sets(peer, sets)})

    # ours -----------------------------------------------------------------------------------------
    from segnas_lite.zoo import load_trained, saved_data
    from segnas_lite.data.transforms import normalize
    from segnas_lite.deploy.export import to_openvino
    from segnas_lite.deploy.predictor import OpenVINOPredictor, foreground_probability
    from segnas_lite.deploy.openvino import compile_openvino, openvino_runner
    from segnas_lite.deploy.target import DEFAULT_THREADS
    for checkpoint in args.checkpoint:
        model, state = load_trained(checkpoint)
        size = int(saved_data(state).get("image_size") or args.eval_size)
        ir = RESULTS / "peers" / f"{Path(checkpoint).parent.name}_{size}.xml"
        ir.parent.mkdir(parents=True, exist_ok=True)
        to_openvino(model, input_size=(size, size), out_path=ir, compress_to_fp16=False,
                    overwrite=True)
        params = sum(p.numel() for p in model.parameters())
        for precision in ("f32", "default"):
            predictor = OpenVINOPredictor(ir, precision=precision, threads=DEFAULT_THREADS)

            def ours(photo: np.ndarray) -> np.ndarray:  # logits resized back to the photo's size
                return foreground_probability(predictor(normalize(photo)[None]))

            compiled = compile_openvino(ir, precision=precision, threads=DEFAULT_THREADS)
            runners.append(openvino_runner(compiled, (1, 3, size, size), threads=DEFAULT_THREADS))
            rows.append({"model": f"{state['model_info']['name']} ({Path(checkpoint).parent.name}, "
                                  f"{size}px)",
                         "runtime": f"openvino {precision} -> {runners[-1].precision}",
                         "params": params, **score_sets(ours, sets)})

    # latency: every row in interleaved passes, on one clock -------------------------------------
    ms, clock, load = latencies(runners, runs=args.runs, repeats=args.repeats, clock=args.clock)
    for row, value in zip(rows, ms):
        row.update(latency_ms=value, busy=load["busy"])
    loads = [{"what": "latency passes", **load}]

    tables = []
    for name in sets:
        print(f"\n{name} val ({len(sets[name][0])} photos at {args.eval_size} px)")
        tables.append(print_table(rows, [
            ("model", "model", "s"), ("runtime", "runtime", "s"), ("params", "params", ",d"),
            ("latency_ms", "ms", ".2f"), (f"{name}_miou", "mIoU", ".3f"),
            (f"{name}_person_iou", "person IoU", ".3f"), (f"{name}_boundary_f", "boundary F", ".3f"),
            ("busy", "busy", "")]))
    table = "\n\n".join(tables)
    print("\nms: ours = the network alone (OpenVINO, one image); MediaPipe = its whole process() "
          "call (resize, inference, mask), the latency a user of it gets")
    print(f"clock: {clock['clock']}" + (f" (paced by {clock['reference']}, 1 unit = "
                                        f"{clock['reference_ms']:.3f} ms of it)"
                                        if clock["clock"] == "paced" else ""))
    write_json(args.out, {"environment": environment(), "settings": vars(args), "rows": rows,
                          "clock": clock, "load": loads, "table": table})


if __name__ == "__main__":
    main()

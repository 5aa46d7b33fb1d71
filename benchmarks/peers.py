"""Our people models beside a peer, MediaPipe Selfie Segmentation: parameters, latency, mIoU.

    # in an environment of its own (MediaPipe brings opencv-contrib-python and jax):
    python -m venv .venv-peers && .venv-peers/bin/pip install -e ".[peers]"
    .venv-peers/bin/python benchmarks/peers.py --checkpoint runs/people/checkpoint.pt [...]

The peer is the general (square 256 x 256) Selfie Segmentation model bundled in the
``mediapipe==0.10.14`` wheel, run through its own pipeline (``SelfieSegmentation(model_selection=0)
.process``); MediaPipe is used here only, never by the package. Ours run through OpenVINO at the size
each checkpoint was trained at, in f32 and at the CPU's default precision (bf16 where supported).

Same data, same metric, same timer for everyone:
- the people validation split (80/20 with seed 0, as every people benchmark here), every photo and
  mask stretched to ``--eval-size`` px; a pixel is "person" when p(person) >= 0.5; two-class mIoU
  over all pixels of the split (``metrics.ConfusionMeter``), and the person IoU;
- latency: ``timing.time_runner`` (warm-up, median of ``--runs`` calls, one image, 2 threads for
  OpenVINO; MediaPipe chooses its own threads), with the machine's load recorded; a busy run is
  marked and must not be quoted.
- parameters: ours counted in PyTorch; MediaPipe's counted from the constant tensors of its
  ``.tflite`` file (weights and biases of every layer) when the ``tflite`` package is installed.

Writes ``results/peers.json``.
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
from segnas_lite.timing import LoadMonitor, Runner, time_runner  # noqa: E402


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


def score(prob_fn, photos, masks) -> dict:
    """Two-class mIoU and person IoU of ``prob_fn(photo uint8 (H, W, 3)) -> (H, W)`` over the set."""
    meter = ConfusionMeter(2)
    for photo, mask in zip(photos, masks):
        pred = torch.as_tensor(prob_fn(photo) >= 0.5, dtype=torch.int64)
        meter.update(pred[None], torch.as_tensor(mask)[None])
    metrics = meter.compute()
    return {"miou": float(metrics.miou), "person_iou": float(metrics.per_class_iou[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="a people model from `segnas train` (repeat for several)")
    parser.add_argument("--people", default=str(default_people_dir()))
    parser.add_argument("--eval-size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", default=str(RESULTS / "peers.json"))
    args = parser.parse_args()
    try:
        import mediapipe as mp
    except ImportError:
        sys.exit("MediaPipe is missing: in an environment of its own, pip install -e '.[peers]'")
    val = open_dataset(args.people, image_size=args.eval_size, split="val", seed=0)
    photos, masks = [], []
    for index in range(len(val)):
        image, mask = val[index]
        photos.append((denormalize(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        masks.append(mask.numpy())
    print(f"{len(photos)} people-val photos at {args.eval_size} px")
    rows, loads = [], []

    # the peer -------------------------------------------------------------------------------------
    segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
    peer = lambda photo: segmenter.process(photo).segmentation_mask  # noqa: E731 (H, W) float
    tflite_file = (Path(mp.__file__).parent / "modules" / "selfie_segmentation"
                   / "selfie_segmentation.tflite")
    with LoadMonitor(warn=True, what="MediaPipe") as monitor:
        timing = time_runner(Runner(lambda: peer(photos[0]), "mediapipe", "tflite", None),
                             warmup=5, runs=args.runs)
    loads.append({"what": "mediapipe", **monitor.report.to_dict()})
    rows.append({"model": "MediaPipe Selfie Segmentation (general, 256x256)", "runtime": "mediapipe",
                 "params": tflite_parameters(tflite_file), "latency_ms": timing.median_ms,
                 "busy": monitor.report.busy, **score(peer, photos, masks)})

    # ours -----------------------------------------------------------------------------------------
    from segnas_lite.zoo import load_trained, saved_data
    from segnas_lite.data.transforms import normalize
    from segnas_lite.deploy.export import to_openvino
    from segnas_lite.deploy.predictor import OpenVINOPredictor, foreground_probability
    from segnas_lite.deploy.bench import time_openvino
    from segnas_lite.deploy.openvino import compile_openvino
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
            with LoadMonitor(warn=True, what=f"{checkpoint} {precision}") as monitor:
                timing = time_openvino(compiled, (1, 3, size, size), runs=args.runs,
                                       threads=DEFAULT_THREADS)
            loads.append({"what": f"{checkpoint} {precision}", **monitor.report.to_dict()})
            rows.append({"model": f"{state['model_info']['name']} ({Path(checkpoint).parent.name}, "
                                  f"{size}px)", "runtime": f"openvino {precision} -> {timing.precision}",
                         "params": params, "latency_ms": timing.median_ms,
                         "busy": monitor.report.busy, **score(ours, photos, masks)})

    print()
    table = print_table(rows, [("model", "model", "s"), ("runtime", "runtime", "s"),
                               ("params", "params", ",d"), ("latency_ms", "ms", ".2f"),
                               ("miou", "mIoU", ".3f"), ("person_iou", "person IoU", ".3f"),
                               ("busy", "busy", "")])
    print("\nms: ours = the network alone (OpenVINO, one image); MediaPipe = its whole process() "
          "call (resize, inference, mask), the latency a user of it gets")
    write_json(args.out, {"environment": environment(), "settings": vars(args), "rows": rows,
                          "load": loads, "table": table})


if __name__ == "__main__":
    main()

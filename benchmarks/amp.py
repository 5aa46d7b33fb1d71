"""Mixed precision for training on the CPU: how much faster is a step under bf16 autocast?

One training step (forward, loss, backward, SGD update) of each model at one batch size and image
size, timed through the package's one timer (``timing.time_runner``) in f32 and under
``torch.autocast("cpu", dtype=torch.bfloat16)`` (``segnas train --amp bf16``). bf16 pays off on
CPUs with AMX or AVX-512 BF16 (recent Intel Xeons); elsewhere PyTorch emulates it and it is usually
slower. The loss after a few steps is kept beside the times, to show that bf16 still learns.

    python benchmarks/amp.py                 # ~3 min on 2 cores: results/amp.json
    python benchmarks/amp.py --smoke         # seconds: tiny sizes, results/amp-smoke.json

Run it alone on the machine: the load monitor marks a busy run, and a busy run is re-run, not quoted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, print_table, write_json  # noqa: E402

from segnas_lite.data import SyntheticPortraits  # noqa: E402
from segnas_lite.deploy.target import DEFAULT_THREADS  # noqa: E402
from segnas_lite.timing import LoadMonitor, Runner, time_runner  # noqa: E402
from segnas_lite.timing.timer import TorchThreads  # noqa: E402
from segnas_lite.train.engine import TrainConfig  # noqa: E402
from segnas_lite.train.losses import segmentation_loss  # noqa: E402
from segnas_lite.zoo import build_model  # noqa: E402

MODELS = ("fast_scnn", "lraspp_mobilenetv3_small", "mbv3_baseline")


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def step_runner(name: str, amp: str | None, *, batch: int, size: int, threads: int) -> tuple:
    """A Runner whose call is one full training step, and the step itself (for the loss check)."""
    torch.manual_seed(0)
    model = build_model(name, num_classes=2).train()
    data = SyntheticPortraits(length=batch, image_size=size, seed=0)
    images = torch.stack([data[i][0] for i in range(batch)])
    masks = torch.stack([data[i][1] for i in range(batch)])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    config = TrainConfig()
    dtype = torch.bfloat16 if amp == "bf16" else None

    def step() -> float:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            loss = segmentation_loss(model(images), masks, config=config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return Runner(step, f"torch-train-{amp or 'f32'}", amp or "f32", threads), step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds; not for quoting")
    args = parser.parse_args()
    if args.smoke:
        args.batch, args.size, args.runs = 2, 64, 2
    flags = cpu_flags()
    native = sorted(flags & {"amx_bf16", "avx512_bf16"})
    rows = []
    with TorchThreads(args.threads), LoadMonitor(what="amp training steps") as monitor:
        for name in (MODELS[:1] if args.smoke else MODELS):
            timed = {}
            for amp in (None, "bf16"):
                runner, step = step_runner(name, amp, batch=args.batch, size=args.size,
                                           threads=args.threads)
                timed[amp] = time_runner(runner, warmup=2, runs=args.runs, rounds=2)
                losses = [step() for _ in range(3)]
                timed[str(amp) + "_loss"] = losses[-1]
            rows.append({"model": name, "f32_ms": timed[None].median_ms,
                         "bf16_ms": timed["bf16"].median_ms,
                         "speedup": timed[None].median_ms / timed["bf16"].median_ms,
                         "f32_loss": timed["None_loss"], "bf16_loss": timed["bf16_loss"]})
    report = monitor.report.to_dict()
    print(f"training step, batch {args.batch} at {args.size} px, {args.threads} threads; "
          f"native bf16: {', '.join(native) or 'none (emulated)'}")
    print_table(rows, [("model", "model", "s"), ("f32_ms", "f32 ms", ".0f"),
                       ("bf16_ms", "bf16 ms", ".0f"), ("speedup", "speed-up", ".2f"),
                       ("f32_loss", "f32 loss", ".3f"), ("bf16_loss", "bf16 loss", ".3f")])
    if report.get("busy"):
        print("BUSY: another process used the CPU during the run; re-run it before quoting")
    write_json(RESULTS / ("amp-smoke.json" if args.smoke else "amp.json"),
               {"environment": environment(), "native_bf16": native, "batch": args.batch,
                "image_size": args.size, "threads": args.threads, "load": report, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())

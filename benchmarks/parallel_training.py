"""One training with every core, or several side by side? (``search.py --jobs``; jobs.py)

    python benchmarks/parallel_training.py             # 3 rounds, ~1 minute on 2 cores
    python benchmarks/parallel_training.py --jobs 2 --steps 40 --rounds 5

The work is search.py's retraining step: a child of the seed space (the MobileNetV3 block in every
layer, width 1) trained by SGD on batches of 8 at 160 px, cross-entropy on random images and masks.
Each round runs two blocks, in alternating order so that a drift of the machine's speed falls on
both: ``1 x C threads``, one worker with all C cores as torch threads; ``J x C/J threads``, J
workers side by side (``jobs.ParallelJobs``, as ``search.py --jobs J`` runs trainings). Every
worker times its own steps after 3 untimed ones (worker start-up and imports are not counted), and
a block's throughput is the sum over its workers of steps per second.

Written (``results/parallel_training.json``): per round and block the ms per step of each worker,
its throughput and the ``LoadMonitor`` report (a block during which another process used the CPU
is busy: not quoted); the median throughput of each block over the quiet rounds and their ratio,
the speed-up ``--jobs J`` gives this machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, log, write_json  # noqa: E402
from jobs import Job, ParallelJobs, worker_threads  # noqa: E402

from segnas_lite.timing import LoadMonitor  # noqa: E402


def train_steps(steps: int, image_size: int, seed: int) -> float:
    """In a worker: ms per SGD step of the seed space's MobileNetV3 child, after 3 untimed steps."""
    import torch
    import torch.nn.functional as F
    from segnas_lite.nas.space import Genotype, get_space
    from segnas_lite.zoo import build_model
    torch.manual_seed(seed)
    space = get_space("seed")
    genotype = Genotype("seed", ("mbv3_3x3",) * len(space))
    model = build_model("nas_child", num_classes=2, genotype=genotype.to_json()).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(8, 3, image_size, image_size)  # (batch, channels, height, width)
    masks = torch.randint(0, 2, (8, image_size, image_size))

    def step() -> None:
        output = model(images)
        logits = output["out"] if isinstance(output, dict) else output
        loss = F.cross_entropy(logits, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return 1000 * (time.perf_counter() - started) / steps


def run_block(workers: int, args) -> dict:
    """``workers`` trainings at once, each with ``worker_threads(workers)`` torch threads."""
    times: dict[str, float] = {}
    with LoadMonitor(what=f"{workers} training(s) at once", warn=False) as monitor:
        with ParallelJobs(workers) as pool:
            for worker in range(workers):
                name = f"worker {worker}"
                pool.submit(name, Job(train_steps, (args.steps, args.image_size, worker),
                                      lambda ms, n=name: times.__setitem__(n, ms)))
            while pool.running:
                pool.wait_one()
    ms = [times[f"worker {w}"] for w in range(workers)]
    return {"workers": workers, "threads_each": worker_threads(workers), "ms_per_step": ms,
            "steps_per_s": sum(1000 / m for m in ms), "load": monitor.report.to_dict(),
            "busy": monitor.report.busy}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="trainings side by side (default 2)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per worker")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--out", default=str(RESULTS / "parallel_training.json"))
    args = parser.parse_args(argv)
    if args.jobs < 2 or args.steps < 1 or args.rounds < 1:
        parser.error("--jobs must be at least 2, --steps and --rounds at least 1")
    one, many = "1 x all threads", f"{args.jobs} x {worker_threads(args.jobs)} threads"
    rounds = []
    for number in range(args.rounds):
        order = [(one, 1), (many, args.jobs)]
        blocks = {}
        for label, workers in order if number % 2 == 0 else order[::-1]:
            blocks[label] = run_block(workers, args)
            block = blocks[label]
            log(f"round {number}: {label}: {block['steps_per_s']:.2f} steps/s (ms per step "
                f"{', '.join(f'{m:.0f}' for m in block['ms_per_step'])})"
                + (" [busy: do not quote]" if block["busy"] else ""))
        rounds.append(blocks)
    summary = {}
    for label in (one, many):
        quiet = [r[label]["steps_per_s"] for r in rounds if not r[label]["busy"]]
        summary[label] = {"median_steps_per_s": statistics.median(quiet) if quiet else None,
                          "quiet_rounds": len(quiet)}
    base, side = summary[one]["median_steps_per_s"], summary[many]["median_steps_per_s"]
    speedup = None if not base or not side else side / base
    log("speed-up of side by side: " + ("n/a (every round of a block was busy: run again)"
                                        if speedup is None else f"{speedup:.2f}x"))
    write_json(args.out, {"environment": environment(), "settings": vars(args), "rounds": rounds,
                          "summary": summary, "speedup": speedup})
    return 0


if __name__ == "__main__":
    sys.exit(main())

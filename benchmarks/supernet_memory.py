"""Peak memory and time of one super-net training step: binary gates (one path) vs all paths (DARTS).

    python benchmarks/supernet_memory.py                       # seed space, 128 and 256 px, batch 8
    python benchmarks/supernet_memory.py --sizes 128 --quick   # one size, fewer timed steps

ProxylessNAS (Cai et al., ICLR 2019, Sec. 3.2) keeps ONE path per layer in memory ("binary gates"),
where DARTS keeps every candidate's activations for the weighted sum; the seed (Sec. 1.2) names this
as what makes a single-card search possible. The rows:

* ``fixed``        a weight step on one sampled path (warm-up / interleaved weight step);
* ``single/full_v2`` an alpha step with binary gates, reference "full_v2": the inactive candidates
  are re-run under ``no_grad`` in backward (more time, no extra stored activations);
* ``single/two``   an alpha step, "two": only one inactive candidate is re-run;
* ``all``          DARTS: ``sum_k p_k o_k(x)``, all candidates forward and backward (weights and
  alpha get gradients in the same step).

How memory is measured. ``tracemalloc`` does not see torch's C++ allocations, and the CUDA memory
counters do not exist on the CPU. ``torch.profiler(profile_memory=True)`` reports per-op allocations
but no process peak. So each (mode, size) runs in a FRESH subprocess: it builds the super-net and the
batch, reads ``ru_maxrss`` (peak resident set size, ``resource.getrusage``), runs ONE training step,
reads ``ru_maxrss`` again. The difference is the step's peak: activations kept for backward,
gradients, optimizer-free temporaries, allocator growth. A fresh process per row keeps one row's
freed-but-cached memory out of the next. Step time is the median of ``--steps`` further steps.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, print_table, write_json  # noqa: E402

MODES = ("fixed", "single/full_v2", "single/two", "all")


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB -> MiB


def one_row(mode: str, size: int, batch: int, steps: int, threads: int, space_name: str) -> dict:
    """Runs in the child process: build, measure one step's peak, then time ``steps`` steps."""
    import torch
    import torch.nn.functional as F
    from segnas_lite.nas import SegSuperNet, get_space

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net_mode, _, estimator = mode.partition("/")
    net = SegSuperNet(get_space(space_name), num_classes=2, mode=net_mode,
                      estimator=estimator or "full_v2").train()
    images = torch.randn(batch, 3, size, size)
    masks = torch.randint(0, 2, (batch, size, size))
    generator = torch.Generator().manual_seed(0)

    def step() -> float:
        net.sample_genotype(generator)
        start = time.perf_counter()
        loss = F.cross_entropy(net(images), masks)
        net.zero_grad(set_to_none=True)
        loss.backward()
        return (time.perf_counter() - start) * 1e3

    before = _maxrss_mib()
    first_ms = step()
    peak = _maxrss_mib() - before
    times = [step() for _ in range(steps)]
    arch_grad = any(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch_parameters())
    return {"mode": mode, "image_size": size, "batch": batch, "peak_step_mib": round(peak, 1),
            "baseline_mib": round(before, 1), "first_step_ms": round(first_ms, 1),
            "step_ms": round(statistics.median(times), 1) if times else None,
            "alpha_gets_grad": arch_grad, "threads": threads}


def run_in_subprocess(mode: str, size: int, args) -> dict:
    code = ("import json, sys; sys.path.insert(0, %r); import supernet_memory as m; "
            "print('ROW', json.dumps(m.one_row(%r, %d, %d, %d, %d, %r)))"
            % (str(Path(__file__).resolve().parent), mode, size, args.batch, args.steps,
               args.threads, args.space))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} at {size}px failed:\n{done.stderr[-2000:]}")
    line = next(l for l in done.stdout.splitlines() if l.startswith("ROW "))
    return json.loads(line[4:])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="seed")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after the measured one")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--quick", action="store_true", help="1 timed step")
    parser.add_argument("--out", default=str(RESULTS / "supernet_memory.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = 1
    rows = []
    for size in args.sizes:
        for mode in args.modes:
            rows.append(run_in_subprocess(mode, size, args))
            print(f"  {mode:>15} {size}px: {rows[-1]['peak_step_mib']:.0f} MiB, "
                  f"{rows[-1]['step_ms']} ms", flush=True)
    for row in rows:  # memory relative to the one-path weight step at the same size
        ref = next(r for r in rows if r["image_size"] == row["image_size"])
        row["memory_vs_first"] = round(row["peak_step_mib"] / max(ref["peak_step_mib"], 1e-9), 2)
    print()
    text = print_table(rows, [("mode", "mode", "s"), ("image_size", "px", "d"),
                              ("batch", "batch", "d"), ("peak_step_mib", "peak MiB", ".0f"),
                              ("memory_vs_first", "x mem", ".2f"), ("step_ms", "step ms", ".0f"),
                              ("first_step_ms", "1st ms", ".0f")])
    payload = {"benchmark": "supernet_memory", "space": args.space, "rows": rows, "table": text,
               "method": "ru_maxrss delta over one training step, fresh subprocess per row",
               "environment": environment()}
    write_json(args.out, payload)
    return payload


if __name__ == "__main__":
    main()

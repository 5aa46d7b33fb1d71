"""A worker for tests/test_nas_distributed.py: a tiny super-net search started by torchrun with 2
CPU processes (gloo): 2 warm-up epochs and 1 epoch of alpha steps, 2 steps each.

Each rank logs what it really did, so the test can check the rules of ``nas/parallel.py``: the
path every forward pass ran (a forward pre-hook on the super-net, "two" mode pairs included) and a
fingerprint of the images it read; after every epoch its weights, alphas and BatchNorm buffers;
the derived genotype; and every file it wrote (``os.replace``, through which all of ``runio``'s
atomic writes go). Each rank starts from other weights and "measures" other latencies than rank 0
(rank 1's are 30% slower), so nothing agrees unless the search makes it agree.

    python -m torch.distributed.run --nproc-per-node 2 tests/helpers/ddp_search.py OUT LOG \
        [--stop-after N] [--resume] [--estimator two] [--warmup strict_fair --sandwich 1]
"""
import argparse
import json
import os
import sys

import torch

from segnas_lite.data import SyntheticPortraits
from segnas_lite.deploy.target import Target
from segnas_lite.nas import SegSuperNet, tiny_space
from segnas_lite.nas.config import SearchConfig
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.search import ProxylessSearch

SIZE = 48


class Stop(Exception):
    pass


def fake_table(space):
    """Op i of a layer costs 1 + 2 i ms, fixed parts 10 ms (as tests/test_nas_search.py)."""
    ms = [[1.0 + 2.0 * i for i in range(len(spec.ops))] for spec in space.layers]
    return LatencyTable(space.name, [list(s.ops) for s in space.layers], ms, 10.0, {"fake": True})


def fingerprint(tensors):
    flat = torch.cat([t.detach().double().flatten() for t in tensors])
    return {"sum": float(flat.sum()), "head": flat[:8].tolist()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("log")
    parser.add_argument("--stop-after", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--estimator", default="full_v2")
    parser.add_argument("--warmup", default="constrained")
    parser.add_argument("--sandwich", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    writes = []
    real_replace = os.replace

    def replace(src, dst, *rest, **kwargs):
        writes.append(os.path.basename(str(dst)))
        return real_replace(src, dst, *rest, **kwargs)

    os.replace = replace
    space = tiny_space()
    table = fake_table(space)
    budget = 0.5 * (table.fastest()[1] + table.slowest()[1])  # about half the draws are rejected
    config = SearchConfig(image_size=SIZE, batch_size=4, warmup_epochs=2, search_epochs=1,
                          steps_per_epoch=2, budget_ms=budget, warmup_sampling=args.warmup,
                          sandwich=args.sandwich, estimator=args.estimator, measure_child=False, quiet=True, device="cpu",
                          target=Target(threads=1, image_size=SIZE))
    torch.manual_seed(rank)  # different initial weights per rank: the search must make them equal
    net = SegSuperNet(space, num_classes=2, estimator=config.estimator)
    steps, epochs = [], []

    def log_forward(module, inputs):
        steps.append({"ops": list(module.genotype().ops), "paths": module.paths(),
                      "images": float(inputs[0].double().sum())})

    net.register_forward_pre_hook(log_forward)

    def on_epoch_end(search, summary):
        epochs.append({"epoch": summary.epoch,
                       "weights": fingerprint(search.net.weight_parameters()),
                       "alphas": [a.tolist() for a in search.net.arch_parameters()],
                       "buffers": fingerprint(search.net.buffers())})
        if args.stop_after is not None and summary.epoch == args.stop_after:
            raise Stop()

    data = SyntheticPortraits(length=32, image_size=SIZE, seed=0)
    # as if each process timed subnets on its own loaded CPU: rank 1's "measurements" are 30%
    # slower, so its hard constraint would reject other draws than rank 0's; rank 0's must rule
    noisy = lambda genotype: table.predict(genotype) * (1.0 + 0.3 * rank)  # noqa: E731
    search = ProxylessSearch(net, table, data, config=config, num_classes=2, out_dir=args.out,
                             on_epoch_end=on_epoch_end, latency_fn=noisy)
    result = None
    try:
        result = search.run(resume=args.resume)
    except Stop:
        pass
    with open(f"{args.log}.rank{rank}.json", "w") as fh:
        json.dump({"steps": steps, "epochs": epochs, "writes": writes,
                   "genotype": list(result.genotype_budget.ops) if result else None}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

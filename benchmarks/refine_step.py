"""How far may the fast guided filter subsample? The full filter against fast ones on real photos.

    python benchmarks/refine_step.py                            # 512 px: ~2 min on a quiet 2-core CPU
    python benchmarks/refine_step.py --eval-size 1024 --limit 46 --steps 1 4 8
    python benchmarks/refine_step.py --quick                    # a smoke run (4 photos per set)

The network is replaced by its best case, so that the rows differ by the filter alone: the true
mask as a stride-8 network at ``--net-size`` px sees it (block means of 8 network pixels, stretched
back to the network's size). Every val photo of each ``--data`` folder (80/20 split, seed 0) is
judged at ``--eval-size`` px: two-class mIoU, boundary F-score and trimap IoU of the hard cut and
of the guided filter with each ``--steps`` value (1 = the full filter), at the default radius (one
network output pixel on the photo). Times: ``portrait.evaluate.evaluate_refinement``'s, the
package's one timer (median over the first 4 photos). ``RefineConfig``'s default step (an eighth of
the radius) was chosen from this table. Writes ``results/refine_step.json`` (or ``--out``).
"""
from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, print_table, write_json  # noqa: E402

from segnas_lite.data import default_people_dir, open_dataset  # noqa: E402
from segnas_lite.portrait.evaluate import evaluate_refinement  # noqa: E402
from segnas_lite.portrait.refine import RefineConfig, default_radius, fast_step  # noqa: E402


class CoarseTruth:
    """A data set's items, unchanged; each item's true mask, as a stride-8 network at ``net_size``
    would output it, is queued for ``prob`` (``evaluate_refinement`` asks once per item, in order)."""

    def __init__(self, dataset, *, eval_size: int, net_size: int) -> None:
        self.dataset, self.queue = dataset, deque()
        self.block, self.net_size = 8 * eval_size // net_size, net_size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, mask = self.dataset[index]
        truth = (torch.as_tensor(np.asarray(mask)) == 1).float()[None, None]  # (1, 1, H, W)
        coarse = F.avg_pool2d(truth, self.block)  # (1, 1, H / block, W / block)
        self.queue.append(F.interpolate(coarse, size=(self.net_size,) * 2, mode="bilinear",
                                        align_corners=False)[0, 0].numpy())
        return image, mask

    def prob(self, image: torch.Tensor) -> np.ndarray:
        return self.queue.popleft()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", default=None,
                        help="a people-like folder (repeat it); default: ../shared/data/people "
                        "and ../shared/data/ccp_people")
    parser.add_argument("--eval-size", type=int, default=512)
    parser.add_argument("--net-size", type=int, default=256)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--limit", type=int, default=None, help="photos per folder at most")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    people = default_people_dir()
    folders = args.data or [str(people), str(people.parent / "ccp_people")]
    if args.quick:
        args.limit = 4
    out = Path(args.out or (RESULTS / ("refine_step_quick.json" if args.quick else
                                       f"refine_step_{args.eval_size}.json")))
    radius = default_radius((args.eval_size, args.eval_size), (args.net_size, args.net_size))
    configs = {"hard cut": RefineConfig(method="none")}
    for step in args.steps:
        label = "guided, full" if step == 1 else f"fast, step {fast_step(radius, step)}"
        configs[label] = RefineConfig(subsample=step)
    payload: dict = {"environment": environment(), "settings": vars(args), "radius": radius,
                     "default_step": fast_step(radius, RefineConfig().subsample), "folders": {}}
    for folder in folders:
        if not Path(folder).is_dir():
            sys.exit(f"no folder at {folder}: pass --data DIR (photos + masks)")
        val = CoarseTruth(open_dataset(folder, image_size=args.eval_size, split="val", seed=0),
                          eval_size=args.eval_size, net_size=args.net_size)
        rows = [vars(row) for row in evaluate_refinement(val.prob, val, configs, limit=args.limit)]
        for row in rows:
            row["ms_per_image"] = 1000 * row.pop("seconds_per_image")
        photos = len(val) if args.limit is None else min(args.limit, len(val))
        print(f"\n{Path(folder).name}: {photos} val photos at {args.eval_size} px, radius {radius} "
              f"(default step {payload['default_step']})")
        print_table(rows, [("name", "setting", "s"), ("miou", "mIoU", ".4f"),
                           ("boundary_f", "boundary F", ".4f"), ("trimap_iou", "trimap IoU", ".4f"),
                           ("ms_per_image", "ms/photo", ".1f")])
        payload["folders"][Path(folder).name] = {"photos": photos, "rows": rows}
    write_json(out, payload)


if __name__ == "__main__":
    main()

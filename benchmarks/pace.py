"""Does the paced clock hold where the wall clock drifts? (timing.pace; README, lesson 05)

    python benchmarks/pace.py            # 15 blocks, ~1 minute on 2 cores
    python benchmarks/pace.py --blocks 5 # quicker

Four seeded random subnets of the seed space, OpenVINO f32, 2 threads, 256 px. In each block every
net is timed once on the wall clock and once on the paced clock (reference: the MobileNetV3
baseline of the same macro, as benchmarks/search.py), 20 runs each; blocks are 2 s apart. Printed
and written (results/pace.json): per net, the coefficient of variation of its median across
blocks, wall and paced.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, write_json  # noqa: E402

from segnas_lite.deploy.bench import prepare  # noqa: E402
from segnas_lite.deploy.target import Target  # noqa: E402
from segnas_lite.nas.measure import timed_child  # noqa: E402
from segnas_lite.nas.space import Genotype, get_space  # noqa: E402
from segnas_lite.timing import Pacer, pacing, time_runner  # noqa: E402


def cv_pct(values) -> float:
    return 100 * statistics.pstdev(values) / statistics.fmean(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--out", default=str(RESULTS / "pace.json"))
    args = parser.parse_args()
    space, target = get_space("seed"), Target("openvino", "f32", 2, 256)

    def ready(genotype):
        return prepare(timed_child(genotype, space), target.input_shape(), backend="openvino",
                       precision="f32", threads=2)

    pacer = Pacer.calibrate(ready(Genotype.uniform(space, "mbv3_3x3")), name="mbv3 width 1")
    nets = [ready(space.random_genotype(i)) for i in range(4)]
    wall, paced = [], []
    for block in range(args.blocks):
        wall.append([time_runner(n, warmup=3, runs=20).median_ms for n in nets])
        with pacing(pacer):
            paced.append([time_runner(n, warmup=3, runs=20).median_ms for n in nets])
        print(f"block {block}: wall {[round(v, 2) for v in wall[-1]]} "
              f"paced {[round(v, 2) for v in paced[-1]]}", flush=True)
        time.sleep(2)
    result = {"wall_cv_pct": [cv_pct(c) for c in zip(*wall)],
              "paced_cv_pct": [cv_pct(c) for c in zip(*paced)]}
    print(f"CV across blocks, per net: wall {[round(v, 1) for v in result['wall_cv_pct']]} %, "
          f"paced {[round(v, 1) for v in result['paced_cv_pct']]} %")
    write_json(args.out, {"environment": environment(), "settings": vars(args),
                          "clock": pacer.describe(), "wall_ms": wall, "paced_ms": paced, **result})


if __name__ == "__main__":
    main()

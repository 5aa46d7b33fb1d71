"""Data-loading throughput: images per second at 256 x 256 on ONE CPU thread.

Measures ``dataset[i]`` (render or read, augment, normalise) for SyntheticPortraits with and without
PairedAugment, SyntheticScenes, and the real people folder when it is present. Both wall-clock and
CPU-time rates are reported: on a shared machine the CPU-time rate is the steadier one.

    python benchmarks/data.py                 # prints a table, writes benchmarks/results/data.json
    python benchmarks/data.py --count 100 --out /tmp/data.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import torch

from segnas_lite.data import (PairedAugment, SyntheticPortraits, SyntheticScenes, default_people_dir,
                              people_dataset)


def measure(dataset, count: int) -> dict:
    """Load ``count`` items (after one warm-up item) and return the rates."""
    dataset[0]
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(count):
        dataset[index % len(dataset)]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"count": count, "images_per_s_wall": count / wall, "images_per_s_cpu": count / cpu,
            "ms_per_image_cpu": 1000 * cpu / count}


def write_json(path: Path, payload: dict) -> None:
    """Write atomically: a temporary file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w") as file:
        json.dump(payload, file, indent=2)
    os.replace(temp, path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="items per measurement")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    size = args.image_size

    cases = {
        "SyntheticPortraits": SyntheticPortraits(length=args.count, image_size=size),
        "SyntheticPortraits+augment": SyntheticPortraits(length=args.count, image_size=size,
                                                         augment=PairedAugment()),
        "SyntheticScenes": SyntheticScenes(length=args.count, image_size=size),
    }
    people = default_people_dir()
    if (people / "Training_Images").is_dir():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the mask-size warning is expected for this set
            cases["people folder (jpeg decode + resize)"] = people_dataset(people, image_size=size)
    else:
        print(f"people folder not found at {people}: skipped")

    results = {name: measure(dataset, args.count) for name, dataset in cases.items()}
    print(f"{'dataset':40s} {'img/s (cpu)':>12s} {'img/s (wall)':>13s} {'ms/img (cpu)':>13s}")
    for name, row in results.items():
        print(f"{name:40s} {row['images_per_s_cpu']:12.0f} {row['images_per_s_wall']:13.0f} "
              f"{row['ms_per_image_cpu']:13.2f}")
    payload = {"image_size": size, "threads": 1, "results": results,
               "machine": {"processor": platform.processor() or platform.machine(),
                           "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
                           "torch": torch.__version__}}
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    return payload


if __name__ == "__main__":
    main()

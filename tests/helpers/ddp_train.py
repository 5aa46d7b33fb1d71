"""A worker for tests/test_distributed.py, started by torchrun with 2 CPU processes (gloo).

It trains a small Fast-SCNN through ``engine.train`` with one step per epoch, and after every
step records a fingerprint of the weights, so the test can check DDP's invariant: after every step
every process holds the same weights.

    python -m torch.distributed.run --nproc-per-node 2 tests/helpers/ddp_train.py OUT LOG \
        [--epochs N] [--stop-after K] [--resume]
"""
import argparse
import json
import os
import sys

import torch

from segnas_lite.data import SyntheticPortraits
from segnas_lite.train.engine import TrainConfig, train
from segnas_lite.zoo import build_model


class Stop(Exception):
    pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("log")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--stop-after", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    torch.manual_seed(0)
    model = build_model("fast_scnn", num_classes=2)
    data = SyntheticPortraits(length=32, image_size=64, seed=0)
    config = TrainConfig(epochs=args.epochs, batch_size=4, steps_per_epoch=1, lr=0.05, quiet=True,
                         device="cpu")
    records = []

    def on_epoch_end(record):
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        records.append({"epoch": record["epoch"], "loss": record["train_loss"],
                        "weights_sum": float(flat.double().sum()),
                        "weights_head": flat[:8].tolist()})
        if args.stop_after is not None and record["epoch"] == args.stop_after:
            raise Stop()

    try:
        train(model, data, None, config=config, num_classes=2, out_dir=args.out, resume=args.resume,
              model_info={"name": "fast_scnn", "kwargs": {}}, on_epoch_end=on_epoch_end)
    except Stop:
        pass
    with open(f"{args.log}.rank{rank}.json", "w") as fh:
        json.dump(records, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

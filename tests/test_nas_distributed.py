"""The super-net search under torchrun (nas/parallel.py): 2 CPU processes over gloo train the same
path in every step, each on its own shard, and end with identical weights and alphas; rank 0
alone writes; an interrupted run resumes to the same weights. Fast unit checks come first."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from segnas_lite.data import SyntheticPortraits
from segnas_lite.nas import SegSuperNet, tiny_space
from segnas_lite.nas import parallel
from segnas_lite.train import distributed

WORKER = Path(__file__).parent / "helpers" / "ddp_search.py"


def torchrun(*args, nproc=2, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true", "SEGNAS_QUIET": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(nproc), str(WORKER), *map(str, args)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def logs(log, nproc=2):
    return [json.loads(Path(f"{log}.rank{r}.json").read_text()) for r in range(nproc)]


# --------------------------------------------------------------------------- one process
def test_paths_carry_the_two_path_pair_to_another_copy_of_the_net():
    torch.manual_seed(0)
    first = SegSuperNet(tiny_space(), num_classes=2, estimator="two")
    second = SegSuperNet(tiny_space(), num_classes=2, estimator="two")
    second.load_state_dict(first.state_dict())
    first.sample_genotype(torch.Generator().manual_seed(3))
    second.set_paths(first.paths())
    assert second.paths() == first.paths() and second.genotype() == first.genotype()
    assert all(op.pair is not None for op in second.mixed_ops)
    images = torch.randn(2, 3, 32, 32)
    assert torch.equal(first(images), second(images))  # same path, same alpha gate inputs


def test_without_torchrun_the_parallel_helpers_are_the_single_process_code():
    ctx = distributed.Context()
    assert parallel.from_rank0(lambda: 7, ctx) == 7
    data = SyntheticPortraits(length=8, image_size=32, seed=0)
    batches = parallel.batches(data, batch_size=4, generator=torch.Generator().manual_seed(1),
                               ctx=ctx)
    plain = DataLoader(data, batch_size=4, shuffle=True, drop_last=True,
                       generator=torch.Generator().manual_seed(1))
    for got, expected in zip(batches, [*plain, *plain]):  # the plain order, pass after pass
        assert torch.equal(got[0], expected[0])
    grad = torch.ones(3)
    weight = torch.nn.Parameter(torch.zeros(3))
    weight.grad = grad.clone()
    distributed.average_gradients([weight], ctx)
    assert torch.equal(weight.grad, grad)


# --------------------------------------------------------------------------- two processes
@pytest.mark.parametrize("flags, paths_per_step", [  # the first in CI's default run, 2 gloo processes
    ([], 1), pytest.param(["--estimator", "two"], 1, marks=pytest.mark.slow),
    pytest.param(["--warmup", "strict_fair", "--sandwich", "1"], 3,  # slowest, fastest, one random
                 marks=pytest.mark.slow)])
def test_two_processes_train_the_same_path_on_their_own_shards(tmp_path, flags, paths_per_step):
    torchrun(tmp_path / "run", tmp_path / "log", *flags)
    first, second = logs(tmp_path / "log")
    # every forward pass: 2 warm-up epochs x 2 weight steps of their paths, then 2 alpha steps
    assert len(first["steps"]) == len(second["steps"]) == 4 * paths_per_step + 2
    for a, b in zip(first["steps"], second["steps"]):
        assert a["ops"] == b["ops"] and a["paths"] == b["paths"]  # the same subnet ...
        assert a["images"] != b["images"]                         # ... on different images
    assert len({tuple(s["ops"]) for s in first["steps"]}) > 1  # and not one path throughout
    for a, b in zip(first["epochs"], second["epochs"]):  # identical after every epoch
        assert a == b
    warmed, searched = first["epochs"][1], first["epochs"][2]
    assert warmed["alphas"] != searched["alphas"]  # alpha steps ran, and agreed
    assert first["genotype"] == second["genotype"] is not None
    assert second["writes"] == []  # rank 1 wrote nothing
    assert {"latency_table.json", "search_checkpoint.pt", "history.json",
            "genotype_argmax.json", "summary.json"} <= set(first["writes"])
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["weight_steps"]) == 4 and len(history["alpha_steps"]) == 2
    recorded = [s["ops"] for step in history["weight_steps"] + history["alpha_steps"]
                for s in step["samples"] if s["accepted"]]
    assert recorded == [s["ops"] for s in first["steps"]]  # history: the paths that really ran


@pytest.mark.slow
def test_an_interrupted_search_under_torchrun_resumes_to_the_same_weights(tmp_path):
    torchrun(tmp_path / "full", tmp_path / "full")
    torchrun(tmp_path / "cut", tmp_path / "cut1", "--stop-after", 1)
    torchrun(tmp_path / "cut", tmp_path / "cut2", "--resume")
    full = logs(tmp_path / "full")
    resumed = logs(tmp_path / "cut2")
    assert [e["epoch"] for e in resumed[0]["epochs"]] == [2, 3]
    for rank in (0, 1):
        assert resumed[rank]["epochs"][-1] == full[rank]["epochs"][-1]
        assert resumed[rank]["genotype"] == full[rank]["genotype"]

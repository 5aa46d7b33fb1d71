"""Beyond one CPU process: --device, autocast, and torchrun (2 CPU processes over gloo)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segnas_lite.train import distributed
from segnas_lite.train.engine import TrainConfig, TrainConfigError

WORKER = Path(__file__).parent / "helpers" / "ddp_train.py"


def torchrun(*args, nproc=2, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true", "SEGNAS_QUIET": "1"}
    # torchrun itself (python -m torch.distributed.run); --standalone picks a free local port
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(nproc), *map(str, args)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _logs(log, nproc=2):
    return [json.loads(Path(f"{log}.rank{r}.json").read_text()) for r in range(nproc)]


def test_device_resolution_and_named_errors():
    assert distributed.resolve_device("cpu") == torch.device("cpu")
    assert distributed.resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(distributed.DeviceError, match="auto, cpu, cuda"):
        distributed.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(distributed.DeviceError, match="no CUDA"):
            distributed.resolve_device("cuda:0")
    with pytest.raises(distributed.DeviceError, match="CUDA"):
        distributed.check_amp("fp16", torch.device("cpu"))
    assert distributed.check_amp("bf16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(TrainConfigError):
        TrainConfig(amp="int4")


def test_single_process_context_is_a_no_op():
    ctx = distributed.Context()
    assert not ctx.distributed and ctx.is_main
    assert distributed.broadcast({"a": 1}, ctx) == {"a": 1}
    assert distributed.gather(3, ctx) == [3]
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, ctx) is model and distributed.unwrap(model) is model


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_training_on_cuda_gives_a_checkpoint_that_loads_on_the_cpu(tmp_path):
    from segnas_lite.data import SyntheticPortraits
    from segnas_lite.train.engine import train
    from segnas_lite.zoo import build_model, load_trained
    model = build_model("fast_scnn", num_classes=2)
    data = SyntheticPortraits(length=8, image_size=64, seed=0)
    train(model, data, data, config=TrainConfig(epochs=1, batch_size=4, quiet=True, device="cuda",
                                                amp="bf16"),
          num_classes=2, out_dir=tmp_path / "run", model_info={"name": "fast_scnn", "kwargs": {}})
    loaded, _ = load_trained(tmp_path / "run" / "checkpoint.pt")
    assert next(loaded.parameters()).device.type == "cpu"


def test_bf16_autocast_trains_on_the_cpu(tmp_path):
    from segnas_lite.data import SyntheticPortraits
    from segnas_lite.train.engine import train
    from segnas_lite.zoo import build_model
    torch.manual_seed(0)
    model = build_model("fast_scnn", num_classes=2)
    data = SyntheticPortraits(length=8, image_size=64, seed=0)
    result = train(model, data, None, num_classes=2,
                   config=TrainConfig(epochs=2, batch_size=4, quiet=True, device="cpu", amp="bf16"))
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in result.history)
    assert next(model.parameters()).dtype == torch.float32  # autocast leaves the weights in f32


def test_two_cpu_processes_keep_identical_weights_and_only_rank0_writes(tmp_path):
    """Not marked slow: CI's default run starts 2 gloo processes with torchrun (~15 s)."""
    torchrun(WORKER, tmp_path / "run", tmp_path / "log", "--epochs", 4)
    first, second = _logs(tmp_path / "log")
    assert len(first) == len(second) == 4
    for a, b in zip(first, second):  # after every step (one step per epoch)
        assert a["weights_head"] == b["weights_head"]
        assert a["weights_sum"] == pytest.approx(b["weights_sum"], rel=0, abs=1e-9)
        assert a["loss"] == b["loss"]  # the logged loss is the mean over the processes
    assert first[-1]["loss"] < first[0]["loss"]
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["checkpoint.pt", "config.json", "metrics.jsonl"]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]  # written once, by rank 0
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert len(state["rng_ranks"]) == 2


@pytest.mark.slow
def test_an_interrupted_ddp_run_resumes_to_the_same_weights(tmp_path):
    torchrun(WORKER, tmp_path / "full", tmp_path / "full", "--epochs", 4)
    torchrun(WORKER, tmp_path / "cut", tmp_path / "cut1", "--epochs", 4, "--stop-after", 2)
    torchrun(WORKER, tmp_path / "cut", tmp_path / "cut2", "--epochs", 4, "--resume")
    full = _logs(tmp_path / "full")[0]
    resumed = _logs(tmp_path / "cut2")[0]
    assert [r["epoch"] for r in resumed] == [3, 4]
    assert resumed[-1]["weights_head"] == full[-1]["weights_head"]


def test_sync_bn_is_refused_on_the_cpu_with_a_named_error():
    with pytest.raises(distributed.DeviceError, match="sync-bn needs CUDA"):
        distributed.wrap(torch.nn.BatchNorm2d(2), distributed.Context(), sync_bn=True)


@pytest.mark.skipif(torch.cuda.device_count() < 1, reason="no CUDA GPU on this machine")
def test_sync_bn_converts_batchnorm_on_cuda():
    ctx = distributed.Context(device=torch.device("cuda"))
    model = distributed.wrap(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.BatchNorm2d(2)),
                             ctx, sync_bn=True)
    assert next(model.parameters()).is_cuda  # one process: no conversion needed, on its device


@pytest.mark.slow
def test_torchrun_runs_the_train_command_and_leaves_a_single_process_run_folder(tmp_path):
    flags = ["train", "--data", "synthetic", "--image-size", "64", "--epochs", "2", "--train-size",
             "16", "--batch-size", "4", "--device", "cpu", "--quiet"]
    two = torchrun("-m", "segnas_lite", *flags, "--out", tmp_path / "two")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true", "SEGNAS_QUIET": "1"}
    one = subprocess.run([sys.executable, "-m", "segnas_lite", *flags, "--out",
                          str(tmp_path / "one")], env=env, capture_output=True, text=True,
                         timeout=240)
    assert one.returncode == 0, one.stderr[-3000:]
    layout = [sorted(p.name for p in (tmp_path / run).iterdir()) for run in ("one", "two")]
    assert layout[0] == layout[1] == ["checkpoint.pt", "config.json", "metrics.jsonl"]
    records = [[json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text()
                .splitlines()] for run in ("one", "two")]
    assert [r["epoch"] for r in records[1]] == [r["epoch"] for r in records[0]] == [1, 2]
    assert [sorted(r) for r in records[1]] == [sorted(r) for r in records[0]]
    configs = [json.loads((tmp_path / run / "config.json").read_text()) for run in ("one", "two")]
    assert configs[0] == configs[1]  # the same settings; two processes are not a setting
    assert two.stdout.count("trained fast_scnn for 2 epochs") == 1  # rank 0 alone prints

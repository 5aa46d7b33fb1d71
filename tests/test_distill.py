"""Knowledge distillation: the per-pixel KL term, its checks, and training with a teacher."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segnas_lite.data import SyntheticPortraits
from segnas_lite.runio import CheckpointError
from segnas_lite.train.distill import DistillationError, distillation_loss
from segnas_lite.zoo import load_trained
from segnas_lite.train.engine import TrainConfig, train
from segnas_lite.runio import atomic_torch_save


def test_kl_is_zero_for_identical_logits_and_matches_a_hand_computation():
    z = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    assert distillation_loss(z, z.clone()).item() == pytest.approx(0.0, abs=1e-7)
    # one pixel, two classes: teacher p = (0.8, 0.2) at T = 1, student uniform
    teacher = torch.log(torch.tensor([0.8, 0.2])).view(1, 2, 1, 1)
    student = torch.zeros(1, 2, 1, 1)
    expected = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)
    assert distillation_loss(student, teacher, temperature=1.0).item() == pytest.approx(expected)


def test_temperature_squared_scaling_and_ignored_pixels():
    s = torch.randn(1, 2, 2, 2, generator=torch.Generator().manual_seed(1))
    t = torch.randn(1, 2, 2, 2, generator=torch.Generator().manual_seed(2))
    at4 = distillation_loss(s, t, temperature=4.0)
    kl = F.kl_div(F.log_softmax(s / 4, 1), F.log_softmax(t / 4, 1), log_target=True,
                  reduction="none").sum(1).mean()
    assert at4.item() == pytest.approx(16 * kl.item(), rel=1e-5)
    target = torch.tensor([[[0, 255], [1, 255]]])
    kept = distillation_loss(s, t, target=target, temperature=1.0)
    per_pixel = F.kl_div(F.log_softmax(s, 1), F.log_softmax(t, 1), log_target=True,
                         reduction="none").sum(1)[0]
    assert kept.item() == pytest.approx(per_pixel[target[0] != 255].mean().item(), rel=1e-5)
    assert distillation_loss(s, t, target=torch.full((1, 2, 2), 255)).item() == 0.0


def test_gradient_reaches_the_student_only_and_teacher_is_resized():
    s = torch.randn(1, 2, 8, 8, requires_grad=True)
    t = torch.randn(1, 2, 4, 4, requires_grad=True)
    distillation_loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and t.grad is None


def test_mismatched_outputs_raise_a_named_error():
    with pytest.raises(DistillationError, match="classes"):
        distillation_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(DistillationError, match="temperature"):
        distillation_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), temperature=0)
    with pytest.raises(DistillationError, match=r"\(N, C, H, W\)"):
        distillation_loss(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4))


def test_training_with_a_teacher_moves_the_student_towards_it(tmp_path):
    data = SyntheticPortraits(length=16, image_size=32, seed=0)
    torch.manual_seed(0)
    teacher = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        teacher.bias.copy_(torch.tensor([-3.0, 3.0]))  # "everything is class 1", confidently
        teacher.weight.zero_()

    def student():
        torch.manual_seed(1)
        return nn.Conv2d(3, 2, 1)

    def gap(model):  # how far the student's soft masks are from the teacher's
        images = torch.stack([data[i][0] for i in range(4)])
        with torch.no_grad():
            return distillation_loss(model(images), teacher(images), temperature=1.0).item()

    config = dict(epochs=2, batch_size=4, lr=0.05, quiet=True, eval_every=10)
    plain, taught = student(), student()
    train(plain, data, config=TrainConfig(**config), num_classes=2)
    train(taught, data, config=TrainConfig(**config, distill_weight=5.0, distill_temperature=1.0),
          num_classes=2, teacher=teacher)
    assert gap(taught) < gap(plain)


def test_load_teacher_refuses_checkpoints_without_a_model(tmp_path):
    atomic_torch_save({"weights": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="segnas train"):
        load_trained(tmp_path / "bad.pt", frozen=True)


def test_load_teacher_rebuilds_a_trained_model_frozen_and_in_eval_mode(tmp_path):
    from segnas_lite.zoo import build_model
    torch.manual_seed(0)
    model = build_model("fast_scnn", num_classes=2)
    data = SyntheticPortraits(length=8, image_size=64, seed=0)
    train(model, data, config=TrainConfig(epochs=1, batch_size=4, steps_per_epoch=1, quiet=True),
          num_classes=2, out_dir=tmp_path / "run", model_info={"name": "fast_scnn", "kwargs": {}})
    teacher, _ = load_trained(tmp_path / "run" / "checkpoint.pt", frozen=True)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    x = torch.stack([data[i][0] for i in range(2)])
    model.eval()
    with torch.no_grad():
        assert torch.allclose(teacher(x), model(x))

"""Knowledge distillation for segmentation: a trained teacher's soft masks as extra targets.

Hinton, Vinyals and Dean (2015, "Distilling the knowledge in a neural network") train a small
student on the teacher's class probabilities softened by a temperature T, next to the labels:

    L = CE(student, labels) + w * T^2 * KL( softmax(z_t / T) || softmax(z_s / T) )

For segmentation the KL term is taken per pixel and averaged over the labelled pixels (as in
structured distillation, Liu et al., CVPR 2019, its "pixel-wise" part). The T^2 keeps the gradient's
size independent of T (Hinton et al., Sec. 2). The seed's "future work" points this way (Once-for-All
trains its sub-networks with a teacher); here it serves the search's warm-up (weak shared weights are
what make the architecture gradient noisy) and the retraining of derived networks.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F

from segnas_lite.errors import SegnasError


class DistillationError(SegnasError, ValueError):
    """Student and teacher outputs that cannot be compared, or a teacher that cannot be loaded."""


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                      temperature: float = 2.0, target: torch.Tensor | None = None,
                      ignore_index: int = 255) -> torch.Tensor:
    """Per-pixel ``T^2 * KL(p_teacher || p_student)`` at temperature ``T``, averaged over pixels.

    ``student_logits`` (N, C, H, W); ``teacher_logits`` (N, C, h, w), resized bilinearly to H x W
    when its size differs. With ``target`` (N, H, W), pixels labelled ``ignore_index`` are left out.
    The teacher is a constant: no gradient flows into it.
    """
    if temperature <= 0:
        raise DistillationError(f"temperature must be positive, got {temperature}")
    if student_logits.dim() != 4 or teacher_logits.dim() != 4:
        raise DistillationError("distillation needs (N, C, H, W) logits from student and teacher, "
                                f"got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    n, c, h, w = student_logits.shape
    if teacher_logits.shape[:2] != (n, c):
        raise DistillationError(f"the teacher predicts {teacher_logits.shape[1]} classes for "
                                f"{teacher_logits.shape[0]} images, the student {c} for {n}: use a "
                                "teacher trained on the same classes")
    teacher = teacher_logits.detach()
    if teacher.shape[2:] != (h, w):
        teacher = F.interpolate(teacher, size=(h, w), mode="bilinear", align_corners=False)
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=1)
    per_pixel = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1)  # (N, H, W)
    if target is not None:
        valid = target != ignore_index
        if not valid.any():
            return student_logits.sum() * 0.0  # nothing labelled: no signal, but keep the graph
        per_pixel = per_pixel[valid]
    return temperature ** 2 * per_pixel.mean()


def logits_from_probability(probability: torch.Tensor, *, eps: float = 1e-4) -> torch.Tensor:
    """Two-class logits (N, 2, H, W) = (log(1 - p), log p) of a saved soft mask ``p`` (N, H, W):
    their softmax gives back (1 - p, p), so ``distillation_loss`` reads a teacher's file as it
    reads a teacher's output (``data/soft_targets.py``). ``p`` is clamped to [eps, 1 - eps]:
    a hard 0 or 1 would give an infinite logit."""
    if probability.dim() != 3:
        raise DistillationError(f"a soft mask batch is (N, H, W), got {tuple(probability.shape)}")
    p = probability.clamp(eps, 1.0 - eps)
    return torch.stack([torch.log1p(-p), torch.log(p)], dim=1)


def main_logits(output) -> torch.Tensor:
    """The main output of a model that may return ``(main, [aux, ...])`` in training mode."""
    return output[0] if isinstance(output, tuple) else output

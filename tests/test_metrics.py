import math

import numpy as np
import pytest
import torch

from segnas_lite.metrics import (ConfusionMeter, MetricsError, SegmentationMetrics,
                                 confusion_matrix, iou_per_image)


def test_confusion_matrix_hand_computed():
    target = torch.tensor([[0, 0, 1], [1, 2, 2]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])
    m = confusion_matrix(pred, target, num_classes=3)
    expected = np.array([[1, 1, 0],   # class 0: one right, one called 1
                         [0, 2, 0],   # class 1: both right
                         [1, 0, 1]])  # class 2: one right, one called 0
    np.testing.assert_array_equal(m.numpy(), expected)
    metrics = SegmentationMetrics(m.numpy())
    # IoU_0 = 1 / (2 + 2 - 1) ; IoU_1 = 2 / (2 + 3 - 2) ; IoU_2 = 1 / (2 + 1 - 1)
    np.testing.assert_allclose(metrics.per_class_iou, [1 / 3, 2 / 3, 1 / 2])
    assert metrics.miou == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert metrics.pixel_accuracy == pytest.approx(4 / 6)


def test_ignore_index_pixels_are_left_out():
    target = torch.tensor([0, 255, 1, 255])
    pred = torch.tensor([0, 1, 1, 0])
    m = confusion_matrix(pred, target, num_classes=2, ignore_index=255)
    assert m.sum() == 2
    assert SegmentationMetrics(m.numpy()).miou == 1.0


def test_absent_class_is_nan_and_not_averaged():
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 0, 1, 0])
    metrics = SegmentationMetrics(confusion_matrix(pred, target, num_classes=3).numpy())
    assert math.isnan(metrics.per_class_iou[2])
    assert metrics.miou == pytest.approx((2 / 3 + 1 / 2) / 2)
    d = metrics.as_dict(("bg", "person", "other"))
    assert d["per_class_iou"]["other"] is None


def test_meter_accumulates_logits_over_batches():
    torch.manual_seed(0)
    logits = torch.randn(4, 3, 5, 6)
    target = torch.randint(0, 3, (4, 5, 6))
    meter = ConfusionMeter(3)
    meter.update(logits[:2], target[:2])
    meter.update(logits[2:], target[2:])
    whole = confusion_matrix(logits.argmax(1), target, num_classes=3)
    np.testing.assert_array_equal(meter.compute().confusion, whole.numpy())


def test_perfect_prediction_and_per_image_iou():
    target = torch.randint(0, 2, (8, 8))
    assert iou_per_image(target.clone(), target, num_classes=2) == 1.0


def test_bad_inputs_raise_named_errors():
    with pytest.raises(MetricsError, match="shape"):
        confusion_matrix(torch.zeros(2, 2), torch.zeros(3, 3), num_classes=2)
    with pytest.raises(MetricsError, match="label values"):
        confusion_matrix(torch.zeros(4), torch.tensor([0, 1, 7, 0]), num_classes=2)

import math

import numpy as np
import pytest
import torch

from segnas_lite.metrics import (ConfusionMeter, IoUMeter, MetricsError, SegmentationMetrics,
                                 boundary, boundary_f_score, confusion_matrix, consecutive_iou,
                                 dilate, flip_rate, iou, trimap_iou)


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
    assert iou(target.clone(), target, num_classes=2, reduction="per_image") == 1.0
    assert iou(target.clone(), target, num_classes=2, reduction="pooled") == 1.0


def test_bad_inputs_raise_named_errors():
    with pytest.raises(MetricsError, match="shape"):
        confusion_matrix(torch.zeros(2, 2), torch.zeros(3, 3), num_classes=2)
    with pytest.raises(MetricsError, match="label values"):
        confusion_matrix(torch.zeros(4), torch.tensor([0, 1, 7, 0]), num_classes=2)


# --------------------------------------------------------------------------- pooled vs per image
def test_pooled_and_per_image_iou_differ_on_a_hand_made_case():
    """Two images of the foreground class: a large one found perfectly, a small one half missed.
    Per image, each image weighs the same; pooled, each pixel does."""
    large_true = np.zeros((4, 4), np.int64)
    large_true[:, :2] = 1  # 8 foreground pixels, all found: IoU 1
    small_true = np.zeros((4, 4), np.int64)
    small_true[0, :2] = 1  # 2 foreground pixels
    small_pred = np.zeros((4, 4), np.int64)
    small_pred[0, 0] = 1  # 1 of them found, nothing else: IoU 1/2
    preds, trues = [large_true.copy(), small_pred], [large_true, small_true]
    per_image = iou(preds, trues, num_classes=2, class_index=1, reduction="per_image")
    pooled = iou(preds, trues, num_classes=2, class_index=1, reduction="pooled")
    assert per_image == pytest.approx((1 + 1 / 2) / 2)  # 0.75
    assert pooled == pytest.approx((8 + 1) / (8 + 2))  # 0.9
    # mIoU (background and foreground): the small image's background has IoU 14/15
    assert iou(preds, trues, num_classes=2, reduction="per_image") == pytest.approx(
        ((1 + 1) / 2 + (14 / 15 + 1 / 2) / 2) / 2)
    assert iou(preds, trues, num_classes=2, reduction="pooled") == pytest.approx(
        (22 / 23 + 9 / 10) / 2)
    # the pooled reduction is what ConfusionMeter and SegmentationMetrics report
    meter = ConfusionMeter(2)
    meter.update(torch.as_tensor(np.stack(preds)), torch.as_tensor(np.stack(trues)))
    assert meter.compute().miou == pytest.approx(iou(preds, trues, num_classes=2, reduction="pooled"))


def test_iou_meter_streams_and_reports_each_update():
    trues = [np.eye(3, dtype=np.int64), np.ones((2, 5), np.int64)]  # sizes may differ
    preds = [np.eye(3, dtype=np.int64), np.zeros((2, 5), np.int64)]
    for reduction in ("pooled", "per_image"):
        meter = IoUMeter(num_classes=2, class_index=1, reduction=reduction)
        assert meter.update(preds[0], trues[0]) == 1.0  # this image's own score
        assert meter.update(preds[1], trues[1]) == 0.0
        assert meter.compute() == pytest.approx(iou(preds, trues, num_classes=2, class_index=1,
                                                    reduction=reduction))
    assert math.isnan(IoUMeter(num_classes=2, reduction="pooled").compute())  # nothing added yet


def test_empty_masks_ignore_index_and_bad_arguments():
    empty = np.zeros((3, 3), bool)
    assert math.isnan(iou(empty, empty, num_classes=2, class_index=1, reduction="pooled"))
    assert iou(empty, empty, num_classes=2, class_index=1, reduction="pooled", empty=1.0) == 1.0
    full = np.ones((3, 3), bool)
    # per image, an image without the class is left out of the mean (NaN) or counts as `empty`
    assert iou([full, empty], [full, empty], num_classes=2, class_index=1,
               reduction="per_image") == 1.0
    assert iou([full, empty], [full, empty], num_classes=2, class_index=1, reduction="per_image",
               empty=0.0) == pytest.approx(0.5)
    target = np.array([[1, 255], [0, 0]])
    pred = np.array([[1, 1], [0, 0]])  # the wrong pixel is an ignored one
    assert iou(pred, target, num_classes=2, reduction="pooled") == 1.0
    with pytest.raises(MetricsError, match="reduction"):
        iou(pred, target, num_classes=2, reduction="mean")
    with pytest.raises(MetricsError, match="as many"):
        iou([pred, pred], [target], num_classes=2, reduction="pooled")
    with pytest.raises(MetricsError, match="class_index"):
        iou(pred, target, num_classes=2, class_index=2, reduction="pooled")


# --------------------------------------------------------------------------- edges
def test_dilate_is_a_square_max_filter():
    rng = np.random.default_rng(0)
    mask = rng.random((9, 11)) > 0.85
    for r in (0, 1, 3, 20):
        brute = np.zeros_like(mask)
        for i in range(9):
            for j in range(11):
                brute[i, j] = mask[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].any()
        assert np.array_equal(dilate(mask, r), brute)


def test_boundary_of_a_square_is_its_ring():
    mask = np.zeros((10, 10), bool)
    mask[2:7, 2:7] = True  # 5 x 5
    assert boundary(mask).sum() == 16  # 4 * (5 - 1)
    full = np.ones((6, 6), bool)
    assert boundary(full).sum() == 0  # the image border is not an edge


def test_boundary_f_score_with_and_without_tolerance():
    true = np.zeros((40, 40), bool)
    true[10:30, 10:30] = True
    shifted = np.roll(true, 1, axis=1)
    assert boundary_f_score(true, true).f == 1.0
    assert boundary_f_score(shifted, true, tolerance=1).f == 1.0
    assert boundary_f_score(shifted, true, tolerance=0).f < 0.8
    far = np.roll(true, 6, axis=1)
    assert boundary_f_score(far, true, tolerance=2).f < 0.6
    empty = np.zeros_like(true)
    assert boundary_f_score(empty, empty).f == 1.0
    assert boundary_f_score(empty, true).f == 0.0


def test_trimap_iou_judges_only_the_band_around_the_edge():
    true = np.zeros((60, 60), bool)
    true[10:50, 10:50] = True
    eroded = np.zeros_like(true)
    eroded[11:49, 11:49] = True  # one pixel lost all round
    full_iou = (eroded & true).sum() / (eroded | true).sum()
    band_iou = trimap_iou(eroded, true, width=3)
    assert trimap_iou(true, true, width=3) == 1.0
    assert band_iou < full_iou  # the easy interior no longer hides the edge error


# --------------------------------------------------------------------------- time
def test_flip_rate_counts_changed_pixels_per_frame_pair():
    steady = np.zeros((5, 4, 4), np.int64)
    assert flip_rate(steady) == 0.0
    blink = steady.copy()
    blink[1::2, 0, 0] = 1  # one pixel of 16 changes at every step
    assert flip_rate(blink) == pytest.approx(1 / 16)
    with pytest.raises(ValueError, match="two"):
        flip_rate(steady[:1])


def test_consecutive_iou():
    a = np.zeros((2, 4, 4), np.int64)
    a[:, :2, :2] = 1
    assert consecutive_iou(a) == 1.0
    b = a.copy()
    b[1] = np.roll(a[0], 1, axis=1)  # 4 pixels, 2 shared -> IoU 2 / 6
    assert consecutive_iou(b) == pytest.approx(2 / 6)
    assert consecutive_iou(np.zeros((3, 2, 2), np.int64)) == 1.0

"""Tests for segnas_lite.deploy: OpenVINO conversion (export), parity, benchmarks (bench), INT8
(quantize). The predictor: tests/test_predictor.py.

Randomly initialised models have BatchNorm running statistics (mean 0, var 1) that do not match
their activations, so their logits are tiny and the argmax mask is one class everywhere: mask
agreement would be 100% for free. ``warm_batchnorm`` sets the statistics from a few images first,
and the tests check the PyTorch mask really contains both classes.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch
from torch import nn

from segnas_lite.data import synthetic_video
from segnas_lite.deploy import bench as B
from segnas_lite.deploy import export as E
from segnas_lite.deploy import openvino as O
from segnas_lite.deploy import parity as P
from segnas_lite.deploy import quantize as Q

SIZE = (96, 96)
MODEL_NAMES = ("fast_scnn", "lraspp_mobilenetv3_large", "lraspp_mobilenetv3_small")
# Float16 weights (compress_to_fp16=True): each weight is rounded to 11 significant bits and the
# errors add up through ~20 layers. Measured at 96x96 on the BN-warmed models (logits up to |7|):
# max |diff| 0.047 (fast_scnn), 0.027 (LR-ASPP large), 0.020 (LR-ASPP small), i.e. about 1% of the
# logit range, mask agreement >= 99.85%. Stated tolerance: atol 0.1 on logits, agreement >= 99.5%.
FP16_ATOL = 0.1
FP16_MIN_AGREEMENT = 0.995


def warm_batchnorm(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """Set every BatchNorm's running statistics to the batch statistics of ``images``; eval mode."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    with torch.no_grad():
        model(images)
    return model.eval()


class TinySegNet(nn.Module):
    """Conv-BN-ReLU encoder at 1/2 resolution, 1x1 classifier, bilinear upsampling to the input."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        )
        self.head = nn.Conv2d(16, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.body(x))  # (N, C, H/2, W/2)
        return nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return warm_batchnorm(TinySegNet(), P.sample_images(4, input_size=SIZE, seed=123))


@pytest.fixture(scope="module")
def tiny_static(tiny) -> ov.Model:
    return E.to_openvino(tiny, input_size=SIZE)


def torch_masks_have_both_classes(model: nn.Module, size=SIZE) -> bool:
    with torch.no_grad():
        masks = model(P.sample_images(4, input_size=size, seed=0)).argmax(1)
    return masks.unique().numel() >= 2


# --------------------------------------------------------------------------- tiny network
def test_f32_parity_tiny(tiny, tiny_static):
    assert torch_masks_have_both_classes(tiny)
    report = P.check_parity(tiny, tiny_static, num_images=4, precision="f32")
    assert report.max_abs_diff < 1e-3
    assert report.mask_agreement >= 0.999
    assert report.passed is True
    assert report.input_size == SIZE
    assert "PASSED" in report.to_text()


def test_f32_parity_detects_a_different_model(tiny, tiny_static):
    other = TinySegNet()
    other.load_state_dict(tiny.state_dict())
    with torch.no_grad():
        other.head.bias += 0.5  # shift the logits of every pixel
    report = P.check_parity(other.eval(), tiny_static, num_images=2)
    assert report.passed is False
    assert report.max_abs_diff == pytest.approx(0.5, abs=1e-3)
    assert "FAILED" in report.to_text()


@pytest.mark.parametrize("precision", ["default", "bf16"])
def test_low_precision_is_reported_not_judged(tiny, tiny_static, precision):
    report = P.check_parity(tiny, tiny_static, num_images=2, precision=precision)
    assert report.precision == precision
    assert 0.0 <= report.mask_agreement <= 1.0
    assert report.max_abs_diff >= 0.0
    assert report.passed is None
    # the printout says what really ran (f32 on a CPU without bf16 support), never assumes bf16
    compiled = E.compile_ir(tiny_static, precision=precision)
    assert report.runs == compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    if report.runs != precision:
        assert f"{precision} -> runs {report.runs}" in report.to_text()


def _quantised_conv() -> tuple[nn.Module, ov.Model]:
    """A 3x3 convolution in PyTorch and the same one as an int8 IR, built by hand (what NNCF
    inserts: FakeQuantize on the activation and on the weights), so no NNCF is needed."""
    import openvino.opset13 as ops
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 2, 3, padding=1, bias=False).eval()

    def fake_quantize(node, low: float, high: float, levels: int):
        low, high = ops.constant(np.float32(low)), ops.constant(np.float32(high))
        return ops.fake_quantize(node, low, high, low, high, levels)

    x = ops.parameter([1, 3, 32, 32], ov.Type.f32, name="x")
    weights = ops.constant(conv.weight.detach().numpy())
    y = ops.convolution(fake_quantize(ops.relu(x), 0.0, 4.0, 256),
                        fake_quantize(weights, -1.0, 1.0, 255), [1, 1], [1, 1], [1, 1], [1, 1])
    return nn.Sequential(nn.ReLU(), conv).eval(), ov.Model([y], [x])


def test_an_int8_ir_says_what_ran_and_is_not_judged():
    reference, int8 = _quantised_conv()
    assert P.ir_weights(int8) == "int8"
    compiled = E.compile_ir(int8, precision="f32")
    assert O.weighted_layer_precisions(compiled).keys() & {"u8", "i8"}  # the convolution ran int8
    for precision in ("f32", "default"):
        report = P.check_parity(reference, int8, num_images=2, precision=precision)
        assert report.passed is None and report.weights == "int8"
        assert report.runs.startswith("int8 in 1 of 1 convolutions, the rest ")
        assert f"{precision} -> runs int8 in 1 of 1" in report.to_text()
        assert "runs f32," not in report.to_text()


def test_no_telemetry_sets_ci_for_the_block_only(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with O.no_telemetry():
        assert os.environ["CI"] == "true"
    assert "CI" not in os.environ
    monkeypatch.setenv("CI", "1")
    with O.no_telemetry():
        assert os.environ["CI"] == "true"
    assert os.environ["CI"] == "1"


def test_compile_ir_sets_precision_and_threads(tiny_static):
    compiled = E.compile_ir(tiny_static, precision="f32", threads=1)
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    with pytest.raises(E.ExportError, match="precision"):
        E.compile_ir(tiny_static, precision="fp8")


def test_static_and_dynamic_shapes(tiny, tiny_static):
    assert tiny_static.inputs[0].get_partial_shape().is_static
    assert E.static_input_size(tiny_static) == SIZE
    dynamic = E.to_openvino(tiny, input_size=SIZE, dynamic=True)
    assert E.static_input_size(dynamic) is None
    for size in [(64, 64), (80, 112)]:
        report = P.check_parity(tiny, dynamic, input_size=size, num_images=2)
        assert report.input_size == size
        assert report.passed, report.to_text()
    with pytest.raises(E.ExportError, match="input_size"):
        P.check_parity(tiny, dynamic)  # a dynamic IR needs an explicit size
    with pytest.raises(E.ExportError, match="static"):
        P.check_parity(tiny, tiny_static, input_size=(64, 64))


def test_fp16_ir_passes_parity_with_looser_tolerance(tiny, tiny_static, tmp_path):
    fp32_xml = E.save_ir(tiny_static, tmp_path / "fp32.xml", compress_to_fp16=False)
    fp16_xml = E.save_ir(tiny_static, tmp_path / "fp16.xml", compress_to_fp16=True)
    # float16 weights take half the bytes.
    assert fp16_xml.with_suffix(".bin").stat().st_size < 0.6 * fp32_xml.with_suffix(".bin").stat().st_size
    exact = P.check_parity(tiny, fp32_xml, num_images=2)
    assert exact.passed, exact.to_text()
    assert exact.weights == "f32" and exact.atol == 1e-3
    report = P.check_parity(tiny, fp16_xml, num_images=2)  # the tolerance follows the weights
    assert report.weights == "f16" and report.atol == FP16_ATOL
    assert report.min_agreement == FP16_MIN_AGREEMENT
    assert report.passed, report.to_text()
    assert report.max_abs_diff > 0.0  # the weights did change
    assert "f16 weights" in report.to_text()


def test_write_is_atomic_and_refuses_overwrite(tiny, tmp_path):
    xml = tmp_path / "ir" / "tiny.xml"
    E.to_openvino(tiny, input_size=(32, 32), out_path=xml)
    assert xml.exists() and xml.with_suffix(".bin").exists()
    assert sorted(p.name for p in xml.parent.iterdir()) == ["tiny.bin", "tiny.xml"]  # no temp left
    before = xml.read_bytes()

    with pytest.raises(FileExistsError, match="overwrite=True"):
        E.to_openvino(tiny, input_size=(48, 48), out_path=xml)
    assert xml.read_bytes() == before

    E.to_openvino(tiny, input_size=(48, 48), out_path=xml, overwrite=True)
    assert E.static_input_size(E.load_ir(xml)) == (48, 48)
    assert sorted(p.name for p in xml.parent.iterdir()) == ["tiny.bin", "tiny.xml"]


def test_failed_write_leaves_nothing(tiny_static, tmp_path, monkeypatch):
    def broken_save(model, path, compress_to_fp16=True):
        Path(path).write_text("half an xml")
        raise OSError("disk full")

    monkeypatch.setattr(E.ov, "save_model", broken_save)
    with pytest.raises(OSError, match="disk full"):
        E.save_ir(tiny_static, tmp_path / "model.xml")
    assert list(tmp_path.iterdir()) == []


def test_bad_ir_paths(tiny_static, tmp_path):
    with pytest.raises(E.ExportError, match=".xml"):
        E.save_ir(tiny_static, tmp_path / "model.onnx")
    with pytest.raises(FileNotFoundError, match="to_openvino"):
        E.load_ir(tmp_path / "missing.xml")


def test_a_wrong_destination_fails_before_the_conversion(tiny, tmp_path, monkeypatch):
    def no_conversion(*args, **kwargs):
        raise AssertionError("the model was converted before the destination was checked")

    monkeypatch.setattr(E.ov, "convert_model", no_conversion)
    with pytest.raises(E.ExportError, match=".xml"):
        E.to_openvino(tiny, input_size=(64, 64), out_path=tmp_path / "m.onnx")
    (tmp_path / "folder.xml").mkdir()
    with pytest.raises(E.ExportError, match="folder"):
        E.to_openvino(tiny, input_size=(64, 64), out_path=tmp_path / "folder.xml")
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(E.ExportError, match="is a file"):
        E.to_openvino(tiny, input_size=(64, 64), out_path=tmp_path / "afile" / "sub" / "m.xml")
    (tmp_path / "taken.xml").write_text("an older IR")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        E.to_openvino(tiny, input_size=(64, 64), out_path=tmp_path / "taken.xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "folder.xml", "taken.xml"]


def test_benchmarks_return_sane_numbers(tiny, tiny_static):
    for timing in (
        B.benchmark_torch(tiny, input_size=SIZE, threads=1, warmup=1, runs=5),
        B.benchmark_openvino(tiny_static, precision="f32", threads=1, warmup=1, runs=5),
    ):
        assert timing.runs == 5 and timing.threads == 1
        assert 0 < timing.median_ms <= timing.p90_ms
        assert timing.fps == pytest.approx(1000.0 / timing.median_ms)
        assert "FPS" in timing.to_text()
    assert torch.get_num_threads() >= 1


def test_synthetic_video_moves_and_is_deterministic():
    clip = synthetic_video(6, image_size=(64, 96), seed=3)
    assert len(clip) == 6
    image, mask = clip[0]
    assert image.shape == (3, 64, 96) and image.dtype == torch.float32
    assert mask.shape == (64, 96) and mask.dtype == torch.int64
    centres = [float(m.nonzero()[:, 1].float().mean()) for _, m in clip]  # mean column of the person
    assert all(b > a for a, b in zip(centres, centres[1:]))  # walks left to right
    assert 0.05 < float(mask.float().mean()) < 0.6
    again = synthetic_video(6, image_size=(64, 96), seed=3)
    assert torch.equal(again[4][0], clip[4][0])


@pytest.mark.skipif(importlib.util.find_spec("nncf") is None, reason="nncf not installed")
def test_quantize_int8(tiny, tiny_static, tmp_path):
    calibration = [image for image, _ in synthetic_video(8, image_size=(64, 64), seed=7)]  # resized to 96
    quantized = Q.quantize_int8(tiny_static, calibration, subset_size=8)
    assert "FakeQuantize" in {op.get_type_name() for op in quantized.get_ordered_ops()}
    xml = E.save_ir(quantized, tmp_path / "int8.xml")
    report = P.check_parity(tiny, xml, num_images=2, precision="default")
    assert 0.0 <= report.mask_agreement <= 1.0
    assert report.mask_agreement > 0.9, report.to_text()  # INT8 keeps most pixels


def test_sample_images_are_seeded_portraits_and_tiny_sizes_work():
    images = P.sample_images(3, input_size=(40, 56), seed=1)
    assert images.shape == (3, 3, 40, 56) and torch.isfinite(images).all()
    assert torch.equal(images, P.sample_images(3, input_size=(40, 56), seed=1))  # seeded
    assert not torch.equal(images[0], images[1])
    tiny = P.sample_images(2, input_size=(8, 12), seed=1)  # below a portrait's size: video frames
    assert tiny.shape == (2, 3, 8, 12) and not torch.equal(tiny[0], tiny[1])


# --------------------------------------------------------------------------- package models
def _build(name: str) -> nn.Module:
    try:
        from segnas_lite.zoo import build_model
    except ImportError as error:
        pytest.skip(f"segnas_lite.zoo.build_model is not available yet ({error})")
    torch.manual_seed(0)
    try:
        model = build_model(name, num_classes=2)
    except (KeyError, ValueError) as error:
        pytest.skip(f"build_model does not know {name!r} yet ({error})")
    return warm_batchnorm(model, P.sample_images(4, input_size=SIZE, seed=123))


@pytest.fixture(scope="module", params=MODEL_NAMES)
def package_model(request):
    model = _build(request.param)
    return request.param, model, E.to_openvino(model, input_size=SIZE)


def test_model_f32_parity(package_model):
    name, model, ov_model = package_model
    assert torch_masks_have_both_classes(model), f"{name}: the mask is one class, agreement is meaningless"
    report = P.check_parity(model, ov_model, num_images=4, precision="f32")
    assert report.max_abs_diff < 1e-3, report.to_text()
    assert report.mask_agreement >= 0.999, report.to_text()


def test_model_default_precision_agreement_is_reported(package_model):
    name, model, ov_model = package_model
    report = P.check_parity(model, ov_model, num_images=2, precision="default")
    assert 0.0 <= report.mask_agreement <= 1.0 and report.passed is None
    print(name, report.to_text())


def test_model_fp16_ir(package_model, tmp_path):
    name, model, ov_model = package_model
    xml = E.save_ir(ov_model, tmp_path / f"{name}.xml", compress_to_fp16=True)
    report = P.check_parity(model, xml, num_images=2, atol=FP16_ATOL, min_agreement=FP16_MIN_AGREEMENT)
    assert report.passed, report.to_text()


@pytest.mark.slow  # one more conversion per model, ~7-12 s each on 2 shared cores
def test_model_dynamic_export_two_sizes(package_model):
    name, model, _ = package_model
    dynamic = E.to_openvino(model, input_size=SIZE, dynamic=True)
    for size in [(64, 64), (96, 128)]:
        report = P.check_parity(model, dynamic, input_size=size, num_images=1)
        assert report.passed, f"{name} at {size}: {report.to_text()}"


# --- every op of every search space exports (issue: "every genotype of every search space") -----
def _covering_genotypes(space):
    """Two genotypes that together put every op of the space in a strided and a non-strided layer
    (the zero op only where it is allowed: stride-1 layers with in == out)."""
    from segnas_lite.nas import Genotype
    strided = [l for l, spec in enumerate(space.layers) if spec.stride == 2]
    plain = [l for l, spec in enumerate(space.layers) if spec.stride == 1]
    ops = list(space.layers[plain[0]].ops)  # the stride-1 layers offer every op (zero included)
    real = [op for op in ops if op != "zero"]
    genotypes = []
    for shift in (0, len(strided)):
        choice = {}
        for k, l in enumerate(strided):
            choice[l] = real[(k + shift) % len(real)]
        for k, l in enumerate(plain):
            choice[l] = [op for op in space.layers[l].ops][(k + shift) % len(space.layers[l].ops)]
        genotypes.append(Genotype(space.name, tuple(choice[l] for l in range(len(space.layers)))))
    covered = {op for g in genotypes for op in g.ops}
    assert covered == set(ops), f"test genotypes miss {set(ops) - covered}"
    return genotypes


@pytest.mark.parametrize("space_name", ["seed", "proxyless"])
def test_searched_children_export_with_f32_parity(space_name):
    from segnas_lite.nas import build_child, get_space
    for genotype in _covering_genotypes(get_space(space_name)):
        torch.manual_seed(0)
        child = build_child(genotype, num_classes=2).eval()
        report = P.check_parity(child, E.to_openvino(child, input_size=(64, 64)), precision="f32")
        assert report.passed, (genotype.ops, report.to_text())


@pytest.mark.slow
@pytest.mark.parametrize("space_name", ["seed", "proxyless"])
def test_every_uniform_genotype_exports(space_name):
    from segnas_lite.nas import Genotype, build_child, get_space
    space = get_space(space_name)
    for op in (op for op in space.layers[0].ops if op != "zero"):
        torch.manual_seed(0)
        child = build_child(Genotype.uniform(space, op), num_classes=2).eval()
        report = P.check_parity(child, E.to_openvino(child, input_size=(64, 64)), precision="f32")
        assert report.passed, (op, report.to_text())

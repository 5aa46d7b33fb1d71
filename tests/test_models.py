"""Tests for the segmentation models, build_model and the summary helper."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from segnas_lite.zoo import UnknownModelError, available_models, build_model
from segnas_lite.models import mobilenet_v3_large, mobilenet_v3_small
from segnas_lite.models.fast_scnn import adaptive_avg_matrix, bin_average_pool
from segnas_lite.models.summary import summarize

MODEL_NAMES = ["fast_scnn", "lraspp_mobilenetv3_large", "lraspp_mobilenetv3_small"]
REFERENCE = (Path(__file__).resolve().parents[1].parent / "shared" / "reference"
             / "torchvision_lraspp_mobilenet_v3_large_21.pt")


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_eval_output_has_input_size_for_odd_input(name: str) -> None:
    model = build_model(name, num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 250, 330))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (1, 5, 250, 330)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("size", [(33, 47), (64, 96)])
def test_train_mode_batch_two_small_sizes(name: str, size: tuple[int, int]) -> None:
    model = build_model(name, num_classes=3).train()
    out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 3, *size)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradients_reach_every_parameter(name: str) -> None:
    kwargs = {"aux": True} if name == "fast_scnn" else {}
    model = build_model(name, num_classes=4, **kwargs).train()
    images = torch.randn(2, 3, 64, 80)
    target = torch.randint(0, 4, (2, 64, 80))
    out = model(images)
    if isinstance(out, tuple):  # Fast-SCNN with aux heads: (main, [aux, ...])
        main, aux = out
        loss = F.cross_entropy(main, target) + 0.4 * sum(F.cross_entropy(a, target) for a in aux)
    else:
        loss = F.cross_entropy(out, target)
    loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"no gradient for {param_name}"
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, f"zero gradient for {param_name}"


def test_fast_scnn_aux_only_in_training() -> None:
    model = build_model("fast_scnn", num_classes=3, aux=True)
    images = torch.randn(2, 3, 70, 90)
    main, aux = model.train()(images)
    assert main.shape == (2, 3, 70, 90)
    assert len(aux) == 2 and all(a.shape == (2, 3, 70, 90) for a in aux)
    with torch.no_grad():
        assert isinstance(model.eval()(images), torch.Tensor)
    # aux=False never builds the heads, so parameter counts match the paper's network.
    plain = build_model("fast_scnn", num_classes=3)
    assert count_params(plain) < count_params(model)
    assert isinstance(plain.train()(images), torch.Tensor)


def test_parameter_counts() -> None:
    fast19 = count_params(build_model("fast_scnn", num_classes=19))
    fast2 = count_params(build_model("fast_scnn", num_classes=2))
    assert 1_000_000 <= fast19 <= 1_250_000  # paper: 1.11 million
    assert fast19 - fast2 == 17 * (128 + 1)  # only the final 1x1 conv depends on the classes
    assert count_params(build_model("lraspp_mobilenetv3_large", num_classes=21)) == 3_221_538
    small = count_params(build_model("lraspp_mobilenetv3_small", num_classes=21))
    assert 0 < small < 3_221_538


@pytest.mark.skipif(not REFERENCE.exists(), reason=f"reference file {REFERENCE} not present")
def test_lraspp_large_matches_torchvision_reference() -> None:
    reference = torch.load(REFERENCE, weights_only=True)
    model = build_model("lraspp_mobilenetv3_large", num_classes=21)
    model.load_state_dict(reference["state_dict"], strict=True)
    model.eval()
    with torch.no_grad():
        out = model(reference["input"])
    assert out.shape == reference["output"].shape
    torch.testing.assert_close(out, reference["output"], atol=1e-4, rtol=0)


def test_lraspp_small_keeps_torchvision_naming() -> None:
    keys = build_model("lraspp_mobilenetv3_small", num_classes=21).state_dict().keys()
    assert "backbone.0.0.weight" in keys and "backbone.12.0.weight" in keys  # stem, 1x1 to 576
    assert "backbone.13.0.weight" not in keys
    for head_key in ["classifier.cbr.0.weight", "classifier.scale.1.weight",
                     "classifier.low_classifier.weight", "classifier.high_classifier.weight"]:
        assert head_key in keys


@pytest.mark.parametrize("size", [(8, 11), (5, 7), (13, 6), (1, 1), (2, 3), (12, 18)])
@pytest.mark.parametrize("bins", [1, 2, 3, 6])
def test_bin_average_pool_equals_adaptive_avg_pool(size: tuple[int, int], bins: int) -> None:
    x = torch.randn(2, 5, *size)
    torch.testing.assert_close(bin_average_pool(x, bins), F.adaptive_avg_pool2d(x, bins))


def test_averaging_matrix_rows_sum_to_one_and_overlap() -> None:
    matrix = adaptive_avg_matrix(8, 3)  # windows [0, 3), [2, 6), [5, 8): they overlap
    torch.testing.assert_close(matrix.sum(dim=1), torch.ones(3))
    assert (matrix > 0).sum().item() == 3 + 4 + 3


@pytest.mark.parametrize("builder, low_ch, high_ch", [(mobilenet_v3_large, 40, 960),
                                                       (mobilenet_v3_small, 24, 576)])
def test_mobilenetv3_output_stride_16(builder, low_ch: int, high_ch: int) -> None:
    images = torch.randn(1, 3, 250, 330)
    with torch.no_grad():
        low, high = builder().eval()(images)
        _, high_32 = builder(dilated=False).eval()(images)
        _, high_reduced = builder(reduced_tail=True).eval()(images)
    # Stride-2 convs with padding round up: 250 -> 125 -> 63 -> 32 -> 16 (-> 8).
    assert low.shape == (1, low_ch, 32, 42)
    assert high.shape == (1, high_ch, 16, 21)
    assert high_32.shape == (1, high_ch, 8, 11)
    assert high_reduced.shape == (1, high_ch // 2, 16, 21)


@pytest.mark.slow  # about 5 s alone, 10 s on a busy 2-core machine (OpenVINO conversion)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace, used by OpenVINO
def test_fast_scnn_exports_to_openvino_for_sizes_bins_do_not_divide() -> None:
    ov = pytest.importorskip("openvino")
    model = build_model("fast_scnn", num_classes=19).eval()
    example = torch.randn(1, 3, 250, 330)  # 1/32 map is 8 x 11: bins 3 and 6 divide neither
    ov_model = ov.convert_model(model, example_input=example)
    compiled = ov.Core().compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    for size in [(250, 330), (97, 131)]:  # the second size checks the graph is not size-frozen
        images = torch.randn(1, 3, *size)
        with torch.no_grad():
            expected = model(images)
        got = torch.from_numpy(compiled(images.numpy())[0])
        assert got.shape == expected.shape
        assert (got - expected).abs().max().item() < 1e-3


def test_summary_figures() -> None:
    model = build_model("fast_scnn", num_classes=19).train()
    small = summarize(model, input_size=(128, 160))
    large = summarize(model, input_size=(256, 320))
    assert model.training  # mode restored
    assert small.total_params == count_params(model) == small.trainable_params
    assert sum(row.params for row in small.rows) == small.total_params
    assert [row.name for row in small.rows][:4] == [
        "learning_to_downsample", "global_feature_extractor", "feature_fusion", "classifier"]
    assert all(row.flops > 0 for row in small.rows)
    assert small.flops > 0 and sum(row.flops for row in small.rows) == small.flops
    assert 3.5 < large.flops / small.flops < 4.5  # twice the side -> about four times the FLOPs
    assert small.gflops == pytest.approx(small.flops / 1e9)
    as_dict = small.as_dict()
    assert as_dict["total_params"] == small.total_params and len(as_dict["rows"]) == len(small.rows)
    text = small.to_text()
    assert "global_feature_extractor" in text and f"{small.total_params:,}" in text


def test_summary_counts_frozen_parameters_separately() -> None:
    model = build_model("lraspp_mobilenetv3_small", num_classes=2)
    for param in model.backbone.parameters():
        param.requires_grad_(False)
    summary = summarize(model, input_size=(64, 64))
    assert summary.trainable_params == count_params(model.classifier)
    assert summary.total_params == count_params(model)
    assert {row.name for row in summary.rows} >= {"backbone", "classifier"}


def test_build_model_names_and_errors() -> None:
    assert set(MODEL_NAMES) <= set(available_models())
    with pytest.raises(UnknownModelError, match="fast_scnn") as error:
        build_model("fast_scn", num_classes=2)
    assert isinstance(error.value, ValueError)
    with pytest.raises(TypeError):
        build_model("fast_scnn", num_classes=2, no_such_option=1)
    assert build_model("fast_scnn", num_classes=2, aux=True).aux


@pytest.mark.parametrize("kwargs", [{"width_mult": 0.75}, {"reduced_tail": True}])
def test_lraspp_options_shrink_the_model(kwargs: dict) -> None:
    model = build_model("lraspp_mobilenetv3_large", num_classes=3, **kwargs).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 65, 97))
    assert out.shape == (1, 3, 65, 97)
    assert count_params(model) < count_params(build_model("lraspp_mobilenetv3_large", num_classes=3))


def test_summary_books_the_nas_chain_flops_to_its_layers() -> None:
    """The chain is an nn.ModuleList that the macro iterates (its own forward never runs): its
    FLOPs belong to the "layers" row, not to "(other)" (issue 13: 92% of the params, 0% FLOPs)."""
    from segnas_lite.nas import Genotype, get_space
    from segnas_lite.nas.supernet import build_child
    child = build_child(Genotype.uniform(get_space("seed"), "mbv3_3x3"), num_classes=2)
    summary = summarize(child, input_size=(64, 64))
    rows = {row.name: row for row in summary.rows}
    assert "(other)" not in rows
    assert rows["layers"].flops > 0.3 * summary.flops
    assert sum(row.flops for row in summary.rows) == summary.flops

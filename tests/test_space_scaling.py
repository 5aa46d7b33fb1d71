"""Width-scaled search spaces (``nas.space.scaled_space``): the channel rule, the name that
``get_space`` parses back, and children that build and run from a saved genotype."""
from __future__ import annotations

import random

import pytest
import torch

from segnas_lite.zoo import build_model
from segnas_lite.nas import Genotype, GenotypeError, SpaceError, get_space, seed_space, tiny_space
from segnas_lite.deploy.target import Target
from segnas_lite.nas.latency import table_key
from segnas_lite.nas.space import scaled_space


def channels(space) -> list[int]:
    return [space.stem_channels] + [spec.out_ch for spec in space.layers]


def test_half_width_rounds_every_count_to_a_multiple_of_8():
    space = scaled_space(seed_space(), 0.5)
    assert space.name == "seed-w0.5"
    # 16 -> 8; 24 -> 12 -> 16; 40 -> 20 -> 24; 80 -> 40; 160 -> 80 (make_divisible, divisor 8)
    assert channels(space) == [8, 16, 16, 24, 24, 24, 40, 40, 40, 80, 80]
    seed = seed_space()
    assert [s.stride for s in space.layers] == [s.stride for s in seed.layers]
    assert [s.ops for s in space.layers] == [s.ops for s in seed.layers]
    assert space.output_strides() == seed.output_strides()


@pytest.mark.parametrize("width", [0.05, 0.25, 0.3, 0.65, 1.0, 1.5])
def test_every_width_gives_multiples_of_8_at_least_8(width):
    space = scaled_space(seed_space(), width)
    assert all(c % 8 == 0 and c >= 8 for c in channels(space))
    for spec in space.layers:  # each layer reads what the previous one wrote
        assert spec.in_ch % 8 == 0 and spec.in_ch >= 8


def test_width_one_keeps_the_channels_under_another_name():
    space = scaled_space(seed_space(), 1.0)
    assert space.name == "seed-w1"
    assert channels(space) == channels(seed_space())


def test_wider_means_more_parameters():
    params = [sum(p.numel() for p in build_model(
        "mbv3_baseline", num_classes=2, space=f"seed-w{w}").parameters()) for w in (0.25, 0.5, 1.0)]
    assert params[0] < params[1] < params[2]


@pytest.mark.parametrize("name", ["seed-w0.75", "seed-w0.3", "tiny-w2", "seed-w0.5-w0.5"])
def test_get_space_parses_scaled_names(name):
    space = get_space(name)
    assert space.name == name
    base, width = name.rsplit("-w", 1)
    assert space == scaled_space(get_space(base), float(width))


def test_name_records_the_rounded_width():
    space = scaled_space(tiny_space(), 0.333333)
    assert space.name == "tiny-w0.3333"
    assert get_space(space.name) == space


@pytest.mark.parametrize("name", ["seed-wide", "seed-w", "nowhere-w0.5", "seed-w-0.5"])
def test_unknown_or_malformed_names_raise(name):
    with pytest.raises(GenotypeError, match="unknown space"):
        get_space(name)


@pytest.mark.parametrize("width", [0, -0.5, float("nan"), float("inf")])
def test_bad_width_raises(width):
    with pytest.raises(SpaceError, match="width"):
        scaled_space(seed_space(), width)


def test_a_genotype_of_the_base_space_does_not_fit_the_scaled_one():
    space = scaled_space(seed_space(), 0.5)
    with pytest.raises(GenotypeError, match="seed-w0.5"):
        space.validate(Genotype.uniform(seed_space(), "mbv3_3x3"))


def test_scaled_child_round_trips_through_json_and_runs():
    space = scaled_space(seed_space(), 0.35)
    genotype = space.random_genotype(random.Random(0))
    text = genotype.to_json()
    assert Genotype.from_json(text) == genotype
    torch.manual_seed(0)
    model = build_model("nas_child", num_classes=2, genotype=text).eval()  # space found by name
    assert model.space == space
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2, 64, 64)


@pytest.mark.parametrize("width", [0.25, 0.75])
def test_scaled_baseline_builds_and_runs(width):
    model = build_model("mbv3_baseline", num_classes=2, space=f"seed-w{width}").eval()
    assert model.space.name == f"seed-w{width}"
    assert model.space.stem_channels == scaled_space(seed_space(), width).stem_channels
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 48)).shape == (1, 2, 32, 48)


def test_latency_cache_keys_differ_between_widths():
    keys = {table_key(space, Target(backend="openvino", threads=2, image_size=256))
            for space in (seed_space(), scaled_space(seed_space(), 0.5),
                          scaled_space(seed_space(), 0.75))}
    assert len(keys) == 3

"""Candidate ops: shapes, strides, channel shuffle, the zero op, and space / genotype validation."""
import json
import random

import pytest
import torch

from segnas_lite.nas import (OPS, PROXYLESS_OPS, SEED_OPS, Genotype, GenotypeError, LayerSpec,
                             SpaceError, build_op, chain_space, proxyless_space, seed_space,
                             tiny_space)
from segnas_lite.nas.ops import MBConvOp, MBv3Op, channel_shuffle

torch.manual_seed(0)

STRIDED = [name for name in OPS if name != "zero"]


@pytest.mark.parametrize("name", STRIDED)
@pytest.mark.parametrize("in_ch,out_ch,stride", [(16, 24, 2), (24, 24, 1), (16, 24, 1)])
def test_op_shapes(name, in_ch, out_ch, stride):
    op = build_op(name, in_ch, out_ch, stride)
    x = torch.randn(2, in_ch, 15, 16)  # odd height: stride 2 gives ceil(15 / 2) = 8
    y = op(x)
    assert y.shape == (2, out_ch, -(-15 // stride), 16 // stride)
    y.sum().backward()


@pytest.mark.parametrize("name", STRIDED)
def test_ops_do_not_modify_their_input(name):
    """The layer input is also the shortcut: an op must not change it in place."""
    op = build_op(name, 24, 24, 1)
    x = torch.randn(2, 24, 8, 8)
    before = x.clone()
    op(x)
    assert torch.equal(x, before)


def test_ops_have_no_shortcut_of_their_own():
    for op in (MBv3Op(16, 16, 1, kernel_size=3), MBConvOp(16, 16, 1, kernel_size=5, expansion=6)):
        assert op.use_residual is False
    assert build_op("mbv3_5x5", 16, 16, 1).block[1][0].kernel_size == (5, 5)
    assert build_op("mb_k7_e6", 16, 16, 1).block[0][0].out_channels == 96  # expansion 6


def test_dilconv_is_dilated_and_sepconv_strides_first():
    dil = build_op("dil_5x5", 8, 16, 2)
    assert dil[1].dilation == (2, 2) and dil[1].stride == (2, 2)
    sep = build_op("sep_3x3", 8, 16, 2)
    assert sep[0][1].stride == (2, 2) and sep[1][1].stride == (1, 1)


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_shuffle_unit_stride1_keeps_left_half():
    op = build_op("shuffle", 8, 8, 1).eval()
    x = torch.randn(1, 8, 4, 4)
    y = op(x)
    # after the shuffle, even channels are the untouched left half
    assert torch.equal(y[:, 0::2], x[:, :4])


def test_zero_op():
    zero = build_op("zero", 8, 8, 1)
    assert zero.is_zero and torch.count_nonzero(zero(torch.randn(1, 8, 4, 4))) == 0
    with pytest.raises(ValueError, match="stride == 1"):
        build_op("zero", 8, 16, 1)
    with pytest.raises(KeyError, match="unknown op"):
        build_op("conv_9x9", 8, 8, 1)


def test_layer_spec_validation():
    assert LayerSpec(8, 8, 1, ("zero", "sep_3x3")).residual
    with pytest.raises(SpaceError, match="zero"):
        LayerSpec(8, 16, 2, ("zero", "sep_3x3"))
    with pytest.raises(SpaceError, match="unknown ops"):
        LayerSpec(8, 8, 1, ("conv_9x9",))
    with pytest.raises(SpaceError, match="stride"):
        LayerSpec(8, 8, 3, ("sep_3x3",))


def test_spaces_are_well_formed():
    seed = seed_space()
    assert all(spec.ops == SEED_OPS for spec in seed.layers)
    assert seed.output_strides()[-1] == 32 and set(seed.taps()) == {4, 8, 16, 32}
    assert seed.size() == 7 ** len(seed)
    proxyless = proxyless_space()
    for spec in proxyless.layers:
        assert spec.ops[:6] == PROXYLESS_OPS
        assert ("zero" in spec.ops) == spec.residual
    shapes = seed.layer_input_shapes(128, 96)
    assert shapes[0] == (16, 64, 48) and shapes[-1][1:] == (4, 3)
    with pytest.raises(SpaceError, match="strides"):
        chain_space("bad", stem_channels=8, stages=((8, 1), (8, 1), (8, 1)), ops=("sep_3x3",))


def test_genotype_json_roundtrip_and_validation(tmp_path):
    space = tiny_space()
    genotype = space.random_genotype(random.Random(3))
    space.validate(genotype)
    assert Genotype.from_json(genotype.to_json()) == genotype
    genotype.save(tmp_path / "sub" / "g.json")
    assert Genotype.load(tmp_path / "sub" / "g.json") == genotype
    assert json.loads((tmp_path / "sub" / "g.json").read_text())["space"] == "tiny"
    assert list(tmp_path.joinpath("sub").iterdir()) == [tmp_path / "sub" / "g.json"]  # no temp left

    baseline = Genotype.uniform(seed_space(), "mbv3_3x3")
    assert baseline.ops == ("mbv3_3x3",) * len(seed_space())
    with pytest.raises(GenotypeError, match="layers"):
        space.validate(Genotype("tiny", genotype.ops[:-1]))
    with pytest.raises(GenotypeError, match="cannot use"):
        space.validate(Genotype("tiny", ("zero",) + genotype.ops[1:]))  # layer 0 is strided
    with pytest.raises(GenotypeError, match="space"):
        space.validate(Genotype("seed", genotype.ops))
    with pytest.raises(GenotypeError):
        Genotype.from_json("{}")


def test_random_genotype_is_seeded():
    space = seed_space()
    assert space.random_genotype(7) == space.random_genotype(7)
    assert len({space.random_genotype(seed) for seed in range(20)}) > 1

"""SegSuperNet / ChildNet: shapes, single-path graphs, sampling, parameter groups, child extraction."""
import pytest
import torch
import torch.nn.functional as F

from segnas_lite.zoo import build_model
from segnas_lite.nas import (ChildNet, Genotype, GenotypeError, MacroConfig, MixedOp, SegMacro,
                             SegSuperNet, SpaceError, build_child, expected_latency,
                             latency_rows_to_table, seed_space, tiny_space)

NARROW = MacroConfig(aspp_channels=16, decoder_channels=8)


def make_net(**kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("macro_config", NARROW)
    return SegSuperNet(tiny_space(), num_classes=3, **kwargs)


def batch(size=32, n=2):
    torch.manual_seed(1)
    return torch.randn(n, 3, size, size), torch.randint(0, 3, (n, size, size))


def genotype_without_zero(net, seed=0):
    generator = torch.Generator().manual_seed(seed)
    while "zero" in net.sample_genotype(generator).ops:
        pass
    return net.genotype()


@pytest.mark.parametrize("mode", ["fixed", "single", "all"])
def test_forward_shape_all_modes(mode):
    net = make_net(mode=mode)
    net.sample_genotype(0)
    x, _ = batch(size=48)
    assert net(x).shape == (2, 3, 48, 48)
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 40, 56)).shape == (1, 3, 40, 56)  # non-square, not a multiple of 32


@pytest.mark.parametrize("mode", ["fixed", "single"])
def test_single_path_graph_only_through_active_ops(mode):
    net = make_net(mode=mode)
    genotype_without_zero(net)
    x, y = batch()
    F.cross_entropy(net(x), y).backward()
    for op in net.mixed_ops:
        for k, candidate in enumerate(op.candidates):
            grads = [p.grad for p in candidate.parameters()]
            if k == op.active:
                assert all(g is not None for g in grads)
            else:
                assert all(g is None for g in grads), f"inactive {op.names[k]} got a gradient"
        assert (op.alpha.grad is not None) == (mode == "single")


def test_only_the_active_op_runs_with_grad():
    """full_v2 re-runs the other candidates in backward, but never with autograd recording."""
    net = make_net(mode="single")
    genotype_without_zero(net, seed=3)
    calls = []
    for op in net.mixed_ops:
        for k, candidate in enumerate(op.candidates):
            candidate.register_forward_hook(
                lambda m, i, o, op=op, k=k: calls.append((k == op.active, torch.is_grad_enabled())))
    x, y = batch()
    out = net(x)
    assert all(active for active, _ in calls) and len(calls) == len(net.mixed_ops)
    F.cross_entropy(out, y).backward()
    assert all(active for active, grad_enabled in calls if grad_enabled)
    assert sum(not active for active, _ in calls) > 0  # the others were re-run (without grad)


def test_all_mode_trains_every_candidate():
    net = make_net(mode="all")
    x, y = batch()
    F.cross_entropy(net(x), y).backward()
    for op in net.mixed_ops:
        assert op.alpha.grad is not None
        for name, candidate in zip(op.names, op.candidates):
            assert name == "zero" or all(p.grad is not None for p in candidate.parameters())


def test_zero_layer_is_identity_and_gets_no_alpha_gradient():
    net = make_net(mode="single")
    ops = list(genotype_without_zero(net).ops)
    zero_layer = next(i for i, spec in enumerate(net.space.layers) if "zero" in spec.ops)
    ops[zero_layer] = "zero"
    net.set_genotype(Genotype("tiny", tuple(ops)))
    x, y = batch()
    features = []
    net.layers[zero_layer].register_forward_hook(lambda m, i, o: features.append((i[0], o)))
    F.cross_entropy(net(x), y).backward()
    layer_in, layer_out = features[0]
    assert layer_out is layer_in
    for index, op in enumerate(net.mixed_ops):
        assert (op.alpha.grad is None) == (index == zero_layer)


def test_parameter_groups_are_disjoint_and_complete():
    net = make_net()
    arch = list(net.arch_parameters())
    weights = list(net.weight_parameters())
    assert len(arch) == len(net.space)
    assert {id(p) for p in arch}.isdisjoint(id(p) for p in weights)
    assert {id(p) for p in arch} | {id(p) for p in weights} == {id(p) for p in net.parameters()}
    assert all(p.abs().max() < 0.01 for p in arch)  # N(0, 1e-3) initialisation


def test_latency_term_reaches_every_alpha():
    net = make_net()
    probs = net.probabilities()
    rows = [[float(k + 1) for k in range(len(p))] for p in probs]
    expected_latency(probs, latency_rows_to_table(rows), fixed=5.0).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.arch_parameters())


def test_sampling_is_seeded_and_follows_probabilities():
    net = make_net()
    assert net.sample_genotype(4) == net.sample_genotype(4)
    op = net.mixed_ops[0]
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([2.0, 0.0, -1.0]))
    generator = torch.Generator().manual_seed(0)
    counts = torch.bincount(torch.tensor([op.sample(generator) for _ in range(3000)]), minlength=3)
    assert torch.allclose(counts / 3000.0, op.probabilities().detach(), atol=0.03)
    counts = torch.bincount(torch.tensor([op.sample(generator, uniform=True) for _ in range(3000)]),
                            minlength=3)
    assert torch.allclose(counts / 3000.0, torch.full((3,), 1 / 3), atol=0.03)


def test_two_mode_sampling_draws_a_distinct_pair():
    net = make_net(estimator="two")
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        net.sample_genotype(generator)
        for op in net.mixed_ops:
            assert op.pair[0] == op.active and op.pair[0] != op.pair[1]


def test_set_genotype_and_validation():
    net = make_net()
    genotype = tiny_space().random_genotype(5)
    net.set_genotype(genotype)
    assert net.genotype() == genotype
    with pytest.raises(GenotypeError):
        net.set_genotype(Genotype("tiny", genotype.ops[:2]))
    with pytest.raises(ValueError, match="mode"):
        net.set_mode("half")


def test_child_shares_the_macro_and_inherits_weights():
    net = make_net(mode="fixed")
    genotype = net.sample_genotype(2)
    child = net.extract_child()
    assert isinstance(child, SegMacro) and isinstance(net, SegMacro)
    assert not any(isinstance(m, MixedOp) for m in child.modules())
    x, _ = batch()
    net.eval(), child.eval()
    with torch.no_grad():
        assert torch.allclose(child(x), net(x), atol=1e-6)
    assert child.genotype == genotype


def test_extracted_child_holds_the_chosen_candidates_weights_module_by_module():
    net = make_net(mode="fixed", macro_config=MacroConfig(16, 8, aspp_rates=(1, 3, 5)))
    with torch.no_grad():  # make every weight distinct, so a wrong mapping cannot pass by chance
        for index, p in enumerate(net.weight_parameters()):
            p.copy_(torch.randn_like(p) + index)
    genotype = tiny_space().random_genotype(7)
    child = net.extract_child(genotype)
    assert child.macro_config == net.macro_config and len(child.aspp.atrous) == 3
    for layer, child_layer, name in zip(net.layers, child.layers, genotype.ops):
        chosen = layer.op.candidates[layer.op.names.index(name)].state_dict()
        got = child_layer.op.state_dict()
        assert got.keys() == chosen.keys()
        assert all(torch.equal(got[key], chosen[key]) for key in got)
    for part in ("stem", "aspp", "decoder", "classifier"):
        mine, theirs = getattr(net, part).state_dict(), getattr(child, part).state_dict()
        assert all(torch.equal(mine[key], theirs[key]) for key in mine)
    assert "alpha" not in " ".join(child.state_dict())


def test_macro_config_is_one_place_for_the_widths():
    assert MacroConfig.coerce(None) == MacroConfig() == MacroConfig(64, 48, (2, 4))
    assert MacroConfig.coerce({"aspp_channels": 16, "decoder_channels": 8}) == NARROW
    with pytest.raises(SpaceError, match="aspp_rates"):
        MacroConfig.coerce({"aspp_width": 16})
    genotype = Genotype.uniform(tiny_space(), "sep_3x3")
    child = build_child(genotype, num_classes=2, macro_config=MacroConfig(aspp_rates=(1, 2, 3)))
    assert len(child.aspp.atrous) == 3  # build_child used to drop the rates
    # a checkpoint's JSON model kwargs carry the widths as plain values
    model = build_model("nas_child", num_classes=2, genotype=genotype.to_json(),
                        aspp_channels=16, decoder_channels=8, aspp_rates=[2])
    assert model.macro_config == MacroConfig(16, 8, (2,))
    assert build_model("mbv3_baseline", num_classes=2).macro_config == MacroConfig()


def test_build_child_baseline_and_shapes():
    baseline = Genotype.uniform(seed_space(), "mbv3_3x3")  # the seed's MobileNetV3 baseline
    child = build_child(baseline, num_classes=2)
    assert isinstance(child, ChildNet) and child.space.name == "seed"
    child.eval()
    with torch.no_grad():
        assert child(torch.randn(1, 3, 64, 64)).shape == (1, 2, 64, 64)
    with pytest.raises(GenotypeError):
        build_child(Genotype("seed", ("zero",) * len(seed_space())), num_classes=2)

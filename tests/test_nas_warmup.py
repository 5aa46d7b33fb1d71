"""Warm-up that ranks: strict-fair paths, the sandwich step and in-place distillation."""
from collections import Counter

import pytest
import torch

from segnas_lite.data import SyntheticPortraits
from segnas_lite.nas import Genotype, SegSuperNet, get_space
from segnas_lite.nas.warmup import FairCycle, multi_path_step, sandwich_genotypes


def test_fair_sampling_covers_every_op_once_per_cycle():
    space = get_space("seed")
    cycle = FairCycle(space, torch.Generator().manual_seed(0))
    m = cycle.cycle_length
    for _ in range(3):  # three whole cycles
        genotypes = [cycle.next() for _ in range(m)]
        for layer, spec in enumerate(space.layers):
            counts = Counter(g.ops[layer] for g in genotypes)
            if len(spec.ops) == m:
                assert counts == Counter({op: 1 for op in spec.ops})
            else:
                assert set(counts) == set(spec.ops)


def test_fair_cycles_differ_from_each_other():
    space = get_space("seed")
    cycle = FairCycle(space, torch.Generator().manual_seed(0))
    first = [cycle.next().ops for _ in range(cycle.cycle_length)]
    second = [cycle.next().ops for _ in range(cycle.cycle_length)]
    assert first != second


def test_sandwich_puts_largest_and_smallest_first():
    space = get_space("tiny")
    largest = Genotype.uniform(space, space.layers[0].ops[-1])
    smallest = Genotype.uniform(space, space.layers[0].ops[0])
    paths = sandwich_genotypes(space, largest=largest, smallest=smallest, num_random=2,
                               generator=torch.Generator().manual_seed(0))
    assert paths[:2] == [largest, smallest] and len(paths) == 4


def _grads(net):
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def test_the_sandwich_step_sums_the_gradients_of_its_subnets():
    torch.manual_seed(0)
    space = get_space("tiny")
    net = SegSuperNet(space, num_classes=2)
    data = SyntheticPortraits(length=4, image_size=64, seed=0)
    images = torch.stack([data[i][0] for i in range(4)])
    masks = torch.stack([data[i][1] for i in range(4)])
    paths = [space.random_genotype(s) for s in (1, 2, 3)]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.zero_grad()
    multi_path_step(net, images, masks, paths)
    together = _grads(net)
    expected: dict[str, torch.Tensor] = {}
    for path in paths:  # each path alone, from the same BN state, gradients summed by hand
        net.load_state_dict(state)
        net.zero_grad()
        multi_path_step(net, images, masks, [path])
        for name, grad in _grads(net).items():
            expected[name] = expected.get(name, 0) + grad
    assert together.keys() == expected.keys()
    for name in together:
        assert torch.allclose(together[name], expected[name], atol=1e-5), name


def test_inplace_distillation_teaches_from_the_first_path():
    torch.manual_seed(0)
    space = get_space("tiny")
    net = SegSuperNet(space, num_classes=2)
    data = SyntheticPortraits(length=2, image_size=64, seed=0)
    images = torch.stack([data[i][0] for i in range(2)])
    masks = torch.stack([data[i][1] for i in range(2)])
    path = space.random_genotype(0)
    # a path distilled from itself has nothing to learn: KL(p || p) = 0
    losses = multi_path_step(net, images, masks, [path, path], inplace_distill=True)
    assert losses[0] > 0 and losses[1] == pytest.approx(0.0, abs=1e-5)

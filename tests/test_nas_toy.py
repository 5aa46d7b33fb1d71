"""The toys of notebooks 06 and 07 (``nas/toy.py``): the library's pieces on 3 layers x 2 ops agree
with a search and a knapsack written out by hand, and with brute force."""
import itertools
import math

import numpy as np
import pytest
import torch

from segnas_lite.nas import derive_argmax, derive_under_budget, genotype_latency
from segnas_lite.nas.toy import TOY_OPS, ToySpace, toy_problem, toy_search, toy_space


def hand_search(toy, *, steps, lr, seed):
    """ProxylessNAS written out (as notebook 06's from-scratch cell): rejection sampling from
    softmax(alpha), the active path only, dL/dg_j = <dL/d(out), o_j(x)>, Eq. 4, gradient descent."""
    alpha = [torch.zeros(2) for _ in toy.ops]
    generator = torch.Generator().manual_seed(seed)
    tries_per_step, alphas = [], []
    for _ in range(steps):
        tries = []
        while not tries or toy.path_latency(tries[-1]) > toy.budget_ms:
            tries.append(tuple(int(torch.multinomial(torch.softmax(a, 0), 1, generator=generator))
                               for a in alpha))
        inputs, outputs = [toy.x], []
        for layer, i in enumerate(tries[-1]):
            outputs.append(inputs[-1] + toy.ops[layer][i](inputs[-1]))
            inputs.append(outputs[-1])
        loss = ((outputs[-1] - toy.target) ** 2).mean()
        upstream = torch.autograd.grad(loss, outputs)
        grads = []
        for layer, (a, up) in enumerate(zip(alpha, upstream)):
            with torch.no_grad():
                dl_dg = torch.stack([(op(inputs[layer]) * up).sum() for op in toy.ops[layer]])
            p = torch.softmax(a, 0)
            grads.append(dl_dg @ (p[:, None] * (torch.eye(2) - p[None, :])))
        alpha = [a - lr * g for a, g in zip(alpha, grads)]
        tries_per_step.append(tries)
        alphas.append([a.tolist() for a in alpha])
    return tries_per_step, alphas


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_library_search_equals_the_hand_written_one(seed):
    toy = toy_problem(seed=seed)
    trace = toy_search(toy, steps=12, lr=3.0, seed=seed)
    tries, alphas = hand_search(toy, steps=12, lr=3.0, seed=seed)
    assert trace.tries == tries
    np.testing.assert_allclose(trace.alphas, alphas, atol=1e-5)
    assert any(len(step) > 1 for step in trace.tries) or seed != 0  # rejections do happen
    assert all(toy.path_latency(path) <= toy.budget_ms for path in trace.paths)
    assert all(toy.path_latency(t) > toy.budget_ms for step in trace.tries for t in step[:-1])


def test_toy_search_moves_alpha_towards_the_path_that_made_the_data():
    """With the default toy, the most probable path within the budget is the teacher's."""
    for seed in range(4):
        toy = toy_problem(seed=seed)
        trace = toy_search(toy, steps=30, lr=3.0, seed=seed)
        p = [np.exp(a) / np.exp(a).sum() for a in np.array(trace.alphas[-1])]
        fits = [c for c in itertools.product(range(2), repeat=3)
                if toy.path_latency(c) <= toy.budget_ms]
        best = max(fits, key=lambda c: sum(math.log(p[l][i]) for l, i in enumerate(c)))
        assert best == toy.teacher_path
        assert trace.losses[-1] <= trace.losses[0] + 1e-9 or trace.paths[-1] == toy.teacher_path


def test_toy_problem_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b = toy_problem(seed=3), toy_problem(seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.x, b.x) and torch.equal(a.target, b.target)
    assert toy_problem().path_latency(toy_problem().teacher_path) == 5.0
    with pytest.raises(ValueError):
        toy_problem(teacher_path=(0, 1))


def test_toy_space_derives_like_a_search_space():
    space = toy_space()
    assert isinstance(space, ToySpace) and space.num_choices() == (2, 2, 2)
    probs = [[0.60, 0.40], [0.70, 0.30], [0.52, 0.48]]
    lat = torch.tensor([[0.30, 0.10], [0.25, 0.15], [0.20, 0.12]], dtype=torch.float64)
    assert space.op_index(derive_argmax(probs, space)) == [0, 0, 0]
    for budget in (0.48, 0.57, 0.62, 0.66, 0.72, 0.76, 0.9):
        fits = [c for c in itertools.product(range(2), repeat=3)
                if 0.1 + sum(float(lat[l, i]) for l, i in enumerate(c)) <= budget + 1e-12]
        brute = max(fits, key=lambda c: sum(math.log(probs[l][i]) for l, i in enumerate(c)))
        genotype = derive_under_budget(probs, lat, 0.1, budget, space=space)
        assert tuple(space.op_index(genotype)) == brute, budget
        assert genotype_latency(genotype, space, lat, 0.1) <= budget + 1e-12
    assert TOY_OPS == ("linear", "linear_tanh")

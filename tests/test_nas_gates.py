"""The binary-gate estimator (ProxylessNAS Eq. 4) against PyTorch autograd, the two-path rescale,
and the latency loss."""
import math

import pytest
import torch
import torch.nn.functional as F

from segnas_lite.nas import (ChainLayer, LatencyLossError, LatencyTableError, LayerSpec, MixedOp,
                             MixedOpStateError, expected_latency, latency_loss,
                             latency_rows_to_table, rescale_two_path_)

OPS5 = ("mbv3_3x3", "sep_3x3", "dil_3x3", "shuffle", "zero")


def sample_nonzero(mixed, seed):
    """Sample until the active path is not the zero op (a zero path gets no alpha gradient)."""
    generator = torch.Generator().manual_seed(seed)
    while mixed.names[mixed.sample(generator)] == "zero":
        pass


def make_layer(seed=0):
    """A residual layer (8 -> 8, stride 1) with 5 candidates, in float64, and non-uniform alpha."""
    torch.manual_seed(seed)
    mixed = MixedOp.from_spec(LayerSpec(8, 8, 1, OPS5)).double()
    with torch.no_grad():
        mixed.alpha.copy_(torch.randn(len(OPS5), dtype=torch.float64))
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    target = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    return mixed, x, target


def loss_fn(out, target):
    return ((out - target) ** 2).mean() + 0.1 * torch.tanh(out).sum()  # non-linear in out


def reference_gate_grads(mixed, x, target, active):
    """dL/dg_j from autograd: g is a one-hot leaf and the layer is x + sum_j g_j o_j(x)."""
    g = torch.zeros(len(mixed.names), dtype=torch.float64)
    g[active] = 1.0
    g.requires_grad_(True)
    out = x + sum(g[j] * op(x) for j, op in enumerate(mixed.candidates))
    (grad_g,) = torch.autograd.grad(loss_fn(out, target), g)
    return grad_g


def eq4(grad_g, p, involved):
    """dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i), over the involved indices (written out)."""
    grad = torch.zeros(len(grad_g), dtype=torch.float64)
    for a, i in enumerate(involved):
        for b, j in enumerate(involved):
            grad[i] += grad_g[j] * p[b] * (float(a == b) - p[a])
    return grad


@pytest.mark.parametrize("active", [0, 1, 3])
def test_full_v2_matches_autograd_reference(active):
    mixed, x, target = make_layer()
    grad_g = reference_gate_grads(mixed, x, target, active)
    expected = eq4(grad_g, F.softmax(mixed.alpha.detach(), 0), range(len(OPS5)))

    mixed.mode, mixed.estimator = "single", "full_v2"
    mixed.set_active(active)
    layer = ChainLayer(mixed, residual=True)
    loss_fn(layer(x), target).backward()
    assert torch.allclose(mixed.alpha.grad, expected, atol=1e-6, rtol=0)
    assert expected.abs().max() > 1e-4  # the check is not vacuous


def test_full_v2_keeps_weight_and_input_gradients():
    """The estimator must not change the usual gradients of the active op and of x."""
    mixed, x, target = make_layer()
    grads = []
    for mode in ("fixed", "single"):
        mixed.zero_grad(set_to_none=True)
        mixed.mode = mode
        mixed.set_active(2)
        xi = x.clone().requires_grad_(True)
        loss_fn(xi + mixed(xi), target).backward()
        grads.append([xi.grad] + [p.grad for p in mixed.candidates[2].parameters()])
    for fixed_grad, single_grad in zip(*grads):
        assert torch.allclose(fixed_grad, single_grad, atol=1e-12)


def test_alpha_gradient_with_frozen_weights():
    """An alpha-only step (weights frozen, input without grad) still gets the Eq. 4 gradient."""
    mixed, x, target = make_layer()
    expected = eq4(reference_gate_grads(mixed, x, target, 1), F.softmax(mixed.alpha.detach(), 0),
                   range(len(OPS5)))
    for p in mixed.candidates.parameters():
        p.requires_grad_(False)
    mixed.set_active(1)
    loss_fn(x + mixed(x), target).backward()
    assert torch.allclose(mixed.alpha.grad, expected, atol=1e-6, rtol=0)


def test_two_mode_matches_autograd_on_the_pair():
    mixed, x, target = make_layer(seed=1)
    mixed.mode, mixed.estimator = "single", "two"
    sample_nonzero(mixed, 5)
    active, other = mixed.pair
    assert active == mixed.active and active != other
    grad_g = reference_gate_grads(mixed, x, target, active)
    q = F.softmax(mixed.alpha.detach()[[active, other]], 0)
    expected = eq4(grad_g, q, (active, other))

    loss_fn(x + mixed(x), target).backward()
    assert torch.allclose(mixed.alpha.grad, expected, atol=1e-6, rtol=0)
    untouched = [k for k in range(len(OPS5)) if k not in (active, other)]
    assert torch.count_nonzero(mixed.alpha.grad[untouched]) == 0


def test_two_mode_needs_a_sampled_pair():
    mixed, x, _ = make_layer()
    mixed.mode, mixed.estimator = "single", "two"
    mixed.set_active(0)
    with pytest.raises(MixedOpStateError, match="sample"):
        mixed(x)


def test_rescale_keeps_unsampled_probabilities():
    alpha = torch.tensor([0.3, -1.0, 0.8, 0.1, -0.4])
    p_before = F.softmax(alpha, 0)
    pair = (2, 0)
    old = alpha[list(pair)].clone()
    alpha[2] += 0.7  # what an optimizer step on the pair could do
    alpha[0] -= 0.2
    q_after_step = F.softmax(alpha[list(pair)], 0)
    assert not torch.allclose(F.softmax(alpha, 0)[[1, 3, 4]], p_before[[1, 3, 4]])
    rescale_two_path_(alpha, pair, old)
    p_after = F.softmax(alpha, 0)
    assert torch.allclose(p_after[[1, 3, 4]], p_before[[1, 3, 4]], atol=1e-7)
    assert torch.allclose(p_after[list(pair)].sum(), p_before[list(pair)].sum(), atol=1e-7)
    assert torch.allclose(F.softmax(alpha[list(pair)], 0), q_after_step)  # the step's effect stays


def test_two_mode_step_then_rescale_on_a_layer():
    mixed, x, target = make_layer(seed=2)
    mixed.mode, mixed.estimator = "single", "two"
    sample_nonzero(mixed, 0)
    untouched = [k for k in range(len(OPS5)) if k not in mixed.pair]
    p_before = mixed.probabilities().detach()[untouched]
    optimizer = torch.optim.Adam([mixed.alpha], lr=0.5, betas=(0.0, 0.999))
    loss_fn(x + mixed(x), target).backward()
    optimizer.step()
    mixed.rescale_after_step()
    assert torch.allclose(mixed.probabilities().detach()[untouched], p_before, atol=1e-9)
    mixed.rescale_after_step()  # a second call is a no-op
    assert torch.allclose(mixed.probabilities().detach()[untouched], p_before, atol=1e-9)


@pytest.mark.parametrize("estimator", ["full_v2", "two"])
def test_sampled_zero_op_gives_no_alpha_update(estimator):
    mixed, x, target = make_layer()
    mixed.mode, mixed.estimator = "single", estimator
    zero = OPS5.index("zero")
    if estimator == "two":
        generator = torch.Generator().manual_seed(0)
        while mixed.sample(generator) != zero:
            pass
    else:
        mixed.set_active(zero)
    layer = ChainLayer(mixed, residual=True)
    xi = x.clone().requires_grad_(True)
    out = layer(xi)
    assert torch.equal(out, xi)  # the layer is the identity
    loss_fn(out, target).backward()
    assert mixed.alpha.grad is None
    assert all(p.grad is None for p in mixed.candidates.parameters())


def test_expected_latency_value_and_masking():
    probs = [torch.tensor([0.5, 0.5]), torch.tensor([0.2, 0.3, 0.5])]
    table = latency_rows_to_table([[1.0, 3.0], [2.0, 4.0, 6.0]])
    assert math.isnan(table[0, 2])
    e = expected_latency(probs, table, fixed=10.0)
    assert e.item() == pytest.approx(10.0 + 2.0 + (0.4 + 1.2 + 3.0))
    bad = table.clone()
    bad[1, 1] = float("inf")
    with pytest.raises(LatencyTableError, match="layer 1"):
        expected_latency(probs, bad, fixed=10.0)
    with pytest.raises(LatencyTableError, match="layers"):
        expected_latency(probs[:1], table, fixed=10.0)


@pytest.mark.parametrize("form", ["mul_log", "additive"])
def test_latency_loss_pushes_probability_away_from_slow_ops(form):
    alphas = [torch.zeros(3, requires_grad=True) for _ in range(2)]
    table = torch.tensor([[5.0, 10.0, 20.0], [8.0, 8.0, 30.0]])  # op 2 is the slow one
    ce = torch.tensor(1.3)
    optimizer = torch.optim.SGD(alphas, lr=1.0)
    p0 = [F.softmax(a, 0).detach() for a in alphas]
    for _ in range(5):
        optimizer.zero_grad()
        probs = [F.softmax(a, 0) for a in alphas]
        loss = latency_loss(ce, expected_latency(probs, table, fixed=12.0), budget=30.0, form=form)
        loss.backward()
        assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in alphas)
        assert all(a.grad[2] > 0 for a in alphas)  # gradient descent lowers the slow op's alpha
        optimizer.step()
    for a, p in zip(alphas, p0):
        p_now = F.softmax(a, 0).detach()
        assert p_now[2] < p[2] and p_now[0] > p[0]


def test_latency_loss_forms_and_errors():
    ce, e = torch.tensor(2.0), torch.tensor(40.0)
    assert latency_loss(ce, e, budget=30.0).item() == pytest.approx(
        0.2 * 2.0 * (math.log(40.0) / math.log(30.0)) ** 0.3)
    assert latency_loss(ce, e, budget=30.0, form="additive").item() == pytest.approx(
        2.0 + 0.1 * 10.0 / 30.0)
    with pytest.raises(LatencyLossError, match="ms"):
        latency_loss(ce, torch.tensor(0.5), budget=0.8)
    with pytest.raises(LatencyLossError, match="form"):
        latency_loss(ce, e, budget=30.0, form="quadratic")


def latency_grad(form, elat_value, budget=30.0, lam=0.1):
    elat = torch.tensor(elat_value, requires_grad=True)
    latency_loss(torch.tensor(1.0), elat, budget=budget, form=form, lam=lam).backward()
    return elat.grad.item()


def test_hinge_is_flat_inside_the_budget_and_pulls_above_it():
    assert latency_loss(torch.tensor(2.0), torch.tensor(20.0), budget=30.0, form="hinge").item() == 2.0
    assert latency_loss(torch.tensor(2.0), torch.tensor(45.0), budget=30.0, form="hinge",
                        lam=0.2).item() == pytest.approx(2.0 + 0.2 * 0.5)
    assert latency_grad("hinge", 20.0) == 0.0          # inside: only the hard constraint acts
    assert latency_grad("hinge", 40.0) == pytest.approx(0.1 / 30.0)
    # mul_log and additive keep pulling far below the budget: the road to collapse
    assert latency_grad("mul_log", 20.0) > 0 and latency_grad("additive", 20.0) > 0


def test_target_pulls_towards_the_budget_from_both_sides_and_none_not_at_all():
    assert latency_grad("target", 20.0) == pytest.approx(-0.1 / 30.0)  # too fast: pushed up
    assert latency_grad("target", 40.0) == pytest.approx(0.1 / 30.0)
    assert latency_loss(torch.tensor(2.0), torch.tensor(24.0), budget=30.0, form="target",
                        lam=0.3).item() == pytest.approx(2.0 + 0.3 * 0.2)
    assert latency_loss(torch.tensor(2.0), torch.tensor(99.0), budget=30.0, form="none").item() == 2.0
    assert latency_grad("none", 99.0) == 0.0

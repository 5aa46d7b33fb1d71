"""The ranking diagnostic: BN recalibration, subnets spread over latency, rank agreement."""
import numpy as np
import pytest
import torch
from torch import nn

from segnas_lite.data import SyntheticPortraits
from segnas_lite.nas import Genotype, SegSuperNet, get_space
from segnas_lite.nas.rank import (calibration_batches, noise_ceiling, rank_agreement,
                                  recalibrate_bn, spread_over_latency, supernet_estimate)


def _bn_stats(model):
    return [(m.running_mean.clone(), m.running_var.clone()) for m in model.modules()
            if isinstance(m, nn.BatchNorm2d)]


def test_recalibration_changes_the_statistics_and_restores_mode_and_momentum():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.3), nn.ReLU())
    model.eval()
    before = _bn_stats(model)
    batches = [torch.randn(4, 3, 8, 8) * 3 + 2 for _ in range(3)]
    seen = recalibrate_bn(model, batches)
    assert seen == 12
    after = _bn_stats(model)
    assert not torch.allclose(before[0][0], after[0][0])
    assert not model.training and model[1].momentum == 0.3
    # the statistics are the plain average over all batches (momentum=None while recalibrating)
    with torch.no_grad():
        feats = torch.cat([model[0](b) for b in batches])
    per_batch_means = torch.stack([model[0](b).mean(dim=(0, 2, 3)) for b in batches]).detach()
    assert torch.allclose(after[0][0], per_batch_means.mean(0), atol=1e-5)
    assert feats.shape[0] == 12


def test_recalibration_restores_training_mode_too():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2))
    model.train()
    recalibrate_bn(model, [(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4))])
    assert model.training


def test_kendall_tau_on_a_known_ranking():
    assert rank_agreement([1, 2, 3, 4], [10, 20, 30, 40]).kendall == pytest.approx(1.0)
    assert rank_agreement([1, 2, 3, 4], [4, 3, 2, 1]).kendall == pytest.approx(-1.0)
    # one swapped pair out of six: (5 concordant - 1 discordant) / 6
    agreement = rank_agreement([1, 2, 3, 4], [1, 3, 2, 4])
    assert agreement.kendall == pytest.approx(4 / 6)
    assert agreement.spearman == pytest.approx(0.8)
    noisy = rank_agreement(list(range(12)), [0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10], bootstrap=300)
    assert 0.5 < noisy.kendall_low < noisy.kendall <= noisy.kendall_high <= 1.0


@pytest.mark.parametrize("statistic", ["kendall", "spearman"])
def test_noise_ceiling_predicts_a_perfect_scores_agreement_with_the_mean_of_noisy_seeds(statistic):
    """Simulated: true quality t, two noisy trainings t + e; the ceiling computed from the
    seed-against-seed agreement alone matches what t itself reaches against their mean."""
    from scipy import stats
    rng = np.random.default_rng(0)
    true = rng.normal(size=3000)
    seed0, seed1 = (true + rng.normal(scale=0.8, size=true.size) for _ in range(2))
    measure = stats.kendalltau if statistic == "kendall" else stats.spearmanr
    between = measure(seed0, seed1).statistic
    perfect = measure(true, (seed0 + seed1) / 2).statistic
    assert noise_ceiling(between, seeds=2, statistic=statistic) == pytest.approx(perfect, abs=0.02)
    assert between < perfect  # the ceiling is well above the seed-against-seed row
    assert noise_ceiling(1.0, seeds=2) == pytest.approx(1.0)
    assert noise_ceiling(-0.2, seeds=2) == 0.0  # a truth that is noise: nothing can rank it
    assert noise_ceiling(0.4, seeds=1) < noise_ceiling(0.4, seeds=3)  # more seeds, a steadier truth
    with pytest.raises(ValueError):
        noise_ceiling(0.4, seeds=0)


def test_rank_agreement_refuses_too_few_values():
    with pytest.raises(ValueError):
        rank_agreement([1, 2], [1, 2])


def test_subnets_are_spread_over_the_latency_range_under_the_budget():
    space = get_space("tiny")

    def latency(genotype: Genotype) -> float:  # a made-up additive latency per op index
        return float(sum(space.op_index(genotype))) + 1.0

    picked = spread_over_latency(space, latency, budget_ms=8.0, count=5, pool=500, seed=1)
    assert len({g.ops for g in picked}) == 5
    values = [latency(g) for g in picked]
    assert all(v <= 8.0 for v in values)
    assert values == sorted(values) and values[-1] - values[0] >= 4.0


def test_supernet_estimate_leaves_the_supernet_untouched():
    torch.manual_seed(0)
    space = get_space("tiny")
    net = SegSuperNet(space, num_classes=2)
    data = SyntheticPortraits(length=8, image_size=64, seed=0)
    before = _bn_stats(net)
    genotype = space.random_genotype(0)
    plain = supernet_estimate(net, genotype, data, num_classes=2, batch_size=4)
    recal = supernet_estimate(net, genotype, data, num_classes=2, batch_size=4,
                              calibration=calibration_batches(data, images=8, batch_size=4))
    assert 0.0 <= plain <= 1.0 and 0.0 <= recal <= 1.0
    assert all(torch.equal(a[0], b[0]) for a, b in zip(before, _bn_stats(net)))

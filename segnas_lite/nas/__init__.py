"""ProxylessNAS for segmentation: candidate ops, search spaces, the super-net, binary gates, derivation.

Typical use::

    space = seed_space()
    net = SegSuperNet(space, num_classes=2)
    net.set_mode("fixed"); net.sample_genotype(uniform=True)   # warm-up: train weights of one path
    net.set_mode("single"); net.sample_genotype()               # search: alpha gets the Eq. 4 gradient
    child = build_child(derive_argmax(net.probabilities(), space), num_classes=2)
"""
from segnas_lite.nas.derive import InfeasibleBudgetError, derive_argmax, derive_under_budget, genotype_latency
from segnas_lite.nas.gates import (BinaryGateGrad, LatencyLossError, LatencyTableError, binary_gate,
                    expected_latency, latency_loss, latency_rows_to_table, rescale_two_path_)
from segnas_lite.nas.ops import MBV3_EXPANSION, OPS, PROXYLESS_OPS, SEED_OPS, build_op, is_zero
from segnas_lite.nas.space import (SPACES, Genotype, GenotypeError, LayerSpec, MacroConfig, SearchSpace,
                    SpaceError, chain_space, get_space, pad_rows, proxyless_space, seed_space,
                    tiny_space)
from segnas_lite.nas.supernet import (ALPHA_INIT_STD, ChainLayer, ChildNet, MixedOp, MixedOpStateError,
                       SegMacro, SegSuperNet, build_child)

__all__ = [
    "ALPHA_INIT_STD", "BinaryGateGrad", "ChainLayer", "ChildNet", "Genotype", "GenotypeError",
    "InfeasibleBudgetError", "LatencyLossError", "LatencyTableError", "LayerSpec", "MBV3_EXPANSION",
    "MacroConfig", "MixedOp", "MixedOpStateError", "OPS", "PROXYLESS_OPS", "SEED_OPS", "SPACES",
    "SearchSpace", "SegMacro", "SegSuperNet", "SpaceError", "binary_gate", "build_child",
    "build_op", "chain_space", "derive_argmax", "derive_under_budget", "expected_latency",
    "genotype_latency", "get_space", "is_zero", "latency_loss", "latency_rows_to_table",
    "pad_rows", "proxyless_space", "rescale_two_path_", "seed_space", "tiny_space",
]

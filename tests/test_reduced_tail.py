"""The reduced tail matches torchvision's: keys, shapes and output.

torchvision is not a dependency (it does not import beside this torch), so the reference below is
rebuilt here from torchvision's published architecture definition (``torchvision/models/
mobilenetv3.py``: ``_mobilenet_v3_conf`` with ``_reduced_tail=True, _dilated=True``, and the
module structure of ``InvertedResidual``, ``Conv2dNormActivation`` and ``SqueezeExcitation``),
written independently of the package's own code: plain ``nn.Sequential`` stacks with the same
attribute names, so its state dict has torchvision's keys.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from segnas_lite.models.mobilenetv3 import mobilenet_v3_large, mobilenet_v3_small

# torchvision's bneck rows: (input, kernel, expanded, out, use_se, activation, stride), with
# "//R" marking the values ``_mobilenet_v3_conf`` divides by ``reduce_divider``.
R = "//R"
LARGE = [(16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
         (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
         (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
         (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
         (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
         (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
         (112, 5, 672, (160, R), True, "HS", 2),               # C4: expansion NOT reduced
         ((160, R), 5, (960, R), (160, R), True, "HS", 1),
         ((160, R), 5, (960, R), (160, R), True, "HS", 1)]
SMALL = [(16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2),
         (24, 3, 88, 24, False, "RE", 1), (24, 5, 96, 40, True, "HS", 2),
         (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
         (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1),
         (48, 5, 288, (96, R), True, "HS", 2),                  # C4: expansion NOT reduced
         ((96, R), 5, (576, R), (96, R), True, "HS", 1),
         ((96, R), 5, (576, R), (96, R), True, "HS", 1)]
DILATED_ROWS = {"large": 12, "small": 8}  # rows from C4 on are dilated (stride 1, dilation 2)


def _value(entry, divider: int) -> int:
    return entry[0] // divider if isinstance(entry, tuple) else entry


def _divisible(value: float, divisor: int = 8) -> int:
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1,
             act: type | None = nn.Hardswish) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2 * dilation, dilation, groups,
                        bias=False), nn.BatchNorm2d(cout, eps=0.001, momentum=0.01)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class _SE(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = _divisible(channels // 4)
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        scale = nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(scale))))
        return scale * x


class _Block(nn.Module):
    def __init__(self, cin, kernel, expanded, cout, use_se, act, stride, dilation) -> None:
        super().__init__()
        act_layer = nn.Hardswish if act == "HS" else nn.ReLU
        # torchvision decides the shortcut on the *table's* stride: the dilated C4 block keeps
        # none even where it keeps the resolution and the widths match (reduced Small: 48 -> 48)
        self.residual = stride == 1 and cin == cout
        conv_stride = 1 if dilation > 1 else stride
        layers = [] if expanded == cin else [_conv_bn(cin, expanded, 1, act=act_layer)]
        layers.append(_conv_bn(expanded, expanded, kernel, conv_stride, dilation, expanded,
                               act_layer))
        if use_se:
            layers.append(_SE(expanded))
        layers.append(_conv_bn(expanded, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


def reference_features(arch: str) -> nn.Sequential:
    """torchvision's ``mobilenet_v3_<arch>(_reduced_tail=True, _dilated=True).features``."""
    rows = LARGE if arch == "large" else SMALL
    layers: list[nn.Module] = [_conv_bn(3, 16, 3, 2)]
    for index, (cin, kernel, expanded, cout, use_se, act, stride) in enumerate(rows):
        dilation = 2 if index >= DILATED_ROWS[arch] else 1
        layers.append(_Block(_divisible(_value(cin, 2)), kernel, _divisible(_value(expanded, 2)),
                             _divisible(_value(cout, 2)), use_se, act, stride, dilation))
    last_in = _divisible(_value(rows[-1][3], 2))
    layers.append(_conv_bn(last_in, 6 * last_in, 1))
    return nn.Sequential(*layers)


def _randomise(module: nn.Module) -> None:
    """Random weights and BatchNorm statistics, so a wrong wiring cannot hide behind zeros."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype.is_floating_point:
                if name.endswith("running_var"):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
                else:
                    tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)


@pytest.mark.parametrize("arch, builder, first_tail_expansion, last_conv",
                         [("large", mobilenet_v3_large, 672, 480),
                          ("small", mobilenet_v3_small, 288, 288)])
def test_reduced_tail_has_torchvisions_keys_shapes_and_output(arch, builder, first_tail_expansion,
                                                              last_conv):
    reference = reference_features(arch).eval()
    ours = builder(reduced_tail=True).eval()
    ref_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert our_shapes == ref_shapes
    first_tail = len(LARGE if arch == "large" else SMALL) - 2  # features index of C4
    assert ours[first_tail].block[0][0].out_channels == first_tail_expansion
    assert ours.out_channels == last_conv
    _randomise(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    images = torch.randn(2, 3, 96, 80, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        low, high = ours(images)
        expected_high = reference(images)
        expected_low = reference[:ours.low_index + 1](images)
    assert high.shape == expected_high.shape == (2, last_conv, 6, 5)  # output stride 16
    torch.testing.assert_close(high, expected_high, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(low, expected_low, rtol=1e-4, atol=1e-4)

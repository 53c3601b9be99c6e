"""The in-kernel e4m3 codec (kernels/e4m3.py) against torch's float8_e4m3fn.

Every one of the 256 bit patterns decodes to torch's value (NaN for the two NaN codes), and
float32 inputs (clamped to +-448: normal, subnormal, ties, signed zero) encode to torch's
round-to-nearest-even bytes. On the CPU the interpreter runs the software path (what sm80/sm86
GPUs run); on a GPU both the hardware conversion and the software path are checked.
"""

import pytest
import torch
import triton
import triton.language as tl

from dsv32_plugin.kernels.e4m3 import e4m3_bits, e4m3_value


@triton.jit
def _roundtrip_kernel(x_ptr, bits_in_ptr, bits_out_ptr, value_out_ptr, n, FP8_HW: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < n
    x = tl.load(x_ptr + offs, mask=ok, other=0.0)
    tl.store(bits_out_ptr + offs, e4m3_bits(x, FP8_HW), mask=ok)
    bits = tl.load(bits_in_ptr + offs, mask=ok, other=0)
    tl.store(value_out_ptr + offs, e4m3_value(bits, FP8_HW), mask=ok)


def _inputs(device):
    g = torch.Generator().manual_seed(0)
    codes = torch.arange(256, dtype=torch.uint8).view(torch.float8_e4m3fn).float()
    finite = codes[torch.isfinite(codes)]
    ties = (finite[:-1] + finite[1:]) / 2  # halfway between neighbours: round to even
    x = torch.cat([finite, ties, torch.randn(4096, generator=g) * 40, torch.randn(1024, generator=g) * 0.01,
                   torch.tensor([-0.0, 448.0, -448.0, 2.0 ** -10, -(2.0 ** -9) * 0.5])])
    return x.clamp(-448, 448).to(device)


def _check(device, fp8_hw):
    x = _inputs(device)
    n = max(x.numel(), 256)
    bits_in = torch.arange(256, dtype=torch.uint8, device=device).repeat(-(-n // 256))[:n]
    x_pad = torch.cat([x, x.new_zeros(n - x.numel())])
    bits_out = torch.empty(n, dtype=torch.uint8, device=device)
    values = torch.empty(n, dtype=torch.float32, device=device)
    _roundtrip_kernel[(triton.cdiv(n, 256),)](x_pad, bits_in, bits_out, values, n, FP8_HW=fp8_hw, BLOCK=256)
    expected_bits = x_pad.to(torch.float8_e4m3fn).view(torch.uint8)
    assert torch.equal(bits_out, expected_bits)
    expected = bits_in.view(torch.float8_e4m3fn).float()
    same = (values == expected) | (torch.isnan(values) & torch.isnan(expected))
    assert same.all() and torch.equal(torch.signbit(values[~torch.isnan(values)]),
                                      torch.signbit(expected[~torch.isnan(expected)]))


def test_software_codec_equals_torch_cpu():
    if torch.cuda.is_available():
        pytest.skip("CPU interpreter case")
    _check("cpu", fp8_hw=False)


@pytest.mark.gpu
@pytest.mark.parametrize("fp8_hw", [True, False], ids=["hardware", "software"])
def test_codec_equals_torch_gpu(fp8_hw):
    _check("cuda", fp8_hw)

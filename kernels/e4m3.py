"""FP8 e4m3 (``float8_e4m3fn``) inside the Triton kernels, with and without FP8 hardware.

Every FP8 tensor a kernel reads or writes is passed as its uint8 bytes. With ``FP8_HW`` (sm89
and later: ``launch_target(device).fp8_hardware``) the bytes are bitcast to ``tl.float8e4nv``
and converted by the hardware. Without it -- sm80/sm86, where Triton rejects the fp8e4nv type
outright ("type fp8e4nv not supported in this architecture"), and the CPU interpreter -- the
same functions encode and decode the bits with integer arithmetic. Both give the same bytes
and values as torch's ``float8_e4m3fn`` (round to nearest even, saturated to +-448 by the
callers, no infinities; subnormals below 2^-6 in steps of 2^-9). CPU tests run the software
path against the float32 references; GPU tests run the hardware one.

e4m3 bits: ``s eeee mmm`` with exponent bias 7; value ``(-1)^s * 2^(e-7) * 1.mmm`` for e > 0,
``(-1)^s * 2^-6 * 0.mmm`` for e = 0; ``s 1111 111`` is NaN.
"""

import triton
import triton.language as tl


@triton.jit
def _round_to_e4m3(x):
    """Float32 ``x`` (|x| <= 448) rounded to the nearest e4m3 value, ties to even, still float32."""
    a = tl.abs(x)
    bits = a.to(tl.int32, bitcast=True)
    # keep 3 mantissa bits: add half an ulp (minus one when the kept lsb is even), truncate
    normal = ((bits + 0x7FFFF + ((bits >> 20) & 1)) & -0x100000).to(tl.float32, bitcast=True)
    # below 2^-6 e4m3 is subnormal with spacing 2^-9: round a * 512 to an integer (1.5 * 2^23 trick)
    subnormal = ((a * 512.0 + 12582912.0) - 12582912.0) * 0.001953125
    return tl.where(a >= 0.015625, normal, subnormal)


@triton.jit
def e4m3_bits(x, FP8_HW: tl.constexpr):
    """uint8 e4m3 bits of float32 ``x``, already clamped to [-448, 448]."""
    if FP8_HW:
        return x.to(tl.float8e4nv).to(tl.uint8, bitcast=True)
    else:
        r = _round_to_e4m3(x)
        bits = r.to(tl.int32, bitcast=True)
        normal = ((((bits >> 23) & 0xFF) - 120) << 3) | ((bits >> 20) & 7)  # rebias 127 -> 7
        subnormal = (r * 512.0).to(tl.int32)  # exact: r is a multiple of 2^-9 below 2^-6
        magnitude = tl.where(r >= 0.015625, normal, subnormal)
        sign = (x.to(tl.int32, bitcast=True) >> 24) & 0x80  # keeps -0.0
        return (magnitude | sign).to(tl.uint8)


@triton.jit
def e4m3_value(bits, FP8_HW: tl.constexpr):
    """Float32 value of uint8 e4m3 ``bits``."""
    if FP8_HW:
        return bits.to(tl.float8e4nv, bitcast=True).to(tl.float32)
    else:
        b = bits.to(tl.int32)
        exponent = (b >> 3) & 0xF
        normal = (((exponent + 120) << 23) | ((b & 7) << 20)).to(tl.float32, bitcast=True)
        magnitude = tl.where(exponent == 0, (b & 7).to(tl.float32) * 0.001953125, normal)
        magnitude = tl.where((b & 0x7F) == 0x7F, float("nan"), magnitude)
        # the sign as a bit, not a negation: the GPU compiler folds -0.0 to +0.0
        return (magnitude.to(tl.int32, bitcast=True) | ((b & 0x80) << 24)).to(tl.float32, bitcast=True)


@triton.jit
def e4m3_dot_operand(bits, FP8_HW: tl.constexpr, DOT_FP32: tl.constexpr):
    """A ``tl.dot`` operand of uint8 e4m3 ``bits``: FP8 on FP8 hardware, else fp16 (e4m3 values are
    exact in fp16; pre-sm89 tensor cores take fp16), or float32 in the interpreter."""
    if FP8_HW:
        return bits.to(tl.float8e4nv, bitcast=True)
    elif DOT_FP32:
        return e4m3_value(bits, False)
    else:
        return e4m3_value(bits, False).to(tl.float16)

"""``ScalarType`` / ``scalar_types``: the sub-byte and biased number formats the host's quantization
code names at import (GPTQ/AWQ/Marlin tables). Data only; no kernel uses them on the V3.2 path.

A format is ``exponent`` + ``mantissa`` bits plus an optional sign bit; integers have no
exponent. A stored integer ``s`` means ``s - bias``. Floats use the standard exponent bias
``2^(exponent-1) - 1``; ``nan_repr`` says which codes are NaN, which decides the largest
finite value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class NanRepr(enum.Enum):
    NONE = 0  # no NaN codes: the all-ones exponent holds ordinary values
    IEEE_754 = 1  # exponent all ones and mantissa non-zero
    EXTD_RANGE_MAX_MIN = 2  # only exponent and mantissa all ones (e.g. float8_e4m3fn)


@dataclass(frozen=True)
class ScalarType:
    exponent: int
    mantissa: int
    signed: bool
    bias: int
    _finite_values_only: bool = False
    nan_repr: NanRepr = NanRepr.IEEE_754

    @property
    def size_bits(self) -> int:
        return self.exponent + self.mantissa + int(self.signed)

    def is_signed(self) -> bool:
        return self.signed

    def is_floating_point(self) -> bool:
        return self.exponent != 0

    def is_integer(self) -> bool:
        return self.exponent == 0

    def has_bias(self) -> bool:
        return self.bias != 0

    def has_infs(self) -> bool:
        return not self._finite_values_only

    def has_nans(self) -> bool:
        return self.nan_repr != NanRepr.NONE

    def is_ieee_754(self) -> bool:
        return self.nan_repr == NanRepr.IEEE_754 and not self._finite_values_only

    def _float_max(self) -> float:
        exponent_bias = (1 << (self.exponent - 1)) - 1
        top_exponent = (1 << self.exponent) - 1  # all ones
        mantissa_max = (1 << self.mantissa) - 1
        if self.nan_repr == NanRepr.IEEE_754:  # all-ones exponent is inf/NaN
            top_exponent -= 1
        elif self.nan_repr == NanRepr.EXTD_RANGE_MAX_MIN:  # only all-ones mantissa is NaN
            mantissa_max -= 1
        return (1 + mantissa_max / (1 << self.mantissa)) * 2.0 ** (top_exponent - exponent_bias)

    def max(self):
        if self.is_floating_point():
            return self._float_max()
        return (1 << self.mantissa) - 1 - self.bias

    def min(self):
        if self.is_floating_point():
            return -self._float_max()
        return (-(1 << self.mantissa) if self.signed else 0) - self.bias

    @property
    def id(self) -> int:
        """Fields packed into an int64, as custom ops receive the type (exponent, mantissa: 8 bits
        each; signed: 1; bias: 32; finite-only: 1; nan_repr: 8)."""
        value, offset = 0, 0
        for field, width in ((self.exponent, 8), (self.mantissa, 8), (int(self.signed), 1),
                             (self.bias, 32), (int(self._finite_values_only), 1), (self.nan_repr.value, 8)):
            value |= (field & ((1 << width) - 1)) << offset
            offset += width
        return value

    @property
    def name(self) -> str:
        if self.is_floating_point():
            flags = "" if self.is_ieee_754() else ("f" if self._finite_values_only else "") + (
                "n" if self.nan_repr != NanRepr.NONE else "")
            return f"float{self.size_bits}_e{self.exponent}m{self.mantissa}{flags}"
        return f"{'int' if self.signed else 'uint'}{self.size_bits}" + (f"b{self.bias}" if self.bias else "")

    def __str__(self) -> str:
        return self.name

    @classmethod
    def int_(cls, size_bits: int, bias: int | None) -> "ScalarType":
        return cls(0, size_bits - 1, True, bias or 0)

    @classmethod
    def uint(cls, size_bits: int, bias: int | None) -> "ScalarType":
        return cls(0, size_bits, False, bias or 0)

    @classmethod
    def float_IEEE754(cls, exponent: int, mantissa: int) -> "ScalarType":
        return cls(exponent, mantissa, True, 0)

    @classmethod
    def float_(cls, exponent: int, mantissa: int, finite_values_only: bool, nan_repr: NanRepr) -> "ScalarType":
        return cls(exponent, mantissa, True, 0, finite_values_only, nan_repr)


class scalar_types:
    int4 = ScalarType.int_(4, None)
    uint4 = ScalarType.uint(4, None)
    int8 = ScalarType.int_(8, None)
    uint8 = ScalarType.uint(8, None)
    float8_e4m3fn = ScalarType.float_(4, 3, True, NanRepr.EXTD_RANGE_MAX_MIN)
    float8_e5m2 = ScalarType.float_IEEE754(5, 2)
    float16_e8m7 = ScalarType.float_IEEE754(8, 7)
    float16_e5m10 = ScalarType.float_IEEE754(5, 10)
    float6_e3m2f = ScalarType.float_(3, 2, True, NanRepr.NONE)
    float4_e2m1f = ScalarType.float_(2, 1, True, NanRepr.NONE)
    uint2b2 = ScalarType.uint(2, 2)
    uint3b4 = ScalarType.uint(3, 4)
    uint4b8 = ScalarType.uint(4, 8)
    uint8b128 = ScalarType.uint(8, 128)
    bfloat16 = float16_e8m7
    float16 = float16_e5m10

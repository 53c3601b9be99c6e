"""Inputs and comparisons for the FP8 indexer encoders (Hadamard rotation, then e4m3 per row)."""

import torch


def grid_rows(gen: torch.Generator, shape, dtype=torch.float32) -> torch.Tensor:
    """Rows whose ±1 sums are exact in float32, so the rotation gives the same bits in any summation
    order: integers in [-64, 64] / 16 (exact in bf16), times a power of two per row spanning 31 octaves."""
    ints = torch.randint(-64, 65, shape, generator=gen).float() / 16
    octave = torch.randint(-20, 11, shape[:-1], generator=gen).float()
    return (ints * torch.exp2(octave)[..., None]).to(dtype)


def crafted_rows_d64(dtype=torch.float32) -> torch.Tensor:
    """D = 64 rows (D^-0.5 = 1/8 exact) whose rotations hit the quantiser's edges exactly:
    all zero; one-hot rotating to ±448 everywhere (amax / 448 a power of two: scale 1, not 2);
    two-hot rotating to ±448 and ±272 (272: a tie between the e4m3 codes 256 and 288, to even)."""
    rows = torch.zeros(3, 64)
    rows[1, 5] = 8 * 448.0
    rows[2, 0], rows[2, 1] = 2880.0, 704.0  # (a + b) / 8 = 448, (a - b) / 8 = 272
    return rows.to(dtype)


def fp8_nan_free(codes: torch.Tensor) -> bool:
    """No e4m3 NaN code (s 1111 111) among float8_e4m3fn ``codes``."""
    return not ((codes.view(torch.uint8) & 0x7F) == 0x7F).any()


def assert_fp8_rows_close(got_codes, got_scale, want_codes, want_scale, min_equal=0.99) -> None:
    """Rows rotated in another summation order than the reference's.

    A rotated value one float32 ulp off the reference's can round to the neighbouring e4m3 code,
    and a row whose amax sits on a power of two to the neighbouring scale: each dequantised value
    must be within one e4m3 step of the reference's (1/8 of it, or 2^-9 of the larger scale
    below the normal range), and at least ``min_equal`` of the codes identical.
    """
    got = got_codes.float() * got_scale[..., None]
    want = want_codes.float() * want_scale[..., None]
    step = want.abs() / 8 + torch.maximum(got_scale, want_scale)[..., None] * 2**-9
    assert ((got - want).abs() <= step).all()
    assert (got_codes.view(torch.uint8) == want_codes.view(torch.uint8)).float().mean() >= min_equal

"""The indexer's Hadamard rotation (dsa_spec.md §2): ``x @ H_D / sqrt(D)`` on the last dim, in torch.

The float32 definition. The FP8 indexer rotates inside its Triton encoders (``hadamard_fp8.py``:
the q quantiser and the index-K store); torch runs this for the exact float32 indexer and in the
references. Both take the ±1 sums first and scale by ``D^-0.5`` once, so values whose sums are
exact in float32 rotate to the same bits in either.
"""

import functools

import torch


@functools.lru_cache(maxsize=16)
def sylvester_matrix(dim: int, device: torch.device | None = None) -> torch.Tensor:
    """±1 float32 ``[D, D]`` Sylvester Walsh-Hadamard matrix, ``H[i, j] = (-1)^popcount(i & j)``.

    Cached (read-only): built per call it cost ~100 us of a decode step on the H200.
    """
    if dim < 1 or dim & (dim - 1):
        raise ValueError(f"Hadamard rotation needs a power-of-two last dim, got {dim}")
    hadamard = torch.ones(1, 1, dtype=torch.float32, device=device)
    while hadamard.shape[0] < dim:
        hadamard = torch.cat([torch.cat([hadamard, hadamard], 1), torch.cat([hadamard, -hadamard], 1)], 0)
    return hadamard


def hadamard_rotate(x: torch.Tensor) -> torch.Tensor:
    """``(x @ H_D) * D^-0.5`` on the last dim, computed in fp32, returned in x's dtype."""
    dim = x.shape[-1]
    return ((x.float() @ sylvester_matrix(dim, x.device)) * dim**-0.5).to(x.dtype)

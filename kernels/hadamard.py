"""The indexer's Hadamard rotation (dsa_spec.md §2): ``x @ H_D / sqrt(D)`` on the last dim.

Production code (the model rotates the indexer's q and k with it every forward) and the
float32 definition at once: the matrix is built in float32 and the product taken in float32.
"""

import math

import torch


def hadamard_matrix(dim: int, device=None) -> torch.Tensor:
    """``H_D / sqrt(D)`` float32 ``[D, D]`` (Sylvester Walsh-Hadamard, D a power of two)."""
    if dim < 1 or dim & (dim - 1):
        raise ValueError(f"Hadamard rotation needs a power-of-two last dim, got {dim}")
    hadamard = torch.ones(1, 1, dtype=torch.float32, device=device)
    while hadamard.shape[0] < dim:
        hadamard = torch.cat([torch.cat([hadamard, hadamard], 1), torch.cat([hadamard, -hadamard], 1)], 0)
    return hadamard / math.sqrt(dim)


def hadamard_rotate(x: torch.Tensor, matrix: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ H_D / sqrt(D)`` on the last dim, computed in fp32, returned in x's dtype.

    ``matrix``: ``hadamard_matrix(D)`` built once by the caller (the model keeps it), else built here.
    """
    if matrix is None:
        matrix = hadamard_matrix(x.shape[-1], x.device)
    return (x.float() @ matrix).to(x.dtype)

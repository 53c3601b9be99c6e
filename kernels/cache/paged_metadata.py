"""The paged metadata refresh in one Triton launch (contract: ``paged_metadata_reference.py``).

The DSA backend refreshes ``req_kv_len`` and the page table inside every decode / verify CUDA
graph; in torch that is half a dozen small kernels (slice, view, amax, add, cast, gather, divide,
copy), ~19 us a step at batch 1 on the H200. One program here covers one request and one block
of ``BLOCK_P`` page-table columns; the column block 0 also writes the request's length.
"""

import torch
import triton
import triton.language as tl

from .._triton_utils import check_launchable
from ..layout import INDEX_K_PAGE_SIZE
from .paged_metadata_reference import check_paged_metadata_args

_BLOCK_P = 512


@triton.jit(do_not_specialize=["rows_per_req", "step", "num_pages", "stride_table"])
def _paged_metadata_kernel(
    positions_ptr, kv_len_ptr,  # positions [>= B * rows_per_req], req_kv_len [B] int32
    req_pool_ptr, req_to_token_ptr, stride_req,  # req_pool_indices [>= B], req_to_token [R, W] (row stride)
    table_ptr, stride_table,  # page_table [B, num_pages] int32 (row stride)
    rows_per_req, step, num_pages,
    LOG2_PAGE: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_P: tl.constexpr, WRITE_PAGES: tl.constexpr,
):
    b = tl.program_id(0)
    block = tl.program_id(1)
    if block == 0:
        row = tl.arange(0, BLOCK_W)
        pos = tl.load(positions_ptr + b * rows_per_req + row, mask=row < rows_per_req, other=-(2**31))
        tl.store(kv_len_ptr + b, (tl.max(pos, axis=0) + 1 + step).to(tl.int32))
    if WRITE_PAGES:
        req = tl.load(req_pool_ptr + b).to(tl.int64)
        col = block * BLOCK_P + tl.arange(0, BLOCK_P)
        first_slot = tl.load(req_to_token_ptr + req * stride_req + (col << LOG2_PAGE), mask=col < num_pages)
        # An arithmetic shift is the reference's floor division, for negative slots too.
        tl.store(table_ptr + b * stride_table + col, (first_slot >> LOG2_PAGE).to(tl.int32), mask=col < num_pages)


def fill_paged_metadata(req_kv_len: torch.Tensor, page_table: torch.Tensor | None, positions: torch.Tensor,
                        req_pool_indices: torch.Tensor, req_to_token: torch.Tensor, rows_per_req: int,
                        step: int = 0) -> None:
    """Write ``req_kv_len [B]`` int32 and, unless None, ``page_table [B, P]`` int32 in place.

    positions ``[>= B * rows_per_req]`` int, request b's rows at ``[b * rows_per_req, (b + 1) * rows_per_req)``;
    req_pool_indices ``[>= B]`` int; req_to_token ``[R, W]`` int32, P <= ceil(W / 64). No host
    synchronisation, static shapes: recordable in a CUDA graph.
    """
    check_paged_metadata_args(req_kv_len, page_table, positions, req_pool_indices, req_to_token, rows_per_req)
    tensors = (req_kv_len, positions, req_pool_indices, req_to_token)
    check_launchable(*tensors, *(() if page_table is None else (page_table,)))
    if not (req_kv_len.is_contiguous() and positions.is_contiguous() and req_pool_indices.is_contiguous()) \
            or req_to_token.stride(1) != 1 or (page_table is not None and page_table.stride(1) != 1):
        raise ValueError("req_kv_len, positions and req_pool_indices must be contiguous, "
                         "req_to_token's and page_table's rows too")
    batch = req_kv_len.shape[0]
    if batch == 0:
        return
    num_pages = 0 if page_table is None else page_table.shape[1]
    blocks = max(1, triton.cdiv(num_pages, _BLOCK_P))
    _paged_metadata_kernel[(batch, blocks)](
        positions, req_kv_len, req_pool_indices, req_to_token, req_to_token.stride(0),
        req_kv_len if page_table is None else page_table, 0 if page_table is None else page_table.stride(0),
        rows_per_req, step, num_pages,
        LOG2_PAGE=INDEX_K_PAGE_SIZE.bit_length() - 1, BLOCK_W=triton.next_power_of_2(rows_per_req),
        BLOCK_P=_BLOCK_P, WRITE_PAGES=page_table is not None, num_warps=4,
    )

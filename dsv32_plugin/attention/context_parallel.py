"""Context-parallel (CP) prefill on the DSA backend: this rank's query rows, and whole caches.

Under ``--enable-prefill-cp --cp-strategy interleave|zigzag`` the host splits the
tokens of each CP extend batch over the attention-CP group before the first
layer (``sglang.srt.layers.cp``): every rank runs the layers on its own rows, the
layer boundaries gather the FFN input over the group and scatter the output
back, and the runner gathers the last hidden states for the logits. Attention is
the one place where a token needs the others: its query (indexer scores, top-k,
sparse MLA) reads the latent KV and indexer keys of the whole causal context.
So in every layer each rank

1. encodes the new keys of its own rows in the cache's format (``encode_mla_rows``,
   ``encode_index_k``: FP8-packed MLA rows and FP8 keys + scale, or the cache
   dtype's values) -- the bytes the cache will hold, encoded by the cache writers themselves,
   so nothing is quantised (or Hadamard-rotated) twice and an FP8 exchange carries ~half the
   bytes of a bf16 one;
2. all-gathers them over the CP group into the batch's token order (the host
   strategy's ``gather_kv_cache``, one collective per cache);
3. writes all T rows at ``out_cache_loc``: every rank's caches end up exactly as a
   one-rank server's (decode, prefix reuse and later chunks need nothing more);
4. queries with its own rows only: the batch's ragged metadata is built for all T
   rows as without CP, then restricted to this rank's rows (``CPShard.restrict``),
   so each query row sees the same key buffer, causal range and top-k as without CP.

The rows a rank holds are whatever the host's strategy put there: ``CPShard.rows``
is the host's own shard of the row numbers ``0..T-1`` (its padding rows, which
make every rank's share the same length for the collectives, become -1 and see
nothing). Layouts: docs/attention.md ("Context parallel prefill").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch


@dataclass(frozen=True)
class CPShard:
    """One CP rank's share of one context-parallel extend batch of T tokens.

    ``rows [Tl]`` int64: the batch row (token order) of each of this rank's rows,
    -1 for the strategy's padding rows (Tl is the padded share, equal on all ranks).
    ``gather``: ``[Tl, ...]`` rank-local rows -> ``[T, ...]`` all ranks' rows in token
    order; a collective over the attention-CP group (every rank calls it alike).
    """

    rows: torch.Tensor
    gather: Callable[[torch.Tensor], torch.Tensor]

    def restrict(self, md):
        """``RaggedMetadata`` of all T rows -> the same key buffer with this rank's query rows."""
        real = self.rows >= 0
        row = self.rows.clamp_min(0)

        def mine(per_row: torch.Tensor) -> torch.Tensor:
            return torch.where(real, per_row[row], 0)

        return replace(md, row_kv_len=mine(md.row_kv_len), k_start=mine(md.k_start), k_end=mine(md.k_end), cp=self)

    def store_index_k(self, pool, layer_id: int, slots: torch.Tensor, k: torch.Tensor) -> None:
        """Write every rank's new indexer keys (this rank's ``k [Tl, D]``) at ``slots [T]``."""
        pool.store_encoded_index_k(layer_id, slots, self.gather(pool.encode_index_k(k)))

    def store_mla_kv(self, pool, layer_id: int, slots: torch.Tensor, c_kv: torch.Tensor, k_rope: torch.Tensor) -> None:
        """Write every rank's new latent rows (this rank's ``c_kv``, ``k_rope``) at ``slots [T]``."""
        pool.store_mla_rows(layer_id, slots, self.gather(pool.encode_mla_rows(c_kv, k_rope)))


def cp_shard(forward_batch) -> CPShard | None:
    """This rank's ``CPShard`` when the host runs ``forward_batch`` context-parallel, else None.

    The host decides per batch (``is_cp_active``: a CP extend its strategy can split,
    e.g. zigzag needs every extend length >= 2 cp); other batches run whole on every rank.
    """
    from sglang.srt.layers.cp.base import get_cp_strategy
    from sglang.srt.layers.cp.utils import is_cp_active

    if not is_cp_active(forward_batch):
        return None
    strategy = get_cp_strategy()
    total = int(forward_batch.attn_cp_metadata.total_seq_lens)
    numbers = torch.arange(1, total + 1, dtype=torch.int64, device=forward_batch.positions.device)
    rows = strategy.shard_hidden_states(numbers, forward_batch) - 1  # the host pads with 0 -> -1

    def gather(local: torch.Tensor) -> torch.Tensor:
        return strategy.gather_kv_cache(local.contiguous(), forward_batch)

    return CPShard(rows, gather)

"""The DSA caches: the MLA KV cache (bf16, or FP8 656-byte rows), the indexer K cache and the paged
metadata that addresses them (request lengths, 64-token page ids); float32 references."""

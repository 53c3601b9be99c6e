"""The DSA caches: the MLA KV cache (bf16, or FP8 656-byte rows) and the indexer K cache; float32 references."""

"""The lightning indexer: FP8 scores (prefill, decode), exact top-k, positions -> cache slots; float32 reference."""

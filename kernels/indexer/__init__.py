"""The lightning indexer: FP8 scores (prefill, decode), exact top-k, the FP8 q quantiser, positions -> cache slots;
float32 reference."""

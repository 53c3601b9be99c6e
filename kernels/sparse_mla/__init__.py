"""Sparse MLA attention: Triton kernel and launchers, float32 reference, FlashMLA and FA3 wrappers."""

"""DSA attention backend: the host AttentionBackend adapter over dsv32_plugin.kernels."""

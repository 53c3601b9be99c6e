"""Test and demo helpers: tiny random-weight DeepSeek-V3.2 checkpoints and tokenizers."""

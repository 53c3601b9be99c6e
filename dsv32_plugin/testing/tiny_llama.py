"""A tiny random Llama checkpoint (same local tokenizer as the V3.2 one) for host-only server tests.

It exercises the plugin's registration and CPU fallbacks in a real sglang server
independently of the plugin's DeepSeek-V3.2 model.
"""

from __future__ import annotations

import pathlib

from dsv32_plugin.testing.tiny_tokenizer import save_tokenizer


def make_tiny_llama(directory, *, seed: int = 0) -> pathlib.Path:
    """Write a 2-layer, hidden-64 LlamaForCausalLM with random weights into ``directory``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    n_tokens = save_tokenizer(path, chat_template=None)
    config = LlamaConfig(
        vocab_size=-(-n_tokens // 128) * 128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=0,
        eos_token_id=1,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path)
    return path

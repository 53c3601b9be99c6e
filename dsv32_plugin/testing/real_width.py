"""A DeepSeek-V3.2 config with every per-layer size of the released model, few layers, the tiny vocabulary.

    python -m dsv32_plugin.testing.real_width DIR [--layers N] [--bf16]

writes a config-only checkpoint (``config.json``, ``generation_config.json``, the tiny
tokenizer) for ``--load-format dummy``: the server builds the model at full width and the
dummy loader fills it (``dummy_init`` gives the weights the tiny checkpoint's scales, where
the host's own dummy values would make every projection zero in FP8). With the default
2 layers, layer 0 is dense and layer 1 MoE, plus the MoE MTP layer: ~23 GB of FP8 weights.

=====================  ======  ========================================================
key                    value   as DeepSeek-V3.2
=====================  ======  ========================================================
hidden_size            7168
num_attention_heads    128     q_lora_rank 1536, kv_lora_rank 512
qk_nope/rope, v dims   128/64  v_head_dim 128
index_n_heads          64      index_head_dim 128, index_topk 2048
n_routed_experts       256     8 per token, n_group 8, topk_group 4, 1 shared expert
moe_intermediate_size  2048    intermediate_size 18432 (dense layers)
first_k_dense_replace  1       not 3: with 2-4 layers, dense and MoE layers both appear
=====================  ======  ========================================================

Everything else (RoPE/YaRN, router, FP8 128x128 ue8m0 block quantization) is the tiny
config's, which already equals the real one there.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from dsv32_plugin.policy import RELEASE_SHAPES
from dsv32_plugin.testing.tiny_checkpoint import VOCAB_PAD, _write_json
from dsv32_plugin.testing.tiny_config import make_config
from dsv32_plugin.testing.tiny_tokenizer import save_tokenizer

# The release's per-layer sizes; layer 0 dense, the rest MoE (the release has 3 dense layers of 61).
REAL_WIDTH = {**RELEASE_SHAPES, "first_k_dense_replace": 1}


def real_width_config(vocab_size: int, *, layers: int = 2, fp8: bool = True) -> dict:
    if layers < 2:
        raise ValueError(f"layers={layers}: need at least 2 (a dense and an MoE layer)")
    return make_config("v32", vocab_size, fp8=fp8, overrides={**REAL_WIDTH, "num_hidden_layers": layers})


def make_real_width_dir(directory, *, layers: int = 2, fp8: bool = True) -> pathlib.Path:
    """Write the config-only checkpoint into ``directory`` (created if missing); return its path."""
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    n_tokens = save_tokenizer(path, chat_template=None)
    config = real_width_config(-(-n_tokens // VOCAB_PAD) * VOCAB_PAD, layers=layers, fp8=fp8)
    _write_json(path / "config.json", config)
    _write_json(path / "generation_config.json", {"bos_token_id": 0, "eos_token_id": 1})
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--layers", type=int, default=2, help="decoder layers (the MTP layer comes on top)")
    parser.add_argument("--bf16", action="store_true", help="no quantization_config (bf16 weights)")
    args = parser.parse_args(argv)
    path = make_real_width_dir(args.directory, layers=args.layers, fp8=not args.bf16)
    print(json.dumps({"path": str(path), "layers": args.layers, "fp8": not args.bf16}))


if __name__ == "__main__":
    main()

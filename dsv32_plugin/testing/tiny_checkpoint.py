"""Write a complete, loadable tiny DeepSeek-V3.2 checkpoint with random weights.

    python -m dsv32_plugin.testing.tiny_checkpoint DIR [--variant v32|v32-exp|speciale] [--fp8] [--seed N]

Files: config.json, generation_config.json, model.safetensors, tokenizer.json,
tokenizer_config.json. Variants differ only where the real releases differ:

* ``v32``      -- DeepSeek-V3.2: no chat template (sglang then uses the Python V3.2 encoder).
* ``v32-exp``  -- DeepSeek-V3.2-Exp: a V3.1-style Jinja chat template in tokenizer_config.json
  (the plugin's ``templates/deepseek_v32_exp.jinja`` when shipped).
* ``speciale`` -- DeepSeek-V3.2-Speciale: as ``v32`` (thinking-only is a serving concern).

Sizes, tensor names and the FP8 layout: ``tiny_config`` and ``tiny_weights``.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from dsv32_plugin.testing.tiny_config import VARIANTS, make_config
from dsv32_plugin.testing.tiny_tokenizer import save_tokenizer

EXP_TEMPLATE = "deepseek_v32_exp.jinja"
VOCAB_PAD = 128  # config vocab_size = tokenizer size rounded up to this (the real one pads too)


def exp_chat_template() -> str | None:
    """The shipped V3.2-Exp template text, or None while it is not shipped."""
    from dsv32_plugin import templates

    try:
        return pathlib.Path(templates.path(EXP_TEMPLATE)).read_text()
    except FileNotFoundError:
        return None


def make_tiny_checkpoint(directory, variant: str = "v32", *, fp8: bool = False, seed: int = 0,
                         overrides: dict | None = None) -> pathlib.Path:
    """Write the checkpoint into ``directory`` (created if missing) and return its path.

    ``overrides``: config keys to change (e.g. ``{"index_n_heads": 64}``: enough indexer
    heads that scores never tie exactly, for parity tests across layouts).
    """
    import torch
    from safetensors.torch import save_file

    from dsv32_plugin.testing.tiny_weights import make_weights, quantise_checkpoint

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    template = exp_chat_template() if variant == "v32-exp" else None
    n_tokens = save_tokenizer(path, chat_template=template)
    vocab_size = -(-n_tokens // VOCAB_PAD) * VOCAB_PAD
    config = make_config(variant, vocab_size, fp8=fp8, overrides=overrides)
    _write_json(path / "config.json", config)
    _write_json(path / "generation_config.json", {"bos_token_id": 0, "eos_token_id": 1})
    with torch.no_grad():
        weights = make_weights(config, seed=seed)
        if fp8:
            weights = quantise_checkpoint(weights)
    save_file({k: t.contiguous() for k, t in weights.items()}, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


def _write_json(file: pathlib.Path, obj: dict) -> None:
    file.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--variant", choices=VARIANTS, default="v32")
    parser.add_argument("--fp8", action="store_true", help="FP8 block-quantised projections, as the real checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(make_tiny_checkpoint(args.directory, args.variant, fp8=args.fp8, seed=args.seed))


if __name__ == "__main__":
    main()

"""A small byte-level BPE tokenizer carrying every DeepSeek-V3.2 special token.

Built locally with ``tokenizers`` (no hub access): a BPE trained on a short
built-in text, then the DeepSeek tokens added whole, as the real tokenizer has
them. Layout (ids):

* 0 ``<｜begin▁of▁sentence｜>`` (BOS), 1 ``<｜end▁of▁sentence｜>`` (EOS),
  2 ``<｜▁pad▁｜>`` -- first, as in the real vocabulary;
* then the 256 byte symbols and the learned merges;
* then ``ADDED_TOKENS`` in order (the real tokenizer also keeps them at the end).

Which tokens are "special" (dropped by ``skip_special_tokens=True``) follows the
real V3.2 tokenizer: BOS, EOS, pad and ``｜DSML｜``. The DSML tags are not single
tokens: ``<｜DSML｜invoke`` is ``<`` + ``｜DSML｜`` + ``invoke`` (real ids 30, 128793,
...). Chat and tool tokens (``<｜User｜>``, ``<think>``, ``<｜tool▁call▁begin｜>``, ...)
are single, non-special ids, so they survive detokenisation for the parsers.
"""

from __future__ import annotations

import json
import pathlib

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜▁pad▁｜>"
DSML = "｜DSML｜"

# (token, special) in the order the real V3.1/V3.2 vocabulary appends them.
ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    (DSML, True),
    ("<think>", False),
    ("</think>", False),
    ("<｜fim▁hole｜>", False),
    ("<｜fim▁begin｜>", False),
    ("<｜fim▁end｜>", False),
    ("<｜User｜>", False),
    ("<｜Assistant｜>", False),
    ("<|EOT|>", False),
    ("<｜tool▁calls▁begin｜>", False),
    ("<｜tool▁calls▁end｜>", False),
    ("<｜tool▁call▁begin｜>", False),
    ("<｜tool▁call▁end｜>", False),
    ("<｜tool▁outputs▁begin｜>", False),
    ("<｜tool▁outputs▁end｜>", False),
    ("<｜tool▁output▁begin｜>", False),
    ("<｜tool▁output▁end｜>", False),
    ("<｜tool▁sep｜>", False),
)

SPECIAL_TOKENS: tuple[str, ...] = (BOS, EOS, PAD) + tuple(t for t, _ in ADDED_TOKENS)

MERGE_VOCAB_SIZE = 640  # cap on bytes + merges + BOS/EOS/pad (the short text yields ~626)

# Training text: plain English plus the words that chat prompts and tool calls use,
# so that ordinary prompts become a few dozen tokens rather than one per byte.
_CORPUS = """
The quick brown fox jumps over the lazy dog. A small model answers questions about the weather,
the time, numbers and names. What is the capital of France? The capital of France is Paris.
Hello! How are you today? I am fine, thank you. Please tell me a short story about a cat.
Once upon a time there was a cat who lived in a house near the river. Every morning the cat
walked to the water, looked at the fish, and went back home to sleep in the sun.
You are a helpful assistant. The user asks; the assistant thinks, then answers.
Let me think step by step. First, add the two numbers; then multiply the result by three.
## Tools
You have access to a set of tools you can use to answer the user's question.
function_calls invoke name parameter string true false result function_results
{"name": "get_weather", "arguments": {"location": "Tokyo", "unit": "celsius"}}
{"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}}
def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n
0 1 2 3 4 5 6 7 8 9 10 100 1000 2024 3.14 -1 42
"""


def build_tokenizer():
    """Train and return the ``tokenizers.Tokenizer`` (deterministic for a given ``tokenizers``)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=MERGE_VOCAB_SIZE,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=s, normalized=False) for t, s in ADDED_TOKENS])
    # The real tokenizer prepends BOS to every encoded text (add_bos_token=true).
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    return tok


def save_tokenizer(directory: pathlib.Path, *, chat_template: str | None) -> int:
    """Write tokenizer.json and tokenizer_config.json into ``directory``; return the vocab size."""
    tok = build_tokenizer()
    tok.save(str(directory / "tokenizer.json"))
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    if chat_template is not None:
        config["chat_template"] = chat_template
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return tok.get_vocab_size(with_added_tokens=True)


def load_tokenizer(directory: pathlib.Path, *, chat_template: str | None = None):
    """Save the tiny tokenizer into ``directory`` (created if missing) and load it with transformers."""
    from transformers import AutoTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    save_tokenizer(directory, chat_template=chat_template)
    return AutoTokenizer.from_pretrained(str(directory))

"""Special tokens of the DeepSeek-V3.2 chat format.

The bars and the underscore-like character are full-width: U+FF5C (｜) and
U+2581 (▁). Each string below is one token of the V3.2 tokenizer. The DSML
tool-call tags (``<｜DSML｜function_calls>`` ...) are defined once, with their
grammar, in ``dsv32_plugin.parsers.dsml``.
"""

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK_START = "<think>"
THINK_END = "</think>"

"""Special tokens of the DeepSeek-V3.2 chat format.

The bars and the underscore-like character are full-width: U+FF5C (｜) and
U+2581 (▁). Each string below is one token in the V3.2 tokenizer except the
DSML marker, which only ever appears inside a tag such as
``<｜DSML｜invoke name="...">``.
"""

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK_START = "<think>"
THINK_END = "</think>"
DSML = "｜DSML｜"

# DSML tags the encoder writes (the parsers read the same tags).
FUNCTION_CALLS_OPEN = f"<{DSML}function_calls>"
FUNCTION_CALLS_CLOSE = f"</{DSML}function_calls>"
INVOKE_CLOSE = f"</{DSML}invoke>"
PARAMETER_CLOSE = f"</{DSML}parameter>"

# Tool results are plain text tags, not special tokens.
FUNCTION_RESULTS_OPEN = "<function_results>"
FUNCTION_RESULTS_CLOSE = "</function_results>"

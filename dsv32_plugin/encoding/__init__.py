"""DeepSeek-V3.2 chat encoding: messages -> prompt text, and model text -> message.

``encode_messages`` renders like DeepSeek's official V3.2 encoder;
``decode_output`` splits a completion into content, reasoning and tool calls.
See docs/chat_format.md.
"""

from dsv32_plugin.encoding.decoder import decode_output
from dsv32_plugin.encoding.encoder import EncodingError, encode_messages

__all__ = ["EncodingError", "decode_output", "encode_messages"]

"""Point the host's parser names at the plugin's detectors.

``--tool-call-parser deepseekv32`` / ``deepseekv31`` and ``--reasoning-parser
deepseek-v3`` keep their names (already in sglang's CLI choices,
``parser_names.TOOL_CALL_PARSER_NAMES`` and ``ReasoningParser.DetectorMap``);
only the classes behind them change.
"""

from __future__ import annotations

from dsv32_plugin.hooks import ledger

_TOOL_PARSERS = "sglang.srt.function_call.function_call_parser.FunctionCallParser.ToolCallParserEnum"
_REASONING_PARSERS = "sglang.srt.parser.reasoning_parser.ReasoningParser.DetectorMap"


def install() -> None:
    from sglang.srt.function_call.function_call_parser import FunctionCallParser
    from sglang.srt.parser.reasoning_parser import ReasoningParser

    from dsv32_plugin.parsers.deepseekv31 import DeepSeekV31Detector
    from dsv32_plugin.parsers.deepseekv32 import DeepSeekV32Detector
    from dsv32_plugin.parsers.reasoning import DeepSeekV32ReasoningDetector

    ledger.set_entry(
        _TOOL_PARSERS,
        FunctionCallParser.ToolCallParserEnum,
        "deepseekv32",
        DeepSeekV32Detector,
        why="DSML tool calls: verbatim strings, schema coercion, incremental arguments, "
        "streaming == non-streaming",
        undo="restore sglang's DeepSeekV32Detector",
    )
    ledger.set_entry(
        _TOOL_PARSERS,
        FunctionCallParser.ToolCallParserEnum,
        "deepseekv31",
        DeepSeekV31Detector,
        why="V3.1/V3.2-Exp tool calls without partial-token leaks; schema coercion",
        undo="restore sglang's DeepSeekV31Detector",
    )
    ledger.set_entry(
        _REASONING_PARSERS,
        ReasoningParser.DetectorMap,
        "deepseek-v3",
        DeepSeekV32ReasoningDetector,
        why="a tool-call block inside unclosed thinking ends the reasoning; streaming == "
        "non-streaming; reasoning_default stays explicit_thinking",
        undo="restore sglang's _DeepSeekV3Detector",
    )

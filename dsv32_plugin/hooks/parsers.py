"""Point the host's parser names at the plugin's detectors.

``--tool-call-parser deepseekv32`` / ``deepseekv31`` and ``--reasoning-parser
deepseek-v3`` keep their names (already in sglang's CLI choices,
``parser_names.TOOL_CALL_PARSER_NAMES`` and ``ReasoningParser.DetectorMap``);
only the classes behind them change.
"""

from __future__ import annotations

from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import touches


def install() -> None:
    from dsv32_plugin.parsers.deepseekv31 import DeepSeekV31Detector
    from dsv32_plugin.parsers.deepseekv32 import DeepSeekV32Detector
    from dsv32_plugin.parsers.reasoning import DeepSeekV32ReasoningDetector

    ledger.set_entry(touches.TOOL_PARSER_V32, DeepSeekV32Detector)
    ledger.set_entry(touches.TOOL_PARSER_V31, DeepSeekV31Detector)
    ledger.set_entry(touches.REASONING_PARSER, DeepSeekV32ReasoningDetector)

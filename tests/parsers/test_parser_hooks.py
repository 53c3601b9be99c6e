"""After install(), the host's parser names resolve to the plugin's detectors."""

from sglang.srt.function_call.function_call_parser import FunctionCallParser
from sglang.srt.function_call.parser_names import TOOL_CALL_PARSER_NAMES
from sglang.srt.parser.reasoning_parser import ReasoningParser
from sglang.srt.parser.reasoning_parser_names import REASONING_PARSER_NAMES

from dsv32_plugin.hooks import ledger, parsers
from dsv32_plugin.host import touches
from dsv32_plugin.parsers.deepseekv31 import DeepSeekV31Detector
from dsv32_plugin.parsers.deepseekv32 import DeepSeekV32Detector
from dsv32_plugin.parsers.reasoning import DeepSeekV32ReasoningDetector


def test_names_resolve_to_plugin_detectors_and_stay_listed():
    parsers.install()
    assert isinstance(FunctionCallParser([], "deepseekv32").detector, DeepSeekV32Detector)
    assert isinstance(FunctionCallParser([], "deepseekv31").detector, DeepSeekV31Detector)
    assert isinstance(ReasoningParser("deepseek-v3").detector, DeepSeekV32ReasoningDetector)
    assert {"deepseekv31", "deepseekv32"} <= set(TOOL_CALL_PARSER_NAMES)
    assert "deepseek-v3" in REASONING_PARSER_NAMES
    made = {t.touch for t in ledger.TOUCHES if t.module.endswith("hooks.parsers")}
    assert made == {touches.TOOL_PARSER_V32, touches.TOOL_PARSER_V31, touches.REASONING_PARSER}


def test_structural_tag_hooks_match_the_formats():
    v32 = DeepSeekV32Detector()
    info = v32.structure_info()("get_weather")
    assert (info.begin, info.end, info.trigger) == (
        '<｜DSML｜invoke name="get_weather">', "</｜DSML｜invoke>", "<｜DSML｜invoke")
    assert v32.get_structural_tag_name() == "deepseek_v3_2" and v32.supports_structural_tag()
    info = DeepSeekV31Detector().structure_info()("f")
    assert (info.begin, info.end, info.trigger) == (
        "<｜tool▁call▁begin｜>f<｜tool▁sep｜>", "<｜tool▁call▁end｜>", "<｜tool▁call▁begin｜>")

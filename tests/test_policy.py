"""The start-up policy: one sglang-free module the hooks, the KV pool, the draft backends and the CLI ask."""

import pytest
from pyrun import last_json, run_python

from dsv32_plugin import policy
from dsv32_plugin.refusal import StartupRefusal


def loaded_after(tmp_path, imports: str) -> list[str]:
    """sglang, torch and dsv32_plugin.hooks modules loaded by ``import <imports>`` in a fresh process."""
    return last_json(run_python(f"""
        import json, sys
        import {imports}
        print(json.dumps(sorted(m for m in sys.modules
                                if m.split(".")[0] in ("sglang", "torch") or m.startswith("dsv32_plugin.hooks"))))
    """, tmp_path))


def test_the_policy_and_the_touch_table_import_neither_sglang_nor_torch(tmp_path):
    assert loaded_after(tmp_path, "dsv32_plugin.policy, dsv32_plugin.host.touches") == []


def test_the_cli_imports_neither_sglang_nor_the_hooks(tmp_path):
    # torch comes with attention.dispatch, whose defaults the launch commands print
    assert [m for m in loaded_after(tmp_path, "dsv32_plugin.cli.main") if not m.startswith("torch")] == []


def test_v32_is_the_target_arch_or_its_draft_key_with_an_indexer():
    from types import SimpleNamespace as Config

    assert policy.is_v32(Config(architectures=["DeepseekV32ForCausalLM"], index_topk=2048))
    assert policy.is_v32(Config(architectures=["DeepseekV3ForCausalLMNextN"], index_topk=2048))
    assert not policy.is_v32(Config(architectures=["DeepseekV3ForCausalLMNextN"]))  # a V3 draft
    assert not policy.is_v32(Config(architectures=["GlmMoeDsaForCausalLM"], index_topk=2048))


def test_refuse_joins_every_problem_into_one_line():
    policy.refuse([])
    with pytest.raises(StartupRefusal) as refusal:
        policy.refuse(policy.server_args_problems(enable_hisparse=True, quantization="modelopt_fp4",
                                                  chunked_prefill_size=100, page_size=64))
    message = str(refusal.value)
    assert message.startswith("dsv32-plugin: --enable-hisparse") and "\n" not in message
    assert "--quantization modelopt_fp4" in message and "--chunked-prefill-size 100" in message
    assert "(e.g. 64)" in message


@pytest.mark.parametrize("args, words", [
    pytest.param({"page_size": 16}, "needs --page-size 64, got 16", id="page"),
    pytest.param({"index_kpool": 2}, "neither index kpool nor DCP", id="kpool"),
    pytest.param({"dcp_replicated": True}, "neither index kpool nor DCP", id="dcp"),
])
def test_kv_pool_problems(args, words):
    fine = {"page_size": 64, "dsa_page_size": 64, "index_kpool": 1, "index_kpool_compress": False,
            "dcp_replicated": False}
    assert policy.kv_pool_problems(**fine) == []
    (problem,) = policy.kv_pool_problems(**{**fine, **args})
    assert words in problem


def test_draft_top_k_above_one_is_refused_naming_the_flag():
    assert policy.draft_problems(eagle_topk=1) == []
    assert policy.draft_problems(eagle_topk=4) == ["the DeepSeek-V3.2 MTP draft needs --speculative-eagle-topk 1, got 4"]


def test_cp_problems_name_the_flags():
    fine = {"cp_strategy": "interleave", "cp_size": 2, "attn_dp_size": 1, "tp_size": 4, "prefill_backend": "nsa"}
    assert policy.cp_problems(**fine) == []
    problems = policy.cp_problems(**{**fine, "cp_strategy": None, "cp_size": 3, "prefill_backend": "fa3"})
    assert len(problems) == 3 and all("--" in p for p in problems)

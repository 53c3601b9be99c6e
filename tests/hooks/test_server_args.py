"""The DSA backend flags and argument resolution, through the host's real CLI parser and resolution pipeline.

The plugin is loaded in this process the way the host loads it (``load_plugins``:
entry point, then ``HookRegistry.apply_hooks``); the "stock" checks run in a
subprocess with the plugin filtered out (``SGLANG_PLUGINS=other``).
"""

import argparse
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import touches

HOOKS = {touches.CLI_ARGS, touches.MODEL_SPECIFIC_ADJUSTMENTS, touches.KV_CACHE_DTYPE_DEFAULT,
         touches.SPLIT_BACKEND_RESOLUTION}
RESOLVED_FIELDS = (
    "attention_backend",
    "dsa_prefill_backend",
    "dsa_decode_backend",
    "page_size",
    "kv_cache_dtype",
)


def parse(host, argv):
    """ServerArgs from argv through the host's own parser (what prepare_server_args does, minus logging)."""
    parser = argparse.ArgumentParser(prog="sglang serve")
    host.ServerArgs.add_cli_args(parser)
    return host.ServerArgs.from_cli_args(parser.parse_args(argv))


def resolve(host, argv):
    from sglang.srt.arg_groups.overrides import resolution_result

    record = parse(host, argv)
    record.resolve_once()
    return record, {field: resolution_result(record, field) for field in RESOLVED_FIELDS}


def cpu_argv(model, *extra):
    return ["--model-path", model, "--device", "cpu", "--skip-tokenizer-init", *extra]


def test_install_records_every_hook_in_the_ledger(host):
    assert HOOKS <= {made.touch for made in ledger.TOUCHES}


@pytest.mark.parametrize(
    "dsa_flag, nsa_flag, value",
    [
        pytest.param("--dsa-prefill-backend", "--nsa-prefill-backend", "triton", id="prefill-triton"),
        pytest.param("--dsa-decode-backend", "--nsa-decode-backend", "flashmla_kv", id="decode-flashmla_kv"),
        pytest.param("--dsa-decode-backend", "--nsa-decode-backend", "torch", id="decode-torch"),
    ],
)
def test_nsa_spelling_is_an_alias_of_the_dsa_flag(host, dsa_flag, nsa_flag, value):
    field = dsa_flag[2:].replace("-", "_")
    via_dsa = parse(host, ["--model-path", "m", dsa_flag, value])
    via_nsa = parse(host, ["--model-path", "m", nsa_flag, value])
    assert getattr(via_nsa, field) == getattr(via_dsa, field) == value
    assert getattr(parse(host, ["--model-path", "m"]), field) is None


@pytest.mark.parametrize("flag", ["--dsa-decode-backend", "--nsa-prefill-backend"])
def test_invalid_backend_is_an_argparse_error_naming_the_choices(host, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(host, ["--model-path", "m", flag, "bogus"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'bogus'" in err
    for name in ("torch", "triton", "flashmla_sparse", "flashmla_kv", "flashmla_auto", "fa3"):
        assert f"'{name}'" in err


def test_host_values_still_parse(host):
    # Other DSA models (GLM-5, ...) keep the host's backends.
    assert parse(host, ["--model-path", "m", "--dsa-decode-backend", "trtllm"]).dsa_decode_backend == "trtllm"


def test_v32_on_cpu_resolves_to_the_plugin_dsa_backend_without_flags(host, tiny_v32):
    _, resolved = resolve(host, cpu_argv(tiny_v32))
    assert resolved == {
        "attention_backend": "dsa",
        "dsa_prefill_backend": "torch",
        "dsa_decode_backend": "torch",
        "page_size": 64,
        "kv_cache_dtype": "auto",
    }


def test_v32_page_size_is_forced_to_64(host, tiny_v32):
    assert resolve(host, cpu_argv(tiny_v32, "--page-size", "16"))[1]["page_size"] == 64


@pytest.mark.parametrize("backend", ["nsa", "torch_native"])
def test_explicit_attention_backend_is_kept(host, tiny_v32, backend):
    _, resolved = resolve(host, cpu_argv(tiny_v32, "--attention-backend", backend))
    assert resolved["attention_backend"] == backend
    assert (resolved["dsa_prefill_backend"], resolved["dsa_decode_backend"]) == ("torch", "torch")


@pytest.mark.parametrize(
    "flag, expected",
    [
        pytest.param("bf16", "bfloat16", id="bf16"),
        pytest.param("fp8_e4m3", "fp8_e4m3", id="fp8"),
    ],
)
def test_v32_cpu_kv_cache_dtypes(host, tiny_v32, flag, expected):
    assert resolve(host, cpu_argv(tiny_v32, "--kv-cache-dtype", flag))[1]["kv_cache_dtype"] == expected


@pytest.mark.parametrize(
    "extra, message",
    [
        pytest.param(["--dsa-prefill-backend", "fa3"], "fa3 has no prefill kernel", id="fa3-prefill"),
        pytest.param(
            ["--nsa-decode-backend", "triton"], "Triton kernels need a CUDA device", id="triton-no-interpreter"
        ),
        pytest.param(["--dsa-decode-backend", "trtllm"], "'trtllm' is not a DSA backend", id="host-only-backend"),
        pytest.param(
            ["--kv-cache-dtype", "fp8_e4m3", "--dsa-decode-backend", "fa3"],
            "fa3 decode cannot read a fp8 KV cache",
            id="fa3-fp8-cache",
        ),
        pytest.param(["--kv-cache-dtype", "fp8_e5m2"], "does not support --kv-cache-dtype 'fp8_e5m2'", id="kv-e5m2"),
        pytest.param(["--chunked-prefill-size", "100"], "multiple of the DSA page size 64", id="chunk-100"),
    ],
)
def test_unusable_settings_are_refused_at_start_up(host, tiny_v32, extra, message, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match=message) as error:
        resolve(host, cpu_argv(tiny_v32, *extra))
    if "backend" in extra[-2]:
        assert "Choices that work on this machine (cpu" in str(error.value)
        assert "torch" in str(error.value).rsplit(":", 1)[1]


def test_triton_on_cpu_under_the_interpreter(host, tiny_v32, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    resolved = resolve(host, cpu_argv(tiny_v32, "--nsa-decode-backend", "triton"))[1]
    assert (resolved["dsa_prefill_backend"], resolved["dsa_decode_backend"]) == ("torch", "triton")


def test_other_models_on_cpu_are_untouched(host, tiny_llama):
    _, resolved = resolve(host, cpu_argv(tiny_llama))
    assert resolved["attention_backend"] in ("intel_amx", "torch_native")
    assert resolved["dsa_prefill_backend"] is None and resolved["dsa_decode_backend"] is None


def test_other_dsa_architectures_are_left_to_the_host(host, tiny_v32, tmp_path):
    import json
    import shutil

    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the host's own CPU failure")
    other = tmp_path / "v3_with_index_topk"
    shutil.copytree(tiny_v32, other)
    config = json.loads((other / "config.json").read_text())
    config["architectures"] = ["DeepseekV3ForCausalLM"]
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(RuntimeError, match="NVIDIA driver"):
        resolve(host, cpu_argv(str(other)))


@pytest.fixture(scope="module")
def cpu_record(host, tiny_v32):
    return resolve(host, cpu_argv(tiny_v32))[0]


def cuda_view(record, **fields):
    """The record's resolution so far, seen as on a CUDA device, with ``fields`` as the DSA inputs."""
    from sglang.srt.arg_groups.model_override_base import ResolvedView, _declaration_overlay

    inputs = {"dsa_prefill_backend": None, "dsa_decode_backend": None, "kv_cache_dtype": "auto", **fields}
    return ResolvedView(record, overlay={**_declaration_overlay(record), "device": "cuda", **inputs})


@pytest.mark.parametrize(
    "major, kv_cache_dtype", [pytest.param(9, "bfloat16", id="sm90"), pytest.param(10, "fp8_e4m3", id="sm100")]
)
def test_cuda_kv_cache_dtype_default_stays_the_hosts(host, cpu_record, monkeypatch, major, kv_cache_dtype):
    from sglang.srt.arg_groups import overrides

    monkeypatch.setattr("torch.cuda.get_device_capability", lambda device=None: (major, 0))
    assert overrides._dsa_kv_cache_dtype_default(cuda_view(cpu_record)) == {"kv_cache_dtype": kv_cache_dtype}


@pytest.mark.parametrize("major", [8, 9, 10])
def test_cuda_backend_defaults_come_from_the_dispatch_table(host, cpu_record, monkeypatch, major):
    from sglang.srt.arg_groups import overrides

    monkeypatch.setattr("torch.cuda.get_device_capability", lambda device=None: (major, 0))
    view = cuda_view(cpu_record, kv_cache_dtype="bfloat16", dsa_decode_backend="triton")
    # The host's own pass would pick flashmla_sparse and refuse triton off ROCm.
    assert overrides._dsa_split_backend_resolution(view) == {"dsa_prefill_backend": "triton"}


@pytest.mark.parametrize(
    "fields, message",
    [
        pytest.param(
            {"dsa_decode_backend": "fa3", "kv_cache_dtype": "bfloat16"}, "FA3 is not importable", id="fa3-missing"
        ),
        pytest.param(
            {"dsa_decode_backend": "flashmla_kv", "kv_cache_dtype": "fp8_e4m3"},
            "FlashMLA is not installed",
            id="flashmla-missing",
        ),
    ],
)
def test_cuda_refusals_name_the_working_choices(host, cpu_record, monkeypatch, fields, message):
    import importlib.util

    from sglang.srt.arg_groups import overrides

    if importlib.util.find_spec("flash_mla") is not None:
        pytest.skip("FlashMLA is installed here")
    monkeypatch.setattr("torch.cuda.get_device_capability", lambda device=None: (9, 0))
    with pytest.raises(ValueError, match=message) as error:
        overrides._dsa_split_backend_resolution(cuda_view(cpu_record, **fields))
    assert str(error.value).endswith("for decode: torch, triton")


CHILD = textwrap.dedent(
    """
    import pickle, sys
    from sglang.srt.plugins import load_plugins
    load_plugins()  # what run_scheduler_process does first
    from sglang.srt.runtime_context import get_exec, publish
    from dsv32_plugin.attention.dispatch import configured_backends
    publish(pickle.load(open(sys.argv[1], "rb")), role="scheduler")
    print("CONFIGURED", get_exec().kernel.attention_backend, *configured_backends())
    """
)


def test_backends_reach_a_child_process(host, tiny_v32, tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    record, _ = resolve(host, cpu_argv(tiny_v32, "--nsa-decode-backend", "triton"))
    blob = tmp_path / "server_args.pkl"
    blob.write_bytes(pickle.dumps(record))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(blob)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "CONFIGURED dsa torch triton" in done.stdout


STOCK = textwrap.dedent(
    """
    import argparse, sys
    from sglang.srt.plugins import load_plugins
    load_plugins()
    from sglang.srt.server_args import ServerArgs
    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    for argv in (["--nsa-prefill-backend", "triton"], ["--dsa-decode-backend", "torch"]):
        try:
            parser.parse_args(["--model-path", "m", *argv])
        except SystemExit as exc:
            print("REFUSED", argv[0], exc.code)
    record = ServerArgs.from_cli_args(parser.parse_args(["--model-path", sys.argv[1], "--device", "cpu"]))
    try:
        record.resolve_once()
        print("RESOLVED", record.attention_backend)
    except Exception as exc:
        print("FAILED", type(exc).__name__, exc)
    """
)


def test_without_the_plugin_the_host_is_stock(tiny_v32, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the stock CPU behaviour")
    from dsv32_plugin.hooks.cpu_fallbacks import SHIM_DIR

    # Only the CPU sgl_kernel stand-in (so the host imports at all), not the plugin.
    env = dict(os.environ, SGLANG_PLUGINS="other", PYTHONPATH=str(SHIM_DIR))
    done = subprocess.run(
        [sys.executable, "-c", STOCK, tiny_v32], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "REFUSED --nsa-prefill-backend 2" in done.stdout
    assert "REFUSED --dsa-decode-backend 2" in done.stdout
    assert "FAILED RuntimeError Found no NVIDIA driver" in done.stdout



@pytest.mark.parametrize("mode, strategy", [("in-seq-split", "zigzag"), ("round-robin-split", "interleave")])
def test_cookbook_context_parallel_spellings_are_aliases(host, mode, strategy):
    cookbook = parse(host, ["--model-path", "m", "--enable-nsa-prefill-context-parallel", "--nsa-prefill-cp-mode", mode])
    spelled = parse(host, ["--model-path", "m", "--enable-prefill-cp", "--cp-strategy", strategy])
    assert (cookbook.enable_prefill_cp, cookbook.cp_strategy) == (spelled.enable_prefill_cp, spelled.cp_strategy)
    assert (cookbook.enable_prefill_cp, cookbook.cp_strategy) == (True, strategy)
    plain = parse(host, ["--model-path", "m"])
    assert (plain.enable_prefill_cp, plain.cp_strategy) == (False, None)


def test_cookbook_cp_mode_refuses_other_values(host, capsys):
    with pytest.raises(SystemExit):
        parse(host, ["--model-path", "m", "--nsa-prefill-cp-mode", "zigzag"])
    assert "argument --nsa-prefill-cp-mode: invalid choice: 'zigzag'" in capsys.readouterr().err


def test_cookbook_cuda_graph_max_bs_means_the_decode_graphs(host):
    assert parse(host, ["--model-path", "m", "--cuda-graph-max-bs", "8"]).cuda_graph_max_bs_decode == 8
    assert parse(host, ["--model-path", "m"]).cuda_graph_max_bs_decode is None


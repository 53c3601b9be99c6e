"""Every ``launch_server`` command of the DeepSeek-V3.2 cookbook (sglang docs, "DeepSeek-V3.2": §3.2-3.7,
§4, §5), kept as written, through sglang's own parser and argument resolution with the plugin loaded, on
the GPUs the cookbook gives it (tests/deployment_harness.py pretends them; nothing is launched).

Each command either resolves to the plugin's implementation (its model, MTP draft, DSA attention backend
and kernels, parsers) with the meaning of every flag kept, or is refused at start-up with a message that
names the flag and the way out.
"""

import shlex

import pytest
from deployment_harness import assert_plugin_serves, resolve_commands

pytestmark = pytest.mark.slow

# The cookbook's shell text, verbatim; `# on <gpu>` lines (ours) say which GPUs a section is for.
COOKBOOK = r"""
# on h200 -- §3.2 Launch Examples (8xH200/B200)
# Launch with TP + DP (Recommended)
python -m sglang.launch_server --model deepseek-ai/DeepSeek-V3.2-Exp --tp 8 --dp 8 --enable-dp-attention

# Launch with EP + DP
python -m sglang.launch_server --model deepseek-ai/DeepSeek-V3.2-Exp --tp 8 --ep 8 --dp 8 --enable-dp-attention

# Launch with Pure TP
python -m sglang.launch_server --model deepseek-ai/DeepSeek-V3.2-Exp --tp 8

# Launch with TP on MI30x/MI35x
python3 -m sglang.launch_server --model deepseek-ai/DeepSeek-V3.2-Exp --tp 8 --nsa-prefill-backend tilelang --nsa-decode-backend tilelang

# on h200 -- §3.4 Multi-token Prediction
python -m sglang.launch_server --model deepseek-ai/DeepSeek-V3.2-Exp --tp 8 --dp 8 --enable-dp-attention --speculative-algorithm EAGLE --speculative-num-steps 3 --speculative-eagle-topk 1 --speculative-num-draft-tokens 4
python -m sglang.launch_server --model deepseek-ai/DeepSeek-V3.2-Exp --tp 8 --speculative-algorithm EAGLE --speculative-num-steps 3 --speculative-eagle-topk 1 --speculative-num-draft-tokens 4

# on b200 -- §3.5 NVFP4 Checkpoint (Blackwell)
python -m sglang.launch_server --model nvidia/DeepSeek-V3.2-NVFP4 --tp 4 --quantization modelopt_fp4 --moe-runner-backend flashinfer_trtllm --tool-call-parser deepseekv32 --reasoning-parser deepseek-v3

# on h200 -- §3.6 PD Disaggregation
python -m sglang.launch_server \
  --model-path deepseek-ai/DeepSeek-V3.2-Exp \
  --disaggregation-mode prefill \
  --host $LOCAL_IP \
  --port $PORT \
  --tp 8 \
  --dp 8 \
  --enable-dp-attention \
  --dist-init-addr ${HOST}:${DIST_PORT} \
  --trust-remote-code \
  --disaggregation-bootstrap-port 8998 \
  --mem-fraction-static 0.9
python -m sglang.launch_server \
  --model-path deepseek-ai/DeepSeek-V3.2-Exp \
  --disaggregation-mode decode \
  --host $LOCAL_IP \
  --port $PORT \
  --tp 8 \
  --dp 8 \
  --enable-dp-attention \
  --dist-init-addr ${HOST}:${DIST_PORT} \
  --trust-remote-code \
  --mem-fraction-static 0.9

# on h200 -- §3.7 DSA Context Parallel (verified on Hopper)
# In-seq splitting mode launched with EP + DP
python -m sglang.launch_server --model deepseek-ai/DeepSeek-V3.2-Exp --tp 8 --ep 8 --dp 2 --enable-dp-attention --enable-nsa-prefill-context-parallel --nsa-prefill-cp-mode in-seq-split --max-running-requests 32
# Launch with FusedMoe + CP8
python -m sglang.launch_server --model deepseek-ai/DeepSeek-V3.2-Exp --tp 8 --enable-nsa-prefill-context-parallel --nsa-prefill-cp-mode round-robin-split --max-running-requests 32
export SGLANG_PP_LAYER_PARTITION=30,31
python3 -m sglang.launch_server \
  --model-path deepseek-ai/DeepSeek-V3.2-Exp \
  --nnodes 2 --node-rank 0 \
  --dist-init-addr <HEAD_NODE_IP>:62001 \
  --tp 8 --pp-size 2 \
  --dp-size 1 --moe-dense-tp-size 1 \
  --enable-nsa-prefill-context-parallel \
  --nsa-prefill-cp-mode round-robin-split \
  --trust-remote-code \
  --disable-radix-cache \
  --mem-fraction-static 0.8 \
  --max-running-requests 128 \
  --chunked-prefill-size 16384 \
  --cuda-graph-max-bs 8 \
  --page-size 64 \
  --watchdog-timeout 3600 \
  --host 0.0.0.0 --port 8000 \
  --tool-call-parser deepseekv32
export SGLANG_PP_LAYER_PARTITION=30,31
python3 -m sglang.launch_server \
  --model-path deepseek-ai/DeepSeek-V3.2-Exp \
  --nnodes 2 --node-rank 1 \
  --dist-init-addr <HEAD_NODE_IP>:62001 \
  --tp 8 --pp-size 2 \
  --dp-size 1 --moe-dense-tp-size 1 \
  --enable-nsa-prefill-context-parallel \
  --nsa-prefill-cp-mode round-robin-split \
  --trust-remote-code \
  --disable-radix-cache \
  --mem-fraction-static 0.8 \
  --max-running-requests 128 \
  --chunked-prefill-size 16384 \
  --cuda-graph-max-bs 8 \
  --page-size 64 \
  --watchdog-timeout 3600 \
  --host 0.0.0.0 --port 8000 \
  --tool-call-parser deepseekv32
python -m sglang.launch_server \
  --model-path deepseek-ai/DeepSeek-V3.2-Exp \
  --served-model-name deepseek-v32 \
  --nnodes 2 --node-rank 0 \
  --dist-init-addr <PREFILL_HEAD_IP>:20102 \
  --tp 8 --pp-size 2 \
  --dp-size 1 --moe-dense-tp-size 1 \
  --enable-nsa-prefill-context-parallel \
  --nsa-prefill-cp-mode round-robin-split \
  --disaggregation-ib-device mlx5_bond_0,mlx5_bond_1,mlx5_bond_2,mlx5_bond_3 \
  --trust-remote-code \
  --disable-radix-cache \
  --max-running-requests 512 \
  --chunked-prefill-size 4096 \
  --context-length 131072 \
  --mem-fraction-static 0.9 \
  --page-size 64 \
  --enable-metrics \
  --collect-tokens-histogram \
  --tokenizer-worker-num 8 \
  --host 0.0.0.0 --port 30000
python -m sglang.launch_server \
  --model-path deepseek-ai/DeepSeek-V3.2-Exp \
  --served-model-name deepseek-v32-prefill \
  --nnodes 2 --node-rank 1 \
  --dist-init-addr <PREFILL_HEAD_IP>:20102 \
  --tp 8 --pp-size 2 \
  --dp-size 1 --moe-dense-tp-size 1 \
  --enable-nsa-prefill-context-parallel \
  --nsa-prefill-cp-mode round-robin-split \
  --disaggregation-ib-device mlx5_bond_0,mlx5_bond_1,mlx5_bond_2,mlx5_bond_3 \
  --trust-remote-code \
  --disable-radix-cache \
  --max-running-requests 512 \
  --chunked-prefill-size 4096 \
  --context-length 131072 \
  --mem-fraction-static 0.9 \
  --page-size 64 \
  --enable-metrics \
  --collect-tokens-histogram \
  --tokenizer-worker-num 8 \
  --host 0.0.0.0 --port 30000

# on h200 -- §4.2 Reasoning Parser, Tool Calling
python -m sglang.launch_server \
  --model deepseek-ai/DeepSeek-V3.2-Exp \
  --reasoning-parser deepseek-v3 \
  --tp 8 \
  --host 0.0.0.0 \
  --port 8000
python -m sglang.launch_server \
  --model deepseek-ai/DeepSeek-V3.2-Exp \
  --tool-call-parser deepseekv31 \
  --reasoning-parser deepseek-v3 \
  --chat-template ./examples/chat_template/tool_chat_template_deepseekv32.jinja \
  --tp 8 \
  --host 0.0.0.0 \
  --port 8000

# on b200 -- §5 Benchmark (8xB200)
python3 -m sglang.launch_server \
  --model-path deepseek-ai/DeepSeek-V3.2-Exp \
  --tp 8 \
  --speculative-algorithm EAGLE \
  --speculative-num-steps 3 \
  --speculative-eagle-topk 1 \
  --speculative-num-draft-tokens 4 \
  --host 0.0.0.0 \
  --port 8000
python3 -m sglang.launch_server \
  --model-path deepseek-ai/DeepSeek-V3.2-Exp \
  --tp 8 \
  --ep 8 \
  --dp 8 \
  --enable-dp-attention \
  --host 0.0.0.0 \
  --port 8000
python -m sglang.launch_server --model deepseek-ai/DeepSeek-V3.2-Exp --tp 8 --dp 8 --enable-dp-attention
python3 -m sglang.launch_server \
  --model-path deepseek-ai/DeepSeek-V3.2 \
  --trust-remote-code \
  --tp-size 8 --dp-size 8 --enable-dp-attention \
  --tool-call-parser deepseekv32 \
  --reasoning-parser deepseek-v3
"""

# The cookbook's placeholders, filled.
PLACEHOLDERS = {"$LOCAL_IP": "10.0.0.2", "$PORT": "30000", "${HOST}": "10.0.0.1", "${DIST_PORT}": "5000",
                "<HEAD_NODE_IP>": "10.0.0.1", "<PREFILL_HEAD_IP>": "10.0.0.3"}

# Refused at start-up: a fragment of the flag's name and of the way out, per refusal.
REFUSED = {
    # tilelang is a kernel library of sglang's in-tree DSA backend; the plugin's backend has none (on
    # MI30x/MI35x too: the plugin's dispatch refuses the name before looking at the GPU).
    "--nsa-prefill-backend tilelang": ("--dsa-prefill-backend tilelang", "Choices that work on this machine"),
    # ModelOpt NVFP4 weights: the plugin's model loads bf16 and FP8 block-scaled checkpoints.
    "--quantization modelopt_fp4": ("--quantization modelopt_fp4", "SGLANG_PLUGINS=none"),
}

def cookbook_commands() -> list[dict]:
    """One job per command: argv after ``-m sglang.launch_server`` (placeholders filled), its GPUs, its env."""
    jobs, hardware, env, pending = [], None, {}, ""
    for line in COOKBOOK.splitlines():
        if pending or line.startswith(("python -m sglang.launch_server", "python3 -m sglang.launch_server")):
            pending += line.rstrip("\\") + " "
            if not line.endswith("\\"):
                for placeholder, value in PLACEHOLDERS.items():
                    pending = pending.replace(placeholder, value)
                jobs.append({"argv": shlex.split(pending)[3:], "hardware": hardware, "env": env, "text": pending})
                pending, env = "", {}
        elif line.startswith("# on "):
            hardware = line.split()[2]
        elif line.startswith("export "):
            name, value = line.removeprefix("export ").split("=", 1)
            env = {name: value}
    return jobs


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    jobs = cookbook_commands()
    results = resolve_commands([{k: job[k] for k in ("argv", "hardware", "env")} for job in jobs],
                               tmp_path_factory.mktemp("cookbook"))
    return list(zip(jobs, results, strict=True))


def refusal_for(text: str):
    return next((expected for flag, expected in REFUSED.items() if flag in text), None)


def test_the_cookbook_text_holds_every_command():
    jobs = cookbook_commands()
    assert len(jobs) == 21
    spelled = {arg for job in jobs for arg in job["argv"] if arg.startswith("--")}
    assert {"--model", "--model-path", "--tp-size", "--dp-size", "--pp-size", "--nsa-prefill-cp-mode",
            "--enable-nsa-prefill-context-parallel", "--disaggregation-mode", "--speculative-algorithm"} <= spelled
    assert not any(marker in job["text"] for job in jobs for marker in ("$", "<", ">"))


def test_refused_commands_name_the_flag_and_the_way_out(resolved):
    refused = [(job, result) for job, result in resolved if refusal_for(job["text"])]
    assert len(refused) == 2
    for job, result in refused:
        flag, way_out = refusal_for(job["text"])
        assert "error" in result, job["text"]
        assert flag in result["error"] and way_out in result["error"], result["error"]


def test_the_others_resolve_to_the_plugin_with_every_flag_kept(resolved):
    served = [(job, result) for job, result in resolved if not refusal_for(job["text"])]
    assert len(served) == 19
    for job, result in served:
        assert_plugin_serves(job["text"], result)

#!/usr/bin/env bash
# Install stock sglang 0.5.23 + this plugin into a fresh virtual environment, lean, for CPU machines.
#
#   bash scripts/install_cpu.sh [VENV_DIR]      (default: .venv in the repo root)
#
# Lean recipe (docs/architecture.md, "Installing"): the CUDA torch build (it imports fine without a GPU;
# a CPU torch has no matching torchvision), the pure-Python packages sglang imports on CPU, then sglang
# itself without the requirements listed below. The plugin is installed with --no-deps for the same
# reason; it brings its own stand-in for the CUDA-only sgl_kernel. sglang goes in last and --no-deps, so
# pip never checks its requirements and prints no resolver errors about what is left out on purpose;
# `pip check` lists exactly LEFT_OUT_GPU and LEFT_OUT_UNUSED (tests/test_install_cpu.py). ~3 min and ~6 GB
# on a warm pip cache.
set -euo pipefail

# CUDA builds, GPU kernel libraries and their JIT toolchains: nothing to run them on here (sglang-kernel's
# CPU ops come from the plugin's stand-in; HF `kernels` only fetches GPU kernels for FA3).
LEFT_OUT_GPU=(sglang-kernel flashinfer-python cuda-python flash-attn-4 humming-kernels nvidia-cutlass-dsl
    nvidia-mathdx nvidia-ml-py nvshmem4py-cu13 quack-kernels sgl-deep-ep sgl-deep-gemm sgl-flash-mla tilelang
    torch-memory-saver kernels ninja deepseek-recipe)
# Features the CPU server of a DeepSeek-V3.2 checkpoint never imports: other API front ends (anthropic,
# gRPC, gpt-oss's harmony), other grammar backends (xgrammar is in), audio/vision models, model hubs and
# dataset tools, profilers and file watchers. Install one with pip if you use its feature.
LEFT_OUT_UNUSED=(anthropic smg-grpc-servicer openai-harmony tml-renderers outlines llguidance interegular
    mistral-common tiktoken torchaudio torchcodec timm datasets modelscope blobfile easydict scipy numba py-spy
    watchfiles xxhash zstandard python-dateutil)

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$REPO/.venv}"
PYTHON="${PYTHON:-python3.11}"

"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet)
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1 triton==3.8.0
"${PIP[@]}" numpy transformers==5.19.0 tokenizers==0.23.2 msgspec pydantic fastapi "uvicorn>=0.51" orjson \
    "pyzmq>=25.1.2" psutil requests aiohttp setproctitle packaging partial_json_parser pybase64 \
    python-multipart uvloop "prometheus-client>=0.20.0" pillow openai==2.8.0 xgrammar==0.2.7 dill \
    sentencepiece==0.2.1 compressed-tensors==0.18.0 gguf einops jsonschema IPython soundfile==0.13.1 \
    safetensors "setuptools>=70" build pytest pytest-benchmark apache-tvm-ffi==0.1.11
# Prefill-decode disaggregation (tests/e2e/test_pd_disaggregation.py): the host's router and Mooncake's
# transfer engine built without CUDA, whose TCP transport moves the KV caches between CPU servers. The
# engine links libibverbs.so.1 even for TCP: Debian's libibverbs1 (root and apt only; else the PD tests fail).
"${PIP[@]}" sglang-router==0.3.2 mooncake-transfer-engine-non-cuda==0.3.13.post1
if ! ldconfig -p | grep -q 'libibverbs\.so\.1 '; then
    (apt-get update -qq && apt-get install -y -qq libibverbs1) >/dev/null || echo "install_cpu.sh: could not install libibverbs1 (apt-get); the PD disaggregation tests need it"
fi
"${PIP[@]}" --no-deps sglang==0.5.23
# The oldest Triton pyproject.toml allows, beside torch's (never imported unless put on PYTHONPATH): the
# kernels are compiled with both for every GPU target (tests/attention/test_compile_targets.py).
"${PIP[@]}" --no-deps --target "$VENV/triton-oldest" triton==3.6.0
"${PIP[@]}" --no-deps "$REPO"
echo "installed into $VENV: sglang 0.5.23 for the CPU; left out on purpose (\`pip check\` lists them):"
echo "  GPU only: ${LEFT_OUT_GPU[*]}"
echo "  not used by a CPU DeepSeek-V3.2 server: ${LEFT_OUT_UNUSED[*]}"

#!/usr/bin/env bash
# The main job on a machine without a GPU: install (once), build a tiny random-weight DeepSeek-V3.2
# checkpoint, start the stock sglang server with the plugin and DeepSeek-V3.2's flags on the CPU,
# send one chat request, print the answer, stop the server.
#
#   bash scripts/demo_cpu.sh          (installs into .venv on first use; ~3 min, ~6 GB)
#
# The answer is random text: the weights are random. What it shows is the whole path
# (plugin registration in every process, V3.2 model + DSA backend, chat encoding, parsers).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DSV32_VENV:-$REPO/.venv}"
PORT="${PORT:-30000}"
[ -x "$VENV/bin/python" ] || bash "$REPO/scripts/install_cpu.sh" "$VENV"
PY="$VENV/bin/python"

WORK="$(mktemp -d)"  # the server runs from here: the repo root must not shadow installed packages
cd "$WORK"
"$PY" -m dsv32_plugin.testing.tiny_checkpoint "$WORK/tiny-v32" --variant v32 >/dev/null

# SGLANG_USE_CPU_ENGINE=1 selects sglang's CPU engine; --max-total-tokens bounds the KV pool,
# which otherwise sizes itself from free RAM.
SGLANG_USE_CPU_ENGINE=1 setsid "$PY" -m sglang.launch_server \
    --model-path "$WORK/tiny-v32" --host 127.0.0.1 --port "$PORT" \
    --tool-call-parser deepseekv32 --reasoning-parser deepseek-v3 \
    --device cpu --disable-cuda-graph --skip-server-warmup --max-total-tokens 4096 \
    >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill -TERM -- -$SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT

"$PY" - "$PORT" "$SERVER" "$WORK/server.log" <<'PYEOF'
import json, os, sys, time, urllib.request

port, pid, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
url = f"http://127.0.0.1:{port}"
deadline = time.time() + 600
while True:
    try:
        urllib.request.urlopen(url + "/health", timeout=5)
        break
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit("server exited; log:\n" + open(log).read()[-5000:])
        if time.time() > deadline:
            sys.exit("server not ready after 600 s; log: " + log)
        time.sleep(2)
print("".join(l for l in open(log) if "dsv32-plugin" in l), end="")
body = {"model": "tiny-v32", "max_tokens": 24, "temperature": 0,
        "messages": [{"role": "user", "content": "What is the capital of France?"}]}
req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                             {"Content-Type": "application/json"})
answer = json.loads(urllib.request.urlopen(req, timeout=300).read())
print("answer:", json.dumps(answer["choices"][0]["message"], ensure_ascii=False))
PYEOF

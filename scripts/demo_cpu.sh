#!/usr/bin/env bash
# The main job on a machine without a GPU: install (once), build a tiny random-weight DeepSeek-V3.2
# checkpoint, start the stock sglang server with the plugin and DeepSeek-V3.2's flags on the CPU,
# print what it chose (model class, attention backend and kernels, parsers), send one chat request,
# print the answer, stop the server cleanly and remove the temporary directory (scripts/demo_cpu.py).
#
#   bash scripts/demo_cpu.sh          (installs into .venv on first use; ~3 min, ~6 GB)
#
# PORT (default 30000) is the server's port; DEMO_DIR=<dir> keeps the checkpoint and server log there.
# The answer is random text: the weights are random. What it shows is the whole path
# (plugin registration in every process, V3.2 model + DSA backend, chat encoding, parsers).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DSV32_VENV:-$REPO/.venv}"
[ -x "$VENV/bin/python" ] || bash "$REPO/scripts/install_cpu.sh" "$VENV"
exec "$VENV/bin/python" "$REPO/scripts/demo_cpu.py"

#!/bin/bash
# The GPU tests on the device machine (H200 image: torch 2.11, triton 3.6, no sglang, no usable sgl_kernel).
#
#     bash tests/gpu/run_device.sh {all|kernels|bench|ops|tiny|real|pd} [pytest args...]   (carry [".big", ".whl"];
#                                                                                          pd: [".big", ".pd"])
#
#   all      every -m gpu test of tests/ (the serving matrix too: more than one 10-minute call)
#   kernels  every kernel and backend GPU test (tests/kernels, tests/attention: the DSA backend driven as a
#            server drives it at real width against the float32 reference, CUDA-graph capture, FlashMLA)
#   bench    the GPU kernel benchmarks (tests/bench, --benchmark-only), JSON in $OUT/benchmarks-gpu.json
#   ops      the sgl_kernel stand-in's ops on CUDA (float64 twins, CUDA-graph replay) and the Rust TreeCore probe
#   tiny     the serving matrix on the tiny FP8 checkpoint (tests/gpu/test_gpu_serving.py -k tiny)
#   real     the same on the real-width dummy-weight checkpoint (-k real)
#   pd       prefill-decode disaggregation on one GPU against one server (tests/gpu/test_gpu_pd.py; .pd/ from
#            tests/gpu/pd_wheels.sh: .big/ and .whl/ together leave too little of the 64 MiB carry, and FlashMLA is
#            not needed there)
#
# With a full sglang install on a GPU machine none of this is needed: `cd tests && pytest -m gpu` (docs/gpu_testing.md).
#
# Needs, in the repo root here: .big/ from ../shared/tools/device_sglang/pack.sh (stock sglang 0.5.23 and its
# pure-Python needs; .big/run.sh installs them and this checkout on the device) and, for the FlashMLA backend,
# .whl/ from ../shared/tools/peer_wheels.sh. The test-only sgl_kernel stand-in (tests/gpu_standin/site) goes first
# on PYTHONPATH. DSV32_GPU_CONFIGS="name ..." limits the serving configurations (serving_driver.configs); no server
# starts later than DSV32_GPU_DEADLINE_S (default 300) seconds into the driver, so a call ends inside the 10-minute limit.
# Results in $OUT (default ./gpu-out): pytest-<what>.log, junit-<what>.xml, serving-<kind>.json.
set -uo pipefail
what=${1:-}
shift || true
export OUT=${OUT:-$PWD/gpu-out}
case $what in
  all) selection=(.) ;;
  kernels) selection=(kernels attention) ;;
  bench) selection=(bench --benchmark-only --benchmark-json "$OUT/benchmarks-gpu.json") ;;
  ops) selection=(gpu_standin gpu/test_tree_core_probe.py) ;;
  tiny | real) selection=(gpu/test_gpu_serving.py -k "$what") ;;
  pd) selection=(gpu/test_gpu_pd.py) ;;
  *) echo "usage: bash tests/gpu/run_device.sh all|kernels|bench|ops|tiny|real|pd [pytest args...]" >&2; exit 2 ;;
esac
[ -f .big/run.sh ] || { echo "no .big/run.sh: run ../shared/tools/device_sglang/pack.sh here and carry .big" >&2; exit 2; }
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/peer-site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/peer-site${PYTHONPATH:+:$PYTHONPATH}
fi
# PD: Mooncake's transfer engine alone and sglang_router's Python files (test_gpu_pd.py adds the system
# libraries from .pd/debs/ that the engine lacks here).
if [ -f .pd/pd-site.tar.xz ]; then
  rm -rf /tmp/pd-site && mkdir -p /tmp/pd-site && tar xJf .pd/pd-site.tar.xz -C /tmp/pd-site || exit 1
  export PYTHONPATH=/tmp/pd-site${PYTHONPATH:+:$PYTHONPATH}
fi
export SGL_KERNEL_STANDIN=$PWD/tests/gpu_standin/site DSV32_GPU_OUT=$OUT PYTHONUNBUFFERED=1
export DSV32_GPU_DEADLINE_S=${DSV32_GPU_DEADLINE_S:-300}
bash .big/run.sh bash -c 'cd tests && python3 -m pytest -m gpu -p no:cacheprovider -rA \
  --junitxml "$OUT/junit-'"$what"'.xml" "$@"' run_device "${selection[@]}" "$@" 2>&1 | tee "$OUT/pytest-$what.log"

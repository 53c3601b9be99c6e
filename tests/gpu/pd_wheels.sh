#!/bin/bash
# Fill the ignored .whl/ with what `bash tests/gpu/run_device.sh pd` needs on the device, which has no network:
# the host's router and the CUDA build of Mooncake's transfer engine (wheels for the device's Python 3.12; run_device.sh
# installs .whl/*.whl), and, in .whl/debs/, the libibverbs Mooncake's engine links even for TCP (test_gpu_pd.py unpacks it).
#
#     bash tests/gpu/pd_wheels.sh [12|13]      (the CUDA major of the device's torch; default 12)
set -euo pipefail
cuda=${1:-12}
case $cuda in
  12) mooncake=mooncake-transfer-engine==0.3.13.post1 ;;
  13) mooncake=mooncake-transfer-engine-cuda13==0.3.14 ;;
  *) echo "usage: bash tests/gpu/pd_wheels.sh [12|13]" >&2; exit 2 ;;
esac
mkdir -p .whl/debs
rm -f .whl/mooncake_transfer_engine*.whl
pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 -d .whl "$mooncake" sglang-router==0.3.2
(cd .whl/debs && apt-get download -q libibverbs1 libnl-3-200 libnl-route-3-200)
ls .whl .whl/debs

#!/bin/bash
# Fill the ignored .pd/ with what `bash tests/gpu/run_device.sh pd` needs on the device, which has no network,
# small enough to carry beside .big/ (a device call carries at most 64 MiB of ignored paths; .big/ takes 37):
#
#   .pd/pd-site.tar.xz  Mooncake's transfer engine alone, from the CUDA build's wheel: mooncake/engine.so and the
#                       libraries it links (readelf NEEDED/RPATH closure; no store, EP, PG, master or client), which
#                       is all sglang's Mooncake backend imports; and sglang_router's Python files, whose mini load
#                       balancer the test starts (tests/e2e/mini_lb.py) since the Rust router (90 MB) stays here.
#                       run_device.sh unpacks it onto PYTHONPATH.
#   .pd/debs/           Debian packages of the system libraries the engine links (libibverbs and libmlx5 even for
#                       TCP, libnuma, libcurl and theirs; not glibc or libstdc++); test_gpu_pd.py puts on
#                       LD_LIBRARY_PATH only those the device lacks (tests/gpu/pd_pack.py).
#
#     bash tests/gpu/pd_wheels.sh [13|12]      (the CUDA major of the device's torch; default 13: torch 2.11+cu130)
#
# PD_WHEELHOUSE=DIR takes the two wheels from DIR (pip --no-index --find-links DIR) instead of PyPI.
set -euo pipefail
cuda=${1:-13}
case $cuda in
  12) mooncake=mooncake-transfer-engine==0.3.13.post1 ;;
  13) mooncake=mooncake-transfer-engine-cuda13==0.3.14 ;;
  *) echo "usage: bash tests/gpu/pd_wheels.sh [13|12]" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
index=()
[ -n "${PD_WHEELHOUSE:-}" ] && index=(--no-index --find-links "$PD_WHEELHOUSE")
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 "${index[@]}" -d "$T/wheels" \
    "$mooncake" sglang-router==0.3.2
python3 -m zipfile -e "$T"/wheels/mooncake_transfer_engine*.whl "$T/mooncake"
python3 -m zipfile -e "$T"/wheels/sglang_router-*.whl "$T/router"
python3 "$here/pd_pack.py" mooncake "$T/mooncake" "$T/site"
python3 "$here/pd_pack.py" router "$T/router" "$T/site"
python3 "$here/pd_pack.py" check "$T/site"
rm -rf .pd
mkdir -p .pd/debs
(cd "$T/site" && tar --sort=name --owner=0 --group=0 --numeric-owner -cf - . | xz -9e -T0) > .pd/pd-site.tar.xz
packages=$(python3 "$here/pd_pack.py" packages "$T/site/mooncake/engine.so")
(cd .pd/debs && apt-get download -q $packages)
echo "unpacked: $(du -sh --apparent-size "$T/site" | cut -f1); carried:"
du -b .pd/pd-site.tar.xz
du -cb .pd/debs/*.deb | tail -1 | sed 's/total/.pd\/debs (total)/'
du -sb .pd

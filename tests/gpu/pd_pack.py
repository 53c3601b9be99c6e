"""What the one-GPU PD comparison carries to the device, trimmed to fit (``pd_wheels.sh``), and its device side.

A device call carries at most 64 MiB of ignored paths, and ``.big/`` (stock sglang) takes 37 of them. The wheels
themselves do not fit: Mooncake's CUDA 13 build is 50 MB (store, EP, PG, master and client beside the transfer
engine) and sglang-router 31 MB (90 MB unpacked, nearly all of it the Rust router). sglang's Mooncake backend
imports only ``mooncake.engine.TransferEngine``, and sglang_router ships a Python PD load balancer (``mini_lb``).

Here (``pd_wheels.sh``)::

    python pd_pack.py mooncake SRC DEST    # mooncake/engine.so + the libraries it links from SRC (an unpacked wheel
                                           # or a site-packages) into DEST, with a one-line mooncake/__init__.py
    python pd_pack.py router SRC DEST      # sglang_router's Python files (no Rust extension) into DEST
    python pd_pack.py check DEST           # ldd of DEST's engine.so here: what it does not find
    python pd_pack.py packages ELF         # the Debian packages of the system libraries ELF links (ldd + dpkg -S)

On the device, ``test_gpu_pd.py`` calls ``missing_libs_env``: of the carried Debian packages' libraries, only those
the device lacks go on ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ENGINE = Path("mooncake") / "engine.so"
# glibc, the C++ runtime: wherever Python and torch run.
BASE = {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libresolv.so.2",
        "ld-linux-x86-64.so.2", "linux-vdso.so.1", "libstdc++.so.6", "libgcc_s.so.1"}
# The CUDA build's: the driver, and the runtime torch loads before sglang imports Mooncake (same soname).
FROM_THE_DEVICE = re.compile(r"libcuda\.so\.1|libcudart\.so\.\d+")
# One rdma-core release: a provider needs its own libibverbs' private symbol version.
TOGETHER = ({"libibverbs.so.1", "libmlx5.so.1"},)
INIT = '"""Mooncake\'s transfer engine alone ({}), trimmed by dsv32-plugin\'s tests/gpu/pd_wheels.sh."""\n'


def dynamic(path: Path) -> tuple[list[str], list[str]]:
    """``(NEEDED, RPATH + RUNPATH entries)`` of an ELF file, ``$ORIGIN`` expanded."""
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
    paths = [p.replace("$ORIGIN", str(path.parent)).replace("${ORIGIN}", str(path.parent))
             for entry in re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*?)\]", out)
             for p in entry.split(":") if p]
    return needed, paths


def engine_closure(src: Path) -> list[Path]:
    """``mooncake/engine.so`` and every library under ``src`` it loads, through NEEDED and RPATH (paths under ``src``).

    A DT_RPATH applies to the libraries its object loads and theirs, so each object is searched for in its own
    and its loaders' RPATH directories, as ld.so does; what no such directory under ``src`` holds is the system's.
    """
    src = src.resolve()
    found, todo = [], [(src / ENGINE, ())]
    while todo:
        path, inherited = todo.pop()
        if path in found:
            continue
        found.append(path)
        needed, rpath = dynamic(path)
        dirs = (*rpath, *inherited)
        for name in needed:
            hit = next((Path(d) / name for d in dirs if (Path(d) / name).is_file()), None)
            if hit is not None and hit.resolve().is_relative_to(src):
                todo.append((hit.resolve(), dirs))
    return sorted(p.relative_to(src) for p in found)


def trim_mooncake(src: Path, dest: Path) -> list[Path]:
    """Copy the engine's closure from ``src`` into ``dest`` (same relative paths: the RPATHs still resolve)."""
    files = engine_closure(src)
    dist = sorted(p.name for p in src.glob("mooncake_transfer_engine*.dist-info"))
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dest / rel)
    # The wheel's own __init__ extends the package path (a fuller install elsewhere would fill in what is not
    # here) and, in 0.3.13, imports the store; the engine needs neither.
    (dest / "mooncake" / "__init__.py").write_text(INIT.format(", ".join(dist) or "mooncake"))
    return files


def trim_router(src: Path, dest: Path) -> list[Path]:
    """Copy ``sglang_router/*.py`` from ``src`` into ``dest``: the package without its Rust extension."""
    files = sorted(p.relative_to(src) for p in (src / "sglang_router").glob("*.py"))
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dest / rel)
    return files


def ldd(elf: Path, env: dict | None = None) -> tuple[dict[str, str | None], str]:
    """``({soname: resolved path, or None when not found}, stderr)`` of ``ldd elf``."""
    proc = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env=env)
    libs: dict[str, str | None] = {}
    for line in proc.stdout.splitlines():
        if m := re.match(r"\s*(\S+) => not found", line):
            libs[m[1]] = None
        elif m := re.match(r"\s*(\S+) => (/\S+)", line):
            libs[m[1]] = m[2]
    return libs, proc.stderr


def check(dest: Path) -> list[str]:
    """What ``dest``'s engine.so does not find here, besides the CUDA driver and runtime (the device's)."""
    libs, err = ldd(dest / ENGINE)
    outside = sorted(n for n, p in libs.items() if p and n not in BASE and not FROM_THE_DEVICE.fullmatch(n)
                     and not Path(p).resolve().is_relative_to(dest.resolve()))
    missing = sorted(n for n, p in libs.items() if p is None)
    print(f"[pd_pack] {dest / ENGINE}: {len(libs)} libraries; from the system (Debian packages carried): "
          f"{' '.join(outside) or '-'}; not found here: {' '.join(missing) or '-'}"
          f"{(' ' + err.strip()) if err.strip() else ''}")
    return [n for n in missing if not FROM_THE_DEVICE.fullmatch(n)]


def packages(elf: Path) -> list[str]:
    """The Debian packages holding the libraries ``elf`` resolves to here outside its package (not glibc, libstdc++)."""
    libs, _ = ldd(elf)
    root = elf.resolve().parents[1]
    names = sorted(n for n, p in libs.items() if p and n not in BASE and not FROM_THE_DEVICE.fullmatch(n)
                   and not Path(p).resolve().is_relative_to(root))
    found = set()
    for name in names:
        out = subprocess.run(["dpkg", "-S", f"*/{name}"], capture_output=True, text=True).stdout
        owners = [line.split(":")[0] for line in out.splitlines()
                  if ": " in line and Path(line.split(": ", 1)[1]).name == name and not line.startswith("diversion")]
        if not owners:
            print(f"[pd_pack] no Debian package here holds {name}: the device must have it", file=sys.stderr)
        found.update(owners[:1])
    return sorted(found)


def missing_libs_env(elf: Path, debs: list[Path], work: Path, env: dict) -> tuple[dict, list[str], list[str]]:
    """``env`` with what ``elf`` lacks here, from the Debian packages ``debs``, on ``LD_LIBRARY_PATH``.

    Unpacks the packages under ``work/root`` and copies into ``work/lib`` each library ``ldd`` reports not
    found that they hold (a library of ``TOGETHER`` brings the rest of its set), until none is left that they
    hold; the system's own libraries stay first for the rest. Returns ``(env, added, still missing)``.
    """
    root, lib = work / "root", work / "lib"
    lib.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    held = {p.name: p for p in root.glob("**/*.so*") if p.is_file()}
    env = dict(env)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(lib), *filter(None, [env.get("LD_LIBRARY_PATH")])])
    added: list[str] = []
    while True:
        libs, _ = ldd(elf, env)
        missing = {n for n, p in libs.items() if p is None}
        new = {n for n in missing if n in held}
        for group in TOGETHER:
            if new & group:
                new |= {n for n in group if n in held}
        new -= set(added)
        if not new:
            break
        for name in sorted(new):
            shutil.copy2(held[name], lib / name)  # follows the packages' soname links
            added.append(name)
    if not added:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(env["LD_LIBRARY_PATH"].split(os.pathsep)[1:])
        if not env["LD_LIBRARY_PATH"]:
            del env["LD_LIBRARY_PATH"]
    return env, sorted(added), sorted(missing)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for what in ("mooncake", "router"):
        p = sub.add_parser(what)
        p.add_argument("src", type=Path)
        p.add_argument("dest", type=Path)
    sub.add_parser("check").add_argument("dest", type=Path)
    sub.add_parser("packages").add_argument("elf", type=Path)
    args = parser.parse_args(argv)
    if args.what == "mooncake":
        files = trim_mooncake(args.src, args.dest)
        print(f"[pd_pack] mooncake: {' '.join(map(str, files))} + mooncake/__init__.py")
    elif args.what == "router":
        files = trim_router(args.src, args.dest)
        print(f"[pd_pack] sglang_router: {' '.join(p.name for p in files)}")
    elif args.what == "check":
        unexpected = check(args.dest)
        if unexpected:
            print(f"[pd_pack] not found here (install it here, or the device must have it): {' '.join(unexpected)}",
                  file=sys.stderr)
    else:
        print(" ".join(packages(args.elf)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

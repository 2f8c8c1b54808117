#!/usr/bin/env bash
# Installs what scripts/build-guests.sh needs, on a fresh Debian machine:
# Debian's rustc-web (a wasm32-capable rustc 1.96 with std sources) and
# lld, wasm-tools (crates.io) and componentize-py (PyPI). Idempotent.
set -euo pipefail

if ! [ -x /usr/bin/cargo ] || ! command -v wasm-ld-19 >/dev/null || ! [ -d /usr/lib/rustlib/src ]; then
  echo "toolchain: apt-get install rustc-web cargo-web rust-web-src lld-19"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq rustc-web cargo-web rust-web-src lld-19 >/dev/null
fi

if ! command -v wasm-tools >/dev/null || ! wasm-tools --version | grep -q '^wasm-tools 1.263.0'; then
  echo "toolchain: cargo install wasm-tools 1.263.0"
  # rustup's cargo (not Debian's): the host toolchain builds host tools.
  "${HOME}/.cargo/bin/cargo" install --quiet --locked wasm-tools --version 1.263.0 \
    --no-default-features --features component,validate
fi

if ! command -v componentize-py >/dev/null || ! componentize-py --version 2>/dev/null | grep -q '0.25.1'; then
  echo "toolchain: pip install componentize-py==0.25.1"
  python3 -m pip install --quiet componentize-py==0.25.1
fi
echo "toolchain: ready ($(/usr/bin/rustc --version), $(wasm-tools --version), componentize-py $(componentize-py --version 2>/dev/null | awk '{print $NF}'))"

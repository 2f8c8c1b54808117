#!/usr/bin/env bash
# Installs what scripts/build-guests.sh needs, on a fresh Debian machine:
#   - Debian's rustc-web / cargo-web / rust-web-src (a rustc 1.96 with std
#     sources, so -Zbuild-std can target wasm32; rustup's toolchain has no
#     wasm target here) and lld-19 (wasm-ld-19)            [apt, needs root]
#   - wasm-tools (crates.io, built with rustup's cargo)
#   - componentize-py 0.25.1 (PyPI), for the Python example
#   - clang-19, wasi-libc and wasm32 compiler-rt (Debian) and wit-bindgen
#     0.46.0 (crates.io), for the C example and `plugin new --lang c`
#   - rustup's wasm32-wasip2 target when rustup can add it, for
#     `switchboard plugin build` of Rust plugins outside this repository
#   (JavaScript needs only Node.js and npm: componentize-js is pinned in
#   each plugin's package.json and installed by npm ci.)
# Idempotent: each step is skipped when its tool is already there.
#
# usage: scripts/install-guest-toolchain.sh [--no-apt]
#   --no-apt  never call apt-get; fail with a hint when the Debian packages
#             are missing (build-guests.sh uses this)
set -euo pipefail

no_apt=false
[ "${1:-}" = "--no-apt" ] && no_apt=true

wasm_tools_version=1.263.0   # rust-version 1.88: builds with rustup's 1.95
componentize_py_version=0.25.1
wit_bindgen_version=0.46.0   # the guest SDK's wit-bindgen
py=${PYTHON:-python3}
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
export PATH="$PATH:$cargo_bin"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Debian's packages: a wasm-capable Rust and linker, and clang for
#    wasm32 with wasi-libc (C guests). One apt-get for whatever is missing.
debian_ok() {
  [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && command -v wasm-ld-19 >/dev/null &&
    [ -d /usr/lib/rustlib/src/rust/library ] &&
    [ "$(printf '1.96\n%s\n' "$(/usr/bin/rustc --version | awk '{print $2}')" | sort -V | head -1)" = 1.96 ]
}
c_ok() { command -v clang-19 >/dev/null && [ -f /usr/lib/wasm32-wasi/libc.a ] &&
  compgen -G '/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a' >/dev/null; }
packages=()
debian_ok || packages+=(rustc-web cargo-web rust-web-src lld-19)
c_ok || packages+=(clang-19 wasi-libc libclang-rt-19-dev-wasm32)
if [ ${#packages[@]} -gt 0 ]; then
  if $no_apt; then
    echo "toolchain: Debian packages missing: ${packages[*]};" >&2
    echo "           run scripts/install-guest-toolchain.sh (uses apt-get)" >&2
    exit 1
  fi
  echo "toolchain: apt-get install ${packages[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  debian_ok || { echo "toolchain: rustc-web is older than 1.96 or incomplete" >&2; exit 1; }
  c_ok || { echo "toolchain: clang-19 / wasi-libc incomplete" >&2; exit 1; }
fi

# 2. wasm-tools and wit-bindgen, only when missing (built with rustup's
#    cargo; Debian's is only for wasm guests).
host_install() { # crate version [cargo install args...]
  local crate=$1 version=$2; shift 2
  echo "toolchain: cargo install $crate $version (a few minutes, once)"
  host_cargo=$cargo_bin/cargo
  [ -x "$host_cargo" ] || host_cargo=$(command -v cargo)
  # An outer cargo's settings must not redirect or alter this install.
  (unset CARGO_TARGET_DIR CARGO_BUILD_TARGET CARGO_BUILD_TARGET_DIR RUSTC RUSTC_WRAPPER \
     RUSTC_WORKSPACE_WRAPPER RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS \
     CARGO_MAKEFLAGS MAKEFLAGS MFLAGS RUSTC_BOOTSTRAP
   "$host_cargo" install --locked "$crate" --version "$version" "$@")
}
command -v wasm-tools >/dev/null ||
  host_install wasm-tools "$wasm_tools_version" --no-default-features --features component,validate
[ "$(wit-bindgen --version 2>/dev/null | awk '{print $2}')" = "$wit_bindgen_version" ] ||
  host_install wit-bindgen-cli "$wit_bindgen_version"

# 2b. rustup's wasm32-wasip2, when rustup can add it (it needs the Rust
#     distribution server; where that is out of reach, Debian's rustc-web
#     above builds Rust guests instead).
if command -v rustup >/dev/null && ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  if timeout 120 rustup target add wasm32-wasip2 >/dev/null 2>&1; then
    echo "toolchain: rustup target add wasm32-wasip2"
  else
    echo "toolchain: rustup cannot add wasm32-wasip2 here; Rust plugins build with Debian's rustc-web"
  fi
fi

# 3. componentize-py, pinned: its output embeds its own CPython build.
py_has_componentize() {
  "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('componentize-py') != '$componentize_py_version')" 2>/dev/null
}
if ! py_has_componentize; then
  echo "toolchain: pip install componentize-py==$componentize_py_version"
  if ! "$py" -m pip --version >/dev/null 2>&1; then
    $no_apt && { echo "toolchain: $py has no pip; run scripts/install-guest-toolchain.sh" >&2; exit 1; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
  fi
  # Debian's own python3 refuses plain pip installs (PEP 668); a pyenv or
  # venv python does not need the override.
  "$py" -m pip install --quiet "componentize-py==$componentize_py_version" 2>/dev/null ||
    "$py" -m pip install --quiet --break-system-packages "componentize-py==$componentize_py_version"
  py_has_componentize
fi

echo "toolchain: ready ($(/usr/bin/rustc --version | awk '{print "rustc", $2}'), $(wasm-tools --version | awk '{print "wasm-tools", $2}'), componentize-py $componentize_py_version, $(wit-bindgen --version | awk '{print "wit-bindgen", $2}'), clang-19, node $(node --version))"

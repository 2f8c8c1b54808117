#!/usr/bin/env bash
# Builds every guest component from source:
#   plugins/{chat,guard,chatroom}  -> plugins/<name>.wasm   (Rust, the examples)
#   plugins/py-echo/app.py         -> plugins/py-echo.wasm  (Python, componentize-py)
#   tests/fixtures/*               -> target/guests/<name>.wasm (sandbox / reload fixtures)
# Rust guests use Debian's rustc-web (wasm32 std sources, -Zbuild-std) since
# the rustup toolchain has no wasm target; scripts/install-guest-toolchain.sh
# installs it. Incremental: a second run only relinks what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

for tool in /usr/bin/cargo wasm-ld-19 wasm-tools componentize-py; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-guest-toolchain.sh" >&2; exit 1; }
done

# An outer cargo (build scripts, cargo-make...) must not steer these builds.
unset CARGO_TARGET_DIR RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET CARGO_MAKEFLAGS RUSTC_WRAPPER
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-19
# A 256 KiB shadow stack instead of Rust's default 1 MiB: every call gets a
# fresh instance whose touched memory the host resets, so a smaller
# initial memory makes each call cheaper.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C link-arg=-zstack-size=262144"
wasm_target="$root/target/wasm"
out="$wasm_target/wasm32-unknown-unknown/release"
guests="$root/target/guests"
mkdir -p "$guests"

build() { # workspace dir, extra env...
  local dir=$1; shift
  (cd "$dir" && env "$@" /usr/bin/cargo build --quiet --release --target wasm32-unknown-unknown \
      -Zbuild-std=std,panic_abort --target-dir "$wasm_target")
}

componentize() { # core module, component
  wasm-tools component new "$1" -o "$2.tmp"
  wasm-tools validate --features component-model "$2.tmp"
  mv "$2.tmp" "$2"
}

start=$(date +%s)
echo "guests: building plugins/ (Rust)"
build plugins
for name in chat guard chatroom; do
  componentize "$out/$name.wasm" "plugins/$name.wasm"
done

echo "guests: building tests/fixtures/ (Rust)"
build tests/fixtures
for name in looper hog trapper; do
  componentize "$out/$name.wasm" "$guests/$name.wasm"
done
for v in 1 2; do
  build tests/fixtures COUNTER_VERSION=$v
  componentize "$out/counter.wasm" "$guests/counter-v$v.wasm"
done
# Not a component at all: the hot-reload test's "bad upgrade".
printf 'this is not a wasm component\n' > "$guests/broken.wasm"

echo "guests: building plugins/py-echo (Python)"
py_src=plugins/py-echo/app.py
if [ ! -f plugins/py-echo.wasm ] || [ "$py_src" -nt plugins/py-echo.wasm ] || [ wit/plugin.wit -nt plugins/py-echo.wasm ]; then
  componentize-py -d wit -w plugin componentize --stub-wasi -p plugins/py-echo app -o plugins/py-echo.wasm.tmp >/dev/null
  wasm-tools validate --features component-model plugins/py-echo.wasm.tmp
  mv plugins/py-echo.wasm.tmp plugins/py-echo.wasm
fi

echo "guests: done in $(( $(date +%s) - start )) s:"
ls -l plugins/*.wasm "$guests"/*.wasm | awk '{print "  " $5 "\t" $9}'

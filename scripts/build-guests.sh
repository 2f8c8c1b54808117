#!/usr/bin/env bash
# Builds every guest component from source:
#   plugins/<crate>/          -> plugins/<crate>.wasm         (Rust examples; every crate there)
#   plugins/py-echo/app.py    -> plugins/py-echo.wasm         (Python, componentize-py)
#   plugins/js-echo/app.js    -> plugins/js-echo.wasm         (JavaScript, componentize-js from npm)
#   plugins/c-echo/app.c      -> plugins/c-echo.wasm          (C, wit-bindgen c + clang-19 + wasi-libc)
#   tests/fixtures/<crate>/   -> target/guests/<crate>.wasm   (sandbox fixtures)
#   tests/fixtures/counter    -> target/guests/counter-v{1,2}.wasm (hot-reload fixture, built twice)
#   (garbage bytes)           -> target/guests/broken.wasm    (the "bad upgrade")
#
# usage: scripts/build-guests.sh     (no arguments; run from anywhere)
#
# (cargo prints what it compiles: the first build takes a few minutes.)
# Rust guests build with Debian's rustc-web and -Zbuild-std whether or not
# rustup has wasm32-wasip2: the sandbox and reload suites are tuned to this
# build (a 256 KiB shadow stack, std with panic_abort, no WASI imports).
# One target dir, target/wasm, so std is compiled once for both
# workspaces. Outputs are replaced only when their bytes change, so a
# second run is quick and leaves mtimes alone (the host's plugin watcher
# sees no spurious reloads). Everything it needs is installed first by
# scripts/install-guest-toolchain.sh (apt through sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# An outer cargo (a build script, cargo-make, CI) must not steer these
# builds: drop its target dir, flags, wrappers, profile overrides, jobserver
# and build-script variables. Registry, network and terminal settings stay.
for var in $(compgen -e); do
  case $var in
    CARGO_HOME | CARGO_NET_* | CARGO_HTTP_* | CARGO_REGISTRIES_* | CARGO_REGISTRY_* | CARGO_TERM_*) ;;
    CARGO* | __CARGO* | RUSTC* | RUSTDOC* | RUSTFLAGS | MAKEFLAGS | MFLAGS | OUT_DIR | TARGET | HOST | NUM_JOBS | \
      OPT_LEVEL | PROFILE | DEBUG) unset "$var" ;;
  esac
done

bash scripts/install-guest-toolchain.sh
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
py=${PYTHON:-python3}

export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-19
# A 256 KiB shadow stack instead of Rust's default 1 MiB: the host resets a
# guest's touched memory between calls, so a smaller initial memory makes
# each call cheaper.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C link-arg=-zstack-size=262144"

wasm_target=$root/target/wasm
core=$wasm_target/wasm32-unknown-unknown/release
guests=$root/target/guests
work=$root/target/guests-work
mkdir -p "$guests" "$work"

step() { echo "guests: $* (${SECONDS}s)"; }

cargo_wasm() { # workspace dir, cargo args...
  local dir=$1; shift
  (cd "$dir" && /usr/bin/cargo build --locked --release --target wasm32-unknown-unknown \
    -Zbuild-std=std,panic_abort --target-dir "$wasm_target" "$@")
}

place() { # built file, destination: replaced only when the bytes differ
  if ! cmp -s "$1" "$2"; then
    cp "$1" "$2.tmp" && mv "$2.tmp" "$2"
    echo "  updated ${2#"$root"/}"
  fi
}

componentize() { # core module, component
  wasm-tools component new "$1" -o "$work/component.wasm"
  place "$work/component.wasm" "$2"
}

crates() { # workspace dir: its member crates (each folder with a Cargo.toml)
  for manifest in "$1"/*/Cargo.toml; do basename "$(dirname "$manifest")"; done
}

step "building plugins/ (Rust)"
cargo_wasm plugins --workspace
for name in $(crates plugins); do
  componentize "$core/${name//-/_}.wasm" "plugins/$name.wasm"
done

step "building tests/fixtures/ (Rust)"
cargo_wasm tests/fixtures --workspace --exclude counter
for name in $(crates tests/fixtures); do
  [ "$name" = counter ] || componentize "$core/$name.wasm" "$guests/$name.wasm"
done
# One crate, two builds: `option_env!("COUNTER_VERSION")` is tracked by
# cargo, so each build relinks only the counter crate.
for v in 1 2; do
  COUNTER_VERSION=$v cargo_wasm tests/fixtures -p counter
  componentize "$core/counter.wasm" "$guests/counter-v$v.wasm"
done
printf 'not a wasm component\n\0\1\2\3' >"$work/broken.wasm"
place "$work/broken.wasm" "$guests/broken.wasm"

step "building plugins/py-echo (Python)"
py_out=plugins/py-echo.wasm
if [ ! -f "$py_out" ] || [ plugins/py-echo/app.py -nt "$py_out" ] || [ wit/plugin.wit -nt "$py_out" ]; then
  # --stub-wasi: the app needs no WASI, so the component imports none.
  PYTHONDONTWRITEBYTECODE=1 "$py" -c \
    'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())' \
    -d wit -w plugin componentize --stub-wasi -p plugins/py-echo app -o "$work/py-echo.wasm" >/dev/null
  place "$work/py-echo.wasm" "$py_out"
  touch "$py_out" # newer than its sources even when the bytes did not change
fi

step "building plugins/js-echo (JavaScript, componentize-js)"
js_out=plugins/js-echo.wasm
if [ ! -f "$js_out" ] || [ plugins/js-echo/app.js -nt "$js_out" ] || [ wit/plugin.wit -nt "$js_out" ] ||
  [ plugins/js-echo/package-lock.json -nt "$js_out" ]; then
  [ -d plugins/js-echo/node_modules/@bytecodealliance/componentize-js ] ||
    npm ci --prefix plugins/js-echo --no-audit --no-fund --loglevel=error
  # No WASI at all: the script needs no clock, random, stdio or http.
  (cd plugins/js-echo && npx --no-install componentize-js app.js --wit ../../wit --world-name plugin \
    --disable stdio random clocks http fetch-event -o "$work/js-echo.wasm" >/dev/null)
  place "$work/js-echo.wasm" "$js_out"
  touch "$js_out"
fi

step "building plugins/c-echo (C, wit-bindgen c + clang + wasi-libc)"
c_out=plugins/c-echo.wasm
if [ ! -f "$c_out" ] || [ plugins/c-echo/app.c -nt "$c_out" ] || [ wit/plugin.wit -nt "$c_out" ]; then
  rm -rf "$work/c-gen" && wit-bindgen c wit --world plugin --out-dir "$work/c-gen" >/dev/null 2>&1
  # The reactor start of wasi-libc: no main. Nothing linked needs WASI,
  # so the component imports only the host interface.
  clang-19 --target=wasm32-wasi -O2 -Wall -Werror -mexec-model=reactor -I "$work/c-gen" \
    plugins/c-echo/app.c "$work/c-gen/plugin.c" "$work/c-gen/plugin_component_type.o" -o "$work/c-echo.core.wasm"
  componentize "$work/c-echo.core.wasm" "$c_out"
  touch "$c_out"
fi

step "validating"
for f in plugins/*.wasm "$guests"/*.wasm; do
  [ "$f" = "$guests/broken.wasm" ] && continue
  wasm-tools validate --features component-model "$f"
  wit=$(wasm-tools component wit "$f")
  for iface in meta walker guard socket; do
    grep -q "export switchboard:plugin/$iface@0.1.0;" <<<"$wit" ||
      { echo "guests: $f does not export switchboard:plugin/$iface" >&2; exit 1; }
  done
  # Only the Switchboard host interface and WASI may be imported.
  if grep '^ *import ' <<<"$wit" | grep -v -e 'switchboard:plugin/' -e ' wasi:' >&2; then
    echo "guests: $f has unexpected imports" >&2; exit 1
  fi
done

step "done"
ls -l plugins/*.wasm "$guests"/*.wasm | awk '{printf "  %10d  %s\n", $5, $9}' | sed "s|$root/||"

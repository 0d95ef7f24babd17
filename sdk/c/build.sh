#!/bin/sh
# Builds a C operator: build.sh WIT_DIR OUT.wasm APP.c [MORE.c ...]
#
# `wit-bindgen c` writes the operator world's bindings (never committed),
# clang compiles the app with weir.c over wasi-libc as a reactor (and
# clang++ the number conversions, weir_numbers.cc, over libc++), and
# `wasm-tools component new` makes the component, adapting WASI preview 1
# (wasi-libc's stdio) to preview 2 with the reactor adapter.
#
# Tools, from the PATH or these variables: WIT_BINDGEN (wit-bindgen-cli
# 0.61.0), CLANG (clang with the wasm32-wasi target and wasi-libc: Debian's
# clang, lld, wasi-libc, libclang-rt-dev-wasm32), CLANGXX (its clang++, with
# libc++-dev-wasm32 and libfast-float-dev), WASM_TOOLS, and
# WASI_ADAPTER (wasi_snapshot_preview1.reactor.wasm; scripts/setup.sh puts
# one in ~/.cache/weir/tools/wit-bindgen).
set -eu
[ $# -ge 3 ] || { echo "usage: $0 WIT_DIR OUT.wasm APP.c [MORE.c ...]" >&2; exit 2; }
sdk=$(cd "$(dirname "$0")" && pwd)
wit=$1 out=$2
shift 2
tools=${WEIR_TOOLS:-$HOME/.cache/weir/tools}
bindgen=${WIT_BINDGEN:-wit-bindgen}
clang=${CLANG:-clang}
clangxx=${CLANGXX:-clang++}
wasm_tools=${WASM_TOOLS:-wasm-tools}
adapter=${WASI_ADAPTER:-$tools/wit-bindgen/wasi_snapshot_preview1.reactor.wasm}
for tool in "$bindgen" "$clang" "$clangxx" "$wasm_tools"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$0: $tool is missing: run scripts/setup.sh (docs/languages.md, C)" >&2; exit 1; }
done
[ -f "$adapter" ] || { echo "$0: the WASI adapter $adapter is missing: run scripts/setup.sh or set WASI_ADAPTER" >&2; exit 1; }
for f in /usr/include/fast_float/fast_float.h /usr/lib/wasm32-wasi/libc++.a; do
  [ -f "$f" ] || { echo "$0: $f is missing (libfast-float-dev, libc++-dev-wasm32): run scripts/setup.sh" >&2; exit 1; }
done
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
"$bindgen" c "$wit" --world operator --out-dir "$build" >/dev/null
"$clangxx" --target=wasm32-wasi --sysroot=/usr -std=c++17 -fno-exceptions -fno-rtti -O2 -Wall -Wextra -Werror \
  -I "$sdk" -c "$sdk/weir_numbers.cc" -o "$build/weir_numbers.o"
"$clang" --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -Wall -Wextra -Werror \
  -I "$sdk" -I "$build" "$@" "$sdk/weir.c" "$sdk/weir_state.c" "$sdk/weir_json.c" "$sdk/weir_json_write.c" \
  "$sdk/weir_bin.c" \
  "$build/weir_numbers.o" "$build/operator.c" "$build/operator_component_type.o" -lc++ -lc++abi -lm -o "$build/core.wasm"
"$wasm_tools" component new "$build/core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out"

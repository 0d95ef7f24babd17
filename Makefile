# Weir: `make run` runs the sensor-averages example, `make test` runs every test.
# Both install what a fresh Debian machine is missing first.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo
PLUGIN_DIR := $(CURDIR)/target/plugins
WASM_OUT := $(CARGO_TARGET_DIR)/wasm32-wasip2/release
# Operator plugins build together; each window-function plugin builds alone,
# as each picks another world (feature) of the SDK.
PLUGINS := celsius sensor-average sensor-average-v2 running-sum running-sum-v2 declare trap-on state-probe hostile noop wrong-world future-version extra-import
WINDOW_PLUGINS := average window-collect
# Adversarial guests of the sandbox tests (tests/guests: wit-bindgen, no SDK).
GUESTS := adversary adversary-aggregator adversary-processor
# Python plugins (plugins/python/NAME/app.py over sdk/python), built by
# componentize-py from the tools virtualenv into target/plugins/python/.
PY_PLUGINS := celsius sensor-average state-probe hostile average pass-through
# …of the aggregator world (the others are operators).
PY_AGGREGATES := average
WEIR_TOOLS ?= $(HOME)/.cache/weir/tools
COMPONENTIZE_PY := $(WEIR_TOOLS)/venv/bin/componentize-py
PY_SDK := $(wildcard sdk/python/weir/*.py)
# JavaScript plugins (plugins/js/NAME/app.js over sdk/js/weir.js), built by
# componentize-js into target/plugins/js/ (each from a folder of its own
# holding the app, the SDK and the WIT: what componentize-js reads).
JS_PLUGINS := celsius sensor-average hostile state-probe average pass-through
JS_AGGREGATES := average
JS_SDK := $(wildcard sdk/js/*.js)
COMPONENTIZE_JS := $(WEIR_TOOLS)/node/node_modules/.bin/componentize-js
# C and Go plugins (plugins/c/NAME/app.c over sdk/c, plugins/go/NAME over
# sdk/go), each built by its SDK's build.sh with the tools setup.sh installs.
C_PLUGINS := celsius sensor-average state-probe pass-through
C_SDK := $(wildcard sdk/c/*.c sdk/c/*.cc sdk/c/*.h) sdk/c/build.sh
GO_PLUGINS := celsius sensor-average state-probe pass-through
GO_SDK := $(wildcard sdk/go/weir/*.go sdk/go/internal/*/*.go) sdk/go/go.mod sdk/go/build.sh sdk/go/narrow-exports.pl
GOFMT = $(shell $(WEIR_TOOLS)/venv/bin/go env GOROOT)/bin/gofmt
SDK_TOOLS := WIT_BINDGEN=$(WEIR_TOOLS)/wit-bindgen/bin/wit-bindgen WASM_TOOLS=$(WEIR_TOOLS)/venv/bin/wasm-tools GO=$(WEIR_TOOLS)/venv/bin/go

.PHONY: setup build plugins run test bench fuzz lint fmt clean

setup:
	@./scripts/setup.sh

plugins: setup
	@$(CARGO) build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml --workspace $(WINDOW_PLUGINS:%=--exclude %)
	@for p in $(WINDOW_PLUGINS); do $(CARGO) build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml -p $$p || exit 1; done
	@$(CARGO) build --release --target wasm32-wasip2 --manifest-path tests/guests/Cargo.toml
	@mkdir -p $(PLUGIN_DIR)
	@for p in $(PLUGINS) $(WINDOW_PLUGINS) $(GUESTS); do cp $(WASM_OUT)/$${p//-/_}.wasm $(PLUGIN_DIR)/$$p.wasm; done
	@$(MAKE) -s --no-print-directory $(PY_PLUGINS:%=$(PLUGIN_DIR)/python/%.wasm) $(JS_PLUGINS:%=$(PLUGIN_DIR)/js/%.wasm) \
	  $(C_PLUGINS:%=$(PLUGIN_DIR)/c/%.wasm) $(GO_PLUGINS:%=$(PLUGIN_DIR)/go/%.wasm)

$(PLUGIN_DIR)/c/%.wasm: plugins/c/%/app.c $(C_SDK) wit/operator.wit
	@echo "clang: plugins/c/$* -> $@" >&2
	@mkdir -p $(@D)
	@$(SDK_TOOLS) sdk/c/build.sh wit $@ plugins/c/$*/app.c 2>&1 | { grep -v '^Generating ' >&2 || true; }
	@test -f $@

$(PLUGIN_DIR)/go/%.wasm: plugins/go/%/main.go plugins/go/%/go.mod $(GO_SDK) wit/operator.wit
	@echo "go: plugins/go/$* -> $@" >&2
	@mkdir -p $(@D)
	@$(SDK_TOOLS) sdk/go/build.sh wit $@ plugins/go/$*

$(PLUGIN_DIR)/js/%.wasm: plugins/js/%/app.js $(JS_SDK) wit/operator.wit
	@test -x $(COMPONENTIZE_JS) || { echo "$(COMPONENTIZE_JS) is missing: run scripts/setup.sh (make setup)" >&2; exit 1; }
	@echo "componentize-js: plugins/js/$* -> $@" >&2
	@rm -rf $(CARGO_TARGET_DIR)/js-build/$* && mkdir -p $(CARGO_TARGET_DIR)/js-build/$*/wit $(@D)
	@cp plugins/js/$*/app.js $(JS_SDK) $(CARGO_TARGET_DIR)/js-build/$*/ && cp wit/operator.wit $(CARGO_TARGET_DIR)/js-build/$*/wit/
	@cd $(CARGO_TARGET_DIR)/js-build/$* && $(COMPONENTIZE_JS) app.js --wit wit --world-name $(if $(filter $*,$(JS_AGGREGATES)),aggregator,operator) -d http fetch-event -o $@ >/dev/null

$(PLUGIN_DIR)/python/%.wasm: plugins/python/%/app.py $(PY_SDK) wit/operator.wit
	@mkdir -p $(@D)
	@test -x $(COMPONENTIZE_PY) || { echo "$(COMPONENTIZE_PY) is missing: run scripts/setup.sh (make setup)" >&2; exit 1; }
	@echo "componentize-py: plugins/python/$* -> $@" >&2
	@$(COMPONENTIZE_PY) -d wit -w $(if $(filter $*,$(PY_AGGREGATES)),aggregator,operator) componentize app -p plugins/python/$* -p sdk/python -o $@ >/dev/null

build: setup
	@$(CARGO) build --release --workspace

# Averages go to stdout; build output, logs and progress go to stderr.
run: build plugins
	@$(CARGO_TARGET_DIR)/release/weir compile $(PLUGIN_DIR)/celsius.wasm $(PLUGIN_DIR)/sensor-average.wasm
	@$(CARGO_TARGET_DIR)/release/weir run examples/sensor-averages/job.yaml

test: build plugins
	$(CARGO) test --release --workspace
	$(CARGO) test --release --manifest-path sdk/rust/Cargo.toml --doc --all-features

bench: build plugins
	$(CARGO) bench -p weir-tests --bench pipeline
	$(CARGO) bench -p weir-tests --bench boundary
	$(CARGO) bench -p weir-tests --bench restore
	$(CARGO) bench -p weir-tests --bench server
	$(CARGO) bench -p weir-tests --bench savepoints
	$(CARGO) bench -p weir-tests --bench kafka
	$(CARGO) bench -p weir-tests --bench languages

# The boundary fuzzer, longer than in `make test` (FUZZ_CASES to change).
FUZZ_CASES ?= 20000
fuzz: build plugins
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --release -p weir-tests --test all -- boundary_fuzz

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) fmt --manifest-path plugins/Cargo.toml --all --check
	$(CARGO) fmt --manifest-path sdk/rust/Cargo.toml --check
	$(CARGO) fmt --manifest-path tests/guests/Cargo.toml --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml --all-targets -- -D warnings
	$(CARGO) clippy --release --target wasm32-wasip2 --manifest-path sdk/rust/Cargo.toml -- -D warnings
	$(CARGO) clippy --release --target wasm32-wasip2 --manifest-path sdk/rust/Cargo.toml --all-features -- -D warnings
	$(CARGO) clippy --release --target wasm32-wasip2 --manifest-path tests/guests/Cargo.toml -- -D warnings
	@# The Python and JavaScript SDKs and plugins: they parse (compile) cleanly.
	python3 -m py_compile sdk/python/weir/*.py plugins/python/*/app.py
	@for f in sdk/js/*.js plugins/js/*/app.js; do node --input-type=module --check < $$f || { echo "$$f does not parse" >&2; exit 1; }; done
	@# The Go SDK and plugins are gofmt-clean (the C ones build with -Wall -Wextra -Werror).
	@unformatted=$$($(GOFMT) -l sdk/go plugins/go); [ -z "$$unformatted" ] || { echo "not gofmt-clean: $$unformatted" >&2; exit 1; }

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path plugins/Cargo.toml --all
	$(CARGO) fmt --manifest-path sdk/rust/Cargo.toml
	$(CARGO) fmt --manifest-path tests/guests/Cargo.toml --all

clean:
	$(CARGO) clean
	rm -rf $(PLUGIN_DIR)

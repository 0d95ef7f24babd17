//! `weir plugin new NAME --lang L`: writes a buildable operator project (a
//! keyed counter) with its build command, as `cargo component new` or
//! `spin new` do.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The languages `weir plugin new` writes projects for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Rust, with `weir-sdk` (sdk/rust).
    Rust,
    /// Python, with the `weir` package (sdk/python) and componentize-py.
    Python,
    /// JavaScript, with `weir.js` (sdk/js) and componentize-js.
    Js,
    /// Go, with the `weir` package (sdk/go), stock Go and wit-bindgen.
    Go,
    /// C, with weir.h (sdk/c), clang over wasi-libc and wit-bindgen.
    C,
}

/// Where this build of `weir` found its repository: the Rust SDK and the
/// WIT are taken from there.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const RUST_LIB: &str = r#"//! A keyed counter: how many records each key has had so far.

use serde::Serialize;
use weir_sdk::{Context, InitContext, Operator, Record, Result, ValueState, export_operator};

#[derive(Serialize)]
struct Count<'a> {
    key: &'a str,
    count: u64,
}

struct Counter {
    count: ValueState<u64>,
}

impl Operator for Counter {
    fn init(ctx: &mut InitContext) -> Result<Self> {
        Ok(Counter { count: ctx.value_state("count")? })
    }

    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
        let n = self.count.get(ctx)?.unwrap_or(0) + 1;
        self.count.set(ctx, &n)?;
        let key = record.key_str().unwrap_or_default().to_string();
        ctx.emit_json(&Count { key: &key, count: n })
    }
}

export_operator!(Counter);
"#;

const JS_APP: &str = r#"// A keyed counter: how many records each key has had so far.
import { Operator, exportOperator } from "./weir.js";

class Counter extends Operator {
  open(ctx) {
    this.count = ctx.valueState("count");
  }

  process(record, ctx) {
    const n = (this.count.value() ?? 0) + 1;
    this.count.update(n);
    ctx.emitJson({ key: record.keyString(), count: n });
  }
}

export const { init, process, onTimer } = exportOperator(Counter);
"#;

/// The JavaScript SDK and the WIT, copied into a JavaScript project.
const JS_FILES: &[(&str, &str)] = &[
    ("weir.js", include_str!("../../../sdk/js/weir.js")),
    ("weir-common.js", include_str!("../../../sdk/js/weir-common.js")),
    ("weir-binary.js", include_str!("../../../sdk/js/weir-binary.js")),
    ("weir-aggregate.js", include_str!("../../../sdk/js/weir-aggregate.js")),
    ("wit/operator.wit", include_str!("../../../wit/operator.wit")),
];

const PYTHON_APP: &str = r#""""A keyed counter: how many records each key has had so far."""

from weir import Operator, export


class Counter(Operator):
    def open(self, ctx):
        self.count = ctx.value_state("count")

    def process(self, record, ctx):
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        ctx.emit_json({"key": record.key_str(), "count": n})


WitWorld = export(Counter)
"#;

/// The Python SDK and the WIT, copied into a Python project so it builds on
/// its own.
const PYTHON_FILES: &[(&str, &str)] = &[
    ("weir/__init__.py", include_str!("../../../sdk/python/weir/__init__.py")),
    ("weir/_active.py", include_str!("../../../sdk/python/weir/_active.py")),
    ("weir/_api.py", include_str!("../../../sdk/python/weir/_api.py")),
    ("weir/_json.py", include_str!("../../../sdk/python/weir/_json.py")),
    ("weir/_runtime.py", include_str!("../../../sdk/python/weir/_runtime.py")),
    ("weir/_runtime_common.py", include_str!("../../../sdk/python/weir/_runtime_common.py")),
    ("weir/_aggregate.py", include_str!("../../../sdk/python/weir/_aggregate.py")),
    ("weir/_binary.py", include_str!("../../../sdk/python/weir/_binary.py")),
    ("wit/operator.wit", include_str!("../../../wit/operator.wit")),
];

const GO_APP: &str = r#"// A keyed counter: how many records each key has had so far.
package main

import "weir.dev/sdk/go/weir"

type counter struct{ count *weir.ValueState[uint64] }

func (c *counter) Open(ctx *weir.InitContext) error {
	c.count = weir.NewValueState[uint64](ctx, "count")
	return nil
}

func (c *counter) Process(r weir.Record, ctx *weir.Context) error {
	n, _, err := c.count.Get(ctx)
	if err != nil {
		return err
	}
	n++
	if err := c.count.Set(ctx, n); err != nil {
		return err
	}
	return ctx.EmitJSON(struct {
		Key   string `json:"key"`
		Count uint64 `json:"count"`
	}{r.KeyString(), n})
}

func init() { weir.Export(func() weir.Operator { return &counter{} }) }

func main() {}
"#;

/// The Go SDK (and its build script) and the WIT, copied into a Go project.
const GO_FILES: &[(&str, &str)] = &[
    ("weir/go.mod", include_str!("../../../sdk/go/go.mod")),
    ("weir/weir/weir.go", include_str!("../../../sdk/go/weir/weir.go")),
    ("weir/weir/state.go", include_str!("../../../sdk/go/weir/state.go")),
    ("weir/weir/codec.go", include_str!("../../../sdk/go/weir/codec.go")),
    ("weir/weir/runtime.go", include_str!("../../../sdk/go/weir/runtime.go")),
    ("weir/weir/binary.go", include_str!("../../../sdk/go/weir/binary.go")),
    ("weir/internal/export_wit_world/exports.go", include_str!("../../../sdk/go/internal/export_wit_world/exports.go")),
    ("weir/build.sh", include_str!("../../../sdk/go/build.sh")),
    ("weir/narrow-exports.pl", include_str!("../../../sdk/go/narrow-exports.pl")),
    ("wit/operator.wit", include_str!("../../../wit/operator.wit")),
];

const C_APP: &str = r#"/* A keyed counter: how many records each key has had so far. */
#include <stdio.h>

#include "weir.h"

static weir_state count;

bool weir_open(weir_init *init) {
    count = weir_value_state(init, "count");
    return true;
}

void weir_process(weir_ctx *ctx, const weir_record *record) {
    uint64_t n = 0;
    weir_bytes old;
    if (weir_value_get(ctx, count, &old)) weir_read(old, &n, sizeof n);
    n++;
    weir_value_set(ctx, count, WEIR_BYTES_OF(n));
    char out[256];
    int len = snprintf(out, sizeof out, "{\"key\":\"%.*s\",\"count\":%llu}", (int)record->key.len,
                       (const char *)record->key.ptr, (unsigned long long)n);
    if (len < 0 || (size_t)len >= sizeof out) {
        weir_fail(ctx, "key too long for the output (%zu bytes)", record->key.len);
        return;
    }
    weir_emit(ctx, weir_bytes_of(out, (size_t)len));
}
"#;

/// The C SDK (and its build script) and the WIT, copied into a C project.
const C_FILES: &[(&str, &str)] = &[
    ("weir/weir.h", include_str!("../../../sdk/c/weir.h")),
    ("weir/weir.c", include_str!("../../../sdk/c/weir.c")),
    ("weir/weir_state.c", include_str!("../../../sdk/c/weir_state.c")),
    ("weir/weir_internal.h", include_str!("../../../sdk/c/weir_internal.h")),
    ("weir/weir_json.c", include_str!("../../../sdk/c/weir_json.c")),
    ("weir/weir_json_write.c", include_str!("../../../sdk/c/weir_json_write.c")),
    ("weir/weir_bin.c", include_str!("../../../sdk/c/weir_bin.c")),
    ("weir/weir_numbers.cc", include_str!("../../../sdk/c/weir_numbers.cc")),
    ("weir/build.sh", include_str!("../../../sdk/c/build.sh")),
    ("wit/operator.wit", include_str!("../../../wit/operator.wit")),
];

/// The files of a project built by a `build.sh` that runs `command`
/// (`tool` says which tools and how to get them): the SDK's files, the app's.
fn script_project(sdk: &[(&str, &str)], app: &[(&str, &str)], tool: &str, command: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = sdk.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
    files.extend(app.iter().map(|(p, t)| (p.to_string(), t.to_string())));
    let build = format!("#!/bin/sh\n# Builds the component ({tool}).\nset -e\ncd \"$(dirname \"$0\")\"\n{command}\n");
    files.push(("build.sh".into(), build));
    files
}

/// Writes project `name` in `dir/name`; returns its directory and its
/// build command.
pub fn new(name: &str, lang: Lang, dir: &Path, sdk: Option<&Path>) -> anyhow::Result<(PathBuf, String)> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        bail!("`{name}` is not a plugin name: use lowercase letters, digits, `-` and `_`");
    }
    let root = dir.join(name);
    if root.exists() {
        bail!("{} exists: pick another name or directory", root.display());
    }
    let files: Vec<(String, String)> = match lang {
        Lang::Rust => {
            let sdk = match sdk {
                Some(p) => p.to_path_buf(),
                None => repo().join("sdk/rust").canonicalize().context(
                    "the Rust SDK of this build of weir is not where it was built: give its folder with --sdk",
                )?,
            };
            let manifest = format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\n\
                 crate-type = [\"cdylib\"]\n\n[dependencies]\nweir-sdk = {{ path = \"{}\" }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n\
                 # A project of its own, not a member of an enclosing workspace.\n[workspace]\n",
                sdk.display()
            );
            vec![("Cargo.toml".into(), manifest), ("src/lib.rs".into(), RUST_LIB.into())]
        }
        Lang::Python => script_project(
            PYTHON_FILES,
            &[("app.py", PYTHON_APP)],
            "componentize-py 0.25.1: pip install componentize-py==0.25.1",
            &format!("componentize-py -d wit -w operator componentize app -p . -o {name}.wasm"),
        ),
        Lang::Js => script_project(
            JS_FILES,
            &[("app.js", JS_APP)],
            "componentize-js 0.23.0: npm install @bytecodealliance/componentize-js@0.23.0",
            &format!("componentize-js app.js --wit wit --world-name operator -d http fetch-event -o {name}.wasm"),
        ),
        Lang::Go => script_project(
            GO_FILES,
            &[("main.go", GO_APP), ("go.mod", &format!("module {name}\n\ngo 1.25\n"))],
            "Go >= 1.25, wit-bindgen-cli 0.61.0 and wasm-tools; see weir/build.sh",
            &format!("sh weir/build.sh wit {name}.wasm ."),
        ),
        Lang::C => script_project(
            C_FILES,
            &[("app.c", C_APP)],
            "clang with wasi-libc, wit-bindgen-cli 0.61.0 and wasm-tools; see weir/build.sh",
            &format!("sh weir/build.sh wit {name}.wasm app.c"),
        ),
    };
    for (path, text) in &files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in the project"))
            .with_context(|| format!("cannot make {}", root.display()))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let build = match lang {
        Lang::Rust => "cargo build --release --target wasm32-wasip2".to_string(),
        _ => {
            #[cfg(unix)]
            std::fs::set_permissions(root.join("build.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
            "./build.sh".to_string()
        }
    };
    Ok((root, build))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of an SDK's folder is copied into a new project.
    fn assert_all_copied(folder: &str, files: &[(&str, &str)], prefix: &str) {
        let dir = repo().join(folder);
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| {
                [".py", ".js", ".go", ".c", ".cc", ".h", ".sh", ".pl", ".mod"].iter().any(|ext| n.ends_with(ext))
            })
            .map(|n| format!("{prefix}{n}"))
            .collect();
        on_disk.sort();
        let mut copied: Vec<String> =
            files.iter().map(|(p, _)| p.to_string()).filter(|p| !p.starts_with("wit/")).collect();
        copied.sort();
        assert_eq!(copied, on_disk, "{folder}");
    }

    #[test]
    fn new_projects_get_every_file_of_their_sdk() {
        assert_all_copied("sdk/python/weir", PYTHON_FILES, "weir/");
        assert_all_copied("sdk/js", JS_FILES, "");
        assert_all_copied("sdk/c", C_FILES, "weir/");
        let go: Vec<(&str, &str)> = GO_FILES.iter().filter(|(p, _)| p.starts_with("weir/weir/")).copied().collect();
        assert_all_copied("sdk/go/weir", &go, "weir/weir/");
        let top: Vec<(&str, &str)> =
            GO_FILES.iter().filter(|(p, _)| p.matches('/').count() == 1 && p.starts_with("weir/")).copied().collect();
        assert_all_copied("sdk/go", &top, "weir/");
    }
}

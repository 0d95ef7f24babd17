//! `weir plugin new`: the projects it writes build with the command it
//! prints, and the components count per key.

use std::path::Path;
use std::process::Command;

use weir_tests::{tools, weir_bin};

/// Runs the keyed counter `plugin` over a, b, a: it must count 1, 1, 2.
fn counts(plugin: &Path, dir: &Path) {
    std::fs::write(dir.join("in.jsonl"), "{\"k\":\"a\"}\n{\"k\":\"b\"}\n{\"k\":\"a\"}\n").unwrap();
    let spec = dir.join("job.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: counter
sources: [{{ id: src, type: file, path: {input}, key: /k, timestamps: ingestion }}]
operators: [{{ id: counter, input: src, key_by: key, plugin: {plugin} }}]
sinks: [{{ id: out, type: stdout, input: counter }}]
",
            input = dir.join("in.jsonl").display(),
            plugin = plugin.display()
        ),
    )
    .unwrap();
    let out = Command::new(weir_bin()).arg("run").arg(&spec).env("RUST_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"key\":\"a\",\"count\":1}\n{\"key\":\"b\",\"count\":1}\n{\"key\":\"a\",\"count\":2}\n"
    );
}

/// `weir plugin new NAME --lang LANG` in `dir`: the project and the build
/// command it printed.
fn new(name: &str, lang: &str, dir: &Path) -> (std::path::PathBuf, String) {
    let out =
        Command::new(weir_bin()).args(["plugin", "new", name, "--lang", lang, "--dir"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let root = dir.join(name);
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let build = printed.split_once(" && ").unwrap().1.trim_end().trim_end_matches('`').to_string();
    assert_eq!(printed, format!("wrote {}: build it with `cd {} && {build}`\n", root.display(), root.display()));
    (root, build)
}

/// A new `lang` project built by its `build.sh` with `bins` (tools
/// folders) on the PATH, and run.
fn script_project_counts(name: &str, lang: &str, bins: &[std::path::PathBuf]) {
    let dir = tempfile::tempdir().unwrap();
    let (root, build) = new(name, lang, dir.path());
    assert_eq!(build, "./build.sh");
    let mut path: Vec<String> = bins.iter().map(|b| b.display().to_string()).collect();
    path.push(std::env::var("PATH").unwrap_or_default());
    let path = path.join(":");
    let out = Command::new("sh").arg("-c").arg(&build).current_dir(&root).env("PATH", path).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    counts(&root.join(format!("{name}.wasm")), dir.path());
}

#[test]
fn a_new_python_project_builds_with_its_command_and_counts_per_key() {
    script_project_counts("counter", "python", &[tools().join("venv/bin")]);
}

#[test]
fn a_new_js_project_builds_with_its_command_and_counts_per_key() {
    script_project_counts("counter-js", "js", &[tools().join("node/node_modules/.bin")]);
}

#[test]
fn a_new_go_project_builds_with_its_command_and_counts_per_key() {
    script_project_counts("counter-go", "go", &[tools().join("venv/bin"), tools().join("wit-bindgen/bin")]);
}

#[test]
fn a_new_c_project_builds_with_its_command_and_counts_per_key() {
    script_project_counts("counter-c", "c", &[tools().join("venv/bin"), tools().join("wit-bindgen/bin")]);
}

#[test]
fn a_new_rust_project_builds_with_its_command_and_counts_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let (root, build) = new("counter-rs", "rust", dir.path());
    assert_eq!(build, "cargo build --release --target wasm32-wasip2");
    // The workspace's target directory: the SDK's dependencies are built there already.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf();
    let out =
        Command::new("sh").arg("-c").arg(&build).current_dir(&root).env("CARGO_TARGET_DIR", &target).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    counts(&target.join("wasm32-wasip2/release/counter_rs.wasm"), dir.path());
}

#[test]
fn plugin_new_refuses_an_unknown_language_a_bad_name_and_an_existing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |args: &[&str]| {
        let out =
            Command::new(weir_bin()).args(["plugin", "new"]).args(args).arg("--dir").arg(dir.path()).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).trim_end().to_string()
    };
    assert!(
        refused(&["x", "--lang", "cobol"]).starts_with(
            "error: invalid value 'cobol' for '--lang <LANG>'\n  [possible values: rust, python, js, go, c]"
        ),
        "{}",
        refused(&["x", "--lang", "cobol"])
    );
    assert_eq!(
        refused(&["Bad Name", "--lang", "python"]),
        "error: `Bad Name` is not a plugin name: use lowercase letters, digits, `-` and `_`"
    );
    new("taken", "python", dir.path());
    assert_eq!(
        refused(&["taken", "--lang", "rust"]),
        format!("error: {} exists: pick another name or directory", dir.path().join("taken").display())
    );
}

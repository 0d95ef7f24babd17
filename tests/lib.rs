//! Helpers for Weir's integration tests: where the built plugins are, and
//! running specs with their outputs redirected to a temporary directory.

pub mod crash;
pub mod kafka;

use std::path::{Path, PathBuf};

use weir_spec::{JobSpec, SinkConnector};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the repo").to_path_buf()
}

/// The path of a built plugin (`make plugins` puts them in `target/plugins`).
pub fn plugin(name: &str) -> PathBuf {
    let path = repo().join("target/plugins").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run `make plugins` (or `make test`) first", path.display());
    path
}

/// The `operators:` section of the sensor pipeline used by the parity test
/// and the benchmark: `celsius` (binary output) → key by sensor →
/// `sensor-average` (binary input), reading from the node `readings`.
pub fn sensor_pipeline_operators() -> String {
    format!(
        "operators:
  - id: celsius
    input: readings
    plugin: {celsius}
    config: {{ output: binary }}
  - id: averages
    input: celsius
    key_by: key
    plugin: {average}
    config: {{ input: binary }}
",
        celsius = plugin("celsius").display(),
        average = plugin("sensor-average").display(),
    )
}

/// A test scenario directory under `tests/scenarios`.
pub fn scenario(name: &str) -> PathBuf {
    repo().join("tests/scenarios").join(name)
}

/// Loads a spec and points every file sink into `out_dir` (same file name).
pub fn load_with_outputs(spec: &Path, out_dir: &Path) -> JobSpec {
    let mut spec = JobSpec::load(spec).expect("valid spec");
    for sink in &mut spec.sinks {
        if let SinkConnector::File(f) = &mut sink.connector {
            let name = f.path.file_name().expect("file sink has a path").to_owned();
            f.path = out_dir.join(name);
        }
    }
    spec
}

/// Reads every line of the files in `dir` whose name starts with `prefix`.
pub fn read_lines(dir: &Path, prefix: &str) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("output dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| std::fs::read_to_string(f).expect("output file").lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Where `scripts/setup.sh` puts the test tools from PyPI (`WEIR_TOOLS`,
/// else `~/.cache/weir/tools`).
pub fn tools() -> PathBuf {
    std::env::var_os("WEIR_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/weir/tools"))
}

/// This process's peak resident set (VmHWM), in MB (NaN where /proc has none).
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The `weir` binary next to the test executable (built by `cargo test`).
pub fn weir_bin() -> PathBuf {
    // target/<profile>/deps/all-<hash> → target/<profile>/weir
    let exe = std::env::current_exe().expect("the test executable");
    let bin: PathBuf = exe.parent().and_then(Path::parent).expect("target/<profile>").join("weir");
    assert!(bin.exists(), "{} is missing: build the workspace first", bin.display());
    bin
}

/// The lines of every committed part file (`part-*.jsonl`) in `dir`, in
/// instance and part order.
pub fn committed_parts(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    names.retain(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.starts_with("part-") && name.ends_with(".jsonl")
    });
    names.sort();
    names
        .iter()
        .flat_map(|p| std::fs::read_to_string(p).expect("a part file").lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// `sensor-average` and `running-sum` results with version 2's
/// `"version": 2` taken out, sorted: what version 1 would have written.
pub fn as_version_one(lines: &[String]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|l| l.replace(",\"version\":2}", "}")).collect();
    v.sort();
    v
}

/// Where a `weir run --metrics-addr 127.0.0.1:0` child (its standard error
/// piped) serves Prometheus metrics, read from its log; the rest of the log
/// is drained in the background, so the job never blocks on a full pipe.
pub fn metrics_addr(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("standard error piped"));
    let addr = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "weir exited before serving metrics");
        if let Some(rest) = line.split("serving Prometheus metrics at http://").nth(1) {
            break rest.trim().trim_end_matches("/metrics").to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    addr
}

/// The response (status line, headers, text) of `GET /metrics` at `addr`.
pub fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    body
}

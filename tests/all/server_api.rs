//! The control plane's HTTP API through its router, without a socket
//! (`oneshot`): every endpoint's success and error paths, with exact
//! status codes and messages, and nothing stored half-way.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use weir_tests::plugin;

/// A server on a fresh data dir, and its token.
pub(crate) struct TestServer {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) router: axum::Router,
    token: String,
}

fn server_with(max_upload: u64) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = weir_server::ServerConfig::new(dir.path().join("data"));
    config.max_upload = max_upload;
    let server = weir_server::Server::open(&config).unwrap();
    let token = std::fs::read_to_string(server.token_path()).unwrap().trim().to_string();
    TestServer { router: server.router(), dir, token }
}

pub(crate) fn server() -> TestServer {
    server_with(weir_server::DEFAULT_MAX_UPLOAD)
}

impl TestServer {
    pub(crate) async fn send(&self, request: Request<Body>) -> (StatusCode, Value, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value, bytes)
    }

    pub(crate) fn authorized(&self, method: &str, uri: &str) -> axum::http::request::Builder {
        Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {}", self.token))
    }

    pub(crate) async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, value, _) = self.send(Request::get(uri).body(Body::empty()).unwrap()).await;
        (status, value)
    }

    pub(crate) async fn upload(&self, name: &str, version: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let uri = format!("/api/v1/plugins/{name}/versions/{version}");
        let request = self
            .authorized("PUT", &uri)
            .header(header::CONTENT_TYPE, "application/wasm")
            .header(header::CONTENT_LENGTH, bytes.len());
        let (status, value, _) = self.send(request.body(Body::from(bytes)).unwrap()).await;
        (status, value)
    }

    pub(crate) async fn upload_plugin(&self, name: &str, version: &str, file: &str) -> (StatusCode, Value) {
        self.upload(name, version, std::fs::read(plugin(file)).unwrap()).await
    }

    pub(crate) async fn submit(&self, spec: &str) -> (StatusCode, Value) {
        let request = self.authorized("POST", "/api/v1/jobs").header(header::CONTENT_TYPE, "application/yaml");
        let (status, value, _) = self.send(request.body(Body::from(spec.to_string())).unwrap()).await;
        (status, value)
    }

    pub(crate) fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// What the blob and upload directories hold.
    fn files(&self) -> (usize, usize) {
        let count = |d: &str| std::fs::read_dir(self.data().join(d)).unwrap().count();
        (count("plugins"), count("tmp"))
    }

    pub(crate) async fn wait_for_state(&self, id: &str, state: &str) -> Value {
        let started = Instant::now();
        loop {
            let (status, job) = self.get(&format!("/api/v1/jobs/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if job["state"] == state {
                return job;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "job {id} never became {state}: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub(crate) fn error(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_version_is_uploaded_listed_downloaded_and_deleted() {
    let s = server();
    let bytes = std::fs::read(plugin("celsius")).unwrap();
    let (status, v) = s.upload("celsius", "1.0.0", bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["world"], "operator");
    assert_eq!(v["wit_version"], weir_wasm::PLUGIN_API_VERSION);
    assert_eq!(v["size"], bytes.len() as u64);
    assert_eq!(v["sha256"], sha256(&bytes));
    // Again with the same bytes: nothing changes.
    let (status, again) = s.upload("celsius", "1.0.0", bytes.clone()).await;
    assert_eq!((status, &again), (StatusCode::OK, &v));
    // Other bytes under that version: refused.
    let (status, e) = s.upload_plugin("celsius", "1.0.0", "noop").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        e,
        error(
            "plugin_version_exists",
            &format!(
                "celsius@1.0.0 exists with other bytes (sha256 {}): versions are immutable, upload under a new version",
                sha256(&bytes)
            )
        )
    );
    assert_eq!(s.upload_plugin("celsius", "1.10.0", "noop").await.0, StatusCode::CREATED);
    assert_eq!(s.upload_plugin("celsius", "1.2.0", "celsius").await.0, StatusCode::CREATED);
    assert_eq!(s.upload_plugin("average", "0.1.0", "average").await.0, StatusCode::CREATED);
    // Two versions share celsius's bytes: one blob.
    assert_eq!(s.files(), (3, 0));
    let (status, list) = s.get("/api/v1/plugins").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list,
        json!([
            { "name": "average", "versions": ["0.1.0"], "world": "aggregator", "used_by": {} },
            { "name": "celsius", "versions": ["1.0.0", "1.2.0", "1.10.0"], "world": "operator", "used_by": {} },
        ])
    );
    let (status, versions) = s.get("/api/v1/plugins/celsius/versions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(versions.as_array().unwrap().len(), 3);
    assert_eq!(s.get("/api/v1/plugins/celsius/versions/1.0.0").await, (StatusCode::OK, v.clone()));
    let (status, _, downloaded) =
        s.send(Request::get("/api/v1/plugins/celsius/versions/1.0.0/wasm").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(downloaded, bytes);
    let delete = |version: &str| s.authorized("DELETE", &format!("/api/v1/plugins/celsius/versions/{version}"));
    assert_eq!(s.send(delete("1.0.0").body(Body::empty()).unwrap()).await.0, StatusCode::NO_CONTENT);
    // 1.2.0 still has the bytes.
    assert_eq!(s.files(), (3, 0));
    assert_eq!(s.send(delete("1.2.0").body(Body::empty()).unwrap()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.files(), (2, 0));
    let (status, e, _) = s.send(delete("1.2.0").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e, error("plugin_version_not_found", "there is no version 1.2.0 of plugin `celsius`"));
    let (status, e, _) =
        s.send(Request::get("/api/v1/plugins/celsius/versions/1.2.0/wasm").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, e),
        (StatusCode::NOT_FOUND, error("plugin_version_not_found", "there is no version 1.2.0 of plugin `celsius`"))
    );
    let (status, e) = s.get("/api/v1/plugins/celsius/versions/latest").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["code"], "version_invalid");
    assert_eq!(
        s.get("/api/v1/plugins/nothing/versions").await,
        (StatusCode::NOT_FOUND, error("plugin_not_found", "there is no plugin `nothing`: upload it first"))
    );
}

#[tokio::test]
async fn bad_uploads_are_specific_4xx_and_leave_nothing_behind() {
    let s = server_with(300 << 10);
    let garbage = s.upload("x", "1.0.0", b"not wasm at all".to_vec()).await;
    assert_eq!(garbage.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(garbage.1["code"], "plugin_invalid");
    assert!(
        garbage.1["message"].as_str().unwrap().starts_with("plugin x@1.0.0 is not a valid Wasm component: "),
        "{}",
        garbage.1
    );
    // A core module, not a component.
    let core = s.upload("x", "1.0.0", b"\0asm\x01\0\0\0".to_vec()).await;
    assert_eq!(core.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(core.1["code"], "plugin_invalid");
    for (file, says) in [
        ("wrong-world", "does not implement the weir:plugin/operator@0.1.0 world"),
        ("future-version", "this host supports weir:plugin@0.1.0"),
        ("extra-import", "which this host does not provide"),
    ] {
        let (status, e) = s.upload_plugin("x", "1.0.0", file).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{file}: {e}");
        assert_eq!(e["code"], "plugin_wrong_world", "{file}");
        assert!(e["message"].as_str().unwrap().contains(says), "{file}: {e}");
    }
    // Over the limit, said up front: refused before reading the body.
    let big = vec![0u8; 400 << 10];
    assert_eq!(
        s.upload("x", "1.0.0", big.clone()).await,
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            error(
                "upload_too_large",
                "the upload is 400 KiB, and this server takes at most 300 KiB (weir serve --max-upload)"
            )
        )
    );
    // Over the limit, streamed without a length: refused once past it.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    let request = s
        .authorized("PUT", "/api/v1/plugins/x/versions/1.0.0")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let (status, e, _) = s.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        e["message"],
        "the upload is more than 300 KiB, and this server takes at most 300 KiB (weir serve --max-upload)"
    );
    // Cut off mid-body.
    let cut: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![0u8; 1000]), Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset"))];
    let request = s
        .authorized("PUT", "/api/v1/plugins/x/versions/1.0.0")
        .body(Body::from_stream(futures_util::stream::iter(cut)))
        .unwrap();
    let (status, e, _) = s.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["code"], "upload_incomplete");
    assert!(e["message"].as_str().unwrap().starts_with("the upload was cut off after 1000 bytes: "), "{e}");
    assert_eq!(
        s.upload("BadName", "1.0.0", vec![1]).await,
        (
            StatusCode::BAD_REQUEST,
            error(
                "plugin_name_invalid",
                "`BadName` is not a plugin name: use 1 to 64 lowercase letters, digits, `-` and `_`, starting with a letter or digit"
            )
        )
    );
    assert_eq!(
        s.upload("x", "1.0", vec![1]).await,
        (
            StatusCode::BAD_REQUEST,
            error(
                "version_invalid",
                "`1.0` is not a semantic version (e.g. 1.0.0): unexpected end of input while parsing minor version number"
            )
        )
    );
    assert_eq!(
        s.upload("x", "1.0.0", Vec::new()).await,
        (StatusCode::BAD_REQUEST, error("upload_empty", "the upload is empty: send the component's bytes"))
    );
    let request = s
        .authorized("PUT", "/api/v1/plugins/x/versions/1.0.0")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(
        s.send(request).await.1,
        error("content_type", "an upload is a Wasm component: send it as application/wasm, not text/plain")
    );
    // Nothing of all that is stored, and the server still takes a good one.
    assert_eq!(s.get("/api/v1/plugins").await, (StatusCode::OK, json!([])));
    assert_eq!(s.files(), (0, 0));
    assert_eq!(s.upload_plugin("x", "1.0.0", "celsius").await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn two_uploads_of_one_version_with_other_bytes_store_exactly_one() {
    let s = server();
    let (a, b) = tokio::join!(s.upload_plugin("p", "1.0.0", "celsius"), s.upload_plugin("p", "1.0.0", "noop"));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT], "{} {}", a.1, b.1);
    let winner = if a.0 == StatusCode::CREATED { a.1 } else { b.1 };
    assert_eq!(s.get("/api/v1/plugins/p/versions/1.0.0").await, (StatusCode::OK, winner));
    assert_eq!(s.files(), (1, 0));
}

#[tokio::test]
async fn changes_need_the_token_and_reads_on_loopback_do_not() {
    let s = server();
    let bytes = std::fs::read(plugin("celsius")).unwrap();
    let put = |auth: Option<&str>| {
        let mut request = Request::put("/api/v1/plugins/celsius/versions/1.0.0");
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        request.body(Body::from(bytes.clone())).unwrap()
    };
    let refusals = [
        (None, "this call needs `Authorization: Bearer <token>` (the token is in the server's data dir, `token`)"),
        (Some("Bearer nope"), "the token is wrong: use the one in the server's data dir (`token`) or --token-file"),
        (Some("Basic dXNlcjpwdw=="), "the Authorization header must be `Bearer <token>`"),
    ];
    for (auth, message) in refusals {
        let (status, e, _) = s.send(put(auth)).await;
        assert_eq!((status, e), (StatusCode::UNAUTHORIZED, error("unauthorized", message)));
    }
    let (status, e, _) = s.send(Request::post("/api/v1/jobs").body(Body::from("name: x")).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{e}");
    assert_eq!(s.get("/api/v1/plugins").await, (StatusCode::OK, json!([])));
    assert_eq!(s.files(), (0, 0));
    let bearer = format!("Bearer {}", s.token);
    assert_eq!(s.send(put(Some(&bearer))).await.0, StatusCode::CREATED);
}

#[test]
fn a_server_off_loopback_needs_a_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = weir_server::ServerConfig::new(dir.path().to_path_buf());
    config.addr = "0.0.0.0:8081".parse().unwrap();
    let err = weir_server::Server::open(&config).err().unwrap();
    assert_eq!(
        err.to_string(),
        "0.0.0.0:8081 is not a loopback address: a server reachable from other machines needs --token-file (every \
         call, reads too, then needs its token)"
    );
}

/// The sensor job naming `celsius` and `average` as given, into `out`.
pub(crate) fn sensor_job(out: &Path, celsius: &str, averages: &str, events: u64, rate: u64) -> String {
    format!(
        "name: sensors
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 4, seed: 3, start: 1700000000000, events: {events},
       {rate} watermark: {{ punctuated: true }} }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {averages}, config: {{ window_ms: 1000 }} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: averages }}
",
        out = out.display(),
        rate = if rate > 0 { format!("rate: {rate},") } else { String::new() },
    )
}

#[tokio::test]
async fn jobs_are_submitted_by_plugin_version_watched_and_cancelled() {
    let s = server();
    assert_eq!(s.upload_plugin("celsius", "1.0.0", "celsius").await.0, StatusCode::CREATED);
    assert_eq!(s.upload_plugin("sensor-average", "1.2.0", "sensor-average").await.0, StatusCode::CREATED);
    assert_eq!(s.upload_plugin("average", "1.0.0", "average").await.0, StatusCode::CREATED);
    let out = s.dir.path().join("out");
    // Bounded: runs to its end; its output is the embedded run's.
    let (status, job) = s.submit(&sensor_job(&out, "celsius@1.0.0", "sensor-average@^1.1", 400, 0)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(
        job["plugins"]["averages"],
        json!({ "name": "sensor-average", "version": "1.2.0", "requested": "^1.1",
                "sha256": sha256(&std::fs::read(plugin("sensor-average")).unwrap()) })
    );
    assert_eq!(
        job["nodes"].as_array().unwrap().iter().map(|n| n["task"].as_str().unwrap()).collect::<Vec<_>>(),
        ["readings → celsius", "readings → celsius", "averages → out", "averages → out"]
    );
    let done = s.wait_for_state(&id, "finished").await;
    assert_eq!(done["nodes"][0]["records_out"], 400, "{done}");
    let reference = tempfile::tempdir().unwrap();
    let embedded = sensor_job(
        &reference.path().join("out"),
        &plugin("celsius").display().to_string(),
        &plugin("sensor-average").display().to_string(),
        400,
        0,
    );
    let embedded =
        format!("checkpoint: {{ interval: 1s, dir: {} }}\n{embedded}", reference.path().join("chk").display());
    let spec = weir_spec::JobSpec::parse(&embedded, weir_spec::Format::Yaml).unwrap();
    weir_runtime::run_job(&spec, &weir_runtime::JobOptions::default(), &weir_wasm::PluginEngine::new().unwrap())
        .unwrap();
    let expected = weir_tests::committed_parts(&reference.path().join("out"));
    assert!(!expected.is_empty());
    assert_eq!(weir_tests::committed_parts(&out), expected);
    assert_eq!(s.get(&format!("/api/v1/jobs/{id}/failures")).await, (StatusCode::OK, json!([])));
    let cancel = |id: &str| s.authorized("POST", &format!("/api/v1/jobs/{id}/cancel")).body(Body::empty()).unwrap();
    let (status, e, _) = s.send(cancel(&id)).await;
    assert_eq!(
        (status, e),
        (
            StatusCode::CONFLICT,
            error("job_ended", &format!("job {id} has already ended (finished): there is nothing to cancel"))
        )
    );
    // Long: a version it uses cannot go while it runs; cancelled, it can.
    let (status, job) =
        s.submit(&sensor_job(&s.dir.path().join("out2"), "celsius@1", "sensor-average@1.2.0", 1_000_000, 1000)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let long = job["id"].as_str().unwrap().to_string();
    let delete = || s.authorized("DELETE", "/api/v1/plugins/celsius/versions/1.0.0").body(Body::empty()).unwrap();
    let (status, e, _) = s.send(delete()).await;
    assert_eq!(
        (status, e),
        (
            StatusCode::CONFLICT,
            error("plugin_in_use", &format!("celsius@1.0.0 is used by running jobs {long}: cancel them first"))
        )
    );
    let (status, cancelled, _) = s.send(cancel(&long)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["state"], "cancelled");
    s.wait_for_state(&long, "cancelled").await;
    let (status, list) = s.get("/api/v1/jobs").await;
    assert_eq!(status, StatusCode::OK);
    let states: Vec<(&str, &str)> =
        list.as_array().unwrap().iter().map(|j| (j["id"].as_str().unwrap(), j["state"].as_str().unwrap())).collect();
    assert_eq!(states, [(id.as_str(), "finished"), (long.as_str(), "cancelled")]);
    assert_eq!(s.send(delete()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/api/v1/jobs/nope").await,
        (StatusCode::NOT_FOUND, error("job_not_found", "there is no job nope (weir job list shows the jobs)"))
    );
}

#[tokio::test]
async fn bad_jobs_are_refused_naming_what_is_wrong() {
    let s = server();
    assert_eq!(s.upload_plugin("celsius", "1.0.0", "celsius").await.0, StatusCode::CREATED);
    assert_eq!(s.upload_plugin("average", "1.0.0", "average").await.0, StatusCode::CREATED);
    let out = s.dir.path().join("out");
    let (status, e) = s.submit("name: x\nsources: []\nsinks: []\nparalelism: 2\n").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["code"], "spec_invalid");
    assert!(
        e["message"].as_str().unwrap().contains("unknown field `paralelism`")
            && e["message"].as_str().unwrap().contains("line 4"),
        "{e}"
    );
    let cases = [
        (
            "celsius@1.0.0",
            "missing@1.0.0",
            "plugin_not_found",
            "there is no plugin `missing` in the registry: upload it first (weir plugin upload)",
        ),
        (
            "celsius@2",
            "average@1.0.0",
            "plugin_version_not_found",
            "no version of plugin `celsius` matches `^2`; there are 1.0.0",
        ),
        (
            "celsius@1.0.0",
            "/tmp/x.wasm",
            "plugin_path",
            "operator `averages` names the file `/tmp/x.wasm`: a server runs plugins of its registry, named `name@version` — upload it (weir plugin upload) and name it so",
        ),
        (
            "celsius@1.0.0",
            "average@1.0.0",
            "plugin_wrong_world",
            "operator `averages` is not a window: its plugin must be an operator, and average@1.0.0 is an aggregator",
        ),
    ];
    for (celsius, averages, code, message) in cases {
        let (status, e) = s.submit(&sensor_job(&out, celsius, averages, 10, 0)).await;
        assert_eq!((status, e), (StatusCode::UNPROCESSABLE_ENTITY, error(code, message)), "{averages}");
    }
    let request =
        s.authorized("POST", "/api/v1/jobs").header(header::CONTENT_TYPE, "image/png").body(Body::from("x")).unwrap();
    assert_eq!(
        s.send(request).await.1,
        error("content_type", "a job spec is YAML (application/yaml) or JSON (application/json), not image/png")
    );
    let request = s.authorized("POST", "/api/v1/jobs").body(Body::from(vec![b'#'; (1 << 20) + 1])).unwrap();
    let (status, e, _) = s.send(request).await;
    assert_eq!(
        (status, e),
        (StatusCode::PAYLOAD_TOO_LARGE, error("spec_too_large", "a job spec may have at most 1048576 bytes"))
    );
    // None of them is a job.
    assert_eq!(s.get("/api/v1/jobs").await, (StatusCode::OK, json!([])));
    assert_eq!(
        s.get("/api/v1/nowhere").await,
        (
            StatusCode::NOT_FOUND,
            error("not_found", "there is no /api/v1/nowhere here: the API is under /api/v1, the console at /")
        )
    );
    let (status, e, _) = s.send(s.authorized("PATCH", "/api/v1/jobs").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, e),
        (StatusCode::METHOD_NOT_ALLOWED, error("method_not_allowed", "PATCH is not allowed on /api/v1/jobs"))
    );
}

/// A job whose plugin (`trap-on@1.0.0`) traps on `sensor_1`'s first
/// reading, restarted once: it fails with two `plugin_trapped` failures.
pub(crate) const FAILING_JOB: &str = "name: failing
restart: { strategy: fixed-delay, attempts: 1, delay: 10ms }
sources:
  - { id: readings, type: generator, generator: sensors, sensors: 4, seed: 3, start: 1700000000000, events: 100,
      watermark: { punctuated: true } }
operators:
  - { id: trap, input: readings, plugin: trap-on@1.0.0, config: { panic_on: sensor_1 } }
sinks:
  - { id: out, type: blackhole, input: trap }
";

#[tokio::test]
async fn a_failing_job_fails_alone_with_its_causes_recorded() {
    let s = server();
    assert_eq!(s.upload_plugin("celsius", "1.0.0", "celsius").await.0, StatusCode::CREATED);
    assert_eq!(s.upload_plugin("sensor-average", "1.0.0", "sensor-average").await.0, StatusCode::CREATED);
    assert_eq!(s.upload_plugin("trap-on", "1.0.0", "trap-on").await.0, StatusCode::CREATED);
    let failing = FAILING_JOB;
    let out = s.dir.path().join("out");
    let (status, healthy) = s.submit(&sensor_job(&out, "celsius@1.0.0", "sensor-average@1.0.0", 800, 400)).await;
    assert_eq!(status, StatusCode::CREATED, "{healthy}");
    let (status, job) = s.submit(failing).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let failed = s.wait_for_state(&id, "failed").await;
    let failures = failed["failures"].as_array().unwrap();
    let codes: Vec<&str> = failures.iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["plugin_trapped", "plugin_trapped"], "{failed}");
    for f in failures {
        let message = f["message"].as_str().unwrap();
        assert!(message.contains("task trap-0/1 failed: plugin trapped in `process`: "), "{message}");
        assert!(message.contains("panicked"), "{message}");
    }
    assert_eq!(s.get(&format!("/api/v1/jobs/{id}/failures")).await, (StatusCode::OK, failed["failures"].clone()));
    // The other job did not notice.
    let healthy_id = healthy["id"].as_str().unwrap();
    let done = s.wait_for_state(healthy_id, "finished").await;
    assert_eq!(done["failures"], json!([]));
    assert_eq!(done["nodes"][0]["records_out"], 800);
}

#[tokio::test]
async fn the_server_says_it_is_healthy_and_serves_its_openapi_document() {
    let s = server();
    assert_eq!(s.get("/api/v1/health").await, (StatusCode::OK, json!({ "status": "ok" })));
    let (status, doc) = s.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/health",
            "/api/v1/jobs",
            "/api/v1/jobs/{id}",
            "/api/v1/jobs/{id}/cancel",
            "/api/v1/jobs/{id}/checkpoints",
            "/api/v1/jobs/{id}/failures",
            "/api/v1/jobs/{id}/nodes/{node}/upgrade",
            "/api/v1/jobs/{id}/savepoints",
            "/api/v1/plugins",
            "/api/v1/plugins/{name}/versions",
            "/api/v1/plugins/{name}/versions/{version}",
            "/api/v1/plugins/{name}/versions/{version}/wasm",
            "/api/v1/savepoints",
            "/api/v1/savepoints/{name}",
            "/api/v1/savepoints/{name}/check",
            "/api/v1/savepoints/{name}/fork",
        ]
    );
    let upload = &doc["paths"]["/api/v1/plugins/{name}/versions/{version}"]["put"];
    let statuses: Vec<&str> = upload["responses"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(statuses, ["200", "201", "400", "401", "409", "413", "415", "422"]);
    assert_eq!(upload["security"], json!([{ "bearer": [] }]));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"], json!({ "type": "http", "scheme": "bearer" }));
}

#[tokio::test]
async fn a_node_before_a_bottleneck_shows_back_pressure_and_the_bottleneck_none() {
    let s = server();
    assert_eq!(s.upload_plugin("celsius", "1.0.0", "celsius").await.0, StatusCode::CREATED);
    assert_eq!(s.upload_plugin("sensor-average", "1.0.0", "sensor-average").await.0, StatusCode::CREATED);
    // An unthrottled source and celsius (one task) feed the keyed average
    // (the other task, slower) through a channel of one batch: celsius
    // waits for it (how much depends on the machine's load); the average,
    // whose sink is chained to it, has no channel to wait on.
    let out = s.dir.path().join("out");
    let spec = format!(
        "channel_capacity: 1\n{}",
        sensor_job(&out, "celsius@1.0.0", "sensor-average@1.0.0", 100_000_000, 0)
            .replace(&format!("type: file, path: {}", out.display()), "type: blackhole")
    );
    let (status, job) = s.submit(&spec).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    loop {
        let (_, job) = s.get(&format!("/api/v1/jobs/{id}")).await;
        let waited = |node: &str| {
            job["nodes"].as_array().unwrap().iter().find(|n| n["id"] == node).unwrap()["backpressured_ms_per_s"]
                .as_f64()
                .unwrap()
        };
        assert_eq!(waited("averages"), 0.0, "{job}");
        if waited("celsius") > 0.0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never back-pressured: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cancel = s.authorized("POST", &format!("/api/v1/jobs/{id}/cancel")).body(Body::empty()).unwrap();
    assert_eq!(s.send(cancel).await.0, StatusCode::OK);
    s.wait_for_state(&id, "cancelled").await;
}

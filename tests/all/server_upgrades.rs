//! Savepoints and in-place upgrades through the server's API (its router,
//! without a socket): a savepoint of a running job, listed and checked
//! against specs; an upgrade refused (the old version runs on), then one
//! that takes effect at a barrier, in the job's history; a new job started
//! from the savepoint on the new version — every output exact.

use std::path::Path;

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::{Value, json};
use weir_runtime::{JobOptions, run_job};
use weir_tests::{as_version_one, committed_parts, plugin};

use crate::server_api::{TestServer, error, server};

/// The sensor job, naming `averages`' plugin as `averages`, into `out`.
fn spec(dir: &Path, celsius: &str, averages: &str, rate: u32, extra: &str) -> String {
    format!(
        "name: sensors
checkpoint: {{ interval: 1h, dir: {checkpoints} }}
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 6, seed: 9, start: 1700000000000, events: 6000,
       rate: {rate}, disorder: 200ms, watermark: {{ max_out_of_orderness: 200ms, interval: 20ms }} }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {averages}, config: {{ window_ms: 500 }} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: averages }}
{extra}",
        checkpoints = dir.join("checkpoints").display(),
        out = dir.join("out").display(),
    )
}

impl TestServer {
    async fn post_json(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        let request = self.authorized("POST", uri).header(header::CONTENT_TYPE, "application/json");
        let (status, value, _) = self.send(request.body(Body::from(body.to_string())).unwrap()).await;
        (status, value)
    }

    async fn post_yaml(&self, uri: &str, body: &str) -> (StatusCode, Value) {
        let request = self.authorized("POST", uri).header(header::CONTENT_TYPE, "application/yaml");
        let (status, value, _) = self.send(request.body(Body::from(body.to_string())).unwrap()).await;
        (status, value)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_upgraded_in_place_and_a_new_one_starts_from_its_savepoint_exactly() {
    let s = server();
    let reference = tempfile::tempdir().unwrap();
    let text = spec(
        reference.path(),
        &plugin("celsius").display().to_string(),
        &plugin("sensor-average").display().to_string(),
        1_000_000,
        "",
    );
    run_job(
        &weir_spec::JobSpec::parse(&text, weir_spec::Format::Yaml).unwrap(),
        &JobOptions::default(),
        &crate::jobs::engine(),
    )
    .unwrap();
    let mut expected = committed_parts(&reference.path().join("out"));
    expected.sort();

    for (name, version, file) in [
        ("celsius", "1.0.0", "celsius"),
        ("sensor-average", "1.0.0", "sensor-average"),
        ("sensor-average", "2.0.0", "sensor-average-v2"),
        ("trap-on", "1.0.0", "trap-on"),
        ("declare", "1.0.0", "declare"),
    ] {
        assert_eq!(s.upload_plugin(name, version, file).await.0, StatusCode::CREATED);
    }
    let dir = tempfile::tempdir().unwrap();
    let (status, job) = s.submit(&spec(dir.path(), "celsius@1.0.0", "sensor-average@^1", 3000, "")).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    s.wait_for_state(&id, "running").await;
    // Some windows fire before the savepoint.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let upgrade = format!("/api/v1/jobs/{id}/nodes/averages/upgrade");

    // Refused: the old version runs on, and the history says why.
    let (status, e) = s.post_json(&upgrade, json!({"plugin": "trap-on@1.0.0", "config": {"fail_init": "no"}})).await;
    let refusal = "cannot upgrade operator `averages` to trap-on@1.0.0: task averages-0/1 failed: plugin failed in \
                   `init`: no; it runs on with sensor-average@1.0.0";
    assert_eq!((status, e), (StatusCode::UNPROCESSABLE_ENTITY, error("upgrade_refused", refusal)));
    let (status, e) = s.post_json(&upgrade, json!({"plugin": "sensor-average@3.0.0"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "plugin_version_not_found");
    let (status, e) =
        s.post_json(&format!("/api/v1/jobs/{id}/nodes/nowhere/upgrade"), json!({"plugin": "declare@1.0.0"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e["code"], "node_not_found");
    let (status, e) = s.post_json(&upgrade, json!({"version": "2"})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("body_invalid")));

    // A savepoint of the running job, listed and shown.
    let (status, sp) = s.post_json(&format!("/api/v1/jobs/{id}/savepoints"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{sp}");
    let name = sp["name"].as_str().unwrap().to_string();
    assert!(name.starts_with(&format!("savepoint-{}-", &id[..6])), "{name}");
    assert_eq!(sp["plugins"], json!({"celsius": "celsius@1.0.0", "averages": "sensor-average@1.0.0"}));
    assert_eq!(sp["parent"], Value::Null);
    assert_eq!(s.get("/api/v1/savepoints").await, (StatusCode::OK, json!([sp.clone()])));
    assert_eq!(s.get(&format!("/api/v1/savepoints/{name}")).await, (StatusCode::OK, sp.clone()));
    let (status, e) = s.get("/api/v1/savepoints/savepoint-none").await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("savepoint_not_found")));

    // Upgraded at a barrier.
    let (status, done) = s.post_json(&upgrade, json!({"plugin": "sensor-average@2.0.0"})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let checkpoint = done["checkpoint"].as_u64().unwrap();
    assert_eq!(
        done,
        json!({"node": "averages", "from": "sensor-average@1.0.0", "to": "sensor-average@2.0.0", "checkpoint": checkpoint})
    );
    let finished = s.wait_for_state(&id, "finished").await;
    assert_eq!(finished["plugins"]["averages"]["version"], "2.0.0");
    let history: Vec<(String, String, Value)> = finished["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["node"].as_str().unwrap().into(), h["outcome"].as_str().unwrap().into(), h["checkpoint"].clone()))
        .collect();
    let started = |node: &str| (node.to_string(), "started".to_string(), Value::Null);
    assert_eq!(
        history,
        [
            started("averages"),
            started("celsius"),
            ("averages".into(), "refused".into(), Value::Null),
            ("averages".into(), "upgraded".into(), json!(checkpoint)),
        ]
    );
    assert_eq!(finished["history"][2]["message"], refusal);
    let out = committed_parts(&dir.path().join("out"));
    let v2 = out.iter().filter(|l| l.contains("\"version\":2")).count();
    assert!(v2 > 0 && v2 < out.len(), "both versions wrote some: {v2} of {} by version 2", out.len());
    assert_eq!(as_version_one(&out), expected);

    // Checked against specs without starting anything.
    let check = format!("/api/v1/savepoints/{name}/check");
    let other = tempfile::tempdir().unwrap();
    let (status, report) =
        s.post_yaml(&check, &spec(other.path(), "celsius@1.0.0", "sensor-average@2.0.0", 3000, "")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["accepted"], true);
    assert_eq!(report["nodes"][2]["plugin_before"], "sensor-average@1.0.0");
    assert_eq!(report["nodes"][2]["plugin_after"], "sensor-average@2.0.0");
    assert_eq!(
        report["nodes"][2]["states"],
        json!([{"name": "windows", "before": "map", "after": "map", "fate": "mapped", "reason": null}])
    );
    let changed = spec(other.path(), "celsius@1.0.0", "declare@1.0.0", 3000, "")
        .replace("window_ms: 500", "states: { windows: value }");
    let (status, report) = s.post_yaml(&check, &changed).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["accepted"], false);
    assert_eq!(
        report["reasons"],
        json!(["operator `averages` state `windows` is a map state in the savepoint and declare@1.0.0 declares it a \
                value state: a state cannot change kind — give the new one another name, or keep its kind"])
    );
    assert!(report["text"].as_str().unwrap().starts_with(&format!("the job cannot start from {name}\n")), "{report}");

    // A new job from the savepoint, on version 2: its output picks up where
    // the savepoint was.
    let (status, e) =
        s.submit(&spec(other.path(), "celsius@1.0.0", "sensor-average@2.0.0", 1_000_000, "savepoint: ../x\n")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "savepoint_invalid");
    let from = format!("savepoint: {name}\n");
    let (status, second) =
        s.submit(&spec(other.path(), "celsius@1.0.0", "sensor-average@2.0.0", 1_000_000, &from)).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_id = second["id"].as_str().unwrap().to_string();
    let done = s.wait_for_state(&second_id, "finished").await;
    assert_eq!(done["history"][0]["checkpoint"], sp["checkpoint_id"]);
    let resumed = committed_parts(&other.path().join("out"));
    assert!(resumed.iter().all(|l| l.contains("\"version\":2")), "version 2 wrote all of it");
    // What the first job committed at the savepoint (its first part: the
    // savepoint was its first checkpoint) and what this one wrote after it
    // are the whole output, each window once.
    let at_savepoint = std::fs::read_to_string(dir.path().join("out/part-0-000000.jsonl")).unwrap();
    let mut union: Vec<String> = at_savepoint.lines().map(str::to_string).collect();
    assert!(!union.is_empty() && union.len() < expected.len(), "{} of {}", union.len(), expected.len());
    union.extend(resumed);
    assert_eq!(as_version_one(&union), expected);

    // Deleted when asked (never by the server): not while a job starts from it.
    let delete = |name: String| {
        let s = &s;
        async move {
            let request = s.authorized("DELETE", &format!("/api/v1/savepoints/{name}"));
            let (status, value, _) = s.send(request.body(Body::empty()).unwrap()).await;
            (status, value)
        }
    };
    let (status, e) = delete("savepoint-none".into()).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("savepoint_not_found")));
    let (status, third) = s
        .submit(
            &spec(other.path(), "celsius@1.0.0", "sensor-average@2.0.0", 500, &from)
                .replace("name: sensors", "name: third")
                .replace("/out", "/out-3")
                .replace("/checkpoints", "/checkpoints-3"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    let (status, e) = delete(name.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(
        e,
        error(
            "savepoint_in_use",
            &format!(
                "job {} starts from savepoint {name}: cancel it or let it end first",
                third["id"].as_str().unwrap()
            )
        )
    );
    let (status, _) = s.post_json(&format!("/api/v1/jobs/{}/cancel", third["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = delete(name.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/v1/savepoints").await, (StatusCode::OK, json!([])));
}

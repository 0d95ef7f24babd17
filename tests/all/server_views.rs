//! What the jobs and plugins API shows of a running job (the web console
//! draws it): the graph's edges, each node's plugin and limits, the list's
//! rates, the checkpoint history, which jobs use a plugin version.

use axum::body::Body;
use axum::http::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

use crate::server_api::{sensor_job, server};

#[tokio::test]
async fn a_running_job_shows_its_edges_limits_rates_checkpoints_and_plugin_users() {
    let s = server();
    assert_eq!(s.upload_plugin("celsius", "1.0.0", "celsius").await.0, StatusCode::CREATED);
    assert_eq!(s.upload_plugin("sensor-average", "1.0.0", "sensor-average").await.0, StatusCode::CREATED);
    let out = s.dir.path().join("out");
    let spec = sensor_job(&out, "celsius@1.0.0", "sensor-average@1.0.0", 10_000_000, 2000)
        .replace(
            "name: sensors\n",
            &format!("name: sensors\ncheckpoint: {{ interval: 100ms, dir: {} }}\n", s.dir.path().join("cp").display()),
        )
        .replace(
            "plugin: celsius@1.0.0 }",
            "plugin: celsius@1.0.0, limits: { memory: 32MiB, call_timeout: 2s, fuel: 5000000 } }",
        );
    let (status, job) = s.submit(&spec).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(
        job["edges"],
        json!([
            { "from": "readings", "side": null, "to": "celsius", "partitioning": "forward", "key_by": null },
            { "from": "celsius", "side": null, "to": "averages", "partitioning": "hash", "key_by": "key" },
            { "from": "averages", "side": null, "to": "out", "partitioning": "forward", "key_by": null },
        ])
    );
    let node = |job: &serde_json::Value, id: &str| {
        job["nodes"].as_array().unwrap().iter().find(|n| n["id"] == id).unwrap().clone()
    };
    assert_eq!(node(&job, "celsius")["plugin"], "celsius@1.0.0");
    assert_eq!(
        node(&job, "celsius")["limits"],
        json!({ "memory_bytes": 32 << 20, "call_timeout_ms": 2000, "fuel": 5_000_000, "max_emitted": 1_000_000, "max_output_bytes": 32 << 20 })
    );
    assert_eq!(node(&job, "averages")["limits"]["memory_bytes"], 256 << 20, "the default");
    assert_eq!(
        (node(&job, "readings")["plugin"].clone(), node(&job, "out")["limits"].clone()),
        (json!(null), json!(null))
    );

    // Three checkpoints and a savepoint: the history, in order, and the list's live figures.
    let started = Instant::now();
    let checkpoints = loop {
        let (status, list) = s.get(&format!("/api/v1/jobs/{id}/checkpoints")).await;
        assert_eq!(status, StatusCode::OK);
        if list.as_array().unwrap().len() >= 3 {
            break list;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no checkpoints: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let take = s.authorized("POST", &format!("/api/v1/jobs/{id}/savepoints")).body(Body::empty()).unwrap();
    let (status, savepoint, _) = s.send(take).await;
    assert_eq!(status, StatusCode::CREATED, "{savepoint}");
    let (_, after) = s.get(&format!("/api/v1/jobs/{id}/checkpoints")).await;
    let after = after.as_array().unwrap();
    let ids: Vec<u64> = after.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{after:?}");
    assert_eq!(&after[..3], &checkpoints.as_array().unwrap()[..3]);
    let sp = after.iter().find(|c| c["id"] == savepoint["checkpoint_id"]).unwrap();
    assert_eq!(
        (sp["kind"].as_str(), sp["status"].as_str(), sp["bytes"].clone()),
        (Some("savepoint"), Some("completed"), savepoint["bytes"].clone())
    );
    for c in after {
        assert_eq!(c["reason"], json!(null), "{c}");
        assert!(c["bytes"].as_u64().unwrap() > 0 && c["incremental_bytes"].as_u64() <= c["bytes"].as_u64(), "{c}");
        assert!(humantime::parse_rfc3339(c["at"].as_str().unwrap()).is_ok(), "{c}");
    }
    // Rates are over the last second: there once the job ran for one.
    let list = loop {
        let (_, list) = s.get("/api/v1/jobs").await;
        if list[0]["records_in_per_s"].as_f64() > Some(0.0) {
            break list;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no rates: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let summary = &list[0];
    assert_eq!((summary["id"].as_str(), summary["restarts"].as_u64()), (Some(id.as_str()), Some(0)));
    assert!(summary["uptime_ms"].as_u64().unwrap() > 0, "{summary}");
    let rate_in = summary["records_in_per_s"].as_f64().unwrap();
    assert!((1000.0..3000.0).contains(&rate_in), "a 2000/s source: {summary}");
    assert!(summary["records_out_per_s"].as_f64().unwrap() < rate_in, "the averages are fewer: {summary}");
    let (_, job) = s.get(&format!("/api/v1/jobs/{id}")).await;
    let lag = node(&job, "averages")["watermark_lag_ms"].as_i64().unwrap();
    let watermark = node(&job, "averages")["watermark"].as_i64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((now - watermark - lag).abs() < 5_000, "lag {lag} for watermark {watermark} at {now}");

    // Who runs which version.
    let (_, plugins) = s.get("/api/v1/plugins").await;
    let users: Vec<_> = plugins.as_array().unwrap().iter().map(|p| (p["name"].clone(), p["used_by"].clone())).collect();
    assert_eq!(
        users,
        [(json!("celsius"), json!({ "1.0.0": [id] })), (json!("sensor-average"), json!({ "1.0.0": [id] }))]
    );

    // Once cancelled and ended: the history is kept, no one uses the plugins.
    let cancel = s.authorized("POST", &format!("/api/v1/jobs/{id}/cancel")).body(Body::empty()).unwrap();
    assert_eq!(s.send(cancel).await.0, StatusCode::OK);
    while s.get(&format!("/api/v1/jobs/{id}")).await.1["ended_at"].is_null() {
        assert!(started.elapsed() < Duration::from_secs(60), "the job never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, kept) = s.get(&format!("/api/v1/jobs/{id}/checkpoints")).await;
    assert_eq!(status, StatusCode::OK);
    let kept = kept.as_array().unwrap();
    assert_eq!(&kept[..after.len()], &after[..], "the ended job's history begins with what the running one showed");
    let ids: Vec<u64> = kept.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let (_, job) = s.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(node(&job, "averages")["watermark_lag_ms"], json!(null), "{job}");
    let (_, plugins) = s.get("/api/v1/plugins").await;
    assert!(plugins.as_array().unwrap().iter().all(|p| p["used_by"] == json!({})), "{plugins}");
    assert_eq!(
        s.get("/api/v1/jobs/nope/checkpoints").await,
        (
            StatusCode::NOT_FOUND,
            crate::server_api::error("job_not_found", "there is no job nope (weir job list shows the jobs)")
        )
    );
}

#[tokio::test]
async fn the_console_is_served_at_the_root_without_a_token_with_a_strict_policy() {
    let s = server();
    for (path, kind) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
    ] {
        let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
        let response = tower::ServiceExt::oneshot(s.router.clone(), request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert_eq!(headers["content-type"], kind, "{path}");
        assert!(
            headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'; script-src 'self';")
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    let (status, body) = s.get("/ui/nope.js").await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, crate::server_api::error("not_found", "the console has no file nope.js"))
    );
}

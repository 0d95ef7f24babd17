//! A/B forks: two (or more) jobs started from one savepoint, each running
//! another version of one node and writing to sinks of its own, so their
//! outputs can be compared (`weir diff`).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use crate::error::{ApiError, ApiResult};
use crate::jobs::JobManager;
use crate::view::JobView;

/// A fork asked for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// The operator node whose version differs.
    pub node: String,
    /// Per fork, its label (letters, digits, `-`, `_`) and the version it
    /// runs: `{"a": "sensor-average@1.0.0", "b": "sensor-average@2.0.0"}`.
    pub versions: BTreeMap<String, String>,
}

/// The jobs a fork started.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ForkView {
    /// The savepoint they started from.
    pub savepoint: String,
    /// Per label, its job.
    pub jobs: BTreeMap<String, JobView>,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "fork_invalid", message)
}

/// Appends `-label` to the string at `value[key]`, if there is one.
fn suffix(value: &mut Value, key: &str, label: &str) {
    if let Some(Value::String(s)) = value.get_mut(key) {
        *s = format!("{}-{label}", s.trim_end_matches('/'));
    }
}

/// The savepoint's spec for fork `label`: its name, sinks' paths and
/// checkpoint directory suffixed with the label, `node` on `plugin`,
/// starting from savepoint `name`.
fn fork_spec(spec: &str, savepoint: &str, node: &str, label: &str, plugin: &str) -> ApiResult<String> {
    let mut doc: Value = serde_yaml_ng::from_str(spec)
        .map_err(|e| ApiError::internal(format!("the savepoint's spec does not parse: {e}")))?;
    suffix(&mut doc, "name", label);
    if let Some(c) = doc.get_mut("checkpoint") {
        suffix(c, "dir", label);
    }
    if let Some(Value::Sequence(sinks)) = doc.get_mut("sinks") {
        sinks.iter_mut().for_each(|s| suffix(s, "path", label));
    }
    let operator = match doc.get_mut("operators") {
        Some(Value::Sequence(ops)) => ops.iter_mut().find(|o| o.get("id").and_then(Value::as_str) == Some(node)),
        _ => None,
    };
    let Some(operator) = operator else {
        return Err(invalid(format!("the savepoint's job has no operator `{node}`")));
    };
    operator["plugin"] = Value::String(plugin.to_string());
    doc["savepoint"] = Value::String(savepoint.to_string());
    serde_yaml_ng::to_string(&doc).map_err(|e| ApiError::internal(format!("cannot write a fork's spec: {e}")))
}

impl JobManager {
    /// Starts one job per version from savepoint `name`. All start or none
    /// does: a fork that is refused cancels those started before it.
    pub fn fork(self: &std::sync::Arc<Self>, name: &str, request: &ForkRequest) -> ApiResult<ForkView> {
        let manifest = self.savepoint_manifest(name).map_err(|e| match e.code {
            "savepoint_not_found" | "savepoint_invalid" => ApiError { status: StatusCode::NOT_FOUND, ..e },
            _ => e,
        })?;
        if request.versions.len() < 2 {
            return Err(invalid("a fork runs at least two versions: `versions: {\"a\": …, \"b\": …}`".into()));
        }
        if let Some(bad) = request.versions.keys().find(|l| !weir_spec::valid_plugin_name(l)) {
            return Err(invalid(format!("`{bad}` is not a fork label: use lowercase letters, digits, `-` and `_`")));
        }
        let mut texts = Vec::new();
        for (label, plugin) in &request.versions {
            texts.push((label, fork_spec(&manifest.spec, name, &request.node, label, plugin)?));
        }
        let mut jobs = BTreeMap::new();
        for (label, text) in texts {
            match self.submit(&text, weir_spec::Format::Yaml) {
                Ok(record) => {
                    jobs.insert(label.clone(), record.id);
                }
                Err(e) => {
                    for id in jobs.values() {
                        let _ = self.cancel(id);
                    }
                    return Err(ApiError { message: format!("fork `{label}`: {}", e.message), ..e });
                }
            }
        }
        tracing::info!(savepoint = %name, node = %request.node, forks = jobs.len(), "forked");
        let views = jobs.iter().map(|(l, id)| Ok((l.clone(), self.view(id)?))).collect::<ApiResult<_>>()?;
        Ok(ForkView { savepoint: name.to_string(), jobs: views })
    }
}

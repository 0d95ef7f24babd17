//! Upgrading a running job's operator to another plugin version of the
//! registry, in place at a checkpoint barrier, and keeping the job's
//! version history: what each node ran from which checkpoint, and every
//! upgrade refused or failed (the old version then runs on). A server that
//! restarts resumes each node on the version its newest checkpoint names.

use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use weir_runtime::{RuntimeError, Upgrade};
use weir_spec::PluginRef;

use crate::error::{ApiError, ApiResult};
use crate::jobs::JobManager;
use crate::meta::{JobRecord, PinnedPlugin, VersionChange};
use crate::now_ms;
use crate::registry::requirement;

/// How long an upgrade waits for its checkpoint.
const UPGRADE_WAIT: Duration = Duration::from_secs(120);

/// An upgrade asked for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    /// The version to run: `name@1.2.3` (or `name@^1.2`, the newest that fits).
    pub plugin: String,
    /// The node's new config (its old one when absent).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

/// An upgrade that took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UpgradeView {
    /// The node.
    pub node: String,
    /// The version it ran.
    pub from: String,
    /// The version it runs now.
    pub to: String,
    /// The checkpoint at whose barrier it switched: every record before it
    /// went to the old version, every one after it to the new.
    pub checkpoint: u64,
}

impl JobManager {
    fn record_change(&self, id: &str, change: VersionChange) {
        if let Err(e) = self.meta.update_job(id, |j| j.history.push(change)) {
            tracing::error!(job_id = %id, "cannot record a version change: {e}");
        }
    }

    /// Upgrades operator `node` of running job `id` in place.
    pub fn upgrade(&self, id: &str, node: &str, request: UpgradeRequest) -> ApiResult<UpgradeView> {
        let record = self.record(id)?;
        if record.state.is_terminal() {
            return Err(ApiError::conflict(
                "job_ended",
                format!("job {id} has ended ({}): only a running job is upgraded", record.state.as_str()),
            ));
        }
        let Some(old) = record.plugins.get(node) else {
            return Err(ApiError::not_found(
                "node_not_found",
                format!("job {id} has no operator `{node}` with a plugin (weir job status {id} shows its nodes)"),
            ));
        };
        let reference = match PluginRef::parse(&request.plugin) {
            Some(Ok(reference)) => reference,
            Some(Err(message)) => return Err(ApiError::bad_request("plugin_invalid", message)),
            None => {
                return Err(ApiError::bad_request(
                    "plugin_invalid",
                    format!("`{}` is not a plugin of the registry: name it `name@version`", request.plugin),
                ));
            }
        };
        let found = self.registry.resolve(&reference)?;
        let pin = PinnedPlugin {
            name: found.name.clone(),
            version: found.version.clone(),
            requested: requirement(&reference),
            sha256: found.sha256.clone(),
        };
        let control = self.live().get(id).map(|l| l.control.clone()).ok_or_else(|| {
            ApiError::conflict("job_not_running", format!("job {id} is not running here yet: try again"))
        })?;
        let plugin = self
            .registry
            .engine()
            .load_file(&self.registry.blob(&pin.sha256))
            .map_err(|e| ApiError::internal(format!("cannot load {}: {e}", pin.label())))?;
        let change = |outcome: &str, checkpoint: Option<u64>, message: Option<String>| VersionChange {
            at_ms: now_ms(),
            node: node.to_string(),
            from: Some(old.label()),
            to: pin.label(),
            checkpoint,
            outcome: outcome.into(),
            message,
        };
        let upgrade = Upgrade { node: node.to_string(), plugin, label: pin.label(), config: request.config };
        let pending = match control.upgrade(upgrade) {
            Ok(pending) => pending,
            Err(e @ RuntimeError::Upgrade { .. }) => {
                self.record_change(id, change("refused", None, Some(e.to_string())));
                return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "upgrade_refused", e.to_string()));
            }
            Err(e) => return Err(ApiError::conflict("job_not_running", format!("job {id}: {e}"))),
        };
        let upgraded = match pending.wait_timeout(UPGRADE_WAIT) {
            Ok(upgraded) => upgraded,
            Err(e) => {
                self.record_change(id, change("failed", None, Some(e.to_string())));
                return Err(ApiError::conflict("upgrade_failed", e.to_string()));
            }
        };
        let entry = change("upgraded", Some(upgraded.checkpoint), None);
        self.meta.update_job(id, |j| {
            j.plugins.insert(node.to_string(), pin.clone());
            j.history.push(entry);
        })?;
        tracing::info!(job_id = %id, node, from = %old.label(), to = %pin.label(), checkpoint = upgraded.checkpoint, "upgraded");
        Ok(UpgradeView { node: node.to_string(), from: old.label(), to: pin.label(), checkpoint: upgraded.checkpoint })
    }

    /// A job about to resume: the plugin versions its newest checkpoint
    /// names, where they differ from its record (an upgrade whose
    /// checkpoint completed just before the server stopped). `None` when
    /// they agree.
    pub(crate) fn recover_versions(&self, record: &JobRecord) -> ApiResult<Option<JobRecord>> {
        let spec = crate::jobs::parse(&record.spec, crate::jobs::record_format(record))?;
        let dir = self.place(spec, &record.plugins, &self.job_dir(&record.id))?.checkpoint.map(|c| c.dir);
        let Some(Ok(store)) = dir.map(|d| weir_checkpoint::CheckpointStore::open(&d)) else { return Ok(None) };
        let Some((_, manifest)) = store.latest().ok().flatten() else { return Ok(None) };
        let versions = self.meta.plugins()?;
        let mut changes = Vec::new();
        for (node, pin) in &record.plugins {
            let Some(digest) = manifest.plugins.get(node).filter(|d| **d != pin.sha256) else { continue };
            let Some(v) = versions.iter().find(|v| v.sha256 == *digest) else {
                tracing::warn!(job_id = %record.id, node, digest, "the checkpoint names a plugin the registry no longer has");
                continue;
            };
            let new = PinnedPlugin {
                name: v.name.clone(),
                version: v.version.clone(),
                requested: v.version.clone(),
                sha256: v.sha256.clone(),
            };
            changes.push((node.clone(), pin.label(), new));
        }
        if changes.is_empty() {
            return Ok(None);
        }
        let updated = self.meta.update_job(&record.id, |j| {
            for (node, from, pin) in &changes {
                tracing::info!(job_id = %j.id, node, from, to = %pin.label(), checkpoint = manifest.id, "resuming on the version the checkpoint names");
                j.history.push(VersionChange {
                    at_ms: now_ms(),
                    node: node.clone(),
                    from: Some(from.clone()),
                    to: pin.label(),
                    checkpoint: Some(manifest.id),
                    outcome: "recovered".into(),
                    message: None,
                });
                j.plugins.insert(node.clone(), pin.clone());
            }
        })?;
        Ok(updated)
    }
}

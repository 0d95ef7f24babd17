//! Savepoints of a server's jobs: taken on request (optionally stopping the
//! job), kept in `DATA_DIR/savepoints/<name>` and never deleted by the
//! server, listed as a lineage tree, and checked against a spec before a
//! job starts from one (`savepoint: NAME` in a submitted spec).

use std::path::PathBuf;
use std::time::Duration;

use axum::http::StatusCode;
use weir_spec::Format;

use crate::error::{ApiError, ApiResult};
use crate::jobs::{JobManager, parse, start_error};
use crate::view::{RestoreCheckView, SavepointView};

/// How long a savepoint request waits for its checkpoint.
const SAVEPOINT_WAIT: Duration = Duration::from_secs(120);

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.')
}

impl JobManager {
    /// The directory of this server's savepoint `name` (which must exist).
    pub(crate) fn savepoint_dir(&self, name: &str) -> ApiResult<PathBuf> {
        if !valid_name(name) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "savepoint_invalid",
                format!(
                    "`{name}` is not a savepoint name: a job on a server starts from one of its savepoints, named as \
                     weir savepoint list shows them"
                ),
            ));
        }
        let dir = self.savepoints_dir.join(name);
        if !dir.is_dir() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "savepoint_not_found",
                format!("there is no savepoint `{name}` (weir savepoint list shows them)"),
            ));
        }
        Ok(dir)
    }

    /// Savepoint `name`'s manifest, verified (422 when it is damaged: a
    /// job cannot start from it).
    pub(crate) fn savepoint_manifest(&self, name: &str) -> ApiResult<weir_checkpoint::Manifest> {
        let dir = self.savepoint_dir(name)?;
        weir_checkpoint::load_savepoint(&dir).map_err(|e| {
            let message = e.to_string().replace(&dir.display().to_string(), name);
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "savepoint_damaged", message)
        })
    }

    /// Takes a savepoint of running job `id` (and, `stop`, stops it there);
    /// waits until it is written.
    pub fn savepoint(&self, id: &str, stop: bool) -> ApiResult<SavepointView> {
        let record = self.record(id)?;
        if record.state.is_terminal() {
            return Err(ApiError::conflict(
                "job_ended",
                format!("job {id} has ended ({}): a savepoint needs a running job", record.state.as_str()),
            ));
        }
        let control = self.live().get(id).map(|l| l.control.clone()).ok_or_else(|| {
            ApiError::conflict("job_not_running", format!("job {id} is not running here yet: try again"))
        })?;
        let pending = control
            .savepoint(&self.savepoints_dir, stop)
            .map_err(|e| ApiError::conflict("savepoint_failed", e.to_string()))?;
        let done = pending
            .wait_timeout(SAVEPOINT_WAIT)
            .map_err(|e| ApiError::conflict("savepoint_failed", format!("job {id}: {e}")))?;
        let dir = done.savepoint.ok_or_else(|| ApiError::internal("the checkpoint was not copied to a savepoint"))?;
        let manifest = weir_checkpoint::CheckpointStore::load(&dir).map_err(|e| ApiError::internal(e.to_string()))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        tracing::info!(job_id = %id, savepoint = %name, stop, "savepoint taken");
        Ok(SavepointView::of(&name, &manifest))
    }

    /// Every savepoint, oldest first.
    pub fn savepoints(&self) -> ApiResult<Vec<SavepointView>> {
        let found =
            weir_checkpoint::list_savepoints(&self.savepoints_dir).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(found
            .iter()
            .map(|(dir, m)| SavepointView::of(&dir.file_name().unwrap_or_default().to_string_lossy(), m))
            .collect())
    }

    /// Savepoint `name`, verified.
    pub fn savepoint_view(&self, name: &str) -> ApiResult<SavepointView> {
        let dir = self.savepoint_dir(name).map_err(|e| ApiError { status: StatusCode::NOT_FOUND, ..e })?;
        let manifest = weir_checkpoint::load_savepoint(&dir).map_err(|e| {
            ApiError::conflict("savepoint_damaged", e.to_string().replace(&dir.display().to_string(), name))
        })?;
        Ok(SavepointView::of(name, &manifest))
    }

    /// Deletes savepoint `name` — refused while a job that has not ended
    /// starts from it (a restart of the server would need it).
    pub fn delete_savepoint(&self, name: &str) -> ApiResult<()> {
        // Damaged or not: it is only looked for.
        let dir = self.savepoint_dir(name).map_err(|e| ApiError { status: StatusCode::NOT_FOUND, ..e })?;
        for job in self.meta.jobs()?.iter().filter(|j| !j.state.is_terminal()) {
            let spec = crate::jobs::parse(&job.spec, crate::jobs::record_format(job))?;
            if spec.savepoint.as_ref().is_some_and(|s| s.path.as_os_str() == name) {
                return Err(ApiError::conflict(
                    "savepoint_in_use",
                    format!("job {} starts from savepoint {name}: cancel it or let it end first", job.id),
                ));
            }
        }
        std::fs::remove_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("cannot delete {}: {e}", dir.display())))?;
        tracing::info!(savepoint = %name, "savepoint deleted");
        Ok(())
    }

    /// Whether a job of spec `text` could start from savepoint `name`, node
    /// by node, without starting anything.
    pub fn check_savepoint(&self, name: &str, text: &str, format: Format) -> ApiResult<RestoreCheckView> {
        let dir = self.savepoint_dir(name).map_err(|e| ApiError { status: StatusCode::NOT_FOUND, ..e })?;
        let mut spec = parse(text, format)?;
        let allow = spec.savepoint.as_ref().is_some_and(|s| s.allow_non_restored_state);
        spec.savepoint = None;
        let pins = self.pin_plugins(&spec)?;
        let scratch = self.savepoints_dir.join(".check");
        let mut spec = self.place(spec, &pins, &scratch)?;
        spec.savepoint = Some(weir_spec::SavepointSpec { path: dir.clone(), allow_non_restored_state: allow });
        let restore = weir_runtime::Restore::load(&dir).map_err(|e| {
            ApiError::conflict("savepoint_damaged", e.to_string().replace(&dir.display().to_string(), name))
        })?;
        let engine = self.engine(&spec)?;
        let plugins = weir_runtime::load_plugins(&spec, &engine).map_err(start_error)?;
        let labels = pins.iter().map(|(node, p)| (node.clone(), format!("{}@{}", p.name, p.version))).collect();
        let check = weir_runtime::check_restore(&restore, &spec, &plugins, &labels).map_err(start_error)?;
        Ok(RestoreCheckView::of(name, &check))
    }
}

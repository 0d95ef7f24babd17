//! The server's metadata — plugins, jobs, their specs and states — in one
//! redb database (`DATA_DIR/meta.redb`). Every change is one transaction:
//! after a crash at any point the database holds each change whole or not
//! at all. Values are JSON, so a newer server can add fields.

use std::path::Path;

use redb::{ReadableDatabase as _, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// Plugin versions by `name/version`.
const PLUGINS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugin_versions");
/// Jobs by id.
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");

/// The metadata database failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The database could not be opened.
    #[error("cannot open the metadata database {path}: {source}")]
    Open {
        /// Its path.
        path: std::path::PathBuf,
        /// Why.
        source: redb::DatabaseError,
    },
    /// A transaction failed.
    #[error("metadata transaction failed: {0}")]
    Transaction(#[from] redb::TransactionError),
    /// A table could not be opened.
    #[error("metadata table failed: {0}")]
    Table(#[from] redb::TableError),
    /// Reading or writing failed.
    #[error("metadata storage failed: {0}")]
    Storage(#[from] redb::StorageError),
    /// A commit failed.
    #[error("metadata commit failed: {0}")]
    Commit(#[from] redb::CommitError),
    /// A stored value does not read back.
    #[error("metadata value `{key}` is corrupt: {source}")]
    Corrupt {
        /// Its key.
        key: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// `Result` with [`MetaError`].
pub type Result<T, E = MetaError> = std::result::Result<T, E>;

/// One uploaded version of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginVersion {
    /// The plugin's name.
    pub name: String,
    /// Its version (semver).
    pub version: String,
    /// The world it implements: `operator`, `aggregator` or `window-processor`.
    pub world: String,
    /// The `weir:plugin` version it was built for.
    pub wit_version: String,
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256 of the bytes (its blob's name).
    pub sha256: String,
    /// When it was uploaded (RFC 3339).
    pub uploaded_at: String,
}

/// A plugin version a job's node runs, as resolved at submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PinnedPlugin {
    /// The plugin's name.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// What the spec asked for (`^1.2`, `1.0.0`).
    pub requested: String,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
}

impl PinnedPlugin {
    /// `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Where a job is, as the server keeps it across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// It should run: after a restart the server resumes it.
    Running,
    /// Its input ended.
    Finished,
    /// It failed for good.
    Failed,
    /// It stopped at a barrier (its last checkpoint resumes it).
    Stopped,
    /// It was cancelled.
    Cancelled,
}

impl JobState {
    /// Its name in the API (`running`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
            JobState::Stopped => "stopped",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job has ended (it is not resumed).
    pub fn is_terminal(self) -> bool {
        self != JobState::Running
    }
}

/// A failure of a job, with its cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Failure {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The error's stable code.
    pub code: String,
    /// The error.
    pub message: String,
}

/// A change of the plugin version a node runs: at submission, an upgrade
/// in place (or one refused or failed), a recovery onto the version a
/// checkpoint recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionChange {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The operator node.
    pub node: String,
    /// The version it ran before (`name@version`; none at submission).
    pub from: Option<String>,
    /// The version it runs from then on (or was to run).
    pub to: String,
    /// The checkpoint it runs from: the one at whose barrier it switched,
    /// or the savepoint the job started from.
    pub checkpoint: Option<u64>,
    /// `started`, `upgraded`, `refused`, `failed` or `recovered`.
    pub outcome: String,
    /// Why it was refused or failed.
    pub message: Option<String>,
}

/// A job the server was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id (kept across restarts of the server).
    pub id: String,
    /// The spec's name.
    pub name: String,
    /// The spec as submitted.
    pub spec: String,
    /// `yaml` or `json`.
    pub format: String,
    /// Each operator node's plugin, resolved at submission.
    pub plugins: std::collections::BTreeMap<String, PinnedPlugin>,
    /// Where it is.
    pub state: JobState,
    /// When it was submitted (ms since the epoch).
    pub submitted_at_ms: i64,
    /// When it ended, if it did.
    pub ended_at_ms: Option<i64>,
    /// Its failures, oldest first (restarts included).
    pub failures: Vec<Failure>,
    /// How often the server resumed it after a restart of its own.
    pub resumed: u32,
    /// Each node's figures when it ended (the last run's).
    #[serde(default)]
    pub nodes: Vec<NodeFigures>,
    /// Every version each node ran, and every upgrade asked for, oldest
    /// first.
    #[serde(default)]
    pub history: Vec<VersionChange>,
    /// Its last checkpoints in earlier runs (of the server, or before it
    /// ended), oldest first; a running job's view adds this run's.
    #[serde(default)]
    pub checkpoints: Vec<CheckpointEntry>,
}

/// One checkpoint of a job's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CheckpointEntry {
    /// Its id.
    pub id: u64,
    /// `checkpoint`, `savepoint` or `stop`.
    pub kind: String,
    /// `completed` or `aborted`.
    pub status: String,
    /// When it completed or was aborted (RFC 3339).
    pub at: String,
    /// Trigger to stored (ms).
    pub duration_ms: u64,
    /// The longest barrier alignment of a task (ms).
    pub alignment_ms: u64,
    /// Its state size (bytes).
    pub bytes: u64,
    /// What it stored that no earlier checkpoint had (bytes).
    pub incremental_bytes: u64,
    /// Why it was aborted.
    pub reason: Option<String>,
}

impl From<&weir_runtime::CheckpointRecord> for CheckpointEntry {
    fn from(c: &weir_runtime::CheckpointRecord) -> CheckpointEntry {
        CheckpointEntry {
            id: c.id,
            kind: c.kind.clone(),
            status: if c.aborted.is_some() { "aborted" } else { "completed" }.to_string(),
            at: crate::view::rfc3339(c.at_ms),
            duration_ms: c.duration_ms,
            alignment_ms: c.alignment_ms,
            bytes: c.bytes,
            incremental_bytes: c.incremental_bytes,
            reason: c.aborted.clone(),
        }
    }
}

/// What a node of a job did (kept when the job ends).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFigures {
    /// The node id.
    pub node: String,
    /// Records received.
    pub records_in: u64,
    /// Records emitted on the main output.
    pub records_out: u64,
    /// Records emitted on side outputs.
    pub side_out: u64,
    /// Its watermark (ms), once it has one.
    pub watermark: Option<i64>,
}

/// What storing a plugin version did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A new version.
    Created,
    /// The same bytes were there already under this version.
    Unchanged(PluginVersion),
    /// Other bytes are there under this version.
    Conflict(PluginVersion),
}

/// The metadata database.
#[derive(Debug)]
pub struct Metadata {
    db: redb::Database,
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| MetaError::Corrupt { key: key.to_string(), source })
}

/// The value at `key` of a table, decoded.
fn read<T: for<'de> Deserialize<'de>>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>> {
    table.get(key)?.map(|v| decode(key, v.value())).transpose()
}

/// Every value of a table, decoded, in key order.
fn read_all<T: for<'de> Deserialize<'de>>(table: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Vec<T>> {
    table
        .iter()?
        .map(|entry| {
            let (k, v) = entry?;
            decode(k.value(), v.value())
        })
        .collect()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("metadata serializes")
}

fn plugin_key(name: &str, version: &str) -> String {
    format!("{name}/{version}")
}

impl Metadata {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Metadata> {
        let db = redb::Database::create(path).map_err(|source| MetaError::Open { path: path.to_path_buf(), source })?;
        let tx = db.begin_write()?;
        tx.open_table(PLUGINS)?;
        tx.open_table(JOBS)?;
        tx.commit()?;
        Ok(Metadata { db })
    }

    /// Stores a plugin version unless that version exists (then says
    /// whether its bytes are the same), in one transaction: of two uploads
    /// of one version, exactly one creates it.
    pub fn put_plugin(&self, version: &PluginVersion) -> Result<Stored> {
        let tx = self.db.begin_write()?;
        let key = plugin_key(&version.name, &version.version);
        let stored = {
            let mut table = tx.open_table(PLUGINS)?;
            match read::<PluginVersion>(&table, &key)? {
                Some(old) if old.sha256 == version.sha256 => Stored::Unchanged(old),
                Some(old) => Stored::Conflict(old),
                None => {
                    table.insert(key.as_str(), encode(version).as_slice())?;
                    Stored::Created
                }
            }
        };
        tx.commit()?;
        Ok(stored)
    }

    /// Every plugin version, by name then version (semver order).
    pub fn plugins(&self) -> Result<Vec<PluginVersion>> {
        let tx = self.db.begin_read()?;
        let mut all: Vec<PluginVersion> = read_all(&tx.open_table(PLUGINS)?)?;
        all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| semver_order(&a.version, &b.version)));
        Ok(all)
    }

    /// One plugin version.
    pub fn plugin(&self, name: &str, version: &str) -> Result<Option<PluginVersion>> {
        let tx = self.db.begin_read()?;
        read(&tx.open_table(PLUGINS)?, &plugin_key(name, version))
    }

    /// Deletes a plugin version unless a job that has not ended uses it
    /// (then returns those jobs' ids and deletes nothing). `Ok(None)`: no
    /// such version.
    pub fn delete_plugin(&self, name: &str, version: &str) -> Result<Option<Result<PluginVersion, Vec<String>>>> {
        let tx = self.db.begin_write()?;
        let key = plugin_key(name, version);
        let outcome = {
            let jobs: Vec<JobRecord> = read_all(&tx.open_table(JOBS)?)?;
            let users: Vec<String> = jobs
                .into_iter()
                .filter(|j| {
                    !j.state.is_terminal() && j.plugins.values().any(|p| p.name == name && p.version == version)
                })
                .map(|j| j.id)
                .collect();
            let mut table = tx.open_table(PLUGINS)?;
            match read::<PluginVersion>(&table, &key)? {
                None => None,
                Some(_) if !users.is_empty() => Some(Err(users)),
                Some(old) => {
                    table.remove(key.as_str())?;
                    Some(Ok(old))
                }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Stores a job (new or changed).
    pub fn put_job(&self, job: &JobRecord) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(JOBS)?.insert(job.id.as_str(), encode(job).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets a job (one refused at submission).
    pub fn delete_job(&self, id: &str) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(JOBS)?.remove(id)?;
        tx.commit()?;
        Ok(())
    }

    /// Changes a stored job in one transaction; `None` when there is none.
    pub fn update_job(&self, id: &str, change: impl FnOnce(&mut JobRecord)) -> Result<Option<JobRecord>> {
        let tx = self.db.begin_write()?;
        let updated = {
            let mut table = tx.open_table(JOBS)?;
            match read::<JobRecord>(&table, id)? {
                Some(mut job) => {
                    change(&mut job);
                    table.insert(id, encode(&job).as_slice())?;
                    Some(job)
                }
                None => None,
            }
        };
        tx.commit()?;
        Ok(updated)
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        let tx = self.db.begin_read()?;
        let mut all: Vec<JobRecord> = read_all(&tx.open_table(JOBS)?)?;
        all.sort_by(|a, b| a.submitted_at_ms.cmp(&b.submitted_at_ms).then_with(|| a.id.cmp(&b.id)));
        Ok(all)
    }

    /// One job.
    pub fn job(&self, id: &str) -> Result<Option<JobRecord>> {
        let tx = self.db.begin_read()?;
        read(&tx.open_table(JOBS)?, id)
    }
}

/// Versions in semver order (stored versions always parse).
pub fn semver_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(v: &str, sha: &str) -> PluginVersion {
        PluginVersion {
            name: "avg".into(),
            version: v.into(),
            world: "operator".into(),
            wit_version: "0.1.0".into(),
            size: 3,
            sha256: sha.into(),
            uploaded_at: "2026-12-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn versions_are_immutable_and_a_used_version_stays() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Metadata::open(&dir.path().join("meta.redb")).unwrap();
        assert_eq!(meta.put_plugin(&version("1.10.0", "aa")).unwrap(), Stored::Created);
        assert_eq!(meta.put_plugin(&version("1.2.0", "bb")).unwrap(), Stored::Created);
        assert_eq!(meta.put_plugin(&version("1.2.0", "bb")).unwrap(), Stored::Unchanged(version("1.2.0", "bb")));
        assert_eq!(meta.put_plugin(&version("1.2.0", "cc")).unwrap(), Stored::Conflict(version("1.2.0", "bb")));
        let versions: Vec<String> = meta.plugins().unwrap().into_iter().map(|v| v.version).collect();
        assert_eq!(versions, ["1.2.0", "1.10.0"]);
        let pin =
            PinnedPlugin { name: "avg".into(), version: "1.2.0".into(), requested: "^1".into(), sha256: "bb".into() };
        let job = JobRecord {
            id: "j1".into(),
            name: "demo".into(),
            spec: String::new(),
            format: "yaml".into(),
            plugins: [("avg".to_string(), pin)].into(),
            state: JobState::Running,
            submitted_at_ms: 5,
            ended_at_ms: None,
            failures: Vec::new(),
            history: Vec::new(),
            resumed: 0,
            nodes: Vec::new(),
            checkpoints: Vec::new(),
        };
        meta.put_job(&job).unwrap();
        assert_eq!(meta.delete_plugin("avg", "1.2.0").unwrap(), Some(Err(vec!["j1".to_string()])));
        meta.update_job("j1", |j| j.state = JobState::Cancelled).unwrap();
        drop(meta);
        // Reopened: everything is still there.
        let meta = Metadata::open(&dir.path().join("meta.redb")).unwrap();
        assert_eq!(meta.job("j1").unwrap().unwrap().state, JobState::Cancelled);
        assert_eq!(meta.delete_plugin("avg", "1.2.0").unwrap(), Some(Ok(version("1.2.0", "bb"))));
        assert_eq!(meta.delete_plugin("avg", "1.2.0").unwrap(), None);
    }
}

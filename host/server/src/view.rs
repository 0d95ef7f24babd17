//! What the jobs API returns: a job's record and, while it runs here, its
//! live figures, shaped for people and tools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_runtime::graph::{NodeRole, Partitioning, Plan};
use weir_runtime::{JobSnapshot, JobStatus, NodeReport};
use weir_spec::KeyBy;

use crate::jobs::Rates;
use crate::meta::{Failure, JobRecord, JobState, NodeFigures, PinnedPlugin, VersionChange};

/// A job in a list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct JobSummary {
    /// Its id.
    pub id: String,
    /// The spec's name.
    pub name: String,
    /// `running`, `finished`, `failed`, `stopped` or `cancelled`.
    pub state: String,
    /// What it does now: `starting`, `running`, `restarting`… (`state`
    /// once ended).
    pub phase: String,
    /// When it was submitted (RFC 3339).
    pub submitted_at: String,
    /// Its failures so far.
    pub failures: usize,
    /// Restarts after task failures, in this run of the server.
    pub restarts: u32,
    /// Time since it started in this run of the server (ms), while it runs.
    pub uptime_ms: Option<u64>,
    /// Records its sources read per second, over the last second.
    pub records_in_per_s: f64,
    /// Records its sinks wrote per second, over the last second.
    pub records_out_per_s: f64,
}

/// One job, whole.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// The spec's name.
    pub name: String,
    /// `running`, `finished`, `failed`, `stopped` or `cancelled`.
    pub state: String,
    /// What it does now: `starting`, `running`, `restarting`, `stopping`
    /// (`state` once ended, or `pending` before it runs here).
    pub phase: String,
    /// When it was submitted (RFC 3339).
    pub submitted_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// The plugin version each operator node runs.
    pub plugins: BTreeMap<String, PinnedPlugin>,
    /// Restarts after task failures, in this run of the server.
    pub restarts: u32,
    /// How often the server resumed it after restarting.
    pub resumed: u32,
    /// Time since it started in this run of the server (ms).
    pub uptime_ms: Option<u64>,
    /// Its nodes, in task order.
    pub nodes: Vec<NodeView>,
    /// Its edges: which node feeds which, and how records are spread.
    pub edges: Vec<EdgeView>,
    /// Its checkpoints in this run of the server.
    pub checkpoints: Option<CheckpointView>,
    /// Its failures, oldest first.
    pub failures: Vec<Failure>,
    /// Every version each node ran (and from which checkpoint), and every
    /// upgrade asked for, oldest first.
    pub history: Vec<VersionChange>,
}

/// A node of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct NodeView {
    /// The node id.
    pub id: String,
    /// `source`, `operator` or `sink`.
    pub role: String,
    /// Its parallel instances.
    pub parallelism: u32,
    /// The chain of nodes its tasks run (`celsius → averages`).
    pub task: String,
    /// Records received.
    pub records_in: u64,
    /// Records emitted on the main output.
    pub records_out: u64,
    /// Records emitted on side outputs.
    pub side_out: u64,
    /// Records in per second, over the last second.
    pub records_in_per_s: f64,
    /// Records out per second, over the last second.
    pub records_out_per_s: f64,
    /// The lowest watermark of its instances (ms), once there is one.
    pub watermark: Option<i64>,
    /// Back-pressure, as Flink's `backPressuredTimeMsPerSecond`: the ms per
    /// second (0–1000, over the last second) that its most waiting instance
    /// spent blocked sending downstream because a channel was full. Near
    /// 1000, a node after it is the bottleneck.
    pub backpressured_ms_per_s: f64,
    /// How far its watermark is behind the wall clock (ms), while the job
    /// runs here and once there is a watermark.
    pub watermark_lag_ms: Option<i64>,
    /// Plugin counters.
    pub counters: BTreeMap<String, u64>,
    /// An operator's plugin, `name@version`.
    pub plugin: Option<String>,
    /// An operator's sandbox limits (the spec's over the defaults).
    pub limits: Option<LimitsView>,
}

/// An edge of a job's graph.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct EdgeView {
    /// The upstream node.
    pub from: String,
    /// The upstream node's side output, or `None` for its main output.
    pub side: Option<String>,
    /// The downstream node.
    pub to: String,
    /// `forward` (task i to task i, chained when it can be), `hash` (by
    /// key group) or `rebalance` (round robin).
    pub partitioning: String,
    /// What a `hash` edge keys by: `key` or a JSON pointer.
    pub key_by: Option<String>,
}

/// An operator's sandbox limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct LimitsView {
    /// Most linear memory of an instance (bytes).
    pub memory_bytes: u64,
    /// Longest one call may run (ms).
    pub call_timeout_ms: u64,
    /// Fuel per call, when metered.
    pub fuel: Option<u64>,
    /// Most records one call may emit.
    pub max_emitted: u64,
    /// Most bytes the host copies out of one call's results.
    pub max_output_bytes: u64,
}

impl From<&weir_wasm::Limits> for LimitsView {
    fn from(l: &weir_wasm::Limits) -> LimitsView {
        LimitsView {
            memory_bytes: l.memory_bytes,
            call_timeout_ms: l.call_timeout.as_millis() as u64,
            fuel: l.fuel,
            max_emitted: l.max_emitted,
            max_output_bytes: l.max_output_bytes,
        }
    }
}

/// What a job's views need of its spec, made once per run.
#[derive(Debug, Clone)]
pub struct JobShape {
    /// Its plan.
    pub plan: Plan,
    /// Each operator's limits.
    pub limits: BTreeMap<String, weir_wasm::Limits>,
}

impl JobShape {
    /// The shape of `spec`.
    pub fn of(spec: &weir_spec::JobSpec) -> JobShape {
        let limits = spec.operators.iter().map(|o| (o.id.clone(), weir_runtime::operator_limits(o))).collect();
        JobShape { plan: Plan::new(spec), limits }
    }
}

/// A job's checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CheckpointView {
    /// Completed.
    pub completed: u64,
    /// Aborted.
    pub aborted: u64,
    /// The last completed one's id.
    pub last_id: Option<u64>,
    /// Its duration (ms).
    pub last_duration_ms: u64,
    /// Its state size (bytes).
    pub last_bytes: u64,
}

/// Milliseconds since the epoch as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(at).to_string()
}

fn phase(status: &JobStatus) -> &'static str {
    match status {
        JobStatus::Starting => "starting",
        JobStatus::Running => "running",
        JobStatus::Restarting { .. } => "restarting",
        JobStatus::Stopping => "stopping",
        JobStatus::Finished => "finished",
        JobStatus::Stopped { .. } => "stopped",
        JobStatus::Failed { .. } => "failed",
        JobStatus::Cancelled => "cancelled",
    }
}

fn phase_of(record: &JobRecord, status: Option<&JobStatus>) -> String {
    match (record.state, status) {
        (JobState::Running, Some(s)) => phase(s).to_string(),
        (JobState::Running, None) => "pending".to_string(),
        (state, _) => state.as_str().to_string(),
    }
}

/// A job in a list: the record and, while it runs here, its snapshot and
/// rates.
pub fn summary(record: &JobRecord, running: Option<(&JobSnapshot, &Rates, &Plan)>) -> JobSummary {
    let rate = |role: NodeRole, pick: fn(&(f64, f64, f64)) -> f64| -> f64 {
        running.map_or(0.0, |(_, rates, plan)| {
            // (`sum` of no f64 is -0.0)
            plan.nodes
                .values()
                .filter(|n| n.role == role)
                .filter_map(|n| rates.get(&n.id))
                .map(pick)
                .fold(0.0, |a, b| a + b)
        })
    };
    JobSummary {
        id: record.id.clone(),
        name: record.name.clone(),
        state: record.state.as_str().to_string(),
        phase: phase_of(record, running.map(|(s, _, _)| &s.status)),
        submitted_at: rfc3339(record.submitted_at_ms),
        failures: record.failures.len(),
        restarts: running.map_or(0, |(s, _, _)| s.restarts),
        uptime_ms: running.map(|(s, _, _)| s.uptime.as_millis() as u64),
        records_in_per_s: rate(NodeRole::Source, |r| r.1),
        records_out_per_s: rate(NodeRole::Sink, |r| r.0),
    }
}

/// The figures kept of each node when a job ends.
pub fn figures(nodes: &[NodeReport]) -> Vec<NodeFigures> {
    nodes
        .iter()
        .map(|n| NodeFigures {
            node: n.node.clone(),
            records_in: n.records_in,
            records_out: n.records_out,
            side_out: n.side_out,
            watermark: n.watermark,
        })
        .collect()
}

/// One job: the record, its shape and, while it runs, its snapshot.
pub fn job(record: &JobRecord, shape: &JobShape, running: Option<(JobSnapshot, Rates)>) -> JobView {
    let plan = &shape.plan;
    let now = crate::now_ms();
    let (snapshot, rates) = match running {
        Some((s, r)) => (Some(s), r),
        None => (None, Rates::new()),
    };
    let live: BTreeMap<&str, &NodeReport> =
        snapshot.iter().flat_map(|s| s.nodes.iter()).map(|n| (n.node.as_str(), n)).collect();
    let ended: BTreeMap<&str, &NodeFigures> = record.nodes.iter().map(|n| (n.node.as_str(), n)).collect();
    let mut order: Vec<&String> = Vec::new();
    for chain in &plan.chains {
        order.extend(chain.iter());
    }
    let nodes = order
        .into_iter()
        .map(|id| {
            let node = &plan.nodes[id];
            let chain = plan.chains.iter().find(|c| c.contains(id)).map(|c| c.join(" → ")).unwrap_or_default();
            let (records_in, records_out, side_out, watermark, counters) =
                match (live.get(id.as_str()), ended.get(id.as_str())) {
                    (Some(n), _) => (n.records_in, n.records_out, n.side_out, n.watermark, n.counters.clone()),
                    (None, Some(n)) => (n.records_in, n.records_out, n.side_out, n.watermark, BTreeMap::new()),
                    (None, None) => (0, 0, 0, None, BTreeMap::new()),
                };
            let (rate_in, rate_out, backpressured) = rates.get(id.as_str()).copied().unwrap_or_default();
            NodeView {
                id: id.clone(),
                role: match node.role {
                    NodeRole::Source => "source",
                    NodeRole::Operator => "operator",
                    NodeRole::Sink => "sink",
                }
                .to_string(),
                parallelism: node.parallelism,
                task: chain,
                records_in,
                records_out,
                side_out,
                records_in_per_s: rate_in,
                records_out_per_s: rate_out,
                watermark,
                backpressured_ms_per_s: backpressured,
                watermark_lag_ms: watermark.filter(|_| snapshot.is_some()).map(|w| now - w),
                counters,
                plugin: record.plugins.get(id.as_str()).map(PinnedPlugin::label),
                limits: shape.limits.get(id.as_str()).map(LimitsView::from),
            }
        })
        .collect();
    let edges = plan
        .edges
        .iter()
        .map(|e| {
            let (partitioning, key_by) = match &e.partitioning {
                Partitioning::Forward => ("forward", None),
                Partitioning::Rebalance => ("rebalance", None),
                Partitioning::Hash(KeyBy::RecordKey) => ("hash", Some("key".to_string())),
                Partitioning::Hash(KeyBy::Pointer(p)) => ("hash", Some(p.clone())),
            };
            EdgeView {
                from: e.from.clone(),
                side: e.side.clone(),
                to: e.to.clone(),
                partitioning: partitioning.to_string(),
                key_by,
            }
        })
        .collect();
    JobView {
        id: record.id.clone(),
        name: record.name.clone(),
        state: record.state.as_str().to_string(),
        phase: phase_of(record, snapshot.as_ref().map(|s| &s.status)),
        submitted_at: rfc3339(record.submitted_at_ms),
        ended_at: record.ended_at_ms.map(rfc3339),
        plugins: record.plugins.clone(),
        restarts: snapshot.as_ref().map_or(0, |s| s.restarts),
        resumed: record.resumed,
        uptime_ms: snapshot.as_ref().map(|s| s.uptime.as_millis() as u64),
        nodes,
        edges,
        checkpoints: snapshot.as_ref().map(|s| CheckpointView {
            completed: s.checkpoints.completed,
            aborted: s.checkpoints.aborted,
            last_id: s.checkpoints.last_id,
            last_duration_ms: s.checkpoints.last_duration_ms,
            last_bytes: s.checkpoints.last_bytes,
        }),
        failures: record.failures.clone(),
        history: record.history.clone(),
    }
}

/// A savepoint: a self-contained copy of a job's state, never deleted
/// automatically, with the savepoint its job started from (its parent in
/// the lineage tree).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SavepointView {
    /// Its name (its directory's).
    pub name: String,
    /// The job's name.
    pub job: String,
    /// The id of the job run that took it.
    pub job_id: String,
    /// The checkpoint id it was taken at.
    pub checkpoint_id: u64,
    /// When it was taken (RFC 3339).
    pub taken_at: String,
    /// The size of its state, in bytes.
    pub bytes: u64,
    /// The number of key groups (a restore needs the same).
    pub max_parallelism: u32,
    /// The plugin each operator node ran (`name@version`).
    pub plugins: BTreeMap<String, String>,
    /// The savepoint the job's state descends from (its parent), if any.
    pub parent: Option<String>,
    /// The checkpoint or savepoint the run that took it started from.
    pub restored_from: Option<String>,
}

impl SavepointView {
    /// The view of savepoint `name` with `manifest`.
    pub fn of(name: &str, m: &weir_checkpoint::Manifest) -> SavepointView {
        SavepointView {
            name: name.to_string(),
            job: m.job.clone(),
            job_id: m.job_id.clone(),
            checkpoint_id: m.id,
            taken_at: rfc3339(m.completed_at_ms),
            bytes: m.bytes,
            max_parallelism: m.max_parallelism,
            plugins: m.plugin_versions.clone(),
            parent: m.parent.as_ref().map(|p| p.name.clone()),
            restored_from: m.restored_from.as_ref().map(|r| format!("{} {} ({})", r.kind, r.id, r.name)),
        }
    }
}

/// What happens to one state in a restore.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct StateCheckView {
    /// The state's name.
    pub name: String,
    /// Its kind in the savepoint.
    pub before: Option<String>,
    /// Its kind as declared now.
    pub after: Option<String>,
    /// `mapped`, `new`, `undeclared` (carried along unread) or `refused`.
    pub fate: String,
    /// Why it is refused.
    pub reason: Option<String>,
}

/// What happens to one node in a restore.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct NodeCheckView {
    /// The node's id.
    pub node: String,
    /// `source`, `operator` or `sink`.
    pub role: String,
    /// `restored`, `new`, `dropped` or `refused`.
    pub fate: String,
    /// Why it is refused.
    pub reason: Option<String>,
    /// Its parallelism in the savepoint.
    pub parallelism_before: Option<u32>,
    /// Its parallelism in the job.
    pub parallelism_after: Option<u32>,
    /// Its plugin in the savepoint.
    pub plugin_before: Option<String>,
    /// Its plugin in the job.
    pub plugin_after: Option<String>,
    /// Its states.
    pub states: Vec<StateCheckView>,
}

/// Whether a job can start from a savepoint, node by node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RestoreCheckView {
    /// The savepoint.
    pub savepoint: String,
    /// Whether the restore would be accepted.
    pub accepted: bool,
    /// Every reason it would be refused.
    pub reasons: Vec<String>,
    /// Every node of the savepoint and of the job.
    pub nodes: Vec<NodeCheckView>,
    /// The report as `weir savepoint check` prints it.
    pub text: String,
}

impl RestoreCheckView {
    /// The view of a check of savepoint `name`.
    pub fn of(name: &str, check: &weir_runtime::RestoreCheck) -> RestoreCheckView {
        use weir_runtime::{NodeFate, StateFate};
        let nodes = check
            .nodes
            .iter()
            .map(|n| {
                let (fate, reason) = match &n.fate {
                    NodeFate::Restored => ("restored", None),
                    NodeFate::New => ("new", None),
                    NodeFate::Dropped => ("dropped", None),
                    NodeFate::Refused(why) => ("refused", Some(why.clone())),
                };
                let states = n
                    .states
                    .iter()
                    .map(|s| {
                        let (fate, reason) = match &s.fate {
                            StateFate::Mapped => ("mapped", None),
                            StateFate::Migrated { .. } => ("migrated", None),
                            StateFate::New => ("new", None),
                            StateFate::Undeclared => ("undeclared", None),
                            StateFate::Refused(why) => ("refused", Some(why.clone())),
                        };
                        let (before, after) = (s.before.clone(), s.after.clone());
                        StateCheckView { name: s.name.clone(), before, after, fate: fate.into(), reason }
                    })
                    .collect();
                NodeCheckView {
                    node: n.node.clone(),
                    role: n.role.into(),
                    fate: fate.into(),
                    reason,
                    parallelism_before: n.parallelism.0,
                    parallelism_after: n.parallelism.1,
                    plugin_before: n.plugin.0.clone(),
                    plugin_after: n.plugin.1.clone(),
                    states,
                }
            })
            .collect();
        let text = check.to_text().replace(&check.savepoint, name);
        RestoreCheckView {
            savepoint: name.to_string(),
            accepted: check.accepted(),
            reasons: check.reasons().map(|r| r.replace(&check.savepoint, name)).collect(),
            nodes,
            text,
        }
    }
}

//! Whether a job can start from a checkpoint or savepoint, and what would
//! happen to each node's state — found without starting anything: each
//! operator's plugin is instantiated once over empty state to see what it
//! declares.
//!
//! The rules: state maps to nodes by node id and to states by name; a node
//! the savepoint does not know starts empty; state of a node the job no
//! longer has is refused unless `allow_non_restored_state`; a state whose
//! kind changed is refused; the number of key groups cannot change; the
//! parallelism can. A state the new plugin does not declare is carried along
//! unread (a rollback to the old version finds it).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use weir_checkpoint::Manifest;
use weir_spec::JobSpec;
use weir_state::StateKind;
use weir_types::TaskInfo;
use weir_wasm::Plugin;

use super::Restore;
use crate::build::{NodeContext, StateRoot, operator_node};
use crate::error::Result;
use crate::metrics::Metrics;

/// What happens to one state of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateFate {
    /// Restored as it is.
    Mapped,
    /// Restored, and rewritten by the new plugin's migration from the
    /// schema version it was written at to the one the plugin writes.
    Migrated {
        /// The schema version in the savepoint.
        from: u32,
        /// The one the plugin writes.
        to: u32,
    },
    /// The plugin declares it and the savepoint has none: it starts empty.
    New,
    /// In the savepoint, not declared by the plugin: carried along unread.
    Undeclared,
    /// Cannot be restored.
    Refused(String),
}

/// One state of a node in a [`RestoreCheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCheck {
    /// The state's name.
    pub name: String,
    /// Its kind in the savepoint, if there.
    pub before: Option<String>,
    /// Its kind as declared now, if declared.
    pub after: Option<String>,
    /// What happens to it.
    pub fate: StateFate,
}

/// What happens to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeFate {
    /// Its state (or position, or pending output) is restored.
    Restored,
    /// The savepoint has nothing of it: it starts empty.
    New,
    /// The job no longer has it; its state is dropped (allowed).
    Dropped,
    /// It cannot be restored.
    Refused(String),
}

/// One node in a [`RestoreCheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCheck {
    /// The node's id.
    pub node: String,
    /// `source`, `operator` or `sink`.
    pub role: &'static str,
    /// What happens to it.
    pub fate: NodeFate,
    /// Its parallelism in the savepoint and in the job.
    pub parallelism: (Option<u32>, Option<u32>),
    /// Its plugin in the savepoint and in the job (`name@version`).
    pub plugin: (Option<String>, Option<String>),
    /// Its states (operators).
    pub states: Vec<StateCheck>,
}

/// Whether a job can start from a savepoint, node by node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreCheck {
    /// The savepoint (or checkpoint) directory.
    pub savepoint: String,
    /// Refusals that concern the whole job (`max_parallelism`).
    pub refused: Vec<String>,
    /// Every node of the savepoint and of the job.
    pub nodes: Vec<NodeCheck>,
}

impl RestoreCheck {
    /// Whether the restore would be accepted.
    pub fn accepted(&self) -> bool {
        self.refused.is_empty() && self.reasons().next().is_none()
    }

    /// Every reason for refusing it, in node order.
    pub fn reasons(&self) -> impl Iterator<Item = &str> {
        let nodes = self.nodes.iter().flat_map(|n| {
            let node = match &n.fate {
                NodeFate::Refused(why) => Some(why.as_str()),
                _ => None,
            };
            let states = n.states.iter().filter_map(|s| match &s.fate {
                StateFate::Refused(why) => Some(why.as_str()),
                _ => None,
            });
            node.into_iter().chain(states)
        });
        self.refused.iter().map(String::as_str).chain(nodes)
    }

    /// The report as a person reads it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let verdict = if self.accepted() { "can start from" } else { "cannot start from" };
        let _ = writeln!(out, "the job {verdict} {}", self.savepoint);
        for why in &self.refused {
            let _ = writeln!(out, "  refused: {why}");
        }
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        for n in &self.nodes {
            let fate = match &n.fate {
                NodeFate::Restored => "restored".to_string(),
                NodeFate::New => "new: starts empty".to_string(),
                NodeFate::Dropped => "dropped: the job no longer has it (allow_non_restored_state)".to_string(),
                NodeFate::Refused(why) => format!("refused: {why}"),
            };
            let _ = writeln!(out, "  {} `{}`: {fate}", n.role, n.node);
            let (pb, pa) = n.parallelism;
            if pb.is_some() && pa.is_some() && pb != pa {
                let _ = writeln!(out, "    parallelism {} → {}", pb.unwrap_or(0), pa.unwrap_or(0));
            }
            if n.plugin.0.is_some() || n.plugin.1.is_some() {
                let same = if n.plugin.0 == n.plugin.1 { " (unchanged)" } else { "" };
                let _ = writeln!(out, "    plugin {} → {}{same}", or_dash(&n.plugin.0), or_dash(&n.plugin.1));
            }
            for s in &n.states {
                let fate = match &s.fate {
                    StateFate::Mapped => format!("mapped ({})", or_dash(&s.after)),
                    StateFate::Migrated { from, to } => {
                        format!("migrated ({}) from schema {from} to {to} by the plugin", or_dash(&s.after))
                    }
                    StateFate::New => format!("new ({}): starts empty", or_dash(&s.after)),
                    StateFate::Undeclared => {
                        format!("not declared ({}): carried along unread", or_dash(&s.before))
                    }
                    StateFate::Refused(why) => format!("refused: {why}"),
                };
                let _ = writeln!(out, "    state `{}`: {fate}", s.name);
            }
        }
        out
    }
}

/// The states operator `o`'s plugin declares, found by building subtask 0
/// of 1 over empty in-memory state.
pub(crate) fn declared_states(
    spec: &JobSpec,
    o: &weir_spec::OperatorSpec,
    plugin: Option<&Plugin>,
) -> Result<Vec<(String, StateKind, u32)>> {
    let task = TaskInfo { node: o.id.as_str().into(), index: 0, parallelism: 1 };
    let metrics = Metrics::new().job("restore-check", &spec.name).task(&o.id, 0);
    let context = NodeContext {
        max_parallelism: spec.max_parallelism,
        batch_size: spec.batch_size,
        task,
        metrics,
        restored: (Vec::new(), Vec::new()),
        schemas: Default::default(),
        state_root: &StateRoot::Memory,
        attempt: 0,
    };
    let mut built = operator_node(context, o, plugin)?;
    let state = built.node.state();
    Ok(state.descriptors().iter().map(|d| (d.name.clone(), d.kind, state.schema(&d.name))).collect())
}

fn states_of(manifest: &Manifest, node: &str) -> Vec<(String, String, u32)> {
    manifest
        .operators
        .get(node)
        .map(|op| op.states.iter().map(|s| (s.name.clone(), s.kind.clone(), s.schema)).collect())
        .unwrap_or_default()
}

/// Checks whether `spec` (running `plugins`, labelled `labels`) can start
/// from `restore`, with `allow_non_restored_state` as the spec says.
pub fn check_restore(
    restore: &Restore,
    spec: &JobSpec,
    plugins: &std::collections::HashMap<String, Plugin>,
    labels: &std::collections::HashMap<String, String>,
) -> Result<RestoreCheck> {
    let m = &restore.manifest;
    let allow = spec.savepoint.as_ref().is_some_and(|s| s.allow_non_restored_state);
    let mut refused = Vec::new();
    if m.max_parallelism != spec.max_parallelism {
        refused.push(format!(
            "its state is in {} key groups and the job has max_parallelism {}: key groups cannot be split or merged, \
             so restore with `max_parallelism: {}`",
            m.max_parallelism, spec.max_parallelism, m.max_parallelism
        ));
    }
    let mut nodes = Vec::new();
    // Nodes of the job, in spec order.
    let mut known: BTreeSet<(&'static str, String)> = BTreeSet::new();
    for s in &spec.sources {
        known.insert(("source", s.id.clone()));
        let before = m.sources.get(&s.id);
        nodes.push(NodeCheck {
            node: s.id.clone(),
            role: "source",
            fate: if before.is_some() { NodeFate::Restored } else { NodeFate::New },
            parallelism: (before.map(|b| b.parallelism), Some(spec.parallelism_of(s.parallelism))),
            plugin: (None, None),
            states: Vec::new(),
        });
    }
    for o in &spec.operators {
        known.insert(("operator", o.id.clone()));
        let before = m.operators.get(&o.id);
        let plugin = plugins.get(&o.id);
        let label = plugin.map(|p| labels.get(&o.id).cloned().unwrap_or_else(|| crate::job::plugin_label(p)));
        let old_label =
            m.plugin_versions.get(&o.id).cloned().or_else(|| m.plugins.get(&o.id).map(|d| d[..12].to_string()));
        let declared = declared_states(spec, o, plugin)?;
        let stored = states_of(m, &o.id);
        let mut states = Vec::new();
        for (name, kind, from) in &stored {
            let now = declared.iter().find(|(n, _, _)| n == name).map(|(_, k, to)| (k.name().to_string(), *to));
            let fate = match &now {
                None => StateFate::Undeclared,
                Some((k, to)) if k == kind && from == to => StateFate::Mapped,
                Some((k, to)) if k == kind && *to > 0 => StateFate::Migrated { from: *from, to: *to },
                Some((k, to)) if k == kind => StateFate::Refused(format!(
                    "operator `{}` state `{name}` is written at schema {from} in the savepoint and {} writes schema \
                     {to} without a migration: restore a savepoint taken before the state was migrated",
                    o.id,
                    label.as_deref().unwrap_or("the job")
                )),
                Some((k, _)) => StateFate::Refused(format!(
                    "operator `{}` state `{name}` is a {kind} state in the savepoint and {} declares it a {k} \
                     state: a state cannot change kind — give the new one another name, or keep its kind",
                    o.id,
                    label.as_deref().unwrap_or("the job")
                )),
            };
            let after = now.map(|(k, _)| k);
            states.push(StateCheck { name: name.clone(), before: Some(kind.clone()), after, fate });
        }
        for (name, kind, _) in declared.iter().filter(|(n, _, _)| !stored.iter().any(|(s, _, _)| s == n)) {
            let after = Some(kind.name().to_string());
            states.push(StateCheck { name: name.clone(), before: None, after, fate: StateFate::New });
        }
        nodes.push(NodeCheck {
            node: o.id.clone(),
            role: "operator",
            fate: if before.is_some() { NodeFate::Restored } else { NodeFate::New },
            parallelism: (before.map(|b| b.parallelism), Some(spec.parallelism_of(o.parallelism))),
            plugin: (before.and(old_label), label),
            states,
        });
    }
    for s in &spec.sinks {
        known.insert(("sink", s.id.clone()));
        let before = m.sinks.get(&s.id);
        nodes.push(NodeCheck {
            node: s.id.clone(),
            role: "sink",
            fate: if before.is_some() { NodeFate::Restored } else { NodeFate::New },
            parallelism: (before.map(|b| b.parallelism), Some(spec.parallelism_of(s.parallelism))),
            plugin: (None, None),
            states: Vec::new(),
        });
    }
    // Nodes of the savepoint the job no longer has.
    let gone = m
        .sources
        .iter()
        .map(|(id, s)| ("source", id, s.parallelism, "its read positions"))
        .chain(m.operators.iter().map(|(id, o)| ("operator", id, o.parallelism, "its state")))
        .chain(m.sinks.iter().map(|(id, s)| ("sink", id, s.parallelism, "its output not yet committed")));
    for (role, id, parallelism, what) in gone {
        if known.contains(&(role, id.clone())) {
            continue;
        }
        let fate = match allow {
            true => NodeFate::Dropped,
            false => NodeFate::Refused(format!(
                "the savepoint holds {what} for {role} `{id}`, which the job does not have: add the node back, or \
                 set `allow_non_restored_state: true` to drop it"
            )),
        };
        let plugin = (m.plugin_versions.get(id).cloned(), None);
        let parallelism = (Some(parallelism), None);
        nodes.push(NodeCheck { node: id.clone(), role, fate, parallelism, plugin, states: Vec::new() });
    }
    Ok(RestoreCheck { savepoint: restore.dir.display().to_string(), refused, nodes })
}

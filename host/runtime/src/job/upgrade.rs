//! Upgrading a running node to another plugin version in place, at a
//! checkpoint barrier: checked first (the new version loads, is of the
//! node's world, initializes with the node's config and declares no state
//! of another kind), so a version that would fail is refused while the old
//! one runs on; then a barrier carries the switch to every task of the
//! node. Records before the barrier are the old version's, records after it
//! the new one's; the barrier's checkpoint and every later one name the new
//! version, so a restart from them runs it.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_types::{BarrierKind, Mutation, NodeUpdate};
use weir_wasm::{Plugin, World};

use super::{JobControl, PendingCheckpoint};
use crate::checkpointing::check::declared_states;
use crate::error::{Result, RuntimeError};

/// A node to switch to another plugin.
#[derive(Clone)]
pub struct Upgrade {
    /// The operator node.
    pub node: String,
    /// The plugin it runs from the barrier on.
    pub plugin: Plugin,
    /// How its user names it (`name@version`).
    pub label: String,
    /// Its new config, if it changes.
    pub config: Option<serde_json::Value>,
}

impl std::fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrade").field("node", &self.node).field("plugin", &self.label).finish_non_exhaustive()
    }
}

/// An upgrade whose barrier is on its way.
#[derive(Debug)]
pub struct PendingUpgrade {
    pending: PendingCheckpoint,
    control: JobControl,
    upgrade: Upgrade,
    from: String,
}

/// An upgrade that took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    /// The checkpoint at whose barrier it switched: the first that names
    /// the new version.
    pub checkpoint: u64,
    /// The plugin it ran before.
    pub from: String,
    /// The plugin it runs now.
    pub to: String,
}

impl PendingUpgrade {
    /// Waits until the upgrade's checkpoint completed (then every task of
    /// the node runs the new version), giving up after `timeout`. When the
    /// checkpoint fails the job restarts from the one before, on the old
    /// version.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Upgraded> {
        let PendingUpgrade { pending, control, upgrade, from } = self;
        let seen = control.snapshot().failures.len();
        let checkpoint = match pending.wait_timeout(timeout) {
            Ok(done) => done.id,
            Err(e) => {
                // A task that could not switch failed the attempt: its cause
                // says more than the checkpoint that never completed.
                let started = std::time::Instant::now();
                let mut message = e.to_string();
                while started.elapsed() < Duration::from_secs(5) {
                    let failures = control.snapshot().failures;
                    if let Some(f) = failures.iter().skip(seen).find(|f| f.code == "upgrade_failed") {
                        message = f.cause.clone();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                let (node, plugin) = (upgrade.node, upgrade.label);
                return Err(RuntimeError::Upgrade { node, plugin, current: from, message });
            }
        };
        let mut running = control.shared.running.lock().unwrap_or_else(|e| e.into_inner());
        running.insert(upgrade.node.clone(), (upgrade.plugin.clone(), upgrade.label.clone()));
        drop(running);
        tracing::info!(node = %upgrade.node, %from, to = %upgrade.label, checkpoint, "node upgraded in place");
        Ok(Upgraded { checkpoint, from, to: upgrade.label })
    }
}

impl JobControl {
    /// The plugin each operator node runs now, as its user names it.
    pub fn running_plugins(&self) -> BTreeMap<String, String> {
        let running = self.shared.running.lock().unwrap_or_else(|e| e.into_inner());
        running.iter().map(|(node, (_, label))| (node.clone(), label.clone())).collect()
    }

    /// Switches `upgrade.node` to `upgrade.plugin` at the next barrier,
    /// after checking that the new version would run there: refused (and
    /// nothing changes) when it is not of the node's world, fails its
    /// `init` with the node's config, or declares a state of the node with
    /// another kind.
    pub fn upgrade(&self, upgrade: Upgrade) -> Result<PendingUpgrade> {
        let shared = &self.shared;
        let node = &upgrade.node;
        let Some(spec) = shared.spec.operators.iter().find(|o| &o.id == node) else {
            return Err(RuntimeError::Config {
                node: node.clone(),
                message: format!("job `{}` has no operator `{node}`", shared.name),
            });
        };
        let current = shared.running.lock().unwrap_or_else(|e| e.into_inner()).get(node).cloned();
        let Some((current, from)) = current else {
            return Err(RuntimeError::Config {
                node: node.clone(),
                message: "it runs no plugin (a window with a built-in aggregate, or the job is not running yet)".into(),
            });
        };
        let refuse = |message: String| RuntimeError::Upgrade {
            node: node.clone(),
            plugin: upgrade.label.clone(),
            current: from.clone(),
            message,
        };
        let fits = match current.world() {
            World::Operator => upgrade.plugin.world() == World::Operator,
            world => upgrade.plugin.world() == world,
        };
        if !fits {
            let a = |w: World| if w == World::WindowProcessor { "a" } else { "an" };
            let (now, new) = (current.world(), upgrade.plugin.world());
            let (a_now, a_new) = (a(now), a(new));
            let (now, new) = (now.name(), new.name());
            return Err(refuse(format!("the node runs {a_now} {now} plugin and {} is {a_new} {new}", upgrade.label)));
        }
        let mut next = spec.clone();
        if let Some(config) = &upgrade.config {
            next.config = Some(config.clone());
        }
        let before = declared_states(&shared.spec, spec, Some(&current)).map_err(|e| refuse(e.to_string()))?;
        let after = declared_states(&shared.spec, &next, Some(&upgrade.plugin)).map_err(|e| refuse(e.to_string()))?;
        for (name, kind, to) in &after {
            let Some((_, old, from)) = before.iter().find(|(n, _, _)| n == name) else { continue };
            if old != kind {
                return Err(refuse(format!(
                    "it declares state `{name}` a {} state, and the node holds it as a {} state: a state cannot \
                     change kind",
                    kind.name(),
                    old.name()
                )));
            }
            // A plugin that writes schema 0 has no migration: it cannot
            // read what a later schema wrote.
            if from > to && *to == 0 {
                return Err(refuse(format!(
                    "the node writes state `{name}` at schema {from} and it writes schema {to} without a migration: \
                     restore a savepoint taken before the state was migrated"
                )));
            }
        }
        self.register_plugin(upgrade.plugin.clone());
        let update = NodeUpdate {
            plugin: Some(upgrade.plugin.digest().to_string()),
            config: upgrade.config.as_ref().map(|c| c.to_string()),
            label: Some(upgrade.label.clone()),
        };
        let mutation = Mutation { updates: [(node.clone(), update)].into() };
        let pending = self.trigger(BarrierKind::Checkpoint, Some(mutation))?;
        tracing::info!(node = %node, from = %from, to = %upgrade.label, "upgrade checked; its barrier is on its way");
        Ok(PendingUpgrade { pending, control: self.clone(), upgrade, from })
    }
}

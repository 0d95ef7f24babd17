//! State migration (`weir:plugin@0.2.0`'s `migrating-operator` world): a
//! plugin may say which schema version of each state it writes
//! (`state-schemas`) and rewrite values written at another (`migrate`). Both
//! exports are optional — a 0.1.0 plugin has neither, and its states are at
//! schema 0 — so they are looked up on the instance, beside the 0.1.0
//! bindings.

use wasmtime::component::{Instance, TypedFunc};
use weir_state::{KeyedState, StateContent, StateEncoding};

use crate::instance::OperatorInstance;
use crate::sandbox::Sandbox;
use crate::{PluginError, Result};

/// Values per `migrate` call.
const MIGRATE_BATCH: usize = 1024;

type SchemasFn = TypedFunc<(), (Vec<(String, u32)>,)>;
type MigrateFn = TypedFunc<(String, u32, Vec<Vec<u8>>), (Result<Vec<Vec<u8>>, String>,)>;

/// The migration exports of an instance, when it has them.
#[derive(Clone, Copy)]
pub(crate) struct MigrationExports {
    schemas: SchemasFn,
    migrate: MigrateFn,
}

impl MigrationExports {
    /// Looks the exports up; `None` for a plugin without them. One without
    /// the other, or either of another type, is the plugin's mistake.
    pub(crate) fn find(sandbox: &mut Sandbox, instance: &Instance) -> Result<Option<MigrationExports>> {
        let store = &mut sandbox.store;
        let schemas = instance.get_export_index(&mut *store, None, "state-schemas");
        let migrate = instance.get_export_index(&mut *store, None, "migrate");
        let (schemas, migrate) = match (schemas, migrate) {
            (None, None) => return Ok(None),
            (Some(s), Some(m)) => (s, m),
            _ => {
                return Err(PluginError::Contract(
                    "it exports one of `state-schemas` and `migrate` without the other".into(),
                ));
            }
        };
        let typed =
            |e: wasmtime::Error| PluginError::Contract(format!("its migration exports: {}", crate::describe(&e)));
        let schemas = instance.get_typed_func::<(), (Vec<(String, u32)>,)>(&mut *store, schemas).map_err(typed)?;
        let migrate = instance.get_typed_func(&mut *store, migrate).map_err(typed)?;
        Ok(Some(MigrationExports { schemas, migrate }))
    }
}

/// Where a value taken out of state for migration goes back.
enum Slot {
    Value,
    ListItem,
    MapValue(Vec<u8>),
}

impl OperatorInstance {
    /// The schema version of each state the plugin writes (empty for a
    /// plugin without migration exports: all at 0).
    pub fn state_schemas(&mut self) -> Result<Vec<(String, u32)>> {
        let Some(exports) = self.migration else { return Ok(Vec::new()) };
        let sandbox = &mut self.sandbox;
        sandbox.arm()?;
        let result = exports.schemas.call(&mut sandbox.store, ()).map(|(r,)| r);
        sandbox.check("state-schemas", result.map(Ok::<_, crate::wit::OperatorError>))
    }

    /// Whether the plugin can migrate state.
    pub fn migrates(&self) -> bool {
        self.migration.is_some()
    }

    fn migrate_batch(&mut self, name: &str, from: u32, values: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        let Some(exports) = self.migration else { return Ok(values) };
        let count = values.len();
        let sandbox = &mut self.sandbox;
        sandbox.arm()?;
        let result = exports.migrate.call(&mut sandbox.store, (name.to_string(), from, values)).map(|(r,)| r);
        let migrated =
            sandbox.check("migrate", result.map(|r| r.map_err(|message| crate::wit::OperatorError { message })))?;
        if migrated.len() != count {
            return Err(PluginError::Contract(format!(
                "`migrate` returned {} values for {count} of state `{name}`",
                migrated.len()
            )));
        }
        Ok(migrated)
    }

    /// Rewrites every value of state `name` in `state` (written at schema
    /// `from`) through the plugin's `migrate`, in batches; returns how many
    /// values. A plugin without the export leaves the bytes as they are.
    pub fn migrate_state(&mut self, state: &mut KeyedState, name: &str, from: u32) -> Result<u64> {
        if self.migration.is_none() {
            return Ok(0);
        }
        let Some(descriptor) = state.descriptors().iter().find(|d| d.name == name).cloned() else { return Ok(0) };
        let (storage, kind) = descriptor.storage();
        let backend = state.backend();
        let id = backend.register(&storage, kind)?;
        let entries = backend.entries(id)?;
        // Every value, in order, with where it goes back.
        let mut taken: Vec<(usize, Slot, Vec<u8>)> = Vec::new();
        for (i, (_, _, content)) in entries.iter().enumerate() {
            match (descriptor.encoding, content) {
                (StateEncoding::PackedMap, StateContent::Value(bytes)) => {
                    let map = weir_state::packed::unpack(bytes)?;
                    taken.extend(map.into_iter().map(|(k, v)| (i, Slot::MapValue(k), v)));
                }
                (_, StateContent::Value(v)) => taken.push((i, Slot::Value, v.clone())),
                (_, StateContent::List(items)) => {
                    taken.extend(items.iter().map(|v| (i, Slot::ListItem, v.clone())));
                }
                (_, StateContent::Map(map)) => {
                    taken.extend(map.iter().map(|(k, v)| (i, Slot::MapValue(k.clone()), v.clone())));
                }
            }
        }
        let total = taken.len() as u64;
        let mut migrated = Vec::with_capacity(taken.len());
        for chunk in taken.chunks(MIGRATE_BATCH) {
            let values = chunk.iter().map(|(_, _, v)| v.clone()).collect();
            migrated.extend(self.migrate_batch(name, from, values)?);
        }
        // Written back only once every value migrated: a failure leaves the
        // state as it was.
        let backend = state.backend();
        let mut cleared = vec![false; entries.len()];
        let mut repacked: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![Vec::new(); entries.len()];
        for ((i, slot, _), value) in taken.into_iter().zip(migrated) {
            let (kg, key, _) = &entries[i];
            match (descriptor.encoding, slot) {
                (StateEncoding::PackedMap, Slot::MapValue(k)) => repacked[i].push((k, value)),
                (_, Slot::Value) => backend.set_value(id, *kg, key, &value)?,
                (_, Slot::ListItem) => {
                    if !std::mem::replace(&mut cleared[i], true) {
                        backend.clear(id, *kg, key)?;
                    }
                    backend.append(id, *kg, key, &value)?;
                }
                (_, Slot::MapValue(k)) => backend.map_put(id, *kg, key, &k, &value)?,
            }
        }
        if descriptor.encoding == StateEncoding::PackedMap {
            for (i, mut map) in repacked.into_iter().enumerate() {
                let (kg, key, _) = &entries[i];
                backend.set_value(id, *kg, key, &weir_state::packed::pack(&mut map))?;
            }
        }
        backend.flush()?;
        tracing::info!(state = %name, from, values = total, "state migrated by the plugin");
        Ok(total)
    }
}

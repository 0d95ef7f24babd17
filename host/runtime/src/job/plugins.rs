//! Loading a job's plugins.

use std::collections::HashMap;
use std::path::Path;

use weir_spec::JobSpec;
use weir_wasm::{Plugin, PluginEngine};

use crate::error::{Result, RuntimeError};

/// Loads every operator's plugin, naming the node on failure. Distinct
/// plugin files load in parallel (compiling, or from the compile cache).
pub fn load_plugins(spec: &JobSpec, engine: &PluginEngine) -> Result<HashMap<String, Plugin>> {
    for o in &spec.operators {
        if let Some(p) = o.plugin.as_deref().filter(|p| weir_spec::PluginRef::of_path(p).is_some()) {
            return Err(RuntimeError::Unresolved { node: o.id.clone(), plugin: p.display().to_string() });
        }
    }
    let mut paths: Vec<&Path> = spec.operators.iter().filter_map(|o| o.plugin.as_deref()).collect();
    paths.sort();
    paths.dedup();
    let mut loaded: HashMap<&Path, std::result::Result<Plugin, weir_wasm::PluginError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = paths.iter().map(|p| (*p, scope.spawn(move || engine.load_file(p)))).collect();
        handles.into_iter().map(|(p, h)| (p, h.join().expect("plugin loading does not panic"))).collect()
    });
    let mut plugins = HashMap::new();
    for o in &spec.operators {
        let Some(path) = o.plugin.as_deref() else { continue };
        if loaded[path].is_err() {
            let Some(Err(source)) = loaded.remove(path) else { unreachable!("checked above") };
            return Err(RuntimeError::Load { node: o.id.clone(), source });
        }
        let Some(Ok(plugin)) = loaded.get(path) else { unreachable!("checked above") };
        plugins.insert(o.id.clone(), plugin.clone());
    }
    Ok(plugins)
}

/// How a plugin loaded from a file is named in manifests and reports when
/// no registry names it: its file name without `.wasm`.
pub(crate) fn plugin_label(plugin: &Plugin) -> String {
    let name = Path::new(plugin.name());
    name.file_stem().map_or_else(|| plugin.name().to_string(), |s| s.to_string_lossy().into_owned())
}

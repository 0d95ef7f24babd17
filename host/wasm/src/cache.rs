//! Compiled components cached on disk, so a plugin is compiled once per
//! content and engine configuration, not at every start.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The hex SHA-256 of a component's bytes: its identity.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The default cache directory: `$WEIR_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/weir/compiled`, else `~/.cache/weir/compiled`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("weir").join("compiled"))
}

fn path(dir: &Path, engine: &Engine, digest: &str) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("{digest}-{:016x}.cwasm", h.finish()))
}

/// The cached compilation of `digest`, if there is a usable one.
pub(crate) fn load(dir: &Path, engine: &Engine, digest: &str) -> Option<Component> {
    let file = path(dir, engine, digest);
    if !file.exists() {
        return None;
    }
    // SAFETY: the file was written by `store` below from `Component::serialize`
    // of this engine configuration (the name carries the component's digest
    // and the engine's compatibility hash) into the user's own cache
    // directory, which is as trusted as the `weir` binary itself. wasmtime
    // still checks the header and refuses incompatible artifacts.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize_file(engine, &file) };
    match component {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(file = %file.display(), "ignoring unusable compiled plugin: {e}");
            None
        }
    }
}

/// Stores a compilation (atomically: a temporary file renamed into place).
/// Failures only cost the next start a compilation.
pub(crate) fn store(dir: &Path, engine: &Engine, digest: &str, component: &Component) {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let bytes = component.serialize().map_err(|e| std::io::Error::other(e.to_string()))?;
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::fs::write(tmp.path(), bytes)?;
        tmp.persist(path(dir, engine, digest)).map_err(|e| e.error)?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::warn!(dir = %dir.display(), "cannot cache a compiled plugin: {e}");
    }
}

//! Plugins named in a registry: `plugin: celsius@1.0.0` (an exact version)
//! or `plugin: celsius@^1.2` (a semver requirement, resolved when the job is
//! submitted to a server). Anything else is a path to a `.wasm` file.

use std::path::Path;

/// A plugin named by registry name and version requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    /// The registry name (`[a-z0-9][a-z0-9_-]*`, at most 64 bytes).
    pub name: String,
    /// The version or requirement after `@`.
    pub version: semver::VersionReq,
    /// Whether it named one exact version (`name@1.2.3`).
    pub exact: bool,
}

/// Whether `name` may name a plugin in a registry.
pub fn valid_plugin_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl PluginRef {
    /// Reads `name@version` or `name@requirement`; `None` for what is not of
    /// that shape (a path). `Err` for a registry name with a bad version.
    pub fn parse(text: &str) -> Option<Result<PluginRef, String>> {
        let (name, version) = text.split_once('@')?;
        if !valid_plugin_name(name) || version.contains('/') {
            return None;
        }
        // A bare version (`1.2.3`) is exact, as `=1.2.3`; semver would read
        // it as `^1.2.3`.
        if let Ok(v) = semver::Version::parse(version) {
            let exact = semver::VersionReq::parse(&format!("={v}")).expect("an exact requirement parses");
            return Some(Ok(PluginRef { name: name.to_string(), version: exact, exact: true }));
        }
        Some(
            semver::VersionReq::parse(version)
                .map(|version| PluginRef { name: name.to_string(), version, exact: false })
                .map_err(|e| format!("`{text}`: `{version}` is neither a version nor a version requirement: {e}")),
        )
    }

    /// The reference a spec's `plugin` path holds, if it is one.
    pub fn of_path(path: &Path) -> Option<Result<PluginRef, String>> {
        path.to_str().and_then(PluginRef::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_versions_are_references_and_paths_are_not() {
        let exact = PluginRef::parse("celsius@1.0.0").unwrap().unwrap();
        assert!(exact.exact);
        assert!(exact.version.matches(&semver::Version::new(1, 0, 0)));
        assert!(!exact.version.matches(&semver::Version::new(1, 0, 1)));
        let caret = PluginRef::parse("sensor-average@^1.2").unwrap().unwrap();
        assert!(!caret.exact);
        assert!(caret.version.matches(&semver::Version::new(1, 9, 0)));
        assert!(PluginRef::parse("plugins/celsius.wasm").is_none());
        assert!(PluginRef::parse("./x@1.0.0").is_none());
        assert!(PluginRef::parse("Celsius@1.0.0").is_none());
        assert_eq!(
            PluginRef::parse("celsius@one").unwrap().unwrap_err(),
            "`celsius@one`: `one` is neither a version nor a version requirement: unexpected character 'o' while \
             parsing major version number"
        );
    }
}

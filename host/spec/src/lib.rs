//! Weir job specifications: the YAML or JSON document that describes a job.
//!
//! Parsing and validation report errors that name the field and the line,
//! so a user can fix a spec without guessing. The schema is documented
//! field by field in `docs/job-spec.md`.
//!
//! ```
//! let spec = weir_spec::JobSpec::parse(r#"
//! name: demo
//! sources:
//!   - id: readings
//!     type: generator
//!     generator: sensor-bench
//!     events: 1000
//! sinks:
//!   - id: out
//!     type: blackhole
//!     input: readings
//! "#, weir_spec::Format::Yaml).unwrap();
//! let weir_spec::SourceConnector::Generator(generator) = &spec.sources[0].connector else { panic!() };
//! assert_eq!(generator.events, Some(1000));
//!
//! let err = weir_spec::JobSpec::parse("name: demo\nsources: []\nsinks: []\nparalelism: 2\n", weir_spec::Format::Yaml)
//!     .unwrap_err();
//! assert!(err.to_string().contains("unknown field `paralelism`"));
//! assert!(err.to_string().contains("line 4"));
//! ```

pub mod bytes;
mod connectors;
mod duration;
mod model;
mod plugin_ref;
mod validate;

use std::path::{Path, PathBuf};

pub use connectors::{
    Delivery, FileSink, FileSource, GeneratorKind, GeneratorSource, KafkaFormat, KafkaSink, KafkaSource, Paths,
    SinkConnector, SinkSpec, SourceConnector, SourceSpec, StartFrom, StartName, StopAt, Topics,
};
pub use model::*;
pub use plugin_ref::{PluginRef, valid_plugin_name};

/// A spec that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read job spec {path}: {source}")]
    Read {
        /// The spec's path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid YAML/JSON, or not of the schema (the message names the
    /// field and the line).
    #[error("invalid job spec: {0}")]
    Parse(String),
    /// Well-formed but inconsistent.
    #[error("invalid job spec{}: {field}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Invalid {
        /// The field, e.g. `operators[1] (averages).input`.
        field: String,
        /// What is wrong.
        message: String,
        /// The line in the spec, where it could be found.
        line: Option<usize>,
    },
}

/// `Result` with [`SpecError`].
pub type Result<T, E = SpecError> = std::result::Result<T, E>;

/// The syntax of a spec document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (the default).
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// JSON for `.json` files, YAML otherwise.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

impl JobSpec {
    /// Parses and validates a spec document. Relative paths stay relative.
    pub fn parse(text: &str, format: Format) -> Result<JobSpec> {
        JobSpec::parse_with_defaults(text, format, |_| {})
    }

    /// Parses a spec, fills in what `defaults` sets (a server's
    /// checkpoints, say), then validates it.
    pub fn parse_with_defaults(text: &str, format: Format, defaults: impl FnOnce(&mut JobSpec)) -> Result<JobSpec> {
        let mut spec: JobSpec = match format {
            Format::Json => serde_json::from_str(text).map_err(|e| SpecError::Parse(e.to_string()))?,
            Format::Yaml => serde_yaml_ng::from_str(text).map_err(|e| SpecError::Parse(e.to_string()))?,
        };
        defaults(&mut spec);
        validate::validate(&spec, text)?;
        spec.text = text.to_string();
        Ok(spec)
    }

    /// Reads, parses and validates a spec file, and resolves its relative
    /// paths (plugins, files, state dir) against the file's directory.
    pub fn load(path: &Path) -> Result<JobSpec> {
        let text =
            std::fs::read_to_string(path).map_err(|source| SpecError::Read { path: path.to_path_buf(), source })?;
        let mut spec = JobSpec::parse(&text, Format::from_path(path))?;
        spec.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(spec)
    }

    /// Makes every relative path in the spec relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for source in &mut self.sources {
            if let SourceConnector::File(f) = &mut source.connector {
                f.paths.iter_mut().for_each(fix);
            }
        }
        for op in &mut self.operators {
            if let Some(p) = &mut op.plugin
                && PluginRef::of_path(p).is_none()
            {
                fix(p);
            }
            op.grants.dirs.iter_mut().for_each(|d| fix(&mut d.host));
        }
        if let Some(c) = &mut self.checkpoint {
            fix(&mut c.dir);
        }
        for sink in &mut self.sinks {
            if let SinkConnector::File(f) = &mut sink.connector {
                fix(&mut f.path);
            }
        }
        if let Some(dir) = &mut self.state.dir {
            fix(dir);
        }
        if let Some(s) = &mut self.savepoint {
            fix(&mut s.path);
        }
    }

    /// The parallelism of a node given its override.
    pub fn parallelism_of(&self, node_override: Option<u32>) -> u32 {
        node_override.unwrap_or(self.parallelism)
    }
}

/// How an operator partitions its input by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBy {
    /// By the record's key (set by the source or the upstream operator).
    RecordKey,
    /// By the value at this JSON pointer (the host parses the value; the
    /// result becomes the record key).
    Pointer(String),
}

impl OperatorSpec {
    /// The parsed `key_by`.
    pub fn key_by(&self) -> Option<KeyBy> {
        self.key_by.as_deref().map(|k| if k == "key" { KeyBy::RecordKey } else { KeyBy::Pointer(k.to_string()) })
    }
}

/// Splits an input reference into node id and optional side output name.
pub fn split_input(input: &str) -> (&str, Option<&str>) {
    match input.split_once('.') {
        Some((node, side)) => (node, Some(side)),
        None => (input, None),
    }
}

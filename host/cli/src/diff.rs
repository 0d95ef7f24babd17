//! `weir diff A B --key /id --time /window_end`: two jobs' JSON-lines
//! outputs (files, or sink directories of committed part files) matched
//! record by record on a key and a time, as an A/B fork compares two
//! versions of an operator: records only in A, only in B, and those that
//! differ. Exits 1 when the outputs differ, as `diff` does.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use serde_json::Value;

/// `weir diff`'s arguments.
#[derive(Args, Debug)]
pub struct Diff {
    /// The first output: a JSON-lines file, or a file sink's directory.
    a: PathBuf,
    /// The second output.
    b: PathBuf,
    /// JSON pointer to the field records are matched on (with `--time`).
    #[arg(long, default_value = "/id")]
    key: String,
    /// JSON pointer to their time (e.g. `/window_end`).
    #[arg(long)]
    time: Option<String>,
    /// JSON pointers to fields left out of the comparison (repeatable).
    #[arg(long)]
    ignore: Vec<String>,
    /// Records of each kind printed (the counts are always whole).
    #[arg(long, default_value_t = 10)]
    show: usize,
}

/// The lines of an output: a file's, or a sink directory's committed part
/// files' in name order.
fn lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let files = match path.is_dir() {
        true => {
            let mut parts: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.')))
                .filter(|p| p.is_file())
                .collect();
            parts.sort();
            parts
        }
        false => vec![path.to_path_buf()],
    };
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        out.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
    }
    Ok(out)
}

type Match = (String, String);

/// The records of one output by key and time; refuses a line that is not
/// JSON or lacks the key, and two records with one key and time.
fn index(path: &Path, d: &Diff) -> anyhow::Result<BTreeMap<Match, Value>> {
    let mut by = BTreeMap::new();
    for (n, line) in lines(path)?.iter().enumerate() {
        let mut v: Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not JSON: {line}", path.display(), n + 1))?;
        let field = |pointer: &str| -> anyhow::Result<String> {
            match v.pointer(pointer) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Ok(other.to_string()),
                None => anyhow::bail!("{} line {}: no `{pointer}` in {line}", path.display(), n + 1),
            }
        };
        let key = (field(&d.key)?, d.time.as_deref().map(field).transpose()?.unwrap_or_default());
        for pointer in &d.ignore {
            if let Some((parent, last)) = pointer.rsplit_once('/')
                && let Some(Value::Object(map)) = v.pointer_mut(parent)
            {
                map.remove(last);
            }
        }
        if by.insert(key.clone(), v).is_some() {
            anyhow::bail!(
                "{} has two records for key {} and time {}: match on more (--key, --time)",
                path.display(),
                key.0,
                key.1
            );
        }
    }
    Ok(by)
}

/// Runs `weir diff`; whether the outputs are the same.
pub fn diff(d: &Diff) -> anyhow::Result<bool> {
    let (a, b) = (index(&d.a, d)?, index(&d.b, d)?);
    let only_a: Vec<&Match> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let only_b: Vec<&Match> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    let differ: Vec<&Match> = a.iter().filter(|(k, v)| b.get(*k).is_some_and(|w| w != *v)).map(|(k, _)| k).collect();
    let same = a.len() - only_a.len() - differ.len();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "a: {} records, b: {} records; {} only in a, {} only in b, {} differ, {same} the same",
        a.len(),
        b.len(),
        only_a.len(),
        only_b.len(),
        differ.len()
    )?;
    let name = |k: &Match| if d.time.is_some() { format!("{} {}", k.0, k.1) } else { k.0.clone() };
    for k in only_a.iter().take(d.show) {
        writeln!(out, "only in a  {}: {}", name(k), a[*k])?;
    }
    for k in only_b.iter().take(d.show) {
        writeln!(out, "only in b  {}: {}", name(k), b[*k])?;
    }
    for k in differ.iter().take(d.show) {
        writeln!(out, "differ     {}:\n  a: {}\n  b: {}", name(k), a[*k], b[*k])?;
    }
    Ok(only_a.is_empty() && only_b.is_empty() && differ.is_empty())
}

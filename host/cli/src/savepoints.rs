//! `weir savepoint …`: take a savepoint of a server's job, list savepoints
//! (of a directory, or a server's) as their lineage tree, and check whether
//! a job can start from one without starting anything.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use weir_server::view::SavepointView;

use crate::remote::Remote;

/// `weir savepoint JOB [--stop]`, or one of its subcommands.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Savepoint {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: Option<SavepointCommand>,
    /// A server's job: takes a savepoint of it now.
    job: Option<String>,
    /// Stops the job at the savepoint (its sinks commit, nothing is left in
    /// flight).
    #[arg(long, requires = "job")]
    stop: bool,
}

#[derive(Subcommand, Debug)]
enum SavepointCommand {
    /// Lists savepoints as their lineage tree: those in DIR, or the server's.
    List {
        /// A directory of savepoints (e.g. `weir run --savepoint-dir`'s).
        dir: Option<PathBuf>,
    },
    /// Starts one job per version from a server's savepoint, each running
    /// another version of NODE and writing to sinks of its own (paths get
    /// `-<label>`), to compare their outputs with `weir diff`.
    Fork {
        /// The savepoint's name.
        name: String,
        /// The operator node whose version differs.
        #[arg(long)]
        node: String,
        /// `label=name@version`, at least two (e.g. `a=sensor-average@1.0.0 b=sensor-average@2.0.0`).
        #[arg(required = true, num_args = 2..)]
        versions: Vec<String>,
    },
    /// Deletes one of a server's savepoints (refused while a job that has
    /// not ended starts from it).
    Rm {
        /// The savepoint's name.
        name: String,
    },
    /// Reports, without starting anything, whether SPEC can start from
    /// SAVEPOINT and what happens to each node's state; exits non-zero when
    /// the restore would be refused.
    Check {
        /// The savepoint's directory.
        savepoint: PathBuf,
        /// The job spec to start (its plugins as files).
        spec: PathBuf,
        /// Lets state of nodes the job no longer has be dropped.
        #[arg(long)]
        allow_non_restored_state: bool,
    },
}

/// Runs `weir savepoint …`.
pub fn run(command: Savepoint) -> anyhow::Result<()> {
    match command.command {
        Some(SavepointCommand::List { dir: Some(dir) }) => {
            let mut views = Vec::new();
            for (path, manifest) in weir_checkpoint::list_savepoints(&dir)? {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                views.push(SavepointView::of(&name, &manifest));
            }
            print_tree(&views)
        }
        Some(SavepointCommand::List { dir: None }) => {
            let views = command.remote.savepoints()?;
            if let Some(views) = views {
                print_tree(&views)?;
            }
            Ok(())
        }
        Some(SavepointCommand::Check { savepoint, spec, allow_non_restored_state }) => {
            check(&savepoint, &spec, allow_non_restored_state)
        }
        Some(SavepointCommand::Fork { name, node, versions }) => {
            let mut by_label = std::collections::BTreeMap::new();
            for v in versions {
                let Some((label, plugin)) = v.split_once('=') else {
                    anyhow::bail!("`{v}` is not `label=name@version`");
                };
                by_label.insert(label.to_string(), plugin.to_string());
            }
            command.remote.fork(&name, &node, &by_label)
        }
        Some(SavepointCommand::Rm { name }) => command.remote.delete_savepoint(&name),
        None => match command.job {
            Some(job) => command.remote.savepoint(&job, command.stop),
            None => anyhow::bail!("name a job (weir savepoint JOB), or a subcommand: list, check"),
        },
    }
}

fn check(savepoint: &std::path::Path, spec: &std::path::Path, allow: bool) -> anyhow::Result<()> {
    let mut spec = weir_spec::JobSpec::load(spec)?;
    let allow = allow || spec.savepoint.as_ref().is_some_and(|s| s.allow_non_restored_state);
    spec.savepoint = Some(weir_spec::SavepointSpec { path: savepoint.to_path_buf(), allow_non_restored_state: allow });
    let restore = weir_runtime::Restore::load(savepoint)?;
    let engine = weir_wasm::PluginEngine::new()?;
    let plugins = weir_runtime::load_plugins(&spec, &engine)?;
    let check = weir_runtime::check_restore(&restore, &spec, &plugins, &Default::default())?;
    write!(std::io::stdout(), "{}", check.to_text())?;
    if !check.accepted() {
        anyhow::bail!("the job cannot start from {}", savepoint.display());
    }
    Ok(())
}

/// Prints savepoints as a tree: each under the savepoint its job started
/// from, oldest first.
fn print_tree(views: &[SavepointView]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if views.is_empty() {
        writeln!(out, "no savepoints")?;
        return Ok(());
    }
    let known = |name: &str| views.iter().any(|v| v.name == name);
    fn walk(
        out: &mut impl std::io::Write,
        views: &[SavepointView],
        parent: Option<&str>,
        depth: usize,
        known: &dyn Fn(&str) -> bool,
    ) -> std::io::Result<()> {
        for v in views {
            let under = v.parent.as_deref().filter(|p| known(p));
            if under != parent {
                continue;
            }
            let plugins: Vec<String> = v.plugins.iter().map(|(node, p)| format!("{node}={p}")).collect();
            writeln!(
                out,
                "{}{}  job {} ({}), checkpoint {}, {}, {} bytes  {}",
                "  ".repeat(depth),
                v.name,
                v.job,
                &v.job_id[..v.job_id.len().min(8)],
                v.checkpoint_id,
                v.taken_at,
                v.bytes,
                plugins.join(" ")
            )?;
            walk(out, views, Some(&v.name), depth + 1, known)?;
        }
        Ok(())
    }
    walk(&mut out, views, None, 0, &known)?;
    Ok(())
}

//! `weir plugin …` and `weir job …`: the CLI of a server's HTTP API.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use weir_server::api::PluginSummary;
use weir_server::error::ErrorBody;
use weir_server::meta::PluginVersion;
use weir_server::view::{JobSummary, JobView};

/// Where the server is and how to talk to it.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// The server's URL.
    #[arg(long, env = "WEIR_SERVER", default_value = "http://127.0.0.1:8081", global = true)]
    server: String,
    /// The server's token (calls that change something need it).
    #[arg(long, env = "WEIR_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Prints the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Uploads a component as a version of a plugin.
    Upload {
        /// The component (`.wasm`).
        file: PathBuf,
        /// The plugin's name.
        #[arg(long)]
        name: String,
        /// The version (semver, e.g. 1.0.0).
        #[arg(long)]
        version: String,
    },
    /// Lists the plugins.
    List,
    /// Lists the versions of a plugin.
    Versions {
        /// The plugin's name.
        name: String,
    },
    /// Writes a new operator project (a keyed counter) with its build
    /// command, in DIR/NAME.
    New {
        /// The plugin's name (its folder's).
        name: String,
        /// Its language.
        #[arg(long, value_enum)]
        lang: crate::scaffold::Lang,
        /// Where to write it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The Rust SDK's folder (else this build's `sdk/rust`).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Deletes a version of a plugin (refused while a running job uses it).
    Rm {
        /// The plugin's name.
        name: String,
        /// The version.
        version: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Submits a job spec (YAML or JSON) naming plugins as `name@version`.
    Submit {
        /// The spec.
        spec: PathBuf,
    },
    /// Lists the jobs.
    List,
    /// Shows a job: its nodes, figures, checkpoints and failures.
    Status {
        /// The job's id.
        id: String,
    },
    /// Cancels a job.
    Cancel {
        /// The job's id.
        id: String,
    },
    /// Upgrades an operator of a running job to another plugin version in
    /// place, at a checkpoint barrier (the old version runs on when the new
    /// one would fail); naming the old version again rolls it back.
    Upgrade {
        /// The job's id.
        id: String,
        /// The operator node.
        node: String,
        /// The version to run: `name@version`.
        plugin: String,
        /// The node's new config (JSON); its old one when absent.
        #[arg(long)]
        config: Option<String>,
    },
}

impl Remote {
    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// The body of a response as `T`, or the server's error.
    fn read<T: DeserializeOwned>(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<(u16, String, T)> {
        let mut response = response.with_context(|| format!("cannot reach the server at {}", self.server))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().context("cannot read the server's answer")?;
        if status >= 400 {
            return Err(refusal(status, &text));
        }
        let value = serde_json::from_str(&text)
            .with_context(|| format!("the server's answer is not what this weir reads: {text}"))?;
        Ok((status, text, value))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<(String, T)> {
        let response = self.authorize(self.agent().get(self.url(path))).call();
        self.read(response).map(|(_, text, v)| (text, v))
    }

    fn print_json(&self, text: &str) -> anyhow::Result<()> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&value)?)?;
        Ok(())
    }
}

/// The server's error: its message, status and code.
fn refusal(status: u16, text: &str) -> anyhow::Error {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(e) => anyhow::anyhow!("{} ({status} {})", e.message, e.code),
        Err(_) => anyhow::anyhow!("the server answered {status}: {text}"),
    }
}

fn upload(remote: &Remote, file: &Path, name: &str, version: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let path = format!("/api/v1/plugins/{name}/versions/{version}");
    let request = remote.authorize(remote.agent().put(remote.url(&path))).header("Content-Type", "application/wasm");
    let (status, text, v): (u16, String, PluginVersion) = remote.read(request.send(&bytes[..]))?;
    if remote.json {
        return remote.print_json(&text);
    }
    let what = if status == 201 { "uploaded" } else { "already there (same bytes)" };
    writeln!(
        std::io::stdout(),
        "{}@{} {what}: {} world, {} bytes, sha256 {}",
        v.name,
        v.version,
        v.world,
        v.size,
        v.sha256
    )?;
    Ok(())
}

/// Rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(header.iter().map(|h| h.to_string()).collect()))?;
    for row in rows {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}

pub fn plugin(remote: &Remote, command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Upload { file, name, version } => upload(remote, &file, &name, &version),
        PluginCommand::New { name, lang, dir, sdk } => {
            let (root, build) = crate::scaffold::new(&name, lang, &dir, sdk.as_deref())?;
            writeln!(std::io::stdout(), "wrote {}: build it with `cd {} && {build}`", root.display(), root.display())?;
            Ok(())
        }
        PluginCommand::List => {
            let (text, list): (String, Vec<PluginSummary>) = remote.get("/api/v1/plugins")?;
            if remote.json {
                return remote.print_json(&text);
            }
            let rows = list.into_iter().map(|p| vec![p.name, p.versions.join(", "), p.world]).collect();
            table(&["NAME", "VERSIONS", "WORLD"], rows)
        }
        PluginCommand::Versions { name } => {
            let (text, list): (String, Vec<PluginVersion>) = remote.get(&format!("/api/v1/plugins/{name}/versions"))?;
            if remote.json {
                return remote.print_json(&text);
            }
            let rows = list
                .into_iter()
                .map(|v| vec![v.version, v.world, v.size.to_string(), v.sha256[..12].to_string(), v.uploaded_at])
                .collect();
            table(&["VERSION", "WORLD", "BYTES", "SHA256", "UPLOADED"], rows)
        }
        PluginCommand::Rm { name, version } => {
            let path = format!("/api/v1/plugins/{name}/versions/{version}");
            let mut response = remote
                .authorize(remote.agent().delete(remote.url(&path)))
                .call()
                .with_context(|| format!("cannot reach the server at {}", remote.server))?;
            if response.status().as_u16() != 204 {
                let text = response.body_mut().read_to_string().unwrap_or_default();
                return Err(refusal(response.status().as_u16(), &text));
            }
            writeln!(std::io::stdout(), "{name}@{version} deleted")?;
            Ok(())
        }
    }
}

fn watermark(w: Option<i64>) -> String {
    w.map_or_else(|| "-".into(), |w| w.to_string())
}

fn show_job(job: &JobView) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "job {} ({}): {} / {}", job.name, job.id, job.state, job.phase)?;
    writeln!(
        out,
        "submitted {}{}",
        job.submitted_at,
        job.ended_at.as_ref().map(|e| format!(", ended {e}")).unwrap_or_default()
    )?;
    for (node, p) in &job.plugins {
        writeln!(
            out,
            "plugin of {node}: {}@{} (asked {}, sha256 {})",
            p.name,
            p.version,
            p.requested,
            &p.sha256[..12]
        )?;
    }
    if let Some(c) = &job.checkpoints {
        let last = c.last_id.map_or_else(
            || "none yet".to_string(),
            |id| format!("#{id}, {} ms, {} bytes", c.last_duration_ms, c.last_bytes),
        );
        writeln!(out, "checkpoints: {} completed, {} aborted; last {last}", c.completed, c.aborted)?;
    }
    writeln!(out, "restarts: {}, resumed by the server: {}", job.restarts, job.resumed)?;
    drop(out);
    let rows = job
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.id.clone(),
                n.role.clone(),
                n.parallelism.to_string(),
                n.records_in.to_string(),
                n.records_out.to_string(),
                format!("{:.0}", n.records_in_per_s),
                watermark(n.watermark),
                n.task.clone(),
            ]
        })
        .collect();
    table(&["NODE", "ROLE", "PAR", "IN", "OUT", "IN/S", "WATERMARK", "TASK"], rows)?;
    let mut out = std::io::stdout().lock();
    for f in &job.failures {
        writeln!(out, "failure at {}: {} ({})", weir_server::view::rfc3339(f.at_ms), f.message, f.code)?;
    }
    Ok(())
}

pub fn job(remote: &Remote, command: JobCommand) -> anyhow::Result<()> {
    match command {
        JobCommand::Submit { spec } => {
            let text = std::fs::read_to_string(&spec).with_context(|| format!("cannot read {}", spec.display()))?;
            let kind = match spec.extension().and_then(|e| e.to_str()) {
                Some("json") => "application/json",
                _ => "application/yaml",
            };
            let request =
                remote.authorize(remote.agent().post(remote.url("/api/v1/jobs"))).header("Content-Type", kind);
            let (_, body, job): (u16, String, JobView) = remote.read(request.send(text.as_str()))?;
            if remote.json {
                return remote.print_json(&body);
            }
            writeln!(std::io::stdout(), "{}", job.id)?;
            Ok(())
        }
        JobCommand::List => {
            let (text, jobs): (String, Vec<JobSummary>) = remote.get("/api/v1/jobs")?;
            if remote.json {
                return remote.print_json(&text);
            }
            let rows = jobs
                .into_iter()
                .map(|j| vec![j.id, j.name, j.state, j.phase, j.submitted_at, j.failures.to_string()])
                .collect();
            table(&["ID", "NAME", "STATE", "PHASE", "SUBMITTED", "FAILURES"], rows)
        }
        JobCommand::Status { id } => {
            let (text, job): (String, JobView) = remote.get(&format!("/api/v1/jobs/{id}"))?;
            if remote.json {
                return remote.print_json(&text);
            }
            show_job(&job)
        }
        JobCommand::Cancel { id } => {
            let request = remote.authorize(remote.agent().post(remote.url(&format!("/api/v1/jobs/{id}/cancel"))));
            let (_, text, job): (u16, String, JobView) = remote.read(request.send_empty())?;
            if remote.json {
                return remote.print_json(&text);
            }
            writeln!(std::io::stdout(), "job {} cancelled", job.id)?;
            Ok(())
        }
        JobCommand::Upgrade { id, node, plugin, config } => {
            let config = config
                .map(|c| serde_json::from_str::<serde_json::Value>(&c))
                .transpose()
                .context("--config is not JSON")?;
            let body = serde_json::json!({ "plugin": plugin, "config": config }).to_string();
            let url = remote.url(&format!("/api/v1/jobs/{id}/nodes/{node}/upgrade"));
            let request = remote.authorize(remote.agent().post(url)).header("Content-Type", "application/json");
            let (_, text, done): (u16, String, weir_server::upgrades::UpgradeView) = remote.read(request.send(body))?;
            if remote.json {
                return remote.print_json(&text);
            }
            writeln!(
                std::io::stdout(),
                "operator {} of job {id}: {} → {} at checkpoint {}",
                done.node,
                done.from,
                done.to,
                done.checkpoint
            )?;
            Ok(())
        }
    }
}

impl Remote {
    /// `weir savepoint JOB [--stop]`.
    pub fn savepoint(&self, job: &str, stop: bool) -> anyhow::Result<()> {
        let request = self.authorize(self.agent().post(self.url(&format!("/api/v1/jobs/{job}/savepoints"))));
        let body = serde_json::json!({ "stop": stop }).to_string();
        let response = request.header("Content-Type", "application/json").send(body);
        let (_, text, view): (_, _, weir_server::view::SavepointView) = self.read(response)?;
        if self.json {
            return self.print_json(&text);
        }
        let stopped = if stop { "; the job stopped there" } else { "" };
        writeln!(
            std::io::stdout(),
            "savepoint {} of job {} at checkpoint {}{stopped}",
            view.name,
            view.job,
            view.checkpoint_id
        )?;
        Ok(())
    }

    /// `weir savepoint fork NAME --node N label=version…`.
    pub fn fork(
        &self,
        name: &str,
        node: &str,
        versions: &std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        let url = self.url(&format!("/api/v1/savepoints/{name}/fork"));
        let request = self.authorize(self.agent().post(url)).header("Content-Type", "application/json");
        let body = serde_json::json!({ "node": node, "versions": versions }).to_string();
        let (_, text, view): (_, _, weir_server::forks::ForkView) = self.read(request.send(body))?;
        if self.json {
            return self.print_json(&text);
        }
        let mut out = std::io::stdout().lock();
        for (label, job) in &view.jobs {
            let plugin = job.plugins.get(node).map(|p| format!("{}@{}", p.name, p.version)).unwrap_or_default();
            writeln!(out, "{label}  {}  {}  {node}={plugin}", job.id, job.name)?;
        }
        Ok(())
    }

    /// `weir savepoint rm NAME`.
    pub fn delete_savepoint(&self, name: &str) -> anyhow::Result<()> {
        let request = self.authorize(self.agent().delete(self.url(&format!("/api/v1/savepoints/{name}"))));
        let mut response = request.call().with_context(|| format!("cannot reach the server at {}", self.server))?;
        let status = response.status().as_u16();
        if status >= 400 {
            let text = response.body_mut().read_to_string().context("cannot read the server's answer")?;
            return Err(refusal(status, &text));
        }
        writeln!(std::io::stdout(), "savepoint {name} deleted")?;
        Ok(())
    }

    /// The server's savepoints (`None` when printed as JSON).
    pub fn savepoints(&self) -> anyhow::Result<Option<Vec<weir_server::view::SavepointView>>> {
        let (text, views) = self.get("/api/v1/savepoints")?;
        if self.json {
            self.print_json(&text)?;
            return Ok(None);
        }
        Ok(Some(views))
    }
}

//! The plugin registry: uploaded components, checked and compiled before
//! they become visible, stored once per content (`plugins/<sha256>.wasm`)
//! with their versions in the metadata database.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use http_body_util::BodyExt as _;
use sha2::{Digest as _, Sha256};
use weir_spec::PluginRef;
use weir_wasm::{PLUGIN_API_VERSION, PluginEngine};

use crate::error::{ApiError, ApiResult};
use crate::meta::{Metadata, PluginVersion, Stored};
use crate::now_ms;

/// The registry of one server.
pub struct Registry {
    meta: Arc<Metadata>,
    engine: PluginEngine,
    /// Component blobs by sha256.
    blobs: PathBuf,
    /// Uploads in progress.
    tmp: PathBuf,
    /// Most bytes one upload may have.
    max_upload: u64,
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The version, as stored.
    pub version: PluginVersion,
    /// Whether it was new (else the same bytes were there already).
    pub created: bool,
}

/// A name that may name a plugin, or a 400.
pub fn check_name(name: &str) -> ApiResult<()> {
    match weir_spec::valid_plugin_name(name) {
        true => Ok(()),
        false => Err(ApiError::bad_request(
            "plugin_name_invalid",
            format!(
                "`{name}` is not a plugin name: use 1 to 64 lowercase letters, digits, `-` and `_`, starting with a \
                 letter or digit"
            ),
        )),
    }
}

/// A version that parses as semver, or a 400.
pub fn check_version(version: &str) -> ApiResult<semver::Version> {
    semver::Version::parse(version).map_err(|e| {
        ApiError::bad_request("version_invalid", format!("`{version}` is not a semantic version (e.g. 1.0.0): {e}"))
    })
}

impl Registry {
    /// The registry under `data_dir` (`plugins/`, `tmp/`).
    pub fn open(meta: Arc<Metadata>, engine: PluginEngine, data_dir: &Path, max_upload: u64) -> std::io::Result<Self> {
        let blobs = data_dir.join("plugins");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&blobs)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(Registry { meta, engine, blobs, tmp, max_upload })
    }

    /// The engine plugins are compiled with.
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// Where the blob of `sha256` is.
    pub fn blob(&self, sha256: &str) -> PathBuf {
        self.blobs.join(format!("{sha256}.wasm"))
    }

    /// Removes what a crash may have left: uploads in progress, and blobs no
    /// version refers to (written just before a crash, or whose last version
    /// was deleted just before one).
    pub fn clean(&self) -> Result<usize, crate::ServerError> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.tmp).map_err(crate::ServerError::io(&self.tmp))? {
            let path = entry.map_err(crate::ServerError::io(&self.tmp))?.path();
            removed += usize::from(std::fs::remove_file(&path).is_ok());
        }
        let used: std::collections::HashSet<String> =
            self.meta.plugins()?.into_iter().map(|v| format!("{}.wasm", v.sha256)).collect();
        for entry in std::fs::read_dir(&self.blobs).map_err(crate::ServerError::io(&self.blobs))? {
            let entry = entry.map_err(crate::ServerError::io(&self.blobs))?;
            if !used.contains(&*entry.file_name().to_string_lossy()) {
                removed += usize::from(std::fs::remove_file(entry.path()).is_ok());
            }
        }
        Ok(removed)
    }

    /// Takes an upload: streams the body to a temporary file (refusing past
    /// the size limit), checks and compiles the component, stores its blob
    /// and only then its version, in one transaction. Nothing stays of an
    /// upload that fails anywhere.
    pub async fn upload(&self, name: &str, version: &str, length: Option<u64>, body: Body) -> ApiResult<Uploaded> {
        check_name(name)?;
        check_version(version)?;
        let too_large = |size: String| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload_too_large",
                format!(
                    "the upload is {size}, and this server takes at most {} (weir serve --max-upload)",
                    weir_wasm::human_bytes(self.max_upload)
                ),
            )
        };
        if let Some(length) = length.filter(|&l| l > self.max_upload) {
            return Err(too_large(weir_wasm::human_bytes(length)));
        }
        let (file, sha256, size) = self.receive(body, too_large).await?;
        let what = format!("plugin {name}@{version}");
        // Same version, same bytes: nothing to check again.
        match self.meta.plugin(name, version)? {
            Some(old) if old.sha256 == sha256 => return Ok(Uploaded { version: old, created: false }),
            Some(old) => return Err(conflict(&old)),
            None => {}
        }
        let engine = self.engine.clone();
        let blob = self.blob(&sha256);
        let checked = tokio::task::spawn_blocking(move || -> ApiResult<weir_wasm::World> {
            let bytes =
                std::fs::read(file.path()).map_err(|e| ApiError::internal(format!("cannot read the upload: {e}")))?;
            let plugin = engine.load(&bytes, &what).map_err(invalid_plugin)?;
            if !blob.exists() {
                file.as_file().sync_all().map_err(|e| ApiError::internal(format!("cannot sync the upload: {e}")))?;
                file.persist(&blob).map_err(|e| ApiError::internal(format!("cannot store the plugin: {e}")))?;
                if let Some(dir) = blob.parent() {
                    std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
                }
            }
            Ok(plugin.world())
        })
        .await
        .map_err(|e| ApiError::internal(format!("checking the upload failed: {e}")))??;
        let stored = PluginVersion {
            name: name.to_string(),
            version: version.to_string(),
            world: checked.name().to_string(),
            wit_version: PLUGIN_API_VERSION.to_string(),
            size,
            sha256,
            uploaded_at: crate::view::rfc3339(now_ms()),
        };
        match self.meta.put_plugin(&stored)? {
            Stored::Created => {
                tracing::info!(plugin = %name, %version, world = %stored.world, size, "plugin uploaded");
                Ok(Uploaded { version: stored, created: true })
            }
            Stored::Unchanged(old) => Ok(Uploaded { version: old, created: false }),
            // Another upload of this version won the race; its blob stays.
            Stored::Conflict(old) => {
                self.remove_unused_blob(&stored.sha256)?;
                Err(conflict(&old))
            }
        }
    }

    /// Streams `body` into a temporary file, hashing it.
    async fn receive(
        &self,
        mut body: Body,
        too_large: impl Fn(String) -> ApiError,
    ) -> ApiResult<(tempfile::NamedTempFile, String, u64)> {
        let mut file = tempfile::NamedTempFile::new_in(&self.tmp)
            .map_err(|e| ApiError::internal(format!("cannot create an upload file in {}: {e}", self.tmp.display())))?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::bad_request("upload_incomplete", format!("the upload was cut off after {size} bytes: {e}"))
            })?;
            let Ok(chunk) = frame.into_data() else { continue };
            size += chunk.len() as u64;
            if size > self.max_upload {
                return Err(too_large(format!("more than {}", weir_wasm::human_bytes(self.max_upload))));
            }
            hash.update(&chunk);
            file.write_all(&chunk).map_err(|e| ApiError::internal(format!("cannot write the upload: {e}")))?;
        }
        if size == 0 {
            return Err(ApiError::bad_request("upload_empty", "the upload is empty: send the component's bytes"));
        }
        let sha256: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok((file, sha256, size))
    }

    /// Removes the blob of `sha256` unless a version refers to it.
    fn remove_unused_blob(&self, sha256: &str) -> ApiResult<()> {
        if !self.meta.plugins()?.iter().any(|v| v.sha256 == sha256) {
            let _ = std::fs::remove_file(self.blob(sha256));
        }
        Ok(())
    }

    /// Deletes a version (409 while a running job uses it).
    pub fn delete(&self, name: &str, version: &str) -> ApiResult<PluginVersion> {
        match self.meta.delete_plugin(name, version)? {
            None => Err(not_found(name, version)),
            Some(Err(jobs)) => Err(ApiError::conflict(
                "plugin_in_use",
                format!("{name}@{version} is used by running jobs {}: cancel them first", jobs.join(", ")),
            )),
            Some(Ok(old)) => {
                self.remove_unused_blob(&old.sha256)?;
                tracing::info!(plugin = %name, %version, "plugin version deleted");
                Ok(old)
            }
        }
    }

    /// One version, or a 404.
    pub fn get(&self, name: &str, version: &str) -> ApiResult<PluginVersion> {
        self.meta.plugin(name, version)?.ok_or_else(|| not_found(name, version))
    }

    /// The versions of `name`, oldest first (404 when there are none).
    pub fn versions(&self, name: &str) -> ApiResult<Vec<PluginVersion>> {
        let versions: Vec<PluginVersion> = self.meta.plugins()?.into_iter().filter(|v| v.name == name).collect();
        match versions.is_empty() {
            true => {
                Err(ApiError::not_found("plugin_not_found", format!("there is no plugin `{name}`: upload it first")))
            }
            false => Ok(versions),
        }
    }

    /// Every version of every plugin.
    pub fn all(&self) -> ApiResult<Vec<PluginVersion>> {
        Ok(self.meta.plugins()?)
    }

    /// The newest version that `reference` accepts.
    pub fn resolve(&self, reference: &PluginRef) -> ApiResult<PluginVersion> {
        let name = &reference.name;
        let versions: Vec<PluginVersion> = self.meta.plugins()?.into_iter().filter(|v| &v.name == name).collect();
        let best = versions
            .iter()
            .filter_map(|v| semver::Version::parse(&v.version).ok().map(|parsed| (parsed, v)))
            .filter(|(parsed, _)| reference.version.matches(parsed))
            .max_by(|a, b| a.0.cmp(&b.0));
        match best {
            Some((_, v)) => Ok(v.clone()),
            None if versions.is_empty() => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin_not_found",
                format!("there is no plugin `{name}` in the registry: upload it first (weir plugin upload)"),
            )),
            None => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin_version_not_found",
                format!(
                    "no version of plugin `{name}` matches `{}`; there are {}",
                    requirement(reference),
                    versions.iter().map(|v| v.version.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
}

/// A reference's requirement as the user wrote it (an exact one without `=`).
pub fn requirement(reference: &PluginRef) -> String {
    let text = reference.version.to_string();
    match reference.exact {
        true => text.trim_start_matches('=').to_string(),
        false => text,
    }
}

fn not_found(name: &str, version: &str) -> ApiError {
    ApiError::not_found("plugin_version_not_found", format!("there is no version {version} of plugin `{name}`"))
}

fn conflict(old: &PluginVersion) -> ApiError {
    ApiError::conflict(
        "plugin_version_exists",
        format!(
            "{}@{} exists with other bytes (sha256 {}): versions are immutable, upload under a new version",
            old.name, old.version, old.sha256
        ),
    )
}

/// Why uploaded bytes are not a plugin this host runs: a 422.
fn invalid_plugin(e: weir_wasm::PluginError) -> ApiError {
    let code = match &e {
        weir_wasm::PluginError::WrongWorld { .. } => "plugin_wrong_world",
        weir_wasm::PluginError::Invalid { .. } => "plugin_invalid",
        _ => return ApiError::internal(e.to_string()),
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
}

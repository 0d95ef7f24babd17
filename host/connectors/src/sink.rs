//! Sinks: standard output, JSON-lines files, and a discarding sink.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use weir_types::RecordBatch;

use crate::{ConnectorError, Result};

/// Where results go.
pub trait Sink: Send {
    /// Writes a batch (a sink may buffer it until `flush`).
    fn write(&mut self, records: &RecordBatch) -> Result<()>;
    /// Makes everything written so far visible (for a transactional sink:
    /// writes it out; it becomes visible on commit).
    fn flush(&mut self) -> Result<()>;
    /// At a checkpoint barrier: makes what was written since the last one
    /// durable and returns what to commit when the checkpoint completes.
    /// Sinks without transactions just flush (at-least-once).
    fn pre_commit(&mut self) -> Result<Option<crate::PendingParts>> {
        self.flush()?;
        Ok(None)
    }
}

/// Each record's value on its own line on standard output. At-least-once.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn write(&mut self, records: &RecordBatch) -> Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let err = |source| ConnectorError::Io { path: PathBuf::from("<stdout>"), source };
        for r in records.iter() {
            out.write_all(r.value).map_err(err)?;
            out.write_all(b"\n").map_err(err)?;
        }
        out.flush().map_err(err)
    }

    fn flush(&mut self) -> Result<()> {
        std::io::stdout().flush().map_err(|source| ConnectorError::Io { path: PathBuf::from("<stdout>"), source })
    }
}

/// Each record's value on its own line in a file (JSON lines).
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    out: BufWriter<File>,
}

impl FileSink {
    /// Creates (truncating) the file.
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| ConnectorError::Io { path: dir.to_path_buf(), source })?;
        }
        let file = File::create(path).map_err(|source| ConnectorError::Io { path: path.to_path_buf(), source })?;
        Ok(FileSink { path: path.to_path_buf(), out: BufWriter::with_capacity(256 * 1024, file) })
    }
}

impl Sink for FileSink {
    fn write(&mut self, records: &RecordBatch) -> Result<()> {
        for r in records.iter() {
            self.out.write_all(r.value).map_err(|source| ConnectorError::Io { path: self.path.clone(), source })?;
            self.out.write_all(b"\n").map_err(|source| ConnectorError::Io { path: self.path.clone(), source })?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|source| ConnectorError::Io { path: self.path.clone(), source })
    }
}

/// Counts and discards.
#[derive(Debug, Default)]
pub struct BlackholeSink {
    /// Records seen.
    pub count: u64,
}

impl Sink for BlackholeSink {
    fn write(&mut self, records: &RecordBatch) -> Result<()> {
        self.count += records.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

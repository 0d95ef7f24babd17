//! Sinks: standard output, JSON-lines files, and a discarding sink.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use weir_types::RecordBatch;

use crate::{ConnectorError, Result};

/// Where results go. A sink owns its two-phase commit: the runtime only
/// says at which barrier to pre-commit and which checkpoint completed.
pub trait Sink: Send {
    /// Writes a batch (a sink may buffer it until `flush`).
    fn write(&mut self, records: &RecordBatch) -> Result<()>;
    /// Makes everything written so far visible (for a transactional sink:
    /// writes it out; it becomes visible on commit).
    fn flush(&mut self) -> Result<()>;
    /// At the barrier of checkpoint `checkpoint`: makes what was written
    /// since the last barrier durable and returns the sink's pending state
    /// (opaque bytes, stored with the checkpoint: everything pre-committed
    /// and not yet committed). A restore hands them back to the factory,
    /// which commits or discards them. Sinks without transactions just
    /// flush (at-least-once) and return `None`.
    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>> {
        let _ = checkpoint;
        self.flush()?;
        Ok(None)
    }
    /// Checkpoint `checkpoint` completed: commit what was pre-committed up
    /// to it. Called again after a crash for the same checkpoint, so a
    /// commit must be idempotent.
    fn commit(&mut self, checkpoint: u64) -> Result<()> {
        let _ = checkpoint;
        Ok(())
    }
}

/// `type: stdout`.
#[derive(Debug)]
pub(crate) struct StdoutFactory;

impl crate::SinkFactory for StdoutFactory {
    fn open(&self, _: &crate::SinkContext<'_>) -> Result<Box<dyn Sink>> {
        Ok(Box::new(StdoutSink))
    }
}

/// `type: blackhole`.
#[derive(Debug)]
pub(crate) struct BlackholeFactory;

impl crate::SinkFactory for BlackholeFactory {
    fn open(&self, _: &crate::SinkContext<'_>) -> Result<Box<dyn Sink>> {
        Ok(Box::new(BlackholeSink::default()))
    }
}

/// `type: file`: exactly-once part files in a directory when the job
/// checkpoints, a plain file per instance otherwise.
#[derive(Debug)]
pub(crate) struct FileSinkFactory {
    pub(crate) path: PathBuf,
}

impl crate::SinkFactory for FileSinkFactory {
    fn open(&self, cx: &crate::SinkContext<'_>) -> Result<Box<dyn Sink>> {
        if cx.exactly_once {
            return Ok(Box::new(crate::PartFileSink::open(&self.path, cx)?));
        }
        Ok(Box::new(FileSink::create(&instance_path(&self.path, cx.index, cx.parallelism))?))
    }
}

/// `out.jsonl` → `out-2.jsonl` for instance 2 of a parallel file sink.
fn instance_path(path: &Path, index: u32, parallelism: u32) -> PathBuf {
    if parallelism == 1 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    path.with_file_name(name)
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

//! A plugin's stdout and stderr: each line goes to `tracing` with the task
//! it came from (rate-limited, so a chatty plugin cannot flood the log), and
//! the tail of what the current call wrote to stderr is kept for error
//! reports (a Rust panic message, for one). Writes never fail, so printing
//! cannot make a plugin trap.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line logged (longer ones are cut).
const MAX_LINE: usize = 4096;
/// Bytes of the current call's stderr kept for error reports.
const TAIL: usize = 4096;
/// Lines logged per second per stream; the rest are counted.
const LINES_PER_SECOND: u32 = 100;

/// Which stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug)]
struct Inner {
    line: Vec<u8>,
    tail: VecDeque<u8>,
    window: Option<Instant>,
    logged: u32,
    dropped: u64,
}

/// One stream of one plugin instance.
#[derive(Debug, Clone)]
pub(crate) struct GuestLog {
    task: Arc<str>,
    stream: Stream,
    inner: Arc<Mutex<Inner>>,
}

impl GuestLog {
    pub(crate) fn new(task: Arc<str>, stream: Stream) -> Self {
        let inner = Inner { line: Vec::new(), tail: VecDeque::new(), window: None, logged: 0, dropped: 0 };
        GuestLog { task, stream, inner: Arc::new(Mutex::new(inner)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        if self.stream == Stream::Stderr {
            inner.tail.extend(bytes);
            let excess = inner.tail.len().saturating_sub(TAIL);
            inner.tail.drain(..excess);
        }
        for &b in bytes {
            if b == b'\n' || inner.line.len() >= MAX_LINE {
                self.emit(&mut inner);
                if b == b'\n' {
                    continue;
                }
            }
            inner.line.push(b);
        }
    }

    /// Logs the buffered line, within the rate limit, and empties it.
    fn emit(&self, inner: &mut Inner) {
        if self.within_rate(inner) {
            let line = String::from_utf8_lossy(&inner.line);
            match self.stream {
                Stream::Stdout => tracing::info!(target: "weir::plugin", task = &*self.task, "{line}"),
                Stream::Stderr => tracing::warn!(target: "weir::plugin", task = &*self.task, "{line}"),
            }
        }
        inner.line.clear();
    }

    /// Whether one more line may be logged this second (counting it).
    fn within_rate(&self, inner: &mut Inner) -> bool {
        let now = Instant::now();
        if inner.window.is_none_or(|w| now.duration_since(w).as_secs() >= 1) {
            if inner.dropped > 0 {
                tracing::warn!(task = &*self.task, stream = ?self.stream, dropped = inner.dropped, "plugin output lines dropped (rate limit)");
            }
            inner.window = Some(now);
            inner.logged = 0;
            inner.dropped = 0;
        }
        if inner.logged >= LINES_PER_SECOND {
            inner.dropped += 1;
            return false;
        }
        inner.logged += 1;
        true
    }

    /// Forgets the stderr tail: a call starts.
    pub(crate) fn start_call(&self) {
        self.lock().tail.clear();
    }

    /// What the current call wrote to stderr (its last 4 KiB).
    pub(crate) fn tail(&self) -> Vec<u8> {
        self.lock().tail.iter().copied().collect()
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for GuestLog {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestLog {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_of_the_current_calls_stderr() {
        let log = GuestLog::new("t-0/1".into(), Stream::Stderr);
        log.write_bytes(b"old\n");
        log.start_call();
        log.write_bytes(&vec![b'x'; 5000]);
        log.write_bytes(b"\npanicked: boom\n");
        let tail = log.tail();
        assert_eq!(tail.len(), TAIL);
        assert!(tail.ends_with(b"\npanicked: boom\n"));
    }
}

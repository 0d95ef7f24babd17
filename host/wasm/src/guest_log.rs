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
    /// The `logging` import.
    Log,
}

/// A line as it is logged: at most [`MAX_LINE`] bytes (cut at a character
/// boundary, marked `…`), control characters escaped — a plugin's carriage
/// return, terminal escape or (in a logged message) newline cannot forge or
/// hide a host log line.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LINE) + 8);
    for c in text.chars() {
        if out.len() >= MAX_LINE {
            out.push('…');
            break;
        }
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug)]
struct Inner {
    task: Arc<str>,
    stream: Stream,
    line: Vec<u8>,
    tail: VecDeque<u8>,
    window: Option<Instant>,
    logged: u32,
    dropped: u64,
}

impl Inner {
    /// Reports the lines the rate limit dropped (and forgets them).
    fn report_dropped(&mut self) {
        if self.dropped > 0 {
            let (task, stream, dropped) = (&*self.task, self.stream, self.dropped);
            tracing::warn!(task, stream = ?stream, dropped, "plugin output lines dropped (rate limit)");
            self.dropped = 0;
        }
    }
}

impl Drop for Inner {
    /// The instance is gone: what its last second dropped is said too.
    fn drop(&mut self) {
        self.report_dropped();
    }
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
        let inner = Inner {
            task: task.clone(),
            stream,
            line: Vec::new(),
            tail: VecDeque::new(),
            window: None,
            logged: 0,
            dropped: 0,
        };
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
            let line = sanitize(&String::from_utf8_lossy(&inner.line));
            match self.stream {
                Stream::Stdout | Stream::Log => tracing::info!(target: "weir::plugin", task = &*self.task, "{line}"),
                Stream::Stderr => tracing::warn!(target: "weir::plugin", task = &*self.task, "{line}"),
            }
        }
        inner.line.clear();
    }

    /// A message of the `logging` import, with the limits of stdout and
    /// stderr: cut, escaped, at most [`LINES_PER_SECOND`] a second (the
    /// rest counted and reported).
    pub(crate) fn message(&self, level: crate::bindings::weir::plugin::logging::Level, message: &str) {
        use crate::bindings::weir::plugin::logging::Level;
        let mut inner = self.lock();
        if !self.within_rate(&mut inner) {
            return;
        }
        drop(inner);
        let (task, text) = (&*self.task, sanitize(message));
        match level {
            Level::Trace => tracing::trace!(target: "weir::plugin", task, "{text}"),
            Level::Debug => tracing::debug!(target: "weir::plugin", task, "{text}"),
            Level::Info => tracing::info!(target: "weir::plugin", task, "{text}"),
            Level::Warn => tracing::warn!(target: "weir::plugin", task, "{text}"),
            Level::Error => tracing::error!(target: "weir::plugin", task, "{text}"),
        }
    }

    /// Whether one more line may be logged this second (counting it).
    fn within_rate(&self, inner: &mut Inner) -> bool {
        let now = Instant::now();
        if inner.window.is_none_or(|w| now.duration_since(w).as_secs() >= 1) {
            inner.report_dropped();
            inner.window = Some(now);
            inner.logged = 0;
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
    fn lines_are_cut_and_their_control_characters_escaped() {
        assert_eq!(sanitize("a\nINFO forged\r\u{1b}[31m\tok"), "a\\nINFO forged\\r\\u{1b}[31m\tok");
        let long = sanitize(&"é".repeat(MAX_LINE));
        assert!(long.len() <= MAX_LINE + 4 && long.ends_with('…'), "{}", long.len());
    }

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

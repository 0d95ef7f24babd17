//! The progress log of a running job.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;

/// Logs each node's progress every `every` until dropped.
pub(super) struct Progress {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(super) fn start(shared: Arc<Shared>, every: Duration) -> Progress {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let span = tracing::Span::current();
    let thread = std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || {
            let _entered = span.enter();
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                for n in shared.metrics.report(&shared.order) {
                    tracing::info!(
                        node = %n.node,
                        records_in = n.records_in,
                        records_out = n.records_out,
                        watermark = n.watermark.map_or_else(|| "none".to_string(), |w| w.to_string()),
                        "progress"
                    );
                }
            }
        })
        .ok();
    Progress { stop: Some(stop), thread }
}

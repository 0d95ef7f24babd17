//! Drives one Wasm operator in a task: batches in, effects applied, timers
//! fired when the watermark or the clock passes them.

use std::sync::Arc;

use weir_types::{MIN_WATERMARK, RecordBatch, TaskInfo, TimeDomain, Timestamp};
use weir_wasm::{OperatorInstance, batch_from_wit, wit};

use weir_spec::OnError;

use crate::error::{Result, RuntimeError};
use crate::metrics::NodeMetrics;
use crate::timers::TimerService;

/// Where processing time comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock.
    Wall,
    /// A fixed time, moved by hand (tests).
    Manual(Timestamp),
}

impl Clock {
    /// The current processing time (ms).
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::Wall => weir_types::now_ms(),
            Clock::Manual(t) => *t,
        }
    }
}

/// What an operator produced.
#[derive(Debug, Default)]
pub struct Emitted {
    /// Main output, in order.
    pub main: RecordBatch,
    /// Side outputs, in order, with their names.
    pub side: Vec<(String, RecordBatch)>,
}

impl Emitted {
    fn extend(&mut self, other: Emitted) {
        if self.main.is_empty() {
            self.main = other.main;
        } else {
            self.main.extend_from(&other.main);
        }
        self.side.extend(other.side);
    }
}

/// One operator task's instance, timers and watermark.
pub struct WasmOperator {
    pub(crate) task: TaskInfo,
    instance: OperatorInstance,
    timers: TimerService,
    watermark: Timestamp,
    max_parallelism: u32,
    batch_size: usize,
    pub(crate) clock: Clock,
    metrics: Arc<NodeMetrics>,
    /// Where the backend may write native checkpoints (RocksDB).
    pub(crate) checkpoint_scratch: Option<std::path::PathBuf>,
    /// What a record the plugin returns an error for does.
    pub(crate) on_error: OnError,
    /// Most records one call may emit.
    pub(crate) max_emitted: u64,
}

/// The side output that `on_error: dead-letter` sends failed records to.
pub const DEAD_LETTER_OUTPUT: &str = "errors";

impl WasmOperator {
    /// Wraps an initialized instance; restores timers from its state.
    pub fn new(
        task: TaskInfo,
        mut instance: OperatorInstance,
        max_parallelism: u32,
        batch_size: usize,
        metrics: Arc<NodeMetrics>,
    ) -> Result<Self> {
        let timers = TimerService::restore(instance.backend()).map_err(|e| RuntimeError::task(&task, e))?;
        Ok(WasmOperator {
            task,
            instance,
            timers,
            watermark: MIN_WATERMARK,
            max_parallelism,
            batch_size,
            clock: Clock::Wall,
            metrics,
            checkpoint_scratch: None,
            on_error: OnError::Fail,
            max_emitted: weir_wasm::Limits::default().max_emitted,
        })
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    /// The operator's current watermark.
    pub fn watermark(&self) -> Timestamp {
        self.watermark
    }

    /// Sets the watermark a restored checkpoint recorded (no timers fire:
    /// they fired before the checkpoint).
    pub(crate) fn restore_watermark(&mut self, watermark: Timestamp) {
        self.watermark = watermark;
    }

    /// The key groups this operator instance owns.
    pub(crate) fn key_groups(&self) -> std::ops::Range<u16> {
        weir_types::key_groups_of_task(self.task.index, self.task.parallelism, self.max_parallelism)
    }

    /// The instance (state inspection in tests).
    pub fn instance(&mut self) -> &mut OperatorInstance {
        &mut self.instance
    }

    /// Pending timers.
    pub fn timers(&self) -> &TimerService {
        &self.timers
    }

    fn time(&self) -> wit::TimeContext {
        wit::TimeContext { watermark: self.watermark, processing_time: self.clock.now() }
    }

    /// Processes a batch of records.
    pub fn process(&mut self, records: RecordBatch) -> Result<Emitted> {
        self.metrics.records_in.inc_by(records.len() as u64);
        let time = self.time();
        let (n, kept) = (records.len(), (self.on_error == OnError::DeadLetter).then(|| records.clone()));
        let effects = self.instance.process(records, time).map_err(|e| RuntimeError::plugin(&self.task, e))?;
        self.apply(effects, "record", n, kept.as_ref())
    }

    /// Advances event time: fires every event-time timer up to `watermark`
    /// (including ones registered while firing), in time order.
    pub fn advance_watermark(&mut self, watermark: Timestamp) -> Result<Emitted> {
        if watermark <= self.watermark {
            return Ok(Emitted::default());
        }
        self.watermark = watermark;
        self.fire(TimeDomain::EventTime, watermark)
    }

    /// Fires processing-time timers due at the clock's time.
    pub fn fire_processing_timers(&mut self) -> Result<Emitted> {
        let now = self.clock.now();
        self.fire(TimeDomain::ProcessingTime, now)
    }

    /// The earliest pending processing-time timer.
    pub fn next_processing_timer(&self) -> Option<Timestamp> {
        self.timers.next(TimeDomain::ProcessingTime)
    }

    fn fire(&mut self, domain: TimeDomain, upto: Timestamp) -> Result<Emitted> {
        let mut out = Emitted::default();
        loop {
            let due = self
                .timers
                .pop_due(self.instance.backend(), self.max_parallelism, domain, upto, self.batch_size)
                .map_err(|e| RuntimeError::task(&self.task, e))?;
            if due.is_empty() {
                return Ok(out);
            }
            let wit_domain = match domain {
                TimeDomain::EventTime => wit::TimeDomain::EventTime,
                TimeDomain::ProcessingTime => wit::TimeDomain::ProcessingTime,
            };
            let kept = (self.on_error == OnError::DeadLetter).then(|| {
                let mut timers = RecordBatch::new();
                due.iter().for_each(|(ts, key)| timers.push(Some(key), b"", *ts));
                timers
            });
            let n = due.len();
            let fired = due
                .into_iter()
                .map(|(timestamp, key)| wit::FiredTimer { key, timestamp, domain: wit_domain })
                .collect();
            let time = self.time();
            let effects = self.instance.on_timer(fired, time).map_err(|e| RuntimeError::plugin(&self.task, e))?;
            out.extend(self.apply(effects, "timer", n, kept.as_ref())?);
        }
    }

    /// Applies a call's effects. `n` is how many records or timers the call
    /// had; `input` is them, kept when failed ones go to the dead letters.
    fn apply(&mut self, effects: wit::Effects, what: &str, n: usize, input: Option<&RecordBatch>) -> Result<Emitted> {
        let wit::Effects { outputs, side_outputs, state_updates, timer_updates, counters, errors } = effects;
        let emitted = outputs.timestamps.len() as u64
            + side_outputs.iter().map(|s| s.records.timestamps.len() as u64).sum::<u64>();
        if emitted > self.max_emitted {
            return Err(RuntimeError::Task {
                task: self.task.to_string(),
                message: format!(
                    "plugin emitted {emitted} records in one call for {n} {what}s (limits.max_emitted is {})",
                    self.max_emitted
                ),
            });
        }
        let errors: Vec<(u32, String)> = errors.into_iter().map(|e| (e.index, e.message)).collect();
        let dead_letters =
            handle_record_errors(&self.task, self.on_error, &self.metrics, "plugin", &errors, what, input)?;
        self.instance.apply_state_updates(&state_updates).map_err(|e| RuntimeError::plugin(&self.task, e))?;
        for t in timer_updates {
            let domain = match t.domain {
                wit::TimeDomain::EventTime => TimeDomain::EventTime,
                wit::TimeDomain::ProcessingTime => TimeDomain::ProcessingTime,
            };
            let backend = self.instance.backend();
            let r = match t.op {
                wit::TimerOp::Register => {
                    self.timers.register(backend, self.max_parallelism, domain, t.timestamp, t.key)
                }
                wit::TimerOp::Delete => self.timers.delete(backend, self.max_parallelism, domain, t.timestamp, t.key),
            };
            r.map_err(|e| RuntimeError::task(&self.task, e))?;
        }
        for (name, delta) in counters {
            self.metrics.add_counter(&name, delta);
        }
        let main = batch_from_wit(outputs).map_err(|e| RuntimeError::plugin(&self.task, e))?;
        let mut side = Vec::with_capacity(side_outputs.len());
        for s in side_outputs {
            let batch = batch_from_wit(s.records).map_err(|e| RuntimeError::plugin(&self.task, e))?;
            self.metrics.side_out.inc_by(batch.len() as u64);
            side.push((s.name, batch));
        }
        if let Some(batch) = dead_letters {
            self.metrics.side_out.inc_by(batch.len() as u64);
            side.push((DEAD_LETTER_OUTPUT.to_string(), batch));
        }
        self.metrics.records_out.inc_by(main.len() as u64);
        Ok(Emitted { main, side })
    }
}

/// Records a function failed on, by `on_error`: fail the task (naming
/// `who` failed), or count them (and, for dead letters, return them with
/// their errors as JSON records). `errors` are (index in `input`, message).
pub(crate) fn handle_record_errors(
    task: &TaskInfo,
    on_error: OnError,
    metrics: &NodeMetrics,
    who: &str,
    errors: &[(u32, String)],
    what: &str,
    input: Option<&RecordBatch>,
) -> Result<Option<RecordBatch>> {
    let Some((first_index, first_message)) = errors.first() else { return Ok(None) };
    if on_error == OnError::Fail {
        return Err(RuntimeError::Task {
            task: task.to_string(),
            message: format!("{who} failed on {what} #{first_index} of its batch: {first_message}"),
        });
    }
    metrics.add_counter("records_failed", errors.len() as u64);
    tracing::warn!(
        failed = errors.len(),
        first = %first_message,
        policy = ?on_error,
        "{who} returned errors for some {what}s"
    );
    let Some(input) = input.filter(|_| on_error == OnError::DeadLetter) else { return Ok(None) };
    let mut dead = RecordBatch::new();
    for (index, message) in errors {
        if *index as usize >= input.len() {
            continue;
        }
        let r = input.get(*index as usize);
        let mut letter = serde_json::json!({
            "node": &*task.node,
            "error": message,
            "timestamp": r.timestamp,
            "key": r.key.map(|k| String::from_utf8_lossy(k).into_owned()),
        });
        if what == "record" {
            letter["value"] = match std::str::from_utf8(r.value) {
                Ok(text) => serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.into())),
                Err(_) => serde_json::Value::String(String::from_utf8_lossy(r.value).into_owned()),
            };
        } else {
            letter["timer"] = serde_json::Value::Bool(true);
        }
        dead.push(r.key, letter.to_string().as_bytes(), r.timestamp);
    }
    Ok(Some(dead))
}

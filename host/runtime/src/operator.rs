//! Drives one Wasm operator in a task: batches in, effects applied, timers
//! fired when the watermark or the clock passes them.

use std::sync::Arc;

use weir_spec::OnError;
use weir_state::KeyedState;
use weir_types::{MIN_WATERMARK, RecordBatch, TaskInfo, TimeDomain, Timestamp};
use weir_wasm::{Grants, InitArgs, Limits, OperatorInstance, Plugin, batch_from_wit, wit};

use crate::error::{Result, RuntimeError};
use crate::metrics::{Counters, NodeMetrics};
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

/// How an operator's plugin instances are made: what a swap to another
/// plugin version instantiates with.
#[derive(Debug, Clone)]
pub struct InstanceSetup {
    /// The sandbox limits.
    pub limits: Limits,
    /// What the plugin may reach.
    pub grants: Grants,
    /// Its `init` arguments.
    pub args: InitArgs,
}

impl InstanceSetup {
    /// A new instance of `plugin`, initialized over `state`.
    pub(crate) fn instantiate(
        &self,
        task: &TaskInfo,
        plugin: &Plugin,
        state: &mut KeyedState,
    ) -> Result<(OperatorInstance, wit::OperatorInfo)> {
        let mut instance = plugin
            .instantiate_with(&task.to_string(), &self.limits, &self.grants)
            .map_err(|e| RuntimeError::plugin(task, e))?;
        let info = instance.init(&self.args, state).map_err(|e| RuntimeError::plugin(task, e))?;
        Ok((instance, info))
    }
}

/// One operator task: the plugin instance running now, and the state and
/// timers the runtime owns and lends it.
pub struct WasmOperator {
    pub(crate) task: TaskInfo,
    instance: OperatorInstance,
    plugin: Plugin,
    setup: InstanceSetup,
    state: KeyedState,
    timers: TimerService,
    watermark: Timestamp,
    batch_size: usize,
    pub(crate) clock: Clock,
    counters: Counters,
    /// While timers fire: their clock and the time they fire up to.
    firing: Option<(TimeDomain, Timestamp)>,
    /// Timers registered, while timers fire, for times already due (they
    /// fire in the same round).
    due_registrations: u64,
    /// What a record the plugin returns an error for does.
    pub(crate) on_error: OnError,
}

/// Hands the states a new instance declared to it at the schema version it
/// writes: a state written at another version is migrated through the
/// plugin's `migrate` export (`weir:plugin@0.2.0`); a plugin without it gets
/// the bytes as they are — unless they were written at a later version than
/// the one it writes (a rollback past a migration), which is refused.
fn take_over(task: &TaskInfo, instance: &mut OperatorInstance, state: &mut KeyedState) -> Result<()> {
    let fail = |e| RuntimeError::plugin(task, e);
    let writes: std::collections::BTreeMap<String, u32> = instance.state_schemas().map_err(fail)?.into_iter().collect();
    for name in state.declared().to_vec() {
        let (from, to) = (state.schema(&name), writes.get(&name).copied().unwrap_or(0));
        if from == to {
            continue;
        }
        if instance.migrates() {
            instance.migrate_state(state, &name, from).map_err(fail)?;
        } else if from > to {
            return Err(RuntimeError::Config {
                node: task.node.to_string(),
                message: format!(
                    "state `{name}` is written at schema {from} and the plugin writes schema {to} without a \
                     migration: restore a savepoint taken before the state was migrated"
                ),
            });
        }
        state.set_schema(&name, to);
    }
    Ok(())
}

/// The most timers a plugin may register for times already due while timers
/// fire (at one watermark, or one look at the clock): past it, a plugin that
/// registers the timer firing again would keep the host firing forever.
pub const MAX_DUE_REGISTRATIONS: u64 = 100_000;

/// The side output that `on_error: dead-letter` sends failed records to.
pub const DEAD_LETTER_OUTPUT: &str = "errors";

impl WasmOperator {
    /// An operator running `plugin` over `state` (restored or empty):
    /// instantiates and initializes it, and restores the timers.
    pub fn new(
        task: TaskInfo,
        plugin: &Plugin,
        setup: InstanceSetup,
        mut state: KeyedState,
        batch_size: usize,
        metrics: Arc<NodeMetrics>,
    ) -> Result<Self> {
        let (mut instance, _) = setup.instantiate(&task, plugin, &mut state)?;
        take_over(&task, &mut instance, &mut state)?;
        let timers = TimerService::restore(state.backend()).map_err(|e| RuntimeError::state(&task, e))?;
        Ok(WasmOperator {
            task,
            instance,
            plugin: plugin.clone(),
            setup,
            state,
            timers,
            watermark: MIN_WATERMARK,
            batch_size,
            clock: Clock::Wall,
            counters: Counters::new(metrics),
            firing: None,
            due_registrations: 0,
            on_error: OnError::Fail,
        })
    }

    /// Runs `plugin` from now on, over the same state and timers: the old
    /// instance is dropped once the new one initialized (its declarations
    /// checked against the state).
    pub fn replace_plugin(&mut self, plugin: &Plugin, config: Option<&str>) -> Result<()> {
        let mut setup = self.setup.clone();
        if let Some(config) = config {
            setup.args.config = config.to_string();
        }
        let (mut instance, _) = setup.instantiate(&self.task, plugin, &mut self.state)?;
        take_over(&self.task, &mut instance, &mut self.state)?;
        self.instance = instance;
        self.plugin = plugin.clone();
        self.setup = setup;
        self.counters.add("plugin_swaps", 1);
        tracing::info!(task = %self.task, plugin = %plugin.name(), digest = %plugin.digest(), "operator plugin replaced");
        Ok(())
    }

    /// The plugin running now.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &NodeMetrics {
        self.counters.node()
    }

    /// The keyed state.
    pub fn state(&mut self) -> &mut KeyedState {
        &mut self.state
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

    /// The instance and the state it runs over (state inspection in tests).
    pub fn instance(&mut self) -> (&mut OperatorInstance, &mut KeyedState) {
        (&mut self.instance, &mut self.state)
    }

    /// Pending timers.
    pub fn timers(&self) -> &TimerService {
        &self.timers
    }

    fn time(&self) -> wit::TimeContext {
        wit::TimeContext { watermark: self.watermark, processing_time: self.clock.now() }
    }

    /// Processes a batch of records.
    pub fn process(&mut self, mut records: RecordBatch) -> Result<Emitted> {
        self.counters.node().records_in.inc_by(records.len() as u64);
        let time = self.time();
        let effects = self
            .instance
            .process(&mut self.state, &mut records, time)
            .map_err(|e| RuntimeError::plugin(&self.task, e))?;
        let n = records.len();
        self.apply(effects, "record", n, Some(&records))
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
        self.due_registrations = 0;
        self.firing = Some((domain, upto));
        let fired = self.fire_rounds(domain, upto, &mut out);
        self.firing = None;
        fired.map(|()| out)
    }

    /// Fires due timers round by round until none is due.
    fn fire_rounds(&mut self, domain: TimeDomain, upto: Timestamp, out: &mut Emitted) -> Result<()> {
        loop {
            if self.due_registrations > MAX_DUE_REGISTRATIONS {
                let message = format!(
                    "it registered {} timers for times already due while timers fired (at most \
                     {MAX_DUE_REGISTRATIONS}): each would fire again at once",
                    self.due_registrations
                );
                return Err(RuntimeError::plugin(
                    &self.task,
                    weir_wasm::PluginError::Limit { call: "on-timer", message },
                ));
            }
            let maxp = self.state.max_parallelism();
            let due = self
                .timers
                .pop_due(self.state.backend(), maxp, domain, upto, self.batch_size)
                .map_err(|e| RuntimeError::state(&self.task, e))?;
            if due.is_empty() {
                return Ok(());
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
            let effects = self
                .instance
                .on_timer(&mut self.state, fired, time)
                .map_err(|e| RuntimeError::plugin(&self.task, e))?;
            out.extend(self.apply(effects, "timer", n, kept.as_ref())?);
        }
    }

    /// Applies a call's effects. `n` is how many records or timers the call
    /// had; `input` is them, kept when failed ones go to the dead letters.
    fn apply(&mut self, effects: wit::Effects, what: &str, n: usize, input: Option<&RecordBatch>) -> Result<Emitted> {
        let call = if what == "timer" { "on-timer" } else { "process" };
        self.setup
            .limits
            .check_output(call, weir_wasm::effects_bytes(&effects))
            .map_err(|e| RuntimeError::plugin(&self.task, e))?;
        let wit::Effects { outputs, side_outputs, state_updates, timer_updates, counters, errors } = effects;
        let emitted = outputs.timestamps.len() as u64
            + side_outputs.iter().map(|s| s.records.timestamps.len() as u64).sum::<u64>();
        let max_emitted = self.setup.limits.max_emitted;
        if emitted > max_emitted {
            return Err(RuntimeError::record(
                &self.task,
                format!(
                    "plugin emitted {emitted} records in one call for {n} {what}s (limits.max_emitted is {max_emitted})"
                ),
            ));
        }
        if let Some(e) = errors.iter().find(|e| e.index as usize >= n) {
            let message = format!("it returned an error for {what} #{} of a call with {n}", e.index);
            return Err(RuntimeError::plugin(&self.task, weir_wasm::PluginError::Contract(message)));
        }
        let errors: Vec<(u32, String)> = errors.into_iter().map(|e| (e.index, e.message)).collect();
        let dead_letters =
            handle_record_errors(&self.task, self.on_error, &mut self.counters, "plugin", &errors, what, input)?;
        self.instance
            .apply_state_updates(&mut self.state, &state_updates)
            .map_err(|e| RuntimeError::plugin(&self.task, e))?;
        let maxp = self.state.max_parallelism();
        for t in timer_updates {
            let domain = match t.domain {
                wit::TimeDomain::EventTime => TimeDomain::EventTime,
                wit::TimeDomain::ProcessingTime => TimeDomain::ProcessingTime,
            };
            let backend = self.state.backend();
            if matches!(t.op, wit::TimerOp::Register)
                && self.firing.is_some_and(|(d, upto)| d == domain && t.timestamp <= upto)
            {
                self.due_registrations += 1;
            }
            let r = match t.op {
                wit::TimerOp::Register => self.timers.register(backend, maxp, domain, t.timestamp, t.key),
                wit::TimerOp::Delete => self.timers.delete(backend, maxp, domain, t.timestamp, t.key),
            };
            r.map_err(|e| RuntimeError::state(&self.task, e))?;
        }
        for (name, delta) in counters {
            self.counters
                .add_reported(&name, delta)
                .map_err(|m| RuntimeError::plugin(&self.task, weir_wasm::PluginError::Contract(m)))?;
        }
        let metrics = self.counters.node();
        let main = batch_from_wit(outputs).map_err(|e| RuntimeError::plugin(&self.task, e))?;
        let mut side = Vec::with_capacity(side_outputs.len());
        for s in side_outputs {
            let batch = batch_from_wit(s.records).map_err(|e| RuntimeError::plugin(&self.task, e))?;
            metrics.side_out.inc_by(batch.len() as u64);
            side.push((s.name, batch));
        }
        if let Some(batch) = dead_letters {
            metrics.side_out.inc_by(batch.len() as u64);
            side.push((DEAD_LETTER_OUTPUT.to_string(), batch));
        }
        metrics.records_out.inc_by(main.len() as u64);
        Ok(Emitted { main, side })
    }
}

/// Records a function failed on, by `on_error`: fail the task (naming
/// `who` failed), or count them (and, for dead letters, return them with
/// their errors as JSON records). `errors` are (index in `input`, message).
pub(crate) fn handle_record_errors(
    task: &TaskInfo,
    on_error: OnError,
    counters: &mut Counters,
    who: &str,
    errors: &[(u32, String)],
    what: &str,
    input: Option<&RecordBatch>,
) -> Result<Option<RecordBatch>> {
    let Some((first_index, first_message)) = errors.first() else { return Ok(None) };
    if on_error == OnError::Fail {
        return Err(RuntimeError::record(
            task,
            format!("{who} failed on {what} #{first_index} of its batch: {first_message}"),
        ));
    }
    counters.add("records_failed", errors.len() as u64);
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

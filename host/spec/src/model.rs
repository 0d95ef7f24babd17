//! The job spec's schema. Every field is documented in `docs/job-spec.md`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// A job: sources, operators and sinks wired by `input` references.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The job's name.
    pub name: String,
    /// Default parallelism of every node.
    #[serde(default = "one")]
    pub parallelism: u32,
    /// Number of key groups of keyed nodes (the upper bound of their parallelism).
    #[serde(default = "default_max_parallelism")]
    pub max_parallelism: u32,
    /// Records per batch moved between operators and across the Wasm boundary.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Capacity of each channel between tasks, in batches (back-pressure).
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
    /// Where keyed state lives.
    #[serde(default)]
    pub state: StateSpec,
    /// Periodic checkpoints (none when absent).
    pub checkpoint: Option<CheckpointSpec>,
    /// Restarts after a task failure, from the latest checkpoint (only with
    /// `checkpoint`; exponential backoff by default).
    pub restart: Option<RestartSpec>,
    /// Where records come from.
    pub sources: Vec<crate::SourceSpec>,
    /// User operators (Wasm plugins).
    #[serde(default)]
    pub operators: Vec<OperatorSpec>,
    /// Where results go.
    pub sinks: Vec<crate::SinkSpec>,
    /// A savepoint to start from: `savepoint: PATH`, or `savepoint: { path,
    /// allow_non_restored_state }`.
    pub savepoint: Option<SavepointSpec>,
    /// The spec as written (kept with every checkpoint).
    #[serde(skip)]
    pub text: String,
}

fn one() -> u32 {
    1
}
fn default_max_parallelism() -> u32 {
    weir_types::DEFAULT_MAX_PARALLELISM
}
fn default_batch_size() -> usize {
    4096
}
fn default_channel_capacity() -> usize {
    16
}

/// The savepoint a job starts from. Once the job has checkpointed since,
/// it resumes from its newest checkpoint instead (as after a crash).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "SavepointForm")]
pub struct SavepointSpec {
    /// The savepoint's directory.
    pub path: PathBuf,
    /// Start even when the savepoint holds state of nodes the job no longer
    /// has (that state is dropped); refused otherwise.
    pub allow_non_restored_state: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SavepointForm {
    Path(PathBuf),
    Full {
        path: PathBuf,
        #[serde(default)]
        allow_non_restored_state: bool,
    },
}

impl From<SavepointForm> for SavepointSpec {
    fn from(form: SavepointForm) -> Self {
        match form {
            SavepointForm::Path(path) => SavepointSpec { path, allow_non_restored_state: false },
            SavepointForm::Full { path, allow_non_restored_state } => SavepointSpec { path, allow_non_restored_state },
        }
    }
}

/// Periodic checkpoints: `checkpoint: { interval, dir, retain, timeout, min_pause }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    /// How often a checkpoint starts.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub interval: Duration,
    /// Where completed checkpoints are kept.
    pub dir: PathBuf,
    /// How many completed checkpoints to keep.
    #[serde(default = "default_retain")]
    pub retain: usize,
    /// A checkpoint not complete after this long is aborted.
    #[serde(default = "default_checkpoint_timeout", deserialize_with = "crate::duration::deserialize")]
    pub timeout: Duration,
    /// Least time between the end of one checkpoint and the start of the next.
    #[serde(default, deserialize_with = "crate::duration::deserialize")]
    pub min_pause: Duration,
}

/// How a failed job restarts: `restart: { strategy, attempts, delay, max_delay }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSpec {
    /// `fixed-delay`, `exponential-backoff` or `none`.
    pub strategy: RestartStrategy,
    /// Restarts before the job fails for good.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before a restart (the first one, for exponential backoff).
    #[serde(default = "default_restart_delay", deserialize_with = "crate::duration::deserialize")]
    pub delay: Duration,
    /// Longest wait for exponential backoff.
    #[serde(default = "default_max_delay", deserialize_with = "crate::duration::deserialize")]
    pub max_delay: Duration,
}

/// Restart strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartStrategy {
    /// Fail on the first task failure.
    None,
    /// Wait `delay` before every restart.
    FixedDelay,
    /// Wait `delay`, then twice as long each time, up to `max_delay`.
    ExponentialBackoff,
}

impl RestartSpec {
    /// What a job with checkpoints and no `restart` does.
    pub fn default_with_checkpoints() -> Self {
        RestartSpec {
            strategy: RestartStrategy::ExponentialBackoff,
            attempts: default_attempts(),
            delay: default_restart_delay(),
            max_delay: default_max_delay(),
        }
    }

    /// The wait before restart number `n` (0-based), or `None` when no
    /// restart is left.
    pub fn delay_before(&self, n: u32) -> Option<Duration> {
        if n >= self.attempts {
            return None;
        }
        match self.strategy {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay => Some(self.delay),
            RestartStrategy::ExponentialBackoff => {
                Some(self.delay.saturating_mul(2u32.saturating_pow(n.min(31))).min(self.max_delay.max(self.delay)))
            }
        }
    }
}

fn default_attempts() -> u32 {
    5
}
fn default_restart_delay() -> Duration {
    Duration::from_secs(1)
}
fn default_max_delay() -> Duration {
    Duration::from_secs(30)
}

fn default_retain() -> usize {
    3
}
fn default_checkpoint_timeout() -> Duration {
    Duration::from_secs(600)
}

/// State backend selection.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    /// `memory` (default) or `rocksdb`.
    #[serde(default)]
    pub backend: StateBackendKind,
    /// Directory for RocksDB state; a temporary directory when absent.
    pub dir: Option<PathBuf>,
}

/// The kind of state backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackendKind {
    /// Hash maps in memory.
    #[default]
    Memory,
    /// RocksDB on local disk.
    Rocksdb,
}

impl std::str::FromStr for StateBackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(StateBackendKind::Memory),
            "rocksdb" => Ok(StateBackendKind::Rocksdb),
            other => Err(format!("unknown state backend `{other}` (expected `memory` or `rocksdb`)")),
        }
    }
}

/// Where a source's event timestamps come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampMode {
    /// From the data (generator time, or the `timestamp` pointer).
    #[default]
    Event,
    /// The wall clock when the source reads the record.
    Ingestion,
}

/// Watermark generation at a source (per split).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkSpec {
    /// Bounded out-of-orderness: watermark = max timestamp − bound − 1.
    #[serde(default, deserialize_with = "crate::duration::deserialize")]
    pub max_out_of_orderness: Duration,
    /// Emit the watermark at this wall-clock interval (periodic, the default).
    #[serde(default = "default_wm_interval", deserialize_with = "crate::duration::deserialize")]
    pub interval: Duration,
    /// Emit the watermark after every record instead (deterministic late-data decisions).
    #[serde(default)]
    pub punctuated: bool,
    /// A split with no records for this long is idle and no longer holds back the watermark.
    #[serde(default, deserialize_with = "crate::duration::deserialize_opt")]
    pub idle_timeout: Option<Duration>,
}

fn default_wm_interval() -> Duration {
    Duration::from_millis(200)
}

impl Default for WatermarkSpec {
    fn default() -> Self {
        WatermarkSpec {
            max_out_of_orderness: Duration::ZERO,
            interval: default_wm_interval(),
            punctuated: false,
            idle_timeout: None,
        }
    }
}

/// One input reference: `node` or `node.side-output`.
pub type InputRef = String;

/// One or several inputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Inputs {
    /// One input.
    One(InputRef),
    /// A union of inputs.
    Many(Vec<InputRef>),
}

impl Inputs {
    /// The inputs as a list.
    pub fn to_vec(&self) -> Vec<InputRef> {
        match self {
            Inputs::One(i) => vec![i.clone()],
            Inputs::Many(v) => v.clone(),
        }
    }
}

/// An operator node running a Wasm plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSpec {
    /// Unique node id (state is stored under it).
    pub id: String,
    /// Upstream node(s).
    pub input: Inputs,
    /// Path to the plugin's `.wasm` component, relative to the spec file,
    /// or a plugin of a server's registry as `name@version` or
    /// `name@^1.2` (see [`PluginRef`](crate::PluginRef)). A window operator
    /// with a built-in `aggregate` has none.
    pub plugin: Option<PathBuf>,
    /// Host-native event-time windows over the keyed input.
    pub window: Option<WindowSpec>,
    /// The built-in aggregate a window computes.
    pub aggregate: Option<AggregateSpec>,
    /// Passed to the plugin's `init` as JSON.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// Overrides the job's parallelism.
    pub parallelism: Option<u32>,
    /// Partition the input by key: `key` (the record key) or a JSON pointer into the value.
    pub key_by: Option<String>,
    /// What each instance may use (defaults in `docs/sandbox.md`).
    #[serde(default)]
    pub limits: LimitsSpec,
    /// What happens to a record the plugin returns an error for.
    #[serde(default)]
    pub on_error: OnError,
    /// What the plugin may reach beyond its memory (nothing by default).
    #[serde(default)]
    pub grants: GrantsSpec,
}

/// Capabilities granted to an operator's plugin.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GrantsSpec {
    /// Host directories the plugin may open.
    #[serde(default)]
    pub dirs: Vec<DirGrantSpec>,
}

/// A host directory granted to a plugin.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DirGrantSpec {
    /// The host directory, relative to the spec file.
    pub host: PathBuf,
    /// Where the plugin sees it, e.g. `/data`.
    pub guest: String,
    /// Read-only (the default) or read-write.
    #[serde(default = "yes")]
    pub read_only: bool,
}

fn yes() -> bool {
    true
}

/// Event-time windows: `window: { tumbling: 5s }` or
/// `window: { sliding: { size: 10s, slide: 1s } }`, with optional `offset`,
/// `allowed_lateness` and `late_output` (a side output name).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Tumbling windows of this size.
    #[serde(default, deserialize_with = "crate::duration::deserialize_opt")]
    pub tumbling: Option<Duration>,
    /// Sliding windows.
    pub sliding: Option<SlidingSpec>,
    /// Session windows.
    pub session: Option<SessionSpec>,
    /// Count windows: `count: N` (every N records of a key form a window)
    /// or `count: { size, slide }` (every `slide` records, the last `size`).
    /// Time plays no part; an incomplete tumbling one is never emitted.
    pub count: Option<CountSpec>,
    /// One window per key holding all its records, fired by its `trigger`.
    #[serde(default)]
    pub global: bool,
    /// When windows fire (event time by default).
    #[serde(default)]
    pub trigger: TriggerSpec,
    /// Shifts window starts (e.g. `-8h` is not expressible; use an offset below the size).
    #[serde(default, deserialize_with = "crate::duration::deserialize")]
    pub offset: Duration,
    /// How long after a window fired a late record still updates (and re-fires) it.
    #[serde(default, deserialize_with = "crate::duration::deserialize")]
    pub allowed_lateness: Duration,
    /// The side output records too late for all their windows go to
    /// (read as `NODE.<name>`); dropped and counted when absent.
    pub late_output: Option<String>,
}

/// Sliding windows: `size` long, one starting every `slide`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SlidingSpec {
    /// Window length.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub size: Duration,
    /// Distance between window starts.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub slide: Duration,
}

/// Count windows: `N` records, or the last `size` records every `slide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountSpec {
    /// Records per window.
    pub size: u64,
    /// Records between two firings (`size` for tumbling count windows).
    pub slide: u64,
}

impl<'de> Deserialize<'de> for CountSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Size(u64),
            Sliding { size: u64, slide: u64 },
        }
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a number N, or `{ size: N, slide: M }`"))?
        {
            Raw::Size(n) => Ok(CountSpec { size: n, slide: n }),
            Raw::Sliding { size, slide } => Ok(CountSpec { size, slide }),
        }
    }
}

/// When a window fires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TriggerSpec {
    /// When the watermark reaches the window's end (`event-time`).
    #[default]
    EventTime,
    /// Windows of processing time (the host's clock when a record
    /// arrives), fired when the clock reaches their end (`processing-time`).
    ProcessingTime,
    /// Every N records added to the window (`{ count: N }`), keeping its
    /// content (Flink's `CountTrigger`).
    Count(u64),
    /// Early firings every period of processing time while the window is
    /// open, then the event-time firing (`{ every: 10s }`).
    Every(Duration),
}

impl<'de> Deserialize<'de> for TriggerSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Count {
                count: u64,
            },
            Every {
                #[serde(deserialize_with = "crate::duration::deserialize")]
                every: Duration,
            },
        }
        let expected = "expected `event-time`, `processing-time`, `{ count: N }` or `{ every: DURATION }`";
        match Raw::deserialize(d).map_err(|_| D::Error::custom(expected))? {
            Raw::Name(n) if n == "event-time" => Ok(TriggerSpec::EventTime),
            Raw::Name(n) if n == "processing-time" => Ok(TriggerSpec::ProcessingTime),
            Raw::Name(n) => Err(D::Error::custom(format!("unknown trigger `{n}`: {expected}"))),
            Raw::Count { count } => Ok(TriggerSpec::Count(count)),
            Raw::Every { every } => Ok(TriggerSpec::Every(every)),
        }
    }
}

/// Session windows: a key's records closer than `gap` form one window.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Inactivity that ends a session.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub gap: Duration,
}

/// A built-in window aggregate: `count`, or `{sum|min|max|avg: /json/pointer}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateSpec {
    /// How many records.
    Count,
    /// The sum of a number field.
    Sum(String),
    /// The smallest value of a number field.
    Min(String),
    /// The largest value of a number field.
    Max(String),
    /// The mean of a number field.
    Avg(String),
}

impl<'de> Deserialize<'de> for AggregateSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Field(std::collections::BTreeMap<String, String>),
        }
        let expected = "expected `count`, or one of `{sum|min|max|avg: /json/pointer}`";
        match Raw::deserialize(d).map_err(|_| D::Error::custom(expected))? {
            Raw::Name(n) if n == "count" => Ok(AggregateSpec::Count),
            Raw::Field(m) if m.len() == 1 => {
                let (name, pointer) = m.into_iter().next().expect("one entry");
                match name.as_str() {
                    "sum" => Ok(AggregateSpec::Sum(pointer)),
                    "min" => Ok(AggregateSpec::Min(pointer)),
                    "max" => Ok(AggregateSpec::Max(pointer)),
                    "avg" => Ok(AggregateSpec::Avg(pointer)),
                    other => Err(D::Error::custom(format!("unknown aggregate `{other}`: {expected}"))),
                }
            }
            _ => Err(D::Error::custom(expected)),
        }
    }
}

/// An operator's resource limits; absent fields keep their defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Most linear memory of an instance (`"64MiB"`).
    #[serde(default, deserialize_with = "crate::bytes::deserialize_opt")]
    pub memory: Option<u64>,
    /// Longest a call may run.
    #[serde(default, deserialize_with = "crate::duration::deserialize_opt")]
    pub call_timeout: Option<Duration>,
    /// Fuel per call (roughly, Wasm instructions); unmetered when absent.
    pub fuel: Option<u64>,
    /// Most records one call may emit.
    pub max_emitted: Option<u64>,
    /// Most bytes the host copies out of one call's results (`"64MiB"`);
    /// the `memory` limit by default.
    #[serde(default, deserialize_with = "crate::bytes::deserialize_opt")]
    pub max_output: Option<u64>,
}

/// What happens to a record the plugin returns an error for. (A trap or a
/// limit always fails the task.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// The task fails (and the job restarts, with checkpoints).
    #[default]
    Fail,
    /// The record is skipped and counted (`records_failed`).
    Skip,
    /// The record goes, with the error, to the side output `errors`
    /// (consumed as `NODE.errors`), and is counted.
    DeadLetter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_follow_the_strategy() {
        let secs = Duration::from_secs;
        let mut r = RestartSpec {
            strategy: RestartStrategy::ExponentialBackoff,
            attempts: 5,
            delay: secs(1),
            max_delay: secs(5),
        };
        let delays: Vec<_> = (0..6).map(|n| r.delay_before(n)).collect();
        assert_eq!(delays, vec![Some(secs(1)), Some(secs(2)), Some(secs(4)), Some(secs(5)), Some(secs(5)), None]);
        r.strategy = RestartStrategy::FixedDelay;
        assert_eq!((r.delay_before(3), r.delay_before(5)), (Some(secs(1)), None));
        r.strategy = RestartStrategy::None;
        assert_eq!(r.delay_before(0), None);
    }
}

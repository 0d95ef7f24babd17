//! Runs Weir operator plugins: the wasmtime engine, the `weir:plugin`
//! bindings, component loading and one instance per operator task.
//!
//! Lifecycle in three phases: a [`PluginEngine`] links the host interfaces
//! once; [`PluginEngine::load`] compiles and validates a component against the
//! `operator` world ([`Plugin`], pre-linked); [`Plugin::instantiate`] creates a
//! cheap [`OperatorInstance`] per task. The task's keyed state
//! ([`weir_state::KeyedState`]) belongs to the runtime, which lends it to
//! every call: an instance can be replaced by another version's while the
//! state stays.
//!
//! ```no_run
//! use weir_state::{KeyedState, MemoryBackend};
//! use weir_wasm::{InitArgs, PluginEngine};
//!
//! let engine = PluginEngine::new().unwrap();
//! let plugin = engine.load_file("target/plugins/celsius.wasm".as_ref()).unwrap();
//! let mut state = KeyedState::new(Box::new(MemoryBackend::new(128)), 128, 0..128);
//! let mut op = plugin.instantiate("celsius-0/1").unwrap();
//! let args = InitArgs { node_id: "celsius".into(), config: "null".into(), subtask_index: 0, parallelism: 1, attempt: 0 };
//! let info = op.init(&args, &mut state).unwrap();
//! assert!(info.states.is_empty());
//! ```

pub mod cache;
mod convert;
mod guest_log;
mod host;
mod instance;
mod limits;
mod migration;
mod packed;
mod sandbox;
mod window_fn;
pub mod window_results;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

pub use convert::{batch_from_wit, batch_to_wit, effects_bytes};
pub use host::HostState;
pub use instance::{InitArgs, OperatorInstance};
pub use limits::{DirGrant, Grants, Limits, human_bytes};
pub use window_fn::{AggregatorInstance, WindowProcessorInstance, WindowRef};
pub use window_results::RecordFailure;

/// Bindings generated from `wit/operator.wit`.
#[allow(missing_docs)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "weir:plugin/operator",
        imports: { default: trappable },
    });
}

/// Bindings of the `aggregator` world (types shared with [`bindings`]).
#[allow(missing_docs)]
pub mod aggregator_bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "weir:plugin/aggregator",
        imports: { default: trappable },
        with: {
            "weir:plugin/types": crate::bindings::weir::plugin::types,
            "weir:plugin/logging": crate::bindings::weir::plugin::logging,
        },
    });
}

/// Bindings of the `window-processor` world (types shared with [`bindings`]).
#[allow(missing_docs)]
pub mod window_processor_bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "weir:plugin/window-processor",
        imports: { default: trappable },
        with: {
            "weir:plugin/types": crate::bindings::weir::plugin::types,
            "weir:plugin/logging": crate::bindings::weir::plugin::logging,
            "weir:plugin/windows": crate::aggregator_bindings::weir::plugin::windows,
        },
    });
}

pub use aggregator_bindings::weir::plugin::windows as wit_windows;
pub use bindings::weir::plugin::types as wit;

/// The `weir:plugin` world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Records and timers in, outputs and state changes out.
    Operator,
    /// An incremental window function (accumulators).
    Aggregator,
    /// A window function over all of a window's records.
    WindowProcessor,
}

impl World {
    /// The world's name in `weir:plugin`.
    pub fn name(self) -> &'static str {
        match self {
            World::Operator => "operator",
            World::Aggregator => "aggregator",
            World::WindowProcessor => "window-processor",
        }
    }

    /// The world a component's exports are meant for (an operator when
    /// nothing fits, so that errors name what an operator lacks).
    fn of(engine: &Engine, component: &Component) -> World {
        let exports: Vec<String> = component.component_type().exports(engine).map(|(n, _)| n.to_string()).collect();
        let has = |name: &str| exports.iter().any(|e| e == name);
        if has("create-accumulator") {
            World::Aggregator
        } else if has("process") && !has("on-timer") {
            World::WindowProcessor
        } else {
            World::Operator
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "weir:plugin/{}@{PLUGIN_API_VERSION}", self.name())
    }
}

/// Errors loading or calling a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The plugin's path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a valid Wasm component.
    #[error("{what} is not a valid Wasm component: {message}")]
    Invalid {
        /// The plugin's path or name.
        what: String,
        /// The validator's message.
        message: String,
    },
    /// A component, but not for the `weir:plugin` world it is meant for.
    #[error("{what} does not implement the {world} world: {message}")]
    WrongWorld {
        /// The plugin's path or name.
        what: String,
        /// The world it was checked against.
        world: World,
        /// What is missing or mistyped.
        message: String,
    },
    /// The guest trapped (a panic, `unreachable`, out of bounds access...).
    #[error("plugin trapped in `{call}`: {message}")]
    Trap {
        /// The export that trapped.
        call: &'static str,
        /// The trap and, when the guest printed one, its panic message.
        message: String,
    },
    /// The guest went past one of its limits (memory, call deadline, fuel).
    #[error("plugin went past a limit in `{call}`: {message}")]
    Limit {
        /// The export that was running.
        call: &'static str,
        /// Which limit, and by how much.
        message: String,
    },
    /// The guest returned an error.
    #[error("plugin failed in `{call}`: {message}")]
    Operator {
        /// The export that failed.
        call: &'static str,
        /// The guest's message.
        message: String,
    },
    /// The guest broke the contract (e.g. state declared with an unknown handle).
    #[error("plugin broke the weir:plugin contract: {0}")]
    Contract(String),
    /// Keyed state failed.
    #[error(transparent)]
    State(#[from] weir_state::StateError),
    /// The engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// `Result` with [`PluginError`].
pub type Result<T, E = PluginError> = std::result::Result<T, E>;

/// The `weir:plugin` version this host implements.
pub const PLUGIN_API_VERSION: &str = "0.1.0";

/// The `weir:plugin` interfaces a plugin may import.
const HOST_INTERFACES: [&str; 4] = ["types", "windows", "state", "logging"];

/// Refuses a component that imports what this host does not provide: another
/// `weir:plugin` version, an interface no host has, or anything but WASI.
fn check_imports(engine: &Engine, component: &Component, what: &str, world: World) -> Result<()> {
    let wrong = |message: String| PluginError::WrongWorld { what: what.to_string(), world, message };
    for (name, _) in component.component_type().imports(engine) {
        if let Some(rest) = name.strip_prefix("weir:plugin/") {
            let (interface, version) = rest.split_once('@').unwrap_or((rest, "(none)"));
            if version != PLUGIN_API_VERSION {
                return Err(wrong(format!(
                    "it imports `{name}`: it was built for weir:plugin@{version}, and this host supports weir:plugin@{PLUGIN_API_VERSION}"
                )));
            }
            if !HOST_INTERFACES.contains(&interface) {
                return Err(wrong(format!("it imports `{name}`, which this host does not provide")));
            }
        } else if !name.starts_with("wasi:") {
            return Err(wrong(format!("it imports `{name}`, which this host does not provide")));
        }
    }
    Ok(())
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is
/// dropped.
fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the wasm epoch ticker: call deadlines will not fire");
    }
}

/// Renders a wasmtime error with its causes on one line.
pub(crate) fn describe(error: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        // wasmtime puts a multi-line wasm backtrace in one of the causes.
        let first = text.lines().next().unwrap_or_default().trim().to_string();
        if first.starts_with("error while executing at wasm backtrace") || first.is_empty() {
            continue;
        }
        if !parts.contains(&first) {
            parts.push(first);
        }
    }
    parts.join(": ")
}

/// How often the engine's epoch advances: the resolution of call deadlines.
pub(crate) const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Engine settings.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Where compiled plugins are cached (`None`: no cache).
    pub cache: Option<PathBuf>,
    /// Meter fuel, so operators may set [`Limits::fuel`]. Costs some speed
    /// for every plugin of the engine.
    pub fuel: bool,
}

/// The shared wasmtime engine and the host interfaces linked once.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: Option<PathBuf>,
    fuel: bool,
}

impl PluginEngine {
    /// An engine with the host interfaces (`weir:plugin` imports and a WASI
    /// that grants nothing) linked, caching compiled plugins in
    /// [`cache::default_dir`].
    pub fn new() -> Result<Self> {
        Self::with_cache(cache::default_dir())
    }

    /// The same with a given compile cache directory (`None`: no cache).
    pub fn with_cache(cache: Option<PathBuf>) -> Result<Self> {
        Self::with_options(EngineOptions { cache, fuel: false })
    }

    /// An engine with the given options.
    pub fn with_options(options: EngineOptions) -> Result<Self> {
        let EngineOptions { cache, fuel } = options;
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // Call deadlines: a ticker thread advances the epoch; a call past
        // its deadline traps.
        config.epoch_interruption(true);
        config.consume_fuel(fuel);
        #[cfg(feature = "profiling")]
        if std::env::var_os("WEIR_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(describe(&e)))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| PluginError::Engine(describe(&e)))?;
        bindings::Operator::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Engine(describe(&e)))?;
        start_ticker(&engine);
        Ok(PluginEngine { engine, linker: Arc::new(linker), cache, fuel })
    }

    /// Whether the engine meters fuel.
    pub fn meters_fuel(&self) -> bool {
        self.fuel
    }

    /// Compiles and validates a plugin from a file.
    pub fn load_file(&self, path: &Path) -> Result<Plugin> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read { path: path.to_path_buf(), source })?;
        self.load(&bytes, &path.display().to_string())
    }

    /// Compiles (or finds in the cache) and validates a plugin; `what`
    /// names it in errors.
    pub fn load(&self, bytes: &[u8], what: &str) -> Result<Plugin> {
        let digest = cache::digest(bytes);
        let cached = self.cache.as_deref().and_then(|dir| cache::load(dir, &self.engine, &digest));
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(&self.engine, bytes)
                    .map_err(|e| PluginError::Invalid { what: what.to_string(), message: describe(&e) })?;
                if let Some(dir) = &self.cache {
                    cache::store(dir, &self.engine, &digest, &component);
                }
                component
            }
        };
        let world = World::of(&self.engine, &component);
        check_imports(&self.engine, &component, what, world)?;
        let wrong =
            |e: wasmtime::Error| PluginError::WrongWorld { what: what.to_string(), world, message: describe(&e) };
        let pre = self.linker.instantiate_pre(&component).map_err(wrong)?;
        let pre = match world {
            World::Operator => Pre::Operator(bindings::OperatorPre::new(pre).map_err(wrong)?),
            World::Aggregator => Pre::Aggregator(aggregator_bindings::AggregatorPre::new(pre).map_err(wrong)?),
            World::WindowProcessor => {
                Pre::WindowProcessor(window_processor_bindings::WindowProcessorPre::new(pre).map_err(wrong)?)
            }
        };
        Ok(Plugin { pre, name: what.to_string(), digest })
    }
}

#[derive(Clone)]
enum Pre {
    Operator(bindings::OperatorPre<HostState>),
    Aggregator(aggregator_bindings::AggregatorPre<HostState>),
    WindowProcessor(window_processor_bindings::WindowProcessorPre<HostState>),
}

/// A compiled, validated and pre-linked plugin.
#[derive(Clone)]
pub struct Plugin {
    pre: Pre,
    name: String,
    digest: String,
}

impl Plugin {
    /// The plugin's path or name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The world the plugin implements.
    pub fn world(&self) -> World {
        match self.pre {
            Pre::Operator(_) => World::Operator,
            Pre::Aggregator(_) => World::Aggregator,
            Pre::WindowProcessor(_) => World::WindowProcessor,
        }
    }

    /// The error for using this plugin as a `wanted` one.
    fn not_a(&self, wanted: World) -> PluginError {
        PluginError::WrongWorld {
            what: self.name.clone(),
            world: wanted,
            message: format!("it implements {}", self.world()),
        }
    }

    /// The hex SHA-256 of the component's bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// A new operator instance for one task (default limits, no grants).
    pub fn instantiate(&self, task: &str) -> Result<OperatorInstance> {
        self.instantiate_with(task, &Limits::default(), &Grants::default())
    }

    /// The same with given limits and grants.
    pub fn instantiate_with(&self, task: &str, limits: &Limits, grants: &Grants) -> Result<OperatorInstance> {
        match &self.pre {
            Pre::Operator(pre) => OperatorInstance::new(pre, task, limits, grants),
            _ => Err(self.not_a(World::Operator)),
        }
    }

    /// A new instance of an aggregator plugin for one task.
    pub fn instantiate_aggregator(&self, task: &str, limits: &Limits, grants: &Grants) -> Result<AggregatorInstance> {
        match &self.pre {
            Pre::Aggregator(pre) => AggregatorInstance::new(pre, task, limits, grants),
            _ => Err(self.not_a(World::Aggregator)),
        }
    }

    /// A new instance of a window-processor plugin for one task.
    pub fn instantiate_window_processor(
        &self,
        task: &str,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<WindowProcessorInstance> {
        match &self.pre {
            Pre::WindowProcessor(pre) => WindowProcessorInstance::new(pre, task, limits, grants),
            _ => Err(self.not_a(World::WindowProcessor)),
        }
    }
}

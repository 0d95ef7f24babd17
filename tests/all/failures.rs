//! Jobs that cannot run fail with a message naming the node and the cause.

use weir_runtime::{JobOptions, run_job};
use weir_spec::{Format, JobSpec};
use weir_tests::{plugin, repo};

fn spec(plugin_path: &str, config: &str) -> JobSpec {
    let input = repo().join("tests/scenarios/out-of-order/input.jsonl");
    let text = format!(
        "name: failing
sources:
  - id: readings
    type: file
    path: {input}
    key: /id
    timestamp: /timestamp
operators:
  - id: boom
    input: readings
    plugin: {plugin_path}
    config: {config}
sinks:
  - id: out
    type: blackhole
    input: boom
",
        input = input.display()
    );
    JobSpec::parse(&text, Format::Yaml).unwrap()
}

fn run(spec: &JobSpec) -> String {
    let engine = weir_wasm::PluginEngine::new().unwrap();
    match run_job(spec, &JobOptions::default(), &engine) {
        Ok(_) => panic!("the job should have failed"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_plugin_names_the_node() {
    let err = run(&spec("/nonexistent/boom.wasm", "null"));
    assert_eq!(
        err,
        "operator `boom`: cannot read plugin /nonexistent/boom.wasm: No such file or directory (os error 2)"
    );
}

#[test]
fn a_file_that_is_not_a_component_names_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"definitely not wasm").unwrap();
    let err = run(&spec(&garbage.display().to_string(), "null"));
    assert!(
        err.starts_with(&format!("operator `boom`: {} is not a valid Wasm component: ", garbage.display())),
        "{err}"
    );
}

#[test]
fn a_trapping_plugin_fails_its_task_with_the_panic_message() {
    let err = run(&spec(&plugin("trap-on").display().to_string(), "{panic_on: s2}"));
    assert!(err.starts_with("task boom-0/1 failed: plugin trapped in `process`: "), "{err}");
    assert!(err.contains("reading from s2 is cursed"), "{err}");
}

#[test]
fn a_guest_error_names_the_record() {
    let err = run(&spec(&plugin("trap-on").display().to_string(), "{error_on: s3}"));
    // s3 is the 9th line of the input: index 8 of the first batch.
    assert_eq!(err, "task boom-0/1 failed: plugin failed on record #8 of its batch: cannot handle s3");
}

#[test]
fn an_init_error_names_the_task() {
    let err = run(&spec(&plugin("trap-on").display().to_string(), "{fail_init: 'no such table'}"));
    assert_eq!(err, "task boom-0/1 failed: plugin failed in `init`: no such table");
}

#[test]
fn a_malformed_input_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":\"a\",\"timestamp\":1}\n{\"id\":\"b\"}\n").unwrap();
    let mut s = spec(&plugin("trap-on").display().to_string(), "null");
    let weir_spec::SourceConnector::File(f) = &mut s.sources[0].connector else { panic!("a file source") };
    f.paths = vec![input.clone()];
    let err = run(&s);
    assert_eq!(
        err,
        format!("task readings-0/1 failed: {} line 2: no integer timestamp (ms) at /timestamp", input.display())
    );
}

/// `spec` with the operator made a 5 s tumbling window.
fn window_spec(plugin_path: &str, config: &str) -> JobSpec {
    let mut spec = spec(plugin_path, config);
    let o = &mut spec.operators[0];
    o.key_by = Some("key".into());
    o.window = Some(weir_spec::WindowSpec { tumbling: Some(std::time::Duration::from_secs(5)), ..Default::default() });
    spec
}

#[test]
fn a_plugin_of_the_wrong_world_for_its_node_is_refused_with_both_worlds_named() {
    let celsius = plugin("celsius");
    assert_eq!(
        run(&window_spec(&celsius.display().to_string(), "null")),
        format!(
            "operator `boom`: the plugin of a window must implement weir:plugin/aggregator@0.1.0 or \
             weir:plugin/window-processor@0.1.0, and {} implements weir:plugin/operator@0.1.0",
            celsius.display()
        )
    );
    let average = plugin("average");
    assert_eq!(
        run(&spec(&average.display().to_string(), "null")),
        format!(
            "task boom-0/1 failed: {} does not implement the weir:plugin/operator@0.1.0 world: it implements \
             weir:plugin/aggregator@0.1.0",
            average.display()
        )
    );
}

#[test]
fn a_window_processor_error_fails_its_task_with_its_message() {
    let err = run(&window_spec(&plugin("window-collect").display().to_string(), "{fail_on: s2}"));
    assert_eq!(err, "task boom-0/1 failed: plugin failed in `process`: window-collect refuses the windows of key s2");
}

#[test]
fn a_built_in_aggregate_error_names_the_record() {
    // The readings' `/id` is no number to sum.
    let mut spec = window_spec("unused.wasm", "null");
    spec.operators[0].plugin = None;
    spec.operators[0].aggregate = Some(weir_spec::AggregateSpec::Sum("/id".into()));
    let err = run(&spec);
    assert_eq!(
        err,
        "task boom-0/1 failed: the window aggregate failed on record #0 of its batch: a record has no number at /id \
         (invalid JSON: invalid type: string \"s1\", expected f64 at line 1 column 10): \
         {\"id\":\"s1\",\"timestamp\":1000,\"temperature\":50}"
    );
}

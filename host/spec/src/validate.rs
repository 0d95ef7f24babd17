//! Consistency checks that serde cannot express, with the line of the
//! offending field.

use std::collections::{HashMap, HashSet};

use crate::{JobSpec, SpecError, split_input};

pub(crate) fn validate(spec: &JobSpec, text: &str) -> Result<(), SpecError> {
    let v = Validator { text };
    if spec.name.trim().is_empty() {
        return Err(v.top("name", "must not be empty"));
    }
    if spec.parallelism == 0 {
        return Err(v.top("parallelism", "must be at least 1"));
    }
    if !(1..=32768).contains(&spec.max_parallelism) {
        return Err(v.top("max_parallelism", "must be between 1 and 32768"));
    }
    if spec.batch_size == 0 {
        return Err(v.top("batch_size", "must be at least 1"));
    }
    if spec.channel_capacity == 0 {
        return Err(v.top("channel_capacity", "must be at least 1"));
    }
    if let Some(c) = &spec.checkpoint {
        if c.interval.is_zero() {
            return Err(v.top("checkpoint", "`interval` must be more than 0"));
        }
        if c.retain == 0 {
            return Err(v.top("checkpoint", "`retain` must be at least 1"));
        }
        if c.timeout.is_zero() {
            return Err(v.top("checkpoint", "`timeout` must be more than 0"));
        }
    }
    if spec.restart.is_some() && spec.checkpoint.is_none() {
        return Err(v.top("restart", "restarts resume from a checkpoint: set `checkpoint` too"));
    }
    if spec.sources.is_empty() {
        return Err(v.top("sources", "a job needs at least one source"));
    }
    if spec.sinks.is_empty() {
        return Err(v.top("sinks", "a job needs at least one sink"));
    }

    // Node ids: unique, simple.
    let mut kinds: HashMap<&str, &'static str> = HashMap::new();
    let ids = spec
        .sources
        .iter()
        .map(|s| (&s.id, "source", "sources"))
        .chain(spec.operators.iter().map(|o| (&o.id, "operator", "operators")))
        .chain(spec.sinks.iter().map(|s| (&s.id, "sink", "sinks")));
    for (id, kind, section) in ids {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(v.node(
                section,
                id,
                "id",
                format!("`{id}` is not a valid node id (use letters, digits, `-` and `_`)"),
            ));
        }
        if kinds.insert(id, kind).is_some() {
            return Err(v.node(section, id, "id", format!("node id `{id}` is used twice")));
        }
    }

    let check_parallelism = |section: &str, id: &str, p: Option<u32>| -> Result<(), SpecError> {
        let p = spec.parallelism_of(p);
        if p == 0 {
            return Err(v.node(section, id, "parallelism", "must be at least 1".into()));
        }
        if p > spec.max_parallelism {
            return Err(v.node(
                section,
                id,
                "parallelism",
                format!("{p} is above max_parallelism {}", spec.max_parallelism),
            ));
        }
        Ok(())
    };

    for s in &spec.sources {
        let err = |field: &str, msg: String| v.node("sources", &s.id, field, msg);
        check_parallelism("sources", &s.id, s.parallelism)?;
        s.check().map_err(|(field, message)| err(field, message))?;
        if s.watermark.interval.is_zero() && !s.watermark.punctuated {
            return Err(err("watermark", "`interval` must be positive".into()));
        }
    }

    let operators: HashSet<&str> = spec.operators.iter().map(|o| o.id.as_str()).collect();
    let check_input = |section: &str, id: &str, input: &str| -> Result<(), SpecError> {
        let (node, side) = split_input(input);
        match kinds.get(node) {
            None => Err(v.node(section, id, "input", format!("unknown node `{node}`"))),
            Some(&"sink") => Err(v.node(section, id, "input", format!("`{node}` is a sink and has no output"))),
            Some(_) if node == id => Err(v.node(section, id, "input", "a node cannot read its own output".into())),
            Some(_) if side.is_some() && !operators.contains(node) => {
                Err(v.node(section, id, "input", format!("`{input}`: only operators have side outputs")))
            }
            Some(_) if side == Some("") => {
                Err(v.node(section, id, "input", format!("`{input}`: empty side output name")))
            }
            Some(_) => Ok(()),
        }
    };
    for o in &spec.operators {
        check_parallelism("operators", &o.id, o.parallelism)?;
        let inputs = o.input.to_vec();
        if inputs.is_empty() {
            return Err(v.node("operators", &o.id, "input", "needs at least one input".into()));
        }
        for input in &inputs {
            check_input("operators", &o.id, input)?;
        }
        if let Some(k) = &o.key_by
            && k != "key"
            && !k.starts_with('/')
        {
            return Err(v.node(
                "operators",
                &o.id,
                "key_by",
                format!("`{k}` is neither `key` (the record key) nor a JSON pointer such as `/id`"),
            ));
        }
        let err = |field: &str, message: &str| Err(v.node("operators", &o.id, field, message.to_string()));
        if let Some(Some(Err(message))) = o.plugin.as_deref().map(crate::PluginRef::of_path) {
            return err("plugin", &message);
        }
        match (&o.plugin, &o.window, &o.aggregate) {
            (Some(p), None, None) if p.as_os_str().is_empty() => {
                return err("plugin", "must be a path to a .wasm component");
            }
            (Some(_), None, None) => {}
            (None, None, _) => {
                return err("plugin", "an operator needs a `plugin` (or a `window` with an `aggregate`)");
            }
            (Some(_), Some(_), Some(_)) => {
                return err(
                    "aggregate",
                    "a window computes either a built-in `aggregate` or its `plugin` (an aggregator or window processor), not both",
                );
            }
            (_, None, Some(_)) => return err("aggregate", "only applies to a `window`"),
            (None, Some(_), None) => {
                return err(
                    "aggregate",
                    "a window needs an `aggregate` (count, or {sum|min|max|avg: /json/pointer}) or a `plugin`",
                );
            }
            (plugin, Some(w), a) => {
                if plugin.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                    return err("plugin", "must be a path to a .wasm component");
                }
                if o.key_by.is_none() {
                    return err("key_by", "a window is per key: set `key_by`");
                }
                use crate::TriggerSpec;
                let size = match (w.tumbling, &w.sliding, &w.session, w.count, w.global) {
                    (Some(size), None, None, None, false) => size,
                    (None, Some(s), None, None, false) if s.slide.is_zero() || s.slide > s.size => {
                        return err("window", "`sliding.slide` must be more than 0 and at most `size`");
                    }
                    (None, Some(s), None, None, false) => s.slide,
                    (None, None, Some(_), None, false) if !w.offset.is_zero() => {
                        return err("window", "`offset` does not apply to session windows");
                    }
                    (None, None, Some(s), None, false) => s.gap,
                    (None, None, None, Some(c), false) if c.size == 0 || c.slide == 0 => {
                        return err("window", "`count` sizes must be at least 1");
                    }
                    (None, None, None, Some(_), false) | (None, None, None, None, true)
                        if !w.offset.is_zero() || !w.allowed_lateness.is_zero() || w.late_output.is_some() =>
                    {
                        return err(
                            "window",
                            "count and global windows ignore time: no `offset`, `allowed_lateness` or `late_output`",
                        );
                    }
                    (None, None, None, Some(_), false) if w.trigger != TriggerSpec::EventTime => {
                        return err("trigger", "count windows fire by their count: no `trigger`");
                    }
                    (None, None, None, None, true)
                        if !matches!(w.trigger, TriggerSpec::Count(_) | TriggerSpec::Every(_)) =>
                    {
                        return err(
                            "trigger",
                            "a global window needs a `trigger`: `{ count: N }` or `{ every: DURATION }`",
                        );
                    }
                    (None, None, None, Some(_), false) | (None, None, None, None, true) => {
                        std::time::Duration::from_millis(1)
                    }
                    _ => {
                        return err(
                            "window",
                            "set exactly one of `tumbling: SIZE`, `sliding: {size, slide}`, `session: {gap}`, `count: N` or `global: true`",
                        );
                    }
                };
                match w.trigger {
                    TriggerSpec::Count(0) => return err("trigger", "`count` must be at least 1"),
                    TriggerSpec::Every(d) if d.is_zero() => return err("trigger", "`every` must be more than 0"),
                    TriggerSpec::ProcessingTime if !w.allowed_lateness.is_zero() || w.late_output.is_some() => {
                        return err(
                            "trigger",
                            "processing-time windows are never late: no `allowed_lateness` or `late_output`",
                        );
                    }
                    _ => {}
                }
                if size.is_zero() {
                    return err("window", "the window size must be more than 0");
                }
                if w.offset >= size {
                    return err("window", "`offset` must be less than the window size (or slide)");
                }
                if let Some(
                    crate::AggregateSpec::Sum(p)
                    | crate::AggregateSpec::Min(p)
                    | crate::AggregateSpec::Max(p)
                    | crate::AggregateSpec::Avg(p),
                ) = a
                    && !p.starts_with('/')
                {
                    return err("aggregate", &format!("`{p}` is not a JSON pointer such as `/temperature`"));
                }
            }
        }
        if o.limits.memory.is_some_and(|m| !(1 << 20..=4 << 30).contains(&m)) {
            return Err(v.node("operators", &o.id, "limits", "`memory` must be between 1MiB and 4GiB".into()));
        }
        if o.limits.call_timeout.is_some_and(|t| t.is_zero()) {
            return Err(v.node("operators", &o.id, "limits", "`call_timeout` must be more than 0".into()));
        }
        if o.limits.max_output.is_some_and(|m| m < 1 << 10) {
            return Err(v.node("operators", &o.id, "limits", "`max_output` must be at least 1KiB".into()));
        }
        if o.limits.fuel == Some(0) || o.limits.max_emitted == Some(0) {
            return Err(v.node("operators", &o.id, "limits", "`fuel` and `max_emitted` must be at least 1".into()));
        }
    }
    // `NODE.errors` carries dead letters: only with `on_error: dead-letter`.
    let readers = spec.operators.iter().map(|o| ("operators", &o.id, o.input.to_vec()));
    for (section, id, inputs) in readers.chain(spec.sinks.iter().map(|s| ("sinks", &s.id, s.input.to_vec()))) {
        for input in inputs {
            if let (node, Some("errors")) = split_input(&input)
                && spec.operators.iter().any(|o| o.id == node && o.on_error != crate::OnError::DeadLetter)
            {
                return Err(v.node(
                    section,
                    id,
                    "input",
                    format!("`{input}` carries dead letters only when `{node}` has `on_error: dead-letter`"),
                ));
            }
        }
    }
    for s in &spec.sinks {
        check_parallelism("sinks", &s.id, s.parallelism)?;
        let inputs = s.input.to_vec();
        if inputs.is_empty() {
            return Err(v.node("sinks", &s.id, "input", "needs at least one input".into()));
        }
        for input in &inputs {
            check_input("sinks", &s.id, input)?;
        }
        s.check(spec.checkpoint.is_some()).map_err(|(field, message)| v.node("sinks", &s.id, field, message))?;
    }

    // No cycles among operators.
    let deps: HashMap<&str, Vec<&str>> = spec
        .operators
        .iter()
        .map(|o| {
            let ups = o.input.to_vec();
            let ups = ups.iter().filter_map(|i| operators.get(split_input(i).0).copied()).collect();
            (o.id.as_str(), ups)
        })
        .collect();
    let mut done: HashSet<&str> = HashSet::new();
    for o in &spec.operators {
        let mut path = Vec::new();
        if let Some(cycle) = find_cycle(o.id.as_str(), &deps, &mut done, &mut path) {
            return Err(v.node(
                "operators",
                cycle,
                "input",
                format!("the operators form a cycle: {}", path.join(" -> ")),
            ));
        }
    }
    Ok(())
}

fn find_cycle<'a>(
    node: &'a str,
    deps: &HashMap<&'a str, Vec<&'a str>>,
    done: &mut HashSet<&'a str>,
    path: &mut Vec<&'a str>,
) -> Option<&'a str> {
    if done.contains(node) {
        return None;
    }
    if path.contains(&node) {
        path.push(node);
        return Some(node);
    }
    path.push(node);
    for dep in deps.get(node).into_iter().flatten() {
        if let Some(c) = find_cycle(dep, deps, done, path) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node);
    None
}

struct Validator<'t> {
    text: &'t str,
}

impl Validator<'_> {
    fn top(&self, field: &str, message: &str) -> SpecError {
        let line = find_key_line(self.text, 0, field, false);
        SpecError::Invalid { field: field.to_string(), message: message.to_string(), line }
    }

    fn node(&self, section: &str, id: &str, field: &str, message: String) -> SpecError {
        let id_line = find_id_line(self.text, id);
        let line = id_line.and_then(|start| find_key_line(self.text, start, field, true)).or(id_line.map(|l| l + 1));
        SpecError::Invalid { field: format!("{section} `{id}`: field `{field}`"), message, line }
    }
}

/// The 0-based index of the line holding `id: <id>` (YAML) or `"id": "<id>"` (JSON).
fn find_id_line(text: &str, id: &str) -> Option<usize> {
    text.lines().position(|line| {
        let t = line.trim_start().trim_start_matches("- ").trim_start().trim_start_matches('{').trim_start();
        let Some(rest) = t.strip_prefix("id:").or_else(|| t.strip_prefix("\"id\":")) else { return false };
        let value = rest.trim().trim_end_matches(',').trim_end_matches('}').trim();
        value.trim_matches(|c| c == '"' || c == '\'') == id
    })
}

/// The 1-based line of key `field` at or after line `start`, searching only
/// the node's own block when `within_node` (stops at the next `id:`).
fn find_key_line(text: &str, start: usize, field: &str, within_node: bool) -> Option<usize> {
    let yaml = format!("{field}:");
    let json = format!("\"{field}\":");
    for (i, line) in text.lines().enumerate().skip(start) {
        let t = line.trim_start().trim_start_matches("- ").trim_start().trim_start_matches('{').trim_start();
        if within_node && i > start && (t.starts_with("id:") || t.starts_with("\"id\":")) {
            return None;
        }
        if t.starts_with(&yaml)
            || t.starts_with(&json)
            || line.contains(&format!(", {json}"))
            || line.contains(&format!(", {yaml}"))
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::{Format, JobSpec};

    const BASE: &str = "name: t
sources:
  - id: readings
    type: generator
    generator: sensors
    events: 10
operators:
  - id: avg
    input: readings
    plugin: x.wasm
    key_by: /id
sinks:
  - id: out
    type: stdout
    input: avg
";

    fn err(text: &str) -> String {
        JobSpec::parse(text, Format::Yaml).unwrap_err().to_string()
    }

    #[test]
    fn accepts_a_valid_spec() {
        let spec = JobSpec::parse(BASE, Format::Yaml).unwrap();
        assert_eq!(spec.operators[0].key_by(), Some(crate::KeyBy::Pointer("/id".into())));
    }

    #[test]
    fn unknown_input_names_field_and_line() {
        assert_eq!(
            err(&BASE.replace("input: avg", "input: nope")),
            "invalid job spec at line 15: sinks `out`: field `input`: unknown node `nope`"
        );
    }

    #[test]
    fn foreign_fields_are_refused() {
        assert_eq!(
            err(&BASE.replace("events: 10", "events: 10\n    path: x.jsonl")),
            "invalid job spec at line 7: sources `readings`: field `path`: does not apply to a `generator` source"
        );
    }

    #[test]
    fn duplicate_ids_and_cycles() {
        assert!(err(&BASE.replace("id: out", "id: avg")).contains("node id `avg` is used twice"));
        let cyclic = BASE.replace("input: readings", "input: [readings, b]")
            + "  - id: sink2\n    type: blackhole\n    input: b\n";
        let cyclic = cyclic.replace("sinks:\n", "  - id: b\n    input: avg\n    plugin: y.wasm\nsinks:\n");
        assert!(err(&cyclic).contains("the operators form a cycle: avg -> b -> avg"), "{}", err(&cyclic));
    }

    #[test]
    fn windows_and_triggers_are_checked() {
        let window =
            |w: &str| BASE.replace("    plugin: x.wasm\n", &format!("    window: {w}\n    aggregate: count\n"));
        let ok = |w: &str| JobSpec::parse(&window(w), Format::Yaml).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(ok("{ tumbling: 5s, trigger: { every: 1s } }"), Ok(()));
        assert_eq!(ok("{ global: true, trigger: { count: 10 } }"), Ok(()));
        assert_eq!(ok("{ count: { size: 10, slide: 5 } }"), Ok(()));
        assert_eq!(ok("{ session: { gap: 1s }, trigger: processing-time }"), Ok(()));
        let e = err(&window("{ global: true }"));
        assert!(e.ends_with("a global window needs a `trigger`: `{ count: N }` or `{ every: DURATION }`"), "{e}");
        let e = err(&window("{ tumbling: 5s, global: true, trigger: { count: 2 } }"));
        assert!(e.contains("set exactly one of"), "{e}");
        let e = err(&window("{ count: 5, trigger: { count: 2 } }"));
        assert!(e.ends_with("count windows fire by their count: no `trigger`"), "{e}");
        let e = err(&window("{ tumbling: 5s, trigger: processing-time, allowed_lateness: 1s }"));
        assert!(e.ends_with("processing-time windows are never late: no `allowed_lateness` or `late_output`"), "{e}");
        let e = err(&window("{ tumbling: 5s, trigger: { count: 0 } }"));
        assert!(e.ends_with("`count` must be at least 1"), "{e}");
        let e = err(&window("{ tumbling: 5s, trigger: sometimes }"));
        assert!(e.contains("unknown trigger `sometimes`"), "{e}");
        let e = err(&window("{ count: { size: 0, slide: 1 } }"));
        assert!(e.ends_with("`count` sizes must be at least 1"), "{e}");
        let both = window("{ tumbling: 5s }").replace("aggregate: count", "aggregate: count\n    plugin: x.wasm");
        assert!(err(&both).ends_with("not both"), "{}", err(&both));
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let e = err(&BASE.replace("events: 10", "events: ten"));
        assert!(e.contains("sources[0].events: invalid type"), "{e}");
        assert!(e.contains("line 6"), "{e}");
    }

    #[test]
    fn json_specs_parse_the_same() {
        let json = r#"{"name":"t","sources":[{"id":"r","type":"generator","generator":"sensor-bench","events":5,
"watermark":{"max_out_of_orderness":"1s","interval":100}}],"sinks":[{"id":"o","type":"blackhole","input":"r"}]}"#;
        let spec = JobSpec::parse(json, Format::Json).unwrap();
        assert_eq!(spec.sources[0].watermark.max_out_of_orderness, std::time::Duration::from_secs(1));
        assert_eq!(spec.sources[0].watermark.interval, std::time::Duration::from_millis(100));
    }
}

//! `window-collect` (test plugin): a [`ProcessWindow`] that emits, for each
//! fired window, its bounds and every record it holds in arrival order:
//! `{"key":"a","window_start":0,"window_end":5000,"records":[{"t":1000,"v":{...}}]}`.
//! With config `{"fail_on": "KEY"}` it fails on that key's windows.

use weir_sdk::{ProcessWindow, Record, Result, Window, WindowInit, WindowOutput, bail, export_process_window};

struct Collect {
    fail_on: Option<String>,
}

impl ProcessWindow for Collect {
    fn init(ctx: &WindowInit) -> Result<Self> {
        let config: Option<serde_json::Value> = ctx.config()?;
        let fail_on = config.as_ref().and_then(|c| c.get("fail_on")).and_then(|k| k.as_str()).map(String::from);
        Ok(Collect { fail_on })
    }

    fn process(&mut self, window: &Window<'_>, records: &[Record<'_>], out: &mut WindowOutput) -> Result<()> {
        let key = window.key_str();
        if self.fail_on.as_deref() == Some(&*key) {
            bail!("window-collect refuses the windows of key {key}");
        }
        let records: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                let v = serde_json::from_slice(r.value)
                    .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(r.value).into_owned()));
                serde_json::json!({ "t": r.timestamp, "v": v })
            })
            .collect();
        out.emit_json(&serde_json::json!({
            "key": key,
            "window_start": window.start,
            "window_end": window.end,
            "records": records,
        }))
    }
}

export_process_window!(Collect);

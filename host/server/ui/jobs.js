// The jobs list, and submitting a job spec.
import { get, call } from "./api.js";
import { h, replace, rate, duration, time, stateChip, show, result } from "./dom.js";

export function jobsPage(root, ctx) {
  const tbody = h("tbody", {});
  const table = h("div", { class: "table-wrap" }, h("table", { "aria-label": "Jobs" },
    h("thead", {}, h("tr", {},
      h("th", {}, "Job"), h("th", {}, "State"), h("th", { class: "num" }, "Uptime"),
      h("th", { class: "num" }, "In/s"), h("th", { class: "num" }, "Out/s"),
      h("th", { class: "num" }, "Restarts"), h("th", { class: "num" }, "Failures"), h("th", {}, "Submitted"))),
    tbody));
  replace(root, h("h1", {}, "Jobs"), table, submitForm(ctx));
  return ctx.poll(2000, async () => {
    const jobs = await get("/api/v1/jobs");
    jobs.reverse();
    replace(tbody, jobs.length ? jobs.map((j) => h("tr", { "data-job": j.id },
      h("td", {}, h("a", { href: `#/jobs/${j.id}` }, j.name), h("div", { class: "muted mono" }, j.id.slice(0, 12))),
      h("td", {}, stateChip(j.state, j.phase)),
      h("td", { class: "num" }, j.uptime_ms === null ? "–" : duration(j.uptime_ms)),
      h("td", { class: "num" }, rate(j.records_in_per_s)),
      h("td", { class: "num" }, rate(j.records_out_per_s)),
      h("td", { class: "num" }, j.restarts),
      h("td", { class: "num" }, j.failures),
      h("td", {}, time(j.submitted_at)))) :
      h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No jobs yet: submit one below.")));
  });
}

function submitForm(ctx) {
  const spec = h("textarea", { id: "spec", name: "spec", spellcheck: "false",
    placeholder: "name: my-job\nsources: …\noperators: …\nsinks: …" });
  const file = h("input", { id: "spec-file", type: "file", accept: ".yaml,.yml,.json" });
  const out = result();
  const lines = h("div", { class: "lines", hidden: true, "aria-label": "The spec, at the error" });
  file.addEventListener("change", async () => {
    if (file.files[0]) spec.value = await file.files[0].text();
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Submit job");
  const form = h("form", { class: "panel", "aria-labelledby": "submit-title" },
    h("h2", { id: "submit-title" }, "Submit a job"),
    h("p", { class: "muted" }, "Paste a job spec (YAML or JSON) or pick a file. Plugins are named by version: ",
      h("code", {}, "plugin: celsius@1.0.0"), "."),
    h("label", { for: "spec" }, "Spec"), spec,
    h("div", { class: "actions" }, h("label", { for: "spec-file" }, "or a file: "), file, submit),
    out, lines);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    lines.hidden = true;
    const text = spec.value;
    if (!text.trim()) return show(out, "error", "The spec is empty.");
    const type = text.trimStart().startsWith("{") ? "application/json" : "application/yaml";
    submit.disabled = true;
    try {
      const job = await call("POST", "/api/v1/jobs", text, type);
      show(out, "ok", `Submitted ${job.name} (${job.id}).`);
      ctx.go(`#/jobs/${job.id}`);
    } catch (e) {
      show(out, "error", `${e.code}: ${e.message}`);
      const m = /line (\d+)/.exec(e.message);
      if (m) showLine(lines, text, Number(m[1]));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// The spec with line `bad` marked, scrolled into view.
function showLine(lines, text, bad) {
  const rows = text.split("\n").map((l, i) => h("code", { class: i + 1 === bad ? "bad" : null }, l || " "));
  replace(lines, rows);
  lines.hidden = false;
  rows[bad - 1]?.scrollIntoView({ block: "nearest" });
}

// One job: its graph with live figures, charts, actions (savepoint, stop,
// cancel, upgrade a node), checkpoints, version history and failures.
import { get, post, ApiError } from "./api.js";
import {
  h, replace, rate, count, bytes, duration, time, watermark, stateChip, actionButton, show, result,
} from "./dom.js";
import { dag } from "./dag.js";
import { chart } from "./charts.js";

const SAMPLES = 120;

export function jobPage(root, ctx, id) {
  const head = h("div", {});
  const notice = h("div", {});
  const charts = h("div", { class: "charts" });
  const graph = h("div", { class: "dag panel", "aria-label": "Job graph" });
  const nodes = h("tbody", {});
  const checkpoints = h("tbody", {});
  const history = h("tbody", {});
  const failures = h("div", {});
  const out = result();
  const upgrade = upgradeForm(id);
  const series = { in: [], out: [] };
  const table = (label, cols, body) => h("div", { class: "table-wrap" }, h("table", { "aria-label": label },
    h("thead", {}, h("tr", {}, cols.map(([c, num]) => h("th", { class: num ? "num" : null }, c)))), body));

  replace(root,
    h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
    head, notice,
    h("div", { class: "actions", id: "job-actions", role: "group", "aria-label": "Job actions" },
      actionButton("Take savepoint", { id: "savepoint" }, out, async () => {
        const sp = await post(`/api/v1/jobs/${id}/savepoints`, { stop: false });
        return `Savepoint ${sp.name} taken at checkpoint ${sp.checkpoint_id} (${bytes(sp.bytes)}).`;
      }),
      actionButton("Stop with savepoint", { id: "stop" }, out, async () => {
        const sp = await post(`/api/v1/jobs/${id}/savepoints`, { stop: true });
        return `Stopped at savepoint ${sp.name}.`;
      }),
      actionButton("Cancel job", { id: "cancel", class: "danger" }, out, async () => {
        const job = await post(`/api/v1/jobs/${id}/cancel`);
        return `Job ${job.name} is ${job.state}.`;
      })),
    out,
    h("h2", {}, "Graph"), graph,
    charts,
    h("h2", {}, "Nodes"),
    table("Nodes", [["Node"], ["Task"], ["Plugin"], ["In", 1], ["Out", 1], ["Side out", 1], ["In/s", 1], ["Out/s", 1],
      ["Watermark"], ["Lag", 1], ["Back-pressure", 1], ["Failed", 1], ["Limits"]], nodes),
    upgrade.form,
    h("h2", {}, "Checkpoints"),
    table("Checkpoints", [["Id", 1], ["Kind"], ["Status"], ["At"], ["Duration", 1], ["Alignment", 1],
      ["Size", 1], ["Incremental", 1]], checkpoints),
    h("h2", {}, "Versions"),
    table("Version history", [["At"], ["Node"], ["From"], ["To"], ["Checkpoint", 1], ["Outcome"]], history),
    h("h2", {}, "Failures"), failures);

  return ctx.poll(1000, async () => {
    let job, cps;
    try {
      [job, cps] = await Promise.all([get(`/api/v1/jobs/${id}`), get(`/api/v1/jobs/${id}/checkpoints`)]);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        replace(root, h("h1", {}, "No such job"), h("p", { class: "notice failed" }, e.message),
          h("p", {}, h("a", { href: "#/jobs" }, "See every job")));
        return "stop";
      }
      throw e;
    }
    const sources = job.nodes.filter((n) => n.role === "source");
    const sinks = job.nodes.filter((n) => n.role === "sink");
    push(series.in, sources.reduce((a, n) => a + n.records_out_per_s, 0));
    push(series.out, sinks.reduce((a, n) => a + n.records_in_per_s, 0));
    replace(head, h("h1", {}, job.name, " ", stateChip(job.state, job.phase)),
      h("dl", { class: "kv" },
        kv("Id", h("span", { class: "mono" }, job.id)), kv("Submitted", time(job.submitted_at)),
        kv("Uptime", job.uptime_ms === null ? "–" : duration(job.uptime_ms)), kv("Restarts", job.restarts),
        kv("Resumed", job.resumed), kv("Checkpoints", job.checkpoints ?
          `${job.checkpoints.completed} done, ${job.checkpoints.aborted} aborted` : "–"),
        job.ended_at ? kv("Ended", time(job.ended_at)) : null));
    replace(notice, jobNotice(job));
    // Actions and live charts only while it runs; what it did stays readable.
    const live = job.state === "running";
    root.querySelector("#job-actions").hidden = !live;
    charts.hidden = !live;
    replace(graph, dag(job));
    replace(charts,
      chart("Records per second", [{ name: "in", values: series.in }, { name: "out", values: series.out }], rate),
      chart("Checkpoint duration (ms)", [{ name: "last", values: cps.filter((c) => c.status === "completed")
        .slice(-SAMPLES).map((c) => c.duration_ms) }], (x) => `${x}`));
    replace(nodes, job.nodes.map((n) => h("tr", { "data-node": n.id },
      h("th", { scope: "row" }, n.id, " ", h("span", { class: "chip" }, `${n.role} ×${n.parallelism}`)),
      h("td", {}, n.task),
      h("td", { class: "mono" }, n.plugin || "–"),
      h("td", { class: "num" }, count(n.records_in)),
      h("td", { class: "num" }, count(n.records_out)),
      h("td", { class: "num", title: "records on side outputs (dead letters go to `errors`)" }, count(n.side_out)),
      h("td", { class: "num" }, rate(n.records_in_per_s)),
      h("td", { class: "num" }, rate(n.records_out_per_s)),
      h("td", { class: "mono" }, watermark(n.watermark)),
      h("td", { class: "num" }, n.watermark_lag_ms === null ? "–" : duration(n.watermark_lag_ms)),
      h("td", { class: "num" }, `${Math.round(n.backpressured_ms_per_s)} ms/s`),
      h("td", { class: "num" }, count((n.counters || {}).records_failed || 0)),
      h("td", { class: "muted" }, n.limits ? limits(n.limits) : "–"))));
    replace(checkpoints, cps.length ? cps.slice().reverse().slice(0, 30).map((c) => h("tr", {},
      h("td", { class: "num" }, c.id), h("td", {}, c.kind),
      h("td", {}, c.status === "aborted" ? h("span", { class: "state failed", title: c.reason }, "aborted") : "completed"),
      h("td", {}, time(c.at)), h("td", { class: "num" }, `${c.duration_ms} ms`),
      h("td", { class: "num" }, `${c.alignment_ms} ms`), h("td", { class: "num" }, bytes(c.bytes)),
      h("td", { class: "num" }, bytes(c.incremental_bytes)))) :
      h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No checkpoint yet.")));
    replace(history, job.history.slice().reverse().map((v) => h("tr", {},
      h("td", {}, time(new Date(v.at_ms).toISOString())), h("td", {}, v.node), h("td", { class: "mono" }, v.from || "–"),
      h("td", { class: "mono" }, v.to), h("td", { class: "num" }, v.checkpoint ?? "–"),
      h("td", {}, v.outcome, v.message ? h("div", { class: "muted" }, v.message) : null))));
    replace(failures, job.failures.length ? h("ol", {}, job.failures.map((f) => h("li", {},
      h("span", { class: "muted" }, time(new Date(f.at_ms).toISOString()), " "), h("code", {}, f.code), ": ",
      f.message))) : h("p", { class: "muted" }, "None."));
    upgrade.update(job);
  });
}

function push(values, v) {
  values.push(v);
  if (values.length > SAMPLES) values.shift();
}

function kv(k, v) {
  return h("div", {}, h("dt", {}, k), h("dd", {}, v));
}

function limits(l) {
  return [`memory ${bytes(l.memory_bytes)}`, `call ${duration(l.call_timeout_ms)}`,
    l.fuel ? `fuel ${count(l.fuel)}` : null, `emit ≤ ${count(l.max_emitted)}`].filter(Boolean).join(" · ");
}

function jobNotice(job) {
  const last = job.failures.at(-1);
  if (job.state === "failed") {
    return h("p", { class: "notice failed", role: "alert" }, "This job failed",
      last ? [": ", h("code", {}, last.code), " ", last.message] : ".");
  }
  if (job.phase === "restarting" && last) {
    return h("p", { class: "notice" }, `Restarting after a failure (restart ${job.restarts}): `, last.message);
  }
  if (job.state !== "running") return h("p", { class: "notice" }, `This job has ended: ${job.state}.`);
  return null;
}

// Upgrade an operator node to another version of its plugin, in place.
function upgradeForm(id) {
  const node = h("select", { id: "upgrade-node", name: "node" });
  const version = h("select", { id: "upgrade-version", name: "version" });
  const out = result();
  const button = h("button", { type: "submit", class: "primary" }, "Upgrade");
  const form = h("form", { class: "panel", "aria-labelledby": "upgrade-title" },
    h("h2", { id: "upgrade-title" }, "Upgrade a node"),
    h("p", { class: "muted" }, "Switches the operator to another version at a checkpoint barrier, keeping its state; " +
      "a version that would not run there is refused and the old one runs on."),
    h("div", { class: "row" }, h("label", {}, "Node", node), h("label", {}, "Version", version), button), out);
  let job = null, shown = "";
  async function versions() {
    const pinned = job && job.plugins[node.value];
    if (!pinned) return replace(version);
    const list = await get(`/api/v1/plugins/${encodeURIComponent(pinned.name)}/versions`);
    const keep = version.value;
    replace(version, list.map((v) => h("option", { value: `${v.name}@${v.version}` },
      `${v.name}@${v.version}${v.version === pinned.version ? " (running)" : ""}`)));
    if ([...version.options].some((o) => o.value === keep)) version.value = keep;
    else if (version.options.length) version.selectedIndex = version.options.length - 1;
  }
  node.addEventListener("change", () => versions().catch((e) => show(out, "error", e.message)));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    try {
      const r = await post(`/api/v1/jobs/${id}/nodes/${encodeURIComponent(node.value)}/upgrade`,
        { plugin: version.value });
      show(out, "ok", `Upgraded ${r.node} from ${r.from} to ${r.to} at checkpoint ${r.checkpoint}.`);
      await versions();
    } catch (e) {
      show(out, "error", `${e.code}: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });
  form.addEventListener("focusin", () => versions().catch(() => {}), { once: true });
  return {
    form,
    update(next) {
      job = next;
      form.hidden = job.state !== "running";
      const ops = Object.keys(job.plugins);
      const key = ops.map((o) => `${o}=${job.plugins[o].version}`).join(",");
      if (key === shown) return;
      shown = key;
      const keep = node.value;
      replace(node, ops.map((o) => h("option", { value: o }, o)));
      if (ops.includes(keep)) node.value = keep;
      versions().catch((e) => show(out, "error", e.message));
    },
  };
}

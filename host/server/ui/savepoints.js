// Savepoints as their lineage tree (each under the savepoint its job
// started from), forking A/B jobs from one, and deleting.
import { get, post, call } from "./api.js";
import { h, replace, bytes, time, show, result, actionButton } from "./dom.js";

export function savepointsPage(root, ctx) {
  const tree = h("div", { class: "panel" });
  const out = result();
  const fork = forkForm(ctx);
  replace(root, h("h1", {}, "Savepoints"),
    h("p", { class: "muted" }, "Savepoints are never deleted by the server. A job starts from one with ",
      h("code", {}, "savepoint: NAME"), " in its spec."),
    out, tree, fork.form);
  return ctx.poll(3000, async () => {
    const list = await get("/api/v1/savepoints");
    fork.update(list);
    if (!list.length) return replace(tree, h("p", { class: "muted" }, "No savepoints yet: take one from a job's page."));
    const names = new Set(list.map((s) => s.name));
    const children = new Map();
    for (const s of list) {
      const parent = s.parent && names.has(s.parent) ? s.parent : "";
      (children.get(parent) || children.set(parent, []).get(parent)).push(s);
    }
    const branch = (parent) => h("ul", { class: parent ? "tree" : "tree root" }, (children.get(parent) || []).map((s) =>
      h("li", { "data-savepoint": s.name },
        h("strong", { class: "mono" }, s.name), " ",
        h("span", { class: "muted" }, `${s.job} · checkpoint ${s.checkpoint_id} · ${time(s.taken_at)} · ${bytes(s.bytes)}`),
        h("div", { class: "muted mono" }, Object.entries(s.plugins).map(([n, p]) => `${n}: ${p}`).join("  ")),
        actionButton("Delete", { class: "danger" }, out, async () => {
          await call("DELETE", `/api/v1/savepoints/${encodeURIComponent(s.name)}`);
          ctx.refresh();
          return `Deleted ${s.name}.`;
        }),
        branch(s.name))));
    replace(tree, branch(""));
  });
}

// Fork A/B: one job per label from a savepoint, each with its version of a node.
function forkForm(ctx) {
  const savepoint = h("select", { id: "fork-savepoint" });
  const node = h("input", { id: "fork-node", placeholder: "averages", required: true });
  const a = h("input", { id: "fork-a", placeholder: "sensor-average@1.0.0", required: true });
  const b = h("input", { id: "fork-b", placeholder: "sensor-average@2.0.0", required: true });
  const out = result();
  const button = h("button", { type: "submit", class: "primary" }, "Fork");
  const form = h("form", { class: "panel", "aria-labelledby": "fork-title" },
    h("h2", { id: "fork-title" }, "Fork A/B from a savepoint"),
    h("p", { class: "muted" }, "Starts one job per label from the savepoint, each running its version of the node, " +
      "with sinks of their own (path + -a, -b)."),
    h("div", { class: "row" }, h("label", {}, "Savepoint", savepoint), h("label", {}, "Node", node),
      h("label", {}, "a", a), h("label", {}, "b", b), button), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    try {
      const r = await post(`/api/v1/savepoints/${encodeURIComponent(savepoint.value)}/fork`,
        { node: node.value.trim(), versions: { a: a.value.trim(), b: b.value.trim() } });
      replace(out, "Started ", Object.entries(r.jobs).map(([label, job]) =>
        [h("a", { href: `#/jobs/${job.id}` }, `${label}: ${job.name}`), " "]));
      out.hidden = false;
      out.className = "result ok";
    } catch (e) {
      show(out, "error", `${e.code}: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });
  let shown = "";
  return {
    form,
    update(list) {
      form.hidden = !list.length;
      const key = list.map((s) => s.name).join(",");
      if (key === shown) return;
      shown = key;
      const keep = savepoint.value;
      replace(savepoint, list.slice().reverse().map((s) => h("option", { value: s.name }, s.name)));
      if (list.some((s) => s.name === keep)) savepoint.value = keep;
    },
  };
}

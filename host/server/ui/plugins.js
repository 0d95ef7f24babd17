// The plugin registry: every version with its world, size and digest, the
// jobs that run it, and uploading a new version.
import { get, call } from "./api.js";
import { h, replace, bytes, time, show, result } from "./dom.js";

export function pluginsPage(root, ctx) {
  const tbody = h("tbody", {});
  replace(root, h("h1", {}, "Plugins"),
    h("div", { class: "table-wrap" }, h("table", { "aria-label": "Plugin versions" },
      h("thead", {}, h("tr", {}, h("th", {}, "Plugin"), h("th", {}, "Version"), h("th", {}, "World"),
        h("th", {}, "WIT"), h("th", { class: "num" }, "Size"), h("th", {}, "SHA-256"), h("th", {}, "Uploaded"),
        h("th", {}, "Used by"))),
      tbody)),
    uploadForm(ctx));
  return ctx.poll(5000, async () => {
    const plugins = await get("/api/v1/plugins");
    const versions = await Promise.all(plugins.map((p) => get(`/api/v1/plugins/${encodeURIComponent(p.name)}/versions`)));
    const rows = [];
    plugins.forEach((p, i) => versions[i].slice().reverse().forEach((v) => {
      const users = p.used_by[v.version] || [];
      rows.push(h("tr", { "data-plugin": `${v.name}@${v.version}` },
        h("th", { scope: "row" }, v.name), h("td", { class: "mono" }, v.version), h("td", {}, v.world),
        h("td", { class: "mono" }, v.wit_version), h("td", { class: "num" }, bytes(v.size)),
        h("td", { class: "mono", title: v.sha256 }, `${v.sha256.slice(0, 16)}…`), h("td", {}, time(v.uploaded_at)),
        h("td", {}, users.length ? users.map((id) => h("a", { href: `#/jobs/${id}`, class: "mono" }, `${id.slice(0, 8)} `)) :
          h("span", { class: "muted" }, "–"))));
    }));
    replace(tbody, rows.length ? rows :
      h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No plugins yet: upload one below.")));
  });
}

function uploadForm(ctx) {
  const name = h("input", { id: "plugin-name", name: "name", required: true, placeholder: "celsius" });
  const version = h("input", { id: "plugin-version", name: "version", required: true, placeholder: "1.0.0" });
  const file = h("input", { id: "plugin-file", name: "file", type: "file", accept: ".wasm,application/wasm", required: true });
  const out = result();
  const button = h("button", { type: "submit", class: "primary" }, "Upload");
  file.addEventListener("change", () => {
    const f = file.files[0];
    if (f && !name.value) name.value = f.name.replace(/\.wasm$/, "");
  });
  const form = h("form", { class: "panel", "aria-labelledby": "upload-title" },
    h("h2", { id: "upload-title" }, "Upload a version"),
    h("p", { class: "muted" }, "A Wasm component of a weir:plugin world. It is checked and compiled before it is listed; " +
      "versions are immutable."),
    h("div", { class: "row" }, h("label", {}, "Name", name), h("label", {}, "Version", version),
      h("label", {}, "Component", file), button),
    out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = file.files[0];
    if (!f) return show(out, "error", "Pick a .wasm file.");
    button.disabled = true;
    try {
      const path = `/api/v1/plugins/${encodeURIComponent(name.value.trim())}/versions/${encodeURIComponent(version.value.trim())}`;
      const v = await call("PUT", path, f, "application/wasm");
      show(out, "ok", `Uploaded ${v.name}@${v.version} (${v.world}, ${bytes(v.size)}, sha256 ${v.sha256.slice(0, 12)}…).`);
      ctx.refresh();
    } catch (e) {
      show(out, "error", `${e.code}: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

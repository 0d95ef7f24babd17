// A job's graph as SVG: one column per depth (longest path from a source),
// a box per node with its live figures, an arrow per edge labelled with how
// it spreads records. Edges inside one task's chain are solid; edges that
// cross tasks (through channels) are dashed.
import { svg, rate } from "./dom.js";

const W = 200, H = 84, GAP_X = 70, GAP_Y = 22, PAD = 12;

export function layout(nodes, edges) {
  const depth = new Map(nodes.map((n) => [n.id, 0]));
  for (let round = 0; round < nodes.length; round++) {
    for (const e of edges) {
      const d = (depth.get(e.from) ?? 0) + 1;
      if (d > (depth.get(e.to) ?? 0)) depth.set(e.to, d);
    }
  }
  const columns = [];
  for (const n of nodes) {
    const d = depth.get(n.id);
    (columns[d] ||= []).push(n.id);
  }
  const place = new Map();
  const tallest = Math.max(...columns.map((c) => c.length));
  columns.forEach((ids, d) => {
    const offset = ((tallest - ids.length) * (H + GAP_Y)) / 2;
    ids.forEach((id, i) => place.set(id, { x: PAD + d * (W + GAP_X), y: PAD + offset + i * (H + GAP_Y) }));
  });
  const width = PAD * 2 + columns.length * W + (columns.length - 1) * GAP_X;
  const height = PAD * 2 + tallest * H + (tallest - 1) * GAP_Y;
  return { place, width, height };
}

export function dag(job) {
  const { place, width, height } = layout(job.nodes, job.edges);
  const byId = new Map(job.nodes.map((n) => [n.id, n]));
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": `Graph of job ${job.name}: ${job.nodes.map((n) => n.id).join(", ")}`,
  });
  root.append(svg("defs", {}, svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#7b8a99" }))));
  for (const e of job.edges) {
    const a = place.get(e.from), b = place.get(e.to);
    if (!a || !b) continue;
    const chained = e.partitioning === "forward" && !e.side && byId.get(e.from)?.task === byId.get(e.to)?.task;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
    const label = [e.side ? `.${e.side}` : null, e.partitioning === "hash" ? `hash(${e.key_by})` : e.partitioning]
      .filter(Boolean).join(" ");
    root.append(svg("g", { "data-edge": `${e.from}->${e.to}` },
      svg("path", {
        class: `edge ${chained ? "chained" : "shuffle"}`, "marker-end": "url(#arrow)",
        d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 2} ${y2}`,
      }),
      svg("text", { class: "edge-label", x: mx, y: (y1 + y2) / 2 - 5, "text-anchor": "middle" }, label)));
  }
  for (const n of job.nodes) {
    const p = place.get(n.id);
    const hot = n.backpressured_ms_per_s > 500;
    const failed = (n.counters && n.counters.records_failed) || 0;
    const second = n.role === "operator" ? (n.plugin || "plugin") : n.role;
    root.append(svg("g", { "data-node": n.id, transform: `translate(${p.x} ${p.y})` },
      svg("title", {}, `${n.id}: ${n.role}, parallelism ${n.parallelism}, task ${n.task}`),
      svg("rect", { class: `node ${n.role}${hot ? " hot" : ""}`, width: W, height: H, rx: 6 }),
      svg("text", { class: "title", x: 10, y: 18 }, `${n.id} ×${n.parallelism}`),
      svg("text", { class: "sub", x: 10, y: 35 }, second),
      svg("text", { x: 10, y: 53 }, `in ${rate(n.records_in_per_s)}/s · out ${rate(n.records_out_per_s)}/s`),
      svg("text", { class: "sub", x: 10, y: 71 },
        `bp ${Math.round(n.backpressured_ms_per_s)} ms/s${failed ? ` · ${failed} failed` : ""}`)));
  }
  return root;
}

// Small time-series charts (SVG polylines), one or two series each.
import { h, svg } from "./dom.js";

export function chart(caption, series, format) {
  const w = 300, hgt = 70;
  const all = series.flatMap((s) => s.values);
  const max = Math.max(1, ...all);
  const lines = series.map((s, i) => {
    const n = s.values.length;
    const pts = s.values.map((v, j) => {
      const x = n < 2 ? w : (j / (n - 1)) * w;
      return `${x.toFixed(1)},${(hgt - 4 - (v / max) * (hgt - 10)).toFixed(1)}`;
    });
    return svg("polyline", { class: i ? "b" : "a", points: pts.join(" ") });
  });
  const last = series.map((s) => `${s.name} ${format(s.values.at(-1) ?? 0)}`).join(" · ");
  return h("figure", { class: "chart" },
    h("figcaption", {}, `${caption}: ${last} (max ${format(max)})`),
    svg("svg", { viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: "none", role: "img", "aria-label": caption }, lines));
}

// ECharts (vendored, global `echarts`) helpers: one chart per container, resized with the
// window, replaced by an empty-state message when there is nothing to draw.
import { showEmpty } from "./dom.js";

export const COLORS = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#64748b"];
const charts = new Map();
export const FONT = "system-ui, \"Noto Sans CJK SC\", \"Noto Sans\", sans-serif";

window.addEventListener("resize", () => {
  for (const c of charts.values()) c.resize();
});

/** Draw `option` in `container`, or show `emptyMessage` when `hasData` is false. */
export function drawChart(container, option, { hasData = true, emptyMessage = "" } = {}) {
  const old = charts.get(container);
  if (old) {
    old.dispose();
    charts.delete(container);
  }
  if (!hasData) {
    showEmpty(container, emptyMessage);
    container.classList.remove("has-chart");
    return null;
  }
  container.replaceChildren();
  container.classList.add("has-chart");
  const chart = window.echarts.init(container, null, { renderer: "canvas" });
  chart.setOption({ color: COLORS, animation: false, textStyle: { fontFamily: FONT }, ...option });
  charts.set(container, chart);
  return chart;
}

export function chartOf(container) {
  return charts.get(container) || null;
}

export const baseGrid = { left: 56, right: 24, top: 40, bottom: 40, containLabel: true };

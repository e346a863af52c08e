// Store page sections for issue 16: passes, unique visitors, groups, staff passes and
// conversion per visitor and per group (GET /visitors), and queues (GET /stores/{id}/queues).
import { apiGet } from "../api.js";
import { baseGrid, drawChart } from "../charts.js";
import { $, el, showEmpty } from "../dom.js";
import { fmtDuration, fmtInt, fmtNum, fmtPeriod, fmtRatio } from "../format.js";
import { t } from "../i18n.js";

/** Both answers for the page's range; granularity as the traffic chart uses. */
export async function fetchRetail(storeId, range, granularity) {
  const [visitors, queues] = await Promise.all([
    apiGet("/visitors", { store_id: storeId, ...range, granularity }),
    apiGet(`/stores/${encodeURIComponent(storeId)}/queues`, range),
  ]);
  return { visitors, queues: queues.queues || [] };
}

function totals(series) {
  const sum = (k) => series.reduce((a, p) => a + (p[k] || 0), 0);
  const withPos = series.filter((p) => p.transactions !== null && p.transactions !== undefined);
  const tx = withPos.reduce((a, p) => a + p.transactions, 0);
  const over = (k) => withPos.reduce((a, p) => a + (p[k] || 0), 0);
  return {
    passes: sum("passes"), unique_visitors: sum("unique_visitors"), groups: sum("groups"),
    staff: sum("staff_in"),
    conversion_per_visitor: withPos.length && over("unique_visitors") ? tx / over("unique_visitors") : null,
    conversion_per_group: withPos.length && over("groups") ? tx / over("groups") : null,
  };
}

function renderVisitors(data) {
  const box = $("#retail-figures");
  const series = data.visitors.series || [];
  const sums = totals(series);
  if (!sums.passes && !sums.staff) {
    showEmpty(box, t("empty.noRetail"));
    drawChart($("#retail-chart"), {}, { hasData: false, emptyMessage: t("empty.noRetail") });
    return;
  }
  const rows = [
    ["passes", fmtInt(sums.passes)], ["unique_visitors", fmtInt(sums.unique_visitors)],
    ["groups", fmtInt(sums.groups)], ["staff", fmtInt(sums.staff)],
    ["conversion_per_visitor", fmtRatio(sums.conversion_per_visitor)],
    ["conversion_per_group", fmtRatio(sums.conversion_per_group)],
  ];
  box.replaceChildren(el("table", { class: "data kpis", id: "retail-table" }, el("tbody", {},
    rows.map(([k, v]) => el("tr", { "data-figure": k }, el("th", {}, t(`rt.${k}`)),
      el("td", { class: "num" }, v))))),
  el("p", { class: "muted note" }, t("rt.note")));
  const multiDay = series.length && series[0].period.slice(0, 10) !== series.at(-1).period.slice(0, 10);
  drawChart($("#retail-chart"), {
    grid: { ...baseGrid, top: 50 },
    legend: { top: 0 },
    tooltip: { trigger: "axis", valueFormatter: (v) => fmtNum(v, 0) },
    xAxis: { type: "category", data: series.map((p) => fmtPeriod(p.period, multiDay)) },
    yAxis: { type: "value", axisLabel: { formatter: fmtInt } },
    series: ["passes", "unique_visitors", "groups"].map((k) => ({
      type: "bar", name: t(`rt.${k}`), data: series.map((p) => p[k]) })),
  });
}

function renderQueues(queues) {
  const box = $("#retail-queues");
  if (!queues.length) {
    showEmpty(box, t("empty.noQueues"));
    return;
  }
  const cols = ["col.queue", "col.lengthAvg", "col.lengthMax", "col.waitP50", "col.waitP90",
    "col.served", "col.abandoned", "col.abandonRate"];
  box.replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "data", id: "queues-table" },
    el("thead", {}, el("tr", {}, cols.map((c, i) => el("th", { class: i ? "num" : "" }, t(c))))),
    el("tbody", {}, queues.map((q) => el("tr", { "data-zone": q.zone },
      el("td", {}, q.zone),
      el("td", { class: "num", "data-figure": "length_avg" }, fmtNum(q.length_avg)),
      el("td", { class: "num", "data-figure": "length_max" }, fmtInt(q.length_max)),
      el("td", { class: "num", "data-figure": "wait_p50" }, fmtDuration(q.wait_p50_s)),
      el("td", { class: "num", "data-figure": "wait_p90" }, fmtDuration(q.wait_p90_s)),
      el("td", { class: "num", "data-figure": "served" }, fmtInt(q.served)),
      el("td", { class: "num", "data-figure": "abandoned" }, fmtInt(q.abandoned)),
      el("td", { class: "num", "data-figure": "abandonment_rate" }, fmtRatio(q.abandonment_rate))))))),
  el("p", { class: "muted note" }, t("rt.queueNote")));
}

export function renderRetail(data) {
  if (!data) return;
  renderVisitors(data);
  renderQueues(data.queues);
}

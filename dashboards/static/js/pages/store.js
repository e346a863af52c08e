// Store page: hourly in/out and occupancy, dwell by zone, zone-to-zone flow (Sankey),
// demographics with small cells suppressed, conversion when POS data exists, camera status.
import { apiGet } from "../api.js";
import { baseGrid, drawChart } from "../charts.js";
import { addCsvButtons, deviceTable, fileSafe, objectTable } from "../csv.js";
import { $, el, errorText, escapeHtml, showEmpty } from "../dom.js";
import {
  daysBetween, fmtDuration, fmtSeconds, fmtInstant, fmtInt, fmtNum, fmtPeriod, fmtRatio, todayIn,
} from "../format.js";
import { storeName, t } from "../i18n.js";
import {
  fetchMembersWeather, membersTable, renderMembers, renderWeather, weatherTable,
} from "../members_weather.js";
import { keepLive } from "../live.js";
import { boot, newestOnly, reloading } from "../shell.js";
import { showSimulated } from "../simulated.js";
import { fetchRetail, renderRetail } from "./store_retail.js";

const storeId = new URLSearchParams(location.search).get("store");
const state = { store: null, traffic: null, zones: [], transitions: [], demo: null,
  conversion: null, devices: [], inStoreNow: null, simulated: null };

function range() {
  return { start: $("#f-start").value, end: $("#f-end").value };
}

/** The figures for the range as it is now. */
async function gatherData() {
  const r = range();
  const granularity = daysBetween(r.start, r.end) > 3 ? "day" : "hour";
  const sel = { store_id: storeId, ...r };
  const enc = encodeURIComponent(storeId);
  const mw = fetchMembersWeather({ store_id: storeId }, r.start, r.end);
  mw.catch(() => {}); // awaited below; if a call above fails first, not an unhandled rejection
  const [traffic, zones, transitions, demo, conversion, devices, simulated, now] = await Promise.all([
    apiGet("/traffic", { ...sel, granularity }),
    apiGet(`/stores/${enc}/zones`, r),
    apiGet(`/stores/${enc}/transitions`, r),
    apiGet(`/stores/${enc}/demographics`, r),
    apiGet("/conversion", { ...sel, granularity }),
    apiGet("/devices", { store_id: storeId }),
    apiGet("/simulated", sel),
    // "in store now" only when the range ends today: the overview's live figure, by the same
    // definition as the chart's "in store" line (gateway/queries.py IN_STORE)
    r.end === todayIn(state.store?.timezone) ? apiGet("/overview", { store_id: storeId }) : null,
  ]);
  const retail = await fetchRetail(storeId, r, granularity);
  return { traffic, zones: zones.zones || [], transitions: transitions.transitions || [],
    demo, conversion, devices, simulated, retail, mw: await mw,
    inStoreNow: now ? (now.stores || []).find((x) => x.store_id === storeId)?.occupancy_now ?? null : null };
}

const fetchData = newestOnly(gatherData, state);

async function refetch() {
  if (await fetchData()) render();
}

async function load() {
  if (!storeId) throw Object.assign(new Error(t("err.nostore")), { noStore: true });
  const stores = await apiGet("/stores");
  state.store = stores.find((s) => s.store_id === storeId) || null;
  const tz = state.store ? state.store.timezone : undefined;
  const q = new URLSearchParams(location.search);
  const today = todayIn(tz);
  $("#f-end").value = q.get("end") || today;
  $("#f-start").value = q.get("start") || $("#f-end").value;
  for (const id of ["#f-start", "#f-end"]) {
    $(id).addEventListener("change", () => {
      if ($("#f-start").value > $("#f-end").value) $("#f-start").value = $("#f-end").value;
      reloading(refetch).catch(fail);
    });
  }
  // A store outside the token's scope is missing from /stores; the calls below then get 403.
  await fetchData();
  addCsvButtons(csvExports());
  keepLive(() => reloading(refetch).catch(fail),
    () => ({ store_id: storeId }));
}

function renderHead() {
  const s = state.store;
  $("#store-name").textContent = s ? storeName(s) : storeId;
  $("#store-meta").textContent = s ? `${s.store_id} · ${s.region} · ${s.franchisee}` : storeId;
  $("#tz-note").textContent = t("note.storeTime", { tz: s ? s.timezone : "?" });
  $("#heatmap-link").href = `heatmap.html?store=${encodeURIComponent(storeId)}`;
  document.title = `storesense · ${$("#store-name").textContent}`;
}

function renderTraffic() {
  const series = state.traffic.series || [];
  const hourly = state.traffic.granularity !== "day";
  $("#traffic-title").textContent = t(hourly ? "st.hourly" : "st.daily");
  const multiDay = series.length && series[0].period.slice(0, 10) !== series.at(-1).period.slice(0, 10);
  drawChart($("#traffic-chart"), {
    grid: { ...baseGrid, top: 56, right: 40 },
    legend: { top: 0 },
    tooltip: { trigger: "axis", valueFormatter: (v) => fmtNum(v) },
    xAxis: { type: "category", data: series.map((p) => fmtPeriod(p.period, multiDay)) },
    yAxis: [{ type: "value", name: t("st.visitors"), axisLabel: { formatter: fmtInt } },
      { type: "value", name: t("st.occupancy"), splitLine: { show: false }, axisLabel: { formatter: fmtInt } }],
    series: [
      { type: "bar", name: t("st.in"), data: series.map((p) => p.in) },
      { type: "bar", name: t("st.out"), data: series.map((p) => p.out) },
      { type: "line", name: t("st.inStore"), yAxisIndex: 1, data: series.map((p) => p.in_store),
        lineStyle: { width: 3 } },
      { type: "line", name: t("st.occAvg"), yAxisIndex: 1, data: series.map((p) => p.occupancy_avg),
        lineStyle: { type: "dotted" }, smooth: true },
      { type: "line", name: t("st.occMax"), yAxisIndex: 1, data: series.map((p) => p.occupancy_max),
        lineStyle: { type: "dashed" }, smooth: true },
    ],
  }, { hasData: series.some((p) => p.in > 0 || p.out > 0), emptyMessage: t("empty.noData") });
}

function renderInStore() {
  const box = $("#in-store-now");
  box.hidden = state.inStoreNow === null;
  $("#in-store-value").textContent = state.inStoreNow === null ? "" : fmtInt(state.inStoreNow);
}

function renderZones() {
  const zones = state.zones;
  const has = zones.some((z) => z.visits > 0 || z.entries > 0);
  drawChart($("#zones-chart"), {
    grid: { ...baseGrid, top: 36 },
    legend: { top: 0 },
    tooltip: { trigger: "axis", valueFormatter: fmtDuration },
    xAxis: { type: "value", axisLabel: { formatter: fmtSeconds } },
    yAxis: { type: "category", data: zones.map((z) => z.zone) },
    series: [
      { type: "bar", name: t("st.dwellMean"), data: zones.map((z) => z.dwell_mean_s) },
      { type: "bar", name: t("st.dwellP50"), data: zones.map((z) => z.dwell_p50_s) },
      { type: "bar", name: t("st.dwellP90"), data: zones.map((z) => z.dwell_p90_s) },
    ],
  }, { hasData: has, emptyMessage: t("empty.noZones") });
  const table = $("#zones-table");
  if (!has) {
    table.replaceChildren();
    return;
  }
  const cols = ["col.zone", "col.entries", "col.stops", "col.stopRate", "col.dwell", "col.p50", "col.p90"];
  table.replaceChildren(
    el("thead", {}, el("tr", {}, cols.map((c, i) => el("th", { class: i ? "num" : "" }, t(c))))),
    el("tbody", {}, zones.map((z) => el("tr", { "data-zone": z.zone },
      el("td", {}, z.zone), el("td", { class: "num" }, fmtInt(z.entries)),
      el("td", { class: "num" }, fmtInt(z.stops)), el("td", { class: "num" }, fmtRatio(z.stop_rate)),
      el("td", { class: "num" }, fmtDuration(z.dwell_mean_s)),
      el("td", { class: "num" }, fmtDuration(z.dwell_p50_s)),
      el("td", { class: "num" }, fmtDuration(z.dwell_p90_s))))));
}

/** True when the zone graph has a cycle (Sankey can only draw acyclic graphs). */
function hasCycle(links) {
  const next = new Map();
  for (const x of links) next.set(x.from_zone, [...(next.get(x.from_zone) || []), x.to_zone]);
  const state = new Map();
  const visit = (n) => {
    if (state.get(n) === 1) return true;
    if (state.get(n) === 2) return false;
    state.set(n, 1);
    const found = (next.get(n) || []).some(visit);
    state.set(n, 2);
    return found;
  };
  return [...next.keys()].some(visit);
}

function renderFlow() {
  // Acyclic movement is drawn zone to zone; with cycles (A→B and B→A) the "from" zones on the
  // left and the "to" zones on the right become separate nodes so every flow can be drawn.
  const links = state.transitions.filter((x) => x.count > 0);
  const split = hasCycle(links);
  const src = (z) => (split ? `${z} ›` : z);
  const nodes = split
    ? [...new Set(links.map((x) => src(x.from_zone))), ...new Set(links.map((x) => x.to_zone))]
    : [...new Set(links.flatMap((x) => [x.from_zone, x.to_zone]))];
  drawChart($("#flow-chart"), {
    // The formatter's answer is HTML and zone names come from devices: escape them.
    tooltip: { trigger: "item",
      formatter: (p) => (p.dataType === "edge"
        ? `${escapeHtml(p.data.source.replace(/ ›$/, ""))} → ${escapeHtml(p.data.target)}: ${fmtInt(p.data.value)}`
        : `${escapeHtml(p.name.replace(/ ›$/, ""))}: ${fmtInt(p.value)}`) },
    series: [{
      type: "sankey", left: 10, right: 110, top: 10, bottom: 10, nodeAlign: "justify",
      emphasis: { focus: "adjacency" }, lineStyle: { color: "gradient", opacity: 0.4 },
      label: { formatter: (p) => p.name.replace(/ ›$/, "") },
      data: nodes.map((name) => ({ name })),
      links: links.filter((x) => split || x.from_zone !== x.to_zone)
        .map((x) => ({ source: src(x.from_zone), target: x.to_zone, value: x.count })),
    }],
  }, { hasData: links.length > 0, emptyMessage: t("empty.noTransitions") });
}

function demoTable(dim, title, counts, labelOf, minCell, suppressed) {
  const entries = Object.entries(counts || {});
  const known = entries.reduce((a, [, n]) => a + (n || 0), 0);
  const max = Math.max(1, ...entries.map(([, n]) => n || 0));
  return el("table", { class: "data demo", "data-dim": dim },
    el("thead", {}, el("tr", {}, el("th", {}, title), el("th", { class: "num" }, t("col.count")),
      el("th", { class: "num" }, t("col.share")), el("th", {}))),
    el("tbody", {}, entries.map(([key, n]) => {
      const hidden = n === null || n === undefined;
      const text = hidden ? (suppressed.has(`${dim}.${key}`) ? t("st.hidden") : "—") : fmtInt(n);
      return el("tr", { "data-group": key, class: hidden ? "suppressed" : "" },
        el("td", {}, labelOf(key)), el("td", { class: "num" }, text),
        el("td", { class: "num" }, hidden || !known ? "—" : fmtRatio(n / known)),
        el("td", {}, hidden ? "" : el("span", { class: "bar", style: `width:${Math.round((120 * n) / max)}px` })));
    })));
}

function renderDemo() {
  const box = $("#demo");
  const d = state.demo;
  const total = Object.values(d.age_bands || {}).length + Object.values(d.genders || {}).length;
  if (!d || !d.visitors || !total) {
    showEmpty(box, t("empty.noDemo"));
    return;
  }
  const minCell = d.min_cell ?? 5;
  // "suppressed" lists "<dimension>.<key>", e.g. "age_bands.65+".
  const sup = new Set(d.suppressed || []);
  const ageLabel = (k) => (k === "unknown" ? t("age.unknown") : k);
  box.replaceChildren(
    demoTable("age_bands", t("st.age"), d.age_bands, ageLabel, minCell, sup),
    demoTable("genders", t("st.gender"), d.genders, (k) => t(`gender.${k}`), minCell, sup),
    el("p", { class: "muted", id: "demo-note" }, t("st.demoNote", { n: minCell })));
}

function renderConversion() {
  const series = state.conversion.series || [];
  const hasPos = series.some((p) => p.conversion !== null && p.conversion !== undefined);
  const multiDay = series.length && series[0].period.slice(0, 10) !== series.at(-1).period.slice(0, 10);
  drawChart($("#conversion-chart"), {
    grid: { ...baseGrid, top: 50 },
    legend: { top: 0 },
    tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: series.map((p) => fmtPeriod(p.period, multiDay)) },
    yAxis: [{ type: "value", axisLabel: { formatter: fmtInt } },
      { type: "value", splitLine: { show: false }, axisLabel: { formatter: (v) => fmtRatio(v) } }],
    series: [
      { type: "bar", name: t("col.transactions"), data: series.map((p) => p.transactions),
        tooltip: { valueFormatter: fmtInt } },
      { type: "line", name: t("col.conversion"), yAxisIndex: 1, data: series.map((p) => p.conversion),
        tooltip: { valueFormatter: fmtRatio }, connectNulls: false },
    ],
  }, { hasData: hasPos, emptyMessage: t("empty.noPos") });
}

function renderCameras() {
  const box = $("#cameras");
  const tz = state.store?.timezone;
  const warn = $("#camera-warning");
  const devices = state.devices || [];
  const bad = [];
  for (const d of devices) {
    for (const c of d.cameras || []) if (!d.online || c.state !== "ok") bad.push(c.camera_id);
    if (!d.online && !(d.cameras || []).length) bad.push(d.device_id);
  }
  warn.hidden = !bad.length;
  warn.textContent = bad.length ? t("empty.cameraOffline", { cams: bad.join(", ") }) : "";
  if (!devices.length) {
    showEmpty(box, t("empty.noDevices"));
    return;
  }
  const cols = ["col.device", "col.camera", "col.state", "col.fps", "col.lag", "col.lastSeen",
    "col.outbox", "col.lastError"];
  const rows = devices.flatMap((d) => {
    const cams = d.cameras && d.cameras.length ? d.cameras : [null];
    return cams.map((c) => el("tr", { class: d.online && (!c || c.state === "ok") ? "" : "offline" },
      el("td", {}, d.device_id, " ", el("span", { class: `badge ${d.online ? "ok" : "bad"}` },
        t(d.online ? "dev.online" : "dev.offline"))),
      el("td", {}, c ? c.camera_id : "—"),
      el("td", {}, t(`camState.${c ? c.state : d.state}`)),
      el("td", { class: "num" }, c ? fmtNum(c.fps) : "—"),
      el("td", { class: "num" }, c ? fmtDuration(c.lag_s) : "—"),
      el("td", {}, fmtInstant(d.last_seen, tz)),
      el("td", { class: "num" }, fmtInt(d.outbox_depth)),
      el("td", { class: "muted" }, c && c.last_error ? c.last_error : "")));
  });
  box.replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "data" },
    el("thead", {}, el("tr", {}, cols.map((c) => el("th", {}, t(c))))), el("tbody", {}, rows))));
}

function render() {
  renderHead();
  showSimulated(state.simulated, 1);
  renderInStore();
  renderTraffic();
  renderZones();
  renderFlow();
  renderDemo();
  renderConversion();
  renderCameras();
  renderMembers($("#members"), state.mw?.members);
  renderWeather($("#weather"), state.mw?.weather);
  renderRetail(state.retail);
}

/** The page's tables as CSV (js/csv.js): what the cards show, for this store and range. */
function csvExports() {
  const name = (what) => () => {
    const r = range();
    return `${what}-${fileSafe(storeId)}-${fileSafe(r.start)}_${fileSafe(r.end)}.csv`;
  };
  const about = () => ({ store_id: storeId, ...range() });
  return [
    { card: "section:has(> #traffic-title)", id: "csv-traffic", name: name("traffic"),
      table: () => objectTable(state.traffic?.series || [], { ...about(), granularity: state.traffic?.granularity }) },
    { card: "section:has(> #zones-chart)", id: "csv-zones", name: name("zones"),
      table: () => objectTable(state.zones, about()) },
    { card: "section:has(> #flow-chart)", id: "csv-flow", name: name("flow"),
      table: () => objectTable(state.transitions, about()) },
    { card: "section:has(> #demo)", id: "csv-demographics", name: name("demographics"), table: demoCsv },
    { card: "section:has(> #conversion-chart)", id: "csv-conversion", name: name("conversion"),
      table: () => objectTable(state.conversion?.series || [], { ...about(), granularity: state.conversion?.granularity }) },
    { card: "#retail-visitors", id: "csv-visitors", name: name("visitors"),
      table: () => objectTable(state.retail?.visitors?.series || [], about()) },
    { card: "section:has(> #retail-queues)", id: "csv-queues", name: name("queues"),
      table: () => objectTable(state.retail?.queues || [], about()) },
    { card: "#members-card", id: "csv-members", name: name("members"),
      table: () => membersTable(state.mw?.members, range()) },
    { card: "#weather-card", id: "csv-weather", name: name("weather"),
      table: () => weatherTable(state.mw?.weather) },
    { card: "section:has(> #cameras)", id: "csv-cameras", name: name("devices"),
      table: () => deviceTable(state.devices) },
  ];
}

/** Demographic cells as the API gives them: suppressed cells empty and marked, never a number. */
function demoCsv() {
  const d = state.demo || {};
  const sup = new Set(d.suppressed || []);
  const rows = ["age_bands", "genders"].flatMap((dim) => Object.entries(d[dim] || {})
    .map(([key, n]) => [storeId, range().start, range().end, dim, key, n, sup.has(`${dim}.${key}`)]));
  return { columns: ["store_id", "start", "end", "dimension", "group", "visitors", "suppressed"], rows };
}

function fail(err) {
  $("#store-body").hidden = true;
  const box = $("#page-error");
  box.hidden = false;
  if (err && err.noStore) box.textContent = t("err.nostore");
  else box.textContent = errorText(err, { id: storeId });
}

boot({ load, render, fail });

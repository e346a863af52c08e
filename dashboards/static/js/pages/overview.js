// HQ overview: a day against the same weekday last week, or 7/28 days against the 7/28 before
// them; trend, store ranking, occupancy now, device health; filters by region, franchisee,
// day, period and trend range (all store-local days).
import { apiGet } from "../api.js";
import { baseGrid, drawChart } from "../charts.js";
import { addCsvButtons, deviceTable, fileSafe, objectTable } from "../csv.js";
import { $, el, errorText, fillSelect, showEmpty } from "../dom.js";
import {
  fmtChangePct, fmtDay, fmtDuration, fmtInstant, fmtInt, fmtPeriod, fmtRatio,
} from "../format.js";
import { storeName, t } from "../i18n.js";
import {
  fetchMembersWeather, membersTable, renderMembers, renderWeather, weatherTable,
} from "../members_weather.js";
import { keepLive } from "../live.js";
import { boot, newestOnly, reloading } from "../shell.js";
import { byStore, showSimulated, simulatedMark } from "../simulated.js";

const state = { me: null, stores: [], byId: new Map(), overview: null, devices: [], simulated: null,
  sort: { key: "visitors", dir: -1 } };

function filters() {
  return {
    region: $("#f-region").value,
    franchisee: $("#f-franchisee").value,
    date: $("#f-date").value,
    days: $("#f-days").value,
    trend_days: $("#f-range").value,
  };
}

/** Select `value` when the select offers it, else `fallback` (a hand-edited address). */
function choose(select, value, fallback) {
  select.value = [...select.options].some((o) => o.value === value) ? value : fallback;
}

function remember(f) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  history.replaceState(null, "", `${location.pathname}${q.toString() ? `?${q}` : ""}`);
}

/** The figures for the filters as they are now. */
async function gatherData() {
  const f = filters();
  remember(f);
  const sel = { region: f.region, franchisee: f.franchisee };
  const [overview, devices] = await Promise.all([
    apiGet("/overview", { ...sel, date: f.date, days: f.days, trend_days: f.trend_days }),
    apiGet("/devices", sel),
  ]);
  // the members and weather cards cover the overview's period, as its response dates it
  const mw = await fetchMembersWeather(sel, overview.period_start, overview.date);
  const simulated = await apiGet("/simulated",
    { ...sel, start: overview.period_start, end: overview.date });
  return { overview, devices, mw, simulated };
}

const fetchData = newestOnly(gatherData, state);

async function refetch() {
  if (await fetchData()) render();
}

async function load(me) {
  state.me = me;
  state.stores = await apiGet("/stores");
  state.byId = new Map(state.stores.map((s) => [s.store_id, s]));
  const q = new URLSearchParams(location.search);
  fillSelect($("#f-region"), [...new Set(state.stores.map((s) => s.region))].sort(), t("filter.all"));
  fillSelect($("#f-franchisee"), [...new Set(state.stores.map((s) => s.franchisee))].sort(),
    t("filter.all"));
  $("#f-region").value = q.get("region") || "";
  $("#f-franchisee").value = q.get("franchisee") || "";
  $("#f-date").value = q.get("date") || "";
  choose($("#f-days"), q.get("days"), "1");
  $("#f-range").value = q.get("trend_days") || "28";
  for (const id of ["#f-region", "#f-franchisee", "#f-date", "#f-days", "#f-range"]) {
    $(id).addEventListener("change", () => {
      reloading(refetch).catch(fail);
    });
  }
  await fetchData();
  addCsvButtons(csvExports());
  keepLive(() => reloading(refetch).catch(fail),
    () => ({ region: filters().region, franchisee: filters().franchisee }));
}

/** What the figures cover and what they are compared with; a day keeps its own wording. */
function periodText(ov) {
  const days = ov.days || 1;
  const n = fmtInt(days);
  const date = fmtDay(ov.date, true);
  const before = fmtInt(ov.visitors_last_week);
  if (days === 1) {
    return { kpi: t("kpi.visitors", { date }), kpiBefore: t("kpi.lastWeek", { n: before }),
      visitors: t("col.visitors"), before: t("col.lastWeek"), span: "" };
  }
  return { kpi: t("kpi.visitorsPeriod", { n, date }), kpiBefore: t("kpi.previous", { n, v: before }),
    visitors: t("col.visitorsPeriod", { n }), before: t("col.previous", { n }),
    span: `${fmtDay(ov.period_start, true)} – ${date}` };
}

function renderKpis(ov) {
  const period = periodText(ov);
  $("#kpi-visitors-label").textContent = period.kpi;
  $("#kpi-visitors-label").title = period.span;
  $("#kpi-visitors").textContent = fmtInt(ov.visitors);
  $("#kpi-lastweek").textContent = period.kpiBefore;
  const change = $("#kpi-change");
  change.textContent = fmtChangePct(ov.change_pct);
  change.className = `kpi-value ${ov.change_pct > 0 ? "up" : ov.change_pct < 0 ? "down" : ""}`;
  $("#kpi-occupancy").textContent = fmtInt(ov.occupancy_now);
  $("#kpi-online").textContent = `${fmtInt(ov.stores_online)} / ${fmtInt(ov.stores_total)}`;
  $("#kpi-online").className = `kpi-value ${ov.stores_online < ov.stores_total ? "down" : ""}`;
}

function renderTrend(ov) {
  const trend = ov.trend || [];
  $("#trend-note").hidden = Boolean(filters().date);
  const hasData = trend.some((p) => p.visitors > 0);
  drawChart($("#trend-chart"), {
    grid: { ...baseGrid, top: 20, bottom: 10 },
    tooltip: { trigger: "axis", valueFormatter: fmtInt },
    xAxis: { type: "category", data: trend.map((p) => fmtPeriod(p.date)) },
    yAxis: { type: "value", axisLabel: { formatter: fmtInt } },
    series: [{ type: "line", name: t("col.visitors"), data: trend.map((p) => p.visitors),
      smooth: true, areaStyle: { opacity: 0.12 }, symbolSize: 5 }],
  }, { hasData, emptyMessage: t("empty.noTrend") });
}

const COLUMNS = [
  ["rank", "col.rank", null],
  ["name", "col.store", (s) => storeName(s)],
  ["region", "col.region", (s) => s.region],
  ["franchisee", "col.franchisee", (s) => s.franchisee],
  ["visitors", "col.visitors", (s) => s.visitors],
  ["visitors_last_week", "col.lastWeek", (s) => s.visitors_last_week],
  ["change_pct", "col.change", (s) => s.change_pct],
  ["conversion", "col.conversion", (s) => s.conversion],
  ["avg_dwell_s", "col.dwell", (s) => s.avg_dwell_s],
  ["occupancy_now", "col.occupancy", (s) => s.occupancy_now],
  ["online", "col.status", (s) => (s.online ? 1 : 0)],
];

function sortedStores(stores) {
  const col = COLUMNS.find((c) => c[0] === state.sort.key) || COLUMNS[4];
  const get = col[2];
  return [...stores].sort((a, b) => {
    const va = get(a);
    const vb = get(b);
    if (va === vb) return storeName(a).localeCompare(storeName(b));
    if (va === null || va === undefined) return 1;
    if (vb === null || vb === undefined) return -1;
    return (va < vb ? -1 : 1) * state.sort.dir;
  });
}

function statusCell(s) {
  const tz = state.byId.get(s.store_id)?.timezone;
  const badge = el("span", { class: `badge ${s.online ? "ok" : "bad"}` },
    t(s.online ? "dev.online" : "dev.offline"));
  return el("td", { "data-col": "online", title: fmtInstant(s.last_seen, tz) }, badge);
}

function renderRanking(ov) {
  const table = $("#ranking");
  const period = periodText(ov);
  const titles = { visitors: period.visitors, visitors_last_week: period.before };
  const head = el("tr", {}, COLUMNS.map(([key, label]) => {
    const active = state.sort.key === key;
    const th = el("th", { "data-col": key, class: key === "rank" ? "" : "sortable",
      "aria-sort": active ? (state.sort.dir < 0 ? "descending" : "ascending") : null },
    titles[key] ?? t(label), active ? (state.sort.dir < 0 ? " ▾" : " ▴") : "");
    if (key !== "rank") {
      th.addEventListener("click", () => {
        state.sort = { key, dir: active ? -state.sort.dir : (key === "name" ? 1 : -1) };
        renderRanking(state.overview);
      });
    }
    return th;
  }));
  const sim = byStore(state.simulated);
  const rows = sortedStores(ov.stores || []).map((s, i) => el("tr", { "data-store-id": s.store_id,
    class: s.online ? "" : "offline" },
  el("td", { "data-col": "rank", class: "num" }, fmtInt(i + 1)),
  el("td", { "data-col": "name" }, el("a", { href: `store.html?store=${encodeURIComponent(s.store_id)}` },
    storeName(s)), simulatedMark(sim.get(s.store_id))),
  el("td", { "data-col": "region" }, s.region),
  el("td", { "data-col": "franchisee" }, s.franchisee),
  el("td", { "data-col": "visitors", class: "num" }, fmtInt(s.visitors)),
  el("td", { "data-col": "visitors_last_week", class: "num" }, fmtInt(s.visitors_last_week)),
  el("td", { "data-col": "change_pct", class: `num ${s.change_pct > 0 ? "up" : s.change_pct < 0 ? "down" : ""}` },
    fmtChangePct(s.change_pct)),
  el("td", { "data-col": "conversion", class: "num" }, fmtRatio(s.conversion)),
  el("td", { "data-col": "avg_dwell_s", class: "num" }, fmtDuration(s.avg_dwell_s)),
  el("td", { "data-col": "occupancy_now", class: "num" }, fmtInt(s.occupancy_now)),
  statusCell(s)));
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
  $("#ranking-empty").hidden = rows.length > 0;
  if (!rows.length) showEmpty($("#ranking-empty"), t("empty.noStores"));
}

function renderDevices(ov) {
  const box = $("#devices");
  const offline = (ov.stores || []).filter((s) => !s.online);
  const problems = [];
  for (const d of state.devices || []) {
    for (const c of d.cameras || []) {
      if (c.state !== "ok") problems.push({ d, c });
    }
  }
  const parts = [];
  if (!offline.length) {
    parts.push(el("p", { class: "ok-line" }, t("dev.allOnline", { n: fmtInt(ov.stores_total) })));
  } else {
    parts.push(el("h3", {}, `${t("dev.offlineList")} (${fmtInt(offline.length)})`));
    parts.push(el("ul", { class: "offline-list" }, offline.map((s) => {
      const tz = state.byId.get(s.store_id)?.timezone;
      return el("li", { "data-store-id": s.store_id },
        el("span", { class: "badge bad" }, t("dev.offline")), " ",
        el("a", { href: `store.html?store=${encodeURIComponent(s.store_id)}` }, storeName(s)), " · ",
        el("span", { class: "muted" }, `${t("col.lastSeen")}: ${s.last_seen ? fmtInstant(s.last_seen, tz) : t("dev.neverSeen")}`));
    })));
  }
  if (problems.length) {
    parts.push(el("h3", {}, t("dev.cameraProblems")));
    parts.push(el("ul", { class: "offline-list" }, problems.slice(0, 50).map(({ d, c }) => el("li", {},
      el("span", { class: "badge warn" }, t(`camState.${c.state}`)), " ",
      `${storeName(state.byId.get(d.store_id)) || d.store_id} / ${c.camera_id}`,
      c.last_error ? el("span", { class: "muted" }, ` · ${c.last_error}`) : null))));
  }
  parts.push(...modelParts(state.devices || []));
  box.replaceChildren(...parts);
}

// Which detector each device runs (HQ's model updates, docs/operations.md): devices per
// model, each device's models, and the updates a device refused or rolled back.
function modelParts(devices) {
  const label = (m) => `${m.name} · ${String(m.sha256 || "").slice(0, 12)}`;
  const runs = new Map();
  for (const d of devices) for (const m of d.models || []) runs.set(label(m), (runs.get(label(m)) || 0) + 1);
  const parts = [];
  if (runs.size) {
    parts.push(el("h3", {}, t("dev.models")));
    parts.push(el("ul", { class: "offline-list model-list" }, [...runs].sort().map(([k, n]) =>
      el("li", {}, el("code", {}, k), " · ", t("dev.modelDevices", { n: fmtInt(n) })))));
    parts.push(el("details", {}, el("summary", {}, t("dev.modelPerDevice")),
      el("ul", { class: "offline-list" }, devices.slice(0, 500).map((d) =>
        el("li", { "data-device": `${d.store_id}/${d.device_id}` },
          `${storeName(state.byId.get(d.store_id)) || d.store_id} / ${d.device_id}: `,
          el("code", {}, (d.models || []).map(label).join(", ") || "–"))))));
  }
  const refused = devices.filter((d) => d.model_error);
  if (refused.length) {
    parts.push(el("h3", {}, t("dev.modelErrors")));
    parts.push(el("ul", { class: "offline-list" }, refused.slice(0, 50).map((d) => el("li", {},
      el("span", { class: "badge warn" }, t("dev.modelRefused")), " ",
      `${storeName(state.byId.get(d.store_id)) || d.store_id} / ${d.device_id}`,
      el("span", { class: "muted" }, ` · ${d.model_error}`)))));
  }
  return parts;
}

function render() {
  const ov = state.overview;
  if (!ov) return;
  fillSelect($("#f-region"), [...new Set(state.stores.map((s) => s.region))].sort(), t("filter.all"));
  fillSelect($("#f-franchisee"), [...new Set(state.stores.map((s) => s.franchisee))].sort(),
    t("filter.all"));
  for (const opt of $("#f-range").options) opt.textContent = t("range.days", { n: fmtInt(Number(opt.value)) });
  for (const opt of $("#f-days").options) {
    opt.textContent = opt.value === "1" ? t("period.day") : t("range.days", { n: fmtInt(Number(opt.value)) });
  }
  showSimulated(state.simulated, (ov.stores || []).length);
  renderKpis(ov);
  renderTrend(ov);
  renderRanking(ov);
  renderDevices(ov);
  renderMembers($("#members"), state.mw?.members);
  renderWeather($("#weather"), state.mw?.weather);
}

/** The page's tables as CSV (js/csv.js): the ranking as sorted on screen, for the period. */
function csvExports() {
  const ov = () => state.overview || {};
  const name = (what) => () => {
    const f = filters();
    return `${what}-${fileSafe(f.region)}-${fileSafe(f.franchisee)}-${fileSafe(ov().period_start)}_${fileSafe(ov().date)}.csv`;
  };
  const period = () => ({ period_start: ov().period_start, date: ov().date, days: ov().days });
  return [
    { card: "section:has(> #trend-chart)", id: "csv-trend", name: name("trend"),
      table: () => objectTable(ov().trend || []) },
    { card: "section:has(> .table-wrap > #ranking)", id: "csv-ranking", name: name("stores"),
      table: () => objectTable(sortedStores(ov().stores || []), period()) },
    { card: "section:has(> #devices)", id: "csv-devices", name: name("devices"),
      table: () => deviceTable(state.devices) },
    { card: "#members-card", id: "csv-members", name: name("members"),
      table: () => membersTable(state.mw?.members, { start: ov().period_start, end: ov().date }) },
    { card: "#weather-card", id: "csv-weather", name: name("weather"),
      table: () => weatherTable(state.mw?.weather) },
  ];
}

function fail(err) {
  $("#page-error").textContent = errorText(err);
  $("#page-error").hidden = false;
}

boot({ load, render, fail });

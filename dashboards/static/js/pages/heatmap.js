// Merchandiser view: a camera's dwell heatmap over the floor plan (or a plain grid), two
// periods side by side with their difference, per display zone passing / stop rate / dwell,
// export to CSV (from the data) and PNG (from the charts' canvases).
import { apiBlob, apiGet, orWhen } from "../api.js";
import { FONT, chartOf, drawChart } from "../charts.js";
import { csvText as tableCsv, download, downloadCsv } from "../csv.js";
import { $, el, errorText, escapeHtml } from "../dom.js";
import {
  addDays, daysBetween, fmtChangePct, fmtDay, fmtDuration, fmtDurationDiff, fmtInt, fmtNum,
  fmtRatio, todayIn,
} from "../format.js";
import { storeName, t } from "../i18n.js";
import { boot, newestOnly, reloading } from "../shell.js";
import { showSimulated } from "../simulated.js";

const storeId = new URLSearchParams(location.search).get("store");
const state = { store: null, plan: null, planBroken: false, a: null, b: null, simulated: null };
const PERIODS = { a: ["#a-start", "#a-end"], b: ["#b-start", "#b-end"] };

function period(key) {
  const [s, e] = PERIODS[key];
  return { start: $(s).value, end: $(e).value };
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("floor plan image could not be decoded"));
    img.src = url;
  });
}

async function fetchPeriod(key) {
  const p = period(key);
  const enc = encodeURIComponent(storeId);
  const camera = $("#f-camera").value;
  const [heat, zones] = await Promise.all([
    camera
      ? orWhen(apiGet(`/stores/${enc}/heatmap`, { ...p, camera_id: camera }), [404],
        (err) => ({ missing: err.detail || err.code }))
      : Promise.resolve({ missing: "no camera" }),
    apiGet(`/stores/${enc}/zones`, p),
  ]);
  const cam = camera ? zones.zones.filter((z) => !z.camera_id || z.camera_id === camera) : zones.zones;
  return { ...p, days: daysBetween(p.start, p.end), heat, zones: cam };
}

/** Both periods' figures as the filters are now. */
async function gatherData() {
  // simulated windows anywhere in the two periods (the span from the earlier start to the later end)
  const first = [period("a").start, period("b").start].sort()[0];
  const last = [period("a").end, period("b").end].sort()[1];
  const [a, b, simulated] = await Promise.all([fetchPeriod("a"), fetchPeriod("b"),
    apiGet("/simulated", { store_id: storeId, start: first, end: last })]);
  return { a, b, simulated };
}

const fetchData = newestOnly(gatherData, state);

async function load() {
  if (!storeId) throw Object.assign(new Error("no store"), { noStore: true });
  // Ask a store-scoped endpoint first so a store outside the token's scope gives its 403.
  const today0 = todayIn();
  await apiGet(`/stores/${encodeURIComponent(storeId)}/zones`, { start: today0, end: today0 });
  const stores = await apiGet("/stores");
  state.store = stores.find((s) => s.store_id === storeId) || null;
  const cams = state.store ? state.store.cameras || [] : [];
  const select = $("#f-camera");
  select.replaceChildren(...cams.map((c) => el("option", { value: c.camera_id },
    c.name ? `${c.name} (${c.camera_id})` : c.camera_id)));
  const floor = cams.find((c) => c.role !== "entrance") || cams[0];
  const q = new URLSearchParams(location.search);
  select.value = q.get("camera") || (floor ? floor.camera_id : "");
  const today = todayIn(state.store?.timezone);
  // Default: the last 7 full days against the 7 before them (today is still incomplete).
  $("#b-end").value = q.get("b_end") || addDays(today, -1);
  $("#b-start").value = q.get("b_start") || addDays(today, -7);
  $("#a-end").value = q.get("a_end") || addDays(today, -8);
  $("#a-start").value = q.get("a_start") || addDays(today, -14);
  if (state.store && state.store.has_floorplan) await loadPlan();
  for (const id of ["#f-camera", ...PERIODS.a, ...PERIODS.b]) {
    $(id).addEventListener("change", () => {
      for (const [s, e] of Object.values(PERIODS)) if ($(s).value > $(e).value) $(s).value = $(e).value;
      reloading(async () => { if (await fetchData()) render(); }).catch(fail);
    });
  }
  $("#export-csv").addEventListener("click", exportCsv);
  $("#export-png").addEventListener("click", exportPng);
  await fetchData();
}

/**
 * The store's floor plan image, or, when the stored file does not load (corrupt, stored
 * before the gateway checked uploads), no plan and a note saying so: the heatmaps are then
 * drawn on a plain grid instead of the page failing.
 */
async function loadPlan() {
  const blob = await orWhen(apiBlob(`/stores/${encodeURIComponent(storeId)}/floorplan`), [404],
    () => null);
  if (!blob) return;
  const url = URL.createObjectURL(blob);
  try {
    state.plan = await loadImage(url);
  } catch {
    state.plan = null;
    state.planBroken = true;
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** Cells as [x, y, value per day]; y counts rows from the top of the frame. */
function cellsPerDay(heat, days) {
  const out = [];
  for (let i = 0; i < heat.cells.length; i++) {
    const v = heat.cells[i] / days;
    if (v !== 0) out.push([i % heat.cols, Math.floor(i / heat.cols), Number(v.toFixed(3))]);
  }
  return out;
}

/** The floor plan goes under a heatmap only when the gateway mapped it onto the plan. */
function onPlan(heat) {
  return Boolean(state.plan) && heat.space === "floor";
}

function heatOption(container, heat, data, visualMap) {
  const cols = [...Array(heat.cols).keys()];
  const rows = [...Array(heat.rows).keys()];
  const graphic = [];
  const w = container.clientWidth;
  const h = container.clientHeight - 40;
  const plan = onPlan(heat);
  if (plan) {
    graphic.push({ type: "image", left: 0, top: 0, z: -1, silent: true,
      style: { image: state.plan, width: w, height: h, opacity: 0.9 } });
  }
  return {
    backgroundColor: "#ffffff",
    grid: { left: 0, right: 0, top: 0, bottom: 40 },
    graphic,
    tooltip: { formatter: (p) => escapeHtml(`${fmtNum(p.value[2], 1)} s`) }, // HTML: escaped
    xAxis: { type: "category", data: cols, show: !plan, axisLabel: { show: false },
      axisTick: { show: false }, splitLine: { show: !plan, lineStyle: { color: "#e5e7eb" } },
      splitArea: { show: false } },
    yAxis: { type: "category", data: rows, inverse: true, show: !plan, axisLabel: { show: false },
      axisTick: { show: false }, splitLine: { show: !plan, lineStyle: { color: "#e5e7eb" } } },
    visualMap: { orient: "horizontal", left: "center", bottom: 0, itemHeight: 160, calculable: false,
      textStyle: { fontFamily: FONT, fontSize: 11 }, formatter: (v) => fmtNum(v, 0), ...visualMap },
    series: [{ type: "heatmap", data, emphasis: { itemStyle: { borderColor: "#111", borderWidth: 1 } } }],
  };
}

function renderHeat(key, title) {
  const p = state[key];
  $(`#title-${key}`).textContent = `${title} · ${fmtDay(p.start)} – ${fmtDay(p.end)}`;
}

function renderPanels() {
  const { a, b } = state;
  renderHeat("a", t("hm.before"));
  renderHeat("b", t("hm.after"));
  $("#title-d").textContent = `${t("hm.diff")} (${t("hm.after")} − ${t("hm.before")})`;
  const warm = ["rgba(255,255,178,0.15)", "rgba(254,204,92,0.6)", "rgba(253,141,60,0.75)",
    "rgba(240,59,32,0.85)", "rgba(189,0,38,0.9)"];
  const okA = !a.heat.missing;
  const okB = !b.heat.missing;
  const da = okA ? cellsPerDay(a.heat, a.days) : [];
  const db = okB ? cellsPerDay(b.heat, b.days) : [];
  const max = Math.max(1, ...da.map((c) => c[2]), ...db.map((c) => c[2]));
  const vm = { min: 0, max, inRange: { color: warm }, text: [t("hm.scale"), ""] };
  for (const [key, ok, data] of [["a", okA, da], ["b", okB, db]]) {
    const box = $(`#heat-${key}`);
    const p = state[key];
    const msg = ok ? t("empty.noData") : t("empty.noHeatmap", { reason: p.heat.missing });
    drawChart(box, ok ? heatOption(box, p.heat, data, vm) : {}, { hasData: ok && data.length > 0,
      emptyMessage: msg });
  }
  const boxD = $("#heat-d");
  const same = okA && okB && a.heat.cols === b.heat.cols && a.heat.rows === b.heat.rows;
  if (same) {
    const diff = a.heat.cells.map((_, i) => [i % a.heat.cols, Math.floor(i / a.heat.cols),
      Number((b.heat.cells[i] / b.days - a.heat.cells[i] / a.days).toFixed(3))]);
    const span = Math.max(1, ...diff.map((c) => Math.abs(c[2])));
    drawChart(boxD, heatOption(boxD, a.heat, diff.filter((c) => c[2] !== 0), { min: -span, max: span,
      inRange: { color: ["rgba(37,99,235,0.85)", "rgba(147,197,253,0.5)", "rgba(255,255,255,0)",
        "rgba(252,165,165,0.5)", "rgba(220,38,38,0.85)"] }, text: [`+ ${t("hm.scale")}`, "−"] }),
    // Both periods may hold data and still not differ (the same days picked twice): say that.
    { hasData: diff.some((c) => c[2] !== 0),
      emptyMessage: da.length || db.length ? t("hm.noDifference") : t("empty.noData") });
  } else {
    drawChart(boxD, {}, { hasData: false,
      emptyMessage: t("empty.noHeatmap", { reason: (a.heat.missing || b.heat.missing) ?? "" }) });
  }
  const note = $("#plan-note");
  const shown = [a, b].find((p) => !p.heat.missing);
  const mapped = !state.planBroken && (!shown || onPlan(shown.heat));
  note.hidden = mapped;
  note.textContent = mapped ? "" : state.planBroken ? t("hm.planBroken", { id: storeId })
    : state.plan ? t("hm.noMapping", { camera: $("#f-camera").value, id: storeId })
      : t("hm.noPlan", { id: storeId });
}

/** Per zone: both periods and their difference (per day for passing, so lengths may differ). */
function zoneRows() {
  const { a, b } = state;
  const byA = new Map(a.zones.map((z) => [z.zone, z]));
  const byB = new Map(b.zones.map((z) => [z.zone, z]));
  const names = [...new Set([...byA.keys(), ...byB.keys()])];
  return names.map((zone) => {
    const za = byA.get(zone);
    const zb = byB.get(zone);
    const perA = za ? za.entries / a.days : null;
    const perB = zb ? zb.entries / b.days : null;
    return {
      zone, za, zb, perA, perB,
      perChange: perA ? ((perB ?? 0) - perA) / perA * 100 : null,
      stopDiff: za && zb && za.stop_rate !== null && zb.stop_rate !== null
        ? (zb.stop_rate - za.stop_rate) * 100 : null,
      dwellDiff: za && zb ? zb.dwell_mean_s - za.dwell_mean_s : null,
    };
  });
}

function renderTable() {
  const rows = zoneRows();
  const A = t("hm.before");
  const B = t("hm.after");
  const D = t("hm.diff");
  const head1 = el("tr", {}, el("th", { rowspan: 2 }, t("col.zone")),
    ...[["col.entries", 2], ["col.perDay", 3], ["col.stopRate", 3], ["col.dwell", 3]]
      .map(([k, n]) => el("th", { colspan: n, class: "num group" }, t(k))));
  const head2 = el("tr", {}, ...[A, B, A, B, D, A, B, D, A, B, D].map((x) => el("th", { class: "num" }, x)));
  const sign = (v) => (v > 0 ? "up" : v < 0 ? "down" : "");
  const pp = (v) => (v === null ? "—" : t("unit.pp", { v: fmtNum(v, 1).replace(/^(?=\d)/, v > 0 ? "+" : "") }));
  const body = rows.map((r) => el("tr", { "data-zone": r.zone },
    el("td", {}, r.zone),
    el("td", { class: "num", "data-col": "entries-a" }, fmtInt(r.za?.entries)),
    el("td", { class: "num", "data-col": "entries-b" }, fmtInt(r.zb?.entries)),
    el("td", { class: "num" }, fmtNum(r.perA, 1)),
    el("td", { class: "num" }, fmtNum(r.perB, 1)),
    el("td", { class: `num ${sign(r.perChange)}` }, fmtChangePct(r.perChange)),
    el("td", { class: "num", "data-col": "stop-a" }, fmtRatio(r.za?.stop_rate)),
    el("td", { class: "num", "data-col": "stop-b" }, fmtRatio(r.zb?.stop_rate)),
    el("td", { class: `num ${sign(r.stopDiff)}` }, pp(r.stopDiff)),
    el("td", { class: "num", "data-col": "dwell-a" }, fmtDuration(r.za?.dwell_mean_s)),
    el("td", { class: "num", "data-col": "dwell-b" }, fmtDuration(r.zb?.dwell_mean_s)),
    el("td", { class: `num ${sign(r.dwellDiff)}` }, fmtDurationDiff(r.dwellDiff))));
  const table = $("#zone-compare");
  if (!body.length) {
    table.replaceChildren(el("tbody", {}, el("tr", {}, el("td", { class: "empty-state" }, t("empty.noZones")))));
    return;
  }
  table.replaceChildren(el("thead", {}, head1, head2), el("tbody", {}, body));
}

function render() {
  const s = state.store;
  $("#store-name").textContent = s ? storeName(s) : storeId;
  $("#tz-note").textContent = t("note.storeTime", { tz: s ? s.timezone : "?" });
  document.title = `storesense · ${t("hm.title")} · ${$("#store-name").textContent}`;
  showSimulated(state.simulated, 1);
  renderPanels();
  renderTable();
}

function baseName(ext) {
  const { a, b } = state;
  return `heatmap-${storeId}-${$("#f-camera").value || "all"}-${a.start}_${a.end}-vs-${b.start}_${b.end}.${ext}`;
}

/** CSV from the data (machine-readable numbers, not the localised text; js/csv.js). */
export function csvText() {
  const { a, b } = state;
  const cols = ["store_id", "camera_id", "zone", "before_start", "before_end", "after_start", "after_end",
    "entries_before", "entries_after", "entries_per_day_before", "entries_per_day_after",
    "entries_per_day_change_pct", "stop_rate_before", "stop_rate_after", "stop_rate_change_pp",
    "dwell_mean_s_before", "dwell_mean_s_after", "dwell_mean_change_s"];
  const num = (v, d = 4) => (v === null || v === undefined ? null : Number(v.toFixed(d)));
  // ids and zone names are text from the registry and devices: csvText neutralises formulas
  return tableCsv(cols, zoneRows().map((r) => [storeId, $("#f-camera").value, r.zone, a.start, a.end,
    b.start, b.end,
    num(r.za?.entries, 0), num(r.zb?.entries, 0), num(r.perA, 2), num(r.perB, 2), num(r.perChange, 2),
    num(r.za?.stop_rate), num(r.zb?.stop_rate), num(r.stopDiff, 2), num(r.za?.dwell_mean_s, 2),
    num(r.zb?.dwell_mean_s, 2), num(r.dwellDiff, 2)]));
}

function exportCsv() {
  downloadCsv(baseName("csv"), csvText());
}

/** One PNG with the three panels side by side and their titles. */
export async function pngDataUrl() {
  const keys = ["a", "b", "d"];
  const images = [];
  for (const k of keys) {
    const chart = chartOf($(`#heat-${k}`));
    if (chart) images.push([k, await loadImage(chart.getDataURL({ pixelRatio: 2, backgroundColor: "#fff" }))]);
  }
  if (!images.length) return null;
  const pad = 20;
  const titleH = 48;
  const w = images.reduce((acc, [, img]) => acc + img.width + pad, pad);
  const h = Math.max(...images.map(([, img]) => img.height)) + titleH + pad;
  const canvas = el("canvas", { width: w, height: h });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = "#1f2937";
  ctx.font = `28px ${FONT}`;
  let x = pad;
  for (const [k, img] of images) {
    ctx.fillText($(`#title-${k}`).textContent, x, 34);
    ctx.drawImage(img, x, titleH);
    x += img.width + pad;
  }
  return canvas.toDataURL("image/png");
}

async function exportPng() {
  const url = await pngDataUrl();
  if (!url) return;
  // decoded here: fetch() of a data: URL is a connection the page's CSP (connect-src) refuses
  const bytes = Uint8Array.from(atob(url.split(",")[1]), (c) => c.charCodeAt(0));
  download(baseName("png"), new Blob([bytes], { type: "image/png" }));
}

function fail(err) {
  $("#heatmap-body").hidden = true;
  const box = $("#page-error");
  box.hidden = false;
  box.textContent = err && err.noStore ? t("err.nostore") : errorText(err, { id: storeId });
}

// The floor plan is drawn at the panel's pixel size: redraw the panels when it changes.
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (state.a && state.b) renderPanels(); }, 150);
});

window.storesenseHeatmap = { csvText, pngDataUrl };
boot({ load, render, fail });

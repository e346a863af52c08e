// Alerts page: open and resolved alerts of the stores in the token's scope (GET /alerts),
// newest first with open ones on top; refreshes itself every REFRESH_MS.
import { apiGet } from "../api.js";
import { addCsvButtons, fileSafe, objectTable } from "../csv.js";
import { $, el, errorText, showEmpty } from "../dom.js";
import { fmtInstant, fmtNum } from "../format.js";
import { storeName, t } from "../i18n.js";
import { boot, reloading } from "../shell.js";
import { showSimulated } from "../simulated.js";

const REFRESH_MS = 15_000;
const params = new URLSearchParams(location.search);
const state = { stores: [], alerts: [] };

async function fetchAlerts() {
  state.alerts = await apiGet("/alerts", {
    state: $("#f-state").value, store_id: $("#f-store").value || null });
}

async function load() {
  state.stores = await apiGet("/stores");
  const select = $("#f-store");
  select.replaceChildren(el("option", { value: "" }, "—"),
    ...state.stores.map((s) => el("option", { value: s.store_id }, s.store_id)));
  select.value = params.get("store") || "";
  $("#f-state").value = params.get("state") || "open";
  for (const id of ["#f-state", "#f-store"]) $(id).addEventListener("change", refresh);
  $("#refresh").addEventListener("click", refresh);
  setInterval(() => { if (document.body.dataset.state === "ready") refresh(); }, REFRESH_MS);
  await fetchAlerts();
  // traffic alerts are judged on stored windows: say when some of today's are simulated
  showSimulated(await apiGet("/simulated"), state.stores.length);
  // the alerts shown, as CSV (js/csv.js); detail as its JSON, machine-readable
  addCsvButtons([{ into: "#alerts-body .actions", id: "csv-alerts",
    name: () => `alerts-${fileSafe($("#f-state").value)}-${fileSafe($("#f-store").value)}.csv`,
    table: () => objectTable(state.alerts.map((a) => ({ ...a, detail: JSON.stringify(a.detail ?? {}) }))) }]);
}

function refresh() {
  reloading(async () => { await fetchAlerts(); render(); }).catch(fail);
}

/** Detail numbers in the reader's language; strings (device states) as sent. */
function detailText(a) {
  const vars = {};
  for (const [k, v] of Object.entries(a.detail || {})) {
    vars[k] = typeof v === "number" ? fmtNum(v, Number.isInteger(v) ? 0 : 1) : String(v);
  }
  return t(`al.detail.${a.kind}`, vars);
}

function render() {
  const byId = Object.fromEntries(state.stores.map((s) => [s.store_id, s]));
  for (const o of $("#f-store").options) {
    if (o.value) o.textContent = storeName(byId[o.value]) || o.value;
  }
  const box = $("#alerts-box");
  if (!state.alerts.length) {
    showEmpty(box, t("al.none"));
    return;
  }
  const table = el("table", { id: "alerts", class: "data" });
  box.replaceChildren(el("div", { class: "table-wrap" }, table));
  const tz = (id) => byId[id] && byId[id].timezone;
  table.replaceChildren(
    el("thead", {}, el("tr", {}, ...["kind", "store", "subject", "detail", "raised", "status"]
      .map((c) => el("th", {}, t(`al.col.${c}`))))),
    el("tbody", {}, ...state.alerts.map((a) => el("tr", {
      class: a.resolved_at ? "" : "offline", dataset: { kind: a.kind, open: String(!a.resolved_at) } },
    el("td", {}, t(`al.kind.${a.kind}`)),
    el("td", {}, el("a", { href: `store.html?store=${encodeURIComponent(a.store_id)}` },
      storeName(byId[a.store_id]) || a.store_id)),
    el("td", {}, a.kind === "traffic_low" || a.kind === "occupancy_high" ? "" : a.subject),
    // wraps: a sentence, the one column that may be long
    el("td", { class: "detail", style: "white-space:normal;min-width:14em" }, detailText(a)),
    el("td", {}, fmtInstant(a.raised_at, tz(a.store_id))),
    el("td", {}, a.resolved_at
      ? el("span", { class: "badge ok" }, t("al.resolvedAt", { t: fmtInstant(a.resolved_at, tz(a.store_id)) }))
      : el("span", { class: "badge bad" }, t("al.open"))),
    ))),
  );
}

function fail(err) {
  $("#alerts-body").hidden = true;
  const box = $("#page-error");
  box.hidden = false;
  box.textContent = errorText(err);
}

boot({ load, render, fail });

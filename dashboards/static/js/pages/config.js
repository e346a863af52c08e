// Camera setup: a camera's lines and zones as JSON, published from HQ as the camera's next
// version (PUT /config/{store}/{camera}); what each device says it runs and why it refused a
// version; the history, where any earlier version can be rolled back to (a new version with
// its configuration). Franchisee tokens see all of it and change nothing (docs/api.md).
import { ApiError, apiGet, apiSend } from "../api.js";
import { $, el, errorText, showEmpty } from "../dom.js";
import { fmtInstant } from "../format.js";
import { storeName, t } from "../i18n.js";
import { boot, reloading } from "../shell.js";

const params = new URLSearchParams(location.search);
const state = { me: null, stores: [], cam: null, message: null };
const DEFAULT = { lines: [], zones: [] };
const NEW_LINE = { name: "entrance", points: [0.1, 0.6, 0.9, 0.6], in_direction: "left_to_right" };
const NEW_ZONE = { name: "zone", polygon: [[0.3, 0.3], [0.6, 0.3], [0.6, 0.6], [0.3, 0.6]], kind: "display" };

const storeId = () => $("#f-store").value;
const cameraId = () => $("#f-camera").value;
const isHq = () => state.me && state.me.scope === "hq";

function camerasOf(id) {
  const s = state.stores.find((x) => x.store_id === id);
  return s ? s.cameras.map((c) => c.camera_id) : [];
}

function fillCameras(wanted) {
  const cams = camerasOf(storeId());
  $("#f-camera").replaceChildren(...cams.map((c) => el("option", { value: c }, c)));
  $("#f-camera").value = cams.includes(wanted) ? wanted : (cams[0] || "");
}

async function fetchCamera() {
  state.cam = cameraId()
    ? await apiGet(`/config/${encodeURIComponent(storeId())}/${encodeURIComponent(cameraId())}`)
    : null;
  const latest = state.cam && state.cam.history[0];
  setEditor(latest ? latest.analytics : DEFAULT);
}

async function load(me) {
  state.me = me;
  state.stores = await apiGet("/stores");
  $("#f-store").replaceChildren(...state.stores.map((s) => el("option", { value: s.store_id }, s.store_id)));
  const wanted = params.get("store");
  if (wanted && state.stores.some((s) => s.store_id === wanted)) $("#f-store").value = wanted;
  fillCameras(params.get("camera"));
  $("#f-store").addEventListener("change", () => { fillCameras(null); reload(); });
  $("#f-camera").addEventListener("change", reload);
  $("#cf-json").style.cssText = "width:100%;box-sizing:border-box;font-family:monospace;font-size:13px";
  $("#cf-json").addEventListener("input", () => renderSummary());
  $("#add-line").addEventListener("click", () => append("lines", NEW_LINE));
  $("#add-zone").addEventListener("click", () => append("zones", NEW_ZONE));
  $("#publish").addEventListener("click", publish);
  await fetchCamera();
}

function reload() {
  state.message = null;
  const q = new URLSearchParams({ store: storeId(), camera: cameraId() });
  history.replaceState(null, "", `?${q}`);
  reloading(async () => { await fetchCamera(); render(); }).catch(fail);
}

function setEditor(analytics) {
  $("#cf-json").value = JSON.stringify(analytics, null, 2);
}

function parsed() {
  try {
    return { value: JSON.parse($("#cf-json").value) };
  } catch (err) {
    return { error: t("cf.badJson", { msg: err.message }) };
  }
}

function append(key, item) {
  const p = parsed();
  if (p.error) return say(p.error, true);
  const value = p.value && typeof p.value === "object" ? p.value : {};
  value[key] = [...(Array.isArray(value[key]) ? value[key] : []), structuredClone(item)];
  setEditor(value);
  renderSummary();
}

function say(text, bad = false) {
  state.message = { text, bad };
  const box = $("#cf-msg");
  box.textContent = text;
  box.className = bad ? "error-state" : "ok-line";
}

async function send(work) {
  try {
    const row = await work();
    await fetchCamera();
    render();
    return row;
  } catch (err) {
    say(err instanceof ApiError && err.status === 422 ? err.detail : errorText(err), true);
    return null;
  }
}

function sentText(row) {
  return row.published ? t("cf.published", { v: row.version }) : t("cf.stored", { v: row.version, why: row.not_published_because });
}

async function publish() {
  const p = parsed();
  if (p.error) return say(p.error, true);
  const path = `/config/${encodeURIComponent(storeId())}/${encodeURIComponent(cameraId())}`;
  const row = await send(() => apiSend("PUT", path, { analytics: p.value }));
  if (row) say(sentText(row), !row.published);
}

async function rollback(version) {
  const path = `/config/${encodeURIComponent(storeId())}/${encodeURIComponent(cameraId())}/rollback`;
  const row = await send(() => apiSend("POST", path, { version }));
  if (row) say(`${t("cf.rolledBack", { v: row.version, of: version })} ${sentText(row)}`, !row.published);
}

function renderSummary() {
  const p = parsed();
  $("#cf-summary").textContent = p.error || t("cf.summary", {
    lines: (p.value.lines || []).length, zones: (p.value.zones || []).length });
}

function versionText(r) {
  if (!r.config_version) return t("cf.none");
  return r.version ? `${r.version} · ${r.config_version}` : t("cf.unknownVersion", { v: r.config_version });
}

function renderRunning() {
  const rows = state.cam ? state.cam.running : [];
  if (!rows.length) return showEmpty($("#running"), t("cf.noDevice"));
  $("#running").replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "data", id: "running-table" },
    el("thead", {}, el("tr", {}, ...["device", "version", "error"].map((c) => el("th", {}, t(`cf.col.${c}`))))),
    el("tbody", {}, ...rows.map((r) => el("tr", { dataset: { device: r.device_id, version: r.config_version || "" } },
      el("td", {}, r.device_id),
      el("td", { class: "version" }, versionText(r)),
      el("td", { class: "config-error", style: "white-space:normal;min-width:14em" }, r.config_error || t("cf.none"))))))));
}

function sourceText(h) {
  return h.source === "rollback" ? t("cf.source.rollback", { v: h.rollback_of }) : t(`cf.source.${h.source}`);
}

function renderHistory() {
  const rows = state.cam ? state.cam.history : [];
  if (!rows.length) return showEmpty($("#history"), t("cf.noHistory"));
  const tz = (state.stores.find((s) => s.store_id === storeId()) || {}).timezone;
  $("#history").replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "data", id: "history-table" },
    el("thead", {}, el("tr", {}, ...["version", "when", "source", "by", "sent", "content"].map((c) => el("th", {}, t(`cf.col.${c}`))), el("th", {}))),
    el("tbody", {}, ...rows.map((h, i) => el("tr", { dataset: { version: String(h.version) } },
      el("td", {}, `${h.version} · ${h.config_version}`),
      el("td", {}, fmtInstant(h.created_at, tz)),
      el("td", {}, sourceText(h)),
      el("td", {}, h.created_by),
      el("td", {}, el("span", { class: `badge ${h.published_at ? "ok" : "warn"}` }, t(h.published_at ? "cf.sent.yes" : "cf.sent.no"))),
      el("td", {}, t("cf.summary", { lines: h.analytics.lines.length, zones: h.analytics.zones.length })),
      el("td", { class: "row-actions" },
        el("button", { type: "button", class: "secondary edit", onclick: () => { setEditor(h.analytics); renderSummary(); } }, t("cf.edit")),
        isHq() && i > 0 ? el("button", { type: "button", class: "secondary rollback", onclick: () => rollback(h.version) }, t("cf.rollback")) : null)))))));
}

function render() {
  for (const o of $("#f-store").options) {
    o.textContent = storeName(state.stores.find((s) => s.store_id === o.value)) || o.value;
  }
  $("#hq-only").hidden = isHq();
  $("#no-cameras").hidden = Boolean(cameraId());
  for (const id of ["#publish", "#add-line", "#add-zone"]) $(id).hidden = !isHq() || !cameraId();
  renderRunning();
  renderHistory();
  renderSummary();
  if (state.message) say(state.message.text, state.message.bad);
}

function fail(err) {
  $("#config-body").hidden = true;
  const box = $("#page-error");
  box.hidden = false;
  box.textContent = errorText(err);
}

boot({ load, render, fail });

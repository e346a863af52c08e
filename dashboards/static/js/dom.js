// Tiny DOM helpers shared by the pages: build elements, show empty states and errors.
import { ApiError } from "./api.js";
import { t } from "./i18n.js";

/** el("td", {class: "num", dataset: {v: 3}}, "text", child) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    // through CSSOM: a style="" attribute set from script is refused by the page's CSP
    else if (k === "style") node.style.cssText = String(v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/**
 * Text made safe to put in HTML. ECharts tooltip formatters return HTML, and zone, line and
 * camera names come from devices: every such value goes through this before it is shown.
 */
export function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]);
}

const HTML_ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/**
 * A CSV cell a spreadsheet will not run: text starting with = + - @ or a tab or carriage
 * return is a formula to Excel and LibreOffice (a zone named =HYPERLINK(...) would be a
 * link), so it gets a leading single quote. Only for text columns: numbers stay numbers.
 */
export function csvSafe(text) {
  const s = String(text ?? "");
  return /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** Replace a container's content with a message saying what is missing. */
export function showEmpty(container, message, kind = "empty") {
  container.replaceChildren(el("div", { class: `empty-state ${kind}`, role: "status" }, message));
}

/** The words for an error from the API or the network. */
export function errorText(err, vars = {}) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t("err.network", { msg: err.detail });
    if (err.status === 403) return t("err.forbidden", vars);
    if (err.status === 404 && vars.id) return t("err.notfound", vars);
    return t("err.generic", { status: err.status, msg: err.detail || err.code });
  }
  return t("err.generic", { status: "?", msg: String(err) });
}

export function showError(container, err, vars = {}) {
  container.replaceChildren(el("div", { class: "error-state", role: "alert" }, errorText(err, vars)));
}

/** A <select> with an "All" option and the given values. */
export function fillSelect(select, values, allLabel, labelOf = (v) => v) {
  const current = select.value;
  select.replaceChildren(el("option", { value: "" }, allLabel));
  for (const v of values) select.append(el("option", { value: v }, labelOf(v)));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

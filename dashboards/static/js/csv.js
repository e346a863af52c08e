// CSV files of the tables a page shows, made in the browser from the data the page already
// holds (docs/dashboards.md says why): the same period, filters and suppressed cells as on
// screen, machine-readable numbers (not the localised text), one header that is the same in
// both languages. UTF-8 with a byte-order mark: without it Excel on a Chinese Windows reads the
// file as GBK and garbles every Chinese store name.
import { csvSafe, el } from "./dom.js";
import { t } from "./i18n.js";

/** One cell: numbers stay numbers, missing values are empty, text is neutralised as a
 *  formula (dom.js csvSafe: = + - @ tab CR get a leading ') and quoted when it must be. */
export function csvCell(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  if (typeof value === "boolean") return value ? "true" : "false";
  const s = csvSafe(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 text (CRLF) of a header and rows (arrays of cells). */
export function csvText(columns, rows) {
  return `${[columns, ...rows].map((r) => r.map(csvCell).join(",")).join("\r\n")}\r\n`;
}

/** {columns, rows} of a list of objects: every field that is not itself an object or a list,
 *  in the order they first appear, so fields the API adds later are exported too. */
export function objectTable(items, first = {}) {
  const columns = [...Object.keys(first)];
  for (const item of items) {
    for (const [k, v] of Object.entries(item)) {
      if (!columns.includes(k) && (v === null || typeof v !== "object")) columns.push(k);
    }
  }
  return { columns, rows: items.map((item) => columns.map((c) => (c in first ? first[c] : item[c]))) };
}

/** One row per camera of each device (a device without cameras: one row). */
export function deviceTable(devices) {
  const columns = ["store_id", "device_id", "state", "online", "last_seen", "outbox_depth",
    "outbox_dropped", "camera_id", "camera_state", "fps", "lag_s", "last_error"];
  const rows = (devices || []).flatMap((d) => (d.cameras && d.cameras.length ? d.cameras : [null])
    .map((c) => [d.store_id, d.device_id, d.state, d.online, d.last_seen, d.outbox_depth,
      d.outbox_dropped, c?.camera_id, c?.state, c?.fps, c?.lag_s, c?.last_error]));
  return { columns, rows };
}

export function download(name, blob) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

export function downloadCsv(name, text) {
  download(name, new Blob(["\ufeff", text], { type: "text/csv;charset=utf-8" }));
}

/** A file name part from ids and dates the page chose (never a path, never a dot-file). */
export function fileSafe(text) {
  return String(text ?? "").replace(/[^\w.-]+/g, "_").replace(/^\.+/, "") || "all";
}

/**
 * Put a "CSV" button beside each card's heading: { card: "#selector", id, name: () => file name,
 * table: () => ({columns, rows}) }, or into an element: { into: "#selector", ... } (a card
 * without a heading). Once per page; the tables are read when clicked.
 */
export function addCsvButtons(exports) {
  for (const x of exports) {
    const heading = x.card ? document.querySelector(`${x.card} h2`) : null;
    const into = x.into ? document.querySelector(x.into) : null;
    if ((!heading && !into) || document.getElementById(x.id)) continue;
    const button = el("button", { type: "button", class: "secondary csv-button", id: x.id,
      "data-i18n": "csv.button", "data-i18n-title": "csv.title", title: t("csv.title") },
    t("csv.button"));
    button.addEventListener("click", () => {
      const { columns, rows } = x.table();
      downloadCsv(x.name(), csvText(columns, rows));
    });
    if (into) {
      into.append(button);
      continue;
    }
    // beside the heading, not in it: a heading's text is replaced on a language change
    const head = el("div", { class: "card-head" });
    heading.replaceWith(head);
    head.append(heading, button);
  }
}

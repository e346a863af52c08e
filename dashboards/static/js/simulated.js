// Says which figures are simulated (the demo's simulator, not cameras): a banner on every
// page, and a mark on each store that has simulated windows (GET /api/v1/simulated).
import { $, el } from "./dom.js";
import { fmtRatio } from "./format.js";
import { t } from "./i18n.js";

/** "all" when every window of the store in the span is simulated, "part" when some are. */
export function simulatedKind(entry) {
  if (!entry || !entry.simulated_windows) return null;
  return entry.simulated_windows >= entry.windows ? "all" : "part";
}

/** Map store_id -> its /simulated entry. */
export function byStore(answer) {
  return new Map(((answer && answer.stores) || []).map((s) => [s.store_id, s]));
}

/** The mark beside a store's name; its text is a translated attribute, shown by the CSS. */
export function simulatedMark(entry) {
  const kind = simulatedKind(entry);
  if (!kind) return null;
  return el("span", { class: `badge sim sim-${kind}`, "data-simulated": kind,
    "data-label": t(kind === "all" ? "sim.badge" : "sim.badgePart"),
    title: t(kind === "all" ? "sim.badge" : "sim.badgePart") });
}

/**
 * The banner above the page's figures: `answer` from /simulated; `storesShown` the number of
 * stores on the page (1 on a store's own pages). Hidden when nothing is simulated.
 */
export function showSimulated(answer, storesShown) {
  let box = $("#simulated-note");
  if (!box) {
    box = el("div", { id: "simulated-note", class: "sim-box", role: "note" });
    const anchor = $("#page-error");
    anchor.after(box);
  }
  const stores = (answer && answer.stores) || [];
  box.hidden = stores.length === 0;
  if (!stores.length) {
    box.textContent = "";
    box.dataset.kind = "";
    return;
  }
  if (storesShown > 1) {
    box.dataset.kind = "stores";
    box.textContent = t("sim.stores", { n: stores.length, m: storesShown });
    return;
  }
  const s = stores[0];
  const kind = simulatedKind(s);
  box.dataset.kind = kind;
  box.textContent = kind === "all" ? t("sim.all")
    : t("sim.part", { pct: fmtRatio(s.simulated_windows / s.windows) });
}

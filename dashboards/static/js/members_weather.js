// The members card (member share of transactions, join rate of non-members) and the rainy vs
// dry days card, shared by the overview and the store page (docs/dashboards.md).
import { apiGet } from "./api.js";
import { el, showEmpty } from "./dom.js";
import { fmtChangePct, fmtInt, fmtNum, fmtRatio } from "./format.js";
import { t } from "./i18n.js";

/** /members and /weather/compare for a selection and span of store-local days. */
export async function fetchMembersWeather(sel, start, end) {
  const span = { ...sel, start, end };
  const [members, weather] = await Promise.all([
    apiGet("/members", { ...span, granularity: "day" }),
    apiGet("/weather/compare", span),
  ]);
  return { members, weather };
}

function kpi(id, label, value, sub) {
  return el("div", { class: "kpi", id },
    el("div", { class: "kpi-label" }, label),
    el("div", { class: "kpi-value" }, value),
    sub ? el("div", { class: "kpi-sub" }, sub) : null);
}

export function renderMembers(box, members) {
  const tot = members?.totals;
  if (!tot || !tot.hours) {
    showEmpty(box, t("empty.noMembers"));
    return;
  }
  box.replaceChildren(
    el("div", { class: "mw-kpis" },
      kpi("member-share", t("mw.memberShare"), fmtRatio(tot.member_share),
        t("mw.shareSub", { m: fmtInt(tot.members), n: fmtInt(tot.transactions) })),
      kpi("join-rate", t("mw.joinRate"), fmtRatio(tot.join_rate),
        t("mw.joinSub", { j: fmtInt(tot.new_members), n: fmtInt(tot.non_member_transactions) }))),
    el("p", { class: "muted mw-note", id: "members-note" },
      t("mw.membersNote", { hours: fmtInt(tot.hours) })));
}

const KINDS = ["rainy", "dry", "snow"];

export function renderWeather(box, weather) {
  if (!weather || (!weather.rainy?.days && !weather.dry?.days)) {
    showEmpty(box, t("empty.noWeather"));
    return;
  }
  const kinds = KINDS.filter((k) => k !== "snow" || weather.snow?.days);
  const cols = ["col.weather", "col.days", "col.visitorsPerDay", "col.conversion"];
  const table = el("table", { class: "data", id: "weather-table" },
    el("thead", {}, el("tr", {}, cols.map((c, i) => el("th", { class: i ? "num" : "" }, t(c))))),
    el("tbody", {}, kinds.map((k) => {
      const g = weather[k];
      return el("tr", { "data-kind": k },
        el("td", {}, t(`mw.${k}`)),
        el("td", { class: "num", "data-col": "days" }, fmtInt(g.days)),
        el("td", { class: "num", "data-col": "visitors" }, fmtNum(g.visitors_per_day)),
        el("td", { class: "num", "data-col": "conversion" }, fmtRatio(g.conversion)));
    })));
  const change = weather.visitors_per_day_change_pct;
  box.replaceChildren(
    el("div", { class: "table-wrap" }, table),
    change === null || change === undefined ? null
      : el("p", { id: "weather-change" }, t("mw.change", { pct: fmtChangePct(change) })),
    el("p", { class: "muted mw-note" }, t("mw.weatherNote")));
}

/** CSV tables: the member figures in total and per store, and the weather comparison. */
export function membersTable(members, period) {
  const columns = ["start", "end", "store_id", "transactions", "members", "new_members",
    "non_member_transactions", "member_share", "join_rate", "hours"];
  const row = (storeId, f) => [period.start, period.end, storeId, f.transactions, f.members,
    f.new_members, f.non_member_transactions, f.member_share, f.join_rate, f.hours];
  const stores = members?.stores || [];
  return { columns, rows: [row("all", members?.totals || {}), ...stores.map((s) => row(s.store_id, s))] };
}

export function weatherTable(weather) {
  const columns = ["start", "end", "weather", "days", "visitors", "visitors_per_day", "days_with_pos",
    "transactions", "conversion"];
  return { columns, rows: KINDS.map((k) => {
    const g = weather?.[k] || {};
    return [weather?.start, weather?.end, k, g.days, g.visitors, g.visitors_per_day, g.days_with_pos,
      g.transactions, g.conversion];
  }) };
}

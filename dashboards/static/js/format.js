// Locale-aware formatting (Intl) and store-local calendar arithmetic. "—" for missing values.
import { lang } from "./i18n.js";

export const DASH = "—";
const cache = new Map();

function nf(options) {
  const key = `${lang()}|${JSON.stringify(options)}`;
  if (!cache.has(key)) cache.set(key, new Intl.NumberFormat(lang(), options));
  return cache.get(key);
}

const missing = (v) => v === null || v === undefined || Number.isNaN(v);

export function fmtInt(v) {
  return missing(v) ? DASH : nf({ maximumFractionDigits: 0 }).format(v);
}

export function fmtNum(v, digits = 1) {
  return missing(v) ? DASH : nf({ maximumFractionDigits: digits }).format(v);
}

/** A ratio 0..1 as a percentage ("23.5%"). */
export function fmtRatio(v) {
  return missing(v) ? DASH : nf({ style: "percent", maximumFractionDigits: 1 }).format(v);
}

/** A change already in percent (12.2) with its sign ("+12.2%"). */
export function fmtChangePct(v) {
  if (missing(v)) return DASH;
  return nf({ style: "percent", maximumFractionDigits: 1, signDisplay: "exceptZero" }).format(v / 100);
}

/** Seconds: "45 sec" / "45秒" below two minutes, then minutes with one decimal. */
export function fmtDuration(s) {
  if (missing(s)) return DASH;
  if (s < 120) return nf({ style: "unit", unit: "second", maximumFractionDigits: 0 }).format(s);
  return nf({ style: "unit", unit: "minute", maximumFractionDigits: 1 }).format(s / 60);
}

/** Seconds as seconds, for chart axes ("150 sec"). */
export function fmtSeconds(s) {
  return missing(s) ? DASH : nf({ style: "unit", unit: "second", maximumFractionDigits: 0 }).format(s);
}

/** A signed difference in seconds. */
export function fmtDurationDiff(s) {
  if (missing(s)) return DASH;
  return nf({ style: "unit", unit: "second", maximumFractionDigits: 0, signDisplay: "exceptZero" })
    .format(s);
}

/** A calendar day "YYYY-MM-DD" in the reader's language (no time zone shift). */
export function fmtDay(day, withWeekday = false) {
  if (!day) return DASH;
  const [y, m, d] = day.split("-").map(Number);
  const opts = { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" };
  if (withWeekday) opts.weekday = "short";
  return new Intl.DateTimeFormat(lang(), opts).format(new Date(Date.UTC(y, m - 1, d)));
}

/** Short label for a store-local period: "10:00" for hours, "Nov 23" for days. */
export function fmtPeriod(period, withDay = false) {
  if (!period) return DASH;
  const [day, time] = period.split("T");
  const [y, m, d] = day.split("-").map(Number);
  const date = new Date(Date.UTC(y, m - 1, d));
  const dayText = new Intl.DateTimeFormat(lang(), { month: "short", day: "numeric", timeZone: "UTC" })
    .format(date);
  if (!time) return dayText;
  return withDay ? `${dayText} ${time}` : time;
}

/** An instant (ISO string) shown in a store's zone, with the zone's short name. */
export function fmtInstant(iso, timeZone) {
  if (!iso) return DASH;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return DASH;
  return new Intl.DateTimeFormat(lang(), {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZone: timeZone || undefined, timeZoneName: "short",
  }).format(date);
}

/** Today's date "YYYY-MM-DD" in a time zone (the browser's when none). */
export function todayIn(timeZone) {
  return new Intl.DateTimeFormat("en-CA", {
    year: "numeric", month: "2-digit", day: "2-digit", timeZone: timeZone || undefined,
  }).format(new Date());
}

/** Shift a "YYYY-MM-DD" by whole days. */
export function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

/** Days in an inclusive range of "YYYY-MM-DD". */
export function daysBetween(start, end) {
  const ms = Date.parse(`${end}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`);
  return Math.round(ms / 86400000) + 1;
}

// Language choice (persisted in localStorage, default from navigator.language) and lookup.
import en from "./i18n/en.js";
import zh from "./i18n/zh-CN.js";
import ops from "./i18n/ops.js";

const LANG_KEY = "storesense.lang";
export const LANGS = {
  en: { ...en, ...ops.en },
  "zh-CN": { ...zh, ...ops["zh-CN"] }, // the operations pages' strings, kept in their own file
};

export function lang() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && saved in LANGS) return saved;
  const nav = (navigator.language || "en").toLowerCase();
  return nav.startsWith("zh") ? "zh-CN" : "en";
}

export function setLang(value) {
  localStorage.setItem(LANG_KEY, value in LANGS ? value : "en");
  document.documentElement.lang = lang();
}

/** Translate `key`, filling `{name}` placeholders from `vars`; the key itself when missing. */
export function t(key, vars = {}) {
  const dict = LANGS[lang()];
  const text = dict[key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** Fill every element carrying data-i18n (text), data-i18n-placeholder or data-i18n-title. */
export function applyI18n(root = document) {
  document.documentElement.lang = lang();
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

/** A store's display name in the current language. */
export function storeName(store) {
  if (!store) return "";
  return lang() === "zh-CN" && store.name_zh ? store.name_zh : store.name;
}

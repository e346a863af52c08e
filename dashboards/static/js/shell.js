// The frame every page shares: top bar (navigation, language, who is signed in, sign out)
// and the sign-in form. A page calls boot({ render, load }) and gets the /me answer.
import { ApiError, apiGet, clearToken, getToken, setToken } from "./api.js";
import { el, errorText } from "./dom.js";
import { LANGS, applyI18n, lang, setLang, t } from "./i18n.js";

const LANG_NAMES = { en: "English", "zh-CN": "中文" };

function scopeText(me) {
  if (me.scope === "hq") return t("scope.hq");
  return t(`scope.${me.scope}`, { v: me.scope_value ?? "" });
}

function topBar(me, onLang) {
  const select = el("select", { id: "lang-select", "aria-label": t("lang.label") });
  for (const code of Object.keys(LANGS)) {
    select.append(el("option", { value: code }, LANG_NAMES[code]));
  }
  select.value = lang();
  select.addEventListener("change", () => {
    setLang(select.value);
    onLang();
  });
  const params = new URLSearchParams(location.search);
  const store = params.get("store");
  const nav = el("nav", {},
    el("a", { href: "./", "data-i18n": "nav.overview" }, t("nav.overview")),
    store ? el("a", { href: `store.html?store=${encodeURIComponent(store)}`, "data-i18n": "nav.store" }, t("nav.store")) : null,
    store ? el("a", { href: `heatmap.html?store=${encodeURIComponent(store)}`, "data-i18n": "nav.heatmap" }, t("nav.heatmap")) : null,
    el("a", { href: store ? `config.html?store=${encodeURIComponent(store)}` : "config.html", "data-i18n": "nav.config" }, t("nav.config")),
    el("a", { href: store ? `alerts.html?store=${encodeURIComponent(store)}` : "alerts.html", "data-i18n": "nav.alerts" }, t("nav.alerts")),
  );
  const user = me
    ? el("span", { class: "user", id: "user" },
        el("strong", { id: "user-name" }, me.name), " ", el("span", { id: "user-scope" }, scopeText(me)),
        el("button", { id: "signout", type: "button", class: "link",
          onclick: () => { clearToken(); location.reload(); } }, t("signout")))
    : null;
  return el("div", { class: "topbar-inner" },
    el("a", { class: "brand", href: "./" }, t("app.name")), nav,
    el("div", { class: "spacer" }), user,
    el("label", { class: "lang" }, select));
}

function signInForm(message) {
  const input = el("input", { id: "token", type: "password", autocomplete: "off", required: true,
    placeholder: t("signin.token"), "aria-label": t("signin.token") });
  const form = el("form", { id: "signin", class: "card signin" },
    el("h1", {}, t("signin.title")),
    el("label", {}, t("signin.token"), input),
    el("button", { type: "submit" }, t("signin.submit")),
    el("p", { class: "muted" }, t("signin.help")),
    message ? el("p", { class: "error-state", role: "alert" }, message) : null);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    location.reload();
  });
  return form;
}

/**
 * Sign in if needed, then call page.load(me) once and page.render() after every language
 * change (render works from data the page already holds: switching needs no refetch).
 */
export async function boot(page) {
  document.documentElement.lang = lang();
  const header = document.getElementById("topbar");
  const main = document.getElementById("app");
  let me = null;
  let signInMessage = null;
  if (getToken()) {
    try {
      me = await apiGet("/me");
    } catch (err) {
      const unknown = err instanceof ApiError && err.status === 401;
      if (unknown) clearToken();
      signInMessage = unknown ? t("signin.bad") : errorText(err);
    }
  }
  const rerender = () => {
    header.replaceChildren(topBar(me, rerender));
    if (!me) {
      main.replaceChildren(signInForm(signInMessage));
      return;
    }
    applyI18n(document);
    if (document.body.dataset.state === "ready") page.render();
  };
  window.addEventListener("storesense:unauthorized", () => {
    if (!me) return;
    me = null;
    clearToken();
    signInMessage = t("signin.bad");
    header.replaceChildren(topBar(null, rerender));
    main.replaceChildren(signInForm(signInMessage));
    document.body.dataset.state = "signin";
  });
  header.replaceChildren(topBar(me, rerender));
  if (!me) {
    document.body.dataset.state = "signin";
    main.replaceChildren(signInForm(signInMessage));
    return;
  }
  applyI18n(document);
  document.body.dataset.state = "loading";
  try {
    await reloading(async () => {
      await page.load(me);
      page.render();
      // Time from navigation start to the first complete render (dashboards/bench.py).
      document.body.dataset.readyMs = String(Math.round(performance.now()));
    });
  } catch (err) {
    page.fail(err);
  }
}

/**
 * A page's fetch of its figures that keeps only the newest: `gather()` fetches them and
 * returns them as fields of `state`; the returned function calls it, writes what it got into
 * `state` and resolves to true, unless a newer call began meanwhile (a filter changed during a
 * live refresh): then it writes nothing and resolves to false, so an older answer arriving
 * last cannot overwrite the newer figures.
 */
export function newestOnly(gather, state) {
  let generation = 0;
  return async () => {
    const mine = ++generation;
    const got = await gather();
    if (mine !== generation) return false;
    Object.assign(state, got);
    return true;
  };
}

let inFlight = 0; // reloads started and not yet finished

/**
 * Run a reload of page data, marking the body busy; tests and users can tell when it is done.
 * Reloads may overlap (a filter changed while a live refresh runs): the body is "ready" only
 * once the last of them has finished.
 */
export async function reloading(work) {
  const body = document.body;
  inFlight += 1;
  body.dataset.state = "loading";
  try {
    await work();
    if (inFlight === 1) body.dataset.state = "ready";
  } catch (err) {
    if (body.dataset.state === "signin") return; // token refused: the sign-in form is shown
    body.dataset.state = "error";
    throw err;
  } finally {
    inFlight -= 1;
    body.dataset.loads = String(Number(body.dataset.loads || 0) + 1);
  }
}

// The installer's page: a live picture per camera, lines (with their "in" arrow) and zones
// drawn on it, live counts, save. Coordinates are normalised to the frame (0..1).
"use strict";

const TEXT = {
  en: {
    title: "Camera set-up", note: "Pictures stay on this box. Only lines and zones are sent to HQ.",
    camera: "Camera", "mode.line": "Draw line", "mode.zone": "Draw zone", "zone.close": "Close zone",
    "hint.line": "Drag across the picture to draw a line; the arrow shows the way that counts as \"in\".",
    "hint.zone": "Click the corners of the zone, then Close zone.",
    lines: "Lines", zones: "Zones", save: "Save and apply", running: "Running configuration",
    flip: "Flip direction", remove: "Remove", saving: "Saving…", applied: "Applied",
    notApplied: "Saved, not yet applied", failed: "Not saved", noPicture: "No picture yet",
    in: "in", out: "out", other: "中文",
    "kind.display": "display", "kind.area": "area", "kind.queue": "queue",
    "kind.checkout": "checkout", "kind.entrance": "entrance",
  },
  zh: {
    title: "摄像头设置", note: "画面只留在本机，只有线和区域发送到总部。",
    camera: "摄像头", "mode.line": "画线", "mode.zone": "画区域", "zone.close": "闭合区域",
    "hint.line": "在画面上拖动画一条线；箭头表示计为“进”的方向。",
    "hint.zone": "依次点击区域的各个角，然后点“闭合区域”。",
    lines: "计数线", zones: "区域", save: "保存并应用", running: "当前配置",
    flip: "反转方向", remove: "删除", saving: "保存中…", applied: "已应用",
    notApplied: "已保存，尚未应用", failed: "未保存", noPicture: "暂无画面",
    in: "进", out: "出", other: "English",
    "kind.display": "陈列", "kind.area": "区域", "kind.queue": "排队",
    "kind.checkout": "收银", "kind.entrance": "入口",
  },
};
let lang = localStorage.getItem("storesense.installer.lang") || (navigator.language.startsWith("zh") ? "zh" : "en");
const t = (k) => TEXT[lang][k] || TEXT.en[k] || k;
const $ = (id) => document.getElementById(id);

const state = { cameras: [], cam: null, lines: [], zones: [], mode: "line", drag: null, draft: [], live: null };

function applyText() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("lang").textContent = t("other");
  $("hint").textContent = t(state.mode === "line" ? "hint.line" : "hint.zone");
  renderLists();
}

async function api(path, options) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error((body && body.error) || r.statusText);
  return body;
}

function canvasPoint(ev) {
  const c = $("overlay").getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [clamp((ev.clientX - c.left) / c.width), clamp((ev.clientY - c.top) / c.height)];
}

function uniqueName(prefix, taken) {
  for (let i = 1; ; i++) if (!taken.includes(prefix + i)) return prefix + i;
}

function onDown(ev) {
  if (state.mode !== "line") return;
  state.drag = { from: canvasPoint(ev), to: canvasPoint(ev) };
  $("overlay").setPointerCapture?.(ev.pointerId);
}
function onMove(ev) {
  if (!state.drag) return;
  state.drag.to = canvasPoint(ev);
  draw();
}
function onUp(ev) {
  if (state.mode === "zone") {
    state.draft.push(canvasPoint(ev));
    draw();
    return;
  }
  if (!state.drag) return;
  const [a, b] = [state.drag.from, canvasPoint(ev)];
  state.drag = null;
  if (Math.hypot(b[0] - a[0], b[1] - a[1]) > 0.02) {
    const name = uniqueName("line", state.lines.map((l) => l.name));
    state.lines.push({ name, points: [...a, ...b].map((v) => +v.toFixed(4)), in_direction: "left_to_right" });
    renderLists();
  }
  draw();
}

function closeZone() {
  if (state.draft.length >= 3) {
    const name = uniqueName("zone", state.zones.map((z) => z.name));
    state.zones.push({ name, polygon: state.draft.map((p) => p.map((v) => +v.toFixed(4))), kind: "area" });
  }
  state.draft = [];
  renderLists();
  draw();
}

function setMode(mode) {
  state.mode = mode;
  state.draft = [];
  $("mode-line").classList.toggle("on", mode === "line");
  $("mode-zone").classList.toggle("on", mode === "zone");
  applyText();
  draw();
}

function item(label, onRename, extra, onRemove) {
  const li = document.createElement("li");
  const input = document.createElement("input");
  input.value = label;
  input.maxLength = 64;
  input.addEventListener("change", () => { onRename(input.value.trim() || label); draw(); });
  li.append(input, ...extra);
  const rm = document.createElement("button");
  rm.type = "button";
  rm.textContent = t("remove");
  rm.addEventListener("click", () => { onRemove(); renderLists(); draw(); });
  li.append(rm);
  return li;
}

function renderLists() {
  const lines = $("lines"), zones = $("zones");
  lines.replaceChildren(...state.lines.map((l, i) => {
    const flip = document.createElement("button");
    flip.type = "button";
    flip.className = "flip";
    flip.textContent = t("flip");
    flip.addEventListener("click", () => {
      l.in_direction = l.in_direction === "left_to_right" ? "right_to_left" : "left_to_right";
      draw();
    });
    const count = document.createElement("span");
    count.className = "count";
    count.dataset.line = l.name;
    return item(l.name, (n) => { l.name = n; }, [flip, count], () => state.lines.splice(i, 1));
  }));
  zones.replaceChildren(...state.zones.map((z, i) => {
    const kind = document.createElement("select");
    kind.className = "kind";
    for (const k of ["area", "display", "queue", "checkout", "entrance"]) kind.append(new Option(t(`kind.${k}`), k));
    kind.value = z.kind || "area";
    kind.addEventListener("change", () => { z.kind = kind.value; });
    return item(z.name, (n) => { z.name = n; }, [kind], () => state.zones.splice(i, 1));
  }));
  showCounts();
}

function showCounts() {
  const counts = (state.live && state.live.counts) || {};
  document.querySelectorAll(".count").forEach((el) => {
    const c = counts[el.dataset.line] || { in: 0, out: 0 };
    el.textContent = `${t("in")} ${c.in} · ${t("out")} ${c.out}`;
  });
}

function draw() {
  const canvas = $("overlay"), img = $("snapshot");
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  if (!img.naturalWidth) {
    g.fillStyle = "#ddd"; g.font = "16px sans-serif"; g.fillText(t("noPicture"), 12, 24);
  }
  g.lineWidth = 2;
  g.strokeStyle = "rgba(255,200,0,0.9)";
  for (const b of (state.live && state.live.boxes) || []) g.strokeRect(b[0] * w, b[1] * h, (b[2] - b[0]) * w, (b[3] - b[1]) * h);
  g.strokeStyle = "#3fb950"; g.fillStyle = "rgba(63,185,80,0.18)";
  for (const z of state.zones) polygon(g, z.polygon, w, h, true);
  if (state.draft.length) { g.strokeStyle = "#58a6ff"; polygon(g, state.draft, w, h, false); }
  const counts = (state.live && state.live.counts) || {};
  for (const l of state.lines) lineWithArrow(g, l, w, h, counts[l.name]);
  if (state.drag) lineWithArrow(g, { name: "", points: [...state.drag.from, ...state.drag.to], in_direction: "left_to_right" }, w, h);
  showCounts();
}

function polygon(g, pts, w, h, close) {
  g.beginPath();
  pts.forEach((p, i) => (i ? g.lineTo(p[0] * w, p[1] * h) : g.moveTo(p[0] * w, p[1] * h)));
  if (close) { g.closePath(); g.fill(); }
  g.stroke();
}

function lineWithArrow(g, l, w, h, count) {
  const [x1, y1, x2, y2] = [l.points[0] * w, l.points[1] * h, l.points[2] * w, l.points[3] * h];
  g.strokeStyle = "#ff4d4f"; g.lineWidth = 3;
  g.beginPath(); g.moveTo(x1, y1); g.lineTo(x2, y2); g.stroke();
  // "in" walks from the line's left side (seen from its first point, y down) to its right:
  // the normal (-dy, dx) points into the right side.
  const len = Math.hypot(x2 - x1, y2 - y1) || 1;
  let nx = -(y2 - y1) / len, ny = (x2 - x1) / len;
  if (l.in_direction === "right_to_left") { nx = -nx; ny = -ny; }
  const mx = (x1 + x2) / 2, my = (y1 + y2) / 2, a = 28;
  g.beginPath(); g.moveTo(mx - nx * a, my - ny * a); g.lineTo(mx + nx * a, my + ny * a); g.stroke();
  g.beginPath();
  g.moveTo(mx + nx * a, my + ny * a);
  g.lineTo(mx + nx * (a - 10) - ny * 7, my + ny * (a - 10) + nx * 7);
  g.lineTo(mx + nx * (a - 10) + ny * 7, my + ny * (a - 10) - nx * 7);
  g.closePath(); g.fillStyle = "#ff4d4f"; g.fill();
  if (l.name) {
    const c = count || { in: 0, out: 0 };
    g.font = "bold 14px sans-serif"; g.fillStyle = "#fff"; g.strokeStyle = "#000"; g.lineWidth = 3;
    const text = `${l.name}  ${t("in")} ${c.in} / ${t("out")} ${c.out}`;
    g.strokeText(text, mx + 8, my - 8); g.fillText(text, mx + 8, my - 8);
  }
}

function selectCamera(id) {
  const cam = state.cameras.find((c) => c.camera_id === id);
  state.cam = id;
  state.lines = JSON.parse(JSON.stringify(cam.lines));
  state.zones = JSON.parse(JSON.stringify(cam.zones));
  state.draft = [];
  $("version").textContent = cam.config_version || "edge.toml";
  renderLists();
  refreshPicture();
}

function refreshPicture() {
  if (!state.cam) return;
  const img = $("snapshot");
  fetch(`api/cameras/${encodeURIComponent(state.cam)}/snapshot.jpg`, { credentials: "same-origin", cache: "no-store" })
    .then((r) => (r.ok ? r.blob() : null))
    .then((blob) => {
      if (!blob) return;
      const old = img.src;
      img.src = URL.createObjectURL(blob);
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    })
    .catch(() => {});
}

async function refreshLive() {
  if (!state.cam) return;
  try {
    state.live = await api(`api/cameras/${encodeURIComponent(state.cam)}/live`);
    $("version").textContent = state.live.config_version || "edge.toml";
    draw();
  } catch (e) { /* the next poll tries again */ }
}

async function save() {
  const status = $("status");
  status.className = ""; status.textContent = t("saving");
  try {
    const r = await api(`api/cameras/${encodeURIComponent(state.cam)}/config`, {
      method: "PUT", headers: { "content-type": "application/json" },
      body: JSON.stringify({ lines: state.lines, zones: state.zones }),
    });
    status.className = r.applied ? "ok" : "error";
    status.textContent = `${t(r.applied ? "applied" : "notApplied")}: ${r.config_version}`;
    status.dataset.version = r.config_version;
    const cam = state.cameras.find((c) => c.camera_id === state.cam);
    Object.assign(cam, { lines: JSON.parse(JSON.stringify(state.lines)), zones: JSON.parse(JSON.stringify(state.zones)), config_version: r.config_version });
    refreshLive();
  } catch (e) {
    status.className = "error"; status.textContent = `${t("failed")}: ${e.message}`;
  }
}

async function start() {
  applyText();
  const canvas = $("overlay");
  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", onUp);
  $("mode-line").addEventListener("click", () => setMode("line"));
  $("mode-zone").addEventListener("click", () => setMode("zone"));
  $("close-zone").addEventListener("click", closeZone);
  $("save").addEventListener("click", save);
  $("camera").addEventListener("change", (e) => selectCamera(e.target.value));
  $("lang").addEventListener("click", () => {
    lang = lang === "en" ? "zh" : "en";
    localStorage.setItem("storesense.installer.lang", lang);
    applyText(); draw();
  });
  $("snapshot").addEventListener("load", draw);
  window.addEventListener("resize", draw);
  try {
    state.cameras = await api("api/cameras");
  } catch (e) {
    document.body.dataset.state = "error";
    $("status").textContent = e.message;
    return;
  }
  $("camera").replaceChildren(...state.cameras.map((c) => new Option(c.camera_id, c.camera_id)));
  selectCamera(state.cameras[0].camera_id);
  setInterval(refreshPicture, 1000);
  setInterval(refreshLive, 500);
  document.body.dataset.state = "ready";
}

start();

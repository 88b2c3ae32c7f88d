// melscribe's page: asks POST /recommend and shows the answer. Plain DOM, no library; every text from the
// server or the catalog goes in as a text node (never as HTML).
"use strict";

const $ = (id) => document.getElementById(id);

// What the page asks. `parsed` is the intent the server read from `request` (null with intent handling off);
// `dropped` the avoided phrases of it the person removed; `required` and `excluded` the descriptors they added.
const state = { request: "", k: 10, parsed: null, dropped: new Set(), required: [], excluded: [] };

// An element with attributes (`on…` ones as listeners) and children (strings become text nodes).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

// The body of POST /recommend for the current state. Once an avoided phrase of the request is removed, the
// page asks for what the encoder read (the request without its rejections) with intent handling off, and
// keeps the other rejections as exclude_descriptors (the descriptors each one named).
function body() {
  const exclude = [...state.excluded];
  const b = { request: state.request, k: state.k, filters: { require_descriptors: [...state.required] } };
  if (state.parsed && state.dropped.size) {
    const text = state.parsed.text || "";
    b.request = text.length > 200 ? state.request : text; // a clipped text ("…"): the request as typed
    b.intent = false;
    for (const r of state.parsed.rejections || []) {
      if (!state.dropped.has(r.phrase)) exclude.push(...r.descriptors);
    }
  }
  b.filters.exclude_descriptors = [...new Set(exclude)];
  return b;
}

// The message of an error answer: FastAPI's 422 list or a plain detail.
function message(status, payload) {
  const detail = payload && payload.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  return detail ? String(detail) : `the server answered ${status}`;
}

function showError(text) {
  const error = $("error");
  error.textContent = text || "";
  error.hidden = !text;
  $("request").setAttribute("aria-invalid", text ? "true" : "false");
}

// Ask the server; true when it answered. On an error the message is shown next to the box.
async function ask() {
  const results = $("results");
  results.setAttribute("aria-busy", "true");
  let response, payload;
  try {
    response = await fetch("recommend", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body()),
    });
    payload = await response.json().catch(() => null);
  } catch (e) {
    results.setAttribute("aria-busy", "false");
    showError(`cannot reach the server: ${e.message}`);
    return false;
  }
  results.setAttribute("aria-busy", "false");
  if (!response.ok) {
    showError(message(response.status, payload));
    return false;
  }
  showError("");
  if (!state.dropped.size) state.parsed = payload.intent;
  render(payload);
  return true;
}

// A new request from the box: the chips start afresh.
async function search(event) {
  event.preventDefault();
  const k = Number.parseInt($("k").value, 10);
  Object.assign(state, {
    request: $("request").value, k: Number.isNaN(k) ? $("k").value : k, parsed: null, dropped: new Set(),
    required: [], excluded: [],
  });
  await ask();
}

// Change the chips, re-ask, and undo the change if the server refuses it (the error is shown).
async function change(mutate, focusAfter) {
  const before = { dropped: new Set(state.dropped), required: [...state.required], excluded: [...state.excluded] };
  mutate();
  if (!(await ask())) Object.assign(state, before);
  renderChips();
  const target = focusAfter();
  if (target) target.focus();
}

function chip(text, kind, remove, label) {
  const children = [el("span", { class: "chip-text" }, text)];
  if (remove) {
    children.push(el("button", { type: "button", class: "remove", "aria-label": label, title: label,
                                 onclick: remove }, "×"));
  }
  return el("li", { class: `chip ${kind}` }, children);
}

// After removing a chip, focus goes to the next chip's button, else to the descriptor box.
function nextFocus(list, index) {
  return () => {
    const buttons = $(list).querySelectorAll("button.remove");
    return buttons[Math.min(index, buttons.length - 1)] || $("descriptor");
  };
}

function renderChips() {
  const parsed = state.parsed || { wanted: [], avoided: [], rejections: [] };
  const wanted = $("wanted"), avoided = $("avoided");
  wanted.replaceChildren();
  avoided.replaceChildren();
  for (const d of parsed.wanted) {
    if (!state.required.includes(d)) wanted.append(chip(d, "wanted", null));
  }
  state.required.forEach((d, i) => wanted.append(chip(d, "wanted added", () => change(
    () => state.required.splice(i, 1), nextFocus("wanted", i)), `Stop requiring ${d}`)));
  const kept = parsed.avoided.filter((p) => !state.dropped.has(p));
  kept.forEach((p, i) => avoided.append(chip(p, "avoided", () => change(
    () => state.dropped.add(p), nextFocus("avoided", i)), `Stop avoiding ${p}`)));
  state.excluded.forEach((d, i) => avoided.append(chip(d, "avoided added", () => change(
    () => state.excluded.splice(i, 1), nextFocus("avoided", kept.length + i)), `Stop avoiding ${d}`)));
  for (const list of [wanted, avoided]) {
    if (!list.children.length) list.append(el("li", { class: "none" }, "none"));
  }
  $("intent").hidden = false;
}

async function addDescriptor(event) {
  event.preventDefault();
  const input = $("descriptor");
  const d = input.value.trim().toLowerCase();
  if (!d) return;
  const as = event.submitter ? event.submitter.value : "wanted";
  const list = as === "avoided" ? state.excluded : state.required;
  if (list.includes(d)) return;
  await change(() => list.push(d), () => input);
  if ($("error").hidden) input.value = "";
}

// "1:05" for 65 seconds.
function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// A link to the track (only http and https), e.g. "YouTube clip from 0:30" for MusicCaps.
function link(url) {
  let u;
  try { u = new URL(String(url)); } catch { return null; }
  if (u.protocol !== "https:" && u.protocol !== "http:") return null;
  let text = `Open ${u.hostname}`;
  if (/(^|\.)youtube\.com$|^youtu\.be$/.test(u.hostname)) {
    const t = Number.parseInt(u.searchParams.get("t") || "", 10);
    text = Number.isNaN(t) ? "YouTube clip" : `YouTube clip from ${clock(t)}`;
  }
  return el("a", { href: u.href, target: "_blank", rel: "noopener noreferrer" }, text);
}

function result(r) {
  const meta = r.metadata || {};
  const title = meta.title ? String(meta.title) : r.track_id;
  const matched = r.matched_descriptors || [];
  const carried = new Set((r.intent && r.intent.carries_avoided) || []);
  const rest = (r.descriptor_set || []).filter((d) => !matched.includes(d));
  const descriptors = [
    ...matched.map((d) => el("li", { class: carried.has(d) ? "matched carried" : "matched" },
                             el("mark", {}, d), el("span", { class: "visually-hidden" }, " (matched)"))),
    ...rest.map((d) => el("li", { class: carried.has(d) ? "carried" : null }, d)),
  ];
  const name = `${title}${meta.artist ? ` by ${meta.artist}` : ""}`;
  return el("li", { class: "result", "data-track": r.track_id },
    el("div", { class: "head" },
      el("span", { class: "rank", "aria-hidden": "true" }, String(r.rank)),
      el("span", { class: "visually-hidden" }, `Rank ${r.rank}: `),
      el("span", { class: "title" }, title),
      meta.artist ? el("span", { class: "artist" }, ` — ${meta.artist}`) : null,
      r.inferred ? el("span", { class: "badge", title: "known only by its audio: descriptors inferred from the sound" },
                      "audio only") : null),
    el("div", { class: "meta" },
      el("span", { class: "score" }, `score ${Number(r.score).toFixed(3)}`),
      meta.title ? el("span", { class: "id" }, r.track_id) : null,
      meta.url ? link(meta.url) : null),
    el("ul", { class: "descriptors", "aria-label": "Descriptors, matched first" }, descriptors),
    carried.size ? el("p", { class: "carries" },
                      `Only fills the list: it carries what the request avoids (${[...carried].join(", ")}).`) : null,
    r.inferred ? player(r.track_id, name) : null);
}

// The player of an audio-only track (GET /audio/{track_id}); a note instead if the server has no audio for it.
function player(trackId, name) {
  const audio = el("audio", { controls: true, preload: "metadata", src: `audio/${encodeURIComponent(trackId)}`,
                              "aria-label": `Play ${name}` });
  audio.addEventListener("error", () => audio.replaceWith(el("p", { class: "quiet" }, "Its audio is not available.")));
  return audio;
}

function render(answer) {
  renderChips();
  const results = answer.results || [];
  $("summary").textContent = results.length
    ? `${results.length} track${results.length === 1 ? "" : "s"} for “${answer.request}”`
    : `No track matches “${answer.request}” with these filters.`;
  $("low-confidence").hidden = !answer.low_confidence;
  $("list").replaceChildren(...results.map(result));
  const vocabulary = new Set();
  for (const r of results) for (const d of r.descriptor_set || []) vocabulary.add(d);
  $("descriptors").replaceChildren(...[...vocabulary].sort().map((d) => el("option", { value: d })));
}

// What the server serves, or that it is still building its index (asked again every 2 s).
async function health() {
  let response, payload;
  try {
    response = await fetch("health");
    payload = await response.json();
  } catch (e) {
    $("server").textContent = `Cannot reach the server: ${e.message}`;
    return;
  }
  if (response.ok) {
    $("server").textContent = `${payload.catalog}: ${payload.tracks} tracks, model ${payload.model}`;
  } else if (payload.status === "building") {
    $("server").textContent = `The server is building its index (${Math.round(payload.seconds)} s so far)…`;
    setTimeout(health, 2000);
  } else {
    $("server").textContent = `The server could not build its index: ${payload.detail || response.status}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask").addEventListener("submit", search);
  $("add").addEventListener("submit", addDescriptor);
  health();
});

// PiCAR station page: live hits, reads, status, K9 and kennel heat over Server-Sent Events.
// No framework, no build step, nothing fetched from outside the car. All text goes in with
// textContent: hit fields come from HQ's watchlist and are never treated as markup.
// Text is in the officer's language: _(), ngettext(), term() and the fmt*() formats come from
// /static/i18n.js (picar/i18n), loaded first.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  hits: new Map(),          // event_id -> hit payload, in arrival order
  dispositions: new Map(),  // event_id -> stored disposition
  current: null,            // event_id on screen
  reads: [],
  status: {},
  heat: null,
  k9: null,                 // {active, types, outcomes} or null when the car has no dog
  silenced: new Set(),      // hits whose alarm the officer silenced
  heatSilenced: false,
};

// ---------- helpers ----------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const c of children) node.append(c);
  return node;
}

function toDate(t) {
  if (t === null || t === undefined || t === "") return null;
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return isNaN(d.getTime()) ? null : d;
}

function clock(t) {
  const d = toDate(t);
  return d ? fmtTime(d) : "?";
}

function ago(t) {
  const d = toDate(t);
  if (!d) return "";
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  if (s < 60) return _("{n} s ago", { n: fmtInteger(s) });
  if (s < 3600) return _("{n} min ago", { n: fmtInteger(Math.floor(s / 60)) });
  return _("{n} h ago", { n: fmtInteger(Math.floor(s / 3600)) });
}

function imageUrl(rel) {
  return rel ? "/images/" + String(rel).split("/").map(encodeURIComponent).join("/") : "";
}

async function api(path, body) {
  let res;
  try {
    res = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {  // the browser's own message would be in the browser's language
    throw new Error(_("The car's station did not answer. Try again."));
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || _("The station refused: {status}", { status: res.status }));
  return data;
}

function showError(id, err) {
  const box = $(id);
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

function press(button, on) {
  button.setAttribute("aria-pressed", on ? "true" : "false");
}

// ---------- sound: generated in the page, one pattern per priority ----------

const sound = {
  ctx: null,
  loop: null,
  playing: "",
  enable() {
    if (!this.ctx) this.ctx = new (window.AudioContext || window.webkitAudioContext)();
    this.ctx.resume();
    localStorage.setItem("picar.sound", "on");
    this.tone(880, 0, 0.12, "sine", 0.2);  // a short confirmation that sound works
    renderSoundButton();
  },
  on() { return !!this.ctx && this.ctx.state === "running"; },
  tone(freq, at, dur, type, gain, freqEnd) {
    const t0 = this.ctx.currentTime + at;
    const osc = this.ctx.createOscillator();
    const amp = this.ctx.createGain();
    osc.type = type || "square";
    osc.frequency.setValueAtTime(freq, t0);
    if (freqEnd) osc.frequency.linearRampToValueAtTime(freqEnd, t0 + dur);
    amp.gain.setValueAtTime(0.0001, t0);
    amp.gain.exponentialRampToValueAtTime(gain || 0.3, t0 + 0.01);
    amp.gain.setValueAtTime(gain || 0.3, t0 + dur - 0.02);
    amp.gain.exponentialRampToValueAtTime(0.0001, t0 + dur);
    osc.connect(amp).connect(this.ctx.destination);
    osc.start(t0);
    osc.stop(t0 + dur + 0.02);
  },
  // Each pattern is one burst; `every` (ms) repeats it until silenced, `times` caps the repeats.
  patterns: {
    p1: { every: 4000, times: 15, burst(s) { for (let i = 0; i < 8; i++) s.tone(i % 2 ? 760 : 1020, i * 0.3, 0.28); } },
    p2: { every: 6000, times: 5, burst(s) { for (let i = 0; i < 3; i++) s.tone(880, i * 0.25, 0.15); } },
    p3: { every: 0, times: 1, burst(s) { s.tone(660, 0, 0.18); s.tone(660, 0.3, 0.18); } },
    p4: { every: 0, times: 1, burst(s) { s.tone(523, 0, 0.35, "sine", 0.25); } },
    heat_warning: { every: 15000, times: 40, burst(s) { s.tone(440, 0, 0.3, "triangle"); s.tone(440, 0.45, 0.3, "triangle"); } },
    heat_alarm: { every: 2500, times: 1000, burst(s) { s.tone(600, 0, 0.9, "sawtooth", 0.3, 1300); s.tone(600, 1.0, 0.9, "sawtooth", 0.3, 1300); } },
  },
  play(name) {
    if (this.playing === name) return;
    this.stop();
    const p = this.patterns[name];
    if (!p) return;
    this.playing = name;
    document.body.dataset.alarm = name;
    let n = 0;
    const burst = () => {
      if (this.on()) p.burst(this);
      n += 1;
      if (!p.every || n >= p.times) { clearInterval(this.loop); this.loop = null; }
    };
    burst();
    if (p.every && n < p.times) this.loop = setInterval(burst, p.every);
  },
  stop() {
    if (this.loop) clearInterval(this.loop);
    this.loop = null;
    this.playing = "";
    delete document.body.dataset.alarm;
  },
};

function renderSoundButton() {
  const b = $("sound-toggle");
  b.textContent = sound.on() ? _("SOUND ON") : _("ENABLE SOUND");
  b.className = "tool " + (sound.on() ? "on" : "off");
}

// The heat alarm outranks hits; a hit's pattern follows its priority (1 highest).
function updateAlarm() {
  const heat = state.heat && state.heat.state;
  if (heat === "alarm" && !state.heatSilenced) return sound.play("heat_alarm");
  const hit = pendingHits().find((h) => !state.silenced.has(h.event_id));
  if (hit) return sound.play("p" + Math.min(4, Math.max(1, Number(hit.priority) || 4)));
  if (heat === "warning" && !state.heatSilenced) return sound.play("heat_warning");
  sound.stop();
}

// ---------- theme ----------

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  $("theme-toggle").textContent = theme === "night" ? _("DAY") : _("NIGHT");
  localStorage.setItem("picar.theme", theme);
}

// ---------- hits ----------

function pendingHits() {
  // Highest priority first, then the newest.
  return [...state.hits.values()]
    .filter((h) => !state.dispositions.has(h.event_id))
    .sort((a, b) => (Number(a.priority) || 9) - (Number(b.priority) || 9) || (toDate(b.time) || 0) - (toDate(a.time) || 0));
}

// A live hit takes the screen unless the officer is in the middle of a higher-priority one.
function addHit(hit, live) {
  const isNew = !state.hits.has(hit.event_id);
  state.hits.set(hit.event_id, hit);
  if (!isNew || !live) return;
  const cur = state.current && state.hits.get(state.current);
  const curPending = cur && !state.dispositions.has(cur.event_id);
  const sheetOpen = !$("sheet-accept").hidden || !$("sheet-reject").hidden;
  const outranked = curPending && (Number(cur.priority) || 9) < (Number(hit.priority) || 9);
  if (!curPending || (!sheetOpen && !outranked)) {
    state.current = hit.event_id;
    if ((Number(hit.priority) || 9) <= 2) showView("view-alert");
  }
}

function pickCurrent() {
  const cur = state.current && state.hits.get(state.current);
  if (cur && !state.dispositions.has(cur.event_id)) return;
  const next = pendingHits()[0];
  if (next) state.current = next.event_id;
  else if (!cur) state.current = [...state.hits.keys()].pop() || null;
}

function renderHit() {
  const hit = state.current ? state.hits.get(state.current) : null;
  const pending = pendingHits();
  $("tab-alert-count").textContent = pending.length ? String(pending.length) : "";
  $("no-hit").hidden = !!hit;
  $("hit").hidden = !hit;
  const lastRead = state.reads[state.reads.length - 1];
  $("no-hit-detail").textContent = lastRead ? _("Last read {plate} {ago}", { plate: lastRead.plate, ago: ago(lastRead.time) }) : "";
  if (!hit) return;
  const prio = Math.min(4, Math.max(1, Number(hit.priority) || 4));
  $("hit-head").className = "hit-head p" + prio;
  $("hit-priority").textContent = "P" + (hit.priority ?? "?");
  $("hit-priority-name").textContent = upper(term("priority", prio));
  $("hit-list").textContent = upper(term("list", hit.list || ""));
  $("hit-age").textContent = ago(hit.time);
  $("hit-plate").textContent = hit.plate || "";
  $("hit-region").textContent = hit.region ? _("STATE {region}", { region: hit.region }) : "";
  // read_series: the plate grammar series the read fits (e.g. md.police; a name, not translated), absent for free text
  $("hit-read").textContent = (typeof hit.confidence === "number"
    ? _("camera read {text} ({confidence})", { text: hit.read_text || "?", confidence: fmtPercent(hit.confidence) })
    : _("camera read {text}", { text: hit.read_text || "?" })) + (hit.read_series ? " · " + hit.read_series : "");
  $("hit-reason").textContent = hit.reason || "-";
  $("hit-description").textContent = hit.description || "-";
  $("hit-match").textContent = matchText(hit.match) + (hit.recheck ? " · " + _("found on re-check of an earlier read") : "");
  $("hit-notes").textContent = hit.notes || "";
  $("hit-notes").hidden = $("hit-notes-label").hidden = !hit.notes;
  // Coordinates keep the decimal point in every language: they are read out and typed into maps as they are.
  const where = typeof hit.lat === "number" && typeof hit.lon === "number"
    ? hit.lat.toFixed(5) + ", " + hit.lon.toFixed(5) : _("no GPS fix");
  $("hit-where").textContent = where + (hit.camera ? " · " + _("camera {name}", { name: hit.camera }) : "");
  $("hit-when").textContent = clock(hit.time) + " (" + ago(hit.time) + ")";
  for (const [id, rel] of [["hit-crop", hit.crop], ["hit-frame", hit.frame]]) {
    const img = $(id);
    const url = imageUrl(rel);
    if (img.getAttribute("src") !== url) { if (url) img.src = url; else img.removeAttribute("src"); }
    img.hidden = !url;
  }
  const others = pending.filter((h) => h.event_id !== hit.event_id);
  const box = $("hit-pending");
  box.replaceChildren();
  if (others.length) {
    box.append(ngettext("{n} MORE", "{n} MORE", others.length));
    for (const h of others.slice(0, 2)) {
      box.append(el("button", { type: "button", textContent: "P" + h.priority + " " + h.plate,
        onclick: () => { state.current = h.event_id; render(); } }));
    }
  }
  const d = state.dispositions.get(hit.event_id);
  $("hit-done").hidden = !d;
  $("hit-actions").hidden = !!d;
  if (d) {
    $("hit-done").textContent = d.decision === "accept" ? _("ACCEPTED") :
      _("REJECTED: {reason}", { reason: upper(term("reject_reason", d.reason || "")) });
  }
  $("btn-silence").hidden = state.silenced.has(hit.event_id);
}

// The daemon sends match as {kind, distance, differences: [{position, read, listed}], text}: worded here in
// the page's language from its fields (`text` is the daemon's English). A plain string is shown as it is.
function matchText(match) {
  if (!match) return "-";
  if (typeof match !== "object") return String(match);
  if (!Array.isArray(match.differences)) return match.text || term("match_kind", match.kind);
  const diffs = match.differences.map((d) => _("pos {position}: read {read} listed {listed}",
    { position: d.position, read: d.read || "-", listed: d.listed || "-" }));
  return term("match_kind", match.kind) + (diffs.length ? " (" + diffs.join(", ") + ")" : "");
}

function openAccept() {
  const hit = state.hits.get(state.current);
  if (!hit) return;
  $("confirm-plate-text").textContent = hit.plate;
  $("confirm-state-text").textContent = hit.region || _("AS LISTED");
  press($("confirm-plate"), false);
  press($("confirm-state"), false);
  $("accept-note").value = "";
  $("btn-confirm-accept").disabled = true;
  showError("accept-error", null);
  $("sheet-accept").hidden = false;
}

function confirmReady() {
  $("btn-confirm-accept").disabled = !(
    $("confirm-plate").getAttribute("aria-pressed") === "true" &&
    $("confirm-state").getAttribute("aria-pressed") === "true");
}

let rejectReason = null;
function openReject() {
  rejectReason = null;
  document.querySelectorAll("#sheet-reject [data-reason]").forEach((b) => press(b, false));
  $("reject-note").value = "";
  $("btn-reject-send").disabled = true;
  showError("reject-error", null);
  $("sheet-reject").hidden = false;
}

function rejectReady() {
  $("btn-reject-send").disabled = !rejectReason || (rejectReason === "other" && !$("reject-note").value.trim());
}

async function sendDisposition(body, sheet, errorId, button) {
  const id = state.current;
  button.disabled = true;
  try {
    const stored = await api("/api/hits/" + encodeURIComponent(id) + "/disposition", body);
    state.dispositions.set(id, stored);
    $(sheet).hidden = true;
    pickCurrent();
    render();
  } catch (err) {
    showError(errorId, err);
    button.disabled = false;
  }
}

// ---------- reads ----------

function addRead(read) {
  state.reads.push(read);
  if (state.reads.length > 100) state.reads.splice(0, state.reads.length - 100);
}

function renderReads() {
  const body = $("reads-body");
  body.replaceChildren();
  for (const r of state.reads.slice().reverse()) {
    const conf = typeof r.confidence === "number" ? fmtPercent(r.confidence) : "";
    body.append(el("tr", {},
      el("td", { textContent: clock(r.time) }),
      el("td", { className: "plate-cell", textContent: r.plate || r.text || "" }),
      el("td", { textContent: conf }),
      el("td", { textContent: r.camera || "" })));
  }
  $("reads-empty").hidden = state.reads.length > 0;
}

// ---------- status ----------

function chip(id, text, level) {
  const c = $(id);
  c.textContent = text;
  c.className = "chip " + (level || "");
}

function renderStatus() {
  const s = state.status || {};
  const cams = $("st-cameras");
  cams.replaceChildren();
  for (const c of s.cameras || []) {
    const ok = c.state === "streaming" || c.state === "ok";
    const level = ok ? "ok" : c.state === "starting" || c.state === "reconnecting" ? "warn" : "bad";
    const what = ok ? (typeof c.fps === "number" ? _("{fps} fps", { fps: fmtInteger(c.fps) }) : "")
      : upper(term("camera_state", c.state || "?"));
    cams.append(el("span", { className: "chip " + level, textContent: _("CAM {name} {state}", { name: c.name, state: what }).trim() }));
  }
  const g = s.gps;
  if (!g) chip("st-gps", _("GPS ?"), "");
  else if (!g.fix || g.fix === "none") chip("st-gps", _("NO FIX"), "bad");
  else if (g.age_s > 5) chip("st-gps", _("GPS {fix} {age} s OLD", { fix: upper(g.fix), age: fmtInteger(g.age_s) }), "warn");
  else chip("st-gps", _("GPS {fix}", { fix: upper(g.fix) }), "ok");
  const hq = s.hq;
  if (!hq) chip("st-hq", _("HQ ?"), "");
  else {
    const backlog = Number(hq.backlog) || 0;
    chip("st-hq", (hq.connected ? _("HQ OK") : _("HQ DOWN")) + (backlog ? " · " + _("{n} QUEUED", { n: fmtInteger(backlog) }) : ""),
      hq.connected ? (backlog > 20 ? "warn" : "ok") : "bad");
  }
  if (s.watchlist_problem) {
    // No list in force (unreadable, or no key to verify one): say it, the officer gets no hits.
    // The reason is the daemon's (for the technician); the chip says what the officer needs to know.
    chip("st-watchlist", _("NO LIST"), "bad");
    $("st-watchlist").title = _("No watchlist in force: no hits can be shown. Reason: {reason}",
      { reason: problemText(String(s.watchlist_problem)) });
  } else {
    chip("st-watchlist", _("LIST {version}", { version: s.watchlist_version ?? "?" }), s.watchlist_version ? "ok" : "warn");
    $("st-watchlist").removeAttribute("title");
  }
  chip("st-rate", _("{n} READS/MIN", { n: typeof s.reads_per_min === "number" ? fmtInteger(s.reads_per_min) : "-" }), "");
}

function renderHeat() {
  const h = state.heat;
  $("st-heat").hidden = !h;
  if (!h) { $("heat-banner").hidden = true; return; }
  const temp = typeof h.temp_c === "number" ? fmtCelsius(h.temp_c) : "?";
  chip("st-heat", _("KENNEL {temp}", { temp }), h.state === "alarm" ? "bad" : h.state === "warning" ? "warn" : "ok");
  const banner = $("heat-banner");
  banner.hidden = h.state === "normal";
  banner.className = "banner" + (h.state === "alarm" ? " alarm" : "");
  $("heat-title").textContent = h.state === "alarm" ? _("KENNEL HEAT ALARM") : _("KENNEL HEAT WARNING");
  $("heat-detail").textContent = heatDetail(h, temp);
  $("heat-silence").hidden = state.heatSilenced;
}

// The daemon's reason is a sentence of the catalogue, maybe with a technical detail in brackets (file
// names, the error) that is shown as it is.
function problemText(problem) {
  const m = /^(.*?)( \(.*\))?$/s.exec(problem);
  return _(m[1]) + (m[2] || "");
}

// What the heat monitor found, from its fields (its `reason` is the daemon's English, for the log).
function heatDetail(h, temp) {
  if (h.silent_s !== null && h.silent_s !== undefined && h.state !== "alarm") {
    return _("sensor silent for {n} s", { n: fmtInteger(h.silent_s) });
  }
  if (typeof h.temp_c !== "number") return _("no reading yet");
  let text = temp;
  if (h.state === "alarm") text = _("{temp} (alarm at {limit})", { temp, limit: fmtCelsius(h.alarm_c) });
  else if (h.state === "warning") text = _("{temp} (warning at {limit})", { temp, limit: fmtCelsius(h.warn_c) });
  if (h.engine === true) text += " · " + _("engine on");
  if (h.engine === false) text += " · " + _("engine OFF");
  return text;
}

// The car's disk is full: reads, hits and decisions wait in memory until it has room (never lost),
// and the officer must know the car's own record is behind.
function renderStorage() {
  const st = (state.status || {}).storage || {};
  const pending = Number(st.pending) || 0;
  const lost = Number(st.lost) || 0;
  $("storage-banner").hidden = !st.full && !lost;
  $("storage-detail").textContent = ngettext("Storage full: {n} record kept in memory",
    "Storage full: {n} records kept in memory", pending) + (lost ? ", " + ngettext("{n} lost", "{n} lost", lost) : "");
}

// ---------- K9 ----------

function renderK9() {
  const k9 = state.k9;
  $("k9-off").hidden = !!k9;
  $("k9-on").hidden = !k9;
  $("tab-k9-count").textContent = k9 && k9.active.length ? String(k9.active.length) : "";
  if (!k9) return;
  const box = $("k9-active");
  box.replaceChildren();
  for (const d of k9.active) {
    box.append(el("div", { className: "k9-card" },
      el("div", {},
        el("div", { className: "who", textContent: d.dog + " · " + upper(term("k9_type", d.type)) }),
        el("div", { className: "muted", textContent:
          _("handler {handler} · since {time} ({ago})", { handler: d.handler, time: clock(d.started_at), ago: ago(d.started_at) }) +
          (d.trigger === "door" ? " · " + upper(term("k9_trigger", "door")) : "") +
          (d.case_number ? " · " + _("case {case}", { case: d.case_number }) : "") })),
      el("button", { type: "button", className: "big reject", textContent: _("END"),
        onclick: () => openK9End(d) })));
  }
  const types = $("k9-types");
  if (!types.childElementCount) {
    for (const t of k9.types) {
      types.append(el("button", { type: "button", className: "big choice",
        onclick: (e) => { k9Type = t; types.querySelectorAll("button").forEach((b) => press(b, b === e.currentTarget)); } }));
      types.lastChild.dataset.type = t;
      types.lastChild.dataset.term = "k9_type:" + t;
    }
    applyStatic(types);
  }
}

let k9Type = null;
let k9Ending = null;
let k9Outcome = null;

function openK9End(d) {
  k9Ending = d.deployment_id;
  k9Outcome = null;
  $("k9-end-title").textContent = d.dog;
  const box = $("k9-outcomes");
  box.replaceChildren();
  for (const o of state.k9.outcomes) {
    const b = el("button", { type: "button", className: "big choice",
      onclick: () => { k9Outcome = o; box.querySelectorAll("button").forEach((x) => press(x, x === b));
        $("btn-k9-end-send").disabled = false; } });
    b.dataset.outcome = o;
    b.dataset.term = "k9_outcome:" + o;
    box.append(b);
  }
  applyStatic(box);
  $("k9-end-notes").value = "";
  $("btn-k9-end-send").disabled = true;
  showError("k9-end-error", null);
  $("sheet-k9-end").hidden = false;
}

// ---------- views and live updates ----------

function showView(id) {
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== id; });
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.view === id));
}

// Each part on its own: a payload one panel cannot draw must never keep the kennel heat alarm or a
// hit off the screen. The heat banner goes first.
function render() {
  for (const part of [renderHeat, renderStorage, renderHit, renderReads, renderStatus, renderK9, updateAlarm]) {
    try { part(); } catch (err) { console.error("render", part.name, err); }
  }
}

// The event id each replaced part last came from. A snapshot asked for before an event was pushed must
// not undo it (an older /api/state hiding a kennel heat alarm that had just arrived), nor an event older
// than the snapshot undo the snapshot. Ids count per connection's server: reset when the stream opens.
const SNAPSHOT_KINDS = new Set(["status", "read", "heat", "k9"]);
let seen = {};

function newer(kind, id) {
  if (id < (seen[kind] || 0)) return false;
  seen[kind] = id;
  return true;
}

function applyState(s) {
  const seq = Number(s.seq) || 0;
  if (newer("status", seq)) state.status = s.status || {};
  if (newer("read", seq)) state.reads = (s.reads || []).slice(-100);
  if (newer("heat", seq)) state.heat = s.heat || null;
  if (newer("k9", seq)) state.k9 = s.k9 || null;
  for (const [id, d] of Object.entries(s.dispositions || {})) state.dispositions.set(id, d);
  for (const h of s.hits || []) addHit(h, false);
  pickCurrent();
  render();
}

const handlers = {
  hit(data) { addHit(data, true); },
  read(data) { addRead(data); },
  status(data) { state.status = data; },
  heat(data) {
    if (!state.heat || state.heat.state !== data.state) state.heatSilenced = false;
    state.heat = data;
  },
  k9(data) {
    if (data.active && state.k9) state.k9.active = data.active;
    else refreshState();
  },
  disposition(data) { state.dispositions.set(data.event_id, data); pickCurrent(); },
};

let source = null;
let retryMs = 1000;

async function refreshState() {
  try { applyState(await api("/api/state")); } catch (err) { console.warn("state", err); }
}

function setLink(live) {
  chip("st-link", live ? _("LIVE") : _("OFFLINE"), live ? "ok" : "bad");
  document.body.dataset.live = live ? "1" : "0";
}

function connect() {
  if (source) source.close();
  source = new EventSource("/events");
  // Live once the state is in: an event pushed after that is newer than what the state said.
  source.onopen = async () => { retryMs = 1000; seen = {}; await refreshState(); setLink(true); };
  source.onerror = () => {
    setLink(false);
    // EventSource retries by itself unless the server refused it (e.g. 401): then we retry.
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    }
  };
  for (const [kind, fn] of Object.entries(handlers)) {
    source.addEventListener(kind, (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch (err) { console.warn("bad event", kind, err); return; }
      if (SNAPSHOT_KINDS.has(kind) && !newer(kind, Number(ev.lastEventId) || 0)) return;
      fn(data);
      render();
    });
  }
}

// ---------- language ----------

function currentLanguage() { return i18n.data ? i18n.data.language : "en"; }

// The switch shows every language's code, and the sheet each language's name in itself, so an officer
// finds their own language whichever one the page is in.
function renderLanguageButton() {
  const codes = i18n.data ? Object.keys(i18n.data.languages) : ["en"];
  $("lang-toggle").replaceChildren(...codes.map((code) =>
    el("span", { className: code === currentLanguage() ? "on" : "", textContent: code.toUpperCase() })));
}

function openLanguages() {
  const box = $("lang-choices");
  box.replaceChildren();
  for (const [code, name] of Object.entries(i18n.data ? i18n.data.languages : { en: "English" })) {
    const b = el("button", { type: "button", className: "big choice", textContent: name, lang: code,
      onclick: () => chooseLanguage(code) });
    b.dataset.lang = code;
    press(b, code === currentLanguage());
    box.append(b);
  }
  showError("lang-error", null);
  $("sheet-lang").hidden = false;
}

async function chooseLanguage(code) {
  try {
    await loadLanguage(code);
    $("sheet-lang").hidden = true;
    relabel();
  } catch (err) {
    showError("lang-error", _("Could not load the language: {error}", { error: err.message || err }));
  }
}

// Everything the script wrote, again in the language now in force.
function relabel() {
  applyTheme(document.documentElement.dataset.theme || "night");
  renderSoundButton();
  renderLanguageButton();
  setLink(document.body.dataset.live === "1");
  render();
}

// ---------- wiring ----------

async function wire() {
  $("theme-toggle").onclick = () => applyTheme(document.documentElement.dataset.theme === "night" ? "day" : "night");
  $("sound-toggle").onclick = () => { sound.enable(); sound.playing = ""; updateAlarm(); };
  document.querySelectorAll(".tab").forEach((t) => { t.onclick = () => showView(t.dataset.view); });

  $("btn-accept").onclick = openAccept;
  $("btn-reject").onclick = openReject;
  $("btn-silence").onclick = () => { state.silenced.add(state.current); render(); };
  $("heat-silence").onclick = () => { state.heatSilenced = true; render(); };
  for (const id of ["confirm-plate", "confirm-state"]) {
    $(id).onclick = () => { press($(id), $(id).getAttribute("aria-pressed") !== "true"); confirmReady(); };
  }
  $("btn-accept-cancel").onclick = () => { $("sheet-accept").hidden = true; };
  $("btn-confirm-accept").onclick = () => sendDisposition(
    { decision: "accept", confirmed: true, note: $("accept-note").value.trim() || null },
    "sheet-accept", "accept-error", $("btn-confirm-accept"));
  document.querySelectorAll("#sheet-reject [data-reason]").forEach((b) => {
    b.onclick = () => {
      rejectReason = b.dataset.reason;
      document.querySelectorAll("#sheet-reject [data-reason]").forEach((x) => press(x, x === b));
      rejectReady();
    };
  });
  $("reject-note").oninput = rejectReady;
  $("btn-reject-cancel").onclick = () => { $("sheet-reject").hidden = true; };
  $("btn-reject-send").onclick = () => sendDisposition(
    { decision: "reject", reason: rejectReason, note: $("reject-note").value.trim() || null },
    "sheet-reject", "reject-error", $("btn-reject-send"));

  $("k9-dog").value = localStorage.getItem("picar.k9.dog") || "";
  $("k9-handler").value = localStorage.getItem("picar.k9.handler") || "";
  $("k9-start-form").onsubmit = async (e) => {
    e.preventDefault();
    if (!k9Type) return showError("k9-error", _("Choose the deployment type."));
    const body = { dog: $("k9-dog").value.trim(), handler: $("k9-handler").value.trim(), type: k9Type,
      case_number: $("k9-case").value.trim() || null, notes: $("k9-notes").value.trim() };
    $("btn-k9-start").disabled = true;
    try {
      await api("/api/k9/start", body);
      localStorage.setItem("picar.k9.dog", body.dog);
      localStorage.setItem("picar.k9.handler", body.handler);
      $("k9-case").value = ""; $("k9-notes").value = "";
      k9Type = null;
      $("k9-types").querySelectorAll("button").forEach((b) => press(b, false));
      showError("k9-error", null);
      await refreshState();
    } catch (err) { showError("k9-error", err); }
    $("btn-k9-start").disabled = false;
  };
  $("btn-k9-end-cancel").onclick = () => { $("sheet-k9-end").hidden = true; };
  $("btn-k9-end-send").onclick = async () => {
    $("btn-k9-end-send").disabled = true;
    try {
      await api("/api/k9/" + encodeURIComponent(k9Ending) + "/end", { outcome: k9Outcome, notes: $("k9-end-notes").value.trim() });
      $("sheet-k9-end").hidden = true;
      await refreshState();
    } catch (err) { showError("k9-end-error", err); $("btn-k9-end-send").disabled = false; }
  };

  $("lang-toggle").onclick = openLanguages;
  $("btn-lang-cancel").onclick = () => { $("sheet-lang").hidden = true; };

  // The officer's language (a cookie), else the car's; English if the catalogue cannot be had.
  try {
    await loadLanguage(chosenLanguage());
  } catch (err) {
    console.warn("language", err);
    document.documentElement.dataset.i18nReady = "none";
  }
  document.documentElement.dataset.theme = localStorage.getItem("picar.theme") || "night";
  document.body.dataset.live = "0";
  relabel();
  setInterval(() => { renderHit(); }, 1000);  // keeps the "n s ago" fresh
  connect();
}

wire();

// PiCAR HQ console: the live stream, the alarm bar and its sound. Every text shown comes from the server,
// already translated and escaped (Jinja2); this script only moves server-rendered HTML into place.
"use strict";

(() => {
  const body = document.body;
  const csrf = () => document.querySelector('meta[name="csrf"]').content;

  // Server-rendered HTML (one element) from a live event, as a node.
  const fragment = (html) => {
    const t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content;
  };
  const byData = (within, name, value) => within.querySelector(`[data-${name}="${CSS.escape(value)}"]`);

  // A region with data-src is re-read whole after the stream (re)opens: nothing missed while it was closed.
  async function refresh(region) {
    const r = await fetch(region.dataset.src, {credentials: "same-origin", headers: {"X-Requested-With": "picar"}});
    if (r.status === 401) { location.assign("/login?next=" + encodeURIComponent(location.pathname)); return; }
    if (!r.ok) return;
    region.replaceChildren(fragment(await r.text()));
    region.dispatchEvent(new CustomEvent("picar:refreshed", {bubbles: true}));
  }
  // A live event that arrives while a re-read is on its way waits for it and then goes on top: the answer was
  // rendered before the event, and putting it in place would wipe what the event showed.
  let rereading = null;
  const held = [];
  const hold = (fn, d) => {
    if (!rereading) { fn(d); return; }
    held.push([fn, d]);
    body.dataset.held = String(held.length);
  };
  const refreshAll = () => {
    const run = Promise.all([...document.querySelectorAll("[data-src]")].map(refresh)).then(alarmsChanged);
    rereading = run;
    run.catch(() => {}).then(() => {
      if (rereading !== run) return;  // a later re-read holds the events now
      rereading = null;
      for (const [fn, d] of held.splice(0)) fn(d);
      body.dataset.held = "0";
    });
    return run;
  };

  // --- handlers of the live events ------------------------------------------------------------------------
  const handlers = {
    car(d) {
      document.dispatchEvent(new CustomEvent("picar:car", {detail: d}));  // for other pages that show cars
      const rows = document.getElementById("fleet-rows");
      if (!rows) return;
      const old = byData(rows, "car", d.id), row = fragment(d.html);
      if (old) old.replaceWith(row);
      else { rows.querySelector(".empty")?.remove(); rows.append(row); }
      document.dispatchEvent(new CustomEvent("picar:cars"));
    },
    hit(d) {
      const list = document.getElementById("hit-list");
      if (!list) return;
      const old = byData(list, "hit", d.id), card = fragment(d.html);
      if (old) old.replaceWith(card);
      else { list.querySelector(".empty")?.remove(); list.prepend(card); }
    },
    alarm(d) {
      const list = document.getElementById("alarm-list");
      if (!list || byData(list, "key", d.key)) return;
      list.prepend(fragment(d.html));
      alarmsChanged();
    },
    "alarm-gone"(d) {
      const list = document.getElementById("alarm-list");
      if (list) byData(list, "key", d.key)?.remove();
      alarmsChanged();
    },
  };

  // --- the stream -------------------------------------------------------------------------------------------
  function connect() {
    const state = document.getElementById("live-state");
    const es = new EventSource("/events");
    const opened = () => {
      body.dataset.stream = "open";
      if (state) { state.textContent = state.dataset.open; state.classList.remove("down"); }
      refreshAll();
    };
    es.addEventListener("ready", opened);
    es.addEventListener("resync", opened);
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (e) => hold(fn, JSON.parse(e.data)));
    }
    es.onerror = () => {
      body.dataset.stream = "closed";
      if (state) { state.textContent = state.dataset.closed; state.classList.add("down"); }
      // EventSource reconnects by itself; a session that ended shows as a closed stream: check it once.
      if (es.readyState === EventSource.CLOSED) {
        fetch("/alarms", {headers: {"X-Requested-With": "picar"}}).then((r) => {
          if (r.status === 401) location.assign("/login?next=" + encodeURIComponent(location.pathname));
          else setTimeout(connect, 3000);
        }, () => setTimeout(connect, 3000));
      }
    };
  }

  // --- alarms: acknowledge, and sound until none is left -------------------------------------------------------
  let audio = null, beeper = null;
  window.picarBeeps = 0;

  function beep() {
    if (!audio || audio.state !== "running") return;
    const osc = audio.createOscillator(), gain = audio.createGain(), t = audio.currentTime;
    osc.type = "square";
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.setValueAtTime(660, t + 0.18);
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.36);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.4);
    window.picarBeeps += 1;
  }

  function soundOn() {
    if (!audio) {
      try { audio = new AudioContext(); } catch (e) { return; }
    }
    if (audio.state === "suspended") audio.resume().then(alarmsChanged);
    alarmsChanged();
  }

  function alarmsChanged() {
    const list = document.getElementById("alarm-list");
    const n = list ? list.querySelectorAll(".alarm").length : 0;
    body.dataset.alarms = String(n);
    const button = document.getElementById("sound-on");
    const running = audio && audio.state === "running";
    if (button) button.hidden = !n || running;
    body.dataset.sound = running ? "on" : "off";
    if (n && !beeper) { beep(); beeper = setInterval(beep, 1500); }
    if (!n && beeper) { clearInterval(beeper); beeper = null; }
    body.dataset.beeping = beeper ? "1" : "0";
  }

  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.classList.contains("ack")) return;
    e.preventDefault();
    form.querySelector("button").disabled = true;
    const r = await fetch(form.action, {
      method: "POST", credentials: "same-origin",
      headers: {"X-Requested-With": "picar", "X-CSRF-Token": csrf()},
      body: new URLSearchParams(new FormData(form)),
    });
    if (r.ok) {
      const d = await r.json();
      handlers["alarm-gone"]({key: d.key});
    } else {
      form.querySelector("button").disabled = false;
    }
  });
  // A browser plays sound only after the operator has touched the page: any click turns it on.
  document.addEventListener("pointerdown", soundOn, {once: true});
  document.addEventListener("keydown", soundOn, {once: true});
  document.getElementById("sound-on")?.addEventListener("click", soundOn);

  if (body.dataset.live === "1") {
    soundOn();  // allowed at once where the browser's policy permits it, else after the first click
    connect();
  }
})();

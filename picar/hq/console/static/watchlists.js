// PiCAR HQ console, watchlists: the chosen file is sent as the request's body (the console has no multipart
// parser) with the session's CSRF token in a header; the answer names the review page to open.
"use strict";

(() => {
  // Which car holds which list: read again whenever a car's status changes (its version comes with it).
  const cars = document.getElementById("car-list-rows");
  if (cars) {
    document.addEventListener("picar:car", async () => {
      const r = await fetch(cars.dataset.src, {credentials: "same-origin", headers: {"X-Requested-With": "picar"}});
      if (r.ok) { cars.innerHTML = await r.text(); cars.dataset.updated = String(Date.now()); }
    });
  }

  const form = document.getElementById("import-form");
  if (!form) return;
  const state = document.getElementById("import-state");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = form.elements.namedItem("file").files[0];
    if (!file) return;
    const format = form.querySelector('input[name="format"]:checked').value;
    const button = document.getElementById("import-button");
    button.disabled = true;
    state.textContent = "…";
    try {
      const url = `/watchlists/import?format=${encodeURIComponent(format)}&name=${encodeURIComponent(file.name)}`;
      const r = await fetch(url, {method: "POST", body: file, credentials: "same-origin", headers: {
        "Content-Type": "application/octet-stream", "X-Requested-With": "picar",
        "X-CSRF-Token": document.querySelector('meta[name="csrf"]').content}});
      const answer = await r.json();
      if (r.ok && answer.location) { location.assign(answer.location); return; }
      state.textContent = form.dataset.error.replace("{error}", answer.error || r.status);
    } catch (err) {
      state.textContent = form.dataset.error.replace("{error}", String(err));
    }
    button.disabled = false;
  });
})();

// PiCAR HQ console, search page: the results table shown a page at a time (the reads were all found, and
// audited, by the one search; this only pages the view). Texts come from the server (data-pattern).
"use strict";

(() => {
  const table = document.getElementById("reads");
  const pager = document.querySelector(".pager");
  if (!table || !pager) return;
  const rows = [...table.tBodies[0].rows];
  const size = Number(table.dataset.pageSize) || 50;
  const pages = Math.max(1, Math.ceil(rows.length / size));
  let page = 1;
  function show() {
    rows.forEach((r, i) => { r.hidden = Math.floor(i / size) + 1 !== page; });
    pager.querySelector(".pager-state").textContent =
      pager.dataset.pattern.replace("{page}", page).replace("{pages}", pages);
    for (const b of pager.querySelectorAll("button[data-step]")) {
      const to = page + Number(b.dataset.step);
      b.disabled = to < 1 || to > pages;
    }
    table.dataset.page = String(page);
  }
  for (const b of pager.querySelectorAll("button[data-step]")) {
    b.addEventListener("click", () => { page += Number(b.dataset.step); show(); });
  }
  pager.hidden = pages < 2;
  show();
})();
